"""nmap's service database applied to answers already collected: only the asking probe's
lines and its fallbacks, version templates expanded, device types mapped."""

from __future__ import annotations

import shutil

import pytest

from fingerprints import nmap_probes
from fingerprints.classify import Observation, classify
from fingerprints.databases import without_recog

SAMPLE = r"""# a small nmap-service-probes (a line ending in a backslash continues)
Probe TCP NULL q||
match ftp m|^220 (\S+) FTP server \(v([\d.]+)\)|i p/$1 ftpd/ v/$2/ d/printer/ cpe:/h:acme:$1/a
softmatch ftp m|^220 |
Probe TCP GetRequest q|GET / HTTP/1.0\r\n\r\n|
fallback GenericLines
match http m|^HTTP/1\.[01] \d\d\d.*\r\nServer: Cam/(\d+)_(\d+)\r\n|s p/Cam httpd/ v/$SUBST(1,"_",".").$2/ \
d/webcam/
Probe TCP GenericLines q|\r\n\r\n|
match generic m|^.{20}|s p/anything/
match http m|^HTTP/1\.0 200 OK\r\nX-Fallback: (.+?)\r\n|s p/$P(1)/
Probe TCP Other q|x|
match http m|^HTTP| p/wrong probe/
"""


def _sample() -> dict[str, nmap_probes.Probe]:
    return nmap_probes.parse(SAMPLE.replace("\\\n", ""))


def test_a_probe_file_parses_into_probes_lines_and_fallbacks() -> None:
    probes = _sample()
    assert sorted(probes) == ["TCP:GenericLines", "TCP:GetRequest", "TCP:NULL", "TCP:Other"]
    assert probes["TCP:GetRequest"].fallbacks == ("GenericLines",)
    assert [m.soft for m in probes["TCP:NULL"].matches] == [False, True]


def test_only_the_asking_probe_and_its_fallbacks_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nmap_probes, "database", _sample)
    ftp = nmap_probes.identify(b"220 LJ4250 FTP server (v2.1) ready\r\n", "banner")
    assert ftp == ("service=ftp; devicetype=printer; cpe=cpe:/h:acme:LJ4250; "
                   "product=LJ4250 ftpd; version=2.1")
    cam = nmap_probes.identify(b"HTTP/1.1 200 OK\r\nServer: Cam/10_12\r\n\r\n", "http")
    assert cam == "service=http; devicetype=webcam; product=Cam httpd; version=10.12"
    # a fallback's line, with $P() keeping printable characters only
    fell = nmap_probes.identify(b"HTTP/1.0 200 OK\r\nX-Fallback: A\x01B\r\n\r\n", "http")
    assert fell is not None and fell.startswith("service=generic")  # first line in order
    # a soft match alone names nothing; another probe's lines are never tried
    assert nmap_probes.identify(b"220 something\r\n", "banner") is None
    assert nmap_probes.identify(b"HTTP", "rtsp") is None


def test_a_match_becomes_identity_fields() -> None:
    fields = nmap_probes.identity_fields(
        "service=ftp; product=Axis P1375 Network Camera ftpd; version=10.12.114; "
        "devicetype=webcam; cpe=cpe:/h:axis:P1375_network_camera")
    assert fields["device_type"] == "camera" and fields["vendor"] == "Axis"
    identity = classify([Observation(key="nmap.match", value=(
        "service=ftp; product=Konica Minolta bizhub printer ftpd; devicetype=printer"))])
    assert identity.device_type == "printer"


def _named(value: str) -> tuple[str | None, str | None]:
    """(vendor, type) of one ``nmap.match`` by the built-in rules alone."""
    with without_recog():
        identity = classify([Observation(key="nmap.match", value=value)])
    return identity.vendor, identity.device_type


@pytest.mark.parametrize(("value", "vendor", "device_type"), [
    # most of nmap's lines give no type, but their words name the device, and its maker
    ("service=http; product=Hikvision IP camera httpd", "Hikvision", "camera"),
    ("service=http; product=Dell iDRAC 8 admin httpd", "Dell", "bmc"),
    ("service=http; product=Siemens Simatic HMI MiniWeb httpd", "Siemens", "hmi"),
    ("service=http; product=WebCTRL building automation http ui", None, "bms_controller"),
    # the product first: a switch whose extra words mention a print server's card
    ("service=telnet; product=HP ProCurve Switch telnetd; info=JetDirect", "HP", "switch"),
    # a generic web server names nothing; its extra words name the device
    ("service=http; product=Allegro RomPager; info=APC switched rack PDU http config",
     "APC", "pdu"),
    # nmap's bucket for many kinds yields to the line's own words...
    ("service=rtsp; product=Hikvision DVR rtspd; devicetype=media device", "Hikvision",
     "video_recorder"),
    ("service=http; product=Polycom HDX videoconferencing system httpd; devicetype=webcam",
     "Polycom", "video_conferencing"),
    ("service=telnet; product=Elster electricity meter telnetd; devicetype=power-device",
     "Elster", "meter"),
    # nmap's 'phone' is a mobile's, but for the cordless desk phones its words name
    ("service=http; product=AirDroid httpd; devicetype=phone", None, "mobile"),
    ("service=http; product=Snom DECT phone http admin; devicetype=phone", "Snom",
     "voip_phone"),
    # nmap's 'power-misc' is a solar logger or a power switch more often than a UPS
    ("service=http; product=SMA Sunny WebBox; devicetype=power-misc", "SMA", None),
    ("service=http; product=Digital Loggers Web Power Switch; devicetype=power-misc", None,
     "pdu"),
    # nmap's 'remote management' is a server's controller, or remote-control software
    ("service=telnet; devicetype=remote management; product=IBM Integrated Management "
     "Module telnetd", "IBM", "bmc"),
    ("service=telnet; devicetype=remote management; product=Sun Advanced Lights Out "
     "Manager telnetd", None, "bmc"),
    ("service=radmin; devicetype=remote management; product=Remote Administrator Control",
     None, None),  # Radmin, on a PC
    # nmap's 'security-misc' is a firewall, a fingerprint reader, an alarm or a scanner
    ("service=http; devicetype=security-misc; product=McAfee Web Gateway httpd", None,
     "firewall"),
    ("service=telnet; devicetype=security-misc; product=ZKSoftware ZEM500 fingerprint reader "
     "telnetd", None, "access_control"),
    ("service=http; devicetype=security-misc; product=Rapid7 NeXpose http config", None,
     None),  # a vulnerability scanner's server
    # ... a type of its own does not, and stands where the words name none
    ("service=http; product=Cisco ATA 186 httpd; devicetype=VoIP adapter", "Cisco",
     "voip_gateway"),
    ("service=http; product=Roku debug terminal; devicetype=media device", "Roku",
     "media_player"),
])
def test_nmaps_words_for_what_answered_name_it(value: str, vendor: str | None,
                                               device_type: str | None) -> None:
    assert _named(value) == (vendor, device_type)


@pytest.mark.parametrize(("value", "vendor", "device_type"), [
    # nmap's words for its kinds, found in the lines it gives no type
    ("service=telnet; product=Avaya switch telnetd", "Avaya", "switch"),
    ("service=http; product=D-Link WAP http config", "D-Link", "access_point"),
    ("service=http; product=Enterasys RoamAbout WAP router http config", "Enterasys",
     "router"),  # a router with a wireless access point is a router
    ("service=http; product=Panasonic WJ-HD316 Digital Disk Recorder", "Panasonic",
     "video_recorder"),
    ("service=http; product=HP Remote Lights-Out http config", "HP", "bmc"),
    ("service=telnet; product=LSI Series 4 RAID controller logind", None, "nas"),
    ("service=http; product=BlackBox LWU0200-POE-M ethernet-optical bridge http config", None,
     "network_appliance"),
    ("service=http; product=Allot NetEnforcer bandwidth management http config", None,
     "network_appliance"),
    ("service=http; product=Trane Tracer Summit building control httpd", None,
     "bms_controller"),
    ("service=http; product=YouLess LS110 energy monitor http admin", None, "meter"),
    ("service=telnet; product=Koukaam NETIO-230A power controller telnetd", None, "pdu"),
    ("service=http; product=Sony NSZ-GS7 multimedia receiver httpd", "Sony", "media_player"),
    ("service=http; product=SiliconDust HDHomeRun set top box http admin", None,
     "media_player"),
    ("service=http; product=Bosch Divar closed circuit camera http config", "Bosch", "camera"),
    ("service=telnet; product=Aaxeon DevoLinx Ethernet-Serial bridge telnetd", None,
     "network_appliance"),
    ("service=http; product=TP-LINK powerline extender http config", "TP-Link",
     "network_appliance"),
    ("service=telnet; product=Hughes HN7000S Satellite Modem telnetd", None, "modem"),
    ("service=ftp; product=Infortrend EonStor DS iSCSI host ftpd", None, "nas"),
    ("service=http; product=Lime Technology unRAID Server httpd", None, "nas"),
])
def test_nmaps_words_for_its_kinds_name_them(value: str, vendor: str | None,
                                             device_type: str) -> None:
    assert _named(value) == (vendor, device_type)


def test_a_wap_gateway_is_no_access_point_and_a_switch_elsewhere_no_network_switch() -> None:
    assert _named("service=wap-wsp; product=Nokia WAP gateway") == (None, None)
    with without_recog():  # 'switch' alone is a network switch in nmap's words, not a title's
        assert classify([Observation(key="http.title", value="Avaya switch")]
                        ).device_type is None


@pytest.mark.parametrize("value", [
    # software that runs on a PC or a server: no kind, and its maker makes no device here
    "service=http; product=VLC media player http interface",
    "service=http; product=foobar2000 media player httpd",
    "service=patrol; product=BMC Patrol Agent",
    "service=http; product=BMC/Marimba Management http config",
    "service=ups; product=Network UPS Tools upsd",
    "service=http; product=Tiny Personal Firewall",
    "service=http; product=Agnitum Outpost Firewall control",
    "service=sip; product=OpenIMSCore SIP EXpress router",
    "service=sip; product=SIP Express Router",
    "service=smtp; product=Multi Router Traffic Grapher smtp statistics",
    "service=vnc; product=Ultr@VNC Repeater",
    "service=http; product=Yawcam webcam viewer httpd",
    "service=smtp; product=Microsoft Exchange 2010 log copier",
    "service=imap; product=Sun Solstice Internet Mail Server imapd",
    "service=synergy; product=Synergy KVM",
    "service=kvm; product=KVM daemon",
    "service=http; product=HP Linux Imaging and Printing System",
    "service=http; product=WePrint printer sharing server",
    "service=http; product=Google Video Server",
    "service=oracle; product=Oracle DBSNMP",
    "service=http; product=Apache httpd; version=2.4.62; info=(Debian)",
])
def test_software_nmap_names_stays_unnamed(value: str) -> None:
    assert _named(value) == (None, None)
    # the device words that would have named a kind read every description, not nmap's
    # alone: the same product as a page's title names no kind either
    product = dict(p.split("=", 1) for p in value.split("; "))["product"]
    with without_recog():
        assert classify([Observation(key="http.title", value=product)]).device_type is None


def test_the_table_says_nmaps_words_named_the_device() -> None:
    """The technician's table says which source named a device: nmap's type, or our rules
    reading nmap's words (not 'the device's own words': nmap wrote them)."""
    with without_recog():
        words = classify([Observation(key="nmap.match",
                                      value="service=http; product=Hikvision IP camera httpd")])
        typed = classify([Observation(key="nmap.match",
                                      value="service=ftp; devicetype=printer; product=x ftpd")])
    assert words.to_dict()["named_by"] == "nmap.match (nmap's words)"
    assert typed.to_dict()["named_by"] == "nmap.match (nmap)"


def test_westells_versalink_is_no_xerox_printer() -> None:
    assert _named("service=http; product=RapidLogic httpd; info=Westell VersaLink WAP http "
                  "config") != ("Xerox", "printer")
    assert _named("service=http; product=Xerox VersaLink C405 httpd") == ("Xerox", "printer")


@pytest.mark.skipif(shutil.which("nmap") is None, reason="needs the nmap package")
def test_the_installed_database_names_real_banners() -> None:
    nmap_probes.database.cache_clear()
    axis = nmap_probes.identify(b"220 AXIS P1375 Network Camera 10.12.114 (2023) ready.\r\n",
                                "banner")
    assert axis is not None and "devicetype=webcam" in axis
    printer = nmap_probes.identify(b"220 KONICA MINOLTA FTP server ready.\r\n", "banner")
    assert printer is not None and "devicetype=printer" in printer
    assert nmap_probes.release() is not None

"""Fingerprints test themselves: every bundled rule against its examples, every broken rule
file with its named error, and the classifier's way of weighing evidence."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fingerprints.classify import Observation, classify, classify_device, match
from fingerprints.databases import without_recog
from fingerprints.rules import parse, verify, verify_file, vocabulary

BAD = Path(__file__).parent / "bad"
BUNDLED = sorted(p.name for p in resources.files("fingerprints").joinpath("rules").iterdir()
                 if p.name.endswith(".toml"))


def _built_in(key: str, value: str) -> tuple[str | None, str | None]:
    """(vendor, type) for one string by the built-in rules alone."""
    with without_recog():
        identity = classify([Observation(key=key, value=value)])
    return identity.vendor, identity.device_type


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_rule_file_verifies(name: str) -> None:
    text = resources.files("fingerprints").joinpath("rules", name).read_text()
    assert verify_file(parse(text, name)) == []


@pytest.mark.parametrize("path", sorted(BAD.glob("*.toml")), ids=lambda p: p.stem)
def test_each_broken_rule_file_fails_with_its_named_error(path: Path) -> None:
    errors = verify([path])
    assert [e.code for e in errors] == [path.stem], [str(e) for e in errors]


def test_the_name_tables_beside_the_rules_verify_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The maker table and the other vocabularies' tables are checked with the rules: a
    maker listed both as a maker of one kind and of many (Cambium Networks was), a kind
    the vocabulary lacks, and a table that does not read are each named; `verify` had
    passed a maker table that did not parse."""
    from fingerprints import rules

    assert rules.verify_tables() == []
    real_map, real_list = rules.name_map, rules.name_list

    def one_kind(file: str, table: str) -> dict[str, str]:
        if table == "vendors":
            return {"cambium networks": "access_point", "acme": "toaster"}
        return real_map(file, table)

    monkeypatch.setattr(rules, "name_map", one_kind)
    monkeypatch.setattr(rules, "name_list", lambda file, table: ("Cambium Networks", "NEC"))
    assert sorted(e.code for e in rules.verify_tables()) == ["maker-both", "table-kind"]
    assert {e.code for e in rules.verify()} >= {"maker-both", "table-kind"}

    def unreadable(file: str, table: str) -> dict[str, str]:
        if file == "vendor_types.toml":
            raise tomllib.TOMLDecodeError("Cannot overwrite a value (at line 196, column 32)")
        return real_map(file, table)

    monkeypatch.setattr(rules, "name_map", unreadable)
    monkeypatch.setattr(rules, "name_list", real_list)
    assert [e.code for e in rules.verify_tables()] == ["table-syntax"] * 2


def test_one_file_per_match_key_and_the_cli_verifies() -> None:
    keys = [parse(resources.files("fingerprints").joinpath("rules", n).read_text(), n).key
            for n in BUNDLED]
    assert len(keys) == len(set(keys))
    done = subprocess.run([sys.executable, "-m", "fingerprints", "verify"], capture_output=True,
                          text=True)
    assert done.returncode == 0 and "all rules verified" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "fingerprints", "verify", str(BAD / "shadowed.toml")],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "shadowed" in bad.stderr


def test_agreeing_evidence_adds_up_and_conflicts_stay_visible() -> None:
    identity = classify([
        Observation(key="ftp.banner", value="220 AXIS P1375 Network Camera 10.12.114 (2023) ready."),
        Observation(key="http.title", value="AXIS"),
        Observation(key="http.server", value="App-webs/"),  # says Hikvision: a conflict
    ])
    assert identity.vendor == "Axis Communications"
    assert identity.device_type == "camera"
    assert identity.model == "P1375"
    assert identity.confidence > 0.7  # two agreeing sources count more than either
    assert any("Hikvision" in c for c in identity.conflicts)
    assert {e.key for e in identity.evidence} == {"ftp.banner", "http.title", "http.server"}


def test_generic_software_does_not_lend_its_version_to_the_device() -> None:
    identity = classify([Observation(key="http.title", value="Danfoss ECL Comfort 296"),
                         Observation(key="http.server", value="lighttpd/1.4.35")])
    assert (identity.vendor, identity.model, identity.version) == ("Danfoss", "ECL Comfort 296",
                                                                   None)
    alone = classify([Observation(key="http.server", value="lighttpd/1.4.35")])
    assert (alone.product, alone.version) == ("lighttpd", "1.4.35")


def test_nothing_matched_is_an_empty_identity() -> None:
    assert classify([Observation(key="ssh.banner", value="hello")]).to_dict() == {}
    assert match("ssh.banner", "x" * 100_000) is None  # bounded, and no catastrophic regex


def test_match_command_reads_lines_and_json_literals() -> None:
    lines = "SSH-2.0-dropbear_2019.78\n" + json.dumps("SSH-2.0-ROSSSH\r\n") + "\nnothing\n"
    done = subprocess.run([sys.executable, "-m", "fingerprints", "match", "ssh.banner"],
                          input=lines, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert out[0]["product"] == "Dropbear sshd" and out[0]["version"] == "2019.78"
    assert out[1]["vendor"] == "MikroTik" and out[1]["device_type"] == "router"
    assert out[2] == {}
    unknown = subprocess.run([sys.executable, "-m", "fingerprints", "match", "x.y"], input="",
                             capture_output=True, text=True)
    assert unknown.returncode == 2


def test_accuracy_report_runs_on_the_labelled_corpus() -> None:
    from fingerprints.accuracy import render, report

    result = report(Path(__file__).parent / "corpus.toml")
    assert sum(t.samples for t in result.by_source.values()) >= 30
    table = render(result.by_source, row_name="source")
    assert table.splitlines()[-1].startswith("| corpus | **all** |")
    # an unlabelled generic server must stay unnamed: no miss may claim a vendor for one
    assert not any("nginx" in m or "vsFTPd" in m for m in result.misses)


def test_one_product_is_one_kind_of_device_in_every_rule_file() -> None:
    """A product named by rules of several keys gets one kind from all of them: the Hue
    bridge was a light by its DHCP name, mDNS, cloud and OUI but a hub by its SSDP server,
    so every bridge showed a conflict and a hub won. Product lines that span kinds (WeMo:
    plugs, sensors, a bridge; IOS: switches and routers) are named here on purpose."""
    from fingerprints.rules import rules_by_key

    spans_kinds = {("Belkin", "WeMo"), ("Cisco", "IOS")}
    kinds: dict[tuple[str | None, str], set[str]] = {}
    for rules in rules_by_key().values():
        for rule in rules:
            product, kind = rule.fixed.get("product"), rule.fixed.get("device_type")
            if product and kind:
                kinds.setdefault((rule.fixed.get("vendor"), product), set()).add(kind)
    assert {p: k for p, k in kinds.items() if len(k) > 1 and p not in spans_kinds} == {}
    makers: dict[str, set[str | None]] = {}
    for rules in rules_by_key().values():
        for rule in rules:
            if rule.fixed.get("product"):
                makers.setdefault(rule.fixed["product"], set()).add(rule.fixed.get("vendor"))
    assert {p: m for p, m in makers.items() if len(m) > 1} == {}  # one spelling of its maker


def test_a_maker_is_spelled_one_way() -> None:
    """'LG' in one file and 'LG Electronics' in another split one TV's support in two and
    show a conflict. A maker whose name starts another's is a sub-brand named on purpose."""
    from fingerprints.rules import rules_by_key

    brands = {("Cisco", "Cisco Meraki"), ("Google", "Google Nest"), ("HPE", "HPE Aruba")}
    makers = sorted({rule.fixed["vendor"] for rules in rules_by_key().values()
                     for rule in rules if rule.fixed.get("vendor")})
    split = [(a, b) for a in makers for b in makers
             if b.lower().startswith(f"{a.lower()} ") and (a, b) not in brands]
    assert split == []


@given(st.sampled_from(sorted(vocabulary().keys)),
       st.one_of(st.text(max_size=400), st.text(alphabet="ab-_.; =:/()0123456789AaBbSsHh\\\"'",
                                                  max_size=400)))
@settings(max_examples=600, deadline=None)
def test_any_string_under_any_key_is_classified_without_error(key: str, said: str) -> None:
    """Devices are untrusted: whatever a string holds, under whatever key, the classifier
    answers (every reader: field forms, instance names, model entries, maker domains and
    user agents) and never raises."""
    found = classify([Observation(key=key, value=said)])
    assert found.confidence >= 0.0
    assert isinstance(found.to_dict(), dict)


@pytest.mark.parametrize(("key", "banner", "vendor", "device_type"), [
    ("ftp.banner", "KM2A9F3C FTP server (KM FTPD version 1.00) ready.", "Konica Minolta",
     "printer"),
    ("ftp.banner", "220 BRW0080927AFBCE FTP server ready.", "Brother", "printer"),
    ("telnet.banner", "\r\nNPI2B9C1E login: \r\n", "HP", "printer"),
    ("ftp.banner", "files.example.org FTP server (Version 6.4/OpenBSD) ready.", None, None),
    ("telnet.banner", "Ubuntu 22.04 LTS\nbackup login: ", None, None),
    ("tls.subject", "CN=EPSON3A4B5C,OU=Network", "Epson", "printer"),  # a self-made cert
    ("tls.subject", "CN=SEP00AABB112233,O=TemporaryDefaultCertificate", "Cisco", "voip_phone"),
    ("tls.subject", "CN=www.example.org,O=Example Ltd", None, None),
    ("tls.subject", "CN=*.device0123456.remotewd.com,O=Acme", "Western Digital", "nas"),
])
def test_a_factory_host_name_greeting_in_a_banner_names_the_device(
        key: str, banner: str, vendor: str | None, device_type: str | None) -> None:
    """Many FTP servers and telnet prompts greet with the device's host name: a printer's
    factory name there (KM<MAC>, BRW<MAC>, NPI<MAC>) says what it says in DHCP."""
    identity = classify([Observation(key=key, value=banner)])
    assert (identity.vendor, identity.device_type) == (vendor, device_type)


@pytest.mark.parametrize(("key", "value", "device_type"), [
    ("http.server", "IP_Camera_Server/2.1", "camera"),
    ("sip.user_agent", "Conference_Phone_C300 V2.4", "voip_phone"),
    ("http.server", "UPS_Web/1.0", "ups"),
    ("http.server", "my_web_server/1.0", None),
    ("http.server", "Camera_Web_Server", "camera"),  # a camera's server says camera last
])
def test_a_device_s_own_words_joined_by_underscores_are_its_words(
        key: str, value: str, device_type: str | None) -> None:
    assert classify([Observation(key=key, value=value)]).device_type == device_type


@pytest.mark.parametrize(("key", "value", "network_switch"), [
    ("snmp.sysdescr", "Foundry Networks, Inc. Switch, IronWare Version 08.0.01", True),
    ("lldp.sysdescr", "Dell PowerConnect M6220 Integrated Switch", True),
    ("snmp.sysdescr", "Raritan Dominion KX III Console Switch", False),
    ("snmp.sysdescr", "APC Automatic Transfer Switch AP4421", False),
    ("http.title", "Shelly Switch", False),  # a smart relay: 'switch' alone is SNMP's only
    ("mdns.txt", "md=Smart Wall Switch", False),
])
def test_switch_alone_is_network_gear_only_where_network_gear_describes_itself(
        key: str, value: str, network_switch: bool) -> None:
    said = classify([Observation(key=key, value=value)]).device_type
    assert (said == "switch") is network_switch


def test_a_upnp_device_s_web_server_header_is_read_as_its_ssdp_server() -> None:
    """A UPnP device's web server sends the Server header it announces in SSDP: a Sonos
    speaker's 'Linux UPnP/1.0 Sonos/...' named it in SSDP and nothing in HTTP."""
    said = "Linux UPnP/1.0 Sonos/72.2-32070 (ZPS9)"
    by_ssdp = classify([Observation(key="ssdp.server", value=said)])
    by_http = classify([Observation(key="http.server", value=said)])
    assert (by_http.vendor, by_http.device_type) == (by_ssdp.vendor, by_ssdp.device_type) == (
        "Sonos", "media_player")
    # a web server's own rules still come first
    assert classify([Observation(key="http.server", value="Hikvision-Webs")]).vendor == "Hikvision"


@pytest.mark.parametrize(("names", "vendor", "device_type"), [
    (["m4.iotcplatform.com"], None, "camera"),  # a P2P relay: the kind, no maker
    (["api.wyzecam.com", "m4.iotcplatform.com"], "Wyze", "camera"),  # the maker's beside it
    (["fw.ring.com", "api.wyzecam.com"], None, None),  # two makers: a resolver, or an app
])
def test_a_camera_platform_s_relay_names_the_kind_and_no_maker(
        names: list[str], vendor: str | None, device_type: str | None) -> None:
    """Cheap cameras of many makers call the same P2P relay (ThroughTek's Kalay, Yoosee):
    it names the kind. Counted as a maker, it set aside the maker's own cloud beside it."""
    identity = classify([Observation(key="dns.query", value=n, source="dns") for n in names])
    assert (identity.vendor, identity.device_type) == (vendor, device_type)


@pytest.mark.parametrize(("value", "vendor", "device_type"), [
    ("Roku UPnP/1.0 MiniUPnPd/1.4", "Roku", "media_player"),
    ("Netgear/1.0 UPnP/1.0 miniupnpd/1.0", "Netgear", "router"),  # a maker of many kinds
    ("OpenWRT/23.05 UPnP/1.1 MiniUPnPd/2.3.3", None, "router"),
    ("Hikvision-Webs/1.0 UPnP/1.0", "Hikvision", "camera"),  # with its web server's word
])
def test_a_maker_in_a_upnp_server_line_outweighs_the_generic_software_after_it(
        value: str, vendor: str | None, device_type: str) -> None:
    """UPnP's SERVER is 'OS/version UPnP/1.0 product/version'; many firmwares put their
    maker where the OS goes. A Roku running MiniUPnPd was a router by the daemon's usual
    kind; the maker's own kind now outweighs generic software's, where the maker makes one."""
    identity = classify([Observation(key="ssdp.server", value=value)])
    assert (identity.vendor, identity.device_type) == (vendor, device_type)
    if vendor == "Roku":  # a web server's header names the maker the same way
        identity = classify([Observation(key="http.server", value=value)])
        assert (identity.vendor, identity.device_type) == (vendor, device_type)


@pytest.mark.parametrize(("key", "value", "device_type"), [
    ("mdns.instance", "Mette’s iPad", "mobile"),  # iOS's own naming, a curly apostrophe
    ("mdns.instance", "Lærerens iPad (2)", "mobile"),  # Danish: no apostrophe; a second one
    ("mdns.instance", "Peters MacBook Air", "workstation"),
    ("dhcp.hostname", "Mettes-Galaxy-S23", "mobile"),  # an owner's name before the model
    ("mdns.instance", "iPad Stand", None),
    ("mdns.txt", "model=J217AP", "mobile"),  # an iPad Pro's board
    ("mdns.txt", "model=J313AP", "workstation"),  # a MacBook Air's
    ("mdns.txt", "model=J999AP; osxvers=25", None),  # a Mac the list does not know: no iPad
    ("mdns.txt", "model=J305AP", "media_player"),  # an Apple TV's
])
def test_a_device_named_by_its_owner_or_its_board_is_the_kind_it_names(
        key: str, value: str, device_type: str | None) -> None:
    """Phones, tablets and laptops are named after their owners, with spaces and
    apostrophes in mDNS and hyphens in DHCP: only the hyphen form was read. A J board is an
    iPad or a Mac: only Apple TVs' were read; a Mac says osxvers beside it."""
    assert classify([Observation(key=key, value=value)]).device_type == device_type


@pytest.mark.parametrize(("value", "vendor", "device_type"), [
    ("IPC2124LE-ADF28KM-G", "Uniview", "camera"),  # the cameras municipal sites buy
    ("NVR302-08S", "Uniview", "video_recorder"),
    ("DIVAR IP 5000", "Bosch", "video_recorder"),
    ("Wisenet WebViewer", "Hanwha Vision", "camera"),
    ("GV-EBD4700", "GeoVision", "camera"),
    ("MS-C2964-PB", "Milesight", "camera"),
    ("Sony SNC-EM600", "Sony", "camera"),
    ("WV-S2131L", "i-PRO", "camera"),
    ("Pelco Sarix", "Pelco", "camera"),
    ("IPC-HDW2431T-AS-S2", "Dahua", "camera"),  # Dahua's IPC, with its hyphen, stays Dahua's
    ("Network Camera FD9387-HTV", "Vivotek", "camera"),  # the kind was named, not the maker
    ("IB9365-EHT", "Vivotek", "camera"),
    ("VIVOTEK ND9541P", "Vivotek", "video_recorder"),
])
def test_the_cameras_and_recorders_of_more_makers_are_named_by_model(
        value: str, vendor: str | None, device_type: str | None) -> None:
    """Cameras and recorders by their model numbers: none of these named a kind."""
    assert _built_in("http.title", value) == (vendor, device_type)


@pytest.mark.parametrize(("value", "vendor", "device_type"), [
    ("Poly Studio X50", "Poly", "video_conferencing"),  # a video bar, not Poly's usual phone
    ("Yealink MeetingBoard 65", "Yealink", "video_conferencing"),
    ("Logitech Rally Bar", "Logitech", "video_conferencing"),
    ("Rally", None, None),  # a word
    ("Blue Iris", None, "video_recorder"),  # the recorder behind a site's cameras
    ("Nx Witness", None, "video_recorder"),
])
def test_a_meeting_room_and_a_video_management_server_are_named_by_their_products(
        value: str, vendor: str | None, device_type: str | None) -> None:
    """A meeting room's video bar was its maker's usual kind (Poly's and Yealink's phones)
    or nothing; a video management server's page named nothing."""
    assert _built_in("http.title", value) == (vendor, device_type)


@pytest.mark.parametrize(("value", "vendor", "device_type"), [
    ("Wemo.Mini.AB1", "Belkin", "smart_plug"),  # a Wemo with its model after the name
    ("WYZECP1_JEF", "Wyze", "camera"),  # a camera's model id as its host name
    ("ccu3-webui", "eQ-3", "iot_hub"),  # a HomeMatic CCU3's own host name
    ("MAX-Cube", "eQ-3", "iot_hub"),
    ("lightify-1a2b3c", "LEDVANCE", "lighting"),
    ("homeassistant", None, "iot_hub"),  # Home Assistant OS on a Pi
    ("Hubitat", "Hubitat", "iot_hub"),  # a hub's maker, who makes nothing else
    ("octopi", None, "printer"),  # OctoPrint's, a 3D printer's controller
    ("kindle-8f3a1c2d5", "Amazon", "mobile"),
    ("SamsungTV", None, "smart_tv"),
    ("iptv", None, None),  # a set-top box's word, not a maker's TV
    ("Canon-MF745C", "Canon", "printer"),  # a hyphen where the model said a space
    ("EPSON-ET-2750", "Epson", "printer"),
    ("ihoment_H6159_A1B2", "Govee", "lighting"),  # Govee's lights by their maker's name
    ("roomba-3174C10860326520", "iRobot", None),  # a newer Roomba, in lower case
    ("LAPTOP-K4J8D2QF", None, "workstation"),  # Windows' own name for a laptop: eight after
    ("ultimakersystem-ccbdd30045f1", "Ultimaker", "printer"),  # a school's 3D printer
    # a server room's factory names: management controllers and a NAS before renaming
    ("ILOCZJ3320ABC", "HPE", "bmc"),
    ("idrac-7XK2QB2", "Dell", "bmc"),
    ("XCC-7X06-J30ABCDE", "Lenovo", "bmc"),
    ("NASC0A1B2", "QNAP", "nas"),
    ("NASBOX", None, None),  # someone's own name
    ("ubnt", "Ubiquiti", None),
    # devices of the public captures: a Samsung SmartCam, Nanoleaf's panels by their names
    ("SNH-V6414BN", "Hanwha Vision", "camera"),
    ("Nanoleaf-Light-Panels", "Nanoleaf", "lighting"),
    ("Nanoleaf-fan-club", None, None),
])
def test_a_smart_home_s_hubs_and_a_home_office_s_devices_are_named_by_their_host_names(
        value: str, vendor: str | None, device_type: str | None) -> None:
    """Host names that the devices' own firmware or distribution give them: none of these
    named a kind (a Canon's and an Epson's were read with a space only)."""
    assert _built_in("dhcp.hostname", value) == (vendor, device_type)


@pytest.mark.parametrize(("key", "value", "vendor", "device_type"), [
    ("dns.query", "aiot-rpc-ger.aqara.com", "Aqara", "iot_hub"),  # a maker of one kind
    ("http.title", "Aqara Hub M2", "Aqara", "iot_hub"),
    ("dns.query", "lbo.ecouser.net", "Ecovacs", None),  # a robot vacuum: no kind for it
    ("tls.sni", "api-eu.roborock.com", "Roborock", None),
    ("dns.query", "aqara.example.org", None, None),  # only the maker's own domain
])
def test_the_clouds_of_more_makers_in_public_captures_name_their_devices(
        key: str, value: str, vendor: str | None, device_type: str | None) -> None:
    """Hubs and vacuums in public IoT captures whose makers were unknown to the rules."""
    assert _built_in(key, value) == (vendor, device_type)


@pytest.mark.parametrize(("key", "value", "vendor", "device_type"), [
    ("mdns.txt", "md=Hue Bridge; id=001788fffe123456", "Signify", "lighting"),
    ("mdns.txt", "md=SHSW-25", "Shelly", "smart_plug"),  # a Shelly 2.5's first-generation id
    ("mdns.txt", "md=SHHT-1", "Shelly", "sensor"),
    ("mdns.txt", "md=Nest Hub; fn=Kitchen display", "Google", "media_player"),
    ("mdns.txt", "model=Samsung Galaxy S21", "Samsung", "mobile"),
    ("mdns.instance", "Home", None, None),  # a word, not Google's speaker
    ("mdns.txt", "md=Galaxy Watch4", None, None),  # a watch is no phone
])
def test_a_txt_record_s_model_names_the_device_it_is(
        key: str, value: str, vendor: str | None, device_type: str | None) -> None:
    """A HomeKit or Cast record's model: a Hue bridge's words, Shelly's first-generation ids,
    a Nest Hub without 'Google' before it, a Galaxy phone outside DHCP named nothing."""
    assert _built_in(key, value) == (vendor, device_type)


@pytest.mark.parametrize(("value", "vendor", "device_type"), [
    ("Galaxy-S21-5G", "Samsung", "mobile"),  # the 5G after a Galaxy S's number
    ("Galaxy-Tab-S7-FE", "Samsung", "mobile"),
    ("Redmi-Note-8T", "Xiaomi", "mobile"),
    ("POCO-X3-Pro", "Xiaomi", "mobile"),
    ("OnePlus-Nord-CE-5G", "OnePlus", "mobile"),
    ("HUAWEI_Mate_20_Pro-0a1b2c3d", "Huawei", "mobile"),
    ("HONOR_9X-1a2b3c4d", "Honor", "mobile"),
    ("HUAWEI_HG8245", None, None),  # a Huawei fibre router's own name is no phone
    ("Redmi-Router-AX6", None, "router"),  # nor Xiaomi's router
])
def test_an_android_phone_is_named_by_the_device_name_it_sends(
        value: str, vendor: str | None, device_type: str | None) -> None:
    """Android 10 and later send the phone's device name as its DHCP host name (its MAC is
    random, so the name is often all there is): only Samsung's, Google's and the old
    'android-' names were read, and a Galaxy S's 5G suffix was not."""
    assert _built_in("dhcp.hostname", value) == (vendor, device_type)


def _with_and_without_recog(key: str, value: str) -> list[tuple[str | None, str | None]]:
    """(vendor, type) for one string, with recog loaded (as the suite runs) and without: a
    test of the built-in rules must not pass on recog's answer alone."""
    identity = classify([Observation(key=key, value=value)])
    return [(identity.vendor, identity.device_type), _built_in(key, value)]


@pytest.mark.parametrize(("key", "value", "vendor", "device_type"), [
    ("tls.subject", "CN=FGT60FTK20012345,O=Fortinet", "Fortinet", "firewall"),  # a serial
    ("tls.subject", "CN=vdi01.kommune.local,OU=VMware Horizon View default certificate,"
     "O=VMware\\, Inc.", "VMware", None),  # a VDI connection server, no hypervisor
    ("http.server", "PanWeb Server/ -", "Palo Alto Networks", "firewall"),
    ("snmp.sysdescr", "NetScaler NS14.1: Build 12.30.nc, Date: Feb 1 2024", "Citrix",
     "network_appliance"),
    ("tls.subject", "CN=securelogin.arubanetworks.com,OU=Instant,O=Aruba Networks,C=US",
     "Aruba", "access_point"),
    ("snmp.sysdescr", "Lantronix XPort Pro V5.2.0.0R8 (1234)", "Lantronix", "network_appliance"),
    ("snmp.sysdescr", "Lantronix EPS1 Version V3.6/5(010208)", "Lantronix", "printer"),
    ("sip.server", "Cisco-SIPGateway/IOS-17.9.4a", "Cisco", "router"),
    ("telnet.banner", "Model name       : MiiNePort E3\r\n", None, "network_appliance"),
    ("telnet.banner", "EDR-G9010 login: ", None, "router"),  # Moxa's industrial router
    ("snmp.sysdescr", "Unisys UDS544 version NS.NP.N219", None, None),  # not a device server
    ("http.title", "Citrix NetScaler Insight Center", None, None),  # a management VM
    # the small switches in a school's or a care home's cupboard, by model alone
    ("snmp.sysdescr", "Allied Telesis AT-x230-18GP", "Allied Telesis", "switch"),
    ("http.title", "GS108Ev3", "Netgear", "switch"),
    ("snmp.sysdescr", "AT-AR3050S", "Allied Telesis", "router"),
    # a server room's power and climate, by their cards' and lines' names
    ("http.title", "Network-M2", None, "ups"),  # Eaton's UPS card
    ("http.title", "NetMan 204", None, "ups"),  # Riello's
    ("http.title", "Raritan PX3", "Raritan", "pdu"),
    ("http.title", "AKCP sensorProbe2", "AKCP", "sensor"),
    ("http.title", "TerraMaster TOS", "TerraMaster", "nas"),
    # what a FortiGate's, a Juniper's and an Aruba's network send as DHCP vendor class
    ("dhcp.vendor_class", "FortiAP", "Fortinet", "access_point"),
    ("dhcp.vendor_class", "FortiSwitch", "Fortinet", "switch"),
    ("dhcp.vendor_class", "Juniper-ex2300-24p", "Juniper", "switch"),
    ("dhcp.vendor_class", "Aruba AP", None, "access_point"),
    # a product line named first does not hide the model after it
    ("snmp.sysdescr", "JUNOS 21.4R3 qfx5120-48y-8c", "Juniper", "switch"),
    # a site's access points and gateway by the names they give themselves
    ("dhcp.hostname", "NWA1123ACv3", "Zyxel", "access_point"),  # a hardware revision after it
    ("dhcp.hostname", "UDM-Pro", "Ubiquiti", "router"),
    ("http.title", "UniFi Dream Machine SE", "Ubiquiti", "router"),
    ("dhcp.hostname", "USG-20W", None, None),  # Zyxel's USG numbers are not UniFi's
    # switches that were unnamed, or named their maker's usual kind
    ("snmp.sysdescr", "Huawei Versatile Routing Platform Software\r\nVRP (R) software, "
     "Version 5.170 (S5720 V200R019C10SPC500)\r\nHUAWEI S5720-28X-PWR-SI-AC", "Huawei",
     "switch"),
    ("snmp.sysdescr", "Dell EMC Networking N1548P, 6.6.0.2, Linux 4.14.138", "Dell", "switch"),
    ("snmp.sysdescr", "Ruckus Wireless, Inc. ICX7150-C12P, IronWare Version 08.0.95dT211",
     "Ruckus", "switch"),  # was Ruckus's access point
    ("snmp.sysdescr", "TP-Link T2600G-28TS", "TP-Link", "switch"),
    # ... and a plant room's industrial ones
    ("snmp.sysdescr", "Moxa EDS-408A", "Moxa", "switch"),
    ("snmp.sysdescr", "Cisco IE-3300-8T2S", "Cisco", "switch"),
    ("snmp.sysdescr", "Westermo Lynx 3510", "Westermo", "switch"),
    ("snmp.sysdescr", "Hirschmann RSP35", "Hirschmann", "switch"),
    ("snmp.sysdescr", "IBM DS4400", "IBM", None),  # IBM's storage, not a Synology
    ("http.title", "Meraki MV12", "Cisco Meraki", "camera"),
    ("snmp.sysdescr", "Meraki MX84 Cloud Managed Router", "Cisco Meraki", "firewall"),
    # a pumping station's remote access
    ("http.title", "Moxa OnCell G3150A-LTE", "Moxa", "router"),
    ("http.title", "Phoenix Contact mGuard", "Phoenix Contact", "firewall"),
    ("http.title", "Nedap AEOS", "Nedap", "access_control"),
    ("http.title", "RS232 to Ethernet", None, None),  # a serial standard: neither Hirschmann's
    # letters (only after its name) nor a Synology RackStation
])
def test_the_appliances_in_front_of_a_municipality_s_servers_are_named(
        key: str, value: str, vendor: str | None, device_type: str | None) -> None:
    """Firewalls, load balancers and device servers often say only their product line or
    serial number (a FortiGate's certificate is its serial, FGT60F...): recog names some of
    these, the built-in rules none."""
    assert _with_and_without_recog(key, value) == [(vendor, device_type)] * 2


@pytest.mark.parametrize(("key", "value", "vendor", "device_type"), [
    ("http.title", "Loxone Miniserver", "Loxone", "bms_controller"),  # maker, no model number
    ("http.title", "Kamstrup READy Manager", "Kamstrup", "meter"),
    ("http.title", "Siemens Climatix", "Siemens", "bms_controller"),  # a line, a maker of many
    ("snmp.sysdescr", "Trend IQ4NC", "Trend Control Systems", "bms_controller"),  # its maker too
    ("http.server", "Saia PCD3.M5540/1.24.69", "Saia", "bms_controller"),
    ("http.title", "PowerLogic ION7650", None, "meter"),
    ("http.title", "Tunstall Communicall Vi", "Tunstall", "medical"),  # a care home's nurse call
    ("dhcp.vendor_class", "Ascom i63", "Ascom", "voip_phone"),  # a care home's Wi-Fi handset
    ("dhcp.hostname", "IPBS2-4c-5d-6e", "Ascom", "voip_gateway"),  # ... and its DECT base
    ("http.title", "Spectralink IP-DECT Server 400 - Administration", "Spectralink",
     "voip_gateway"),  # the server of a town hall's DECT phones, not a phone
    ("http.title", "KWS-1043N", None, None),  # a Clipcomm router, not KIRK's KWS server
    ("http.title", "XProtect Web Client", "Milestone Systems", "video_recorder"),
    ("snmp.sysdescr", "Danfoss AK-SM 720 System Manager", "Danfoss", "bms_controller"),
    ("http.title", "SALTO ProAccess SPACE", "SALTO Systems", "access_control"),
    ("ssdp.server", "Linux/4.9 UPnP/1.0 Roku/12.0", "Roku", "media_player"),  # UPnP's product
    ("http.title", "Kamstrup news and events for partners", None, None),  # a page about one
    ("http.server", "Niagara Web Server/3.8.401", "Tridium", "bms_controller"),  # a JACE
    ("http.title", "KNX IP Router 752", None, "bms_controller"),  # the building's bus, not
    ("http.title", "BACnet Router", None, "bms_controller"),  # ... the network's router
    ("http.title", "Siemens Desigo CC", "Siemens", "bms_controller"),
    ("http.title", "PXC4.E16", "Siemens", "bms_controller"),  # Desigo's newer controllers
    ("http.title", "Daikin Intelligent Touch Manager", None, "bms_controller"),
    ("http.title", "Carel pCOWeb", None, "bms_controller"),
    ("http.title", "Spyder IDE", None, None),  # Honeywell's Spyder only after its name
    # the switchboard's power meters and the controllers beside them
    ("http.title", "Janitza UMG 604-PRO", "Janitza", "meter"),
    ("http.title", "UMG 96RM-E", "Janitza", "meter"),
    ("http.title", "SENTRON PAC3200", "Siemens", "meter"),
    ("http.title", "PAC 1200 series", None, None),  # only SENTRON's numbers
    ("http.title", "Carlo Gavazzi EM24", "Carlo Gavazzi", "meter"),
    ("http.title", "WAGO Ethernet Web-Based Management", "WAGO", "plc"),
    ("http.title", "HomeMatic WebUI", "eQ-3", "iot_hub"),
    ("mdns.txt", "manufacturer=Lunatone Industrielle Elektronik GmbH",
     "Lunatone Industrielle Elektronik GmbH", "lighting"),  # a DALI gateway
])
def test_a_building_s_controllers_and_a_care_home_s_systems_are_named_by_their_lines(
        key: str, value: str, vendor: str | None, device_type: str | None) -> None:
    """Building controllers, meters and nurse-call systems say their maker and product line,
    seldom a kind or a model number: none of these was named, with recog or without."""
    assert _with_and_without_recog(key, value) == [(vendor, device_type)] * 2


@pytest.mark.parametrize(("key", "value", "vendor", "device_type"), [
    ("ftp.banner", "220 APC FTP server ready.", "APC", "ups"),  # the maker, then the service
    ("telnet.banner", "Blue Coat Telnet Service\r\nlogin: ", "Blue Coat", "network_appliance"),
    ("ftp.banner", "220 Welcome FTP service ready", None, None),  # a word, no maker
    ("ftp.banner", "220 JD FTP Server Ready", "HP", "printer"),  # a JetDirect card
    ("ftp.banner", "220 ZBR-20481 Version V72.20.21Z ready.", "Zebra", "printer"),
    ("sip.user_agent", "Cisco/SPA504G-7.6.2f", "Cisco", "voip_phone"),
    ("sip.server", "Grandstream UCM6302V1.3A 1.0.21.9", "Grandstream", "voip_gateway"),
    ("snmp.sysdescr", "Mitel 3300 PBX controller", "Mitel", "voip_gateway"),  # was
    ("sip.server", "STARFACE PBX", None, "voip_gateway"),  # ... Mitel's usual phone; nothing
    # the phone makers' other products, which were their usual phone: access points and
    # switches, analogue gateways, and the DECT bases of an office's cordless phones
    ("http.title", "Grandstream GWN7630", "Grandstream", "access_point"),
    ("http.title", "Grandstream GXW4248", "Grandstream", "voip_gateway"),
    ("http.title", "Gigaset N870 IP PRO", "Gigaset", "voip_gateway"),
    ("http.title", "Snom M700", "Snom", "voip_gateway"),
    ("http.title", "Snom M25", "Snom", "voip_phone"),  # a handset
    ("http.title", "Yealink W70B", "Yealink", "voip_gateway"),
    # a town hall's desk phones and a line's adapter, as their SIP agents write them
    ("sip.user_agent", "Panasonic-KX-UT136/01.133 (0080f0a1b2c3)", "Panasonic", "voip_phone"),
    ("sip.user_agent", "Desk_Phone_IP_CP710_V1 R7.1.0      SIP  230512", "Unify", "voip_phone"),
    ("sip.user_agent", "OBIHAI/OBi200-3.2.2.5898", "Poly", "voip_phone"),
    ("http.title", "Cisco Unified CM Console", None, "voip_gateway"),  # the call server
    ("http.server", "Cisco-CUCM", None, "voip_gateway"),
    # the exchanges town halls run: Mitel's MX-ONE and 3300, Unify's OpenScape, Avaya's Aura
    ("sip.server", "Mitel-3300-ICP 15.0.0.22", "Mitel", "voip_gateway"),
    ("http.title", "MX-ONE Provisioning Manager", "Mitel", "voip_gateway"),
    ("sip.user_agent", "OpenScape Business V3R2", "Unify", "voip_gateway"),
    ("sip.server", "Avaya CM/SM-10.1.0.2", "Avaya", "voip_gateway"),
    ("http.title", "Yeastar S50", "Yeastar", "voip_gateway"),
    ("http.www_authenticate", 'Digest realm="PLCM_SPIP", nonce="5f1a2b"', "Polycom",
     "voip_phone"),  # a SoundPoint's login, its realm all it says
    # a printer's web console, by its maker's name for it: often all its page title says
    ("http.title", "Web Image Monitor", "Ricoh", "printer"),
    ("http.title", "Command Center RX", "Kyocera", "printer"),
    ("http.title", "TopAccess", "Toshiba", "printer"),
    ("http.title", "SyncThru Web Service", "Samsung", "printer"),
    ("http.title", "PageScope Web Connection", "Konica Minolta", "printer"),
    ("http.title", "Remote UI: Login: iR-ADV C3530", "Canon", "printer"),
    ("tls.subject", "CN=HP Jetdirect 7A1B2C3D,O=Hewlett-Packard Co.", "HP", "printer"),
    ("snmp.sysdescr", "Datamax DMXrfNet Print Server compatible with an HP JETDIRECT EX",
     "Datamax", "printer"),  # another maker's card that speaks Jetdirect's protocol
])
def test_office_printers_phones_and_their_exchange_are_named_by_their_greetings(
        key: str, value: str, vendor: str | None, device_type: str | None) -> None:
    """A JetDirect's or a ZebraNet's FTP, an exchange (a PBX) and a small office's phones say
    their line or only their maker and the service: recog names most of these greetings, the
    built-in rules none, and Grandstream's exchange was a phone by its maker's usual kind."""
    assert _with_and_without_recog(key, value) == [(vendor, device_type)] * 2


@pytest.mark.parametrize(("key", "value", "vendor"), [
    ("dhcp.vendor_class", "BRIGHTSIGN XD1034", "BrightSign"),
    ("dhcp.vendor_class", "Brightsign HD1023", "BrightSign"),
    ("snmp.sysdescr", "DRAYTEK Vigor 2927 v4.4.2", "DrayTek"),
    ("dhcp.hostname", "mikrotik", "MikroTik"),
])
def test_a_maker_is_written_as_it_writes_itself_whatever_case_the_device_used(
        key: str, value: str, vendor: str) -> None:
    """A maker named by its description's first word or its host name was Title Cased
    ('Brightsign', 'Draytek'): one maker, two names in the inventory and its exports."""
    with without_recog():
        assert classify([Observation(key=key, value=value)]).vendor == vendor


@pytest.mark.parametrize(("value", "vendor", "device_type"), [
    ("CN=11111111,O=Samsung Techwin,C=KR", "Samsung Techwin", "camera"),
    ("CN=001788fffe000000,O=Philips Hue,C=NL", "Philips Hue", "lighting"),
    ("CN=x,O=Canary Connect,C=US", "Canary Connect", "camera"),
])
def test_a_line_of_a_maker_of_many_kinds_keeps_its_one_kind_when_named_first(
        value: str, vendor: str, device_type: str) -> None:
    """A maker-table line under a maker of many kinds ('Philips Hue', Samsung's old camera
    company) was spelled as its first word ('Philips'), which has no kind: the line's one
    kind was lost, and one rule naming 'Philips' was enough to lose it."""
    assert _built_in("tls.subject", value) == (vendor, device_type)


@pytest.mark.parametrize(("value", "vendor", "device_type"), [
    ("Cisco Internetwork Operating System Software", "Cisco", None),
    ("Blue Coat PacketShaper", "Blue Coat", "network_appliance"),
    ("Raritan Computer; CommandCenter Secure Gateway; Version 5.3", "Raritan", None),
    ("Linux backup 6.1.0-18-amd64 #1 SMP", None, None),
    ("3Com-NJ2000 - 3CNJ2000 v2.00.03", "3Com", None),  # a maker of many kinds, as it writes
    ("Siemens, SIMATIC NET, CP 343-1", "Siemens", "network_appliance"),  # a comma after the maker
    ("Westermo Lynx-3510-F4G-T4G-LV Industrial Ethernet Switch", "Westermo", "switch"),
    # one word of a maker's two-word name is not that maker: another company, or a word
    ("GE Fanuc RX3i CPE305", None, None),  # not GE Healthcare's monitor
    ("Fuji Electric FRENIC-MEGA 2", None, None),  # not Fuji Xerox's printer
    ("Universal Remote Control MX-990", None, None),  # not Universal Devices' hub
    ("FUJI XEROX DocuCentre-IV C2260", "Fuji Xerox", "printer"),  # both words: named
    ("Check Point FireWall-1 NG", "Check Point", "firewall"),
])
def test_a_firmware_s_description_names_its_maker_when_it_begins_with_it(
        value: str, vendor: str | None, device_type: str | None) -> None:
    """SNMP and LLDP descriptions are the firmware's words: a maker's whole name first names
    the maker, model number or not (one was needed). Raritan makes KVMs beside its PDUs:
    its name alone says no kind."""
    assert _built_in("snmp.sysdescr", value) == (vendor, device_type)


@pytest.mark.parametrize(("key", "value", "vendor"), [
    ("pjl.id", "LASERJET 4050", "HP"),
    ("dhcp.vendor_class", "Hewlett-Packard OfficeJet", "HP"),
    ("http.www_authenticate", 'Basic realm="SmartAX MT882"', "Huawei"),
    ("telnet.banner", "ZXHN H367N\r\nLogin:", "ZTE"),
    ("http.title", "Fireware XTM User Authentication", "WatchGuard"),
    ("http.title", "EdgeOS", "Ubiquiti"),
    ("snmp.sysdescr", "NetBotz RackBotz 400C Appliance", "NetBotz"),  # not APC's UPS
])
def test_a_product_line_names_its_maker_wherever_it_is_said(
        key: str, value: str, vendor: str | None) -> None:
    """A maker's registered name for its line (LaserJet, SmartAX, ZXHN, Fireware, EdgeOS)
    names the maker in any banner, realm or title; no rule read it without a model number."""
    with without_recog():
        assert classify([Observation(key=key, value=value)]).vendor == vendor


@pytest.mark.parametrize(("key", "value", "device_type"), [
    # a wireless LAN's controller is the access points', not a door's
    ("snmp.sysdescr", "HiPath Wireless Access Controller - C35, System Version 09.01.01.0001",
     "access_point"),
    ("snmp.sysdescr", "Door Access Controller v2", "access_control"),
    # a certificate's issuer is read with the subject's rules: a Cast device's CA
    ("tls.issuer", "CN=Chromecast ICA 8,OU=Cast,O=Google Inc,L=Mountain View,C=US",
     "media_player"),
    ("tls.issuer", "CN=Cast TV ICA (Sharp),OU=Cast,O=Google Inc,L=Mountain View,C=US",
     "smart_tv"),
    # an Axis encoder has a camera's letters; its words say what it is
    ("ftp.banner", "AXIS Q7411 Video Encoder 5.51.2 (2019) ready.", "video_recorder"),
    ("ftp.banner", "AXIS Q1615 Network Camera 9.80.1 (2022) ready.", "camera"),
    # an iPod touch's board is an N board like an iPhone's
    ("mdns.txt", "model=N112AP", "media_player"),
    ("mdns.txt", "model=N71AP", "mobile"),
    ("snmp.sysdescr", "HPE Comware Platform Software, Software Version 7.1.070", "switch"),
    ("snmp.sysdescr", "HP Comware Platform Software, Software Version 5.20 HP A6604 Router",
     "router"),  # Comware on a router says so
    ("snmp.sysdescr", "Netopia 2247N-VGx v7.8.1", "router"),
    # Dell's printers, not its monitors
    ("ftp.banner", "ET0021B71A2222 Dell 2355dn Laser MFP FTP Server NR.APS.N449 ready.",
     "printer"),
    ("dhcp.vendor_class", "Dell U2719D", None),
])
def test_a_model_s_own_words_choose_between_the_kinds_its_maker_makes(
        key: str, value: str, device_type: str | None) -> None:
    """Each of these was named wrong or not at all before: an 'Access Controller' was read
    as a door's, Axis encoders and iPod touches as their maker's usual kind, an issuer was
    not read at all."""
    assert [kind for _, kind in _with_and_without_recog(key, value)] == [device_type] * 2


@pytest.mark.parametrize("value", [
    "H3C Comware Platform Software, Software Version 7.1.064\r\nH3C MSR3620",
    "Netopia 3347NWG v7.8.1",  # a wireless DSL gateway: also the access point
])
def test_a_line_s_rule_leaves_open_the_models_that_are_another_kind(value: str) -> None:
    """Comware runs HP's and H3C's MSR routers as well as their switches, and a W Netopia is
    its network's access point as well as its router: the built-in rules name neither
    (recog may, by its own patterns)."""
    with without_recog():
        assert classify([Observation(key="snmp.sysdescr", value=value)]).device_type is None


@pytest.mark.parametrize(("key", "value", "vendor", "device_type"), [
    # a meeting room's and a school's AV: projectors as nmap counts them (media devices),
    # AV switchers and audio as recog does (display controllers, network audio)
    ("http.title", "EPSON Web Control", "Epson", "media_player"),  # not Epson's printer
    ("http.title", "Panasonic Projector PT-RZ970", "Panasonic", "media_player"),
    ("http.title", "Extron IN1608 xi", "Extron", "media_player"),
    ("http.title", "Q-SYS Core 110f", "QSC", "media_player"),
    ("mdns.service", "_netaudio-arc._udp", None, "media_player"),  # Dante audio
    ("http.title", "AMX NetLinx Master", "AMX", None),
    # a building's alarm panels (recog's alarm panel: access control) and lighting control
    ("http.title", "Vanderbilt SPC Web", "Vanderbilt", "access_control"),
    ("http.title", "Galaxy Dimension", "Honeywell", "access_control"),
    ("http.title", "Samsung Galaxy Flex", None, None),
    ("http.title", "HID VertX EVO", "HID Global", "access_control"),
    ("http.title", "Helvar 950 Router", "Helvar", "lighting"),  # was a router
    ("http.title", "Zumtobel LITECOM", "Zumtobel", "lighting"),
    ("http.title", "Thermia Online", "Thermia", "bms_controller"),  # a heat pump
    # car chargers and solar inverters: their makers, and no kind the vocabulary has
    ("http.title", "Zaptec Go", "Zaptec", None),
    ("http.title", "KEBA KeContact P30", "KEBA", None),
    ("http.title", "SMA Sunny Boy 5.0", "SMA", None),
    ("http.title", "Fronius Datamanager", "Fronius", None),
    # a school's 3D printers and a site's cloud cameras
    ("http.title", "Formlabs Form 3", "Formlabs", "printer"),
    ("mdns.service", "_ultimaker._tcp", "Ultimaker", "printer"),
    ("http.title", "Verkada", "Verkada", "camera"),
])
def test_a_meeting_room_s_av_a_building_s_alarms_and_lights_and_its_car_park_are_named(
        key: str, value: str, vendor: str | None, device_type: str | None) -> None:
    """None of these named a kind, and most not their maker, with recog or without."""
    assert _with_and_without_recog(key, value) == [(vendor, device_type)] * 2


@pytest.mark.parametrize(("value", "vendor", "device_type"), [
    ("servicewelt", "Stiebel Eltron", "bms_controller"),  # a heat pump's gateway
    ("duco_5e6f70", "Duco", "bms_controller"),  # a ventilation unit
    ("sense-a0b1c2", "Sense", "meter"),
    ("flume-gw-a0b1c2", "Flume", "meter"),
    ("polisy", "Universal Devices", "iot_hub"),
    ("ismartgate", "iSmartGate", "access_control"),  # a gate's opener
    ("RuuviGateway0a1b", "Ruuvi", "iot_hub"),
    ("zengge_07_a0b1c2", "Zengge", "lighting"),
    ("nam-5e6f70", "Nettigo", "sensor"),  # an air-quality monitor
    ("BSB-LAN", None, "bms_controller"),  # a boiler's bus adapter
    ("ZigStarGW", "ZigStar", "iot_hub"),
    ("sense-of-humour", None, None),  # someone's name for a machine
    ("name-5e6f70", None, None),
    ("duco", None, None),
])
def test_a_building_s_and_a_home_s_gateways_are_named_by_their_factory_names(
        value: str, vendor: str | None, device_type: str | None) -> None:
    """Heat pumps', ventilation units', meters' and gates' gateways name themselves so on
    DHCP, as Home Assistant's matchers expect them: none was named."""
    assert _built_in("dhcp.hostname", value) == (vendor, device_type)


@pytest.mark.parametrize(("value", "vendor", "device_type"), [
    ("Airtame 2", "Airtame", "video_conferencing"),
    ("Kramer VIA Connect2", None, "video_conferencing"),
    ("Neat Bar Pro", None, "video_conferencing"),
    ("Jabra PanaCast 50", None, "video_conferencing"),
    ("Samsung Smart Signage", None, "media_player"),
    ("Apple TV", None, "media_player"),
    ("Neat and tidy", None, None),
    ("Drive via Connect Street", None, None),
])
def test_what_a_classroom_or_meeting_room_shares_its_screen_to_is_named(
        value: str, vendor: str | None, device_type: str | None) -> None:
    """Wireless presentation and meeting-room bars, which recog types as ClickShare's kind,
    and signage players and Apple TVs in a school's halls, named nothing."""
    assert _with_and_without_recog("http.title", value) == [(vendor, device_type)] * 2


@pytest.mark.parametrize(("key", "value", "vendor", "device_type"), [
    ("snmp.sysdescr", "SICAM A8000 CP-8050", "Siemens", "plc"),  # was a Cisco phone
    ("sip.user_agent", "Cisco-CP-8851-3PCC/11.3.7", "Cisco", "voip_phone"),
    ("http.title", "Brodersen RTU32", "Brodersen", "plc"),
    ("http.title", "Unitronics Vision", "Unitronics", "plc"),
    ("http.title", "Moxa ioLogik E1214", "Moxa", "plc"),
    ("http.title", "ADAM-6050", None, "plc"),
    ("http.title", "MELSEC iQ-R", None, "plc"),
    ("http.title", "Phoenix Contact AXC F 2152", "Phoenix Contact", "plc"),
    ("snmp.sysdescr", "Schneider Electric BMX NOE 0100", "Schneider Electric", "plc"),
    ("http.title", "Elvaco CMe3100", "Elvaco", "meter"),  # district heating's meter gateway
    ("http.title", "Adam's home page", None, None),
])
def test_a_waterworks_and_a_heating_plant_s_telemetry_is_named(
        key: str, value: str, vendor: str | None, device_type: str | None) -> None:
    """Pumping stations' and substations' controllers and remote I/O, and district
    heating's meter gateways, named nothing; a Siemens substation controller's CP-8050
    module was a Cisco desk phone."""
    assert _with_and_without_recog(key, value) == [(vendor, device_type)] * 2


@pytest.mark.parametrize(("key", "value", "vendor", "device_type"), [
    ("http.title", "Modicon M221", "Schneider Electric", "plc"),  # was a PLC of no maker
    ("http.title", "TAC Xenta 511", "Schneider Electric", "bms_controller"),
    ("http.title", "Schneider Electric EcoStruxure Building Operation", "Schneider Electric",
     "bms_controller"),
    ("http.title", "WAGO Web-based Management", "WAGO", "plc"),
    ("http.title", "PFC200", "WAGO", "plc"),
    ("http.title", "Distech Controls ECLYPSE APEX", "Distech Controls", "bms_controller"),
    ("http.title", "Trend IQ4", "Trend Control Systems", "bms_controller"),
    ("http.title", "Priva Blue ID", "Priva", "bms_controller"),
    ("http.title", "Lindab Pascal", "Lindab", "bms_controller"),
    ("dhcp.hostname", "Danfoss-Ally-Gateway", "Danfoss", "iot_hub"),
    # other makers' pages with the same words
    ("http.title", "Trend Micro Apex One", None, None),
    ("http.title", "Web-based Management", None, None),  # many switches' page
])
def test_a_municipal_building_s_controllers_are_named_with_their_makers(
        key: str, value: str, vendor: str | None, device_type: str | None) -> None:
    """Building controllers and PLCs a municipality runs that named no kind or no maker:
    TAC's Xenta and Modicon by their lines (Schneider Electric's), WAGO's PFC controllers
    and their web-based management, Distech's ECLYPSE, Trend's IQ, Priva's and Lindab's
    controllers, and Danfoss Ally's gateway for radiator thermostats."""
    assert _with_and_without_recog(key, value) == [(vendor, device_type)] * 2


@pytest.mark.parametrize(("key", "value", "vendor", "device_type"), [
    ("upnp.description", "manufacturer=Promethean; modelName=ActivPanel Titanium Pro",
     "Promethean", "media_player"),
    ("dhcp.hostname", "AP9-B86-EU-1", "Promethean", "media_player"),
    ("http.title", "SMART Board MX Pro", "SMART Technologies", "media_player"),
    ("mdns.txt", "md=SBID-GX175", "SMART Technologies", "media_player"),
    ("ssdp.server", "Android/11 UPnP/1.0 Clevertouch IMPACT Plus", "Clevertouch", "media_player"),
    ("upnp.description", "manufacturer=ViewSonic; modelName=ViewBoard 6552", "ViewSonic",
     "media_player"),
    ("snmp.sysdescr", "Samsung Flip WM75A", "Samsung", "media_player"),
    ("mdns.instance", "Lokale 14 interactive flat panel", None, "media_player"),
    ("http.user_agent", "Mozilla/5.0 (X11; CrOS x86_64 15474.84.0) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/114.0.0.0 Safari/537.36", None, "workstation"),
    # the same words, not a display's, and a browser that names no device
    ("http.title", "Promethean ActivInspire licence server", None, None),
    ("http.title", "SMART Technologies Learning Suite", None, None),
    ("upnp.description", "manufacturer=SMART Technologies; modelName=SMART Board Service",
     "SMART Technologies", None),  # a teacher's PC's driver
    ("http.title", "Siemens SIMATIC HMI interactive touch screen", None, "hmi"),
    ("http.user_agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/114.0.0.0 Safari/537.36", None, None),
])
def test_a_school_s_classroom_displays_and_chromebooks_are_named(
        key: str, value: str, vendor: str | None, device_type: str | None) -> None:
    """A school's interactive classroom displays, the screens that replaced its projectors,
    named nothing (Promethean's ActivPanel, SMART Board, Clevertouch, ViewBoard, Samsung
    Flip), nor did a Chromebook's browser, which names ChromeOS."""
    assert _with_and_without_recog(key, value) == [(vendor, device_type)] * 2


@pytest.mark.parametrize(("value", "device_type"), [
    ("Patton SmartNode 4120 VoIP adapter", "voip_gateway"),
    ("Cisco VG224 Analog Phone Gateway", "voip_gateway"),
    ("Ingate SIParator session border controller", "voip_gateway"),
    ("Pioneer VSX-932 audio/video receiver", "media_player"),
    ("Tivoli Audio internet radio", "media_player"),
    ("Samsung Smart Signage Platform", "media_player"),
    ("UniFi Video Camera G3", "camera"),
    ("Kemp LoadMaster load balancer", "network_appliance"),
    ("W&T Ethernet-to-serial bridge", "network_appliance"),
    ("Quantum Scalar i3 tape library", "nas"),
    ("Netgear RAIDiator 4.2", "nas"),
    ("Cisco IPS 4345 intrusion prevention system", "firewall"),
    ("Sun Advanced Lights-Out Manager", "bmc"),
    ("Dell Chassis Management Controller", "bmc"),
    ("Ubiquiti EdgeSwitch 24 Lite", "switch"),
    ("Alcatel-Lucent OmniSwitch 6450", "switch"),
    ("Cisco Aironet 2700 Series", "access_point"),
    ("Aruba Instant AP", "access_point"),
    # near-misses that are not those kinds
    ("Garmin GPS receiver", None),
    ("IoT Web Gateway", None),
])
def test_nmap_s_words_for_a_kind_name_the_kind(value: str, device_type: str | None) -> None:
    """nmap's OS database (which nobody here wrote) names devices in its own words for their
    kinds ('VoIP adapter', 'load balancer', 'tape library', 'Lights-Out Manager'): 718 of
    its names with a kind named none."""
    assert _built_in("snmp.sysdescr", value)[1] == device_type


@pytest.mark.parametrize(("key", "value", "vendor", "device_type"), [
    # a care home's nurse call, social alarms and medicine dispensers
    ("http.title", "Nurse Call System Web Configuration", None, "medical"),
    ("http.title", "Hill-Rom NaviCare Nurse Call", None, "medical"),
    ("http.title", "Vitalcall", "Vitalcall", "medical"),
    ("http.title", "Careium", "Careium", "medical"),
    ("http.title", "Evondos E300", "Evondos", "medical"),
    ("http.title", "Social Alarm Receiver", None, "medical"),
    # a health centre's patient monitors and infusion pumps
    ("http.title", "Philips IntelliVue Information Center", "Philips", "medical"),
    ("snmp.sysdescr", "CARESCAPE B650", "GE Healthcare", "medical"),
    ("http.title", "BeneVision N15", "Mindray", "medical"),
    ("http.title", "B. Braun SpaceCom", "B. Braun", "medical"),
    ("http.title", "Welch Allyn Connex", "Welch Allyn", "medical"),
    ("http.title", "Infusion Pump Manager", None, "medical"),
    ("tls.subject", "CN=x,O=Philips Medical Systems,C=NL", "Philips Medical", "medical"),
    ("http.title", "Space Station 13", None, None),  # a game, not B. Braun's SpaceStation
    ("http.title", "Intelligence Platform", None, None),
])
def test_a_care_home_s_and_a_health_centre_s_equipment_is_named(
        key: str, value: str, vendor: str | None, device_type: str | None) -> None:
    """The vocabulary had a medical kind and a rule for one care-phone maker (Tunstall):
    nurse call, monitors and pumps named nothing, with recog or without."""
    assert _with_and_without_recog(key, value) == [(vendor, device_type)] * 2


@pytest.mark.parametrize(("registrant", "device_type"), [
    ("Welch Allyn, Inc.", "medical"),
    ("Drägerwerk AG & Co. KG aA", "medical"),
    ("B.Braun Melsungen AG", "medical"),
    ("Shenzhen Mindray Bio-Medical Electronics Co.,Ltd", "medical"),
    ("Philips Medical Systems - Cardiac and Monitoring Systems (CM", "medical"),
    ("Siemens AG, Healthcare Sector", "medical"),
    ("Hill-Rom", "medical"),
    ("ALARIS MEDICAL SYSTEMS, INC.", "medical"),
    ("Kodak Alaris", None),  # its scanners
    ("Baxter Sports", None),  # only Baxter's healthcare companies
])
def test_a_medical_maker_s_mac_names_the_kind(registrant: str, device_type: str | None) -> None:
    """A pump or monitor on a care home's network often answers nothing: its MAC's
    registrant is the evidence there is, and these registrants make medical equipment only."""
    with without_recog():
        found = classify_device([], mac="02:00:00:00:00:01", mac_vendor=registrant)
    assert found.device_type == device_type


@pytest.mark.parametrize(("value", "vendor", "device_type"), [
    ("1.3.6.1.4.1.705.1", "MGE", "ups"),  # the server room's power and climate
    ("1.3.6.1.4.1.1718.3", "ServerTech", "pdu"),
    ("1.3.6.1.4.1.20916.1.8", "AVTECH", "sensor"),
    ("1.3.6.1.4.1.5528.100.20.10.2014", "NetBotz", "sensor"),
    ("1.3.6.1.4.1.476.1.42", "Vertiv", None),  # a UPS's or a cooling unit's card
    ("1.3.6.1.4.1.2385.3.1.1", "Sharp", "printer"),
    ("1.3.6.1.4.1.14179.1.1.4.3", "Cisco", "access_point"),  # a wireless LAN controller
    ("1.3.6.1.4.1.5951.1", "Citrix", "network_appliance"),
    ("1.3.6.1.4.1.1588.2.1.1.1", "Brocade", "switch"),  # a SAN switch
    ("1.3.6.1.4.1.1981.1.1", "EMC", "nas"),
    ("1.3.6.1.4.1.7779.1.1402", "Infoblox", "network_appliance"),
    ("1.3.6.1.4.1.17050.1", None, None),  # an enterprise no rule lists
])
def test_more_enterprise_numbers_name_their_makers(
        value: str, vendor: str | None, device_type: str | None) -> None:
    """A sysObjectID is often all an SNMP scan of a locked-down device returns: these
    makers' numbers named nothing."""
    assert _built_in("snmp.sysobjectid", value) == (vendor, device_type)


@pytest.mark.parametrize(("value", "device_type"), [
    ("Sanyo PLC-XU300 projector http config", "media_player"),  # a projector, was a PLC
    ("Panasonic PLC Adaptor Ethernet-to-mains bridge", None),  # powerline, was a PLC
    ("Tandberg Data StorageLoader http config", None),  # a tape loader, was a video codec
    ("Polycom VSX 8000", "video_conferencing"),  # was Polycom's usual phone
    ("NetApp NetCache http proxy", "network_appliance"),  # a proxy, was storage
    ("Siemens SIMATIC PLC", "plc"),
    # and in nmap-os-db's names: another maker's model number in one maker's form
    ("Star Track SRT2014HD satellite receiver", "media_player"),  # was an APC Smart-UPS
    ("APC Smart-UPS SRT3000XLI", "ups"),
    ("Nortel NVR1750D VPN router", "router"),  # was a Dahua recorder
    ("Dahua NVR4104HS-P-4KS2", "video_recorder"),
    ("Emerson Liebert cooling system iCOM controller", None),  # a cooling unit, was a UPS
])
def test_a_kind_s_word_in_another_line_s_name_does_not_name_that_kind(
        value: str, device_type: str | None) -> None:
    """Found by classifying nmap's own product names (nmap-service-probes, which nobody here
    wrote): a word of one kind inside another maker's line named the wrong kind."""
    with without_recog():
        assert classify([Observation(key="http.server", value=value)]).device_type == device_type


@pytest.mark.parametrize("challenge", [
    'Basic realm="AXIS_ACCC8E103022"',
    'Digest qop="auth", realm="AXIS_ACCC8E103022", nonce="00112233"',
    'basic realm="AXIS_ACCC8E103022"',
])
def test_a_whole_challenge_is_read_as_the_realm_the_sensor_keeps(challenge: str) -> None:
    """Banner collections (and recog's examples) keep the whole WWW-Authenticate header;
    the sensor keeps the realm, which is what the built-in rules were written for: both
    forms must name the device the same."""
    with without_recog():
        whole = classify([Observation(key="http.www_authenticate", value=challenge)])
        realm = classify([Observation(key="http.www_authenticate", value="AXIS_ACCC8E103022")])
    assert (whole.vendor, whole.device_type) == (realm.vendor, realm.device_type) == (
        "Axis Communications", "camera")


def test_a_pc_booting_from_the_network_is_not_an_access_point() -> None:
    """gPXE asks for the vendor options (43) and a TFTP list (150) as a Cisco access point
    does, and for PXE's own options (128 on) as no access point does."""
    with without_recog():
        pxe = classify([Observation(key="dhcp.params", value="1,3,12,43,17,128,129,130,150")])
        ap = classify([Observation(key="dhcp.params", value="1,6,15,44,3,7,33,150,43")])
    assert (pxe.device_type, ap.device_type) == (None, "access_point")


@pytest.mark.parametrize(("key", "value", "vendor", "device_type"), [
    # a maker's own CA issues its devices' certificates: its organisation is the maker's
    ("tls.issuer", "CN=DS920 CA,O=Synology Inc.,L=Taipei,C=TW", "Synology", "nas"),
    ("tls.issuer", "CN=Vigor Router CA,O=DrayTek Corp.,C=TW", "DrayTek", "router"),
    # a public CA's organisation is no maker's: nothing, whatever its words
    ("tls.issuer", "CN=Example RSA Domain Validation Secure Server CA 2,O=Example CA Limited,"
     "L=Salford,C=GB", None, None),
    ("tls.issuer", "CN=Amazon RSA 2048 M03,O=Amazon,C=US", None, None),
    ("tls.issuer", "CN=Apple Public Server ECC CA 11,O=Apple Inc.,C=US", None, None),
    # a server or a realm that is its maker's name, with only a server's word or a version
    ("http.server", "Lexmark_Web_Server/2.0", "Lexmark", "printer"),
    ("http.server", "Synology Web Server", "Synology", "nas"),
    ("http.www_authenticate", 'Digest realm="synology", qop="auth"', "Synology", "nas"),
    ("http.server", "Ring", None, None),  # a common word is no maker alone
    ("http.server", "Synology-Proxy-Cache/1.2", None, None),  # other words may say more
    # a page titled with its maker's name alone, as many controllers' and cameras' are
    ("http.title", "Grundfos", "Grundfos", "bms_controller"),
    ("http.title", "Hikvision", "Hikvision", "camera"),
    ("http.title", "Ring", None, None),  # a common word, as for servers
    # an SSH server that calls itself by its maker's name, with or without a version
    ("ssh.banner", "SSH-2.0-SonicWall", "SonicWall", "firewall"),
    ("ssh.banner", "SSH-2.0-HPE-1.0", "HPE", None),
    ("ssh.banner", "SSH-2.0-Go", None, None),  # a language's library, no maker's
    # a certificate's or a login prompt's host name that is a factory's: maker and MAC
    ("tls.subject", "CN=axis-b8a44f0a1b2c", "Axis Communications", "camera"),
    ("telnet.banner", "\r\nsynology-0011324455 login: ", "Synology", "nas"),
])
def test_a_certificate_s_issuer_and_a_bare_server_name_name_the_maker(
        key: str, value: str, vendor: str | None, device_type: str | None) -> None:
    """An issuer's organisation was not read at all (only the subject's), a server
    header or realm that is a maker's name alone was read only when a model number
    followed it (a page title of two or three words; one was not read), and a factory's
    host name only in DHCP, not where a certificate or a login prompt says it."""
    assert _built_in(key, value) == (vendor, device_type)


@pytest.mark.parametrize(("value", "vendor", "device_type"), [
    ("ROSSSH", "MikroTik", "router"),  # the software's part alone, as collections keep it
    ("SSH-2.0-ROSSSH\r\n", "MikroTik", "router"),  # as the server sends it
    ("SSH-1.99-Cisco-1.25", "Cisco", None),  # IOS routers, switches, PIX: the kind is open
    ("HUAWEI-1.5", "Huawei", None),
    ("Comware-7.1.070", "HPE", None),
])
def test_an_ssh_greeting_names_its_maker_in_either_form_and_guesses_no_kind(
        value: str, vendor: str, device_type: str | None) -> None:
    """The built-in rules read 'SSH-2.0-...' only, and recog's form ('ROSSSH') went
    unread; Cisco's, Huawei's and Comware's greetings were called switches, which recog's
    examples of routers and firewalls showed to be a guess."""
    assert _built_in("ssh.banner", value) == (vendor, device_type)


_HOSTILE_KEYS = ("http.server", "http.www_authenticate", "rtsp.server", "http.title",
                 "tls.subject", "tls.issuer", "ssh.banner", "ftp.banner", "telnet.banner",
                 "snmp.sysdescr", "sip.user_agent", "dhcp.vendor_class", "dhcp.hostname")
# a maker's name, then many short pieces a pattern could split many ways, then a character
# that makes every split fail at the end
_HOSTILE_VALUES = [f"{name}{piece * 120}!" for name in ("Synology", "Axis", "CN=Synology")
                   for piece in ("-1", " a", "_1", "-web", "/1.2", " 1")]


def test_hostile_strings_are_read_in_bounded_time() -> None:
    """A device chooses its banners: a server header 'Synology-1-1-1...!' made the bare-name
    reading backtrack exponentially (24 pieces took 6 s; 120 would never end). Every key
    the classifier reads is given such strings in a child process, which must finish: a
    pattern that backtracks without bound shows as a timeout here, not as a hung sensor."""
    script = ("import json, sys\n"
              "from fingerprints.databases import without_recog\n"
              "from fingerprints.classify import Observation, classify\n"
              "keys, values = json.loads(sys.stdin.read())\n"
              "with without_recog():\n"
              "    for key in keys:\n"
              "        for value in values:\n"
              "            classify([Observation(key=key, value=value)])\n"
              "print('done')\n")
    _finishes(script, json.dumps([_HOSTILE_KEYS, _HOSTILE_VALUES]))


def _finishes(script: str, given: str = "") -> None:
    """Run ``script`` in a child Python that must print 'done' within two minutes: a pattern
    that backtracks without bound shows as a timeout, and the child is killed."""
    done = subprocess.run([sys.executable, "-c", script], input=given, capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert done.stdout.strip() == "done", done.stderr


# pieces a pattern could split many ways: a hex digit, a letter, a digit, a separator
_TEMPTING_PIECES = ("a", "0", "A", "a-", "a ", "1.", "_a", ":", " ")


def test_every_rule_answers_strings_made_from_its_own_examples_in_bounded_time() -> None:
    """The hostile strings above are the same for every rule, and a pattern's weak spot is
    its own shape: ZigStar's host-name rule repeated a group that could itself take four to
    twelve hex digits, so 'ZigStarGW' and eighty of them never ended. Every bundled rule is
    given its own examples with such pieces after, in the middle and before, in a child
    process that must finish."""
    script = ("from fingerprints.rules import rules_by_key\n"
              f"pieces = {_TEMPTING_PIECES!r}\n"
              "for rules in rules_by_key().values():\n"
              "    for rule in rules:\n"
              "        for example in [e['value'] for e in rule.examples][:3] or ['']:\n"
              "            half = example[:len(example) // 2]\n"
              "            for piece in pieces:\n"
              "                for value in (example + piece * 80 + '!', half + piece * 80 + '!',\n"
              "                              piece * 80 + example + '\\x00'):\n"
              "                    rule.regex.search(value)\n"
              "print('done')\n")
    _finishes(script)


@pytest.mark.parametrize(("said", "device_type"), [
    ([("knx.device", "services=routing")], "bms_controller"),  # a KNX IP router, heard alone
    # a Windows PC running ETS (or knxd, or a home server's KNX) in routing mode sends the
    # same routing indications: its own words outweigh them
    ([("knx.device", "services=routing"), ("dhcp.vendor_class", "MSFT 5.0")], "workstation"),
    ([("knx.device", "services=routing"), ("mdns.service", "_home-assistant._tcp")], "iot_hub"),
    # a description of itself is a KNX interface's own: stronger
    ([("knx.device", "name=IP Interface 730; medium=TP1; manufacturer_id=272; "
                     "services=core,tunnelling")], "bms_controller"),
])
def test_knx_routing_alone_is_weak_evidence_of_a_building_controller(
        said: list[tuple[str, str]], device_type: str) -> None:
    with without_recog():
        identity = classify([Observation(key=k, value=v) for k, v in said])
    assert identity.device_type == device_type


@pytest.mark.parametrize(("key", "value", "vendor", "model", "device_type"), [
    # Ubiquiti's discovery answers: the model, or the firmware's line and the platform code
    ("ubiquiti.discovery", "model=UAP-AC-Pro; platform=U7PG2; "
     "firmware=BZ.qca956x.v6.6.77.15402.240829.1543; name=ap-lab", "Ubiquiti", "UAP-AC-Pro",
     "access_point"),
    ("ubiquiti.discovery", "platform=U7NHD; firmware=BZ.mt7621.v6.6.77.15402.240829.1543",
     "Ubiquiti", None, "access_point"),
    ("ubiquiti.discovery", "model=US-24-250W; platform=US24P250; "
     "firmware=US.bcm5334x.v7.0.50.15613.240904.0744", "Ubiquiti", "US-24-250W", "switch"),
    ("ubiquiti.discovery", "platform=UDMPRO; version=4.0.21", "Ubiquiti", None, "router"),
    ("ubiquiti.discovery", "model=UVC-G3-Flex; platform=UVC G3 Flex", "Ubiquiti",
     "UVC-G3-Flex", "camera"),
    ("ubiquiti.discovery", "platform=LBE-5AC-Gen2; "
     "firmware=XC.qca955x.v8.7.4.45112.210415.1103; name=link-hallen", "Ubiquiti", None,
     "access_point"),
    ("ubiquiti.discovery", "model=UCK-G2-Plus; firmware=UCKP.apq8053.v3.0.16.c3b5.230818.0000",
     "Ubiquiti", None, None),  # a Cloud Key: a controller, no kind of this vocabulary
    # MNDP: the platform says who sent it, the board names the kind
    ("mndp.device", "platform=MikroTik; board=CCR2116-12G-4S+; version=7.15.3 (stable)",
     "MikroTik", "CCR2116-12G-4S+", "router"),
    ("mndp.device", "platform=MikroTik; board=CSS326-24G-2S+; version=2.17", "MikroTik",
     "CSS326-24G-2S+", "switch"),
    ("mndp.device", "platform=MikroTik; board=RBwAPG-5HacD2HnD; version=7.14", "MikroTik",
     "RBwAPG-5HacD2HnD", "access_point"),
    ("mndp.device", "platform=MAC-Telnet; board=armv7l; version=6.6.51+rpt-rpi-v7; "
     "identity=pi-hal", None, None, None),
    ("mndp.device", "platform=MndpTray; board=Windows; identity=PC-0042", None, None, None),
    # the boards and models in other strings (an LLDP description, a host name)
    ("lldp.sysdescr", "RouterOS CRS354-48P-4S+2Q+", "MikroTik", "CRS354-48P-4S+2Q+", "switch"),
    ("dhcp.hostname", "UVC-G4-Pro", "Ubiquiti", "UVC-G4-Pro", "camera"),
    # S7comm's identification: the order number's family, the type name in the catalogue
    ("s7.device", "order=6ES7 516-3AN02-0AB0; type=CPU 1516-3 PN/DP; firmware=2.9.7; "
     "copyright=Original Siemens Equipment; name=Renseanlaeg", "Siemens", "CPU 1516", "plc"),
    ("s7.device", "order=6ES7 315-2AH14-0AB0; firmware=3.3.17", "Siemens", None, "plc"),
    ("s7.device", "order=6ED1 052-2CC08-0BA1; firmware=1.83.1", "Siemens", None, "plc"),
    ("s7.device", "order=6GK7 343-1EX30-0XE0; type=CP 343-1; name=CP_Pumpe", "Siemens", None,
     "network_appliance"),
    ("s7.device", "order=6AV2 124-0JC01-0AX0; type=TP900 Comfort", "Siemens", None, "hmi"),
    ("s7.device", "order=VIPA 314-6CG23; firmware=3.6.0", None, None, "plc"),
])
def test_network_and_plant_gear_is_named_by_its_makers_own_protocols(
        key: str, value: str, vendor: str | None, model: str | None,
        device_type: str | None) -> None:
    with without_recog():
        identity = classify([Observation(key=key, value=value)])
    assert (identity.vendor, identity.model, identity.device_type) == (vendor, model, device_type)

"""Rapid7 recog as a rule source: its XML loads into the classifier, every example yields
the parameters recog states, its device words map onto netvagt's types, and a release gets
onto a machine only when every file matches its pins.

The release used is the shared copy beside the repository (``../shared/fingerprint-db``),
never a copy inside it."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from fingerprints import databases, recog
from fingerprints.classify import Observation, classify, matches
from fingerprints.rules import vocabulary
from scanners import identify, snmp

SHARED = Path(__file__).parents[2].parent / "shared" / "fingerprint-db" / "recog"
needs_recog = pytest.mark.skipif(not SHARED.is_dir() and not os.environ.get("CI"),
                                 reason="the shared recog copy is not beside this checkout")


@pytest.fixture
def with_recog(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("NETVAGT_FINGERPRINTS", str(SHARED))
    databases.recog_rules_by_key.cache_clear()
    yield
    databases.recog_rules_by_key.cache_clear()


@pytest.mark.parametrize(("ruby", "flags", "text", "found"), [
    (r"^Server: (\S+)\z", "", "Server: x\n", False),  # \z: the very end
    (r"^Server: (\S+)\Z", "", "Server: x\n", True),  # \Z: before a final newline too
    (r"^(?<model>DS-\w+)$", "", "DS-2CD2032", True),  # named groups
    (r"^[[:alpha:]]+ [[:digit:]]+$", "", "Axis 1375", True),  # POSIX classes
    (r"^v\h+$", "", "vdeadBEEF", True),  # \h: a hex digit
    (r"^(?i)cisco (\d+)$", "", "CISCO 7920", True),  # flags after '^' (Ruby allows it)
    (r"^b$", "", "a\nb\nc", True),  # ^ and $ match at every line in Ruby
    (r"a.b", "", "a\nb", False),
    (r"a.b", "REG_DOT_NEWLINE", "a\nb", True),
    (r"AXIS", "REG_ICASE", "axis", True),
])
def test_ruby_regexes_mean_the_same_in_python(ruby: str, flags: str, text: str,
                                             found: bool) -> None:
    assert (recog.python_regex(ruby, flags).search(text) is not None) is found


@needs_recog
def test_every_recog_example_yields_what_recog_states() -> None:
    reports = recog.verify(SHARED)
    assert len(reports) == 50
    failures = [f for r in reports for f in r.failures]
    assert failures == []
    assert sum(r.examples for r in reports) > 7000
    mapped = {Path(r.path).stem for r in reports if r.key}
    assert mapped == set(recog.RECOG_KEYS)
    assert {recog.RECOG_KEYS[m] for m in mapped} <= vocabulary().keys


@needs_recog
def test_the_verify_command_reports_per_file_and_passes() -> None:
    done = subprocess.run([sys.executable, "-m", "fingerprints", "verify", "--recog",
                           str(SHARED)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "snmp_sysdescr.xml" in done.stdout and "100.00%" in done.stdout
    assert "0 fingerprint(s) Python's re cannot express" in done.stdout


@needs_recog
def test_every_recog_device_word_maps_to_a_netvagt_type() -> None:
    words = [w for w in (SHARED / "identifiers" / "device.txt").read_text().splitlines() if w]
    mapping = recog.device_map()
    assert sorted(set(words) - set(mapping)) == []
    assert set(mapping.values()) <= vocabulary().device_types


def test_recog_parameters_become_identity_fields() -> None:
    devices = {"Router": "router", "IP Camera": "camera"}
    ios = {"os.vendor": "Cisco", "os.product": "IOS", "os.device": "Router",
           "os.version": "15.1", "os.cpe23": "cpe:/o:cisco:ios:15.1"}
    assert recog.identity_fields(ios, devices) == {
        "vendor": "Cisco", "device_type": "router", "cpe": "cpe:/o:cisco:ios:15.1"}
    iis = {"service.vendor": "Microsoft", "service.product": "IIS", "service.version": "7.5",
           "os.vendor": "Microsoft", "os.product": "Windows Server 2008 R2"}
    fields = recog.identity_fields(iis, devices)
    assert "vendor" not in fields and "device_type" not in fields  # a web server, not a maker
    assert fields["os"] == "Microsoft Windows Server 2008 R2"
    generic = {"hw.certainty": "0.0", "os.certainty": "0.0", "service.certainty": "0.0"}
    assert recog.identity_fields(generic, devices) == {}


@needs_recog
@pytest.mark.usefixtures("with_recog")
def test_recog_names_what_the_built_in_rules_do_not_know() -> None:
    named = classify([Observation(key="snmp.sysdescr", value=(
        "Cisco IOS Software, C880 Software (C880DATA-UNIVERSALK9-M), Version 15.1(4)M4, "
        "RELEASE SOFTWARE (fc1)"))])
    assert named.device_type == "router" and named.vendor == "Cisco"
    printer = classify([Observation(key="pjl.id", value="HP LaserJet 4250")])
    assert printer.device_type == "printer", printer
    assert any(e.rule.startswith("recog/") for e in printer.evidence)
    # a string both read: the built-in rule's fields stand, recog adds what it left open
    both = classify([Observation(key="ssh.banner", value="SSH-2.0-dropbear_2019.78")])
    assert both.product == "Dropbear sshd"
    # recog's generic entries assert nothing
    assert classify([Observation(key="http.title", value="404 Not Found")]).to_dict() == {}


def _as_a_device_sends_it(key: str, text: str) -> list[tuple[str, str]] | None:
    """What the sensor's own parsers read from a device that says ``text`` (recog's form)."""
    said = text.encode("utf-8", "surrogateescape")
    http = b"HTTP/1.1 200 OK\r\n"
    wire = {
        "ftp.banner": lambda: identify.parse_banner(21, b"220 " + said + b"\r\n"),
        "ssh.banner": lambda: identify.parse_banner(22, said + b"\r\n"),
        "telnet.banner": lambda: identify.parse_banner(23, b"\xff\xfb\x01\xff\xfd\x18" + said),
        "http.server": lambda: identify.parse_http(http + b"Server: " + said + b"\r\n\r\n"),
        "http.title": lambda: identify.parse_http(
            http + b"\r\n<html><head><title>" + said + b"</title></head>"),
        "http.www_authenticate": lambda: identify.parse_http(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: " + said + b"\r\n\r\n"),
        "rtsp.server": lambda: identify.parse_rtsp(
            b"RTSP/1.0 200 OK\r\nServer: " + said + b"\r\n\r\n"),
        "sip.server": lambda: identify.parse_sip(b"SIP/2.0 200 OK\r\nServer: " + said + b"\r\n\r\n"),
        "sip.user_agent": lambda: identify.parse_sip(
            b"SIP/2.0 200 OK\r\nUser-Agent: " + said + b"\r\n\r\n"),
        "snmp.sysdescr": lambda: [(snmp.KEYS[o], v) for o, v in snmp.parse_response(
            snmp.get_response(b"public", 1, {snmp.SYSDESCR: said})).items()],
        "pjl.id": lambda: identify.parse_pjl(b'@PJL INFO ID\r\n"' + said + b'"\r\n\x0c'),
        "tls.subject": lambda: identify.parse_certificate(_certificate(text)),
    }.get(key)
    return wire() if wire else None


_KEY = ed25519.Ed25519PrivateKey.generate()


def _certificate(subject: str) -> bytes:
    """A self-signed certificate for a subject written as recog writes it."""
    name = x509.Name.from_rfc4514_string(subject.replace("SERIALNUMBER=", "2.5.4.5="))
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(_KEY.public_key()).serial_number(1).not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=1)).sign(_KEY, None)
            .public_bytes(serialization.Encoding.DER))


@needs_recog
@pytest.mark.usefixtures("with_recog")
def test_recog_s_examples_name_the_device_when_the_sensor_reads_them_off_the_wire() -> None:
    """recog writes its examples as its patterns read them: an FTP greeting without its
    '220 ', a Telnet greeting with its line breaks, the whole WWW-Authenticate header. The
    sensor reads what the device sends. Each example, sent as a device sends it and read by
    the sensor's parsers, must still name the kind of device recog names. (The sensor once
    lost 231 of 305 FTP greetings, 60 of 172 Telnet greetings, 98 of 121 realms, and the
    Cisco phones' certificates: RFC 4514 writes their serial number '2.5.4.5=', recog
    'SERIALNUMBER='.)"""
    checked, lost = 0, []
    for rules in databases.recog_rules_by_key().values():
        for rule in rules:
            for example in rule.examples:
                stated = rule.match(example.text)
                read = _as_a_device_sends_it(rule.key, example.text)
                if not stated or not stated.get("device_type") or read is None:
                    continue
                checked += 1
                named = {e.fields.get("device_type") for k, v in read for e in matches(k, v)}
                if stated["device_type"] not in named:
                    lost.append(f"{rule.source}: {example.text[:60]!r} -> {named or '-'}")
    assert checked > 2500
    # Known, and why: the sensor keeps a realm, not a Digest header's nonce (new at every
    # request, it would make a new fact at every scan); recog's patterns for four cameras
    # and recorders read the nonce's form. A title's double space is one space; a
    # description's trailing spaces are gone. (Two HP Jetdirect subjects that recog wrote
    # with a two-valued RDN unsorted, which a certificate sorts, are typed by the device's
    # own words.)
    expected = {"Digest realm=": 4, "LXI - Agilent": 1, "'SP40": 1}
    assert len(lost) == sum(expected.values()), "\n".join(lost)
    for start, count in expected.items():
        assert sum(start in line for line in lost) == count, "\n".join(lost)


@needs_recog
@pytest.mark.usefixtures("with_recog")
def test_recog_reads_an_object_id_with_the_description_after_it() -> None:
    """recog's sysObjectID file matches '<sysObjectID> <sysDescr>' for Windows and Aruba;
    the sensor reports the two apart, and the classifier puts them together for it."""
    aruba = classify([
        Observation(key="snmp.sysobjectid", value="1.3.6.1.4.1.11.2.3.7.11.181.21",
                    source="161/udp"),
        Observation(key="snmp.sysdescr", value=(
            "Aruba JL256A 2930F-48G-PoE+-4SFP+ Switch, revision WC.16.01.0010, ROM "
            "WC.16.01.0004 (/ws/swbuildm/rel_ukiah_qaoff/code/build/bom(swbuildm_rel_ukiah_"
            "qaoff_rel_ukiah)) (Formerly ProCurve)"), source="161/udp")])
    assert any(e.rule.startswith("recog/snmp_sysobjid.xml#") for e in aruba.evidence)
    assert (aruba.device_type, aruba.model) == ("switch", "JL256A")
    alone = classify([Observation(key="snmp.sysobjectid", value="1.3.6.1.4.1.11.2.3.7.11.181.21")])
    assert not any(e.rule.startswith("recog/snmp_sysobjid.xml#") for e in alone.evidence)


@needs_recog
@pytest.mark.usefixtures("with_recog")
def test_a_web_server_s_icon_names_the_product_behind_it() -> None:
    """recog's favicon database: the MD5 of /favicon.ico (the sensor reads it whole)."""
    camera = classify([Observation(key="http.favicon_md5",
                                   value="842c79ab11f38323fc554afbea5c990a")])
    assert (camera.vendor, camera.device_type) == ("D-Link", "camera")
    assert classify([Observation(key="http.favicon_md5", value="0" * 32)]).to_dict() == {}


@needs_recog
def test_an_import_is_verified_swapped_in_and_the_previous_kept(tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = databases.import_recog(SHARED, root=store)
    assert (store / "recog" / "current").resolve() == first.path.resolve()
    second = databases.import_recog(SHARED, root=store)
    assert (store / "recog" / "previous").resolve() == first.path.resolve()
    assert (store / "recog" / "current").resolve() == second.path.resolve()
    assert databases.release_of(store / "recog" / "current") == "v3.1.28"
    # a tampered copy changes nothing
    bad = tmp_path / "tampered"
    shutil.copytree(SHARED, bad)
    for path in (bad, *bad.rglob("*")):  # the shared copy is read-only; a copy to tamper is not
        path.chmod(path.stat().st_mode | 0o200)
    (bad / "xml" / "html_title.xml").write_text("<fingerprints/>")
    with pytest.raises(databases.DatabaseError, match=r"html_title\.xml: SHA-256"):
        databases.import_recog(bad, root=store)
    (bad / "xml" / "html_title.xml").unlink()
    with pytest.raises(databases.DatabaseError, match="missing"):
        databases.import_recog(bad, root=store)
    assert (store / "recog" / "current").resolve() == second.path.resolve()
    with pytest.raises(databases.DatabaseError, match="no pins for recog v9"):
        databases.import_recog(SHARED, release="v9.9.9", root=store)


@needs_recog
def test_the_commands_import_and_report_the_release(tmp_path: Path) -> None:
    env = {**os.environ, "NETVAGT_FINGERPRINTS": str(tmp_path / "store")}
    status = subprocess.run([sys.executable, "-m", "central.cli", "fingerprints", "status"],
                            capture_output=True, text=True, env=env)
    assert status.returncode == 0 and "built-in rules only" in status.stdout
    done = subprocess.run([sys.executable, "-m", "agent.cli", "fingerprints", "import",
                           str(SHARED)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    status = subprocess.run([sys.executable, "-m", "agent.cli", "fingerprints", "status"],
                            capture_output=True, text=True, env=env)
    assert status.stdout.startswith("recog v3.1.28: "), status.stdout


@needs_recog
def test_match_says_which_rules_answered_and_takes_a_release_as_it_lies(tmp_path: Path
                                                                        ) -> None:
    """Without recog, `match` types about half the banners it types with it, and said
    nothing of it; `--recog DIR` uses a copy where it lies (nothing is imported or
    written)."""
    env = {**os.environ, "NETVAGT_FINGERPRINTS": str(tmp_path / "empty-store")}
    title = "DD-WRT (build 35030M) - Info\n"

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fingerprints", "match", "http.title",
                               *extra], input=title, capture_output=True, text=True, env=env)

    alone = run()
    assert alone.returncode == 0 and "the built-in rules only" in alone.stderr
    assert "recog/" not in alone.stdout
    loaded = run("--recog", str(SHARED))
    assert loaded.returncode == 0 and "recog v3.1.28" in loaded.stderr, loaded.stderr
    assert json.loads(loaded.stdout)["vendor"] == "DD-WRT"
    assert json.loads(loaded.stdout)["rule"].startswith("recog/html_title.xml#")
    assert not (tmp_path / "empty-store").exists()
    wrong = run("--recog", str(tmp_path))
    assert wrong.returncode == 2 and "no recog release here" in wrong.stderr


@pytest.mark.parametrize(("key", "value", "vendor", "device_type"), [
    ("dhcp.hostname", "DS-2CD2143G2-I", "Hikvision", "camera"),  # a model in a host name
    ("mdns.txt", "ty=Brother MFC-L8690CDW series; product=(MFC)", "Brother", "printer"),
    ("http.title", "Dahua DH-NVR4104HS-P-4KS2", "Dahua", "video_recorder"),
    ("snmp.sysdescr", "Cisco Meraki MR36 Cloud Managed AP", "Cisco Meraki", "access_point"),
    ("lldp.sysdescr", "cisco WS-C2960X-48FPD-L", "Cisco", "switch"),
    # the families a municipality's buildings and schools run
    ("dhcp.hostname", "XNO-6080R", "Hanwha Vision", "camera"),
    ("http.title", "FLEXIDOME IP 5000i", "Bosch", "camera"),
    ("lldp.sysdescr", "CBS250-24P-4G 24-Port Gigabit PoE Smart Switch", "Cisco", "switch"),
    ("mdns.txt", "model=EAP225; ver=5.0", "TP-Link", "access_point"),
    ("snmp.sysdescr", "Niagara 4 on JACE-9000", "Tridium", "bms_controller"),
    ("http.title", "Metasys NAE5510 Site Director", "Johnson Controls", "bms_controller"),
    ("dhcp.hostname", "WAGO-750-8212", "WAGO", "plc"),
])
def test_the_model_catalogue_names_a_model_wherever_it_appears(
        key: str, value: str, vendor: str, device_type: str) -> None:
    identity = classify([Observation(key=key, value=value)])
    assert (identity.vendor, identity.device_type) == (vendor, device_type), identity
    assert identity.to_dict()["named_by"].startswith(key)


def test_an_oui_prior_never_outweighs_what_the_device_says() -> None:
    from fingerprints.classify import classify_device

    prior = classify_device([], mac="00:40:8c:12:34:56", mac_vendor="Axis Communications AB")
    assert prior.device_type == "camera" and prior.confidence < 0.5
    said = classify_device([Observation(key="http.title", value="Synology DS920+")],
                           mac="00:40:8c:12:34:56", mac_vendor="Axis Communications AB")
    assert said.device_type == "nas", said  # the device's own words win over its OUI
    assert any("device_type" in c for c in said.conflicts)  # and the prior is still shown
    assert said.to_dict()["named_by"] == "http.title (model catalogue)"
    randomised = classify_device([], mac="02:40:8c:12:34:56", mac_random=True,
                                 mac_vendor="Axis Communications AB")
    assert randomised.to_dict() == {}


def test_generic_server_software_never_outweighs_what_the_device_is() -> None:
    """A BMS controller's IIS header tied with its OUI and won over its BACnet answer; the
    server software now counts only where nothing specific says otherwise."""
    from fingerprints.classify import classify_device
    from scanners.identify import parse_bacnet_iam

    # an I-Am from a Schneider Electric controller (vendor id 10), device instance 3
    i_am = bytes.fromhex("810a0014" "0100" "1000c4" "02000003" "2205c4" "9100" "210a")
    (observed,) = parse_bacnet_iam(i_am)
    assert observed == ("bacnet.iam", "instance=3; vendor_id=10")
    controller = classify_device(
        [Observation(key="http.server", value="Microsoft-IIS/7.5"),
         Observation(key=observed[0], value=observed[1])],
        mac="00:80:f4:01:02:03", mac_vendor="TELEMECANIQUE ELECTRIQUE")
    assert (controller.vendor, controller.device_type) == ("Schneider Electric",
                                                           "bms_controller")
    assert controller.product is None  # IIS is the web server's name, not the device's
    alone = classify([Observation(key="http.server", value="Microsoft-IIS/10.0")])
    assert alone.device_type == "server"  # with nothing else, the software still says something


def test_a_named_maker_of_one_kind_of_device_gives_a_weak_type() -> None:
    from fingerprints.classify import vendor_type

    assert vendor_type("AXIS") == vendor_type("Axis Communications AB") == "camera"
    assert vendor_type("Apcon") is None and vendor_type("Siemens") is None  # prefix of a word
    assert vendor_type("Konica Minolta Business Solutions") == "printer"  # the longest name wins
    assert vendor_type("  axis,communications.") == "camera"  # spacing and punctuation aside
    # the look-up goes word by word, so no name in the table may be longer than it reads
    from fingerprints.classify import MAX_VENDOR_WORDS, _vendor_types

    assert max(len(name.split()) for name in _vendor_types()) <= MAX_VENDOR_WORDS
    # a sysObjectID names the maker only (D-Link makes many kinds): no guess
    assert classify([Observation(key="snmp.sysobjectid", value="1.3.6.1.4.1.171.10.1")
                     ]).device_type is None
    # Yealink makes phones: named, and the guess says where it came from
    guessed = classify([Observation(key="dhcp.vendor_class", value="yealink")])
    assert (guessed.vendor, guessed.device_type) == ("Yealink", "voip_phone"), guessed
    assert guessed.to_dict()["named_by"] == "vendor (the maker's usual kind)"


@needs_recog
def test_one_maker_spelled_two_ways_by_two_databases_is_one_maker() -> None:
    """recog writes Axis as 'AXIS' and the built-in rules as 'Axis Communications': the
    two were weighed as two makers, and shown to the technician as conflicting evidence.
    A one-word name in another case, or without the company's word, is the rules' maker;
    a name that only begins the same ('Delta' is not 'Delta Controls') is not."""
    from fingerprints.classify import _as_the_rules_spell

    camera = classify([
        Observation(key="dhcp.vendor_class", value="AXIS,Network Camera,M3106-L Mk II,10.12.114"),
        Observation(key="http.title", value="AXIS P1375 Network Camera")])
    assert camera.vendor == "Axis Communications"
    assert not [c for c in camera.conflicts if c.startswith("vendor")], camera.conflicts
    assert camera.confidence > 0.7  # both sources count for the one maker
    assert [_as_the_rules_spell(v) for v in ("HIKVISION", "LG", "Delta", "Google")] == [
        "Hikvision", "LG Electronics", "Delta", "Google"]


def test_a_vendor_class_that_runs_its_maker_and_model_together_names_the_maker() -> None:
    """A firmware's DHCP vendor class is an identifier, its words often run together or
    joined by hyphens ('AastraIPPhone6757i', 'Polycom-SoundPointIP-SPIP_550'): the maker
    at its start is read as in a description, before a model number. A maker's own
    capitals stay one word ('BrightSign XD1034'), and words with no model after them
    still keep the maker's usual kind out ('AXIS,Network IO Audio Module')."""
    for said, expected in (("AastraIPPhone6757i", ("Aastra", "voip_phone")),
                           ("Polycom-SoundPointIP-SPIP_550", ("Polycom", "voip_phone")),
                           ("BrightSign XD1034", ("BrightSign", "media_player")),
                           ("AXIS,Network IO Audio Module", (None, None)),
                           ("dhcpcd-5.5.6", (None, None)), ("Linux 2.6.32 armv7l", (None, None))):
        found = classify([Observation(key="dhcp.vendor_class", value=said)])
        # (recog, where loaded, spells BrightSign's name as the maker does)
        assert ((found.vendor or "").lower(), found.device_type) == (
            (expected[0] or "").lower(), expected[1]), said


def test_a_factory_host_name_that_is_a_maker_s_name_names_the_maker() -> None:
    """The maker's name alone, or with the MAC's or serial's hex digits, or with its
    product's own word (a hub, a doorbell), is a factory default: the maker, spelled as its
    rules spell it, and its usual kind. A name someone gave (another word after the
    maker's) or a maker of many kinds names nothing."""
    for key, name, expected in (
            ("dhcp.hostname", "axis-accc8e0a1b2c", ("Axis Communications", "camera")),
            ("mdns.hostname", "AXIS-ACCC8E0A1B2C", ("Axis Communications", "camera")),
            ("dhcp.hostname", "HIKVISION", ("Hikvision", "camera")),
            ("netbios.name", "KYOCERA", ("Kyocera", "printer")),
            ("dhcp.hostname", "Reolink", ("Reolink", "camera")),
            ("dhcp.hostname", "nuki_bridge_1a2b3c4d", ("Nuki", "access_control")),
            ("dhcp.hostname", "nuki_bridge_office", (None, None)),
            ("dhcp.hostname", "apc-srv01", (None, None)),
            ("dhcp.hostname", "axis-gateway", (None, None)),
            # a consumer product's own word after its maker's name, with no digits
            ("dhcp.hostname", "airthings-hub", ("Airthings", "sensor")),
            ("dhcp.hostname", "RingDoorbell", ("Ring", "camera")),
            ("dhcp.hostname", "arlo_base", ("Arlo", "camera")),
            ("dhcp.hostname", "airthings-office", (None, None)),
            ("dhcp.hostname", "Siemens", (None, None)),
            ("dhcp.hostname", "axisbank", (None, None)),
            # a firmware's own description: its maker first is enough (no one chose it)
            ("snmp.sysdescr", "HIKVISION", ("Hikvision", "camera")),
            ("snmp.sysdescr", "Linux gateway 5.10.0", (None, None))):
        found = classify([Observation(key=key, value=name, source="test")])
        assert (found.vendor, found.device_type) == expected, name


@pytest.mark.usefixtures("with_recog")
def test_a_kept_answer_is_kept_for_the_rules_that_gave_it_and_the_oui_it_was_asked_with() -> None:
    from fingerprints.classify import classify_device, forget_answers

    said = [Observation(key="snmp.sysdescr", value="Juniper WXC-250 : 5.7.7.0")]  # recog's alone
    assert classify_device(said, mac=None).device_type == "router"
    with databases.without_recog():
        assert classify_device(said, mac=None).device_type is None  # not recog's kept answer
    assert classify_device(said, mac=None).device_type == "router"
    # the same words from another maker's MAC, and from a randomised one
    nothing = [Observation(key="http.title", value="Welcome")]
    axis = classify_device(nothing, mac="00:40:8c:01:02:03", mac_vendor="Axis Communications AB")
    siemens = classify_device(nothing, mac="00:1b:1b:01:02:03", mac_vendor="Siemens AG")
    hidden = classify_device(nothing, mac="02:40:8c:01:02:03", mac_random=True,
                             mac_vendor="Axis Communications AB")
    assert (axis.device_type, siemens.device_type, hidden.device_type) == ("camera", None, None)
    # what is kept is what would be worked out again
    forget_answers()
    assert classify_device(nothing, mac="00:40:8c:01:02:03",
                           mac_vendor="Axis Communications AB") == axis


@needs_recog
@pytest.mark.usefixtures("with_recog")
def test_the_padding_a_device_or_reader_leaves_around_a_value_changes_nothing() -> None:
    """Field strings arrive padded or prefixed: a header's name before its value, an OID
    as net-snmp prints it ('SNMPv2-SMI::enterprises.9.1.1745'), a greeting's line end, an
    SNMP description's trailing NUL or spaces, a page title indented in its HTML, a Telnet
    greeting's opening blank lines, an FTP greeting's later lines, the lines an SSH server
    may send before its version; a value quoted, its line end escaped, in nmap's notation or
    as Python's bytes, as collections write values down. recog's patterns are anchored at both ends: with one
    trailing CR, about a third of its typed examples lost their type (3Com's NJ220,
    'FRITZ!Powerline'); a multi-line FTP greeting lost nearly all of its."""
    from fingerprints.accuracy import recog_cases
    from fingerprints.classify import classify
    from fingerprints.field_forms import HEADER_KEYS

    typed = [c for c in recog_cases(SHARED) if c.device_type][::3]
    assert len(typed) > 900
    changed = []
    for case in typed:
        plain = classify([Observation(key=case.key, value=case.value)]).device_type
        forms = [f"{case.value}\r\n", f"  {case.value}  ", f"{case.value}\x00",
                 f"\r\n\r\n{case.value}\n",
                 # as a collection wrote it down: quoted, its line end escaped, in nmap's
                 # service-fingerprint notation (spaces as \x20), or as Python's bytes
                 f"{case.value}\\r\\n", case.value.replace("\\", "\\\\").replace(" ", "\\x20") + "\\r\\n",
                 repr(case.value.encode())]
        if '"' not in case.value:  # (a value with quotes of its own is written escaped)
            forms.append(f'"{case.value}"')
        if case.key in HEADER_KEYS:  # the header line whole, as banner collections keep it
            forms.append(f"{HEADER_KEYS[case.key].title()}: {case.value}")
        if case.key == "telnet.banner":  # kept raw: the option negotiation before the words
            negotiation = "\xff\xfd\x18\xff\xfd\x20\xff\xfb\x01"
            forms += [negotiation + case.value,  # as bytes read as Latin-1, or as UTF-8
                      negotiation.encode("latin-1").decode("utf-8", "replace") + case.value]
        if case.key == "ftp.banner":  # the greeting whole, its reply codes and later lines
            forms += [f"220 {case.value}\r\n", f"220-{case.value}\r\n220-Local time is "
                      "02:14\r\n220 You are user number 3\r\n"]
        if case.key == "ssh.banner":  # as the server sends it, maybe after lines of its own
            line = case.value if case.value.startswith("SSH-") else f"SSH-2.0-{case.value}"
            forms += [f"{line}\r\n", f"Authorised use only\r\n{line}\r\n"]
        if case.key == "http.title":  # the element as the page writes it
            forms.append(f"<title>{case.value}</title>")
        if case.key == "snmp.sysdescr":  # as snmpget and snmpwalk print it
            forms += [f'SNMPv2-MIB::sysDescr.0 = STRING: "{case.value}"',
                      f"STRING: {case.value}"]
        if case.key == "snmp.sysobjectid" and case.value.startswith("1.3.6.1.4.1."):
            forms += [f".{case.value}", f"iso.{case.value[2:]}",  # as net-snmp prints it
                      f"SNMPv2-SMI::enterprises.{case.value[12:]}"]
        for padded in forms:
            if classify([Observation(key=case.key, value=padded)]).device_type != plain:
                changed.append((case.key, padded))
    assert not changed, changed[:5]
    # a title's white space is read as a browser shows it, a favicon's MD5 in any case
    title = classify([Observation(key="http.title", value="\n   FRITZ!Box\n   7590  \n")])
    assert title.device_type == classify([Observation(key="http.title",
                                                      value="FRITZ!Box 7590")]).device_type
    assert title.device_type is not None
    # a title as its page's HTML writes it, where recog wrote the characters
    assert classify([Observation(key="http.title", value="R&amp;S Instrument VNC desktop")]
                    ).device_type == "network_appliance"


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_a_value_written_down_is_read_back_as_data_and_quietly(text: str) -> None:
    """What a collection wrote is read back, never run, and a device's bytes cannot make the
    reader warn or fail: any text, also as Python's bytes or quoted, gives a string."""
    import warnings

    from fingerprints.field_forms import field_form, written_out

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for said in (text, f"b'{text}'", f'"{text}"', f"[{text!r}]"):
            assert isinstance(written_out(said), str)
            assert isinstance(field_form("mdns.txt", said), str)


def test_a_value_is_unescaped_only_where_it_was_written_down() -> None:
    from fingerprints.field_forms import MAX_WRITTEN_CHARS, written_out

    assert written_out('"Microsoft FTP Service"') == "Microsoft FTP Service"
    assert written_out("b'SSH-2.0-OpenSSH_8.9\\r\\n'") == "SSH-2.0-OpenSSH_8.9\r\n"
    assert written_out("220\\x20ProFTPD\\x20Server\\r\\n") == "220 ProFTPD Server\r\n"
    for kept in ("C:\\Windows", 'Basic realm="x"', '"a" and "b"', "b'x' + b'y'",
                 '"' + "x" * MAX_WRITTEN_CHARS + '"'):
        assert written_out(kept) == kept

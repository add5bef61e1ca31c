"""The accuracy report over corpora nobody here wrote: the Fingerbank DHCP database and
recog's examples (scored with recog unloaded), besides the corpus written here."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from fingerprints.accuracy import (
    Case,
    Tally,
    _fingerbank_entries,
    cases,
    fingerbank_cases,
    score,
)
from fingerprints.classify import Observation, classify
from fingerprints.databases import without_recog
from fingerprints.field_forms import option_list, txt_record
from tests.conftest import SHARED_RECOG

HERE = Path(__file__).parent
FINGERBANK = HERE / "public" / "fingerbank"
needs_recog = pytest.mark.skipif(not SHARED_RECOG.is_dir() and not os.environ.get("CI"),
                                 reason="needs the shared recog copy beside the checkout")


@cache
def recog_examples() -> tuple[Case, ...]:
    """recog's examples as cases, read once for the module (parsing recog takes a second)."""
    return tuple(cases(SHARED_RECOG))


def test_fingerbank_conf_reader_keeps_heredocs_classes_and_comments_apart() -> None:
    text = """# header
[class 3]
description=VoIP Phones/Adapters
members=300-399,7

[os 300]
description=Cisco IP Phone
vendor_id=<<EOT
Cisco Systems, Inc. IP Phone
EOT
fingerprints=<<EOT
# a comment inside the list
1,66,6,3,15,150,35
EOT

[os 301]
description=Empty
fingerprints=<<EOT
EOT
"""
    entries = list(_fingerbank_entries(text))
    assert entries[0] == ("class", "3", {"description": ["VoIP Phones/Adapters"],
                                         "members": ["300-399,7"]})
    assert entries[1] == ("os", "300", {"description": ["Cisco IP Phone"],
                                        "vendor_id": ["Cisco Systems, Inc. IP Phone"],
                                        "fingerprints": ["1,66,6,3,15,150,35"]})
    assert entries[2] == ("os", "301", {"description": ["Empty"], "fingerprints": []})


def test_fingerbank_cases_take_the_class_then_the_entry_label() -> None:
    got = list(fingerbank_cases(FINGERBANK))
    assert len(got) > 550
    by_value = {(c.key, c.value): c.device_type for c in got}
    assert by_value[("dhcp.params", "1,66,6,3,15,150,35")] == "voip_phone"  # class
    assert by_value[("dhcp.params", "1,3,6,12,15,42,66,150")] == "voip_gateway"  # entry 334
    assert by_value[("dhcp.params", "1,3,6,15,42,44,46,47,69")] == "camera"  # Axis, entry 713
    assert by_value[("dhcp.params", "1,15,3,6,44,46,47,31,33,249,43,171,172")] == ""  # by name
    assert by_value[("dhcp.vendor_class", "Cisco Systems, Inc. IP Phone CP-7960")] == "voip_phone"
    assert by_value[("dhcp.params", "1,28,2,3,15,6,12,40,41,42")] == ""  # Linux: any device
    assert all(c.vendor is None for c in got)  # option 55 does not say who made a device


def test_halves_are_stable_and_both_used() -> None:
    one = Case(corpus="x", key="dhcp.params", value="1,3,6", device_type="", vendor=None)
    assert one.half == Case(corpus="y", key="dhcp.params", value="1,3,6", device_type="printer",
                            vendor="HP").half  # the half depends on the string alone
    halves = [c.half for c in fingerbank_cases(FINGERBANK)]
    assert 0.4 < halves.count("dev") / len(halves) < 0.6


@needs_recog
def test_recog_examples_are_scored_with_recog_unloaded() -> None:
    from fingerprints.databases import without_recog

    recog_cases = recog_examples()
    assert len(recog_cases) > 4000 and all(c.builtin_only for c in recog_cases)

    def typed(case: Case) -> str | None:
        return classify([Observation(key=case.key, value=case.value)]).device_type

    # a string recog names and the built-in rules do not
    sample = next(c for c in recog_cases if c.device_type == "kvm" and typed(c) == "kvm")
    with without_recog():
        assert typed(sample) != "kvm"
    assert typed(sample) == "kvm"  # recog is back after the block
    tally = next(iter(score([sample]).by_source.values()))
    assert (tally.typed, tally.typed_right) == (1, 0)  # scored without recog: not right


@needs_recog
def test_public_corpora_hold_over_a_thousand_cases_reported_per_source_and_type() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "fingerprints", "accuracy", str(HERE / "corpus.toml"),
         str(FINGERBANK), str(SHARED_RECOG), "--misses"],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": "."})
    out = run.stdout
    assert "Per source" in out and "Per device type" in out and "Per half" in out
    totals = {line.split("|")[1].strip(): int(line.split("|")[3])
              for line in out.splitlines() if "**all**" in line}
    assert totals["fingerbank"] + totals["recog-examples"] >= 1000
    assert "| fingerbank | `printer` |" in out and "| recog-examples | `camera` |" in out
    listed = [line for line in out.splitlines() if line.startswith(("fingerbank ", "corpus "))]
    assert listed  # the dev half's misses are listed ...
    test_half = {c.value for c in fingerbank_cases(FINGERBANK) if c.half == "test"}
    assert not any(line.split(": ", 1)[1].rsplit(": got", 1)[0].strip("'") in test_half
                   for line in listed if line.startswith("fingerbank "))  # ... never the test's


def test_a_case_may_carry_the_device_s_mac_and_be_scored_on_the_type_alone(
        tmp_path: Path) -> None:
    """A device often says nothing its rules read but a host name, and its MAC's registrant
    says the rest: such a case is scored with the MAC's OUI and organisation as evidence,
    as a live segment would give them. A MAC alone is a case too."""
    corpus = tmp_path / "devices.toml"
    corpus.write_text('''vendor_scored = false
[[sample]]
key = "mac"
value = "00:40:8c:1a:2b:3c"
device_type = "camera"
[[sample]]
key = "dhcp.hostname"
value = "unnamed-thing"
mac = "00:40:8c:1a:2b:3d"
device_type = "camera"
[[sample]]
key = "dhcp.hostname"
value = "unnamed-thing"
device_type = "camera"
''')
    found = list(cases(corpus))
    assert [c.mac for c in found] == ["00:40:8c:1a:2b:3c", "00:40:8c:1a:2b:3d", None]
    assert all(c.vendor is None for c in found)  # not scored: the file says so
    result = score(found)
    tally = Tally()
    for row in result.by_half.values():
        tally.merge(row)
    # the two with Axis's MAC are typed by its registrant; the host name alone names nothing
    assert (tally.typed, tally.typed_right, tally.typed_wrong) == (3, 2, 0)
    assert tally.vendor_scored == 0


def test_a_path_that_is_no_corpus_is_a_usage_error(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "fingerprints", "accuracy", str(tmp_path)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "not a corpus" in run.stderr


def test_no_rule_example_is_a_case_it_is_scored_on() -> None:
    """A corpus measures generalisation only if the rules did not learn its strings: a case
    that is a built-in rule's example is left out and counted as left out."""
    from fingerprints.accuracy import rule_examples, score

    examples = rule_examples()
    assert ("dhcp.vendor_class", "MSFT 5.0") in examples and len(examples) > 300
    learnt = Case(corpus="c", key="dhcp.vendor_class", value="MSFT 5.0",
                  device_type="workstation", vendor=None)
    fresh = Case(corpus="c", key="dhcp.vendor_class", value="MSFT 5.0 XBOX",
                 device_type="", vendor=None)
    result = score([learnt, fresh])
    assert result.excluded["c"] == 1
    assert sum(t.samples for t in result.by_source.values()) == 1
    # and the corpora nobody here wrote are nearly all scored
    public = list(fingerbank_cases(FINGERBANK))
    left_out = sum((c.key, c.value) in examples for c in public)
    assert left_out < len(public) * 0.03


def test_dhcp_fingerprints_nobody_here_wrote_are_typed_by_what_the_options_mean() -> None:
    """The Fingerbank half no rule was tuned on: a floor well above the 2% the exact-list
    rules reached, with wrong types kept rare."""
    from fingerprints.accuracy import score

    held = [c for c in fingerbank_cases(FINGERBANK) if c.half == "test"]
    result = score(held)
    tally = result.by_half[("fingerbank", "test")]
    assert tally.typed > 200
    assert tally.typed_right / tally.typed >= 0.45
    assert tally.typed_wrong / tally.typed <= 0.10
    assert tally.untyped_named / tally.untyped <= 0.15


@pytest.mark.parametrize(("name", "floor"), [("home-assistant-dhcp", 0.5),
                                           ("home-assistant-ssdp", 0.7),
                                           ("home-assistant-zeroconf", 0.5)])
def test_what_iot_devices_say_of_themselves_is_typed_and_rarely_wrongly(
        name: str, floor: float) -> None:
    """Home Assistant's discovery matchers, a public record of what consumer and building
    devices send in DHCP, SSDP and mDNS: the test half (never listed) keeps its floor, a wrong
    type stays rare, and a device of a kind the vocabulary lacks is not forced into one."""
    held = [c for c in cases(HERE / "public" / f"{name}.toml") if c.half == "test"]
    tally = score(held).by_half[(name, "test")]
    assert tally.typed >= 20 and tally.untyped >= 1
    assert tally.typed_right / tally.typed >= floor
    assert tally.typed_wrong / tally.typed <= 0.05
    assert tally.untyped_named / tally.untyped <= 0.10


def test_an_option_55_list_is_read_however_a_collection_wrote_it() -> None:
    """Fingerbank writes '1,3,6'; other collections and tools '1, 3, 6', '1 3 6', '[1, 3,
    6]', another separator with one at the end, a hex dump ('01,03,06,0f', '01:03:06:0f',
    '0103060f'), or a label first ('option 55: 1,3,6', '55=1,3,6'). Before, every form
    but the first named nothing: a Windows list with spaces after its commas was unknown;
    the dump without separators, the dump of digits only and the labelled list until
    2026-12-02."""
    lists = {c.value for c in fingerbank_cases(FINGERBANK) if c.key == "dhcp.params"}
    assert len(lists) > 500
    differ = []
    for plain in sorted(lists):
        numbers = [int(n) for n in plain.split(",") if n]
        forms = [", ".join(map(str, numbers)), " ".join(map(str, numbers)),
                 f"[{', '.join(map(str, numbers))}]", ";".join(map(str, numbers)) + ";"]
        forms += [f"option 55: {plain}", f"55={plain}"]
        dump = ",".join(f"{n:02x}" for n in numbers)
        # a dump of two-digit numbers none of which begins with 0 or has a letter ('10,21')
        # could be decimal, and is read so; any other dump is a dump
        if any(c.isalpha() for c in dump) or any(n < 16 for n in numbers):
            forms += [dump, dump.replace(",", ":"), dump.replace(",", "")]
        said = classify([Observation(key="dhcp.params", value=",".join(map(str, numbers)))])
        for form in forms:
            other = classify([Observation(key="dhcp.params", value=form)])
            if (other.device_type, other.os) != (said.device_type, said.os):
                differ.append((plain, form))
    assert not differ, differ[:5]
    assert option_list("not a list") == "not a list"  # no numbers made up from its letters
    assert option_list(" 1, 3 ,6 ") == "1,3,6" and option_list("1,3,999") == "1,3,999"
    assert option_list("15") == "15" and option_list("119") == "119"  # one option, decimal
    assert option_list("55:01:03:06") == "85,1,3,6"  # a dump that begins with 0x55, no label


def test_a_device_that_says_what_it_is_is_typed_by_its_words() -> None:
    said = classify([Observation(key="ftp.banner",
                                 value="220 Acme Rugged 8-Port PoE Switch FTP ready")])
    assert said.device_type == "switch" and said.vendor is None
    assert said.to_dict()["named_by"] == "ftp.banner (the device's own words)"
    # a rule that knows the device wins over the words it uses
    known = classify([Observation(key="http.server", value="App-webs/")])
    assert known.to_dict()["named_by"] != "http.server (the device's own words)"
    # short acronyms count only as acronyms: 'ups' in a sentence is not a UPS
    assert classify([Observation(key="http.title", value="Ups, page not found")]
                    ).device_type is None
    # a model number or the words are read in an mDNS host name as in a DHCP one
    assert classify([Observation(key="mdns.hostname", value="DS-2CD2387G2-LU")]
                    ).device_type == "camera"
    # ... and in the lower case many firmwares write their model in a host name: a name is
    # case-blind (Home Assistant's D-Link integration expects 'dsp-w215')
    plug = classify([Observation(key="dhcp.hostname", value="dsp-w215")])
    assert (plug.vendor, plug.model, plug.device_type) == ("D-Link", "DSP-W215", "smart_plug")
    assert plug.evidence[0].value == "dsp-w215"  # the evidence is what the device said
    assert classify([Observation(key="dhcp.hostname", value="ds-2cd2387g2-lu")]
                    ).device_type == "camera"
    # only host names: a page title's case is the maker's own
    assert classify([Observation(key="http.title", value="dsp-w215")]).device_type is None
    # a remote access controller manages a server; it opens no door
    assert classify([Observation(key="snmp.sysdescr", value="Acme Remote Access Controller "
                                 "agent 2.1")]).device_type == "bmc"
    # and option 55 is a list of numbers, not words
    assert classify([Observation(key="dhcp.params", value="1,3,6")]).device_type is None


@pytest.mark.parametrize(("said", "kind"), [
    ("3Com Baseline Switch 2928-SFP Plus Software Version 5.20", "switch"),
    ("HP J9021A", None),  # a product number alone names no kind
    ("Kasa Smart Wi-Fi Light Switch", None),  # a light's switch
    ("Nintendo Switch", None),
    ("Switch 2 of 4, KVM over IP", "kvm"),
    ("APC Switched Rack PDU AP7900", "pdu"),
    ("Automatic Transfer Switch 4421", None),
    ("Video Matrix Switch 1604", None),
])
def test_switch_words_name_network_switches_only(said: str, kind: str | None) -> None:
    assert classify([Observation(key="snmp.sysdescr", value=said)]).device_type == kind


@pytest.mark.parametrize(("key", "said", "kind"), [
    ("snmp.sysdescr", "SonicWALL TZ 670 (SonicOS 7.1.3-7015-R6965)", "firewall"),
    ("http.title", "USG60", "firewall"),
    ("snmp.sysdescr", "APC Embedded PowerNet SNMP Agent (MOD: AP9606)", "ups"),  # not an AP
    ("dhcp.vendor_class", "Cisco AP c1830", "access_point"),
    ("ftp.banner", "220 FRITZ!Box7490 FTP server ready.", "access_point"),  # as recog says
    ("sip.user_agent", "Technicolor TG789vn v3 Build 10.5.2.Z.EC", "router"),
    ("http.server", "Linux, HTTP/1.1, DIR-815 Ver 1.04", "router"),
    ("snmp.sysdescr", "TOSHIBA e-STUDIO500S", "printer"),
    ("http.title", "Epson AL-MX14NF", "printer"),
    ("http.title", "Archery club members", None),
    ("http.title", "Network&nbsp;Camera&nbsp;VB-H45", "camera"),  # entities read as characters
    ("http.title", "Tomato soup recipes", None),  # the firmware is 'Tomato 1.28'
    ("http.server", "UPnP/Tomato 1.28.9014 MIPSR2-RAF-v1.3g K26", "router"),
])
def test_product_lines_name_their_kind(key: str, said: str, kind: str | None) -> None:
    with without_recog():  # the built-in rules alone
        assert classify([Observation(key=key, value=said)]).device_type == kind


def test_a_description_that_begins_with_its_maker_names_the_maker() -> None:
    """'Lexmark T640 version 55.10.19': the maker, spelled as the rules spell it, and its
    usual kind from the maker table; a maker of many kinds is named, not typed; a first word
    that is also a platform's or a common word names nobody."""
    lexmark = classify([Observation(key="snmp.sysdescr", value="Lexmark T640 version 55.10.19")])
    assert (lexmark.vendor, lexmark.device_type) == ("Lexmark", "printer")
    siemens = classify([Observation(key="snmp.sysdescr", value="Siemens 7KM 1234 version 2.1")])
    assert (siemens.vendor, siemens.device_type) == ("Siemens", None)
    konica = classify([Observation(key="snmp.sysdescr", value="KONICA MINOLTA 350")])
    assert konica.device_type == "printer"
    for nobody in ("Microsoft Windows CE 6.0", "Ring 2 of 3", "Lexmark printers welcome you"):
        assert classify([Observation(key="http.title", value=nobody)]).vendor is None, nobody
    # a host name is a name someone chose
    assert classify([Observation(key="dhcp.hostname", value="lexmark-t640")]).vendor is None


@needs_recog
def test_recog_examples_are_typed_beyond_exact_strings_without_recog() -> None:
    """recog's examples, written by others for other rules: the built-in rules alone (the
    model catalogue, the product lines and the device's own words) type 47% of the test
    half, up from 11%, then 24%."""
    from fingerprints.accuracy import score

    result = score(c for c in recog_examples() if c.half == "test")
    tally = result.by_half[("recog-examples", "test")]
    assert tally.typed_right / tally.typed >= 0.42
    assert tally.typed_wrong / tally.typed <= 0.05
    assert tally.untyped_named / tally.untyped <= 0.05


@needs_recog
def test_the_built_in_rules_never_overrule_recog_wrongly_on_its_own_examples() -> None:
    """Through the whole classifier (recog loaded) recog's examples keep recog's type: a
    built-in rule that fires on them must agree. This caught a D-Link camera rule naming
    Arista's DCS-7050 switches, and Grandstream's HandyTone adapters called phones."""
    from dataclasses import replace

    from fingerprints.accuracy import score

    loaded = [replace(c, builtin_only=False) for c in recog_examples() if c.half == "test"]
    tally = score(loaded).by_half[("recog-examples", "test")]
    assert tally.typed_right / tally.typed >= 0.99
    arista = classify([Observation(
        key="snmp.sysdescr", value="Arista Networks EOS version 4.30.1F running on an Arista "
                                   "Networks DCS-7280SR3-48YC8")])
    assert arista.device_type != "camera" and arista.vendor != "D-Link"
    adapter = classify([Observation(key="sip.user_agent", value="Grandstream HT818 1.0.51.2")])
    assert adapter.device_type == "voip_gateway"


def test_whole_value_lookaheads_are_anchored() -> None:
    """A lookahead that scans the whole value ('(?=.*...)') at every start position costs
    the square of the value's length; anchored, it runs once. Found on a DHCP rule that
    took 0.1 s on a 4 KB hostile list."""
    import re

    from fingerprints.rules import load_files

    unanchored = [f"{rule_file.key}#{rule.name}" for rule_file in load_files()
                  for rule in rule_file.rules
                  if re.match(r"(?:\(\?[a-zA-Z-]+\))?\(\?[=!]\.\*", rule.regex.pattern)]
    assert not unanchored


def test_makers_of_one_kind_in_municipal_buildings_give_a_weak_type() -> None:
    from fingerprints.classify import classify_device, vendor_type

    assert vendor_type("Nilan A/S") == "bms_controller"  # ventilation
    assert vendor_type("Brunata a/s") == vendor_type("ista International GmbH") == "meter"
    assert vendor_type("Istanbul Teknik") is None  # a maker's name is a whole word
    # the IEEE registry's own spellings of one-kind makers
    assert vendor_type("LIFI LABS MANAGEMENT PTY LTD") == vendor_type("OSRAM GmbH") == "lighting"
    assert vendor_type("Ring LLC") == "camera" and vendor_type("RINGSPANN GmbH") is None
    assert vendor_type("SmartThings, Inc.") == "iot_hub"  # the hub's own registration
    assert vendor_type("Blink by Amazon ") == "camera" and vendor_type("enblink") is None
    assert vendor_type("The Chamberlain Group, Inc") == "access_control"
    # gateways and controllers Home Assistant's DHCP matchers expect, by their registrants
    assert vendor_type("Hangzhou BroadLink Technology Co.,Ltd") == "iot_hub"
    assert vendor_type("HangZhou Gubei Electronics Technology Co.,Ltd") == "iot_hub"
    assert vendor_type("Viessmann Elektronik GmbH") == "bms_controller"
    assert vendor_type("OJ-Electronics A/S") == "bms_controller"
    assert vendor_type("TELTONIKA NETWORKS UAB") == "router"
    assert vendor_type("Teltonika") is None  # also its vehicle trackers
    # building controllers and a care home's phones, as the registry spells their makers:
    # Siemens's building arm is one kind, the rest of Siemens many
    assert vendor_type("Siemens Building Technologies AG,") == "bms_controller"
    assert vendor_type("SIEMENS BUILDING") == vendor_type("Fr. Sauter AG") == "bms_controller"
    assert vendor_type("Saia-Burgess Controls AG") == vendor_type("AB Regin") == "bms_controller"
    assert vendor_type("Siemens AG") is None
    assert vendor_type("KIRK telecom A/S") == "voip_gateway"  # DECT servers and bases
    assert vendor_type("Ascom Tateco AB") == "voip_phone"
    assert vendor_type("LANDIS + GYR") == "meter"
    # a DHCP vendor class that is the maker's name alone (a version or a company's suffix
    # may follow) names the maker and its usual kind; other words are the device's own
    # description, which the maker's usual kind must not overrule
    for words, expected in (("Hikvision", ("Hikvision", "camera")),
                            ("KONICA MINOLTA", ("Konica Minolta", "printer")),
                            ("Zebra Technologies", ("Zebra", "printer")),
                            ("Roku 9.4", ("Roku", "media_player")),
                            ("Siemens SIMATIC", (None, None)), ("Apple", (None, None)),
                            ("Axis,Network IO Audio Module", (None, None))):
        found = classify([Observation(key="dhcp.vendor_class", value=words)])
        assert (found.vendor, found.device_type) == expected, words
    # a maker of several kinds under one OUI gives its name only: Bosch Security Systems'
    # OUI is on its cameras and on its alarm panels
    bosch = classify_device([], mac="00:04:63:1a:2b:3c", mac_vendor="Bosch Security Systems")
    assert (bosch.vendor, bosch.device_type) == ("Bosch", None)
    weak = classify_device([], mac="00:01:05:11:22:33",
                           mac_vendor="Beckhoff Automation GmbH & Co. KG")
    assert weak.device_type == "plc"
    # what the device says of itself, even in its own words, outweighs its maker's usual kind
    prior = classify_device([], mac="02:00:00:11:22:34", mac_vendor="Nilan A/S")
    assert prior.device_type == "bms_controller"
    said = classify_device([Observation(key="http.title", value="Network Video Recorder")],
                           mac="02:00:00:11:22:34", mac_vendor="Nilan A/S")
    assert said.device_type == "video_recorder"


def test_a_shelly_is_named_by_its_model_not_by_its_maker() -> None:
    """Shelly makes relays and plugs, but also sensors, lights and energy meters: the model
    in its host name or TXT record says which, and no family rule names another's kind."""
    said = {("dhcp.hostname", "shellyplusht-08b61fd12345"): "sensor",
            ("mdns.hostname", "ShellyPlusRGBWPM-A1B2C3D4E5F6"): "lighting",
            ("dhcp.hostname", "shellypro3em-a1b2c3d4e5f6"): "meter",
            ("dhcp.hostname", "shellyprodimmer-a1b2c3d4e5f6"): "lighting",
            ("dhcp.hostname", "shelly1pm-A1B2C3"): "smart_plug",
            ("mdns.txt", "gen=2; app=PlusSmoke; ver=1.0.0"): "sensor",
            ("mdns.txt", "gen=2; app=Pro4PM; ver=1.0.0"): "smart_plug",
            # a model no rule lists, and the service every Shelly announces: the maker only
            ("dhcp.hostname", "shellyblugw-a1b2c3d4e5f6"): None,
            ("mdns.service", "_shelly._tcp"): None}
    for (key, value), kind in said.items():
        identity = classify([Observation(key=key, value=value)])
        assert (identity.vendor, identity.device_type) == ("Shelly", kind), (value, identity)
        assert not any("device_type" in c for c in identity.conflicts), identity.conflicts


def test_axis_s_other_lines_are_not_cameras() -> None:
    """Axis is a camera maker to the maker table, but its model letter says otherwise for
    its speakers and audio modules (left open, not guessed: recog types them one way and
    leaves them untyped another), door controllers, recorders and radars."""
    said = {"AXIS C1410 Network Mini Speaker": None,  # not a camera
            "AXIS C8033 Network Audio Bridge": None,
            "AXIS P8221 Network I/O Audio Module": None,  # a P, but not a camera
            "AXIS A8105-E Network Video Door Station": "camera",  # as recog has it
            "AXIS A1001 Network Door Controller": "access_control",
            "AXIS S3008 Recorder": "video_recorder",
            "AXIS D2050-VE Network Radar Detector": "sensor",
            "AXIS Q6135-LE PTZ Network Camera": "camera"}
    for title, kind in said.items():
        identity = classify([Observation(key="http.title", value=title)])
        assert identity.device_type == kind, (title, identity)
        assert identity.vendor == "Axis Communications" and identity.model, identity


def test_a_service_type_is_a_dns_name_and_read_in_any_case() -> None:
    for said in ("_Volumio._tcp", "_volumio._tcp", "_IPP._tcp"):
        assert classify([Observation(key="mdns.service", value=said)]).device_type in (
            "media_player", "printer")
    assert classify([Observation(key="mdns.service", value="_kizbox._tcp")]
                    ).device_type == "iot_hub"


def test_an_apple_device_s_services_name_its_maker_and_a_phone_s_its_kind() -> None:
    """An iPhone announces Wi-Fi sync (_apple-mobdev2) and, as every Apple device does,
    _companion-link: neither named anything. The companion service names the maker only
    (Macs and TVs announce it too); with AirPlay beside it, the device is a media player."""
    def said(*services: str) -> tuple[str | None, str | None]:
        with without_recog():
            found = classify([Observation(key="mdns.service", value=s) for s in services])
        return found.vendor, found.device_type

    assert said("_apple-mobdev2._tcp", "_companion-link._tcp") == ("Apple", "mobile")
    assert said("_companion-link._tcp") == ("Apple", None)
    assert said("_companion-link._tcp", "_airplay._tcp") == ("Apple", "media_player")
    assert said("_leap._tcp") == (None, "lighting")  # Lutron's bridge


def test_a_txt_record_is_read_however_a_collection_wrote_it() -> None:
    """The sensor joins a TXT record's entries with '; '; a collection may keep one entry a
    line, or a list of strings. Entries hold commas and spaces, so nothing else is split,
    and a list is read as data only (a hostile one is no code, and no deeper than it may)."""
    plain = "txtvers=1; ty=HP LaserJet Pro M404dn; rp=ipp/print"
    for written in ("txtvers=1\nty=HP LaserJet Pro M404dn\nrp=ipp/print",
                    "['txtvers=1', 'ty=HP LaserJet Pro M404dn', 'rp=ipp/print']",
                    "[b'txtvers=1', b'ty=HP LaserJet Pro M404dn', b'rp=ipp/print']"):
        assert txt_record(written) == plain
        assert classify([Observation(key="mdns.txt", value=written)]).device_type == "printer"
    assert txt_record("pdl=application/pdf,image/urf") == "pdl=application/pdf,image/urf"
    assert txt_record("[__import__('os').system('id')]") == "[__import__('os').system('id')]"
    assert txt_record("[" * 2000 + "]" * 2000).startswith("[[[")
    assert txt_record("[1, 'md=Chromecast']") == "md=Chromecast"


NMAP_SAMPLE = r"""Probe TCP NULL q||
match ftp m|^220 LJ(\d+) FTP| p/HP LaserJet $1 printer ftpd/ d/printer/
match ftp m|^220 LJ(\d+)x FTP| p/HP LaserJet $1 printer ftpd/ d/printer/
softmatch ftp m|^220 | p/Some printer ftpd/ d/printer/
match http m|^HTTP/1\.0 200 OK\r\nServer: DVR| p/Hikvision DVR httpd/ d/media device/
match telnet m|^Beckhoff| p/Beckhoff Bus Terminal Controller/ d/specialized/
match telnet m|^WAP| d/WAP/
match http m|^HTTP/1\.0 200 OK\r\nServer: Cam| p/Cam httpd/ i/$P(1) camera/ d/webcam/
match telnet m|^Switch| p/Avaya switch telnetd/ d/switch/
"""


def test_nmaps_service_lines_with_a_type_are_cases_without_it(tmp_path: Path) -> None:
    """Each hard match line that gives a product and a type is one case: its words as an
    nmap.match without the type, labelled with the type in netvagt's words. Not a soft
    match, a line without a product, a type that names none here, nor nmap's buckets for
    many kinds (a DVR is its 'media device'); a line's ``$1`` names no version here."""
    path = tmp_path / "nmap-service-probes"
    path.write_text(NMAP_SAMPLE)
    found = list(cases(path))
    assert [(c.value, c.device_type) for c in found] == [
        ("service=ftp; product=HP LaserJet printer ftpd", "printer"),  # once, not twice
        ("service=telnet; product=Avaya switch telnetd", "switch"),
    ]
    assert all(c.key == "nmap.match" and c.vendor is None and c.builtin_only for c in found)
    tally = score(found).by_half
    assert sum(t.typed_right for t in tally.values()) == 2


@pytest.mark.skipif(not Path("/usr/share/nmap/nmap-service-probes").is_file(),
                    reason="needs the nmap package")
def test_the_installed_nmap_database_is_a_corpus_of_two_thousand_typed_lines() -> None:
    found = list(cases(Path("/usr/share/nmap/nmap-service-probes")))
    assert len(found) > 2000
    assert not any("devicetype=" in c.value for c in found)  # the label is never given

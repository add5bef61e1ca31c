"""WS-Discovery: an ONVIF camera's, a recorder's and a WSD printer's answers, hostile XML,
and the same messages heard passively in a capture (frames built with scapy's layers)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from fingerprints.classify import Observation, classify
from scanners.passive_parse import Heard, parse
from scanners.wsd import MAX_SCOPES, MAX_VALUE_CHARS, probes
from scanners.wsd import parse as parse_wsd

ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"'
    ' xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"'
    ' xmlns:d="{ns}" xmlns:dn="http://www.onvif.org/ver10/network/wsdl"'
    ' xmlns:tds="http://www.onvif.org/ver10/device/wsdl"'
    ' xmlns:wprt="http://schemas.microsoft.com/windows/2006/08/wdp/print"'
    ' xmlns:wscn="http://schemas.microsoft.com/windows/2006/08/wdp/scan"'
    ' xmlns:wsdp="http://schemas.xmlsoap.org/ws/2006/02/devprof">'
    "<env:Header><a:MessageID>urn:uuid:6f0a1c2e-0000-4000-8000-0123456789ab</a:MessageID>"
    "<a:Action>{ns}/{action}</a:Action></env:Header>"
    "<env:Body>{body}</env:Body></env:Envelope>")
WSD_2005 = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
WSD_2009 = "http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01"


def message(action: str, types: str, scopes: str = "", xaddrs: str = "",
            ns: str = WSD_2005) -> bytes:
    inner = (f"<a:EndpointReference><a:Address>urn:uuid:1</a:Address></a:EndpointReference>"
             f"<d:Types>{types}</d:Types><d:Scopes>{scopes}</d:Scopes>"
             f"<d:XAddrs>{xaddrs}</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion>")
    body = (f"<d:ProbeMatches><d:ProbeMatch>{inner}</d:ProbeMatch></d:ProbeMatches>"
            if action == "ProbeMatches" else f"<d:{action}>{inner}</d:{action}>")
    return ENVELOPE.format(ns=ns, action=action, body=body).encode()


DAHUA_CAMERA = message(
    "ProbeMatches", "dn:NetworkVideoTransmitter tds:Device",
    "onvif://www.onvif.org/location/country/china onvif://www.onvif.org/name/Dahua "
    "onvif://www.onvif.org/hardware/IPC-HFW2431S-S-S2 onvif://www.onvif.org/Profile/Streaming "
    "onvif://www.onvif.org/type/Network_Video_Transmitter "
    "onvif://www.onvif.org/MAC/3c:ef:8c:10:30:25",
    "http://10.20.30.25/onvif/device_service")


def test_an_onvif_camera_s_answer_names_its_kind_and_model() -> None:
    said = parse_wsd(DAHUA_CAMERA, "10.20.30.25")
    assert said == [
        ("wsd.types", "NetworkVideoTransmitter Device"),
        # where it is and its MAC are left out: they name no device
        ("wsd.scopes", "name/Dahua; hardware/IPC-HFW2431S-S-S2; Profile/Streaming; "
                       "type/Network_Video_Transmitter")]
    found = classify([Observation(k, v, "3702/udp") for k, v in said])
    assert (found.vendor, found.device_type, found.model) == (
        "Dahua", "camera", "IPC-HFW2431S-S-S2")


def test_a_recorder_and_a_printer_say_their_kinds_and_a_pc_says_none() -> None:
    recorder = parse_wsd(message("Hello", "dn:NetworkVideoStorage tds:Device",
                                 "onvif://www.onvif.org/type/Network_Video_Storage",
                                 ns=WSD_2009))  # the 2009 version of the protocol too
    printer = parse_wsd(message("ProbeMatches", "wsdp:Device wprt:PrintDeviceType "
                                "wscn:ScanDeviceType"))
    scanner = parse_wsd(message("ProbeMatches", "wsdp:Device wscn:ScanDeviceType"))
    computer = parse_wsd(message("Hello", "wsdp:Device pub:Computer"))  # Windows, or Samba
    kinds = [classify([Observation(k, v, "3702/udp") for k, v in said]).device_type
             for said in (recorder, printer, scanner, computer)]
    assert kinds == ["video_recorder", "printer", "scanner", None]


def test_a_question_or_a_goodbye_says_nothing() -> None:
    assert all(parse_wsd(probe) == [] for probe in probes())  # the sensor's own probes
    assert parse_wsd(message("Bye", "dn:NetworkVideoTransmitter")) == []
    assert parse_wsd(b"not xml") == [] and parse_wsd(b"") == []


def test_an_address_the_answer_names_besides_its_own_is_claimed() -> None:
    said = parse_wsd(message("ProbeMatches", "tds:Device", xaddrs=(
        "http://10.20.30.25/onvif/device_service http://192.168.1.64/onvif/device_service "
        "http://[fe80::1]/onvif http://camera.local/onvif")), "10.20.30.25")
    assert ("claim.ipv4", "192.168.1.64") in said
    assert [v for k, v in said if k == "claim.ipv4"] == ["192.168.1.64"]


def test_hostile_wsd_xml_is_refused_or_bounded() -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
            + message("Hello", "&lol2;")[len(b'<?xml version="1.0" encoding="UTF-8"?>'):])
    assert parse_wsd(bomb) == []
    external = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                + message("Hello", "&x;")[len(b'<?xml version="1.0" encoding="UTF-8"?>'):])
    assert parse_wsd(external) == []
    many = " ".join(f"onvif://www.onvif.org/name/{'A' * 90}{i}" for i in range(90))
    said = dict(parse_wsd(message("Hello", "tds:Device " * 200, many)))  # under 16 KB
    assert parse_wsd(message("Hello", "tds:Device", many * 2)) == []  # over: cut, not XML
    assert len(said["wsd.scopes"]) <= MAX_VALUE_CHARS
    assert said["wsd.scopes"].count("name/") <= MAX_SCOPES
    assert parse_wsd(message("Hello", "x:\x07Device")) == []  # not XML at all
    forged = dict(parse_wsd(message("Hello", "x:Device\u200b",
                                    "onvif://www.onvif.org/name/a%3Btype%2Fptz%07")))
    assert forged == {"wsd.types": "Device", "wsd.scopes": "name/a,type/ptz"}


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2048))
def test_any_bytes_parse_to_bounded_pairs_or_nothing(data: bytes) -> None:
    for key, value in parse_wsd(data):
        assert key in ("wsd.types", "wsd.scopes", "claim.ipv4")
        assert 0 < len(value) <= MAX_VALUE_CHARS and value.isprintable()


def test_a_hello_heard_on_the_wire_names_the_camera_that_sent_it() -> None:
    mac = "3c:ef:8c:10:30:25"
    hello = message("Hello", "dn:NetworkVideoTransmitter tds:Device",
                    "onvif://www.onvif.org/type/video_encoder "
                    "onvif://www.onvif.org/hardware/IPC-HFW2431S-S-S2",
                    "http://10.20.30.25/onvif/device_service")
    frame = bytes(Ether(src=mac, dst="01:00:5e:7f:ff:fa") / IP(src="10.20.30.25",
                  dst="239.255.255.250") / UDP(sport=3702, dport=3702) / hello)
    heard = parse(frame)
    assert Heard(mac=mac, ip="10.20.30.25", key="wsd.types",
                 value="NetworkVideoTransmitter Device") in heard
    assert any(h.key == "wsd.scopes" and "hardware/IPC-HFW2431S-S-S2" in (h.value or "")
               for h in heard)
    # a PC's probe, on the same port, says nothing of the PC
    probe = bytes(Ether(src="d0:43:1e:10:20:12", dst="01:00:5e:7f:ff:fa")
                  / IP(src="10.20.10.12", dst="239.255.255.250") / UDP(sport=50000, dport=3702)
                  / probes()[2])
    assert parse(probe) == []

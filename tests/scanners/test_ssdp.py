"""SSDP answers and UPnP descriptions, including hostile XML."""

from __future__ import annotations

from central.lab.municipal import SONOS_DESCRIPTION
from scanners.ssdp import parse_description, parse_ssdp

# the answer a Sonos speaker gives to M-SEARCH ssdp:all
SONOS_ANSWER = (b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age = 1800\r\nEXT:\r\n"
                b"LOCATION: http://10.20.10.50:1400/xml/device_description.xml\r\n"
                b"SERVER: Linux UPnP/1.0 Sonos/70.3-35220 (ZPS1)\r\nST: upnp:rootdevice\r\n"
                b"USN: uuid:RINCON_542A1B102050001400::upnp:rootdevice\r\n\r\n")


def test_ssdp_answer_headers() -> None:
    headers = parse_ssdp(SONOS_ANSWER)
    assert headers["LOCATION"] == "http://10.20.10.50:1400/xml/device_description.xml"
    assert headers["SERVER"].startswith("Linux UPnP/1.0 Sonos")
    assert parse_ssdp(b"M-SEARCH * HTTP/1.1\r\n\r\n") == {}  # a question, not an answer


def test_description_fields_in_a_fixed_order() -> None:
    assert parse_description(SONOS_DESCRIPTION.encode()) == (
        "deviceType=urn:schemas-upnp-org:device:ZonePlayer:1; "
        "friendlyName=10.20.10.50 - Sonos One - RINCON_542A1B102050001400; "
        "manufacturer=Sonos, Inc.; modelName=Sonos One; modelNumber=S18")


def test_hostile_xml_is_refused() -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
            b"<root><device><manufacturer>&lol2;</manufacturer></device></root>")
    assert parse_description(bomb) is None
    external = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                b"<root><device><manufacturer>&x;</manufacturer></device></root>")
    assert parse_description(external) is None
    assert parse_description(b"<root><device><manufacturer>a;b</manufacturer></device></root>"
                             ) == "manufacturer=a,b"  # no forged field separators
    assert parse_description(b"not xml") is None


def test_a_description_s_udn_and_serial_name_the_one_device() -> None:
    from scanners.ssdp import parse_identifiers

    xml = (b'<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device>'
           b"<deviceType>urn:schemas-upnp-org:device:Basic:1</deviceType>"
           b"<UDN>uuid:2fac1234-31f8-11b4-a222-08002b34c003</UDN>"
           b"<serialNumber> DS-2CD2043G2 1234 </serialNumber></device></root>")
    assert parse_identifiers(xml) == [("upnp.udn", "uuid:2fac1234-31f8-11b4-a222-08002b34c003"),
                                      ("upnp.serial", "DS-2CD2043G2 1234")]
    assert parse_identifiers(b"<root><device><UDN>\x07bell</UDN></device></root>") == []
    assert parse_identifiers(b"<not xml") == []


def test_an_announced_device_type_names_the_kind_and_a_service_type_does_not() -> None:
    from fingerprints.classify import Observation, classify
    from scanners.ssdp import device_type

    wemo = parse_ssdp(b"NOTIFY * HTTP/1.1\r\nNT: urn:Belkin:device:controllee:1\r\n"
                      b"NTS: ssdp:alive\r\n\r\n")
    assert device_type(wemo) == "deviceType=urn:Belkin:device:controllee:1"
    identity = classify([Observation("upnp.description", device_type(wemo) or "")])
    assert (identity.vendor, identity.device_type) == ("Belkin", "smart_plug")
    for said in (b"NT: upnp:rootdevice", b"NT: uuid:2f402f80-da50-11e1-9b23-001788102060",
                 b"NT: urn:schemas-upnp-org:service:SwitchPower:1",
                 b"NT: urn:Belkin:device:controllee:1<script>",
                 b"NT: urn:" + b"a" * 300 + b":device:x:1"):
        assert device_type(parse_ssdp(b"NOTIFY * HTTP/1.1\r\n" + said + b"\r\n\r\n")) is None
    answer = parse_ssdp(b"HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:Printer:1\r\n\r\n")
    assert classify([Observation("upnp.description", device_type(answer) or "")
                     ]).device_type == "printer"
    # a maker's own service, or a search target of its own, names what the standard
    # services every UPnP stack offers do not (a Samsung television, a Roku)
    for target, expected in ((b"urn:samsung.com:service:MainTVAgent2:1", ("Samsung", "smart_tv")),
                             (b"roku:ecp", ("Roku", "media_player")),
                             (b"urn:schemas-upnp-org:service:RenderingControl:1", None)):
        kind = device_type(parse_ssdp(b"HTTP/1.1 200 OK\r\nST: " + target + b"\r\n\r\n"))
        if expected is None:
            assert kind is None
        else:
            found = classify([Observation("upnp.description", kind or "")])
            assert (found.vendor, found.device_type) == expected


def test_windows_media_player_sharing_is_a_pc_not_a_media_player() -> None:
    from fingerprints.classify import Observation, classify

    described = ("deviceType=urn:schemas-upnp-org:device:MediaRenderer:1; friendlyName=KONTOR-PC;"
                 " manufacturer=Microsoft Corporation; modelName=Windows Media Player;"
                 " modelNumber=12.0")
    identity = classify([Observation("upnp.description", described)])
    assert (identity.vendor, identity.device_type) == ("Microsoft", "workstation")

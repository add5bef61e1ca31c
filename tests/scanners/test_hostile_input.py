"""Every parser of device input, driven with hostile bytes: it returns (never raises), in
bounded time, and a bad answer or frame costs only itself. Hypothesis budgets are per test
and small enough for CI; a failure prints the input that broke the parser.

Each named regression is an input found by the attack campaign against the release before:
a truncated ARP frame that blinded a sensor, an SNMPv3 report with an empty security
SEQUENCE that aborted a scan, a page that made the title regex quadratic."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.l2 import ARP, Ether
from scapy.utils import PcapWriter

from scanners import identify, mdns, ndp, snmp, ssdp
from scanners.passive import FrameStats, read_pcap
from scanners.passive_parse import as_ethernet, client_fqdn_host, mndp_announcement, parse
from scanners.scope import Scope

# ff:ff:ff:ff:ff:ff <- 02:00:00:00:78:01, ARP, cut after the opcode: scapy reads its sender
# protocol address as b'' (the 22-byte frame of the campaign)
TRUNCATED_ARP = bytes.fromhex("ffffffffffff0200000078010806a301280006b90002")

# SNMPv3 report whose msgSecurityParameters is an empty SEQUENCE (30 00): no engine id
EMPTY_USM_REPORT = snmp.tlv(snmp.SEQUENCE, snmp.integer(3) + snmp.tlv(
    snmp.SEQUENCE, snmp.integer(1) + snmp.integer(65507) + snmp.tlv(snmp.OCTETS, b"\x00")
    + snmp.integer(3)) + snmp.tlv(snmp.OCTETS, snmp.tlv(snmp.SEQUENCE, b""))
    + snmp.tlv(snmp.SEQUENCE, b""))

DEVICE_PARSERS = {
    "http": identify.parse_http,
    "rtsp": identify.parse_rtsp,
    "sip": identify.parse_sip,
    "netbios": identify.parse_netbios,
    "pjl": identify.parse_pjl,
    "certificate": identify.parse_certificate,
    "banner-ssh": lambda b: identify.parse_banner(22, b),
    "banner-telnet": lambda b: identify.parse_banner(23, b),
    "udp-snmp": lambda b: identify.parse_udp(161, b),
    "snmp-response": snmp.parse_response,
    "snmp-engine-id": snmp.parse_engine_id,
    "snmp-request": snmp.parse_request,
    "snmp-message-id": snmp.message_id,
    "ssdp": ssdp.parse_ssdp,
    "upnp-description": ssdp.parse_description,
    "upnp-identifiers": ssdp.parse_identifiers,
    "mdns-answer": lambda b: mdns.parse_answer(b, "10.0.0.9"),
    "frame": parse,
    "bacnet-i-am": identify.parse_bacnet_iam,
    "knxnet-ip": identify.parse_knx,
    "modbus-device-id": identify.parse_modbus,
    "ubiquiti-discovery": identify.parse_ubiquiti,
    "s7-szl": lambda b: identify.parse_s7((b, b)),
    "mndp-announcement": mndp_announcement,
    "icmpv6-echo-reply": lambda b: ndp.parse_reply(b, 1),
    "favicon": identify.parse_favicon,
    "redirect": lambda b: identify.redirect_path(b, "10.0.0.9", 80),
    "dhcp-client-fqdn": client_fqdn_host,
    "banner-ftp": lambda b: identify.parse_banner(21, b),
    # a captured frame of each link, made Ethernet, then parsed
    "capture-link-sll": lambda b: parse(as_ethernet(b, 113) or b""),
    "capture-link-sll2": lambda b: parse(as_ethernet(b, 276) or b""),
    "capture-link-vlan": lambda b: parse(as_ethernet(b) or b""),
}

SEEDS = [
    b"HTTP/1.1 200 OK\r\nServer: Boa/0.94\r\nWWW-Authenticate: Basic realm=\"x\"\r\n\r\n"
    b"<title>AXIS</title>",
    b"RTSP/1.0 200 OK\r\nServer: Hikvision\r\n\r\n",
    b"SIP/2.0 200 OK\r\nServer: Yealink\r\n\r\n",
    snmp.get_response(b"public", 1, {"1.3.6.1.2.1.1.1.0": b"Siemens, SIMATIC S7"}),
    snmp.discovery_report(7, b"\x80\x00\x13\x70\x01\xc0\xa8\x01\x01"),
    EMPTY_USM_REPORT,
    TRUNCATED_ARP,
    bytes(Ether(src="00:1b:1b:00:00:05", dst="ff:ff:ff:ff:ff:ff")
          / ARP(op=2, psrc="10.1.0.5", hwsrc="00:1b:1b:00:00:05")),
    b'<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device>'
    b"<manufacturer>Sonos</manufacturer></device></root>",
    bytes.fromhex("810a0014" "0100" "1000c4" "02000003" "2205c4" "9100" "210a"),  # BACnet I-Am
    (bytes.fromhex("061002040046" "36010200" "1100" "0000" "008300112233" "e000170c"
                   "020000001f2a") + b"MDT".ljust(30, b"\0")
     + bytes.fromhex("0a020202030204020502")),  # a KNX IP router's description
    bytes.fromhex("4e560000001bff" "2b0e0101000002" "0008") + b"Grundfos"
    + bytes.fromhex("0107") + b"CIM 500",  # a Modbus device's identification
    bytes.fromhex("0100001a" "0c0004") + b"U7LT" + bytes.fromhex("140010") + b"UAP-AC-Lite-Gen2",
    bytes.fromhex("0300004502f080" "320700000000000c0028" "000112081284010100000000"
                  "ff090024" "0011" "0000" "001c" "0001" "0001") + b"6ES7 214-1AG40-0XB0 "
    + bytes.fromhex("000000010001"),  # an S7 PLC's module identification
    bytes.fromhex("00000001" "00080008") + b"MikroTik" + bytes.fromhex("000c0005") + b"hEX S",
    b"HTTP/1.1 302 Found\r\nLocation: http://10.0.0.9/login.html\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: image/x-icon\r\nContent-Length: 8\r\n\r\n"
    b"\x00\x00\x01\x00\x01\x00\x10\x10",
    b"\x05\x00\x00\x05PC042\x07kommune\x05local\x00",  # a DHCP Client FQDN
    bytes.fromhex("0000000100060050b6102041aaaa0800") + b"\x45" + bytes(27),  # a cooked frame
]


@st.composite
def hostile(draw: st.DrawFn) -> bytes:
    """Random bytes, or a real answer with bytes flipped, cut or repeated."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=2048))
    seed = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        if not seed:
            break
        at = draw(st.integers(0, len(seed) - 1))
        kind = draw(st.sampled_from(["flip", "cut", "insert", "repeat"]))
        if kind == "flip":
            seed[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del seed[at:]
        elif kind == "insert":
            seed[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            seed[at:at] = seed[at:at + 8] * draw(st.integers(1, 64))
    return bytes(seed)


@pytest.mark.parametrize("name", sorted(DEVICE_PARSERS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=hostile())
def test_no_device_parser_raises(name: str, data: bytes) -> None:
    result = DEVICE_PARSERS[name](data)
    assert result is None or isinstance(result, list | dict | str | tuple | int)


def test_the_truncated_arp_frame_says_nothing() -> None:
    assert parse(TRUNCATED_ARP) == []


def test_an_snmpv3_report_without_security_parameters_names_no_engine() -> None:
    assert snmp.parse_engine_id(EMPTY_USM_REPORT) is None


def test_the_title_of_a_hostile_page_is_found_in_linear_time() -> None:
    page = b"HTTP/1.0 200 OK\r\n\r\n" + b"<title>" * (256 * 1024 // 7)
    started = time.perf_counter()
    assert identify.parse_http(page) == []
    # not a timing assert on the machine: a quadratic regex takes seconds here, this takes
    # microseconds; the bound is three orders of magnitude above the linear cost
    assert time.perf_counter() - started < 2.0
    assert identify.parse_http(b"HTTP/1.0 200 OK\r\n\r\n<TITLE id=a>Axis  P1375</title>") \
        == [("http.title", "Axis P1375")]


def test_one_hostile_device_costs_only_its_own_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A parser that raises on one device's answer (here: the engine-id probe of .66) leaves
    every other device's identification in place."""

    async def engine(ip: str, timeout: float = 1.0) -> list[tuple[str, str, str]]:
        if ip == "10.0.0.66":
            snmp.parse_engine_id(EMPTY_USM_REPORT)
            raise IndexError("tuple index out of range")  # what the old parser raised
        return [("snmp.engine_id", "80001370", "161/udp")]

    async def nothing(*_args: object, **_kw: object) -> list[tuple[str, str, str]]:
        return []

    monkeypatch.setattr(identify, "snmp_engine_id", engine)
    monkeypatch.setattr(identify, "snmp_claims", nothing)
    before = sum(identify.SKIPPED.values())
    found = asyncio.run(identify.identify(
        {}, banners={("10.0.0.7", 22): b"SSH-2.0-dropbear_2019.78\r\n"}, ssh_keys=False,
        scope=Scope.from_strings(["10.0.0.0/24"]), snmp_hosts=["10.0.0.5", "10.0.0.66"]))
    assert found["10.0.0.5"] == [("snmp.engine_id", "80001370", "161/udp")]
    assert found["10.0.0.66"] == []
    assert sum(identify.SKIPPED.values()) == before + 1


def _sample_frames() -> list[bytes]:
    """One frame of each kind the listener reads, in the formats of real captures."""
    from scapy.contrib.lldp import (
        LLDPDUChassisID,
        LLDPDUEndOfLLDPDU,
        LLDPDUPortID,
        LLDPDUSystemName,
        LLDPDUTimeToLive,
    )
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.dns import DNS, DNSRR
    from scapy.layers.inet import IP, UDP

    pc = "d0:43:1e:10:20:12"
    dhcp = (Ether(src=pc, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
            / UDP(sport=68, dport=67) / BOOTP(chaddr=bytes.fromhex(pc.replace(":", "")))
            / DHCP(options=[("message-type", "request"), ("requested_addr", "10.20.10.12"),
                            ("hostname", b"PC042"), ("vendor_class_id", b"MSFT 5.0"), "end"]))
    mdns_frame = (Ether(src="00:80:77:01:02:03", dst="01:00:5e:00:00:fb")
                  / IP(src="10.20.10.30", dst="224.0.0.251") / UDP(sport=5353, dport=5353)
                  / DNS(qr=1, aa=1, an=DNSRR(rrname="printer.local", type="A",
                                              rdata="10.20.10.30")))
    lldp = (Ether(src="00:1b:1b:00:00:05", dst="01:80:c2:00:00:0e")
            / LLDPDUChassisID(subtype=4, id="00:1b:1b:00:00:05") / LLDPDUPortID(subtype=5, id="p1")
            / LLDPDUTimeToLive(ttl=120) / LLDPDUSystemName(system_name="sw") / LLDPDUEndOfLLDPDU())
    arp = Ether(src="00:1b:1b:00:00:09", dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, psrc="10.1.0.9", hwsrc="00:1b:1b:00:00:09", pdst="10.1.0.1")
    return [bytes(f) for f in (dhcp, mdns_frame, lldp, arp)]


def _mutate(frame: bytes, n: int) -> bytes:
    import random

    rng = random.Random(n)
    data = bytearray(frame)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if choice < 0.4 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice < 0.8:
            del data[rng.randrange(14, len(data) + 1):]
        else:
            data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
    return bytes(data)


def test_a_capture_full_of_mutated_frames_is_read_to_the_end(tmp_path: Path) -> None:
    """20,000 mutated ARP, DHCP, mDNS and LLDP frames between the good ones: the good hosts
    are all heard and the capture is not refused (232 such frames refused a whole capture)."""
    samples = _sample_frames()
    path = tmp_path / "mutated.pcap"
    good = [bytes(Ether(src=f"00:0e:8c:77:01:{i:02x}", dst="ff:ff:ff:ff:ff:ff")
                  / ARP(op=2, psrc=f"10.1.1.{i}", hwsrc=f"00:0e:8c:77:01:{i:02x}"))
            for i in range(1, 51)]
    with PcapWriter(str(path), linktype=1) as writer:
        for n in range(20_000):
            writer.write(_mutate(samples[n % len(samples)], n))
            if n % 400 == 399:  # each good one last heard after its own mutated neighbours
                writer.write(good[n // 400])
            if n % 1000 == 0:
                writer.write(TRUNCATED_ARP)
    stats = FrameStats()
    hosts = read_pcap(path, scope=Scope.from_strings(["0.0.0.0/0"]), stats=stats)
    heard = {h.ip for h in hosts.values()}
    assert {f"10.1.1.{i}" for i in range(1, 51)} <= heard
    assert all(h.ip is None or h.ip.count(".") == 3 for h in hosts.values())
    assert stats.damaged_capture is None


def test_a_capture_damaged_part_way_reports_what_came_before(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    with PcapWriter(str(path), linktype=1) as writer:
        for i in range(1, 4):
            writer.write(bytes(Ether(src=f"00:1b:1b:00:02:0{i}", dst="ff:ff:ff:ff:ff:ff")
                               / ARP(op=2, psrc=f"10.1.2.{i}", hwsrc=f"00:1b:1b:00:02:0{i}")))
    with path.open("ab") as handle:  # a record header that claims 4 GB, then nothing
        handle.write(b"\x00" * 8 + b"\xff\xff\xff\x7f" * 2 + b"junk")
    stats = FrameStats()
    hosts = read_pcap(path, scope=Scope.from_strings(["0.0.0.0/0"]), stats=stats)
    assert {h.ip for h in hosts.values()} == {"10.1.2.1", "10.1.2.2", "10.1.2.3"}

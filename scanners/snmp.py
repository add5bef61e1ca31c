"""SNMP on the wire, as little of it as identification needs: one read-only v2c GetRequest
for the system group, and the SNMPv3 discovery message that makes an agent name its engine.

Pure functions over bytes, shared by the probe, the lab's emulated agents and the tests.
The BER reader is bounded: it never reads past the datagram, refuses lengths over three
bytes and nests at most :data:`MAX_DEPTH` deep, so a hostile agent can make it say nothing
but never hang or allocate much.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SYSDESCR = "1.3.6.1.2.1.1.1.0"
SYSOBJECTID = "1.3.6.1.2.1.1.2.0"
SYSNAME = "1.3.6.1.2.1.1.5.0"
SYSTEM_OIDS = (SYSDESCR, SYSOBJECTID, SYSNAME)
KEYS = {SYSDESCR: "snmp.sysdescr", SYSOBJECTID: "snmp.sysobjectid", SYSNAME: "snmp.sysname"}
IP_AD_ENT_ADDR = "1.3.6.1.2.1.4.20.1.1"  # ipAddrTable: the addresses the agent says it has
MAX_WALK = 16  # rows read from a table, at most

MAX_DEPTH = 8
MAX_ITEMS = 64  # elements read from one constructed value
MAX_TEXT = 1024

INTEGER, OCTETS, NULL, OID, SEQUENCE, IPADDRESS = 0x02, 0x04, 0x05, 0x06, 0x30, 0x40
GET, GET_NEXT, RESPONSE, REPORT = 0xA0, 0xA1, 0xA2, 0xA8


class BerError(ValueError):
    pass


# --------------------------------------------------------------------------- encoding

def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _length(len(body)) + body


def integer(value: int) -> bytes:
    return tlv(INTEGER, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


def oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytes([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        body += bytes(reversed(chunk))
    return tlv(OID, body)


def get_request(community: str, oids: tuple[str, ...] = SYSTEM_OIDS, request_id: int = 1,
                *, kind: int = GET) -> bytes:
    """An SNMPv2c GetRequest (or GetNextRequest): read-only, the named variables."""
    varbinds = b"".join(tlv(SEQUENCE, oid(o) + tlv(NULL, b"")) for o in oids)
    pdu = tlv(kind, integer(request_id) + integer(0) + integer(0) + tlv(SEQUENCE, varbinds))
    return tlv(SEQUENCE, integer(1) + tlv(OCTETS, community.encode()[:64]) + pdu)


def get_response(community: bytes, request_id: int, values: Mapping[str, bytes | str]) -> bytes:
    """A GetResponse: OctetString values, or OIDs for sysObjectID. An agent's side, kept for
    the unit tests (the lab's agents answer through scapy)."""
    varbinds = b""
    for name, value in values.items():
        if name == SYSOBJECTID and isinstance(value, str):
            encoded = oid(value)
        elif name.startswith(IP_AD_ENT_ADDR + ".") and isinstance(value, str):
            encoded = tlv(IPADDRESS, bytes(int(b) for b in value.split(".")))
        else:
            encoded = tlv(OCTETS, value.encode() if isinstance(value, str) else value)
        varbinds += tlv(SEQUENCE, oid(name) + encoded)
    pdu = tlv(RESPONSE, integer(request_id) + integer(0) + integer(0) + tlv(SEQUENCE, varbinds))
    return tlv(SEQUENCE, integer(1) + tlv(OCTETS, community) + pdu)


def _usm(engine_id: bytes = b"", boots: int = 0, time: int = 0) -> bytes:
    return tlv(OCTETS, tlv(SEQUENCE, tlv(OCTETS, engine_id) + integer(boots) + integer(time)
                           + tlv(OCTETS, b"") + tlv(OCTETS, b"") + tlv(OCTETS, b"")))


def discovery_request(msg_id: int = 1) -> bytes:
    """The SNMPv3 engine discovery message (RFC 3414 section 4): no user, no keys, reportable.
    Any v3 agent answers it with a Report that carries its authoritative engine id."""
    header = tlv(SEQUENCE, integer(msg_id) + integer(65507) + tlv(OCTETS, b"\x04") + integer(3))
    scoped = tlv(SEQUENCE, tlv(OCTETS, b"") + tlv(OCTETS, b"")
                 + tlv(GET, integer(msg_id) + integer(0) + integer(0) + tlv(SEQUENCE, b"")))
    return tlv(SEQUENCE, integer(3) + header + _usm() + scoped)


def discovery_report(msg_id: int, engine_id: bytes) -> bytes:
    """The Report an agent sends back (kept for the unit tests; the lab's agents use scapy)."""
    header = tlv(SEQUENCE, integer(msg_id) + integer(65507) + tlv(OCTETS, b"\x00") + integer(3))
    unknown_engine = "1.3.6.1.6.3.15.1.1.4.0"  # usmStatsUnknownEngineIDs.0
    varbind = tlv(SEQUENCE, oid(unknown_engine) + tlv(0x41, b"\x01"))
    scoped = tlv(SEQUENCE, tlv(OCTETS, engine_id) + tlv(OCTETS, b"")
                 + tlv(REPORT, integer(msg_id) + integer(0) + integer(0) + tlv(SEQUENCE, varbind)))
    return tlv(SEQUENCE, integer(3) + header + _usm(engine_id, 1, 1) + scoped)


# --------------------------------------------------------------------------- decoding

@dataclass(frozen=True, slots=True)
class Element:
    tag: int
    raw: bytes  # the value's bytes
    children: tuple[Element, ...] = ()


def decode(data: bytes, depth: int = 0) -> list[Element]:
    """Every element in ``data``; constructed values (tag bit 0x20) are decoded into children."""
    if depth > MAX_DEPTH:
        raise BerError("nested too deep")
    out: list[Element] = []
    at = 0
    while at < len(data):
        if len(out) >= MAX_ITEMS or at + 2 > len(data):
            raise BerError("too many elements or truncated")
        tag, length = data[at], data[at + 1]
        at += 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 3 or at + count > len(data):
                raise BerError("bad length")
            length = int.from_bytes(data[at:at + count], "big")
            at += count
        if at + length > len(data):
            raise BerError("truncated")
        raw = data[at:at + length]
        at += length
        children = tuple(decode(raw, depth + 1)) if tag & 0x20 else ()
        out.append(Element(tag, raw, children))
    return out


def oid_text(raw: bytes) -> str:
    if not raw:
        raise BerError("empty OID")
    parts = [raw[0] // 40, raw[0] % 40] if raw[0] < 80 else [2, raw[0] - 80]
    value = 0
    for byte in raw[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(p) for p in parts)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").replace("\x00", "").strip()[:MAX_TEXT]


def _value(element: Element) -> str:
    if element.tag == OCTETS:
        return _text(element.raw)
    if element.tag == OID:
        return oid_text(element.raw)
    if element.tag == INTEGER:
        return str(int.from_bytes(element.raw, "big", signed=True))
    if element.tag == IPADDRESS and len(element.raw) == 4:
        return ".".join(str(b) for b in element.raw)
    return element.raw.hex()


def parse_response(data: bytes) -> dict[str, str]:
    """{oid: value} from a v1/v2c GetResponse; {} for anything else (or garbage)."""
    try:
        (message,) = decode(data)
        if message.tag != SEQUENCE or len(message.children) != 3:
            return {}
        pdu = message.children[2]
        if pdu.tag != RESPONSE or len(pdu.children) != 4:
            return {}
        out: dict[str, str] = {}
        for varbind in pdu.children[3].children:
            if len(varbind.children) == 2 and varbind.children[0].tag == OID:
                if varbind.children[1].tag in (0x80, 0x81, 0x82, NULL):  # noSuchObject etc.
                    continue
                value = _value(varbind.children[1])
                if value:
                    out[oid_text(varbind.children[0].raw)] = value
        return out
    except (BerError, ValueError, IndexError):
        return {}


def parse_request(data: bytes) -> tuple[int, bytes, int, tuple[str, ...]] | None:
    """(version, community, request id, OIDs) of a v1/v2c GetRequest (an agent's side, kept
    for the unit tests; the lab's agents use scapy);
    a GetNextRequest reads the same, with the OIDs prefixed by "next:"."""
    try:
        (message,) = decode(data)
        version, community, pdu = message.children
        if pdu.tag not in (GET, GET_NEXT):
            return None
        names = tuple(("next:" if pdu.tag == GET_NEXT else "") + oid_text(vb.children[0].raw)
                      for vb in pdu.children[3].children)
        request_id = int.from_bytes(pdu.children[0].raw, "big", signed=True)
        return int.from_bytes(version.raw, "big"), community.raw, request_id, names
    except (BerError, ValueError, IndexError):
        return None


def parse_engine_id(data: bytes) -> str | None:
    """The authoritative engine id (hex) from an SNMPv3 message, or None."""
    try:
        (message,) = decode(data)
        if message.tag != SEQUENCE or len(message.children) < 3:
            return None
        if int.from_bytes(message.children[0].raw, "big") != 3:
            return None
        (usm,) = decode(message.children[2].raw)
        engine = usm.children[0].raw
        return engine.hex() if 5 <= len(engine) <= 32 else None
    except (BerError, ValueError, IndexError):
        return None


def message_id(data: bytes) -> int | None:
    """The msgID of an SNMPv3 message (kept for the unit tests; the lab's agents use scapy)."""
    try:
        (message,) = decode(data)
        if int.from_bytes(message.children[0].raw, "big") != 3:
            return None
        return int.from_bytes(message.children[1].children[0].raw, "big")
    except (BerError, ValueError, IndexError):
        return None

"""Targeted identification probes: ask each open service the one question that names it.

HTTP ``GET /`` (Server header, WWW-Authenticate realm, page title), RTSP ``OPTIONS``
(Server header), the TLS certificate's subject, the banners that SSH, FTP and Telnet send
unasked, the SSH host key (key exchange only, no login), ``@PJL INFO ID`` on a printer's
raw port (deep profile only), and the SNMPv3 engine id. The UDP answers the port probe
already collected (SNMP system group, SIP ``OPTIONS``, NetBIOS node status) are read here
too. Each probe has a deadline and reads a
bounded number of bytes; the answers become observations under their match keys for the
fingerprint rules. Parsers are pure functions, tested on real bytes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import re
import ssl
import struct
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TypeVar
from urllib.parse import urlsplit

from fingerprints.observation import Observation
from scanners import bind, snmp
from scanners.observations import CLAIM_KEY
from scanners.scope import Scope
from scanners.tcp import UdpAnswer

log = logging.getLogger("netvagt.scanners.identify")
_T = TypeVar("_T")
_R = TypeVar("_R")

MAX_RESPONSE_BYTES = 65_536  # bound what a hostile web server can make us read
PROBE_TIMEOUT_S = 3.0
CONCURRENCY = 32
HTTP_PORTS = frozenset({80, 5000, 8000, 8080})
RTSP_PORTS = frozenset({554})
TLS_PORTS = frozenset({443, 5001, 8443})
PJL_PORT = 9100
PJL_INFO_ID = b"\x1b%-12345X@PJL INFO ID\r\n\x1b%-12345X\r\n"  # asks, prints nothing
BANNER_KEYS = {21: "ftp.banner", 22: "ssh.banner", 23: "telnet.banner"}
_REALM_RE = re.compile(r'realm="([^"]{0,256})"', re.I)
_IAC_RE = re.compile(rb"\xff[\xfb-\xfe].|\xff[\xf0-\xfa]")  # Telnet negotiation

Found = Observation  # what a probe heard, with where


def _text(data: bytes, limit: int = 1024) -> str:
    return data.decode("utf-8", "replace").replace("\x00", "").strip()[:limit]


def field_text(raw: bytes) -> str:
    """A fixed field of a binary answer (a KNX friendly name, a Modbus object) as printable
    text: one byte one character, control characters as spaces."""
    return "".join(c if c.isprintable() else " " for c in raw.decode("latin-1")).strip()


def parse_http(response: bytes) -> list[tuple[str, str]]:
    """(key, value) observations from an HTTP response: server, auth realm, title."""
    head, _, body = response.partition(b"\r\n\r\n")
    out: list[tuple[str, str]] = []
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name_l = name.strip().lower()
        if name_l == b"server" and value.strip():
            out.append(("http.server", _text(value)))
        elif name_l == b"x-powered-by" and value.strip():
            out.append(("http.x_powered_by", _text(value)))
        elif name_l == b"set-cookie" and value.strip() and len(out) < 32:
            out.append(("http.cookie", _text(value)))
        elif name_l == b"www-authenticate":
            realm = _REALM_RE.search(_text(value))
            out.append(("http.www_authenticate", realm.group(1) if realm else _text(value)))
    title = html_title(body)
    if title and title.strip():
        out.append(("http.title", " ".join(_text(title).split())))
    return out


def html_title(body: bytes) -> bytes | None:
    """The first ``<title ...>...</title>`` of a page, in linear time: a regex with a lazy
    group rescans the rest of the page for every '<title' a hostile page repeats (1 s per
    64 KB)."""
    lowered = body.lower()
    start = lowered.find(b"<title")
    if start < 0:
        return None
    opened = lowered.find(b">", start)
    if opened < 0:
        return None
    end = lowered.find(b"</title>", opened)
    return body[opened + 1:end] if end >= 0 else None


MAX_FAVICON_BYTES = 262_144  # a multi-size icon runs to 100 KB or more; an MD5 needs all of it
FAVICON_KEY = "http.favicon_md5"
_IMAGE_MAGIC = (b"\x00\x00\x01\x00", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"BM", b"<svg",
                b"<?xml")


def _http_head(response: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """An HTTP answer's status code (b'' if it is not one), its headers (names in lower
    case, the first 63 lines, the first of a repeated name) and its body."""
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head[:8192].split(b"\r\n")
    if not lines[0].startswith(b"HTTP/"):
        return b"", {}, body
    headers: dict[bytes, bytes] = {}
    for line in lines[1:64]:
        name, colon, value = line.partition(b":")
        if colon:
            headers.setdefault(name.strip().lower(), value.strip())
    return lines[0][9:12], headers, body


def parse_favicon(response: bytes) -> list[tuple[str, str]]:
    """The MD5 of a web server's /favicon.ico, the way recog's favicon database names the
    product behind it: only a whole image (200, every byte its Content-Length says, not
    chunked), never the HTML page a catch-all server sends for any path."""
    status, headers, body = _http_head(response)
    if status != b"200" or not body or b"chunked" in headers.get(b"transfer-encoding", b""):
        return []
    length = headers.get(b"content-length", b"")
    if (length and (not length.isdigit() or int(length) != len(body))) or (
            len(response) >= MAX_FAVICON_BYTES):
        return []  # cut short: its MD5 would name nothing
    typed = headers.get(b"content-type", b"").lower().startswith(b"image/")
    if not typed and not body.lstrip()[:8].startswith(_IMAGE_MAGIC):
        return []
    return [(FAVICON_KEY, hashlib.md5(body, usedforsecurity=False).hexdigest())]


def parse_rtsp(response: bytes) -> list[tuple[str, str]]:
    for line in response.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"server" and value.strip():
            return [("rtsp.server", _text(value))]
    return []


def parse_banner(port: int, banner: bytes) -> list[tuple[str, str]]:
    key = BANNER_KEYS.get(port)
    if key is None:
        return []
    cleaned = _IAC_RE.sub(b"", banner) if key == "telnet.banner" else banner
    text = _text(cleaned)
    if not text:
        return []
    # SSH and FTP name themselves in their first line (an FTP greeting's next lines can
    # change at every connection: 'You are user number 3', 'Local time is 02:14'). A Telnet
    # greeting stays whole, line breaks included: recog's patterns read its lines as the
    # device sent them (a Cisco prompt is 'User Access Verification', a blank line, then
    # 'Username:'); the built-in rules read them joined (fingerprints.classify.own_form)
    return [(key, text if key == "telnet.banner" else text.splitlines()[0])]


def parse_sip(response: bytes) -> list[tuple[str, str]]:
    """Server and User-Agent headers of a SIP answer (to our OPTIONS)."""
    if not response.startswith(b"SIP/2.0 "):
        return []
    out = []
    for line in response[:8192].split(b"\r\n")[1:64]:
        name, sep, value = line.partition(b":")
        name_l = name.strip().lower()
        if sep and value.strip() and name_l in (b"server", b"user-agent"):
            out.append(("sip.server" if name_l == b"server" else "sip.user_agent", _text(value)))
    return out


def parse_netbios(response: bytes) -> list[tuple[str, str]]:
    """The computer name (unique, suffix 0x00) and workgroup from a NetBIOS node status answer."""
    try:
        at = 12
        at += 2 if response[at] & 0xC0 == 0xC0 else response[at] + 2  # the name, or a pointer
        rrtype, _rrclass, _ttl, _rdlength, count = struct.unpack_from("!HHIHB", response, at)
        if rrtype != 0x21:
            return []
        at += 11
        out = []
        for index in range(min(count, 64)):
            entry = response[at + 18 * index: at + 18 * index + 18]
            if len(entry) < 18:
                break
            name = _text(entry[:15])
            suffix, flags = entry[15], struct.unpack("!H", entry[16:18])[0]
            if suffix == 0 and name:
                out.append(("netbios.group" if flags & 0x8000 else "netbios.name", name))
        return list(dict.fromkeys(out))
    except (IndexError, struct.error):
        return []


def parse_pjl(response: bytes) -> list[tuple[str, str]]:
    """The printer's product name from its answer to ``@PJL INFO ID``."""
    lines = [_text(line) for line in response.replace(b"\x0c", b"").splitlines()]
    for index, line in enumerate(lines):
        if line.upper().startswith("@PJL INFO ID"):
            rest = [v for v in lines[index + 1:] if v]
            if rest:
                return [("pjl.id", rest[0].strip('"').strip())]
    return []


def parse_certificate(der: bytes) -> list[tuple[str, str]]:
    """The subject (RFC 4514) and SHA-256 fingerprint of a certificate a device presented."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    # the subject's serial number written as recog (and OpenSSL) write it, not as the OID
    # RFC 4514 leaves it: Cisco's phones name their model there ('SERIALNUMBER=PID:CP-8851')
    names = {NameOID.SERIAL_NUMBER: "SERIALNUMBER"}
    out = [("tls.cert_sha256", hashlib.sha256(der).hexdigest())]
    try:
        certificate = x509.load_der_x509_certificate(der)
        subject = certificate.subject.rfc4514_string(names)
        issuer = certificate.issuer.rfc4514_string(names)
    except ValueError:
        return out
    if issuer and issuer != subject:  # a self-signed certificate says it once
        out.append(("tls.issuer", issuer[:1024]))
    return [("tls.subject", subject[:1024]), *out] if subject else out


BACNET_PORT = 47808


def parse_bacnet_iam(answer: bytes) -> list[tuple[str, str]]:
    """A BACnet I-Am (the answer to the port probe's Who-Is): the device instance and, when
    present, the vendor identifier. Only building automation speaks BACnet."""
    try:
        if len(answer) < 4 or answer[0] != 0x81 or answer[1] not in (0x0A, 0x0B, 0x04):
            return []
        at = 4 + (6 if answer[1] == 0x04 else 0)  # a forwarded NPDU carries its origin
        if answer[at] != 0x01:
            return []
        control = answer[at + 1]
        at += 2
        if control & 0x20:  # destination specifier: DNET, DLEN, DADR (and a hop count later)
            at += 3 + answer[at + 2]
        if control & 0x08:  # source specifier: SNET, SLEN, SADR
            at += 3 + answer[at + 2]
        if control & 0x20:
            at += 1
        if answer[at] != 0x10 or answer[at + 1] != 0x00 or answer[at + 2] != 0xC4:
            return []  # not an unconfirmed I-Am opening with an object identifier
        obj = int.from_bytes(answer[at + 3:at + 7], "big")
        if len(answer) < at + 7 or obj >> 22 != 8:  # object type 8: device
            return []
        fields = [f"instance={obj & 0x3FFFFF}"]
        at += 7
        for position in range(3):  # max APDU (unsigned), segmentation, vendor id (unsigned)
            tag = answer[at]
            size = tag & 0x07
            if position == 2 and tag >> 4 == 2 and size <= 4 and len(answer) >= at + 1 + size:
                fields.append(f"vendor_id={int.from_bytes(answer[at + 1:at + 1 + size], 'big')}")
            at += 1 + size
        return [("bacnet.iam", "; ".join(fields))]
    except IndexError:  # cut short: what was read before the cut is not enough to go on
        return []


KNX_PORT = 3671
_KNX_DESCRIPTIONS = {0x0202: 8, 0x0204: 0, 0x020C: 8}  # search, description, extended search
_KNX_ROUTING = 0x0530  # a routing indication: a KNX telegram a router put on the IP side
_KNX_MEDIA = {0x02: "TP1", 0x04: "PL110", 0x10: "RF", 0x20: "IP"}
_KNX_FAMILIES = {2: "core", 3: "device management", 4: "tunnelling", 5: "routing",
                 6: "remote logging", 7: "remote configuration", 8: "object server",
                 9: "security"}


def parse_knx(answer: bytes) -> list[tuple[str, str]]:
    """A KNXnet/IP answer (to the port probe's description request, or a search response or
    routing indication heard on the segment) as 'name=MDT IP Router; medium=TP1;
    manufacturer_id=131; services=core,tunnelling,routing': the device information block
    and the service families. KNX is the bus of a building's lights, blinds and heating; an
    IP interface, router or controller is what speaks it on the network."""
    if len(answer) < 6 or answer[0] != 0x06 or answer[1] != 0x10:
        return []
    service = int.from_bytes(answer[2:4], "big")
    if service == _KNX_ROUTING:
        return [("knx.device", "services=routing")]
    if service not in _KNX_DESCRIPTIONS:
        return []
    at = 6 + _KNX_DESCRIPTIONS[service]  # a search response's HPAI before the blocks
    device = answer[at:at + 54]
    if len(device) < 54 or device[0] != 54 or device[1] != 0x01:  # DEVICE_INFO, 54 octets
        return []
    name = field_text(device[24:54].split(b"\0", 1)[0])
    fields = [f"name={name.replace(';', ',')}"] if name else []
    fields.append(f"medium={_KNX_MEDIA.get(device[2], hex(device[2]))}")
    fields.append(f"manufacturer_id={int.from_bytes(device[8:10], 'big')}")  # the serial's
    families = answer[at + 54:at + 54 + 2 + 2 * 16]
    if len(families) >= 2 and families[1] == 0x02 and families[0] % 2 == 0:
        ids = families[2:families[0]:2]
        said = [_KNX_FAMILIES[i] for i in dict.fromkeys(ids) if i in _KNX_FAMILIES]
        if said:
            fields.append("services=" + ",".join(said))
    return [("knx.device", "; ".join(fields))]


UBIQUITI_PORT = 10001
_UBIQUITI_ANSWERS = {1: frozenset({0x00}), 2: frozenset({0x06, 0x09, 0x0B})}  # version: commands
# What names the device, in the order the value gives it: the model (0x14 in version 1, 0x15
# in version 2), the short platform code, the firmware build (whose first word is the line:
# BZ a UniFi access point, US a UniFi switch, XM/XW/WA/XC airMAX radios) or version 2's
# version, and the host name. ESSID, uptime, addresses and the rest name nothing.
_UBIQUITI_FIELDS = ((frozenset({0x14, 0x15}), "model"), (frozenset({0x0C}), "platform"),
                    (frozenset({0x03}), "firmware"), (frozenset({0x16}), "version"),
                    (frozenset({0x0B}), "name"))
MAX_TLVS = 32  # records read from one discovery answer


def parse_ubiquiti(answer: bytes) -> list[tuple[str, str]]:
    """A Ubiquiti device's discovery answer (UDP 10001: to the port probe's request, or
    heard when a UniFi controller asks or the device announces itself) as
    'model=UAP-AC-Lite; platform=U7LT; firmware=BZ.qca956x.v6.5.28...; name=ap-hall': the
    UniFi access points, switches and gateways and the airMAX radios of a school's or a
    town hall's network answer it unless it was turned off."""
    if len(answer) < 4 or answer[1] not in _UBIQUITI_ANSWERS.get(answer[0], ()):
        return []
    if int.from_bytes(answer[2:4], "big") != len(answer) - 4:  # not this protocol, or cut
        return []
    found: dict[int, bytes] = {}
    at = 4
    for _ in range(MAX_TLVS):
        if at + 3 > len(answer):
            break
        kind, length = answer[at], int.from_bytes(answer[at + 1:at + 3], "big")
        if at + 3 + length > len(answer):
            return []  # a record longer than the answer: not Ubiquiti's
        found.setdefault(kind, answer[at + 3:at + 3 + length])
        at += 3 + length
    said = []
    for kinds, label in _UBIQUITI_FIELDS:
        raw = next((found[k] for k in sorted(kinds) if found.get(k)), b"")
        text = field_text(raw[:64])
        if text:
            said.append(f"{label}={text.replace(';', ',')}")
    if not any(s.split("=", 1)[0] in ("model", "platform", "firmware") for s in said):
        return []
    return [("ubiquiti.discovery", "; ".join(said))]


MODBUS_PORT = 502
# Modbus/TCP Read Device Identification (function 43, MEI 14), basic objects from the first:
# read-only, as every Modbus device that names itself answers; unit 255, which the Modbus
# TCP guide gives a device addressed by its IP address (a gateway answers for itself)
MODBUS_DEVICE_ID = bytes.fromhex("4e560000" "0005" "ff" "2b0e0100")
_MODBUS_OBJECTS = {0: "vendor", 1: "product", 2: "revision"}


def parse_modbus(answer: bytes) -> list[tuple[str, str]]:
    """A Modbus device's answer to Read Device Identification, as 'vendor=Schneider Electric;
    product=TM221CE16R; revision=V1.6': its maker, product code and revision, in its own
    words. An exception (the device does not name itself) or anything else says nothing."""
    if len(answer) < 7 + 7 or answer[2:4] != b"\0\0" or answer[7:9] != b"\x2b\x0e":
        return []
    pdu = answer[7:7 + int.from_bytes(answer[4:6], "big") - 1]
    # function, MEI type, read code, conformity, more follows, next object, object count
    at, count, fields = 7, pdu[6] if len(pdu) > 6 else 0, []
    for _ in range(min(count, 8)):
        if at + 2 > len(pdu):
            break
        number, size = pdu[at], pdu[at + 1]
        text = field_text(pdu[at + 2:at + 2 + size])
        if number in _MODBUS_OBJECTS and text and at + 2 + size <= len(pdu):
            fields.append(f"{_MODBUS_OBJECTS[number]}={text[:64].replace(';', ',')}")
        at += 2 + size
    return [("modbus.device", "; ".join(fields))] if fields else []


async def modbus_exchange(ip: str, port: int = MODBUS_PORT) -> bytes:
    """Ask a Modbus/TCP device to identify itself and read its one answer by its length: a
    Modbus server keeps the connection open, so the answer ends where its header says."""
    reader, writer = await asyncio.wait_for(bind.open_connection(ip, port), PROBE_TIMEOUT_S)
    try:
        writer.write(MODBUS_DEVICE_ID)
        await writer.drain()
        head = await asyncio.wait_for(reader.readexactly(7), PROBE_TIMEOUT_S)
        size = int.from_bytes(head[4:6], "big")
        if not 2 <= size <= 254:  # a Modbus PDU is at most 253 bytes, plus the unit
            return head
        return head + await asyncio.wait_for(reader.readexactly(size - 1), PROBE_TIMEOUT_S)
    except asyncio.IncompleteReadError as cut:
        return cut.partial
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


S7_PORT = 102
# S7comm over ISO-on-TCP (RFC 1006), as SIMATIC's own tools and nmap's s7-info ask: a COTP
# connection request to rack 0, slot 2 (an S7-300's CPU; an S7-1200 or 1500 takes any
# slot) or, refused, to TSAP 0x0200; S7 'setup communication'; then two reads of the
# system status list (SZL): 0x0011, the module's identification (order number, firmware),
# and 0x001C, its components (type name, station name, copyright). All read-only.
_S7_CONNECT = tuple(bytes.fromhex("0300001611e00000000100c1020100c202" + tsap + "c0010a")
                    for tsap in ("0102", "0200"))
_S7_SETUP = bytes.fromhex("0300001902f08032010000000000080000f0000001000101e0")
_S7_SZL_READ = bytes.fromhex("0300002102f080320700000000000800080001120411440100ff090004")
S7_SZL_IDS = (0x0011, 0x001C)
MAX_TPKT_BYTES = 2048  # a SZL answer of a few records; the PDU size asked for is 480
_S7_COMPONENTS = {7: "type", 4: "copyright", 1: "name"}  # SZL 0x001C record index: label


async def _tpkt(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
                ) -> bytes:
    """Send one ISO-on-TCP message and read the one answer by the length in its header."""
    writer.write(request)
    await writer.drain()
    head = await asyncio.wait_for(reader.readexactly(4), PROBE_TIMEOUT_S)
    size = int.from_bytes(head[2:4], "big")
    if head[0] != 3 or not 7 <= size <= MAX_TPKT_BYTES:
        return head
    return head + await asyncio.wait_for(reader.readexactly(size - 4), PROBE_TIMEOUT_S)


async def s7_exchange(ip: str, port: int = S7_PORT) -> tuple[bytes, ...]:
    """The SZL answers of an S7 PLC (or a PLC that speaks S7comm), () when nothing on the
    port speaks it: a PLC keeps the connection open, so each answer ends where its header
    says. A connection request refused (or hung up on) is tried with the other TSAP."""
    for connect in _S7_CONNECT:
        reader, writer = await asyncio.wait_for(bind.open_connection(ip, port), PROBE_TIMEOUT_S)
        try:
            answers = await _s7_session(reader, writer, connect)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
        if answers is not None:
            return answers
    return ()


async def _s7_session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      connect: bytes) -> tuple[bytes, ...] | None:
    """One connection's exchange; None when the connection request was not confirmed."""
    try:
        confirm = await _tpkt(reader, writer, connect)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    if confirm[5:6] != b"\xd0":  # not a connection confirm
        return None
    try:
        if (await _tpkt(reader, writer, _S7_SETUP))[7:8] != b"\x32":
            return ()
        return tuple([await _tpkt(reader, writer, _S7_SZL_READ + szl.to_bytes(2, "big")
                                  + b"\x00\x01") for szl in S7_SZL_IDS])
    except asyncio.IncompleteReadError as cut:
        return (cut.partial,)


def _szl_records(answer: bytes) -> tuple[int, list[bytes]]:
    """An S7 userdata answer's SZL id and records; (0, []) for anything else. After the
    TPKT (4 bytes), COTP (3) and S7 header (10): the parameters, then the data: return code
    0xff, transport size, length, SZL id, index, record length, record count, records."""
    if len(answer) < 17 or answer[7:9] != b"\x32\x07":
        return 0, []
    at = 17 + int.from_bytes(answer[13:15], "big")
    data = answer[at:at + int.from_bytes(answer[15:17], "big")]
    if len(data) < 12 or data[0] != 0xFF:
        return 0, []
    size, count = int.from_bytes(data[8:10], "big"), int.from_bytes(data[10:12], "big")
    if not 2 < size <= 64:
        return 0, []
    records = [data[12 + i * size:12 + (i + 1) * size] for i in range(min(count, 16))]
    return int.from_bytes(data[4:6], "big") & 0xFF, [r for r in records if len(r) == size]


def parse_s7(answers: Sequence[bytes]) -> list[tuple[str, str]]:
    """An S7 PLC's identification, from its answers to the two SZL reads, as 'order=6ES7
    214-1AG40-0XB0; type=CPU 1214C DC/DC/DC; firmware=4.2.3; copyright=Original Siemens
    Equipment; name=S7-1200 station_1': the order number (Siemens' part number), the module's
    type name, its firmware, and the names its integrator gave it."""
    found: dict[str, str] = {}
    for answer in answers[:len(S7_SZL_IDS)]:
        szl, records = _szl_records(answer)
        for record in records:
            index = int.from_bytes(record[:2], "big")
            if szl == 0x11 and index == 1 and len(record) >= 22:
                found.setdefault("order", field_text(record[2:22]))
            elif szl == 0x11 and index == 7 and len(record) >= 28 and record[24] == ord("V"):
                found.setdefault("firmware", ".".join(str(b) for b in record[25:28]))
            elif szl == 0x1C and index in _S7_COMPONENTS:
                found.setdefault(_S7_COMPONENTS[index], field_text(record[2:].split(b"\0", 1)[0]))
    labels = ("order", "type", "firmware", "copyright", "name")
    said = [f"{k}={found[k][:64].replace(';', ',')}" for k in labels if found.get(k)]
    return [("s7.device", "; ".join(said))] if said else []


def parse_udp(port: int, answer: bytes) -> list[tuple[str, str]]:
    """Observations from the answer the UDP port probe got."""
    if port == BACNET_PORT:
        return parse_bacnet_iam(answer)
    if port == KNX_PORT:
        return parse_knx(answer)
    if port == UBIQUITI_PORT:
        return parse_ubiquiti(answer)
    if port == 161:
        return [(snmp.KEYS[o], v) for o, v in snmp.parse_response(answer).items() if o in snmp.KEYS]
    if port == 5060:
        return parse_sip(answer)
    if port == 137:
        return parse_netbios(answer)
    return []


# How many device answers could not be read, by what was asked: each is logged and skipped,
# and the rest of the scan goes on (one hostile SNMP agent once aborted a whole scan).
SKIPPED: Counter[str] = Counter()


def _skip(what: str, exc: Exception) -> None:
    SKIPPED[what.rsplit(" ", 1)[-1]] += 1
    log.warning("skipped an unreadable answer (%s): %s: %s", what, type(exc).__name__,
                str(exc)[:200])


def alone(parse: Callable[[], list[_T]], what: str) -> list[_T]:
    """Run one parser over one device's answer; whatever it raises costs that answer only."""
    try:
        return parse()
    except Exception as exc:  # the answer is untrusted: any parser bug it finds is its own
        _skip(what, exc)
        return []


async def alone_async(probe: Awaitable[_R], what: str, empty: _R) -> _R:
    """One device's probe and its parsing; an exception skips this answer only (``empty``
    stands in for it)."""
    try:
        return await probe
    except Exception as exc:
        _skip(what, exc)
        return empty


async def exchange(ip: str, port: int, request: bytes, *,
                   limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """Send one request on a fresh connection and read the answer, bounded in time and size."""
    reader, writer = await asyncio.wait_for(bind.open_connection(ip, port), PROBE_TIMEOUT_S)
    try:
        return await _request(reader, writer, request, until_head=port in RTSP_PORTS,
                              limit=limit)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes, *,
                   until_head: bool = False, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """Send ``request`` and read the answer until the peer closes, bounded in time and size
    (``until_head``: until its headers end, for RTSP, which keeps the connection open)."""
    writer.write(request)
    await writer.drain()
    chunks, size = [], 0
    while size < limit:
        chunk = await asyncio.wait_for(reader.read(8192), PROBE_TIMEOUT_S)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if until_head and b"\r\n\r\n" in b"".join(chunks):
            break
    return b"".join(chunks)[:limit]


def _http_get(ip: str, path: str = "/") -> bytes:
    return f"GET {path} HTTP/1.0\r\nHost: {ip}\r\nUser-Agent: netvagt\r\n\r\n".encode()


_REDIRECTS = frozenset({b"301", b"302", b"303", b"307", b"308"})
_PATH_RE = re.compile(r"/[\x21-\x7e]{0,255}")  # printable, no space: nothing to inject


def redirect_path(answer: bytes, ip: str, port: int, *, tls: bool = False) -> str | None:
    """Where a page sends us, when that is another page of the same server: a camera or a
    printer whose '/' only redirects to '/login.html' or '/doc/index.html' names itself
    there. Another server, scheme or port, or a path that is not plain text: None."""
    status, headers, _ = _http_head(answer)
    if status not in _REDIRECTS or b"location" not in headers:
        return None
    where = headers[b"location"].decode("ascii", "replace")
    if not where.startswith("/") or where.startswith("//"):
        try:
            parts = urlsplit(where)
            same = (parts.scheme == ("https" if tls else "http") and parts.hostname == ip
                    and (parts.port or (443 if tls else 80)) == port)
        except ValueError:
            return None
        if not same:
            return None
        where = parts.path + (f"?{parts.query}" if parts.query else "") or "/"
    return where if where != "/" and _PATH_RE.fullmatch(where) else None


Ask = Callable[[bytes, int], Awaitable[bytes | None]]  # a request and a size bound -> answer


async def _web(ip: str, port: int, answer: bytes, ask: Ask, *, tls: bool,
               describe: Describe | None) -> list[Found]:
    """What a web server's answer to ``GET /`` says, then the page one redirect away on the
    same server and the server's icon, each asked with ``ask`` (HTTP or HTTPS alike)."""
    source = f"{port}/tcp"
    found = [*(Observation(k, v, source) for k, v in parse_http(answer)),
             *await asyncio.to_thread(described, describe, answer, "http", source)]
    more: list[tuple[bytes, int, Callable[[bytes], list[tuple[str, str]]]]] = []
    path = redirect_path(answer, ip, port, tls=tls)
    if path is not None:  # its page's title
        more.append((_http_get(ip, path), MAX_RESPONSE_BYTES, parse_http))
    if answer.startswith(b"HTTP/"):  # a web server: its icon names its product
        more.append((_http_get(ip, "/favicon.ico"), MAX_FAVICON_BYTES, parse_favicon))
    for request, limit, parse in more:
        with contextlib.suppress(TimeoutError, OSError, ssl.SSLError):
            found += [Observation(k, v, source) for k, v in parse(await ask(request, limit) or b"")]
    return list(dict.fromkeys(found))


async def _tls(ip: str, port: int, describe: Describe | None) -> list[Found]:
    """The certificate, then the page behind it: a device that serves its pages only over
    HTTPS (a redirect on port 80, or nothing there) says its server, realm and title here."""
    der, answer = await _tls_exchange(ip, port, _http_get(ip))
    found = [Observation(k, v, f"{port}/tcp") for k, v in parse_certificate(der)] if der else []
    if answer is None:
        return found  # the certificate alone: not a web server, or one that hung up

    async def ask(request: bytes, limit: int) -> bytes | None:
        return (await _tls_exchange(ip, port, request, limit=limit))[1]

    return [*found, *await _web(ip, port, answer, ask, tls=True, describe=describe)]


async def _tls_exchange(ip: str, port: int, request: bytes, *, limit: int = MAX_RESPONSE_BYTES
                        ) -> tuple[bytes | None, bytes | None]:
    """The server's certificate (DER), and its answer to ``request`` (None if it gave none)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we read the certificate, we do not trust it
    reader, writer = await asyncio.wait_for(
        bind.open_connection(ip, port, ssl=context, server_hostname=""), PROBE_TIMEOUT_S)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        try:
            return der, await _request(reader, writer, request, limit=limit)
        except (TimeoutError, OSError, ssl.SSLError):
            return der, None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


def ssh_hostkey_sync(ip: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """The server's host key, as ``<type> SHA256:<fingerprint>``, from the key exchange alone:
    no login is attempted. One device's SSH key on addresses in two zones is a bridge."""
    import paramiko

    try:
        sock = bind.create_connection((ip, port), timeout=timeout)
    except OSError:
        return None
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    transport.handshake_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
        digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
        return f"{key.get_name()} SHA256:{digest}"
    except (paramiko.SSHException, OSError, EOFError):
        return None
    finally:
        transport.close()
        sock.close()


async def ssh_hostkey(ip: str, port: int) -> list[Found]:
    key = await asyncio.to_thread(ssh_hostkey_sync, ip, port)
    return [Observation("ssh.hostkey", key, f"{port}/tcp")] if key else []


async def _ask(ip: str, port: int, payload: bytes, timeout: float) -> bytes | None:
    """One UDP request, one answer (or None when silent)."""
    transport, protocol = await bind.datagram_endpoint(UdpAnswer, (ip, port))
    try:
        transport.sendto(payload)
        return await asyncio.wait_for(protocol.answer, timeout)
    except (TimeoutError, OSError):
        return None
    finally:
        transport.close()


async def snmp_engine_id(ip: str, timeout: float = PROBE_TIMEOUT_S) -> list[Found]:
    """Ask an SNMP agent for its engine id (SNMPv3 discovery: no user, nothing read)."""
    answer = await _ask(ip, 161, snmp.discovery_request(), timeout)
    engine = snmp.parse_engine_id(answer) if answer else None
    return [Observation("snmp.engine_id", engine, "161/udp")] if engine else []


async def snmp_claims(ip: str, communities: Sequence[str],
                      timeout: float = PROBE_TIMEOUT_S) -> list[Found]:
    """The addresses an agent lists in its ipAddrTable (a GetNext walk, at most
    :data:`snmp.MAX_WALK` rows): claims, kept apart from the address that answered."""
    prefix = snmp.IP_AD_ENT_ADDR + "."
    for community in communities:
        current, listed = snmp.IP_AD_ENT_ADDR, []
        for step in range(snmp.MAX_WALK):
            answer = await _ask(ip, 161, snmp.get_request(
                community, (current,), step + 1, kind=snmp.GET_NEXT), timeout)
            values = snmp.parse_response(answer) if answer else {}
            if not values:
                break
            name, value = next(iter(values.items()))
            if not name.startswith(prefix) or name == current:
                break  # past the end of the table
            listed.append(value)
            current = name
        if listed or step:
            return [Observation(CLAIM_KEY, a, "snmp") for a in listed if a != ip]
    return []


# Reads a raw answer to one of our probes against a service database (the agent passes
# nmap's): (answer, what was asked: "banner", "http", "rtsp", "sip", "netbios") -> an
# observation value, or None. Scanners stay free of the fingerprint layer.
Describe = Callable[[bytes, str], str | None]
DESCRIBE_KEY = "nmap.match"


def described(describe: Describe | None, answer: bytes, asked: str, source: str) -> list[Found]:
    if describe is None or not answer:
        return []
    try:
        value = describe(answer, asked)
    except Exception as exc:  # the answer is untrusted, like any other parser's input
        _skip(f"{source} {asked} service database", exc)
        return []
    return [Observation(DESCRIBE_KEY, value, source)] if value else []


async def _probe(ip: str, port: int, describe: Describe | None = None) -> list[Found]:
    source = f"{port}/tcp"
    try:
        if port in TLS_PORTS:
            return await _tls(ip, port, describe)
        if port == PJL_PORT:
            return [Observation(k, v, source)
                    for k, v in parse_pjl(await exchange(ip, port, PJL_INFO_ID))]
        if port == MODBUS_PORT:
            return [Observation(k, v, source) for k, v in parse_modbus(await modbus_exchange(ip))]
        if port == S7_PORT:
            return [Observation(k, v, source) for k, v in parse_s7(await s7_exchange(ip))]
        if port in HTTP_PORTS:
            async def ask(request: bytes, limit: int) -> bytes | None:
                return await exchange(ip, port, request, limit=limit)

            return await _web(ip, port, await exchange(ip, port, _http_get(ip)), ask,
                              tls=False, describe=describe)
        if port in RTSP_PORTS:
            request = f"OPTIONS rtsp://{ip}:{port}/ RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode()
            answer = await exchange(ip, port, request)
            return [*(Observation(k, v, source) for k, v in parse_rtsp(answer)),
                    *await asyncio.to_thread(described, describe, answer, "rtsp", source)]
    except (TimeoutError, OSError, ssl.SSLError):
        return []
    return []


async def identify(
    open_ports: Mapping[str, Sequence[int]],
    *,
    banners: Mapping[tuple[str, int], bytes] | None = None,
    scope: Scope,
    snmp_hosts: Sequence[str] = (),
    snmp_communities: Sequence[str] = ("public",),
    pjl: bool = False,
    ssh_keys: bool = True,
    describe: Describe | None = None,
) -> dict[str, list[Found]]:
    """Observations per address, from targeted probes and the banners already read.

    ``snmp_hosts`` answered SNMP and are asked for their engine id; ``pjl`` allows
    ``@PJL INFO ID`` on port 9100 (a raw print port prints what it is sent, so only a
    well-formed PJL job, and only when the profile says so)."""
    for ip in (*open_ports, *snmp_hosts):
        scope.check(ip)
    found: dict[str, list[Found]] = {ip: [] for ip in (*open_ports, *snmp_hosts)}
    ssh_ports: list[tuple[str, int]] = []
    unasked: list[tuple[str, int, bytes]] = []  # banners for the service database
    for (ip, port), banner in (banners or {}).items():
        if ip in found:
            found[ip].extend(Observation(k, v, f"{port}/tcp") for k, v in
                             alone(lambda: parse_banner(port, banner), f"{ip}:{port} banner"))  # noqa: B023
            if describe is not None:
                unasked.append((ip, port, banner))
            if ssh_keys and banner.startswith(b"SSH-2.0-"):
                ssh_ports.append((ip, port))
    if unasked:  # regex work on a database of thousands of lines: off the event loop
        def read_banners() -> list[tuple[str, list[Found]]]:
            return [(host, described(describe, text, "banner", f"{number}/tcp"))
                    for host, number, text in unasked]

        for host, items in await asyncio.to_thread(read_banners):
            found[host].extend(items)
    slots = asyncio.Semaphore(CONCURRENCY)

    async def run(ip: str, port: int) -> None:
        async with slots:
            found[ip].extend(await alone_async(_probe(ip, port, describe), f"{ip}:{port}", []))

    async def engine(ip: str) -> None:
        async with slots:
            found[ip].extend(await alone_async(snmp_engine_id(ip), f"{ip} SNMPv3", []))
            found[ip].extend(await alone_async(snmp_claims(ip, snmp_communities),
                                               f"{ip} SNMP walk", []))

    wanted = (HTTP_PORTS | RTSP_PORTS | TLS_PORTS | {MODBUS_PORT, S7_PORT}
              | ({PJL_PORT} if pjl else frozenset()))
    jobs: Iterable[tuple[str, int]] = ((ip, p) for ip, ports in open_ports.items() for p in ports
                                       if p in wanted)
    async def hostkey(ip: str, port: int) -> None:
        async with slots:
            found[ip].extend(await alone_async(ssh_hostkey(ip, port), f"{ip}:{port} SSH key", []))

    await asyncio.gather(*(run(ip, p) for ip, p in jobs), *(engine(ip) for ip in snmp_hosts),
                         *(hostkey(ip, p) for ip, p in ssh_ports))
    return found

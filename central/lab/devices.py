"""Emulated devices for the lab: one process serves every device's services.

For each device it enters the device's namespace, binds the listening sockets there and
comes back, so a single asyncio loop answers for a dozen devices with realistic banners:
HTTP (Server header, title, optional Basic realm), HTTPS with the factory certificate's
subject, RTSP, server-first banners (SSH, FTP, Telnet with its IAC negotiation), silent
ports (printer 9100, Modbus 502), SNMP (system group, v3 engine id), BACnet, NetBIOS, SIP,
mDNS, SSDP and WS-Discovery responders that also announce themselves, and link-layer chatter (DHCP
requests, LLDP, CDP) sent from a packet socket on the device's interface.

Run as ``python -m central.lab.devices PLAN.json``; prints ``ready`` once every socket is
bound. Reads are bounded and every connection has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import json
import os
import re
import signal
import socket
import ssl
import sys
import uuid
from typing import Any, cast

from central.lab.netns import entered

MAX_REQUEST_BYTES = 8192  # read no more than this from a client
IDLE_S = 10.0  # a client that says nothing for this long is dropped


def _decode(text: str) -> bytes:
    """Params are JSON strings; ``\\xNN`` escapes in them stand for raw bytes (Telnet IAC)."""
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1")


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and b"\n\n" not in data and len(data) < MAX_REQUEST_BYTES:
        chunk = await asyncio.wait_for(reader.read(1024), IDLE_S)
        if not chunk:
            break
        data += chunk
    return data


def http_response(params: dict[str, str], request: bytes) -> bytes:
    title = params.get("title", "")
    body = (
        f"<!DOCTYPE html><html><head><title>{title}</title></head>"
        f"<body>{params.get('body', '')}</body></html>"
    ).encode()
    headers = []
    if "realm" in params:
        status = "401 Unauthorized"
        headers.append(f'WWW-Authenticate: Basic realm="{params["realm"]}"')
    else:
        status = "200 OK"
    if "server" in params:
        headers.append(f"Server: {params['server']}")
    headers.append("Date: " + email.utils.formatdate(usegmt=True))
    headers += ["Content-Type: text/html", f"Content-Length: {len(body)}", "Connection: close"]
    head = f"HTTP/1.1 {status}\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n"
    if request.startswith(b"HEAD "):
        return head.encode()
    return head.encode() + body


def rtsp_response(params: dict[str, str], request: bytes) -> bytes:
    cseq = "1"
    for line in request.split(b"\r\n"):
        if line.lower().startswith(b"cseq:"):
            cseq = line.split(b":", 1)[1].strip().decode("ascii", "replace")[:10]
    lines = ["RTSP/1.0 200 OK", f"CSeq: {cseq}"]
    if "server" in params:
        lines.append(f"Server: {params['server']}")
    lines.append("Public: OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                params: dict[str, str]) -> None:
    request = await _read_head(reader)
    if request:
        writer.write(http_response(params, request))


async def _xml(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
               params: dict[str, str]) -> None:
    request = await _read_head(reader)
    if request:
        body = params["body"].encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


async def _rtsp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                params: dict[str, str]) -> None:
    while request := await _read_head(reader):
        writer.write(rtsp_response(params, request))
        await writer.drain()


async def _banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  params: dict[str, str]) -> None:
    writer.write(_decode(params.get("banner", "")))
    await writer.drain()
    reply = _decode(params.get("reply", ""))
    while await asyncio.wait_for(reader.read(1024), IDLE_S):
        if reply:
            writer.write(reply)
            await writer.drain()


async def _hostile(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   params: dict[str, str]) -> None:
    """Malformed and oversized answers, then hold the line."""
    await _read_head(reader)
    writer.write(hostile_stream(params.get("flavour", "http")))
    await writer.drain()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(reader.read(1), IDLE_S)  # never close first


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  params: dict[str, str]) -> None:
    """Take what comes, say nothing."""
    while await asyncio.wait_for(reader.read(4096), IDLE_S):
        pass


async def _modbus(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  params: dict[str, str]) -> None:
    """A Modbus/TCP server that keeps the connection open: Read Device Identification
    (function 43, MEI 14) is answered with ``vendor``, ``product`` and ``revision``; any
    other request with exception 1 (illegal function), until the client hangs up."""
    with contextlib.suppress(asyncio.IncompleteReadError):
        while True:
            await _modbus_answer(reader, writer, params)


async def _modbus_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         params: dict[str, str]) -> None:
    head = await asyncio.wait_for(reader.readexactly(7), IDLE_S)
    pdu = await reader.readexactly(max(int.from_bytes(head[4:6], "big") - 1, 1))
    if pdu[:2] == b"\x2b\x0e":
        objects = [params.get(name, "").encode("latin-1")
                   for name in ("vendor", "product", "revision")]
        answer = bytes([0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, len(objects)]) + b"".join(
            bytes([number, len(value)]) + value for number, value in enumerate(objects))
    else:
        answer = bytes([pdu[0] | 0x80, 0x01])
    writer.write(head[:4] + (len(answer) + 1).to_bytes(2, "big") + head[6:7] + answer)
    await writer.drain()


async def _s7(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
              params: dict[str, str]) -> None:
    """An S7 PLC on ISO-on-TCP (RFC 1006): confirms a COTP connection request, acknowledges
    S7 'setup communication', and answers reads of the system status list 0x0011 (``order``
    number, ``firmware`` as V major.minor.patch) and 0x001C (``name``, ``type``,
    ``copyright``), written from the protocol's description here; the connection stays
    open until the client hangs up, as a PLC keeps it."""
    with contextlib.suppress(asyncio.IncompleteReadError):
        while True:
            head = await asyncio.wait_for(reader.readexactly(4), IDLE_S)
            body = await reader.readexactly(max(int.from_bytes(head[2:4], "big") - 4, 1))
            answer = _s7_answer(body, params)
            if answer:
                writer.write(b"\x03\x00" + (4 + len(answer)).to_bytes(2, "big") + answer)
                await writer.drain()


def _s7_answer(body: bytes, params: dict[str, str]) -> bytes | None:
    if body[1:2] == b"\xe0":  # COTP connection request: confirm, with the TSAPs asked for
        return (b"\x11\xd0" + body[4:6] + b"\x00\x01\x00" + bytes.fromhex("c0010a")
                + bytes.fromhex("c1020100c2020102"))
    if body[:4] != b"\x02\xf0\x80\x32":
        return None
    if body[4] == 0x01 and body[13:14] == b"\xf0":  # setup communication: acknowledged
        return (b"\x02\xf0\x80" + bytes.fromhex("320300000000000800000000")
                + bytes.fromhex("f0000001000101e0"))
    if body[4] != 0x07:
        return None
    szl = int.from_bytes(body[25:27], "big")

    def text(value: str, size: int, pad: bytes) -> bytes:
        return value.encode("latin-1")[:size].ljust(size, pad)

    if szl == 0x0011:
        major, minor, patch = (int(x) for x in params.get("firmware", "0.0.0").split("."))
        size, records = 28, [
            b"\x00\x01" + text(params.get("order", ""), 20, b" ") + bytes.fromhex("000000010001"),
            b"\x00\x06" + text(params.get("order", ""), 20, b" ") + bytes.fromhex("000000010001"),
            b"\x00\x07" + text("", 20, b" ") + b"\x00\x00V" + bytes([major, minor, patch])]
    elif szl == 0x001C:
        size, records = 34, [
            index.to_bytes(2, "big") + text(params.get(name, ""), 32, b"\0")
            for index, name in ((1, "name"), (2, "module"), (4, "copyright"), (7, "type"))]
    else:
        return None
    data = (b"\xff\x09" + (8 + len(records) * size).to_bytes(2, "big") + szl.to_bytes(2, "big")
            + b"\x00\x00" + size.to_bytes(2, "big") + len(records).to_bytes(2, "big")
            + b"".join(records))
    parameters = bytes.fromhex("000112081284010100000000")
    return (b"\x02\xf0\x80" + b"\x32\x07\x00\x00\x00\x00" + len(parameters).to_bytes(2, "big")
            + len(data).to_bytes(2, "big") + parameters + data)


_SPEAKERS = {"http": _http, "xml": _xml, "rtsp": _rtsp, "banner": _banner, "hostile": _hostile,
             "modbus": _modbus, "s7": _s7}


def handler(kind: str, params: dict[str, str]) -> Any:
    speak = _SPEAKERS.get(kind, _silent)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await speak(reader, writer, params)
            await writer.drain()
        except (TimeoutError, ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    return handle


class _Datagrams(asyncio.DatagramProtocol):
    """A UDP service: ``answer`` returns what to send back (or None for silence)."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        answer = self.answer(data[:MAX_REQUEST_BYTES], addr)
        if self.transport is not None and answer:
            self.transport.sendto(answer, addr)

    def answer(self, data: bytes, addr: tuple[str, int]) -> bytes | None:
        raise NotImplementedError


class _BacnetIAm(_Datagrams):
    """Answers a BACnet Who-Is with an I-Am (device instance from params)."""

    def __init__(self, params: dict[str, str]) -> None:
        super().__init__()
        self.instance = int(params.get("instance", "1"))

    def answer(self, data: bytes, addr: tuple[str, int]) -> bytes | None:
        if len(data) < 4 or data[0] != 0x81:
            return None
        obj = (8 << 22) | (self.instance & 0x3FFFFF)
        apdu = bytes([0x10, 0x00, 0xC4]) + obj.to_bytes(4, "big") + bytes.fromhex("2205c4910022")
        npdu = bytes([0x01, 0x00])
        bvlc = bytes([0x81, 0x0A]) + (4 + len(npdu) + len(apdu)).to_bytes(2, "big")
        return bvlc + npdu + apdu


class _KnxInterface(_Datagrams):
    """A KNX IP interface: answers a KNXnet/IP description request with its device
    information (friendly ``name``, KNX ``manufacturer`` code in its serial number, twisted
    pair medium) and service families (core, device management, tunnelling, routing), to the
    address the request came from (the request's 0.0.0.0:0, as behind NAT)."""

    def __init__(self, params: dict[str, str]) -> None:
        super().__init__()
        self.name = params.get("name", "KNX IP Router").encode("latin-1")[:30]
        self.manufacturer = int(params.get("manufacturer", "0"))

    def answer(self, data: bytes, addr: tuple[str, int]) -> bytes | None:
        if data[:4] != bytes.fromhex("06100203"):
            return None
        device = (bytes([54, 0x01, 0x02, 0x00]) + bytes.fromhex("1100") + bytes(2)
                  + self.manufacturer.to_bytes(2, "big") + bytes.fromhex("00112233")
                  + bytes([224, 0, 23, 12]) + bytes.fromhex("020000001f2a")
                  + self.name.ljust(30, b"\0"))
        families = bytes([10, 0x02, 2, 2, 3, 2, 4, 2, 5, 2])
        body = device + families
        return bytes.fromhex("06100204") + (6 + len(body)).to_bytes(2, "big") + body


class _UbiquitiDevice(_Datagrams):
    """A UniFi or airMAX device's discovery service on UDP 10001: answers the version 1
    request (01 00 00 00) with its records, as the firmware does: its MAC and address, the
    firmware build, uptime, host ``name``, short ``platform``, ESSID and ``model``. Written
    from the protocol's description here, never from the product's parser."""

    def __init__(self, params: dict[str, str]) -> None:
        super().__init__()
        self.params = params

    def answer(self, data: bytes, addr: tuple[str, int]) -> bytes | None:
        if data != b"\x01\x00\x00\x00":
            return None

        def record(kind: int, value: bytes) -> bytes:
            return bytes([kind]) + len(value).to_bytes(2, "big") + value

        mac = bytes.fromhex("0227220000" + "01")
        body = (record(0x02, mac + socket.inet_aton(self.params["address"])) + record(0x01, mac)
                + record(0x0A, (86400).to_bytes(4, "big"))
                + record(0x0B, self.params.get("name", "").encode())
                + record(0x0C, self.params.get("platform", "").encode())
                + record(0x03, self.params.get("firmware", "").encode())
                + record(0x0D, b"kommune-gaest") + record(0x0E, b"\x02")
                + record(0x14, self.params.get("model", "").encode())
                + record(0x10, b"\xe5\x17"))
        return b"\x01\x00" + len(body).to_bytes(2, "big") + body


# OIDs as the MIBs name them (the lab's own constants: never the product's)
_SYSDESCR, _SYSOBJECTID, _SYSNAME = "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.5.0"
_IP_AD_ENT_ADDR = "1.3.6.1.2.1.4.20.1.1"  # ipAddrTable's ipAdEntAddr
_USM_UNKNOWN_ENGINE_IDS = "1.3.6.1.6.3.15.1.1.4.0"


def _ber(tag: int, *parts: bytes) -> bytes:
    from scapy.asn1.ber import BER_len_enc

    body = b"".join(parts)
    return bytes([tag]) + BER_len_enc(len(body)) + body


class _SnmpAgent(_Datagrams):
    """An agent with a read community (v2c GETs of the system group, GETNEXT through its
    ipAddrTable) that also answers SNMPv3 engine discovery with its engine id; a wrong
    community gets silence, as real ones do. Built on scapy's SNMP layers and BER codec,
    never on the product's encoder: the lab checks the product against another reading."""

    def __init__(self, params: dict[str, str]) -> None:
        super().__init__()
        import scapy.layers.snmp  # noqa: F401 - loads scapy's MIB, which ASN1_OID reads
        from scapy.asn1.asn1 import ASN1_IPADDRESS, ASN1_OID, ASN1_STRING

        self.community = params.get("community", "public").encode()
        self.values: dict[str, Any] = {_SYSDESCR: ASN1_STRING(params["sysdescr"][:255].encode())}
        if "sysobjectid" in params:
            self.values[_SYSOBJECTID] = ASN1_OID(params["sysobjectid"])
        if "sysname" in params:
            self.values[_SYSNAME] = ASN1_STRING(params["sysname"].encode())
        self.engine_id = bytes.fromhex(params.get("engine_id", ""))
        # ipAddrTable, in OID order: the addresses the device says it has
        rows = [(f"{_IP_AD_ENT_ADDR}.{a}", a) for a in params.get("addresses", "").split(",") if a]
        self.table = sorted(((oid, ASN1_IPADDRESS(a)) for oid, a in rows),
                            key=lambda row: tuple(int(x) for x in row[0].split(".")))

    def _next(self, name: str) -> tuple[str, Any]:
        from scapy.asn1.asn1 import ASN1_STRING

        after = tuple(int(x) for x in name.split("."))
        for oid, value in self.table:
            if tuple(int(x) for x in oid.split(".")) > after:
                return oid, value
        # past the table: the next object, as agents do
        return "1.3.6.1.2.1.4.21.1.1.0", ASN1_STRING(b"end")

    def answer(self, data: bytes, addr: tuple[str, int]) -> bytes | None:
        from scapy.asn1.asn1 import ASN1_Codecs
        from scapy.layers.snmp import ASN1_Class_SNMP

        try:
            decoded: Any = ASN1_Codecs.BER.dec(data, context=ASN1_Class_SNMP)
            message = decoded[0]
            version = int(message.val[0].val)
            msg_id = int(message.val[1].val[0].val) if version == 3 else 0
        except Exception:  # anything scapy cannot read: silence, as a real agent
            return None
        if version == 3:
            return self._report(msg_id) if self.engine_id else None
        return self._response(data)

    def _response(self, data: bytes) -> bytes | None:
        from scapy.asn1.asn1 import ASN1_OID
        from scapy.layers.snmp import SNMP, SNMPget, SNMPnext, SNMPresponse, SNMPvarbind

        request = SNMP(data)
        if bytes(request.community.val) != self.community or not isinstance(
                request.PDU, SNMPget | SNMPnext):
            return None
        answers = []
        for varbind in request.PDU.varbindlist:
            name = varbind.oid.val
            if isinstance(request.PDU, SNMPnext):
                answers.append(self._next(name))
            elif name in self.values:
                answers.append((name, self.values[name]))
        return bytes(SNMP(version=request.version, community=request.community,
                          PDU=SNMPresponse(id=request.PDU.id, varbindlist=[
                              SNMPvarbind(oid=ASN1_OID(oid), value=value)
                              for oid, value in answers])))

    def _report(self, msg_id: int) -> bytes:
        """The RFC 3414 section 4 Report: usmStatsUnknownEngineIDs, with our engine id."""
        from scapy.asn1.asn1 import ASN1_COUNTER32, ASN1_INTEGER, ASN1_OID, ASN1_SEQUENCE, ASN1_STRING

        usm = bytes(ASN1_SEQUENCE([ASN1_STRING(self.engine_id), ASN1_INTEGER(1), ASN1_INTEGER(1),
                                   ASN1_STRING(b""), ASN1_STRING(b""), ASN1_STRING(b"")]))
        header = ASN1_SEQUENCE([ASN1_INTEGER(msg_id), ASN1_INTEGER(65507), ASN1_STRING(b"\x00"),
                                ASN1_INTEGER(3)])
        varbinds = ASN1_SEQUENCE([ASN1_SEQUENCE([ASN1_OID(_USM_UNKNOWN_ENGINE_IDS),
                                                 ASN1_COUNTER32(1)])])
        report = _ber(0xA8, bytes(ASN1_INTEGER(msg_id)), bytes(ASN1_INTEGER(0)),
                      bytes(ASN1_INTEGER(0)), bytes(varbinds))
        scoped = _ber(0x30, bytes(ASN1_STRING(self.engine_id)), bytes(ASN1_STRING(b"")), report)
        return _ber(0x30, bytes(ASN1_INTEGER(3)), bytes(header), bytes(ASN1_STRING(usm)), scoped)


class _NetbiosNode(_Datagrams):
    """Answers a NetBIOS node status query with its computer name and workgroup."""

    def __init__(self, params: dict[str, str]) -> None:
        super().__init__()
        self.names = [(params["name"], 0x00, 0x0400), (params["group"], 0x00, 0x8400),
                      (params["name"], 0x20, 0x0400)]

    def answer(self, data: bytes, addr: tuple[str, int]) -> bytes | None:
        if len(data) < 50 or data[-4:] != bytes.fromhex("00210001"):
            return None
        table = b"".join(n.encode()[:15].ljust(15, b" ") + bytes([s]) + f.to_bytes(2, "big")
                         for n, s, f in self.names)
        rdata = bytes([len(self.names)]) + table + bytes(6 + 40)
        head = data[:2] + bytes.fromhex("8400" "0000" "0001" "0000" "0000")
        return (head + data[12:46] + bytes.fromhex("00210001") + bytes(4)
                + len(rdata).to_bytes(2, "big") + rdata)


class _SipPhone(_Datagrams):
    """Answers SIP OPTIONS as a desk phone does: 200 OK with its User-Agent."""

    def __init__(self, params: dict[str, str]) -> None:
        super().__init__()
        self.user_agent = params["user_agent"]

    def answer(self, data: bytes, addr: tuple[str, int]) -> bytes | None:
        if not data.startswith(b"OPTIONS "):
            return None
        echoed = [line for line in data.split(b"\r\n")
                  if line.lower().startswith((b"via:", b"from:", b"to:", b"call-id:", b"cseq:"))]
        lines = [b"SIP/2.0 200 OK", *echoed, f"User-Agent: {self.user_agent}".encode(),
                 b"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY", b"Content-Length: 0"]
        return b"\r\n".join(lines) + b"\r\n\r\n"


class _MdnsResponder(_Datagrams):
    """An mDNS responder for one service instance: answers browse queries (legacy unicast
    straight back to the asker, like Apple's and Avahi's responders) and announces itself."""

    def __init__(self, params: dict[str, str]) -> None:
        super().__init__()
        from scapy.layers.dns import DNS, DNSRR

        self.DNS = DNS
        self.types = [t for t in params["services"].split(",") if t]
        instance = params["instance"]
        host = params["hostname"]
        records = [DNSRR(rrname="_services._dns-sd._udp.local.", type="PTR", rdata=f"{t}.local.")
                   for t in self.types]
        records += [DNSRR(rrname=f"{t}.local.", type="PTR", rdata=f"{instance}.{t}.local.")
                    for t in self.types]
        records += [DNSRR(rrname=f"{instance}.{t}.local.", type="TXT",
                          rdata=[s.encode() for s in params.get("txt", "").split("|") if s])
                    for t in self.types]
        records += [DNSRR(rrname=f"{host}.local.", type="A", rdata=params["address"])]
        if params.get("claim"):
            records.append(DNSRR(rrname=f"{host}.local.", type="A", rdata=params["claim"]))
        self.records = records

    def response(self, query_id: int = 0) -> bytes:
        return bytes(self.DNS(id=query_id, qr=1, aa=1, an=self.records))

    def answer(self, data: bytes, addr: tuple[str, int]) -> bytes | None:
        try:
            asked = self.DNS(data)
        except Exception:
            return None
        if asked.qr != 0 or not asked.qd:
            return None
        names = {q.qname.decode().rstrip(".").removesuffix(".local") for q in asked.qd}
        if not names & {"_services._dns-sd._udp", *self.types}:
            return None
        if addr[1] == 5353:  # a full mDNS querier: the answer is multicast (announce does it)
            return None
        return self.response(asked.id)


class _MdnsReflector(_Datagrams):
    """An mDNS reflector (Avahi's ``enable-reflector``, a wireless controller's mDNS gateway):
    it repeats other segments' devices' announcements, one device a message, from its own
    address. ``params["repeats"]``: a JSON list of those devices' responder parameters;
    ``params["own"]`` (optional): its own, which it announces too (Avahi's host does)."""

    def __init__(self, params: dict[str, str]) -> None:
        super().__init__()
        hosts = ([json.loads(params["own"])] if params.get("own") else []) + json.loads(
            params["repeats"])
        self.announced = [_MdnsResponder(host) for host in hosts]

    def responses(self) -> list[bytes]:
        return [device.response() for device in self.announced]

    def answer(self, data: bytes, addr: tuple[str, int]) -> bytes | None:
        return None  # it repeats announcements only


class _SsdpResponder(_Datagrams):
    """Answers an M-SEARCH, as a UPnP device does, with where its description lives, and
    says it is alive now and then (NOTIFY)."""

    def __init__(self, params: dict[str, str]) -> None:
        super().__init__()
        self.location, self.server, self.usn = params["location"], params["server"], params["usn"]

    def notify(self) -> bytes:
        return ("NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n"
                f"CACHE-CONTROL: max-age = 1800\r\nLOCATION: {self.location}\r\n"
                f"NT: upnp:rootdevice\r\nNTS: ssdp:alive\r\nSERVER: {self.server}\r\n"
                f"USN: {self.usn}::upnp:rootdevice\r\n\r\n").encode()

    def answer(self, data: bytes, addr: tuple[str, int]) -> bytes | None:
        if not data.startswith(b"M-SEARCH"):
            return None
        return ("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age = 1800\r\nEXT:\r\n"
                f"LOCATION: {self.location}\r\nSERVER: {self.server}\r\n"
                "ST: upnp:rootdevice\r\n"
                f"USN: {self.usn}::upnp:rootdevice\r\n\r\n").encode()


class _WsdResponder(_Datagrams):
    """A WS-Discovery target, as an ONVIF camera or a WSD printer is: answers a Probe
    (for any type, or for one of its own) with a ProbeMatch, and says Hello now and then.
    The SOAP is written here by hand, as the devices' firmware writes it."""

    ENVELOPE = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope"'
        ' xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"'
        ' xmlns:wsdd="http://schemas.xmlsoap.org/ws/2005/04/discovery"'
        ' xmlns:dn="http://www.onvif.org/ver10/network/wsdl"'
        ' xmlns:tds="http://www.onvif.org/ver10/device/wsdl"'
        ' xmlns:wsdp="http://schemas.xmlsoap.org/ws/2006/02/devprof"'
        ' xmlns:wprt="http://schemas.microsoft.com/windows/2006/08/wdp/print">'
        "<SOAP-ENV:Header><wsa:MessageID>urn:uuid:{message}</wsa:MessageID>{relates}"
        "<wsa:To>{to}</wsa:To>"
        "<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/{action}</wsa:Action>"
        "</SOAP-ENV:Header><SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>")
    MATCH = ("<wsa:EndpointReference><wsa:Address>urn:uuid:{endpoint}</wsa:Address>"
             "</wsa:EndpointReference><wsdd:Types>{types}</wsdd:Types>"
             "<wsdd:Scopes>{scopes}</wsdd:Scopes><wsdd:XAddrs>{xaddrs}</wsdd:XAddrs>"
             "<wsdd:MetadataVersion>1</wsdd:MetadataVersion>")

    def __init__(self, params: dict[str, str]) -> None:
        super().__init__()
        self.types = params["types"]
        self.endpoint = str(uuid.uuid5(uuid.NAMESPACE_URL, params["address"]))
        self.match = self.MATCH.format(endpoint=self.endpoint, types=self.types,
                                       scopes=params.get("scopes", ""), xaddrs=params["xaddrs"])

    def _message(self, action: str, body: str, to: str, relates: str = "") -> bytes:
        return self.ENVELOPE.format(message=uuid.uuid4(), relates=relates, to=to,
                                    action=action, body=body).encode()

    def hello(self) -> bytes:
        return self._message("Hello", f"<wsdd:Hello>{self.match}</wsdd:Hello>",
                             "urn:schemas-xmlsoap-org:ws:2005:04:discovery")

    def answer(self, data: bytes, addr: tuple[str, int]) -> bytes | None:
        if b"discovery/Probe<" not in data:
            return None
        asked = re.search(rb"<(?:\w+:)?Types>([^<]*)</", data)
        wanted = {t.rsplit(b":", 1)[-1] for t in asked.group(1).split()} if asked else set()
        own = {t.rsplit(":", 1)[-1].encode() for t in self.types.split()} | {b"Device"}
        if wanted and not wanted <= own:
            return None
        message_id = re.search(rb"MessageID>([^<]{1,100})<", data)
        relates = (f"<wsa:RelatesTo>{message_id.group(1).decode('ascii', 'replace')}"
                   "</wsa:RelatesTo>") if message_id else ""
        return self._message(
            "ProbeMatches", f"<wsdd:ProbeMatches><wsdd:ProbeMatch>{self.match}"
            "</wsdd:ProbeMatch></wsdd:ProbeMatches>",
            "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous", relates)


# --------------------------------------------------------------------------- a hostile device
# Answers written by hand, byte by byte, to be what no real product sends: the attack
# campaign's findings (an SNMPv3 report with an empty security SEQUENCE, a truncated ARP
# frame) and the classic parser killers (oversized headers, quadratic titles, compression
# loops, lengths that lie, ports out of range).

def hostile_stream(flavour: str) -> bytes:
    if flavour == "rtsp":  # a status line, then 200 KB of header with no end and binary in it
        return b"RTSP/1.0 200 OK\r\nServer: " + b"\x00\xff<script>" * 20_000
    # HTTP: a 60 KB Server header, a title that never closes, repeated openings
    return (b"HTTP/1.1 200 OK\r\nServer: " + b"=cmd|' /C calc'!A0 " * 3000 + b"\r\n"
            + b"WWW-Authenticate: Basic realm=\"" + b"\xfe" * 5000 + b"\r\n\r\n"
            + b"<title>" * 30_000)


def _tlv(tag: int, body: bytes) -> bytes:
    """BER, written here by hand (not with the product's own encoder)."""
    n = len(body)
    size = bytes([n]) if n < 0x80 else bytes([0x82, n >> 8, n & 0xFF])
    return bytes([tag]) + size + body


HOSTILE_SNMP_V3 = _tlv(0x30, b"\x02\x01\x03" + _tlv(0x30, b"\x02\x01\x01\x02\x03\x00\xff\xe3"
                                                      b"\x04\x01\x00\x02\x01\x03")
                       + _tlv(0x04, b"\x30\x00") + _tlv(0x30, b""))  # empty security SEQUENCE
HOSTILE_SNMP_V2 = [
    b"\x30\x84\xff\xff\xff\xff\x02\x01\x01",  # a length that lies (4 GB)
    b"\x30" + b"\x80" * 64,  # indefinite lengths nested past any sane depth
    _tlv(0x30, b"\x02\x01\x01\x04\x06public" + _tlv(0xA2, b"\x02\x01\x01\x02\x01\x00"
         b"\x02\x01\x00" + _tlv(0x30, _tlv(0x30, b"\x06\x00\x04\x01x")))),  # an empty OID
]
# mDNS: a response whose answer name points at itself (a compression loop), and one cut short
HOSTILE_MDNS = [
    b"\x00\x00\x84\x00\x00\x00\x00\x01\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01\x00\x00\x00x\x00\x04",
    b"\x00\x00\x84\x00\x00\x00\xff\xff\x00\x00\x00\x00\x05_http",
]


class _HostileDatagrams(_Datagrams):
    """SNMP, mDNS or SSDP answers that are malformed or oversized, in turn."""

    def __init__(self, params: dict[str, str]) -> None:
        super().__init__()
        self.flavour, self.address, self.turn = params["flavour"], params["address"], 0

    def answer(self, data: bytes, addr: tuple[str, int]) -> bytes | None:
        self.turn += 1
        if self.flavour == "snmp":
            if data[:16].find(b"\x02\x01\x03") >= 0:  # a v3 message: the campaign's report
                return HOSTILE_SNMP_V3
            return HOSTILE_SNMP_V2[self.turn % len(HOSTILE_SNMP_V2)]
        if self.flavour == "mdns":
            if addr[1] == 5353:
                return None
            return data[:2] + HOSTILE_MDNS[self.turn % len(HOSTILE_MDNS)][2:]
        if not data.startswith(b"M-SEARCH"):
            return None
        return (b"HTTP/1.1 200 OK\r\nLOCATION: http://" + self.address.encode()
                + b":99999/desc.xml\r\nSERVER: " + b"A" * 3000 + b"\r\n"
                + b"X-Junk: \x00\xff\r\n" * 200 + b"\r\n")


def hostile_frames(mac: str) -> list[bytes]:
    """Frames cut short on the wire: the 22-byte ARP of the campaign (with this device's
    MAC), an LLDP frame whose TLV length runs past the end, a DHCP request cut in its
    options, and a CDP header with nothing after it."""
    src = bytes.fromhex(mac.replace(":", ""))
    return [
        b"\xff" * 6 + src + b"\x08\x06\xa3\x01\x28\x00\x06\xb9\x00\x02",
        b"\x01\x80\xc2\x00\x00\x0e" + src + b"\x88\xcc\x02\xff\x04" + src,
        b"\xff" * 6 + src + b"\x08\x00\x45\x00\x01\x48\x00\x00\x00\x00\x40\x11\x00\x00"
        + b"\x00" * 4 + b"\xff" * 4 + b"\x00\x44\x00\x43\x01\x34\x00\x00\x01\x01\x06",
        b"\x01\x00\x0c\xcc\xcc\xcc" + src + b"\x00\x08\xaa\xaa\x03\x00\x00\x0c\x20\x00",
    ]


def _lldp_med(params: dict[str, str]) -> Any:
    """LLDP-MED's TLVs (ANSI/TIA-1057) when the device has a class: capabilities and class,
    then the inventory it names (software, manufacturer, model), as a phone sends them."""
    from scapy.contrib.lldp import LLDPDUGenericOrganisationSpecific as Org
    from scapy.packet import NoPayload

    if "med_class" not in params:
        return NoPayload()
    tlvs = Org(org_code=0x0012BB, subtype=1, data=b"\x00\x33" + bytes([int(params["med_class"])]))
    for subtype, name in ((7, "med_software"), (9, "med_manufacturer"), (10, "med_model")):
        if name in params:
            tlvs = tlvs / Org(org_code=0x0012BB, subtype=subtype, data=params[name].encode())
    return tlvs


def chatter_frames(kinds: str, params: dict[str, str], mac: str, address: str) -> list[bytes]:
    """The frames a device sends unasked: a DHCP request (hostname, vendor class, parameter
    list), LLDP, CDP, a switch port's DTP (status byte ``dtp``, hex), an IPv6 router
    advertisement, ARP for its gateway, a laptop's check for its last network's router, a
    standby router's HSRP hello (from ``source``, the address of the leg it is sent on).
    Built with scapy to the real formats; tagged for ``vlan`` when given."""
    from scapy.layers.l2 import Ether

    frames: list[bytes] = []
    for kind in kinds.split(","):
        if kind == "dhcp":
            from scapy.layers.dhcp import BOOTP, DHCP
            from scapy.layers.inet import IP, UDP

            options: list[Any] = [("message-type", "request"), ("requested_addr", address)]
            if params.get("hostname"):
                options.append(("hostname", params["hostname"].encode()))
            if params.get("vendor_class"):
                options.append(("vendor_class_id", params["vendor_class"].encode()))
            if params.get("params"):
                options.append(("param_req_list", [int(p) for p in params["params"].split(",")]))
            frames.append(bytes(
                Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")
                / IP(src="0.0.0.0", dst="255.255.255.255")  # noqa: S104 - no address yet
                / UDP(sport=68, dport=67)
                / BOOTP(chaddr=bytes.fromhex(mac.replace(":", "")), xid=0x3903F326)
                / DHCP(options=[*options, "end"])))
        elif kind == "lldp":
            from scapy.contrib.lldp import (
                LLDPDUChassisID,
                LLDPDUEndOfLLDPDU,
                LLDPDUManagementAddress,
                LLDPDUPortID,
                LLDPDUSystemDescription,
                LLDPDUSystemName,
                LLDPDUTimeToLive,
            )

            mgmt = params.get("lldp_mgmt", address)
            frames.append(bytes(
                Ether(src=mac, dst="01:80:c2:00:00:0e") / LLDPDUChassisID(subtype=4, id=mac)
                / LLDPDUPortID(subtype=5, id=b"P1") / LLDPDUTimeToLive(ttl=120)
                / LLDPDUSystemName(system_name=params.get("lldp_name", "").encode())
                / LLDPDUSystemDescription(description=params["lldp_descr"].encode())
                / LLDPDUManagementAddress(management_address_subtype=1,
                                          management_address=bytes(int(b) for b in mgmt.split(".")),
                                          interface_numbering_subtype=2, interface_number=1)
                / _lldp_med(params) / LLDPDUEndOfLLDPDU()))
        elif kind in ("cdp", "dtp"):
            frames.append(_cisco_chatter(kind, params, mac, address))
        elif kind == "ra":
            frames.append(router_advertisement(mac, params.get("ra_prefix", "fd99::")))
        elif kind in ("arp", "dna", "hsrp", "arp-spoof", "knx-routing", "mndp"):
            frames.append(_router_chatter(kind, params, mac, address))
        elif kind == "hostile":
            frames.extend(hostile_frames(mac))
    if params.get("vlan"):  # a phone on the voice VLAN of an office port: tagged
        tag = b"\x81\x00" + int(params["vlan"]).to_bytes(2, "big")
        frames = [f[:12] + tag + f[12:] for f in frames]
    return frames


def _cisco_chatter(kind: str, params: dict[str, str], mac: str, address: str) -> bytes:
    """CDP (a phone's or a switch's platform and address), or DTP: a Cisco access switch's
    port saying it may become a trunk (``dtp``: the status byte, hex; 04 is dynamic auto)."""
    from scapy.layers.l2 import LLC, SNAP, Dot3

    if kind == "dtp":
        from scapy.contrib.dtp import DTP, DTPDomain, DTPNeighbor, DTPStatus, DTPType

        return bytes(Dot3(src=mac, dst="01:00:0c:cc:cc:cc") / LLC() / SNAP()
                     / DTP(tlvlist=[DTPDomain(), DTPStatus(status=bytes([int(params["dtp"], 16)])),
                                    DTPType(), DTPNeighbor(neighbor=mac)]))
    from scapy.contrib.cdp import CDPAddrRecordIPv4, CDPMsgAddr, CDPMsgDeviceID, CDPMsgPlatform, CDPv2_HDR

    return bytes(Dot3(src=mac, dst="01:00:0c:cc:cc:cc") / LLC() / SNAP()
                 / CDPv2_HDR(msg=[CDPMsgDeviceID(val=params.get("cdp_id", "SEP").encode()),
                                  CDPMsgPlatform(val=params["cdp_platform"].encode()),
                                  CDPMsgAddr(addr=[CDPAddrRecordIPv4(addr=address)])]))


def _router_chatter(kind: str, params: dict[str, str], mac: str, address: str) -> bytes:
    """ARP to everyone for the device's gateway (a static address in use), a laptop's
    unicast check for the router of the network it last joined (RFC 4436: from the address
    it held there), ARP spoofing (a router's address claimed to one host, as bettercap
    tells each host in turn), a standby router's HSRP hello (from ``source``, the
    address of the leg it is sent on), a KNX IP router's routing indication, or a MikroTik
    router's neighbour discovery announcement (MNDP: ``platform``, ``board``, ``version``,
    ``identity``)."""
    from scapy.layers.hsrp import HSRP
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import ARP, Ether

    if kind == "arp":
        return bytes(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / ARP(
            op=1, hwsrc=mac, psrc=params.get("arp_from", address), pdst=params["arp_for"]))
    if kind == "arp-spoof":  # "the router's address is at my MAC", told to one host
        return bytes(Ether(src=mac, dst=params["to_mac"]) / ARP(
            op=2, hwsrc=mac, psrc=params["spoof"], hwdst=params["to_mac"], pdst=params["to"]))
    if kind == "knx-routing":  # a KNX IP router putting a bus telegram on the IP side
        telegram = bytes.fromhex("2900bce011010a0301008081")  # cEMI L_Data.ind: a switch on
        return bytes(Ether(src=mac, dst="01:00:5e:00:17:0c") / IP(src=address, dst="224.0.23.12")
                     / UDP(sport=3671, dport=3671)
                     / (bytes.fromhex("06100530") + (6 + len(telegram)).to_bytes(2, "big")
                        + telegram))
    if kind == "mndp":
        return bytes(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / IP(src=address, dst="255.255.255.255")
                     / UDP(sport=5678, dport=5678) / _mndp(params, mac, address))
    if kind == "dna":
        return bytes(Ether(src=mac, dst=params["dna_router_mac"]) / ARP(
            op=1, hwsrc=mac, psrc=params["dna_from"], hwdst=params["dna_router_mac"],
            pdst=params["dna_router"]))
    return bytes(Ether(src=mac, dst="01:00:5e:00:00:02")
                 / IP(src=params.get("source", address), dst="224.0.0.2", ttl=1)
                 / UDP(sport=1985, dport=1985)
                 / HSRP(group=int(params.get("group", "1")), state=8,
                        virtualIP=params["hsrp_virtual"]))


def _mndp(params: dict[str, str], mac: str, address: str) -> bytes:
    """An MNDP announcement as RouterOS sends it: a 4-byte header (version, TTL, sequence),
    then records of a 16-bit type and length (the uptime little-endian, as RouterOS has it)."""

    def record(kind: int, value: bytes) -> bytes:
        return kind.to_bytes(2, "big") + len(value).to_bytes(2, "big") + value

    return (b"\x00\x00\x00\x01" + record(1, bytes.fromhex(mac.replace(":", "")))
            + record(5, params.get("identity", "MikroTik").encode())
            + record(7, params.get("version", "").encode())
            + record(8, params.get("platform", "MikroTik").encode())
            + record(10, (3600).to_bytes(4, "little")) + record(11, b"ABCD-1234")
            + record(12, params.get("board", "").encode()) + record(14, b"\x00")
            + record(16, b"bridge/ether2") + record(17, socket.inet_aton(address)))


def router_advertisement(mac: str, prefix: str) -> bytes:
    """An IPv6 router advertisement from the device's link-local address, offering itself
    as default router and a /64 to configure addresses from: what a travel router, a
    phone's hotspot or Windows' connection sharing sends."""
    from scapy.layers.inet6 import (
        ICMPv6ND_RA,
        ICMPv6NDOptPrefixInfo,
        ICMPv6NDOptSrcLLAddr,
        IPv6,
    )
    from scapy.layers.l2 import Ether

    octets = bytearray(bytes.fromhex(mac.replace(":", "")))
    octets[0] ^= 0x02  # the EUI-64 interface identifier (RFC 4291, appendix A)
    eui = octets[:3] + b"\xff\xfe" + octets[3:]
    link_local = "fe80::" + ":".join(eui[i:i + 2].hex() for i in range(0, 8, 2))
    return bytes(Ether(src=mac, dst="33:33:00:00:00:01")
                 / IPv6(src=link_local, dst="ff02::1", hlim=255)
                 / ICMPv6ND_RA(routerlifetime=1800) / ICMPv6NDOptSrcLLAddr(lladdr=mac)
                 / ICMPv6NDOptPrefixInfo(prefix=prefix, prefixlen=64))


async def _repeat(interval: float, send: Any) -> None:
    """Send now, then every ``interval`` seconds, until cancelled; errors do not stop it."""
    while True:
        with contextlib.suppress(OSError):
            send()
        await asyncio.sleep(interval)


class _DhcpServer(_Datagrams):
    """A DHCP server that answers every DISCOVER with an offer, broadcast: a travel
    router plugged in by its LAN port, handing out an address of its own subnet and
    itself (``router``, default: its address) as the router."""

    def __init__(self, params: dict[str, str]) -> None:
        super().__init__()
        self.address = params["address"]
        self.router = params.get("router", self.address)
        self.offered = params.get("offered", self.address)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        answer = self.answer(data[:MAX_REQUEST_BYTES], addr)
        if self.transport is not None and answer:
            sock = self.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            self.transport.sendto(answer, ("255.255.255.255", 68))

    def answer(self, data: bytes, addr: tuple[str, int]) -> bytes | None:
        from scapy.layers.dhcp import BOOTP, DHCP

        request = BOOTP(data)
        if not request.haslayer(DHCP) or ("message-type", 1) not in request[DHCP].options:
            return None
        return bytes(BOOTP(op=2, xid=request.xid, flags=request.flags, yiaddr=self.offered,
                           siaddr=self.address, chaddr=request.chaddr)
                     / DHCP(options=[("message-type", "offer"), ("server_id", self.address),
                                     ("lease_time", 3600), ("subnet_mask", "255.255.255.0"),
                                     ("router", self.router), "end"]))


_UDP_KINDS: dict[str, Any] = {
    "dhcp-server": _DhcpServer,
    "snmp": _SnmpAgent, "netbios": _NetbiosNode, "sip": _SipPhone, "mdns": _MdnsResponder,
    "ssdp": _SsdpResponder, "bacnet": _BacnetIAm, "hostile": _HostileDatagrams,
    "wsd": _WsdResponder, "mdns-reflector": _MdnsReflector, "knx": _KnxInterface,
    "ubiquiti": _UbiquitiDevice,
}


def tls_context(subject: str, workdir: str) -> ssl.SSLContext:
    """A self-signed certificate with the product's factory subject, as devices ship."""
    import datetime
    import os
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name.from_rfc4514_string(subject)
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650)).sign(key, hashes.SHA256()))
    fd, path = tempfile.mkstemp(dir=workdir, suffix=".pem")
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(path)
    os.unlink(path)
    return context


def _ssh_server(sock: socket.socket, version: str) -> None:
    """A real SSH server (paramiko) that completes the key exchange and lets nobody in: the
    host key is generated at start, the version string is the product's."""
    import threading

    import paramiko

    key = paramiko.ECDSAKey.generate()

    def one(conn: socket.socket) -> None:
        transport = paramiko.Transport(conn)
        transport.local_version = version
        transport.add_server_key(key)
        try:
            transport.start_server(server=paramiko.ServerInterface())
            transport.join(IDLE_S)
        except (paramiko.SSHException, EOFError, OSError):
            pass
        finally:
            transport.close()

    def accept() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    sock.listen(16)
    threading.Thread(target=accept, daemon=True).start()


def _socket(device: dict[str, Any], svc: dict[str, Any], params: dict[str, str]) -> socket.socket:
    """The service's socket, made and bound inside the device's namespace."""
    proto = svc.get("proto", "tcp")
    with entered(device["ns"]):
        if proto == "raw":  # link-layer chatter on the device's interface (or another leg)
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            sock.bind((params.get("leg", "eth0"), 0))
            return sock
        if proto == "udp":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            speaks = params.get("flavour", "") if svc["kind"] == "hostile" else svc["kind"]
            group = {"ssdp": "239.255.255.250", "mdns": "224.0.0.251",
                     "mdns-reflector": "224.0.0.251", "wsd": "239.255.255.250"}.get(speaks)
            if group:  # join the group on the device's interface, send from it too
                own = socket.inet_aton(device["address"])
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                                socket.inet_aton(group) + own)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, own)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            sock.bind(("0.0.0.0", svc["port"]))  # noqa: S104 - inside the device's namespace
            return sock
        # dual-stack: the same service over IPv4 and IPv6
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("::", svc["port"]))
        return sock


async def _udp_service(sock: socket.socket, svc: dict[str, Any], params: dict[str, str],
                       servers: list[Any], repeating: list[asyncio.Task[None]]) -> None:
    loop = asyncio.get_running_loop()
    interval = float(params.get("interval", "2"))
    transport, protocol = await loop.create_datagram_endpoint(
        functools.partial(_UDP_KINDS[svc["kind"]], params), sock=sock)
    servers.append(transport)
    announce = {"mdns": ("response", ("224.0.0.251", 5353)),
                "mdns-reflector": ("responses", ("224.0.0.251", 5353)),
                "ssdp": ("notify", ("239.255.255.250", 1900)),
                "wsd": ("hello", ("239.255.255.250", 3702))}.get(svc["kind"])
    if announce is not None:
        made = getattr(protocol, announce[0])()
        messages = made if isinstance(made, list) else [made]  # a reflector: one a device
        repeating.append(asyncio.create_task(_repeat(
            interval, lambda t=transport, ms=messages, to=announce[1]: [t.sendto(m, to)
                                                                       for m in ms])))


async def _start(device: dict[str, Any], svc: dict[str, Any], workdir: str, servers: list[Any],
                 repeating: list[asyncio.Task[None]]) -> None:
    """One service of one device: listening, or chattering on the link."""
    params = {"address": device["address"], **svc.get("params", {})}
    proto = svc.get("proto", "tcp")
    sock = _socket(device, svc, params)
    if proto == "raw":
        frames = chatter_frames(svc["kind"], params, device["mac"], device["address"])
        repeating.append(asyncio.create_task(_repeat(
            float(params.get("interval", "2")), lambda: [sock.send(f) for f in frames])))
    elif proto == "udp":
        await _udp_service(sock, svc, params, servers, repeating)
    elif svc["kind"] == "ssh":
        _ssh_server(sock, params["version"])
        servers.append(sock)
    else:
        sock.listen(64)
        context = tls_context(params["subject"], workdir) if svc["kind"] == "tls" else None
        kind = "http" if svc["kind"] == "tls" else svc["kind"]
        servers.append(await asyncio.start_server(handler(kind, params), sock=sock, ssl=context))


async def serve(plan: list[dict[str, Any]], workdir: str) -> None:
    loop = asyncio.get_running_loop()
    servers: list[Any] = []  # each with close(): transports, servers, sockets
    repeating: list[asyncio.Task[None]] = []
    for device in plan:
        for svc in device["services"]:
            await _start(device, svc, workdir, servers, repeating)
    print("ready", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    for task in repeating:
        task.cancel()
    for server in servers:
        server.close()


def main(argv: list[str]) -> int:
    with open(argv[1]) as handle:
        plan = json.load(handle)
    asyncio.run(serve(plan, os.path.dirname(os.path.abspath(argv[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

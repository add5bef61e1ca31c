"""Emulated devices for the lab: one process serves every device's services.

For each device it enters the device's namespace, binds the listening sockets there and
comes back, so a single asyncio loop answers for a dozen devices with realistic banners:
HTTP (Server header, title, optional Basic realm), RTSP, server-first banners (SSH, FTP,
Telnet with its IAC negotiation) and silent ports (printer 9100, Modbus 502).

Run as ``python -m central.lab.devices PLAN.json``; prints ``ready`` once every socket is
bound. Reads are bounded and every connection has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import json
import signal
import socket
import sys
from typing import Any

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


def handler(kind: str, params: dict[str, str]) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if kind == "http":
                request = await _read_head(reader)
                if request:
                    writer.write(http_response(params, request))
            elif kind == "xml":
                request = await _read_head(reader)
                if request:
                    body = params["body"].encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
                                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            elif kind == "rtsp":
                while request := await _read_head(reader):
                    writer.write(rtsp_response(params, request))
                    await writer.drain()
            elif kind == "banner":
                writer.write(_decode(params.get("banner", "")))
                await writer.drain()
                reply = _decode(params.get("reply", ""))
                while await asyncio.wait_for(reader.read(1024), IDLE_S):
                    if reply:
                        writer.write(reply)
                        await writer.drain()
            else:  # silent: take what comes, say nothing
                while await asyncio.wait_for(reader.read(4096), IDLE_S):
                    pass
            await writer.drain()
        except (TimeoutError, ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    return handle


class _BacnetIAm(asyncio.DatagramProtocol):
    """Answers a BACnet Who-Is with an I-Am (device instance from params)."""

    def __init__(self, instance: int) -> None:
        self.instance = instance
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.transport is None or len(data) < 4 or data[0] != 0x81:
            return
        obj = (8 << 22) | (self.instance & 0x3FFFFF)
        apdu = bytes([0x10, 0x00, 0xC4]) + obj.to_bytes(4, "big") + bytes.fromhex("2205c4910022")
        npdu = bytes([0x01, 0x00])
        bvlc = bytes([0x81, 0x0A]) + (4 + len(npdu) + len(apdu)).to_bytes(2, "big")
        self.transport.sendto(bvlc + npdu + apdu, addr)


class _SnmpAgent(asyncio.DatagramProtocol):
    """Answers an SNMPv2c GetRequest for sysDescr.0 with the right community, like an agent
    with a read community; any other request or community gets silence, as real ones do."""

    def __init__(self, community: str, sysdescr: str) -> None:
        self.community = community.encode()
        self.sysdescr = sysdescr.encode()[:255]
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        from scanners.tcp import SYSDESCR_OID

        marker = b"\x04" + bytes([len(self.community)]) + self.community + b"\xa0"
        at = data.find(marker)
        if self.transport is None or at < 0 or SYSDESCR_OID not in data:
            return
        pdu = data[at + len(marker) + 1:]
        request_id = pdu[:6]  # INTEGER tag, length 4, value
        value = self.sysdescr
        varbind = (b"\x06\x08" + SYSDESCR_OID + b"\x04" + _len(value) + value)
        one = b"\x30" + _len(varbind) + varbind  # SEQUENCE { name, value }
        varbinds = b"\x30" + _len(one) + one  # SEQUENCE OF, with that one
        body = request_id + b"\x02\x01\x00\x02\x01\x00" + varbinds
        response = b"\x02\x01\x01" + marker[:-1] + b"\xa2" + _len(body) + body
        self.transport.sendto(b"\x30" + _len(response) + response, addr)


class _SsdpResponder(asyncio.DatagramProtocol):
    """Answers an M-SEARCH, as a UPnP device does, with where its description lives."""

    def __init__(self, location: str, server: str, usn: str) -> None:
        self.location, self.server, self.usn = location, server, usn
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.transport is None or not data.startswith(b"M-SEARCH"):
            return
        answer = ("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age = 1800\r\nEXT:\r\n"
                  f"LOCATION: {self.location}\r\nSERVER: {self.server}\r\n"
                  "ST: upnp:rootdevice\r\n"
                  f"USN: {self.usn}::upnp:rootdevice\r\n\r\n")
        self.transport.sendto(answer.encode(), addr)


def _len(body: bytes) -> bytes:
    size = len(body)
    return bytes([size]) if size < 128 else bytes([0x81, size]) if size < 256 else (
        bytes([0x82]) + size.to_bytes(2, "big"))


async def serve(plan: list[dict[str, Any]]) -> None:
    loop = asyncio.get_running_loop()
    servers: list[asyncio.BaseTransport | asyncio.Server] = []
    for device in plan:
        for svc in device["services"]:
            with entered(device["ns"]):
                if svc.get("proto", "tcp") == "udp":
                    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if svc["kind"] == "ssdp":  # join the SSDP group on the device's interface
                        group = socket.inet_aton("239.255.255.250") + socket.inet_aton(
                            svc["params"]["address"])
                        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group)
                else:
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("0.0.0.0", svc["port"]))  # noqa: S104 - inside the device's namespace
            if svc.get("proto", "tcp") == "udp":
                params = svc["params"]
                factory: Any
                if svc["kind"] == "snmp":
                    factory = functools.partial(_SnmpAgent, params.get("community", "public"),
                                                params["sysdescr"])
                elif svc["kind"] == "ssdp":
                    factory = functools.partial(_SsdpResponder, params["location"],
                                                params["server"], params["usn"])
                else:
                    factory = functools.partial(_BacnetIAm, int(params.get("instance", "1")))
                transport, _ = await loop.create_datagram_endpoint(factory, sock=sock)
                servers.append(transport)
            else:
                sock.listen(64)
                servers.append(
                    await asyncio.start_server(handler(svc["kind"], svc["params"]), sock=sock)
                )
    print("ready", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str]) -> int:
    with open(argv[1]) as handle:
        plan = json.load(handle)
    asyncio.run(serve(plan))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

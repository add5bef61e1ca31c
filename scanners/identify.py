"""Targeted identification probes: ask each open service the one question that names it.

HTTP ``GET /`` (Server header, WWW-Authenticate realm, page title), RTSP ``OPTIONS``
(Server header), and the banners that SSH, FTP and Telnet send unasked. Each probe has a
deadline and reads a bounded number of bytes; the answers become observations under their
match keys for the fingerprint rules. Parsers are pure functions, tested on real bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable, Mapping, Sequence

from scanners.scope import Scope

MAX_RESPONSE_BYTES = 65_536  # bound what a hostile web server can make us read
PROBE_TIMEOUT_S = 3.0
CONCURRENCY = 32
HTTP_PORTS = frozenset({80, 5000, 8000, 8080})
RTSP_PORTS = frozenset({554})
BANNER_KEYS = {21: "ftp.banner", 22: "ssh.banner", 23: "telnet.banner"}
_TITLE_RE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
_REALM_RE = re.compile(r'realm="([^"]{0,256})"', re.I)
_IAC_RE = re.compile(rb"\xff[\xfb-\xfe].|\xff[\xf0-\xfa]")  # Telnet negotiation

Found = tuple[str, str, str]  # (key, value, source)


def _text(data: bytes, limit: int = 1024) -> str:
    return data.decode("utf-8", "replace").replace("\x00", "").strip()[:limit]


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
        elif name_l == b"www-authenticate":
            realm = _REALM_RE.search(_text(value))
            out.append(("http.www_authenticate", realm.group(1) if realm else _text(value)))
    title = _TITLE_RE.search(body)
    if title and title.group(1).strip():
        out.append(("http.title", " ".join(_text(title.group(1)).split())))
    return out


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
    lines = [line for line in _text(cleaned).splitlines() if line.strip()]
    if not lines:
        return []
    # SSH and FTP identify in their first line; a Telnet greeting says more before 'login:'
    value = lines[0] if key != "telnet.banner" else " ".join(lines)
    return [(key, value)]


def _ber(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the BER element at ``at``; bounded by ``data``."""
    if at + 2 > len(data):
        raise ValueError("truncated")
    tag, length = data[at], data[at + 1]
    at += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 3 or at + count > len(data):
            raise ValueError("bad length")
        length = int.from_bytes(data[at:at + count], "big")
        at += count
    if at + length > len(data):
        raise ValueError("truncated")
    return tag, at, at + length


def parse_snmp_sysdescr(data: bytes) -> str | None:
    """sysDescr.0 from an SNMP GetResponse to our request, or None for anything else."""
    try:
        tag, start, _end = _ber(data, 0)  # Message SEQUENCE
        if tag != 0x30:
            return None
        _, _, at = _ber(data, start)  # version
        _, _, at = _ber(data, at)  # community
        tag, at, _ = _ber(data, at)  # GetResponse-PDU
        if tag != 0xA2:
            return None
        for _ in range(3):  # request-id, error-status, error-index
            _, _, at = _ber(data, at)
        _, at, _ = _ber(data, at)  # varbind list
        _, at, _ = _ber(data, at)  # first varbind
        tag, o_start, at = _ber(data, at)  # name
        if tag != 0x06 or data[o_start:at] != bytes.fromhex("2b06010201010100"):
            return None
        tag, v_start, v_end = _ber(data, at)  # value
        if tag != 0x04:
            return None
        return _text(data[v_start:v_end]) or None
    except ValueError:
        return None


async def exchange(ip: str, port: int, request: bytes) -> bytes:
    """Send one request on a fresh connection and read the answer, bounded in time and size."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), PROBE_TIMEOUT_S)
    try:
        writer.write(request)
        await writer.drain()
        chunks, size = [], 0
        while size < MAX_RESPONSE_BYTES:
            chunk = await asyncio.wait_for(reader.read(8192), PROBE_TIMEOUT_S)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if port in RTSP_PORTS and b"\r\n\r\n" in b"".join(chunks):
                break  # RTSP keeps the connection open
        return b"".join(chunks)[:MAX_RESPONSE_BYTES]
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


async def _probe(ip: str, port: int) -> list[Found]:
    source = f"{port}/tcp"
    try:
        if port in HTTP_PORTS:
            request = f"GET / HTTP/1.0\r\nHost: {ip}\r\nUser-Agent: netvagt\r\n\r\n".encode()
            return [(k, v, source) for k, v in parse_http(await exchange(ip, port, request))]
        if port in RTSP_PORTS:
            request = f"OPTIONS rtsp://{ip}:{port}/ RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode()
            return [(k, v, source) for k, v in parse_rtsp(await exchange(ip, port, request))]
    except (TimeoutError, OSError):
        return []
    return []


async def identify(
    open_ports: Mapping[str, Sequence[int]],
    *,
    banners: Mapping[tuple[str, int], bytes] | None = None,
    scope: Scope,
) -> dict[str, list[Found]]:
    """Observations per address, from targeted probes and the banners already read."""
    for ip in open_ports:
        scope.check(ip)
    found: dict[str, list[Found]] = {ip: [] for ip in open_ports}
    for (ip, port), banner in (banners or {}).items():
        if ip in found:
            found[ip].extend((k, v, f"{port}/tcp") for k, v in parse_banner(port, banner))
    slots = asyncio.Semaphore(CONCURRENCY)

    async def run(ip: str, port: int) -> None:
        async with slots:
            found[ip].extend(await _probe(ip, port))

    jobs: Iterable[tuple[str, int]] = ((ip, p) for ip, ports in open_ports.items() for p in ports
                                       if p in HTTP_PORTS or p in RTSP_PORTS)
    await asyncio.gather(*(run(ip, p) for ip, p in jobs))
    return found

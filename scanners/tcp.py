"""TCP port probe (connect scan) of a curated port list, plus UDP probes that get answers.

A connect scan needs no raw socket and completes the handshake the way any client would,
which embedded stacks handle better than half-open probes. Concurrency is bounded
globally and per host, packets are paced by the rate limiter, and the connect timeout
follows the host's measured round-trip time. On an open port the probe may listen briefly
for a banner (SSH, FTP, Telnet speak first), reading at most ``MAX_BANNER_BYTES``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from scanners import bind, snmp
from scanners.observations import PortResult
from scanners.rate import RateLimiter
from scanners.scope import Scope

MAX_BANNER_BYTES = 4096  # bound what a hostile device can make us hold
MIN_TIMEOUT_S = 0.5  # connect timeout floor, seconds
MAX_TIMEOUT_S = 3.0  # connect timeout ceiling, seconds
RTT_TIMEOUT_FACTOR = 20.0  # timeout = this many round trips, within the bounds above
GLOBAL_CONCURRENCY = 256  # sockets open at once: well under the default 1024 descriptors

# UDP services answer only a well-formed request: one small, read-only request each.
UDP_PAYLOADS: dict[int, bytes] = {
    # BACnet/IP Who-Is, broadcast-free (unicast to the device)
    47808: bytes.fromhex("810a000c0120ffff00ff1008"),
    # KNXnet/IP description request, its answer address 0.0.0.0:0 ('the address this came
    # from', as KNXnet/IP allows behind NAT): a KNX IP interface or router describes itself
    3671: bytes.fromhex("06100203000e" "0801" "00000000" "0000"),
    # Ubiquiti's discovery request (version 1, as a UniFi controller and airOS's tool send
    # it): a UniFi access point, switch or gateway or an airMAX radio describes itself
    10001: b"\x01\x00\x00\x00",
    # RMCP/ASF presence ping (IPMI)
    623: bytes.fromhex("06000006000011be80000000000000000000"),
    # DNS: a query for the root's NS records; NTP: a version 3 client request
    53: bytes.fromhex("1a2b01000001000000000000" "0000020001"),
    123: b"\x1b" + bytes(47),
    # NetBIOS node status (NBSTAT) for the wildcard name: the machine lists its names
    137: (bytes.fromhex("80f00010000100000000000020") + b"CK" + b"A" * 30
          + bytes.fromhex("0000210001")),
    # SIP OPTIONS: a phone or PBX answers with its Server or User-Agent header
    5060: (b"OPTIONS sip:nm SIP/2.0\r\nVia: SIP/2.0/UDP nm;branch=z9hG4bK-netvagt\r\n"
           b"From: <sip:nm@nm>;tag=netvagt\r\nTo: <sip:nm2@nm2>\r\nCall-ID: 50000\r\n"
           b"CSeq: 42 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n"
           b"Contact: <sip:nm@nm>\r\nAccept: application/sdp\r\n\r\n"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeOptions:
    host_concurrency: int = 8
    banner_wait_s: float = 0.3
    min_timeout_s: float = MIN_TIMEOUT_S
    max_timeout_s: float = MAX_TIMEOUT_S
    snmp_communities: tuple[str, ...] = ("public",)  # tried in order; () sends no SNMP


def timeout_for(rtt_s: float | None, options: ProbeOptions) -> float:
    if rtt_s is None:
        return options.max_timeout_s
    return min(options.max_timeout_s, max(options.min_timeout_s, RTT_TIMEOUT_FACTOR * rtt_s))


async def _probe_tcp(ip: str, port: int, timeout: float, banner_wait: float) -> PortResult:
    started = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(
            bind.open_connection(ip, port, limit=MAX_BANNER_BYTES), timeout
        )
    except TimeoutError:
        return PortResult(ip=ip, port=port, proto="tcp", state="filtered")
    except ConnectionRefusedError:
        rtt = time.monotonic() - started
        return PortResult(ip=ip, port=port, proto="tcp", state="closed", rtt_s=rtt)
    except OSError as exc:
        state = "closed" if exc.errno == errno.ECONNRESET else "filtered"
        return PortResult(ip=ip, port=port, proto="tcp", state=state)
    rtt = time.monotonic() - started
    banner: bytes | None = None
    try:
        if banner_wait > 0:
            with contextlib.suppress(TimeoutError, OSError):
                data = await asyncio.wait_for(reader.read(MAX_BANNER_BYTES), banner_wait)
                banner = data[:MAX_BANNER_BYTES] or None
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
    return PortResult(ip=ip, port=port, proto="tcp", state="open", rtt_s=rtt, banner=banner)


class UdpAnswer(asyncio.DatagramProtocol):
    """The first datagram that comes back (bounded), or the error the kernel reported."""

    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if not self.answer.done():
            self.answer.set_result(data[:MAX_BANNER_BYTES])

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


async def _probe_udp(ip: str, port: int, timeout: float,
                     communities: tuple[str, ...] = ("public",)) -> PortResult:
    if port == 161:
        result = PortResult(ip=ip, port=port, proto="udp", state="open|filtered")
        for community in communities:  # a wrong community gets no answer: try the next
            result = await _send_udp(ip, port, snmp.get_request(community), timeout)
            if result.state != "open|filtered":
                return result
        return result
    payload = UDP_PAYLOADS.get(port)
    if payload is None:
        return PortResult(ip=ip, port=port, proto="udp", state="open|filtered")
    return await _send_udp(ip, port, payload, timeout)


async def _send_udp(ip: str, port: int, payload: bytes, timeout: float) -> PortResult:
    started = time.monotonic()
    transport, protocol = await bind.datagram_endpoint(UdpAnswer, (ip, port))
    try:
        transport.sendto(payload)
        data = await asyncio.wait_for(protocol.answer, timeout)
    except TimeoutError:
        return PortResult(ip=ip, port=port, proto="udp", state="open|filtered")
    except ConnectionRefusedError:
        return PortResult(ip=ip, port=port, proto="udp", state="closed")
    except OSError:
        return PortResult(ip=ip, port=port, proto="udp", state="filtered")
    finally:
        transport.close()
    rtt = time.monotonic() - started
    return PortResult(ip=ip, port=port, proto="udp", state="open", rtt_s=rtt, banner=data)


async def probe_ports(
    hosts: Mapping[str, float | None] | Sequence[str],
    *,
    tcp_ports: Sequence[int],
    udp_ports: Sequence[int] = (),
    scope: Scope,
    limiter: RateLimiter,
    options: ProbeOptions = ProbeOptions(),
    progress: Callable[[int, int], None] | None = None,
) -> list[PortResult]:
    """Probe the ports of every host; returns one result per (host, port).

    ``hosts`` maps each address to its measured round-trip time (or None when unknown).
    """
    rtts: Mapping[str, float | None] = hosts if isinstance(hosts, Mapping) else dict.fromkeys(hosts)
    for ip in rtts:
        scope.check(ip)
    global_slots = asyncio.Semaphore(GLOBAL_CONCURRENCY)
    host_slots = {ip: asyncio.Semaphore(max(1, options.host_concurrency)) for ip in rtts}
    jobs: list[tuple[str, int, str]] = []
    # Interleave hosts so the per-host limit never idles the whole scan.
    for port in tcp_ports:
        jobs.extend((ip, port, "tcp") for ip in rtts)
    for port in udp_ports:
        jobs.extend((ip, port, "udp") for ip in rtts)
    total = len(jobs)
    finished = 0

    async def run(ip: str, port: int, proto: str) -> PortResult:
        nonlocal finished
        async with host_slots[ip], global_slots:
            await limiter.wait(ip)
            timeout = timeout_for(rtts[ip], options)
            if proto == "tcp":
                result = await _probe_tcp(ip, port, timeout, options.banner_wait_s)
            else:
                result = await _probe_udp(ip, port, timeout, options.snmp_communities)
        finished += 1
        if progress is not None:
            progress(finished, total)
        return result

    return list(await asyncio.gather(*(run(*job) for job in jobs)))

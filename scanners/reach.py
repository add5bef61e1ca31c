"""Reachability probes: from this segment, does a packet get through to that address and port?

The plan's targets are probed all at once, paced by the rate limiter. With a raw socket
(CAP_NET_RAW) TCP is probed with stateless SYNs and UDP from one socket (see
:mod:`scanners.syn`), so a /24 with thirty ports takes one round of sending plus one quiet
period, not one timeout per probe. Without it, TCP falls back to connect probes (an
answer of SYN-ACK or RST is all we need; the connection is closed at once). UDP sends the
one request each protocol answers (SNMP, BACnet, DNS, NTP, NetBIOS, SIP), ICMP an echo.

States: ``reachable`` (a service answered), ``refused`` (RST, or ICMP port unreachable:
the packet got through and nobody listens), ``filtered`` (silence: dropped on the way, or
a UDP service that said nothing).
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scanners import bind, syn
from scanners.icmp import ICMP6_ECHO_REPLY, echo6_request, icmp_sweep
from scanners.rate import RateLimiter
from scanners.scope import Scope
from scanners.sweep import SweepTiming
from scanners.tcp import ProbeOptions, probe_ports

STATE = {"open": "reachable", "closed": "refused", "filtered": "filtered",
         "open|filtered": "filtered"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    ip: str
    tcp: tuple[int, ...] = ()
    udp: tuple[int, ...] = ()
    icmp: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Reach:
    ip: str
    proto: str
    port: int
    state: str
    rtt_ms: float | None = None
    ttl: int | None = None  # of a SYN-ACK: 64, 128 or 255 means no router on the way back


async def probe_reach(
    targets: Sequence[Target],
    *,
    scope: Scope,
    global_pps: float = 5000.0,
    host_pps: float = 100.0,
    timeout_s: float = 2.0,
    progress: Callable[[int, int], None] | None = None,
    stateless: bool | None = None,
) -> list[Reach]:
    """One result per (target, proto, port); every target must be in ``scope``.

    ``stateless``: SYN and UDP probes from raw sockets (default: when permitted)."""
    for target in targets:
        scope.check(target.ip)
    limiter = RateLimiter(global_pps=global_pps, host_pps=host_pps)
    if stateless is None:
        stateless = syn.available()
    timing = SweepTiming(retries=1, max_wait_s=timeout_s)
    # IPv6 (dual-stack networks often filter IPv4 and forget IPv6): connect probes, UDP
    # requests and ICMPv6 echo; the stateless engine speaks IPv4
    v4 = [t for t in targets if ":" not in t.ip]
    v6 = [t for t in targets if ":" in t.ip]
    ports = (_stateless(v4, scope=scope, limiter=limiter, timing=timing, progress=progress)
             if stateless else
             _connect(v4, scope=scope, limiter=limiter, timeout_s=timeout_s,
                      progress=progress))
    ports6 = _connect(v6, scope=scope, limiter=limiter, timeout_s=timeout_s, progress=None)
    pinged = [t.ip for t in v4 if t.icmp]
    pinged6 = [t.ip for t in v6 if t.icmp]
    echoes = (icmp_sweep(pinged, scope=scope, limiter=limiter, timing=timing) if pinged
              else asyncio.sleep(0, result=[]))
    out, out6, echoed, echoed6 = await asyncio.gather(
        ports, ports6, echoes, asyncio.to_thread(echo6, pinged6, timeout_s=timeout_s))
    out += out6
    answered = {reply.ip: reply.rtt_s for reply in echoed} | echoed6
    pinged += pinged6
    for ip in pinged:
        rtt = answered.get(ip)
        out.append(Reach(ip=ip, proto="icmp", port=0,
                         state="reachable" if rtt is not None else "filtered",
                         rtt_ms=round(rtt * 1000, 3) if rtt is not None else None))
    return out


async def _connect(targets: Sequence[Target], *, scope: Scope, limiter: RateLimiter,
                   timeout_s: float, progress: Callable[[int, int], None] | None
                   ) -> list[Reach]:
    options = ProbeOptions(host_concurrency=16, banner_wait_s=0.0, min_timeout_s=timeout_s,
                           max_timeout_s=timeout_s)
    groups: dict[tuple[tuple[int, ...], tuple[int, ...]], list[str]] = {}
    for target in targets:
        if target.tcp or target.udp:
            groups.setdefault((target.tcp, target.udp), []).append(target.ip)
    total = sum(len(ips) * (len(tcp) + len(udp)) for (tcp, udp), ips in groups.items())
    done = 0

    def step(_done: int, _total: int) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    results = await asyncio.gather(*(
        probe_ports(dict.fromkeys(ips), tcp_ports=tcp, udp_ports=udp, scope=scope,
                    limiter=limiter, options=options, progress=step)
        for (tcp, udp), ips in groups.items()))
    return [Reach(ip=r.ip, proto=r.proto, port=r.port, state=STATE.get(r.state, "filtered"),
                  rtt_ms=round(r.rtt_s * 1000, 3) if r.rtt_s else None)
            for group in results for r in group]


async def _stateless(targets: Sequence[Target], *, scope: Scope, limiter: RateLimiter,
                     timing: SweepTiming, progress: Callable[[int, int], None] | None
                     ) -> list[Reach]:
    # port-major order: consecutive probes go to different hosts, so the per-host limit
    # never idles the sender
    probes: list[syn.Key] = []
    width = max((len(t.tcp) + len(t.udp) for t in targets), default=0)
    for index in range(width):
        for target in targets:
            ports = [("tcp", p) for p in target.tcp] + [("udp", p) for p in target.udp]
            if index < len(ports):
                probes.append((ports[index][0], target.ip, ports[index][1]))
    ttls: dict[syn.Key, int] = {}
    results = await asyncio.to_thread(syn.probe_sync, probes, scope=scope, limiter=limiter,
                                      timing=timing, progress=progress, ttls=ttls)
    return [Reach(ip=ip, proto=proto, port=port, state=state,
                  rtt_ms=round(rtt * 1000, 3) if rtt is not None else None,
                  ttl=ttls.get((proto, ip, port)))
            for (proto, ip, port), (state, rtt) in results.items()]


def echo6(targets: Sequence[str], *, timeout_s: float, tries: int = 2) -> dict[str, float]:
    """ICMPv6 echo to each target from one raw socket bound to the scan interface (the
    kernel fills in the ICMPv6 checksum); {address: round trip seconds} of those that
    answered within ``timeout_s`` after the last request."""
    if not targets:
        return {}
    ident = os.getpid() & 0xFFFF
    wanted = {socket.inet_pton(socket.AF_INET6, t): t for t in targets}
    sent: dict[str, float] = {}
    answered: dict[str, float] = {}
    with bind.new_socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as sock:
        sock.setblocking(False)
        for attempt in range(tries):
            for seq, target in enumerate(targets):
                if target in answered:
                    continue
                packet = echo6_request(ident, attempt * len(targets) + seq)
                try:
                    sock.sendto(packet, (target, 0))
                    sent.setdefault(target, time.monotonic())
                except OSError:
                    continue  # no route: it simply does not answer
            deadline = time.monotonic() + timeout_s
            while len(answered) < len(targets) and (left := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([sock], [], [], left)
                if not ready:
                    break
                try:
                    data, address = sock.recvfrom(1500)
                except BlockingIOError:
                    continue
                if len(data) >= 8 and data[0] == ICMP6_ECHO_REPLY and \
                        struct.unpack("!H", data[4:6])[0] == ident:
                    source = socket.inet_pton(socket.AF_INET6, address[0].split("%")[0])
                    replied = wanted.get(source)
                    if replied is not None and replied not in answered:
                        answered[replied] = time.monotonic() - sent[replied]
            if len(answered) == len(targets):
                break
    return answered

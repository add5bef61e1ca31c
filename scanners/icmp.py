"""ICMP echo sweep for routed ranges, over a raw socket (needs CAP_NET_RAW).

Echo requests carry a per-sweep identifier; a reply counts only if it carries it back from
the address it was sent to.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import struct
import time
from collections.abc import Sequence

from scanners import bind
from scanners.observations import HostReply
from scanners.rate import RateLimiter
from scanners.scope import Scope
from scanners.sweep import Answer, Progress, SweepTiming, sweep

ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0
MAX_PACKET = 1500  # read no more than one MTU per datagram
PAYLOAD = b"netvagt-discovery"


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


ICMP6_ECHO_REQUEST, ICMP6_ECHO_REPLY = 128, 129


def echo6_request(ident: int, seq: int) -> bytes:
    """An ICMPv6 echo request; the kernel fills in its checksum (it covers the IPv6
    pseudo-header, which only the kernel knows for a raw ICMPv6 socket)."""
    return struct.pack("!BBHHH", ICMP6_ECHO_REQUEST, 0, 0, ident, seq) + PAYLOAD


def echo_request(ident: int, seq: int) -> bytes:
    header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, ident, seq)
    csum = checksum(header + PAYLOAD)
    return struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, csum, ident, seq) + PAYLOAD


def parse_echo_reply(packet: bytes, ident: int) -> str | None:
    """The source address of an IPv4 echo reply carrying ``ident``, else None."""
    if len(packet) < 20:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if packet[0] >> 4 != 4 or len(packet) < ihl + 8:
        return None
    icmp_type, _code, _csum, reply_ident, _seq = struct.unpack_from("!BBHHH", packet, ihl)
    if icmp_type != ICMP_ECHO_REPLY or reply_ident != ident:
        return None
    return socket.inet_ntoa(packet[12:16])


def icmp_sweep_sync(
    targets: Sequence[str],
    *,
    scope: Scope,
    limiter: RateLimiter,
    timing: SweepTiming = SweepTiming(),
    progress: Progress | None = None,
) -> list[HostReply]:
    for target in targets:
        scope.check(target)
    ident = (os.getpid() ^ int(time.monotonic() * 1000)) & 0xFFFF
    sock = bind.new_socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.setblocking(False)
    seq = 0
    try:

        def send(target: str) -> None:
            nonlocal seq
            seq = (seq + 1) & 0xFFFF
            with contextlib.suppress(OSError):  # no route: it simply does not answer
                sock.sendto(echo_request(ident, seq), (target, 0))

        def poll(timeout: float) -> list[Answer[None]]:
            answers: list[Answer[None]] = []
            ready, _, _ = select.select([sock], [], [], max(0.0, timeout))
            while ready:
                try:
                    packet = sock.recv(MAX_PACKET)
                except BlockingIOError:
                    break
                source = parse_echo_reply(packet, ident)
                if source is not None:
                    answers.append(Answer(source, None, time.monotonic()))
                ready, _, _ = select.select([sock], [], [], 0)
            return answers

        replies = sweep(
            targets, send=send, poll=poll, limiter=limiter, timing=timing, progress=progress
        )
    finally:
        sock.close()
    return [
        HostReply(ip=ip, rtt_s=reply.rtt_s, source="icmp")
        for ip, reply in sorted(replies.items(), key=lambda kv: socket.inet_aton(kv[0]))
    ]


async def icmp_sweep(
    targets: Sequence[str],
    *,
    scope: Scope,
    limiter: RateLimiter,
    timing: SweepTiming = SweepTiming(),
    progress: Progress | None = None,
) -> list[HostReply]:
    """Echo-sweep ``targets``; returns the addresses that answered."""
    return await asyncio.to_thread(
        icmp_sweep_sync, targets, scope=scope, limiter=limiter, timing=timing, progress=progress
    )

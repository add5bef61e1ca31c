"""Stateless reachability probes: TCP SYN and UDP requests sent from one thread, answers read
from raw sockets, so thousands of probes take one round of sending plus one quiet period
instead of one connection timeout each.

TCP: a SYN from a reserved source port (a bound, never-connected socket keeps any other
program off it); a SYN-ACK means reachable, a RST refused. Our kernel answers the SYN-ACK
with a RST, so no connection is ever opened on the device, as with nmap -sS. The sequence
number is a keyed hash of the target, and an answer must acknowledge it: forged or stray
segments are ignored. UDP: the one request each protocol answers (see ``UDP_PAYLOADS``)
from one socket; an answer means reachable, an ICMP port unreachable refused. An ICMP
"administratively prohibited" (a firewall that rejects) counts as filtered, like silence.

It needs CAP_NET_RAW (the agent has it); :func:`available` says whether it can run, and the
caller falls back to connect probes otherwise. Built on the sweep engine: rate limits per
host and globally, one retry for silent probes, and a quiet period that adapts to the
round-trip times seen.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from scanners import bind
from scanners.icmp import checksum
from scanners.rate import RateLimiter
from scanners.scope import Scope
from scanners.sweep import Answer, SweepTiming, sweep
from scanners.tcp import UDP_PAYLOADS

MAX_PACKET = 65_535
SYN, RST, ACK = 0x02, 0x04, 0x10
Key = tuple[str, str, int]  # (proto, ip, port)


def available() -> bool:
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP).close()
    except PermissionError:
        return False
    return True


def probe_name(key: Key) -> str:
    return f"{key[0]}:{key[1]}:{key[2]}"


def probe_key(name: str) -> Key:
    proto, ip, port = name.split(":")
    return proto, ip, int(port)


class PerHost:
    """The sweep engine keys its limiter by target; the limit is per address."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    def try_take(self, target: str) -> float:
        return self.limiter.try_take(target.split(":")[1])


def syn_segment(source: str, target: str, sport: int, dport: int, seq: int, *,
                flags: int = SYN) -> bytes:
    """A TCP SYN with an MSS option (or, with ``flags=RST``, the reset that ends one),
    checksummed over the IPv4 pseudo-header."""
    options = struct.pack("!BBH", 2, 4, 1460) if flags & SYN else b""
    offset = (20 + len(options)) // 4
    window = 64240 if flags & SYN else 0
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, offset << 4, flags, window, 0, 0)
    pseudo = socket.inet_aton(source) + socket.inet_aton(target) + struct.pack(
        "!BBH", 0, socket.IPPROTO_TCP, len(header) + len(options))
    csum = checksum(pseudo + header + options)
    return header[:16] + struct.pack("!H", csum) + header[18:] + options


def parse_tcp(packet: bytes, sport: int) -> tuple[str, int, int, int] | None:
    """(source address, source port, ack, flags) of a segment to ``sport``, else None."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if len(packet) < ihl + 20:
        return None
    src_port, dst_port, _seq, ack, _off, flags = struct.unpack_from("!HHIIBB", packet, ihl)
    if dst_port != sport:
        return None
    return socket.inet_ntoa(packet[12:16]), src_port, ack, flags


def sequence_for(secret: bytes, ip: str, port: int) -> int:
    """A SYN's sequence number: a keyed hash of its target, so an answer must acknowledge
    it (a forged or stray segment does not)."""
    digest = hashlib.blake2s(f"{ip}:{port}".encode(), key=secret, digest_size=4).digest()
    return int.from_bytes(digest, "big")


def unreachable_answer(packet: bytes, *, tcp_port: int, udp_port: int, at: float
                       ) -> Answer[str] | None:
    """An ICMP destination unreachable about one of our probes (sent from ``tcp_port`` or
    ``udp_port``) as its answer: a UDP port unreachable is refused, anything else (an
    administrative prohibition) filtered."""
    about = parse_unreachable(packet)
    if about is None:
        return None
    proto, ip, port, sport, code = about
    if sport != (tcp_port if proto == "tcp" else udp_port):
        return None
    state = "refused" if (proto, code) == ("udp", 3) else "filtered"
    return Answer(probe_name((proto, ip, port)), state, at)


def parse_unreachable(packet: bytes) -> tuple[str, str, int, int, int] | None:
    """(proto, original target, its port, our source port, ICMP code) of a destination
    unreachable message about a probe we sent, else None."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if len(packet) < ihl + 8 + 20 + 8 or packet[ihl] != 3:
        return None
    code = packet[ihl + 1]
    inner = packet[ihl + 8:]
    inner_ihl = (inner[0] & 0x0F) * 4
    if len(inner) < inner_ihl + 8:
        return None
    proto = {socket.IPPROTO_TCP: "tcp", socket.IPPROTO_UDP: "udp"}.get(inner[9])
    if proto is None:
        return None
    sport, dport = struct.unpack_from("!HH", inner, inner_ihl)
    return proto, socket.inet_ntoa(inner[16:20]), dport, sport, code


def probe_sync(
    probes: Sequence[Key],
    *,
    scope: Scope,
    limiter: RateLimiter,
    timing: SweepTiming = SweepTiming(),
    progress: Callable[[int, int], None] | None = None,
    ttls: dict[Key, int] | None = None,
) -> dict[Key, tuple[str, float | None]]:
    """{(proto, ip, port): (state, rtt seconds)} for every probe; silence is 'filtered'.
    ``ttls`` receives the IP TTL of each SYN-ACK (how many routers the answer crossed)."""
    for _, ip, _ in probes:
        scope.check(ip)
    with _Prober() as prober:
        return sweep_probes(prober, probes, limiter=limiter, timing=timing, progress=progress,
                            ttls=ttls)


class Prober(Protocol):
    """What sends probes and reads their answers (raw sockets here, a trunk's tagged
    frames in :mod:`scanners.trunk`); ``ttls`` collects each SYN-ACK's IP TTL by name."""

    ttls: dict[str, int]

    def send(self, name: str) -> None: ...

    def poll(self, timeout: float) -> list[Answer[str]]: ...


def sweep_probes(prober: Prober, probes: Sequence[Key], *, limiter: RateLimiter,
                 timing: SweepTiming, progress: Callable[[int, int], None] | None,
                 ttls: dict[Key, int] | None, sendable: Callable[[Key], bool] = lambda _: True,
                 ) -> dict[Key, tuple[str, float | None]]:
    """Every probe through the sweep engine (paced per host, retried, a quiet period that
    adapts); {probe: (state, rtt seconds)}, silence (or a probe not ``sendable``) filtered."""
    replies = sweep([probe_name(p) for p in probes if sendable(p)], send=prober.send,
                    poll=prober.poll, limiter=PerHost(limiter), timing=timing,
                    progress=progress)
    if ttls is not None:
        ttls.update({probe_key(name): ttl for name, ttl in prober.ttls.items()})
    out: dict[Key, tuple[str, float | None]] = {}
    for probe in probes:
        reply = replies.get(probe_name(probe))
        out[probe] = (reply.info, reply.rtt_s) if reply else ("filtered", None)
    return out


class _Prober:
    """The sockets of one stateless probe run: a raw TCP socket for SYNs (its source port
    reserved by a bound TCP socket), a UDP socket, a raw ICMP socket for unreachables.
    A SYN's sequence number is a keyed hash of its target: an answer must acknowledge it."""

    def __init__(self) -> None:
        self.secret = os.urandom(16)
        self.sources: dict[str, str] = {}
        self.ttls: dict[str, int] = {}  # probe name -> the SYN-ACK's IP TTL
        self.reserve = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # keeps our TCP port ours
        self.tcp = bind.new_socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
        self.udp = bind.new_socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.icmp = bind.new_socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)

    def __enter__(self) -> _Prober:
        try:
            self.reserve.bind(("0.0.0.0", 0))  # noqa: S104 - only reserves a port number
            self.udp.bind(("0.0.0.0", 0))  # noqa: S104 - answers come back to it
            self.tcp_port = self.reserve.getsockname()[1]
            self.udp_port = self.udp.getsockname()[1]
            for sock in (self.tcp, self.udp, self.icmp):
                sock.setblocking(False)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for sock in (self.tcp, self.udp, self.icmp, self.reserve):
            sock.close()

    def seq_for(self, ip: str, port: int) -> int:
        return sequence_for(self.secret, ip, port)

    def source_for(self, ip: str) -> str:
        if ip not in self.sources:  # the address the kernel's route would send from
            with bind.new_socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect((ip, 9))
                self.sources[ip] = probe.getsockname()[0]
        return self.sources[ip]

    def send(self, name: str) -> None:
        proto, ip, port = probe_key(name)
        with contextlib.suppress(OSError):  # no route: it simply does not answer
            if proto == "tcp":
                self.tcp.sendto(syn_segment(self.source_for(ip), ip, self.tcp_port, port,
                                            self.seq_for(ip, port)), (ip, 0))
            else:
                self.udp.sendto(UDP_PAYLOADS.get(port, b"\r\n"), (ip, port))

    def poll(self, timeout: float) -> list[Answer[str]]:
        answers: list[Answer[str]] = []
        socks = [self.tcp, self.udp, self.icmp]
        ready, _, _ = select.select(socks, [], [], max(0.0, timeout))
        while ready:
            for sock in ready:
                answer = self.read(sock)
                if answer is not None:
                    answers.append(answer)
            ready, _, _ = select.select(socks, [], [], 0)
        return answers

    def read(self, sock: socket.socket) -> Answer[str] | None:
        """One datagram or packet, as an answer to one of our probes (or None)."""
        try:
            if sock is self.udp:
                _data, (ip, port) = self.udp.recvfrom(MAX_PACKET)
                return Answer(probe_name(("udp", ip, port)), "reachable", time.monotonic())
            packet = sock.recv(MAX_PACKET)
        except (BlockingIOError, ConnectionRefusedError):
            return None
        return self.tcp_answer(packet) if sock is self.tcp else self.unreachable(packet)

    def tcp_answer(self, packet: bytes) -> Answer[str] | None:
        seen = parse_tcp(packet, self.tcp_port)
        if seen is None:
            return None
        ip, port, ack, flags = seen
        if ack != (self.seq_for(ip, port) + 1) & 0xFFFFFFFF:
            return None  # not an answer to our SYN
        state = ("reachable" if flags & (SYN | ACK) == SYN | ACK else
                 "refused" if flags & RST else None)
        if state == "reachable":
            self.ttls.setdefault(probe_name(("tcp", ip, port)), packet[8])
        return Answer(probe_name(("tcp", ip, port)), state, time.monotonic()) if state else None

    def unreachable(self, packet: bytes) -> Answer[str] | None:
        return unreachable_answer(packet, tcp_port=self.tcp_port, udp_port=self.udp_port,
                                  at=time.monotonic())

"""Listen-only discovery: who announces itself on the segment, without sending a packet.

Reads the segment's broadcast and multicast chatter on the sensor's interface for a while,
alone (the passive profile) or beside an active scan: ARP, DHCP requests, mDNS
announcements, SSDP NOTIFY, LLDP and CDP (see :mod:`scanners.passive_parse`). Every
frame is parsed by the same pure functions that read a pcap file, so ``scan --pcap`` tests
them on real captures. A frame budget bounds the CPU a busy or hostile segment can take.
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from scanners.netinfo import Interface
from scanners.observations import CLAIM_KEY
from scanners.passive_parse import Heard, interesting, parse
from scanners.scope import Scope

ETH_P_ALL = 0x0003
MAX_FRAME = 1514
MAX_HOSTS = 65_536  # bound what a flood of forged announcements can make us hold
MAX_OBSERVATIONS_PER_HOST = 32
FRAME_BUDGET_PER_S = 2000  # frames parsed per second at most; the rest are skipped


@dataclass(slots=True)
class PassiveHost:
    mac: str
    ip: str | None = None
    claimed: set[str] = field(default_factory=set)
    observations: list[tuple[str, str, str]] = field(default_factory=list)  # key, value, source

    @property
    def address(self) -> str | None:
        return self.ip or (min(self.claimed) if self.claimed else None)


def collect(heard: Iterable[Heard], *, scope: Scope, own_ip: str | None = None,
            hosts: dict[str, PassiveHost] | None = None) -> dict[str, PassiveHost]:
    """Fold what frames said into one record per MAC."""
    hosts = {} if hosts is None else hosts
    for item in heard:
        if not scope.allows_mac(item.mac) or (own_ip is not None and item.ip == own_ip):
            continue
        host = hosts.get(item.mac)
        if host is None:
            if len(hosts) >= MAX_HOSTS:
                continue
            host = hosts[item.mac] = PassiveHost(mac=item.mac)
        if item.ip and not item.claimed and scope.allows(item.ip):
            host.ip = item.ip
        elif item.ip and item.claimed and len(host.claimed) < 16:
            host.claimed.add(item.ip)
        if item.key and item.value and len(host.observations) < MAX_OBSERVATIONS_PER_HOST:
            entry = (item.key, item.value, "passive")
            if entry not in host.observations:
                host.observations.append(entry)
    return hosts


def listen_sync(*, iface: Interface, scope: Scope, seconds: float,
                stop: threading.Event | None = None) -> dict[str, PassiveHost]:
    """Listen until ``seconds`` have passed or ``stop`` is set."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((iface.name, 0))
    sock.setblocking(False)
    hosts: dict[str, PassiveHost] = {}
    deadline = time.monotonic() + seconds
    window_start, parsed = time.monotonic(), 0
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            if stop is not None and stop.is_set():
                break
            ready, _, _ = select.select([sock], [], [], min(remaining, 0.2))
            if not ready:
                continue
            try:
                frame, meta = sock.recvfrom(MAX_FRAME)
            except BlockingIOError:
                continue
            if meta[2] == socket.PACKET_OUTGOING or not interesting(frame):
                continue
            now = time.monotonic()
            if now - window_start >= 1.0:
                window_start, parsed = now, 0
            if parsed >= FRAME_BUDGET_PER_S:
                continue
            parsed += 1
            collect(parse(frame), scope=scope, own_ip=iface.ip, hosts=hosts)
    finally:
        sock.close()
    return hosts


async def listen(*, iface: Interface, scope: Scope, seconds: float,
                 stop: threading.Event | None = None) -> dict[str, PassiveHost]:
    """Listen for ``seconds`` (or until ``stop``); returns what was heard, by MAC."""
    return await asyncio.to_thread(listen_sync, iface=iface, scope=scope, seconds=seconds,
                                   stop=stop)


def claims(host: PassiveHost) -> list[tuple[str, str, str]]:
    """The addresses a host only claimed (in mDNS, SSDP, LLDP, CDP, DHCP), as observations:
    kept apart from the address that answered or sent, so they never stand in for it."""
    return [(CLAIM_KEY, ip, "passive") for ip in sorted(host.claimed) if ip != host.ip]


def read_pcap(path: Path, *, scope: Scope, limit: int = 1_000_000) -> dict[str, PassiveHost]:
    """The same parsers over a capture file (pcap or pcapng), at most ``limit`` frames."""
    from scapy.utils import RawPcapReader  # raw frames: the parsers dissect what they need

    hosts: dict[str, PassiveHost] = {}
    with RawPcapReader(str(path)) as reader:  # pcap or pcapng, by the file's magic
        for count, (frame, _meta) in enumerate(reader):
            if count >= limit:
                break
            if interesting(frame):
                collect(parse(frame), scope=scope, hosts=hosts)
    return hosts

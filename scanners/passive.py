"""Listen-only discovery: who announces itself on the segment, without sending a packet.

Reads ARP on the sensor's interface for a while: every request or reply names its sender's
address and MAC (an address-conflict probe from 0.0.0.0 names only a MAC and is skipped).
This is the ``passive`` profile's discovery; DHCP, mDNS, SSDP and LLDP listening build on
the same socket in the identification work.
"""

from __future__ import annotations

import asyncio
import select
import time

from scapy.data import ETH_P_ARP
from scapy.layers.l2 import ARP, Ether

from scanners.netinfo import Interface
from scanners.observations import HostReply
from scanners.scope import Scope

MAX_FRAME = 128  # an ARP frame is 42 bytes (60 padded)
MAX_HOSTS = 65_536  # bound what a flood of forged ARP can make us hold


def listen_sync(*, iface: Interface, scope: Scope, seconds: float) -> list[HostReply]:
    from scapy.arch.linux import L2Socket

    seen: dict[str, HostReply] = {}
    sock = L2Socket(iface=iface.name, type=ETH_P_ARP, promisc=False)
    fileno = sock.fileno()
    deadline = time.monotonic() + seconds
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([fileno], [], [], remaining)
            if not ready:
                continue
            _cls, data, _ts = sock.recv_raw(MAX_FRAME)
            if not data:
                continue
            try:
                arp = Ether(data[:MAX_FRAME]).getlayer(ARP)
            except Exception:  # noqa: S112 - garbage on the wire is not a host
                continue
            if arp is None:
                continue
            ip, mac = str(arp.psrc), str(arp.hwsrc).lower()
            if ip in ("0.0.0.0", iface.ip) or ip in seen or len(seen) >= MAX_HOSTS:  # noqa: S104
                continue
            if scope.allows(ip) and scope.allows_mac(mac):
                seen[ip] = HostReply(ip=ip, mac=mac, rtt_s=0.0, source="passive")
    finally:
        sock.close()
    return sorted(seen.values(), key=lambda h: tuple(int(p) for p in h.ip.split(".")))


async def listen(*, iface: Interface, scope: Scope, seconds: float) -> list[HostReply]:
    """Listen for ``seconds`` and return the hosts that announced themselves."""
    return await asyncio.to_thread(listen_sync, iface=iface, scope=scope, seconds=seconds)

"""ARP sweep of the sensor's own subnet, with scapy's Linux packet socket.

One request frame is built with scapy and only its target address is patched per host, so a
/24 costs 254 small writes rather than 254 packet constructions. Replies are read from a
socket bound to the ARP EtherType only and parsed with scapy's ARP layer.
"""

from __future__ import annotations

import asyncio
import select
import socket
import time
from collections.abc import Sequence

from scapy.data import ETH_P_ARP
from scapy.layers.l2 import ARP, Ether

from scanners.netinfo import Interface
from scanners.observations import HostReply
from scanners.rate import RateLimiter
from scanners.scope import Scope
from scanners.sweep import Answer, Progress, SweepTiming, sweep

ARP_REPLY = 2
_PDST_OFFSET = 14 + 24  # Ethernet header, then ARP up to the target protocol address
MAX_FRAME = 128  # an ARP frame is 42 bytes (60 padded); read no more than this


def _request_template(iface: Interface) -> bytes:
    frame = Ether(dst="ff:ff:ff:ff:ff:ff", src=iface.mac) / ARP(
        op=1, hwsrc=iface.mac, psrc=iface.ip, hwdst="00:00:00:00:00:00", pdst="0.0.0.0"  # noqa: S104 - patched per target
    )
    return bytes(frame)


def arp_sweep_sync(
    targets: Sequence[str],
    *,
    iface: Interface,
    scope: Scope,
    limiter: RateLimiter,
    timing: SweepTiming = SweepTiming(),
    progress: Progress | None = None,
) -> list[HostReply]:
    """Blocking ARP sweep; :func:`arp_sweep` runs it in a thread."""
    for target in targets:
        scope.check(target)
    from scapy.arch.linux import L2Socket  # the Linux packet socket, no other layers

    template = bytearray(_request_template(iface))
    sock = L2Socket(iface=iface.name, type=ETH_P_ARP, promisc=False)
    fileno = sock.fileno()
    try:

        def send(target: str) -> None:
            template[_PDST_OFFSET : _PDST_OFFSET + 4] = socket.inet_aton(target)
            sock.send(bytes(template))  # type: ignore[arg-type]  # scapy sends raw bytes too

        def poll(timeout: float) -> list[Answer[str]]:
            answers: list[Answer[str]] = []
            ready, _, _ = select.select([fileno], [], [], max(0.0, timeout))
            while ready:
                _cls, data, _ts = sock.recv_raw(MAX_FRAME)
                now = time.monotonic()
                if data:
                    reply = _parse_reply(data, iface.ip)
                    if reply is not None:
                        answers.append(Answer(reply[0], reply[1], now))
                ready, _, _ = select.select([fileno], [], [], 0)
            return answers

        replies = sweep(
            targets, send=send, poll=poll, limiter=limiter, timing=timing, progress=progress
        )
    finally:
        sock.close()
    return [
        HostReply(ip=ip, mac=reply.info, rtt_s=reply.rtt_s, source="arp")
        for ip, reply in sorted(replies.items(), key=lambda kv: socket.inet_aton(kv[0]))
        if scope.allows_mac(reply.info)
    ]


def _parse_reply(data: bytes, my_ip: str) -> tuple[str, str] | None:
    """(sender IP, sender MAC) of an ARP reply addressed to us, else None."""
    try:
        frame = Ether(data[:MAX_FRAME])
    except Exception:  # scapy raises many kinds on garbage; a bad frame is just not a reply
        return None
    arp = frame.getlayer(ARP)
    if arp is None or arp.op != ARP_REPLY or arp.pdst != my_ip:
        return None
    return str(arp.psrc), str(arp.hwsrc).lower()


async def arp_sweep(
    targets: Sequence[str],
    *,
    iface: Interface,
    scope: Scope,
    limiter: RateLimiter,
    timing: SweepTiming = SweepTiming(),
    progress: Progress | None = None,
) -> list[HostReply]:
    """ARP sweep of ``targets`` (all on ``iface``'s link); returns the hosts that answered."""
    return await asyncio.to_thread(
        arp_sweep_sync,
        targets,
        iface=iface,
        scope=scope,
        limiter=limiter,
        timing=timing,
        progress=progress,
    )

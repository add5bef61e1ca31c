"""IPv6 neighbours on the segment: who answers an ICMPv6 echo to all nodes (ff02::1).

One echo request to the link's all-nodes group, sent from the sensor's global address, is
answered by every IPv6 host on the segment from its own global address (the reply goes to
ours). The answers are read from a packet socket on the scan interface, so each comes with
the sender's MAC: the central joins the address to the device its ARP answer named. Only
answers whose address is in scope are kept; the request itself stays on the link (hop
limit 1), and nothing is sent when the scope holds no IPv6 prefix of this link.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
import struct
import time

from scanners import bind
from scanners.icmp import ICMP6_ECHO_REPLY, echo6_request
from scanners.observations import HostReply
from scanners.passive_parse import mac_text
from scanners.scope import Scope

ALL_NODES = "ff02::1"
ETH_P_IPV6 = 0x86DD
LISTEN_S = 1.5  # seconds after the request; answers arrive within milliseconds on a LAN
MAX_NEIGHBOURS = 4096  # bound what a flood of forged replies can make us hold
MAX_FRAME = 1514


def parse_reply(frame: bytes, ident: int) -> tuple[str, str] | None:
    """(sender IPv6, sender MAC) of an ICMPv6 echo reply to our request, else None."""
    if len(frame) < 14 + 40 + 8 or struct.unpack_from("!H", frame, 12)[0] != ETH_P_IPV6:
        return None
    if frame[14 + 6] != 58:  # next header: ICMPv6 (no extension headers in an echo reply)
        return None
    icmp = 14 + 40
    if frame[icmp] != ICMP6_ECHO_REPLY or struct.unpack_from("!H", frame, icmp + 4)[0] != ident:
        return None
    source = socket.inet_ntop(socket.AF_INET6, frame[14 + 8:14 + 24])
    return source, mac_text(frame[6:12])


def neighbours_sync(*, interface: str, source: str, scope: Scope,
                    listen_s: float = LISTEN_S) -> list[HostReply]:
    """Ask all nodes on ``interface`` and collect who answers (blocking)."""
    ident = os.getpid() & 0xFFFF
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IPV6))
    sniff.bind((interface, 0))
    found: dict[str, HostReply] = {}
    try:
        with bind.new_socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as echo:
            echo.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
            echo.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF,
                            socket.if_nametoindex(interface))
            echo.bind((source, 0))
            started = time.monotonic()
            echo.sendto(echo6_request(ident, 1),
                        (ALL_NODES, 0, 0, socket.if_nametoindex(interface)))
            deadline = started + listen_s
            while len(found) < MAX_NEIGHBOURS and (left := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([sniff], [], [], left)
                if not ready:
                    break
                frame = sniff.recv(MAX_FRAME)
                reply = parse_reply(frame, ident)
                if reply is None or reply[0] == source or reply[0] in found:
                    continue
                if scope.allows(reply[0]) and scope.allows_mac(reply[1]):
                    found[reply[0]] = HostReply(ip=reply[0], mac=reply[1], source="icmp",
                                                rtt_s=time.monotonic() - started)
    finally:
        sniff.close()
    return list(found.values())


async def neighbours(*, interface: str, source: str, scope: Scope,
                     listen_s: float = LISTEN_S) -> list[HostReply]:
    return await asyncio.to_thread(neighbours_sync, interface=interface, source=source,
                                   scope=scope, listen_s=listen_s)

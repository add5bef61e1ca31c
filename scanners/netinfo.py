"""The sensor's own interfaces: which one faces the segment, its address, subnet and MAC.

Read from iproute2's JSON output (``ip -j``), which every Debian and Raspberry Pi OS has.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from netaddr import IPNetwork

# The kernel takes a frame's 802.1Q tag off before a packet socket reads it (or the NIC
# does), and says what it was beside the frame: struct tpacket_auxdata
SOL_PACKET, PACKET_AUXDATA = 263, 8
TP_STATUS_VLAN_VALID = 0x10
AUXDATA = struct.Struct("=IIIHHHH")  # status, len, snaplen, mac, net, vlan_tci, vlan_tpid
AUXDATA_SPACE = socket.CMSG_SPACE(AUXDATA.size)  # recvmsg's ancillary buffer for it


def aux_vid(ancillary: Iterable[tuple[int, int, bytes]]) -> int | None:
    """The VLAN id the kernel took off a frame, from its PACKET_AUXDATA (read on a packet
    socket with that option on), if any: 0 for a priority-tagged frame."""
    for level, kind, raw in ancillary:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(raw) >= AUXDATA.size:
            status, _len, _snap, _mac, _net, tci, _tpid = AUXDATA.unpack_from(raw)
            if status & TP_STATUS_VLAN_VALID:
                return tci & 0x0FFF
    return None



class InterfaceError(RuntimeError):
    """The interface is missing, down, or has no IPv4 address."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Interface:
    name: str
    mac: str
    ip: str
    network: IPNetwork  # the on-link subnet, e.g. 10.20.30.0/24
    ip6: str | None = None  # a global IPv6 address, on a dual-stack segment
    network6: IPNetwork | None = None  # its on-link prefix, e.g. fd73:1::/64

    @property
    def cidr(self) -> str:
        return str(self.network.cidr)


def _ip_json(*args: str) -> list[dict[str, Any]]:
    try:
        out = subprocess.run(
            ["ip", "-j", *args], check=True, capture_output=True, text=True, timeout=10
        ).stdout
    except FileNotFoundError:
        raise InterfaceError("the 'ip' command (iproute2) is not installed") from None
    except subprocess.CalledProcessError as exc:
        raise InterfaceError(f"ip {' '.join(args)} failed: {exc.stderr.strip()}") from None
    data = json.loads(out or "[]")
    return data if isinstance(data, list) else []


def default_interface_name() -> str:
    """The interface of the default route, else the first one that is up with IPv4."""
    for route in _ip_json("-4", "route", "show", "default"):
        dev = route.get("dev")
        if isinstance(dev, str):
            return dev
    for link in _ip_json("-4", "addr", "show", "up"):
        name = link.get("ifname")
        if isinstance(name, str) and name != "lo" and link.get("addr_info"):
            return name
    raise InterfaceError("no interface with an IPv4 address is up; use --interface")


def default_gateways(name: str) -> set[str]:
    """The addresses of the default routes that leave by interface ``name``: the segment's
    gateway as this host sees it (none when the default route leaves elsewhere)."""
    gateways = set()
    for family in ("-4", "-6"):
        try:
            routes = _ip_json(family, "route", "show", "default", "dev", name)
        except InterfaceError:
            continue
        gateways |= {str(r["gateway"]) for r in routes if isinstance(r.get("gateway"), str)}
    return gateways


def interface(name: str | None = None) -> Interface:
    """Describe one interface (the default one when ``name`` is None)."""
    name = name or default_interface_name()
    links = _ip_json("addr", "show", "dev", name)
    if not links:
        raise InterfaceError(f"interface {name!r} does not exist")
    link = links[0]
    if "UP" not in (link.get("flags") or []):
        raise InterfaceError(f"interface {name!r} is down (ip link set {name} up)")
    mac = str(link.get("address") or "").lower()
    infos = list(link.get("addr_info") or [])
    six = next((i for i in infos if i.get("family") == "inet6" and i.get("scope") == "global"),
               None)
    for info in infos:
        if info.get("family") == "inet":
            ip, prefix = info["local"], info["prefixlen"]
            return Interface(
                name=name, mac=mac, ip=ip, network=IPNetwork(f"{ip}/{prefix}").cidr,
                ip6=six["local"] if six else None,
                network6=IPNetwork(f"{six['local']}/{six['prefixlen']}").cidr if six else None)
    raise InterfaceError(f"interface {name!r} has no IPv4 address")

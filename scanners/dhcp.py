"""Ask the segment's DHCP servers to show themselves: one DHCP DISCOVER, broadcast.

A DHCP server that is not the zone's hands its clients a router that is not the zone's: a
home or travel router plugged in by its LAN port, a Raspberry Pi sharing its connection.
Every device it serves then sends its traffic past the zone's firewall. Its offers are sent
to the client's MAC, which on a switch only the client hears, unless the client asks for
them to everyone (the broadcast flag, RFC 2131 4.1). So the sensor sends one DISCOVER of
its own with that flag set, as nmap's ``broadcast-dhcp-discover`` does, and the passive
listener beside the scan hears every offer (``passive_parse``: ``dhcp.router``). Nothing
follows the offers: no address is requested or taken.
"""

from __future__ import annotations

import secrets
import socket

from scanners.netinfo import Interface

PARAMS = [1, 3, 6, 15, 54]  # mask, router, DNS, domain, server id: what a PC asks


def discover_frame(iface: Interface, xid: int) -> bytes:
    """The DISCOVER: from the sensor's MAC (the offers are made to it), without an address,
    asking for the answers to be broadcast."""
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    mac = bytes.fromhex(iface.mac.replace(":", ""))
    return bytes(Ether(src=iface.mac, dst="ff:ff:ff:ff:ff:ff")
                 / IP(src="0.0.0.0", dst="255.255.255.255")  # noqa: S104 - no address yet
                 / UDP(sport=68, dport=67)
                 / BOOTP(chaddr=mac, xid=xid, flags=0x8000)
                 / DHCP(options=[("message-type", "discover"), ("param_req_list", PARAMS),
                                 "end"]))


def discover(iface: Interface) -> None:
    """Send the one DISCOVER on ``iface`` (a packet socket: root or CAP_NET_RAW)."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((iface.name, 0))
        sock.send(discover_frame(iface, secrets.randbits(32)))

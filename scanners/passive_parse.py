"""What passive listening reads from one Ethernet frame: who sent it and what it says about
itself. Pure functions over bytes, shared by the live listener and ``scan --pcap``.

ARP (address and MAC), DHCP requests (hostname, vendor class, parameter request list),
mDNS announcements (service types, TXT records, claimed addresses), SSDP NOTIFY (server
header, the address in its description URL), WS-Discovery Hello and ProbeMatches (an ONVIF
camera's or a WSD printer's types and scopes), LLDP/CDP (system description, platform,
management address), and, where the sensor hears a device's own traffic (a capture, a
mirror port), the names it looks up in DNS and asks TLS servers for (SNI): an IoT device
calls its maker's cloud. A cheap look at the EtherType and UDP ports decides before scapy parses,
so a busy segment costs little; every string is bounded.
"""

from __future__ import annotations

import re
import socket
import struct
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from fingerprints.observation import (
    CLAIM_KEY,
    DEFAULT_GATEWAY,
    REDUNDANCY_KEY,
    ROLE_KEY,
    Observation,
)
from scanners.identify import (  # read as the port probe reads them
    KNX_PORT,
    UBIQUITI_PORT,
    field_text,
    parse_knx,
    parse_ubiquiti,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from scapy.packet import Packet

ETH_ARP = 0x0806
ETH_IPV4 = 0x0800
ETH_LLDP = 0x88CC
ETH_IPV6 = 0x86DD
NDP_TYPES = frozenset({135, 136})  # neighbour solicitation and advertisement (RFC 4861)
ROUTER_ADVERTISEMENT = 134  # RFC 4861: a router on the link says so
MLD_REPORTS = frozenset({131, 143})  # multicast listener reports, v1 and v2 (RFC 2710, 3810)
ICMPV6_TYPES = NDP_TYPES | MLD_REPORTS | {ROUTER_ADVERTISEMENT}
CDP_DST = bytes.fromhex("01000ccccccc")
CDP_SNAP = bytes.fromhex("aaaa0300000c2000")  # LLC/SNAP header of a CDP frame
DTP_SNAP = bytes.fromhex("aaaa0300000c2004")  # and of Cisco's trunk negotiation (DTP)
DTP_STATUS = 0x0002  # its trunk status TLV: operating state (bit 7) and administrative mode
DTP_MODES = {1: "on", 2: "off", 3: "desirable", 4: "auto"}  # administrative, the low 3 bits
MAX_DTP_TLVS = 8
MDNS_PORT = 5353
SSDP_PORT = 1900
WSD_PORT = 3702
DHCP_SERVER_PORT = 67
DHCP_CLIENT_PORT = 68
DNS_PORT = 53
IP_TCP, IP_UDP = 6, 17
IP_VRRP = 112  # VRRP v2 and v3 (RFC 3768, 5798), to 224.0.0.18
HSRP_PORT = 1985  # HSRP v1 (RFC 2281, to 224.0.0.2) and v2 (to 224.0.0.102)
HSRP_V1_GROUP = bytes([224, 0, 0, 2])
# the MACs a redundant gateway's master sends from: VRRP's IPv4 ones, HSRP v1's and v2's
VIRTUAL_MACS = ("00:00:5e:00:01:", "00:00:0c:07:ac:", "00:00:0c:9f:f")
MAX_NAME_CHARS = 253  # a DNS name
MAX_VALUE_CHARS = 512  # one observed string from the wire
MAX_ITEMS = 32  # records read from one frame
MAX_MANAGEMENT_ADDRESSES = 4  # an LLDP frame's management address TLVs read
MAX_INSTANCE_CHARS = 63  # a DNS-SD instance name is one DNS label (RFC 6763, 4.1.1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Heard:
    """One thing a frame said: a sender, and optionally an observation under a match key."""

    mac: str
    ip: str | None = None
    key: str | None = None
    value: str | None = None
    claimed: bool = False  # an address the device claims, not one that sent the frame
    # from a frame a router may have forwarded (a DNS query, a TLS or HTTP exchange): its
    # MAC is the last hop's, which is the sender's only when the sender is on this link
    routed: bool = False
    # an mDNS message's one host, whose addresses are not the sender's: a device with two legs
    # announcing its other one, or a sleep proxy or reflector repeating another device. Its
    # records count as the sender's only if the sender repeats no other host (see _relayed)
    about: str | None = None
    # from a frame no router forwards (ARP, a broadcast, IPv4 multicast to 224.0.0.0/24):
    # the sender is on this wire with ``ip``, whatever subnet that address is of
    local: bool = False


def repeats_others(about: Iterable[str], said: Iterable[Observation] = ()) -> bool:
    """Whether what a sender said in mDNS of hosts not its own (``Heard.about``) was about
    several of them, or about one whose name is not the one it announces for itself (its
    mdns.hostname among what it ``said`` of itself): a reflector's or a sleep proxy's words,
    none of them its own. About one host of its own name, it is a device with two legs
    naming its other address (one announces itself by one name on every leg)."""
    hosts = {_bare_host(name) for name in about}
    names = {_bare_host(o.value) for o in said if o.key == "mdns.hostname"}
    return len(hosts) > 1 or bool(names and hosts - names)


def _bare_host(name: str) -> str:
    """A host name as mdns.hostname gives it, to compare: lower case, without ``.local``."""
    return name.lower().rstrip(".").removesuffix(".local")[:63]


def _s(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return "".join(ch if ch.isprintable() else " " for ch in str(value)).strip()[:MAX_VALUE_CHARS]


LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113  # 'tcpdump -i any' before libpcap 1.10
LINKTYPE_LINUX_SLL2 = 276  # 'tcpdump -i any' since
_VLAN_TAGS = frozenset({0x8100, 0x88A8, 0x9100})  # 802.1Q, 802.1ad and the old QinQ
_ETH_802_2 = 0x0004  # a cooked capture's protocol for an 802.3 frame (LLC follows)
LINKTYPE_IEEE802_11 = 105  # a Wi-Fi capture, decrypted (or of an open network)
LINKTYPE_RADIOTAP = 127  # the same, with the radio's header before each frame
READ_LINKS = frozenset({LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2,
                        LINKTYPE_IEEE802_11, LINKTYPE_RADIOTAP})
_SNAP_ENCAPSULATIONS = (b"\xaa\xaa\x03\x00\x00\x00", b"\xaa\xaa\x03\x00\x00\xf8")  # RFC 1042


def _radiotap(frame: bytes) -> bytes | None:
    """The 802.11 frame behind a radiotap header, without the FCS the radio may have kept;
    None for a frame the radio marked as damaged."""
    if len(frame) < 8 or frame[0] != 0:
        return None
    length = struct.unpack_from("<H", frame, 2)[0]
    if not 8 <= length <= len(frame):
        return None
    at, present = 4, struct.unpack_from("<I", frame, 4)[0]
    words = present
    while words & 0x8000_0000 and at + 8 <= length:  # more presence words follow
        at += 4
        words = struct.unpack_from("<I", frame, at)[0]
    fields = at + 4
    flags = 0
    if present & 0b10:  # Flags, after the TSFT (8 bytes, aligned to 8) when present
        if present & 0b1:
            fields = (fields + 7) // 8 * 8 + 8
        flags = frame[fields] if fields < length else 0
    if flags & 0x40:  # the radio saw a bad FCS
        return None
    return frame[length:-4] if flags & 0x10 else frame[length:]  # 0x10: FCS at the end


def _wifi(frame: bytes) -> bytes | None:
    """An 802.11 data frame as Ethernet: its source and destination by the DS bits, and the
    ethertype of its SNAP header. Management, control, encrypted and null frames: None."""
    if len(frame) < 24:
        return None
    control, flags = frame[0], frame[1]
    if (control >> 2) & 0b11 != 2 or flags & 0x40 or control & 0x40:  # data, clear, not null
        return None
    to_ds, from_ds = flags & 0x01, flags & 0x02
    at = 24 + (6 if to_ds and from_ds else 0)
    if control & 0x80:  # QoS data: a QoS field, and an HT control field when ordered
        at += 2 + (4 if flags & 0x80 else 0)
    if to_ds and from_ds:
        destination, source = frame[16:22], frame[24:30]
    elif to_ds:
        destination, source = frame[16:22], frame[10:16]
    elif from_ds:
        destination, source = frame[4:10], frame[16:22]
    else:
        destination, source = frame[4:10], frame[10:16]
    if frame[at:at + 6] not in _SNAP_ENCAPSULATIONS or len(frame) < at + 8:
        return None
    return destination + source + frame[at + 6:]


def as_ethernet(frame: bytes, linktype: int = LINKTYPE_ETHERNET) -> bytes | None:
    """A captured frame as the parsers read it: Ethernet, untagged. None for a link the
    parsers cannot read (raw IP, a cooked frame of a non-Ethernet device) and for Wi-Fi
    frames that carry no readable data (management, encrypted).

    A capture taken on a mirror of a trunk port carries 802.1Q tags (one, or two for
    QinQ); one taken with 'tcpdump -i any' is 'cooked': the sender's MAC and the protocol,
    no destination. The sender is what the parsers need; the destination is rebuilt where
    a parser reads it (CDP's multicast address). A Wi-Fi capture (802.11, with or without
    radiotap) carries the same packets behind a SNAP header once decrypted; its sender is
    the station, whichever way the frame went through the access point."""
    if linktype in (LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2):
        if linktype == LINKTYPE_LINUX_SLL:
            if len(frame) < 16:
                return None
            hatype, alen = struct.unpack_from("!HH", frame, 2)
            sender, protocol, payload = frame[6:12], frame[14:16], frame[16:]
        else:
            if len(frame) < 20:
                return None
            hatype, alen = struct.unpack_from("!H", frame, 8)[0], frame[11]
            sender, protocol, payload = frame[12:18], frame[0:2], frame[20:]
        if hatype != 1 or alen != 6:  # ARPHRD_ETHER: a MAC of six bytes
            return None
        if struct.unpack("!H", protocol)[0] == _ETH_802_2:  # 802.3: length, then LLC
            cdp = payload[:8] == CDP_SNAP
            return ((CDP_DST if cdp else bytes(6)) + sender
                    + struct.pack("!H", min(len(payload), 1500)) + payload)
        frame = bytes(6) + sender + protocol + payload
    elif linktype in (LINKTYPE_IEEE802_11, LINKTYPE_RADIOTAP):
        inner = _radiotap(frame) if linktype == LINKTYPE_RADIOTAP else frame
        return _wifi(inner) if inner is not None else None
    elif linktype != LINKTYPE_ETHERNET:
        return None
    for _ in range(2):
        if len(frame) >= 18 and struct.unpack_from("!H", frame, 12)[0] in _VLAN_TAGS:
            frame = frame[:12] + frame[16:]
    return frame


def dtp_status(frame: bytes) -> int | None:
    """The trunk status a switch port's DTP frame states (its byte: bit 7 set when the port
    is a trunk now, the low three bits its mode: 1 on, 2 off, 3 desirable, 4 auto); None
    for any other frame. A bounded walk of its first TLVs."""
    if len(frame) < 23 or frame[:6] != CDP_DST or frame[14:22] != DTP_SNAP:
        return None
    at = 23  # after the version byte
    for _ in range(MAX_DTP_TLVS):
        if at + 4 > len(frame):
            return None
        kind, length = struct.unpack_from("!HH", frame, at)
        if length < 4:
            return None
        if kind == DTP_STATUS:
            return frame[at + 4] if length == 5 and at + 5 <= len(frame) else None
        at += length
    return None


def interesting(frame: bytes) -> bool:
    """A quick byte-level filter: only frames one of the parsers reads."""
    if len(frame) < 14:
        return False
    if frame[:6] == CDP_DST and frame[14:22] == CDP_SNAP:
        return True
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    if ethertype in (ETH_ARP, ETH_LLDP):
        return True
    if ethertype == ETH_IPV6:  # neighbour discovery, routers, listeners; mDNS over IPv6
        if len(frame) >= 14 + 40 + 8 and frame[20] == 58:
            return frame[54] in ICMPV6_TYPES and len(frame) >= 14 + 40 + (
                24 if frame[54] in NDP_TYPES else 16 if frame[54] == ROUTER_ADVERTISEMENT else 8)
        if len(frame) >= 14 + 40 + 8 and frame[20] == IP_UDP:  # no extension header
            sport, dport = struct.unpack_from("!HH", frame, 54)
            return MDNS_PORT in (sport, dport) or dport in (DNS_PORT, DHCPV6_SERVER_PORT)
        return len(frame) >= 14 + 40 + 20 and frame[20] == IP_TCP and _telling_tcp(
            frame, 54, private=frame[22] & 0xFE == 0xFC)  # a unique local address
    if ethertype != ETH_IPV4 or len(frame) < 14 + 20 + 8:
        return False
    ihl = (frame[14] & 0x0F) * 4
    if len(frame) < 14 + ihl + 8:
        return False
    if frame[23] == IP_TCP:
        return _telling_tcp(frame, 14 + ihl, private=_private4(frame[26:30]))
    if frame[23] == IP_VRRP:
        return True
    if frame[23] != IP_UDP:
        return False
    sport, dport = struct.unpack_from("!HH", frame, 14 + ihl)
    return (dport in (DHCP_SERVER_PORT, MDNS_PORT, SSDP_PORT, DNS_PORT, WSD_PORT, HSRP_PORT)
            or (sport == DHCP_SERVER_PORT and dport == DHCP_CLIENT_PORT)
            or sport in (MDNS_PORT, WSD_PORT, SSDP_PORT, *TPLINK_PORTS)
            or KNX_PORT in (sport, dport) or UBIQUITI_PORT in (sport, dport)
            or dport == MNDP_PORT
            or (dport == NBNS_PORT and frame[:6] == BROADCAST))


HTTP_METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ")
ANSWERS = (b"HTTP/1.", b"RTSP/1.")  # a web or camera server's answer: its head names it


def _private4(address: bytes) -> bool:
    """10/8, 172.16/12, 192.168/16 or 169.254/16: an address of a network here."""
    first, second = address[0], address[1]
    return (first == 10 or (first == 172 and 16 <= second <= 31)
            or (first, second) in ((192, 168), (169, 254)))


def _telling_tcp(frame: bytes, tcp_at: int, *, private: bool) -> bool:
    """A TCP segment whose payload starts a TLS ClientHello, an HTTP request (whose
    User-Agent says what the client is), or, from a ``private`` address, an HTTP or RTSP
    answer (whose Server header, title and realm say what the server is: an answer from
    the internet names a cloud's server, and on a busy mirror port it would spend the
    listener's frame budget)."""
    if len(frame) < tcp_at + 20:
        return False
    start = tcp_at + (frame[tcp_at + 12] >> 4) * 4
    handshake = len(frame) >= start + 6 and frame[start] == 0x16 and frame[start + 1] == 3
    return ((handshake and frame[start + 5] == 1) or frame[start:start + 5].startswith(HTTP_METHODS)
            or (private and ((handshake and frame[start + 5] == 2)
                             or frame[start:start + 7] in ANSWERS)))


def parse(frame: bytes) -> list[Heard]:
    """Everything this frame says; [] for frames no parser reads (or garbage)."""
    if not interesting(frame):
        return []
    try:
        heard = _parse(frame)
    except Exception:  # a malformed frame from an untrusted device says nothing
        return []
    # scapy reads a truncated field as b'' (an ARP sender of "b''"): keep only what is a
    # real MAC and a real address
    heard = [h for h in heard if _MAC_RE.match(h.mac) and (
        h.ip is None or _is_address(h.ip) or (h.local and link_local(h.ip)))]
    if _link_scoped(frame):  # the frame's sender, by its own address, is on this wire
        sender = mac_text(frame[6:12])
        heard = [replace(h, local=True) if h.mac == sender and h.ip and not h.claimed
                 and ":" not in h.ip else h for h in heard]
    elif _answer_datagram(frame):
        # an answer to someone's search may have crossed a router, with the router's MAC:
        # its words count as the sender's own only from an address it holds on the link
        # (collect), and it binds no address, nor the one it names
        heard = [replace(h, routed=True) for h in heard]
    return heard


def _answer_datagram(frame: bytes) -> bool:
    """A unicast IPv4 datagram of SSDP, WS-Discovery, TP-Link's or Ubiquiti's discovery: an answer
    to a phone's or an app's search, heard on a mirror port or where multicast is routed."""
    ports = None if frame[0] & 1 else _ports4(frame)  # to one MAC
    return ports is not None and bool(
        set(ports) & {SSDP_PORT, WSD_PORT, UBIQUITI_PORT, *TPLINK_PORTS})


def _link_scoped(frame: bytes) -> bool:
    """A frame whose sender holds its address on this wire: ARP to everyone (asking for a
    neighbour, announcing itself), or IPv4 to the broadcast MAC or address or to a
    link-local multicast group (224.0.0.0/24, mDNS's). A unicast datagram (an SSDP answer,
    a DHCP message a relay forwards) or one to a routable group may have been forwarded,
    with the sender's address and the router's MAC. Unicast ARP names an address it does
    not show held: a laptop checking for the router of the network it last joined (RFC
    4436) asks from the address it held there, and a router with proxy ARP answers for
    other subnets' addresses with its own MAC."""
    ethertype = struct.unpack_from("!H", frame, 12)[0]  # parse() checked the length
    if ethertype == ETH_ARP:
        return frame[:6] == BROADCAST
    if ethertype != ETH_IPV4 or len(frame) < 34:
        return False
    target = frame[30:34]
    return frame[:6] == BROADCAST or target == b"\xff" * 4 or target[:3] == b"\xe0\x00\x00"


_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def mac_text(raw: bytes) -> str:
    """Six bytes as a MAC the way the wire writes it: lower case, colon separated."""
    return ":".join(f"{b:02x}" for b in raw)


def _is_address(value: str) -> bool:
    """An IPv4 address, or a global IPv6 one (link-local and multicast name no device)."""
    try:
        if ":" not in value:
            socket.inet_pton(socket.AF_INET, value)
            return True
        raw = socket.inet_pton(socket.AF_INET6, value)
    except (OSError, ValueError):
        return False
    return not (raw[0] == 0xFF or (raw[0] == 0xFE and raw[1] & 0xC0 == 0x80) or not any(raw))


def link_local(value: str) -> bool:
    """An automatic address, of every link: 169.254/16 or fe80::/10."""
    try:
        if ":" not in value:
            return socket.inet_pton(socket.AF_INET, value)[:2] == b"\xa9\xfe"
        raw = socket.inet_pton(socket.AF_INET6, value)
    except (OSError, ValueError):
        return False
    return raw[0] == 0xFE and raw[1] & 0xC0 == 0x80


def ndp(frame: bytes) -> list[Heard]:
    """ICMPv6 on the link: a neighbour solicitation or advertisement (the sender's MAC with
    the address it sends from or announces), a multicast listener report (a host with
    IPv6 on, by the address it reports from), or a router advertisement (the segment's
    IPv6 router, when it offers itself as the default router)."""
    mac = mac_text(frame[6:12])
    kind = frame[54]
    source = socket.inet_ntop(socket.AF_INET6, frame[22:38])
    sender = source if _is_address(source) else None  # link-local names no device
    if kind == ROUTER_ADVERTISEMENT:
        lifetime = struct.unpack_from("!H", frame, 14 + 40 + 6)[0]
        heard = [Heard(mac=mac, ip=sender)]
        if lifetime:  # 0: a router that is not a default router
            heard.append(Heard(mac=mac, key=ROLE_KEY, value=DEFAULT_GATEWAY))
        return heard
    if kind in MLD_REPORTS:
        return [Heard(mac=mac, ip=sender)]
    if kind == 136:  # advertisement: the target address is the sender's own
        address = socket.inet_ntop(socket.AF_INET6, frame[62:78])
    else:  # solicitation: the source address (unspecified during duplicate detection)
        address = socket.inet_ntop(socket.AF_INET6, frame[22:38])
    return [Heard(mac=mac, ip=address)]


def _layers() -> None:
    """Import (once) every layer a frame may carry: dissection binds only layers known then."""
    import scapy.contrib.cdp
    import scapy.contrib.lldp
    import scapy.layers.dhcp
    import scapy.layers.dns
    import scapy.layers.inet
    import scapy.layers.inet6  # noqa: F401


def answer_to_us(frame: bytes) -> bool:
    """For a frame addressed to the sensor itself: an IP packet, the answer to one of its
    own probes (a web page, an SSDP or mDNS answer), which the probe that asked reads and
    reports; heard again by the listener, it would count twice. ARP and NDP addressed to it
    still say who is there."""
    if len(frame) < 14:
        return False
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    return ethertype == ETH_IPV4 or (ethertype == ETH_IPV6 and not (
        len(frame) > 54 and frame[20] == 58))


def routable(frame: bytes) -> bool:
    """An interesting frame that a router may have forwarded: TCP (a TLS hello, an HTTP
    exchange) or a DNS query. The rest the parsers read stay on their link (ARP, DHCP, mDNS,
    SSDP, NDP, LLDP, CDP)."""
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    if ethertype == ETH_IPV6:
        return frame[20] == IP_TCP or (frame[20] == IP_UDP and frame[56:58] == b"\x00\x35")
    return ethertype == ETH_IPV4 and (frame[23] == IP_TCP or (
        frame[23] == IP_UDP and struct.unpack_from(
            "!H", frame, 14 + (frame[14] & 0x0F) * 4 + 2)[0] == DNS_PORT))


def _parse(frame: bytes) -> list[Heard]:
    _layers()
    from scapy.layers.l2 import ARP, Ether

    if frame[:6] == CDP_DST:
        return _cdp(frame[:1514])
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    if routable(frame):
        return _names6(frame) if ethertype == ETH_IPV6 else _names4(frame)
    if ethertype == ETH_IPV6:
        if frame[20] == IP_UDP and struct.unpack_from("!H", frame, 56)[0] == DHCPV6_SERVER_PORT:
            return dhcp6(frame[62:], mac_text(frame[6:12]))
        return ndp(frame) if frame[20] == 58 else _mdns6(frame)
    if ethertype == ETH_IPV4 and redundant(frame):
        return redundancy(frame)
    packet = Ether(frame[:1514])
    mac = str(packet.src).lower()
    ethertype = packet.type
    if ethertype == ETH_ARP and packet.haslayer(ARP):
        ip = str(packet[ARP].psrc)
        return [] if ip == "0.0.0.0" else [Heard(mac=mac, ip=ip)]  # noqa: S104
    if ethertype == ETH_LLDP:
        return _lldp(packet, mac)
    return _udp(packet, mac)


def _ports4(frame: bytes) -> tuple[int, int] | None:
    """The source and destination ports of an IPv4 UDP datagram (None for anything else,
    or too short to hold them)."""
    if len(frame) < 34 or struct.unpack_from("!H", frame, 12)[0] != ETH_IPV4 \
            or frame[23] != IP_UDP:
        return None
    at = 14 + (frame[14] & 0x0F) * 4
    return struct.unpack_from("!HH", frame, at) if len(frame) >= at + 4 else None


def redundant(frame: bytes) -> bool:
    """A VRRP advertisement, or a datagram to HSRP's port (an IPv4 frame)."""
    ports = _ports4(frame)
    return frame[23] == IP_VRRP or (ports is not None and ports[1] == HSRP_PORT)


def redundancy(frame: bytes) -> list[Heard]:
    """A redundant gateway's router saying which virtual gateway address it serves: a VRRP
    advertisement (v2, v3: its addresses after an 8-byte header), an HSRP v1 hello (the
    address at byte 16) or v2 group state TLV (type 1, an IPv4 address at byte 26). Said
    as "<virtual address> <the router's own address>" (REDUNDANCY_KEY). A master sends
    from the virtual MAC, not its own: the router's address is then not bound to it."""
    at = 14 + (frame[14] & 0x0F) * 4
    speaker = socket.inet_ntoa(frame[26:30])
    if frame[23] == IP_VRRP:
        if frame[at:at + 1] not in (b"\x21", b"\x31"):  # v2 or v3, an advertisement
            return []
        count = min(frame[at + 3], MAX_ITEMS) if len(frame) > at + 3 else 0
        virtual = [frame[at + 8 + 4 * i:at + 12 + 4 * i] for i in range(count)]
    else:
        hello = frame[at + 8:]
        if frame[30:34] == HSRP_V1_GROUP and hello[:1] == b"\x00":
            virtual = [hello[16:20]]
        elif hello[:1] == b"\x01" and hello[5:6] == b"\x04":  # group state, IPv4
            virtual = [hello[26:30]]
        else:
            return []
    mac = mac_text(frame[6:12])
    own = None if mac.startswith(VIRTUAL_MACS) else speaker
    served = dict.fromkeys(socket.inet_ntoa(v) for v in virtual if len(v) == 4)
    return [Heard(mac=mac, ip=own, key=REDUNDANCY_KEY, value=f"{address} {speaker}")
            for address in served if address != "0.0.0.0"]  # noqa: S104 - none learnt yet


def _udp(packet: Packet, mac: str) -> list[Heard]:
    """A datagram over IPv4, by its ports (the interesting() filter let only these by)."""
    from scapy.layers.inet import IP, UDP

    if not packet.haslayer(UDP):
        return []
    source = str(packet[IP].src)
    sender = None if source == "0.0.0.0" else source  # noqa: S104
    if packet[UDP].dport == DHCP_SERVER_PORT:
        return _dhcp(packet, mac, sender)
    if packet[UDP].sport == DHCP_SERVER_PORT:
        return _dhcp_server(packet, mac, sender)
    if SSDP_PORT in (packet[UDP].dport, packet[UDP].sport):
        return ssdp_message(bytes(packet[UDP].payload), mac, sender)
    if WSD_PORT in (packet[UDP].dport, packet[UDP].sport):
        return wsd_message(bytes(packet[UDP].payload), mac, sender)
    if packet[UDP].dport == NBNS_PORT:
        named = nbns_registration(bytes(packet[UDP].payload))
        return [Heard(mac=mac, ip=sender, key=named[0], value=named[1])] if named else []
    if KNX_PORT in (packet[UDP].sport, packet[UDP].dport):
        # a KNX IP router's routing indications, an interface's answer to a commissioning tool
        return [Heard(mac=mac, ip=sender, key=k, value=v)
                for k, v in parse_knx(bytes(packet[UDP].payload)[:1024])]
    if UBIQUITI_PORT in (packet[UDP].sport, packet[UDP].dport):
        # a UniFi or airMAX device's answer to a controller, or its announcement
        return [Heard(mac=mac, ip=sender, key=k, value=v)
                for k, v in parse_ubiquiti(bytes(packet[UDP].payload)[:2048])]
    if packet[UDP].dport == MNDP_PORT:
        said = mndp_announcement(bytes(packet[UDP].payload)[:2048])
        return [Heard(mac=mac, ip=sender, key="mndp.device", value=said)] if said else []
    if packet[UDP].sport in TPLINK_PORTS:
        said = tplink_discovery(bytes(packet[UDP].payload))
        return [Heard(mac=mac, ip=sender, key="tplink.discovery", value=said)] if said else []
    return mdns_records(packet, mac, sender)


NBNS_PORT = 137
BROADCAST = b"\xff" * 6
_NBNS_REGISTRATIONS = frozenset({5, 8, 9})  # registration, refresh (RFC 1002 says 9; most send 8)


def nbns_registration(payload: bytes) -> tuple[str, str] | None:
    """The name a host registers for itself on the segment's broadcast (NetBIOS name
    service, RFC 1002), as ('netbios.name', name) for its computer name (unique, suffix
    0x00) or ('netbios.group', name) for its workgroup: Windows PCs, Samba, and printers
    (Brother's BRN<MAC>, HP's NPI<hex>) say it at start-up and at every refresh. A query
    asks for someone else's name, and says nothing of the sender's."""
    if len(payload) < 12 + 34 + 12 + 6:
        return None
    flags, questions = struct.unpack_from("!HH", payload, 2)
    if flags & 0x8000 or (flags >> 11) & 0x0F not in _NBNS_REGISTRATIONS or questions != 1:
        return None
    if payload[12] != 32 or payload[45] != 0:
        return None
    encoded = payload[13:45]
    if any(not 0x41 <= c <= 0x50 for c in encoded):  # 'A'..'P': one nibble each
        return None
    raw = bytes(((encoded[i] - 0x41) << 4) | (encoded[i + 1] - 0x41) for i in range(0, 32, 2))
    name, suffix = _s(raw[:15]), raw[15]
    group = struct.unpack_from("!H", payload, 12 + 34 + 4 + 12)[0] & 0x8000  # NB_FLAGS' G
    if suffix != 0 or not name:
        return None
    return ("netbios.group" if group else "netbios.name", name)


# TP-Link's smart-home devices (Kasa, Tapo) answer their app's discovery broadcast: on 9999
# with their system information as JSON, obscured by a byte-wise XOR chained from 171 (the
# 'Smart Home Protocol'); newer ones on 20002 with a 16-byte header and plain JSON
TPLINK_PORTS = (9999, 20002)
_TPLINK_FIELDS = (("model", ("model", "device_model")),
                  ("type", ("type", "mic_type", "device_type")), ("name", ("dev_name",)))


def tplink_discovery(payload: bytes) -> str | None:
    """'model=HS110(EU); type=IOT.SMARTPLUGSWITCH; name=Smart Wi-Fi Plug' from a TP-Link
    device's discovery answer; None for anything else."""
    import json

    plain = payload[16:] if payload[:1] == b"\x02" else _tplink_clear(payload[:4096])
    try:
        answer = json.loads(plain.decode("utf-8"))
        info = answer.get("result") or answer["system"]["get_sysinfo"]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None
    if not isinstance(info, dict):
        return None
    said = []
    for label, names in _TPLINK_FIELDS:
        value = next((info[n] for n in names if isinstance(info.get(n), str) and info[n]), None)
        if value:
            said.append(f"{label}={_s(value)[:128].replace(';', ',')}")
    return "; ".join(said) if said else None


def _tplink_clear(data: bytes) -> bytes:
    key, out = 171, bytearray()
    for byte in data:
        out.append(key ^ byte)
        key = byte
    return bytes(out)


# MikroTik's neighbour discovery (MNDP): RouterOS and SwOS announce themselves on every
# interface where it is on (the default), to 255.255.255.255:5678, every 30 to 60 s. A
# 4-byte header, then records of a 16-bit type and length. mactelnetd on Linux and Windows
# tools send it too, with their own platform: the platform says which.
MNDP_PORT = 5678
_MNDP_FIELDS = {8: "platform", 12: "board", 7: "version", 5: "identity"}  # in this order


def mndp_announcement(payload: bytes) -> str | None:
    """'platform=MikroTik; board=RB5009UG+S+; version=7.16.2 (stable); identity=gw-skole'
    from an MNDP announcement; None for anything else (a 4-byte request names nothing)."""
    found: dict[int, bytes] = {}
    at = 4
    for _ in range(MAX_ITEMS):
        if at + 4 > len(payload):
            break
        kind, length = struct.unpack_from("!HH", payload, at)
        if at + 4 + length > len(payload):
            return None  # a record longer than the datagram: not MNDP
        found.setdefault(kind, payload[at + 4:at + 4 + length])
        at += 4 + length
    said = []
    for kind, label in _MNDP_FIELDS.items():
        text = field_text(found.get(kind, b"")[:64])
        if text:
            said.append(f"{label}={text.replace(';', ',')}")
    if not any(s.startswith(("platform=", "board=")) for s in said):
        return None
    return "; ".join(said)


def _names4(frame: bytes) -> list[Heard]:
    """A DNS query or a TLS ClientHello over IPv4: the name asked for, by its sender."""
    ihl = (frame[14] & 0x0F) * 4
    source = socket.inet_ntoa(frame[26:30])
    return _names(frame, mac_text(frame[6:12]), source, frame[23], 14 + ihl)


def _names6(frame: bytes) -> list[Heard]:
    source = socket.inet_ntop(socket.AF_INET6, frame[22:38])
    return _names(frame, mac_text(frame[6:12]), source if _is_address(source) else None,
                  frame[20], 54)


def _names(frame: bytes, mac: str, sender: str | None, proto: int, at: int) -> list[Heard]:
    if proto == IP_UDP:
        said = [("dns.query", dns_query_name(frame[at + 8:at + 8 + 512]))]
    else:
        start = at + (frame[at + 12] >> 4) * 4
        if frame[start:start + 5].startswith(HTTP_METHODS):
            request = frame[start:start + 4096]
            said = [("http.user_agent", http_user_agent(request)), ("http.host", http_host(request))]
        elif frame[start:start + 7] in ANSWERS:
            said = server_answer(frame[start:start + 4096])
        elif frame[start + 5:start + 6] == b"\x02":  # a ServerHello: what the server presents
            said = list(server_certificate(frame[start:start + MAX_SERVER_HELLO_BYTES]))
        else:
            said = [("tls.sni", tls_server_name(frame[start:start + 4096]))]
    return [Heard(mac=mac, ip=sender, key=key, value=name, routed=True)
            for key, name in said if name]


def server_answer(answer: bytes) -> list[tuple[str, str | None]]:
    """What a server on the network says of itself at the head of an HTTP or RTSP answer
    (its Server header, realm and page title; a UPnP description's device), read the way the
    active probes read it. The byte filter lets only answers from private addresses by (see
    ``_telling_tcp``). Cookies are left out: a session's changes with every answer."""
    from scanners.identify import parse_http, parse_rtsp
    from scanners.ssdp import parse_description_head

    if answer.startswith(b"RTSP/"):
        return list(parse_rtsp(answer))
    said: list[tuple[str, str | None]] = [
        (key, value) for key, value in parse_http(answer) if key != "http.cookie"]
    return [*said, ("upnp.description", parse_description_head(answer.partition(b"\r\n\r\n")[2]))]


_LABEL = re.compile(rb"^[A-Za-z0-9_-]{1,63}$")


def dns_query_name(message: bytes) -> str | None:
    """The name a DNS query (not a response) asks for, lower case; None for anything else,
    and for reverse lookups and single-label names, which name no maker."""
    if len(message) < 17 or message[2] & 0x80 or struct.unpack_from("!H", message, 4)[0] < 1:
        return None
    labels = _wire_labels(message[12:])
    return _dns_name(labels) if labels is not None else None


def _wire_labels(data: bytes, *, partial: bool = False) -> list[bytes] | None:
    """A name in DNS wire format (length-prefixed labels, then a zero), as its labels; None
    for a pointer (no query needs one) or a name running off the end. ``partial``: the
    zero may be missing (a DHCP client's partial FQDN, RFC 4702)."""
    labels: list[bytes] = []
    at = 0
    while at < len(data):
        size = data[at]
        if size == 0:
            return labels
        if size & 0xC0 or at + 1 + size > len(data) or len(labels) >= 127:
            return None
        labels.append(data[at + 1:at + 1 + size])
        at += 1 + size
    return labels if partial else None


def _dns_name(labels: list[bytes]) -> str | None:
    """A name a device asks for, lower case, if it is one that can name a maker's cloud:
    two labels or more, each a valid label, within DNS's length; not a reverse look-up, a
    link-local name or an address."""
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) \
            or labels[-1].isdigit():
        return None
    name = b".".join(labels).decode("ascii").lower()
    if len(name) > MAX_NAME_CHARS or name.endswith((".arpa", ".local")):
        return None
    return name


_USER_AGENT = re.compile(rb"\r\nuser-agent:[ \t]*([^\r\n]{1,512})", re.IGNORECASE)


def http_user_agent(request: bytes) -> str | None:
    """The User-Agent header of an HTTP request's head (what the client says it is)."""
    head = request.split(b"\r\n\r\n", 1)[0]
    found = _USER_AGENT.search(head)
    return _s(found.group(1)) or None if found else None


_HOST = re.compile(rb"\r\nhost:[ \t]*([^\r\n:]{1,253})(?::\d{1,5})?[ \t]*\r\n", re.IGNORECASE)


def http_host(request: bytes) -> str | None:
    """The Host a plain HTTP request names, lower case, when it is a DNS name (the same name
    the client looked up, for a device whose lookup was cached before the capture began);
    None for an address, a single label, or anything that is not a name."""
    head = request.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    found = _HOST.search(head)
    if found is None:
        return None
    return _dns_name(found.group(1).rstrip(b".").split(b"."))


def tls_server_name(record: bytes) -> str | None:
    """The host name in a TLS ClientHello's server_name extension (RFC 6066), read with
    every length checked against what is there; None when there is none."""
    try:
        if record[0] != 0x16 or record[5] != 1:
            return None
        at = 5 + 4 + 2 + 32  # record header, handshake header, version, random
        at += 1 + record[at]  # session id
        at += 2 + struct.unpack_from("!H", record, at)[0]  # cipher suites
        at += 1 + record[at]  # compression methods
        end = min(len(record), at + 2 + struct.unpack_from("!H", record, at)[0])
        at += 2
        while at + 4 <= end:
            kind, size = struct.unpack_from("!HH", record, at)
            at += 4
            if kind == 0 and at + 5 <= end:  # server_name: list length, type, name length
                if record[at + 2] != 0:
                    return None
                length = struct.unpack_from("!H", record, at + 3)[0]
                raw = record[at + 5:at + 5 + length]
                if len(raw) != length or not 0 < length <= MAX_NAME_CHARS:
                    return None
                return _dns_name(raw.split(b"."))
            at += size
    except (IndexError, struct.error):
        return None
    return None


MAX_SERVER_HELLO_BYTES = 16_384  # a ServerHello, and the certificates after it in one segment
HANDSHAKE_CERTIFICATE = 11


def server_certificate(segment: bytes) -> list[tuple[str, str]]:
    """What a server on the network presents in a TLS 1.2 (or older) handshake: its
    certificate's subject, issuer and fingerprint, read as the active probe reads them, when
    the whole leaf certificate is in this segment (a device's own is usually small enough).
    The handshake messages are read from consecutive records, every length checked against
    what is there. TLS 1.3 encrypts the certificate: nothing."""
    from scanners.identify import parse_certificate

    handshake, at = bytearray(), 0
    while at + 5 <= len(segment) and segment[at] == 0x16 and segment[at + 1] == 3:
        size = int.from_bytes(segment[at + 3:at + 5], "big")
        handshake += segment[at + 5:at + 5 + size]
        at += 5 + size
    at = 0
    while at + 10 <= len(handshake):
        kind, size = handshake[at], int.from_bytes(handshake[at + 1:at + 4], "big")
        if kind == HANDSHAKE_CERTIFICATE:  # the list's length, then the leaf's, then the leaf
            leaf = int.from_bytes(handshake[at + 7:at + 10], "big")
            der = bytes(handshake[at + 10:at + 10 + leaf])
            return parse_certificate(der) if leaf and len(der) == leaf else []
        at += 4 + size
    return []


def _mdns6(frame: bytes) -> list[Heard]:
    """mDNS over IPv6 (to ff02::fb): the same records as over IPv4, from a v6 sender."""
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    packet = Ether(frame[:1514])
    if not packet.haslayer(IPv6):
        return []
    source, mac = str(packet[IPv6].src), str(packet.src).lower()
    if _is_address(source):
        return mdns_records(packet, mac, source)
    # from its link-local address: what it says is read as from no address, and that
    # address is its only one if it holds no other (passive.PassiveHost.automatic)
    automatic = [Heard(mac=mac, ip=source, local=True)] if link_local(source) else []
    return automatic + mdns_records(packet, mac, None)


def client_fqdn_host(option: bytes) -> str | None:
    """The host name in a DHCP Client FQDN option (RFC 4702): three bytes of flags and
    codes, then the name in DNS wire format (flag E) or as text; its first label."""
    if len(option) < 4:
        return None
    if option[0] & 0x04:  # E: canonical wire format
        return _first_label(option[3:])
    return _s(option[3:].split(b".", 1)[0])[:63] or None


def _first_label(name: bytes) -> str | None:
    """A host name: the first label of a (possibly partial) name in DNS wire format."""
    labels = _wire_labels(name, partial=True)
    return (_s(labels[0])[:63] or None) if labels else None


DHCPV6_SERVER_PORT = 547
_DHCPV6_CLIENT_MESSAGES = frozenset({1, 3, 4, 5, 6, 11})  # solicit ... information-request


def dhcp6(message: bytes, mac: str) -> list[Heard]:
    """A DHCPv6 client's message (RFC 8415): the host name in its Client FQDN option (39,
    RFC 4704: a flags byte, then the name in wire format) and its vendor class (16: an
    enterprise number, then length-prefixed strings; Windows says 311 and 'MSFT 5.0', as
    over DHCPv4). It comes from a link-local address, so it names the MAC only."""
    if len(message) < 4 or message[0] not in _DHCPV6_CLIENT_MESSAGES:
        return []
    out = [Heard(mac=mac)]
    at = 4
    for _ in range(MAX_ITEMS):
        if at + 4 > len(message):
            break
        code, size = struct.unpack_from("!HH", message, at)
        data = message[at + 4:at + 4 + size]
        at += 4 + size
        if code == 39 and len(data) >= 2 and (host := _first_label(data[1:])):
            out.append(Heard(mac=mac, key="dhcp.hostname", value=host))
        elif code == 16 and len(data) >= 6:
            length = struct.unpack_from("!H", data, 4)[0]
            vendor = _s(data[6:6 + length])
            if vendor:
                out.append(Heard(mac=mac, key="dhcp.vendor_class", value=vendor))
    return out


def _dhcp(packet: Packet, mac: str, sender: str | None) -> list[Heard]:
    from scapy.layers.dhcp import BOOTP, DHCP

    if not packet.haslayer(DHCP):
        return []
    client = mac_text(bytes(packet[BOOTP].chaddr)[:6])
    if str(packet[BOOTP].giaddr) != "0.0.0.0":  # noqa: S104
        # a relay (the router) forwarded it from the client's segment, from its own
        # address: on the DHCP server's segment every client of the town went by it
        sender = None
    out = [Heard(mac=client, ip=sender)]
    options = [o for o in packet[DHCP].options[:MAX_ITEMS] if isinstance(o, tuple) and len(o) > 1]
    if not any(name == "hostname" for name, *_ in options):
        # no host name (option 12): the first label of the client's FQDN (option 81), which
        # some clients send instead
        fqdn = next((value for name, value, *_ in options if name == "client_FQDN"), None)
        host = client_fqdn_host(fqdn) if isinstance(fqdn, bytes) else None
        if host:
            out.append(Heard(mac=client, ip=sender, key="dhcp.hostname", value=host))
    for option in options:
        name, value = option[0], option[1]
        if name == "hostname":
            out.append(Heard(mac=client, ip=sender, key="dhcp.hostname", value=_s(value)))
        elif name == "vendor_class_id":
            out.append(Heard(mac=client, ip=sender, key="dhcp.vendor_class", value=_s(value)))
        elif name == "param_req_list":
            params = value if isinstance(value, list) else [value]
            out.append(Heard(mac=client, ip=sender, key="dhcp.params",
                             value=",".join(str(int(p)) for p in params[:64])))
        elif name == "requested_addr":
            out.append(Heard(mac=client, ip=_s(value), claimed=True))
    return out


def _dhcp_server(packet: Packet, mac: str, sender: str | None) -> list[Heard]:
    """A DHCP server's offer or acknowledgement: the router it hands its clients
    (``dhcp.router``). Every client it serves sends its traffic there: a home router
    plugged in by its LAN port hands out itself, and the zone's firewall is bypassed. A
    relay (the zone's router) answers from its own address for the town's server."""
    from scapy.layers.dhcp import BOOTP, DHCP

    if sender is None or not packet.haslayer(DHCP) or packet[BOOTP].op != 2:  # a reply
        return []
    options = [o for o in packet[DHCP].options[:MAX_ITEMS] if isinstance(o, tuple) and len(o) > 1]
    kinds = {value for name, value, *_ in options if name == "message-type"}
    if not kinds & {2, 5}:  # an offer or an ack
        return []
    routers = next((rest for name, *rest in options if name == "router"), [])
    router = next((str(r) for r in routers if isinstance(r, str) and _is_address(r)), None)
    return [Heard(mac=mac, ip=sender, key="dhcp.router", value=router) if router
            else Heard(mac=mac, ip=sender)]


def ssdp_message(payload: bytes, mac: str, sender: str | None) -> list[Heard]:
    """An SSDP NOTIFY, or a device's answer to someone's M-SEARCH (a phone's app, a smart
    speaker: unicast, so a capture hears it where a listener on the segment would not): its
    SERVER header, the device type it announces (NT) or answers for (ST), and the host of
    its LOCATION when that is not the sender (an address the device claims)."""
    from urllib.parse import urlsplit

    from scanners.ssdp import device_type, parse_ssdp

    if payload.startswith(b"M-SEARCH "):
        # a search says what is searched for, not what the searcher is; its USER-AGENT is
        # the searcher's UPnP stack in the words of a SERVER header ('Linux UPnP/1.0
        # Sonos/70.3-35220 (ZPS1)'), where it sends one
        agent = parse_ssdp(payload, kinds=("M-SEARCH",)).get("USER-AGENT")
        return [Heard(mac=mac, ip=sender, key="ssdp.server", value=_s(agent))] if agent else []
    if not payload.startswith((b"NOTIFY ", b"HTTP/1.1 200")):
        return []
    headers = parse_ssdp(payload)
    out = [Heard(mac=mac, ip=sender)]
    if headers.get("SERVER"):
        out.append(Heard(mac=mac, ip=sender, key="ssdp.server", value=_s(headers["SERVER"])))
    announced = device_type(headers)  # a Wemo says urn:Belkin:device:controllee:1
    if announced:
        out.append(Heard(mac=mac, ip=sender, key="upnp.description", value=announced))
    try:
        host = urlsplit(headers.get("LOCATION", "")).hostname
    except ValueError:
        host = None
    if host and host != sender and host.count(".") == 3:
        out.append(Heard(mac=mac, ip=host, claimed=True))
    return out


def wsd_message(payload: bytes, mac: str, sender: str | None) -> list[Heard]:
    """A WS-Discovery Hello or ProbeMatches: the device's types and ONVIF scopes, and an
    address its XAddrs name (claimed). A Probe (a PC looking for devices) says nothing."""
    from scanners.wsd import parse as parse_wsd

    said = parse_wsd(payload, sender)
    if not said:
        return []
    out = [Heard(mac=mac, ip=sender)]
    for key, value in said:
        if key == CLAIM_KEY:
            out.append(Heard(mac=mac, ip=value, claimed=True))
        else:
            out.append(Heard(mac=mac, ip=sender, key=key, value=value))
    return out


def mdns_records(packet: Packet, mac: str, sender: str | None) -> list[Heard]:
    """What an mDNS message says: service types, instance names, TXT records, and A records
    (claimed); not the records it relays or proxies for other devices (``_relayed``)."""
    from scapy.layers.dns import DNS

    if not packet.haslayer(DNS):
        return []
    dns = packet[DNS]
    out = [Heard(mac=mac, ip=sender)]
    records: list[Any] = []
    # an answer's records are the sender's; a query's answers are those it already knows of
    # other devices (RFC 6762, 7.1), and only the records a probe proposes are its own (8.1)
    for section in ((dns.an, dns.ar) if dns.qr else (dns.ns,)):
        if section is not None:
            records.extend(section if isinstance(section, list) else section.iterpayloads())
    records = records[:MAX_ITEMS]
    hosts = _hosts(records)
    others = _relayed(records, hosts, sender)
    if others is None:
        return out
    said: list[Heard] = []
    instances: set[str] = set()
    for record in records:
        if _record_of(record) & others:
            continue
        heard, instance = _mdns_record(record, mac, sender)
        said.extend(heard)
        instances.add(instance)
    said.extend(Heard(mac=mac, ip=sender, key="mdns.instance", value=name)
                for name in sorted(instances) if name)
    about = _other_host(hosts, sender)
    return out + ([replace(h, about=about) for h in said] if about else said)


def _mdns_name(name: object) -> str:
    return _s(name).rstrip(".").lower()


def _record_of(record: Any) -> set[str]:
    """The names a record is about: its host's (A, AAAA) or its instance's (SRV, TXT, and
    the PTR that points at the instance), lower case."""
    rtype = getattr(record, "type", None)
    if rtype == 12:
        return {_mdns_name(getattr(record, "rdata", b""))}
    return {_mdns_name(getattr(record, "rrname", b""))} if rtype in (1, 28, 16, 33) else set()


def _relayed(records: list[Any], hosts: dict[str, set[str]],
             sender: str | None) -> set[str] | None:
    """The names in a message whose records belong to other devices, or None if all of them
    do. A Bonjour Sleep Proxy answers for the Macs asleep behind it, and an mDNS gateway or
    reflector (a school's wireless controller) repeats other segments' printers and screens,
    both from their own address: read as the sender's, a gateway in one zone took a printer's
    host name in another, and the two looked like one device bridging them. A host whose
    address records hold the sender's own address is the sender; where one is, the other
    hosts (and the instances whose SRV points at them) are not. Where none is, several hosts
    are a relay's, none of them its own; one host may be either (a device with two legs may
    announce only its other address), so its records go as the sender's, marked with the
    host they are about (``Heard.about``): a sender that repeats two such hosts is a relay."""
    own = {host for host, addresses in hosts.items() if sender in addresses}
    if not own:
        return None if len(hosts) > 1 else set()
    others = set(hosts) - own
    if others:
        others |= {_mdns_name(r.rrname) for r in records if getattr(r, "type", None) == 33
                   and _mdns_name(getattr(r, "target", b"")) in others}
    return others


def _hosts(records: list[Any]) -> dict[str, set[str]]:
    """The hosts a message's address records (A, AAAA) name, with their addresses."""
    hosts: dict[str, set[str]] = {}
    for record in records:
        if getattr(record, "type", None) in (1, 28):
            hosts.setdefault(_mdns_name(record.rrname), set()).add(_s(getattr(record, "rdata", "")))
    return hosts


def _other_host(hosts: dict[str, set[str]], sender: str | None) -> str | None:
    """A message's one host, if its addresses are not the sender's (see Heard.about)."""
    if len(hosts) != 1 or sender is None:
        return None
    ((host, addresses),) = hosts.items()
    return None if sender in addresses else host


def _mdns_record(record: Any, mac: str, sender: str | None) -> tuple[list[Heard], str]:
    """What one record says, and the instance it names ('' if none)."""
    rtype = getattr(record, "type", None)
    owner = _s(getattr(record, "rrname", b"")).rstrip(".")
    if rtype == 12:  # PTR: <service type> -> <instance>, or the service-type listing
        name, instance = owner, ""
        if owner.startswith("_services._dns-sd."):
            name = _s(getattr(record, "rdata", b"")).rstrip(".")
        else:
            instance = _instance(getattr(record, "rdata", b""))
        if name.startswith("_") and ("._tcp" in name or "._udp" in name):
            return [Heard(mac=mac, ip=sender, key="mdns.service",
                          value=name.removesuffix(".local"))], instance
        return [], instance
    if rtype == 33:  # SRV: kept under the instance's own name, as TXT is
        return [], _instance(owner)
    if rtype == 16:  # TXT
        texts = getattr(record, "rdata", [])
        joined = "; ".join(_s(t) for t in (texts if isinstance(texts, list) else [texts]))
        said = [Heard(mac=mac, ip=sender, key="mdns.txt", value=joined)] if joined else []
        return said, _instance(owner)
    if rtype in (1, 28):  # A or AAAA: an address the device claims, under its host name
        address = _s(getattr(record, "rdata", ""))
        # a link-local address names it on no other link (every IPv6 device has one, and
        # a device no DHCP server answered a 169.254 one)
        said = [] if link_local(address) else [Heard(mac=mac, ip=address, claimed=True)]
        host = owner.removesuffix(".local")
        if host and "." not in host:  # <host>.local: unique on its link by mDNS's rules
            said.append(Heard(mac=mac, ip=sender, key="mdns.hostname", value=host[:63]))
        return said, ""
    return [], ""


# <instance>.<service type>.local (RFC 6763, 4.1): the instance is a label of its own and may
# hold dots and spaces ('Brother HL-L2350DW series', 'Philips Hue - 1A2B3C'); the service
# type is the last two labels before the domain
_INSTANCE = re.compile(r"^(.+)\.(_[^.]+\._(?:tcp|udp))\.local\.?$", re.S)


def _instance(name: object) -> str:
    """The name a DNS-SD instance goes by (the factory's is its maker and model, until
    someone renames it), or '' for a name that is not an instance's."""
    found = _INSTANCE.match(_s(name))
    return found.group(1)[:MAX_INSTANCE_CHARS] if found else ""


# What a device says it is for, in the words both LLDP (IEEE 802.1AB system capabilities,
# the enabled ones) and CDP (its capability bits) share, most telling first.
_LLDP_CAPABILITIES = (("telephone_enabled", "telephone"), ("wlan_access_point_enabled", "wlan-ap"),
                      ("docsis_cable_device_enabled", "docsis"), ("router_enabled", "router"),
                      ("mac_bridge_enabled", "bridge"), ("repeater_enabled", "repeater"),
                      ("station_only_enabled", "station"), ("other_enabled", "other"))
_CDP_CAPABILITIES = ((0x80, "telephone"), (0x01, "router"), (0x0A, "bridge"),
                     (0x40, "repeater"), (0x10, "station"))


LLDP_MED_OUI = 0x0012BB  # TIA: LLDP-MED (ANSI/TIA-1057)
_MED_CLASSES = {1: "I", 2: "II", 3: "III", 4: "network"}  # endpoint classes; a switch or AP
_MED_INVENTORY = {5: "hardware", 6: "firmware", 7: "software", 9: "manufacturer", 10: "model"}


def lldp_med(packet: Packet) -> str:
    """What an LLDP-MED device says of itself (the TIA's organisation-specific TLVs): its
    class (III: a communication endpoint, an IP phone) and its inventory (manufacturer,
    model, firmware), as 'class=III; manufacturer=Yealink; model=SIP-T46S'. Desk phones,
    conference phones and many access points send it; the serial number is left out."""
    from scapy.contrib.lldp import LLDPDUGenericOrganisationSpecific

    said: dict[str, str] = {}
    for layer in packet.iterpayloads():  # a frame of at most 1514 bytes: a bounded walk
        if not isinstance(layer, LLDPDUGenericOrganisationSpecific) or (
                layer.org_code != LLDP_MED_OUI):
            continue
        data = bytes(layer.data or b"")
        if layer.subtype == 1 and len(data) >= 3 and data[2] in _MED_CLASSES:
            said.setdefault("class", _MED_CLASSES[data[2]])
        elif layer.subtype in _MED_INVENTORY and data:
            said.setdefault(_MED_INVENTORY[layer.subtype], _s(data.replace(b";", b",")[:64]))
    return "; ".join(f"{name}={value}" for name, value in said.items() if value)


def _lldp(packet: Packet, mac: str) -> list[Heard]:
    from scapy.contrib.lldp import (
        LLDPDUManagementAddress,
        LLDPDUSystemCapabilities,
        LLDPDUSystemDescription,
        LLDPDUSystemName,
    )

    out = [Heard(mac=mac)]
    for layer, key in ((LLDPDUSystemDescription, "lldp.sysdescr"),
                       (LLDPDUSystemName, "lldp.sysname")):
        if packet.haslayer(layer):
            field = "description" if key == "lldp.sysdescr" else "system_name"
            value = _s(getattr(packet[layer], field, b""))
            if value:  # the system name too: a device's name, the same in every zone
                out.append(Heard(mac=mac, key=key, value=value))
    if packet.haslayer(LLDPDUSystemCapabilities):
        layer = packet[LLDPDUSystemCapabilities]
        said = [word for field, word in _LLDP_CAPABILITIES if getattr(layer, field, 0)]
        if said:
            out.append(Heard(mac=mac, key="lldp.capabilities", value=",".join(said)))
    med = lldp_med(packet)
    if med:
        out.append(Heard(mac=mac, key="lldp.med", value=med))
    for nth in range(1, MAX_MANAGEMENT_ADDRESSES + 1):  # IPv4 and IPv6 ones, each a TLV
        mgmt = packet.getlayer(LLDPDUManagementAddress, nth)
        if mgmt is None:
            break
        raw = bytes(getattr(mgmt, "management_address", b""))
        subtype = getattr(mgmt, "management_address_subtype", None)
        if subtype == 1 and len(raw) == 4:
            out.append(Heard(mac=mac, ip=".".join(str(b) for b in raw), claimed=True))
        elif subtype == 2 and len(raw) == 16 and raw[:2] != b"\xfe\x80":  # IPv6, not link-local
            out.append(Heard(mac=mac, ip=socket.inet_ntop(socket.AF_INET6, raw), claimed=True))
    return out


def _cdp(frame: bytes) -> list[Heard]:
    from scapy.contrib.cdp import CDPAddrRecordIPv4, CDPMsgCapabilities, CDPMsgPlatform
    from scapy.layers.l2 import Dot3

    packet = Dot3(frame)
    mac = str(packet.src).lower()
    out = [Heard(mac=mac)]
    if packet.haslayer(CDPMsgPlatform):
        out.append(Heard(mac=mac, key="cdp.platform", value=_s(packet[CDPMsgPlatform].val)))
    if packet.haslayer(CDPMsgCapabilities):
        bits = int(packet[CDPMsgCapabilities].cap)
        said = [word for mask, word in _CDP_CAPABILITIES if bits & mask]
        if said:
            out.append(Heard(mac=mac, key="cdp.capabilities", value=",".join(said)))
    if packet.haslayer(CDPAddrRecordIPv4):
        out.append(Heard(mac=mac, ip=_s(packet[CDPAddrRecordIPv4].addr), claimed=True))
    return out

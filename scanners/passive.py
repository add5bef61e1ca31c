"""Listen-only discovery: who announces itself on the segment, without sending a packet.

Reads the segment's broadcast and multicast chatter on the sensor's interface for a while,
alone (the passive profile) or beside an active scan: ARP, DHCP requests, mDNS
announcements, SSDP NOTIFY, LLDP and CDP (see :mod:`scanners.passive_parse`). Every
frame is parsed by the same pure functions that read a pcap file, so ``scan --pcap`` tests
them on real captures. A frame budget bounds the CPU a busy or hostile segment can take.
"""

from __future__ import annotations

import asyncio
import logging
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fingerprints.observation import CLAIM_KEYS, Observation, claim_key
from scanners.netinfo import AUXDATA_SPACE, PACKET_AUXDATA, SOL_PACKET, Interface, aux_vid
from scanners.passive_parse import (
    LINKTYPE_ETHERNET,
    READ_LINKS,
    Heard,
    answer_to_us,
    as_ethernet,
    dtp_status,
    interesting,
    link_local,
    parse,
    repeats_others,
    routable,
)
from scanners.scope import Scope

ETH_P_ALL = 0x0003
MAX_FRAME = 1514
MAX_HOSTS = 65_536  # bound what a flood of forged announcements can make us hold
MAX_OBSERVATIONS_PER_HOST = 40
MAX_CLAIMS_PER_FAMILY = 16  # addresses a host only names, per address family
# One chatty kind of announcement must not crowd out the rest: a device in a day-long
# capture looks up hundreds of names before it renews its DHCP lease (its host name), so
# each key keeps a few values, and the names it looks up or connects to only those a rule
# reads (its maker's cloud), a few in all
MAX_VALUES_PER_KEY = 8
NAME_KEYS = frozenset({"dns.query", "tls.sni", "http.host"})
MAX_NAMES_PER_HOST = 8
Telling = Callable[[str, str], bool]
# A host that sent routable frames from this many addresses it does not hold on the link is
# forwarding others' (a router); one device has one IPv4 address, and a few IPv6 ones
# (privacy addresses change daily)
FORWARDED_V4 = 3
FORWARDED_V6 = 6
MAX_SENDERS = 16
MAX_AUTOMATIC = 4  # automatic addresses (169.254/16, fe80::/10) kept of one host
FRAME_BUDGET_PER_S = 2000  # frames parsed per second at most; the rest are skipped
MAX_LOGGED_FRAMES = 20  # malformed frames logged one by one; the rest are only counted

log = logging.getLogger("netvagt.scanners.passive")


@dataclass(slots=True)
class OtherVlan:
    """Frames of another VLAN that reached the port tagged: how many, and who sent them."""

    frames: int = 0
    senders: list[str] = field(default_factory=list)  # the first MAX_VLAN_SENDERS MACs


@dataclass(slots=True)
class FrameStats:
    """What listening saw: frames parsed, frames skipped as malformed, frames over budget."""

    read: int = 0  # frames read from a capture file
    parsed: int = 0
    malformed: int = 0
    over_budget: int = 0
    damaged_capture: str | None = None  # where a capture file stopped being readable
    # frames of other VLANs that reached the port tagged, by VLAN id: not this segment's
    other_vlans: dict[int, OtherVlan] = field(default_factory=dict)
    other_links: set[int] = field(default_factory=set)  # a capture's link types not read
    # what the switch port said of trunking (DTP), by the sending MAC: its status byte
    trunking: dict[str, int] = field(default_factory=dict)

    def tagged(self, vlan: int, frame: bytes) -> None:
        """Count a frame of another VLAN (MAX_OTHER_VLANS of them), and its sender."""
        other = self.other_vlans.get(vlan)
        if other is None:
            if len(self.other_vlans) >= MAX_OTHER_VLANS:
                return
            other = self.other_vlans[vlan] = OtherVlan()
        other.frames += 1
        if len(other.senders) < MAX_VLAN_SENDERS and len(frame) >= 12:
            sender = frame[6:12].hex(":")
            if sender not in other.senders:
                other.senders.append(sender)

    def negotiates(self, frame: bytes, status: int) -> None:
        """Keep what a DTP frame said (``status``), by its sender (MAX_VLAN_SENDERS)."""
        sender = frame[6:12].hex(":")
        if sender in self.trunking or len(self.trunking) < MAX_VLAN_SENDERS:
            self.trunking[sender] = status

    def take(self, frame: bytes, *, scope: Scope, own_ip: str | None,
             hosts: dict[str, PassiveHost], telling: Telling | None = None) -> None:
        """Parse and fold one frame alone: a frame that breaks a parser is counted, logged
        and skipped, and costs nothing else (a truncated ARP frame once ended a scan)."""
        self.parsed += 1
        try:
            collect(parse(frame), scope=scope, own_ip=own_ip, hosts=hosts, telling=telling)
        except Exception as exc:  # frames are untrusted; a parser bug they find is theirs
            self.malformed += 1
            if self.malformed <= MAX_LOGGED_FRAMES:
                log.warning("skipped a malformed frame (%d bytes, %s): %s", len(frame),
                            type(exc).__name__, frame[:64].hex())


@dataclass(slots=True)
class FrameBudget:
    """At most ``per_s`` frames parsed a second, and of them at most half routable ones
    (DNS, TLS, HTTP): on a mirror port those are the bulk, and a flood of them must not
    crowd out the ARP, DHCP and mDNS that say who is on the segment."""

    per_s: int = FRAME_BUDGET_PER_S
    window: float = float("-inf")
    parsed: int = 0
    routed: int = 0

    def admit(self, *, routable: bool, now: float) -> bool:
        if now - self.window >= 1.0:
            self.window, self.parsed, self.routed = now, 0, 0
        if self.parsed >= self.per_s or (routable and self.routed >= self.per_s // 2):
            return False
        self.parsed += 1
        self.routed += routable
        return True


@dataclass(slots=True)
class PassiveHost:
    """What one MAC said. Frames that never cross a router (ARP, DHCP, mDNS, SSDP, NDP) bind
    an address to the MAC; a DNS query, a TLS hello or an HTTP exchange may have been
    forwarded, and then its source MAC is the router's and its address someone else's (a
    mirror port at the core carries every routed flow). So what those frames say is kept
    with the address it came from, and counted as the host's own only from an address the
    host holds on the link, or, for a host that holds none, when it is not forwarding."""

    mac: str
    ip: str | None = None  # the IPv4 address it last sent from on the link
    ip6: set[str] = field(default_factory=set)  # global IPv6 addresses it sent from or announced
    claimed: set[str] = field(default_factory=set)
    observations: list[Observation] = field(default_factory=list)
    own: set[str] = field(default_factory=set)  # IPv4 addresses it sent from on the link
    # those of them it sent from in frames no router forwards (Heard.local): on this wire
    local: set[str] = field(default_factory=set)
    # automatic addresses it sent from (169.254/16 in frames no router forwards, fe80::/10
    # in mDNS): of every link, so no zone's; its only ones when no DHCP server answered it
    automatic: set[str] = field(default_factory=set)
    excluded: bool = False  # it sent from an address the operator excluded: never reported
    routed: dict[Observation, str] = field(default_factory=dict)  # said in routable frames
    senders: set[str] = field(default_factory=set)  # the addresses those frames came from
    scoped: set[str] = field(default_factory=set)  # those of them in the scope
    # said in mDNS of a host whose addresses are not the sender's, with that host's name;
    # its own only while it repeats no other host's (passive_parse.Heard.about)
    about: dict[Observation, str] = field(default_factory=dict)

    @property
    def forwards(self) -> bool:
        """It sent routable frames from more addresses than one device holds: a router."""
        foreign = self.senders - self.own - self.ip6
        six = sum(":" in a for a in foreign)
        return len(foreign) - six >= FORWARDED_V4 or six >= FORWARDED_V6

    @property
    def address(self) -> str | None:
        if self.ip:
            return self.ip
        if not self.forwards and (mine := [a for a in self.scoped if ":" not in a]):
            return min(mine)
        claimed4 = [a for a in self.claimed if ":" not in a]
        return min(claimed4) if claimed4 else None

    def addresses6(self) -> set[str]:
        """Its global IPv6 addresses: announced on the link, or sent from when not forwarding."""
        return self.ip6 if self.forwards else self.ip6 | {a for a in self.scoped if ":" in a}

    def automatic_address(self) -> str | None:
        """Its automatic address (IPv4 first) when it holds no other: a camera no DHCP
        server answered, a device with IPv4 off on a link without an IPv6 prefix."""
        if self.excluded or self.address or self.addresses6() or self.local:
            return None
        return min(self.automatic, key=lambda a: (":" in a, a), default=None)

    def home(self, usable: Callable[[str], bool]) -> str | None:
        """The address what it said goes with: its IPv4 one, where ``usable``; else (a
        device heard over IPv6 only, a Matter plug) its first IPv6 one."""
        if self.address and usable(self.address):
            return self.address
        return min(self.addresses6(), default=None)

    @property
    def repeats(self) -> bool:
        """It said in mDNS what several other hosts hold, or one not of its own name: a
        reflector or a sleep proxy."""
        return repeats_others(self.about.values(), self.observations)

    def said(self) -> list[Observation]:
        """Everything it said of itself (see the class)."""
        forwards = self.forwards
        about = () if self.repeats else self.about
        return [*self.observations,
                *(o for o, sender in self.routed.items() if self._sent(sender, forwards)),
                *(o for o in about if o.key not in CLAIM_KEYS)]

    def _sent(self, sender: str, forwards: bool) -> bool:
        """Whether a routable frame from ``sender`` is this host's own."""
        if sender in self.own or sender in self.ip6:
            return True  # an address it holds on the link
        # else its own only if it forwards for nobody, and (IPv4) holds no address here:
        # an IPv6 privacy address NDP never showed is still taken as its own
        return not forwards and (":" in sender or not self.own)


def collect(heard: Iterable[Heard], *, scope: Scope, own_ip: str | None = None,
            hosts: dict[str, PassiveHost] | None = None,
            telling: Telling | None = None) -> dict[str, PassiveHost]:
    """Fold what frames said into one record per MAC. ``telling(key, value)``: whether a
    name the host looked up or connected to names a device (the classifier's answer, given by
    the caller); without it, a host's first names are kept."""
    hosts = {} if hosts is None else hosts
    for item in heard:
        if not scope.allows_mac(item.mac) or (own_ip is not None and item.ip == own_ip):
            continue
        host = hosts.get(item.mac)
        if host is None:
            if len(hosts) >= MAX_HOSTS:
                continue
            host = hosts[item.mac] = PassiveHost(mac=item.mac)
        if item.routed and item.ip:  # without an address: from a link-local one, unrouted
            if not (item.key and item.value):
                continue
            # what it said counts whatever its address (a device that looks names up over
            # IPv6 under an IPv4 scope); the address itself only within the scope
            for kept, allowed in ((host.senders, True), (host.scoped, scope.allows(item.ip))):
                if allowed and len(kept) < MAX_SENDERS:
                    kept.add(item.ip)
            _observe(host, Observation(item.key, item.value, "passive"), telling, item.ip)
            continue
        if item.about:
            _aside(host, item, item.about)
            continue
        if item.ip:
            _bind(host, item.ip, claimed=item.claimed, scope=scope, local=item.local)
        if item.key and item.value:
            _observe(host, Observation(item.key, item.value, "passive"), telling)
    return hosts


def _aside(host: PassiveHost, item: Heard, about: str) -> None:
    """What an mDNS message said of a host whose addresses are not the sender's, kept aside
    until the end shows whether the sender repeats other hosts (PassiveHost.about)."""
    said = (Observation(claim_key(item.ip), item.ip, "passive") if item.claimed and item.ip
            else Observation(item.key, item.value, "passive") if item.key and item.value
            else None)
    if said is not None and len(host.about) < MAX_OBSERVATIONS_PER_HOST:
        host.about.setdefault(said, about)


def _bind(host: PassiveHost, ip: str, *, claimed: bool, scope: Scope, local: bool = False) -> None:
    """An address a link-local frame came from (the host's), or one it only claimed;
    ``local``: from a frame no router forwards (Heard.local)."""
    if claimed:  # each family its own budget: many IPv6 addresses crowd out no IPv4 leg
        six = ":" in ip
        if sum((":" in a) == six for a in host.claimed) < MAX_CLAIMS_PER_FAMILY:
            host.claimed.add(ip)
    elif scope.allows(ip):
        if ":" in ip:
            if len(host.ip6) < 8:
                host.ip6.add(ip)
            return
        host.ip = ip
        if len(host.own) < MAX_SENDERS:
            host.own.add(ip)
        if local and len(host.local) < MAX_SENDERS:
            host.local.add(ip)
    else:
        _outside(host, ip, scope=scope, local=local)


def _outside(host: PassiveHost, ip: str, *, scope: Scope, local: bool) -> None:
    """An address the host sent from outside the scope. Held on this wire (from a frame no
    router forwards: a camera at its factory address), it is seen and never probed
    (agent.scan.off_link); an automatic address is kept apart, being of every link
    (PassiveHost.automatic); one the operator excluded keeps the host from being reported
    by its automatic address."""
    if scope.excludes(ip):
        host.excluded = True
    elif link_local(ip):
        if (local or ":" in ip) and len(host.automatic) < MAX_AUTOMATIC:
            host.automatic.add(ip)
    elif local and ":" not in ip and len(host.local) < MAX_SENDERS:
        host.local.add(ip)


def _observe(host: PassiveHost, entry: Observation, telling: Telling | None,
             sender: str | None = None) -> None:
    """Keep one more thing a host said, within its budgets (see MAX_VALUES_PER_KEY); with
    the address it came from when its frame may have been forwarded."""
    said = [*host.observations, *host.routed]
    if len(said) >= MAX_OBSERVATIONS_PER_HOST or entry in said:
        return
    if entry.key in NAME_KEYS:
        if (sum(o.key in NAME_KEYS for o in said) >= MAX_NAMES_PER_HOST
                or (telling is not None and not telling(entry.key, entry.value))):
            return
    elif sum(o.key == entry.key for o in said) >= MAX_VALUES_PER_KEY:
        return
    if sender is None:
        host.observations.append(entry)
    else:
        host.routed[entry] = sender


MAX_OTHER_VLANS = 64  # VLAN ids counted; a trunk carrying more is said to carry this many
MAX_VLAN_SENDERS = 4  # MACs named for each


def listen_sync(*, iface: Interface, scope: Scope, seconds: float,
                stop: threading.Event | None = None, stats: FrameStats | None = None,
                telling: Telling | None = None) -> dict[str, PassiveHost]:
    """Listen until ``seconds`` have passed or ``stop`` is set."""
    stats = FrameStats() if stats is None else stats
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((iface.name, 0))
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    sock.setblocking(False)
    hosts: dict[str, PassiveHost] = {}
    deadline = time.monotonic() + seconds
    budget = FrameBudget()
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            if stop is not None and stop.is_set():
                break
            ready, _, _ = select.select([sock], [], [], min(remaining, 0.2))
            if not ready:
                continue
            try:
                frame, ancillary, _flags, meta = sock.recvmsg(MAX_FRAME, AUXDATA_SPACE)
            except BlockingIOError:
                continue
            if meta[2] == socket.PACKET_OUTGOING:  # ours (a sub-interface's tagged too)
                continue
            # a port that carries other VLANs tagged (an office port with a voice VLAN, a
            # trunk) hands the listener their frames looking like its own, the tag taken
            # off: they are not this segment's (VLAN 0: a priority tag, the port's own)
            if vlan := aux_vid(ancillary):
                stats.tagged(vlan, frame)
                continue
            # the switch port offering to become a trunk (Cisco's DTP): said of the port
            if (status := dtp_status(frame)) is not None:
                stats.negotiates(frame, status)
                continue
            if not interesting(frame) or (
                    meta[2] == socket.PACKET_HOST and answer_to_us(frame)):
                continue
            if not budget.admit(routable=routable(frame), now=time.monotonic()):
                stats.over_budget += 1
                continue
            stats.take(frame, scope=scope, own_ip=iface.ip, hosts=hosts, telling=telling)
    finally:
        sock.close()
    return hosts


async def listen(*, iface: Interface, scope: Scope, seconds: float,
                 stop: threading.Event | None = None, stats: FrameStats | None = None,
                 telling: Telling | None = None) -> dict[str, PassiveHost]:
    """Listen for ``seconds`` (or until ``stop``); returns what was heard, by MAC."""
    return await asyncio.to_thread(listen_sync, iface=iface, scope=scope, seconds=seconds,
                                   stop=stop, stats=stats, telling=telling)


def claims(host: PassiveHost) -> list[Observation]:
    """The addresses a host only claimed (in mDNS, SSDP, LLDP, CDP, DHCP), as observations:
    kept apart from the address that answered or sent, so they never stand in for it."""
    repeated = set() if host.repeats else {o.value for o in host.about if o.key in CLAIM_KEYS}
    own = {host.ip, *host.ip6}
    return [Observation(claim_key(ip), ip, "passive") for ip in sorted(host.claimed | repeated)
            if ip not in own]


def read_pcap(path: Path, *, scope: Scope, limit: int | None = None,
              stats: FrameStats | None = None, telling: Telling | None = None,
              progress: Callable[[int, int], None] | None = None) -> dict[str, PassiveHost]:
    """The same parsers over a capture file (pcap or pcapng): all of it, or its first
    ``limit`` frames. A day's capture holds millions of frames and a device may speak (renew
    its lease, announce itself) only near its end, so the whole file is read by default:
    memory stays bounded by the host and observation budgets, whatever its length.
    ``progress(bytes read, file size)`` is called as the reading goes.

    Each frame is parsed alone (a malformed one is counted and skipped); a capture whose
    record structure breaks part-way is read up to there, and ``stats`` says where."""
    from scapy.utils import RawPcapReader  # raw frames: the parsers dissect what they need

    stats = FrameStats() if stats is None else stats
    hosts: dict[str, PassiveHost] = {}
    size = path.stat().st_size
    with RawPcapReader(str(path)) as reader:  # pcap or pcapng, by the file's magic
        # a pcap file has one link type; pcapng one per interface, given with each frame
        linktype = getattr(reader, "linktype", LINKTYPE_ETHERNET)
        frames = iter(reader)
        while limit is None or stats.read < limit:
            try:
                frame, meta = next(frames)
            except StopIteration:
                break
            except Exception as exc:  # a record header that lies about its length, ...
                stats.damaged_capture = (f"after {stats.read} frames: "
                                         f"{type(exc).__name__}: {exc}")[:300]
                log.warning("%s: capture damaged %s", path, stats.damaged_capture)
                break
            stats.read += 1
            if progress is not None and stats.read % PROGRESS_EVERY == 0:
                progress(min(reader.f.tell(), size), size)
            link = getattr(meta, "linktype", None) or linktype
            try:
                ethernet = as_ethernet(frame, link)
            except Exception:  # a frame's own lie (a header's length): it alone is skipped
                stats.malformed += 1
                continue
            if ethernet is None and link not in READ_LINKS:
                stats.other_links.add(link)
            elif ethernet is not None and interesting(ethernet):
                stats.take(ethernet, scope=scope, own_ip=None, hosts=hosts, telling=telling)
    if progress is not None:
        progress(size, size)
    return hosts


PROGRESS_EVERY = 65_536  # frames between two progress reports on a capture

"""One scan of a segment: discover, probe ports, detect services, and build wire assets.

The agent composes the scanners; nothing here sends a packet itself. Targets on the
interface's own subnet are found by ARP (which also gives their MACs), routed targets by
ICMP echo; live hosts get the profile's TCP (and UDP) port probe; open TCP ports get nmap's
service detection when the profile allows it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from netaddr import IPAddress, IPNetwork, IPSet

from agent import wire
from agent.wire import Asset, Observation, Service
from fingerprints.classify import load_rules, names_a_device
from scanners import oui
from scanners.arp import arp_sweep
from scanners.bind import scanning_on
from scanners.icmp import icmp_sweep
from scanners.identify import SKIPPED, alone, alone_async, described, identify, parse_udp
from scanners.netinfo import Interface
from scanners.nmap_services import NmapError, detect_services
from scanners.observations import HostReply, PortResult, ServiceInfo
from scanners.passive import FrameStats, PassiveHost, claims
from scanners.passive_parse import DTP_MODES
from scanners.ports import PROFILES, TCP_PORTS, UDP_PORTS, Profile
from scanners.rate import RateLimiter
from scanners.scope import Scope
from scanners.sweep import SweepTiming
from scanners.tcp import ProbeOptions, probe_ports

log = logging.getLogger("netvagt.agent.scan")

Progress = Callable[[str, int, int], None]  # (phase, done, total)
Observed = dict[str, list[Observation]]  # address -> what it said
BESIDE_MAX_S = 4 * 3600.0  # listening beside a scan ends with the scan; this is a backstop


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanResult:
    started_at: str
    finished_at: str
    networks: tuple[str, ...]
    assets: tuple[Asset, ...]
    duration_s: float
    warnings: tuple[str, ...] = field(default_factory=tuple)
    port_vlans: tuple[wire.PortVlan, ...] = ()  # other VLANs' frames reached the port
    port_trunking: tuple[wire.PortTrunking, ...] = ()  # the port negotiates trunking (DTP)


def local_targets(iface: Interface) -> IPSet:
    """The interface's subnet without its network and broadcast addresses and without us."""
    hosts = IPSet(iface.network.iter_hosts()) if iface.network.size > 2 else IPSet(iface.network)
    hosts.remove(iface.ip)
    return hosts


async def scan(
    *,
    iface: Interface,
    scope: Scope,
    targets: IPSet | None = None,
    profile: Profile = PROFILES["standard"],
    progress: Progress | None = None,
    snmp_communities: tuple[str, ...] = ("public",),
) -> ScanResult:
    """Scan ``targets`` (default: the interface's subnet) within ``scope``; every probe
    leaves by ``iface`` (never by another interface's route, see :mod:`scanners.bind`)."""
    with scanning_on(iface.name):
        return await _scan(iface=iface, scope=scope, targets=targets, profile=profile,
                           progress=progress, snmp_communities=snmp_communities)


async def _scan(
    *,
    iface: Interface,
    scope: Scope,
    targets: IPSet | None,
    profile: Profile,
    progress: Progress | None,
    snmp_communities: tuple[str, ...],
) -> ScanResult:
    return await _Scan(iface=iface, scope=scope, targets=targets, profile=profile,
                       progress=progress, snmp_communities=snmp_communities).run()


class _Scan:
    """One scan's phases, each a method: listen first (the passive profile), discover,
    probe ports, identify, ask nmap about the rest; listening beside all of it."""

    def __init__(self, *, iface: Interface, scope: Scope, targets: IPSet | None,
                 profile: Profile, progress: Progress | None,
                 snmp_communities: tuple[str, ...]) -> None:
        self.iface, self.scope, self.profile = iface, scope, profile
        self.progress, self.snmp_communities = progress, snmp_communities
        self.started = time.monotonic()
        self.started_at = wire.utc_now()
        self.warnings: list[str] = []
        self.skipped_before = sum(SKIPPED.values())
        self.frames = FrameStats()
        wanted = targets if targets is not None else local_targets(iface)
        self.wanted = wanted - IPSet([iface.ip])
        addresses = scope.resolve(self.wanted)  # refuses anything outside the scope
        self.wanted_set = set(addresses)
        self.on_link = [a for a in addresses if IPAddress(a) in iface.network]
        self.routed = [a for a in addresses if IPAddress(a) not in iface.network]
        self.limiter = RateLimiter(global_pps=profile.global_pps, host_pps=profile.host_pps)
        self.hosts: dict[str, HostReply] = {}
        self.observed: Observed = {}
        self.off_link_left = 0  # addresses of other subnets heard and not reported
        self.ports: list[PortResult] = []
        self.services: list[ServiceInfo] = []

    def phase(self, name: str) -> Callable[[int, int], None] | None:
        progress = self.progress
        if progress is None:
            return None
        return lambda done, total: progress(name, done, total)

    def say(self, name: str, done: int) -> None:
        if self.progress is not None:
            self.progress(name, done, 1)

    async def run(self) -> ScanResult:
        profile = self.profile
        if profile.listen_s > 0:
            await self.listen_first()
        if not profile.active:
            self.on_link, self.routed = [], []
        # Listen beside the active scan: what devices announce while we probe is evidence too.
        stop_listening = threading.Event()
        beside: asyncio.Task[dict[str, PassiveHost]] | None = None
        if profile.listen_beside and profile.active:
            from scanners.passive import listen

            beside = asyncio.create_task(listen(iface=self.iface, scope=self.scope,
                                                seconds=BESIDE_MAX_S, stop=stop_listening,
                                                stats=self.frames, telling=names_a_device))
        try:
            await self.discover()
            await self.dhcp_servers()
            await self.probe()
            await self.identify_and_version()
        finally:
            stop_listening.set()
            if beside is not None:
                try:
                    self.off_link_left = _merge_passive(await beside, self.wanted_set,
                                                        self.hosts, self.observed, self.iface)
                except OSError as exc:  # no raw socket (not root, no CAP_NET_RAW): say so, go on
                    self.warnings.append(f"passive listening unavailable: {exc}")
        return await self.result()

    async def listen_first(self) -> None:
        from scanners.passive import listen

        label = f"listening {self.profile.listen_s:.0f} s"
        self.say(label, 0)
        heard = await listen(iface=self.iface, scope=self.scope, seconds=self.profile.listen_s,
                             stats=self.frames, telling=names_a_device)
        self.off_link_left = _merge_passive(heard, self.wanted_set, self.hosts, self.observed,
                                            self.iface)
        self.say(label, 1)

    async def discover(self) -> None:
        """ARP on the link, ICMP for routed targets, NDP for the link's IPv6 neighbours."""
        hosts, iface, scope, limiter = self.hosts, self.iface, self.scope, self.limiter
        if self.on_link:
            for reply in await arp_sweep(self.on_link, iface=iface, scope=scope, limiter=limiter,
                                         timing=SweepTiming(), progress=self.phase("ARP sweep")):
                hosts[reply.ip] = reply  # an answer to a probe outranks an announcement
        if self.routed and self.profile.icmp:
            for reply in await icmp_sweep(self.routed, scope=scope, limiter=limiter,
                                          timing=SweepTiming(), progress=self.phase("ICMP sweep")):
                hosts.setdefault(reply.ip, reply)
        if self.on_link and self.profile.icmp and _ipv6_in_scope(iface, scope):
            from scanners.ndp import neighbours

            for reply in await neighbours(interface=iface.name, source=str(iface.ip6),
                                          scope=scope):
                hosts.setdefault(reply.ip, reply)  # joined to its device by MAC centrally

    async def probe(self) -> None:
        profile = self.profile
        if not self.hosts or not (profile.tcp_ports or profile.udp_ports):
            return
        self.ports = await probe_ports(
            {ip: self.hosts[ip].rtt_s for ip in probe_targets(self.hosts)
             if not heard_off_link(self.observed.get(ip, ()))},
            tcp_ports=profile.tcp_ports,
            udp_ports=profile.udp_ports,
            scope=self.scope,
            limiter=self.limiter,
            options=ProbeOptions(host_concurrency=profile.host_concurrency,
                                 banner_wait_s=profile.banner_wait_s,
                                 snmp_communities=self.snmp_communities),
            progress=self.phase("port probe"),
        )

    async def identify_and_version(self) -> None:
        open_tcp: dict[str, list[int]] = {}
        for result in self.ports:
            if result.state == "open" and result.proto == "tcp":
                open_tcp.setdefault(result.ip, []).append(result.port)
        await self.udp_answers()
        await self.targeted(open_tcp)
        await self.multicast()
        named = _named_ports(self.observed)  # nmap is asked only about the rest
        unnamed = {ip: [p for p in found if (ip, p) not in named]
                   for ip, found in open_tcp.items() if ":" not in ip}  # nmap: IPv4 here
        self.services = await _versions({ip: p for ip, p in unnamed.items() if p},
                                        profile=self.profile, scope=self.scope,
                                        warnings=self.warnings, progress=self.progress)

    async def udp_answers(self) -> None:
        """What a UDP service answered, where a rule can read it."""
        for result in self.ports:
            answer = result.banner
            if result.proto != "udp" or result.state != "open" or not answer:
                continue
            self.observed.setdefault(result.ip, []).extend(
                Observation(k, v, f"{result.port}/udp") for k, v in alone(
                    lambda: parse_udp(result.port, answer),  # noqa: B023
                    f"{result.ip}:{result.port}/udp answer"))
            if result.port == 5060:
                from fingerprints import nmap_probes

                self.observed[result.ip].extend(await asyncio.to_thread(
                    described, nmap_probes.identify, answer, "sip", f"{result.port}/udp"))

    async def targeted(self, open_tcp: dict[str, list[int]]) -> None:
        """The targeted probes on what answered (HTTP, TLS, SSH, SNMP, ...)."""
        snmp_hosts = sorted({r.ip for r in self.ports if r.proto == "udp" and r.port == 161
                             and r.state == "open"})
        if not open_tcp and not snmp_hosts:
            return
        self.say("identification", 0)
        banners = {(r.ip, r.port): r.banner for r in self.ports if r.banner and r.proto == "tcp"}
        from fingerprints import nmap_probes  # nmap's service database, on what was read

        found_by_ip = await identify(open_tcp, banners=banners, scope=self.scope,
                                     snmp_hosts=snmp_hosts,
                                     snmp_communities=self.snmp_communities,
                                     pjl=self.profile.pjl,
                                     ssh_keys=self.profile.version_detection,
                                     describe=nmap_probes.identify)
        for ip, found in found_by_ip.items():
            self.observed.setdefault(ip, []).extend(found)
        self.say("identification", 1)

    async def dhcp_servers(self) -> None:
        """One DHCP DISCOVER, whose broadcast offers, heard by the listener beside the
        scan while the ports are probed, show every DHCP server on the segment (a travel
        router plugged in by its LAN port). The safe profile sends it too: it is what any
        device joining the segment broadcasts, and only DHCP servers answer it."""
        if not (self.profile.active and self.profile.listen_beside and self.on_link):
            return
        from scanners import dhcp

        try:
            await asyncio.to_thread(dhcp.discover, self.iface)
        except OSError as exc:
            self.warnings.append(f"DHCP servers not asked: {exc}")

    async def multicast(self) -> None:
        """The segment's multicast discovery (mDNS, SSDP and UPnP descriptions, and
        WS-Discovery, which every ONVIF camera and WSD printer answers)."""
        if not (self.profile.multicast and self.profile.active and self.hosts):
            return
        from scanners import wsd
        from scanners.mdns import browse
        from scanners.ssdp import discover

        self.say("mDNS / SSDP / UPnP / WS-Discovery", 0)
        source_ip = self.iface.ip
        for answers in await asyncio.gather(
                alone_async(browse(source_ip, scope=self.scope), "mDNS browse", {}),
                alone_async(discover(source_ip, scope=self.scope), "SSDP discovery", {}),
                alone_async(wsd.discover(source_ip, scope=self.scope), "WS-Discovery", {})):
            for ip, found in answers.items():
                if ip in self.hosts:
                    self.observed.setdefault(ip, []).extend(found)
        self.say("mDNS / SSDP / UPnP / WS-Discovery", 1)

    async def result(self) -> ScanResult:
        # `ip route` is a subprocess, and the rules take a moment to load: off the event loop
        await asyncio.to_thread(note_gateways, self.iface.name, self.hosts, self.observed,
                                self.warnings)
        await asyncio.to_thread(load_rules)
        skipped = sum(SKIPPED.values()) - self.skipped_before
        if skipped:
            self.warnings.append(f"{skipped} unreadable device answer(s) skipped; the rest is "
                                 "reported (details in the log)")
        if self.off_link_left:
            self.warnings.append(
                f"{self.off_link_left} more address(es) of other subnets heard on this wire, "
                f"not reported (at most {MAX_OFF_LINK_PER_SCAN} a scan): forged ARP?")
        if self.frames.malformed:
            self.warnings.append(f"{self.frames.malformed} malformed frame(s) skipped while "
                                 "listening")
        if vlans := self.frames.other_vlans:
            self.warnings.append(
                f"{sum(v.frames for v in vlans.values())} frame(s) tagged for VLAN "
                f"{', '.join(map(str, sorted(vlans)[:8]))}{' ...' if len(vlans) > 8 else ''} "
                f"reached {self.iface.name}: the port carries other VLANs (a voice VLAN, or a "
                "trunk); they were not read as this segment's (scan each from a sub-interface: "
                "[[scan.vlans]])")
        trunking = port_trunking(self.frames)
        for said in trunking:
            self.warnings.append(
                f"the switch port {'is a trunk' if said.trunk else 'offers to become a trunk'} "
                f"(DTP mode {said.mode}, from {said.sender}): any device in this socket can "
                "send into every VLAN the switch carries; set the port to access mode with "
                "negotiation off (Cisco: switchport mode access, switchport nonegotiate)")
        assets = build_assets(self.hosts, self.ports, self.services, self.observed)
        return ScanResult(
            started_at=self.started_at,
            finished_at=wire.utc_now(),
            networks=tuple(str(c) for c in self.wanted.iter_cidrs())[:64],
            assets=tuple(assets),
            duration_s=time.monotonic() - self.started,
            warnings=tuple(self.warnings),
            port_vlans=port_vlans(self.frames),
            port_trunking=trunking,
        )


def port_vlans(frames: FrameStats) -> tuple[wire.PortVlan, ...]:
    """The other VLANs whose tagged frames the listener counted, for the central."""
    return tuple(wire.PortVlan(vlan=vlan, frames=min(other.frames, 2**31),
                               senders=tuple(other.senders[:wire.MAX_VLAN_SENDERS]))
                 for vlan, other in sorted(frames.other_vlans.items()) if 0 < vlan < 4095)


def port_trunking(frames: FrameStats) -> tuple[wire.PortTrunking, ...]:
    """What the switch port said of trunking (DTP) that lets a device in the socket reach
    other VLANs: a mode that negotiates (auto, desirable), or a trunk (on, or trunking now).
    A port in mode off negotiates nothing: not told."""
    told = []
    for sender, status in sorted(frames.trunking.items()):
        mode, trunk = DTP_MODES.get(status & 0x07, "unknown"), bool(status & 0x80)
        if trunk or mode in ("on", "desirable", "auto"):
            told.append(wire.PortTrunking(sender=sender, mode=mode, trunk=trunk))
    return tuple(told)


def probe_targets(hosts: dict[str, HostReply]) -> list[str]:
    """The addresses whose ports are probed: every IPv4 address, and the IPv6 addresses of
    devices that have no IPv4 address (for one that has, its IPv6 address is its other name,
    joined to it by MAC; an IPv6-only device is probed by its own)."""
    dual = {h.mac for ip, h in hosts.items() if ":" not in ip and h.mac}
    return [ip for ip, h in hosts.items() if ":" not in ip or h.mac is None or h.mac not in dual]


def note_gateways(interface: str, hosts: dict[str, HostReply],
                  observed: Observed, warnings: list[str]) -> None:
    """Mark the segment's gateway, as this sensor's routes name it: the central learns each
    zone's router from it (ICMP to a router's own address is routing, not a flow)."""
    from scanners import netinfo

    try:
        gateways = netinfo.default_gateways(interface) & set(hosts)
    except (netinfo.InterfaceError, OSError, ValueError) as exc:
        warnings.append(f"the segment's gateway is unknown: {exc}")
        return
    for router in sorted(gateways | (redundant_routers(observed, gateways) & set(hosts))):
        observed.setdefault(router, []).append(Observation(wire.ROLE_KEY, wire.DEFAULT_GATEWAY,
                                                           "route"))


def redundant_routers(observed: Observed, gateways: set[str]) -> set[str]:
    """The routers that said (VRRP, HSRP) they serve one of ``gateways``, by their own
    addresses: with a redundant gateway, each physical router holds an address of its own
    on every VLAN, with one MAC on all of them, and was a device in every zone."""
    routers = set()
    for said in observed.values():
        for item in said:
            if item.key == wire.REDUNDANCY_KEY:
                virtual, _, own = item.value.partition(" ")
                if virtual in gateways and own:
                    routers.add(own)
    return routers


def _ipv6_in_scope(iface: Interface, scope: Scope) -> bool:
    """A dual-stack segment whose IPv6 prefix the sensor's scope includes (the default
    scope, the interface's IPv4 subnet, does not: IPv6 discovery is asked for)."""
    if iface.ip6 is None or iface.network6 is None:
        return False
    return bool(scope.include & IPSet([iface.network6]))


def _merge_passive(heard: dict[str, PassiveHost], wanted: set[str], hosts: dict[str, HostReply],
                   observed: Observed, link: Interface) -> int:
    """Fold what was heard into the scan: new hosts, and more evidence for known ones. A
    host that sends on this link from an address of another subnet is reported with the
    link it was on (``wire.LINK_KEY``); it is not probed (see ``_Scan.probe``): the
    sensor's packets to it would go through the router, not to it. At most
    MAX_OFF_LINK_PER_SCAN such addresses, the first heard; returns how many were left out."""
    # the MAC that answered the sweep's ARP at each address (none before the sweep)
    answered = {ip: reply.mac for ip, reply in sorted(hosts.items(), key=lambda i: IPAddress(i[0]))
                if reply.mac and reply.source != "passive"}
    # where the sweep found a MAC: the home of one heard by its MAC only (a redundant
    # gateway's master, sending from the virtual MAC that answers ARP for the gateway)
    swept: dict[str, str] = {}
    for ip, mac in answered.items():
        swept.setdefault(mac, ip)
    away = {mac: off_link(host, link) + ([] if mac in swept else automatic(host))
            for mac, host in heard.items()}
    allowed, left = _off_link_room(away, observed)
    contested = _contested(heard, answered)
    for address, macs in contested.items():
        if address in answered:
            _keep(observed.setdefault(address, []), [
                Observation(wire.CONFLICT_KEY, mac, "arp") for mac in sorted(macs)[:MAX_OFF_LINK]])
    for host in heard.values():
        for six in sorted(host.addresses6()):  # in scope (collect checked): its other names
            hosts.setdefault(six, HostReply(ip=six, mac=host.mac, rtt_s=0.0, source="passive"))
            if six in host.ip6 and link.network6 is not None \
                    and IPAddress(six) not in link.network6:  # sent from on the link
                _keep(observed.setdefault(six, []), [_link_mark(link.ip6, link.network6)])
        strangers = away[host.mac]
        # an address another MAC holds is not its home: a device spoofing the gateway's
        # address took the gateway's place in the table, and the gateway its words
        usable = functools.partial(_usable, wanted, [
            *strangers, *(a for a, macs in contested.items() if host.mac in macs)])
        # its home is an address of this link where it has one: the last it sent from may
        # be another subnet's (one it also holds, or the one it held on its last network)
        here = [a for a in host.own if usable(a) and IPAddress(a) in link.network]
        home = host.ip if host.ip in here else min(here, default=None)
        home = home or host.home(usable) or swept.get(host.mac)
        shown = [a for a in strangers if a in allowed]
        for address in dict.fromkeys(a for a in (*shown, home) if a is not None):
            hosts.setdefault(address, HostReply(ip=address, mac=host.mac, rtt_s=0.0,
                                                source="passive"))
            on = [_link_mark(link.ip, link.network)] if address in strangers else []
            _keep(observed.setdefault(address, []), [*host.said(), *claims(host), *on])
    return left


def _contested(heard: dict[str, PassiveHost], answered: dict[str, str]) -> dict[str, set[str]]:
    """Addresses more than one MAC sent ARP (or another frame of the link) from: the MACs
    that are not the one that ``answered`` the sweep's ARP there (all of them, before it)."""
    holders: dict[str, set[str]] = {}
    for host in heard.values():
        for address in host.own:
            holders.setdefault(address, set()).add(host.mac)
    contested = {}
    for address, macs in holders.items():
        mac = answered.get(address)
        others = macs - {mac} if mac else (macs if len(macs) > 1 else set())
        if others:
            contested[address] = others
    return contested


def _off_link_room(away: dict[str, list[str]], observed: Observed) -> tuple[set[str], int]:
    """The addresses of other subnets this merge may report (those already reported, and
    new ones while there is room), and how many new ones there was no room for; ``away``:
    each heard MAC's addresses of other subnets (off_link)."""
    already = {ip for ip, said in observed.items() if heard_off_link(said)}
    fresh = list(dict.fromkeys(a for addresses in away.values() for a in addresses
                               if a not in already))
    room = max(MAX_OFF_LINK_PER_SCAN - len(already), 0)
    return already | set(fresh[:room]), max(len(fresh) - room, 0)


def _keep(seen: list[Observation], more: Iterable[Observation]) -> None:
    """Add to what an address said what it did not say already."""
    seen.extend(o for o in more if o not in seen)


def _link_mark(ip: object, network: IPNetwork) -> Observation:
    """The mark of an address heard on this link from another subnet: the sensor's address
    there, with the link's prefix (``wire.LINK_KEY``)."""
    return Observation(wire.LINK_KEY, f"{ip}/{network.prefixlen}", "link")


def _usable(wanted: set[str], away: list[str], address: str) -> bool:
    """A host's home address must be one the scan wants, and not one from another subnet."""
    return address in wanted and address not in away


MAX_OFF_LINK = 4  # a device sending from many subnets' addresses (spoofing ARP) is shown by four
# addresses of other subnets one scan reports: forged ARP from random MACs and addresses
# (anywhere, since what is heard outside the scope is reported too) must not fill the
# inventory with devices that do not exist; the scan says how many it left out
MAX_OFF_LINK_PER_SCAN = 256


def heard_off_link(observed: Iterable[Observation]) -> bool:
    """Whether an address carries the link's mark (heard on this link from another
    subnet's address): a probe to it would go through the router, not to the device on this
    wire, so it is not probed; the technician's table says so."""
    return any(o.key == wire.LINK_KEY for o in observed)


def off_link(host: PassiveHost, link: Interface) -> list[str]:
    """The IPv4 addresses a host sent from on this wire (in ARP, a broadcast, or to a
    link-local group: frames no router forwards) that are not of the link's subnet: a
    device with another segment's address plugged in here, one holding a second subnet's
    address beside its own, or a second subnet on one VLAN; at most MAX_OFF_LINK of them.
    (Its IPv6 addresses are compared with the link's prefix as they are folded in: NDP's
    and mDNS's, the only ones it holds, never cross a router.)"""
    return sorted(a for a in host.local if IPAddress(a) not in link.network)[:MAX_OFF_LINK]


def automatic(host: PassiveHost) -> list[str]:
    """A host's automatic address (169.254/16, fe80::/10) when it holds no other: a camera
    no DHCP server answered is on this wire all the same. Reported as an address of another
    subnet is (with the link's mark, never probed): the central places it in the zone of
    the segment it was heard on, as such an address is of no zone."""
    address = host.automatic_address()
    return [] if address is None else [address]


def _named_ports(observed: Observed) -> set[tuple[str, int]]:
    """(address, TCP port) pairs whose service already said what it is."""
    named = set()
    for ip, items in observed.items():
        for _key, _value, source in items:
            port, _, proto = source.partition("/")
            if proto == "tcp" and port.isdigit():
                named.add((ip, int(port)))
    return named


async def _versions(open_tcp: dict[str, list[int]], *, profile: Profile, scope: Scope,
                    warnings: list[str], progress: Progress | None) -> list[ServiceInfo]:
    """nmap's version detection, when the profile asks for it, on the open TCP ports the
    targeted probes left unnamed (within nmap's time budget per host)."""
    if not open_tcp or not profile.version_detection:
        return []
    if shutil.which("nmap") is None:
        warnings.append("nmap is not installed: services are named by port only")
        return []
    if progress is not None:
        progress("service detection (nmap)", 0, 1)
    try:
        return await detect_services(open_tcp, scope=scope, intensity=profile.nmap_intensity)
    except NmapError as exc:
        warnings.append(f"nmap failed: {exc}")
        return []
    finally:
        if progress is not None:
            progress("service detection (nmap)", 1, 1)


def build_assets(
    hosts: dict[str, HostReply],
    ports: list[PortResult],
    services: list[ServiceInfo],
    observed: Observed | None = None,
) -> list[Asset]:
    """Join discovery, port results and service detection into one asset per address."""
    named = {(s.ip, s.proto, s.port): s for s in services}
    nmap_said: dict[str, list[ServiceInfo]] = {}
    for service in services:
        nmap_said.setdefault(service.ip, []).append(service)
    probed = _software(observed or {})
    by_host: dict[str, list[Service]] = {}
    extra_sources: dict[str, set[str]] = {}
    for result in ports:
        if result.state != "open":
            continue
        info = named.get((result.ip, result.proto, result.port))
        table = TCP_PORTS if result.proto == "tcp" else UDP_PORTS
        guess = table.get(result.port, "").split(" ")[0] or None
        software = probed.get((result.ip, f"{result.port}/{result.proto}"), (None, None))
        by_host.setdefault(result.ip, []).append(
            Service(
                port=result.port,
                proto=result.proto,
                state="open",
                name=(info.name if info and info.name else guess),
                product=info.product if info else software[0],
                version=info.version if info else software[1],
                extrainfo=info.extrainfo if info else None,
                banner=wire.printable(result.banner) if result.banner else None,
                source="nmap" if info else result.proto,
            )
        )
        extra_sources.setdefault(result.ip, set()).add(result.proto)
    assets = []
    for ip in sorted(hosts, key=lambda a: IPAddress(a)):
        reply = hosts[ip]
        mac = reply.mac
        sources = {reply.source} | extra_sources.get(ip, set())
        assets.append(
            Asset(
                ip=ip,
                mac=mac,
                mac_vendor=(oui.vendor(mac) or None) if mac else None,
                mac_random=oui.is_locally_administered(mac) if mac else False,
                rtt_ms=round(reply.rtt_s * 1000, 3),
                sources=tuple(sorted(sources)),
                services=tuple(sorted(by_host.get(ip, []), key=lambda s: (s.proto, s.port))),
                observations=tuple(
                    Observation(key=k, value=wire.printable(v, limit=wire.MAX_OBSERVED_CHARS),
                                source=src)
                    for k, v, src in _said(ip, observed or {}, nmap_said.get(ip, []))
                ),
            )
        )
    return assets


def _said(ip: str, observed: Observed, services: Iterable[ServiceInfo]) -> list[Observation]:
    """What one address said, with what nmap's version detection said of its ``services`` (as
    ``nmap.match``, the form of a match of nmap's database on a collected answer), within
    the wire's bound: nmap's answers first, at most half of it (a device that floods mDNS
    does not push them out)."""
    from fingerprints.nmap_probes import KEY, as_value

    nmap = [Observation(KEY, as_value({
        "service": s.name or "", "product": s.product or "", "version": s.version or "",
        "info": s.extrainfo or "", "os": s.ostype or "", "devicetype": s.devicetype or "",
        "cpe": next((c for c in s.cpe if c.startswith("cpe:/h:")), s.cpe[0] if s.cpe else "")}),
        f"{s.port}/{s.proto}")
        for s in services if s.product or s.extrainfo or s.devicetype or s.ostype]
    nmap = nmap[: wire.MAX_OBSERVATIONS // 2]
    return nmap + observed.get(ip, [])[: wire.MAX_OBSERVATIONS - len(nmap)]


def _software(observed: Observed
              ) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """What server software each port named in its own words (a Server header, a banner),
    read by the fingerprint rules: {(address, "80/tcp"): (product, version)}."""
    from fingerprints.classify import matches

    out: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    for ip, items in observed.items():
        for key, value, source in items:
            for evidence in matches(key, value, source=source):
                product = evidence.fields.get("product")
                if product and (ip, source) not in out:
                    out[(ip, source)] = (product, evidence.fields.get("version"))
    return out

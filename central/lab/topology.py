"""A simulated network built from namespaces: segments, a router with an nftables policy,
emulated devices with real vendors' MACs and banners, sensor hosts, and a core segment
where the broker and the central live.

``with Lab(spec) as lab:`` builds it and always tears it down, processes first (by PID),
namespaces after. Names carry a per-run prefix, so two labs never collide and a crashed
run's leftovers can be found and removed (``cleanup_stale``).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from netaddr import IPNetwork

from central.lab import netns
from central.lab.netns import LabError

LAB_PREFIX = "nvl"  # every lab namespace starts with this
CORE_NET = "10.99.0.0/24"
CORE_HOST = "10.99.0.10"  # broker and central
SENSOR_HOST = 250  # a sensor's host number in its segment
ROUTER_HOST = 1
TRUNK_HOST = 249  # the trunk sensor's address in each of its VLANs
TRUNK_MGMT = "10.99.0.249"  # the trunk sensor's management interface, on the core segment
TRUNK_MAC = "02:5e:00:00:00:7b"
SITE_UPLINK_HOST = 200  # a site router's address on the core segment: .200, .201, ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSpec:
    port: int
    # tcp: http | tls | ssh | xml | rtsp | banner | modbus | s7 | silent; udp: snmp | bacnet |
    # netbios | sip | mdns | mdns-reflector | ssdp | wsd | knx | ubiquiti; raw: comma-separated
    # chatter (dhcp, lldp, cdp, knx-routing, mndp, ...), sent every params.interval s
    kind: str
    proto: str = "tcp"
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceSpec:
    name: str
    segment: str
    host: int  # host number within the segment's /24
    mac: str
    vendor: str  # what the OUI registry must say (checked by tests)
    device_type: str
    services: tuple[ServiceSpec, ...] = ()
    # more legs of a dual-homed device: (segment, host number, MAC), as eth1, eth2, ...
    also: tuple[tuple[str, int, str], ...] = ()
    # plugged into this segment's wire while its address (and gateway) stay ``segment``'s:
    # a camera in the wrong socket, a second subnet on one VLAN
    socket: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentSpec:
    name: str
    cidr: str
    router_mac: str
    sensor: bool = True
    cidr6: str | None = None  # an IPv6 prefix as well: the segment is dual-stack
    # reached by the lab's trunk sensor as this VLAN (through the trunk relay), not by a
    # sensor of its own
    vlan: int | None = None
    # behind a router of its own, as a site is: its own address space (two sites may use the
    # same CIDR), reaching the core's broker through the router's NAT, and nothing else
    site: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LabSpec:
    segments: tuple[SegmentSpec, ...]
    devices: tuple[DeviceSpec, ...]
    # flows the router forwards between segments: (from, to, "tcp"|"udp", port) or
    # (from, to, "icmp", 0) for echo requests; everything else between segments is dropped
    allowed_flows: tuple[tuple[str, str, str, int], ...] = ()

    def segment(self, name: str) -> SegmentSpec:
        for seg in self.segments:
            if seg.name == name:
                return seg
        raise KeyError(name)

    def address(self, segment: str, host: int) -> str:
        return str(IPNetwork(self.segment(segment).cidr)[host])

    def address6(self, segment: str, host: int) -> str | None:
        prefix = self.segment(segment).cidr6
        return str(IPNetwork(prefix)[host]) if prefix else None


def _mac_for_sensor(index: int) -> str:
    return f"b8:27:eb:00:00:{index + 1:02x}"  # Raspberry Pi Foundation


@dataclass(slots=True)
class Lab:
    spec: LabSpec
    prefix: str = field(default_factory=lambda: f"{LAB_PREFIX}{secrets.token_hex(2)}")
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="netvagt-lab-")))
    namespaces: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    emulator: subprocess.Popen[bytes] | None = None
    _segments: list[SegmentSpec] = field(default_factory=list)
    _flows_set: bool = False

    # ------------------------------------------------------------------ names

    @property
    def switch(self) -> str:
        return f"{self.prefix}-sw"

    @property
    def router(self) -> str:
        return f"{self.prefix}-rt"

    @property
    def core(self) -> str:
        return f"{self.prefix}-core"

    def site_router(self, site: str) -> str:
        return f"{self.prefix}-rt-{site}"

    def device_ns(self, name: str) -> str:
        return f"{self.prefix}-d-{name}"

    def sensor_ns(self, segment: str) -> str:
        return f"{self.prefix}-s-{segment}"

    def sensor_ip(self, segment: str) -> str:
        return self.spec.address(segment, SENSOR_HOST)

    @property
    def trunk_sensor_ns(self) -> str:
        """The sensor on the trunk port: eth0 the trunk (no address), eth1 management."""
        return f"{self.prefix}-s-trunk"

    @property
    def trunk_ns(self) -> str:
        return f"{self.prefix}-trunk"

    # ------------------------------------------------------------------ build

    def __enter__(self) -> Lab:
        try:
            self.build()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.teardown()

    def _ns(self, name: str) -> str:
        netns.add(name)
        self.namespaces.append(name)
        # no duplicate-address wait on the interfaces to come: IPv6 neighbour discovery
        # runs on link-local addresses, unusable for a second or two while 'tentative'
        for scope in ("default", "all"):
            netns.sysctl(name, f"net.ipv6.conf.{scope}.accept_dad", "0", check=False)
            # the lab's addresses and routes are its own: a lab device's rogue router
            # advertisement is heard by the sensors, and re-routes nobody
            netns.sysctl(name, f"net.ipv6.conf.{scope}.accept_ra", "0", check=False)
        return name

    def build(self) -> None:
        if os.geteuid() != 0:
            raise LabError("the lab builds network namespaces and needs root (sudo)")
        switch = self._ns(self.switch)
        router = self._ns(self.router)
        netns.sysctl(router, "net.ipv4.ip_forward", "1")
        segments = [*self.spec.segments, SegmentSpec(name="core", cidr=CORE_NET,
                                                    router_mac="00:00:0c:99:00:01", sensor=False)]
        for index, seg in enumerate(segments):
            bridge = f"br{index}"
            # no IGMP snooping: with no querier in the lab, multicast (SSDP, mDNS) is flooded
            # and LLDP's group (01:80:c2:00:00:0e) is forwarded, as a dumb switch does
            netns.ip("link", "add", bridge, "type", "bridge", "mcast_snooping", "0",
                     "group_fwd_mask", "0x4000", ns=switch)
            netns.ip("link", "set", bridge, "up", ns=switch)
            if seg.site is None:  # a site's segments: its own router's (_site_router)
                self._router_leg(router, index, seg)
        core_index = len(segments) - 1
        self._host(self.core, f"br{core_index}", "c0", "02:00:00:99:00:0a",
                   f"{CORE_HOST}/24", str(IPNetwork(CORE_NET)[ROUTER_HOST]))
        sites = list(dict.fromkeys(seg.site for seg in self.spec.segments if seg.site))
        for number, site in enumerate(sites):
            self._site_router(site, number, f"br{core_index}")
        for index, seg in enumerate(self.spec.segments):
            if seg.sensor:
                cidr = IPNetwork(seg.cidr)
                self._host(self.sensor_ns(seg.name), f"br{index}", f"s{index}",
                           _mac_for_sensor(index), f"{cidr[SENSOR_HOST]}/{cidr.prefixlen}",
                           str(cidr[ROUTER_HOST]))
                self._six(self.sensor_ns(seg.name), seg, SENSOR_HOST)
        bridge_of = {seg.name: f"br{i}" for i, seg in enumerate(self.spec.segments)}
        for index, device in enumerate(self.spec.devices):
            cidr = IPNetwork(self.spec.segment(device.segment).cidr)
            self._host(self.device_ns(device.name), bridge_of[device.socket or device.segment],
                       f"d{index}",
                       device.mac, f"{cidr[device.host]}/{cidr.prefixlen}", str(cidr[ROUTER_HOST]))
            self._six(self.device_ns(device.name), self.spec.segment(device.segment), device.host)
            for number, (leg_segment, leg_host, leg_mac) in enumerate(device.also, start=1):
                other = IPNetwork(self.spec.segment(leg_segment).cidr)
                self._leg(self.device_ns(device.name), bridge_of[leg_segment], f"d{index}x{number}",
                          f"eth{number}", leg_mac, f"{other[leg_host]}/{other.prefixlen}")
        self._segments = segments
        self.set_flows(self.spec.allowed_flows)
        self._start_emulator()
        self._trunk(f"br{core_index}")

    def _router_leg(self, router: str, index: int, seg: SegmentSpec) -> str:
        """A router's leg ``r<index>`` in a segment: the segment's router MAC and first
        address (IPv6 too on a dual-stack segment), on the segment's bridge."""
        leg, peer = f"r{index}", f"r{index}p"
        netns.ip("link", "add", leg, "netns", router, "type", "veth", "peer", "name", peer,
                 "netns", self.switch)
        netns.ip("link", "set", leg, "address", seg.router_mac, ns=router)
        cidr = IPNetwork(seg.cidr)
        netns.ip("addr", "add", f"{cidr[ROUTER_HOST]}/{cidr.prefixlen}", "dev", leg, ns=router)
        if seg.cidr6:
            six = IPNetwork(seg.cidr6)
            netns.sysctl(router, "net.ipv6.conf.all.forwarding", "1")
            netns.ip("-6", "addr", "add", f"{six[ROUTER_HOST]}/{six.prefixlen}", "dev", leg,
                     "nodad", ns=router)
        netns.ip("link", "set", leg, "up", ns=router)
        self._attach(peer, f"br{index}")
        return leg

    def _site_router(self, site: str, number: int, core_bridge: str) -> None:
        """A site's own router: a leg in each of its segments, an uplink on the core segment
        whose address its segments' traffic leaves by (NAT, as a site's line to the town
        hall does), and a forward policy that lets out MQTT to the broker, and between its
        own segments the lab's allowed flows that are the site's, and nothing else."""
        router = self._ns(self.site_router(site))
        netns.sysctl(router, "net.ipv4.ip_forward", "1")
        legs = {seg.name: self._router_leg(router, index, seg)
                for index, seg in enumerate(self.spec.segments) if seg.site == site}
        core = IPNetwork(CORE_NET)
        self._leg(router, core_bridge, f"u{number}", "wan", f"02:00:00:99:01:{number:02x}",
                  f"{core[SITE_UPLINK_HOST + number]}/{core.prefixlen}")
        ruleset = (
            "table ip netvagt_lab_nat {\n  chain postrouting {\n"
            "    type nat hook postrouting priority 100; policy accept;\n"
            '    oifname "wan" masquerade\n  }\n}\n'
            "table inet netvagt_lab {\n  chain forward {\n"
            "    type filter hook forward priority 0; policy drop;\n"
            "    ct state established,related accept\n"
            f'    oifname "wan" ip daddr {CORE_HOST} tcp dport {{ 1883, 8883 }} accept\n'
            + "".join(f'    iifname "{legs[src]}" oifname "{legs[dst]}" {_flow_match(proto, port)}'
                      " accept\n"
                      for src, dst, proto, port in self.spec.allowed_flows
                      if src in legs and dst in legs)
            + "  }\n}\n")
        netns.run_in(router, ["nft", "-f", "-"], input=ruleset)

    def _trunk(self, core_bridge: str) -> None:
        """The VLAN segments' trunk: a relay namespace standing for the switch's trunk port
        (one access leg per VLAN into the segment's bridge), and the trunk sensor, whose
        eth0 is the trunk and eth1 its management interface on the core segment."""
        vlans = [(i, seg) for i, seg in enumerate(self.spec.segments) if seg.vlan is not None]
        if not vlans:
            return
        relay, sensor = self._ns(self.trunk_ns), self._ns(self.trunk_sensor_ns)
        netns.ip("link", "add", "eth0", "netns", sensor, "type", "veth", "peer", "name", "trunk",
                 "netns", relay)
        netns.ip("link", "set", "eth0", "address", TRUNK_MAC, ns=sensor)
        for ns, ifname in ((sensor, "eth0"), (relay, "trunk")):
            netns.ip("link", "set", ifname, "up", ns=ns)
        access = []
        for index, seg in vlans:
            leg = f"v{seg.vlan}"
            netns.ip("link", "add", leg, "netns", relay, "type", "veth", "peer", "name",
                     f"pv{seg.vlan}", "netns", self.switch)
            netns.ip("link", "set", leg, "up", ns=relay)
            self._attach(f"pv{seg.vlan}", f"br{index}")
            access.append(f"{seg.vlan}={leg}")
        self._leg(sensor, core_bridge, "mt", "eth1", "02:5e:00:00:00:7c", f"{TRUNK_MGMT}/24")
        proc = self.popen(relay, [sys.executable, "-m", "central.lab.trunk", "trunk", *access],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise LabError(f"the trunk relay did not start: {err[-2000:]}")

    def trunk_vlans(self) -> list[tuple[int, str, str]]:
        """(VLAN id, the trunk sensor's address/prefix in it, gateway) of each VLAN segment."""
        out = []
        for seg in self.spec.segments:
            if seg.vlan is not None:
                cidr = IPNetwork(seg.cidr)
                out.append((seg.vlan, f"{cidr[TRUNK_HOST]}/{cidr.prefixlen}",
                            str(cidr[ROUTER_HOST])))
        return out

    def _six(self, ns: str, seg: SegmentSpec, host: int) -> None:
        """On a dual-stack segment: the host's IPv6 address on eth0 and its IPv6 default
        route via the router (no duplicate-address wait: the lab knows its addresses)."""
        if not seg.cidr6:
            return
        six = IPNetwork(seg.cidr6)
        netns.ip("-6", "addr", "add", f"{six[host]}/{six.prefixlen}", "dev", "eth0", "nodad",
                 ns=ns)
        netns.ip("-6", "route", "add", "default", "via", str(six[ROUTER_HOST]), ns=ns)

    def _attach(self, ifname: str, bridge: str) -> None:
        netns.ip("link", "set", ifname, "master", bridge, ns=self.switch)
        netns.ip("link", "set", ifname, "up", ns=self.switch)

    def _host(self, ns: str, bridge: str, tag: str, mac: str, address: str, gateway: str) -> None:
        """A namespace with one interface ``eth0`` on ``bridge``."""
        self._ns(ns)
        self._leg(ns, bridge, tag, "eth0", mac, address)
        netns.ip("route", "add", "default", "via", gateway, ns=ns)

    def _leg(self, ns: str, bridge: str, tag: str, ifname: str, mac: str, address: str) -> None:
        peer = f"p{tag}"
        netns.ip("link", "add", ifname, "netns", ns, "type", "veth", "peer", "name", peer,
                 "netns", self.switch)
        netns.ip("link", "set", ifname, "address", mac, ns=ns)
        netns.ip("addr", "add", address, "dev", ifname, ns=ns)
        netns.ip("link", "set", ifname, "up", ns=ns)
        self._attach(peer, bridge)

    def add_sensor_leg(self, segment: str, other: str, *, mac: str = "02:5e:00:00:00:fe",
                       host: int = SENSOR_HOST) -> str:
        """Give the sensor of ``segment`` a second interface ``eth1`` in ``other``, as a
        field sensor's management interface (how it reaches the broker); returns its
        address. The default route stays on eth0."""
        bridge = f"br{[s.name for s in self.spec.segments].index(other)}"
        cidr = IPNetwork(self.spec.segment(other).cidr)
        self._leg(self.sensor_ns(segment), bridge, f"m{len(self.namespaces)}", "eth1", mac,
                  f"{cidr[host]}/{cidr.prefixlen}")
        return str(cidr[host])

    def add_leg(self, ns: str, segment: str, ifname: str, *, mac: str, host: int) -> str:
        """One more interface ``ifname`` in a lab namespace, on ``segment``'s bridge (a VLAN
        sub-interface looks like this to a program: an interface named ``eth0.120`` on the
        VLAN's segment); returns its address."""
        bridge = f"br{[s.name for s in self.spec.segments].index(segment)}"
        cidr = IPNetwork(self.spec.segment(segment).cidr)
        self._leg(ns, bridge, f"l{len(self.namespaces)}{host}", ifname, mac,
                  f"{cidr[host]}/{cidr.prefixlen}")
        return str(cidr[host])

    def add_host(self, name: str, segment: str, host: int, mac: str) -> str:
        """A device that arrives while the lab runs (it answers ARP and ping, nothing else);
        returns its address."""
        index = len(self.namespaces)
        bridge = f"br{[s.name for s in self.spec.segments].index(segment)}"
        cidr = IPNetwork(self.spec.segment(segment).cidr)
        self._host(self.device_ns(name), bridge, f"n{index}", mac,
                   f"{cidr[host]}/{cidr.prefixlen}", str(cidr[ROUTER_HOST]))
        return str(cidr[host])

    def set_flows(self, flows: Sequence[tuple[str, str, str, int]]) -> None:
        """Replace what the router forwards between segments (faults come and go)."""
        # the main router's segments (a site's are behind its own router, _site_router)
        segments = [seg for seg in self._segments if seg.site is None]
        legs = {seg.name: f"r{i}" for i, seg in enumerate(self._segments) if seg.site is None}
        # the router answers only on the leg facing the asker, as a firewall does
        own = [f'iifname "{legs[seg.name]}" ip daddr != {IPNetwork(seg.cidr)[ROUTER_HOST]} drop'
               for seg in segments]
        rules = ["ct state established,related accept", "ct state invalid drop"]
        rules += [f'iifname "{legs[seg.name]}" oifname "{legs["core"]}" '
                  f"ip daddr {CORE_HOST} tcp dport {{ 1883, 8883 }} accept"
                  for seg in segments if seg.name != "core"]
        for src, dst, proto, port in flows:
            if src not in legs or dst not in legs:
                continue  # a site's own flow: its router's (_site_router)
            rules.append(f'iifname "{legs[src]}" oifname "{legs[dst]}" '
                         f"{_flow_match(proto, port)} accept")
        ruleset = (
            "table inet netvagt_lab {\n  chain forward {\n"
            "    type filter hook forward priority 0; policy drop;\n"
            + "".join(f"    {r}\n" for r in rules)
            + "  }\n  chain input {\n    type filter hook input priority 0; policy accept;\n"
            + "".join(f"    {r}\n" for r in own)
            + "  }\n}\n"
        )
        if self._flows_set:
            netns.run_in(self.router, ["nft", "delete", "table", "inet", "netvagt_lab"])
        netns.run_in(self.router, ["nft", "-f", "-"], input=ruleset)
        self._flows_set = True

    def _start_emulator(self) -> None:
        plan = [
            {
                "ns": self.device_ns(d.name),
                "mac": d.mac,
                "address": self.spec.address(d.segment, d.host),
                "services": [
                    {"port": s.port, "proto": s.proto, "kind": s.kind, "params": s.params}
                    for s in d.services
                ],
            }
            for d in self.spec.devices
            if d.services
        ]
        plan_path = self.workdir / "devices.json"
        plan_path.write_text(json.dumps(plan))
        self.emulator = subprocess.Popen(
            [sys.executable, "-m", "central.lab.devices", str(plan_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.processes.append(self.emulator)
        assert self.emulator.stdout is not None
        line = self.emulator.stdout.readline()
        if line.strip() != b"ready":
            err = self.emulator.stderr.read().decode() if self.emulator.stderr else ""
            raise LabError(f"device emulator did not start: {line!r} {err[-2000:]}")

    # ------------------------------------------------------------------ use

    def popen(self, ns: str, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """Start a process inside a lab namespace; the lab ends it at teardown."""
        proc: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
            ["ip", "netns", "exec", ns, *argv], **kwargs
        )
        self.processes.append(proc)
        return proc

    def run(self, ns: str, argv: Sequence[str], *, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True,
                              text=True, timeout=timeout, env=env)

    # ------------------------------------------------------------------ teardown

    def teardown(self) -> None:
        for proc in reversed(self.processes):
            stop_process(proc)
        self.processes.clear()
        for ns in reversed(self.namespaces):
            netns.delete(ns)
        self.namespaces.clear()


def _flow_match(proto: str, port: int) -> str:
    """nftables' match for one allowed flow: ``tcp``/``udp`` and a port, ``icmp`` for echo
    requests; ``tcp6``/``udp6``/``icmp6``: over IPv6 only (the fault dual-stack hides)."""
    family = "meta nfproto ipv6 " if proto.endswith("6") else ""
    proto = proto.removesuffix("6")
    echo = "icmpv6 type echo-request" if family else "icmp type echo-request"
    return family + (echo if proto == "icmp" else f"{proto} dport {port}")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """End a process we started, by its PID: SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout)
    except ProcessLookupError:
        pass


def cleanup_stale(prefix: str = LAB_PREFIX, *, older_than_s: float = 0) -> list[str]:
    """Remove lab namespaces left behind by a run that was killed; returns their names."""
    removed = []
    now = time.time()
    for name in netns.existing(prefix):
        path = Path(netns.NETNS_DIR) / name
        try:
            age = now - path.stat().st_mtime
        except FileNotFoundError:
            continue
        if age >= older_than_s:
            netns.delete(name)
            removed.append(name)
    return removed

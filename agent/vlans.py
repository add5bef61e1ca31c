"""A sensor on a trunk port: every VLAN its own segment, scanned and probed from inside it.

Where the kernel has 802.1Q, each VLAN of ``[[scan.vlans]]`` is a sub-interface
(``eth0.110``, set up by the installer from :func:`network_config`) and is scanned like a
plain interface: discovery, ports, identification, nmap, and probe plans bound to it. Where
the kernel lacks it, the sweep engine speaks tagged frames on the trunk itself
(:mod:`scanners.trunk`): ARP discovery, the profile's TCP ports by SYN, and the probe plans'
TCP, UDP and ICMP reachability; services are then named by their port only.

Each VLAN is its own segment: its own scope (the configured scope, else its subnet), its
assets, its gateway and its probe plan (a plan names the zone it is for, and the VLAN
whose ``zone`` that is runs it). All VLANs of one scan travel in one signed scan.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from netaddr import IPAddress, IPNetwork, IPSet

from agent import wire
from agent.config import AgentConfig, VlanConfig
from scanners.netinfo import Interface, InterfaceError, interface
from scanners.observations import HostReply, PortResult
from scanners.ports import Profile
from scanners.rate import RateLimiter
from scanners.reach import Reach, Target, probe_reach
from scanners.scope import Scope, scope_and_targets
from scanners.sweep import SweepTiming
from scanners.trunk import Trunk, Vlan, arp_sweep, probe

if TYPE_CHECKING:
    from agent.scan import Progress, ScanResult

log = logging.getLogger("netvagt.agent.vlans")

STYLES = ("ifupdown", "networkd", "nmcli")
ROUTE_METRIC_BASE = 1000  # a VLAN's default route: only for probes bound to it


def scope_of(config: AgentConfig, vlan: VlanConfig) -> Scope:
    network = str(IPNetwork(vlan.address).cidr)
    found, _ = scope_and_targets(network, config.scope, config.exclude, config.exclude_macs, ())
    return found


def sub_interface(config: AgentConfig, vlan: VlanConfig) -> Interface | None:
    """The VLAN's sub-interface, when the kernel has one up with an address; else None
    (the trunk is then spoken to in tagged frames)."""
    assert config.interface is not None  # checked when the configuration was loaded
    try:
        return interface(vlan.sub_interface(config.interface))
    except InterfaceError:
        return None


def _vlan(vlan: VlanConfig) -> Vlan:
    return Vlan.parse(vlan.id, vlan.address, vlan.gateway)


async def scan_vlans(config: AgentConfig, profile: Profile, *,
                     progress: Progress | None = None) -> ScanResult:
    """One scan of every VLAN on the trunk, as one result."""
    from agent.scan import ScanResult, scan  # scapy and nmap: only when a scan runs

    parts = []
    for vlan in config.vlans:
        scope = scope_of(config, vlan)
        sub = sub_interface(config, vlan)
        if sub is not None:
            log.info("VLAN %d (%s): scanning sub-interface %s", vlan.id, vlan.zone or "-",
                     sub.name)
            parts.append(await scan(iface=sub, scope=scope, profile=profile, progress=progress,
                                    snmp_communities=config.snmp_communities))
        else:
            assert config.interface is not None
            log.info("VLAN %d (%s): tagged frames on %s (no sub-interface %s): discovery and "
                     "open ports; services are named by port only", vlan.id, vlan.zone or "-",
                     config.interface, vlan.sub_interface(config.interface))
            parts.append(await asyncio.to_thread(tagged_scan, config.interface, vlan, scope,
                                                 profile, progress))
    return ScanResult(
        started_at=parts[0].started_at, finished_at=parts[-1].finished_at,
        networks=tuple(n for p in parts for n in p.networks)[:64],
        assets=tuple(a for p in parts for a in p.assets),
        duration_s=sum(p.duration_s for p in parts),
        warnings=tuple(w for p in parts for w in p.warnings))


def tagged_scan(trunk_if: str, config: VlanConfig, scope: Scope, profile: Profile,
                progress: Progress | None = None) -> ScanResult:
    """One VLAN in tagged frames: ARP discovery (and ICMP echo to its routed ``targets``,
    through its gateway), then the profile's TCP ports by SYN."""
    from agent.scan import ScanResult, build_assets

    started, started_at = time.monotonic(), wire.utc_now()
    vlan = _vlan(config)
    targets = scope.resolve(IPSet(vlan.hosts()))
    limiter = RateLimiter(global_pps=profile.global_pps, host_pps=profile.host_pps)
    hosts: dict[str, HostReply] = {}
    ports: list[PortResult] = []
    states: dict[tuple[str, str, int], tuple[str, float | None]] = {}
    if profile.active:
        with Trunk(trunk_if, [vlan]) as trunk:
            found = arp_sweep(trunk, vlan, targets, scope=scope, limiter=limiter,
                              progress=_phase(progress, f"ARP sweep VLAN {vlan.id}"))
            hosts = {h.ip: h for h in found if scope.allows_mac(h.mac)}
            macs = {ip: bytes.fromhex((h.mac or "").replace(":", "")) for ip, h in hosts.items()}
            if config.targets and profile.icmp:
                hosts |= _routed_sweep(trunk, vlan, config, scope, limiter, macs, progress)
            # port-major: consecutive probes go to different hosts
            keys = [("tcp", ip, port) for port in profile.tcp_ports for ip in hosts]
            states = probe(trunk, vlan, keys, next_hops=macs, scope=scope, limiter=limiter,
                           progress=_phase(progress, f"SYN probe VLAN {vlan.id}")) if keys else {}
    for (proto, ip, port), (state, rtt) in states.items():
        ports.append(PortResult(ip=ip, port=port, proto=proto, rtt_s=rtt,
                                state={"reachable": "open", "refused": "closed"}.get(
                                    state, "filtered")))
    observed = {}
    if vlan.gateway in hosts:  # the VLAN's router, as configured
        observed[vlan.gateway] = [wire.Observation(wire.ROLE_KEY, wire.DEFAULT_GATEWAY, "config")]
    return ScanResult(started_at=started_at, finished_at=wire.utc_now(),
                      networks=(str(vlan.network),),
                      assets=tuple(build_assets(hosts, ports, [], observed)),
                      duration_s=time.monotonic() - started)


def _routed_sweep(trunk: Trunk, vlan: Vlan, config: VlanConfig, scope: Scope,
                  limiter: RateLimiter, macs: dict[str, bytes],
                  progress: Progress | None) -> dict[str, HostReply]:
    """ICMP echo to the VLAN's routed target ranges, through its gateway; who answered (no
    MAC: a router stands between). ``macs`` learns their next hop, for the port probe."""
    from scanners.scope import parse_targets

    if vlan.gateway is None or vlan.gateway not in macs:
        log.warning("VLAN %d: routed targets not swept: %s", vlan.id,
                    "no gateway is configured" if vlan.gateway is None
                    else f"its gateway {vlan.gateway} did not answer ARP")
        return {}
    routed = [a for a in scope.resolve(parse_targets(config.targets))
              if IPAddress(a) not in vlan.network]
    hops = dict.fromkeys(routed, macs[vlan.gateway])
    states = probe(trunk, vlan, [("icmp", ip, 0) for ip in routed], next_hops=hops,
                   scope=scope, limiter=limiter,
                   progress=_phase(progress, f"ICMP sweep VLAN {vlan.id}"))
    found = {ip: HostReply(ip=ip, rtt_s=rtt or 0.0, source="icmp")
             for (_, ip, _), (state, rtt) in states.items() if state == "reachable"}
    macs.update({ip: hops[ip] for ip in found})
    return found


def _phase(progress: Progress | None, name: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(name, done, total)


async def reach(config: AgentConfig, vlan: VlanConfig, targets: Sequence[Target], *,
                scope: Scope, global_pps: float, host_pps: float, timeout_s: float,
                progress: Callable[[int, int], None] | None = None) -> list[Reach]:
    """A probe plan's targets, probed from inside ``vlan``: bound to its sub-interface,
    else in tagged frames on the trunk."""
    from scanners.bind import scanning_on

    sub = sub_interface(config, vlan)
    if sub is not None:
        with scanning_on(sub.name):
            return await probe_reach(targets, scope=scope, global_pps=global_pps,
                                     host_pps=host_pps, timeout_s=timeout_s, progress=progress)
    assert config.interface is not None
    return await asyncio.to_thread(tagged_reach, config.interface, vlan, targets, scope=scope,
                                   global_pps=global_pps, host_pps=host_pps,
                                   timeout_s=timeout_s, progress=progress)


def tagged_reach(trunk_if: str, config: VlanConfig, targets: Sequence[Target], *, scope: Scope,
                 global_pps: float, host_pps: float, timeout_s: float,
                 progress: Callable[[int, int], None] | None = None) -> list[Reach]:
    vlan = _vlan(config)
    six = [t for t in targets if ":" in t.ip]
    if six:
        log.warning("VLAN %d: %d IPv6 targets not probed (tagged frames speak IPv4; a "
                    "sub-interface %s would probe them)", vlan.id, len(six),
                    config.sub_interface(trunk_if))
    four = [t for t in targets if ":" not in t.ip]
    on_link = sorted({t.ip for t in four if IPAddress(t.ip) in vlan.network})
    beyond = [t.ip for t in four if IPAddress(t.ip) not in vlan.network]
    wanted = on_link + ([vlan.gateway] if beyond and vlan.gateway else [])
    limiter = RateLimiter(global_pps=global_pps, host_pps=host_pps)
    timing = SweepTiming(retries=1, max_wait_s=timeout_s)
    with Trunk(trunk_if, [vlan]) as trunk:
        hops = {h.ip: bytes.fromhex((h.mac or "").replace(":", ""))
                for h in arp_sweep(trunk, vlan, wanted, scope=scope, limiter=limiter,
                                   timing=timing)}
        if beyond:
            if vlan.gateway is None or vlan.gateway not in hops:
                log.warning("VLAN %d: %d targets in other subnets not probed: %s", vlan.id,
                            len(beyond), "no gateway is configured for it" if vlan.gateway
                            is None else f"its gateway {vlan.gateway} did not answer ARP")
            else:
                hops.update(dict.fromkeys(beyond, hops[vlan.gateway]))
        keys = []
        width = max((len(t.tcp) + len(t.udp) for t in four), default=0)
        for index in range(width):  # port-major, as the stateless prober does
            for target in four:
                ports = [("tcp", p) for p in target.tcp] + [("udp", p) for p in target.udp]
                if index < len(ports):
                    keys.append((ports[index][0], target.ip, ports[index][1]))
        keys += [("icmp", t.ip, 0) for t in four if t.icmp]
        ttls: dict[tuple[str, str, int], int] = {}
        states = probe(trunk, vlan, keys, next_hops=hops, scope=scope, limiter=limiter,
                       timing=timing, progress=progress, ttls=ttls)
    return [Reach(ip=ip, proto=proto, port=port, state=state,
                  rtt_ms=round(rtt * 1000, 3) if rtt is not None else None,
                  ttl=ttls.get((proto, ip, port)))
            for (proto, ip, port), (state, rtt) in states.items()]


def network_config(config: AgentConfig, style: str) -> dict[str, str]:
    """The sub-interfaces for ``[[scan.vlans]]``, as files (path: content) for ifupdown or
    systemd-networkd, or as the NetworkManager commands (key ``nmcli``). Each VLAN gets
    the sensor's address and a default route via its gateway with a high metric: the host's
    own traffic keeps its default route, and a probe bound to the VLAN leaves by the VLAN."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r} (one of {', '.join(STYLES)})")
    parent = config.interface
    if not config.vlans or parent is None:
        raise ValueError("the configuration has no [[scan.vlans]] (and a trunk [scan] "
                         "interface) to set up")
    header = "# written by netvagt from the sensor's [[scan.vlans]]; edit those, not this\n"
    if style == "ifupdown":
        stanzas = []
        for v in config.vlans:
            name = v.sub_interface(parent)
            lines = [f"auto {name}", f"iface {name} inet static",
                     f"    address {v.address}", f"    vlan-raw-device {parent}"]
            if v.gateway:
                lines.append(f"    up ip route replace default via {v.gateway} dev {name} "
                             f"metric {ROUTE_METRIC_BASE + v.id}")
            stanzas.append("\n".join(lines) + "\n")
        return {"/etc/network/interfaces.d/netvagt-vlans": header + "\n".join(stanzas)}
    if style == "networkd":
        # the trunk itself: it carries the VLANs and no address of the sensor's own (its
        # management is another interface); sorted first, this file is the one for it
        files = {f"/etc/systemd/network/10-netvagt-{parent}.network":
                 f"{header}[Match]\nName={parent}\n\n[Network]\nLinkLocalAddressing=no\n"
                 + "".join(f"VLAN={v.sub_interface(parent)}\n" for v in config.vlans)}
        for v in config.vlans:
            name = v.sub_interface(parent)
            files[f"/etc/systemd/network/60-netvagt-{name}.netdev"] = (
                f"{header}[NetDev]\nName={name}\nKind=vlan\n\n[VLAN]\nId={v.id}\n")
            route = (f"\n[Route]\nGateway={v.gateway}\nMetric={ROUTE_METRIC_BASE + v.id}\n"
                     if v.gateway else "")
            files[f"/etc/systemd/network/60-netvagt-{name}.network"] = (
                f"{header}[Match]\nName={name}\n\n[Network]\nAddress={v.address}\n"
                "LinkLocalAddressing=no\n" + route)
        return files
    commands = []
    for v in config.vlans:
        name = v.sub_interface(parent)
        command = (f"nmcli connection add type vlan con-name netvagt-{name} ifname {name} "
                   f"vlan.parent {parent} vlan.id {v.id} ipv4.method manual "
                   f"ipv4.addresses {v.address} ipv6.method disabled")
        if v.gateway:
            command += f" ipv4.gateway {v.gateway} ipv4.route-metric {ROUTE_METRIC_BASE + v.id}"
        commands.append(command)
    return {"nmcli": header + "\n".join(commands) + "\n"}


def kernel_has_8021q() -> bool:
    """Can this kernel make VLAN sub-interfaces (loading the 8021q module if need be)?"""
    if Path("/proc/net/vlan/config").exists():
        return True
    modprobe = shutil.which("modprobe") or "/sbin/modprobe"
    try:
        subprocess.run([modprobe, "-q", "8021q"], capture_output=True, timeout=30, check=False)
    except OSError:
        return False
    return Path("/proc/net/vlan/config").exists()


def detect_style() -> str:
    """Which of NetworkManager, systemd-networkd and ifupdown runs this machine's network."""
    def active(unit: str) -> bool:
        try:
            return subprocess.run(["systemctl", "is-active", "--quiet", unit], timeout=10,
                                  check=False).returncode == 0
        except OSError:
            return False

    if shutil.which("nmcli") and active("NetworkManager"):
        return "nmcli"
    if active("systemd-networkd"):
        return "networkd"
    return "ifupdown"


def apply(config: AgentConfig, style: str, *, root: Path = Path("/")) -> list[str]:
    """Set the sub-interfaces up in ``style`` (files under ``root``, or nmcli); returns what
    was done, one line each. Running it again replaces what it did before."""
    done = []
    for path, content in network_config(config, style).items():
        if path == "nmcli":
            for line in content.splitlines():
                if not line.startswith("nmcli"):
                    continue
                argv = shlex.split(line)
                name = argv[argv.index("con-name") + 1]
                subprocess.run(["nmcli", "connection", "delete", name], capture_output=True,
                               timeout=30, check=False)  # a previous run's, if any
                subprocess.run(argv, capture_output=True, timeout=30, check=True)
                subprocess.run(["nmcli", "connection", "up", name], capture_output=True,
                               timeout=60, check=True)
                done.append(f"NetworkManager connection {name}")
            continue
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        done.append(f"wrote {target}")
    if root == Path("/") and style == "networkd":
        subprocess.run(["networkctl", "reload"], capture_output=True, timeout=60, check=True)
        done.append("networkctl reload")
    elif root == Path("/") and style == "ifupdown":
        assert config.interface is not None
        for vlan in config.vlans:
            name = vlan.sub_interface(config.interface)
            subprocess.run(["ifup", name], capture_output=True, timeout=60, check=True)
            done.append(f"ifup {name}")
    return done

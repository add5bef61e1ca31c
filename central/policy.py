"""The zone policy: what each network segment is for, and what may talk to what.

One TOML file per organisation (an example for a municipality ships in
``packaging/policy.example.toml``): sites; zones with their CIDRs, purpose, criticality,
the device types allowed in them, reference targets (addresses sensors probe even before
any asset there is known) and the sensors standing in them; flows between zones (from, to,
protocol, ports, allow or deny). Anything not allowed is denied.

:func:`load` validates everything before anything is used, and each problem names the
file, the line and what is wrong: a CIDR that does not parse, two zones that overlap, a
flow to an unknown zone, a device type outside the vocabulary, a port both allowed and
denied, a reference target outside its zone.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from netaddr import AddrFormatError, IPAddress, IPNetwork, IPSet

CRITICALITIES = ("low", "medium", "high", "critical")
PROTOS = ("tcp", "udp", "icmp")
# what a sensor probes in every other zone unless the policy says otherwise: management,
# file sharing, remote desktop, industrial and building protocols (BACnet, KNXnet/IP: a KNX
# interface reachable from an office switches the building's lights and heating for anyone
# there), cameras, printers
DEFAULT_TCP = (21, 22, 23, 80, 102, 135, 139, 443, 445, 502, 554, 1883, 3389, 5900, 8080, 8443,
               9100, 20000, 37777, 44818)
DEFAULT_UDP = (53, 123, 161, 3671, 47808)
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.+-]{0,31}$")


class PolicyError(ValueError):
    """Everything wrong with a policy file, one problem per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, kw_only=True)  # no slots: 'addresses' is cached on the instance
class Zone:
    name: str
    site: str
    cidrs: tuple[str, ...]
    purpose: str = ""
    criticality: str = "medium"
    allowed_types: tuple[str, ...] | None = None  # None: any device type
    reference_targets: tuple[str, ...] = ()
    sensors: tuple[str, ...] = ()
    # the zone's routers' own addresses: ICMP to one is routing, not a flow into the zone;
    # a management service on one, reachable from a zone not allowed it, is an exposure
    gateways: tuple[str, ...] = ()
    allow_unidentified: bool = True  # False: a device no rule names is a violation here
    baseline: str = "first-scan"  # "empty": nothing is known until approved or reviewed
    # ("visitors": see BASELINES)
    # VLANs the zone's ports carry tagged by design (the phones' voice VLAN): their frames
    # reaching a sensor here are no finding
    tagged_vlans: tuple[int, ...] = ()

    @property
    def visitors(self) -> bool:
        """A zone of visitors' devices (guest Wi-Fi): a device new there is no news."""
        return self.baseline == "visitors"

    @cached_property
    def addresses(self) -> IPSet:
        return IPSet(self.cidrs)

    def allows_type(self, device_type: str | None) -> bool:
        return self.allowed_types is None or device_type is None or (
            device_type in self.allowed_types)


@dataclass(frozen=True, slots=True, kw_only=True)
class Flow:
    source: str
    target: str
    proto: str
    ports: tuple[int, ...]  # () for ICMP, or for "every port"
    action: str  # allow | deny
    reason: str = ""

    def covers(self, proto: str, port: int) -> bool:
        return self.proto == proto and (not self.ports or proto == "icmp" or port in self.ports)

    def describe(self) -> str:
        if self.proto == "icmp":
            return "icmp"
        return f"{self.proto}/" + (",".join(str(p) for p in self.ports) if self.ports else "any")


@dataclass(frozen=True, kw_only=True)  # no slots: the zone index is cached on the instance
class Policy:
    path: str
    org: str
    sites: tuple[str, ...]
    zones: tuple[Zone, ...]
    flows: tuple[Flow, ...]
    tcp_ports: tuple[int, ...] = DEFAULT_TCP
    udp_ports: tuple[int, ...] = DEFAULT_UDP
    probe_pps: float = 5000.0  # a plan's packets per second, all targets together
    probe_host_pps: float = 100.0  # and to any one address
    probe_timeout_s: float = 2.0  # silence for this long after the last probe: filtered

    def zone(self, name: str) -> Zone:
        return self._by_name[name]

    @cached_property
    def _by_name(self) -> dict[str, Zone]:
        return {z.name: z for z in self.zones}

    def zone_of(self, ip: str, site: str | None = None) -> Zone | None:
        """The zone holding ``ip``: ``site``'s, where given. Sites are separate address
        spaces (two schools may both use 192.168.1.0/24, one for pupils, the other for its
        heating), so an address is of its site's zone first; else of the one site's zone
        elsewhere that holds it, and of none where several sites' do (which one is meant
        is not known)."""
        address = IPAddress(ip)
        holding = [z for z in self.zones if address in z.addresses]
        if site is not None:
            own = next((z for z in holding if z.site == site), None)
            if own is not None:
                return own
        return holding[0] if len({z.site for z in holding}) == 1 else None

    def site_of(self, zone: str | None) -> str | None:
        """The site of the zone named ``zone`` (None for a zone the policy lacks)."""
        return found.site if zone and (found := self._by_name.get(zone)) else None

    def decision(self, source: str, target: str, proto: str, port: int) -> Flow | None:
        """The flow rule that decides this traffic (deny first), or None: default deny."""
        matching = [f for f in self.flows if f.source == source and f.target == target
                    and f.covers(proto, port)]
        denied = [f for f in matching if f.action == "deny"]
        chosen = denied or matching
        return chosen[0] if chosen else None

    def allows(self, source: str, target: str, proto: str, port: int) -> bool:
        if source == target:
            return True  # within a zone is not segmentation's business
        rule = self.decision(source, target, proto, port)
        return rule is not None and rule.action == "allow"

    def allowed_between(self, source: str, target: str) -> list[Flow]:
        return [f for f in self.flows if f.source == source and f.target == target
                and f.action == "allow"]


# --------------------------------------------------------------------------- loading

def _lines(text: str) -> dict[tuple[str, int], dict[str, int]]:
    """Where each [[table]] entry and its keys start: {(table, index): {key: line}}."""
    where: dict[tuple[str, int], dict[str, int]] = {}
    counts: dict[str, int] = {}
    current: tuple[str, int] = ("", 0)
    where[current] = {"": 1}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.match(r"^\[\[\s*([\w.-]+)\s*\]\]", stripped) or re.match(
            r"^\[\s*([\w.-]+)\s*\]", stripped)
        if header:
            name = header.group(1)
            index = counts.get(name, 0)
            counts[name] = index + 1
            current = (name, index)
            where[current] = {"": number}
            continue
        key = re.match(r"^([A-Za-z0-9_-]+)\s*=", stripped)
        if key:
            where[current].setdefault(key.group(1), number)
    return where


class _Problems:
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.where = _lines(text)
        self.items: list[str] = []

    def add(self, table: str, index: int, key: str, problem: str) -> None:
        spot = self.where.get((table, index), {})
        line = spot.get(key, spot.get("", 0))
        label = f"[[{table}]] #{index + 1}" if table else "top level"
        self.items.append(f"{self.path}:{line}: {label}{' ' + key if key else ''}: {problem}")


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _ports(value: Any) -> list[int] | None:
    if isinstance(value, list) and all(isinstance(v, int) and 1 <= v <= 65535 for v in value):
        return value
    return None


# Bounds on what a policy may hold, so checking one is quick whatever it holds (the overlap
# check compares zones pairwise; a million zones once ran past 300 s and 1.5 GB).
# "visitors": devices come and go (guest Wi-Fi, staff's own phones): none is news, and none
# is on an approved list; everything else about the zone is judged as in any zone
BASELINES = ("first-scan", "empty", "visitors")
MAX_POLICY_CHARS = 4 * 1024 * 1024
MAX_SITES = 256
MAX_ZONES = 2000
MAX_FLOWS = 10_000


def load(path: str | Path) -> Policy:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError([f"{path}: cannot read: {exc.strerror}"]) from None
    return parse(text, str(path))


def parse(text: str, path: str = "<policy>") -> Policy:
    data = _toml(text, path)
    problems = _Problems(path, text)
    known_top = {"org", "defaults", "site", "zone", "flow"}
    for key in sorted(set(data) - known_top):
        problems.add("", 0, key, f"unknown setting (expected one of {sorted(known_top)})")
    org = data.get("org")
    if not isinstance(org, str) or not _NAME_RE.match(org):
        problems.add("", 0, "org", "expected the organisation id, e.g. org = \"kommune\"")
        org = ""
    tcp_ports, udp_ports, rates = _defaults(data.get("defaults", {}), problems)
    sites = _sites(data.get("site", []), problems)
    zones = _zones(data.get("zone", []), sites, problems)
    flows = _flows(data.get("flow", []), {z.name for z in zones}, problems)
    if problems.items:
        raise PolicyError(problems.items)
    return Policy(path=path, org=org, sites=tuple(sites), zones=tuple(zones), flows=tuple(flows),
                  tcp_ports=tuple(tcp_ports), udp_ports=tuple(udp_ports),
                  probe_pps=rates["probe_pps"], probe_host_pps=rates["probe_host_pps"],
                  probe_timeout_s=rates["probe_timeout_s"])


def _toml(text: str, path: str) -> dict[str, Any]:
    """The file as TOML, within the bounds of a policy; a PolicyError otherwise."""
    if len(text) > MAX_POLICY_CHARS:
        raise PolicyError([f"{path}:0: {len(text)} characters; a policy holds at most "
                           f"{MAX_POLICY_CHARS}"])
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise PolicyError([f"{path}:{line.group(1) if line else 0}: not valid TOML: {exc}"]) from None
    except RecursionError:
        raise PolicyError([f"{path}:0: not valid TOML: nested too deeply"]) from None
    for table, most in (("site", MAX_SITES), ("zone", MAX_ZONES), ("flow", MAX_FLOWS)):
        count = len(data.get(table, [])) if isinstance(data.get(table), list) else 0
        if count > most:
            raise PolicyError([f"{path}:0: {count} [[{table}]] entries; at most {most} "
                               "(split the municipality into several policies)"])
    return data


def _defaults(defaults: Any, problems: _Problems
              ) -> tuple[list[int], list[int], dict[str, float]]:
    """The probe ports and rates of [defaults]."""
    if not isinstance(defaults, dict):
        problems.add("defaults", 0, "", "expected a table")
        defaults = {}
    tcp_ports = _ports(defaults.get("tcp_ports", list(DEFAULT_TCP)))
    udp_ports = _ports(defaults.get("udp_ports", list(DEFAULT_UDP)))
    if tcp_ports is None or (tcp_ports and len(tcp_ports) > 48):
        problems.add("defaults", 0, "tcp_ports", "expected up to 48 port numbers 1-65535")
        tcp_ports = list(DEFAULT_TCP)
    if udp_ports is None or len(udp_ports) > 16:
        problems.add("defaults", 0, "udp_ports", "expected up to 16 port numbers 1-65535")
        udp_ports = list(DEFAULT_UDP)
    rates: dict[str, float] = {}
    for setting, low, high, default in (("probe_pps", 1, 10_000, 5000.0),
                                        ("probe_host_pps", 1, 1000, 100.0),
                                        ("probe_timeout_s", 0.1, 30, 2.0)):
        value = defaults.get(setting, default)
        if not isinstance(value, (int, float)) or not low <= value <= high:
            problems.add("defaults", 0, setting, f"expected a number from {low} to {high}")
            value = default
        rates[setting] = float(value)
    for extra in sorted(set(defaults) - {"tcp_ports", "udp_ports", *rates}):
        problems.add("defaults", 0, extra, "unknown setting")
    return tcp_ports, udp_ports, rates


def _sites(raws: Any, problems: _Problems) -> list[str]:
    sites: list[str] = []
    for index, raw in enumerate(raws if isinstance(raws, list) else []):
        name = raw.get("name") if isinstance(raw, dict) else None
        if not isinstance(name, str) or not _NAME_RE.match(name):
            problems.add("site", index, "name", "expected a site name like \"raadhuset\"")
        elif name in sites:
            problems.add("site", index, "name", f"site {name!r} is declared twice")
        else:
            sites.append(name)
    if not sites:
        problems.add("", 0, "", "no [[site]] declared")
    return sites


def _zones(raws: Any, sites: list[str], problems: _Problems) -> list[Zone]:
    from fingerprints.rules import vocabulary

    types = vocabulary().device_types
    zones: list[Zone] = []
    for index, raw in enumerate(raws if isinstance(raws, list) else []):
        zone = _zone(raw, index, sites, types, problems)
        if zone is None:
            continue
        if any(z.name == zone.name for z in zones):
            problems.add("zone", index, "name", f"zone {zone.name!r} is declared twice")
            continue
        for other in zones:
            if other.site == zone.site and other.addresses & zone.addresses:
                overlap = (other.addresses & zone.addresses).iter_cidrs()[0]
                problems.add("zone", index, "cidrs", f"overlaps zone {other.name!r} "
                             f"(both hold {overlap})")
        zones.append(zone)
    if not zones:
        problems.add("", 0, "", "no [[zone]] declared")
    return zones


def _flows(raws: Any, names: set[str], problems: _Problems) -> list[Flow]:
    flows: list[Flow] = []
    for index, raw in enumerate(raws if isinstance(raws, list) else []):
        flow = _flow(raw, index, names, problems)
        if flow is None:
            continue
        for earlier in flows:
            shared = _contradiction(earlier, flow)
            if shared is not None:
                problems.add("flow", index, "action", f"contradicts an earlier flow: "
                             f"{flow.source} -> {flow.target} {flow.proto} "
                             f"{shared or 'every port'} is both allowed and denied")
        flows.append(flow)
    return flows


def _contradiction(earlier: Flow, flow: Flow) -> list[int] | None:
    """The ports one flow allows and the other denies between the same zones (empty: every
    port), or None when they do not contradict."""
    opposite = "deny" if flow.action == "allow" else "allow"
    if (earlier.source, earlier.target, earlier.proto, earlier.action) != (
            flow.source, flow.target, flow.proto, opposite):
        return None
    if earlier.ports and flow.ports:
        shared = sorted(set(earlier.ports) & set(flow.ports))
        return shared or None
    return sorted({*earlier.ports, *flow.ports})


_ZONE_KEYS = frozenset({"name", "site", "cidrs", "purpose", "criticality", "allowed_types",
                        "reference_targets", "sensors", "gateways", "allow_unidentified",
                        "baseline", "tagged_vlans"})


def _zone(raw: Any, index: int, sites: list[str], types: frozenset[str],
          problems: _Problems) -> Zone | None:
    if not isinstance(raw, dict):
        problems.add("zone", index, "", "expected a table")
        return None
    for key in sorted(set(raw) - _ZONE_KEYS):
        problems.add("zone", index, key, f"unknown setting (expected one of {sorted(_ZONE_KEYS)})")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        problems.add("zone", index, "name", "expected a zone name like \"cameras\"")
        return None
    site = raw.get("site", sites[0] if len(sites) == 1 else None)
    if site not in sites:
        problems.add("zone", index, "site", f"unknown site {site!r} (declared: {sites})")
    cidrs = _cidrs(raw.get("cidrs"), index, problems)
    criticality = _choice(raw, "criticality", CRITICALITIES, "medium", index, problems)
    allowed = _allowed_types(raw.get("allowed_types"), types, index, problems)
    unidentified = raw.get("allow_unidentified", True)
    if not isinstance(unidentified, bool):
        problems.add("zone", index, "allow_unidentified", "expected true or false")
        unidentified = True
    baseline = _choice(raw, "baseline", BASELINES, "first-scan", index, problems)
    tagged = raw.get("tagged_vlans", [])
    if not (isinstance(tagged, list) and all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4094 for v in tagged)):
        problems.add("zone", index, "tagged_vlans", "expected a list of VLAN ids (1 to 4094)")
        tagged = []
    if cidrs is None:
        return None
    zone = Zone(name=name, site=str(site), cidrs=tuple(cidrs), purpose=str(raw.get("purpose", "")),
                criticality=criticality, allowed_types=allowed,
                reference_targets=tuple(_strings(raw.get("reference_targets", [])) or []),
                sensors=tuple(_strings(raw.get("sensors", [])) or []),
                gateways=tuple(_strings(raw.get("gateways", [])) or []),
                allow_unidentified=unidentified, baseline=baseline,
                tagged_vlans=tuple(tagged))
    for setting, addresses in (("reference_targets", zone.reference_targets),
                               ("gateways", zone.gateways)):
        for ref in addresses:
            try:
                inside = IPAddress(ref) in zone.addresses
            except (AddrFormatError, ValueError):
                inside = False
            if not inside:
                problems.add("zone", index, setting,
                             f"{ref!r} is not an address inside the zone's CIDRs")
    return zone


def _cidrs(raw: Any, index: int, problems: _Problems) -> list[str] | None:
    """A zone's CIDRs, or None (with the problem said) when any is missing or wrong."""
    cidrs = _strings(raw)
    if not cidrs:
        problems.add("zone", index, "cidrs", "expected a list of CIDRs, e.g. [\"10.20.30.0/24\"]")
        return None
    ok = True
    for cidr in cidrs:
        try:
            IPNetwork(cidr)
        except (AddrFormatError, ValueError):
            problems.add("zone", index, "cidrs", f"{cidr!r} is not a CIDR")
            ok = False
    return cidrs if ok else None


def _choice(raw: dict[str, Any], setting: str, choices: Iterable[str], default: str, index: int,
            problems: _Problems) -> str:
    value = raw.get(setting, default)
    if value not in choices:
        problems.add("zone", index, setting, f"expected one of {list(choices)}")
        return default
    return str(value)


def _allowed_types(raw: Any, types: frozenset[str], index: int, problems: _Problems
                   ) -> tuple[str, ...] | None:
    if raw is None:
        return None
    allowed = _strings(raw)
    if allowed is None:
        problems.add("zone", index, "allowed_types", "expected a list of device types")
        return None
    for device_type in allowed:
        if device_type not in types:
            problems.add("zone", index, "allowed_types", f"{device_type!r} is not a device type "
                         "(see fingerprints/vocabulary.toml)")
    return tuple(allowed)


def _flow(raw: Any, index: int, zones: set[str], problems: _Problems) -> Flow | None:
    if not isinstance(raw, dict):
        problems.add("flow", index, "", "expected a table")
        return None
    known = {"from", "to", "proto", "ports", "action", "reason"}
    for key in sorted(set(raw) - known):
        problems.add("flow", index, key, f"unknown setting (expected one of {sorted(known)})")
    ok = True
    for key in ("from", "to"):
        if raw.get(key) not in zones:
            problems.add("flow", index, key, f"unknown zone {raw.get(key)!r} "
                         f"(declared: {sorted(zones)})")
            ok = False
    if ok and raw["from"] == raw["to"]:
        problems.add("flow", index, "to", "a flow within one zone says nothing; remove it")
        ok = False
    proto = raw.get("proto")
    if proto not in PROTOS:
        problems.add("flow", index, "proto", f"expected one of {list(PROTOS)}")
        ok = False
    ports = _ports(raw.get("ports", []))
    if ports is None:
        problems.add("flow", index, "ports", "expected a list of port numbers 1-65535")
        ok = False
    elif proto == "icmp" and ports:
        problems.add("flow", index, "ports", "ICMP has no ports")
        ok = False
    action = raw.get("action", "allow")
    if action not in ("allow", "deny"):
        problems.add("flow", index, "action", "expected \"allow\" or \"deny\"")
        ok = False
    if not ok:
        return None
    return Flow(source=raw["from"], target=raw["to"], proto=str(proto), ports=tuple(ports or ()),
                action=action, reason=str(raw.get("reason", "")))

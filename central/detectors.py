"""The detectors: what the latest scans and probes say against the zone policy, as findings
with evidence (their lifecycle is :mod:`central.violations`).

- ``unexpected_flow``: a sensor reached an address in another zone the policy denies;
- ``management_exposure``: a router's or firewall's management reached from another zone;
- ``misplaced_device``: a device type the zone does not allow, or a device on one zone's
  segment with an address of another (heard there at layer 2: the wrong socket, or two
  zones' subnets on one VLAN);
- ``bridging_device``: one device present in two zones (the same MAC, NetBIOS name, SNMP
  engine id or system name, SSH host key or TLS certificate on addresses in different
  zones, neighbouring MACs with the same pages, or an address it claims in another zone's
  range);
- ``insecure_service``: clear-text management on a device (Telnet, FTP, HTTP login,
  SNMP answering a community from the sensor's list);
- ``unknown_device``: a device first seen in a zone since the zone's baseline;
- ``unapproved_device``: a device on no line of the site's approved list (neither of these
  in a zone of visitors' devices, ``baseline = "visitors"``);
- ``rogue_router``: a device advertising itself as a segment's IPv6 router that is not the
  zone's router (a travel router, a PC sharing its connection, an attacker);
- ``vlan_leak``: frames tagged for another VLAN reach a sensor's access port (a trunk or a
  voice VLAN where the zone's policy names none), or the port offers to become a trunk
  (DTP): a device in that socket can tag its way into that VLAN, or every VLAN.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlite_utils import Database

from agent import wire
from central.plans import sensor_zones
from central.policy import Policy, Zone
from central.store import REPEATED_NAMES, TRUSTED_SOURCES

KINDS = ("unexpected_flow", "misplaced_device", "bridging_device", "insecure_service",
         "unknown_device", "management_exposure", "unapproved_device", "vulnerable_device",
         "rogue_router", "vlan_leak")
NIS2 = {
    "unexpected_flow": "network segmentation",
    "misplaced_device": "network segmentation",
    "bridging_device": "network segmentation",
    "insecure_service": "secure configuration",
    "unknown_device": "asset management",
    "management_exposure": "network segmentation",
    "unapproved_device": "asset management",
    "vulnerable_device": "vulnerability handling",
    "rogue_router": "network segmentation",
    "vlan_leak": "network segmentation",
}
# A router's or firewall's management, reached on its own address in a zone
MANAGEMENT = {("tcp", 22): "SSH", ("tcp", 23): "Telnet", ("tcp", 80): "HTTP",
              ("tcp", 443): "HTTPS", ("tcp", 8080): "HTTP", ("tcp", 8443): "HTTPS",
              ("tcp", 8291): "Winbox", ("tcp", 830): "NETCONF", ("udp", 161): "SNMP"}
GATEWAY_TYPES = frozenset({"router", "firewall"})
EMPTY_BASELINE = "1970-01-01T00:00:00.000000Z"  # a zone whose baseline is 'empty'

NOT_IOT = frozenset({"workstation", "server", "mobile", "hypervisor"})
# What names one device, and how surely: an SNMP engine id or a UPnP UDN is made unique on
# purpose; a host key or certificate nearly so (units of one model can share a default);
# a serial number less (some vendors print the model there); a name the least (two sites'
# printers may both be "printer-2")
BRIDGE_CONFIDENCE = {"snmp.engine_id": 0.95, "upnp.udn": 0.95, "ssh.hostkey": 0.9,
                     "tls.cert_sha256": 0.85, "upnp.serial": 0.8, "netbios.name": 0.7,
                     "mdns.hostname": 0.6, "snmp.sysname": 0.6}
BRIDGE_FACTS = tuple(BRIDGE_CONFIDENCE)
TRIVIAL_NAMES = frozenset({"", "localhost", "(none)", "none", "unknown", "default"})
# Names devices carry from the factory, alike on every unit until someone names it: two of
# them in two zones are two devices (Cisco's and HP's unconfigured switches and routers,
# Raspberry Pi OS and the Linux images municipalities' hobbyists flash, Synology's NAS)
FACTORY_NAMES = frozenset({
    "switch", "router", "ap", "gateway", "printer", "camera", "nas", "nvr", "dvr",
    "raspberrypi", "ubuntu", "debian", "kali", "dietpi", "octopi", "pihole", "pi-hole",
    "homeassistant", "hassio", "openhabian", "homebridge", "libreelec", "osmc", "volumio",
    "moode", "openwrt", "lede", "diskstation", "mikrotik", "android", "iphone", "ipad",
    "localhost.localdomain", "esp32", "esp8266", "espressif", "orangepi", "jetson"})
# Keys that tell two units of one model apart: two devices that share a name (or a host key
# baked into their firmware) but whose values of another of these differ are two devices
UNIQUE_KEYS = ("snmp.engine_id", "upnp.udn", "upnp.serial", "ssh.hostkey", "tls.cert_sha256")
MAX_NAMED_DEVICES = 16  # a name more devices than this carry names none of them
# A device's own words, compared between two addresses: the same set on two NICs of
# neighbouring MACs is one device with two legs (two units of one model share the words,
# not the neighbouring MACs)
PAGE_KEYS = ("http.server", "http.title", "http.www_authenticate", "rtsp.server",
             "ftp.banner", "ssh.banner", "telnet.banner", "upnp.description", "snmp.sysdescr")
NEIGHBOUR_MACS = 4  # MACs this close (same OUI) are one device's NICs
CLEAR_TEXT = {("tcp", 23): "Telnet", ("tcp", 21): "FTP"}


@dataclass(slots=True, kw_only=True)
class Finding:
    key: str
    kind: str
    severity: str
    title: str
    zone: str | None = None
    other_zone: str | None = None
    site: str | None = None
    asset_id: int | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)


def _severity(zone: Zone | None, base: str) -> str:
    if zone is not None and zone.criticality in ("high", "critical") and base == "medium":
        return "high"
    return base


def latest_reach(db: Database, org: str | None = None) -> list[dict[str, Any]]:
    """The results of each sensor's most recent plan that has any, per zone it stands in
    (a sensor on a trunk probes from each of its VLANs); only ``org``'s sensors when given."""
    return [dict(r) for r in db.query(
        "WITH answered AS (SELECT DISTINCT plan_id, sensor_id FROM reach),"
        " latest AS (SELECT p.sensor_id, p.zone, max(p.issued_at) AS issued_at FROM plans p"
        "  JOIN answered a ON a.plan_id = p.id AND a.sensor_id = p.sensor_id"
        "  GROUP BY p.sensor_id, p.zone)"
        " SELECT r.*, p.zone AS source_zone FROM latest l"
        " JOIN plans p ON p.sensor_id = l.sensor_id AND p.zone = l.zone"
        "  AND p.issued_at = l.issued_at"
        " JOIN reach r ON r.plan_id = p.id AND r.sensor_id = p.sensor_id"
        " JOIN sensors sn ON sn.id = p.sensor_id WHERE ? IS NULL OR sn.org_id = ?",
        [org, org])]


def current_addresses(db: Database, org: str | None = None) -> list[dict[str, Any]]:
    """Probed addresses seen in their sensor's latest scan, with the asset's identity; only
    ``org``'s assets when given (municipalities' address ranges overlap: each is judged by
    its own policy alone)."""
    return [dict(r) for r in db.query(
        "WITH scanned AS (SELECT sensor_id, max(observed_at) AS at FROM observations"
        "  GROUP BY sensor_id)"
        " SELECT d.asset_id, d.ip, d.first_seen, d.last_seen, d.last_sensor, a.mac, a.hostname,"
        " a.device_type, a.vendor, a.model, a.product, a.version, a.mac_vendor, t.name AS site"
        " FROM addresses d"
        " JOIN assets a ON a.id = d.asset_id JOIN sites t ON t.id = a.site_id"
        " LEFT JOIN scanned s ON s.sensor_id = d.last_sensor"
        " WHERE d.kind = 'probed' AND d.last_seen >= coalesce(s.at, d.last_seen)"
        " AND (? IS NULL OR t.org_id = ?)", [org, org])]


def _label(row: dict[str, Any]) -> str:
    what = " ".join(p for p in (row.get("vendor") or row.get("mac_vendor"),
                                row.get("model") or row.get("product")) if p)
    kind = row.get("device_type") or "device"
    return f"{kind} {row['ip']}" + (f" ({what})" if what else "")


def find(db: Database, policy: Policy, *, now: str) -> dict[str, Finding]:
    found: dict[str, Finding] = {}
    current = current_addresses(db, policy.org)
    by_asset: dict[int, list[dict[str, Any]]] = {}
    placed = _automatic_zones(db, policy, current)
    for row in current:
        row["zone"] = (z.name if (z := policy.zone_of(row["ip"], row["site"]))
                       else placed.get((row["asset_id"], row["ip"])))
        by_asset.setdefault(row["asset_id"], []).append(row)
    asset_of_ip = _assets_by_address(policy, current)
    routed = _routed(db, policy)
    gateways = gateways_of(policy, current, routed)
    # the zones' own routers (named in the policy, or a sensor's default gateway) join zones
    # by routing, which the probes judge flow by flow: seen as a device in two zones (one MAC
    # on every VLAN, one host key or SNMP engine on every leg, legs with neighbouring MACs,
    # its other legs' addresses) each was a false bridge at every site with VLANs. A router
    # known only by its identity is not among them: a home router plugged in across two
    # zones is the bridge this check is for.
    trusted = _named_gateways(policy) | routed
    routers = _devices_at(current, trusted)
    # their addresses: answering from the segment's edge is their job (one known only by
    # its identity answering so is a device with a leg here, as any other)
    edges = _with_other_names(policy, current, trusted)

    reached = latest_reach(db, policy.org)
    _direct_answers(policy, reached, edges, asset_of_ip, found)
    # unexpected flows: one violation per zone pair and service, listing every target reached
    for result in reached:
        if result["state"] != "reachable":
            continue
        source = result["source_zone"]
        target = policy.zone_of(result["ip"], policy.site_of(source))
        if target is None or target.name == source or policy.allows(
                source, target.name, result["proto"], result["port"]):
            continue
        service = "icmp" if result["proto"] == "icmp" else f"{result['proto']}/{result['port']}"
        if gateways.holds(target.site, result["ip"]):
            _exposure(result, source, target, service, asset_of_ip, found)
            # a zone's router answering on its own address is routing, not a flow into the
            # zone; a device that is a router by its banners only (a home router inside
            # the zone) is reached in the zone, as any device, beyond its login
            if edges.holds(target.site, result["ip"]) or (
                    result["proto"], result["port"]) in MANAGEMENT:
                continue
        key = f"unexpected_flow|{source}|{target.name}|{service}"
        item = found.setdefault(key, Finding(
            key=key, kind="unexpected_flow", severity=_severity(target, "medium"),
            title=f"{source} reaches {target.name} on {service}, which the policy denies",
            zone=source, other_zone=target.name, site=target.site))
        item.evidence.append(_probe_evidence(result, service, _asset_at(asset_of_ip, target, result),
                                             family="IPv6" if ":" in result["ip"] else "IPv4"))

    for asset_id, rows in by_asset.items():
        for row in rows:
            zone = policy.zone(row["zone"]) if row["zone"] else None
            misplaced = _misplaced(zone, row) if zone is not None else None
            if zone is not None and misplaced is not None:
                title, extra = misplaced
                key = f"misplaced_device|{asset_id}|{zone.name}"
                found[key] = Finding(
                    key=key, kind="misplaced_device", severity=_severity(zone, "medium"),
                    title=title, zone=zone.name, site=zone.site, asset_id=asset_id,
                    evidence=[{"source": "identity", "device_type": row["device_type"], **extra,
                               "address": row["ip"], "sensor": row["last_sensor"],
                               "at": row["last_seen"]}])
        zones = sorted({r["zone"] for r in rows if r["zone"]})
        if len(zones) > 1 and asset_id not in routers:
            key = f"bridging_device|asset:{asset_id}"
            found[key] = Finding(
                key=key, kind="bridging_device", severity="high",
                title=f"MAC {rows[0]['mac']} answers in zones {' and '.join(zones)}",
                zone=zones[0], other_zone=zones[1], site=policy.zone(zones[0]).site,
                asset_id=asset_id,
                evidence=[{"source": "mac", "mac": r["mac"], "address": r["ip"], "zone": r["zone"],
                           "sensor": r["last_sensor"], "at": r["last_seen"]} for r in rows])

    live = {(r["asset_id"], r["ip"]): r for r in current}
    hosts = [r for r in current if r["asset_id"] not in routers]
    live_hosts = {(r["asset_id"], r["ip"]): r for r in hosts}
    _bridges_by_fact(db, policy, live_hosts, found)
    _bridges_by_neighbour_macs(db, policy, hosts, found)
    _claims(db, policy, hosts, found)
    heard_on = _heard_on(db, policy, live_hosts)
    _off_link(heard_on, found)
    _rogue_routers(db, policy, live_hosts, edges, heard_on, found)
    _contested_routers(db, policy, live, current, trusted, found)
    _insecure(db, policy, live, found)
    _unknown(db, policy, current, found, now)
    _unapproved(db, policy, current, found)
    _vulnerable(db, policy, by_asset, found)
    _vlan_leaks(db, policy, found)
    return found


def _vlan_leaks(db: Database, policy: Policy, found: dict[str, Finding]) -> None:
    """A sensor's port that received other VLANs' tagged frames in its latest scan is a
    trunk, or carries a voice VLAN: whatever is plugged into that socket can send tagged
    frames into those VLANs too, past the firewall between the zones. The VLANs its zone's
    policy names (``tagged_vlans``) are by design. A port that offers to become a trunk
    (DTP auto or desirable, Cisco's default on many switches) lets any device there make
    it one ("switch spoofing"); one that is a trunk carries every VLAN."""
    zones = sensor_zones(db, policy)
    for row in db.query("SELECT id, port_vlans, port_trunking, port_vlans_at FROM sensors"
                        " WHERE org_id = ? AND status = 'active' AND port_vlans_at IS NOT NULL",
                        [policy.org]):
        if not zones.get(row["id"]):
            continue  # a sensor in no zone of the policy: nothing to hold it against
        zone, sensor, at = zones[row["id"]][0], row["id"], row["port_vlans_at"]
        for heard in json.loads(row["port_vlans"] or "[]"):
            vlan = heard["vlan"]
            if vlan in zone.tagged_vlans:
                continue
            key = f"vlan_leak|{sensor}|{vlan}"
            found[key] = Finding(
                key=key, kind="vlan_leak", severity=_severity(zone, "medium"),
                title=f"frames tagged for VLAN {vlan} reach sensor {sensor}'s port in zone "
                      f"{zone.name}: a device in that socket can send into VLAN {vlan}",
                zone=zone.name, site=zone.site,
                evidence=[{"source": "listener", "sensor": sensor, "vlan": vlan,
                           "frames": heard["frames"], "senders": heard.get("senders", []),
                           "at": at}])
        said = json.loads(row["port_trunking"] or "[]")
        if said:
            trunk = any(t["trunk"] or t["mode"] == "on" for t in said)
            key = f"vlan_leak|{sensor}|dtp"
            found[key] = Finding(
                key=key, kind="vlan_leak",
                severity="high" if trunk else _severity(zone, "medium"),
                title=(f"sensor {sensor}'s switch port in zone {zone.name} "
                       + ("is a trunk (DTP): a device in that socket can send into every VLAN"
                          if trunk else "offers to become a trunk (DTP mode "
                          f"{'/'.join(sorted({t['mode'] for t in said}))}): a device in that "
                          "socket can make it one, into every VLAN")),
                zone=zone.name, site=zone.site,
                evidence=[{"source": "DTP", "sensor": sensor, "mac": t["sender"],
                           "mode": t["mode"], "trunk": t["trunk"], "at": at} for t in said])


UNROUTED_TTLS = frozenset({64, 128, 255})  # what systems start at: no router took one off
DIRECT_ANSWER_CONFIDENCE = 0.7  # a device that starts at 65 after one router looks the same


def _direct_answers(policy: Policy, reached: list[dict[str, Any]], edges: SiteAddresses,
                    asset_of_ip: AssetsByAddress, found: dict[str, Finding]) -> None:
    """An address in another zone whose answer crossed no router: the device answered on
    the sensor's own segment, so it has a leg there (a second NIC, a bridge). The zones'
    own routers (``edges``: named in the policy, or by a sensor's routes) answer so."""
    for result in reached:
        source = result["source_zone"]
        target = policy.zone_of(result["ip"], policy.site_of(source))
        if (result["state"] != "reachable" or result.get("ttl") not in UNROUTED_TTLS
                or target is None or target.name == source
                or edges.holds(target.site, result["ip"])):
            continue
        key = f"bridging_device|direct|{result['ip']}" + _at_site(policy, target.site)
        asset = _asset_at(asset_of_ip, target, result)
        label = _label(asset) if asset else result["ip"]
        item = found.setdefault(key, Finding(
            key=key, kind="bridging_device", severity="high",
            title=f"{label} in zone {target.name} answers {source}'s sensor directly, "
                  "through no router", zone=source, other_zone=target.name, site=target.site,
            asset_id=asset["asset_id"] if asset else None))
        item.evidence.append({"source": "probe", "sensor": result["sensor_id"],
                              "target": result["ip"],
                              "service": f"{result['proto']}/{result['port']}",
                              "ttl": result["ttl"], "confidence": DIRECT_ANSWER_CONFIDENCE,
                              "at": result["observed_at"]})


def _misplaced(zone: Zone, row: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """Why a device does not belong in its zone (a title and evidence beyond the identity),
    or None when it does."""
    if row["device_type"] is None and not zone.allow_unidentified:
        return (f"unidentified {_label(row)} is in zone {zone.name}, which allows identified "
                "devices only", {"vendor": row["vendor"] or row["mac_vendor"]})
    if not zone.allows_type(row["device_type"]):
        return (f"{_label(row)} is in zone {zone.name}, which allows "
                f"{', '.join(zone.allowed_types or ())}", {})
    return None


def _unapproved(db: Database, policy: Policy, current: list[dict[str, Any]],
                found: dict[str, Finding]) -> None:
    """Devices on no line of their site's approved list (sites without a list: none)."""
    from central.approved import approved_by_site

    lists = approved_by_site(db, policy.org)
    for row in current:
        zone = policy.zone(row["zone"]) if row["zone"] else None
        if zone is None or zone.site not in lists or zone.visitors:
            continue
        macs, ips = lists[zone.site]
        if (row["mac"] and row["mac"] in macs) or row["ip"] in ips:
            continue
        key = f"unapproved_device|{row['asset_id']}|{row['zone']}"
        found[key] = Finding(
            key=key, kind="unapproved_device", severity=_severity(zone, "medium"),
            title=f"{_label(row)} in zone {row['zone']} is not on the approved list of "
                  f"{zone.site}", zone=zone.name, site=zone.site, asset_id=row["asset_id"],
            evidence=[{"source": "approved list", "address": row["ip"], "mac": row["mac"],
                       "vendor": row["vendor"] or row["mac_vendor"],
                       "device_type": row["device_type"], "sensor": row["last_sensor"],
                       "at": row["last_seen"]}])


class SiteAddresses:
    """Addresses by site: sites are separate address spaces, and one school's router's
    address may be a PC at the next school. An address at a site the policy does not name
    holds at every site, and every site's address holds for a device at such a site (which
    site is meant is not known)."""

    def __init__(self, sites: Iterable[str], pairs: Iterable[tuple[str | None, str]] = ()
                 ) -> None:
        self.sites = frozenset(sites)
        self.pairs = {(site if site in self.sites else None, ip) for site, ip in pairs}
        self.addresses = {ip for _, ip in self.pairs}

    def holds(self, site: str | None, ip: str) -> bool:
        if site not in self.sites:
            return ip in self.addresses
        return (site, ip) in self.pairs or (None, ip) in self.pairs

    def __or__(self, other: SiteAddresses) -> SiteAddresses:
        return SiteAddresses(self.sites, self.pairs | other.pairs)


def gateways_of(policy: Policy, current: list[dict[str, Any]], routed: SiteAddresses
                ) -> SiteAddresses:
    """The zones' routers' own addresses: named in the policy, identified as a router or
    firewall, or reported by a sensor as its segment's default gateway."""
    seen = SiteAddresses(policy.sites, ((row["site"], row["ip"]) for row in current
                                        if row.get("device_type") in GATEWAY_TYPES))
    return _with_other_names(policy, current, _named_gateways(policy) | seen | routed)


def _with_other_names(policy: Policy, current: list[dict[str, Any]], known: SiteAddresses
                      ) -> SiteAddresses:
    """``known`` addresses and their devices' other names: a gateway's IPv6 address (or
    another leg) is the same device's own."""
    devices = _devices_at(current, known)
    legs = ((row["site"], row["ip"]) for row in current if row["asset_id"] in devices)
    return known | SiteAddresses(policy.sites, legs)


def _named_gateways(policy: Policy) -> SiteAddresses:
    return SiteAddresses(policy.sites,
                         ((zone.site, ip) for zone in policy.zones for ip in zone.gateways))


def _devices_at(current: list[dict[str, Any]], addresses: SiteAddresses) -> set[int]:
    """The assets that hold any of ``addresses`` now (at their site)."""
    return {row["asset_id"] for row in current if addresses.holds(row["site"], row["ip"])}


def _routed(db: Database, policy: Policy) -> SiteAddresses:
    """The addresses the organisation's sensors report as their segment's default gateway,
    at their site, from their own routes or configuration (``store.TRUSTED_SOURCES``). A
    router advertisement (IPv6) is the device's own word: every home router, Windows'
    connection sharing and a phone's hotspot send one, so a home router plugged in across
    two zones (the bridge the checks look for) made itself a zone's router and left every
    bridging check."""
    return SiteAddresses(policy.sites, ((r[0], r[1]) for r in db.execute(
        "SELECT t.name, f.ip FROM facts f JOIN assets a ON a.id = f.asset_id JOIN sites t"
        " ON t.id = a.site_id WHERE f.key = ? AND f.value = ? AND t.org_id = ?"
        " AND f.source IN (SELECT value FROM json_each(?))",
        [wire.ROLE_KEY, wire.DEFAULT_GATEWAY, policy.org, json.dumps(TRUSTED_SOURCES)])))


def _exposure(result: dict[str, Any], source: str, target: Zone, service: str,
              asset_of_ip: AssetsByAddress, found: dict[str, Finding]) -> None:
    """A gateway's management service reachable from a zone the policy does not allow it:
    its login is exposed there (ICMP and other answers of a router are routing)."""
    what = MANAGEMENT.get((result["proto"], result["port"]))
    if what is None:
        return
    key = f"management_exposure|{source}|{result['ip']}|{service}"
    asset = _asset_at(asset_of_ip, target, result)
    item = found.setdefault(key, Finding(
        key=key, kind="management_exposure", severity=_severity(target, "high"),
        title=f"{what} management of gateway {result['ip']} ({target.name}) is reachable from "
              f"{source}", zone=source, other_zone=target.name, site=target.site,
        asset_id=asset["asset_id"] if asset else None))
    item.evidence.append(_probe_evidence(result, service, asset))


# each address's device, by (site, address): sites may use the same ranges
AssetsByAddress = dict[tuple[str | None, str], dict[str, Any]]


def _assets_by_address(policy: Policy, current: list[dict[str, Any]]) -> AssetsByAddress:
    """The device at each address, by (its site, the address); and by (None, the address)
    for a device at a site the policy does not name (its zones are then found elsewhere)."""
    out: AssetsByAddress = {}
    for row in current:
        out[(row["site"], row["ip"])] = row
        if row["site"] not in policy.sites:
            out.setdefault((None, row["ip"]), row)
    return out


def _asset_at(assets: AssetsByAddress, target: Zone, result: dict[str, Any]
              ) -> dict[str, Any] | None:
    """The device a probe result reached: at the address in the target zone's site."""
    return assets.get((target.site, result["ip"])) or assets.get((None, result["ip"]))


def _at_site(policy: Policy, site: str | None) -> str:
    """A violation key's site part: a policy of several sites, which may use the same
    addresses and names, keys each site's apart (one of one site keeps its keys)."""
    return f"|{site}" if len(policy.sites) > 1 else ""


def _probe_evidence(result: dict[str, Any], service: str, asset: dict[str, Any] | None,
                    **extra: str) -> dict[str, Any]:
    """One probe result as evidence: which sensor, which plan, what answered, when."""
    return {"source": "probe", "sensor": result["sensor_id"], "plan": result["plan_id"],
            "target": result["ip"], **extra, "service": service, "state": result["state"],
            "rtt_ms": result["rtt_ms"], "at": result["observed_at"],
            "asset": _label(asset) if asset else None}


def _page(db: Database, asset_id: int, ip: str) -> frozenset[tuple[str, str]]:
    return frozenset((r["key"], r["value"]) for r in db.query(
        "SELECT key, value FROM facts WHERE asset_id = ? AND ip = ? AND key IN"
        " (SELECT value FROM json_each(?))", [asset_id, ip, json.dumps(PAGE_KEYS)]))


def _bridges_by_neighbour_macs(db: Database, policy: Policy, current: list[dict[str, Any]],
                               found: dict[str, Finding]) -> None:
    """Two NICs of one device: MACs of one OUI a few apart, in two zones. With the same
    banners and pages on both addresses the evidence is strong; without, it is a lead. Two
    units of one batch have MACs a few apart too, and the same pages: their serial numbers,
    host keys or certificates differ. Two sites are two places: units there are two."""
    by_oui: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    unique = _unique(db)
    for row in current:
        mac = row.get("mac")
        if mac and row["zone"] and not int(mac[:2], 16) & 0x02:  # not a randomised MAC
            by_oui.setdefault((row["site"], mac[:8]), []).append(
                (int(mac.replace(":", ""), 16), row))
    for members in by_oui.values():
        members.sort(key=lambda m: m[0])
        for (low, a), (high, b) in itertools.pairwise(members):
            if a["zone"] == b["zone"] or not 0 < high - low <= NEIGHBOUR_MACS \
                    or not _maybe_same(a["asset_id"], b["asset_id"], unique):
                continue  # two units of one batch, their serial numbers or keys differing
            page_a, page_b = _page(db, a["asset_id"], a["ip"]), _page(db, b["asset_id"], b["ip"])
            same = page_a == page_b and len(page_a) >= 1
            zones = sorted((a["zone"], b["zone"]))
            key = f"bridging_device|neighbour-macs:{a['mac']}:{b['mac']}"
            evidence = [{"source": "neighbouring MACs", "mac": r["mac"], "address": r["ip"],
                         "zone": r["zone"], "sensor": r["last_sensor"], "at": r["last_seen"],
                         "confidence": 0.9 if same else 0.6} for r in (a, b)]
            if same:
                evidence.append({"source": "same banners and pages", "confidence": 0.9,
                                 "observed": sorted(f"{k}: {v[:80]}" for k, v in page_a)[:8]})
            found[key] = Finding(
                key=key, kind="bridging_device", severity="high" if same else "medium",
                title=f"{_label(a)} and {b['ip']} look like one device's two NICs "
                      f"(MACs {a['mac']} and {b['mac']}) in zones {' and '.join(zones)}",
                zone=zones[0], other_zone=zones[1], site=policy.zone(zones[0]).site,
                asset_id=a["asset_id"], evidence=evidence)


def _bridges_by_fact(db: Database, policy: Policy, live: dict[tuple[int, str], dict[str, Any]],
                     found: dict[str, Finding]) -> None:
    """One name or key said in two zones of one site (sites are two places: a name said at
    two schools is two devices' name)."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    facts = [dict(f) for f in db.query(
        "SELECT asset_id, ip, key, value, sensor_id, last_seen FROM facts"
        " WHERE key IN (SELECT value FROM json_each(?))", [json.dumps(BRIDGE_FACTS)])]
    # several of these names said in one scan from one address are a reflector's, repeating
    # other devices (Avahi's reflector, a wireless controller's mDNS gateway): none is its own
    said = Counter((f["asset_id"], f["ip"], f["key"], f["last_seen"]) for f in facts
                   if f["key"] in REPEATED_NAMES)
    for fact in facts:
        row = live.get((fact["asset_id"], fact["ip"]))
        if row is None or not row["zone"] or fact["value"].strip().lower() in (
                TRIVIAL_NAMES | FACTORY_NAMES):
            continue
        if said[(fact["asset_id"], fact["ip"], fact["key"], fact["last_seen"])] > 1:
            continue
        groups.setdefault((row["site"], fact["key"], fact["value"]), []).append(
            fact | {"zone": row["zone"]})
    unique = _unique(db)
    for (site, name, value), facts in sorted(groups.items()):
        facts = _one_device(name, facts, unique)
        zones = sorted({f["zone"] for f in facts})
        if len(zones) < 2:
            continue
        key = f"bridging_device|{name}:{value}" + _at_site(policy, site)
        found[key] = Finding(
            key=key, kind="bridging_device", severity="high",
            title=f"one device ({name} {value[:40]}) answers in zones {' and '.join(zones)}",
            zone=zones[0], other_zone=zones[1], site=policy.zone(zones[0]).site,
            asset_id=facts[0]["asset_id"],
            evidence=[{"source": name, "value": value, "address": f["ip"], "zone": f["zone"],
                       "sensor": f["sensor_id"], "at": f["last_seen"],
                       "confidence": BRIDGE_CONFIDENCE[name]} for f in facts])


def _unique(db: Database) -> dict[int, dict[str, set[str]]]:
    """Each asset's values of the keys that tell units of one model apart (UNIQUE_KEYS)."""
    unique: dict[int, dict[str, set[str]]] = {}
    for fact in db.query("SELECT asset_id, key, value FROM facts WHERE key IN"
                         " (SELECT value FROM json_each(?))", [json.dumps(UNIQUE_KEYS)]):
        unique.setdefault(fact["asset_id"], {}).setdefault(fact["key"], set()).add(fact["value"])
    return unique


def _maybe_same(one: int, other: int, unique: dict[int, dict[str, set[str]]],
                but: str | None = None) -> bool:
    """Whether two assets may be one device: not when their values of one of the ``unique``
    keys (other than ``but``, the key that joined them) differ: two units of one model."""
    mine, theirs = unique.get(one, {}), unique.get(other, {})
    return one == other or not any(mine[key].isdisjoint(theirs[key]) for key in UNIQUE_KEYS
                                   if key != but and key in mine and key in theirs)


def _one_device(name: str, facts: list[dict[str, Any]],
                unique: dict[int, dict[str, set[str]]]) -> list[dict[str, Any]]:
    """Of the facts that say one ``name`` in several zones, those of a device that may be
    the same as one saying it in another zone (``_maybe_same``); none when more devices
    than MAX_NAMED_DEVICES say it."""
    if len({f["asset_id"] for f in facts}) > MAX_NAMED_DEVICES:
        return []
    return [f for f in facts if any(
        g["zone"] != f["zone"] and _maybe_same(f["asset_id"], g["asset_id"], unique, name)
        for g in facts)]


def _claims(db: Database, policy: Policy, current: list[dict[str, Any]],
            found: dict[str, Finding]) -> None:
    home = {r["asset_id"]: r for r in current if r["zone"]}
    for claim in db.query("SELECT asset_id, ip, last_sensor, last_seen FROM addresses"
                          " WHERE kind = 'claimed'"):
        row = home.get(claim["asset_id"])
        other = policy.zone_of(claim["ip"], row["site"]) if row is not None else None
        if row is None or other is None or other.name == row["zone"]:
            continue
        key = f"bridging_device|claim:{claim['asset_id']}:{other.name}"
        found[key] = Finding(
            key=key, kind="bridging_device", severity="high",
            title=f"{_label(row)} in {row['zone']} claims address {claim['ip']} in {other.name}",
            zone=row["zone"], other_zone=other.name, site=other.site, asset_id=claim["asset_id"],
            evidence=[{"source": "claimed address", "address": claim["ip"],
                       "sensor": claim["last_sensor"], "at": claim["last_seen"]}])


# an address heard on a segment from another subnet: its fact, its row, the sensor's link
# there and the segment's zone
HeardOn = tuple[dict[str, Any], dict[str, Any], ipaddress.IPv4Interface | ipaddress.IPv6Interface,
                Zone]


def _heard_on(db: Database, policy: Policy,
              live: dict[tuple[int, str], dict[str, Any]]) -> list[HeardOn]:
    """The addresses a sensor heard on its own segment from another subnet
    (``wire.LINK_KEY``, said in the address's latest scan), each with its fact and row, the
    sensor's link there and that segment's zone (where the link is in one)."""
    out = []
    for fact, row in _said_now(db, wire.LINK_KEY, None, live):
        if (on := _segment(policy, fact, row["site"])) is not None:
            out.append((fact, row, *on))
    return out


def automatic_zones(db: Database, policy: Policy) -> dict[tuple[int, str], str]:
    """The zone of each asset's automatic address (see ``_automatic_zones``), by (asset id,
    address): for the inventory's exports and events, as for the checks."""
    return _automatic_zones(db, policy, current_addresses(db, policy.org))


def zones_of(policy: Policy, placed: dict[tuple[int, str], str], asset_id: int,
             ips: Iterable[str], site: str | None) -> set[str]:
    """An asset's zones: its addresses' in its ``site``, and its automatic addresses'
    segments' (``placed``, by ``automatic_zones``)."""
    return ({z.name for ip in ips if (z := policy.zone_of(ip, site))}
            | {placed[key] for ip in ips if (key := (asset_id, ip)) in placed})


def _automatic_zones(db: Database, policy: Policy, current: list[dict[str, Any]]
                     ) -> dict[tuple[int, str], str]:
    """An automatic address (169.254/16, fe80::/10: a device no DHCP server answered) is
    of every link, so of no zone: it takes the zone of the segment a sensor heard it on
    (``wire.LINK_KEY``), by (asset id, address). It is then judged there as any device
    (its type, a second zone), and not as an address of no zone."""
    automatic = {(r["asset_id"], r["ip"]): r for r in current
                 if ipaddress.ip_address(r["ip"]).is_link_local
                 and policy.zone_of(r["ip"], r["site"]) is None}
    placed: dict[tuple[int, str], str] = {}
    for fact, row in _said_now(db, wire.LINK_KEY, None, automatic) if automatic else ():
        if (on := _segment(policy, fact, row["site"])) is not None:
            placed.setdefault((fact["asset_id"], fact["ip"]), on[1].name)
    return placed


def _segment(policy: Policy, fact: dict[str, Any], site: str | None
             ) -> tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, Zone] | None:
    """A link mark's sensor link, and the zone of that segment in ``site`` (None: no
    zone's, or no link)."""
    try:
        link = ipaddress.ip_interface(fact["value"])
    except ValueError:
        return None
    segment = policy.zone_of(str(link.ip), site)
    return None if segment is None else (link, segment)


def _off_link(heard_on: list[HeardOn], found: dict[str, Finding]) -> None:
    """A device a sensor heard on its own segment (ARP, DHCP, mDNS) from an address of
    another zone, or of none (``_heard_on``): it sits on this zone's wire, so the two zones
    meet at layer 2 through it, whatever the router allows. By its address alone it was in
    its own zone, and nothing was found."""
    for fact, row, link, segment in heard_on:
        if segment.name == row["zone"]:
            continue
        where = f"an address of zone {row['zone']}" if row["zone"] else "an address in no zone"
        key = f"misplaced_device|link:{fact['asset_id']}|{segment.name}"
        item = found.setdefault(key, Finding(  # one a device: its IPv6 address is evidence
            key=key, kind="misplaced_device",
            severity=_severity(segment, "high" if row["zone"] else "medium"),
            title=f"{_label(row)} is on the {segment.name} segment ({link.network}) with {where}",
            zone=segment.name, other_zone=row["zone"], site=segment.site,
            asset_id=fact["asset_id"]))
        item.evidence.append({"source": "heard on the segment", "mac": row["mac"],
                              "address": fact["ip"], "zone": row["zone"],
                              "segment": str(link.network), "segment_zone": segment.name,
                              "sensor": fact["sensor_id"], "at": fact["last_seen"]})


def _zone_at(policy: Policy, text: str, site: str | None) -> Zone | None:
    """The zone of an address a device in ``site`` said (None for no zone, or no address)."""
    try:
        return policy.zone_of(str(ipaddress.ip_address(text)), site)
    except ValueError:
        return None


def _said_now(db: Database, key: str, value: str | None,
              live: dict[tuple[int, str], dict[str, Any]]
              ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The facts of ``key`` (of ``value``, if given) said in their address's latest scan,
    each with that address's row; IPv4 addresses first (they name a device)."""
    out = []
    for fact in db.query("SELECT asset_id, ip, value, source, sensor_id, last_seen FROM facts"
                         " WHERE key = ? AND (? IS NULL OR value = ?)", [key, value, value]):
        row = live.get((fact["asset_id"], fact["ip"]))
        if row is not None and fact["sensor_id"] == row["last_sensor"] \
                and fact["last_seen"] >= row["last_seen"]:  # not since moved or silent
            out.append((fact, row))
    return sorted(out, key=lambda pair: (":" in pair[0]["ip"], pair[0]["ip"]))


def _rogue_routers(db: Database, policy: Policy, live: dict[tuple[int, str], dict[str, Any]],
                   edges: SiteAddresses, heard_on: list[HeardOn], found: dict[str, Finding]
                   ) -> None:
    """A device that makes itself its segment's router and is not one of the zones'
    routers (``live`` holds none of those): every device it serves sends it its traffic,
    by a path no firewall rule governs. Over IPv6 by advertising itself (a router
    advertisement: home routers, phone hotspots and Windows' connection sharing do it by
    default); over IPv4 by handing out a router that is not its zone's in DHCP (a home or
    travel router plugged in by its LAN port hands out itself). Judged for the segment it
    was heard on: one with its own subnet's address is on another zone's wire. A router
    the policy's ``gateways`` names is the zone's; a DHCP server in the zone that hands out
    the zone's router (``edges``), and the zone's router relaying the town's, are not
    reported."""
    segment_of = {(fact["asset_id"], fact["ip"]): zone for fact, _, _, zone in heard_on}

    def segment(fact: dict[str, Any], row: dict[str, Any]) -> Zone | None:
        return segment_of.get((fact["asset_id"], fact["ip"])) or (
            policy.zone(row["zone"]) if row["zone"] else None)

    for fact, row in _said_now(db, wire.ROLE_KEY, wire.DEFAULT_GATEWAY, live):
        if (zone := segment(fact, row)) is not None and fact["source"] not in TRUSTED_SOURCES:
            _rogue(found, fact, row, zone, "advertises itself as the IPv6 router",
                   {"source": "router advertisement"})
    for fact, row in _said_now(db, "dhcp.router", None, live):
        router = _zone_at(policy, fact["value"], row["site"])
        if (zone := segment(fact, row)) is not None and not (
                edges.holds(row["site"], fact["value"]) and router is not None
                and router.name == zone.name):
            _rogue(found, fact, row, zone, f"hands out {fact['value']} as the router by DHCP",
                   {"source": "DHCP offer", "router": fact["value"]})


def _contested_routers(db: Database, policy: Policy, live: dict[tuple[int, str], dict[str, Any]],
                       current: list[dict[str, Any]], trusted: SiteAddresses,
                       found: dict[str, Finding]) -> None:
    """Another MAC sending ARP from a zone router's own address, where the router answered
    the sensor's ARP (``wire.CONFLICT_KEY``): a device telling the segment that the router
    is at its MAC (ARP spoofing) receives the traffic meant for the router, past the zone's
    firewall; or two devices hold one address. A rogue router either way, found on the
    device that sent it where the inventory knows its MAC."""
    asset_of_mac = {row["mac"]: row["asset_id"] for row in current if row["mac"]}
    for fact, row in _said_now(db, wire.CONFLICT_KEY, None, live):
        if not trusted.holds(row["site"], fact["ip"]) or not row["zone"]:
            continue
        zone = policy.zone(row["zone"])
        key = f"rogue_router|arp:{fact['ip']}|{fact['value']}"
        item = found.setdefault(key, Finding(
            key=key, kind="rogue_router", severity="high",
            title=f"MAC {fact['value']} sends ARP from the {zone.name} router's address "
                  f"{fact['ip']} (the router is {row['mac']}): the segment's traffic may "
                  "go to it",
            zone=zone.name, site=zone.site, asset_id=asset_of_mac.get(fact["value"])))
        item.evidence.append({"source": "ARP", "mac": fact["value"], "address": fact["ip"],
                              "router_mac": row["mac"], "sensor": fact["sensor_id"],
                              "at": fact["last_seen"]})


def _rogue(found: dict[str, Finding], fact: dict[str, Any], row: dict[str, Any], zone: Zone,
           what: str, evidence: dict[str, Any]) -> None:
    """One rogue router a device and segment; each way it was heard is evidence."""
    key = f"rogue_router|{fact['asset_id']}|{zone.name}"
    item = found.setdefault(key, Finding(
        key=key, kind="rogue_router", severity="high",
        title=f"{_label(row)} on the {zone.name} segment {what}: not the zone's router",
        zone=zone.name, site=zone.site, asset_id=fact["asset_id"]))
    item.evidence.append({**evidence, "mac": row["mac"], "address": fact["ip"],
                          "sensor": fact["sensor_id"], "at": fact["last_seen"]})


def _insecure(db: Database, policy: Policy, live: dict[tuple[int, str], dict[str, Any]],
              found: dict[str, Finding]) -> None:
    realms = {(f["asset_id"], f["ip"]): f["value"] for f in db.query(
        "SELECT asset_id, ip, value FROM facts WHERE key = 'http.www_authenticate'")}
    for svc in db.query("SELECT asset_id, ip, proto, port, name, banner, last_seen FROM services"
                        " WHERE state = 'open'"):
        row = live.get((svc["asset_id"], svc["ip"]))
        if row is None or row["device_type"] in NOT_IOT:
            continue
        spot = (svc["proto"], svc["port"])
        what: str | None = CLEAR_TEXT.get(spot)
        detail: dict[str, Any] = {}
        if spot == ("udp", 161):
            what = "SNMP v2c answering a community from the sensor's list (default: public)"
        elif svc["proto"] == "tcp" and (svc["asset_id"], svc["ip"]) in realms and svc["port"] in (
                80, 8000, 8080):
            what = "HTTP login (credentials in clear text)"
            detail["realm"] = realms[(svc["asset_id"], svc["ip"])]
        if what is None:
            continue
        zone = policy.zone(row["zone"]) if row["zone"] else None
        key = f"insecure_service|{svc['asset_id']}|{svc['proto']}/{svc['port']}"
        found[key] = Finding(
            key=key, kind="insecure_service", severity=_severity(zone, "medium"),
            title=f"{what} on {_label(row)}", zone=row["zone"], site=zone.site if zone else None,
            asset_id=svc["asset_id"],
            evidence=[{"source": "service", "address": svc["ip"],
                       "service": f"{svc['proto']}/{svc['port']}", "name": svc["name"],
                       "banner": (svc["banner"] or "")[:200], "at": svc["last_seen"]} | detail])


def _unknown(db: Database, policy: Policy, current: list[dict[str, Any]],
             found: dict[str, Finding], now: str) -> None:
    # zone names repeat between municipalities: a baseline is the organisation's zone's
    prefix = f"{policy.org}/"
    baselines = {r["zone"].removeprefix(prefix): r["established_at"] for r in db.query(
        "SELECT * FROM zone_baselines WHERE zone LIKE ?", [prefix.replace("%", "") + "%"])}
    for zone in {r["zone"] for r in current if r["zone"]} - set(baselines) - _unscanned(db, policy):
        # the first look at a zone is its baseline: what is there now is known, not new;
        # a zone whose baseline is 'empty' knows nothing, so everything there is new
        established = EMPTY_BASELINE if policy.zone(zone).baseline == "empty" else now
        db.execute("INSERT INTO zone_baselines (zone, established_at) VALUES (?, ?)",
                   [prefix + zone, established])
        if established == EMPTY_BASELINE:
            baselines[zone] = established  # judged from this very evaluation on
    for row in current:
        since = baselines.get(row["zone"])
        if since is None or row["first_seen"] <= since or policy.zone(row["zone"]).visitors:
            continue
        key = f"unknown_device|{row['asset_id']}|{row['zone']}"
        found[key] = Finding(
            key=key, kind="unknown_device", severity="low",
            title=f"new {_label(row)} in zone {row['zone']} (first seen {row['first_seen']})",
            zone=row["zone"], site=policy.zone(row["zone"]).site, asset_id=row["asset_id"],
            evidence=[{"source": "inventory", "address": row["ip"], "mac": row["mac"],
                       "first_seen": row["first_seen"], "baseline": since,
                       "sensor": row["last_sensor"]}])


def _unscanned(db: Database, policy: Policy) -> set[str]:
    """The zones whose own sensors (those standing in them) have not yet scanned: another
    zone's sensor may glimpse a device there first (a camera with an address of the zone on
    the office wire), and a baseline taken then made the zone's whole first scan new.
    A zone no sensor stands in is looked at by others only: its first look is its own; a
    zone whose baseline is 'empty' takes none from a look, so it waits for nothing."""
    ours = {r["id"]: r["port_vlans_at"] for r in db.query(  # zone names repeat between orgs
        "SELECT id, port_vlans_at FROM sensors WHERE ? IS NULL OR org_id = ?",
        [policy.org, policy.org])}
    scanned = {s for s, at in ours.items() if at}  # each scan (not a plan's probes) sets it
    standing: dict[str, set[str]] = {}
    for sensor, zones in sensor_zones(db, policy).items():
        for zone in zones if sensor in ours else ():
            if zone.baseline != "empty":
                standing.setdefault(zone.name, set()).add(sensor)
    return {zone for zone, sensors in standing.items() if not sensors & scanned}


def _vulnerable(db: Database, policy: Policy, by_asset: dict[int, list[dict[str, Any]]],
                found: dict[str, Finding]) -> None:
    """A device present now whose product and version fall in an imported CVE's range
    (see :mod:`central.vulns`): one finding per device, its CVEs as evidence."""
    from central import vulns

    for asset_id, items in vulns.of_assets(db).items():
        rows = by_asset.get(asset_id)
        if not rows:
            continue  # not seen in its sensor's latest scan
        row = rows[0]
        zone = policy.zone(row["zone"]) if row["zone"] else None
        exploited = [v["cve"] for v in items if v["kev"]]
        only_possibly = all(v["status"] == vulns.POSSIBLY for v in items)
        title = (f"{_label(row)}: {'possibly ' if only_possibly else ''}{len(items)} known "
                 f"vulnerabilit{'y' if len(items) == 1 else 'ies'} ({items[0]['cve']}"
                 + (f"; exploited: {', '.join(exploited[:3])}" if exploited else "") + ")")
        key = f"vulnerable_device|{asset_id}"
        found[key] = Finding(
            key=key, kind="vulnerable_device", severity=vulns.severity(items), title=title,
            zone=row["zone"], site=zone.site if zone else None, asset_id=asset_id,
            evidence=[{"source": "vulnerability", "address": row["ip"], "cve": v["cve"],
                       "status": v["status"], "cvss": v["cvss"], "kev": v["kev"],
                       "cpe": v["cpe"], "version": row.get("version"),
                       "description": v["description"][:200]} for v in items])

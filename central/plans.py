"""Probe plans: which addresses in every other zone of its site a sensor probes, and on
which ports.

A plan tells one sensor which addresses in every other zone of its site to probe (the
known assets there, and the zone's reference targets) and on which ports: the policy's
default set, the ports of flows between the two zones, and the ports the asset is known
to have open. It is signed with the central's key and recorded; the running service sends
it (see :mod:`central.service`).
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime, timedelta

from joserfc.jwk import OKPKey
from sqlite_utils import Database

from agent import signing, wire
from central.policy import Policy, Zone

PLAN_VALID = timedelta(hours=2)


class PlanError(ValueError):
    """No plan can be made for this sensor (it stands in no zone of the policy)."""


def sensor_zones(db: Database, policy: Policy) -> dict[str, list[Zone]]:
    """The zones each active sensor stands in: as registered (token or 'sensor add --zone'),
    and every zone whose policy entry lists it. A sensor on a trunk port stands in one
    zone per VLAN, and gets one plan per zone."""
    out: dict[str, list[Zone]] = {}
    names = {z.name for z in policy.zones}
    for row in db.query("SELECT s.id, z.name AS zone FROM sensors s LEFT JOIN zones z"
                        " ON z.id = s.zone_id WHERE s.status = 'active'"):
        zones = [row["zone"]] if row["zone"] in names else []
        zones += [z.name for z in policy.zones if row["id"] in z.sensors and z.name not in zones]
        if zones:
            out[row["id"]] = [policy.zone(name) for name in zones]
    return out


def plan_for(db: Database, policy: Policy, sensor: str, *, zone: str | None = None,
             now: datetime | None = None) -> wire.ProbePlan:
    """The plan of ``sensor`` in ``zone`` (default: the first it stands in)."""
    zones = sensor_zones(db, policy).get(sensor, [])
    if not zones:
        raise PlanError(f"sensor {sensor!r} stands in no zone of the policy: register it "
                          "with --zone, or list it under the zone's sensors")
    home = zones[0] if zone is None else next((z for z in zones if z.name == zone), None)
    if home is None:
        raise PlanError(f"sensor {sensor!r} does not stand in zone {zone!r} (it stands in "
                        f"{', '.join(z.name for z in zones)})")
    org = db.execute("SELECT org_id FROM sensors WHERE id = ?", [sensor]).fetchone()[0]
    known: dict[str, set[int]] = {}
    for row in db.query("SELECT d.ip, s.port FROM addresses d JOIN assets a ON a.id = d.asset_id"
                        " JOIN sites t ON t.id = a.site_id LEFT JOIN services s ON"
                        " s.asset_id = d.asset_id AND s.ip = d.ip AND s.proto = 'tcp' AND"
                        " s.state = 'open' WHERE d.kind = 'probed' AND t.name = ?"
                        " AND t.org_id = ?",
                        [home.site, org]):  # sites (and municipalities) are separate spaces
        known.setdefault(row["ip"], set())
        if row["port"] is not None:
            known[row["ip"]].add(int(row["port"]))
    by_zone: dict[str, set[str]] = {}
    for ip in known:
        if (where := policy.zone_of(ip, home.site)) is not None:
            by_zone.setdefault(where.name, set()).add(ip)
    targets: list[wire.PlanTarget] = []
    for other in policy.zones:
        if other.name == home.name or other.site != home.site:
            continue
        flows = policy.allowed_between(home.name, other.name)
        flow_tcp = {p for f in flows if f.proto == "tcp" for p in f.ports}
        flow_udp = {p for f in flows if f.proto == "udp" for p in f.ports}
        addresses = sorted(by_zone.get(other.name, set()) | set(other.reference_targets),
                           key=_address_order)
        for ip in addresses:
            tcp = sorted(set(policy.tcp_ports) | flow_tcp | known.get(ip, set()))[
                :wire.MAX_PLAN_PORTS]
            udp = sorted(set(policy.udp_ports) | flow_udp)[:wire.MAX_PLAN_PORTS]
            targets.append(wire.PlanTarget(ip=ip, zone=other.name, tcp=tuple(tcp),
                                           udp=tuple(udp), icmp=True))
    now = now or datetime.now(UTC)
    return wire.ProbePlan(id=uuid.uuid4().hex, sensor=sensor, org=org, zone=home.name,
                          issued_at=wire.format_ts(now), expires_at=wire.format_ts(now + PLAN_VALID),
                          targets=tuple(targets[:wire.MAX_PLAN_TARGETS]),
                          global_pps=policy.probe_pps, host_pps=policy.probe_host_pps,
                          timeout_s=policy.probe_timeout_s)


def empty_plan_cause(policy: Policy, zone: Zone) -> str:
    """Why a plan for a sensor in ``zone`` has no target, in words for the log."""
    others = [z.name for z in policy.zones if z.site == zone.site and z.name != zone.name]
    if not others:
        return f"zone {zone.name} is the only zone of site {zone.site} in the policy"
    return (f"no assets are known yet in the other zones of {zone.site} "
            f"({', '.join(others)}) and none of them lists reference_targets: it is rebuilt "
            "when their sensors report")


def _address_order(address: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(address)
    return ip.version, int(ip)


def issue_plan(db: Database, policy: Policy, sensor: str, key: OKPKey, *,
               by_hand: bool = False, plan: wire.ProbePlan | None = None,
               zone: str | None = None) -> tuple[wire.ProbePlan, bytes]:
    """Sign a plan (built now for ``zone``, unless one is given) and record it; the running
    service sends it to the sensor, unless it is handed over ``by_hand`` (as a file for
    'netvagt-agent reach')."""
    plan = plan or plan_for(db, policy, sensor, zone=zone)
    token = signing.sign(plan.encode(), key, kid=signing.CENTRAL_KID, typ=signing.TYPE_PLAN)
    db.execute("INSERT INTO plans (id, sensor_id, zone, issued_at, expires_at, targets, token,"
               " sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               [plan.id, sensor, plan.zone, plan.issued_at, plan.expires_at, len(plan.targets),
                token.decode(), plan.issued_at if by_hand else None])
    return plan, token

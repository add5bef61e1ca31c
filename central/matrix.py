"""The zone-by-zone reachability matrix: what the policy allows, what the sensors reached."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from central.detectors import latest_reach
from central.policy import Policy

# per (from zone, to zone): allowed (flow descriptions), reached and denied_reached (services),
# probed (how many probe results)
Cells = dict[tuple[str, str], dict[str, Any]]


def matrix(db: Database, policy: Policy) -> Cells:
    """Per (from zone, to zone) of one site: what the policy allows and what the sensors
    reached (sites are separate address spaces: no cell joins two)."""
    cells: Cells = {}
    for source in policy.zones:
        for target in policy.zones:
            if source.name != target.name and source.site == target.site:
                cells[(source.name, target.name)] = {
                    "allowed": sorted(f.describe() for f in policy.allowed_between(source.name,
                                                                                   target.name)),
                    "reached": set(), "denied_reached": set(), "probed": 0}
    for result in latest_reach(db, policy.org):
        into = policy.zone_of(result["ip"], policy.site_of(result["source_zone"]))
        if into is None or (result["source_zone"], into.name) not in cells:
            continue
        cell = cells[(result["source_zone"], into.name)]
        cell["probed"] += 1
        if result["state"] != "reachable":
            continue
        service = "icmp" if result["proto"] == "icmp" else f"{result['proto']}/{result['port']}"
        cell["reached"].add(service)
        if not policy.allows(result["source_zone"], into.name, result["proto"], result["port"]):
            cell["denied_reached"].add(service)
    return cells

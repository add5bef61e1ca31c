"""The central's views for a terminal and as JSON: the inventory, sensors, message counts,
violations, the reachability matrix and the policy's summary. One home for the command
line, the demo and (later) the console's API.

Every device-supplied text is escaped for rich's markup: a banner holding ``[bold]`` is
shown as typed, not obeyed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from rich.markup import escape
from rich.table import Table

from agent import terminal
from central import inventory
from central.matrix import Cells
from central.policy import Policy
from central.registry import SensorRecord
from central.violations import ViolationRow


def record(row: object) -> dict[str, Any]:
    """A frozen record (a sensor, a violation) as a JSON object."""
    assert dataclasses.is_dataclass(row) and not isinstance(row, type)
    return dataclasses.asdict(row)


def events_table(found: Iterable[Any], *, title: str) -> Table:
    """Events, oldest first; their titles carry device-supplied text, escaped."""
    rows = list(found)
    table = terminal.table(f"{title}: {len(rows)}", ("id", "at", "kind", "severity", "site",
                                                     "zone", "what"))
    for e in rows:
        table.add_row(str(e.id), e.at[:19], e.kind, e.severity, escape(e.site or ""),
                      escape(e.zone or ""), escape(e.title))
    return table


def digest_table(body: Mapping[str, Any]) -> Table:
    """A digest as the e-mail would tell it: how many of each kind, then what matters."""
    table = terminal.table(f"Digest for {body['org']} {body['day']}: "
                           + (", ".join(f"{n} {k}" for k, n in sorted(body["counts"].items()))
                              or "nothing new"), ("severity", "kind", "what"))
    for event in body["events"]:
        table.add_row(event["severity"], event["kind"], escape(event["title"]))
    return table


def vulns_table(listing: list[dict[str, Any]]) -> Table:
    """The assets with known vulnerabilities, one line per CVE."""
    table = terminal.table(f"Known vulnerabilities: {len(listing)}", (
        "asset", "addresses", "CVE", "CVSS", "KEV", "status", "CPE"))
    for v in listing:
        table.add_row(str(v["asset"]), escape(" ".join(v["addresses"])), escape(v["cve"]),
                      "" if v["cvss"] is None else f"{v['cvss']:.1f}",
                      "exploited" if v["kev"] else "", v["status"].replace("_", " "),
                      escape(v["cpe"] or ""))
    return table


def assets_table(rows: list[inventory.AssetRow]) -> Table:
    table = terminal.table(f"Inventory: {len(rows)} assets", (
        "site", "address", "MAC", "vendor (OUI)", "type", "identified as", "named by",
        "open ports", "services"))
    for r in rows:
        vendor = "(random MAC)" if r.mac_random else (r.mac_vendor or "")
        services = ", ".join(inventory.service_label(s) for s in r.services if s.state == "open")
        table.add_row(
            escape(r.site),
            escape(" ".join(r.addresses)),
            escape(r.mac or "-"),
            escape(vendor),
            escape(r.device_type or ""),
            escape(r.identified_as if r.device_type or r.vendor else ""),
            escape(r.named_by),
            escape(" ".join(r.open_ports)),
            escape(services),
        )
    return table


def sensors_table(rows: Iterable[SensorRecord]) -> Table:
    table = terminal.table("Sensors", ("sensor", "org", "site", "zone", "registration",
                                       "state", "last status", "last scan", "outbox",
                                       "last message"))
    for r in rows:
        table.add_row(*(escape(str(v if v is not None else "")) for v in
                        (r.id, r.org, r.site, r.zone, r.status, r.state, r.last_status_at,
                         r.last_scan_at, r.outbox_depth, r.last_message_at)))
    return table


def counts_table(tally: Mapping[str, int]) -> Table:
    table = terminal.table("Messages by outcome", ("outcome", "count"))
    for reason, count in sorted(tally.items()):
        table.add_row(escape(reason), str(count))
    return table


def violations_table(rows: list[ViolationRow], *, title: str | None = None,
                     detail: bool = True) -> Table:
    """Violations; ``detail`` adds status, evidence and when last seen."""
    columns = ("id", "kind", "severity", "status", "zones", "what", "evidence", "last seen") \
        if detail else ("id", "kind", "severity", "zones", "what")
    table = terminal.table(title or f"Violations: {len(rows)}", columns)
    for row in rows:
        zones = row.zone or ""
        if row.other_zone:
            zones += f" -> {row.other_zone}"
        if detail:
            table.add_row(str(row.id), row.kind, row.severity, row.status, escape(zones),
                          escape(row.title), escape(row.evidence_summary(3)), row.last_seen[:19])
        else:
            table.add_row(str(row.id), row.kind, row.severity, escape(zones), escape(row.title))
    return table


def matrix_json(cells: Cells) -> list[dict[str, Any]]:
    return [{"from": a, "to": b, "allowed": c["allowed"], "reached": sorted(c["reached"]),
             "denied_reached": sorted(c["denied_reached"]), "probed": c["probed"]}
            for (a, b), c in cells.items()]


def matrix_table(cells: Cells, policy: Policy) -> Table:
    """The zone-by-zone matrix for a terminal: rows reach columns."""
    table = Table(title="Reachability: rows reach columns (policy allows / sensors reached)",
                  show_lines=True)
    table.add_column("from \\ to")
    names = [z.name for z in policy.zones]
    for name in names:
        table.add_column(name, overflow="fold")
    for source in names:
        line = [source]
        for target in names:
            cell = cells.get((source, target))
            line.append("-" if source == target else
                        "[dim]other site[/]" if cell is None else _matrix_cell(cell))
        table.add_row(*line)
    return table


def _matrix_cell(cell: dict[str, Any]) -> str:
    allowed = ", ".join(cell["allowed"]) or "deny"
    seen = (", ".join(sorted(cell["reached"])) or "nothing") if cell["probed"] else "not probed"
    if cell["denied_reached"]:
        mark = "[bold red]VIOLATION[/] " + ", ".join(sorted(cell["denied_reached"]))
    else:
        mark = "ok" if cell["probed"] else ""
    return f"allows: {escape(allowed)}\nreached: {escape(seen)}\n{mark}"


def policy_json(policy: Policy, source: str) -> dict[str, Any]:
    return {"policy": source, "ok": True, "org": policy.org, "sites": list(policy.sites),
            "zones": [{"name": z.name, "site": z.site, "cidrs": list(z.cidrs),
                       "criticality": z.criticality,
                       "allowed_types": list(z.allowed_types or ()) or None,
                       "gateways": list(z.gateways)} for z in policy.zones],
            "flows": len(policy.flows)}

"""Exports for the municipality's risk register: assets and violations as CSV, XLSX or JSON.

One function per format over the same rows (:func:`export`), so the CLI and a later web
console produce the same files. Column headings are bilingual ("Zone / Zone", "Adresser /
Addresses"). Every value a device could have written is untrusted: a value a spreadsheet
would read as a formula (= + - @, tab, carriage return) is neutralised with a leading
apostrophe in CSV and XLSX, and XLSX cells are written as text, never as formulas.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from sqlite_utils import Database

from central import detectors, inventory, violations
from central.policy import Policy

FORMATS = ("csv", "xlsx", "json")
WHAT = ("assets", "violations", "register")

# (key, Danish heading, English heading)
ASSET_COLUMNS = (
    ("site", "Lokation", "Site"),
    ("zone", "Zone", "Zone"),
    ("addresses", "Adresser", "Addresses"),
    ("mac", "MAC-adresse", "MAC address"),
    ("vendor", "Producent", "Vendor"),
    ("model", "Model", "Model"),
    ("version", "Firmware", "Firmware"),
    ("device_type", "Enhedstype", "Device type"),
    ("hostname", "Værtsnavn", "Host name"),
    ("open_ports", "Åbne porte", "Open ports"),
    ("services", "Tjenester", "Services"),
    ("vulnerabilities", "Kendte sårbarheder", "Known vulnerabilities"),
    ("first_seen", "Først set", "First seen"),
    ("last_seen", "Sidst set", "Last seen"),
    ("nis2", "NIS2-foranstaltning", "NIS2 measure"),
)
VIOLATION_COLUMNS = (
    ("id", "ID", "ID"),
    ("kind", "Type", "Kind"),
    ("severity", "Alvor", "Severity"),
    ("status", "Status", "Status"),
    ("site", "Lokation", "Site"),
    ("zone", "Zone", "Zone"),
    ("other_zone", "Anden zone", "Other zone"),
    ("title", "Beskrivelse", "Description"),
    ("evidence", "Dokumentation", "Evidence"),
    ("banner", "Banner", "Banner"),
    ("decision", "Beslutning", "Reviewer decision"),
    ("reviewer", "Behandlet af", "Reviewer"),
    ("accepted_until", "Accepteret til", "Accepted until"),
    ("first_seen", "Først set", "First seen"),
    ("last_seen", "Sidst set", "Last seen"),
    ("nis2", "NIS2-foranstaltning", "NIS2 measure"),
)


def heading(column: tuple[str, str, str]) -> str:
    return f"{column[1]} / {column[2]}"


def asset_records(db: Database, policy: Policy | None = None, *, site: str | None = None,
                  zone: str | None = None) -> list[dict[str, Any]]:
    from central import vulns

    known = vulns.of_assets(db)
    placed = detectors.automatic_zones(db, policy) if policy else {}
    out = []
    for row in inventory.assets(db, site=site):
        zones = sorted(detectors.zones_of(policy, placed, row.id, row.addresses, row.site)
                       if policy else ())
        if zone and zone not in zones:
            continue
        out.append({
            "site": row.site, "zone": " ".join(zones), "addresses": " ".join(row.addresses),
            "mac": row.mac or "", "vendor": row.vendor or row.mac_vendor or "",
            "model": row.model or row.product or "", "version": row.version or "",
            "device_type": row.device_type or "", "hostname": row.hostname or "",
            "open_ports": " ".join(row.open_ports),
            "services": "; ".join(inventory.service_label(s) for s in row.services
                                  if s.state == "open"),
            "vulnerabilities": "; ".join(
                v["cve"] + (" (KEV)" if v["kev"] else "")
                + (" possibly" if v["status"] == vulns.POSSIBLY else "")
                for v in known.get(row.id, [])),
            "first_seen": row.first_seen, "last_seen": row.last_seen,
            "nis2": "asset management",
        })
    return out


def violation_records(db: Database, *, site: str | None = None, zone: str | None = None,
                      statuses: Sequence[str] | None = None) -> list[dict[str, Any]]:
    out = []
    for row in violations.violations(db, statuses=statuses, site=site, zone=zone):
        decision = row.status
        if row.decision_reason:
            decision += f": {row.decision_reason}"
        out.append({
            "id": row.id, "kind": row.kind, "severity": row.severity, "status": row.status,
            "site": row.site or "", "zone": row.zone or "", "other_zone": row.other_zone or "",
            "title": row.title, "evidence": row.evidence_summary(), "decision": decision,
            "banner": next((e["banner"] for e in row.evidence if e.get("banner")), ""),
            "reviewer": row.reviewer or "", "accepted_until": row.accepted_until or "",
            "first_seen": row.first_seen, "last_seen": row.last_seen, "nis2": row.nis2,
            "evidence_items": row.evidence, "history": row.history,
        })
    return out


def to_csv(records: list[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(heading(c) for c in columns)
    for record in records:
        writer.writerow(inventory.neutralise(_cell(record.get(c[0]))) for c in columns)
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # the BOM makes Excel read UTF-8


def to_xlsx(records: list[dict[str, Any]], columns: Sequence[tuple[str, str, str]],
            title: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]
    sheet.append([heading(c) for c in columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for number, record in enumerate(records, start=2):
        for index, column in enumerate(columns, start=1):
            value = inventory.neutralise(_cell(record.get(column[0])))
            cell = sheet.cell(row=number, column=index)
            cell.value = value
            if isinstance(value, str):
                cell.data_type = "s"  # text, whatever it looks like
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def to_json(records: list[dict[str, Any]]) -> bytes:
    return json.dumps(records, indent=2, ensure_ascii=False).encode("utf-8")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return value
    # control characters other than tab/newline have no place in a spreadsheet cell
    return "".join(ch if ch.isprintable() or ch in "\n" else " " for ch in str(value))


def export(db: Database, what: str, fmt: str, *, policy: Policy | None = None,
           site: str | None = None, zone: str | None = None, language: str = "da",
           status: str = "open", by: str | None = None) -> bytes:
    """``what`` is 'assets', 'violations' or 'register' (the risk register, in ``language``,
    the rows of ``status``); ``fmt`` one of :data:`FORMATS`. ``by``: who exports, for the
    audit log."""
    if by is not None:
        from central import audit

        audit.exported(db, actor=by, what=what, orgs=[policy.org if policy else None],
                       format=fmt, site=site, zone=zone, status=status, language=language)
    columns: Sequence[tuple[str, str, str]]
    if what == "register":
        from central import register

        rows = [r for r in register.rows(db, policy, language=language, status=status,
                                         site=site) if not zone or r["zone"] == zone]
        if fmt == "xlsx":
            return register.to_xlsx(rows, language=language)
        if fmt == "csv":
            return register.to_csv(rows, language=language)
        return to_json(rows)
    if what == "assets":
        records, columns = asset_records(db, policy, site=site, zone=zone), ASSET_COLUMNS
    elif what == "violations":
        records = violation_records(db, site=site, zone=zone, statuses=None)
        columns = VIOLATION_COLUMNS
    else:
        raise ValueError(f"nothing to export called {what!r}")
    if fmt == "csv":
        return to_csv(records, columns)
    if fmt == "xlsx":
        return to_xlsx(records, columns, what)
    if fmt == "json":
        return to_json(records)
    raise ValueError(f"unknown format {fmt!r}: one of {FORMATS}")

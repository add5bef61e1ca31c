"""The risk register: one row per violation the team still has to handle, in the words and
columns a municipality's risk register uses, in Danish or English.

Each row carries the asset and its owner (see :mod:`central.ownership`), the site
and zone, the threat and the vulnerability in words, the evidence, a likelihood and a
consequence (1 to 5) and the risk level they make, a proposed measure, the person
responsible, a deadline and a status, and the NIS2 measure the row supports. Likelihood,
consequence and risk start from the violation's kind and its zone's criticality; the team
can set any of them, and the measure, the person and the deadline, per row
(:func:`assess`), and that choice is kept across evaluations.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlite_utils import Database

from agent import wire
from central import violations
from central.db import immediate
from central.policy import Policy

LANGUAGES = ("da", "en")
STATUS_FILTERS = {"open": ("open", "acknowledged"), "accepted": ("accepted",),
                  "all": violations.STATUSES}

# per kind: (likelihood, consequence) before the zone's criticality, and the words
DEFAULTS: dict[str, tuple[int, int]] = {
    "unexpected_flow": (4, 3), "management_exposure": (3, 4), "bridging_device": (3, 4),
    "misplaced_device": (3, 3), "insecure_service": (4, 3), "unknown_device": (2, 2),
    "unapproved_device": (3, 2), "vulnerable_device": (3, 4), "rogue_router": (3, 4),
    "vlan_leak": (2, 4),
}
CRITICALITY_STEP = {"low": -1, "medium": 0, "high": 1, "critical": 1}
DEADLINE_DAYS = {"kritisk": 14, "høj": 30, "middel": 90, "lav": 180}

WORDS: dict[str, dict[str, dict[str, str]]] = {
    "threat": {
        "da": {"unexpected_flow": "Uautoriseret adgang mellem zoner",
               "management_exposure": "Angreb på netværksudstyrets administration",
               "bridging_device": "Omgåelse af segmenteringen gennem en enhed i to zoner",
               "misplaced_device": "Enhed i en zone, hvor den ikke hører hjemme",
               "insecure_service": "Aflytning af adgangskoder og overtagelse af enheden",
               "unknown_device": "Ukendt enhed på netværket",
               "unapproved_device": "Enhed, der ikke er godkendt",
               "vulnerable_device": "Udnyttelse af en kendt sårbarhed",
               "rogue_router": "Trafik omdirigeret gennem en uautoriseret router",
               "vlan_leak": "Adgang til et andet VLAN fra en netværksport (VLAN-hopping)"},
        "en": {"unexpected_flow": "Unauthorised access between zones",
               "management_exposure": "Attack on network equipment's management",
               "bridging_device": "Segmentation bypassed through a device in two zones",
               "misplaced_device": "A device in a zone it does not belong in",
               "insecure_service": "Credentials sniffed and the device taken over",
               "unknown_device": "An unknown device on the network",
               "unapproved_device": "A device nobody approved",
               "vulnerable_device": "Exploitation of a known vulnerability",
               "rogue_router": "Traffic diverted through an unauthorised router",
               "vlan_leak": "Another VLAN reached from a network socket (VLAN hopping)"}},
    "measure": {
        "da": {"unexpected_flow": "Luk trafikken i firewallen, eller tillad den i zonepolitikken",
               "management_exposure": "Begræns administrationen til administrationszonen",
               "bridging_device": "Fjern enhedens forbindelse til den ene zone",
               "misplaced_device": "Flyt enheden til den rette zone",
               "insecure_service": "Slå tjenesten fra, eller brug en krypteret",
               "unknown_device": "Identificér enheden og dens ejer",
               "unapproved_device": "Godkend enheden med ejer, eller fjern den",
               "vulnerable_device": "Opdatér firmwaren, eller isolér enheden",
               "rogue_router": "Fjern enheden eller slå dens IPv6-routerannoncer og "
                               "DHCP-server fra; slå RA Guard, DHCP snooping og Dynamic "
                               "ARP Inspection til på switchen",
               "vlan_leak": "Gør porten til en access-port i sit eget VLAN uden "
                            "trunk-forhandling (DTP fra); tillad kun et planlagt tale-VLAN "
                            "(zonens tagged_vlans)"},
        "en": {"unexpected_flow": "Close the flow in the firewall, or allow it in the policy",
               "management_exposure": "Restrict management to the management zone",
               "bridging_device": "Remove the device's connection to one of the zones",
               "misplaced_device": "Move the device to the right zone",
               "insecure_service": "Turn the service off, or use an encrypted one",
               "unknown_device": "Identify the device and its owner",
               "unapproved_device": "Approve the device with an owner, or remove it",
               "vulnerable_device": "Update the firmware, or isolate the device",
               "rogue_router": "Remove the device or turn its IPv6 router advertisements "
                               "and DHCP server off; turn RA Guard, DHCP snooping and "
                               "Dynamic ARP Inspection on at the switch",
               "vlan_leak": "Make the port an access port of its own VLAN with trunk "
                            "negotiation (DTP) off; allow only a planned voice VLAN on it "
                            "(the zone's tagged_vlans)"}},
    "status": {
        "da": {"open": "Åben", "acknowledged": "Kvitteret", "accepted": "Risiko accepteret",
               "false_positive": "Falsk positiv", "resolved": "Løst"},
        "en": {"open": "Open", "acknowledged": "Acknowledged", "accepted": "Risk accepted",
               "false_positive": "False positive", "resolved": "Resolved"}},
    "level": {
        "da": {"kritisk": "Kritisk", "høj": "Høj", "middel": "Middel", "lav": "Lav"},
        "en": {"kritisk": "Critical", "høj": "High", "middel": "Medium", "lav": "Low"}},
    "nis2": {
        "da": {"network segmentation": "Netværkssegmentering (art. 21, stk. 2, litra a og e)",
               "secure configuration": "Sikker konfiguration (art. 21, stk. 2, litra e)",
               "asset management": "Aktivstyring (art. 21, stk. 2, litra i)",
               "vulnerability handling": "Håndtering af sårbarheder (art. 21, stk. 2, litra e)"},
        "en": {"network segmentation": "Network segmentation (Art. 21(2)(a) and (e))",
               "secure configuration": "Secure configuration (Art. 21(2)(e))",
               "asset management": "Asset management (Art. 21(2)(i))",
               "vulnerability handling": "Vulnerability handling (Art. 21(2)(e))"}},
}

# (key, Danish heading, English heading, width in characters)
COLUMNS = (
    ("id", "ID", "ID", 6), ("asset", "Aktiv", "Asset", 40), ("owner", "Ejer", "Owner", 20),
    ("site", "Lokation", "Site", 16), ("zone", "Zone", "Zone", 14),
    ("threat", "Trussel", "Threat", 40), ("vulnerability", "Sårbarhed", "Vulnerability", 60),
    ("evidence", "Dokumentation", "Evidence", 60),
    ("likelihood", "Sandsynlighed (1-5)", "Likelihood (1-5)", 12),
    ("consequence", "Konsekvens (1-5)", "Consequence (1-5)", 12),
    ("risk", "Risikoniveau", "Risk level", 12), ("measure", "Foreslået tiltag",
                                                 "Proposed measure", 50),
    ("responsible", "Ansvarlig", "Responsible", 20), ("deadline", "Frist", "Deadline", 12),
    ("status", "Status", "Status", 16), ("first_seen", "Først set", "First seen", 12),
    ("nis2", "NIS2-foranstaltning", "NIS2 measure", 40),
)
DATE_COLUMNS = ("deadline", "first_seen")


class RegisterError(ValueError):
    """An assessment that cannot be recorded (unknown id, a score outside 1 to 5)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Assessment:
    likelihood: int | None = None
    consequence: int | None = None
    measure: str | None = None
    responsible: str | None = None
    deadline: str | None = None  # YYYY-MM-DD


def level(likelihood: int, consequence: int) -> str:
    score = likelihood * consequence
    return "kritisk" if score >= 20 else "høj" if score >= 12 else "middel" if score >= 6 \
        else "lav"


def default_scores(kind: str, criticality: str | None) -> tuple[int, int]:
    likelihood, consequence = DEFAULTS.get(kind, (3, 3))
    step = CRITICALITY_STEP.get(criticality or "medium", 0)
    return likelihood, max(1, min(5, consequence + step))


def assess(db: Database, violation_id: int, change: Assessment, *, by: str) -> None:
    """Record the team's own likelihood, consequence, measure, person or deadline for one
    row; what is not given stays as it was. The audit log names who."""
    from central import audit

    for name in ("likelihood", "consequence"):
        value = getattr(change, name)
        if value is not None and not 1 <= value <= 5:
            raise RegisterError(f"{name} {value} is not between 1 and 5")
    if change.deadline is not None:
        try:
            date.fromisoformat(change.deadline)
        except ValueError:
            raise RegisterError(f"deadline {change.deadline!r} is not a date (YYYY-MM-DD)") \
                from None
    with immediate(db):
        found = db.execute("SELECT org FROM violations WHERE id = ?", [violation_id]).fetchone()
        if found is None:
            raise RegisterError(f"no violation {violation_id}")
        audit.record(db, actor=by, action="register.assess", org=found[0],
                     violation=violation_id, **{k: v for k, v in dataclasses.asdict(
                         change).items() if v is not None})
        # what is not given (None) keeps what the row had
        db.execute(
            "INSERT INTO register_entries (violation_id, likelihood, consequence, measure,"
            " responsible, deadline, updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (violation_id) DO UPDATE SET"
            " likelihood = coalesce(excluded.likelihood, likelihood),"
            " consequence = coalesce(excluded.consequence, consequence),"
            " measure = coalesce(excluded.measure, measure),"
            " responsible = coalesce(excluded.responsible, responsible),"
            " deadline = coalesce(excluded.deadline, deadline),"
            " updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            [violation_id, change.likelihood, change.consequence, change.measure,
             change.responsible, change.deadline, by, wire.utc_now()])


def rows(db: Database, policy: Policy | None = None, *, language: str = "da",
         status: str = "open", site: str | None = None, orgs: Iterable[str] | None = None,
         ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """The register's rows, worst risk first; only these organisations' or violations' when
    given."""
    if language not in LANGUAGES:
        raise RegisterError(f"language {language!r} is not one of {LANGUAGES}")
    words = {part: table[language] for part, table in WORDS.items()}
    chosen, _ = violations.select(db, statuses=STATUS_FILTERS[status], site=site, orgs=orgs,
                                  ids=ids)
    wanted = json.dumps([v.id for v in chosen])
    entries = {r["violation_id"]: dict(r) for r in db.query(
        "SELECT * FROM register_entries WHERE violation_id IN (SELECT value FROM json_each(?))",
        [wanted])}
    asset_ids = sorted({v.asset_id for v in chosen if v.asset_id is not None})
    assets = {r["id"]: dict(r) for r in db.query(
        "SELECT a.id, a.mac, a.vendor, a.model, a.product, a.device_type, a.mac_vendor,"
        " (SELECT min(ip) FROM addresses d WHERE d.asset_id = a.id AND d.kind = 'probed')"
        " AS ip FROM assets a WHERE a.id IN (SELECT value FROM json_each(?))",
        [json.dumps(asset_ids)])}
    from central import ownership

    owners = ownership.of_assets(db, policy, ids=asset_ids)
    out = []
    for v in chosen:
        zone = policy.zone(v.zone) if policy and v.zone and v.zone in {
            z.name for z in policy.zones} else None
        likelihood, consequence = default_scores(v.kind, zone.criticality if zone else None)
        entry = entries.get(v.id, {})
        likelihood = entry.get("likelihood") or likelihood
        consequence = entry.get("consequence") or consequence
        risk = level(likelihood, consequence)
        asset = assets.get(v.asset_id or -1, {})
        owner = (owners[v.asset_id].owner or "") if v.asset_id in owners else ""
        first = v.first_seen[:10]
        deadline = entry.get("deadline") or (
            date.fromisoformat(first) + timedelta(days=DEADLINE_DAYS[risk])).isoformat()
        out.append({
            "id": v.id, "asset": _asset_label(asset), "owner": owner, "site": v.site or "",
            "zone": v.zone or "", "threat": words["threat"].get(v.kind, v.kind),
            "vulnerability": v.title, "evidence": v.evidence_summary(),
            "likelihood": likelihood, "consequence": consequence,
            "risk": words["level"][risk], "risk_order": list(DEADLINE_DAYS).index(risk),
            "measure": entry.get("measure") or words["measure"].get(v.kind, ""),
            "responsible": entry.get("responsible") or owner, "deadline": deadline,
            "status": words["status"][v.status], "first_seen": first,
            "nis2": words["nis2"].get(v.nis2, v.nis2), "kind": v.kind,
        })
    out.sort(key=lambda r: (r["risk_order"], r["deadline"], r["id"]))
    return out


def _asset_label(asset: dict[str, Any]) -> str:
    if not asset:
        return ""
    what = " ".join(p for p in (asset.get("vendor") or asset.get("mac_vendor"),
                                asset.get("model") or asset.get("product")) if p)
    return " ".join(p for p in (asset.get("device_type") or "", asset.get("ip") or "",
                                f"({what})" if what else "") if p)


def headings(language: str) -> list[str]:
    return [c[1] if language == "da" else c[2] for c in COLUMNS]


def to_xlsx(records: list[dict[str, Any]], *, language: str) -> bytes:
    """The register as a workbook: real date cells, an autofilter, column widths, a frozen
    header, every text cell written as text and formula-safe."""
    import io

    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    from central.inventory import neutralise

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Risikoregister" if language == "da" else "Risk register"
    sheet.append(headings(language))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for number, record in enumerate(records, start=2):
        for index, (key, *_rest) in enumerate(COLUMNS, start=1):
            cell = sheet.cell(row=number, column=index)
            value = record.get(key)
            if key in DATE_COLUMNS and value:
                cell.value = date.fromisoformat(value)
                cell.number_format = "yyyy-mm-dd"
            elif isinstance(value, int):
                cell.value = value
            else:
                text = neutralise(_clean(value))
                cell.value = text
                cell.data_type = "s"  # text, whatever it looks like
    for index, column in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = column[3]
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{max(1, len(records) + 1)}"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _clean(value: object) -> str:
    if value is None:
        return ""
    return "".join(ch if ch.isprintable() or ch == "\n" else " " for ch in str(value))


def to_csv(records: list[dict[str, Any]], *, language: str) -> bytes:
    import csv
    import io

    from central.inventory import neutralise

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headings(language))
    for record in records:
        writer.writerow(neutralise(_clean(record.get(c[0]))) if not isinstance(
            record.get(c[0]), int) else record.get(c[0]) for c in COLUMNS)
    return ("\ufeff" + out.getvalue()).encode("utf-8")

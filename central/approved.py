"""The municipality's list of approved assets, imported from its own register (CSV).

Columns, in any order, with a header line: ``mac`` and/or ``address`` (at least one per
row), ``owner`` and ``type`` (optional; a type must be one of netvagt's device types).
Danish headers work too (``adresse``, ``ejer``). An import replaces the site's list as a
whole, in one transaction, and every problem is reported with its line before anything is
written. A device the sensors see at a site that has a list, and that is on none of its
lines (by MAC, else by address), becomes an ``unapproved_device`` violation.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from agent import wire
from central import registry

MAX_FILE_BYTES = 20 * 1024 * 1024  # a municipality's register, with room to spare
MAX_ROWS = 100_000
MAX_OWNER_CHARS = 256
_MAC_RE = re.compile(r"^([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?"
                     r"([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})$")
HEADERS = {"mac": "mac", "address": "ip", "adresse": "ip", "ip": "ip", "owner": "owner",
           "ejer": "owner", "type": "device_type", "enhedstype": "device_type"}


class ApprovedListError(ValueError):
    """Every problem of a file that was not imported, one per line, with its line number."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True, kw_only=True)
class Approved:
    mac: str | None
    ip: str | None
    owner: str | None
    device_type: str | None


def parse(text: str, path: str = "<csv>") -> list[Approved]:
    """The rows of an approved-assets CSV; raises ApprovedListError with every problem."""
    from fingerprints.rules import vocabulary

    types = vocabulary().device_types
    sample = text[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = [h.strip().lower().lstrip("\ufeff") for h in next(reader)]
    except StopIteration:
        raise ApprovedListError([f"{path}:1: the file is empty"]) from None
    columns = {i: HEADERS[h] for i, h in enumerate(header) if h in HEADERS}
    if not {"mac", "ip"} & set(columns.values()):
        raise ApprovedListError([f"{path}:1: no 'mac' or 'address' column (header: "
                            f"{', '.join(header)[:200]})"])
    rows: list[Approved] = []
    problems: list[str] = []
    for line, record in enumerate(reader, start=2):
        if len(rows) >= MAX_ROWS:
            problems.append(f"{path}:{line}: more than {MAX_ROWS} rows")
            break
        if not any(cell.strip() for cell in record):
            continue
        values = {name: record[i].strip() for i, name in columns.items() if i < len(record)}
        row = _row(values, types)
        if isinstance(row, str):
            problems.append(f"{path}:{line}: {row}")
        else:
            rows.append(row)
    if problems:
        raise ApprovedListError(problems[:50] + ([f"... {len(problems) - 50} more"]
                                            if len(problems) > 50 else []))
    return rows


def _row(values: dict[str, str], types: frozenset[str]) -> Approved | str:
    """One line's approved asset, or what is wrong with it."""
    mac = values.get("mac") or None
    if mac is not None:
        found = _MAC_RE.match(mac.lower())
        if found is None:
            return f"{mac[:40]!r} is not a MAC address"
        mac = ":".join(found.groups())
    ip = values.get("ip") or None
    if ip is not None:
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            return f"{ip[:40]!r} is not an IP address"
    if mac is None and ip is None:
        return "neither a MAC nor an address"
    device_type = values.get("device_type") or None
    if device_type is not None and device_type not in types:
        return f"{device_type[:40]!r} is not a device type (see fingerprints/vocabulary.toml)"
    owner = wire.printable(values.get("owner") or "", limit=MAX_OWNER_CHARS) or None
    return Approved(mac=mac, ip=ip, owner=owner, device_type=device_type)


def import_file(db: Database, path: Path, *, org: str, site: str) -> int:
    """Replace a site's approved list with the file's rows; returns how many."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ApprovedListError([f"{path}: larger than {MAX_FILE_BYTES} bytes"])
    text = path.read_bytes().decode("utf-8-sig", "replace")
    rows = parse(text, str(path))
    now = wire.utc_now()
    with db.atomic():
        site_id = registry.ensure_site(db, org, site)
        db.execute("DELETE FROM approved_assets WHERE site_id = ?", [site_id])
        db.conn.executemany(
            "INSERT INTO approved_assets (site_id, mac, ip, owner, device_type, imported_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(site_id, r.mac, r.ip, r.owner, r.device_type, now) for r in rows])
    return len(rows)


def approved_by_site(db: Database, org: str | None = None
                     ) -> dict[str, tuple[set[str], set[str]]]:
    """{site name: (approved MACs, approved addresses)} for the sites that have a list (of
    ``org`` when given: site names repeat between municipalities)."""
    out: dict[str, tuple[set[str], set[str]]] = {}
    for row in db.query("SELECT s.name AS site, a.mac, a.ip FROM approved_assets a"
                        " JOIN sites s ON s.id = a.site_id WHERE ? IS NULL OR s.org_id = ?",
                        [org, org]):
        macs, ips = out.setdefault(row["site"], (set(), set()))
        if row["mac"]:
            macs.add(row["mac"])
        if row["ip"]:
            ips.add(row["ip"])
    return out

"""Reading the inventory: assets with their addresses and services, for the CLI and exports."""

from __future__ import annotations

import csv
import io
import ipaddress
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlite_utils import Database

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may run as a formula


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRow:
    ip: str
    proto: str
    port: int
    state: str
    name: str | None
    product: str | None
    version: str | None
    extrainfo: str | None
    banner: str | None
    source: str | None = None  # who named it: "nmap", or the probe ("tcp", "udp")


@dataclass(frozen=True, slots=True, kw_only=True)
class AssetRow:
    id: int
    org: str
    site: str
    mac: str | None
    mac_vendor: str | None
    mac_random: bool
    hostname: str | None
    addresses: tuple[str, ...]
    first_seen: str
    last_seen: str
    services: tuple[ServiceRow, ...] = field(default_factory=tuple)
    device_type: str | None = None
    vendor: str | None = None  # as identified by the fingerprint rules
    product: str | None = None
    model: str | None = None
    version: str | None = None
    os: str | None = None
    identity_confidence: float | None = None
    identity_evidence: tuple[dict[str, Any], ...] = ()
    claimed: tuple[str, ...] = ()  # addresses the device names but did not answer from
    cpe: str | None = None  # as a fingerprint database named it
    # known vulnerabilities matched to its product and version (central.vulns), worst first
    vulnerabilities: tuple[dict[str, Any], ...] = ()
    owner: str | None = None  # central.ownership: the asset's own, a rule's, the approved list's
    tags: tuple[str, ...] = ()
    notes: str | None = None

    @property
    def identified_as(self) -> str:
        parts = [self.vendor or self.mac_vendor or "", self.model or self.product or "",
                 self.version or ""]
        return " ".join(p for p in parts if p)

    @property
    def named_by(self) -> str:
        """Which evidence named the device ('snmp.sysdescr (recog)'), or ''."""
        from fingerprints.classify import named_by

        return named_by(self.identity_evidence, self.device_type, self.vendor) or ""

    @property
    def open_ports(self) -> list[str]:
        return [f"{s.port}/{s.proto}" for s in self.services if s.state == "open"]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["addresses"] = list(self.addresses)
        data["open_ports"] = self.open_ports
        data["named_by"] = self.named_by
        return data


def _ip_key(ip: str) -> tuple[int, int]:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return (9, 0)
    return (address.version, int(address))


def assets(db: Database, *, site: str | None = None) -> list[AssetRow]:
    """Every asset with its probed addresses and services, ordered by site then address."""
    rows, _ = find(db, AssetQuery(site=site or ""))
    return rows


@dataclass(frozen=True, slots=True, kw_only=True)
class AssetQuery:
    """Which assets: of these organisations (None: all), and filtered as the console's asset
    list is (an empty filter matches everything)."""

    orgs: frozenset[str] | None = None
    ids: tuple[int, ...] | None = None
    site: str = ""
    zone: str = ""  # as the last evaluation placed it
    device_type: str = ""
    vendor: str = ""  # identified or by MAC, part of the name, any case
    seen_since: str = ""  # last seen at or after (a timestamp)
    new_since: str = ""  # first seen at or after
    violation: bool = False  # with an open or acknowledged violation
    q: str = ""  # part of an address, MAC, vendor, model, host name, owner or tag


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _conditions(db: Database, query: AssetQuery) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []

    def add(sql: str, *values: Any) -> None:
        where.append(sql)
        args.extend(values)

    if query.orgs is not None:
        add("t.org_id IN (SELECT value FROM json_each(?))", json.dumps(sorted(query.orgs)))
    if query.ids is not None:
        add("a.id IN (SELECT value FROM json_each(?))", json.dumps(list(query.ids)))
    if query.site:
        add("t.name = ?", query.site)
    if query.zone:
        add("a.id IN (SELECT s.asset_id FROM asset_states s, json_each(s.state, '$.zones') z"
            " WHERE z.value = ?)", query.zone)
    if query.device_type:
        add("a.device_type = ?", query.device_type)
    if query.vendor:
        add("(a.vendor LIKE ? ESCAPE '\\' OR a.mac_vendor LIKE ? ESCAPE '\\')",
            _like(query.vendor), _like(query.vendor))
    if query.seen_since:
        add("a.last_seen >= ?", query.seen_since)
    if query.new_since:
        add("a.first_seen >= ?", query.new_since)
    if query.violation:
        from central import violations

        add("a.id IN (SELECT asset_id FROM violations WHERE asset_id IS NOT NULL AND"  # noqa: S608
            f" {violations.EFFECTIVE_STATUS} IN ('open', 'acknowledged'))", *violations.now_args())
    if query.q:
        like = _like(query.q)
        columns = ("a.mac", "a.vendor", "a.mac_vendor", "a.model", "a.product", "a.hostname",
                   "o.owner", "o.tags")
        ruled = _ruled(db, query.q)
        add("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in columns)  # noqa: S608
            + " OR a.id IN (SELECT asset_id FROM addresses WHERE ip LIKE ? ESCAPE '\\')"
            + " OR a.id IN (SELECT value FROM json_each(?)))",
            *([like] * len(columns)), like, json.dumps(sorted(ruled)))
    return where, args


def _ruled(db: Database, text: str) -> set[int]:
    """Assets whose owner or tags come from a rule or the approved list that mentions
    ``text`` (the search finds an owner however it was set)."""
    from central import ownership

    needle = text.lower()
    mentioned = [r for r in ownership.rules(db)
                 if needle in (r.owner or "").lower() or any(needle in t.lower() for t in r.tags)]
    approved = db.execute("SELECT count(*) FROM approved_assets WHERE owner LIKE ? ESCAPE '\\'",
                          [_like(text)]).fetchone()[0]
    if not mentioned and not approved:
        return set()
    owned = ownership.of_assets(db)
    return {asset_id for asset_id, own in owned.items()
            if needle in (own.owner or "").lower() or any(needle in t.lower() for t in own.tags)}


def find(db: Database, query: AssetQuery, *, limit: int | None = None,
         offset: int = 0) -> tuple[list[AssetRow], int]:
    """The assets ``query`` selects, ordered by organisation, site, then address: the page
    from ``offset`` (``limit`` of them, or all), and how many there are in all. Only the
    page's addresses, services, vulnerabilities and owners are read."""
    where, args = _conditions(db, query)
    tables = (" FROM assets a JOIN sites t ON t.id = a.site_id"
              " LEFT JOIN asset_owners o ON o.asset_id = a.id")
    condition = (" WHERE " + " AND ".join(where)) if where else ""
    if limit == 0:
        return [], db.execute("SELECT count(*)" + tables + condition, args).fetchone()[0]
    # one pass over the filters (a zone filter reads every asset's state): every match's id
    # in order (ip_order: central.db gives every connection it), the page cut from them
    ids = [r[0] for r in db.execute(
        "SELECT a.id" + tables + condition + " ORDER BY t.org_id, t.name, (SELECT"  # noqa: S608
        " min(ip_order(d.ip)) FROM addresses d WHERE d.asset_id = a.id AND d.kind = 'probed'),"
        " a.id",
        args)]
    return load(db, ids[offset:None if limit is None else offset + limit]), len(ids)


def load(db: Database, ids: list[int]) -> list[AssetRow]:
    """These assets, whole, in this order."""
    if not ids:
        return []
    wanted = json.dumps(ids)
    inside = "asset_id IN (SELECT value FROM json_each(?))"
    rows = {r["id"]: r for r in db.query(
        "SELECT a.*, t.name AS site, t.org_id AS org FROM assets a JOIN sites t"
        " ON t.id = a.site_id WHERE a.id IN (SELECT value FROM json_each(?))", [wanted])}
    addresses: dict[int, list[str]] = {}
    claimed: dict[int, list[str]] = {}
    for row in db.query(f"SELECT asset_id, ip, kind FROM addresses WHERE {inside}", [wanted]):  # noqa: S608
        into = addresses if row["kind"] == "probed" else claimed
        into.setdefault(row["asset_id"], []).append(row["ip"])
    services: dict[int, list[ServiceRow]] = {}
    for row in db.query(f"SELECT * FROM services WHERE {inside} ORDER BY proto, port",  # noqa: S608
                        [wanted]):
        services.setdefault(row["asset_id"], []).append(
            ServiceRow(
                ip=row["ip"],
                proto=row["proto"],
                port=row["port"],
                state=row["state"],
                name=row["name"],
                product=row["product"],
                version=row["version"],
                extrainfo=row["extrainfo"],
                banner=row["banner"],
                source=row["source"],
            )
        )
    from central import ownership, vulns

    known = vulns.of_assets(db, ids=ids)
    owned = ownership.of_assets(db, ids=ids)
    return [
        AssetRow(
            id=row["id"],
            org=row["org"],
            site=row["site"],
            mac=row["mac"],
            mac_vendor=row["mac_vendor"],
            mac_random=bool(row["mac_random"]),
            hostname=row["hostname"],
            addresses=tuple(sorted(addresses.get(row["id"], []), key=_ip_key)),
            claimed=tuple(sorted(claimed.get(row["id"], []), key=_ip_key)),
            first_seen=row["first_seen"],
            last_seen=row["last_seen"],
            services=tuple(services.get(row["id"], [])),
            device_type=row.get("device_type"),
            vendor=row.get("vendor"),
            product=row.get("product"),
            model=row.get("model"),
            version=row.get("version"),
            os=row.get("os"),
            identity_confidence=row.get("identity_confidence"),
            identity_evidence=tuple(json.loads(row.get("identity_evidence") or "[]")),
            cpe=(row.get("cpe") if vulns.device_cpe(row.get("cpe"), row.get("vendor"))
                 else vulns.cpe_name(vendor=row.get("vendor"), product=row.get("product"),
                                     model=row.get("model"), version=row.get("version"))),
            vulnerabilities=tuple(known.get(row["id"], [])),
            owner=owned[row["id"]].owner if row["id"] in owned else None,
            tags=owned[row["id"]].tags if row["id"] in owned else (),
            notes=owned[row["id"]].notes if row["id"] in owned else None,
        )
        for row in (rows[i] for i in ids if i in rows)
    ]


def facts_of(db: Database, asset_id: int, *, limit: int = 200, width: int = 500
             ) -> list[dict[str, Any]]:
    """What the device said about itself (banners, titles, names, descriptions), newest
    first, each value cut to ``width`` characters: for people to read, escaped where shown."""
    return [{**dict(r), "value": r["value"][:width] + ("…" if len(r["value"]) > width else "")}
            for r in db.query("SELECT key, value, source, ip, last_seen FROM facts"
                              " WHERE asset_id = ? ORDER BY last_seen DESC, key LIMIT ?",
                              [asset_id, limit])]


def neutralise(value: object) -> object:
    """Keep a spreadsheet from reading an untrusted value as a formula (OWASP CSV injection)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def service_label(service: ServiceRow) -> str:
    parts = [f"{service.port}/{service.proto}"]
    if service.name:
        parts.append(service.name)
    detail = " ".join(p for p in (service.product, service.version) if p)
    if detail:
        parts.append(f"({detail})")
    return " ".join(parts)


def assets_json(rows: list[AssetRow]) -> str:
    return json.dumps([r.to_dict() for r in rows], indent=2, ensure_ascii=False)


ASSET_COLUMNS = ("site", "addresses", "mac", "mac_vendor", "device_type", "identified_as",
                 "named_by", "hostname", "open_ports", "services", "first_seen", "last_seen")


def assets_csv(rows: list[AssetRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(ASSET_COLUMNS)
    for row in rows:
        writer.writerow(
            neutralise(v)
            for v in (
                row.site,
                " ".join(row.addresses),
                row.mac or "",
                row.mac_vendor or "",
                row.device_type or "",
                row.identified_as,
                row.named_by,
                row.hostname or "",
                " ".join(row.open_ports),
                "; ".join(service_label(s) for s in row.services if s.state == "open"),
                row.first_seen,
                row.last_seen,
            )
        )
    return out.getvalue()

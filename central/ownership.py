"""Who owns an asset, its tags and notes: set on the asset, or by a rule per zone or CIDR so
that thousands of assets need no clicks.

An asset's own owner wins over a rule's; of the rules, the most specific that matches one
of the asset's addresses (the longest CIDR, then a zone) gives the owner, and every
matching rule adds its tags. The approved list's owner (``inventory import``) comes last. Zones
are the policy's; without it at hand, those the last evaluation saw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netaddr import AddrFormatError, IPAddress, IPNetwork
from sqlite_utils import Database

from agent import wire
from central.db import immediate
from central.detectors import automatic_zones, zones_of

if TYPE_CHECKING:
    from central.policy import Policy

MAX_TAGS = 32
MAX_TEXT = 256
MAX_NOTES = 4000


class OwnershipError(ValueError):
    """An edit that cannot be made: no such asset, a bad CIDR, an unknown zone, too long."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ownership:
    owner: str | None = None
    owner_from: str | None = None  # "asset", "rule <n>" or "approved list"
    tags: tuple[str, ...] = ()
    notes: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    id: int
    owner: str | None
    tags: tuple[str, ...] = field(default_factory=tuple)
    zone: str | None = None
    cidr: str | None = None
    org: str | None = None  # the organisation whose assets it applies to (None: all)


def _text(name: str, value: str | None, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    clean = wire.printable(value.strip(), limit=limit + 1)
    if len(clean) > limit:
        raise OwnershipError(f"{name} is longer than {limit} characters")
    return clean or None


def _tags(tags: list[str] | tuple[str, ...]) -> list[str]:
    out = sorted({t for t in (_text("tag", tag, 64) for tag in tags) if t})
    if len(out) > MAX_TAGS:
        raise OwnershipError(f"at most {MAX_TAGS} tags")
    return out


def set_asset(db: Database, asset_id: int, *, owner: str | None = None,
              tags: list[str] | None = None, notes: str | None = None, by: str) -> None:
    """Set what is given (an empty owner or notes clears it); the rest stays."""
    from central import audit

    with immediate(db):
        org = db.execute("SELECT t.org_id FROM assets a JOIN sites t ON t.id = a.site_id"
                         " WHERE a.id = ?", [asset_id]).fetchone()
        if org is None:
            raise OwnershipError(f"no asset {asset_id}")
        db.execute("INSERT OR IGNORE INTO asset_owners (asset_id, tags, updated_by, updated_at)"
                   " VALUES (?, '[]', ?, ?)", [asset_id, by, wire.utc_now()])
        changes: dict[str, Any] = {}
        if owner is not None:
            changes["owner"] = _text("owner", owner)
        if tags is not None:
            changes["tags"] = json.dumps(_tags(tags))
        if notes is not None:
            changes["notes"] = _text("notes", notes, MAX_NOTES)
        for column, value in changes.items():
            db.execute(f"UPDATE asset_owners SET {column} = ? WHERE asset_id = ?",  # noqa: S608
                       [value, asset_id])
        db.execute("UPDATE asset_owners SET updated_by = ?, updated_at = ? WHERE asset_id = ?",
                   [by, wire.utc_now(), asset_id])
        audit.record(db, actor=by, action="asset.owner", org=org[0], asset=asset_id,
                     owner=owner, tags=tags, notes=notes is not None)


def add_rule(db: Database, *, owner: str | None, tags: list[str] | None = None,
             zone: str | None = None, cidr: str | None = None,
             policy: Policy | None = None, org: str | None = None, by: str) -> int:
    """A rule for every asset in ``zone`` or ``cidr`` (one of them) of ``org`` (the
    policy's when given; None: every organisation's, for a central of one municipality);
    returns its id. Zone names and private ranges repeat between municipalities: a rule
    never reaches another organisation's assets."""
    from central import audit

    org = policy.org if policy is not None else org
    if (zone is None) == (cidr is None):
        raise OwnershipError("a rule names either a zone or a CIDR")
    if cidr is not None:
        try:
            cidr = str(IPNetwork(cidr).cidr)
        except (AddrFormatError, ValueError):
            raise OwnershipError(f"{cidr!r} is not a CIDR") from None
    if zone is not None and policy is not None and zone not in {z.name for z in policy.zones}:
        raise OwnershipError(f"no zone {zone!r} in the policy")
    with immediate(db):
        cursor = db.execute("INSERT INTO owner_rules (zone, cidr, owner, tags, created_by,"
                            " created_at, org) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [zone, cidr, _text("owner", owner), json.dumps(_tags(tags or [])),
                             by, wire.utc_now(), org])
        audit.record(db, actor=by, action="owner.rule.add", org=org, rule=cursor.lastrowid,
                     zone=zone, cidr=cidr, owner=owner, tags=tags)
    return int(cursor.lastrowid or 0)


def rules(db: Database) -> list[Rule]:
    return [Rule(id=r["id"], owner=r["owner"], tags=tuple(json.loads(r["tags"])),
                 zone=r["zone"], cidr=r["cidr"], org=r["org"])
            for r in db.query("SELECT * FROM owner_rules ORDER BY id")]


def remove_rule(db: Database, rule_id: int, *, by: str = "netvagt") -> None:
    from central import audit

    with immediate(db):
        row = db.execute("SELECT org FROM owner_rules WHERE id = ?", [rule_id]).fetchone()
        if row is None:
            raise OwnershipError(f"no rule {rule_id}")
        db.execute("DELETE FROM owner_rules WHERE id = ?", [rule_id])
        audit.record(db, actor=by, action="owner.rule.remove", org=row[0], rule=rule_id)


def of_assets(db: Database, policy: Policy | None = None, *,
              ids: list[int] | None = None) -> dict[int, Ownership]:
    """Every asset's owner (and where it came from), tags and notes; only these assets'
    when ``ids`` is given."""
    wanted = None if ids is None else json.dumps(ids)
    args = [wanted, wanted]

    def only(column: str) -> str:  # every asset, or the wanted ones
        return f"(? IS NULL OR {column} IN (SELECT value FROM json_each(?)))"  # noqa: S608 - a column name of ours

    own = {r["asset_id"]: dict(r) for r in db.query(
        f"SELECT * FROM asset_owners WHERE {only('asset_id')}", args)}  # noqa: S608
    all_rules = rules(db)
    networks = [(rule, IPNetwork(rule.cidr)) for rule in all_rules if rule.cidr]
    approved_mac: dict[tuple[str, str], str] = {}  # per (organisation, MAC or address)
    approved_ip: dict[tuple[str, str], str] = {}
    for row in db.query("SELECT p.mac, p.ip, p.owner, t.org_id FROM approved_assets p JOIN"
                        " sites t ON t.id = p.site_id WHERE p.owner IS NOT NULL"):
        if row["mac"]:
            approved_mac[(row["org_id"], row["mac"])] = row["owner"]
        if row["ip"]:
            approved_ip[(row["org_id"], row["ip"])] = row["owner"]
    addresses: dict[int, list[str]] = {}
    for row in db.query(f"SELECT asset_id, ip FROM addresses WHERE {only('asset_id')}"  # noqa: S608
                        " AND kind = 'probed'", args):
        addresses.setdefault(row["asset_id"], []).append(row["ip"])
    placed = automatic_zones(db, policy) if policy else {}
    # without the policy at hand, each asset's zones as the last evaluation saw them
    evaluated = {r["asset_id"]: set(json.loads(r["state"]).get("zones") or ())
                 for r in db.query("SELECT asset_id, state FROM asset_states"  # noqa: S608
                                   f" WHERE {only('asset_id')}", args)}
    out: dict[int, Ownership] = {}
    for row in db.query("SELECT a.id, a.mac, t.org_id, t.name AS site"  # noqa: S608
                        " FROM assets a JOIN sites t"
                        f" ON t.id = a.site_id WHERE {only('a.id')}", args):
        ips = addresses.get(row["id"], [])
        org = row["org_id"]
        zones = (zones_of(policy, placed, row["id"], ips, row["site"])
                 if policy and policy.org == org else evaluated.get(row["id"], set()))
        matching = [(rule, net.prefixlen) for rule, net in networks
                    if rule.org in (None, org)
                    and any(IPAddress(ip) in net for ip in ips if ":" not in ip or net.version == 6)]
        matching += [(rule, -1) for rule in all_rules
                     if rule.zone and rule.zone in zones and rule.org in (None, org)]
        matching.sort(key=lambda m: (-m[1], m[0].id))  # the longest CIDR first, zones last
        mine = own.get(row["id"], {})
        tags = set(json.loads(mine.get("tags") or "[]"))
        for rule, _ in matching:
            tags |= set(rule.tags)
        owner, source = mine.get("owner"), "asset"
        if not owner:
            ruled = next((rule for rule, _ in matching if rule.owner), None)
            owner, source = (ruled.owner, f"rule {ruled.id}") if ruled else (None, "")
        if not owner:
            owner = approved_mac.get((org, row["mac"] or "")) or next(
                (approved_ip[(org, ip)] for ip in ips if (org, ip) in approved_ip), None)
            source = "approved list" if owner else ""
        if owner or tags or mine.get("notes"):
            out[row["id"]] = Ownership(owner=owner, owner_from=source or None,
                                       tags=tuple(sorted(tags)), notes=mine.get("notes"))
    return out

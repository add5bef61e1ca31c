"""Violations: the detectors' findings kept with an identity across runs, reviewed by the
central team, with every change in the audit trail.

Violations keep their identity across runs (a stable key), so review decisions stick: a
violation no longer seen is resolved, one seen again is reopened, an accepted risk stays
hidden until its expiry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlite_utils import Database

from agent import wire
from central import events
from central.db import immediate
from central.detectors import NIS2, Finding, find
from central.policy import Policy

SYSTEM = "netvagt"  # the actor of automatic changes in the audit trail
STATUSES = ("open", "acknowledged", "accepted", "false_positive", "resolved")
ACTIVE = ("open", "acknowledged")  # what the team still has to look at
MAX_EVIDENCE = 50  # evidence items kept per violation


class ReviewError(ValueError):
    """A review decision that cannot be recorded (unknown id, no reason, past expiry)."""


def _event(db: Database, vid: int, *, at: str, actor: str, old: str | None, new: str,
           reason: str) -> None:
    db.execute("INSERT INTO violation_events (violation_id, at, actor, old_status, new_status,"
               " reason) VALUES (?, ?, ?, ?, ?, ?)", [vid, at, actor, old, new, reason])


def evaluate(db: Database, policy: Policy, *, now: str | None = None) -> dict[str, int]:
    """Bring the violations up to date with the latest data; returns counts of changes."""
    from central import vulns

    now = now or wire.utc_now()
    changes = {"new": 0, "reopened": 0, "resolved": 0, "expired": 0, "open": 0}
    vulns.refresh(db)  # the devices identified since the last import or evaluation
    with immediate(db):
        _adopt_unowned(db, policy.org)
        # one organisation's policy judges its own assets, probes and violations only: the
        # municipalities on one central have overlapping ranges and the same zone names
        found = {f"{policy.org}|{key}": item for key, item in find(db, policy, now=now).items()}
        existing = {r["key"]: dict(r) for r in db.query("SELECT * FROM violations WHERE org = ?",
                                                        [policy.org])}
        for key, item in found.items():
            evidence = json.dumps(item.evidence[:MAX_EVIDENCE])
            row = existing.get(key)
            if row is None:
                vid = db.execute(
                    "INSERT INTO violations (key, kind, severity, site, zone, other_zone, asset_id,"
                    " title, evidence, nis2, status, first_seen, last_seen, org) VALUES"
                    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?)",
                    [key, item.kind, item.severity, item.site, item.zone, item.other_zone,
                     item.asset_id, item.title, evidence, NIS2[item.kind], now, now,
                     policy.org]).lastrowid
                _event(db, int(vid or 0), at=now, actor=SYSTEM, old=None, new="open",
                       reason="found by evaluation")
                _announce(db, policy, "violation.new", item, int(vid or 0), now)
                changes["new"] += 1
                continue
            status = row["status"]
            if status == "resolved":
                status = "open"
                _event(db, row["id"], at=now, actor=SYSTEM, old="resolved", new="open",
                       reason="seen again after it was resolved: reopened")
                _announce(db, policy, "violation.reopened", item, row["id"], now)
                changes["reopened"] += 1
            elif status == "accepted" and (row["accepted_until"] or "") <= now:
                status = "open"
                _event(db, row["id"], at=now, actor=SYSTEM, old="accepted", new="open",
                       reason=f"the accepted risk expired at {row['accepted_until']}")
                changes["expired"] += 1
            db.execute("UPDATE violations SET status = ?, title = ?, severity = ?, evidence = ?,"
                       " last_seen = ?, resolved_at = NULL, org = ? WHERE id = ?",
                       [status, item.title, item.severity, evidence, now, policy.org, row["id"]])
        for key, row in existing.items():
            if key in found or row["status"] in ("resolved", "false_positive"):
                continue
            db.execute("UPDATE violations SET status = 'resolved', resolved_at = ? WHERE id = ?",
                       [now, row["id"]])
            _event(db, row["id"], at=now, actor=SYSTEM, old=row["status"], new="resolved",
                   reason="no longer seen in the latest scans and probes")
            events.emit(db, "violation.resolved", severity="info", at=now, org=policy.org,
                        site=row["site"], zone=row["zone"], asset_id=row["asset_id"],
                        violation_id=row["id"], title=f"resolved: {row['title']}",
                        data={"kind": row["kind"], "was": row["status"]})
            changes["resolved"] += 1
        events.track_devices(db, policy, now=now, org=policy.org)
        changes["open"] = db.execute(
            "SELECT count(*) FROM violations WHERE status IN ('open', 'acknowledged')"
        ).fetchone()[0]
    return changes


def _adopt_unowned(db: Database, org: str) -> None:
    """Violations and zone baselines from before organisations were kept apart (one
    organisation then): they are that organisation's, under its keys. With several
    organisations already, nobody can tell whose they were, and they stay as they are."""
    others = db.execute("SELECT count(*) FROM orgs WHERE id != ?", [org]).fetchone()[0]
    if others:
        return
    db.execute("UPDATE violations SET org = ?, key = ? || '|' || key WHERE org IS NULL",
               [org, org])
    db.execute("UPDATE zone_baselines SET zone = ? || '/' || zone WHERE instr(zone, '/') = 0",
               [org])


def _announce(db: Database, policy: Policy, kind: str, item: Finding, vid: int,
              now: str) -> None:
    """The events of a violation found (or found again): and a device exploited in the wild."""
    data = {"kind": item.kind, "other_zone": item.other_zone, "nis2": NIS2[item.kind],
            "evidence": item.evidence[:5]}
    where: dict[str, Any] = {"at": now, "org": policy.org, "site": item.site, "zone": item.zone,
             "asset_id": item.asset_id, "violation_id": vid}
    events.emit(db, kind, severity=item.severity, title=item.title, data=data, **where)
    exploited = sorted({e["cve"] for e in item.evidence if e.get("kev")})
    if item.kind == "vulnerable_device" and exploited:
        events.emit(db, "vulnerability.kev", severity="critical", data={"cves": exploited},
                    title=f"exploited in the wild: {', '.join(exploited[:5])} on "
                          f"{item.title.split(':')[0]}", **where)


ACTIONS = {"acknowledge": "acknowledged", "accept": "accepted", "false-positive": "false_positive",
           "reopen": "open"}


def review(db: Database, ids: Iterable[int], *, action: str, reviewer: str, reason: str = "",
           until: str | None = None, now: str | None = None) -> list[int]:
    """Record the team's decision on violations; returns the ids changed."""
    if action not in ACTIONS:
        raise ReviewError(f"unknown action {action!r}: one of {sorted(ACTIONS)}")
    if action in ("accept", "false-positive") and not reason.strip():
        raise ReviewError(f"'{action}' needs a reason (--reason) for the audit trail")
    now = now or wire.utc_now()
    if action == "accept":
        if not until:
            raise ReviewError("'accept' needs an expiry date (--until YYYY-MM-DD)")
        until = _expiry(until)
        if until <= now:
            raise ReviewError(f"the expiry {until} is already past")
    new = ACTIONS[action]
    changed: list[int] = []
    with immediate(db):
        for vid in ids:
            row = db.execute("SELECT status, accepted_until FROM violations WHERE id = ?",
                             [vid]).fetchone()
            if row is None:
                raise ReviewError(f"no violation {vid}")
            if row[0] == new and (action != "accept" or row[1] == until):
                continue  # the same decision again: the audit trail records decisions once
            db.execute("UPDATE violations SET status = ?, accepted_until = ?, decision_reason = ?,"
                       " reviewer = ?, reviewed_at = ? WHERE id = ?",
                       [new, until if action == "accept" else None, reason.strip() or None,
                        reviewer, now, vid])
            _event(db, vid, at=now, actor=reviewer, old=row[0], new=new,
                   reason=reason.strip() or action)
            changed.append(vid)
    return changed


def parse_when(text: str) -> str:
    """A date (its first moment, UTC) or a timestamp from the command line, as a wire
    timestamp: where a listing starts."""
    if len(text) == 10:
        try:
            return wire.format_ts(datetime.fromisoformat(text).replace(tzinfo=UTC))
        except ValueError:
            raise ReviewError(f"{text!r} is not a date (YYYY-MM-DD) or timestamp") from None
    return _expiry(text)


def _expiry(text: str) -> str:
    """A date (the last moment of that day, UTC: the register shows the day given) or a full
    timestamp, as a wire timestamp."""
    try:
        if len(text) == 10:
            moment = (datetime.fromisoformat(text).replace(tzinfo=UTC) + timedelta(days=1)
                      - timedelta(microseconds=1))
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except ValueError:
        raise ReviewError(f"{text!r} is not a date (YYYY-MM-DD) or timestamp") from None
    return wire.format_ts(moment.astimezone(UTC))


@dataclass(frozen=True, slots=True, kw_only=True)
class ViolationRow:
    id: int
    kind: str
    severity: str
    status: str
    site: str | None
    zone: str | None
    other_zone: str | None
    title: str
    evidence: list[dict[str, Any]]
    nis2: str
    first_seen: str
    last_seen: str
    accepted_until: str | None
    decision_reason: str | None
    reviewer: str | None
    history: list[dict[str, Any]]
    asset_id: int | None = None  # the device it is about, where it is about one
    org: str | None = None  # the organisation whose policy found it

    def evidence_summary(self, limit: int = 5) -> str:
        parts = []
        for item in self.evidence[:limit]:
            shown = {k: v for k, v in item.items() if v not in (None, "") and k != "source"}
            parts.append(f"{item.get('source', '')}: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
        more = len(self.evidence) - limit
        return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


# a violation's status as the team sees it: an accepted risk past its expiry is open again
EFFECTIVE_STATUS = ("(CASE WHEN status = 'accepted' AND coalesce(accepted_until, '') <= ?"
                    " THEN 'open' ELSE status END)")


def now_args(now: str | None = None) -> list[str]:
    """The parameter EFFECTIVE_STATUS takes."""
    return [now or wire.utc_now()]


def violations(db: Database, *, statuses: Iterable[str] | None = ACTIVE, zone: str | None = None,
               kind: str | None = None, site: str | None = None, now: str | None = None
               ) -> list[ViolationRow]:
    """Violations, filtered; an accepted risk past its expiry counts as open."""
    rows, _ = select(db, statuses=statuses, zone=zone, kind=kind, site=site, now=now)
    return rows


def select(db: Database, *, statuses: Iterable[str] | None = ACTIVE, zone: str | None = None,
         kind: str | None = None, site: str | None = None, severity: str | None = None,
         orgs: Iterable[str] | None = None, ids: Iterable[int] | None = None,
         now: str | None = None, limit: int | None = None, offset: int = 0
         ) -> tuple[list[ViolationRow], int]:
    """The violations these filters select, oldest first: the page from ``offset``
    (``limit`` of them, or all), and how many there are in all. Only the page's audit
    trails are read."""
    now = now or wire.utc_now()
    where = [f"{EFFECTIVE_STATUS} IN (SELECT value FROM json_each(?))"]  # noqa: S608
    args: list[Any] = [now, json.dumps(sorted(statuses if statuses is not None else STATUSES))]
    for sql, value in (("org IN (SELECT value FROM json_each(?))", orgs),
                       ("id IN (SELECT value FROM json_each(?))", ids)):
        if value is not None:
            where.append(sql)
            args.append(json.dumps(sorted(value)))
    for sql, text in (("kind = ?", kind), ("site = ?", site), ("severity = ?", severity)):
        if text:
            where.append(sql)
            args.append(text)
    if zone:
        where.append("(zone = ? OR other_zone = ?)")
        args += [zone, zone]
    condition = " AND ".join(where)
    total = db.execute(f"SELECT count(*) FROM violations WHERE {condition}",  # noqa: S608
                       args).fetchone()[0]
    page = list(db.query(f"SELECT *, {EFFECTIVE_STATUS} AS seen_status FROM violations"  # noqa: S608
                         f" WHERE {condition} ORDER BY id LIMIT ? OFFSET ?",
                         [now, *args, -1 if limit is None else limit, offset]))
    history: dict[int, list[dict[str, Any]]] = {}
    for event in db.query("SELECT * FROM violation_events WHERE violation_id IN"
                          " (SELECT value FROM json_each(?)) ORDER BY id",
                          [json.dumps([r["id"] for r in page])]):
        history.setdefault(event["violation_id"], []).append(
            {k: event[k] for k in ("at", "actor", "old_status", "new_status", "reason")})
    out = [ViolationRow(
        id=row["id"], kind=row["kind"], severity=row["severity"], status=row["seen_status"],
        asset_id=row["asset_id"], org=row["org"],
        site=row["site"], zone=row["zone"], other_zone=row["other_zone"], title=row["title"],
        evidence=json.loads(row["evidence"]), nis2=row["nis2"], first_seen=row["first_seen"],
        last_seen=row["last_seen"], accepted_until=row["accepted_until"],
        decision_reason=row["decision_reason"], reviewer=row["reviewer"],
        history=history.get(row["id"], [])) for row in page]
    return out, total

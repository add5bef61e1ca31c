"""One event stream from the central: what changed, for people and systems to hear about.

Kinds:

- ``violation.new``, ``violation.reopened``, ``violation.resolved`` (from each evaluation);
- ``device.new``, ``device.gone`` (not seen in its sensor's last N scans), ``device.changed``
  (addresses, identity, firmware version, open ports, zone), from :func:`track_devices`;
- ``sensor.offline``, ``sensor.back``, ``sensor.outbox_filling``, ``scan.failed``, from
  :func:`track_sensors` (the sensors' signed status);
- ``vulnerability.kev``: a device with a vulnerability known to be exploited in the wild.

Events are rows in the inventory, written in the transaction of what caused them; the
notifier (:mod:`central.notify`) routes them to channels from there, so a central restart
loses none. The first look at a site's devices is its baseline: no ``device.new`` flood on
the first night.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from agent import wire
from central.detectors import automatic_zones, zones_of

if TYPE_CHECKING:
    from central.policy import Policy

KINDS = ("violation.new", "violation.reopened", "violation.resolved", "device.new",
         "device.gone", "device.changed", "sensor.offline", "sensor.back",
         "sensor.outbox_filling", "scan.failed", "vulnerability.kev")
SEVERITIES = ("info", "low", "medium", "high", "critical")
GONE_AFTER_SCANS = 3  # a device not seen in its sensor's last this many scans is gone
OFFLINE_AFTER = timedelta(minutes=10)  # no signed status for this long: offline
# a daemon that said 'offline' (stopped, or its last will) and says nothing else for this
# long is offline: a restart (an upgrade, a changed setting) is back within seconds
RESTART_GRACE = timedelta(minutes=3)
OUTBOX_FILLING = 100  # messages waiting on a sensor that the central has not acknowledged


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    id: int
    at: str
    kind: str
    severity: str
    org: str | None
    site: str | None
    zone: str | None
    title: str
    data: dict[str, Any]
    asset_id: int | None = None
    sensor_id: str | None = None
    violation_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "kind": self.kind, "severity": self.severity,
                "org": self.org, "site": self.site, "zone": self.zone, "title": self.title,
                "asset_id": self.asset_id, "sensor_id": self.sensor_id,
                "violation_id": self.violation_id, "data": self.data}


def emit(db: Database, kind: str, *, severity: str, title: str, at: str | None = None,
         org: str | None = None, site: str | None = None, zone: str | None = None,
         data: dict[str, Any] | None = None, asset_id: int | None = None,
         sensor_id: str | None = None, violation_id: int | None = None) -> int:
    """Record one event (in the caller's transaction); returns its id."""
    assert kind in KINDS and severity in SEVERITIES, (kind, severity)
    cursor = db.execute(
        "INSERT INTO events (at, kind, severity, org, site, zone, title, data, asset_id,"
        " sensor_id, violation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [at or wire.utc_now(), kind, severity, org, site, zone, title[:500],
         json.dumps(data or {}), asset_id, sensor_id, violation_id])
    return int(cursor.lastrowid or 0)


def listed(db: Database, *, since: str | None = None, org: str | None = None,
           site: str | None = None, kinds: tuple[str, ...] = (), asset_id: int | None = None,
           after_id: int = 0, limit: int = 10_000, orgs: Iterable[str] | None = None,
           newest: bool = False) -> list[Event]:
    """Events, oldest first, filtered; ``newest``: the last ``limit`` of them."""
    where: list[str] = ["id > ?"]
    args: list[Any] = [after_id]
    if orgs is not None:
        where.append("org IN (SELECT value FROM json_each(?))")
        args.append(json.dumps(sorted(orgs)))
    for column, value in (("org", org), ("site", site), ("asset_id", asset_id)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if since:
        where.append("at >= ?")
        args.append(since)
    if kinds:
        where.append(f"kind IN ({', '.join('?' * len(kinds))})")
        args.extend(kinds)
    found = [from_row(r) for r in db.query(
        f"SELECT * FROM events WHERE {' AND '.join(where)}"  # noqa: S608
        f" ORDER BY id {'DESC' if newest else ''} LIMIT ?", [*args, limit])]
    return found[::-1] if newest else found


def from_row(row: dict[str, Any]) -> Event:
    return Event(id=row["id"], at=row["at"], kind=row["kind"], severity=row["severity"],
                 org=row["org"], site=row["site"], zone=row["zone"], title=row["title"],
                 data=json.loads(row["data"]), asset_id=row["asset_id"],
                 sensor_id=row["sensor_id"], violation_id=row["violation_id"])


# --------------------------------------------------------------------------- devices


def _device_states(db: Database, policy: Policy | None,
                   org: str | None = None) -> dict[int, dict[str, Any]]:
    """What each device is now: the fields whose change is news."""
    ports: dict[int, set[str]] = {}
    for row in db.query("SELECT asset_id, proto, port FROM services WHERE state = 'open'"):
        ports.setdefault(row["asset_id"], set()).add(f"{row['port']}/{row['proto']}")
    placed = automatic_zones(db, policy) if policy else {}
    addresses: dict[int, set[str]] = {}
    for row in db.query("SELECT asset_id, ip FROM addresses WHERE kind = 'probed'"):
        addresses.setdefault(row["asset_id"], set()).add(row["ip"])
    out = {}
    for row in db.query("SELECT a.id, a.device_type, a.vendor, a.model, a.product, a.version,"
                        " a.mac, a.first_seen, a.last_seen, t.name AS site, t.org_id AS org"
                        " FROM assets a"
                        " JOIN sites t ON t.id = a.site_id WHERE ? IS NULL OR t.org_id = ?",
                        [org, org]):
        ips = sorted(addresses.get(row["id"], set()))
        zones = sorted(zones_of(policy, placed, row["id"], ips, row["site"]) if policy else ())
        out[row["id"]] = {
            "org": row["org"], "site": row["site"], "mac": row["mac"],
            "first_seen": row["first_seen"], "last_seen": row["last_seen"], "state": {
                "addresses": ips, "device_type": row["device_type"], "vendor": row["vendor"],
                "model": row["model"] or row["product"], "version": row["version"],
                "open_ports": sorted(ports.get(row["id"], set())), "zones": zones}}
    return out


def _scan_marks(db: Database, scans: int) -> tuple[dict[str, str], set[str]]:
    """In one pass over the sightings, per sensor: the time of its ``scans``-th latest scan
    (a device it last saw before that has missed that many scans), and the time of its
    first scan (its segment's first look)."""
    gone_before: dict[str, str] = {}
    first_looks: set[str] = set()
    for row in db.query(
            "SELECT sensor_id, observed_at, n, total FROM (SELECT sensor_id, observed_at,"
            " row_number() OVER (PARTITION BY sensor_id ORDER BY observed_at DESC) AS n,"
            " count(*) OVER (PARTITION BY sensor_id) AS total FROM"
            " (SELECT DISTINCT sensor_id, observed_at FROM observations)) WHERE n = ? OR n = total",
            [scans]):
        if row["n"] == scans:
            gone_before[row["sensor_id"]] = row["observed_at"]
        if row["n"] == row["total"]:
            first_looks.add(row["observed_at"])
    return gone_before, first_looks


def _label(state: dict[str, Any]) -> str:
    what = " ".join(p for p in (state["vendor"], state["model"]) if p)
    kind = state["device_type"] or "device"
    where = ", ".join(state["addresses"][:3]) or "?"
    return f"{kind} {where}" + (f" ({what})" if what else "")


def track_devices(db: Database, policy: Policy | None = None, *, now: str | None = None,
                  gone_after_scans: int = GONE_AFTER_SCANS,
                  org: str | None = None) -> dict[str, int]:
    """Compare every device with what it was at the last look; record device.new,
    device.changed and device.gone events, and remember what it is now. Call it inside a
    transaction; returns the counts. With ``org``, only that organisation's devices (the
    policy that judges them is its own)."""
    now = now or wire.utc_now()
    counts = {"device.new": 0, "device.changed": 0, "device.gone": 0}
    known = {r["asset_id"]: dict(r) for r in db.query("SELECT * FROM asset_states")}
    baselined = {r["site_id"] for r in db.query("SELECT DISTINCT a.site_id FROM asset_states s"
                                                 " JOIN assets a ON a.id = s.asset_id")}
    site_of = dict(db.execute("SELECT id, site_id FROM assets").fetchall())
    last_sensor = dict(db.execute("SELECT asset_id, last_sensor FROM addresses WHERE kind ="
                                  " 'probed' GROUP BY asset_id").fetchall())
    # a sensor's first scan is its segment's first look, whenever it comes: a sensor
    # installed at a site already looked at finds the devices that were there, not new ones
    cutoff, first_looks = _scan_marks(db, gone_after_scans)
    for asset_id, current in _device_states(db, policy, org).items():
        state, before = current["state"], known.get(asset_id)
        where: dict[str, Any] = {"org": current["org"], "site": current["site"],
                 "zone": (state["zones"] or [None])[0], "asset_id": asset_id, "at": now}
        sensor = last_sensor.get(asset_id)
        gone = bool(sensor and sensor in cutoff and current["last_seen"] < cutoff[sensor])
        # a guest's phone coming and going is no news (its state is kept all the same)
        visiting = policy is not None and bool(state["zones"]) and all(
            policy.zone(name).visitors for name in state["zones"])
        if before is None:
            if (site_of[asset_id] in baselined and not visiting
                    and current["first_seen"] not in first_looks):
                emit(db, "device.new", severity="low", title=f"new {_label(state)}",
                     data={"mac": current["mac"], **state}, **where)
                counts["device.new"] += 1
        else:
            old = json.loads(before["state"])
            changed = {k: {"from": old.get(k), "to": v} for k, v in state.items()
                       if old.get(k) != v}
            if changed and not visiting:
                emit(db, "device.changed", severity="low",
                     title=f"{_label(state)} changed: {', '.join(sorted(changed))}",
                     data={"mac": current["mac"], "changes": changed}, **where)
                counts["device.changed"] += 1
            if gone and not before["gone"] and not visiting:
                emit(db, "device.gone", severity="low",
                     title=f"{_label(state)} not seen in the last {gone_after_scans} scans of "
                           f"{sensor}", data={"mac": current["mac"], "last_seen":
                                              current["last_seen"], "sensor": sensor}, **where)
                counts["device.gone"] += 1
        db.execute("INSERT INTO asset_states (asset_id, state, gone, updated_at)"
                   " VALUES (?, ?, ?, ?) ON CONFLICT (asset_id) DO UPDATE SET"
                   " state = excluded.state, gone = excluded.gone, updated_at = excluded.updated_at",
                   [asset_id, json.dumps(state), int(gone), now])
    return counts


# --------------------------------------------------------------------------- sensors


def track_sensors(db: Database, *, now: str | None = None,
                  offline_after: timedelta = OFFLINE_AFTER,
                  outbox_filling: int = OUTBOX_FILLING) -> dict[str, int]:
    """The sensors' signed status against what was last said: offline and back, an
    outbox filling, a failed scan. Call it inside a transaction; returns the counts.

    A sensor is offline when nothing was heard from it for ``offline_after``, or when its
    daemon said ``offline`` (it stopped, or the broker sent its last will) at least
    :data:`RESTART_GRACE` ago: a restart is no news."""
    now = now or wire.utc_now()
    moment = wire.parse_ts(now)
    counts = dict.fromkeys(("sensor.offline", "sensor.back", "sensor.outbox_filling",
                            "scan.failed"), 0)
    known = {r["sensor_id"]: dict(r) for r in db.query("SELECT * FROM sensor_states")}
    for row in db.query("SELECT s.id, s.org_id, s.last_status, s.last_status_at, t.name AS site,"
                        " z.name AS zone FROM sensors s JOIN sites t ON t.id = s.site_id"
                        " LEFT JOIN zones z ON z.id = s.zone_id WHERE s.status = 'active'"):
        status = json.loads(row["last_status"]) if row["last_status"] else {}
        heard = row["last_status_at"]
        since = moment - wire.parse_ts(heard) if heard is not None else None
        gone = status.get("state") == "offline" and since is not None and since >= RESTART_GRACE
        online = since is not None and since <= offline_after and not gone
        depth = int(status.get("outbox_depth") or 0)
        errors = [e for e in status.get("errors") or [] if isinstance(e, str)]
        failed = next((e for e in reversed(errors) if "fail" in e.lower()), None)
        before = known.get(row["id"], {})
        where: dict[str, Any] = {"org": row["org_id"], "site": row["site"], "zone": row["zone"],
                 "sensor_id": row["id"], "at": now}
        if before and before["online"] and not online and heard is not None:
            emit(db, "sensor.offline", severity="medium", title=f"sensor {row['id']} is offline "
                 f"(last heard {heard})", data={"last_status_at": heard}, **where)
            counts["sensor.offline"] += 1
        elif before and before["online"] == 0 and online:
            emit(db, "sensor.back", severity="info", title=f"sensor {row['id']} is back online",
                 data={"last_status_at": heard}, **where)
            counts["sensor.back"] += 1
        high = depth >= outbox_filling
        if high and not before.get("outbox_high"):
            emit(db, "sensor.outbox_filling", severity="medium",
                 title=f"sensor {row['id']}: {depth} messages wait in its outbox",
                 data={"outbox_depth": depth}, **where)
            counts["sensor.outbox_filling"] += 1
        if failed and failed != before.get("last_error"):
            emit(db, "scan.failed", severity="medium", title=f"sensor {row['id']}: {failed}"[:300],
                 data={"error": failed[:500]}, **where)
            counts["scan.failed"] += 1
        db.execute("INSERT INTO sensor_states (sensor_id, online, outbox_high, last_error,"
                   " updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (sensor_id) DO UPDATE SET"
                   " online = excluded.online, outbox_high = excluded.outbox_high,"
                   " last_error = excluded.last_error, updated_at = excluded.updated_at",
                   [row["id"], int(online) if heard is not None else None, int(high),
                    failed or before.get("last_error"), now])
    return counts

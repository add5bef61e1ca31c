"""Organisations, sites and sensors known to the central.

Until on-site enrollment exists, a sensor is registered by hand with its public key
(``netvagt-central sensor add``); the key is what every message it sends is verified with.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlite_utils import Database

from agent import signing, wire
from scanners.ports import PROFILES


class RegistryError(ValueError):
    """A registration that cannot be made: bad id, unknown org, duplicate sensor."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorRecord:
    id: str
    org: str
    site: str
    zone: str | None
    status: str
    last_seq: int
    registered_at: str
    last_message_at: str | None
    state: str | None = None  # from the sensor's last signed status: online, offline, ...
    last_status_at: str | None = None
    outbox_depth: int | None = None
    last_scan_at: str | None = None
    databases: tuple[str, ...] = ()  # its fingerprint databases, from its last status
    version: str | None = None  # its netvagt version, from its last status
    port_vlans: tuple[int, ...] = ()  # other VLANs' tagged frames reached its port (last scan)

    @property
    def listening(self) -> bool:
        """Its daemon takes commands now (the rule of ``LISTENING``)."""
        return self.status == "active" and self.state not in (None, "offline")


# A sensor takes commands while its daemon is connected: its signed status says so (published
# once it listens on its command topic; 'offline' when it stops, or as its last will). A
# command or plan published to a sensor not listening was lost: the broker keeps no session
# for it. As SQL over ``sensors s``, for the service's queries; ``SensorRecord.listening``.
LISTENING = ("s.status = 'active' AND coalesce(json_extract(s.last_status, '$.state'),"
             " 'offline') != 'offline'")


def ensure_org(db: Database, org: str, *, name: str | None = None) -> None:
    if not wire.is_valid_id(org):
        raise RegistryError(f"organisation id {org!r} must match [a-z0-9][a-z0-9_-]{{0,62}}")
    db.execute("INSERT OR IGNORE INTO orgs (id, name) VALUES (?, ?)", [org, name or org])


def ensure_site(db: Database, org: str, site: str) -> int:
    if not site or len(site) > wire.MAX_TEXT_CHARS:
        raise RegistryError("a site needs a name of 1 to 256 characters")
    ensure_org(db, org)
    db.execute("INSERT OR IGNORE INTO sites (org_id, name) VALUES (?, ?)", [org, site])
    row = db.execute("SELECT id FROM sites WHERE org_id = ? AND name = ?", [org, site]).fetchone()
    return int(row[0])


def ensure_zone(db: Database, site_id: int, zone: str) -> int:
    db.execute("INSERT OR IGNORE INTO zones (site_id, name) VALUES (?, ?)", [site_id, zone])
    row = db.execute(
        "SELECT id FROM zones WHERE site_id = ? AND name = ?", [site_id, zone]
    ).fetchone()
    return int(row[0])


def add_sensor(
    db: Database,
    *,
    sensor: str,
    org: str,
    site: str,
    public_jwk: dict[str, Any] | str,
    zone: str | None = None,
) -> None:
    """Register a sensor and the public key its messages must verify with."""
    if not wire.is_valid_id(sensor):
        raise RegistryError(f"sensor id {sensor!r} must match [a-z0-9][a-z0-9_-]{{0,62}}")
    try:
        key = signing.public_key_from_jwk(public_jwk)
    except (signing.SignatureError, ValueError, KeyError, TypeError) as exc:
        raise RegistryError(f"not an Ed25519 public JWK: {exc}") from None
    with db.atomic():
        if db.execute("SELECT 1 FROM sensors WHERE id = ?", [sensor]).fetchone():
            raise RegistryError(f"sensor {sensor!r} is already registered")
        site_id = ensure_site(db, org, site)
        zone_id = ensure_zone(db, site_id, zone) if zone else None
        db.execute(
            "INSERT INTO sensors (id, org_id, site_id, zone_id, public_jwk, registered_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [sensor, org, site_id, zone_id, json.dumps(signing.public_jwk(key)), wire.utc_now()],
        )


def sensors(db: Database) -> list[SensorRecord]:
    return [
        SensorRecord(
            id=row["id"],
            org=row["org_id"],
            site=row["site"],
            zone=row["zone"],
            status=row["status"],
            last_seq=row["last_seq"],
            registered_at=row["registered_at"],
            last_message_at=row["last_message_at"],
            **_status_fields(row.get("last_status")),
            last_status_at=row.get("last_status_at"),
            port_vlans=tuple(v["vlan"] for v in json.loads(row.get("port_vlans") or "[]")),
        )
        for row in db.query(
            "SELECT s.*, t.name AS site, z.name AS zone FROM sensors s"
            " JOIN sites t ON t.id = s.site_id LEFT JOIN zones z ON z.id = s.zone_id"
            " ORDER BY s.id"
        )
    ]


def _status_fields(text: str | None) -> dict[str, Any]:
    try:
        status = json.loads(text) if text else {}
    except ValueError:
        status = {}
    return {"state": status.get("state"), "outbox_depth": status.get("outbox_depth"),
            "last_scan_at": status.get("last_scan_at"),
            "databases": tuple(str(d) for d in status.get("databases") or ()),
            "version": status.get("version") or None}


def active_sensors(db: Database) -> list[str]:
    """The ids of the sensors whose messages are accepted, in order."""
    return [r[0] for r in db.execute(
        "SELECT id FROM sensors WHERE status = 'active' ORDER BY id").fetchall()]


def queue_scan(db: Database, sensor: str, *, profile: str | None, valid: timedelta,
               issued_by: str, now: datetime | None = None) -> str:
    """Ask a sensor to scan now: a command the running service signs and sends; returns its
    id. The sensor ignores it once ``valid`` has passed."""
    row = db.execute("SELECT status FROM sensors WHERE id = ?", [sensor]).fetchone()
    if row is None or row[0] != "active":
        raise RegistryError(f"no active sensor {sensor!r}")
    if profile is not None and profile not in PROFILES:
        raise RegistryError(f"no scan profile {profile!r}: one of {', '.join(PROFILES)}")
    now = now or datetime.now(UTC)
    command_id = uuid.uuid4().hex
    db.execute(
        "INSERT INTO commands (id, sensor_id, command, profile, issued_at, expires_at, issued_by)"
        " VALUES (?, ?, 'scan', ?, ?, ?, ?)",
        [command_id, sensor, profile, wire.format_ts(now), wire.format_ts(now + valid), issued_by])
    return command_id

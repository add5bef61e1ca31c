"""On-site enrollment: one-time tokens bound to an organisation, site and zone.

``create_token`` stores only the secret's hash (and, until the broker's short-lived
enrollment client exists, the secret itself); ``enroll`` checks a request signed with the
new sensor's key against the token (known, unused, unexpired, secret matching), registers
the sensor and marks the token used, in one transaction. The service does the broker side.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlite_utils import Database

from agent import signing, wire
from central import registry

DEFAULT_TTL = timedelta(hours=24)


class EnrollmentError(ValueError):
    """A token or request that cannot enroll a sensor; the message is safe to send back."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Enrolled:
    sensor: str
    org: str
    site: str
    zone: str | None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(db: Database, *, org: str, site: str, zone: str | None,
                 ttl: timedelta = DEFAULT_TTL) -> str:
    """A one-time token ``<id>.<secret>`` for a technician to type on the sensor."""
    if ttl <= timedelta(0) or ttl > timedelta(days=30):
        raise EnrollmentError("a token lives between a second and 30 days")
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(24)
    now = datetime.now(UTC)
    with db.atomic():
        site_id = registry.ensure_site(db, org, site)
        zone_id = registry.ensure_zone(db, site_id, zone) if zone else None
        db.execute(
            "INSERT INTO tokens (id, secret_hash, broker_secret, org_id, site_id, zone_id,"
            " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [token_id, _hash(secret), secret, org, site_id, zone_id, wire.format_ts(now),
             wire.format_ts(now + ttl)],
        )
    return f"{token_id}.{secret}"


def _sensor_id(db: Database, wanted: str | None, zone: str | None) -> str:
    if wanted:
        if wire.is_reserved_name(wanted):
            raise EnrollmentError(f"the name {wanted!r} is reserved; choose another --name "
                                  f"(not starting with {', '.join(wire.RESERVED_NAME_PREFIXES)})")
        if db.execute("SELECT 1 FROM sensors WHERE id = ?", [wanted]).fetchone():
            raise EnrollmentError(f"a sensor named {wanted!r} exists already; choose another --name")
        return wanted
    stem = f"s-{zone}" if zone and wire.is_valid_id(f"s-{zone}") else "s"
    return f"{stem[:50]}-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Checked:
    """A request that passed every check; nothing is written until :func:`register`."""

    token_id: str
    sensor: str
    org: str
    site: str
    zone: str | None
    public_jwk: dict[str, str]
    hostname: str | None


def check(db: Database, token_id: str, token: bytes) -> Checked:
    """Check a signed enrollment request against its token; raises EnrollmentError."""
    try:
        header = signing.read_header(token)
        if header.typ != signing.TYPE_ENROLL:
            raise EnrollmentError("not an enrollment request")
        request = wire.EnrollRequest.decode(signing.peek_payload(token))
        key = signing.public_key_from_jwk(request.public_jwk)
        wire.EnrollRequest.decode(signing.verify(token, key, typ=signing.TYPE_ENROLL))
    except (signing.SignatureError, wire.WireError, ValueError) as exc:
        raise EnrollmentError(f"malformed enrollment request: {exc}") from None
    claimed_id, secret = wire.split_token(request.token)
    if claimed_id != token_id:
        raise EnrollmentError("the token does not belong to this request topic")
    row = db.execute(
        "SELECT t.secret_hash, t.expires_at, t.used_at, t.org_id, s.name, z.name"
        " FROM tokens t JOIN sites s ON s.id = t.site_id LEFT JOIN zones z ON z.id = t.zone_id"
        " WHERE t.id = ?",
        [token_id],
    ).fetchone()
    if row is None or not hmac.compare_digest(row[0], _hash(secret)):
        raise EnrollmentError("unknown token")
    if row[2] is not None:
        raise EnrollmentError("this token has been used already; ask for a new one")
    if row[1] < wire.utc_now():
        raise EnrollmentError("this token has expired; ask for a new one")
    return Checked(token_id=token_id, sensor=_sensor_id(db, request.name, row[5]), org=row[3],
                   site=row[4], zone=row[5], public_jwk=request.public_jwk,
                   hostname=request.hostname)


def register(db: Database, checked: Checked, *, broker_user: str | None = None) -> Enrolled:
    """Register a checked request's sensor and use up its token, in one transaction (the
    token is checked again inside it: two requests racing for one token get one sensor)."""
    with db.atomic():
        used = db.execute("SELECT used_at FROM tokens WHERE id = ?", [checked.token_id]).fetchone()
        if used is None or used[0] is not None:
            raise EnrollmentError("this token has been used already; ask for a new one")
        if db.execute("SELECT 1 FROM sensors WHERE id = ?", [checked.sensor]).fetchone():
            raise EnrollmentError(f"a sensor named {checked.sensor!r} exists already")
        registry.add_sensor(db, sensor=checked.sensor, org=checked.org, site=checked.site,
                            zone=checked.zone, public_jwk=checked.public_jwk)
        db.execute("UPDATE sensors SET hostname = ?, broker_state = ?, broker_user = ?,"
                   " broker_client_id = ? WHERE id = ?",
                   [checked.hostname, "active" if broker_user else "pending", broker_user,
                    broker_user, checked.sensor])
        db.execute("UPDATE tokens SET used_at = ?, sensor_id = ? WHERE id = ?",
                   [wire.utc_now(), checked.sensor, checked.token_id])
    return Enrolled(sensor=checked.sensor, org=checked.org, site=checked.site, zone=checked.zone)


def enroll(db: Database, token_id: str, token: bytes) -> Enrolled:
    """Check a signed enrollment request and register its sensor; raises EnrollmentError."""
    return register(db, check(db, token_id, token))


def revoke(db: Database, sensor: str) -> None:
    """From now on the sensor's messages are refused; the service removes its broker access."""
    cursor = db.execute(
        "UPDATE sensors SET status = 'revoked', revoked_at = ? WHERE id = ? AND status != 'revoked'",
        [wire.utc_now(), sensor],
    )
    if cursor.rowcount == 0 and not db.execute(
        "SELECT 1 FROM sensors WHERE id = ?", [sensor]
    ).fetchone():
        raise EnrollmentError(f"no sensor {sensor!r}")

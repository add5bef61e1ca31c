"""Verify signed findings and commit them to the inventory.

:meth:`Ingestor.ingest_all` takes (topic, payload) pairs as they come off the broker and
commits the accepted ones in one transaction. A message is refused, counted and logged when
it is oversized, not a JWS we accept, from an unknown or revoked sensor, badly signed,
signed by one sensor but naming another, on a topic that is not its sensor's, malformed,
of an unsupported schema version, or a replay (its sequence number is not above the last
one committed for its sensor). Nothing a message holds can raise out of here.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from joserfc.jwk import OKPKey
from sqlite_utils import Database

from agent import signing, wire
from agent.wire import Asset, Findings
from fingerprints.classify import Observation, classify_device

log = logging.getLogger("netvagt.central.ingest")

MAX_REJECTION_ROWS = 10_000  # the rejection log keeps the newest this many; counters keep all
MAX_DETAIL_CHARS = 300
# A message whose sequence number is at most this far below the highest committed one is
# still accepted if that number was never used (a redelivery that arrived late, IPsec-style);
# older ones, and any number already committed, are refused as replays.
REPLAY_WINDOW = 1024
CLAIM_KEY = wire.CLAIM_KEY
ADDRESS_UPSERT = (  # probed or claimed: (asset, ip, kind, first seen, last seen, sensor)
    "INSERT INTO addresses (asset_id, ip, kind, first_seen, last_seen, last_sensor)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (asset_id, ip, kind) DO UPDATE SET"
    " last_seen = max(last_seen, excluded.last_seen), last_sensor = excluded.last_sensor")
HOSTNAME_KEYS = ("netbios.name", "dhcp.hostname", "snmp.sysname", "lldp.sysname")
# A sensor's clock may run this far ahead of the central's; a message stamped later than
# that is refused (a 9999-12-31 'last seen' would hide the asset from every 'gone' check).
MAX_CLOCK_SKEW = timedelta(minutes=10)
# Nothing was scanned before this: a sensor whose clock says otherwise (a Raspberry Pi
# without a real-time clock that never reached NTP) is refused until its clock is set.
EARLIEST_TS = datetime(2020, 1, 1, tzinfo=UTC)


class Reason(StrEnum):
    ACCEPTED = "accepted"
    OVERSIZED = "oversized"
    MALFORMED = "malformed"
    UNKNOWN_SENSOR = "unknown_sensor"
    REVOKED_SENSOR = "revoked_sensor"
    BAD_SIGNATURE = "bad_signature"
    IDENTITY_MISMATCH = "identity_mismatch"
    WRONG_TOPIC = "wrong_topic"
    UNSUPPORTED_VERSION = "unsupported_version"
    REPLAYED = "replayed"
    BAD_TIME = "bad_time"
    UNKNOWN_PLAN = "unknown_plan"
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    reason: Reason
    sensor: str | None = None
    org: str | None = None
    msg_id: str | None = None
    seq: int | None = None
    detail: str = ""
    committed: bool = False  # the message is in the inventory: now, or from an earlier delivery

    @property
    def accepted(self) -> bool:
        return self.reason is Reason.ACCEPTED


class Rejected(Exception):
    def __init__(
        self,
        reason: Reason,
        detail: str,
        sensor: str | None = None,
        *,
        committed: _Committed | None = None,
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.sensor = sensor
        self.committed = committed


@dataclass(frozen=True, slots=True)
class _Committed:
    """A redelivered message that is already in the inventory: refuse it, but acknowledge it."""

    org: str
    msg_id: str
    seq: int


@dataclass(slots=True)
class _Sensor:
    id: str
    org: str
    site_id: int
    status: str
    key: OKPKey
    last_seq: int


class Ingestor:
    """Verifies and stores findings; one per database connection (not thread-safe)."""

    def __init__(self, db: Database, *, max_clock_skew: timedelta = MAX_CLOCK_SKEW) -> None:
        self.db = db
        self.max_clock_skew = max_clock_skew
        self.counts: Counter[str] = Counter()
        self._sensors: dict[str, _Sensor] = {}
        self._data_version = -1
        self._load_sensors()

    # ------------------------------------------------------------------ registry

    def _load_sensors(self) -> None:
        sensors: dict[str, _Sensor] = {}
        for row in self.db.query(
            "SELECT id, org_id, site_id, status, public_jwk, last_seq FROM sensors"
        ):
            try:
                key = signing.public_key_from_jwk(row["public_jwk"])
            except (signing.SignatureError, ValueError, KeyError) as exc:
                log.error("sensor %s has an unusable public key: %s", row["id"], exc)
                continue
            sensors[row["id"]] = _Sensor(
                id=row["id"],
                org=row["org_id"],
                site_id=row["site_id"],
                status=row["status"],
                key=key,
                last_seq=row["last_seq"],
            )
        self._sensors = sensors
        self._data_version = self._version()

    def _version(self) -> int:
        # changes only when *another* connection commits: a CLI's revoke, a new sensor
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def _refresh_if_changed(self) -> None:
        if not self.db.conn.in_transaction and self._version() != self._data_version:
            self._load_sensors()

    def _sensor(self, kid: str) -> _Sensor | None:
        self._refresh_if_changed()
        return self._sensors.get(kid)

    def sensor_record(self, kid: str) -> _Sensor | None:
        """The registered, active sensor with this key id, or None."""
        sensor = self._sensor(kid)
        return sensor if sensor is not None and sensor.status == "active" else None

    def refresh(self) -> None:
        """Re-read the sensor registry now: after this connection itself added or revoked a
        sensor (another process's changes are noticed by themselves)."""
        self._load_sensors()

    # ------------------------------------------------------------------ verify

    def verify(self, topic: str, payload: bytes) -> tuple[_Sensor, Findings]:
        """Check one message completely without storing it; raises :class:`Rejected`."""
        if len(payload) > wire.MAX_MESSAGE_BYTES:
            raise Rejected(Reason.OVERSIZED, f"{len(payload)} bytes")
        try:
            header = signing.read_header(payload)
        except signing.MalformedToken as exc:
            raise Rejected(Reason.MALFORMED, str(exc)) from None
        except signing.SignatureError as exc:
            raise Rejected(Reason.BAD_SIGNATURE, str(exc)) from None
        sensor = self._sensor(header.kid)
        if sensor is None:
            raise Rejected(Reason.UNKNOWN_SENSOR, "no sensor registered with this key id",
                           sensor=header.kid[:64])
        if sensor.status != "active":
            raise Rejected(Reason.REVOKED_SENSOR, f"sensor is {sensor.status}", sensor=sensor.id)
        try:
            body = signing.verify(payload, sensor.key)
        except signing.SignatureError as exc:
            raise Rejected(Reason.BAD_SIGNATURE, str(exc), sensor=sensor.id) from None
        try:
            findings = Findings.decode(body)
        except wire.UnsupportedVersion as exc:
            raise Rejected(Reason.UNSUPPORTED_VERSION, str(exc), sensor=sensor.id) from None
        except wire.MalformedMessage as exc:
            raise Rejected(Reason.MALFORMED, str(exc), sensor=sensor.id) from None
        if findings.sensor != sensor.id or findings.org != sensor.org:
            raise Rejected(
                Reason.IDENTITY_MISMATCH,
                f"signed by {sensor.id} of {sensor.org} but names "
                f"{findings.sensor} of {findings.org}",
                sensor=sensor.id,
            )
        expected = wire.findings_topic(sensor.org, sensor.id)
        if topic != expected:
            raise Rejected(Reason.WRONG_TOPIC, f"{topic!r} is not {expected!r}", sensor=sensor.id)
        if findings.seq <= sensor.last_seq:
            self._check_replay(sensor, findings)
        self._check_time(sensor, findings)
        if findings.plan_id is not None and self.db.conn.execute(
            "SELECT 1 FROM plans WHERE id = ? AND sensor_id = ?", (findings.plan_id, sensor.id)
        ).fetchone() is None:
            raise Rejected(Reason.UNKNOWN_PLAN, f"no plan {findings.plan_id} was issued to "
                           f"{sensor.id}", sensor=sensor.id)
        return sensor, findings

    def _check_time(self, sensor: _Sensor, findings: Findings) -> None:
        latest = datetime.now(UTC) + self.max_clock_skew
        for name in ("scan_started_at", "scan_finished_at", "sent_at"):
            moment = wire.parse_ts(getattr(findings, name))
            if moment > latest:
                raise Rejected(Reason.BAD_TIME, f"{name} {getattr(findings, name)} is more than "
                               f"{self.max_clock_skew} ahead of the central's clock",
                               sensor=sensor.id)
            if moment < EARLIEST_TS:
                raise Rejected(Reason.BAD_TIME, f"{name} {getattr(findings, name)} is before "
                               f"{EARLIEST_TS:%Y-%m-%d}: the sensor's clock is not set",
                               sensor=sensor.id)

    def _check_replay(self, sensor: _Sensor, findings: Findings) -> None:
        row = self.db.conn.execute(
            "SELECT msg_id FROM messages WHERE sensor_id = ? AND seq = ?", (sensor.id, findings.seq)
        ).fetchone()
        if row is not None and row[0] == findings.msg_id:
            raise Rejected(
                Reason.REPLAYED,
                f"message {findings.msg_id} (sequence {findings.seq}) is already committed",
                sensor=sensor.id,
                committed=_Committed(sensor.org, findings.msg_id, findings.seq),
            )
        if row is not None:
            raise Rejected(
                Reason.REPLAYED,
                f"sequence {findings.seq} was already used by message {row[0]}",
                sensor=sensor.id,
            )
        if findings.seq <= sensor.last_seq - REPLAY_WINDOW:
            raise Rejected(
                Reason.REPLAYED,
                f"sequence {findings.seq} is more than {REPLAY_WINDOW} below the last "
                f"committed {sensor.last_seq}",
                sensor=sensor.id,
            )

    # ------------------------------------------------------------------ ingest

    def ingest(self, topic: str, payload: bytes) -> Outcome:
        return self.ingest_all([(topic, payload)])[0]

    def ingest_all(self, messages: Iterable[tuple[str, bytes]]) -> list[Outcome]:
        """Verify each message and commit the accepted ones together; never raises for input."""
        outcomes: list[Outcome] = []
        rejections: list[tuple[Outcome, str, int]] = []
        received_at = wire.utc_now()
        self._refresh_if_changed()  # before the batch's transaction, so it can re-read
        with self.db.atomic():
            for topic, payload in messages:
                outcome = self._ingest_one(topic, payload, received_at)
                outcomes.append(outcome)
                if not outcome.accepted:
                    rejections.append((outcome, topic, len(payload)))
            self._record(outcomes, rejections, received_at)
        for outcome in outcomes:
            self.counts[outcome.reason.value] += 1
        for outcome, topic, size in rejections:
            log.warning(
                "rejected message: reason=%s sensor=%s topic=%r size=%d: %s",
                outcome.reason.value,
                outcome.sensor,
                topic[:200],
                size,
                outcome.detail,
            )
        return outcomes

    def _ingest_one(self, topic: str, payload: bytes, received_at: str) -> Outcome:
        try:
            sensor, findings = self.verify(topic, payload)
        except Rejected as exc:
            done = exc.committed
            return Outcome(
                reason=exc.reason,
                sensor=exc.sensor,
                detail=exc.detail[:MAX_DETAIL_CHARS],
                org=done.org if done else None,
                msg_id=done.msg_id if done else None,
                seq=done.seq if done else None,
                committed=done is not None,
            )
        except Exception as exc:  # never let one message stop the central
            log.exception("unexpected error while verifying a message")
            detail = f"{type(exc).__name__}: {exc}"[:MAX_DETAIL_CHARS]
            return Outcome(reason=Reason.INTERNAL_ERROR, detail=detail)
        try:
            with self.db.atomic():
                self._store(sensor, findings, received_at)
        except Exception as exc:
            log.exception("could not store message %s of %s", findings.msg_id, sensor.id)
            return Outcome(
                reason=Reason.INTERNAL_ERROR,
                sensor=sensor.id,
                detail=f"{type(exc).__name__}: {exc}"[:MAX_DETAIL_CHARS],
            )
        sensor.last_seq = max(sensor.last_seq, findings.seq)
        return Outcome(
            reason=Reason.ACCEPTED,
            sensor=sensor.id,
            org=sensor.org,
            msg_id=findings.msg_id,
            seq=findings.seq,
            committed=True,
        )

    def _store(self, sensor: _Sensor, findings: Findings, received_at: str) -> None:
        conn = self.db.conn
        conn.execute(
            "INSERT INTO messages (msg_id, sensor_id, seq, scan_id, part, parts, sent_at,"
            " received_at, assets) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                findings.msg_id,
                sensor.id,
                findings.seq,
                findings.scan_id,
                findings.part,
                findings.parts,
                findings.sent_at,
                received_at,
                len(findings.assets),
            ),
        )
        conn.execute(
            "UPDATE sensors SET last_seq = max(last_seq, ?), last_message_at = ? WHERE id = ?",
            (findings.seq, received_at, sensor.id),
        )
        observed = findings.scan_finished_at
        if findings.plan_id is not None:
            conn.executemany(
                "INSERT INTO reach (plan_id, sensor_id, msg_id, ip, proto, port, state, rtt_ms,"
                " observed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(findings.plan_id, sensor.id, findings.msg_id, p.ip, p.proto, p.port, p.state,
                  p.rtt_ms, observed) for p in findings.probes])
        for asset in findings.assets:
            asset_id = self._asset_id(sensor.site_id, asset, observed)
            conn.execute(ADDRESS_UPSERT, (asset_id, asset.ip, "probed", observed, observed,
                                          sensor.id))
            for service in asset.services:
                conn.execute(
                    "INSERT INTO services (asset_id, ip, proto, port, state, name, product,"
                    " version, extrainfo, banner, source, first_seen, last_seen)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (asset_id, ip, proto, port) DO UPDATE SET"
                    " state = excluded.state,"
                    " name = coalesce(excluded.name, name),"
                    " product = coalesce(excluded.product, product),"
                    " version = coalesce(excluded.version, version),"
                    " extrainfo = coalesce(excluded.extrainfo, extrainfo),"
                    " banner = coalesce(excluded.banner, banner),"
                    " source = excluded.source,"
                    " last_seen = max(last_seen, excluded.last_seen)",
                    (
                        asset_id,
                        asset.ip,
                        service.proto,
                        service.port,
                        service.state,
                        service.name,
                        service.product,
                        service.version,
                        service.extrainfo,
                        service.banner,
                        service.source,
                        observed,
                        observed,
                    ),
                )
            self._facts(asset_id, asset, sensor.id, observed)
            self._identify(asset_id, asset, observed)
            conn.execute(
                "INSERT INTO observations (asset_id, sensor_id, scan_id, msg_id, ip, observed_at,"
                " rtt_ms, sources) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    asset_id,
                    sensor.id,
                    findings.scan_id,
                    findings.msg_id,
                    asset.ip,
                    observed,
                    asset.rtt_ms,
                    json.dumps(list(asset.sources)),
                ),
            )

    def _facts(self, asset_id: int, asset: Asset, sensor_id: str, observed: str) -> None:
        """Keep what the device said; addresses it only claims go apart from probed ones."""
        conn = self.db.conn
        claims, facts = [], []
        for item in asset.observations:
            if item.key != CLAIM_KEY:
                facts.append((asset_id, item.key, item.value, item.source, asset.ip, sensor_id,
                              observed, observed))
                continue
            try:
                claimed = str(ipaddress.IPv4Address(item.value))
            except ValueError:
                continue
            claims.append((asset_id, claimed, "claimed", observed, observed, sensor_id))
        conn.executemany(ADDRESS_UPSERT, claims)
        conn.executemany(
            "INSERT INTO facts (asset_id, key, value, source, ip, sensor_id, first_seen,"
            " last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (asset_id, key, value, ip)"
            " DO UPDATE SET last_seen = max(last_seen, excluded.last_seen),"
            " sensor_id = excluded.sensor_id", facts)
        named = {o.key: o.value for o in asset.observations if o.key in HOSTNAME_KEYS}
        hostname = next((named[k] for k in HOSTNAME_KEYS if k in named), None)
        if hostname and asset.hostname is None:
            conn.execute("UPDATE assets SET hostname = ? WHERE id = ?", (hostname[:255], asset_id))

    def _identify(self, asset_id: int, asset: Asset, observed: str) -> None:
        """Name the device from what it said (and its MAC), keeping the evidence."""
        identity = classify_device(
            (Observation(key=o.key, value=o.value, source=o.source) for o in asset.observations),
            mac=asset.mac, mac_random=asset.mac_random, mac_vendor=asset.mac_vendor)
        if not identity.to_dict():
            return  # nothing new: keep what an earlier, fuller scan found
        evidence = [{"rule": e.rule, "key": e.key, "value": e.value, "source": e.source,
                     "fields": e.fields, "confidence": e.confidence} for e in identity.evidence]
        self.db.conn.execute(
            "UPDATE assets SET device_type = ?, vendor = ?, product = ?, model = ?, version = ?,"
            " os = ?, identity_confidence = ?, identity_evidence = ?, identity_conflicts = ?,"
            " identified_at = ? WHERE id = ?",
            (identity.device_type, identity.vendor, identity.product, identity.model,
             identity.version, identity.os, round(identity.confidence, 3), json.dumps(evidence),
             json.dumps(list(identity.conflicts)), observed, asset_id),
        )

    def _asset_id(self, site_id: int, asset: Asset, observed: str) -> int:
        """Find or create the asset: by MAC within the site, else by address within the site.

        An address first seen without a MAC (routed, ICMP) is kept as its own asset until a
        sensor on its link sees its MAC; then that asset takes the MAC as its identity.
        """
        conn = self.db.conn
        ip_identity = f"ip:{asset.ip}"
        if asset.mac is None:
            row = conn.execute(
                "SELECT a.id FROM assets a JOIN addresses d ON d.asset_id = a.id"
                " WHERE a.site_id = ? AND d.ip = ? AND d.kind = 'probed'"
                " ORDER BY d.last_seen DESC LIMIT 1",
                (site_id, asset.ip),
            ).fetchone()
            if row is not None:
                conn.execute(
                    "UPDATE assets SET last_seen = max(last_seen, ?),"
                    " hostname = coalesce(?, hostname) WHERE id = ?",
                    (observed, asset.hostname, row[0]),
                )
                return int(row[0])
            identity = ip_identity
        else:
            identity = f"mac:{asset.mac}"
            known = conn.execute(
                "SELECT id FROM assets WHERE site_id = ? AND identity = ?", (site_id, identity)
            ).fetchone()
            if known is None:
                # promote an address-only asset now that its MAC is known
                conn.execute(
                    "UPDATE assets SET identity = ?, mac = ? WHERE site_id = ? AND identity = ?",
                    (identity, asset.mac, site_id, ip_identity),
                )
        row = conn.execute(
            "INSERT INTO assets (site_id, identity, mac, mac_vendor, mac_random, hostname,"
            " first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (site_id, identity) DO UPDATE SET"
            " mac_vendor = coalesce(excluded.mac_vendor, mac_vendor),"
            " mac_random = excluded.mac_random,"
            " hostname = coalesce(excluded.hostname, hostname),"
            " first_seen = min(first_seen, excluded.first_seen),"
            " last_seen = max(last_seen, excluded.last_seen)"
            " RETURNING id",
            (
                site_id,
                identity,
                asset.mac,
                asset.mac_vendor,
                int(asset.mac_random),
                asset.hostname,
                observed,
                observed,
            ),
        ).fetchone()
        return int(row[0])

    def _record(
        self,
        outcomes: list[Outcome],
        rejections: list[tuple[Outcome, str, int]],
        at: str,
    ) -> None:
        conn = self.db.conn
        tally = Counter(o.reason.value for o in outcomes)
        conn.executemany(
            "INSERT INTO message_counts (reason, count) VALUES (?, ?)"
            " ON CONFLICT (reason) DO UPDATE SET count = count + excluded.count",
            list(tally.items()),
        )
        if rejections:
            conn.executemany(
                "INSERT INTO rejections (at, reason, sensor, topic, size, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (at, o.reason.value, o.sensor, topic[:200], size, o.detail)
                    for o, topic, size in rejections
                ],
            )
            conn.execute(
                "DELETE FROM rejections WHERE id <= (SELECT max(id) FROM rejections) - ?",
                (MAX_REJECTION_ROWS,),
            )


def counts(db: Database) -> dict[str, int]:
    """Messages accepted and refused, by reason, since the database was created."""
    return {row["reason"]: row["count"] for row in db.query("SELECT * FROM message_counts")}


def recent_rejections(db: Database, limit: int = 20) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM rejections ORDER BY id DESC LIMIT ?", [limit]))

"""Message verification: is this a message the central accepts, and from whom?

A message is refused when it is oversized, not a JWS we accept, from an unknown or revoked
sensor, badly signed, signed by one sensor but naming another, on a topic that is not its
sensor's, malformed, of an unsupported schema version, stamped outside the sensor clock's
bounds, answering a plan never issued to it, or a replay (its sequence number already used,
or too far below the last one committed for its sensor). Nothing is stored here: the
:class:`Verifier` only reads the registry, the messages already committed and the plans.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from joserfc.jwk import OKPKey
from sqlite_utils import Database

from agent import signing, wire
from agent.wire import Findings

log = logging.getLogger("netvagt.central.verify")

# A message whose sequence number is at most this far below the highest committed one is
# still accepted if that number was never used (a redelivery that arrived late, IPsec-style);
# older ones, and any number already committed, are refused as replays.
REPLAY_WINDOW = 1024
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


class Rejected(Exception):
    def __init__(
        self,
        reason: Reason,
        detail: str,
        sensor: str | None = None,
        *,
        committed: Committed | None = None,
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.sensor = sensor
        self.committed = committed


@dataclass(frozen=True, slots=True)
class Committed:
    """A redelivered message that is already in the inventory: refuse it, but acknowledge it."""

    org: str
    msg_id: str
    seq: int


@dataclass(slots=True)
class SensorKey:
    """A registered sensor as verification needs it."""

    id: str
    org: str
    site_id: int
    status: str
    key: OKPKey
    last_seq: int


class Verifier:
    """Checks messages against the sensor registry (re-read when another connection
    changes it); one per database connection."""

    def __init__(self, db: Database, *, max_clock_skew: timedelta = MAX_CLOCK_SKEW) -> None:
        self.db = db
        self.max_clock_skew = max_clock_skew
        self._sensors: dict[str, SensorKey] = {}
        self._data_version = -1
        self._load_sensors()

    def _load_sensors(self) -> None:
        sensors: dict[str, SensorKey] = {}
        for row in self.db.query(
            "SELECT id, org_id, site_id, status, public_jwk, last_seq FROM sensors"
        ):
            try:
                key = signing.public_key_from_jwk(row["public_jwk"])
            except (signing.SignatureError, ValueError, KeyError) as exc:
                log.error("sensor %s has an unusable public key: %s", row["id"], exc)
                continue
            sensors[row["id"]] = SensorKey(
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

    def refresh_if_changed(self) -> None:
        if not self.db.conn.in_transaction and self._version() != self._data_version:
            self._load_sensors()

    def sensor(self, kid: str) -> SensorKey | None:
        self.refresh_if_changed()
        return self._sensors.get(kid)

    def sensor_record(self, kid: str) -> SensorKey | None:
        """The registered, active sensor with this key id, or None."""
        sensor = self.sensor(kid)
        return sensor if sensor is not None and sensor.status == "active" else None

    def refresh(self) -> None:
        """Re-read the sensor registry now: after this connection itself added or revoked a
        sensor (another process's changes are noticed by themselves)."""
        self._load_sensors()

    def verify(self, topic: str, payload: bytes) -> tuple[SensorKey, Findings]:
        """Check one message completely without storing it; raises :class:`Rejected`."""
        sensor, header = self._signer(payload)
        findings = self._findings(sensor, payload, header)
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

    def _signer(self, payload: bytes) -> tuple[SensorKey, signing.Header]:
        """The active sensor the message's header names (its signature not yet checked),
        and the header."""
        if len(payload) > wire.MAX_MESSAGE_BYTES:
            raise Rejected(Reason.OVERSIZED, f"{len(payload)} bytes")
        try:
            header = signing.read_header(payload)
        except signing.MalformedToken as exc:
            raise Rejected(Reason.MALFORMED, str(exc)) from None
        except signing.SignatureError as exc:
            raise Rejected(Reason.BAD_SIGNATURE, str(exc)) from None
        sensor = self.sensor(header.kid)
        if sensor is None:
            raise Rejected(Reason.UNKNOWN_SENSOR, "no sensor registered with this key id",
                           sensor=header.kid[:64])
        if sensor.status != "active":
            raise Rejected(Reason.REVOKED_SENSOR, f"sensor is {sensor.status}", sensor=sensor.id)
        return sensor, header

    @staticmethod
    def _findings(sensor: SensorKey, payload: bytes, header: signing.Header) -> Findings:
        """The body, if the sensor's key signed it, as findings that name that sensor."""
        try:
            body = signing.verify(payload, sensor.key, header=header)
        except signing.SignatureError as exc:
            raise Rejected(Reason.BAD_SIGNATURE, str(exc), sensor=sensor.id) from None
        try:
            findings = Findings.decode(body)
        except wire.UnsupportedVersion as exc:
            raise Rejected(Reason.UNSUPPORTED_VERSION, str(exc), sensor=sensor.id) from None
        except wire.MalformedMessage as exc:
            raise Rejected(Reason.MALFORMED, str(exc), sensor=sensor.id) from None
        if findings.sensor != sensor.id or findings.org != sensor.org:
            raise Rejected(Reason.IDENTITY_MISMATCH, f"signed by {sensor.id} of {sensor.org} "
                           f"but names {findings.sensor} of {findings.org}", sensor=sensor.id)
        return findings

    def _check_time(self, sensor: SensorKey, findings: Findings) -> None:
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

    def _check_replay(self, sensor: SensorKey, findings: Findings) -> None:
        row = self.db.conn.execute(
            "SELECT msg_id FROM messages WHERE sensor_id = ? AND seq = ?", (sensor.id, findings.seq)
        ).fetchone()
        if row is not None and row[0] == findings.msg_id:
            raise Rejected(
                Reason.REPLAYED,
                f"message {findings.msg_id} (sequence {findings.seq}) is already committed",
                sensor=sensor.id,
                committed=Committed(sensor.org, findings.msg_id, findings.seq),
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

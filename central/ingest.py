"""Ingest: verify signed findings (:mod:`central.verify`) and commit the accepted ones to
the inventory (:mod:`central.store`), counting and logging every refusal.

:meth:`Ingestor.ingest_all` takes (topic, payload) pairs as they come off the broker and
commits the accepted ones in one transaction. Nothing a message holds can raise out of here.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlite_utils import Database

from agent import wire
from agent.wire import Findings
from central.db import immediate
from central.store import Store
from central.verify import (
    MAX_CLOCK_SKEW,
    REPLAY_WINDOW,
    Reason,
    Rejected,
    SensorKey,
    Verifier,
)

__all__ = ["MAX_CLOCK_SKEW", "REPLAY_WINDOW", "Ingestor", "Outcome", "Reason", "counts",
           "recent_rejections"]

log = logging.getLogger("netvagt.central.ingest")

MAX_DETAIL_CHARS = 300


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


class Ingestor:
    """Verifies and stores findings; one per database connection (not thread-safe)."""

    def __init__(self, db: Database, *, max_clock_skew: timedelta = MAX_CLOCK_SKEW) -> None:
        self.db = db
        self.verifier = Verifier(db, max_clock_skew=max_clock_skew)
        self.store = Store(db.conn)
        self.counts: Counter[str] = Counter()

    def sensor_record(self, kid: str) -> SensorKey | None:
        """The registered, active sensor with this key id, or None."""
        sensor = self.verifier.sensor(kid)
        return sensor if sensor is not None and sensor.status == "active" else None

    def refresh(self) -> None:
        """Re-read the sensor registry now: after this connection itself added or revoked a
        sensor (another process's changes are noticed by themselves)."""
        self.verifier.refresh()

    def verify(self, topic: str, payload: bytes) -> tuple[SensorKey, Findings]:
        """Check one message completely without storing it; raises :class:`Rejected`."""
        return self.verifier.verify(topic, payload)

    def ingest(self, topic: str, payload: bytes) -> Outcome:
        return self.ingest_all([(topic, payload)])[0]

    def ingest_all(self, messages: Iterable[tuple[str, bytes]]) -> list[Outcome]:
        """Verify each message and commit the accepted ones together; never raises for input."""
        outcomes: list[Outcome] = []
        rejections: list[tuple[Outcome, str, int]] = []
        received_at = wire.utc_now()
        self.verifier.refresh_if_changed()  # before the batch's transaction, so it can re-read
        # the write lock from the start: the batch reads (replays) then writes, and another
        # connection (the service's statuses and commands) may write in between
        with immediate(self.db):
            for topic, payload in messages:
                outcome = self._ingest_one(topic, payload, received_at)
                outcomes.append(outcome)
                if not outcome.accepted:
                    rejections.append((outcome, topic, len(payload)))
            self.store.outcomes(Counter(o.reason.value for o in outcomes),
                                [(o.reason.value, o.sensor, topic, size, o.detail)
                                 for o, topic, size in rejections], received_at)
        for outcome in outcomes:
            self.counts[outcome.reason.value] += 1
        for outcome, topic, size in rejections:
            log.warning("rejected message: reason=%s sensor=%s topic=%r size=%d: %s",
                        outcome.reason.value, outcome.sensor, topic[:200], size, outcome.detail)
        return outcomes

    def _ingest_one(self, topic: str, payload: bytes, received_at: str) -> Outcome:
        try:
            sensor, findings = self.verifier.verify(topic, payload)
        except Rejected as exc:
            done = exc.committed
            return Outcome(reason=exc.reason, sensor=exc.sensor,
                           detail=exc.detail[:MAX_DETAIL_CHARS],
                           org=done.org if done else None, msg_id=done.msg_id if done else None,
                           seq=done.seq if done else None, committed=done is not None)
        except Exception as exc:  # never let one message stop the central
            log.exception("unexpected error while verifying a message")
            detail = f"{type(exc).__name__}: {exc}"[:MAX_DETAIL_CHARS]
            return Outcome(reason=Reason.INTERNAL_ERROR, detail=detail)
        try:
            with self.db.atomic():
                self.store.findings(sensor, findings, received_at)
        except Exception as exc:
            log.exception("could not store message %s of %s", findings.msg_id, sensor.id)
            return Outcome(reason=Reason.INTERNAL_ERROR, sensor=sensor.id,
                           detail=f"{type(exc).__name__}: {exc}"[:MAX_DETAIL_CHARS])
        sensor.last_seq = max(sensor.last_seq, findings.seq)
        return Outcome(reason=Reason.ACCEPTED, sensor=sensor.id, org=sensor.org,
                       msg_id=findings.msg_id, seq=findings.seq, committed=True)


def counts(db: Database) -> dict[str, int]:
    """Messages accepted and refused, by reason, since the database was created."""
    return {row["reason"]: row["count"] for row in db.query("SELECT * FROM message_counts")}


def recent_rejections(db: Database, limit: int = 20) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM rejections ORDER BY id DESC LIMIT ?", [limit]))

"""The sensor's durable outbox: signed messages wait here until the central has them.

Every batch is signed with its sequence number and written to SQLite (synchronous=FULL)
before anything is sent; a message leaves the outbox only when the central's signed
acknowledgement says it is committed (not on the broker's PUBACK: a broker may lose what it
acknowledged). The sequence counter lives in the same database, so it keeps rising
across restarts and power loss, and the central can refuse replays by it.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from joserfc.jwk import OKPKey

from agent import signing, wire
from agent.wire import Asset, Findings

DEFAULT_LIMIT_BYTES = 64 * 1024 * 1024  # the outbox refuses new scans past this size


class OutboxFull(RuntimeError):
    """The outbox holds more than its limit: scanning pauses rather than dropping findings."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Pending:
    seq: int
    msg_id: str
    topic: str
    token: bytes


class Outbox:
    def __init__(self, path: Path, *, limit_bytes: int = DEFAULT_LIMIT_BYTES) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.limit_bytes = limit_bytes
        self.conn = sqlite3.connect(str(path), isolation_level=None, timeout=10)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, msg_id TEXT NOT NULL UNIQUE,"
            " topic TEXT NOT NULL, token BLOB NOT NULL, created_at TEXT NOT NULL)"
        )
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
        )

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def size_bytes(self) -> int:
        row = self.conn.execute("SELECT coalesce(sum(length(token)), 0) FROM outbox").fetchone()
        return int(row[0])

    def depth(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def last_seq(self) -> int:
        row = self.conn.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()
        return int(row[0]) if row else 0

    def enqueue_scan(
        self,
        *,
        sensor: str,
        org: str,
        key: OKPKey,
        started_at: str,
        finished_at: str,
        networks: Sequence[str],
        assets: Sequence[Asset] = (),
        plan_id: str | None = None,
        probes: Sequence[wire.Probe] = (),
        port_vlans: Sequence[wire.PortVlan] = (),
        port_trunking: Sequence[wire.PortTrunking] = (),
    ) -> list[int]:
        """Sign the scan (or a probe plan's results) as one or more messages and store them;
        returns their sequence numbers."""
        if self.size_bytes() > self.limit_bytes:
            raise OutboxFull(
                f"the outbox holds more than {self.limit_bytes} bytes not yet acknowledged by "
                "the central"
            )
        batches: list[tuple[list[Asset], tuple[wire.Probe, ...]]] = (
            [([], tuple(b)) for b in wire.probe_batches(probes)]
            if plan_id is not None else [(b, ()) for b in wire.batches(assets)])
        batches = batches or [([], ())]
        scan_id = uuid.uuid4().hex
        topic = wire.findings_topic(org, sensor)
        seqs: list[int] = []
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            seq = self.last_seq()
            for part, (batch, probe_batch) in enumerate(batches, start=1):
                seq += 1
                findings = Findings(
                    sensor=sensor,
                    org=org,
                    seq=seq,
                    msg_id=uuid.uuid4().hex,
                    scan_id=scan_id,
                    sent_at=wire.utc_now(),
                    scan_started_at=started_at,
                    scan_finished_at=finished_at,
                    part=part,
                    parts=len(batches),
                    networks=tuple(networks)[:64],
                    assets=tuple(batch),
                    plan_id=plan_id,
                    probes=probe_batch,
                    port_vlans=tuple(port_vlans)[:wire.MAX_PORT_VLANS],
                    port_trunking=tuple(port_trunking)[:wire.MAX_VLAN_SENDERS],
                )
                token = signing.sign(findings.encode(), key, kid=sensor)
                self.conn.execute(
                    "INSERT INTO outbox (seq, msg_id, topic, token, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (seq, findings.msg_id, topic, token, findings.sent_at),
                )
                seqs.append(seq)
            self.conn.execute(
                "INSERT INTO counters (name, value) VALUES ('seq', ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (seq,),
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return seqs

    def pending(self, limit: int = 100) -> list[Pending]:
        """The oldest messages the central has not acknowledged yet, in sequence order."""
        return [
            Pending(seq=row[0], msg_id=row[1], topic=row[2], token=bytes(row[3]))
            for row in self.conn.execute(
                "SELECT seq, msg_id, topic, token FROM outbox ORDER BY seq LIMIT ?", (limit,)
            )
        ]

    def acknowledged(self, msg_ids: Sequence[str]) -> int:
        """Delete what the central acknowledged; returns how many were still here."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            deleted = sum(
                self.conn.execute("DELETE FROM outbox WHERE msg_id = ?", (m,)).rowcount
                for m in msg_ids
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return deleted

"""The ingest process: a real child process with its own SQLite connection, killed by its
PID mid-batch and between batches, signalled, and heard through its logs."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from agent.wire import Asset
from central.db import open_db
from central.ingest import Outcome, Reason, counts
from central.ingest_worker import IngestWorker
from tests.conftest import MakeMessage


def _messages(make_message: MakeMessage, first: int, count: int) -> list[tuple[str, bytes]]:
    return [make_message(seq=seq, assets=(
        Asset(ip=f"10.1.{seq // 250}.{seq % 250}", mac=f"00:1b:1b:00:{seq // 250:02x}:{seq % 250:02x}",
              sources=("arp",)),))
            for seq in range(first, first + count)]


def _stored(db_path: Path) -> list[tuple[str, int]]:
    db = open_db(db_path)
    try:
        return [(row[0], row[1]) for row in db.execute(
            "SELECT msg_id, count(*) FROM messages GROUP BY msg_id")]
    finally:
        db.close()


@pytest.fixture
def worker(db: Database, registered: str) -> Iterator[IngestWorker]:
    path = Path(db.execute("PRAGMA database_list").fetchone()[2])
    started = IngestWorker(path)
    yield started
    started.close()


def _child(worker: IngestWorker) -> int:
    return int(worker.process.pid)


def _in_its_batch(db_path: Path) -> bool:
    """Whether the child holds the inventory's write lock: it takes it for a whole batch
    (BEGIN IMMEDIATE), so while it does, the batch is in hand and not yet committed."""
    conn = sqlite3.connect(str(db_path), timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:  # database is locked
        return True
    finally:
        conn.close()


async def _kill_inside_a_batch(worker: IngestWorker, db: Database, ingesting: Any) -> int:
    """SIGKILL the child once it is inside a batch (it holds the write lock), not at a
    guessed moment: 400 messages once took less than the 50 ms that were guessed, on a fast
    machine, and the child was killed after its batch. Returns the killed PID."""
    pid, path = _child(worker), Path(db.execute("PRAGMA database_list").fetchone()[2])
    deadline = time.monotonic() + 30
    while not _in_its_batch(path):
        assert not ingesting.done(), "the batch went in before the child was seen inside it"
        assert time.monotonic() < deadline, "the child never took the write lock"
        await asyncio.sleep(0.0005)
    os.kill(pid, signal.SIGKILL)
    return pid


def test_a_child_killed_mid_batch_loses_nothing_and_stores_nothing_twice(
        worker: IngestWorker, db: Database, make_message: MakeMessage) -> None:
    """SIGKILL while a batch of 400 is being ingested: the batch is taken again by a new
    child; each message ends in the inventory once, and each is acknowledged (committed)
    whether it was the first child or the second that stored it."""
    batch = _messages(make_message, 1, 400)

    async def run() -> list[Outcome]:
        ingesting = asyncio.ensure_future(worker.ingest(batch))
        pid = await _kill_inside_a_batch(worker, db, ingesting)
        outcomes = await ingesting
        assert _child(worker) != pid  # a new child took over
        return list(outcomes)

    outcomes = asyncio.run(run())
    assert len(outcomes) == 400 and all(o.committed for o in outcomes)
    stored = _stored(Path(db.execute("PRAGMA database_list").fetchone()[2]))
    assert len(stored) == 400 and all(times == 1 for _, times in stored)
    assert counts(db)["accepted"] == 400


def test_both_batches_in_hand_survive_one_death_with_one_new_child(
        worker: IngestWorker, db: Database, make_message: MakeMessage) -> None:
    """The session hands the child two batches at a time: when it dies, both fail, and one
    new child (not two) takes both."""
    first, second = _messages(make_message, 1, 300), _messages(make_message, 301, 300)

    async def run() -> list[list[Outcome]]:
        both = asyncio.gather(worker.ingest(first), worker.ingest(second))
        await _kill_inside_a_batch(worker, db, both)
        return list(await both)

    outcomes = asyncio.run(run())
    assert all(o.committed for batch in outcomes for o in batch)
    assert counts(db)["accepted"] == 600
    children = [p for p in Path("/proc").iterdir() if p.name.isdigit()
                and f"PPid:\t{_parent(_child(worker))}" in _status(p)]
    assert len(children) == 1  # the fork server has one child: no second one left over


def _status(process: Path) -> str:
    try:
        return (process / "status").read_text()
    except OSError:
        return ""


def _parent(pid: int) -> int:
    return int(next(line.split()[1] for line in _status(Path(f"/proc/{pid}")).splitlines()
                    if line.startswith("PPid:")))


def test_a_child_killed_between_batches_is_replaced_and_the_next_batch_goes_in(
        worker: IngestWorker, db: Database, make_message: MakeMessage,
        caplog: pytest.LogCaptureFixture) -> None:
    first, second = _messages(make_message, 1, 3), _messages(make_message, 4, 3)

    async def run() -> None:
        assert all(o.accepted for o in await worker.ingest(first))
        os.kill(_child(worker), signal.SIGKILL)
        time.sleep(0.2)
        assert all(o.accepted for o in await worker.ingest(second))

    with caplog.at_level(logging.ERROR, logger="netvagt.central.ingest"):
        asyncio.run(run())
    assert "ingest process ended abruptly" in caplog.text
    assert worker.counts == {"accepted": 6}
    assert counts(db)["accepted"] == 6


def test_the_child_leaves_ctrl_c_to_the_parent(
        worker: IngestWorker, make_message: MakeMessage) -> None:
    """A Ctrl-C reaches every process of the terminal's group: the child ignores it, and
    the parent ends it after the batch in hand."""
    pid = _child(worker)
    os.kill(pid, signal.SIGINT)
    time.sleep(0.2)
    outcomes = asyncio.run(worker.ingest(_messages(make_message, 1, 2)))
    assert all(o.accepted for o in outcomes) and _child(worker) == pid


def test_what_the_child_logs_reaches_the_central_s_log(
        worker: IngestWorker, make_message: MakeMessage,
        caplog: pytest.LogCaptureFixture) -> None:
    topic, good = make_message(seq=1)
    with caplog.at_level(logging.WARNING, logger="netvagt.central.ingest"):
        outcomes = asyncio.run(worker.ingest([(topic, b"\x00garbage"), (topic, good)]))
        deadline = time.monotonic() + 5
        while "rejected message" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)  # the relay thread passes the record on
    assert [o.reason for o in outcomes] == [Reason.MALFORMED, Reason.ACCEPTED]
    record = next(r for r in caplog.records if "rejected message" in r.getMessage())
    assert record.name == "netvagt.central.ingest" and record.levelno == logging.WARNING
    assert "reason=malformed" in record.getMessage()


def test_a_central_killed_outright_leaves_no_ingest_process_behind(db: Database) -> None:
    """SIGKILL to the central: its ingest child (which holds the database) and the fork
    server it came from end too, instead of living on as orphans."""
    import subprocess
    import sys

    path = db.execute("PRAGMA database_list").fetchone()[2]
    code = ("import os, sys, time\nfrom pathlib import Path\n"
            "from central.ingest_worker import IngestWorker\n"
            "worker = IngestWorker(Path(sys.argv[1]))\n"
            "print(worker.process.pid, flush=True)\n"
            "time.sleep(120)\n")
    central = subprocess.Popen([sys.executable, "-c", code, path], stdout=subprocess.PIPE,
                               text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert central.stdout is not None
        child = int(central.stdout.readline())
        server = int(next(line.split()[1] for line in Path(f"/proc/{child}/status").read_text()
                          .splitlines() if line.startswith("PPid:")))
        assert server != central.pid and Path(f"/proc/{server}").exists()
    finally:
        os.kill(central.pid, signal.SIGKILL)
        central.wait(timeout=10)
    deadline = time.monotonic() + 10
    while (Path(f"/proc/{child}").exists() or Path(f"/proc/{server}").exists()) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in (child, server) if Path(f"/proc/{pid}").exists()]
    for pid in left:  # a failing run leaves nothing behind either
        os.kill(pid, signal.SIGKILL)
    assert child not in left, "the ingest process outlived the central"
    assert server not in left, "the fork server outlived the central"


def test_a_batch_whose_session_ended_does_not_answer_for_the_next(
        worker: IngestWorker, db: Database, make_message: MakeMessage) -> None:
    """The broker session ends (its tasks cancelled) while a batch is in the child: the
    next session's batch gets its own outcomes, not the abandoned one's, and both are
    stored (the abandoned batch is acknowledged when its messages come again)."""
    first, second = _messages(make_message, 1, 300), _messages(make_message, 301, 3)

    async def run() -> list[Outcome]:
        abandoned = asyncio.ensure_future(worker.ingest(first))
        await asyncio.sleep(0.02)
        abandoned.cancel()
        return await worker.ingest(second)

    outcomes = asyncio.run(run())
    assert [o.seq for o in outcomes] == [301, 302, 303] and all(o.accepted for o in outcomes)
    assert counts(db)["accepted"] == 303

"""Verification and storage of findings in a process of their own.

The central's broker session (reading messages, acknowledging them, enrollment, statuses)
and ingest (signatures, schema, the inventory's writes) are each CPU-bound Python; in one
process they share one interpreter lock, and the machine's second core idles. So ingest
runs in a child process with its own database connection, and the session hands it each
batch of raw (topic, payload) pairs and gets the outcomes back:

- **Nothing lost, nothing twice.** A batch is one transaction in the child; its messages
  are acknowledged only after the outcomes come back. If the child dies mid-batch, the
  transaction rolls back (or had committed), a new child is started and the batch is
  ingested again: what had committed is recognised as already stored and acknowledged,
  not stored twice.
- **Logs** of the child (every refusal is logged) come back to the parent's handlers
  through a queue, so they read as the rest of the central's.
- **Signals**: the child ignores SIGINT and SIGTERM; the parent finishes the batch in
  hand and then closes the child, so a Ctrl-C or a stop never cuts a batch in two. A
  central that is killed outright takes its child with it: the child watches the
  central's PID (a pidfd) and ends when it does.

The child is made by the forkserver start method (never a fork of the threaded central)
from a server that has already imported this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.handlers
import multiprocessing
import os
import select
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import timedelta
from pathlib import Path
from typing import Any

from central.db import open_db
from central.ingest import MAX_CLOCK_SKEW, Ingestor, Outcome
from fingerprints.classify import load_rules

log = logging.getLogger("netvagt.central.ingest")

_INGESTOR: Ingestor | None = None  # in the child: its one ingestor and connection


def _start(db_path: str, max_clock_skew: timedelta, logs: Any, level: int,
           central: int) -> None:
    """The child's start: signals left to the parent, the parent watched, logs sent back,
    the rules loaded (once, not inside the first batch), the database opened."""
    global _INGESTOR
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_end_with, args=(central,), daemon=True,
                     name="netvagt-central-watch").start()
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(logs)]
    root.setLevel(level)
    load_rules()
    _INGESTOR = Ingestor(open_db(db_path), max_clock_skew=max_clock_skew)


def _end_with(central: int) -> None:
    """End this process as soon as the central that started it is gone. Nothing else
    would tell it: a killed central closes no pipe the child reads to its end, so the
    child (and the fork server, which waits for its children) would outlive it, holding
    the database. A transaction in hand is lost as in a power cut, and rolled back."""
    try:
        watched = os.pidfd_open(central)
    except ProcessLookupError:
        os._exit(1)  # gone already
    except OSError:  # a kernel without pidfd (before 5.3): ask every second
        while _alive(central):
            time.sleep(1.0)
        os._exit(1)
    select.select([watched], [], [])  # readable when the process has ended
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ingest(messages: list[tuple[str, bytes]]) -> list[Outcome]:
    if _INGESTOR is None:
        raise RuntimeError("the ingest process did not start")
    return _INGESTOR.ingest_all(messages)


def _close() -> None:
    if _INGESTOR is not None:
        _INGESTOR.db.close()


def _relay(logs: Any) -> None:
    """The parent's side of the log queue: each record to the logger it was made for."""
    while (record := logs.get()) is not None:
        logging.getLogger(record.name).handle(record)


class IngestWorker:
    """The ingest process, as the broker session sees it: ``await ingest(batch)``; and the
    run's outcomes counted by reason (``counts``)."""

    def __init__(self, db_path: Path, *, max_clock_skew: timedelta = MAX_CLOCK_SKEW) -> None:
        self.db_path, self.max_clock_skew = str(db_path), max_clock_skew
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload([__name__])
        self.logs = self.context.Queue()
        self.relay = threading.Thread(target=_relay, args=(self.logs,), daemon=True,
                                      name="netvagt-ingest-logs")
        self.relay.start()
        self.counts: Counter[str] = Counter()
        self.executor = self._executor()

    def _executor(self) -> ProcessPoolExecutor:
        level = logging.getLogger("netvagt").getEffectiveLevel()
        executor = ProcessPoolExecutor(
            max_workers=1, mp_context=self.context, initializer=_start,
            initargs=(self.db_path, self.max_clock_skew, self.logs, level, os.getpid()))
        executor.submit(int).result()  # started, rules loaded, database open (or raises)
        return executor

    async def ingest(self, messages: list[tuple[str, bytes]]) -> list[Outcome]:
        loop = asyncio.get_running_loop()
        try:
            outcomes = await loop.run_in_executor(self.executor, _ingest, messages)
        except BrokenProcessPool:
            # the child died (killed, out of memory): its transaction is gone or committed;
            # a new child takes the batch again, and what had committed is stored once
            log.error("the ingest process ended abruptly; starting a new one for %d message(s)",
                      len(messages))
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = await asyncio.to_thread(self._executor)
            outcomes = await loop.run_in_executor(self.executor, _ingest, messages)
        self.counts.update(o.reason.value for o in outcomes)
        return outcomes

    def close(self) -> None:
        """Close the child's connection and end it (a batch in hand finishes first)."""
        with contextlib.suppress(BrokenProcessPool):
            self.executor.submit(_close).result()
        self.executor.shutdown()
        self.logs.put(None)
        self.relay.join(timeout=5)
        self.logs.close()
        self.logs.join_thread()

"""Verification and storage of findings in a process of their own.

The central's broker session (reading messages, acknowledging them, enrollment, statuses)
and ingest (signatures, schema, the inventory's writes) are each CPU-bound Python; in one
process they share one interpreter lock, and the machine's second core idles. So ingest
runs in a child process with its own database connection, and the session hands it each
batch of raw (topic, payload) pairs over a pipe and gets the outcomes back:

- **Nothing lost, nothing twice.** A batch is one transaction in the child; its messages
  are acknowledged only after the outcomes come back. If the child dies mid-batch, its
  transaction rolls back (or had committed), a new child is started and the batch is
  ingested again: what had committed is recognised as already stored and acknowledged,
  not stored twice.
- **Logs** of the child (every refusal is logged) come back over a second pipe to the
  parent's handlers, so they read as the rest of the central's.
- **Ending.** The parent sends the child its last request when the service stops (a batch
  in hand finishes first). The child ignores Ctrl-C (the parent handles it and then ends
  the child), and ends by itself when the central is gone: it watches the central's PID,
  because a killed central closes no pipe the child could notice.

Two plain pipes, no executor: a process pool's queue can hang its feeder thread, and the
interpreter's exit with it, when a worker dies while a large batch is being written. The
child is started by the forkserver method (never a fork of the threaded central), from a
server that has already imported this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import multiprocessing
import os
import select
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from central.db import open_db
from central.ingest import MAX_CLOCK_SKEW, Ingestor, Outcome
from fingerprints.classify import load_rules

log = logging.getLogger("netvagt.central.ingest")

START_S = 60.0  # the child loads the fingerprint databases before it says it is ready
END_S = 30.0  # a batch in hand finishes before the child ends; then it is killed


class IngestProcessError(RuntimeError):
    """The ingest process could not start, or failed other than by dying."""


# --------------------------------------------------------------------------- the child

class _PipeHandler(logging.Handler):
    """The child's log records, formatted here (a traceback too), sent to the parent."""

    def __init__(self, conn: Connection) -> None:
        super().__init__()
        self.conn = conn

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sent = copy.copy(record)
            sent.msg, sent.args = self.format(record), None
            sent.exc_info = sent.exc_text = sent.stack_info = None
            self.conn.send(sent)
        except Exception:
            self.handleError(record)


def _child(conn: Connection, logs: Connection, db_path: str, max_clock_skew: timedelta,
           level: int, central: int) -> None:
    """The child's life: ready, then one batch per request until the last (None)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_with, args=(central,), daemon=True,
                     name="netvagt-central-watch").start()
    root = logging.getLogger()
    root.handlers[:] = [_PipeHandler(logs)]
    root.setLevel(level)
    load_rules()  # once, not inside the first batch
    ingestor = Ingestor(open_db(db_path), max_clock_skew=max_clock_skew)
    try:
        conn.send("ready")
        while (messages := conn.recv()) is not None:
            try:
                conn.send(ingestor.ingest_all(messages))
            except Exception as exc:  # ingest_all raises for no input; this is a bug
                log.exception("the ingest process failed on a batch")
                conn.send(IngestProcessError(f"{type(exc).__name__}: {exc}"))
    except (EOFError, OSError):
        pass  # the parent is gone
    finally:
        ingestor.db.close()


def _end_with(central: int) -> None:
    """End this process as soon as the central that started it is gone. A transaction in
    hand is lost as in a power cut, and rolled back."""
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
        pass
    return True


# --------------------------------------------------------------------------- the parent

def _relay(logs: Connection) -> None:
    """The parent's side of the log pipe: each record to the logger it was made for, until
    the child's end closes."""
    with logs:
        while True:
            try:
                record = logs.recv()
            except (EOFError, OSError):
                return
            logging.getLogger(record.name).handle(record)


class IngestWorker:
    """The ingest process, as the broker session sees it: ``await ingest(batch)``; and the
    run's outcomes counted by reason (``counts``)."""

    def __init__(self, db_path: Path, *, max_clock_skew: timedelta = MAX_CLOCK_SKEW) -> None:
        self.db_path, self.max_clock_skew = str(db_path), max_clock_skew
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload([__name__])
        self.counts: Counter[str] = Counter()
        # the pipe is used from this one thread only, a batch at a time and in order: a
        # batch whose session ended while it was in the child still has its answer read
        # here before the next batch goes (its messages are committed but not
        # acknowledged: they come again, and are acknowledged as already stored); and when
        # the child dies, the batches in hand see one new child, not one each
        self.io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netvagt-ingest-pipe")
        self.process, self.conn = self._start()

    def _start(self) -> tuple[Any, Connection]:
        conn, child_conn = self.context.Pipe()
        logs, child_logs = self.context.Pipe(duplex=False)
        level = logging.getLogger("netvagt").getEffectiveLevel()
        process = self.context.Process(
            target=_child, name="netvagt-ingest", daemon=True,
            args=(child_conn, child_logs, self.db_path, self.max_clock_skew, level,
                  os.getpid()))
        process.start()
        child_conn.close()  # the child's ends are the child's: its death closes them
        child_logs.close()
        threading.Thread(target=_relay, args=(logs,), daemon=True,
                         name="netvagt-ingest-logs").start()
        if not conn.poll(START_S):
            process.kill()
            raise IngestProcessError("the ingest process did not start in time")
        try:
            conn.recv()
        except (EOFError, OSError):
            raise IngestProcessError(
                f"the ingest process ended as it started (exit code {process.exitcode}); "
                "its error is in the log above") from None
        return process, conn

    def _call(self, messages: list[tuple[str, bytes]]) -> list[Outcome]:
        self.conn.send(messages)
        answer = self.conn.recv()
        if isinstance(answer, Exception):
            raise answer
        return list(answer)

    async def ingest(self, messages: list[tuple[str, bytes]]) -> list[Outcome]:
        outcomes = await asyncio.get_running_loop().run_in_executor(
            self.io, self._ingest, messages)
        self.counts.update(o.reason.value for o in outcomes)
        return outcomes

    def _ingest(self, messages: list[tuple[str, bytes]]) -> list[Outcome]:
        """One batch through the child (on the pipe's thread)."""
        try:
            return self._call(messages)
        except (EOFError, OSError):
            # the child died (killed, out of memory): its transaction is gone or
            # committed; a new child takes the batch again, and what had committed is
            # stored once
            log.error("the ingest process ended abruptly (exit code %s); starting a new one",
                      self.process.exitcode)
            self._end()
            self.process, self.conn = self._start()
            return self._call(messages)

    def _end(self) -> None:
        self.conn.close()
        self.process.join(END_S)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()

    def close(self) -> None:
        """End the child (a batch in hand finishes first) and wait for it."""
        self.io.submit(self._last).result()
        self.io.shutdown()

    def _last(self) -> None:
        with contextlib.suppress(OSError):  # it has ended already
            self.conn.send(None)
        self._end()

"""The discovery engine shared by ARP and ICMP sweeps.

One thread sends one probe per target at the limiter's pace while it reads answers, then
waits only as long as answers keep coming: the quiet period after the last probe adapts to
the round-trip times observed (a LAN that answers in a millisecond is not waited on for a
second). Targets that did not answer get ``retries`` more rounds. Nothing here knows the
protocol: ``send`` puts one probe on the wire, ``poll`` returns the answers that arrived.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


class Limiter(Protocol):
    """What a sweep paces itself by (a RateLimiter, or one keyed another way)."""

    def try_take(self, target: str) -> float: ...

MIN_QUIET_S = 0.05  # seconds to wait after the last probe when answers come fast
MAX_WAIT_S = 1.0  # seconds to wait after the last probe when nothing answered at all
RTT_FACTOR = 4.0  # quiet period = this many times the slowest round trip seen, at least MIN
POLL_SLICE_S = 0.005  # longest a poll blocks while probes are still to be sent

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepTiming:
    retries: int = 1  # extra rounds for targets that stayed silent
    min_quiet_s: float = MIN_QUIET_S
    max_wait_s: float = MAX_WAIT_S


@dataclass(frozen=True, slots=True)
class Answer(Generic[T]):
    target: str
    info: T
    at: float  # time.monotonic() when it arrived


@dataclass(slots=True)
class Reply(Generic[T]):
    info: T
    rtt_s: float


def sweep(
    targets: Sequence[str],
    *,
    send: Callable[[str], None],
    poll: Callable[[float], list[Answer[T]]],
    limiter: Limiter,
    timing: SweepTiming = SweepTiming(),
    progress: Progress | None = None,
) -> dict[str, Reply[T]]:
    """Probe every target, retrying the silent ones, and return who answered with what."""
    run = _Sweep(targets, send=send, poll=poll, limiter=limiter, timing=timing,
                 progress=progress)
    for round_no in range(1 + timing.retries):
        todo = [t for t in targets if t not in run.replies]
        if not todo:
            break
        for target in todo:
            run.probe(target, retry=round_no > 0)
    run.drain()
    if progress is not None:
        progress(run.total, run.total)
    return run.replies


class _Sweep(Generic[T]):
    """One sweep's state: when each probe went, who answered, how slow the slowest was."""

    def __init__(self, targets: Sequence[str], *, send: Callable[[str], None],
                 poll: Callable[[float], list[Answer[T]]], limiter: Limiter,
                 timing: SweepTiming, progress: Progress | None) -> None:
        self.wanted = set(targets)
        self.send, self.poll, self.limiter = send, poll, limiter
        self.timing, self.progress = timing, progress
        self.sent_at: dict[str, float] = {}
        self.replies: dict[str, Reply[T]] = {}
        self.slowest = 0.0
        self.total = len(targets) * (1 + timing.retries)
        self.done = 0
        self.last_sent = time.monotonic()

    def collect(self, timeout: float) -> None:
        for answer in self.poll(timeout):
            if answer.target not in self.wanted or answer.target in self.replies:
                continue
            started = self.sent_at.get(answer.target)
            if started is None:
                continue  # an answer to a probe we never sent
            rtt = max(0.0, answer.at - started)
            self.replies[answer.target] = Reply(answer.info, rtt)
            self.slowest = max(self.slowest, rtt)

    def quiet(self) -> float:
        if not self.replies:
            return self.timing.max_wait_s
        return min(self.timing.max_wait_s, max(self.timing.min_quiet_s, RTT_FACTOR * self.slowest))

    def probe(self, target: str, *, retry: bool) -> None:
        if retry:
            # a retry goes out only once its first probe had its chance to be answered:
            # no idle wait between rounds, yet no retry for an answer still in flight
            while (due := self.sent_at[target] + self.quiet() - time.monotonic()) > 0:
                self.collect(min(due, POLL_SLICE_S))
                if target in self.replies:
                    break
        while (wait := self.limiter.try_take(target)) > 0:
            self.collect(min(wait, POLL_SLICE_S))
        if target in self.replies:
            return  # a late answer from the previous round arrived meanwhile
        self.last_sent = self.sent_at[target] = time.monotonic()
        self.send(target)
        self.done += 1
        if self.progress is not None and self.done % 16 == 0:
            self.progress(self.done, self.total)
        self.collect(0.0)

    def drain(self) -> None:
        """Wait for the last answers: until every target answered, or it has been quiet
        for long enough after the last probe or answer."""
        last_activity = self.last_sent
        while len(self.replies) < len(self.wanted):
            remaining = last_activity + self.quiet() - time.monotonic()
            if remaining <= 0:
                break
            before = len(self.replies)
            self.collect(remaining)
            if len(self.replies) > before:
                last_activity = time.monotonic()

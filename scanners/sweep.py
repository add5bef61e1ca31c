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
from typing import Generic, TypeVar

from scanners.rate import RateLimiter

T = TypeVar("T")

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
    limiter: RateLimiter,
    timing: SweepTiming = SweepTiming(),
    progress: Progress | None = None,
) -> dict[str, Reply[T]]:
    """Probe every target, retrying the silent ones, and return who answered with what."""
    wanted = set(targets)
    sent_at: dict[str, float] = {}
    replies: dict[str, Reply[T]] = {}
    slowest = 0.0
    total = len(targets) * (1 + timing.retries)
    done = 0

    def collect(timeout: float) -> None:
        nonlocal slowest
        for answer in poll(timeout):
            if answer.target not in wanted or answer.target in replies:
                continue
            started = sent_at.get(answer.target)
            if started is None:
                continue  # an answer to a probe we never sent
            rtt = max(0.0, answer.at - started)
            replies[answer.target] = Reply(answer.info, rtt)
            slowest = max(slowest, rtt)

    def quiet() -> float:
        if not replies:
            return timing.max_wait_s
        return min(timing.max_wait_s, max(timing.min_quiet_s, RTT_FACTOR * slowest))

    last_sent = time.monotonic()
    for round_no in range(1 + timing.retries):
        todo = [t for t in targets if t not in replies]
        if not todo:
            break
        for target in todo:
            if round_no:
                # a retry goes out only once its first probe had its chance to be answered:
                # no idle wait between rounds, yet no retry for an answer still in flight
                while (due := sent_at[target] + quiet() - time.monotonic()) > 0:
                    collect(min(due, POLL_SLICE_S))
                    if target in replies:
                        break
            while (wait := limiter.try_take(target)) > 0:
                collect(min(wait, POLL_SLICE_S))
            if target in replies:
                continue  # a late answer from the previous round arrived meanwhile
            last_sent = sent_at[target] = time.monotonic()
            send(target)
            done += 1
            if progress is not None and done % 16 == 0:
                progress(done, total)
            collect(0.0)
    last_activity = last_sent
    while len(replies) < len(wanted):
        remaining = last_activity + quiet() - time.monotonic()
        if remaining <= 0:
            break
        before = len(replies)
        collect(remaining)
        if len(replies) > before:
            last_activity = time.monotonic()
    if progress is not None:
        progress(total, total)
    return replies

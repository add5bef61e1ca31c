"""When a sensor scans: a cron expression, a per-sensor jitter, quiet hours, a time limit.

The jitter is derived from the sensor's id, so every sensor of a municipality keeps its
own stable offset inside the window and they do not all start at 02:00:00 together. A run
that would start inside the quiet hours (local time, e.g. "07:00-17:00" when the care home
is busy) moves to the end of them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from croniter import croniter

DEFAULT_CRON = "0 1 * * *"  # nightly, at 01:00 local time, plus the jitter
DEFAULT_JITTER_S = 3 * 3600  # so nightly runs spread over 01:00-04:00
DEFAULT_MAX_DURATION_S = 4 * 3600
_QUIET_RE = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")


class ScheduleError(ValueError):
    """A cron expression or quiet-hours window that cannot be used."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    cron: str = DEFAULT_CRON
    jitter_s: float = DEFAULT_JITTER_S
    quiet_hours: str | None = None  # "HH:MM-HH:MM", local time; may wrap past midnight
    max_duration_s: float = DEFAULT_MAX_DURATION_S

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.cron):
            raise ScheduleError(f"{self.cron!r} is not a cron expression (e.g. '0 1 * * *')")
        if self.jitter_s < 0 or self.max_duration_s <= 0:
            raise ScheduleError("jitter must be >= 0 and the maximum duration > 0 seconds")
        if self.quiet_hours is not None:
            self.quiet()

    def quiet(self) -> tuple[time, time] | None:
        if self.quiet_hours is None:
            return None
        match = _QUIET_RE.match(self.quiet_hours)
        if match is None:
            raise ScheduleError(f"quiet hours {self.quiet_hours!r}: expected HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise ScheduleError(f"quiet hours {self.quiet_hours!r}: not a time of day")
        return time(h1, m1), time(h2, m2)


def jitter_for(sensor: str, jitter_s: float) -> timedelta:
    """A stable offset in [0, jitter_s) for this sensor."""
    if jitter_s <= 0:
        return timedelta(0)
    digest = int.from_bytes(hashlib.sha256(sensor.encode()).digest()[:8], "big")
    return timedelta(seconds=(digest % 1_000_000) / 1_000_000 * jitter_s)


def _in_quiet(moment: datetime, window: tuple[time, time]) -> bool:
    start, end = window
    now = moment.time()
    return start <= now < end if start <= end else (now >= start or now < end)


def _quiet_end(moment: datetime, window: tuple[time, time]) -> datetime:
    end = window[1]
    candidate = moment.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if candidate <= moment:
        candidate += timedelta(days=1)
    return candidate


def next_run(schedule: Schedule, sensor: str, after: datetime) -> datetime:
    """The next moment this sensor scans, strictly after ``after`` (a zone-aware datetime)."""
    offset = jitter_for(sensor, schedule.jitter_s)
    base = croniter(schedule.cron, after - offset).get_next(datetime)
    moment: datetime = base + offset
    window = schedule.quiet()
    if window is not None and _in_quiet(moment, window):
        moment = _quiet_end(moment, window)
    return moment

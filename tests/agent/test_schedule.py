"""Schedules: cron plus a stable per-sensor jitter, quiet hours respected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.schedule import Schedule, ScheduleError, jitter_for, next_run

T0 = datetime(2026, 11, 22, 0, 30, tzinfo=UTC)


def test_nightly_runs_spread_by_a_stable_per_sensor_jitter() -> None:
    schedule = Schedule(cron="0 1 * * *", jitter_s=3 * 3600)
    runs = {s: next_run(schedule, s, T0) for s in ("s-admin", "s-cameras", "s-bms", "s-care")}
    assert all(T0.replace(hour=1, minute=0) <= r < T0.replace(hour=4, minute=0) for r in runs.values())
    assert len(set(runs.values())) == 4  # not all at once
    assert next_run(schedule, "s-admin", T0) == runs["s-admin"]  # stable
    # the following night, same offset
    later = next_run(schedule, "s-admin", runs["s-admin"])
    assert later - runs["s-admin"] == timedelta(days=1)


def test_quiet_hours_push_a_run_to_their_end() -> None:
    schedule = Schedule(cron="0 9 * * *", jitter_s=0, quiet_hours="07:00-17:00")
    assert next_run(schedule, "s-care", T0) == T0.replace(hour=17, minute=0)
    wrapping = Schedule(cron="30 23 * * *", jitter_s=0, quiet_hours="22:00-06:00")
    assert next_run(wrapping, "s-care", T0) == T0.replace(hour=6, minute=0) + timedelta(days=1)


def test_seconds_field_and_zero_jitter() -> None:
    schedule = Schedule(cron="* * * * * */5", jitter_s=0)
    assert next_run(schedule, "s", T0.replace(second=1)) == T0.replace(second=5)
    assert jitter_for("s", 0) == timedelta(0)


@pytest.mark.parametrize("kwargs", [{"cron": "61 * * * *"}, {"cron": "nightly"},
                                    {"quiet_hours": "7-17"}, {"quiet_hours": "25:00-26:00"},
                                    {"jitter_s": -1}, {"max_duration_s": 0}])
def test_bad_schedules_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ScheduleError):
        Schedule(**kwargs)

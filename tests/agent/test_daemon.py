"""The sensor daemon's parts, one by one (no broker, no scan: fakes stand in for those;
the whole daemon runs against a real Mosquitto in the lab tests)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from joserfc.jwk import OKPKey

from agent import daemon as daemon_module
from agent import signing, wire
from agent.config import AgentConfig
from agent.daemon import Daemon
from agent.outbox import OutboxFull


@pytest.fixture
def central(tmp_path: Path) -> tuple[OKPKey, Path]:
    key = signing.generate_private_key()
    path = tmp_path / "central.jwk"
    path.write_text(json.dumps(signing.public_jwk(key)))
    return key, path


def _daemon(tmp_path: Path, central_jwk: Path) -> Daemon:
    signing.save_private_key(signing.generate_private_key(), tmp_path / "sensor.key")
    config = AgentConfig(sensor="s-one", org="aarhus", key=tmp_path / "sensor.key",
                         state_dir=tmp_path, broker_host="127.0.0.1", interface="lo",
                         central_key=central_jwk)
    return Daemon(config)


def _command(key: OKPKey, *, sensor: str = "s-one", expires_in: float = 600,
             command_id: str = "a" * 32, profile: str | None = "safe") -> bytes:
    now = datetime.now(UTC)
    command = wire.Command(id=command_id, sensor=sensor, org="aarhus", command="scan",
                           issued_at=wire.format_ts(now),
                           expires_at=wire.format_ts(now + timedelta(seconds=expires_in)),
                           profile=profile)
    return signing.sign(command.encode(), key, kid="central", typ=signing.TYPE_COMMAND)


def test_a_verified_command_becomes_one_scan_request_and_its_second_copy_none(
        tmp_path: Path, central: tuple[OKPKey, Path]) -> None:
    """The same command id again (a replay, or the central sending it again after the
    daemon's connection dropped) is obeyed once, and the second copy is no error in the
    status: the central sends commands again as it sends plans again."""
    key, jwk = central
    d = _daemon(tmp_path, jwk)
    d.take(_command(key))
    d.take(_command(key))  # the same id again
    assert d.requests.qsize() == 1 and d.requests.get_nowait() == "safe"
    assert not d.state.errors


@pytest.mark.parametrize("bad", ["forged", "other sensor", "expired", "garbage"])
def test_commands_that_do_not_verify_are_refused_into_the_status(
        tmp_path: Path, central: tuple[OKPKey, Path], bad: str) -> None:
    key, jwk = central
    d = _daemon(tmp_path, jwk)
    payload = {
        "forged": lambda: _command(signing.generate_private_key()),
        "other sensor": lambda: _command(key, sensor="s-two"),
        "expired": lambda: _command(key, expires_in=-1),
        "garbage": lambda: b"\x00" * 64,
    }[bad]()
    d.take(payload)
    assert d.requests.empty() and d.plans.empty()
    assert len(d.state.errors) == 1 and "refused" in d.state.errors[0]


def test_a_plan_sent_again_after_a_lost_connection_runs_once_and_is_no_error(
        tmp_path: Path, central: tuple[OKPKey, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The central sends a plan again when the sensor's daemon went offline soon after it
    was sent (its last will): a daemon that did get it runs it once, and the second copy
    is no error in its status (which the central tells as news)."""
    import asyncio

    from agent import reach

    key, jwk = central
    d = _daemon(tmp_path, jwk)
    ran: list[str] = []

    async def run_plan(plan: wire.ProbePlan, **_: object) -> list[wire.Probe]:
        ran.append(plan.id)
        return []

    monkeypatch.setattr(reach, "run_plan", run_plan)
    now = datetime.now(UTC)
    plan = wire.ProbePlan(id="b" * 32, sensor="s-one", org="aarhus", zone="office",
                          issued_at=wire.format_ts(now),
                          expires_at=wire.format_ts(now + timedelta(hours=1)), targets=())
    token = signing.sign(plan.encode(), key, kid="central", typ=signing.TYPE_PLAN)
    asyncio.run(d.run_plan(token))
    asyncio.run(d.run_plan(token))
    assert ran == ["b" * 32] and not d.state.errors


def test_a_plan_goes_to_the_plan_runner_not_the_scanner(
        tmp_path: Path, central: tuple[OKPKey, Path]) -> None:
    key, jwk = central
    d = _daemon(tmp_path, jwk)
    plan = signing.sign(b"{}", key, kid="central", typ=signing.TYPE_PLAN)
    d.take(plan)
    assert d.plans.get_nowait() == plan and d.requests.empty()


def test_a_plan_that_does_not_verify_is_an_error_and_nothing_runs(
        tmp_path: Path, central: tuple[OKPKey, Path]) -> None:
    _, jwk = central
    d = _daemon(tmp_path, jwk)
    forged = signing.sign(b"{}", signing.generate_private_key(), kid="central",
                          typ=signing.TYPE_PLAN)
    asyncio.run(d.run_plan(forged))
    assert len(d.state.errors) == 1 and not d.state.work.is_set()


def test_a_full_outbox_pauses_the_sensor_and_a_failed_scan_does_not_stop_it(
        tmp_path: Path, central: tuple[OKPKey, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    _, jwk = central
    d = _daemon(tmp_path, jwk)
    outcomes: list[BaseException | int] = [OutboxFull("full"), RuntimeError("boom"), 7]

    async def fake_scan(config: AgentConfig, outbox: object, *, profile: str) -> int:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    monkeypatch.setattr(daemon_module, "scan_into_outbox", fake_scan)
    asyncio.run(d.scan("safe"))
    assert d.state.state == "paused" and "paused" in d.state.errors[-1]
    asyncio.run(d.scan("safe"))
    assert d.state.state == "online" and "RuntimeError: boom" in d.state.errors[-1]
    asyncio.run(d.scan("safe"))
    assert d.state.state == "online" and d.state.last_scan_assets == 7
    assert d.state.work.is_set()  # the sender is woken for what was queued


def test_the_status_is_signed_by_the_sensor_and_says_offline_as_the_will(
        tmp_path: Path, central: tuple[OKPKey, Path]) -> None:
    _, jwk = central
    d = _daemon(tmp_path, jwk)
    public = signing.public_key_from_jwk(signing.public_jwk(signing.load_private_key(d.config.key)))
    online = wire.Status.decode(signing.verify(d.signed_status(), public, typ=signing.TYPE_STATUS))
    offline = wire.Status.decode(signing.verify(d.signed_status(online=False), public,
                                                typ=signing.TYPE_STATUS))
    assert (online.state, offline.state) == ("online", "offline")

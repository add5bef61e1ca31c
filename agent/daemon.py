"""The sensor's service: scan on the schedule (or when the central asks), keep the outbox
flowing, and say how it is (a retained, signed status; 'offline' as its MQTT last will).

Scanning does not depend on the broker: a scan that falls due while the central is away
goes into the outbox. When the outbox is full the sensor pauses scanning rather than drop
findings, and its status says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiomqtt
from joserfc.jwk import OKPKey

from agent import signing, wire
from agent.config import AgentConfig
from agent.outbox import Outbox, OutboxFull
from agent.publish import (
    RECONNECT_MAX_S,
    RECONNECT_S,
    BrokerConfig,
    BrokerRefused,
    Publisher,
    is_refused,
)
from agent.schedule import next_run

log = logging.getLogger("netvagt.agent.daemon")

VERSION = "0.1.0"
COMMAND_HISTORY = 1000  # command ids remembered, so a replayed command is not obeyed twice


@dataclass(slots=True)
class State:
    state: str = "online"
    last_scan_at: str | None = None
    last_scan_assets: int | None = None
    next_scan_at: str | None = None
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=8))
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    work: asyncio.Event = field(default_factory=asyncio.Event)  # something entered the outbox

    def error(self, text: str) -> None:
        log.warning("%s", text)
        self.errors.append(f"{wire.utc_now()} {text}"[: wire.MAX_TEXT_CHARS])
        self.changed.set()


def status(config: AgentConfig, state: State, depth: int, *, online: bool = True) -> wire.Status:
    return wire.Status(
        sensor=config.sensor, org=config.org, at=wire.utc_now(), version=VERSION,
        state=state.state if online else "offline", last_scan_at=state.last_scan_at,
        last_scan_assets=state.last_scan_assets, next_scan_at=state.next_scan_at,
        outbox_depth=depth, errors=tuple(state.errors),
    )


def verify_command(payload: bytes, *, config: AgentConfig, central_key: OKPKey,
                   seen: deque[str]) -> wire.Command:
    """A command the sensor may obey: the central's signature, for this sensor, not
    expired, not seen before. Raises ValueError saying why not."""
    try:
        command = wire.Command.decode(signing.verify(payload, central_key,
                                                     typ=signing.TYPE_COMMAND))
    except (signing.SignatureError, wire.WireError) as exc:
        raise ValueError(f"refused a command that does not verify: {exc}") from None
    if (command.sensor, command.org) != (config.sensor, config.org):
        raise ValueError(f"refused a command for {command.sensor} of {command.org}")
    if command.expires_at < wire.utc_now():
        raise ValueError(f"refused command {command.id}: expired at {command.expires_at}")
    if command.id in seen:
        raise ValueError(f"refused command {command.id}: already obeyed (a replay)")
    seen.append(command.id)
    return command


async def run_daemon(config: AgentConfig, *, stop: asyncio.Event | None = None) -> None:
    from agent.cli import scan_into_outbox  # the same scan as 'run --once'

    stop = stop or asyncio.Event()
    central_key: OKPKey = config.load_central_key()  # type: ignore[assignment]
    state = State()
    requests: asyncio.Queue[str | None] = asyncio.Queue()  # profile to scan with, now
    plans: asyncio.Queue[bytes] = asyncio.Queue(maxsize=8)  # signed probe plans to run
    seen: deque[str] = deque(maxlen=COMMAND_HISTORY)
    outbox = Outbox(config.outbox_path, limit_bytes=config.outbox_limit_bytes)

    async def scheduler() -> None:
        while not stop.is_set():
            due = next_run(config.schedule, config.sensor, datetime.now(UTC).astimezone())
            state.next_scan_at = wire.format_ts(due)
            state.changed.set()
            wait = max(0.0, (due - datetime.now(UTC)).total_seconds())
            profile: str | None = None
            with contextlib.suppress(TimeoutError):
                profile = await asyncio.wait_for(requests.get(), wait) or config.profile
            state.state = "scanning"
            state.changed.set()
            try:
                count = await asyncio.wait_for(
                    scan_into_outbox(config, outbox, profile=profile or config.profile),
                    config.schedule.max_duration_s)
                state.last_scan_at, state.last_scan_assets = wire.utc_now(), count
                state.state = "online"
            except OutboxFull as exc:
                state.state = "paused"
                state.error(f"scanning paused: {exc}")
            except TimeoutError:
                state.state = "online"
                state.error(f"scan stopped after {config.schedule.max_duration_s:.0f} s")
            except Exception as exc:  # a failed scan must not stop the sensor
                state.state = "online"
                state.error(f"scan failed: {type(exc).__name__}: {exc}")
            state.changed.set()
            state.work.set()

    async def reach() -> None:
        """Probe plans, one at a time, between scans' sends: verified, run, queued."""
        from agent.reach import PlanRefused, run_plan, verify_plan

        while not stop.is_set():
            token = await plans.get()
            try:
                plan = verify_plan(token, config=config, central_key=central_key)
            except PlanRefused as exc:
                state.error(str(exc))
                continue
            if plan.id in seen:
                state.error(f"refused probe plan {plan.id}: already run (a replay)")
                continue
            seen.append(plan.id)
            try:
                await run_plan(plan, config=config, outbox=outbox)
            except Exception as exc:  # a failed plan must not stop the sensor
                state.error(f"probe plan {plan.id} failed: {type(exc).__name__}: {exc}")
            state.work.set()

    async def connected(pub: Publisher) -> None:
        async def heartbeat() -> None:
            while True:
                token = signing.sign(status(config, state, outbox.depth()).encode(),
                                     _key(config), kid=config.sensor, typ=signing.TYPE_STATUS)
                await pub.client.publish(wire.status_topic(config.org, config.sensor), token,
                                         qos=1, retain=True)
                state.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(state.changed.wait(), config.heartbeat_s)

        async def deliver() -> None:
            while True:
                if outbox.depth():
                    await pub.flush(outbox, timeout=config.resend_s)
                    if state.state == "paused" and outbox.size_bytes() < outbox.limit_bytes:
                        state.state = "online"
                    state.changed.set()
                else:
                    state.work.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(state.work.wait(), config.heartbeat_s)

        async def obey() -> None:
            while True:
                payload = await pub.commands.get()
                if signing.peek_type(payload) == signing.TYPE_PLAN:
                    plans.put_nowait(payload)
                    continue
                try:
                    command = verify_command(payload, config=config, central_key=central_key,
                                             seen=seen)
                except ValueError as exc:
                    state.error(str(exc))
                    continue
                log.info("command %s from the central: %s %s", command.id, command.command,
                         command.profile or "")
                requests.put_nowait(command.profile)

        async def watch() -> None:
            while True:
                pub.reader_failed()
                await asyncio.sleep(0.5)

        async with asyncio.TaskGroup() as group:
            for job in (heartbeat(), deliver(), obey(), watch()):
                group.create_task(job)

    scheduling = asyncio.create_task(scheduler())
    reaching = asyncio.create_task(reach())
    broker = BrokerConfig(host=config.broker_host, port=config.broker_port,
                          username=config.broker_username, password=config.broker_password(),
                          client_id=config.client_id, tls_context=config.tls_context())
    pause = RECONNECT_S
    try:
        while not stop.is_set():
            will = aiomqtt.Will(
                wire.status_topic(config.org, config.sensor),
                signing.sign(status(config, state, outbox.depth(), online=False).encode(),
                             _key(config), kid=config.sensor, typ=signing.TYPE_STATUS),
                qos=1, retain=True)
            try:
                async with Publisher(broker, sensor=config.sensor, org=config.org,
                                     central_key=central_key, resend_s=config.resend_s,
                                     will=will, listen_commands=True) as pub:
                    pause = RECONNECT_S
                    stopper = asyncio.create_task(stop.wait())
                    session = asyncio.create_task(connected(pub))
                    await asyncio.wait({stopper, session}, return_when=asyncio.FIRST_COMPLETED)
                    for task in (stopper, session):
                        task.cancel()
                    if session.done() and not session.cancelled():
                        failure = session.exception()
                        if failure is not None:
                            raise failure
            except (aiomqtt.MqttError, ExceptionGroup) as exc:
                inner = _mqtt_error(exc)
                if inner is None:
                    raise
                if is_refused(inner):
                    state.error(f"the broker refused this sensor's login: {inner}")
                    raise BrokerRefused(f"the broker refused this sensor's login ({inner}): "
                                        "revoked, or the credentials are wrong") from inner
                state.error(f"broker unavailable: {inner}")
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
                pause = min(RECONNECT_MAX_S, pause * 2)
    finally:
        for task in (scheduling, reaching):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        outbox.close()


def _mqtt_error(exc: BaseException) -> aiomqtt.MqttError | None:
    if isinstance(exc, aiomqtt.MqttError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _mqtt_error(inner)
            if found is not None:
                return found
    return None


_KEYS: dict[str, OKPKey] = {}


def _key(config: AgentConfig) -> OKPKey:
    key = _KEYS.get(str(config.key))
    if key is None:
        key = _KEYS[str(config.key)] = signing.load_private_key(config.key)
    return key


def new_command_id() -> str:
    return uuid.uuid4().hex

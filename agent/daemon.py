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
from agent.run import broker_config, scan_into_outbox  # the same scan as 'run --once'
from agent.schedule import next_run
from fingerprints.databases import in_use

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
        outbox_depth=depth, errors=tuple(state.errors), databases=in_use(),
    )


def verify_command(payload: bytes, *, config: AgentConfig, central_key: OKPKey
                   ) -> wire.Command:
    """A command the sensor may obey: the central's signature, for this sensor, not
    expired. Raises ValueError saying why not."""
    try:
        command = wire.Command.decode(signing.verify(payload, central_key,
                                                     typ=signing.TYPE_COMMAND))
    except (signing.SignatureError, wire.WireError) as exc:
        raise ValueError(f"refused a command that does not verify: {exc}") from None
    if (command.sensor, command.org) != (config.sensor, config.org):
        raise ValueError(f"refused a command for {command.sensor} of {command.org}")
    if command.expires_at < wire.utc_now():
        raise ValueError(f"refused command {command.id}: expired at {command.expires_at}")
    return command


class Daemon:
    """The sensor's service as parts that can be tested one by one: the scheduler, the
    plan runner, and per broker session the heartbeat, the sender, the command reader."""

    def __init__(self, config: AgentConfig, *, stop: asyncio.Event | None = None) -> None:
        self.config = config
        self.stop = stop or asyncio.Event()
        self.central_key: OKPKey = config.load_central_key()
        self.state = State()
        self.requests: asyncio.Queue[str | None] = asyncio.Queue()  # profile to scan with, now
        self.plans: asyncio.Queue[bytes] = asyncio.Queue(maxsize=8)  # signed probe plans
        self.seen: deque[str] = deque(maxlen=COMMAND_HISTORY)
        self.outbox = Outbox(config.outbox_path, limit_bytes=config.outbox_limit_bytes)
        self.pause = RECONNECT_S  # before the next reconnect, doubled up to RECONNECT_MAX_S

    def _changed(self) -> None:
        self.state.changed.set()

    async def scan_when_due(self) -> None:
        """Wait for the schedule or the central's request, then one scan into the outbox."""
        config, state = self.config, self.state
        due = next_run(config.schedule, config.sensor, datetime.now(UTC).astimezone())
        state.next_scan_at = wire.format_ts(due)
        self._changed()
        wait = max(0.0, (due - datetime.now(UTC)).total_seconds())
        profile: str | None = None
        with contextlib.suppress(TimeoutError):
            profile = await asyncio.wait_for(self.requests.get(), wait) or config.profile
        await self.scan(profile or config.profile)

    async def scan(self, profile: str) -> None:
        config, state = self.config, self.state
        state.state = "scanning"
        self._changed()
        try:
            count = await asyncio.wait_for(scan_into_outbox(config, self.outbox, profile=profile),
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
        self._changed()
        state.work.set()

    async def scheduler(self) -> None:
        while not self.stop.is_set():
            await self.scan_when_due()

    async def run_plan(self, token: bytes) -> None:
        """One probe plan: verified, refused when replayed, run, its results queued."""
        from agent.reach import PlanRefused, run_plan, verify_plan

        state = self.state
        try:
            plan = verify_plan(token, config=self.config, central_key=self.central_key)
        except PlanRefused as exc:
            state.error(str(exc))
            return
        if not self.first_delivery("probe plan", plan.id):
            return
        try:
            await run_plan(plan, config=self.config, outbox=self.outbox)
        except Exception as exc:  # a failed plan must not stop the sensor
            state.error(f"probe plan {plan.id} failed: {type(exc).__name__}: {exc}")
        state.work.set()

    def first_delivery(self, what: str, ident: str) -> bool:
        """Whether a plan or command id is new to this daemon: the central sends both again
        when the sensor went offline soon after (it cannot tell a lost connection from a
        lost delivery); a second copy is obeyed once, and is no error."""
        if ident in self.seen:
            log.info("%s %s already obeyed: not again", what, ident)
            return False
        self.seen.append(ident)
        return True

    async def reach(self) -> None:
        """Probe plans, one at a time, between scans' sends."""
        while not self.stop.is_set():
            await self.run_plan(await self.plans.get())

    def signed_status(self, *, online: bool = True) -> bytes:
        return signing.sign(status(self.config, self.state, self.outbox.depth(), online=online)
                            .encode(), _key(self.config), kid=self.config.sensor,
                            typ=signing.TYPE_STATUS)

    async def heartbeat(self, pub: Publisher) -> None:
        while True:
            await pub.client.publish(wire.status_topic(self.config.org, self.config.sensor),
                                     self.signed_status(), qos=1, retain=True)
            self.state.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.state.changed.wait(), self.config.heartbeat_s)

    async def deliver(self, pub: Publisher) -> None:
        state, outbox = self.state, self.outbox
        while True:
            if outbox.depth():
                await pub.flush(outbox, timeout=self.config.resend_s)
                if state.state == "paused" and outbox.size_bytes() < outbox.limit_bytes:
                    state.state = "online"
                self._changed()
            else:
                state.work.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(state.work.wait(), self.config.heartbeat_s)

    def take(self, payload: bytes) -> None:
        """One message on the command topic: a plan is queued for the plan runner, a
        command that verifies becomes a scan request, anything else an error in the status."""
        if signing.peek_type(payload) == signing.TYPE_PLAN:
            self.plans.put_nowait(payload)
            return
        try:
            command = verify_command(payload, config=self.config, central_key=self.central_key)
        except ValueError as exc:
            self.state.error(str(exc))
            return
        if not self.first_delivery("command", command.id):
            return
        log.info("command %s from the central: %s %s", command.id, command.command,
                 command.profile or "")
        self.requests.put_nowait(command.profile)

    async def obey(self, pub: Publisher) -> None:
        while True:
            self.take(await pub.commands.get())

    @staticmethod
    async def watch(pub: Publisher) -> None:
        while True:
            pub.reader_failed()
            await asyncio.sleep(0.5)

    async def connected(self, pub: Publisher) -> None:
        async with asyncio.TaskGroup() as group:
            for job in (self.heartbeat(pub), self.deliver(pub), self.obey(pub), self.watch(pub)):
                group.create_task(job)

    async def session(self, broker: BrokerConfig) -> None:
        """One broker session, until the stop or the session fails."""
        will = aiomqtt.Will(wire.status_topic(self.config.org, self.config.sensor),
                            self.signed_status(online=False), qos=1, retain=True)
        async with Publisher(broker, sensor=self.config.sensor, org=self.config.org,
                             central_key=self.central_key, resend_s=self.config.resend_s,
                             will=will, listen_commands=True) as pub:
            self.pause = RECONNECT_S
            stopper = asyncio.create_task(self.stop.wait())
            session = asyncio.create_task(self.connected(pub))
            await asyncio.wait({stopper, session}, return_when=asyncio.FIRST_COMPLETED)
            for task in (stopper, session):
                task.cancel()
            if self.stop.is_set():  # a stop says so now: the last will is for a death (a
                # clean disconnect discards it), and the central sends only to the listening
                with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                    await pub.client.publish(
                        wire.status_topic(self.config.org, self.config.sensor),
                        self.signed_status(online=False), qos=1, retain=True)
            if session.done() and not session.cancelled():
                failure = session.exception()
                if failure is not None:
                    raise failure

    def broker_lost(self, exc: aiomqtt.MqttError | BaseExceptionGroup) -> None:
        """A lost session: a refused login ends the daemon, anything else is retried."""
        inner = _mqtt_error(exc)
        if inner is None:
            raise exc
        if is_refused(inner):
            self.state.error(f"the broker refused this sensor's login: {inner}")
            raise BrokerRefused(f"the broker refused this sensor's login ({inner}): "
                                "revoked, or the credentials are wrong") from inner
        self.state.error(f"broker unavailable: {inner}")

    async def run(self) -> None:
        tasks = (asyncio.create_task(self.scheduler()), asyncio.create_task(self.reach()))
        broker = broker_config(self.config)
        self.pause = RECONNECT_S
        try:
            while not self.stop.is_set():
                try:
                    await self.session(broker)
                except (aiomqtt.MqttError, ExceptionGroup) as exc:
                    self.broker_lost(exc)
                if not self.stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stop.wait(), self.pause)
                    self.pause = min(RECONNECT_MAX_S, self.pause * 2)
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.outbox.close()


async def run_daemon(config: AgentConfig, *, stop: asyncio.Event | None = None) -> None:
    await Daemon(config, stop=stop).run()


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

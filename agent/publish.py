"""Sending the outbox to the central through the broker, with aiomqtt: MQTT 5, QoS 1.

``async with Publisher(config, central_key=...) as publisher: await publisher.flush(outbox)``.
The publisher subscribes to its own acknowledgement topic, keeps a window of the oldest
unacknowledged messages in flight, sends a message again when its acknowledgement is
late, and deletes a message only when the central's signed acknowledgement names it. A
broken connection raises ``aiomqtt.MqttError``; reconnecting is the caller's loop around
``async with`` (see :func:`deliver`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass
from types import TracebackType

import aiomqtt
from joserfc.jwk import OKPKey

from agent import signing, wire
from agent.outbox import Outbox

log = logging.getLogger("netvagt.agent.publish")

WINDOW = 10  # unacknowledged messages in flight at once (aiomqtt warns past ten pending)
RESEND_S = 10.0  # send a message again when its acknowledgement is this late
PUBLISH_TIMEOUT_S = 30.0  # seconds to wait for a PUBACK before the connection is deemed dead
RECONNECT_S = 1.0  # first pause before reconnecting; doubles up to RECONNECT_MAX_S
RECONNECT_MAX_S = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerConfig:
    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    tls_context: ssl.SSLContext | None = None  # TLS to the broker when set


class BrokerRefused(aiomqtt.MqttError):
    """The broker refused this sensor's login: revoked, or wrong credentials. Not retried."""


REFUSED_CODES = frozenset({4, 5, 134, 135, 138})  # bad credentials / not authorised / banned


def is_refused(exc: aiomqtt.MqttError) -> bool:
    rc = getattr(exc, "rc", None)
    value = getattr(rc, "value", rc)
    return isinstance(value, int) and value in REFUSED_CODES


class Publisher:
    def __init__(self, config: BrokerConfig, *, sensor: str, org: str, central_key: OKPKey,
                 resend_s: float = RESEND_S, will: aiomqtt.Will | None = None,
                 listen_commands: bool = False) -> None:
        self.config = config
        self.resend_s = resend_s
        self.listen_commands = listen_commands
        self.commands_topic = wire.commands_topic(org, sensor)
        self.commands: asyncio.Queue[bytes] = asyncio.Queue(maxsize=100)
        self._acks: asyncio.Queue[bytes] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self.sensor = sensor
        self.org = org
        self.central_key = central_key
        self.ack_topic = wire.ack_topic(org, sensor)
        self._client = aiomqtt.Client(
            config.host,
            config.port,
            identifier=config.client_id,
            username=config.username,
            password=config.password,
            protocol=aiomqtt.ProtocolVersion.V5,
            timeout=PUBLISH_TIMEOUT_S,
            will=will,
            tls_context=config.tls_context,
        )

    @property
    def client(self) -> aiomqtt.Client:
        return self._client

    async def __aenter__(self) -> Publisher:
        await self._client.__aenter__()
        await self._client.subscribe(self.ack_topic, qos=1)
        if self.listen_commands:
            await self._client.subscribe(self.commands_topic, qos=1)
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        """One reader routes what arrives: acknowledgements and commands."""
        async for message in self._client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                continue
            topic = str(message.topic)
            if topic == self.ack_topic:
                self._acks.put_nowait(bytes(payload))
            elif topic == self.commands_topic and not self.commands.full():
                self.commands.put_nowait(bytes(payload))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self._client.__aexit__(exc_type, exc, tb)

    def reader_failed(self) -> None:
        """Raise the reader's error (a lost connection) in the caller's task."""
        if self._reader is not None and self._reader.done() and not self._reader.cancelled():
            error = self._reader.exception()
            raise error if error is not None else aiomqtt.MqttError("message stream ended")

    def _read_ack(self, payload: bytes) -> tuple[str, ...]:
        """The message ids a genuine acknowledgement for this sensor names; () otherwise."""
        try:
            ack = wire.Ack.decode(signing.verify(payload, self.central_key, typ=signing.TYPE_ACK))
        except (signing.SignatureError, wire.WireError) as exc:
            log.warning("ignoring an acknowledgement that does not verify: %s", exc)
            return ()
        if (ack.sensor, ack.org) != (self.sensor, self.org):
            log.warning("ignoring an acknowledgement for %s of %s", ack.sensor, ack.org)
            return ()
        return ack.msg_ids

    async def flush(self, outbox: Outbox, *, timeout: float | None = None) -> int:
        """Deliver the outbox until it is empty; returns how many messages were acknowledged.

        With ``timeout``, gives up after that many seconds (what is left stays queued).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        sent_at: dict[str, float] = {}
        acknowledged = 0
        while batch := outbox.pending(WINDOW):
            if deadline is not None and time.monotonic() > deadline:
                break
            now = time.monotonic()
            due = [m for m in batch
                   if now - sent_at.get(m.msg_id, -self.resend_s) >= self.resend_s]
            if due:
                # started in order on one connection, so the broker receives them in order
                await asyncio.gather(*(self._client.publish(m.topic, m.token, qos=1) for m in due))
                for m in due:
                    sent_at[m.msg_id] = time.monotonic()
            acknowledged += await self._collect_acks(outbox, wait=0.5)
        return acknowledged

    async def _collect_acks(self, outbox: Outbox, *, wait: float) -> int:
        self.reader_failed()
        try:
            first = await asyncio.wait_for(self._acks.get(), wait)
        except TimeoutError:
            self.reader_failed()
            return 0
        batch = [first]
        while not self._acks.empty():
            batch.append(self._acks.get_nowait())
        done = 0
        for payload in batch:
            ids = self._read_ack(payload)
            if ids:
                done += outbox.acknowledged(ids)
        return done


async def deliver(
    config: BrokerConfig,
    outbox: Outbox,
    *,
    sensor: str,
    org: str,
    central_key: OKPKey,
    timeout: float | None = None,
    resend_s: float = RESEND_S,
) -> int:
    """Flush the outbox, reconnecting with back-off while the broker is away."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = RECONNECT_S
    total = 0
    while outbox.depth():
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            break
        try:
            async with Publisher(config, sensor=sensor, org=org, central_key=central_key,
                                 resend_s=resend_s) as pub:
                pause = RECONNECT_S
                total += await pub.flush(outbox, timeout=remaining)
        except aiomqtt.MqttError as exc:
            if is_refused(exc):
                raise BrokerRefused(
                    f"the broker {config.host}:{config.port} refused this sensor's login ({exc}): "
                    "revoked, or the credentials are wrong; findings stay in the outbox"
                ) from exc
            log.warning("broker %s:%d: %s; %d message(s) wait in the outbox; retrying in %.0f s",
                        config.host, config.port, exc, outbox.depth(), pause)
            await asyncio.sleep(pause)
            pause = min(RECONNECT_MAX_S, pause * 2)
    return total

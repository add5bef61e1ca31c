"""The central's ingest service: subscribe to every sensor's findings and commit them.

``async with aiomqtt.Client(...)``, ``async for message in client.messages``; messages
that are already queued are taken together and committed in one transaction, so the rate
is bounded by SQLite's commits, not by one fsync per message. Reconnection is this loop
around ``async with``: the broker may go away and come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
from joserfc.jwk import OKPKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent import signing, wire
from central.db import open_db
from central.ingest import Ingestor, Outcome
from central.keys import key_path_for, load_or_create

log = logging.getLogger("netvagt.central.service")

MAX_BATCH = 500  # messages committed in one transaction
RECONNECT_S = 1.0  # seconds between attempts to reach the broker
SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps our queued messages this long offline


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    client_id: str = "netvagt-central"


async def serve(
    db_path: Path,
    broker: BrokerConfig,
    *,
    key_path: Path | None = None,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
    max_messages: int | None = None,
) -> Ingestor:
    """Ingest until ``stop`` is set (or ``max_messages`` were handled); returns the ingestor.

    After each commit, every committed message (and every redelivery of one already
    committed) is acknowledged to its sensor, signed with the central's key: only then does
    the sensor delete it from its outbox.
    """
    db = open_db(db_path)
    key = load_or_create(key_path or key_path_for(db_path))
    ingestor = Ingestor(db)
    stop = stop or asyncio.Event()
    handled = 0
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = SESSION_EXPIRY_S
    while not stop.is_set():
        try:
            async with aiomqtt.Client(
                broker.host,
                broker.port,
                identifier=broker.client_id,
                username=broker.username,
                password=broker.password,
                protocol=aiomqtt.ProtocolVersion.V5,
                clean_start=False,
                properties=properties,
                max_queued_incoming_messages=10_000,
            ) as client:
                await client.subscribe(wire.FINDINGS_FILTER, qos=1)
                log.info("subscribed to %s on %s:%d", wire.FINDINGS_FILTER, broker.host, broker.port)
                if ready is not None:
                    ready.set()
                stopper = asyncio.ensure_future(stop.wait())
                try:
                    while not stop.is_set():
                        getter = asyncio.ensure_future(anext(client.messages))
                        done, _ = await asyncio.wait(
                            {getter, stopper}, return_when=asyncio.FIRST_COMPLETED
                        )
                        if getter not in done:
                            getter.cancel()
                            break
                        batch = [getter.result()]
                        while len(client.messages) and len(batch) < MAX_BATCH:
                            batch.append(await anext(client.messages))
                        outcomes = ingest_batch(ingestor, batch)
                        await acknowledge(client, key, outcomes)
                        handled += len(outcomes)
                        if max_messages is not None and handled >= max_messages:
                            stop.set()
                finally:
                    stopper.cancel()
        except aiomqtt.MqttError as exc:
            if stop.is_set():
                break
            log.warning("broker %s:%d unavailable (%s); retrying", broker.host, broker.port, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RECONNECT_S)
    db.close()
    return ingestor


async def acknowledge(client: aiomqtt.Client, key: OKPKey, outcomes: list[Outcome]) -> None:
    by_sensor: dict[tuple[str, str], list[str]] = {}
    for outcome in outcomes:
        if outcome.committed and outcome.org and outcome.sensor and outcome.msg_id:
            by_sensor.setdefault((outcome.org, outcome.sensor), []).append(outcome.msg_id)
    for (org, sensor), msg_ids in by_sensor.items():
        for i in range(0, len(msg_ids), wire.MAX_ACKED_PER_MESSAGE):
            ack = wire.Ack(sensor=sensor, org=org, msg_ids=tuple(msg_ids[i:i + wire.MAX_ACKED_PER_MESSAGE]),
                           acked_at=wire.utc_now())
            token = signing.sign(ack.encode(), key, kid=signing.CENTRAL_KID, typ=signing.TYPE_ACK)
            await client.publish(wire.ack_topic(org, sensor), token, qos=1)


def ingest_batch(ingestor: Ingestor, batch: list[aiomqtt.Message]) -> list[Outcome]:
    pairs = []
    for message in batch:
        payload = message.payload
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        elif not isinstance(payload, bytes | bytearray):
            payload = b"" if payload is None else str(payload).encode()
        pairs.append((str(message.topic), bytes(payload)))
    return ingestor.ingest_all(pairs)

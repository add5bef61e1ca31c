"""Sending the outbox to the broker with aiomqtt: MQTT 5, QoS 1, in sequence order.

``async with Publisher(config) as publisher: await publisher.flush(outbox)``. A message is
deleted from the outbox only after the broker's PUBACK; a broken connection leaves it there
for the next attempt. Reconnecting is the caller's loop around ``async with``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from types import TracebackType

import aiomqtt

from agent.outbox import Outbox

log = logging.getLogger("netvagt.agent.publish")

WINDOW = 10  # messages in flight at once (aiomqtt warns past ten pending calls)
PUBLISH_TIMEOUT_S = 30.0  # seconds to wait for a PUBACK before the connection is deemed dead


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerConfig:
    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    client_id: str | None = None


class Publisher:
    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self._client = aiomqtt.Client(
            config.host,
            config.port,
            identifier=config.client_id,
            username=config.username,
            password=config.password,
            protocol=aiomqtt.ProtocolVersion.V5,
            timeout=PUBLISH_TIMEOUT_S,
        )

    async def __aenter__(self) -> Publisher:
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.__aexit__(exc_type, exc, tb)

    async def flush(self, outbox: Outbox) -> int:
        """Publish every pending message in order; returns how many the broker acknowledged."""
        sent = 0
        while batch := outbox.pending(WINDOW):
            # Publishes start in order on one connection, so the broker receives them in
            # order; a window of them is in flight at once instead of one round trip each.
            results = await asyncio.gather(
                *(self._client.publish(i.topic, i.token, qos=1) for i in batch),
                return_exceptions=True,
            )
            for item, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    raise result
                outbox.delivered(item.seq)
                sent += 1
        return sent

"""The broker's resource limits, as shipped, against a sensor holder's flood.

A sensor holder may publish findings of the largest size as fast as the link allows while the
central is away: the broker queues them for the central's session. Unbounded in bytes, that
queue would take the broker's memory (100,000 messages of 512 KiB) and with it every other
sensor's delivery. A real Mosquitto, started here on loopback with the limits the package
ships, keeps the queue to its byte bound and goes on serving.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from central.lab.broker import LIMITS, Mosquitto

ROOT = Path(__file__).parents[2]
TOPIC = "netvagt/kommune-x/s-rogue/findings"
MESSAGE = b"x" * (256 * 1024)  # a findings message of the largest size a sensor may sign
FLOOD = 2 * LIMITS["max_queued_bytes"] // len(MESSAGE)  # twice what the queue may hold
BATCH = 64


def test_the_packaged_broker_config_ships_the_limits_the_tests_run_with() -> None:
    shipped = {}
    for line in (ROOT / "packaging" / "mosquitto-netvagt.conf").read_text().splitlines():
        if found := re.fullmatch(r"(\w+) (\d+)", line.strip()):
            shipped[found.group(1)] = int(found.group(2))
    assert {name: shipped.get(name) for name in LIMITS} == LIMITS


def _client(client_id: str, port: int, on_message: Any = None) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         clean_session=False, protocol=mqtt.MQTTv311)
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def _peak_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]


def test_a_flood_while_the_central_is_away_fills_its_queue_to_its_bound_only() -> None:
    with Mosquitto() as broker:
        assert broker.process is not None
        central = _client("netvagt.central", broker.port)
        central.subscribe("netvagt/+/+/findings", qos=1)[1]
        time.sleep(0.5)
        central.disconnect()  # its session stays, and queues what arrives for it
        central.loop_stop()
        rogue = _client("netvagt-s-rogue", broker.port)
        for start in range(0, FLOOD, BATCH):  # bounded: twice the queue's bytes, then stop
            sent = [rogue.publish(TOPIC, MESSAGE, qos=1)
                    for _ in range(min(BATCH, FLOOD - start))]
            for info in sent:
                info.wait_for_publish(timeout=30)
        rogue.disconnect()
        rogue.loop_stop()
        assert broker.process.poll() is None  # still serving
        assert _peak_rss(broker.process.pid) < LIMITS["max_queued_bytes"] + 128 * 1024 * 1024

        received: list[int] = []
        back = _client("netvagt.central", broker.port,
                       lambda _c, _u, message: received.append(len(message.payload)))
        deadline = time.monotonic() + 60
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < 2.0:
            count = len(received)
            time.sleep(0.2)
            if len(received) != count:
                quiet_since = time.monotonic()
        back.disconnect()
        back.loop_stop()
        # the queue held what its bound allows (and the messages in flight), not the flood
        held = sum(received)
        assert 0 < held <= LIMITS["max_queued_bytes"] + LIMITS["max_inflight_messages"] * len(
            MESSAGE)
        assert len(received) < FLOOD

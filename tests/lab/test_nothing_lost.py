"""Nothing lost, nothing doubled: a 10,000-finding upload, with messages at the wire's size
limit among them, survives 5 broker restarts, 20 agent kills and 20 central kills (SIGKILL);
the inventory ends with every finding once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from agent import signing, wire
from agent.outbox import Outbox
from agent.wire import Asset
from central.db import open_db
from central.lab.broker import Mosquitto
from central.lab.demo import write_sensor
from central.lab.topology import CORE_HOST, Lab, LabSpec, SegmentSpec

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: needs root"),
]

SCANS = 10_000  # one message, one finding each
ASSETS_PER_SCAN = 1
LARGE_SCANS = 3  # scans of hostile-sized assets: a message each, near the size limit
LARGE_ASSETS = 6
CHAOS_ROUNDS = 20  # an agent kill and a central kill each
BROKER_EVERY = 4  # a broker restart every this many rounds: 5 in all
EDGE = LabSpec(segments=(SegmentSpec(name="edge", cidr="10.60.0.0/24",
                                     router_mac="00:00:0c:60:00:01"),), devices=())


def _large(scan: int, n: int) -> Asset:
    banner = wire.printable(("\U0001f4a9" * wire.MAX_BANNER_CHARS).encode())
    return Asset(ip=f"10.61.{scan}.{n + 1}", mac=f"02:61:00:{scan:02x}:00:{n:02x}",
                 sources=("arp",), services=tuple(wire.Service(port=p, banner=banner)
                                                  for p in range(1, 12)))


def _fill_outbox(config: Path, key_path: Path) -> list[str]:
    key = signing.load_private_key(key_path)
    with Outbox(config.parent / "outbox.sqlite") as outbox:
        for scan in range(LARGE_SCANS):
            outbox.enqueue_scan(sensor="s-edge", org="demo-kommune", key=key,
                                started_at=wire.utc_now(), finished_at=wire.utc_now(),
                                networks=("10.61.0.0/16",),
                                assets=[_large(scan, n) for n in range(LARGE_ASSETS)])
        largest = max(len(p.token) for p in outbox.pending(1000))
        assert largest > wire.MAX_MESSAGE_BYTES * 0.75, largest
        for n in range(SCANS):
            assets = tuple(
                Asset(ip=f"10.60.{n // 250}.{n % 250 + 1}",
                      mac=f"02:60:{n >> 8:02x}:{n & 0xff:02x}:00:{a:02x}", sources=("arp",))
                for a in range(ASSETS_PER_SCAN))
            outbox.enqueue_scan(sensor="s-edge", org="demo-kommune", key=key,
                                started_at=wire.utc_now(), finished_at=wire.utc_now(),
                                networks=("10.60.0.0/16",), assets=assets)
        return [p.msg_id for p in outbox.pending(SCANS + 1000)]


def test_broker_restarts_and_killed_processes_lose_and_double_nothing() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="netvagt-chaos-"))
    db_path = workdir / "central.db"
    try:
        with Lab(EDGE) as lab, Mosquitto(ns=lab.core, bind=(CORE_HOST, "127.0.0.1"),
                                         port=1883) as broker:
            open_db(db_path).close()
            sensor = write_sensor(lab, "edge", workdir, db_path, 1883, resend_s=2.0)
            ids = _fill_outbox(sensor.config, sensor.config.parent / "sensor.key")
            assert len(ids) > SCANS + LARGE_SCANS

            def start_central() -> subprocess.Popen[bytes]:
                return lab.popen(lab.core, [sys.executable, "-m", "central.cli", "serve",
                                            "--db", str(db_path)], stderr=subprocess.DEVNULL)

            def start_agent() -> subprocess.Popen[bytes]:
                return lab.popen(sensor.ns, [sys.executable, "-m", "agent.cli", "flush",
                                             "--config", str(sensor.config)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

            central, agent = start_central(), start_agent()
            for round_ in range(CHAOS_ROUNDS):
                time.sleep(0.6)
                if round_ % BROKER_EVERY == 0:
                    broker.restart()
                time.sleep(0.6)
                os.kill(central.pid, signal.SIGKILL)
                central.wait()
                central = start_central()
                time.sleep(0.7)
                time.sleep(0.6)
                os.kill(agent.pid, signal.SIGKILL)
                agent.wait()
                agent = start_agent()
            depth_after_chaos = _depth(sensor.config)
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                if agent.wait(timeout=300) == 0:
                    break
                agent = start_agent()  # a run that timed out leaves the rest queued: go again
            assert _depth(sensor.config) == 0
    finally:
        db = open_db(db_path)
        stored = [r[0] for r in db.execute("SELECT msg_id FROM messages")]
        assets = db.execute("SELECT count(*) FROM assets").fetchone()[0]
        observations = db.execute("SELECT count(*) FROM observations").fetchone()[0]
        db.close()
        shutil.rmtree(workdir, ignore_errors=True)
    assert depth_after_chaos > 0, "the chaos ended after the upload: make the upload longer"
    assert sorted(stored) == sorted(ids)  # every message, once
    findings = SCANS * ASSETS_PER_SCAN + LARGE_SCANS * LARGE_ASSETS
    assert assets == findings
    assert observations == findings  # no finding stored twice


def _depth(config: Path) -> int:
    with Outbox(config.parent / "outbox.sqlite") as outbox:
        return outbox.depth()

"""Nothing lost, nothing doubled: a long upload survives broker restarts and the agent and the
central being killed (SIGKILL) several times; the inventory ends with every finding once."""

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

SCANS = 1200  # one message each
ASSETS_PER_SCAN = 4
CHAOS_ROUNDS = 3
EDGE = LabSpec(segments=(SegmentSpec(name="edge", cidr="10.60.0.0/24",
                                     router_mac="00:00:0c:60:00:01"),), devices=())


def _fill_outbox(config: Path, key_path: Path) -> list[str]:
    key = signing.load_private_key(key_path)
    with Outbox(config.parent / "outbox.sqlite") as outbox:
        for n in range(SCANS):
            assets = tuple(
                Asset(ip=f"10.60.{n // 250}.{n % 250 + 1}",
                      mac=f"02:60:{n >> 8:02x}:{n & 0xff:02x}:00:{a:02x}", sources=("arp",))
                for a in range(ASSETS_PER_SCAN))
            outbox.enqueue_scan(sensor="s-edge", org="demo-kommune", key=key,
                                started_at=wire.utc_now(), finished_at=wire.utc_now(),
                                networks=("10.60.0.0/16",), assets=assets)
        return [p.msg_id for p in outbox.pending(SCANS + 1)]


def test_broker_restarts_and_killed_processes_lose_and_double_nothing() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="netvagt-chaos-"))
    db_path = workdir / "central.db"
    try:
        with Lab(EDGE) as lab, Mosquitto(ns=lab.core, bind=(CORE_HOST, "127.0.0.1"),
                                         port=1883) as broker:
            open_db(db_path).close()
            sensor = write_sensor(lab, "edge", workdir, db_path, 1883, resend_s=2.0)
            ids = _fill_outbox(sensor.config, sensor.config.parent / "sensor.key")
            assert len(ids) == SCANS

            def start_central() -> subprocess.Popen[bytes]:
                return lab.popen(lab.core, [sys.executable, "-m", "central.cli", "serve",
                                            "--db", str(db_path)], stderr=subprocess.DEVNULL)

            def start_agent() -> subprocess.Popen[bytes]:
                return lab.popen(sensor.ns, [sys.executable, "-m", "agent.cli", "flush",
                                             "--config", str(sensor.config)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

            central, agent = start_central(), start_agent()
            for _ in range(CHAOS_ROUNDS):
                time.sleep(0.7)
                broker.restart()
                time.sleep(0.7)
                os.kill(central.pid, signal.SIGKILL)
                central.wait()
                central = start_central()
                time.sleep(0.7)
                os.kill(agent.pid, signal.SIGKILL)
                agent.wait()
                agent = start_agent()
            depth_after_chaos = _depth(sensor.config)
            deadline = time.monotonic() + 300
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
    assert assets == SCANS * ASSETS_PER_SCAN
    assert observations == SCANS * ASSETS_PER_SCAN  # no finding stored twice


def _depth(config: Path) -> int:
    with Outbox(config.parent / "outbox.sqlite") as outbox:
        return outbox.depth()

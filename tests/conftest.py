"""Shared fixtures: keys, message factories, a real SQLite inventory, a real Mosquitto."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from joserfc.jwk import OKPKey
from sqlite_utils import Database

from agent import signing, wire
from agent.wire import Asset, Findings, Service
from central import registry
from central.db import open_db

# The field's fingerprint database, from the shared copy beside the checkout (never a copy
# in the repository): every test, and every lab process the tests start, classifies with it.
SHARED_RECOG = Path(__file__).resolve().parents[2] / "shared" / "fingerprint-db" / "recog"
if SHARED_RECOG.is_dir():
    os.environ.setdefault("NETVAGT_FINGERPRINTS", str(SHARED_RECOG))
# Their compiled regular expressions are kept apart from an installation's (and shared by
# the suite's workers and the processes they start): the first worker compiles, the rest load.
os.environ.setdefault("NETVAGT_CACHE_DIR",
                      str(Path(tempfile.gettempdir()) / f"netvagt-test-regex-{os.geteuid()}"))

ORG = "test-kommune"
SITE = "raadhus"

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 and not os.environ.get("CI"),
    reason="builds network namespaces: run as root (CI does)",
)


@pytest.fixture
def sensor_key() -> OKPKey:
    return signing.generate_private_key()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_db(tmp_path / "central.db")
    yield database
    database.close()


@pytest.fixture
def registered(db: Database, sensor_key: OKPKey) -> str:
    registry.add_sensor(db, sensor="s-one", org=ORG, site=SITE,
                        public_jwk=signing.public_jwk(sensor_key))
    return "s-one"


MakeMessage = Callable[..., tuple[str, bytes]]


@pytest.fixture
def make_message(sensor_key: OKPKey) -> MakeMessage:
    """Build a signed findings message: ``make_message(seq=1, assets=[...])`` -> (topic, bytes)."""

    def make(
        *,
        seq: int = 1,
        sensor: str = "s-one",
        org: str = ORG,
        key: OKPKey | None = None,
        assets: tuple[Asset, ...] | None = None,
        topic: str | None = None,
    ) -> tuple[str, bytes]:
        findings = Findings(
            sensor=sensor,
            org=org,
            seq=seq,
            msg_id=uuid.uuid4().hex,
            scan_id=uuid.uuid4().hex,
            sent_at=wire.utc_now(),
            scan_started_at=wire.utc_now(),
            scan_finished_at=wire.utc_now(),
            assets=assets if assets is not None else (
                Asset(ip="10.1.0.5", mac="00:1b:1b:00:00:05", mac_vendor="Siemens AG,",
                      sources=("arp", "tcp"),
                      services=(Service(port=80, name="http", banner="Server: x"),)),
            ),
        )
        token = signing.sign(findings.encode(), key or sensor_key, kid=sensor)
        return topic or wire.findings_topic(org, sensor), token

    return make

"""Delivery through a real Mosquitto on loopback: the outbox empties only on the central's
signed acknowledgement, and a forged acknowledgement deletes nothing."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import aiomqtt
import pytest
from joserfc.jwk import OKPKey

from agent import signing, wire
from agent.outbox import Outbox
from agent.publish import BrokerConfig, deliver
from agent.wire import Asset
from central import registry
from central.db import open_db
from central.keys import key_path_for, load_or_create
from central.lab.broker import Mosquitto, free_port
from central.service import BrokerConfig as CentralBroker
from central.service import serve

pytestmark = [pytest.mark.broker,
              pytest.mark.skipif(shutil.which("mosquitto") is None
                                 and not Path("/usr/sbin/mosquitto").exists(),
                                 reason="needs mosquitto (install.sh installs it)")]


def _fill(outbox: Outbox, key: OKPKey, scans: int) -> list[str]:
    for n in range(scans):
        outbox.enqueue_scan(sensor="s-one", org="aarhus", key=key,
                            started_at=wire.utc_now(), finished_at=wire.utc_now(),
                            networks=("10.1.0.0/24",),
                            assets=(Asset(ip=f"10.1.0.{n + 1}", mac=f"00:1b:1b:00:00:{n + 1:02x}",
                                          sources=("arp",)),))
    return [p.msg_id for p in outbox.pending(10_000)]


def _central(tmp_path: Path, sensor_key: OKPKey) -> tuple[Path, OKPKey]:
    """An inventory with 's-one' registered, and the public half of the central's key."""
    db_path = tmp_path / "central.db"
    db = open_db(db_path)
    registry.add_sensor(db, sensor="s-one", org="aarhus", site="raadhus",
                        public_jwk=signing.public_jwk(sensor_key))
    db.close()
    central_key = load_or_create(key_path_for(db_path))
    return db_path, signing.public_key_from_jwk(signing.public_jwk(central_key))


def test_outbox_empties_on_acknowledgement_and_ignores_forged_ones(tmp_path: Path) -> None:
    sensor_key = signing.generate_private_key()
    db_path, central_public = _central(tmp_path, sensor_key)

    async def scenario(port: int) -> None:
        config = BrokerConfig(host="127.0.0.1", port=port, client_id="netvagt-s-one")
        with Outbox(tmp_path / "outbox.sqlite") as outbox:
            ids = _fill(outbox, sensor_key, 25)
            # 1. no central: a forged acknowledgement (not the central's key) deletes nothing
            forger = signing.generate_private_key()
            ack = wire.Ack(sensor="s-one", org="aarhus", msg_ids=tuple(ids), acked_at=wire.utc_now())
            forged = signing.sign(ack.encode(), forger, kid="central", typ=signing.TYPE_ACK)

            async def forge() -> None:
                await asyncio.sleep(0.3)
                async with aiomqtt.Client("127.0.0.1", port) as client:
                    await client.publish(wire.ack_topic("aarhus", "s-one"), forged, qos=1)

            forging = asyncio.create_task(forge())
            acked = await deliver(config, outbox, sensor="s-one", org="aarhus",
                                  central_key=central_public, timeout=1.5)
            await forging
            assert acked == 0 and outbox.depth() == 25
            # 2. the central comes: everything is acknowledged and deleted, once
            stop, ready = asyncio.Event(), asyncio.Event()
            central = asyncio.create_task(serve(db_path, CentralBroker(port=port), stop=stop,
                                                ready=ready))
            await asyncio.wait_for(ready.wait(), 10)
            acked = await deliver(config, outbox, sensor="s-one", org="aarhus",
                                  central_key=central_public, timeout=60)
            assert outbox.depth() == 0
            assert acked == 25
            stop.set()
            await central

    with Mosquitto() as broker:
        asyncio.run(scenario(broker.port))
    db = open_db(db_path)
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 25
    assert db.execute("SELECT count(*) FROM assets").fetchone()[0] == 25
    db.close()


def _tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a broker certificate for 127.0.0.1, made here (what install.sh does with
    openssl for a real central)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "netvagt test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = (directory / "ca.crt", directory / "broker.crt", directory / "broker.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    for path in (directory, *paths):
        path.chmod(0o755 if path.is_dir() else 0o644)  # mosquitto drops to its own user
    return paths


def test_delivery_over_tls_verifies_the_broker(tmp_path: Path) -> None:
    import ssl

    sensor_key = signing.generate_private_key()
    db_path, central_public = _central(tmp_path, sensor_key)
    tls_dir = tmp_path / "tls"
    tls_dir.mkdir()
    cafile, certfile, keyfile = _tls_files(tls_dir)

    async def scenario(tls_port: int, plain_port: int) -> None:
        stop, ready = asyncio.Event(), asyncio.Event()
        central = asyncio.create_task(serve(db_path, CentralBroker(port=plain_port), stop=stop,
                                            ready=ready))
        await asyncio.wait_for(ready.wait(), 10)
        with Outbox(tmp_path / "outbox.sqlite") as outbox:
            _fill(outbox, sensor_key, 3)
            verified = ssl.create_default_context(cafile=str(cafile))
            config = BrokerConfig(host="127.0.0.1", port=tls_port, tls_context=verified)
            assert await deliver(config, outbox, sensor="s-one", org="aarhus",
                                 central_key=central_public, timeout=30) == 3
            # a client that does not know the CA refuses the broker
            _fill(outbox, sensor_key, 1)
            untrusting = BrokerConfig(host="127.0.0.1", port=tls_port,
                                      tls_context=ssl.create_default_context())
            with pytest.raises(aiomqtt.MqttError):
                async with aiomqtt.Client("127.0.0.1", tls_port,
                                          tls_context=untrusting.tls_context):
                    pass
        stop.set()
        await central

    plain_port = free_port()
    with Mosquitto(tls=(cafile, certfile, keyfile), plain_ports=(plain_port,)) as broker:
        asyncio.run(scenario(broker.port, plain_port))
    db = open_db(db_path)
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 3
    db.close()


def test_a_full_outbox_pauses_scanning_and_keeps_what_it_holds(tmp_path: Path) -> None:
    from agent.config import AgentConfig
    from agent.outbox import OutboxFull
    from agent.run import scan_into_outbox

    key = signing.generate_private_key()
    config = AgentConfig(sensor="s-one", org="aarhus", key=tmp_path / "k", state_dir=tmp_path,
                         broker_host="127.0.0.1", interface="nv-nonexistent0",
                         outbox_limit_bytes=100)
    with Outbox(config.outbox_path) as outbox:
        held = _fill(outbox, key, 2)  # queued while the central was away
    with Outbox(config.outbox_path, limit_bytes=config.outbox_limit_bytes) as outbox:
        with pytest.raises(OutboxFull, match="not yet acknowledged"):
            asyncio.run(scan_into_outbox(config, outbox))  # refused before any probe
        assert [p.msg_id for p in outbox.pending()] == held  # nothing dropped


def _hostile_asset(n: int) -> Asset:
    """An asset at the wire's bounds: every service with a banner of the longest escaped
    text, in four-byte characters (what a hostile device can make the agent carry)."""
    from agent.wire import Observation, Service

    banner = wire.printable(("\U0001f4a9" * wire.MAX_BANNER_CHARS).encode())
    return Asset(ip=f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}",
                 mac=f"00:1b:1b:{n // 65536 % 256:02x}:{n // 256 % 256:02x}:{n % 256:02x}",
                 services=tuple(Service(port=p, banner=banner) for p in range(1, 9)),
                 observations=tuple(Observation(key="http.title", value="\\x00" * 256,
                                                source=f"{p}/tcp") for p in range(1, 9)))


def test_the_largest_messages_the_agent_builds_are_accepted(tmp_path: Path) -> None:
    """600 hosts with banners at their bounds, and one asset too large for any message: every
    message the agent signs passes the central's verifier and is acknowledged (joserfc's own
    payload default refused 5 of 6 such messages as 'exceeded_size')."""
    sensor_key = signing.generate_private_key()
    db_path, central_public = _central(tmp_path, sensor_key)
    giant = Asset(ip="10.9.9.9", services=tuple(
        wire.Service(port=p, banner=wire.printable(b"\x00" * 4096)) for p in range(1, 257)))
    assets = [*(_hostile_asset(n) for n in range(600)), giant]

    async def scenario(port: int) -> None:
        stop, ready = asyncio.Event(), asyncio.Event()
        central = asyncio.create_task(serve(db_path, CentralBroker(port=port), stop=stop,
                                            ready=ready))
        await asyncio.wait_for(ready.wait(), 10)
        with Outbox(tmp_path / "outbox.sqlite") as outbox:
            outbox.enqueue_scan(sensor="s-one", org="aarhus", key=sensor_key,
                                started_at=wire.utc_now(), finished_at=wire.utc_now(),
                                networks=tuple(f"10.{i}.0.0/16" for i in range(64)),
                                assets=assets)
            sizes = [len(p.token) for p in outbox.pending(10_000)]
            assert max(sizes) > wire.MAX_MESSAGE_BYTES * 0.75  # near the limit, not far below
            assert max(sizes) <= wire.MAX_MESSAGE_BYTES
            acked = await deliver(BrokerConfig(host="127.0.0.1", port=port), outbox,
                                  sensor="s-one", org="aarhus", central_key=central_public,
                                  timeout=60)
            assert acked == len(sizes) and outbox.depth() == 0
        stop.set()
        await central

    with Mosquitto() as broker:
        asyncio.run(scenario(broker.port))
    db = open_db(db_path)
    assert db.execute("SELECT count(*) FROM rejections").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM assets").fetchone()[0] == 601
    db.close()


def test_a_stopped_daemon_says_offline_at_once(tmp_path: Path) -> None:
    """A clean disconnect discards the last will: a daemon stopped (a restart, an upgrade)
    left its retained status at 'online', and the central went on sending plans to it. It
    says 'offline' itself as it stops."""
    from agent.config import AgentConfig
    from agent.daemon import Daemon

    central = signing.generate_private_key()
    (tmp_path / "central.jwk").write_text(json.dumps(signing.public_jwk(central)))
    signing.save_private_key(signing.generate_private_key(), tmp_path / "sensor.key")

    async def scenario(port: int) -> list[str]:
        config = AgentConfig(sensor="s-one", org="aarhus", key=tmp_path / "sensor.key",
                             state_dir=tmp_path, broker_host="127.0.0.1", broker_port=port,
                             interface="lo", central_key=tmp_path / "central.jwk")
        daemon = Daemon(config)
        states: list[str] = []
        async with aiomqtt.Client("127.0.0.1", port) as watcher:
            await watcher.subscribe(wire.status_topic("aarhus", "s-one"), qos=1)
            session = asyncio.create_task(daemon.session(BrokerConfig(host="127.0.0.1",
                                                                      port=port)))
            async with asyncio.timeout(20):
                async for message in watcher.messages:
                    assert isinstance(message.payload, bytes)
                    states.append(json.loads(signing.peek_payload(message.payload))["state"])
                    if states == ["online"]:
                        daemon.stop.set()
                    elif len(states) > 1:
                        break
            await session
        daemon.outbox.close()
        return states

    with Mosquitto() as broker:
        assert asyncio.run(scenario(broker.port)) == ["online", "offline"]

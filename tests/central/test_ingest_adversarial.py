"""10,000 hostile messages through a real Mosquitto to a running central: forged, tampered,
replayed, malformed, oversized, from strangers, with impossible times and duplicate keys,
with the sensor's real signature on junk. The central stays up, accepts exactly the valid
messages mixed in among them, and counts every refusal by its reason."""

from __future__ import annotations

import asyncio
import base64
import random
import shutil
import uuid
from collections import Counter
from pathlib import Path

import aiomqtt
import pytest
from joserfc.jwk import OKPKey

from agent import signing, wire
from central import registry
from central.db import open_db
from central.ingest import counts
from central.lab.broker import Mosquitto
from central.service import BrokerConfig, serve

pytestmark = [pytest.mark.broker,
              pytest.mark.skipif(shutil.which("mosquitto") is None
                                 and not Path("/usr/sbin/mosquitto").exists(),
                                 reason="needs mosquitto (install.sh installs it)")]

ORG, SENSOR = "test-kommune", "s-one"
HOSTILE = 10_000
VALID_EVERY = 100  # one valid message after every this many hostile ones
TOPIC = wire.findings_topic(ORG, SENSOR)


def _body(seq: int, **changes: object) -> dict[str, object]:
    now = wire.utc_now()
    return {"v": 1, "type": "findings", "sensor": SENSOR, "org": ORG, "seq": seq,
            "msg_id": uuid.uuid4().hex, "scan_id": uuid.uuid4().hex, "sent_at": now,
            "scan_started_at": now, "scan_finished_at": now, "part": 1, "parts": 1,
            "networks": ["10.1.0.0/24"],
            "assets": [{"ip": f"10.1.0.{seq % 250 + 1}", "sources": ["arp"]}]} | changes


def _differs(token: bytes, original: bytes) -> bool:
    """True when the mutation changed what the token says (a flip in base64url's unused
    low bits of a last character decodes to the same bytes, and is no mutation at all)."""
    def parts(t: bytes) -> list[bytes] | None:
        try:
            return [base64.urlsafe_b64decode(p + b"=" * (-len(p) % 4)) for p in t.split(b".")]
        except ValueError:
            return None
    return token.count(b".") != 2 or parts(token) != parts(original)


class Forge:
    """Hostile messages of every kind the attack campaign tried, deterministically."""

    def __init__(self, key: signing.OKPKey, rng: random.Random) -> None:
        self.key, self.rng = key, rng
        self.stranger = signing.generate_private_key()
        self.replayable: list[bytes] = []

    def sign(self, body: bytes, *, key: OKPKey | None = None, kid: str = SENSOR) -> bytes:
        return signing.sign(body, key or self.key, kid=kid)

    def hostile(self, n: int, seq: int) -> bytes:
        makers = (self.flipped, self.replay, self.stranger_signed, self.unknown_sender,
                  self.signed_junk, self.duplicate_key, self.bad_time, self.wrong_types,
                  self.unknown_plan, self.refused_header, self.oversized, self.random_bytes)
        return makers[n % len(makers)](n, seq)

    def flipped(self, n: int, seq: int) -> bytes:
        """A valid message, one byte changed anywhere."""
        good = self.sign(wire.canonical_json(_body(seq + 10**6)))
        while True:
            data = bytearray(good)
            data[self.rng.randrange(len(data))] = self.rng.randrange(256)
            if _differs(bytes(data), good):
                return bytes(data)

    def replay(self, n: int, seq: int) -> bytes:
        """A replay of a committed message."""
        return self.replayable[n % len(self.replayable)] if self.replayable else b"x"

    def stranger_signed(self, n: int, seq: int) -> bytes:
        """Signed by someone else under our sensor's name."""
        return self.sign(wire.canonical_json(_body(seq + 10**6)), key=self.stranger)

    def unknown_sender(self, n: int, seq: int) -> bytes:
        return self.sign(wire.canonical_json(_body(seq + 10**6)), key=self.stranger,
                         kid="s-stranger")

    def signed_junk(self, n: int, seq: int) -> bytes:
        """Our real signature on junk bytes."""
        return self.sign(self.rng.randbytes(self.rng.randrange(0, 300)))

    def duplicate_key(self, n: int, seq: int) -> bytes:
        """Our real signature on a duplicate key."""
        body = wire.canonical_json(_body(seq + 10**6))
        return self.sign(body[:-1] + b',"seq":1}')

    def bad_time(self, n: int, seq: int) -> bytes:
        """Impossible or future times."""
        when = self.rng.choice(["9999-12-31T23:59:59Z", "2026-99-99T99:99:99Z",
                                "1970-01-01T00:00:00Z"])
        return self.sign(wire.canonical_json(_body(seq + 10**6, sent_at=when)))

    def wrong_types(self, n: int, seq: int) -> bytes:
        """Wrong types where numbers and lists belong."""
        field, value = self.rng.choice([("seq", "1"), ("v", [1]), ("part", True),
                                        ("assets", {"ip": "10.1.0.1"}), ("networks", "x")])
        return self.sign(wire.canonical_json(_body(seq + 10**6) | {field: value}))

    def unknown_plan(self, n: int, seq: int) -> bytes:
        """Probe results for a plan never issued."""
        return self.sign(wire.canonical_json(_body(
            seq + 10**6, plan_id=uuid.uuid4().hex,
            probes=[{"ip": "10.1.0.9", "proto": "tcp", "port": 22, "state": "reachable",
                     "rtt_ms": 1.0}])))

    def refused_header(self, n: int, seq: int) -> bytes:
        """Headers we refuse: alg none, an embedded key, HS256."""
        header = self.rng.choice([b'{"alg":"none","kid":"s-one"}',
                                  b'{"alg":"Ed25519","kid":"s-one","jwk":{}}',
                                  b'{"alg":"HS256","kid":"s-one"}'])
        payload = base64.urlsafe_b64encode(wire.canonical_json(_body(seq))).rstrip(b"=")
        return base64.urlsafe_b64encode(header).rstrip(b"=") + b"." + payload + b"."

    def oversized(self, n: int, seq: int) -> bytes:
        return b"e" * (wire.MAX_MESSAGE_BYTES + 1 + self.rng.randrange(1000))

    def random_bytes(self, n: int, seq: int) -> bytes:
        return self.rng.randbytes(self.rng.randrange(0, 2000))


def test_ten_thousand_hostile_messages_leave_the_central_up_and_counting(tmp_path: Path) -> None:
    key = signing.generate_private_key()
    db_path = tmp_path / "central.db"
    db = open_db(db_path)
    registry.add_sensor(db, sensor=SENSOR, org=ORG, site="raadhus",
                        public_jwk=signing.public_jwk(key))
    db.close()
    forge = Forge(key, random.Random(20261129))
    sent = Counter[str]()

    async def scenario(port: int) -> None:
        stop, ready = asyncio.Event(), asyncio.Event()
        central = asyncio.create_task(serve(db_path, BrokerConfig(port=port), stop=stop,
                                            ready=ready))
        await asyncio.wait_for(ready.wait(), 10)
        seq = 0
        async with aiomqtt.Client("127.0.0.1", port, max_inflight_messages=200) as client:
            for n in range(HOSTILE):
                await client.publish(TOPIC, forge.hostile(n, seq), qos=1)
                sent["hostile"] += 1
                if n % VALID_EVERY == VALID_EVERY - 1:
                    seq += 1
                    token = forge.sign(wire.canonical_json(_body(seq)))
                    forge.replayable.append(token)
                    await client.publish(TOPIC, token, qos=1)
                    sent["valid"] += 1
        deadline = asyncio.get_running_loop().time() + 120
        while asyncio.get_running_loop().time() < deadline:
            check = open_db(db_path)
            total = sum(counts(check).values())
            check.close()
            if total >= HOSTILE + sent["valid"]:
                break
            await asyncio.sleep(0.5)
        assert not central.done(), "the central stopped"
        stop.set()
        await central

    with Mosquitto() as broker:
        asyncio.run(scenario(broker.port))
    db = open_db(db_path)
    tally = counts(db)
    stored = db.execute("SELECT count(*) FROM messages").fetchone()[0]
    db.close()
    assert tally.pop("accepted") == sent["valid"] == stored == HOSTILE // VALID_EVERY
    assert sum(tally.values()) == HOSTILE, tally  # every hostile one refused and counted
    for reason in ("bad_signature", "replayed", "unknown_sensor", "malformed", "bad_time",
                   "unknown_plan", "oversized"):
        assert tally.get(reason, 0) > 0, (reason, tally)
    assert "internal_error" not in tally, tally

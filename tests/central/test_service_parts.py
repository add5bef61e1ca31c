"""The central service's session, part by part (the whole service runs against a real
Mosquitto in the delivery, adversarial and lab tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import aiomqtt
import pytest
from joserfc.jwk import OKPKey

from agent import wire
from central import broker_admin
from central.db import open_db
from central.ingest import Ingestor
from central.service import MAX_BATCH, BrokerConfig, Session


def _message(topic: str, payload: bytes = b"x") -> aiomqtt.Message:
    return aiomqtt.Message(topic, payload, qos=1, retain=False, mid=1, properties=None)


@pytest.fixture
def session(tmp_path: Path) -> Session:
    db = open_db(tmp_path / "central.db")
    client = cast(aiomqtt.Client, object())  # route() and take_batch() never touch it
    return Session(client, db=db, ingestor=Ingestor(db), key=cast(OKPKey, None),
                   broker=BrokerConfig(), stop=asyncio.Event(), handled=[0])


def _depths(session: Session) -> dict[str, int]:
    return {"findings": session.findings.qsize(), "requests": session.requests.qsize(),
            "statuses": session.statuses.qsize()}


@pytest.mark.parametrize(("topic", "queue"), [
    (wire.findings_topic("aarhus", "s-one"), "findings"),
    (wire.status_topic("aarhus", "s-one"), "statuses"),
    (broker_admin.enroll_request_topic("t" * 32), "requests"),
    (broker_admin.enroll_reply_topic("t" * 32), None),  # our own reply: not a request
    (f"{broker_admin.ENROLL_PREFIX}/x/findings", None),  # enrollment space: never findings
    ("$CONTROL/dynamic-security/v1/response", None),  # no admin in this session
    ("elsewhere/entirely", None),
])
def test_each_message_goes_to_its_own_loop_or_nowhere(session: Session, topic: str,
                                                      queue: str | None) -> None:
    session.route(_message(topic))
    expected: dict[str, Any] = {"findings": 0, "requests": 0, "statuses": 0}
    if queue:
        expected[queue] = 1
    assert _depths(session) == expected


def test_a_status_flood_is_dropped_at_the_queue_s_bound_and_findings_still_queue(
        session: Session) -> None:
    topic = wire.status_topic("aarhus", "s-one")
    for _ in range(session.statuses.maxsize + 50):
        session.route(_message(topic))
    session.route(_message(wire.findings_topic("aarhus", "s-one")))
    assert session.statuses.qsize() == session.statuses.maxsize
    assert session.findings.qsize() == 1


def test_findings_are_taken_in_batches_of_at_most_max_batch(session: Session) -> None:
    topic = wire.findings_topic("aarhus", "s-one")
    for n in range(MAX_BATCH + 7):
        session.findings.put_nowait(_message(topic, str(n).encode()))
    first = session.take_batch(session.findings.get_nowait())
    second = session.take_batch(session.findings.get_nowait())
    assert [len(first), len(second)] == [MAX_BATCH, 7]
    assert first[0].payload == b"0" and second[-1].payload == str(MAX_BATCH + 6).encode()

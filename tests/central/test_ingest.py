"""The central verifies, refuses with a reason, counts, and stores assets by identity."""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc.jwk import OKPKey
from sqlite_utils import Database

from agent import signing, wire
from agent.wire import Asset, Service
from central import inventory, registry
from central.db import migrations, open_db
from central.ingest import Ingestor, Reason, counts
from tests.conftest import ORG, SITE


def test_migrations_run_from_empty(tmp_path) -> None:
    db = open_db(tmp_path / "x.db")
    assert [m.name for m in migrations.applied(db)] == ["m001_core", "m002_assets",
                                                        "m003_ingest_log", "m004_enrollment",
                                                        "m005_status_commands", "m006_identity",
                                                        "m007_facts", "m008_segmentation",
                                                        "m009_broker_identity", "m010_approved_assets",
                                                        "m011_reach_ttl", "m012_vulnerabilities",
                                                        "m013_events", "m014_register",
                                                        "m015_ownership", "m016_users",
                                                        "m017_console",
                                                        "m018_port_vlans"]
    assert db.journal_mode == "wal"
    open_db(tmp_path / "x.db")  # applying again changes nothing


def test_valid_message_is_stored(db: Database, registered: str, make_message) -> None:
    outcome = Ingestor(db).ingest(*make_message(seq=1))
    assert outcome.accepted, outcome
    rows = inventory.assets(db)
    assert len(rows) == 1
    assert rows[0].mac == "00:1b:1b:00:00:05"
    assert rows[0].addresses == ("10.1.0.5",)
    assert rows[0].open_ports == ["80/tcp"]
    assert counts(db) == {"accepted": 1}


def test_each_rejection_is_counted_and_valid_traffic_continues(
    db: Database, registered: str, make_message, sensor_key
) -> None:
    ingestor = Ingestor(db)
    topic, good = make_message(seq=1)
    header, payload, sig = good.split(b".")
    tampered = b".".join([header, payload[:-4] + b"AAAA", sig])
    stranger = signing.generate_private_key()
    unknown = make_message(seq=1, sensor="s-stranger", key=stranger)
    other_key = make_message(seq=5, key=stranger)
    cases = [
        ((topic, tampered), Reason.BAD_SIGNATURE),
        ((topic, good), Reason.ACCEPTED),
        ((topic, good), Reason.REPLAYED),
        (unknown, Reason.UNKNOWN_SENSOR),
        (other_key, Reason.BAD_SIGNATURE),
        ((topic, b"\x00garbage"), Reason.MALFORMED),
        ((topic, b"x" * (wire.MAX_MESSAGE_BYTES + 1)), Reason.OVERSIZED),
        (make_message(seq=2, topic="netvagt/v1/test-kommune/s-other/findings"), Reason.WRONG_TOPIC),
        (make_message(seq=3), Reason.ACCEPTED),
        (make_message(seq=3), Reason.REPLAYED),  # same seq, new message: out of order
        (make_message(seq=4), Reason.ACCEPTED),
    ]
    outcomes = ingestor.ingest_all([msg for msg, _ in cases])
    assert [o.reason for o in outcomes] == [reason for _, reason in cases]
    stored = counts(db)
    assert stored["accepted"] == 3
    assert stored["replayed"] == 2
    assert stored["bad_signature"] == 2
    assert stored["unknown_sensor"] == 1
    assert stored["malformed"] == 1
    assert stored["oversized"] == 1
    assert stored["wrong_topic"] == 1
    assert db.execute("SELECT count(*) FROM rejections").fetchone()[0] == 8
    assert db.execute("SELECT last_seq FROM sensors").fetchone()[0] == 4


def test_signed_by_one_sensor_naming_another_is_refused(
    db: Database, registered: str, sensor_key, make_message
) -> None:
    findings = wire.Findings.decode(
        signing.verify(make_message(seq=1)[1],
                       signing.public_key_from_jwk(signing.public_jwk(sensor_key)))
    )
    data = findings.to_dict() | {"sensor": "s-victim"}
    token = signing.sign(wire.canonical_json(data), sensor_key, kid="s-one")
    outcome = Ingestor(db).ingest(wire.findings_topic("test-kommune", "s-one"), token)
    assert outcome.reason is Reason.IDENTITY_MISMATCH


def test_unsupported_version_is_its_own_reason(db, registered, sensor_key) -> None:
    token = signing.sign(json.dumps({"v": 99}).encode(), sensor_key, kid="s-one")
    outcome = Ingestor(db).ingest(wire.findings_topic("test-kommune", "s-one"), token)
    assert outcome.reason is Reason.UNSUPPORTED_VERSION


def test_a_sensor_registered_after_start_is_picked_up(db, make_message, sensor_key) -> None:
    ingestor = Ingestor(db)
    assert ingestor.ingest(*make_message(seq=1)).reason is Reason.UNKNOWN_SENSOR
    registry.add_sensor(db, sensor="s-one", org="test-kommune", site="raadhus",
                        public_jwk=signing.public_jwk(sensor_key))
    ingestor.refresh()
    assert ingestor.ingest(*make_message(seq=1)).accepted


def test_identity_by_mac_merges_addresses_and_ip_only_assets(db, registered, make_message) -> None:
    ingestor = Ingestor(db)
    # a routed address seen by ICMP only, then the same address with its MAC, then a new IP
    ingestor.ingest(*make_message(seq=1, assets=(Asset(ip="10.1.0.9", sources=("icmp",)),)))
    ingestor.ingest(*make_message(seq=2, assets=(
        Asset(ip="10.1.0.9", mac="00:11:32:00:00:09", sources=("arp",)),)))
    ingestor.ingest(*make_message(seq=3, assets=(
        Asset(ip="10.1.0.10", mac="00:11:32:00:00:09", sources=("arp",)),)))
    ingestor.ingest(*make_message(seq=4, assets=(Asset(ip="10.1.0.10", sources=("icmp",)),)))
    rows = inventory.assets(db)
    assert len(rows) == 1
    assert rows[0].mac == "00:11:32:00:00:09"
    assert rows[0].addresses == ("10.1.0.9", "10.1.0.10")


def test_a_dual_stack_device_is_named_by_what_it_said_not_by_its_bare_ipv6_address(
        db, registered, make_message) -> None:
    """A recorder's IPv4 address said its pages; its IPv6 address answered a ping and said
    nothing. Named entry by entry, the bare address came last in the scan and the recorder
    was a camera by its MAC's maker alone; in a later part of the scan, likewise. A MAC
    alone still names a device nothing else named."""
    from fingerprints.observation import Observation

    ingestor = Ingestor(db)
    mac, vendor = "44:19:b6:76:02:30", "Hangzhou Hikvision Digital Technology Co.,Ltd."
    said = (Observation("http.server", "Hikvision-Webs", "80/tcp"),
            Observation("http.title", "NVR", "80/tcp"),
            Observation("rtsp.server", "Hikvision-Webs", "554/tcp"))
    v4 = Asset(ip="10.76.2.30", mac=mac, mac_vendor=vendor, sources=("arp", "tcp"),
               observations=said)
    v6 = Asset(ip="fd76:2::1e", mac=mac, mac_vendor=vendor, sources=("icmp",))
    assert ingestor.ingest(*make_message(seq=1, assets=(v4, v6))).accepted
    assert [(r.device_type, r.vendor) for r in inventory.assets(db)] == [
        ("video_recorder", "Hikvision")]
    assert ingestor.ingest(*make_message(seq=2, assets=(v6,))).accepted
    assert [r.device_type for r in inventory.assets(db)] == ["video_recorder"]
    other = Asset(ip="10.76.2.31", mac="44:19:b6:76:02:31", mac_vendor=vendor, sources=("arp",))
    assert ingestor.ingest(*make_message(seq=3, assets=(other,))).accepted
    assert {r.mac: r.device_type for r in inventory.assets(db)}[other.mac] == "camera"


def test_sites_are_separate_address_spaces(db, make_message, sensor_key) -> None:
    other = signing.generate_private_key()
    registry.add_sensor(db, sensor="s-one", org="test-kommune", site="raadhus",
                        public_jwk=signing.public_jwk(sensor_key))
    registry.add_sensor(db, sensor="s-two", org="test-kommune", site="skole",
                        public_jwk=signing.public_jwk(other))
    same_ip = (Asset(ip="192.168.1.10", sources=("icmp",)),)
    ingestor = Ingestor(db)
    assert ingestor.ingest(*make_message(seq=1, assets=same_ip)).accepted
    assert ingestor.ingest(*make_message(seq=1, sensor="s-two", key=other, assets=same_ip)).accepted
    assert sorted(r.site for r in inventory.assets(db)) == ["raadhus", "skole"]


def test_hostile_banner_is_stored_as_text_and_neutralised_in_csv(db, registered, make_message) -> None:
    evil = '=HYPERLINK("http://evil.example","x")<script>alert(1)</script>\'; DROP TABLE assets;--'
    assets = (Asset(ip="10.1.0.7", hostname=evil[:200],
                    services=(Service(port=80, name="http", product=evil[:200], banner=evil),)),)
    assert Ingestor(db).ingest(*make_message(seq=1, assets=assets)).accepted
    rows = inventory.assets(db)
    assert rows[0].services[0].banner == evil
    import csv
    import io

    read_back = list(csv.DictReader(io.StringIO(inventory.assets_csv(rows))))
    assert read_back[0]["hostname"] == "'" + evil[:200]  # a spreadsheet shows it as text


# ---------------------------------------------------------------- property-based


def _mutations() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=2000),
        st.text(max_size=500).map(str.encode),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
            lambda children: st.lists(children, max_size=5)
            | st.dictionaries(st.text(max_size=10), children, max_size=5),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    position=st.integers(min_value=0, max_value=10_000),
    replacement=st.binary(min_size=0, max_size=8),
    junk=_mutations(),
    signed_junk=st.booleans(),
)
def test_mutated_messages_never_raise(
    db, registered, make_message, sensor_key, position, replacement, junk, signed_junk
) -> None:
    ingestor = Ingestor(db)
    topic, token = make_message(seq=10**9)
    cut = position % (len(token) + 1)
    mutated = token[:cut] + replacement + token[cut + len(replacement):]
    if signed_junk:
        # correctly signed by the registered sensor, but the payload is junk
        payload = junk
        header = base64.urlsafe_b64encode(b'{"alg":"Ed25519","kid":"s-one"}').rstrip(b"=")
        mutated = signing.sign(payload, sensor_key, kid="s-one") if junk else header + b".."
    outcomes = ingestor.ingest_all([(topic, mutated), (topic, junk)])
    for outcome in outcomes:
        assert outcome.reason is not Reason.INTERNAL_ERROR, outcome
        if mutated != token:
            pass
    assert outcomes[1].reason is not Reason.ACCEPTED


def test_redelivery_is_refused_but_acknowledged_and_late_numbers_fill_in(
    db, registered, make_message
) -> None:
    from central.ingest import REPLAY_WINDOW

    ingestor = Ingestor(db)
    first, third = make_message(seq=1), make_message(seq=3)
    second = make_message(seq=2)
    assert ingestor.ingest(*first).accepted
    assert ingestor.ingest(*third).accepted
    again = ingestor.ingest(*third)
    assert again.reason is Reason.REPLAYED and again.committed  # the sensor may delete it
    late = ingestor.ingest(*second)  # sent before 3 but delivered after it: never seen
    assert late.accepted
    assert db.execute("SELECT last_seq FROM sensors").fetchone()[0] == 3
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 3
    far = make_message(seq=REPLAY_WINDOW + 10)
    assert ingestor.ingest(*far).accepted
    too_old = ingestor.ingest(*make_message(seq=5))
    assert too_old.reason is Reason.REPLAYED and not too_old.committed


def test_tokens_are_single_use_unexpired_and_secret(db) -> None:
    from datetime import timedelta

    from central import enroll

    def request(token: str, name: str) -> tuple[str, bytes]:
        key = signing.generate_private_key()
        body = wire.EnrollRequest(token=token, public_jwk=signing.public_jwk(key), name=name)
        return token.split(".")[0], signing.sign(body.encode(), key, kid="enroll",
                                                 typ=signing.TYPE_ENROLL)

    token = enroll.create_token(db, org="aarhus", site="raadhus", zone="admin")
    assert db.execute("SELECT count(*) FROM tokens WHERE secret_hash = ?",
                      [token.split(".")[1]]).fetchone()[0] == 0  # only a hash is kept
    done = enroll.enroll(db, *request(token, "s-one"))
    assert (done.sensor, done.org, done.site, done.zone) == ("s-one", "aarhus", "raadhus", "admin")
    with pytest.raises(enroll.EnrollmentError, match="used already"):
        enroll.enroll(db, *request(token, "s-two"))
    secret = token.split(".")[1]
    forged = token.split(".")[0] + "." + ("y" if secret[0] == "x" else "x") + secret[1:]
    with pytest.raises(enroll.EnrollmentError, match="unknown token"):
        enroll.enroll(db, *request(forged, "s-three"))
    short = enroll.create_token(db, org="aarhus", site="raadhus", zone=None,
                                ttl=timedelta(seconds=1))
    db.execute("UPDATE tokens SET expires_at = '2000-01-01T00:00:00.000000Z' WHERE id = ?",
               [short.split(".")[0]])
    with pytest.raises(enroll.EnrollmentError, match="expired"):
        enroll.enroll(db, *request(short, "s-four"))
    # a request whose signature is not by the key it carries is refused
    topic_id, signed = request(enroll.create_token(db, org="aarhus", site="raadhus", zone=None),
                               "s-five")
    header, payload, sig = signed.split(b".")
    with pytest.raises(enroll.EnrollmentError, match="malformed"):
        enroll.enroll(db, topic_id, b".".join([header, payload, sig[:-4] + b"AAAA"]))
    enroll.revoke(db, "s-one")
    assert db.execute("SELECT status FROM sensors WHERE id = 's-one'").fetchone()[0] == "revoked"


def test_a_revoked_sensors_messages_are_refused(db, registered, make_message) -> None:
    from central import enroll

    ingestor = Ingestor(db)
    assert ingestor.ingest(*make_message(seq=1)).accepted
    enroll.revoke(db, "s-one")
    ingestor.refresh()
    outcome = ingestor.ingest(*make_message(seq=2))
    assert outcome.reason is Reason.REVOKED_SENSOR
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 1


def test_registry_changes_by_another_process_are_noticed(tmp_path, make_message, sensor_key) -> None:
    from central import enroll

    path = tmp_path / "shared.db"
    service, cli = open_db(path), open_db(path)  # the running central and a CLI command
    ingestor = Ingestor(service)
    assert ingestor.ingest(*make_message(seq=1)).reason is Reason.UNKNOWN_SENSOR
    registry.add_sensor(cli, sensor="s-one", org="test-kommune", site="raadhus",
                        public_jwk=signing.public_jwk(sensor_key))
    assert ingestor.ingest(*make_message(seq=1)).accepted  # no refresh() needed
    enroll.revoke(cli, "s-one")
    assert ingestor.ingest(*make_message(seq=2)).reason is Reason.REVOKED_SENSOR


def _signed_json(key: OKPKey, body: bytes, kid: str = "s-one") -> bytes:
    """A correctly signed message whose payload is exactly ``body`` (the checks after the
    signature are what is tested)."""
    return signing.sign(body, key, kid=kid)


def _body(**changes: object) -> dict[str, object]:
    import uuid

    now = wire.utc_now()
    return {"v": 1, "type": "findings", "sensor": "s-one", "org": "test-kommune", "seq": 1,
            "msg_id": uuid.uuid4().hex, "scan_id": uuid.uuid4().hex, "sent_at": now,
            "scan_started_at": now, "scan_finished_at": now, "part": 1, "parts": 1,
            "networks": [], "assets": []} | changes


@pytest.mark.parametrize(("changes", "reason", "detail"), [
    ({"sent_at": "9999-12-31T23:59:59Z", "scan_finished_at": "9999-12-31T23:59:59Z"},
     Reason.BAD_TIME, "ahead of the central's clock"),
    ({"scan_finished_at": "2026-99-99T99:99:99Z"}, Reason.MALFORMED, "timestamp"),
    ({"scan_started_at": "2026-06-02T00:00:00Z", "scan_finished_at": "2026-06-01T00:00:00Z"},
     Reason.MALFORMED, "finished before it started"),
    ({"sent_at": "1970-01-01T00:00:10Z", "scan_started_at": "1970-01-01T00:00:00Z",
      "scan_finished_at": "1970-01-01T00:00:05Z"}, Reason.BAD_TIME, "clock is not set"),
    ({"plan_id": "ab" * 16, "probes": [{"ip": "10.1.0.9", "proto": "tcp", "port": 22,
                                          "state": "reachable", "rtt_ms": 1.0}]},
     Reason.UNKNOWN_PLAN, "no plan"),
    ({"plan_id": "ab" * 16, "probes": [{"ip": "10.1.0.9", "proto": "tcp", "port": 22,
                                          "state": "reachable", "rtt_ms": True}]},
     Reason.MALFORMED, "rtt_ms"),
    ({"v": [1]}, Reason.UNSUPPORTED_VERSION, "version"),
    ({"v": True}, Reason.UNSUPPORTED_VERSION, "version"),
])
def test_signed_but_wrong_content_is_refused_with_its_reason(
    db: Database, registered: str, sensor_key, changes, reason, detail
) -> None:
    body = wire.canonical_json(_body(**changes))
    outcome = Ingestor(db).ingest(wire.findings_topic("test-kommune", "s-one"),
                                  _signed_json(sensor_key, body))
    assert outcome.reason is reason, outcome
    assert detail in outcome.detail
    assert db.execute("SELECT count(*) FROM assets").fetchone()[0] == 0
    assert counts(db) == {reason.value: 1}


def test_duplicate_json_keys_are_refused(db: Database, registered: str, sensor_key) -> None:
    """{"org": "mine", ..., "org": "theirs"}: which one a reader takes is up to the reader."""
    body = wire.canonical_json(_body(assets=[{"ip": "10.1.0.5"}]))
    doubled = body[:-1] + b',"assets":[{"ip":"10.1.0.6"}]}'
    outcome = Ingestor(db).ingest(wire.findings_topic("test-kommune", "s-one"),
                                  _signed_json(sensor_key, doubled))
    assert outcome.reason is Reason.MALFORMED and "duplicate key 'assets'" in outcome.detail
    assert db.execute("SELECT count(*) FROM assets").fetchone()[0] == 0


def test_clock_skew_is_configurable(db: Database, registered: str, sensor_key) -> None:
    from datetime import UTC, datetime, timedelta

    ahead = wire.format_ts(datetime.now(UTC) + timedelta(minutes=30))
    body = wire.canonical_json(_body(sent_at=ahead))
    topic = wire.findings_topic("test-kommune", "s-one")
    assert Ingestor(db).ingest(topic, _signed_json(sensor_key, body)).reason is Reason.BAD_TIME
    lenient = Ingestor(db, max_clock_skew=timedelta(hours=1))
    assert lenient.ingest(topic, _signed_json(sensor_key, body)).accepted


def _sightings(with_macless: bool) -> st.SearchStrategy[list[Asset]]:
    macs: list[str | None] = ["00:11:32:00:00:09", "00:11:32:00:00:0a", "00:11:32:00:00:0b"]
    return st.lists(st.builds(
        Asset, ip=st.sampled_from(["10.1.0.9", "10.1.0.10", "10.1.0.11"]),
        mac=st.sampled_from([None, *macs] if with_macless else macs),
        mac_vendor=st.sampled_from([None, "Synology Incorporated"]),
        hostname=st.sampled_from([None, "nas", "printer"]), sources=st.just(("arp",))),
        min_size=1, max_size=8)


# half the cases with every asset's MAC known (new devices are then inserted together)
@given(st.booleans().flatmap(_sightings))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_one_message_or_one_per_device_gives_the_same_inventory(sightings: list[Asset]) -> None:
    """A message's assets are looked up together, its new devices inserted together and
    its sightings written together; an asset is still found by what the assets before it in
    the same message left behind (an address-only asset promoted by its MAC, a MAC seen
    twice), exactly as if each had come in a message of its own."""
    key = signing.generate_private_key()

    def inventory_after(messages: list[tuple[Asset, ...]]) -> list[tuple[str, tuple[str, ...], str, str]]:
        with tempfile.TemporaryDirectory() as workdir:
            database = open_db(Path(workdir) / "central.db")
            registry.add_sensor(database, sensor="s-one", org=ORG, site=SITE,
                                public_jwk=signing.public_jwk(key))
            ingestor = Ingestor(database)
            for seq, assets in enumerate(messages, start=1):
                findings = wire.Findings(
                    sensor="s-one", org=ORG, seq=seq, msg_id=f"{seq:032x}", scan_id="a" * 32,
                    sent_at="2026-11-30T01:00:00.000000Z",
                    scan_started_at="2026-11-30T01:00:00.000000Z",
                    scan_finished_at="2026-11-30T01:00:00.000000Z", assets=assets)
                payload = signing.sign(findings.encode(), key, kid="s-one")
                assert ingestor.ingest(wire.findings_topic(ORG, "s-one"), payload).accepted
            rows = sorted((r.mac or "", r.addresses, r.hostname or "", r.mac_vendor or "")
                          for r in inventory.assets(database))
            database.close()
            return rows

    assert inventory_after([tuple(sightings)]) == inventory_after([(a,) for a in sightings])

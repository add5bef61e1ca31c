"""Evaluation of scans and probes into violations, their lifecycle and the exports.

Messages go through the real ingest path (signed, verified, stored in SQLite); the policy
is the small one below. Each violation kind is seeded once, and nothing else may appear."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlite_utils import Database

from agent import signing, wire
from agent.wire import Asset, Findings, Observation, Probe, Service
from central import exports, registry
from central.ingest import Ingestor
from central.keys import load_or_create
from central.plans import issue_plan
from central.policy import parse
from central.violations import ReviewError, evaluate, review, violations

POLICY_TEXT = """
org = "kommune"
[[site]]
name = "raadhus"
[[zone]]
name = "admin"
cidrs = ["10.20.10.0/24"]
allowed_types = ["workstation", "printer"]
[[zone]]
name = "bms"
cidrs = ["10.20.40.0/24"]
criticality = "high"
allowed_types = ["meter", "bms_controller", "workstation"]
[[flow]]
from = "admin"
to = "bms"
proto = "tcp"
ports = [80]
[[flow]]
from = "admin"
to = "bms"
proto = "icmp"
"""
POLICY = parse(POLICY_TEXT)
HOSTILE = '=HYPERLINK("http://evil.example/x","click") login:'
PHONE = "00:04:f2:10:20:41"  # a Polycom desk phone on the voice VLAN


class Sensors:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.keys = {s: signing.generate_private_key() for s in ("s-admin", "s-bms")}
        for sensor, zone in (("s-admin", "admin"), ("s-bms", "bms")):
            registry.add_sensor(db, sensor=sensor, org="kommune", site="raadhus", zone=zone,
                                public_jwk=signing.public_jwk(self.keys[sensor]))
        self.seq = {s: 0 for s in self.keys}
        self.ingestor = Ingestor(db)

    def send(self, sensor: str, *, assets: tuple[Asset, ...] = (), plan_id: str | None = None,
             probes: tuple[Probe, ...] = (), at: str | None = None,
             port_vlans: tuple[int, ...] = (),
             port_trunking: tuple[wire.PortTrunking, ...] = ()) -> None:
        """A scan (or a plan's probes); ``port_vlans``: the other VLANs its port carried,
        each heard from a phone; ``port_trunking``: what the port said in DTP."""
        self.seq[sensor] += 1
        at = at or wire.utc_now()
        findings = Findings(sensor=sensor, org="kommune", seq=self.seq[sensor],
                            msg_id=uuid.uuid4().hex, scan_id=uuid.uuid4().hex, sent_at=at,
                            scan_started_at=at, scan_finished_at=at, assets=assets,
                            plan_id=plan_id, probes=probes, port_vlans=tuple(
                                wire.PortVlan(vlan=v, frames=3, senders=(PHONE,))
                                for v in port_vlans), port_trunking=port_trunking)
        token = signing.sign(findings.encode(), self.keys[sensor], kid=sensor)
        outcome = self.ingestor.ingest(wire.findings_topic("kommune", sensor), token)
        assert outcome.accepted, outcome


def _asset(ip: str, mac: str, *observed: tuple[str, ...], ports: tuple[int, ...] = (),
           banner: str | None = None) -> Asset:
    """An asset; each observation (key, value) or (key, value, source)."""
    return Asset(ip=ip, mac=mac, sources=("arp", "tcp"),
                 services=tuple(Service(port=p, name="telnet" if p == 23 else "http",
                                        banner=banner if p == 23 else None) for p in ports),
                 observations=tuple(Observation(key=o[0], value=o[1], source=(*o, "x")[2])
                                    for o in observed))


ADMIN = (
    _asset("10.20.10.12", "d0:43:1e:10:20:12", ("dhcp.vendor_class", "MSFT 5.0")),
    _asset("10.20.10.60", "ac:cc:8e:10:20:60", ("http.www_authenticate", "AXIS_ACCC8E102060"),
           ports=(80,)),  # a camera in the administration: misplaced, and a clear-text login
    _asset("10.20.10.70", "d0:43:1e:10:20:70", ("netbios.name", "BMS-PC01"),
           ("dhcp.vendor_class", "MSFT 5.0")),
)
BMS = (
    _asset("10.20.40.33", "00:13:ea:10:40:33", ports=(23,), banner=HOSTILE),  # Kamstrup: Telnet
    _asset("10.20.40.70", "d0:43:1e:10:40:70", ("netbios.name", "BMS-PC01"),
           ("dhcp.vendor_class", "MSFT 5.0")),  # the same PC, its other leg
)


def _probes(telnet: str) -> tuple[Probe, ...]:
    return (Probe(ip="10.20.40.33", proto="tcp", port=23, state=telnet, rtt_ms=0.4),
            Probe(ip="10.20.40.33", proto="tcp", port=443, state="refused", rtt_ms=0.3),
            Probe(ip="10.20.40.70", proto="tcp", port=80, state="reachable", rtt_ms=0.3),
            Probe(ip="10.20.40.70", proto="icmp", port=0, state="reachable", rtt_ms=0.2))


@pytest.fixture
def lab(db: Database, tmp_path) -> Sensors:
    sensors = Sensors(db)
    sensors.send("s-admin", assets=ADMIN)
    sensors.send("s-bms", assets=BMS)
    return sensors


def _probe_round(lab: Sensors, tmp_path, telnet: str) -> str:
    key = load_or_create(tmp_path / "central.key")
    plan, token = issue_plan(lab.db, POLICY, "s-admin", key)
    assert {t.ip for t in plan.targets} == {"10.20.40.33", "10.20.40.70"}
    target = next(t for t in plan.targets if t.ip == "10.20.40.33")
    assert 23 in target.tcp and 80 in target.tcp and 161 in target.udp
    assert wire.ProbePlan.decode(signing.verify(token, key, typ=signing.TYPE_PLAN)) == plan
    lab.send("s-admin", plan_id=plan.id, probes=_probes(telnet))
    return plan.id


def _kinds(db: Database, **filters: Any) -> set[tuple[str, str | None, str | None]]:
    return {(v.kind, v.zone, v.other_zone) for v in violations(db, **filters)}


def test_each_seeded_violation_is_found_with_evidence_and_nothing_else(
        db: Database, lab: Sensors, tmp_path) -> None:
    _probe_round(lab, tmp_path, "reachable")
    evaluate(db, POLICY)
    found = {v.kind: v for v in violations(db)}
    assert _kinds(db) == {
        ("unexpected_flow", "admin", "bms"),  # Telnet from admin to bms: denied, reachable
        ("misplaced_device", "admin", None),  # the Axis camera among the PCs
        ("bridging_device", "admin", "bms"),  # one NetBIOS name in two zones
        ("insecure_service", "bms", None),  # Telnet on the meter
        ("insecure_service", "admin", None),  # the camera's Basic-auth login page
    }
    flow = found["unexpected_flow"]
    assert flow.title == "admin reaches bms on tcp/23, which the policy denies"
    assert flow.severity == "high"  # the target zone is critical to the municipality
    assert [e["target"] for e in flow.evidence] == ["10.20.40.33"]
    assert flow.evidence[0]["sensor"] == "s-admin" and flow.evidence[0]["plan"]
    bridge = found["bridging_device"]
    assert {e["address"] for e in bridge.evidence} == {"10.20.10.70", "10.20.40.70"}
    assert all(v.nis2 for v in found.values())
    # the first look at a zone is its baseline: nothing there is 'unknown' yet
    assert "unknown_device" not in found


def test_lifecycle_accept_expire_resolve_reopen_with_an_audit_trail(
        db: Database, lab: Sensors, tmp_path) -> None:
    _probe_round(lab, tmp_path, "reachable")
    evaluate(db, POLICY)
    flow = next(v for v in violations(db) if v.kind == "unexpected_flow")
    with pytest.raises(ReviewError, match="reason"):
        review(db, [flow.id], action="accept", reviewer="mette", until="2099-01-01")
    soon = wire.format_ts(datetime.now(UTC) + timedelta(hours=1))
    review(db, [flow.id], action="accept", reviewer="mette", until=soon,
           reason="the meter's vendor replaces it in March")
    assert flow.id not in {v.id for v in violations(db)}  # hidden while accepted
    later = wire.format_ts(datetime.now(UTC) + timedelta(hours=2))
    assert flow.id in {v.id for v in violations(db, now=later)}  # shown again after expiry
    evaluate(db, POLICY, now=later)
    (row,) = [v for v in violations(db, statuses=None) if v.id == flow.id]
    assert row.status == "open"

    _probe_round(lab, tmp_path, "filtered")  # the firewall was fixed
    evaluate(db, POLICY)
    (row,) = [v for v in violations(db, statuses=None) if v.id == flow.id]
    assert row.status == "resolved"
    _probe_round(lab, tmp_path, "reachable")  # and the rule came back
    evaluate(db, POLICY)
    (row,) = [v for v in violations(db, statuses=None) if v.id == flow.id]
    assert row.status == "open"
    assert [(h["actor"], h["new_status"]) for h in row.history] == [
        ("netvagt", "open"), ("mette", "accepted"), ("netvagt", "open"),
        ("netvagt", "resolved"), ("netvagt", "open")]
    assert "expired" in row.history[2]["reason"] and "March" in row.history[1]["reason"]


def test_a_device_new_since_the_baseline_is_unknown(
        db: Database, lab: Sensors) -> None:
    evaluate(db, POLICY)  # baseline
    later = wire.format_ts(datetime.now(UTC) + timedelta(seconds=5))
    lab.send("s-admin", assets=(*ADMIN, _asset("10.20.10.99", "d0:43:1e:10:20:99",
                                              ("dhcp.vendor_class", "MSFT 5.0"))), at=later)
    evaluate(db, POLICY)
    (new,) = violations(db, kind="unknown_device")
    assert new.zone == "admin" and new.evidence[0]["address"] == "10.20.10.99"
    review(db, [new.id], action="false-positive", reviewer="jens", reason="the new caretaker PC")
    evaluate(db, POLICY)
    assert violations(db, kind="unknown_device") == []  # decided, stays decided


def test_a_glimpse_from_another_zone_is_no_baseline_for_the_zone(db: Database) -> None:
    # the administration's sensor scans first and finds a BMS address on its wire (a leg of
    # the dual-homed PC); a round runs before the BMS sensor's own first scan comes in:
    # that scan is the BMS zone's first look, nothing in it is new
    start = datetime.now(UTC) - timedelta(minutes=1)
    at = {n: wire.format_ts(start + timedelta(seconds=n)) for n in range(12)}
    sensors = Sensors(db)
    sensors.send("s-admin", assets=(*ADMIN, _asset("10.20.40.70", "d0:43:1e:10:40:70")),
                 at=at[0])
    evaluate(db, POLICY, now=at[1])
    sensors.send("s-bms", assets=BMS, at=at[5])
    evaluate(db, POLICY, now=at[6])
    assert violations(db, kind="unknown_device") == []
    # from then on the zone has its baseline: a device its sensor finds later is new
    sensors.send("s-bms", assets=(*BMS, _asset("10.20.40.90", "00:13:ea:10:40:90")),
                 at=at[10])
    evaluate(db, POLICY, now=at[11])
    assert [v.evidence[0]["address"] for v in violations(db, kind="unknown_device")] == [
        "10.20.40.90"]


def test_a_zone_of_empty_baseline_waits_for_no_sensor(db: Database) -> None:
    """With ``baseline = "empty"`` every device is new until reviewed: one the
    administration's sensor glimpses there is new at once, its zone's own sensor or not."""
    sensors = Sensors(db)
    sensors.send("s-admin", assets=(*ADMIN, _asset("10.20.40.70", "d0:43:1e:10:40:70")))
    evaluate(db, FIELD_POLICY)
    assert [(v.zone, v.evidence[0]["address"]) for v in violations(db, kind="unknown_device")
            ] == [("bms", "10.20.40.70")]


def test_exports_read_back_with_evidence_and_formulas_stay_text(
        db: Database, lab: Sensors, tmp_path) -> None:
    _probe_round(lab, tmp_path, "reachable")
    evaluate(db, POLICY)
    count = len(violations(db, statuses=None))
    rows = list(csv.reader(io.StringIO(exports.export(db, "violations", "csv").decode("utf-8-sig"))))
    assert rows[0][:3] == ["ID / ID", "Type / Kind", "Alvor / Severity"]
    assert len(rows) == 1 + count
    evidence = rows[0].index("Dokumentation / Evidence")
    telnet = next(r for r in rows if "Telnet on" in " ".join(r))
    assert "HYPERLINK" in telnet[evidence] and not telnet[evidence].startswith("=")
    book = load_workbook(io.BytesIO(exports.export(db, "violations", "xlsx")))
    sheet = book.active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert len(values) == 1 + count
    assert all(not (isinstance(v, str) and v.startswith("=")) for row in values for v in row)
    assert all(c.data_type == "s" for row in sheet.iter_rows(min_row=2)
               for c in row if isinstance(c.value, str))
    # a hostile banner as a whole cell: the assets export
    lab.send("s-bms", assets=(_asset("10.20.40.34", "00:1b:08:10:40:34",
                                     ("netbios.name", HOSTILE)),))
    assets = list(csv.reader(io.StringIO(
        exports.export(db, "assets", "csv", policy=POLICY).decode("utf-8-sig"))))
    hosts = [r[assets[0].index("Værtsnavn / Host name")] for r in assets[1:]]
    assert "'" + HOSTILE in hosts
    book = load_workbook(io.BytesIO(exports.export(db, "assets", "xlsx", policy=POLICY)))
    cells = [c for row in book.active.iter_rows() for c in row]
    assert any(c.value == "'" + HOSTILE and c.data_type == "s" for c in cells)
    data = json.loads(exports.export(db, "violations", "json"))
    assert len(data) == count and all(d["evidence_items"] for d in data)


def test_the_service_round_plans_after_each_scan_and_evaluates_new_data(
        db: Database, lab: Sensors, tmp_path) -> None:
    from central.service import segmentation_round

    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(POLICY_TEXT)
    key = load_or_create(tmp_path / "central.key")
    seen = segmentation_round(db, policy_file, key)
    plans = {r["sensor_id"] for r in db.query("SELECT sensor_id FROM plans")}
    assert plans == {"s-admin", "s-bms"}  # both have scanned: both get a plan
    assert violations(db)  # and the data was evaluated
    assert segmentation_round(db, policy_file, key, seen) == seen
    assert db.execute("SELECT count(*) FROM plans").fetchone()[0] == 2  # nothing new: no plan
    policy_file.write_text(POLICY_TEXT.replace('cidrs = ["10.20.40.0/24"]',
                                               'cidrs = ["10.20.10.0/25"]'))
    lab.send("s-admin", assets=ADMIN)  # a new scan, while the policy is broken
    assert segmentation_round(db, policy_file, key, seen) == seen  # logged, skipped
    assert db.execute("SELECT count(*) FROM plans").fetchone()[0] == 2
    policy_file.write_text(POLICY_TEXT)  # fixed: the new scan gets its plan
    assert segmentation_round(db, policy_file, key, seen) != seen
    assert db.execute("SELECT count(*) FROM plans").fetchone()[0] == 3


def _status(db: Database, lab: Sensors, sensor: str, state: str) -> None:
    """A sensor's signed status, as the service stores it off the broker."""
    from central.service import store_status

    body = wire.Status(sensor=sensor, org="kommune", state=state, at=wire.utc_now())
    store_status(db, lab.ingestor, wire.status_topic("kommune", sensor), signing.sign(
        body.encode(), lab.keys[sensor], kid=sensor, typ=signing.TYPE_STATUS))


def _sent(db: Database, key: Any, *, only: str | None = None) -> list[str]:
    """The sensors one round of the service's sending publishes to (of messages of type
    ``only``, where given)."""
    import asyncio

    from central.service import send_commands

    published: list[str] = []

    class Broker:  # what send_commands uses of an aiomqtt client
        async def publish(self, topic: str, payload: bytes, qos: int) -> None:
            if only is None or signing.peek_type(payload) == only:
                published.append(topic.split("/")[-2])

    asyncio.run(send_commands(db, Broker(), key))  # type: ignore[arg-type]
    return sorted(published)


def test_a_plan_waits_for_its_sensor_to_listen(db: Database, lab: Sensors, tmp_path) -> None:
    """The plans are issued as the night's scans come in; a sensor's daemon may not be
    connected then (started after its first scan, restarting). Published to nobody, a plan
    was lost, and the sensor never probed: it goes once the sensor's status says it listens."""
    from central.service import segmentation_round

    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(POLICY_TEXT)
    key = load_or_create(tmp_path / "central.key")
    segmentation_round(db, policy_file, key)

    def status(sensor: str, state: str) -> None:
        _status(db, lab, sensor, state)

    def send() -> list[str]:
        return _sent(db, key)

    assert send() == []  # no daemon has said it listens
    status("s-admin", "online")
    status("s-bms", "offline")  # its last will
    assert send() == ["s-admin"]
    assert send() == []  # sent once
    status("s-bms", "scanning")  # back, and busy: it listens all the same
    assert send() == ["s-bms"]
    # the admin sensor loses power: its last will comes 1.5 keep-alives later, and the plan
    # sent in between went nowhere; once it is back, the plan goes again
    status("s-admin", "offline")
    assert send() == []
    status("s-admin", "online")
    assert send() == ["s-admin"]
    # a plan it answered, or one sent long before it went, is not sent again
    db.execute("UPDATE plans SET sent_at = '2026-01-01T00:00:00.000000Z'"
               " WHERE sensor_id = 's-bms'")
    for sensor in ("s-admin", "s-bms"):
        status(sensor, "offline")
        status(sensor, "online")
    assert send() == ["s-admin"]
    (plan_id,) = [r[0] for r in db.execute("SELECT id FROM plans WHERE sensor_id = 's-admin'")]
    lab.send("s-admin", plan_id=plan_id, probes=_probes("reachable"))
    status("s-admin", "offline")
    status("s-admin", "online")
    assert send() == []


def test_a_scan_command_lost_with_its_sensor_s_power_is_sent_again(
        db: Database, lab: Sensors, tmp_path) -> None:
    """An operator's 'sensor scan' sent in the minute between a sensor losing power and its
    last will went nowhere, and was marked sent: the scan never ran. Sent again once the
    sensor is back, unless a scan's findings came in after it was sent."""
    from central.registry import queue_scan

    key = load_or_create(tmp_path / "central.key")

    def status(sensor: str, state: str) -> None:
        _status(db, lab, sensor, state)

    def send() -> list[str]:
        return _sent(db, key, only=signing.TYPE_COMMAND)

    for sensor in ("s-admin", "s-bms"):
        status(sensor, "online")
        queue_scan(db, sensor, profile="safe", valid=timedelta(hours=1), issued_by="test")
    assert send() == ["s-admin", "s-bms"]
    lab.send("s-bms", assets=BMS)  # the bms sensor scanned: its command was obeyed
    for sensor in ("s-admin", "s-bms"):
        status(sensor, "offline")  # both lose power: their last wills
    assert send() == []
    for sensor in ("s-admin", "s-bms"):
        status(sensor, "online")
    assert send() == ["s-admin"]
    assert send() == []  # once


def test_a_plan_run_twice_is_one_set_of_results(db: Database, lab: Sensors, tmp_path) -> None:
    """A plan sent again (its sensor went offline just after) that the sensor had run, its
    results still in its outbox, is run again after a restart: two messages of results for
    one plan. The inventory keeps the first of each probe, and the evidence lists it once."""
    plan_id = _probe_round(lab, tmp_path, "reachable")
    lab.send("s-admin", plan_id=plan_id, probes=_probes("filtered"))
    rows = db.execute("SELECT ip, proto, port, state FROM reach ORDER BY ip, proto, port").fetchall()
    assert rows == sorted((p.ip, p.proto, p.port, p.state) for p in _probes("reachable"))
    evaluate(db, POLICY)
    (flow,) = [v for v in violations(db, kind="unexpected_flow") if "tcp/23" in v.title]
    assert len(flow.evidence) == 1


def test_one_ssh_host_key_in_two_zones_is_a_bridge(db: Database, lab: Sensors) -> None:
    key = "ssh-ed25519 SHA256:q2cE3yb0Hc5Yt0sW3m1Q4Y2gS7m0I3mT6XG3Hn2K3aE"
    lab.send("s-admin", assets=(*ADMIN, _asset("10.20.10.80", "b8:27:eb:10:20:80",
                                              ("ssh.hostkey", key))))
    lab.send("s-bms", assets=(*BMS, _asset("10.20.40.80", "b8:27:eb:10:40:80",
                                          ("ssh.hostkey", key))))
    evaluate(db, POLICY)
    (bridge,) = [v for v in violations(db, kind="bridging_device") if "ssh.hostkey" in v.title]
    assert {e["address"] for e in bridge.evidence} == {"10.20.10.80", "10.20.40.80"}
    assert (bridge.zone, bridge.other_zone) == ("admin", "bms")


@pytest.mark.parametrize(("key", "value", "confidence"), [
    ("upnp.udn", "uuid:2fac1234-31f8-11b4-a222-08002b34c003", 0.95),
    ("upnp.serial", "DS-2CD2043G2-I20220101AAWRJ12345678", 0.8),
    ("mdns.hostname", "axis-accc8e102061", 0.6),
])
def test_a_device_that_names_itself_the_same_in_two_zones_is_a_bridge_with_its_confidence(
        db: Database, lab: Sensors, key: str, value: str, confidence: float) -> None:
    lab.send("s-admin", assets=(*ADMIN, _asset("10.20.10.81", "ac:cc:8e:10:20:81", (key, value))))
    lab.send("s-bms", assets=(*BMS, _asset("10.20.40.81", "ac:cc:8e:10:40:82", (key, value))))
    evaluate(db, POLICY)
    (bridge,) = [v for v in violations(db, kind="bridging_device") if key in v.title]
    assert {e["address"] for e in bridge.evidence} == {"10.20.10.81", "10.20.40.81"}
    assert {e["confidence"] for e in bridge.evidence} == {confidence}


def test_a_device_that_says_several_mdns_host_names_at_once_repeats_others(
        db: Database, lab: Sensors) -> None:
    """An mDNS reflector (Avahi's, a wireless controller's gateway) repeats other segments'
    announcements one device at a time, from its own address: in one scan it says several
    host names. They are the repeated devices', so the reflector in admin is not the bms
    camera and printer answering in two zones, nor named by either. One name said alone
    stays a bridge, and names the device in the inventory."""
    reflector = _asset("10.20.10.2", "00:1a:1e:10:20:02", ("mdns.hostname", "axis-accc8e104081"),
                       ("mdns.hostname", "NPI1A2B3C"))
    lab.send("s-admin", assets=(*ADMIN, reflector))
    lab.send("s-bms", assets=(*BMS, _asset("10.20.40.81", "ac:cc:8e:10:40:81",
                                          ("mdns.hostname", "axis-accc8e104081")),
                              _asset("10.20.40.82", "00:80:77:10:40:82",
                                     ("mdns.hostname", "NPI1A2B3C"))))
    evaluate(db, POLICY)
    assert not [v for v in violations(db, kind="bridging_device") if "mdns" in v.title]
    # the camera heard only in mDNS is named by its host name there; the reflector by none
    names = {r["mac"]: r["hostname"] for r in db.query("SELECT mac, hostname FROM assets")}
    assert (names["ac:cc:8e:10:40:81"], names["00:1a:1e:10:20:02"]) == ("axis-accc8e104081", None)
    # a later scan hears the camera's own name alone from an admin address: that is a bridge
    lab.send("s-admin", assets=(*ADMIN, _asset("10.20.10.83", "ac:cc:8e:10:20:83",
                                              ("mdns.hostname", "axis-accc8e104081"))))
    evaluate(db, POLICY)
    (bridge,) = [v for v in violations(db, kind="bridging_device") if "mdns" in v.title]
    assert {e["address"] for e in bridge.evidence} == {"10.20.10.83", "10.20.40.81"}


def test_an_address_claimed_in_another_zone_s_ipv6_range_is_a_bridge(
        db: Database, lab: Sensors) -> None:
    """A camera in admin names its bms leg's IPv6 address (an mDNS AAAA record): the bms
    zone is dual-stack, so the claim puts the camera in both zones, as an IPv4 claim does."""
    policy = parse(POLICY_TEXT.replace('cidrs = ["10.20.40.0/24"]',
                                       'cidrs = ["10.20.40.0/24", "fd20:40::/64"]'))
    lab.send("s-admin", assets=(*ADMIN, _asset("10.20.10.81", "ac:cc:8e:10:20:81",
                                              ("claim.ipv6", "fd20:40::81"),
                                              ("claim.ipv6", "not an address"))))
    evaluate(db, policy)
    titles = [v.title for v in violations(db, kind="bridging_device")]
    assert [t for t in titles if "fd20:40::81" in t] == [
        "device 10.20.10.81 in admin claims address fd20:40::81 in bms"]


def test_a_device_on_the_admin_wire_with_a_bms_address_is_misplaced(
        db: Database, lab: Sensors) -> None:
    """A heat meter plugged into an admin socket keeps its bms address: the admin sensor
    hears it on its wire (``net.link``). By its address alone it was a meter in bms, where
    meters belong, and nothing was found; the two zones meet at layer 2 through it. A
    device heard on the admin wire with another admin address is nothing, and once the
    meter is back in its socket (heard by the bms sensor without the mark) the finding
    goes, so a stale mark never keeps it."""
    meter = _asset("10.20.40.90", "00:13:ea:10:40:90", ("net.link", "10.20.10.250/24"),
                   ("snmp.sysdescr", "Kamstrup OMNIPOWER"))
    second = _asset("10.20.10.200", "d0:43:1e:10:20:99", ("net.link", "10.20.10.250/25"),
                    ("dhcp.vendor_class", "MSFT 5.0"))
    stray = _asset("10.20.99.9", "d0:43:1e:10:20:98", ("net.link", "10.20.10.250/24"),
                   ("net.link", "not an interface"))
    # the meter's IPv6 address, heard on the admin wire too: one finding, both addresses
    meter6 = _asset("fd20:40::90", "00:13:ea:10:40:90", ("net.link", "fd20:10::fa/64"))
    lab.send("s-admin", assets=(meter6, *ADMIN, meter, second, stray))
    policy = parse(POLICY_TEXT.replace('cidrs = ["10.20.40.0/24"]',
                                       'cidrs = ["10.20.40.0/24", "fd20:40::/64"]').replace(
        'cidrs = ["10.20.10.0/24"]', 'cidrs = ["10.20.10.0/24", "fd20:10::/64"]'))
    evaluate(db, policy)
    found = {v.title: v for v in violations(db, kind="misplaced_device") if "segment" in v.title}
    assert set(found) == {
        "meter 10.20.40.90 (Kamstrup OMNIPOWER) is on the admin segment (10.20.10.0/24) with"
        " an address of zone bms",
        "device 10.20.99.9 (Dell) is on the admin segment (10.20.10.0/24) with an address in"
        " no zone"}
    placed = next(v for v in found.values() if "bms" in v.title)
    assert (placed.zone, placed.other_zone, placed.severity) == ("admin", "bms", "high")
    assert [(e["address"], e["segment"]) for e in placed.evidence] == [
        ("10.20.40.90", "10.20.10.0/24"), ("fd20:40::90", "fd20:10::/64")]
    assert placed.evidence[0]["mac"] == "00:13:ea:10:40:90"
    # back in its own socket: the bms sensor hears it, unmarked
    lab.send("s-bms", assets=(*BMS, _asset("10.20.40.90", "00:13:ea:10:40:90")))
    lab.send("s-admin", assets=ADMIN)
    evaluate(db, policy)
    assert not [v for v in violations(db, kind="misplaced_device")
                if "segment" in v.title]


def test_a_device_with_an_automatic_address_only_is_judged_in_the_segment_s_zone(
        db: Database, lab: Sensors) -> None:
    """A device no DHCP server answered holds only an automatic address (169.254/16, or
    fe80:: with IPv4 off), which is of every link and in no zone's CIDRs: the sensor
    hears it on its wire (``net.link``). Judged by that address, it was 'on the admin
    segment with an address in no zone', a misplaced device of its own kind, and no
    zone's type rules reached it. It is in the zone of the segment it was heard on: a PC
    there is nothing, a camera there is a camera in the administration, and a device heard
    so on the admin wire and in bms is one MAC in two zones."""
    mark = ("net.link", "10.20.10.250/24")
    pc = _asset("169.254.12.13", "d0:43:1e:10:20:13", mark, ("dhcp.vendor_class", "MSFT 5.0"))
    camera = _asset("169.254.60.61", "ac:cc:8e:10:20:61", mark,
                    ("http.www_authenticate", "AXIS_ACCC8E102061"))
    plug = _asset("fe80::aa03:2aff:fe10:2099", "a8:03:2a:10:20:99", mark,
                  ("mdns.service", "_hap._tcp"))
    lab.send("s-admin", assets=(*ADMIN, pc, camera, plug))
    lab.send("s-bms", assets=(*BMS, _asset("169.254.40.99", "a8:03:2a:10:20:99",
                                           ("net.link", "10.20.40.250/24"))))
    evaluate(db, POLICY)
    said = [v for v in violations(db) if any(a in json.dumps([v.title, v.evidence]) for a in (
        "169.254.", "fe80::", "a8:03:2a:10:20:99"))]
    assert sorted(v.title for v in said) == [
        "MAC a8:03:2a:10:20:99 answers in zones admin and bms",
        "camera 169.254.60.61 (Axis Communications) is in zone admin, which allows "
        "workstation, printer",
        "iot_hub 169.254.40.99 is in zone bms, which allows meter, bms_controller, workstation",
        "iot_hub fe80::aa03:2aff:fe10:2099 is in zone admin, which allows workstation, printer"]
    assert not [v for v in said if "no zone" in v.title or "segment" in v.title]
    # the register's asset list says the same zone (it said none)
    zones = {r["mac"]: r["zone"] for r in exports.asset_records(db, POLICY)}
    assert (zones["ac:cc:8e:10:20:61"], zones["a8:03:2a:10:20:99"]) == ("admin", "admin bms")


def test_the_same_name_in_one_zone_only_is_no_bridge(db: Database, lab: Sensors) -> None:
    lab.send("s-admin", assets=(*ADMIN, _asset("10.20.10.81", "ac:cc:8e:10:20:81",
                                              ("upnp.udn", "uuid:one")),
                                _asset("10.20.10.82", "ac:cc:8e:10:20:99",
                                       ("upnp.udn", "uuid:one"))))
    lab.send("s-bms", assets=BMS)
    evaluate(db, POLICY)
    assert not [v for v in violations(db, kind="bridging_device") if "upnp.udn" in v.title]


FIELD_POLICY = parse(POLICY_TEXT.replace(
    '''name = "bms"
cidrs = ["10.20.40.0/24"]''', '''name = "bms"
cidrs = ["10.20.40.0/24"]
gateways = ["10.20.40.1"]
allow_unidentified = false
baseline = "empty"'''))


def test_a_gateway_answering_is_routing_but_its_login_is_an_exposure(
        db: Database, lab: Sensors, tmp_path) -> None:
    """ICMP to the router's own address in another zone was reported as a flow into that
    zone, from every zone to every other; its SSH answering there is the real finding."""
    key = load_or_create(tmp_path / "central.key")
    plan, _ = issue_plan(lab.db, FIELD_POLICY, "s-admin", key)
    lab.send("s-admin", plan_id=plan.id, probes=(
        Probe(ip="10.20.40.1", proto="icmp", port=0, state="reachable", rtt_ms=0.2),
        Probe(ip="10.20.40.1", proto="tcp", port=22, state="reachable", rtt_ms=0.3),
        Probe(ip="10.20.40.1", proto="tcp", port=9999, state="refused", rtt_ms=0.3)))
    evaluate(db, FIELD_POLICY)
    kinds = {v.kind: v for v in violations(db)}
    assert "unexpected_flow" not in kinds  # neither the ping nor the SSH is a flow "into" bms
    exposure = kinds["management_exposure"]
    assert (exposure.zone, exposure.other_zone) == ("admin", "bms")
    assert "SSH management of gateway 10.20.40.1" in exposure.title
    assert exposure.evidence[0]["service"] == "tcp/22" and exposure.severity == "high"


def test_a_gateway_s_other_address_is_the_gateway_too(db: Database, lab: Sensors,
                                                     tmp_path: Path) -> None:
    """The policy names the firewall by its IPv4 address; its SSH answering on its IPv6
    address is the same exposure, not a flow into the zone."""
    policy = parse(POLICY_TEXT.replace(
        'name = "bms"\ncidrs = ["10.20.40.0/24"]',
        'name = "bms"\ncidrs = ["10.20.40.0/24", "fd20:40::/64"]\ngateways = ["10.20.40.254"]'))
    firewall = "00:1b:17:10:40:fe"
    lab.send("s-bms", assets=(*BMS, Asset(ip="10.20.40.254", mac=firewall, sources=("arp",)),
                              Asset(ip="fd20:40::fe", mac=firewall, sources=("icmp",))))
    key = load_or_create(tmp_path / "central.key")
    plan, _ = issue_plan(lab.db, policy, "s-admin", key)
    lab.send("s-admin", plan_id=plan.id, probes=(
        Probe(ip="fd20:40::fe", proto="tcp", port=22, state="reachable", rtt_ms=0.3),))
    evaluate(db, policy)
    kinds = {v.kind: v for v in violations(db)}
    assert "unexpected_flow" not in kinds
    assert "fd20:40::fe" in kinds["management_exposure"].title


@pytest.mark.parametrize(("ttl", "ip", "bridge"), [
    (64, "10.20.40.70", True),  # crossed no router: the device answered on admin's segment
    (128, "10.20.40.70", True),
    (63, "10.20.40.70", False),  # one router on the way: an ordinary routed answer
    (None, "10.20.40.70", False),  # a connect probe reads no TTL
    (64, "10.20.40.1", False),  # a gateway's own address answers from the segment's edge
])
def test_an_answer_from_another_zone_that_crossed_no_router_is_a_bridge(
        db: Database, lab: Sensors, tmp_path: Path, ttl: int | None, ip: str,
        bridge: bool) -> None:
    lab.send("s-bms", assets=BMS)
    key = load_or_create(tmp_path / "central.key")
    plan, _ = issue_plan(lab.db, FIELD_POLICY, "s-admin", key)
    lab.send("s-admin", plan_id=plan.id, probes=(
        Probe(ip=ip, proto="tcp", port=80, state="reachable", rtt_ms=0.3, ttl=ttl),))
    evaluate(db, FIELD_POLICY)
    direct = [v for v in violations(db, kind="bridging_device") if "directly" in v.title]
    assert bool(direct) is bridge
    if bridge:
        assert (direct[0].zone, direct[0].other_zone) == ("admin", "bms")
        assert direct[0].evidence[0]["ttl"] == ttl and direct[0].evidence[0]["confidence"] == 0.7


def test_a_router_known_only_by_its_identity_that_answers_directly_is_a_bridge(
        db: Database, lab: Sensors, tmp_path: Path) -> None:
    """A heating vendor's remote-access router (a MikroTik) sits in bms with a leg in admin.
    It answers admin's probe of its bms address through no router: a bridge, like any
    device. Being a router by its own banner made it one of the zone's gateways, whose own
    addresses answer from the segment's edge, and the bridge went unreported (as did any
    service of it beyond its login, reached from admin). The zone's gateway by the policy
    (or a sensor's routes) still answers so without a finding."""
    lab.send("s-bms", assets=(*BMS, _asset("10.20.40.60", "48:8f:5a:10:40:60",
                                          ("ssh.banner", "SSH-2.0-ROSSSH"))))
    key = load_or_create(tmp_path / "central.key")
    plan, _ = issue_plan(lab.db, FIELD_POLICY, "s-admin", key)
    lab.send("s-admin", plan_id=plan.id, probes=(
        Probe(ip="10.20.40.60", proto="tcp", port=8291, state="reachable", rtt_ms=0.3, ttl=64),
        Probe(ip="10.20.40.60", proto="tcp", port=445, state="reachable", rtt_ms=0.3, ttl=64),
        Probe(ip="10.20.40.1", proto="tcp", port=80, state="reachable", rtt_ms=0.3, ttl=64),
        Probe(ip="10.20.40.1", proto="tcp", port=445, state="reachable", rtt_ms=0.3, ttl=64)))
    evaluate(db, FIELD_POLICY)
    direct = [v.title for v in violations(db, kind="bridging_device") if "directly" in v.title]
    assert direct == ["router 10.20.40.60 (MikroTik RouterOS) in zone bms answers admin's sensor "
                      "directly, through no router"]
    # its Winbox login reached from admin is still reported as a router's; its file share
    # is a flow into bms, as any device's (the zone's own router's is routing)
    assert [v.kind for v in violations(db) if "10.20.40.60" in v.title and "Winbox" in v.title
            ] == ["management_exposure"]
    (flow,) = [v for v in violations(db, kind="unexpected_flow") if "tcp/445" in v.title]
    assert [e["target"] for e in flow.evidence] == ["10.20.40.60"]


def test_critical_zones_flag_unidentified_unapproved_and_from_an_empty_baseline(
        db: Database, lab: Sensors, tmp_path) -> None:
    """A rogue Raspberry Pi: a vendor, no type, present at the first evaluation. In a zone
    that allows identified devices only, with an empty baseline and an approved list, it is
    flagged three ways from the very first evaluation."""
    from central.approved import import_file

    lab.send("s-bms", assets=(_asset("10.20.40.99", "b8:27:eb:40:00:99"),))
    register = tmp_path / "godkendte.csv"
    register.write_text("mac;adresse;ejer;type\n00:13:ea:10:40:33;;Teknik;meter\n"
                        "d0-43-1e-10-40-70;10.20.40.70;IT;workstation\n")
    assert import_file(db, register, org="kommune", site="raadhus") == 2
    evaluate(db, FIELD_POLICY)
    rogue = {v.kind: v for v in violations(db, zone="bms") if "10.20.40.99" in v.title}
    assert set(rogue) == {"misplaced_device", "unknown_device", "unapproved_device"}, rogue
    assert "identified devices only" in rogue["misplaced_device"].title
    approved = [v for v in violations(db, kind="unapproved_device")]
    assert {v.title.split()[1] for v in approved} <= {"10.20.40.99", "10.20.10.12",
                                                        "10.20.10.60", "10.20.10.70"}
    assert not any("10.20.40.70" in v.title or "10.20.40.33" in v.title for v in approved)


def test_a_zone_of_visitors_has_no_new_or_unapproved_devices_and_the_rest_holds(
        db: Database, lab: Sensors, tmp_path) -> None:
    """Guest Wi-Fi and staff's own phones: with an approved list for the site, every
    visitor's phone was an unapproved device, and every one first seen after the baseline
    an unknown device, each day, by the hundreds. A zone with ``baseline = "visitors"``
    has neither; a camera there is still misplaced, and the other zones keep both."""
    from central.approved import import_file

    policy = parse(POLICY_TEXT.replace('name = "admin"\n', 'name = "admin"\nbaseline = "visitors"\n'))
    assert policy.zone("admin").visitors and not policy.zone("bms").visitors
    register = tmp_path / "godkendte.csv"
    register.write_text("mac,owner\n00:13:ea:10:40:33,Teknik\n")
    import_file(db, register, org="kommune", site="raadhus")
    evaluate(db, policy)  # the baseline
    lab.send("s-admin", assets=(*ADMIN, _asset("10.20.10.90", "f2:11:22:33:44:55",
                                              ("dhcp.vendor_class", "android-dhcp-14"))))
    lab.send("s-bms", assets=(*BMS, _asset("10.20.40.91", "b8:27:eb:40:00:91")))
    evaluate(db, policy)
    kinds = {(v.kind, v.zone) for v in violations(db)
             if v.kind in ("unknown_device", "unapproved_device", "misplaced_device")}
    assert ("unknown_device", "admin") not in kinds and ("unapproved_device", "admin") not in kinds
    assert {("unknown_device", "bms"), ("unapproved_device", "bms"),
            ("misplaced_device", "admin")} <= kinds, kinds


def test_an_approved_list_with_a_bad_line_is_refused_whole(db: Database, tmp_path) -> None:
    from central.approved import ApprovedListError, import_file

    bad = tmp_path / "list.csv"
    bad.write_text("mac,address,owner,type\n00:13:ea:10:40:33,,a,meter\nnot-a-mac,,b,\n"
                   ",10.1.1.300,c,\n,,d,\n00:13:ea:10:40:34,,e,toaster\n")
    with pytest.raises(ApprovedListError) as caught:
        import_file(db, bad, org="kommune", site="raadhus")
    assert [p.split(": ", 1)[0].rsplit(":", 1)[1] for p in caught.value.problems] == [
        "3", "4", "5", "6"]
    assert db.execute("SELECT count(*) FROM approved_assets").fetchone()[0] == 0


def test_plans_wait_for_the_site_s_scans_and_are_rebuilt_when_another_zone_reports(
        db: Database, tmp_path, caplog) -> None:
    """The night's first sensor got a plan with no target and tested nothing until the next
    night. Plans are now the night's second phase: a plan waits for the site's other
    sensors to scan (at most PHASE_DEADLINE_S), is rebuilt when another zone reports new
    targets, and an empty plan says why."""
    import logging

    from central.service import PHASE_DEADLINE_S, segmentation_round

    policy_path = tmp_path / "policy.toml"
    policy_path.write_text(POLICY_TEXT)
    key = load_or_create(tmp_path / "central.key")
    sensors = Sensors(db)

    def plans(sensor: str) -> list[int]:
        return [r[0] for r in db.execute("SELECT targets FROM plans WHERE sensor_id = ?"
                                         " ORDER BY issued_at", [sensor]).fetchall()]

    sensors.send("s-admin", assets=ADMIN)
    with caplog.at_level(logging.INFO, logger="netvagt.central.service"):
        segmentation_round(db, policy_path, key)
    assert plans("s-admin") == []  # waiting for the bms sensor's scan
    assert "probe plan for s-admin waits for the scans of s-bms" in caplog.text
    sensors.send("s-bms", assets=BMS)
    segmentation_round(db, policy_path, key)
    assert plans("s-admin") == [2] and plans("s-bms") == [3]  # every zone pair planned
    segmentation_round(db, policy_path, key)
    assert plans("s-admin") == [2]  # nothing new: no new plan

    # a new device in bms after admin's plan: admin's plan is rebuilt with it
    sensors.send("s-bms", assets=(*BMS, _asset("10.20.40.34", "00:1b:08:10:40:34")))
    segmentation_round(db, policy_path, key)
    assert plans("s-admin") == [2, 3]

    # a sensor whose sibling never scans: its plan goes at the deadline
    later = datetime.now(UTC) + timedelta(seconds=PHASE_DEADLINE_S + 60)
    registry.add_sensor(db, sensor="s-school", org="kommune", site="skole", zone="admin",
                        public_jwk=signing.public_jwk(signing.generate_private_key()))
    sensors.keys["s-lonely"] = signing.generate_private_key()
    registry.add_sensor(db, sensor="s-lonely", org="kommune", site="skole", zone="bms",
                        public_jwk=signing.public_jwk(sensors.keys["s-lonely"]))
    sensors.seq["s-lonely"] = 0
    sensors.ingestor.refresh()
    sensors.send("s-lonely", assets=(_asset("10.20.40.90", "00:1b:08:10:40:90"),))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="netvagt.central.service"):
        segmentation_round(db, policy_path, key)
        assert plans("s-lonely") == []  # s-school has not scanned: wait
        assert "waits for the scans of s-school" in caplog.text
        segmentation_round(db, policy_path, key, now=later)
    assert len(plans("s-lonely")) == 1


def test_a_dual_homed_camera_with_neighbouring_macs_is_a_bridge(
        db: Database, lab: Sensors) -> None:
    """Two NICs of one camera: consecutive MACs of one vendor, the same pages on both, and
    nothing else that links them (no TLS, SSH, SNMP or NetBIOS)."""
    page = (("http.server", "App-webs/"), ("http.title", "DS-2CD2143G2-I"),
            ("rtsp.server", "Hikvision RTSP Server"))
    lab.send("s-admin", assets=(*ADMIN, _asset("10.20.10.88", "bc:ad:28:11:22:30", *page)))
    lab.send("s-bms", assets=(*BMS, _asset("10.20.40.88", "bc:ad:28:11:22:31", *page),
                              # another unit of the same model, far off in MAC: not a bridge
                              _asset("10.20.40.89", "bc:ad:28:99:00:01", *page)))
    evaluate(db, POLICY)
    bridges = [v for v in violations(db, kind="bridging_device") if "NICs" in v.title]
    assert len(bridges) == 1, [b.title for b in bridges]
    (bridge,) = bridges
    assert "bc:ad:28:11:22:30" in bridge.title and "bc:ad:28:11:22:31" in bridge.title
    assert bridge.severity == "high"
    assert {e["source"] for e in bridge.evidence} == {"neighbouring MACs",
                                                       "same banners and pages"}


def test_two_cameras_of_one_batch_in_two_zones_are_two_devices(
        db: Database, lab: Sensors) -> None:
    """A municipality buys its cameras by the box: their MACs run in sequence, and one
    model serves one page. Two of them installed in two zones were 'one camera's two NICs',
    a high bridge. Their serial numbers (and certificates) differ: two devices. One
    camera's two NICs serve one serial number on both, and stay a bridge."""
    page = (("http.server", "App-webs/"), ("http.title", "DS-2CD2143G2-I"))
    lab.send("s-admin", assets=(
        *ADMIN,
        _asset("10.20.10.88", "bc:ad:28:11:22:30", *page, ("upnp.serial", "DS-2CD2143G2-I0120AAWRJ10001")),
        _asset("10.20.10.90", "bc:ad:28:11:22:40", *page, ("upnp.serial", "DS-2CD2143G2-I0120AAWRJ10011"),
               ("tls.cert_sha256", "aa" * 32))))
    lab.send("s-bms", assets=(
        *BMS,
        _asset("10.20.40.88", "bc:ad:28:11:22:31", *page, ("upnp.serial", "DS-2CD2143G2-I0120AAWRJ10002")),
        _asset("10.20.40.90", "bc:ad:28:11:22:41", *page, ("upnp.serial", "DS-2CD2143G2-I0120AAWRJ10011"),
               ("tls.cert_sha256", "aa" * 32))))
    evaluate(db, POLICY)
    bridges = [v.title for v in violations(db, kind="bridging_device") if "NICs" in v.title]
    assert len(bridges) == 1 and "bc:ad:28:11:22:40" in bridges[0], bridges


def test_a_flow_open_over_ipv6_only_is_a_violation(db: Database, lab: Sensors, tmp_path) -> None:
    """Dual-stack zones: the IPv4 rule holds, the IPv6 one was forgotten."""
    policy = parse(POLICY_TEXT.replace('cidrs = ["10.20.40.0/24"]',
                                       'cidrs = ["10.20.40.0/24", "fd20:40::/64"]\n'
                                       'reference_targets = ["fd20:40::33"]'))
    key = load_or_create(tmp_path / "central.key")
    plan, _ = issue_plan(lab.db, policy, "s-admin", key)
    assert "fd20:40::33" in {t.ip for t in plan.targets}  # IPv6 targets are planned
    lab.send("s-admin", plan_id=plan.id, probes=(
        Probe(ip="10.20.40.33", proto="tcp", port=22, state="filtered"),
        Probe(ip="fd20:40::33", proto="tcp", port=22, state="reachable", rtt_ms=0.3)))
    evaluate(db, policy)
    (flow,) = violations(db, kind="unexpected_flow")
    assert (flow.zone, flow.other_zone) == ("admin", "bms") and "tcp/22" in flow.title
    assert [(e["target"], e["family"]) for e in flow.evidence] == [("fd20:40::33", "IPv6")]


def test_a_zone_s_gateway_is_learned_from_its_sensor_s_routes(
        db: Database, lab: Sensors, tmp_path) -> None:
    """The policy names no gateway; the bms sensor reported 10.20.40.1 as its default
    gateway, so the admin sensor's ping to it is routing, not a flow into bms."""
    lab.send("s-bms", assets=(*BMS, _asset("10.20.40.1", "00:00:0c:14:28:01",
                                           ROUTE)))
    key = load_or_create(tmp_path / "central.key")
    plan, _ = issue_plan(lab.db, POLICY, "s-admin", key)
    lab.send("s-admin", plan_id=plan.id, probes=(
        Probe(ip="10.20.40.1", proto="icmp", port=0, state="reachable", rtt_ms=0.2),
        Probe(ip="10.20.40.1", proto="tcp", port=23, state="reachable", rtt_ms=0.2)))
    evaluate(db, POLICY)
    assert [v.kind for v in violations(db, kind="unexpected_flow")] == []
    (exposed,) = violations(db, kind="management_exposure")
    assert "Telnet management of gateway 10.20.40.1 (bms)" in exposed.title


ROUTE = ("net.role", "default-gateway", "route")  # the sensor's own routes say so


def _bridges(db: Database) -> set[str]:
    return {v.title for v in violations(db, kind="bridging_device")}


FIELD_POLICY_254 = parse(POLICY_TEXT.replace('cidrs = ["10.20.40.0/24"]',
                                             'cidrs = ["10.20.40.0/24"]\ngateways = ["10.20.40.254"]'))


def test_a_router_on_a_stick_with_one_mac_in_every_vlan_is_no_bridge(
        db: Database, lab: Sensors) -> None:
    """A router on a stick (and a layer-3 switch) answers for every VLAN with one MAC: each
    zone's sensor reports it as its default gateway. Joining zones is its job, and the
    flows it lets through are judged probe by probe; as 'one MAC in two zones' it was a high
    bridging finding at every site with VLANs. A device with one MAC in both zones that is
    no gateway still is one (as is the fixture's dual-homed PC)."""
    router = "00:00:0c:14:28:01"
    hostkey = ("ssh.hostkey", "ssh-rsa SHA256:Zm9vYmFyYmF6cXV4cm91dGVyaG9zdGtleQ")
    lab.send("s-admin", assets=(*ADMIN, _asset("10.20.10.1", router,
                                              ROUTE, hostkey)))
    lab.send("s-bms", assets=(*BMS, _asset("10.20.40.1", router,
                                          ROUTE, hostkey)))
    evaluate(db, POLICY)
    assert _bridges(db) == {"one device (netbios.name BMS-PC01) answers in zones admin and bms"}
    # a router with a MAC per leg, a few apart, one host key on both, and its other leg's
    # address in its SNMP address table: the policy names its bms leg, the admin sensor
    # reports its admin leg
    legs = ("00:1b:17:10:20:01", "00:1b:17:10:20:02")
    lab.send("s-admin", assets=(*ADMIN, _asset("10.20.10.254", legs[0],
                                              ROUTE, hostkey,
                                              ("claim.ipv4", "10.20.40.254"))))
    lab.send("s-bms", assets=(*BMS, _asset("10.20.40.254", legs[1], hostkey)))
    evaluate(db, FIELD_POLICY_254)
    assert _bridges(db) == {"one device (netbios.name BMS-PC01) answers in zones admin and bms"}
    camera = "ac:cc:8e:10:40:85"  # a camera's one MAC answering in both zones
    lab.send("s-admin", assets=(*ADMIN, _asset("10.20.10.1", router,
                                              ROUTE),
                                _asset("10.20.10.85", camera)))
    lab.send("s-bms", assets=(*BMS, _asset("10.20.40.1", router,
                                          ROUTE),
                              _asset("10.20.40.85", camera)))
    evaluate(db, FIELD_POLICY_254)
    assert _bridges(db) - {"one device (netbios.name BMS-PC01) answers in zones admin and bms"} \
        == {f"MAC {camera} answers in zones admin and bms"}


def test_two_devices_with_one_factory_name_in_two_zones_are_no_bridge(
        db: Database, lab: Sensors) -> None:
    """Two unconfigured switches answer SNMP with their factory sysName, `Switch`, one in
    each zone; two Raspberry Pis announce the factory mDNS name `raspberrypi`; two
    cameras of a model whose firmware carries one SSH host key. Each was 'one device
    answering in two zones', a high bridge. A name is no device's own when it is a factory
    default, and two devices whose engine ids, serial numbers or host keys differ are two
    devices, whatever else they share. A PC named by its owner on both legs still is one."""
    switch = ("snmp.sysname", "Switch")
    lab.send("s-admin", assets=(
        *ADMIN,
        _asset("10.20.10.2", "00:1b:54:10:20:02", switch, ("snmp.engine_id", "800000090300001b54102002")),
        _asset("10.20.10.3", "b8:27:eb:10:20:03", ("mdns.hostname", "raspberrypi")),
        _asset("10.20.10.4", "ac:cc:8e:10:20:04", ("ssh.hostkey", "ssh-rsa SHA256:c2FtZWtleQ"),
               ("upnp.serial", "ACCC8E102004"))))
    lab.send("s-bms", assets=(
        *BMS,
        _asset("10.20.40.2", "00:1b:54:10:40:02", switch, ("snmp.engine_id", "800000090300001b54104002")),
        _asset("10.20.40.3", "b8:27:eb:10:40:03", ("mdns.hostname", "raspberrypi")),
        _asset("10.20.40.4", "ac:cc:8e:10:40:04", ("ssh.hostkey", "ssh-rsa SHA256:c2FtZWtleQ"),
               ("upnp.serial", "ACCC8E104004"))))
    evaluate(db, POLICY)
    assert _bridges(db) == {"one device (netbios.name BMS-PC01) answers in zones admin and bms"}


def test_a_home_router_that_advertises_itself_for_ipv6_is_still_a_bridge(
        db: Database, lab: Sensors) -> None:
    """A FRITZ!Box plugged in with a leg in admin and one in bms sends IPv6 router
    advertisements on both, as home routers do by default: the sensor hears it as a router
    (net.role from a router advertisement, its own word). Taken as a zone's router, it left
    every bridging check, and the bridge it is went unreported. Only a sensor's own routes
    (or its VLAN configuration) make a zone's router."""
    fritz = "3c:a6:2f:10:20:01"
    advertised = ("net.role", "default-gateway", "passive")
    lab.send("s-admin", assets=(*ADMIN, _asset("10.20.10.201", fritz, advertised)))
    lab.send("s-bms", assets=(*BMS, _asset("10.20.40.201", fritz, advertised)))
    evaluate(db, POLICY)
    assert f"MAC {fritz} answers in zones admin and bms" in _bridges(db)


def test_a_device_that_advertises_itself_as_the_ipv6_router_is_a_rogue_router(
        db: Database, lab: Sensors) -> None:
    """A travel router or a PC sharing its connection in admin sends IPv6 router
    advertisements: every dual-stack device in the zone takes it as its router, and its
    traffic leaves by a path no firewall rule governs. It is not the zone's router (the
    sensor's routes name 10.20.10.1), so it is a rogue router. The zone's own router
    advertising itself is not, nor is a router the policy names. (The router's
    advertisement heard before the sensor's routes named it once kept the fact's source,
    and the zone's own router was reported, and left among the bridging checks.)"""
    travel = "3c:a6:2f:10:20:77"
    advertised = ("net.role", "default-gateway", "passive")
    lab.send("s-admin", assets=(
        # the zone's router advertises itself too, heard before the sensor's routes name it
        *ADMIN, _asset("10.20.10.1", "00:00:0c:14:0a:01", advertised, ROUTE),
        _asset("10.20.10.77", travel, advertised)))
    lab.send("s-bms", assets=(*BMS, _asset("10.20.40.254", "00:1b:17:10:40:fe", advertised)))
    evaluate(db, FIELD_POLICY_254)
    (rogue,) = violations(db, kind="rogue_router")
    assert rogue.title.startswith("device 10.20.10.77 ") and "admin" in rogue.title, rogue.title
    assert (rogue.zone, rogue.severity) == ("admin", "high")
    assert rogue.evidence[0]["mac"] == travel and rogue.evidence[0]["source"] == (
        "router advertisement")
    # the store keeps a trusted source over the device's own word: the SQL names the same
    from central.store import FACT_UPSERT, TRUSTED_SOURCES

    assert all(f"'{source}'" in FACT_UPSERT for source in TRUSTED_SOURCES)
    # in the risk register, in Danish, with a measure
    from central.register import WORDS

    assert WORDS["measure"]["da"]["rogue_router"] and WORDS["threat"]["en"]["rogue_router"]


def test_a_dhcp_server_handing_out_a_router_not_the_zone_s_is_a_rogue_router(
        db: Database, lab: Sensors) -> None:
    """A travel router plugged into an admin socket by its LAN port answers DHCP with
    itself as the router (192.168.8.1): every client it serves sends its traffic past the
    zone's firewall. Its offer, heard on the segment, makes it a rogue router, whether its
    address is of the zone or of none (heard on the admin wire). The zone's router relaying
    the town's DHCP server, and a DHCP server in the zone that hands out the zone's router,
    are not. Before, none of this was read: DHCP was read only from clients."""
    travel, server = "94:83:c4:10:20:08", "00:15:5d:10:20:05"
    link = ("net.link", "10.20.10.250/24", "link")
    lab.send("s-admin", assets=(
        *ADMIN,
        _asset("10.20.10.1", "00:00:0c:14:0a:01", ROUTE, ("dhcp.router", "10.20.10.1", "passive")),
        _asset("10.20.10.5", server, ("dhcp.router", "10.20.10.1", "passive")),
        _asset("192.168.8.1", travel, link, ("dhcp.router", "192.168.8.1", "passive")),
        # a hotspot on the admin wire with its own subnet's address, advertising itself
        # for IPv6 only: its address is of no zone, the wire it is on is admin's
        _asset("192.168.43.1", "3c:a6:2f:10:20:43", link,
               ("net.role", "default-gateway", "passive"))))
    lab.send("s-bms", assets=(*BMS, _asset("10.20.40.9", "b8:27:eb:10:40:09",
                                          ("dhcp.router", "10.20.40.9", "passive"))))
    evaluate(db, FIELD_POLICY_254)
    rogues = {v.title: v for v in violations(db, kind="rogue_router")}
    assert sorted(rogues) == [
        "device 10.20.40.9 (Raspberry Pi) on the bms segment hands out 10.20.40.9 as"
        " the router by DHCP: not the zone's router",
        "device 192.168.43.1 on the admin segment advertises itself as the IPv6"
        " router: not the zone's router",
        "device 192.168.8.1 on the admin segment hands"
        " out 192.168.8.1 as the router by DHCP: not the zone's router"], sorted(rogues)
    travelling = next(v for v in rogues.values() if "192.168.8.1" in v.title)
    assert (travelling.zone, travelling.severity) == ("admin", "high")
    assert travelling.evidence[0]["source"] == "DHCP offer"
    assert travelling.evidence[0]["router"] == "192.168.8.1"


def test_a_device_sending_arp_from_the_router_s_address_is_a_rogue_router(
        db: Database, lab: Sensors) -> None:
    """A Raspberry Pi in admin tells the segment that the router's address is at its MAC
    (ARP spoofing): the traffic meant for the router goes to it, past the zone's
    firewall. The sensor found the router's MAC at that address by its own ARP and marks
    the other (net.conflict). It is a rogue router, found on the Pi. Two devices holding one
    address that is no router's is not this finding."""
    pi = "b8:27:eb:10:20:66"
    lab.send("s-admin", assets=(
        *ADMIN,
        _asset("10.20.10.1", "00:00:0c:14:0a:01", ROUTE, ("net.conflict", pi, "arp")),
        _asset("10.20.10.66", pi),
        _asset("10.20.10.70", "00:15:5d:10:20:70", ("net.conflict", "00:15:5d:10:20:71", "arp"))))
    evaluate(db, FIELD_POLICY_254)
    (rogue,) = violations(db, kind="rogue_router")
    assert rogue.title == (f"MAC {pi} sends ARP from the admin router's address 10.20.10.1"
                           " (the router is 00:00:0c:14:0a:01): the segment's traffic may go to it")
    assert (rogue.zone, rogue.severity) == ("admin", "high")
    assert rogue.evidence[0]["source"] == "ARP" and rogue.evidence[0]["mac"] == pi
    assert rogue.asset_id == db.execute("SELECT id FROM assets WHERE mac = ?", [pi]).fetchone()[0]


def test_other_vlans_tagged_on_a_sensor_s_port_are_a_vlan_leak(db: Database, lab: Sensors) -> None:
    """The admin sensor's port received frames tagged for VLANs 20 and 40 (its listener
    counted them): the socket is a trunk, or carries a voice VLAN, and whatever is plugged
    in there can tag its way into those VLANs. One finding per VLAN, on the sensor's zone;
    a VLAN the zone's policy names as its ports' (the phones') is by design. The sensor's
    latest scan says what holds: one without them resolves the findings, and a scan from
    before it, arriving late, does not bring them back."""
    first = wire.utc_now()  # after the lab's first scans
    lab.send("s-admin", assets=ADMIN, port_vlans=(20, 40), at=first)
    evaluate(db, POLICY)
    leaks = {v.title: v for v in violations(db, kind="vlan_leak")}
    assert set(leaks) == {
        f"frames tagged for VLAN {vlan} reach sensor s-admin's port in zone admin: a device "
        f"in that socket can send into VLAN {vlan}" for vlan in (20, 40)}
    assert {(v.zone, v.severity, v.evidence[0]["vlan"]) for v in leaks.values()} == {
        ("admin", "medium", 20), ("admin", "medium", 40)}
    # who sent them, and how many: a phone, a switch, or one device tagging frames itself
    assert all((v.evidence[0]["senders"], v.evidence[0]["frames"]) == ([PHONE], 3)
               for v in leaks.values())
    voice = parse(POLICY_TEXT.replace('name = "admin"\n', 'name = "admin"\ntagged_vlans = [20]\n'))
    evaluate(db, voice)
    assert [v.evidence[0]["vlan"] for v in violations(db, kind="vlan_leak")] == [40]
    lab.send("s-admin", assets=ADMIN)  # now
    lab.send("s-admin", assets=ADMIN, port_vlans=(40,), at=first)  # late
    evaluate(db, voice)
    assert not violations(db, kind="vlan_leak")
    assert "port_vlans" not in Findings(  # none: the field is not sent (centrals before it)
        sensor="s", org="o", seq=1, msg_id="0" * 32, scan_id="0" * 32, sent_at=wire.utc_now(),
        scan_started_at=wire.utc_now(), scan_finished_at=wire.utc_now()).to_dict()
    for wrong in ({"vlan": 4095, "frames": 1}, {"vlan": 20, "frames": 0},
                  {"vlan": 20, "frames": 1, "senders": ["<script>"]},
                  {"vlan": 20, "frames": 1, "senders": [PHONE] * 5}):
        with pytest.raises(wire.MalformedMessage, match="port_vlan"):
            wire.PortVlan.from_dict(wrong)


def test_a_sensor_s_port_negotiating_a_trunk_is_a_vlan_leak(db: Database, lab: Sensors) -> None:
    """The bms sensor's switch port says in DTP that it may become a trunk (dynamic auto,
    Cisco's default on many switches): any device in that socket can make it one and send
    into every VLAN. A port that is a trunk is high wherever it is. Mode off is not sent."""
    switch = "00:1b:2b:10:40:fe"
    lab.send("s-bms", assets=BMS, port_trunking=(
        wire.PortTrunking(sender=switch, mode="auto"),))
    evaluate(db, POLICY)
    (leak,) = violations(db, kind="vlan_leak")
    assert leak.title == ("sensor s-bms's switch port in zone bms offers to become a trunk "
                          "(DTP mode auto): a device in that socket can make it one, into every VLAN")
    assert (leak.zone, leak.severity) == ("bms", "high")  # bms is of high criticality
    assert leak.evidence[0] | {"at": None} == {"source": "DTP", "sensor": "s-bms", "mac": switch,
                                              "mode": "auto", "trunk": False, "at": None}
    lab.send("s-admin", assets=ADMIN, port_trunking=(
        wire.PortTrunking(sender="00:1b:2b:10:20:fe", mode="on", trunk=True),))
    evaluate(db, POLICY)
    trunk = next(v for v in violations(db, kind="vlan_leak") if v.zone == "admin")
    assert trunk.severity == "high" and "is a trunk (DTP)" in trunk.title
    lab.send("s-bms", assets=BMS)  # set to access, negotiation off: nothing said
    evaluate(db, POLICY)
    assert [v.zone for v in violations(db, kind="vlan_leak")] == ["admin"]
    for wrong in ({"sender": switch, "mode": "maybe"}, {"sender": "x", "mode": "auto"},
                  {"sender": switch, "mode": "auto", "trunk": 1}):
        with pytest.raises(wire.MalformedMessage, match="port_trunking"):
            wire.PortTrunking.from_dict(wrong)


def test_the_scan_reports_the_segment_s_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent import scan
    from scanners.observations import HostReply

    monkeypatch.setattr("scanners.netinfo.default_gateways", lambda name: {"10.20.40.1"})
    hosts = {"10.20.40.1": HostReply(ip="10.20.40.1", source="arp", rtt_s=0.001,
                                     mac="00:00:0c:14:28:01")}
    observed: dict[str, list[Observation]] = {}
    scan.note_gateways("eth0", hosts, observed, [])
    assert observed == {"10.20.40.1": [("net.role", "default-gateway", "route")]}


def test_an_empty_plan_names_its_cause() -> None:
    from central.plans import empty_plan_cause

    assert "no assets are known yet in the other zones of raadhus (bms)" in empty_plan_cause(
        POLICY, POLICY.zone("admin"))
    alone = parse('org = "k"\n[[site]]\nname = "s"\n[[zone]]\nname = "only"\n'
                  'cidrs = ["10.1.0.0/24"]\n')
    assert "the only zone of site s" in empty_plan_cause(alone, alone.zone("only"))


TRUNK_POLICY = POLICY_TEXT.replace('[[flow]]', '[[site]]\nname = "skole"\n[[zone]]\nname = "elev"\n'
                                   'site = "skole"\ncidrs = ["10.21.10.0/24"]\n'
                                   'sensors = ["s-trunk"]\n[[zone]]\nname = "personale"\n'
                                   'site = "skole"\ncidrs = ["10.21.20.0/24"]\n'
                                   'sensors = ["s-trunk"]\n[[flow]]', 1).replace(
    '[[zone]]\nname = "admin"', '[[zone]]\nname = "admin"\nsite = "raadhus"').replace(
    '[[zone]]\nname = "bms"', '[[zone]]\nname = "bms"\nsite = "raadhus"')


def test_a_sensor_on_a_trunk_gets_a_plan_per_vlan_and_each_plans_results_count(
        db: Database, tmp_path) -> None:
    """One sensor stands in both of the school's zones (one VLAN each): it gets one plan
    per zone, each probing the other zone, and the results of both plans are the latest
    of their zone (a newer plan of the other VLAN does not hide them)."""
    from central.matrix import matrix
    from central.plans import PlanError, plan_for, sensor_zones
    from central.service import segmentation_round

    policy = parse(TRUNK_POLICY)
    assert {z.name: z.site for z in policy.zones}["elev"] == "skole"
    key = signing.generate_private_key()
    registry.add_sensor(db, sensor="s-trunk", org="kommune", site="skole",
                        public_jwk=signing.public_jwk(key))
    assert [z.name for z in sensor_zones(db, policy)["s-trunk"]] == ["elev", "personale"]
    with pytest.raises(PlanError, match="does not stand in zone 'admin'"):
        plan_for(db, policy, "s-trunk", zone="admin")
    sensors = Sensors.__new__(Sensors)
    sensors.db, sensors.keys, sensors.seq = db, {"s-trunk": key}, {"s-trunk": 0}
    sensors.ingestor = Ingestor(db)
    sensors.send("s-trunk", assets=(
        _asset("10.21.10.30", "f0:18:98:15:0a:1e", ports=(7000,)),
        _asset("10.21.20.20", "d0:43:1e:15:14:14", ("dhcp.vendor_class", "MSFT 5.0"),
               ports=(445,))))
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(TRUNK_POLICY)
    central_key = load_or_create(tmp_path / "central.key")
    segmentation_round(db, policy_file, central_key)
    issued = {r["zone"]: r for r in db.query("SELECT id, zone, targets FROM plans"
                                            " WHERE sensor_id = 's-trunk'")}
    assert set(issued) == {"elev", "personale"}  # one per VLAN, each with the other's asset
    assert all(r["targets"] == 1 for r in issued.values())
    sensors.send("s-trunk", plan_id=issued["elev"]["id"], probes=(
        Probe(ip="10.21.20.20", proto="tcp", port=445, state="reachable", rtt_ms=0.4),))
    sensors.send("s-trunk", plan_id=issued["personale"]["id"], probes=(
        Probe(ip="10.21.10.30", proto="tcp", port=7000, state="filtered"),))
    evaluate(db, policy)
    flows = [v for v in violations(db) if v.kind == "unexpected_flow"]
    assert [(v.zone, v.other_zone) for v in flows] == [("elev", "personale")], flows
    cells = matrix(db, policy)
    assert cells[("personale", "elev")]["probed"] == 1  # probed, reached nothing
    assert ("elev", "admin") not in cells  # another site: another address space

"""Sites are separate address spaces: two schools may both use 192.168.1.0/24, one for its
pupils, the other for its heating. Each site's devices, plans, probes and exports are judged
by that site's zones, whatever order the policy lists them in.

Messages go through the real ingest path (signed, verified, stored in SQLite)."""

from __future__ import annotations

import uuid

from sqlite_utils import Database

from agent import signing, wire
from agent.wire import Asset, Findings, Observation, Probe
from central import exports, registry
from central.ingest import Ingestor
from central.keys import load_or_create
from central.matrix import matrix
from central.plans import issue_plan
from central.policy import parse
from central.violations import evaluate, violations

# the north school lists first, and its ranges are the south school's the other way round
_POLICY_TEXT = """
org = "kommune"
[[site]]
name = "skole-nord"
[[site]]
name = "skole-syd"
[[zone]]
name = "nord-elever"
site = "skole-nord"
cidrs = ["192.168.1.0/24"]
allowed_types = ["workstation", "mobile"]
[[zone]]
name = "nord-bms"
site = "skole-nord"
cidrs = ["192.168.2.0/24"]
criticality = "high"
allowed_types = ["bms_controller"]
[[zone]]
name = "syd-bms"
site = "skole-syd"
cidrs = ["192.168.1.0/24"]
criticality = "high"
allowed_types = ["bms_controller"]
[[zone]]
name = "syd-elever"
site = "skole-syd"
cidrs = ["192.168.2.0/24"]
allowed_types = ["workstation", "mobile"]
"""
POLICY = parse(_POLICY_TEXT)
SENSORS = {"s-nord": ("skole-nord", "nord-elever"), "s-syd": ("skole-syd", "syd-bms")}


def _send(db: Database, keys: dict, sensor: str, seq: int, *, assets: tuple[Asset, ...] = (),
          plan_id: str | None = None, probes: tuple[Probe, ...] = ()) -> None:
    at = wire.utc_now()
    findings = Findings(sensor=sensor, org="kommune", seq=seq, msg_id=uuid.uuid4().hex,
                        scan_id=uuid.uuid4().hex, sent_at=at, scan_started_at=at,
                        scan_finished_at=at, assets=assets, plan_id=plan_id, probes=probes)
    token = signing.sign(findings.encode(), keys[sensor], kid=sensor)
    assert Ingestor(db).ingest(wire.findings_topic("kommune", sensor), token).accepted


def _asset(ip: str, mac: str, key: str, value: str) -> Asset:
    return Asset(ip=ip, mac=mac, sources=("arp",),
                 observations=(Observation(key=key, value=value, source="x"),))


def _schools(db: Database) -> dict:
    keys = {s: signing.generate_private_key() for s in SENSORS}
    for sensor, (site, zone) in SENSORS.items():
        registry.add_sensor(db, sensor=sensor, org="kommune", site=site, zone=zone,
                            public_jwk=signing.public_jwk(keys[sensor]))
    # the north school's pupils' PC, and the south school's heating controller: each in
    # its own school's 192.168.1.0/24
    _send(db, keys, "s-nord", 1, assets=(
        _asset("192.168.1.30", "d0:43:1e:01:01:30", "dhcp.vendor_class", "MSFT 5.0"),))
    _send(db, keys, "s-syd", 1, assets=(
        _asset("192.168.1.20", "00:a0:03:02:01:20", "snmp.sysdescr", "Desigo PXC Modular"),
        _asset("192.168.2.40", "d0:43:1e:02:02:40", "dhcp.vendor_class", "MSFT 5.0")))
    return keys


def test_each_school_s_devices_are_in_its_own_zones(db: Database) -> None:
    _schools(db)
    evaluate(db, POLICY)
    # the heating controller is where it belongs (in the north's pupils' zone by the
    # address alone), and so is the south's PC (in the north's heating zone by it alone)
    assert not [v for v in violations(db) if v.kind == "misplaced_device"]
    zones = {r["addresses"]: (r["site"], r["zone"]) for r in exports.asset_records(db, POLICY)}
    assert zones == {"192.168.1.30": ("skole-nord", "nord-elever"),
                     "192.168.1.20": ("skole-syd", "syd-bms"),
                     "192.168.2.40": ("skole-syd", "syd-elever")}


def test_a_school_s_plan_and_its_probes_are_of_its_own_zones(db: Database, tmp_path) -> None:
    keys = _schools(db)
    plan, _ = issue_plan(db, POLICY, "s-syd", load_or_create(tmp_path / "central.key"))
    assert {(t.ip, t.zone) for t in plan.targets} == {("192.168.2.40", "syd-elever")}
    _send(db, keys, "s-syd", 2, plan_id=plan.id, probes=(
        Probe(ip="192.168.2.40", proto="tcp", port=3389, state="reachable", rtt_ms=0.4),))
    evaluate(db, POLICY)
    (flow,) = [v for v in violations(db) if v.kind == "unexpected_flow"]
    assert (flow.zone, flow.other_zone) == ("syd-bms", "syd-elever")
    assert flow.title == "syd-bms reaches syd-elever on tcp/3389, which the policy denies"
    cells = matrix(db, POLICY)
    assert cells[("syd-bms", "syd-elever")]["denied_reached"] == {"tcp/3389"}
    assert not cells[("nord-elever", "nord-bms")]["probed"]


def test_one_delivery_of_controllers_at_two_schools_is_no_bridge(db: Database) -> None:
    """The same model, named alike by the installer, MACs one apart, one at each school:
    two devices in two address spaces, not one device joining two zones."""
    keys = _schools(db)
    said = (Observation(key="snmp.sysdescr", value="Desigo PXC Modular", source="snmp"),
            Observation(key="snmp.sysname", value="PXC-KEDEL", source="snmp"))
    _send(db, keys, "s-nord", 2, assets=(
        _asset("192.168.1.30", "d0:43:1e:01:01:30", "dhcp.vendor_class", "MSFT 5.0"),
        Asset(ip="192.168.2.20", mac="00:a0:03:02:01:21", sources=("arp",), observations=said)))
    _send(db, keys, "s-syd", 2, assets=(
        Asset(ip="192.168.1.20", mac="00:a0:03:02:01:20", sources=("arp",), observations=said),
        _asset("192.168.2.40", "d0:43:1e:02:02:40", "dhcp.vendor_class", "MSFT 5.0")))
    evaluate(db, POLICY)
    assert not [v.title for v in violations(db) if v.kind == "bridging_device"]
    # within one school the same two are one device's two legs, as before
    _send(db, keys, "s-syd", 3, assets=(
        Asset(ip="192.168.1.20", mac="00:a0:03:02:01:20", sources=("arp",), observations=said),
        Asset(ip="192.168.2.20", mac="00:a0:03:02:01:21", sources=("arp",), observations=said)))
    evaluate(db, POLICY)
    bridges = {(v.zone, v.other_zone) for v in violations(db) if v.kind == "bridging_device"}
    assert bridges == {("syd-bms", "syd-elever")}


def test_one_address_answering_directly_at_two_schools_is_two_findings(
        db: Database, tmp_path) -> None:
    """The north school's heating controller and the south school's pupils' PC both have
    192.168.2.40, and each answers its school's sensor through no router (a second leg
    on the sensor's segment). Two devices, two findings, each naming its own school's
    device: keyed by the address alone they were one, with one school's device named."""
    keys = _schools(db)
    _send(db, keys, "s-nord", 2, assets=(
        _asset("192.168.1.30", "d0:43:1e:01:01:30", "dhcp.vendor_class", "MSFT 5.0"),
        _asset("192.168.2.40", "00:a0:03:01:02:40", "snmp.sysdescr", "Desigo PXC Modular")))
    central = load_or_create(tmp_path / "central.key")
    for sensor, seq in (("s-nord", 3), ("s-syd", 2)):
        plan, _ = issue_plan(db, POLICY, sensor, central)
        assert "192.168.2.40" in {t.ip for t in plan.targets}
        _send(db, keys, sensor, seq, plan_id=plan.id, probes=(
            Probe(ip="192.168.2.40", proto="tcp", port=80, state="reachable", rtt_ms=0.3,
                  ttl=64),))
    evaluate(db, POLICY)
    direct = sorted((v.site, v.zone, v.other_zone, v.title.split(" in zone")[0])
                    for v in violations(db) if v.kind == "bridging_device")
    assert direct == [
        ("skole-nord", "nord-elever", "nord-bms",
         "bms_controller 192.168.2.40 (Siemens Desigo PXC Modular)"),
        ("skole-syd", "syd-bms", "syd-elever", "workstation 192.168.2.40 (Dell)")]


def test_one_school_s_router_address_is_another_school_s_device(db: Database, tmp_path) -> None:
    """The north school's heating router is 192.168.2.1; at the south school that address
    is a pupils' PC. Its answers to the south's heating sensor (direct, through no router,
    and on a denied service) are the south's violations: the zones' routers' addresses were
    one set for all sites, so the PC was taken for a router and judged as none."""
    policy = parse(_POLICY_TEXT.replace(
        'name = "nord-bms"\nsite = "skole-nord"',
        'name = "nord-bms"\nsite = "skole-nord"\ngateways = ["192.168.2.1"]'))
    assert policy.zone("nord-bms").gateways == ("192.168.2.1",)
    keys = _schools(db)
    _send(db, keys, "s-syd", 2, assets=(
        _asset("192.168.1.20", "00:a0:03:02:01:20", "snmp.sysdescr", "Desigo PXC Modular"),
        _asset("192.168.2.1", "d0:43:1e:02:02:01", "dhcp.vendor_class", "MSFT 5.0")))
    plan, _ = issue_plan(db, policy, "s-syd", load_or_create(tmp_path / "central.key"))
    assert "192.168.2.1" in {t.ip for t in plan.targets}
    _send(db, keys, "s-syd", 3, plan_id=plan.id, probes=(
        Probe(ip="192.168.2.1", proto="tcp", port=3389, state="reachable", rtt_ms=0.3,
              ttl=128),))
    evaluate(db, policy)
    found = sorted((v.kind, v.site, v.zone, v.other_zone) for v in violations(db)
                   if v.kind in ("bridging_device", "unexpected_flow"))
    assert found == [("bridging_device", "skole-syd", "syd-bms", "syd-elever"),
                     ("unexpected_flow", "skole-syd", "syd-bms", "syd-elever")]

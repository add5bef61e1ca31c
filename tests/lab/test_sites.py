"""Two schools, one address plan: sites are separate address spaces, end to end.

Municipalities copy one school's network to the next: the north and the south school both
number their pupils' segment 10.41.10.0/24 and their staff's 10.41.20.0/24, each behind a
router of its own that reaches the town hall's broker through NAT (``SegmentSpec.site``).
The same address is a camera at one school and a PC at the other, and the two schools' PCs
share a name (ELEV-PC01): one inventory must keep the devices apart by site, name each as
what it is, find the camera misplaced at the north school only, and see no device bridging
the two schools. Only the north school's router lets pupils reach the staff's file server:
each school's sensor probes its own school's staff segment (the same addresses at both), and
the flow is a violation at the north school alone.

Real parts: namespaces with a router per site and NAT, the emulated devices, a Mosquitto
started here, the central's ingest as a process, two agents scanning their own segments and
then, as daemons, taking the central's signed probe plans.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from central.db import open_db
from central.lab.broker import Mosquitto
from central.lab.demo import ORG, SensorSetup, query, scan_then_serve, write_sensor
from central.lab.municipal import WINDOWS_DHCP_PARAMS, chatter, http, silent, udp
from central.lab.topology import CORE_HOST, DeviceSpec, Lab, LabSpec, SegmentSpec

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: needs root"),
]

ROOT = Path(__file__).parents[2]
CLI = [sys.executable, "-m", "central.cli"]
PUPILS = "10.41.10.0/24"  # both schools'
STAFF = "10.41.20.0/24"
FILE_SERVER = "10.41.20.10"  # at both schools


def _pc(name: str, segment: str, host: int, mac: str) -> DeviceSpec:
    return DeviceSpec(
        name=name, segment=segment, host=host, mac=mac, vendor="Dell Inc.",
        device_type="workstation",
        services=(udp(137, "netbios", name="ELEV-PC01", group="SKOLE"),
                  chatter("dhcp", hostname="ELEV-PC01", vendor_class="MSFT 5.0",
                          params=WINDOWS_DHCP_PARAMS)))


SPEC = LabSpec(
    segments=(
        SegmentSpec(name="nord-elev", cidr=PUPILS, router_mac="00:00:0c:29:0a:01", site="nord"),
        SegmentSpec(name="syd-elev", cidr=PUPILS, router_mac="00:00:0c:2a:0a:01", site="syd"),
        SegmentSpec(name="nord-personale", cidr=STAFF, router_mac="00:00:0c:29:14:01",
                    site="nord", sensor=False),
        SegmentSpec(name="syd-personale", cidr=STAFF, router_mac="00:00:0c:2a:14:01",
                    site="syd", sensor=False),
    ),
    devices=(
        # the north school's camera on the address the south school gives a PC
        DeviceSpec(name="nord-cam", segment="nord-elev", host=20, mac="ac:cc:8e:29:0a:14",
                   vendor="Axis Communications AB", device_type="camera",
                   services=(http(80, None, "AXIS P3245-LV Network Camera"),)),
        _pc("nord-pc", "nord-elev", 30, "d0:43:1e:29:0a:1e"),
        _pc("syd-pc", "syd-elev", 20, "d0:43:1e:2a:0a:14"),
        DeviceSpec(name="syd-printer", segment="syd-elev", host=30, mac="3c:2a:f4:2a:0a:1e",
                   vendor="Brother Industries, LTD.", device_type="printer",
                   services=(http(80, "debut/1.30", "Brother MFC-L2750DW series"),)),
        DeviceSpec(name="nord-fil", segment="nord-personale", host=10, mac="d0:43:1e:29:14:0a",
                   vendor="Dell Inc.", device_type="server", services=(silent(445),)),
        DeviceSpec(name="syd-fil", segment="syd-personale", host=10, mac="d0:43:1e:2a:14:0a",
                   vendor="Dell Inc.", device_type="server", services=(silent(445),)),
    ),
    # the north school's router lets pupils reach the staff's file shares; the south's not
    allowed_flows=(("nord-elev", "nord-personale", "tcp", 445),),
)
POLICY = f"""
org = "{ORG}"
[defaults]
tcp_ports = [80, 445]
[[site]]
name = "nord"
[[site]]
name = "syd"
[[zone]]
name = "nord-elev"
site = "nord"
cidrs = ["{PUPILS}"]
allowed_types = ["workstation", "mobile", "printer"]
gateways = ["10.41.10.1"]
sensors = ["s-nord-elev"]
[[zone]]
name = "syd-elev"
site = "syd"
cidrs = ["{PUPILS}"]
allowed_types = ["workstation", "mobile", "printer"]
gateways = ["10.41.10.1"]
sensors = ["s-syd-elev"]
[[zone]]
name = "nord-personale"
site = "nord"
cidrs = ["{STAFF}"]
allowed_types = ["workstation", "server", "printer"]
reference_targets = ["{FILE_SERVER}"]
[[zone]]
name = "syd-personale"
site = "syd"
cidrs = ["{STAFF}"]
allowed_types = ["workstation", "server", "printer"]
reference_targets = ["{FILE_SERVER}"]
"""


@dataclass
class SiteRun:
    db_path: Path
    policy: Path
    sensors: dict[str, SensorSetup]


def central(run: SiteRun, *args: str) -> str:
    result = subprocess.run([*CLI, *args, "--db", str(run.db_path)], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def sites() -> Iterator[SiteRun]:
    workdir = Path(tempfile.mkdtemp(prefix="netvagt-sites-"))
    db_path = workdir / "central.db"
    policy = workdir / "policy.toml"
    policy.write_text(POLICY)
    try:
        with Lab(SPEC) as lab, Mosquitto(ns=lab.core, bind=(CORE_HOST, "127.0.0.1"),
                                         port=1883):
            open_db(db_path).close()
            sensors = {seg.name: write_sensor(lab, seg.name, workdir, db_path, 1883,
                                              scope=("10.41.0.0/16",), site=str(seg.site))
                       for seg in SPEC.segments if seg.sensor}
            lab.popen(lab.core, [*CLI, "serve", "--db", str(db_path), "--broker-host",
                                 "127.0.0.1"], stderr=subprocess.DEVNULL)
            scan_then_serve(lab, list(sensors.values()), db_path)
            yield SiteRun(db_path=db_path, policy=policy, sensors=sensors)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _assets(run: SiteRun, site: str) -> dict[str, dict[str, Any]]:
    rows = json.loads(central(run, "assets", "--format", "json", "--site", site))
    return {ip: row for row in rows for ip in row["addresses"]}


def test_one_address_at_two_schools_is_two_devices_each_named_as_what_it_is(
        sites: SiteRun) -> None:
    north, south = _assets(sites, "nord"), _assets(sites, "syd")
    assert (north["10.41.10.20"]["device_type"], north["10.41.10.20"]["mac"]) == (
        "camera", "ac:cc:8e:29:0a:14")
    assert (south["10.41.10.20"]["device_type"], south["10.41.10.20"]["mac"]) == (
        "workstation", "d0:43:1e:2a:0a:14")
    assert north["10.41.10.30"]["device_type"] == "workstation"
    assert south["10.41.10.30"]["device_type"] == "printer"
    # each school's sensor saw its own segment only: nothing of the other's crossed over
    assert "3c:2a:f4:2a:0a:1e" not in {row["mac"] for row in north.values()}
    assert "ac:cc:8e:29:0a:14" not in {row["mac"] for row in south.values()}


def test_the_camera_is_misplaced_at_its_own_school_and_no_name_bridges_the_two(
        sites: SiteRun) -> None:
    central(sites, "evaluate", "--policy", str(sites.policy))
    found = json.loads(central(sites, "violations", "--format", "json"))
    kinds = {(row["kind"], row["zone"]) for row in found}
    assert ("misplaced_device", "nord-elev") in kinds, found
    misplaced = [row for row in found if row["kind"] == "misplaced_device"]
    assert len(misplaced) == 1 and "10.41.10.20" in json.dumps(misplaced[0]), misplaced
    # two schools' PCs named ELEV-PC01, and one address at both: two devices, no bridge
    assert not [row for row in found if row["kind"] == "bridging_device"], found


def test_each_school_probes_its_own_staff_segment_and_only_the_north_s_is_reached(
        sites: SiteRun) -> None:
    central(sites, "plan", "--policy", str(sites.policy), "--sensor", "s-nord-elev",
            "--sensor", "s-syd-elev")
    plans = {row[0]: row[1] for row in query(sites.db_path, "SELECT id, sensor_id FROM plans")}
    assert sorted(plans.values()) == ["s-nord-elev", "s-syd-elev"]
    for sensor, token in query(sites.db_path, "SELECT sensor_id, token FROM plans"):
        payload = token.split(".")[1]
        body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        # a plan's targets are its own school's: the other's staff zone has the same CIDR
        school = sensor.removeprefix("s-").removesuffix("-elev")
        assert {t["zone"] for t in body["targets"]} == {f"{school}-personale"}, body
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not set(plans) <= {
            r[0] for r in query(sites.db_path, "SELECT DISTINCT plan_id FROM reach")}:
        time.sleep(0.5)
    time.sleep(1.0)  # a plan's later parts
    reached = {(plans[plan], state) for plan, state in query(
        sites.db_path, "SELECT plan_id, state FROM reach WHERE ip = ? AND proto = 'tcp'"
        " AND port = 445", [FILE_SERVER])}
    # the same address probed at both schools, each through its own router
    assert reached == {("s-nord-elev", "reachable"), ("s-syd-elev", "filtered")}, reached
    central(sites, "evaluate", "--policy", str(sites.policy))
    flows = [row for row in json.loads(central(sites, "violations", "--format", "json"))
             if row["kind"] == "unexpected_flow"]
    assert [(row["zone"], row["other_zone"]) for row in flows] == [
        ("nord-elev", "nord-personale")], flows
    assert {e["sensor"] for e in flows[0]["evidence"]} == {"s-nord-elev"}

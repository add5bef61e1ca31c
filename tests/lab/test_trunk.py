"""One sensor on a trunk port covers the school's two VLANs, on a kernel without 802.1Q.

The lab's trunk is a userspace 802.1Q relay written apart from the product
(``central/lab/trunk.py``): frames tagged 110 reach the pupils' segment, 120 the teachers',
and untagged frames nothing. The sensor's eth0 is the trunk with no address; its eth1 is the
management interface to the broker. The tests check the sweep engine's tagged frames on the
wire (each VLAN finds its own devices and only those, SYNs leave by the VLAN they are
probed from, the sensor answers ARP for its VLAN addresses itself), then a night from first
boot: the central's second phase sends one plan per VLAN and finds the seeded flow from
the pupils to the teachers' file shares, and nothing from the teachers' side."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from central.db import open_db
from central.lab.broker import Mosquitto
from central.lab.demo import ORG, query, wait_for_messages, write_trunk_sensor
from central.lab.municipal import SCHOOL_DEVICES, SCHOOL_FAULT, SCHOOL_SEGMENTS, TRUNK_SENSOR
from central.lab.topology import CORE_HOST, Lab, LabSpec

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: needs root"),
]

ROOT = Path(__file__).parents[2]
CLI = [sys.executable, "-m", "central.cli"]
# the router also lets the pupils ping the teachers' VLAN (so a routed ICMP sweep finds something)
SPEC = LabSpec(segments=SCHOOL_SEGMENTS, devices=SCHOOL_DEVICES,
               allowed_flows=(SCHOOL_FAULT, ("elev", "personale", "icmp", 0)))
POLICY = f"""
org = "{ORG}"
[defaults]
tcp_ports = [80, 135, 445, 7000]
udp_ports = [161]
[[site]]
name = "skolen"
[[zone]]
name = "elev"
cidrs = ["10.21.10.0/24"]
allowed_types = ["mobile", "workstation", "media_player", "printer"]
sensors = ["{TRUNK_SENSOR}"]
[[zone]]
name = "personale"
cidrs = ["10.21.20.0/24"]
allowed_types = ["workstation", "printer"]
sensors = ["{TRUNK_SENSOR}"]
"""

# run inside the trunk sensor's namespace: each VLAN scanned and probed in tagged frames
ENGINE = r"""
import json, subprocess, sys
from agent.config import VlanConfig
from agent.vlans import tagged_reach, tagged_scan
from scanners.ports import PROFILES
from scanners.reach import Target
from scanners.scope import Scope
from scanners import trunk
from scanners.rate import RateLimiter

scope = Scope.from_strings(["10.21.0.0/16"])
elev = VlanConfig(id=110, address="10.21.10.249/24", gateway="10.21.10.1", zone="elev",
                  targets=("10.21.20.0/28",))
staff = VlanConfig(id=120, address="10.21.20.249/24", gateway="10.21.20.1", zone="personale")
out = {"scan": {}, "reach": {}}
for vlan in (elev, staff):
    result = tagged_scan("eth0", vlan, scope, PROFILES["standard"])
    out["scan"][vlan.id] = {a.ip: {"mac": a.mac, "open": [s.port for s in a.services],
                                   "role": [o.value for o in a.observations],
                                   "sources": list(a.sources)}
                            for a in result.assets}
targets = {110: [Target(ip="10.21.20.20", tcp=(135, 445)), Target(ip="10.21.10.30", tcp=(7000,))],
           120: [Target(ip="10.21.10.30", tcp=(7000,)), Target(ip="10.21.20.11", tcp=(80,))]}
for vlan in (elev, staff):
    out["reach"][vlan.id] = [[r.ip, r.proto, r.port, r.state, r.ttl] for r in tagged_reach(
        "eth0", vlan, targets[vlan.id], scope=scope, global_pps=500, host_pps=50, timeout_s=1.0)]
# the teachers' PC forgets every neighbour; a SYN sent to its known MAC, without asking ARP,
# can only be answered if the sensor answers the PC's ARP for its VLAN address itself
subprocess.run(sys.argv[1:], check=True)
v = trunk.Vlan.parse(120, "10.21.20.249/24", "10.21.20.1")
with trunk.Trunk("eth0", [v]) as port:
    states = trunk.probe(port, v, [("tcp", "10.21.20.20", 445)],
                         next_hops={"10.21.20.20": bytes.fromhex("d0431e151414")},
                         scope=scope, limiter=RateLimiter(global_pps=100, host_pps=10))
    out["arp"] = {"state": states[("tcp", "10.21.20.20", 445)][0], "answered": port.arp_answered}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(SPEC) as built:
        yield built


def test_each_vlan_is_swept_and_probed_in_its_own_tagged_frames(lab: Lab) -> None:
    forget = ["ip", "netns", "exec", lab.device_ns("laerer-pc"), "ip", "neigh", "flush", "all"]
    done = lab.run(lab.trunk_sensor_ns, [sys.executable, "-c", ENGINE, *forget], timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    pupils, staff = out["scan"]["110"], out["scan"]["120"]
    # each VLAN finds its own devices by ARP (and its router leg), none of the other's;
    # the pupils' routed target range, swept by ICMP through their gateway, holds the
    # teachers' printer (the router lets pupils ping, and nothing more than SMB)
    assert {ip for ip, a in pupils.items() if a["mac"]} == {"10.21.10.1", "10.21.10.30"}
    assert {ip for ip, a in pupils.items() if not a["mac"]} == {"10.21.20.11"}
    assert pupils["10.21.20.11"]["sources"] == ["icmp"] and pupils["10.21.20.11"]["open"] == []
    assert set(staff) == {"10.21.20.1", "10.21.20.11", "10.21.20.20"}
    assert pupils["10.21.10.30"]["mac"] == "f0:18:98:15:0a:1e"
    assert staff["10.21.20.1"]["mac"] == "00:00:0c:15:14:01"
    assert staff["10.21.20.1"]["role"] == ["default-gateway"]  # the configured gateway
    assert set(staff["10.21.20.20"]["open"]) == {135, 445}
    assert set(staff["10.21.20.11"]["open"]) == {80, 9100}
    reach = {vid: {(ip, proto, port): (state, ttl) for ip, proto, port, state, ttl in rows}
             for vid, rows in out["reach"].items()}
    # from the pupils' VLAN, through the router: the seeded flow, and nothing else
    assert reach["110"][("10.21.20.20", "tcp", 445)] == ("reachable", 63)  # one router hop
    assert reach["110"][("10.21.20.20", "tcp", 135)][0] == "filtered"
    assert reach["110"][("10.21.20.20", "icmp", 0)][0] == "reachable"  # pinging is let through
    assert reach["110"][("10.21.10.30", "icmp", 0)][0] == "reachable"  # on its own VLAN
    # from the teachers' VLAN: the pupils' TV is behind the router's drop
    assert reach["120"][("10.21.10.30", "tcp", 7000)][0] == "filtered"
    assert reach["120"][("10.21.20.11", "tcp", 80)] == ("reachable", 64)  # on-link
    assert out["arp"] == {"state": "reachable", "answered": out["arp"]["answered"]}
    assert out["arp"]["answered"] >= 1



def _flows(db_path: Path) -> list[dict[str, Any]]:
    done = subprocess.run([*CLI, "violations", "--format", "json", "--db", str(db_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    return [v for v in json.loads(done.stdout) if v["kind"] == "unexpected_flow"]


@pytest.mark.timeout(600)
def test_a_night_on_the_trunk_plans_each_vlan_and_finds_the_seeded_flow(lab: Lab) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="netvagt-trunk-"))
    db_path = workdir / "central.db"
    policy = workdir / "policy.toml"
    policy.write_text(POLICY)
    try:
        with Mosquitto(ns=lab.core, bind=(CORE_HOST, "127.0.0.1"), port=1883):
            open_db(db_path).close()
            sensor = write_trunk_sensor(lab, workdir, db_path, 1883)
            serve = lab.popen(lab.core, [*CLI, "serve", "--db", str(db_path), "--broker-host",
                                         "127.0.0.1", "--policy", str(policy), "--round", "5"],
                              stderr=subprocess.DEVNULL)
            done = lab.run(sensor.ns, [sys.executable, "-m", "agent.cli", "run", "--config",
                                       str(sensor.config), "--once"], timeout=300)
            assert done.returncode == 0, done.stderr[-3000:]
            assert wait_for_messages(db_path, [sensor.id], timeout=60)
            doctor = lab.run(sensor.ns, [sys.executable, "-m", "agent.cli", "doctor", "--config",
                                         str(sensor.config), "--format", "json"], timeout=120)
            checks = {c["name"]: c for c in json.loads(doctor.stdout)}
            daemon = lab.popen(sensor.ns, [sys.executable, "-m", "agent.cli", "run",
                                           "--config", str(sensor.config)],
                               stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 180  # policy rounds every 5 s: plan, probe, evaluate
            flows: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                flows = _flows(db_path)
                answered = query(db_path, "SELECT DISTINCT p.zone FROM reach r JOIN plans p"
                                          " ON p.id = r.plan_id")
                if any("tcp/445" in f["title"] for f in flows) and len(answered) == 2:
                    break
                time.sleep(5)
            for proc in (daemon, serve):
                proc.terminate()
                proc.wait(timeout=30)
            plans = query(db_path, "SELECT zone, targets FROM plans ORDER BY zone")
            reached = query(db_path, "SELECT p.zone, r.ip, r.proto, r.port FROM reach r JOIN plans"
                                     " p ON p.id = r.plan_id WHERE r.state = 'reachable'")
            sites = dict(query(db_path, "SELECT d.ip, t.name FROM addresses d JOIN assets a"
                                        " ON a.id = d.asset_id JOIN sites t ON t.id = a.site_id"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    # the doctor knows a trunk: no "no IPv4 address" on eth0, each VLAN's way in said
    assert checks["trunk"]["ok"] and "2 VLAN(s)" in checks["trunk"]["detail"]
    assert checks["VLAN 110 (elev)"]["warning"] and "tagged frames on eth0" in checks[
        "VLAN 110 (elev)"]["detail"]
    assert checks["broker"]["ok"], checks["broker"]  # by the management interface
    # the scan covered both VLANs, as the school's assets
    assert {"10.21.10.30", "10.21.20.11", "10.21.20.20"} <= set(sites)
    assert set(sites.values()) == {"skolen"}
    # one plan per VLAN, each into the other zone, with targets
    assert {zone for zone, _ in plans} == {"elev", "personale"}, plans
    assert all(targets > 0 for _, targets in plans), plans
    # the pupils reach the teachers' file shares, through the router; nothing else crosses
    assert ("elev", "10.21.20.20", "tcp", 445) in reached, reached
    assert not [r for r in reached if r[0] == "personale" and r[1].startswith("10.21.10.")
                and r[1] != "10.21.10.1"], reached
    assert {(f["zone"], f["other_zone"]) for f in flows} == {("elev", "personale")}, flows
    assert any("tcp/445" in f["title"] for f in flows) and all(f["evidence"] for f in flows)


SUB_INTERFACE = r"""
import asyncio, json, logging, sys
logging.basicConfig(level=logging.INFO)
from agent.config import load
from agent.vlans import reach, scan_vlans
from scanners.ports import PROFILES
from scanners.reach import Target
config = load(__import__("pathlib").Path(sys.argv[1]))
result = asyncio.run(scan_vlans(config, PROFILES["standard"]))
staff = config.vlans[1]
probes = asyncio.run(reach(config, staff, [Target(ip="10.21.20.11", tcp=(80, 9100))],
                           scope=__import__("agent.vlans", fromlist=["x"]).scope_of(config, staff),
                           global_pps=500, host_pps=50, timeout_s=1.0))
print(json.dumps({"assets": {a.ip: {"mac": a.mac, "keys": sorted({o.key for o in a.observations}),
                                     "sources": list(a.sources)} for a in result.assets},
                  "networks": list(result.networks),
                  "reach": sorted([p.ip, p.port, p.state, p.ttl] for p in probes)}))
"""


def test_a_vlan_with_a_sub_interface_is_scanned_as_a_plain_interface(lab: Lab,
                                                                    tmp_path: Path) -> None:
    """Where the kernel has 802.1Q, a VLAN is a sub-interface: to the sensor, an interface
    named eth0.120 with its address. The lab's kernel cannot tag, so the sub-interface is a
    leg of that name on the teachers' segment; the pupils' VLAN stays tagged frames on the
    trunk. The sub-interface's VLAN gets the whole scan (what its devices say, not only their
    ports), and its probes leave by it."""
    address = lab.add_leg(lab.trunk_sensor_ns, "personale", "eth0.120",
                          mac="02:5e:00:00:01:20", host=248)
    config = tmp_path / "agent.toml"
    config.write_text(
        '[sensor]\nid = "s-trunk"\norg = "k"\nkey = "/nonexistent"\n[broker]\nhost = "x"\n'
        '[scan]\ninterface = "eth0"\nscope = ["10.21.0.0/16"]\n'
        '[[scan.vlans]]\nid = 110\nzone = "elev"\naddress = "10.21.10.249/24"\n'
        'gateway = "10.21.10.1"\n'
        f'[[scan.vlans]]\nid = 120\nzone = "personale"\naddress = "{address}/24"\n'
        'gateway = "10.21.20.1"\n')
    done = lab.run(lab.trunk_sensor_ns, [sys.executable, "-c", SUB_INTERFACE, str(config)],
                   timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assets = out["assets"]
    assert "scanning sub-interface eth0.120" in done.stderr
    assert "VLAN 110 (elev): tagged frames on eth0" in done.stderr
    # the sub-interface's VLAN: the full scan, with what the devices say about themselves
    assert {"http.title", "http.server"} <= set(assets["10.21.20.11"]["keys"])
    assert assets["10.21.20.20"]["mac"] == "d0:43:1e:15:14:14"
    # the tagged VLAN: discovery and ports, no words
    assert assets["10.21.10.30"]["keys"] == [] and assets["10.21.10.30"]["mac"]
    assert out["networks"][0] == "10.21.10.0/24"  # then the sub-interface's subnet, less us
    assert all(n.startswith("10.21.20.") for n in out["networks"][1:])
    # bound to the sub-interface, the plain prober (its kernel resets the SYN-ACKs)
    assert out["reach"] == [["10.21.20.11", 0, "reachable", None],
                            ["10.21.20.11", 80, "reachable", 64],
                            ["10.21.20.11", 9100, "reachable", 64]]

"""Dual-stack segments: the router filters IPv4 and forgets IPv6. A flow the policy denies,
closed over IPv4 but open over IPv6, is found: the probes go over IPv6 too (connect probes,
UDP and ICMPv6 echo, bound to the scan interface like every other probe)."""

from __future__ import annotations

import json
import os
import sys

import pytest

from central.lab.municipal import banner, http
from central.lab.topology import DeviceSpec, Lab, LabSpec, SegmentSpec

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: needs root"),
]

SPEC = LabSpec(
    segments=(SegmentSpec(name="school", cidr="10.73.1.0/24", router_mac="00:00:0c:73:01:01",
                          cidr6="fd73:1::/64"),
              SegmentSpec(name="servers", cidr="10.73.2.0/24", router_mac="00:00:0c:73:02:01",
                          cidr6="fd73:2::/64", sensor=False)),
    devices=(DeviceSpec(name="file-server", segment="servers", host=20, mac="00:1b:1b:73:02:20",
                        vendor="Siemens AG,", device_type="server",
                        services=(banner(22, "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"),)),
             DeviceSpec(name="school-printer", segment="school", host=40,
                        mac="00:80:77:73:01:40", vendor="Brother industries, LTD.",
                        device_type="printer", services=(http(80, None, "Brother HL-L5100DN"),))),
    # the firewall rule was written for IPv4; the same SSH is open over IPv6
    allowed_flows=(("school", "servers", "tcp6", 22), ("school", "servers", "icmp6", 0)),
)
PROBE = """
import asyncio, json
from scanners.bind import scanning_on
from scanners.reach import Target, probe_reach
from scanners.scope import Scope

async def main():
    targets = [Target(ip=ip, tcp=(22,), udp=(), icmp=True) for ip in ("10.73.2.20", "fd73:2::14")]
    with scanning_on("eth0"):
        found = await probe_reach(targets, timeout_s=1.0,
                                  scope=Scope.from_strings(["10.73.0.0/16", "fd73::/16"]))
    return {f"{r.ip} {r.proto}/{r.port}": r.state for r in found}

print(json.dumps(asyncio.run(main())))
"""


def test_a_flow_closed_over_ipv4_and_open_over_ipv6_is_reached() -> None:
    with Lab(SPEC) as lab:
        assert SPEC.address6("servers", 20) == "fd73:2::14"
        done = lab.run(lab.sensor_ns("school"), [sys.executable, "-c", PROBE], timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        states = json.loads(done.stdout)
    assert states["10.73.2.20 tcp/22"] == "filtered"  # IPv4: the firewall holds
    assert states["10.73.2.20 icmp/0"] == "filtered"
    assert states["fd73:2::14 tcp/22"] == "reachable"  # IPv6: the same service is open
    assert states["fd73:2::14 icmp/0"] == "reachable"  # ICMPv6 echo


def test_ipv6_neighbours_are_found_and_joined_to_their_device_by_mac() -> None:
    with Lab(SPEC) as lab:
        ns = lab.sensor_ns("school")
        agent = [sys.executable, "-m", "agent.cli", "scan", "--interface", "eth0",
                 "--format", "json"]
        dual = lab.run(ns, [*agent, "--scope", "10.73.1.0/24", "--scope", "fd73:1::/64"],
                       timeout=300)
        plain = lab.run(ns, agent, timeout=300)  # the default scope: the IPv4 subnet only
    assert dual.returncode == 0, dual.stderr[-2000:]
    found = {a["ip"]: a for a in json.loads(dual.stdout)}
    assert found["fd73:1::28"]["mac"] == found["10.73.1.40"]["mac"] == "00:80:77:73:01:40"
    assert "fd73:1::1" in found  # the router's leg answers too
    assert not any(":" in a["ip"] for a in json.loads(plain.stdout))


def test_an_ipv6_only_device_gets_its_ports_probed_and_is_named() -> None:
    with Lab(SPEC) as lab:
        # the printer loses its IPv4 address: IPv6 is all it has left
        flushed = lab.run(lab.device_ns("school-printer"), ["ip", "-4", "addr", "flush",
                                                             "dev", "eth0"], timeout=30)
        assert flushed.returncode == 0, flushed.stderr
        scan = lab.run(lab.sensor_ns("school"),
                       [sys.executable, "-m", "agent.cli", "scan", "--interface", "eth0",
                        "--format", "json", "--scope", "10.73.1.0/24", "--scope",
                        "fd73:1::/64"], timeout=300)
    assert scan.returncode == 0, scan.stderr[-2000:]
    found = {a["ip"]: a for a in json.loads(scan.stdout)}
    assert "10.73.1.40" not in found
    printer = found["fd73:1::28"]
    assert [s["port"] for s in printer["services"]] == [80]
    assert printer["identity"].get("device_type") == "printer", printer

"""A sensor with a second interface in the management zone (how field sensors reach the
broker): probes leave by the segment under test only. Left to the kernel's routes, every
probe to a management address left by that interface and 'reached' the zone directly,
burying the real flows under false ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from central.lab.municipal import banner, http
from central.lab.topology import DeviceSpec, Lab, LabSpec, SegmentSpec

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: needs root"),
]

SPEC = LabSpec(
    segments=(SegmentSpec(name="office", cidr="10.72.1.0/24", router_mac="00:00:0c:72:01:01"),
              SegmentSpec(name="mgmt", cidr="10.72.9.0/24", router_mac="00:00:0c:72:09:01",
                          sensor=False)),
    devices=(
        DeviceSpec(name="core-switch", segment="mgmt", host=20, mac="00:1b:1b:72:09:20",
                   vendor="Siemens AG,", device_type="switch",
                   services=(banner(22, "SSH-2.0-OpenSSH_8.4\r\n"), http(80, None, "switch"))),
        DeviceSpec(name="office-pc", segment="office", host=30, mac="d0:43:1e:72:01:30",
                   vendor="Dell Inc.", device_type="workstation",
                   services=(http(80, "Microsoft-IIS/10.0", "intranet"),)),
    ),
    allowed_flows=(),  # the router lets nothing from the office into management
)
PROBE = """
import asyncio, json, sys
from scanners.bind import scanning_on
from scanners.reach import Target, probe_reach
from scanners.scope import Scope

async def reach(bound, stateless):
    targets = [Target(ip="10.72.9.20", tcp=(22, 80), udp=(161,), icmp=True)]
    async def run():
        return await probe_reach(targets, scope=Scope.from_strings(["10.72.0.0/16"]),
                                 timeout_s=1.0, stateless=stateless)
    if bound:
        with scanning_on("eth0"):
            results = await run()
    else:
        results = await run()
    return {f"{r.proto}/{r.port}": r.state for r in results}

print(json.dumps({f"{'bound' if b else 'kernel'}-{'syn' if s else 'connect'}":
                  asyncio.run(reach(b, s)) for b in (False, True) for s in (True, False)}))
"""


def _from_sensor(pcap: Path, addresses: set[str]) -> list[str]:
    from scapy.layers.inet import IP
    from scapy.utils import rdpcap

    return [p.summary() for p in rdpcap(str(pcap)) if p.haslayer(IP) and p[IP].src in addresses]


def test_probes_never_leave_by_the_management_interface() -> None:
    work = Path(tempfile.mkdtemp(prefix="netvagt-mgmt-"))
    with Lab(SPEC) as lab:
        ns = lab.sensor_ns("office")
        mgmt_ip = lab.add_sensor_leg("office", "mgmt")
        sensor = {lab.sensor_ip("office"), mgmt_ip}
        # the kernel would send management-bound probes out of eth1 and be answered
        states = json.loads(lab.run(ns, [sys.executable, "-c", PROBE], timeout=120).stdout)
        assert states["kernel-connect"]["tcp/22"] == "reachable"  # the trap is real
        for name in ("bound-syn", "bound-connect"):
            assert set(states[name].values()) == {"filtered"}, (name, states[name])

        # a technician's scan of the management range, and the capture on the switch
        pcap = work / "switch.pcap"
        capture = lab.popen(lab.device_ns("core-switch"), [
            "tcpdump", "-i", "eth0", "-n", "-U", "-w", str(pcap)], stderr=subprocess.PIPE)
        time.sleep(1.0)
        scan = lab.run(ns, [sys.executable, "-m", "agent.cli", "scan", "--interface", "eth0",
                            "--scope", "10.72.0.0/16", "--format", "json", "10.72.9.0/28",
                            "10.72.1.0/24"], timeout=300)
        capture.terminate()
        capture.wait(10)
        assert scan.returncode == 0, scan.stderr[-2000:]
        found = {a["ip"] for a in json.loads(scan.stdout)}
        assert "10.72.1.30" in found  # the office is scanned
        assert "10.72.9.20" not in found  # the management switch is not reachable from it
        assert _from_sensor(pcap, sensor) == []  # and received nothing from the sensor

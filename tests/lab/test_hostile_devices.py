"""A hostile device on the segment: it answers HTTP, RTSP, SNMP (v2c and v3), mDNS and SSDP
with malformed and oversized replies, and sends truncated ARP, LLDP, DHCP and CDP frames.
The scan completes, every other device is still found and named, and the hostile device is
found too (it answered; what it said is simply not believed)."""

from __future__ import annotations

import json
import os
import sys

import pytest

from central.lab.municipal import banner, chatter, http, rtsp, udp
from central.lab.topology import DeviceSpec, Lab, LabSpec, SegmentSpec, ServiceSpec

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: needs root"),
]

HOSTILE = LabSpec(
    segments=(SegmentSpec(name="edge", cidr="10.71.0.0/24", router_mac="00:00:0c:71:00:01"),),
    devices=(
        DeviceSpec(name="evil", segment="edge", host=66, mac="02:66:66:00:00:66",
                   vendor="", device_type="unknown", services=(
                       ServiceSpec(port=80, kind="hostile", params={"flavour": "http"}),
                       ServiceSpec(port=554, kind="hostile", params={"flavour": "rtsp"}),
                       udp(161, "hostile", flavour="snmp"),
                       udp(5353, "hostile", flavour="mdns"),
                       udp(1900, "hostile", flavour="ssdp"),
                       chatter("hostile", interval="0.5"))),
        DeviceSpec(name="axis-cam", segment="edge", host=22, mac="ac:cc:8e:71:00:22",
                   vendor="Axis Communications AB", device_type="camera", services=(
                       http(80, None, "AXIS", realm="AXIS_ACCC8E710022"),
                       rtsp(554, "GStreamer RTSP server"),
                       banner(21, "220 AXIS P1375 Network Camera 10.12.114 (2023) ready.\r\n",
                              "530 Login incorrect.\r\n"))),
        DeviceSpec(name="danfoss-ecl", segment="edge", host=34, mac="00:1b:08:71:00:34",
                   vendor="Danfoss Drives A/S", device_type="bms_controller",
                   services=(http(80, "lighttpd/1.4.35", "Danfoss ECL Comfort 296"),)),
        DeviceSpec(name="s7", segment="edge", host=40, mac="00:1b:1b:71:00:40",
                   vendor="Siemens AG", device_type="plc", services=(
                       udp(161, "snmp", sysdescr="Siemens, SIMATIC S7, CPU-1200, "
                           "6ES7 212-1BE40-0XB0, HW: 1, FW: V4.2.3", engine_id="800013700100"),
                       ServiceSpec(port=102, kind="silent"))),
    ),
)


def test_a_hostile_device_costs_only_its_own_answers() -> None:
    with Lab(HOSTILE) as lab:
        result = lab.run(lab.sensor_ns("edge"), [sys.executable, "-m", "agent.cli", "scan",
                                                 "--profile", "standard", "--format", "json"],
                         timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        assets = {a["ip"]: a for a in json.loads(result.stdout)}
        passive = lab.run(lab.sensor_ns("edge"), [sys.executable, "-m", "agent.cli", "scan",
                                                  "--profile", "passive", "--listen", "3",
                                                  "--format", "json"], timeout=120)
    assert {"10.71.0.66", "10.71.0.22", "10.71.0.34", "10.71.0.40"} <= set(assets)
    named = {ip: (a.get("identity", {}).get("vendor"), a.get("identity", {}).get("device_type"))
             for ip, a in assets.items()}
    assert named["10.71.0.22"] == ("Axis Communications", "camera")
    assert named["10.71.0.34"] == ("Danfoss", "bms_controller")
    assert named["10.71.0.40"] == ("Siemens", "plc")
    assert "snmp.engine_id" in {o["key"] for o in assets["10.71.0.40"]["observations"]}
    # what the hostile device said is carried bounded, and names nothing
    evil = assets["10.71.0.66"]
    assert all(len(o["value"]) <= 1024 for o in evil["observations"])
    assert "snmp.engine_id" not in {o["key"] for o in evil["observations"]}
    assert named["10.71.0.66"][1] is None
    # listening alone to its truncated frames: the scan ends normally
    assert passive.returncode == 0, passive.stderr[-3000:]
    assert isinstance(json.loads(passive.stdout), list)

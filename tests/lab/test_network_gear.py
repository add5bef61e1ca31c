"""A school's network gear by its makers' own discovery protocols, on real parts: the agent
in a namespace scans the segment with the standard profile, on locally administered MACs
(no registry names a maker; nothing but the discovery protocols do).

- a UniFi access point that answers only Ubiquiti's discovery request on UDP 10001 (its
  web interface is off, as on an adopted AP): its model, platform code and firmware build;
- a MikroTik router heard only by its neighbour discovery announcements (MNDP, broadcast to
  UDP 5678 twice a second here, every 30 to 60 s in the field), as the sensor listens beside
  its scan: its board and RouterOS version;
- a Linux host running mactelnetd, which announces itself in MNDP too, with its own
  platform: it must not be named a MikroTik router."""

from __future__ import annotations

import json
import os
import sys

import pytest

from central.lab.municipal import chatter, udp
from central.lab.topology import DeviceSpec, Lab, LabSpec, SegmentSpec

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: needs root"),
]

LAB = LabSpec(
    segments=(SegmentSpec(name="school", cidr="10.75.0.0/24", router_mac="00:00:0c:75:00:01"),),
    devices=(
        DeviceSpec(name="unifi-ap", segment="school", host=20, mac="02:75:00:00:00:20",
                   vendor="", device_type="access_point",
                   services=(udp(10001, "ubiquiti", model="UAP-AC-Lite", platform="U7LT",
                                 firmware="BZ.qca956x.v6.5.28.14491.230124.1631",
                                 name="ap-aula"),)),
        DeviceSpec(name="mikrotik", segment="school", host=30, mac="02:75:00:00:00:30",
                   vendor="", device_type="router",
                   services=(chatter("mndp", interval="0.5", platform="MikroTik",
                                     board="RB5009UG+S+", version="7.16.2 (stable)",
                                     identity="gw-skole"),)),
        DeviceSpec(name="mactelnet-host", segment="school", host=40, mac="02:75:00:00:00:40",
                   vendor="", device_type="",
                   services=(chatter("mndp", interval="0.5", platform="MAC-Telnet",
                                     board="x86_64", version="6.1.0-28-amd64",
                                     identity="backup01"),)),
    ),
)


def test_network_gear_is_named_by_its_makers_discovery_protocols() -> None:
    with Lab(LAB) as lab:
        result = lab.run(lab.sensor_ns("school"), [
            sys.executable, "-m", "agent.cli", "scan", "--profile", "standard",
            "--format", "json"], timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assets = {a["ip"]: a for a in json.loads(result.stdout)}
    ap, router, host = assets["10.75.0.20"], assets["10.75.0.30"], assets["10.75.0.40"]
    assert [(o["key"], o["value"], o["source"]) for o in ap["observations"]
            if o["key"] == "ubiquiti.discovery"] == [
        ("ubiquiti.discovery", "model=UAP-AC-Lite; platform=U7LT; "
         "firmware=BZ.qca956x.v6.5.28.14491.230124.1631; name=ap-aula", "10001/udp")]
    assert (ap["identity"]["vendor"], ap["identity"]["model"], ap["identity"]["version"],
            ap["identity"]["device_type"]) == ("Ubiquiti", "UAP-AC-Lite", "6.5.28",
                                               "access_point")
    said = {o["key"]: o["value"] for o in router["observations"]}
    assert said["mndp.device"] == ("platform=MikroTik; board=RB5009UG+S+; "
                                   "version=7.16.2 (stable); identity=gw-skole")
    assert (router["identity"]["vendor"], router["identity"]["model"],
            router["identity"]["os"], router["identity"]["device_type"]) == (
        "MikroTik", "RB5009UG+S+", "RouterOS", "router")
    assert {o["key"]: o["value"] for o in host["observations"]}["mndp.device"].startswith(
        "platform=MAC-Telnet; board=x86_64")
    assert host["identity"].get("vendor") != "MikroTik"
    assert host["identity"].get("device_type") in (None, "", "unknown")

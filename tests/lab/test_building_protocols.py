"""A building's controllers by their own protocols, on real parts: the agent in a namespace
scans them with the standard profile, on locally administered MACs (no registry names a
maker; nothing but the building protocols do).

- a KNX IP interface that answers only the KNXnet/IP description request on UDP 3671: its
  device information names it (a friendly name, the KNX manufacturer code of MDT in its
  serial number) and what it serves (tunnelling, routing);
- a KNX IP router heard only by the bus telegrams it puts on the IP side (routing
  indications to 224.0.23.12), twice a second, as the sensor listens beside its scan;
- a heating plant's PLC that speaks Modbus/TCP and nothing else: its answer to Read Device
  Identification names its maker and product code (a Modicon M221's part number), on a
  connection the device keeps open;
- a pumping station's SIMATIC S7-1200 whose port 102 speaks S7comm and nothing else answers
  (no web server, SNMP off): its system status list names its order number, type and
  firmware, over ISO-on-TCP on a connection it keeps open.

The KNX gear is building management, which the segmentation policy judges by."""

from __future__ import annotations

import json
import os
import sys

import pytest

from central.lab.municipal import chatter, udp
from central.lab.topology import DeviceSpec, Lab, LabSpec, SegmentSpec, ServiceSpec

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: needs root"),
]

LAB = LabSpec(
    segments=(SegmentSpec(name="building", cidr="10.73.0.0/24",
                          router_mac="00:00:0c:73:00:01"),
              # the town hall's office network, which the router lets reach the building's
              # KNX interface: the segmentation fault a reach probe must find
              SegmentSpec(name="office", cidr="10.74.0.0/24", router_mac="00:00:0c:74:00:01")),
    devices=(
        DeviceSpec(name="knx-interface", segment="building", host=30, mac="02:73:00:00:00:30",
                   vendor="", device_type="bms_controller",
                   services=(udp(3671, "knx", name="MDT KNX IP Router", manufacturer="131"),)),
        DeviceSpec(name="knx-router", segment="building", host=40, mac="02:73:00:00:00:40",
                   vendor="", device_type="bms_controller",
                   services=(chatter("knx-routing", interval="0.5"),)),
        DeviceSpec(name="heating-plc", segment="building", host=50, mac="02:73:00:00:00:50",
                   vendor="", device_type="plc",
                   services=(ServiceSpec(port=502, kind="modbus", params={
                       "vendor": "Schneider Electric", "product": "TM221CE16R",
                       "revision": "V1.6.0.1"}),)),
        DeviceSpec(name="pump-plc", segment="building", host=60, mac="02:73:00:00:00:60",
                   vendor="", device_type="plc",
                   services=(ServiceSpec(port=102, kind="s7", params={
                       "order": "6ES7 214-1AG40-0XB0", "firmware": "4.5.2",
                       "type": "CPU 1214C DC/DC/DC", "name": "Pumpestation Nord",
                       "module": "PLC_1", "copyright": "Original Siemens Equipment"}),)),
    ),
    allowed_flows=(("office", "building", "udp", 3671),),
)


def test_building_controllers_are_named_by_what_they_say_in_their_own_protocols() -> None:
    with Lab(LAB) as lab:
        result = lab.run(lab.sensor_ns("building"), [
            sys.executable, "-m", "agent.cli", "scan", "--profile", "standard",
            "--format", "json"], timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assets = {a["ip"]: a for a in json.loads(result.stdout)}
    interface, router = assets["10.73.0.30"], assets["10.73.0.40"]
    said = {o["key"]: o["value"] for o in interface["observations"]}
    assert said["knx.device"] == ("name=MDT KNX IP Router; medium=TP1; manufacturer_id=131; "
                                  "services=core,device management,tunnelling,routing")
    assert (interface["identity"]["vendor"], interface["identity"]["device_type"]) == (
        "MDT technologies", "bms_controller")
    assert {o["key"]: o["value"] for o in router["observations"]}["knx.device"] == (
        "services=routing")
    assert router["identity"]["device_type"] == "bms_controller"
    plc = assets["10.73.0.50"]
    assert [(o["key"], o["value"], o["source"]) for o in plc["observations"]] == [
        ("modbus.device", "vendor=Schneider Electric; product=TM221CE16R; revision=V1.6.0.1",
         "502/tcp")]
    assert (plc["identity"]["vendor"], plc["identity"]["model"],
            plc["identity"]["device_type"]) == ("Schneider Electric", "TM221CE16R", "plc")
    s7 = assets["10.73.0.60"]
    assert [(o["key"], o["value"], o["source"]) for o in s7["observations"]] == [
        ("s7.device", "order=6ES7 214-1AG40-0XB0; type=CPU 1214C DC/DC/DC; firmware=4.5.2; "
         "copyright=Original Siemens Equipment; name=Pumpestation Nord", "102/tcp")]
    assert (s7["identity"]["vendor"], s7["identity"]["model"], s7["identity"]["version"],
            s7["identity"]["device_type"]) == ("Siemens", "CPU 1214C", "4.5.2", "plc")


REACH_PROBE = """
import asyncio, json
from central.policy import DEFAULT_UDP
from scanners.reach import Target, probe_reach
from scanners.scope import Scope

targets = [Target(ip=ip, tcp=(), udp=DEFAULT_UDP) for ip in ("10.73.0.30", "10.73.0.40")]
out = {}
for stateless in (True, False):
    results = asyncio.run(probe_reach(targets, scope=Scope.from_strings(["10.73.0.0/24"]),
                                      timeout_s=1.0, stateless=stateless))
    out[str(stateless)] = sorted([r.ip, r.port, r.state] for r in results if r.port == 3671)
print(json.dumps(out))
"""


def test_a_knx_interface_reachable_from_the_office_is_found_by_the_default_reach_probe(
        ) -> None:
    """The policy's default UDP ports include KNXnet/IP, and its description request gets an
    answer across the router: the interface is reachable from the office, with either prober;
    the router, which answers no request, is not."""
    with Lab(LAB) as lab:
        result = lab.run(lab.sensor_ns("office"), [sys.executable, "-c", REACH_PROBE],
                         timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for stateless, found in json.loads(result.stdout).items():
        assert found == [["10.73.0.30", 3671, "reachable"], ["10.73.0.40", 3671, "refused"]], (
            stateless, found)

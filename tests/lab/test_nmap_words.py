"""What nmap said names the device, on real parts: the agent in a namespace scans two devices
that only nmap's database can name, with the real nmap.

- a recorder whose web server's header no rule of ours knows ('Interlogix-Webs'): the
  targeted HTTP probe's answer, read with nmap's own line for it, names a DVR in its words
  alone (the line gives no device type);
- a print server that says nothing until spoken to in LPD's words: the targeted probes
  leave the port unnamed, ``nmap -sV`` names it, and the device type nmap gave
  (``devicetype="print server"``, which python-nmap's result leaves out) reaches the
  classifier with what nmap said of the service.

Both MACs are locally administered: no registry names a maker, so only nmap's words can."""

from __future__ import annotations

import json
import os
import sys

import pytest

from central.lab.municipal import http
from central.lab.topology import DeviceSpec, Lab, LabSpec, SegmentSpec, ServiceSpec

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: needs root"),
]

LAB = LabSpec(
    segments=(SegmentSpec(name="store", cidr="10.72.0.0/24", router_mac="00:00:0c:72:00:01"),),
    devices=(
        DeviceSpec(name="dvr", segment="store", host=30, mac="02:72:00:00:00:30", vendor="",
                   device_type="video_recorder",
                   services=(http(80, "Interlogix-Webs", ""),)),
        DeviceSpec(name="print-server", segment="store", host=40, mac="02:72:00:00:00:40",
                   vendor="", device_type="printer",
                   services=(ServiceSpec(port=515, kind="banner", params={
                       "banner": "", "reply": "Printer default not found (lp).\\n"}),)),
    ),
)


def test_nmaps_words_and_its_device_type_name_what_no_rule_of_ours_knows() -> None:
    with Lab(LAB) as lab:
        result = lab.run(lab.sensor_ns("store"), [sys.executable, "-m", "agent.cli", "scan",
                                                  "--profile", "standard", "--format", "json"],
                         timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assets = {a["ip"]: a for a in json.loads(result.stdout)}
    dvr, lpd = assets["10.72.0.30"], assets["10.72.0.40"]
    assert dvr["identity"]["device_type"] == "video_recorder"
    said = {o["key"]: o["value"] for o in dvr["observations"]}
    assert "Interlogix TruVision DVR" in said["nmap.match"]  # nmap's line, its words
    assert "devicetype=" not in said["nmap.match"]  # ... and no type of its own
    # the LPD port: unnamed by the targeted probes, named by nmap -sV
    (service,) = [s for s in lpd["services"] if s["port"] == 515]
    assert service["source"] == "nmap"
    assert {o["source"]: o["value"] for o in lpd.get("observations", [])
            if o["key"] == "nmap.match"}["515/tcp"].startswith(
        "service=printer; devicetype=print server")
    assert lpd["identity"]["device_type"] == "printer"

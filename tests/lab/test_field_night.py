"""A night from first boot, on a network built to surprise the code: the central serves with
the zone policy, two sensor daemons scan, the central's second phase plans and sends the
probes by itself, and the next evaluation names what a real installation hides, each with
its evidence:

- a camera with two NICs (consecutive MACs, the same pages on both) in two zones, which
  also answers the office's probe of its camera-zone address by its office leg (a TTL no
  router lowered);
- a Raspberry Pi that nobody approved (the municipality's list is imported), sharing its
  connection: it advertises itself as the office's IPv6 router;
- SSH on a firewall's own address, reachable from the office (a management exposure);
- RTSP that the router closes over IPv4 and leaves open over IPv6;
- a camera plugged into an office socket with its camera zone address (heard on the office
  wire, found by no probe of the office subnet);
- a camera left at its factory address, outside every zone and the sensors' scope;
- a travel router plugged in by its LAN port, answering DHCP with itself as the router
  (a technician's safe scan, the profile for fragile devices, finds it too);
- a camera taken over, telling the camera sensor that the firewall's address is at its MAC;

and nothing reported for the router's own addresses answering, nor for what is there by
design: the router is on a stick (one MAC on both segments), an mDNS reflector in the
office announces itself and repeats the recorder's announcement from its own address, and
a Mac come from the camera zone checks for that zone's router from the address it held
there, and the standby router of a redundant gateway (HSRP) holds an address of its own on
both segments with one MAC, and a desk phone on the office port's voice VLAN sends
tagged frames the office sensor hears with the tag taken off (not the office wire's); and
a camera no DHCP server answered, announcing itself from
its automatic address, is in the inventory, named, in the zone of the wire it is on.
Real parts throughout:
namespaces, nftables, Mosquitto, the central and the agent daemons as processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from central.db import open_db
from central.lab.broker import Mosquitto
from central.lab.demo import ORG, SITE, query, wait_for_messages, write_sensor
from central.lab.municipal import (
    WINDOWS_DHCP_PARAMS,
    banner,
    chatter,
    http,
    rtsp,
    silent,
    udp,
)
from central.lab.topology import CORE_HOST, DeviceSpec, Lab, LabSpec, SegmentSpec

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: needs root"),
]

ROOT = Path(__file__).parents[2]
CLI = [sys.executable, "-m", "central.cli"]
ROUTER_MAC = "00:00:0c:76:00:01"
RECORDER_MDNS = {"services": "_http._tcp", "instance": "NVR", "hostname": "recorder-nvr",
                 "address": "10.76.2.30"}
SPEC = LabSpec(
    # a router on a stick: one MAC on both segments, as its VLAN interfaces have
    segments=(SegmentSpec(name="office", cidr="10.76.1.0/24", router_mac=ROUTER_MAC,
                          cidr6="fd76:1::/64"),
              SegmentSpec(name="cameras", cidr="10.76.2.0/24", router_mac=ROUTER_MAC,
                          cidr6="fd76:2::/64"),
              # a factory's default subnet, in no zone and outside the sensors' scope, on a
              # wire of its own (no device's socket)
              SegmentSpec(name="factory", cidr="192.168.1.0/24", router_mac=ROUTER_MAC,
                          sensor=False),
              # the voice VLAN (20) that the office sensor's port also carries, tagged
              SegmentSpec(name="voice", cidr="10.76.20.0/24", router_mac=ROUTER_MAC,
                          sensor=False),
              # automatic addresses (RFC 3927), which a device no DHCP server answered takes
              SegmentSpec(name="automatic", cidr="169.254.76.0/24", router_mac=ROUTER_MAC,
                          sensor=False)),
    devices=(
        DeviceSpec(name="office-pc", segment="office", host=30, mac="d0:43:1e:76:01:30",
                   vendor="Dell Inc.", device_type="workstation",
                   # a Windows PC (its pages on IIS made it a server once its whole scan,
                   # not its bare IPv6 address, named it)
                   services=(silent(135), silent(445),
                             chatter("dhcp", hostname="RH-PC017", vendor_class="MSFT 5.0",
                                     params=WINDOWS_DHCP_PARAMS))),
        # sharing its connection: it advertises itself as the office's IPv6 router
        DeviceSpec(name="rogue-pi", segment="office", host=50, mac="b8:27:eb:76:01:50",
                   vendor="Raspberry Pi Foundation", device_type="unknown",
                   services=(banner(22, "SSH-2.0-OpenSSH_9.2p1 Raspbian-2\r\n"),
                             chatter("ra", ra_prefix="fd99:76::"))),
        # two NICs, one in each zone: neighbouring MACs and the same page on both
        DeviceSpec(name="lobby-camera", segment="cameras", host=20, mac="ac:cc:8e:76:02:20",
                   vendor="Axis Communications AB", device_type="camera",
                   services=(http(80, None, "AXIS P1375 Network Camera"),),
                   also=(("office", 21, "ac:cc:8e:76:02:21"),)),
        DeviceSpec(name="recorder", segment="cameras", host=30, mac="44:19:b6:76:02:30",
                   vendor="Hangzhou Hikvision Digital Technology Co.,Ltd.",
                   device_type="video_recorder",
                   services=(rtsp(554, "Hikvision-Webs"), http(80, "Hikvision-Webs", "NVR"),
                             udp(5353, "mdns", **RECORDER_MDNS))),
        # announces itself and repeats one device, the recorder, from its own address: on
        # a quiet night what a device with two legs says of its other one, but by a name
        # not its own
        DeviceSpec(name="mdns-reflector", segment="office", host=60, mac="dc:a6:32:76:01:60",
                   vendor="Raspberry Pi Trading Ltd", device_type="unknown",
                   services=(udp(5353, "mdns-reflector", own=json.dumps(
                       {"services": "_ssh._tcp", "instance": "pi-relay",
                        "hostname": "pi-relay", "address": "10.76.1.60"}),
                       repeats=json.dumps([RECORDER_MDNS])),)),
        # a camera plugged into an office socket, with its camera zone address: it announces
        # itself on the office wire, and no probe of the office subnet finds it
        DeviceSpec(name="misplugged-camera", segment="cameras", host=77, socket="office",
                   mac="ac:cc:8e:76:02:77", vendor="Axis Communications AB",
                   device_type="camera",
                   services=(udp(5353, "mdns", services="_axis-video._tcp",
                                 instance="AXIS M3045-V - ACCC8E760277",
                                 hostname="axis-accc8e760277", address="10.76.2.77"),)),
        # a camera installed at its factory address, asking the cameras' wire for its
        # factory gateway: outside every zone and the sensors' scope
        DeviceSpec(name="factory-camera", segment="factory", host=64, socket="cameras",
                   mac="44:19:b6:00:01:64",
                   vendor="Hangzhou Hikvision Digital Technology Co.,Ltd.", device_type="camera",
                   services=(chatter("arp", arp_for="192.168.1.1"),)),
        # a desk phone on the voice VLAN of the office port: its frames reach the office
        # sensor tagged for VLAN 20, and the kernel takes the tag off before the listener
        # reads them; they are the voice VLAN's, not the office wire's
        DeviceSpec(name="voice-phone", segment="voice", host=41, socket="office",
                   mac="00:04:f2:76:14:29", vendor="Polycom", device_type="voip_phone",
                   services=(chatter("arp,dhcp", vlan="20", arp_for="10.76.20.1",
                                     hostname="SEP0004F2761429",
                                     vendor_class="Cisco Systems, Inc. IP Phone CP-8841"),)),
        # the cameras' access switch port is left at Cisco's default, dynamic auto: it
        # tells the camera sensor so in DTP, and any device plugged in there could make it a
        # trunk (the switch stands in no zone the sensors sweep: its management is elsewhere)
        DeviceSpec(name="cameras-switch-port", segment="voice", host=2, socket="cameras",
                   mac="00:1b:2b:76:02:fe", vendor="Cisco Systems", device_type="switch",
                   services=(chatter("dtp", dtp="04"),)),
        # a camera no DHCP server answered: an automatic address only, from which it
        # announces itself
        DeviceSpec(name="unleased-camera", segment="automatic", host=23, socket="cameras",
                   mac="ac:cc:8e:76:02:a9", vendor="Axis Communications AB", device_type="camera",
                   services=(chatter("arp", arp_for="169.254.76.23"),
                             udp(5353, "mdns", services="_axis-video._tcp",
                                 instance="AXIS P1375 - ACCC8E7602A9",
                                 hostname="axis-accc8e7602a9", address="169.254.76.23"))),
        # a camera taken over: it tells the camera sensor that the firewall's address is at
        # its MAC (ARP spoofing, one host at a time; the sensor only, so the lab's own
        # traffic keeps its way)
        DeviceSpec(name="spoofing-camera", segment="cameras", host=66, mac="44:19:b6:76:02:66",
                   vendor="Hangzhou Hikvision Digital Technology Co.,Ltd.", device_type="camera",
                   services=(chatter("arp-spoof", spoof="10.76.2.254", to="10.76.2.250",
                                     to_mac="b8:27:eb:00:00:02"),)),
        # a travel router plugged into an office socket by its LAN port: it answers DHCP
        # with itself as the router, from its own subnet's address
        DeviceSpec(name="travel-router", segment="factory", host=254, socket="office",
                   mac="94:83:c4:00:01:fe", vendor="GL Technologies (Hong Kong) Limited",
                   device_type="router",
                   services=(udp(67, "dhcp-server", offered="192.168.1.100"),)),
        # a Mac come from the camera zone's Wi-Fi checks, by unicast ARP from the address
        # it held there, for that network's gateway (RFC 4436), flooded by the switch: it
        # is in the office, with an office address, and nowhere else
        DeviceSpec(name="roaming-mac", segment="office", host=40, mac="f0:18:98:76:01:40",
                   vendor="Apple, Inc.", device_type="workstation",
                   services=(chatter("dhcp,dna", hostname="Annes-MacBook-Pro",
                                     params="1,121,3,6,15,108,114,119,252,95,44,46",
                                     dna_from="10.76.2.140", dna_router="10.76.2.1",
                                     dna_router_mac="00:1b:17:76:02:01"),)),
        # the standby of a redundant gateway (HSRP): an address of its own on both VLANs,
        # one MAC on both, as a core switch has
        DeviceSpec(name="core-standby", segment="office", host=3, mac="00:00:0c:76:00:03",
                   vendor="Cisco Systems, Inc", device_type="switch",
                   also=(("cameras", 3, "00:00:0c:76:00:03"),),
                   services=(chatter("hsrp", hsrp_virtual="10.76.1.1"),
                             chatter("hsrp", hsrp_virtual="10.76.2.1", leg="eth1",
                                     source="10.76.2.3"))),
        DeviceSpec(name="camera-firewall", segment="cameras", host=254, mac="00:1b:17:76:02:fe",
                   vendor="Palo Alto Networks", device_type="firewall",
                   services=(banner(22, "SSH-2.0-OpenSSH_8.4\r\n"),)),
    ),
    # the faults: SSH into the camera zone (meant for the firewall, open to every host), and
    # RTSP opened over IPv6 only
    allowed_flows=(("office", "cameras", "tcp", 22), ("office", "cameras", "tcp6", 554),
                   ("office", "cameras", "tcp", 80)),
)
POLICY = f"""
org = "{ORG}"
[defaults]
tcp_ports = [22, 80, 554]
udp_ports = []
[[site]]
name = "{SITE}"
[[zone]]
name = "office"
cidrs = ["10.76.1.0/24", "fd76:1::/64"]
allowed_types = ["workstation", "printer", "voip_phone", "mobile"]
[[zone]]
name = "cameras"
cidrs = ["10.76.2.0/24", "fd76:2::/64"]
allowed_types = ["camera", "video_recorder", "firewall"]
gateways = ["10.76.2.254"]
[[flow]]
from = "office"
to = "cameras"
proto = "tcp"
ports = [80]
reason = "the caretaker looks at the cameras' pages"
"""
APPROVED = ("mac,owner,type\n"
            "d0:43:1e:76:01:30,IT,workstation\n"
            "ac:cc:8e:76:02:20,Facilities,camera\n"
            "ac:cc:8e:76:02:21,Facilities,camera\n"
            "44:19:b6:76:02:30,Facilities,video_recorder\n"
            "ac:cc:8e:76:02:77,Facilities,camera\n"
            "44:19:b6:00:01:64,Facilities,camera\n"
            "ac:cc:8e:76:02:a9,Facilities,camera\n"
            "f0:18:98:76:01:40,IT,workstation\n"
            "00:00:0c:76:00:03,IT,switch\n"
            "94:83:c4:00:01:fe,IT,router\n"
            "44:19:b6:76:02:66,Facilities,camera\n"
            "00:1b:17:76:02:fe,IT,firewall\n"
            f"{ROUTER_MAC},IT,router\n"  # one MAC on both legs
            "dc:a6:32:76:01:60,IT,server\n")  # the mDNS reflector
SCOPE = ("10.76.0.0/16", "fd76:1::/64", "fd76:2::/64")



def _violations(db_path: Path) -> list[dict[str, Any]]:
    done = subprocess.run([*CLI, "violations", "--format", "json", "--db", str(db_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def _wanted(found: list[dict[str, Any]]) -> dict[str, bool]:
    flows = [v for v in found if v["kind"] == "unexpected_flow"]
    return {
        "dual-homed camera": any(v["kind"] == "bridging_device" and "ac:cc:8e:76:02:2"
                                 in json.dumps(v) for v in found),
        # its answer to the office's probe of its camera-zone address came back by its
        # office leg: no router took a hop off the TTL
        "answers from another zone": any(v["kind"] == "bridging_device" and "directly"
                                         in v["title"] and "10.76.2.20" in v["title"]
                                         for v in found),
        "unapproved pi": any(v["kind"] == "unapproved_device" and "b8:27:eb:76:01:50"
                             in json.dumps(v) for v in found),
        "pi advertising itself as router": any(v["kind"] == "rogue_router" and "10.76.1.50"
                                               in v["title"] for v in found),
        "firewall ssh": any(v["kind"] == "management_exposure" and "10.76.2.254"
                            in json.dumps(v["evidence"]) for v in found),
        "rtsp over ipv6": any("554" in v["title"] and any(
            e.get("family") == "IPv6" for e in v["evidence"]) for v in flows),
        # heard on the office wire from its camera zone address
        "camera in an office socket": any(
            v["kind"] == "misplaced_device" and "10.76.2.77" in v["title"]
            and v["zone"] == "office" and v["other_zone"] == "cameras" for v in found),
        # heard on the cameras' wire from an address outside every zone and the scope
        # its offer to the sensor's DISCOVER names itself as the router
        "travel router handing out itself": any(
            v["kind"] == "rogue_router" and "192.168.1.254" in v["title"]
            and "DHCP" in v["title"] and v["zone"] == "office" for v in found),
        "camera spoofing the firewall's address": any(
            v["kind"] == "rogue_router" and "44:19:b6:76:02:66" in v["title"]
            and "10.76.2.254" in v["title"] for v in found),
        # the phone's frames, tagged for the voice VLAN, reach the office sensor's port:
        # whatever is plugged into an office socket can tag its way into VLAN 20
        "voice VLAN on an office port": any(
            v["kind"] == "vlan_leak" and "VLAN 20 " in v["title"] and v["zone"] == "office"
            for v in found),
        "cameras port negotiating a trunk": any(
            v["kind"] == "vlan_leak" and "DTP mode auto" in v["title"]
            and v["zone"] == "cameras" for v in found),
        "camera at its factory address": any(
            v["kind"] == "misplaced_device" and "192.168.1.64" in v["title"]
            and v["zone"] == "cameras" and not v["other_zone"] for v in found),
    }


@pytest.mark.timeout(900)  # two scans with nmap, then policy rounds of 5 s (--round)
def test_a_night_from_first_boot_finds_what_the_field_hides() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="netvagt-night-"))
    db_path = workdir / "central.db"
    policy = workdir / "policy.toml"
    policy.write_text(POLICY)
    approved = workdir / "approved.csv"
    approved.write_text(APPROVED)
    try:
        with Lab(SPEC) as lab, Mosquitto(ns=lab.core, bind=(CORE_HOST, "127.0.0.1"),
                                         port=1883):
            open_db(db_path).close()
            imported = subprocess.run([*CLI, "inventory", "import", str(approved), "--org", ORG,
                                       "--site", SITE, "--db", str(db_path)],
                                      capture_output=True, text=True, cwd=ROOT, timeout=60)
            assert imported.returncode == 0, imported.stderr
            sensors = [write_sensor(lab, seg, workdir, db_path, 1883, scope=SCOPE)
                       for seg in ("office", "cameras")]
            lab.popen(lab.core, [*CLI, "serve", "--db", str(db_path), "--broker-host",
                                 "127.0.0.1", "--policy", str(policy), "--round", "5"],
                      stderr=subprocess.DEVNULL)
            # first boot: each sensor scans once, then its daemon waits for plans
            for s in sensors:
                done = lab.run(s.ns, [sys.executable, "-m", "agent.cli", "run", "--config",
                                      str(s.config), "--once"], timeout=600)
                assert done.returncode == 0, done.stderr[-3000:]
            assert wait_for_messages(db_path, [s.id for s in sensors], timeout=60)
            for s in sensors:
                lab.popen(s.ns, [sys.executable, "-m", "agent.cli", "run", "--config",
                                 str(s.config)], stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 240  # rounds every 5 s: plan, probe, evaluate
            found: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                found = _violations(db_path)
                if all(_wanted(found).values()):
                    break
                time.sleep(5)
            # the technician's safe scan of the office (the profile for fragile devices)
            # asks the DHCP servers too: the travel router answers
            safe = lab.run(sensors[0].ns, [sys.executable, "-m", "agent.cli", "scan",
                                           "--profile", "safe", "--format", "json"],
                           timeout=300)
            plans = dict(query(db_path, "SELECT sensor_id, max(targets) FROM plans"
                                        " GROUP BY sensor_id"))
            seen = query(db_path, "SELECT p.sensor_id, r.ip, r.proto, r.port, r.state FROM reach r"
                                  " JOIN plans p ON p.id = r.plan_id WHERE r.state = 'reachable'")
            assets = {mac: (name, kind) for mac, name, kind in query(
                db_path, "SELECT mac, hostname, device_type FROM assets")}
            claimed = query(db_path, "SELECT a.mac, d.ip FROM addresses d JOIN assets a"
                                     " ON a.id = d.asset_id WHERE d.kind = 'claimed'")
            unleased = query(db_path, "SELECT d.ip FROM addresses d JOIN assets a"
                                      " ON a.id = d.asset_id WHERE a.mac = 'ac:cc:8e:76:02:a9'")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    assert _wanted(found) == dict.fromkeys(_wanted(found), True), (
        json.dumps({"plans": plans, "reached": seen,
                    "violations": [(v["kind"], v["title"]) for v in found]}, indent=1))
    # the reflector repeats a host of another name: neither its name, kind nor addresses
    # are the reflector's; the recorder, heard only in mDNS by name, is named by its own
    # announcement
    assert assets["dc:a6:32:76:01:60"] == ("pi-relay", None), assets
    assert not [c for c in claimed if c[0] == "dc:a6:32:76:01:60"], claimed
    assert assets["44:19:b6:76:02:30"] == ("recorder-nvr", "video_recorder"), assets
    assert safe.returncode == 0, safe.stderr[-3000:]
    # the voice VLAN's frames are the voice VLAN's: its phone is no device of the office
    # wire (it would be one with an address in no zone), and the technician is told
    assert "tagged for VLAN 20" in safe.stderr, safe.stderr[-3000:]
    assert "10.76.20.41" not in safe.stdout
    assert sorted((v["zone"], v["title"][:25], v["evidence"][0].get("senders")
                   or v["evidence"][0]["mac"]) for v in found if v["kind"] == "vlan_leak") == [
        ("cameras", "sensor s-cameras's switch", "00:1b:2b:76:02:fe"),  # DTP, from the switch
        ("office", "frames tagged for VLAN 20", ["00:04:f2:76:14:29"])]  # the phone
    served = {a["ip"]: [o["value"] for o in a.get("observations", ()) if o["key"] == "dhcp.router"]
              for a in json.loads(safe.stdout)}
    assert served.get("192.168.1.254") == ["192.168.1.254"], served
    # the camera with an automatic address only is in the inventory, named, in the zone
    # of the wire it is on, where cameras belong: nothing is found
    assert assets["ac:cc:8e:76:02:a9"][1] == "camera", assets
    assert unleased == [("169.254.76.23",)], unleased
    assert not [v for v in found if "169.254" in json.dumps(v)], found
    # the second phase sent each sensor a plan into the other zone, with targets
    assert set(plans) == {"s-office", "s-cameras"} and all(n > 0 for n in plans.values())
    # and nothing else: the camera's office leg is a camera in the office, and the firewall
    # answers SSH on both its names (IPv4 and IPv6), each an exposure
    assert sorted(v["kind"] for v in found) == sorted(
        ["bridging_device", "bridging_device", "unapproved_device", "management_exposure",
         "management_exposure", "unexpected_flow", "misplaced_device", "misplaced_device",
         "misplaced_device", "misplaced_device", "rogue_router", "rogue_router",
         "rogue_router", "vlan_leak", "vlan_leak"]), [
        (v["kind"], v["title"]) for v in found]
    for violation in found:
        assert violation["evidence"], violation
        # the routers' own addresses answering is routing, never a flow
        assert not (violation["kind"] == "unexpected_flow" and "icmp" in violation["title"]
                    and any(e.get("target", "").endswith(".1") for e in violation["evidence"]))

"""End to end on real parts: namespaces, emulated devices, real nmap, a real Mosquitto started
here, the central as its own process, a real SQLite file.

Sensors in three segments scan and report; the central must store exactly the lab's devices.
Then hostile messages go through the same broker and are refused while valid traffic lands.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from agent import signing, wire
from agent.wire import Asset, Findings
from central import inventory
from central.db import open_db
from central.lab.broker import Mosquitto
from central.lab.demo import SensorSetup, wait_for_messages, write_sensor
from central.lab.municipal import MUNICIPAL
from central.lab.topology import CORE_HOST, Lab
from scanners.ports import PROFILES, TCP_PORTS

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: needs root"),
]

ROOT = Path(__file__).parents[2]
SEGMENTS = ("admin", "cameras", "bms")


@dataclass
class LabRun:
    lab: Lab
    db_path: Path
    sensors: list[SensorSetup]
    captured: bytes
    workdir: Path


def _count(db_path: Path, reason: str) -> int:
    db = open_db(db_path)
    row = db.execute("SELECT count FROM message_counts WHERE reason = ?", [reason]).fetchone()
    db.close()
    return int(row[0]) if row else 0


@pytest.fixture(scope="module")
def lab_run() -> Iterator[LabRun]:
    workdir = Path(tempfile.mkdtemp(prefix="netvagt-e2e-"))
    db_path = workdir / "central.db"
    links_before = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    try:
        with Lab(MUNICIPAL) as lab, Mosquitto(ns=lab.core, bind=(CORE_HOST, "127.0.0.1"),
                                              port=1883):
            open_db(db_path).close()
            sensors = [write_sensor(lab, seg, workdir, db_path, 1883) for seg in SEGMENTS]
            lab.popen(lab.core, [sys.executable, "-m", "central.cli", "serve", "--db",
                                 str(db_path), "--broker-host", "127.0.0.1"],
                      stderr=subprocess.DEVNULL)
            sub = lab.popen(lab.core, ["mosquitto_sub", "-h", "127.0.0.1", "-V", "mqttv5",
                                       "-t", wire.FINDINGS_FILTER, "-C", "1", "-q", "1"],
                            stdout=subprocess.PIPE)
            time.sleep(0.5)  # let the capture subscribe before anything is published
            agents = [lab.popen(s.ns, [sys.executable, "-m", "agent.cli", "run", "--config",
                                       str(s.config), "--once"], stderr=subprocess.PIPE)
                      for s in sensors]
            for proc in agents:
                _, err = proc.communicate(timeout=600)
                assert proc.returncode == 0, err.decode()[-3000:]
            captured, _ = sub.communicate(timeout=30)
            assert wait_for_messages(db_path, [s.id for s in sensors], timeout=60)
            # no lab interface leaked into the root namespace
            links_after = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
            assert len(links_after.splitlines()) == len(links_before.splitlines())
            yield LabRun(lab=lab, db_path=db_path, sensors=sensors, captured=captured.strip(),
                         workdir=workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_central_stores_exactly_the_lab_devices(lab_run: LabRun) -> None:
    db = open_db(lab_run.db_path)
    rows = inventory.assets(db)
    found = {(r.addresses[0], r.mac): r for r in rows}
    expected = {(MUNICIPAL.address(d.segment, d.host), d.mac): d for d in MUNICIPAL.devices}
    expected |= {(MUNICIPAL.address(seg, host), mac): d for d in MUNICIPAL.devices
                 for seg, host, mac in d.also}  # a dual-homed device's other legs
    routers = {(MUNICIPAL.address(s.name, 1), s.router_mac) for s in MUNICIPAL.segments}
    assert set(found) == set(expected) | routers
    for key, device in expected.items():
        row = found[key]
        if device.vendor:
            assert row.mac_vendor == device.vendor, device.name
            assert not row.mac_random
        else:  # a randomised MAC names no vendor, and says so
            assert row.mac_random and row.mac_vendor is None, device.name
        probed = {"tcp": set(TCP_PORTS), "udp": set(PROFILES["standard"].udp_ports)}
        wanted_ports = {f"{s.port}/{s.proto}" for s in device.services
                        if s.port in probed.get(s.proto, set())}
        assert set(row.open_ports) == wanted_ports, device.name
        for service in row.services:
            assert service.name, f"{device.name} {service.port} has no service name"
    by_ip = {r.addresses[0]: r for r in rows}
    danfoss = next(s for s in by_ip["10.20.40.34"].services if s.port == 80)
    # named by its own Server header, so nmap -sV was not asked about it ...
    assert (danfoss.product, danfoss.version, danfoss.source) == ("lighttpd", "1.4.35", "tcp")
    # ... while a port the targeted probes left unnamed (S7comm says nothing) went to nmap
    s7 = next(s for s in by_ip["10.20.40.32"].services if s.port == 102)
    assert s7.source == "nmap" and s7.name == "iso-tsap"
    ssh = next(s for s in by_ip["10.20.10.13"].services if s.port == 22)
    assert ssh.banner == "SSH-2.0-OpenSSH_8.2\r\n"
    assert {r.site for r in rows} == {"raadhuset"}
    db.close()


IDENTIFIED = {  # device: (vendor, device type) the fingerprint rules must name
    "printer": ("HP", "printer"),
    "nas": ("Synology", "nas"),
    "hikvision-cam": ("Hikvision", "camera"),
    "axis-cam": ("Axis Communications", "camera"),
    "dahua-nvr": ("Dahua", "video_recorder"),
    "schneider-plc": ("Schneider Electric", "plc"),
    "kamstrup-meter": ("Kamstrup", "meter"),
    "danfoss-ecl": ("Danfoss", "bms_controller"),
    "siemens-s7": ("Siemens", "plc"),  # from SNMP sysDescr and sysObjectID
    "sonos": ("Sonos", "media_player"),  # from SSDP and its UPnP description
    "workstation": ("Dell", "workstation"),  # OUI, DHCP vendor class and parameter list
    "phone": ("Samsung", "mobile"),  # a randomised MAC: only its DHCP request names it
    "nameless-cam": ("Espressif", "camera"),  # the ESP32 camera web server's title
    "grundfos-pump": ("Grundfos", "bms_controller"),  # its OUI alone
    "idrac": ("Dell", "bmc"),  # the factory TLS certificate
    "cisco-phone": ("Cisco", "voip_phone"),  # CDP and SIP
    "scalance": ("Siemens", "switch"),  # LLDP
    "office-cam": ("Hikvision", "camera"),
    "bms-pc": ("Dell", "workstation"),
}

# Which match key must show up in a device's evidence: each protocol, end to end.
EVIDENCE_KEYS = {
    "printer": {"mdns.txt", "mdns.service", "http.server", "dhcp.hostname"},
    "workstation": {"dhcp.vendor_class", "dhcp.params"},
    "phone": {"dhcp.hostname", "dhcp.vendor_class"},
    "idrac": {"tls.subject", "http.title"},  # its page, behind the certificate (HTTPS only)
    "cisco-phone": {"cdp.platform", "sip.user_agent", "lldp.med"},  # LLDP-MED class III
    "scalance": {"lldp.sysdescr"},
    "sonos": {"ssdp.server", "upnp.description"},
    "siemens-s7": {"snmp.sysdescr", "snmp.sysobjectid"},
    "hikvision-cam": {"wsd.types", "wsd.scopes"},  # its answer to the sensor's ONVIF probe
}


def test_devices_are_identified_with_evidence(lab_run: LabRun) -> None:
    db = open_db(lab_run.db_path)
    by_ip = {r.addresses[0]: r for r in inventory.assets(db)}
    db.close()
    for device in MUNICIPAL.devices:
        row = by_ip[MUNICIPAL.address(device.segment, device.host)]
        assert (row.vendor, row.device_type) == IDENTIFIED[device.name], device.name
        assert row.device_type == device.device_type, device.name
        assert row.identity_evidence, device.name
        assert all(e["rule"] and e["source"] for e in row.identity_evidence)
        keys = {e["key"] for e in row.identity_evidence}
        assert keys >= EVIDENCE_KEYS.get(device.name, set()), (device.name, keys)
    axis = by_ip[MUNICIPAL.address("cameras", 22)]
    assert (axis.model, axis.version) == ("P1375", "10.12.114")
    assert {e["key"] for e in axis.identity_evidence} >= {"ftp.banner", "http.title"}
    printer = by_ip[MUNICIPAL.address("admin", 11)]
    assert printer.model == "LaserJet MFP M426fdn"
    assert by_ip[MUNICIPAL.address("cameras", 21)].model == "DS-2CD2143G2-I"  # ONVIF's scope
    assert set(IDENTIFIED) == {d.name for d in MUNICIPAL.devices}  # every device, no exceptions


def test_known_vulnerabilities_mark_exactly_the_lab_devices_in_a_listed_range(
        lab_run: LabRun, tmp_path: Path) -> None:
    """KEV plus an NVD sample (the real formats), imported into the scanned inventory: the
    camera and the switch whose firmware falls in a range are affected, the heating
    controller that shows no version only possibly, and nothing else (the PLC's firmware is
    past its range; another vendor's and another model's records name nothing here)."""
    from tests.central.vuln_feeds import write_feeds

    db_path = tmp_path / "inventory.db"
    # a copy (the module's inventory stays as the scan left it), through SQLite's backup: the
    # running central's last commits may still be in its write-ahead log
    source, copy = sqlite3.connect(lab_run.db_path), sqlite3.connect(db_path)
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()
    kev, nvd = write_feeds(tmp_path)
    done = subprocess.run([sys.executable, "-m", "central.cli", "vulns", "import", str(kev),
                           str(nvd), "--db", str(db_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    listed = subprocess.run([sys.executable, "-m", "central.cli", "vulns", "list", "--format",
                             "json", "--db", str(db_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    marked = sorted((v["addresses"][0], v["cve"], v["status"]) for v in json.loads(listed.stdout))
    assert marked == [("10.20.30.22", "CVE-2025-1001", "affected"),
                      ("10.20.40.2", "CVE-2025-1002", "affected"),
                      ("10.20.40.34", "CVE-2025-1004", "possibly_affected")]


def test_what_devices_say_about_themselves_is_kept(lab_run: LabRun) -> None:
    """Host names, the SNMP engine id and certificate fingerprints are stored as facts (they
    tie one device's addresses together); claimed addresses stay apart from probed ones."""
    db = open_db(lab_run.db_path)
    facts = {(r["ip"], r["key"]): r["value"] for r in db.query("SELECT ip, key, value FROM facts")}
    hostnames = {r["ip"]: r["hostname"] for r in db.query(
        "SELECT d.ip, a.hostname FROM assets a JOIN addresses d ON d.asset_id = a.id"
        " WHERE d.kind = 'probed'")}
    claimed = [dict(r) for r in db.query("SELECT ip, kind FROM addresses WHERE kind = 'claimed'")]
    db.close()
    assert facts[("10.20.40.32", "snmp.engine_id")] == "800010e903001b1b104032"
    assert facts[("10.20.40.32", "snmp.sysname")] == "PLC-VARME-1"
    assert facts[("10.20.10.12", "netbios.name")] == "KOMMUNE-PC042"
    assert len(facts[("10.20.10.20", "tls.cert_sha256")]) == 64
    assert facts[("10.20.10.13", "ssh.hostkey")].startswith("ecdsa-sha2-nistp256 SHA256:")
    assert hostnames["10.20.10.12"] == "KOMMUNE-PC042"
    assert hostnames["10.20.40.32"] == "PLC-VARME-1"
    # the PLC's PROFINET address, from its SNMP ipAddrTable: stored, and never as probed
    assert claimed == [{"ip": "192.168.0.1", "kind": "claimed"}]
    assert "192.168.0.1" not in hostnames


def test_a_hostile_banner_stays_inert_in_every_output(lab_run: LabRun) -> None:
    db = open_db(lab_run.db_path)
    (hostile,) = [s for r in inventory.assets(db) if r.addresses[0] == "10.20.30.24"
                  for s in r.services if s.port == 23]
    db.close()
    assert hostile.banner is not None
    assert hostile.banner.startswith('=HYPERLINK("http://evil.example/x","click")\\x1b[2J')
    assert "\x1b" not in hostile.banner  # the escape byte arrives as text, never raw
    cli = [sys.executable, "-m", "central.cli"]
    table = subprocess.run([*cli, "assets", "--db", str(lab_run.db_path), "--format", "json"],
                           capture_output=True, text=True, cwd=ROOT)
    assert "\x1b" not in table.stdout and "<script>" in table.stdout  # JSON-escaped text
    shown = subprocess.run([*cli, "assets", "--db", str(lab_run.db_path)],
                           capture_output=True, text=True, cwd=ROOT)
    assert shown.returncode == 0 and "\x1b" not in shown.stdout
    csv_text = subprocess.run([*cli, "assets", "--db", str(lab_run.db_path), "--format", "csv"],
                              capture_output=True, text=True, cwd=ROOT).stdout
    for row in csv.DictReader(io.StringIO(csv_text)):
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@")), value


def test_a_captured_message_verifies_with_another_jose_library(lab_run: LabRun) -> None:
    token = lab_run.captured.decode()
    header = json.loads(jwcrypto_jws.base64url_decode(token.split(".")[0]))
    assert header["alg"] == "Ed25519"
    db = open_db(lab_run.db_path)
    public = db.execute("SELECT public_jwk FROM sensors WHERE id = ?", [header["kid"]]).fetchone()
    db.close()
    verifier = jwcrypto_jws.JWS()
    verifier.deserialize(token)
    verifier.verify(jwcrypto_jwk.JWK(**json.loads(public[0])), alg="Ed25519")
    findings = json.loads(verifier.payload)
    assert findings["sensor"] == header["kid"]
    assert findings["assets"], "the captured message carries assets"


def _publish(lab_run: LabRun, topic: str, payload: bytes) -> None:
    path = lab_run.workdir / f"msg-{uuid.uuid4().hex}"
    path.write_bytes(payload)
    result = lab_run.lab.run(lab_run.lab.core, ["mosquitto_pub", "-h", "127.0.0.1", "-V",
                                                "mqttv5", "-q", "1", "-t", topic, "-f", str(path)])
    assert result.returncode == 0, result.stderr


def test_hostile_messages_through_the_broker_are_refused_and_counted(lab_run: LabRun) -> None:
    token = lab_run.captured
    header = json.loads(jwcrypto_jws.base64url_decode(token.split(b".")[0].decode()))
    sensor = next(s for s in lab_run.sensors if s.id == header["kid"])
    topic = wire.findings_topic("demo-kommune", sensor.id)
    before = {r: _count(lab_run.db_path, r) for r in
              ("accepted", "replayed", "bad_signature", "unknown_sensor", "malformed")}

    h, p, s = token.split(b".")
    _publish(lab_run, topic, b".".join([h, p[:-8] + b"AAAAAAAA", s]))  # tampered
    _publish(lab_run, topic, token)  # replayed as captured
    stranger = signing.generate_private_key()
    findings = Findings(sensor="s-stranger", org="demo-kommune", seq=1, msg_id=uuid.uuid4().hex,
                        scan_id=uuid.uuid4().hex, sent_at=wire.utc_now(),
                        scan_started_at=wire.utc_now(), scan_finished_at=wire.utc_now())
    _publish(lab_run, wire.findings_topic("demo-kommune", "s-stranger"),
             signing.sign(findings.encode(), stranger, kid="s-stranger"))  # unknown sensor
    _publish(lab_run, topic, os.urandom(300))  # garbage
    # then valid traffic from the real sensor key, next in sequence
    key = signing.load_private_key(sensor.config.parent / "sensor.key")
    db = open_db(lab_run.db_path)
    last = db.execute("SELECT last_seq FROM sensors WHERE id = ?", [sensor.id]).fetchone()[0]
    db.close()
    valid = Findings(sensor=sensor.id, org="demo-kommune", seq=last + 1, msg_id=uuid.uuid4().hex,
                     scan_id=uuid.uuid4().hex, sent_at=wire.utc_now(),
                     scan_started_at=wire.utc_now(), scan_finished_at=wire.utc_now(),
                     assets=(Asset(ip=MUNICIPAL.address(sensor.segment, 77), sources=("icmp",)),))
    _publish(lab_run, topic, signing.sign(valid.encode(), key, kid=sensor.id))

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _count(lab_run.db_path, "accepted") == before["accepted"]:
        time.sleep(0.2)
    after = {r: _count(lab_run.db_path, r) for r in before}
    assert after["accepted"] == before["accepted"] + 1
    assert after["replayed"] == before["replayed"] + 1
    assert after["bad_signature"] == before["bad_signature"] + 1
    assert after["unknown_sensor"] == before["unknown_sensor"] + 1
    assert after["malformed"] == before["malformed"] + 1


def test_technician_scan_prints_json_and_refuses_what_is_out_of_scope(lab_run: LabRun) -> None:
    lab = lab_run.lab
    agent = [sys.executable, "-m", "agent.cli"]
    result = lab.run(lab.sensor_ns("cameras"), [*agent, "scan", "--profile", "safe",
                                                "--format", "json"])
    assert result.returncode == 0, result.stderr
    assets = {a["ip"]: a for a in json.loads(result.stdout)}
    assert set(assets) == {"10.20.30.1"} | {MUNICIPAL.address(d.segment, d.host)
                                            for d in MUNICIPAL.devices if d.segment == "cameras"}
    assert assets["10.20.30.21"]["mac_vendor"].startswith("Hangzhou Hikvision")
    assert {s["port"] for s in assets["10.20.30.22"]["services"]} == {80, 554}  # safe list
    for bad in ("10.0.0.1;id", "10.20.10.11", "--exclude=x"):
        refused = lab.run(lab.sensor_ns("cameras"), [*agent, "scan", "--", bad])
        assert refused.returncode == 2, (bad, refused.stdout, refused.stderr)
        assert "netvagt-agent:" in refused.stderr
    excluded = lab.run(lab.sensor_ns("cameras"), [*agent, "scan", "--profile", "safe",
                                                  "--format", "json", "--exclude", "10.20.30.22"])
    assert "10.20.30.22" not in {a["ip"] for a in json.loads(excluded.stdout)}


def test_routed_targets_are_found_by_icmp_through_the_router_policy(lab_run: LabRun) -> None:
    lab = lab_run.lab
    result = lab.run(lab.sensor_ns("admin"), [
        sys.executable, "-m", "agent.cli", "scan", "--profile", "safe", "--format", "json",
        "--scope", "10.20.40.0/24", "10.20.40.30-10.20.40.36"])
    assert result.returncode == 0, result.stderr
    assets = {a["ip"]: a for a in json.loads(result.stdout)}
    assert set(assets) == {"10.20.40.31", "10.20.40.32", "10.20.40.33", "10.20.40.34",
                           "10.20.40.35"}
    for asset in assets.values():
        assert asset["sources"][0] == "icmp" and "mac" not in asset  # routed: no MAC
    # the router lets tcp/80 through from admin to bms and drops telnet
    assert {s["port"] for s in assets["10.20.40.34"]["services"]} == {80}
    assert assets["10.20.40.33"]["services"] == []
    # and a segment the router does not open to admin stays dark
    dark = lab.run(lab.sensor_ns("admin"), [
        sys.executable, "-m", "agent.cli", "scan", "--profile", "safe", "--format", "json",
        "--scope", "10.20.30.0/24", "10.20.30.20-10.20.30.24"])
    assert json.loads(dark.stdout) == []


def test_an_excluded_address_receives_no_packet_during_a_full_scan(lab_run: LabRun) -> None:
    from scapy.layers.inet import IP
    from scapy.layers.l2 import ARP, Ether
    from scapy.utils import rdpcap

    lab = lab_run.lab
    meter = next(d for d in MUNICIPAL.devices if d.name == "kamstrup-meter")
    address = MUNICIPAL.address(meter.segment, meter.host)
    pcap = lab_run.workdir / "excluded.pcap"
    capture = lab.popen(lab.device_ns(meter.name), ["tcpdump", "-i", "eth0", "-n", "-U", "-w",
                                                    str(pcap)], stderr=subprocess.PIPE)
    time.sleep(1.0)  # tcpdump is listening
    scan = lab.run(lab.sensor_ns(meter.segment), [
        sys.executable, "-m", "agent.cli", "scan", "--profile", "standard", "--format", "json",
        "--exclude", address])
    capture.terminate()
    capture.wait(10)
    assert scan.returncode == 0, scan.stderr
    found = {a["ip"] for a in json.loads(scan.stdout)}
    assert address not in found and "10.20.40.34" in found  # the scan did run, around it
    sensor_mac = lab.run(lab.sensor_ns(meter.segment), ["cat", "/sys/class/net/eth0/address"]
                         ).stdout.strip().lower()
    # what the sensor sent that reached the meter's wire (the meter's own chatter with its
    # router, such as refreshing its neighbour entry, is not the scan's doing)
    packets = [p for p in rdpcap(str(pcap)) if p[Ether].src.lower() == sensor_mac]
    assert packets, "the capture saw nothing from the sensor: it did not run"  # broadcasts
    for packet in packets:
        assert packet[Ether].dst.lower() != meter.mac, packet.summary()
        if packet.haslayer(ARP):
            assert packet[ARP].pdst != address, packet.summary()
        if packet.haslayer(IP):
            assert packet[IP].dst != address, packet.summary()


# TCP states in which the kernel still answers a peer: a lab server closing a connection of an
# earlier scan seconds later makes the sensor's kernel send its last ACK
STILL_ANSWERING = ["state", "syn-sent", "state", "fin-wait-1", "state", "fin-wait-2",
                   "state", "closing", "state", "close-wait", "state", "last-ack"]


# What the sensor's kernel sends of its own accord or in answer, never a scan's doing: the last
# ACK of an earlier scan's connection, the ARP reply that precedes it, and IPv6 housekeeping
# (a router solicitation, repeated with backoff while no router answers; an MLD report; a
# neighbour advertisement)
KERNEL_ICMP6 = {133: "router solicitation", 131: "MLD report", 143: "MLDv2 report",
                136: "neighbour advertisement"}


def _the_kernel_s_own(packet: Any) -> bool:
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import ARP

    if packet.haslayer(TCP):
        return not packet[TCP].flags.S
    if packet.haslayer(ARP):
        return packet[ARP].op == 2  # is-at: an answer
    if packet.haslayer(IPv6):
        payload = packet[IPv6]
        while payload.nh == 0 and payload.payload:  # hop-by-hop options (MLD's router alert)
            payload = payload.payload
        return getattr(payload.payload, "type", None) in KERNEL_ICMP6
    return False


def test_the_passive_profile_finds_talkers_and_sends_nothing(lab_run: LabRun) -> None:
    """The passive profile sends not one packet. The interface's counter says whether
    anything left the sensor; a capture of what did says what it was. Only the kernel's own
    packets may be there: CI saw them with the counter alone (2085 against 2084, 2710
    against 2709), a late ACK to a lab server closing an earlier scan's connection, and an
    IPv6 router solicitation the kernel repeats while no router answers."""
    from scapy.utils import rdpcap

    lab = lab_run.lab
    sensor = lab.sensor_ns("cameras")
    for _ in range(40):  # at most 20 s for earlier scans' connections to finish closing
        if not lab.run(sensor, ["ss", "-Htan", *STILL_ANSWERING]).stdout.strip():
            break
        time.sleep(0.5)
    pcap = lab_run.workdir / "passive-sent.pcap"
    capture = lab.popen(sensor, ["tcpdump", "-i", "eth0", "-n", "-U", "-Q", "out", "-w",
                                 str(pcap)], stderr=subprocess.PIPE)
    time.sleep(1.0)  # tcpdump is listening
    counter = ["cat", "/sys/class/net/eth0/statistics/tx_packets"]
    sent_before = int(lab.run(sensor, counter).stdout)
    listening = lab.popen(sensor, [sys.executable, "-m", "agent.cli", "scan", "--profile",
                                   "passive", "--listen", "4", "--format", "json"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.5)  # the listener is up
    cameras = [d for d in MUNICIPAL.devices if d.segment == "cameras"]
    for device in cameras:  # each device asks for its gateway: a broadcast the sensor hears
        lab.run(lab.device_ns(device.name), ["ip", "neigh", "flush", "all"])
        lab.run(lab.device_ns(device.name), ["ping", "-c", "1", "-W", "1", "10.20.30.1"])
    out, err = listening.communicate(timeout=60)
    assert listening.returncode == 0, err.decode()
    sent = int(lab.run(sensor, counter).stdout) - sent_before
    time.sleep(0.5)  # tcpdump has written what it saw
    capture.terminate()
    capture.wait(10)
    left = [p for p in rdpcap(str(pcap))] if pcap.stat().st_size > 24 else []
    assert sent <= len(left)  # the capture saw all that left (and perhaps a little before)
    for packet in left:  # nothing a scan sends: no ARP request, no probe, no SYN
        assert _the_kernel_s_own(packet), packet.summary()
    found = {a["ip"]: a for a in json.loads(out)}
    assert set(found) == {MUNICIPAL.address("cameras", d.host) for d in cameras}
    for device in cameras:
        asset = found[MUNICIPAL.address("cameras", device.host)]
        assert asset["mac"] == device.mac and asset["sources"] == ["passive"]


def test_a_capture_of_a_scan_names_what_the_scan_named(lab_run: LabRun) -> None:
    """A mirror port sees what a sensor's scan sees: tcpdump's capture of a scan of the
    cameras segment, read by `scan --pcap` (a file, no network), names the cameras and the
    recorder by their answers (HTTP and RTSP heads) as the scan did."""
    # after the passive profile's test, which counts the packets this sensor sends: the
    # lab's servers close this scan's connections seconds later, and the sensor answers
    lab = lab_run.lab
    sensor = lab.sensor_ns("cameras")
    pcap = lab_run.workdir / "cameras-scan.pcap"
    capture = lab.popen(sensor, ["tcpdump", "-i", "eth0", "-n", "-U", "-w", str(pcap)],
                        stderr=subprocess.PIPE)
    time.sleep(1.0)  # tcpdump is listening
    # the safe profile: the pages, streams and banners without nmap (whose waits on silent
    # ports would add a minute and nothing a capture can read)
    scan = lab.run(sensor, [sys.executable, "-m", "agent.cli", "scan", "--profile", "safe",
                            "--format", "json"])
    capture.terminate()
    capture.wait(10)
    assert scan.returncode == 0, scan.stderr
    scanned = {a["mac"]: a["identity"].get("device_type") for a in json.loads(scan.stdout)
               if a.get("mac")}
    read = subprocess.run([sys.executable, "-m", "agent.cli", "scan", "--pcap", str(pcap),
                           "--format", "json"], capture_output=True, text=True, timeout=120)
    assert read.returncode == 0, read.stderr
    heard = {a["mac"]: a for a in json.loads(read.stdout)}
    for name in ("hikvision-cam", "axis-cam", "dahua-nvr"):
        device = next(d for d in MUNICIPAL.devices if d.name == name)
        assert scanned[device.mac] == device.device_type
        asset = heard[device.mac]
        assert asset["ip"] == MUNICIPAL.address("cameras", device.host)
        assert asset["identity"]["device_type"] == device.device_type, asset
        # named by what its answers said, not by its MAC's registrant
        assert not asset["identity"]["named_by"].startswith("mac."), asset


def test_the_demo_command_runs_and_cleans_up() -> None:
    before = set(subprocess.run(["ip", "netns", "list"], capture_output=True,
                                text=True).stdout.split())
    result = subprocess.run([sys.executable, "-m", "central.cli", "demo", "--sensors", "1",
                             "--no-console"],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "10.20.10.11" in result.stdout and "HP Inc." in result.stdout
    after = set(subprocess.run(["ip", "netns", "list"], capture_output=True,
                               text=True).stdout.split())
    assert {n for n in after - before if n.startswith("nvl")} == set()


LOOP_PROBE = """
import asyncio, json, time
from agent.scan import scan
from scanners.netinfo import interface
from scanners.ports import PROFILES
from scanners.scope import Scope

async def main():
    iface = interface("eth0")
    lags = []
    async def tick():
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - before - 0.01)
    ticker = asyncio.create_task(tick())
    result = await scan(iface=iface, scope=Scope.from_strings([iface.cidr]),
                        profile=PROFILES["safe"])
    ticker.cancel()
    print(json.dumps({"assets": len(result.assets), "max_lag": max(lags), "ticks": len(lags)}))

asyncio.run(main())
"""


def test_the_event_loop_never_blocks_during_a_scan(lab_run: LabRun) -> None:
    result = lab_run.lab.run(lab_run.lab.sensor_ns("bms"), [sys.executable, "-c", LOOP_PROBE])
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["assets"] == 1 + sum(d.segment == "bms" for d in MUNICIPAL.devices) + sum(
        seg == "bms" for d in MUNICIPAL.devices for seg, _, _ in d.also)  # + the router
    assert data["ticks"] > 10
    assert data["max_lag"] < 0.25, data  # sweeps run in threads, probes are async

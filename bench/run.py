"""The benchmark: netvagt against arp-scan and nmap on the same lab, in one run, plus the
central's ingest rate through the real broker.

    sudo ./dev bench            (or: sudo .venv/bin/python -m bench.run)

It builds one lab segment (10.50.0.0/24) with ``--hosts`` live hosts, each in its own
namespace, twenty of them with listening TCP ports, and a sensor namespace. All probes stay
in that segment; the ingest benchmark uses a Mosquitto on loopback. Every loop is bounded.
Results go to stdout as a table and to ``bench/results.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from central.lab.topology import DeviceSpec, Lab, LabSpec, SegmentSpec, ServiceSpec

HERE = Path(__file__).parent
CIDR = "10.50.0.0/24"
EDGE_CIDR = "10.51.0.0/24"
SERVICE_HOSTS = range(10, 30)  # hosts with open ports
OPEN_PORTS = (22, 80, 443, 502, 554)
PROBE_PORTS = (21, 22, 23, 80, 443, 445, 502, 554, 1883, 3389, 5900, 8080, 8443, 9100,
               102, 135, 139, 515, 631, 8000, 8883, 20000, 37777, 44818, 25, 53, 1911, 4911,
               5000, 5001)
OUIS = ("44:19:b6", "ac:cc:8e", "00:1b:1b", "00:80:f4", "64:4e:d7", "00:11:32", "00:13:ea",
        "d0:43:1e", "3c:ef:8c", "00:14:44")


def crowd_spec(hosts: int) -> LabSpec:
    devices = []
    for n in range(2, 2 + hosts):
        oui = OUIS[n % len(OUIS)]
        services: tuple[ServiceSpec, ...] = ()
        if n in SERVICE_HOSTS:
            services = tuple(ServiceSpec(port=p, kind="silent") for p in OPEN_PORTS)
        devices.append(DeviceSpec(name=f"h{n}", segment="crowd", host=n,
                                  mac=f"{oui}:50:00:{n:02x}", vendor="", device_type="unknown",
                                  services=services))
    # a second segment, beside the crowd, holds the sensor that tests segmentation: the
    # router lets it reach the crowd only on web and RTSP (and ping); the rest is dropped
    return LabSpec(segments=(SegmentSpec(name="crowd", cidr=CIDR,
                                         router_mac="00:00:0c:50:00:01"),
                             SegmentSpec(name="edge", cidr=EDGE_CIDR,
                                         router_mac="00:00:0c:51:00:01")),
                   devices=tuple(devices),
                   allowed_flows=(("edge", "crowd", "tcp", 80), ("edge", "crowd", "tcp", 554),
                                  ("edge", "crowd", "icmp", 0)))


def timed(lab: Lab, ns: str, argv: list[str]) -> tuple[float, str]:
    started = time.monotonic()
    result = lab.run(ns, argv, timeout=600)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {result.stderr[-1000:]}")
    return elapsed, result.stdout


INNER: dict[str, list[float]] = {}  # netvagt's own timing inside the process, by probe


def best_of(runs: int, fn: Any) -> tuple[float, set[str]]:
    """Median wall time over ``runs`` and what the median run found (the fewest hosts of all)."""
    times, founds = [], []
    for _ in range(runs):
        elapsed, items = fn()
        times.append(elapsed)
        founds.append(items)
    return statistics.median(times), min(founds, key=len)


def discovery(lab: Lab, runs: int) -> dict[str, Any]:
    ns = lab.sensor_ns("crowd")
    py = [sys.executable, "-m", "bench.probe"]

    def ours() -> tuple[float, set[str]]:
        elapsed, out = timed(lab, ns, [*py, "arp", "--iface", "eth0"])
        INNER.setdefault("arp", []).append(json.loads(out)["inner_s"])
        return elapsed, set(json.loads(out)["found"])

    def arp_scan() -> tuple[float, set[str]]:
        elapsed, out = timed(lab, ns, ["arp-scan", "--localnet", "-I", "eth0", "-q"])
        return elapsed, set(re.findall(r"^(10\.50\.0\.\d+)\s", out, re.M))

    def nmap_sn() -> tuple[float, set[str]]:
        elapsed, out = timed(lab, ns, ["nmap", "-sn", "-n", "-e", "eth0", CIDR])
        found = set(re.findall(r"Nmap scan report for (10\.50\.0\.\d+)", out))
        found.discard(lab.sensor_ip("crowd"))  # nmap lists the scanning host itself
        return elapsed, found

    return {name: best_of(runs, fn) for name, fn in
            (("netvagt ARP sweep", ours), ("arp-scan --localnet", arp_scan),
             ("nmap -sn", nmap_sn))}


def port_probe(lab: Lab, runs: int) -> dict[str, Any]:
    ns = lab.sensor_ns("crowd")
    first, last = SERVICE_HOSTS[0], SERVICE_HOSTS[-1]
    targets = f"10.50.0.{first}-10.50.0.{last}"
    ports = ",".join(str(p) for p in PROBE_PORTS)
    py = [sys.executable, "-m", "bench.probe", "tcp", "--targets", targets, "--ports", ports]

    def ours(*extra: str) -> Any:
        def run() -> tuple[float, set[str]]:
            elapsed, out = timed(lab, ns, [*py, *extra])
            INNER.setdefault("tcp" + "".join(extra[:1]), []).append(json.loads(out)["inner_s"])
            return elapsed, set(json.loads(out)["found"])
        return run

    def nmap_ss() -> tuple[float, set[str]]:
        elapsed, out = timed(lab, ns, ["nmap", "-sS", "-n", "-Pn", "-p", ports, "-oG", "-",
                                       f"10.50.0.{first}-{last}"])
        found = set()
        for host, rest in re.findall(r"Host: (\S+) .*?Ports: (.*)", out):
            for port in re.findall(r"(\d+)/open/tcp", rest):
                found.add(f"{host}:{port}")
        return elapsed, found

    return {name: best_of(runs, fn) for name, fn in (
        ("netvagt TCP probe (default limits: 1000 pps, 40 pps/host)", ours()),
        ("netvagt TCP probe (limits raised: 20000 pps, 2000 pps/host)",
         ours("--global-pps", "20000", "--host-pps", "2000", "--host-concurrency", "64")),
        ("nmap -sS", nmap_ss),
    )}


def reachability(lab: Lab, runs: int, hosts: int) -> dict[str, Any]:
    """A probe plan's worth: every host of the crowd x PROBE_PORTS, from the other segment,
    through the router (mostly dropped: the realistic case for segmentation checks)."""
    ns = lab.sensor_ns("edge")
    targets = f"10.50.0.1-10.50.0.{1 + hosts}"
    ports = ",".join(str(p) for p in PROBE_PORTS)
    py = [sys.executable, "-m", "bench.probe", "reach", "--targets", targets, "--ports", ports]

    def ours(mode: str) -> Any:
        def run() -> tuple[float, set[str]]:
            elapsed, out = timed(lab, ns, [*py, f"--{mode}"])
            INNER.setdefault(f"reach-{mode}", []).append(json.loads(out)["inner_s"])
            return elapsed, set(json.loads(out)["found"])
        return run

    def nmap_ss() -> tuple[float, set[str]]:
        elapsed, out = timed(lab, ns, ["nmap", "-sS", "-n", "-Pn", "--max-retries", "1", "-p",
                                       ports, "-oG", "-", targets.replace("-10.50.0.", "-")])
        found = set()
        for host, rest in re.findall(r"Host: (\S+) .*?Ports: (.*)", out):
            for port in re.findall(r"(\d+)/open/tcp", rest):
                found.add(f"{host}:{port}")
        return elapsed, found

    return {name: best_of(runs, fn) for name, fn in (
        ("netvagt reach, SYN (plan defaults: 5000 pps, 100 pps/host)", ours("stateless")),
        ("netvagt reach, connect fallback (same limits)", ours("connect")),
        ("nmap -sS -Pn --max-retries 1", nmap_ss),
    )}


def _identify_ours(lab: Lab, ns: str, targets: str, ports: str) -> tuple[float, set[str]]:
    elapsed, text = timed(lab, ns, [sys.executable, "-m", "bench.probe", "identify",
                                    "--targets", targets, "--ports", ports])
    named = {ip for ip, ident in json.loads(text)["found"].items()
             if ident.get("vendor") and ident.get("device_type")}
    return elapsed, named


def _identify_nmap(lab: Lab, ns: str, ports: str, ips: list[str]
                   ) -> tuple[float, dict[str, set[str]]]:
    """nmap -sV on the same addresses and ports, read three ways: the devices with a product
    on some port (nmap names the software that answered), those nmap gave a device type
    (its ``d/``), and those netvagt's rules name from nmap's answers, as the sensor reads
    them where its own probes named nothing (``nmap.match`` observations)."""
    import nmap

    from agent.scan import build_assets
    from fingerprints.classify import classify
    from scanners.nmap_services import left_out, services_from_nmap
    from scanners.observations import HostReply, PortResult

    elapsed, xml = timed(lab, ns, ["nmap", "-sV", "-n", "-Pn", "-p", ports, "-oX", "-", *ips])
    services = services_from_nmap(nmap.PortScanner().analyse_nmap_xml_scan(xml),
                                  left_out(xml))
    read: dict[str, set[str]] = {
        "product": {s.ip for s in services if s.product},
        "nmap type": {s.ip for s in services if s.devicetype},
        "netvagt rules": set()}
    # the assets the sensor would build from nmap's answers alone (no MAC: as for nmap)
    hosts = {s.ip: HostReply(ip=s.ip, source="nmap", rtt_s=0.0) for s in services}
    answered = [PortResult(ip=s.ip, port=s.port, proto=s.proto, state="open") for s in services]
    for asset in build_assets(hosts, answered, services, {}):
        identity = classify(asset.observations)
        if identity.vendor and identity.device_type:
            read["netvagt rules"].add(asset.ip)
    return elapsed, read


def identification(runs: int) -> dict[str, Any]:
    """The municipal lab's IoT segments: netvagt's targeted probes and rules against nmap -sV
    on the same addresses and ports (the ports that are open there)."""
    from central.lab.municipal import MUNICIPAL

    out: dict[str, Any] = {}
    with Lab(MUNICIPAL) as lab:
        for segment in ("cameras", "bms"):
            devices = [d for d in MUNICIPAL.devices if d.segment == segment]
            ips = [MUNICIPAL.address(segment, d.host) for d in devices]
            ports = sorted({s.port for d in devices for s in d.services if s.proto == "tcp"})
            port_list = ",".join(str(p) for p in ports)
            ns = lab.sensor_ns(segment)
            first, last = min(d.host for d in devices), max(d.host for d in devices)
            targets = f"{ips[0].rsplit('.', 1)[0]}.{first}-{ips[0].rsplit('.', 1)[0]}.{last}"

            ours = functools.partial(_identify_ours, lab, ns, targets, port_list)
            theirs = functools.partial(_identify_nmap, lab, ns, port_list, ips)
            out[segment] = {"devices": len(devices), "ports": port_list,
                            "netvagt": best_of(runs, ours), "nmap -sV": theirs()}
    return out


async def _ingest(messages: int, sensors: int, assets_per_message: int) -> dict[str, float]:
    import aiomqtt

    from agent import signing, wire
    from agent.wire import Asset, Findings, Service
    from central import registry
    from central.db import immediate, open_db
    from central.ingest import Ingestor
    from central.lab.broker import Mosquitto
    from central.service import BrokerConfig, serve

    workdir = Path(tempfile.mkdtemp(prefix="netvagt-bench-"))
    keys = {f"s-{i}": signing.generate_private_key() for i in range(sensors)}

    def signed_messages() -> list[tuple[str, bytes]]:
        out = []
        per_sensor = messages // sensors
        for sensor, key in keys.items():
            for seq in range(1, per_sensor + 1):
                assets = tuple(
                    Asset(ip=f"10.{seq % 250}.{a}.{int(sensor[2:]) + 1}",
                          mac=f"00:1b:1b:{seq % 250:02x}:{a:02x}:{int(sensor[2:]) + 1:02x}",
                          mac_vendor="Siemens AG,", sources=("arp", "tcp"), rtt_ms=0.4,
                          services=(Service(port=80, name="http", banner="HTTP/1.1 200 OK"),))
                    for a in range(assets_per_message))
                findings = Findings(sensor=sensor, org="bench", seq=seq, msg_id=uuid.uuid4().hex,
                                    scan_id=uuid.uuid4().hex, sent_at=wire.utc_now(),
                                    scan_started_at=wire.utc_now(),
                                    scan_finished_at=wire.utc_now(), assets=assets)
                out.append((wire.findings_topic("bench", sensor),
                            signing.sign(findings.encode(), key, kid=sensor)))
        return out

    def fresh_db(name: str) -> Path:
        path = workdir / name
        db = open_db(path)
        for sensor, key in keys.items():
            registry.add_sensor(db, sensor=sensor, org="bench", site="bench",
                                public_jwk=signing.public_jwk(key))
        db.close()
        return path

    batch = signed_messages()
    total = len(batch)
    # 1. direct: verify + commit, no broker
    db = open_db(fresh_db("direct.db"))
    ingestor = Ingestor(db)
    started = time.monotonic()
    for i in range(0, total, 500):
        ingestor.ingest_all(batch[i:i + 500])
    direct_s = time.monotonic() - started
    assert ingestor.counts["accepted"] == total, ingestor.counts
    # verification alone (signature and schema), for the breakdown: inside one transaction
    # of 500, as ingest verifies (the sensor registry is re-read between transactions)
    verify_db = open_db(fresh_db("verify.db"))
    verifier = Ingestor(verify_db)
    started = time.monotonic()
    for i in range(0, total, 500):
        with immediate(verify_db):
            for topic, payload in batch[i:i + 500]:
                verifier.verify(topic, payload)
    verify_s = time.monotonic() - started
    # 2. through the real broker
    db_path = fresh_db("broker.db")
    with Mosquitto() as broker:
        ready = asyncio.Event()
        task = asyncio.create_task(serve(db_path, BrokerConfig(port=broker.port,
                                                               client_id="bench-central"),
                                         ready=ready, max_messages=total))
        await asyncio.wait_for(ready.wait(), 30)
        by_sensor: dict[str, list[tuple[str, bytes]]] = {}
        for topic, payload in batch:
            by_sensor.setdefault(topic.split("/")[3], []).append((topic, payload))

        async def publish(items: list[tuple[str, bytes]]) -> None:
            async with aiomqtt.Client("127.0.0.1", broker.port,
                                      protocol=aiomqtt.ProtocolVersion.V5) as client:
                for i in range(0, len(items), 10):  # the agent's publish window
                    await asyncio.gather(*(client.publish(t, p, qos=1)
                                           for t, p in items[i:i + 10]))

        started = time.monotonic()
        await asyncio.gather(*(publish(items) for items in by_sensor.values()))
        published_s = time.monotonic() - started
        central = await asyncio.wait_for(task, 600)
        broker_s = time.monotonic() - started
        assert central.counts["accepted"] == total, central.counts
        # 3. the central alone: the night's findings wait in the broker (its persistent
        # session), then the central drains them; publishers do not share its process
        queued_path = fresh_db("queued.db")
        stop = asyncio.Event()
        subscribed = asyncio.Event()
        first = asyncio.create_task(serve(queued_path, BrokerConfig(
            port=broker.port, client_id="bench-central-2"), ready=subscribed, stop=stop))
        await asyncio.wait_for(subscribed.wait(), 30)
        stop.set()
        await asyncio.wait_for(first, 30)
        await asyncio.gather(*(publish(items) for items in by_sensor.values()))
        started = time.monotonic()
        central = await asyncio.wait_for(serve(queued_path, BrokerConfig(
            port=broker.port, client_id="bench-central-2"), max_messages=total), 600)
        queued_s = time.monotonic() - started
    assert central.counts["accepted"] == total, central.counts
    return {
        "messages": total,
        "assets_per_message": assets_per_message,
        "broker_msgs_per_s": total / broker_s,
        "broker_assets_per_s": total * assets_per_message / broker_s,
        "central_alone_msgs_per_s": total / queued_s,
        "central_alone_assets_per_s": total * assets_per_message / queued_s,
        "broker_publish_s": published_s,
        "direct_msgs_per_s": total / direct_s,
        "verify_only_msgs_per_s": total / verify_s,
        "verify_share_of_direct": verify_s / direct_s,
    }


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=200, help="live hosts in the /24 (max 240)")
    parser.add_argument("--runs", type=int, default=3, help="runs per tool (median reported)")
    parser.add_argument("--messages", type=int, default=4000, help="messages for the ingest test")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--identify", action="store_true",
                        help="also time identification against nmap -sV (about seven minutes: "
                        "nmap waits out the silent IoT ports)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench: builds network namespaces; run as root (sudo ./dev bench)", file=sys.stderr)
        return 2
    if not 20 < args.hosts <= 240 or not 1 <= args.runs <= 10 or not 1 <= args.messages <= 100_000:
        print("bench: --hosts 21..240, --runs 1..10, --messages 1..100000", file=sys.stderr)
        return 2
    results: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                                          f"Python {platform.python_version()}",
                               "hosts": args.hosts}
    print(f"building a /24 with {args.hosts} live hosts (each its own namespace)...", flush=True)
    started = time.monotonic()
    with Lab(crowd_spec(args.hosts)) as lab:
        print(f"lab up in {time.monotonic() - started:.1f} s", flush=True)
        disc = discovery(lab, args.runs)
        ports = port_probe(lab, args.runs)
        reach = reachability(lab, args.runs, args.hosts)
    expected_hosts = {f"10.50.0.{n}" for n in range(2, 2 + args.hosts)} | {"10.50.0.1"}
    expected_ports = {f"10.50.0.{h}:{p}" for h in SERVICE_HOSTS for p in OPEN_PORTS}
    fastest_peer = min(t for name, (t, _) in disc.items() if not name.startswith("netvagt"))
    ours_t = disc["netvagt ARP sweep"][0]
    print(f"\nDiscovery of {CIDR} ({len(expected_hosts)} answering, incl. the router), "
          f"median of {args.runs} runs, wall time of the whole command:")
    results["discovery"] = {}
    for name, (elapsed, found) in disc.items():
        complete = len(found & expected_hosts)
        print(f"  {name:40s} {elapsed:6.2f} s  {complete:3d}/{len(expected_hosts)} hosts"
              f"  (netvagt is {ratio(elapsed, ours_t)} faster)" if not name.startswith("netvagt")
              else f"  {name:40s} {elapsed:6.2f} s  {complete:3d}/{len(expected_hosts)} hosts")
        results["discovery"][name] = {"seconds": round(elapsed, 3), "hosts": complete}
    results["discovery"]["netvagt_vs_fastest_peer"] = round(ours_t / fastest_peer, 3)
    inner = statistics.median(INNER["arp"])
    results["discovery"]["netvagt sweep alone (inside the process)"] = round(inner, 3)
    print(f"  (netvagt's sweep itself, without interpreter start and imports: {inner:.2f} s)")
    print(f"\nPort probe of {len(SERVICE_HOSTS)} hosts x {len(PROBE_PORTS)} ports "
          f"({len(expected_ports)} open):")
    results["port_probe"] = {}
    nmap_t = ports["nmap -sS"][0]
    for name, (elapsed, found) in ports.items():
        complete = len(found & expected_ports)
        print(f"  {name:62s} {elapsed:6.2f} s  {complete:3d}/{len(expected_ports)} open"
              f"  ({ratio(elapsed, nmap_t)} of nmap's time)")
        results["port_probe"][name] = {"seconds": round(elapsed, 3), "open": complete}
    for key, label in (("tcp", "default limits"), ("tcp--global-pps", "limits raised")):
        inner = statistics.median(INNER[key])
        results["port_probe"][f"netvagt probe alone, {label} (inside the process)"] = round(inner, 3)
        print(f"  (netvagt's probe itself, {label}, without interpreter start: {inner:.2f} s)")
    reachable = {f"10.50.0.{h}:{p}" for h in SERVICE_HOSTS for p in OPEN_PORTS
                 if p in (80, 554)}
    print(f"\nReachability across the router: {args.hosts + 1} hosts x {len(PROBE_PORTS)} TCP "
          f"ports from another segment ({len(reachable)} reachable, the rest dropped):")
    results["reachability"] = {}
    nmap_t = reach["nmap -sS -Pn --max-retries 1"][0]
    for name, (elapsed, found) in reach.items():
        complete = len(found & reachable)
        print(f"  {name:62s} {elapsed:6.2f} s  {complete:3d}/{len(reachable)} reachable"
              f"  ({ratio(elapsed, nmap_t)} of nmap's time)")
        results["reachability"][name] = {"seconds": round(elapsed, 3), "reachable": complete}
    for mode in ("stateless", "connect"):
        inner = statistics.median(INNER[f"reach-{mode}"])
        results["reachability"][f"netvagt {mode} alone (inside the process)"] = round(inner, 3)
        print(f"  (netvagt's {mode} probe itself, without interpreter start: {inner:.2f} s)")
    if args.identify:
        print("\nIdentification on the municipal lab (cameras and building management):",
              flush=True)
        ident = identification(args.runs)
        results["identification"] = {}
        for segment, data in ident.items():
            ours_t, ours_named = data["netvagt"]
            nmap_t, nmap_read = data["nmap -sV"]
            print(f"  {segment}: {data['devices']} devices, ports {data['ports']}")
            print(f"    netvagt probes + rules  {ours_t:6.2f} s  {len(ours_named)} named "
                  f"(vendor and type)")
            print(f"    nmap -sV               {nmap_t:6.2f} s  "
                  f"{len(nmap_read['product'])} with a product on some port, "
                  f"{len(nmap_read['nmap type'])} with nmap's device type, "
                  f"{len(nmap_read['netvagt rules'])} named (vendor and type) by netvagt's "
                  f"rules from nmap's answers   (netvagt takes {ours_t / nmap_t:.2f} of "
                  "nmap's time)")
            results["identification"][segment] = {
                "devices": data["devices"], "netvagt_s": round(ours_t, 2),
                "netvagt_named": len(ours_named), "nmap_s": round(nmap_t, 2),
                "nmap_with_product": len(nmap_read["product"]),
                "nmap_with_device_type": len(nmap_read["nmap type"]),
                "netvagt_rules_on_nmap_named": len(nmap_read["netvagt rules"])}
    if not args.skip_ingest:
        print(f"\nIngest ({args.messages} signed messages, 20 assets each):", flush=True)
        ingest = asyncio.run(_ingest(args.messages, 4, 20))
        results["ingest"] = {k: round(v, 3) for k, v in ingest.items()}
        print(f"  through Mosquitto, verified and committed: {ingest['broker_msgs_per_s']:8.0f} "
              f"messages/s ({ingest['broker_assets_per_s']:.0f} assets/s; the publishers "
              "share the central's process)")
        print(f"  the central alone, draining the broker:    "
              f"{ingest['central_alone_msgs_per_s']:8.0f} messages/s "
              f"({ingest['central_alone_assets_per_s']:.0f} assets/s; target 20000)")
        print(f"  straight into the ingestor (no broker):    {ingest['direct_msgs_per_s']:8.0f} "
              f"messages/s")
        print(f"  signature + schema check alone:            {ingest['verify_only_msgs_per_s']:8.0f}"
              f" messages/s ({ingest['verify_share_of_direct'] * 100:.0f}% of the direct time; "
              "target 6000)")
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {HERE / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

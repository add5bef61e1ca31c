"""Identification's cost: loading every fingerprint database, classifying one asset, the
sensor's peak memory during a scan with the databases loaded, and reading a capture.

    ./dev bench --fingerprints          (the memory figure builds the lab: run as root)

Loading is timed in fresh interpreters (what a sensor pays at each start), once with an
empty regex cache (the first start) and then with the cache it left: the built-in
rules, the recog release in use ($NETVAGT_FINGERPRINTS, else the shared copy beside the
checkout) and nmap's service database with the lines of the probes the sensor asks like.
Classifying is timed on the observations real lab devices produce. No timing is asserted
anywhere: the figures go to bench/fingerprints.json and the README.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED_RECOG = HERE.parents[1] / "shared" / "fingerprint-db" / "recog"
LOAD = """
import time
started = time.perf_counter()
from fingerprints.rules import rules_by_key
from fingerprints.databases import recog_rules_by_key
from fingerprints import nmap_probes
rules_by_key(); recog = recog_rules_by_key()
for probe in ("NULL", "GetRequest", "RTSPRequest"):
    nmap_probes.ready(probe, "TCP")
print(time.perf_counter() - started, sum(len(v) for v in recog.values()))
"""
ASSETS = [  # (observations, mac, mac vendor): what lab devices say about themselves
    ([("http.www_authenticate", "AXIS_ACCC8E103022"), ("rtsp.server", "GStreamer RTSP server"),
      ("ftp.banner", "220 AXIS P1375 Network Camera 10.12.114 (2023) ready."),
      ("nmap.match", "service=ftp; product=Axis P1375 Network Camera ftpd; devicetype=webcam")],
     "ac:cc:8e:10:30:22", "Axis Communications AB"),
    ([("snmp.sysdescr", "Siemens, SIMATIC S7, CPU-1200, 6ES7 212-1BE40-0XB0, HW: 1, FW: V4.2.3"),
      ("snmp.engine_id", "800013700100"), ("lldp.sysdescr", "Siemens, SIMATIC S7, CPU-1200")],
     "00:1b:1b:10:40:31", "Siemens AG,"),
    ([("http.server", "lighttpd/1.4.35"), ("http.title", "Danfoss ECL Comfort 296")],
     "00:1b:08:10:40:34", "Danfoss Drives A/S"),
    ([("dhcp.hostname", "DESKTOP-4F2K9QX"), ("dhcp.vendor_class", "MSFT 5.0"),
      ("dhcp.params", "1,3,6,15,31,33,43,44,46,47,119,121,249,252"),
      ("netbios.name", "DESKTOP-4F2K9QX")], "d0:43:1e:10:20:12", "Dell Inc."),
    ([("ssh.banner", "SSH-2.0-OpenSSH_7.4p1 Raspbian-10+deb9u7"),
      ("http.server", "Microsoft-IIS/7.5"), ("http.title", "Web Image Monitor")],
     "b8:27:eb:00:00:01", "Raspberry Pi Foundation"),
]


def load_seconds(runs: int, env: dict[str, str]) -> tuple[float, float, int]:
    """(seconds with an empty regex cache, median seconds of ``runs`` starts with the cache
    the first filled, fingerprints): a sensor's first start ever and every one after."""
    import tempfile

    times, count = [], 0
    with tempfile.TemporaryDirectory() as cache:
        for _ in range(runs + 1):
            out = subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True,
                                 env={**env, "NETVAGT_CACHE_DIR": cache}, cwd=HERE.parent,
                                 check=True).stdout.split()
            times.append(float(out[0]))
            count = int(out[1])
    return times[0], statistics.median(times[1:]), count


def classify_ms(rounds: int, *, first_sight: bool = False) -> float:
    """Median per asset; ``first_sight`` forgets the classifier's kept answers before each
    round (strings never seen before), otherwise they are kept as in a nightly scan."""
    from fingerprints.classify import Observation, classify_device, forget_answers

    def once() -> None:
        for observations, mac, vendor in ASSETS:
            classify_device([Observation(key=k, value=v) for k, v in observations], mac=mac,
                            mac_vendor=vendor)

    once()  # warm: databases loaded, regexes compiled
    samples = []
    for _ in range(rounds):
        if first_sight:
            forget_answers()
        started = time.perf_counter()
        once()
        samples.append((time.perf_counter() - started) * 1000 / len(ASSETS))
    return statistics.median(samples)


def scan_peak_rss_mb(env: dict[str, str]) -> float | None:
    """Peak resident memory of `netvagt-agent scan` (and its nmap) in the lab's bms segment."""
    if os.geteuid() != 0:
        return None
    from central.lab.municipal import MUNICIPAL
    from central.lab.topology import Lab

    wrapper = ("import resource, subprocess, sys\n"
               "subprocess.run([sys.executable, '-m', 'agent.cli', 'scan', '--format', 'json'],"
               " stdout=subprocess.DEVNULL, check=True)\n"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    with Lab(MUNICIPAL) as lab:
        done = lab.run(lab.sensor_ns("bms"), [sys.executable, "-c", wrapper], timeout=600,
                       env=env)
    return int(done.stdout.strip().splitlines()[-1]) / 1024


CAPTURE_FRAMES = 1_000_000


def capture_reading(env: dict[str, str], frames: int = CAPTURE_FRAMES) -> tuple[float, float]:
    """`netvagt-agent scan --pcap` over a capture of ``frames`` frames (a day at a small
    site: mostly bulk TCP, and per thousand frames an ARP, a DNS query, a TLS hello, an HTTP
    answer and an mDNS announcement from 200 hosts): (frames a second, peak RSS in MB)."""
    import struct
    import tempfile

    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import ARP, Ether

    def host(n: int) -> tuple[str, str]:
        return f"02:00:00:00:{n // 256:02x}:{n % 256:02x}", f"10.1.{n // 256}.{n % 256 + 1}"

    said = []
    for n in range(200):
        mac, ip = host(n)
        said += [Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=ip, hwsrc=mac, pdst="10.1.0.1"),
                 Ether(src=mac) / IP(src=ip, dst="10.1.0.1") / UDP(sport=5000, dport=53)
                 / DNS(qd=DNSQR(qname=f"api{n}.meethue.com")),
                 Ether(src=mac) / IP(src=ip, dst="10.1.0.9") / TCP(sport=80, dport=5000)
                 / b"HTTP/1.1 200 OK\r\nServer: lighttpd\r\n\r\n<title>Camera</title>",
                 Ether(src=mac, dst="01:00:5e:00:00:fb") / IP(src=ip, dst="224.0.0.251")
                 / UDP(sport=5353, dport=5353) / DNS(qr=1, an=DNSRR(
                     rrname="_ipp._tcp.local.", type="PTR", rdata="P._ipp._tcp.local."))]
    bulk = bytes(Ether(src="02:00:00:00:ff:01") / IP(src="52.1.2.3", dst="10.1.0.5")
                 / TCP(sport=443, dport=40000, flags="A") / (b"x" * 1200))

    def record(frame: bytes) -> bytes:
        return struct.pack("<IIII", 1, 0, len(frame), len(frame)) + frame

    block = b"".join(record(bytes(f)) for f in said) + record(bulk) * (250 * len(said))
    per_block = len(said) * 251
    with tempfile.TemporaryDirectory() as scratch:
        capture = Path(scratch) / "day.pcap"
        with capture.open("wb") as out:
            out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for _ in range(max(1, frames // per_block)):
                out.write(block)
        wrapper = ("import resource, subprocess, sys, time\n"
                   "t = time.perf_counter()\n"
                   "subprocess.run([sys.executable, '-m', 'agent.cli', 'scan', '--pcap', "
                   f"{str(capture)!r}, '--format', 'json'], stdout=subprocess.DEVNULL, "
                   "check=True)\n"
                   "print(time.perf_counter() - t, "
                   "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        done = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True,
                              check=True, env=env, cwd=HERE.parent)
    seconds, rss_kb = done.stdout.split()
    return max(1, frames // per_block) * per_block / float(seconds), int(rss_kb) / 1024


def main() -> int:
    env = dict(os.environ)
    if "NETVAGT_FINGERPRINTS" not in env and SHARED_RECOG.is_dir():
        env["NETVAGT_FINGERPRINTS"] = str(SHARED_RECOG)
    os.environ.update(env)
    cold, loaded, fingerprints = load_seconds(3, env)
    print(f"loading every database (built-in, recog: {fingerprints} fingerprints, nmap's "
          f"probes): {loaded:.2f} s, median of 3 fresh interpreters with the regex cache; "
          f"{cold:.2f} s the first time, compiling everything")
    per_asset = classify_ms(200)
    first_sight = classify_ms(200, first_sight=True)
    print(f"classifying one asset's observations: {first_sight:.2f} ms median the first time "
          f"its strings are seen, {per_asset:.2f} ms when seen before")
    peak = scan_peak_rss_mb(env)
    print(f"sensor scan peak RSS (with nmap): {peak:.0f} MB" if peak is not None
          else "sensor scan peak RSS: not measured (needs root for the lab)")
    rate, capture_rss = capture_reading(env)
    print(f"reading a capture (scan --pcap, {CAPTURE_FRAMES:,} frames): {rate:,.0f} frames/s, "
          f"peak RSS {capture_rss:.0f} MB")
    (HERE / "fingerprints.json").write_text(json.dumps({
        "pcap_frames_per_s": round(rate), "pcap_peak_rss_mb": round(capture_rss, 1),
        "load_s": round(loaded, 3), "load_without_cache_s": round(cold, 3),
        "recog_fingerprints": fingerprints,
        "classify_ms_per_asset": round(per_asset, 3),
        "classify_ms_per_asset_first_sight": round(first_sight, 3),
        "scan_peak_rss_mb": round(peak, 1) if peak is not None else None}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

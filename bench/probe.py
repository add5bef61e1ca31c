"""Run one netvagt probe inside a lab namespace and print what it found, as JSON.

    python -m bench.probe arp --iface eth0
    python -m bench.probe tcp --iface eth0 --targets 10.50.0.10-10.50.0.29 --ports 22,80
Used by ``bench.run``; the wall time around the whole process is what the benchmark compares.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from scanners.netinfo import interface
from scanners.ports import PROFILES
from scanners.rate import RateLimiter
from scanners.scope import Scope, parse_target


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("arp", "tcp"))
    parser.add_argument("--iface", default="eth0")
    parser.add_argument("--targets")
    parser.add_argument("--ports", default="")
    parser.add_argument("--global-pps", type=float, default=PROFILES["standard"].global_pps)
    parser.add_argument("--host-pps", type=float, default=PROFILES["standard"].host_pps)
    parser.add_argument("--host-concurrency", type=int,
                        default=PROFILES["standard"].host_concurrency)
    args = parser.parse_args(argv)
    iface = interface(args.iface)
    scope = Scope.from_strings([iface.cidr])
    limiter = RateLimiter(global_pps=args.global_pps, host_pps=args.host_pps)
    if args.kind == "arp":
        from scanners.arp import arp_sweep_sync  # scapy: imported only where it is used
    started = time.monotonic()
    if args.kind == "arp":
        targets = [str(ip) for ip in iface.network.iter_hosts() if str(ip) != iface.ip]
        replies = arp_sweep_sync(targets, iface=iface, scope=scope, limiter=limiter)
        found: object = sorted(r.ip for r in replies)
    else:
        from scanners.tcp import ProbeOptions, probe_ports

        targets = [str(ip) for ip in parse_target(args.targets)]
        ports = [int(p) for p in args.ports.split(",") if p]
        results = asyncio.run(probe_ports(
            targets, tcp_ports=ports, scope=scope, limiter=limiter,
            options=ProbeOptions(host_concurrency=args.host_concurrency, banner_wait_s=0.0)))
        found = sorted(f"{r.ip}:{r.port}" for r in results if r.state == "open")
    print(json.dumps({"found": found, "inner_s": time.monotonic() - started}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

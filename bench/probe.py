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


async def _identify(iface: object, scope: Scope, limiter: RateLimiter,
                    args: argparse.Namespace) -> dict[str, dict[str, object]]:
    """Port probe with banners, then the targeted probes, then the rules: who is who."""
    from fingerprints.classify import Observation, classify
    from scanners.identify import identify
    from scanners.tcp import ProbeOptions, probe_ports

    targets = [str(ip) for ip in parse_target(args.targets)]
    ports = [int(p) for p in args.ports.split(",") if p]
    results = await probe_ports(targets, tcp_ports=ports, scope=scope, limiter=limiter,
                                options=ProbeOptions(banner_wait_s=0.3))
    open_ports: dict[str, list[int]] = {}
    banners = {}
    for r in results:
        if r.state == "open":
            open_ports.setdefault(r.ip, []).append(r.port)
            if r.banner:
                banners[(r.ip, r.port)] = r.banner
    observed = await identify(open_ports, banners=banners, scope=scope)
    return {ip: classify([Observation(key=k, value=v, source=s) for k, v, s in found]).to_dict()
            for ip, found in observed.items()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("arp", "tcp", "identify", "reach"))
    parser.add_argument("--stateless", action="store_true", help="reach: SYN probes")
    parser.add_argument("--connect", action="store_true", help="reach: connect probes")
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
    elif args.kind == "identify":
        found = asyncio.run(_identify(iface, scope, limiter, args))
    elif args.kind == "reach":
        from scanners.reach import Target, probe_reach

        tcp = tuple(int(p) for p in args.ports.split(",") if p)
        plan = [Target(ip=str(ip), tcp=tcp, icmp=False) for ip in parse_target(args.targets)]
        reached = asyncio.run(probe_reach(plan, scope=Scope.from_strings(["10.50.0.0/16"]),
                                          global_pps=5000, host_pps=100, timeout_s=2.0,
                                          stateless=args.stateless))
        found = sorted(f"{r.ip}:{r.port}" for r in reached if r.state == "reachable")
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

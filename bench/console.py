"""The console's speed on a large inventory: 100,000 assets and 10,000 violations over 20
organisations, each page as HTML and through the API, as a real client sees it over HTTP.

    ./dev bench --console        (or: .venv/bin/python -m bench.console)

It seeds a fresh SQLite inventory in a temporary folder (the schema by the central's own
migrations, the rows in bulk), writes one zone policy per organisation, starts
``netvagt-central web`` on a free loopback port as its own process, and asks each page a
bounded number of times, for a municipality's reviewer (one organisation, 5,000 assets) and
for a user of all twenty (a shared-service CERT). It prints median and p95 per page and
writes ``bench/console.json``. No network beyond loopback; nothing is probed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from agent import signing, wire
from central import registry, users
from central.db import open_db
from central.lab.webapp import running

HERE = Path(__file__).parent
PASSWORD = "benchmark-password"  # noqa: S105 - a throwaway inventory's
ZONES = ("admin", "office", "cameras", "bms", "guest")
KINDS = ("camera", "printer", "plc", "bms_controller", "workstation", "voip_phone", "nas",
         "switch")
VENDORS = ("Axis", "Hikvision", "HP", "Schneider Electric", "Siemens", "Danfoss", "Cisco",
           "Kamstrup", "Grundfos", "Synology")
VIOLATION_KINDS = ("unexpected_flow", "misplaced_device", "insecure_service",
                   "unknown_device", "management_exposure", "vulnerable_device")


def _org(n: int) -> str:
    return f"kommune-{n:02d}"


def _ip(org: int, index: int) -> str:
    zone, host = divmod(index, 1000)
    return f"10.{org}.{zone * 4 + host // 250}.{host % 250 + 2}"


def seed(path: Path, *, orgs: int, assets: int, violations: int, seed_value: int = 7
         ) -> dict[str, Any]:
    """The inventory; returns what the requests need (ids per organisation)."""
    rnd = random.Random(seed_value)
    db = open_db(path)
    now = datetime.now(UTC)
    per_org, v_per_org = assets // orgs, violations // orgs
    chosen: dict[str, Any] = {"assets": {}, "violations": {}}
    asset_id = 0
    for o in range(orgs):
        org = _org(o)
        registry.ensure_org(db, org)
        site_id = registry.ensure_site(db, org, "raadhus")
        for zone in ZONES:
            registry.ensure_zone(db, site_id, zone)
            key = signing.generate_private_key()
            registry.add_sensor(db, sensor=f"s-{o:02d}-{zone}", org=org, site="raadhus",
                                public_jwk=signing.public_jwk(key), zone=zone)
        asset_rows, addresses, services, states, events = [], [], [], [], []
        first_ids = []
        for i in range(per_org):
            asset_id += 1
            first_ids.append(asset_id)
            kind, vendor = KINDS[i % len(KINDS)], VENDORS[rnd.randrange(len(VENDORS))]
            high, low = divmod(i, 256)
            mac = (f"02:{o:02x}:{high:02x}:{low:02x}:{rnd.randrange(256):02x}:"
                   f"{rnd.randrange(256):02x}")
            first = wire.format_ts(now - timedelta(days=rnd.randrange(400)))
            last = wire.format_ts(now - timedelta(hours=rnd.randrange(72)))
            ip = _ip(o, i)
            asset_rows.append((asset_id, site_id, f"mac:{mac}", mac, vendor, f"host-{o}-{i}",
                               first, last, kind, vendor, f"M-{i % 97}", f"{i % 9}.{i % 13}",
                               0.9, json.dumps([{"key": "http.title", "value": f"{vendor} {kind}",
                                                 "source": "rules"}])))
            addresses.append((asset_id, ip, "probed", first, last, f"s-{o:02d}-{ZONES[0]}"))
            for port, name in ((80, "http"), (443, "https"), (22, "ssh"))[:1 + i % 3]:
                services.append((asset_id, ip, "tcp", port, "open", name, f"{vendor} httpd",
                                 "1.0", None, f"Server: {vendor}", "nmap", first, last))
            zone = ZONES[i // (per_org // len(ZONES) or 1) % len(ZONES)]
            states.append((asset_id, json.dumps({"zones": [zone], "device_type": kind,
                                                 "addresses": [ip]}), last))
            events.append((first, "device.new", "low", org, "raadhus", zone,
                           f"new {kind} {ip}", "{}", asset_id))
        db.execute("BEGIN IMMEDIATE")
        db.conn.executemany(
            "INSERT INTO assets (id, site_id, identity, mac, mac_vendor, hostname, first_seen,"
            " last_seen, device_type, vendor, model, version, identity_confidence,"
            " identity_evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", asset_rows)
        db.conn.executemany("INSERT INTO addresses (asset_id, ip, kind, first_seen, last_seen,"
                       " last_sensor) VALUES (?, ?, ?, ?, ?, ?)", addresses)
        db.conn.executemany("INSERT INTO services (asset_id, ip, proto, port, state, name, product,"
                       " version, extrainfo, banner, source, first_seen, last_seen) VALUES"
                       " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", services)
        db.conn.executemany("INSERT INTO asset_states (asset_id, state, updated_at) VALUES"
                       " (?, ?, ?)", states)
        db.conn.executemany("INSERT INTO events (at, kind, severity, org, site, zone, title, data,"
                       " asset_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", events)
        flagged = rnd.sample(first_ids, v_per_org)
        v_rows = []
        for n, aid in enumerate(flagged):
            kind = VIOLATION_KINDS[n % len(VIOLATION_KINDS)]
            at = wire.format_ts(now - timedelta(days=rnd.randrange(60)))
            status = ("open", "open", "open", "acknowledged", "accepted", "resolved")[n % 6]
            v_rows.append((f"{org}|{kind}|{aid}", kind, ("low", "medium", "high",
                                                         "critical")[n % 4],
                           "raadhus", ZONES[n % len(ZONES)], ZONES[(n + 1) % len(ZONES)], aid,
                           f"{kind} on asset {aid}", json.dumps([{"ip": _ip(o, n),
                                                                  "port": 23}]),
                           "network segmentation", status,
                           "2099-01-01T00:00:00Z" if status == "accepted" else None, at, at,
                           org))
        db.conn.executemany(
            "INSERT INTO violations (key, kind, severity, site, zone, other_zone, asset_id,"
            " title, evidence, nis2, status, accepted_until, first_seen, last_seen, org)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", v_rows)
        db.execute("INSERT INTO violation_events (violation_id, at, actor, old_status,"
                   " new_status, reason) SELECT id, first_seen, 'netvagt', NULL, 'open',"
                   " 'found' FROM violations WHERE org = ?", [org])
        _reach(db, rnd, o, now)
        db.execute("COMMIT")
        chosen["assets"][org] = rnd.sample(first_ids, 20)
        chosen["violations"][org] = [r[0] for r in db.execute(
            "SELECT id FROM violations WHERE org = ? ORDER BY random() LIMIT 20", [org])]
    db.execute("ANALYZE")
    users.add_user(db, "reviewer", PASSWORD, role="reviewer", orgs=[_org(0)])
    users.add_user(db, "cert", PASSWORD, role="reviewer", orgs=[_org(o) for o in range(orgs)])
    chosen["tokens"] = {name: users.create_token(db, name, name="bench")
                        for name in ("reviewer", "cert")}
    db.close()
    return chosen


def _reach(db: Any, rnd: random.Random, o: int, now: datetime) -> None:
    """Seven nights of plans per sensor, each with its probes' results."""
    for night in range(7):
        issued = wire.format_ts(now - timedelta(days=night))
        for zone in ZONES:
            sensor = f"s-{o:02d}-{zone}"
            plan = f"p-{o}-{zone}-{night}"
            db.execute("INSERT INTO plans (id, sensor_id, zone, issued_at, expires_at, targets,"
                       " token) VALUES (?, ?, ?, ?, ?, 40, 'x')", [plan, sensor, zone, issued,
                                                                  issued])
            rows = []
            for z, _ in enumerate(ZONES):
                for k in range(40):
                    port = (22, 80, 443, 445, 502, 3389, 161, 23)[k % 8]
                    rows.append((plan, sensor, "m", _ip(o, z * 1000 + k), "tcp", port,
                                 "reachable" if rnd.random() < 0.2 else "filtered", 1.0,
                                 issued))
            db.conn.executemany("INSERT INTO reach (plan_id, sensor_id, msg_id, ip, proto, port,"
                           " state, rtt_ms, observed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           rows)


def policy_text(o: int) -> str:
    zones = "".join(
        f'[[zone]]\nname = "{zone}"\ncidrs = ["10.{o}.{z * 4}.0/22"]\n'
        f'allowed_types = ["{KINDS[z]}"]\n' for z, zone in enumerate(ZONES))
    return (f'org = "{_org(o)}"\n[[site]]\nname = "raadhus"\n{zones}'
            '[[flow]]\nfrom = "admin"\nto = "bms"\nproto = "tcp"\nports = [22, 443]\n')


def _timed(client: httpx.Client, path: str, headers: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    answer = client.get(path, headers=headers)
    took = (time.perf_counter() - start) * 1000
    if answer.status_code != 200:
        raise RuntimeError(f"{path}: HTTP {answer.status_code}: {answer.text[:200]}")
    return took


def measure(base: str, chosen: dict[str, Any], *, rounds: int) -> list[dict[str, Any]]:
    results = []
    for who, org in (("reviewer", _org(0)), ("cert", _org(0))):
        client = httpx.Client(base_url=base, timeout=60)
        form = client.get("/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert csrf is not None
        done = client.post("/login", data={"username": who, "password": PASSWORD,
                                           "csrf_token": csrf.group(1)})
        if done.status_code not in (200, 303):
            raise RuntimeError(f"login as {who}: HTTP {done.status_code}")
        bearer = {"Authorization": f"Bearer {chosen['tokens'][who]}"}
        assets, vios = chosen["assets"][org], chosen["violations"][org]
        pages = {
            "asset list, filtered": ("/assets?zone=cameras&vendor=axis",
                                     "/api/assets?zone=cameras&vendor=axis"),
            "asset list, all": ("/assets", "/api/assets"),
            "violation queue": ("/violations", "/api/violations"),
            "asset detail": ("/assets/{a}", "/api/assets/{a}"),
            "violation detail": ("/violations/{v}", "/api/violations/{v}"),
            "zone matrix": (f"/matrix?org={org}", f"/api/matrix?org={org}"),
            "overview / events": ("/", "/api/events?since=2999-01-01"),
        }
        for page, (html, api) in pages.items():
            for form_, path in (("html", html), ("api", api)):
                _timed(client, path.format(a=assets[0], v=vios[0]),
                       bearer if form_ == "api" else None)  # warm
                times = [_timed(client, path.format(a=assets[i % len(assets)],
                                                    v=vios[i % len(vios)]),
                                bearer if form_ == "api" else None) for i in range(rounds)]
                times.sort()
                results.append({"user": who, "page": page, "as": form_, "n": rounds,
                                "median_ms": round(statistics.median(times), 1),
                                "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1)})
        client.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orgs", type=int, default=20)
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--violations", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=40, help="requests per page and form")
    parser.add_argument("--out", type=Path, default=HERE / "console.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="netvagt-bench-console-") as folder:
        work = Path(folder)
        started = time.perf_counter()
        chosen = seed(work / "central.db", orgs=args.orgs, assets=args.assets,
                      violations=args.violations)
        seeded = time.perf_counter() - started
        print(f"seeded {args.assets} assets, {args.violations} violations, {args.orgs} "
              f"organisations in {seeded:.1f} s", file=sys.stderr)
        policies = []
        for o in range(args.orgs):
            policies.append(work / f"policy-{o}.toml")
            policies[-1].write_text(policy_text(o))
        with running(work / "central.db", policies) as base:
            results = measure(base, chosen, rounds=args.rounds)
    print(f"{'user':<9} {'page':<22} {'as':<5} {'median ms':>10} {'p95 ms':>8}")
    for r in results:
        print(f"{r['user']:<9} {r['page']:<22} {r['as']:<5} {r['median_ms']:>10} "
              f"{r['p95_ms']:>8}")
    worst = max(r["p95_ms"] for r in results)
    print(f"worst p95: {worst} ms (aim: under 300 ms)")
    args.out.write_text(json.dumps({
        "when": wire.utc_now(), "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}", "orgs": args.orgs, "assets": args.assets,
        "violations": args.violations, "seed_s": round(seeded, 1), "results": results},
        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``netvagt-central``: the central inventory's command line. Each command is a thin shell:
it opens the database, calls one library function, and turns its errors into messages."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from agent import terminal
from central import inventory, registry, render
from central.db import InventoryError, open_db

if TYPE_CHECKING:
    from central.policy import Policy

DEFAULT_DB = Path(os.environ.get("NETVAGT_DB", "/var/lib/netvagt/central.db"))
DEFAULT_POLICY = Path(os.environ.get("NETVAGT_POLICY", "/etc/netvagt/policy.toml"))

Handler = Callable[[argparse.Namespace], int]
FORMATS = ("table", "json")  # of every command that lists or evaluates


def _db_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        type=Path,
        default=DEFAULT_DB,
        help=f"inventory database (default: {DEFAULT_DB}, or $NETVAGT_DB)",
    )


def cmd_init(args: argparse.Namespace) -> int:
    db = open_db(args.db)
    db.close()
    print(f"inventory ready at {args.db}")
    return 0


def _zone_known(args: argparse.Namespace) -> bool:
    """A --zone must be one of the policy's (when there is a policy to ask): a sensor in a
    zone the policy does not have is never planned for nor judged. Prints why not."""
    if not args.zone or (args.policy == DEFAULT_POLICY and not args.policy.exists()):
        return True
    policy = _policy(args)
    if policy is None:
        return False
    names = sorted({z.name for z in policy.zones if z.site == args.site} or
                   {z.name for z in policy.zones})
    if args.zone in names:
        return True
    print(f"netvagt-central: zone {args.zone!r} is not in {args.policy} for site {args.site!r}"
          f" (its zones: {', '.join(names) or 'none'})", file=sys.stderr)
    return False


def cmd_sensor_add(args: argparse.Namespace) -> int:
    if not _zone_known(args):
        return 2
    jwk_text = Path(args.public_key).read_text() if args.public_key != "-" else sys.stdin.read()
    db = open_db(args.db)
    try:
        registry.add_sensor(
            db, sensor=args.id, org=args.org, site=args.site, zone=args.zone,
            public_jwk=json.loads(jwk_text),
        )
    except (registry.RegistryError, json.JSONDecodeError) as exc:
        print(f"netvagt-central: cannot register sensor: {exc}", file=sys.stderr)
        return 2
    print(f"sensor {args.id} registered for {args.org} / {args.site}")
    return 0


def cmd_sensors(args: argparse.Namespace) -> int:
    db = open_db(args.db, create=False)
    rows = registry.sensors(db)
    if args.format == "json":
        print(json.dumps([render.record(r) for r in rows], indent=2))
    else:
        terminal.console().print(render.sensors_table(rows))
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from central.enroll import EnrollmentError, create_token

    if not _zone_known(args):
        return 2
    db = open_db(args.db)
    try:
        token = create_token(db, org=args.org, site=args.site, zone=args.zone,
                             ttl=timedelta(hours=args.ttl_hours))
    except (EnrollmentError, registry.RegistryError) as exc:
        print(f"netvagt-central: cannot create a token: {exc}", file=sys.stderr)
        return 2
    print(token)
    print(f"one use, valid {args.ttl_hours:g} h, for {args.org} / {args.site}"
          f"{' / ' + args.zone if args.zone else ''}; on the sensor: "
          f"sudo netvagt-agent enroll --central HOST --token {token}", file=sys.stderr)
    return 0


def cmd_sensor_revoke(args: argparse.Namespace) -> int:
    from central.enroll import EnrollmentError, revoke

    db = open_db(args.db, create=False)
    try:
        revoke(db, args.id)
    except EnrollmentError as exc:
        print(f"netvagt-central: {exc}", file=sys.stderr)
        return 2
    print(f"sensor {args.id} revoked: its messages are refused from now on; the running "
          "service removes its broker access")
    return 0


def cmd_sensor_scan(args: argparse.Namespace) -> int:
    db = open_db(args.db, create=False)
    try:
        registry.queue_scan(db, args.id, profile=args.profile,
                            valid=timedelta(minutes=args.valid_minutes), issued_by=operator())
    except registry.RegistryError as exc:
        print(f"netvagt-central: {exc}", file=sys.stderr)
        return 2
    sensor = next(s for s in registry.sensors(db) if s.id == args.id)
    if not sensor.listening:  # the service sends only to a listening daemon
        said = (f"said offline at {sensor.last_status_at}" if sensor.state
                else "has not said it is running")
        print(f"scan command for {args.id} queued; its daemon {said}: the running service "
              f"sends the command once it connects, if within {args.valid_minutes:g} minutes")
    else:
        print(f"scan command for {args.id} queued; the running service signs and sends it")
    return 0


def cmd_key(args: argparse.Namespace) -> int:
    from agent import signing
    from central.keys import key_path_for, load_or_create

    key = load_or_create(args.key or key_path_for(args.db))
    print(json.dumps(signing.public_jwk(key)))
    return 0


def cmd_inventory_import(args: argparse.Namespace) -> int:
    from central.approved import ApprovedListError, import_file

    db = open_db(args.db)
    try:
        count = import_file(db, args.file, org=args.org, site=args.site)
    except (ApprovedListError, registry.RegistryError) as exc:
        for line in str(exc).splitlines():
            print(f"netvagt-central: {line}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"netvagt-central: {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"{count} approved asset(s) for {args.org} / {args.site}; the next evaluation "
          "reports devices on none of them as unapproved_device")
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from agent import wire
    from central import events
    from central.violations import ReviewError, parse_when

    db = open_db(args.db, create=False)
    try:
        since = parse_when(args.since) if args.since else wire.format_ts(
            datetime.now(UTC) - timedelta(days=7))
    except ReviewError as exc:
        print(f"netvagt-central: --since: {exc}", file=sys.stderr)
        return 2
    kinds = tuple(k for k in events.KINDS if k.startswith("device.")) \
        if args.command == "changes" else ()
    found = events.listed(db, since=since, org=args.org, site=args.site, kinds=kinds,
                          asset_id=args.asset)
    if args.format == "json":
        print(json.dumps([e.to_dict() for e in found], indent=2, ensure_ascii=False))
    else:
        terminal.console().print(render.events_table(found, title=f"{args.command} since {since}"))
    return 0


def cmd_notify(args: argparse.Namespace) -> int:
    from central import notify

    try:
        config = notify.load(args.config)
    except notify.NotifyError as exc:
        for line in str(exc).splitlines():
            print(f"netvagt-central: {line}", file=sys.stderr)
        return 2
    if args.subcommand == "check":
        print(f"{args.config}: {len(config.channels)} channel(s), {len(config.routes)} "
              f"route(s), digest to {', '.join(config.digest.channels) or 'nobody'}")
        return 0
    db = open_db(args.db, create=False)
    done = notify.notify_round(db, config)
    print(json.dumps({**done, "queue": notify.queue_state(db)}, indent=2))
    return 0


def cmd_vulns(args: argparse.Namespace) -> int:
    from central import vulns

    action = args.subcommand
    db = open_db(args.db, create=action in ("import", "update"))
    try:
        if action == "import":
            results = [vulns.import_file(db, path) for path in args.files]
        elif action == "update":
            results = vulns.update(db, folder=args.folder or Path(args.db).parent / "vulns")
    except vulns.FeedError as exc:
        print(f"netvagt-central: {exc}", file=sys.stderr)
        return 2
    if action in ("import", "update"):
        for result in results:
            ranges = f", {result['ranges']} vulnerable CPE ranges" if "ranges" in result else ""
            print(f"{result['file']}: {result['kind'].upper()}, {result['cves']} CVEs{ranges}")
        counts = vulns.match(db)
        print(f"matched: {counts['affected']} affected and {counts['possibly_affected']} "
              f"possibly affected, on {counts['assets']} asset(s); the next evaluation reports "
              "them as vulnerable_device")
        return 0
    if action == "status":
        state = vulns.status(db)
        print(json.dumps(state, indent=2) if args.format == "json" else
              "\n".join(f"{k}: {v}" for k, v in state.items()))
        return 0
    found = vulns.of_assets(db)
    rows = {a.id: a for a in inventory.assets(db)}
    listing = [{"asset": asset_id, "addresses": list(rows[asset_id].addresses)
                if asset_id in rows else [], **v}
               for asset_id, items in found.items() for v in items]
    if args.format == "json":
        print(json.dumps(listing, indent=2))
    else:
        terminal.console().print(render.vulns_table(listing))
    return 0


def cmd_fingerprints(args: argparse.Namespace) -> int:
    from fingerprints.databases import command

    return command(args, prog="netvagt-central")


def cmd_serve(args: argparse.Namespace) -> int:
    from central.service import BrokerConfig, serve

    if not args.round >= 1:  # a round is a transaction over the inventory: not a busy loop
        print(f"netvagt-central: --round {args.round}: at least 1 second", file=sys.stderr)
        return 2
    password = (args.password_file.read_text().strip() if args.password_file
                else os.environ.get("NETVAGT_MQTT_PASSWORD"))
    broker = BrokerConfig(host=args.broker_host, port=args.broker_port, username=args.username,
                          password=password, manage_access=args.manage_access)

    async def until_signalled() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        ingestor = await serve(args.db, broker, key_path=args.key, stop=stop,
                               policy_path=args.policy, notify_path=args.notify,
                               max_clock_skew=timedelta(seconds=args.max_clock_skew),
                               policy_round_s=args.round)
        logging.getLogger("netvagt.central").info("stopped; this run: %s", dict(ingestor.counts))

    asyncio.run(until_signalled())
    return 0


def cmd_assets(args: argparse.Namespace) -> int:
    db = open_db(args.db, create=False)
    rows = inventory.assets(db, site=args.site)
    if args.format == "json":
        print(inventory.assets_json(rows))
    elif args.format == "csv":
        sys.stdout.write(inventory.assets_csv(rows))
    else:
        print_assets(rows)
    return 0


def print_assets(rows: list[inventory.AssetRow], console: Console | None = None) -> None:
    """The inventory as a terminal table; every device-supplied text is escaped."""
    (console or terminal.console()).print(render.assets_table(rows))


def cmd_stats(args: argparse.Namespace) -> int:
    from central.ingest import counts, recent_rejections

    db = open_db(args.db, create=False)
    tally = counts(db)
    recent = recent_rejections(db, args.recent)
    if args.format == "json":
        print(json.dumps({"counts": tally, "recent_rejections": recent}, indent=2))
        return 0
    console = terminal.console()
    console.print(render.counts_table(tally))
    for row in recent:
        console.print(escape(f"{row['at']} {row['reason']} sensor={row['sensor']} {row['detail']}"))
    return 0


def _policy(args: argparse.Namespace) -> Policy | None:
    """The zone policy, or None after printing every problem with file and line."""
    from central.policy import PolicyError, load

    try:
        return load(args.policy)
    except PolicyError as exc:
        for problem in exc.problems:
            print(f"netvagt-central: {problem}", file=sys.stderr)
        return None


def cmd_policy_check(args: argparse.Namespace) -> int:
    policy = _policy(args)
    if policy is None:
        return 2
    if args.format == "json":
        print(json.dumps(render.policy_json(policy, str(args.policy)), indent=2))
        return 0
    print(f"{args.policy}: {len(policy.zones)} zones in {len(policy.sites)} site(s), "
          f"{len(policy.flows)} flow rules; everything else between zones is denied")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from central.keys import key_path_for, load_or_create
    from central.plans import PlanError, issue_plan, sensor_zones

    policy = _policy(args)
    if policy is None:
        return 2
    db = open_db(args.db, create=False)
    key = load_or_create(args.key or key_path_for(args.db))
    sensors = args.sensor or registry.active_sensors(db)
    if args.out is not None:  # before a plan is recorded as handed over by file
        folder = args.out if len(sensors) != 1 or args.out.is_dir() else args.out.parent
        if not folder.is_dir():
            print(f"netvagt-central: {folder} is not a folder (create it first)", file=sys.stderr)
            return 2
    issued = []
    stands = sensor_zones(db, policy)
    # a sensor on a trunk stands in several zones: one plan for each
    work: list[tuple[str, str | None, bool]] = [
        (sensor, zone, len(stands.get(sensor, [])) > 1) for sensor in sensors
        for zone in ([z.name for z in stands[sensor]] if sensor in stands else [None])]
    for sensor, zone, several in work:
        try:
            plan, token = issue_plan(db, policy, sensor, key, by_hand=args.out is not None,
                                     zone=zone)
        except PlanError as exc:
            print(f"netvagt-central: {exc}", file=sys.stderr)
            return 2
        path = None
        if args.out:
            name = f"{sensor}-{zone}.jws" if several else f"{sensor}.jws"
            path = args.out / name if args.out.is_dir() else args.out
            path.write_bytes(token + b"\n")
            where = f"written to {path} (the service will not send it as well)"
        else:
            where = "queued; the running service sends it to the sensor"
        issued.append({"plan": plan.id, "sensor": sensor, "zone": plan.zone,
                       "targets": len(plan.targets), "file": str(path) if path else None})
        if args.format != "json":
            print(f"plan {plan.id} for {sensor} (zone {plan.zone}): {len(plan.targets)} "
                  f"targets; {where}")
    if args.format == "json":
        print(json.dumps(issued, indent=2))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from central.violations import evaluate

    policy = _policy(args)
    if policy is None:
        return 2
    db = open_db(args.db, create=False)
    changes = evaluate(db, policy)
    if args.format == "json":
        print(json.dumps(changes, indent=2))
    else:
        print(", ".join(f"{k}: {v}" for k, v in changes.items()))
    return 0


def cmd_violations(args: argparse.Namespace) -> int:
    from central.violations import ACTIVE, STATUSES, violations

    statuses = STATUSES if args.status == "all" else ACTIVE if args.status is None else (
        args.status,)
    db = open_db(args.db, create=False)
    rows = violations(db, statuses=statuses, zone=args.zone, kind=args.kind, site=args.site)
    if args.format == "json":
        print(json.dumps([render.record(r) for r in rows], indent=2, ensure_ascii=False))
    else:
        terminal.console().print(render.violations_table(rows))
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from central.violations import ReviewError, review

    db = open_db(args.db, create=False)
    reviewer = args.reviewer or operator()
    try:
        changed = review(db, args.ids, action=args.action, reviewer=reviewer,
                         reason=args.reason or "", until=args.until)
    except ReviewError as exc:
        print(f"netvagt-central: {exc}", file=sys.stderr)
        return 2
    unchanged = [i for i in args.ids if i not in changed]
    if args.format == "json":
        print(json.dumps({"action": args.action, "reviewer": reviewer, "changed": changed,
                          "unchanged": unchanged}, indent=2))
        return 0
    if changed:
        print(f"{args.action}: violation(s) {', '.join(map(str, changed))} by {reviewer}")
    if unchanged:
        print(f"no change: violation(s) {', '.join(map(str, unchanged))} already so decided")
    return 0


def operator() -> str:
    """Who runs this command, for the audit trail: the person behind sudo, else the OS
    account (never 'unknown': a review without a who is not an audit trail)."""
    import getpass
    import pwd

    behind_sudo = os.environ.get("SUDO_USER")
    if behind_sudo:
        return behind_sudo
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return getpass.getuser()


def cmd_matrix(args: argparse.Namespace) -> int:
    from central.matrix import matrix

    policy = _policy(args)
    if policy is None:
        return 2
    db = open_db(args.db, create=False)
    cells = matrix(db, policy)
    if args.format == "json":
        print(json.dumps(render.matrix_json(cells), indent=2))
    else:
        terminal.console().print(render.matrix_table(cells, policy))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from central.exports import export

    policy = None
    if args.policy.exists() or args.policy != DEFAULT_POLICY:
        policy = _policy(args)
        if policy is None:
            return 2
    data = export(open_db(args.db, create=False), args.what, args.format, policy=policy,
                  site=args.site, zone=args.zone, language=args.lang, status=args.status,
                  by=operator())
    if args.out:
        args.out.write_bytes(data)
        print(f"{args.what} written to {args.out} ({len(data)} bytes)", file=sys.stderr)
    elif args.format == "xlsx" and sys.stdout.isatty():
        print("netvagt-central: XLSX is binary: give --out FILE", file=sys.stderr)
        return 2
    else:
        sys.stdout.buffer.write(data)
    return 0


def cmd_ownership(args: argparse.Namespace) -> int:
    from central import ownership

    db = open_db(args.db, create=False)
    action = f"{args.command} {args.subcommand}"
    try:
        if action == "asset set":
            ownership.set_asset(db, args.id, owner=args.owner, tags=args.tag, notes=args.notes,
                                by=args.by or operator())
            print(f"asset {args.id} updated by {args.by or operator()}")
        elif action == "owner add-rule":
            policy = _policy(args) if args.zone else None
            if args.zone and policy is None:
                return 2
            rule = ownership.add_rule(db, owner=args.owner, tags=args.tag, zone=args.zone,
                                      cidr=args.cidr, policy=policy, org=args.org,
                                      by=args.by or operator())
            print(f"owner rule {rule} added")
        elif action == "owner remove-rule":
            ownership.remove_rule(db, args.id, by=args.by or operator())
            print(f"owner rule {args.id} removed")
        else:
            found = [dataclasses.asdict(r) for r in ownership.rules(db)]
            if args.format == "json":
                print(json.dumps(found, indent=2, ensure_ascii=False))
            else:
                for item in found:
                    where = f"zone {item['zone']}" if item["zone"] else f"cidr {item['cidr']}"
                    where += f" of {item['org']}" if item["org"] else ""
                    print(f"{item['id']}: {where} -> {item['owner'] or '-'} "
                          f"{' '.join('#' + t for t in item['tags'])}")
    except ownership.OwnershipError as exc:
        print(f"netvagt-central: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_user(args: argparse.Namespace) -> int:
    import getpass

    from central import users

    db = open_db(args.db, create=False)
    try:
        if args.subcommand == "add":
            password = (args.password_file.read_text().strip() if args.password_file
                        else getpass.getpass(f"password for {args.name}: "))
            user = users.add_user(db, args.name, password, role=args.role, orgs=args.org,
                                  by=operator())
            print(f"user {user.username} ({user.role}) for {', '.join(sorted(user.orgs))}")
        else:
            print(users.create_token(db, args.name, name=args.token_name, days=args.days))
    except (users.UserError, OSError) as exc:
        print(f"netvagt-central: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    from central import policy as zone_policy
    from central.web import serve

    open_db(args.db, create=False).close()  # a clear error for a missing inventory
    for path in args.policy or ():
        try:
            zone_policy.load(path)
        except (zone_policy.PolicyError, OSError) as exc:
            print(f"netvagt-central: {exc}", file=sys.stderr)
            return 2
    serve(args.db, host=args.host, port=args.port, secure_cookies=not args.insecure_cookies,
          policy_path=args.policy)
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    from central import register

    db = open_db(args.db, create=False)
    try:
        register.assess(db, args.id, register.Assessment(
            likelihood=args.likelihood, consequence=args.consequence, measure=args.measure,
            responsible=args.responsible, deadline=args.deadline), by=args.by or operator())
    except register.RegisterError as exc:
        print(f"netvagt-central: {exc}", file=sys.stderr)
        return 2
    print(f"register row {args.id} updated by {args.by or operator()}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from central.lab.demo import run_demo

    return run_demo(keep_db=args.db_out, sensors=args.sensors,
                    serve_console=sys.stdout.isatty() and not args.no_console)


COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("create or upgrade the inventory database",
             "netvagt-central init --db /var/lib/netvagt/central.db"),
    "fingerprints status": ("the fingerprint databases in use, with their releases",
                            "netvagt-central fingerprints status"),
    "fingerprints import": ("install the pinned recog release from a copy (offline machines)",
                            "netvagt-central fingerprints import /media/usb/recog-3.1.28"),
    "fingerprints update": ("move to another recog release, checked against its pins",
                            "netvagt-central fingerprints update DIR --release v3.1.29 "
                            "--pins recog-v3.1.29.sha256"),
    "inventory import": ("load the municipality's approved assets (CSV: mac, address, owner, "
                         "type); a device on none of its lines is an unapproved_device",
                         "netvagt-central inventory import godkendte.csv --org aarhus "
                         "--site raadhuset"),
    "sensor add": ("register a sensor and its public key (a JWK file from netvagt-agent keygen)",
                   "netvagt-central sensor add --id s-admin --org aarhus --site city-hall "
                   "--public-key s-admin.jwk"),
    "sensors": ("list registered sensors", "netvagt-central sensors"),
    "token create": ("issue a one-time enrollment token for a site and zone",
                     "netvagt-central token create --org aarhus --site raadhuset --zone admin"),
    "sensor revoke": ("revoke a sensor: its messages are refused and its broker access removed",
                      "netvagt-central sensor revoke s-admin-3f2a1c"),
    "sensor scan": ("ask a sensor to scan now (a signed command), optionally with a profile",
                    "netvagt-central sensor scan s-admin-3f2a1c --profile safe"),
    "key": ("print the central's public key (JWK) for the sensors' configuration; "
            "creates the key on first use",
            "netvagt-central key > central.jwk"),
    "serve": ("verify and store findings from the broker until stopped",
              "netvagt-central serve --broker-host 127.0.0.1 --broker-port 1883"),
    "assets": ("list the inventory", "netvagt-central assets --format csv > assets.csv"),
    "stats": ("messages accepted and rejected, by reason", "netvagt-central stats"),
    "demo": ("build a simulated municipal network, scan it, print the inventory (root)",
             "sudo netvagt-central demo"),
    "policy check": ("validate a zone policy file; every problem with its line",
                     "netvagt-central policy check --policy /etc/netvagt/policy.toml"),
    "plan": ("sign a probe plan for each sensor (targets in the other zones of its site)",
             "netvagt-central plan --sensor s-admin"),
    "evaluate": ("turn the latest scans and probes into violations of the zone policy",
                 "netvagt-central evaluate --policy /etc/netvagt/policy.toml"),
    "violations": ("list violations (default: open and acknowledged)",
                   "netvagt-central violations --zone cameras --kind unexpected_flow"),
    "review": ("acknowledge, accept (with expiry and reason), mark false positive, or reopen",
               "netvagt-central review 12 --action accept --until 2027-03-31 "
               "--reason 'replaced in Q1'"),
    "matrix": ("the zone-by-zone reachability matrix: what the policy allows, what was reached",
               "netvagt-central matrix"),
    "export": ("export assets, violations or the risk register (CSV, XLSX, JSON)",
               "netvagt-central export register --format xlsx --lang da --out register.xlsx"),
    "asset set": ("set an asset's owner, tags or notes (an empty value clears it)",
                  "netvagt-central asset set 42 --owner 'Teknik og Miljø' --tag varme"),
    "owner add-rule": ("give every asset in a zone or CIDR an owner and tags (its own owner "
                       "wins; the longest CIDR wins among rules)",
                       "netvagt-central owner add-rule --zone bms --owner 'Ejendomme' "
                       "--tag bygningsdrift"),
    "owner rules": ("list the owner rules", "netvagt-central owner rules"),
    "owner remove-rule": ("remove an owner rule", "netvagt-central owner remove-rule 3"),
    "user add": ("create a console user with a role and organisations (the first admin too); "
                 "the password is asked for, or read from --password-file",
                 "netvagt-central user add anne --role reviewer --org aarhus"),
    "user token": ("an API token that acts as a user (printed once; it expires)",
                   "netvagt-central user token anne --name siem-import --days 90"),
    "web": ("serve the console and API (HTML pages and JSON, with an OpenAPI description)",
            "netvagt-central web --host 127.0.0.1 --port 8080"),
    "register set": ("set a risk-register row's likelihood, consequence, measure, "
                     "responsible person or deadline (kept across evaluations)",
                     "netvagt-central register set 12 --likelihood 2 --responsible 'IT-drift'"),
    "events": ("the event stream: violations found, reopened and resolved; devices new, gone "
               "and changed; sensors offline and back; exploited vulnerabilities",
               "netvagt-central events --since 2026-11-01 --org aarhus"),
    "changes": ("what changed on the devices (new, gone, changed), per asset or per site",
                "netvagt-central changes --since 2026-11-28 --site raadhuset"),
    "notify check": ("check a notification file: channels, routes, digest",
                     "netvagt-central notify check --config /etc/netvagt/notify.toml"),
    "notify run": ("one notification round now: route new events, make due digests, deliver",
                   "netvagt-central notify run --config /etc/netvagt/notify.toml"),
    "vulns import": ("import known vulnerabilities: CISA's KEV catalogue and NVD CVE records "
                     "(JSON 2.0, plain or .gz), then match them to the inventory",
                     "netvagt-central vulns import known_exploited_vulnerabilities.json "
                     "nvdcve-2.0-2025.json.gz"),
    "vulns update": ("fetch KEV and NVD's recent and modified feeds (a central with internet "
                     "access) and import them",
                     "netvagt-central vulns update"),
    "vulns status": ("what vulnerability data is imported, and how many assets it matches",
                     "netvagt-central vulns status"),
    "vulns list": ("the assets with known vulnerabilities: CVE, CVSS, KEV, affected or possibly",
                   "netvagt-central vulns list --format json"),
}


def build_parser() -> argparse.ArgumentParser:
    from central import exports
    from central.detectors import KINDS
    from central.violations import ACTIONS, STATUSES
    from scanners.ports import PROFILES

    parser = argparse.ArgumentParser(
        prog="netvagt-central",
        description="netvagt central: verify signed sensor findings and keep the inventory.",
        epilog="Example: netvagt-central assets --format table\n\n" + terminal.EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {terminal.version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    group_help = {"sensor": "manage sensors: add, revoke, scan now",
                  "token": "enrollment tokens: create",
                  "policy": "the zone policy: check",
                  "fingerprints": "fingerprint databases: status, import, update",
                  "inventory": "the approved assets: import",
                  "vulns": "known vulnerabilities: import, update, status, list",
                  "notify": "notifications: check the file, run one round now",
                  "register": "the risk register: set a row's assessment",
                  "asset": "one asset: set its owner, tags and notes",
                  "owner": "owner rules per zone or CIDR: add, list, remove",
                  "user": "console users and API tokens: add, token"}

    def add(name: str, handler: Handler) -> argparse.ArgumentParser:
        summary, example = COMMANDS[name]
        where, leaf = sub, name
        if " " in name:  # "sensor revoke": a command of the 'sensor' group
            group, leaf = name.split(" ", 1)
            if group not in groups:
                parent = sub.add_parser(group, help=group_help[group],
                                        description=group_help[group].capitalize() + ".",
                                        epilog=f"Example: {example}")
                groups[group] = parent.add_subparsers(dest="subcommand", required=True,
                                                      metavar="COMMAND")
            where = groups[group]
        p = where.add_parser(leaf, help=summary, description=summary.capitalize() + ".",
                             epilog=f"Example: {example}",
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=handler, _parser=p)
        return p

    _db_arg(add("init", cmd_init))
    p = add("vulns import", cmd_vulns)
    _db_arg(p)
    p.add_argument("files", type=Path, nargs="+", help="KEV JSON and NVD JSON 2.0 files")
    p = add("vulns update", cmd_vulns)
    _db_arg(p)
    p.add_argument("--folder", type=Path, help="where the fetched files are kept (default: "
                   "beside the database)")
    for action in ("status", "list"):
        p = add(f"vulns {action}", cmd_vulns)
        _db_arg(p)
        p.add_argument("--format", choices=("table", "json"), default="table")

    p = add("inventory import", cmd_inventory_import)
    _db_arg(p)
    p.add_argument("file", type=Path, help="CSV with a header: mac and/or address, owner, type")
    p.add_argument("--org", required=True)
    p.add_argument("--site", required=True, help="the site whose list the file replaces")
    from fingerprints.databases import RECOG_RELEASE

    for action in ("status", "import", "update"):
        p = add(f"fingerprints {action}", cmd_fingerprints)
        p.set_defaults(action=action)
        if action != "status":
            p.add_argument("source", type=Path, help="folder of a recog release")
        p.add_argument("--release", default=RECOG_RELEASE, help=f"default {RECOG_RELEASE}")
        if action == "update":
            p.add_argument("--pins", type=Path, required=True,
                           help="SHA-256 sums of the release's files")
        if action == "status":
            p.add_argument("--format", choices=FORMATS, default=FORMATS[0])
        p.set_defaults(**({"source": None, "pins": None} if action == "status"
                          else {"pins": None} if action == "import" else {}))

    p = add("sensor add", cmd_sensor_add)
    _db_arg(p)
    p.add_argument("--id", required=True, help="sensor id, e.g. s-admin")
    p.add_argument("--org", required=True, help="organisation id, e.g. aarhus")
    p.add_argument("--site", required=True, help="site name (its own address space)")
    p.add_argument("--zone", help="zone the sensor stands in (checked against --policy)")
    p.add_argument("--public-key", required=True, help="public JWK file, or - for stdin")
    p.add_argument("--policy", type=Path, default=DEFAULT_POLICY,
                   help=f"zone policy the zone must be in (default: {DEFAULT_POLICY}, if present)")

    p = add("sensors", cmd_sensors)
    _db_arg(p)
    p.add_argument("--format", choices=FORMATS, default=FORMATS[0])

    p = add("token create", cmd_token_create)
    _db_arg(p)
    p.add_argument("--org", required=True)
    p.add_argument("--site", required=True)
    p.add_argument("--zone", help="the zone the sensor will stand in (checked against --policy)")
    p.add_argument("--ttl-hours", type=float, default=24.0, help="validity (default 24 h)")
    p.add_argument("--policy", type=Path, default=DEFAULT_POLICY,
                   help=f"zone policy the zone must be in (default: {DEFAULT_POLICY}, if present)")

    p = add("sensor revoke", cmd_sensor_revoke)
    _db_arg(p)
    p.add_argument("id", help="sensor id")

    p = add("sensor scan", cmd_sensor_scan)
    _db_arg(p)
    p.add_argument("id", help="sensor id")
    p.add_argument("--profile", choices=list(PROFILES), help="scan profile")
    p.add_argument("--valid-minutes", type=float, default=60.0,
                   help="the sensor ignores the command after this long (default 60)")

    p = add("key", cmd_key)
    _db_arg(p)
    p.add_argument("--key", type=Path, help="the central's private key (default: beside --db)")

    p = add("serve", cmd_serve)
    _db_arg(p)
    p.add_argument("--key", type=Path, help="the central's private key (default: beside --db)")
    p.add_argument("--broker-host", default="127.0.0.1")
    p.add_argument("--broker-port", type=int, default=1883)
    p.add_argument("--username", help="MQTT user (password from --password-file or "
                   "$NETVAGT_MQTT_PASSWORD)")
    p.add_argument("--password-file", type=Path, help="file holding the MQTT password")
    p.add_argument("--manage-access", action="store_true",
                   help="administer per-sensor broker access with Mosquitto's dynamic security "
                   "plugin (--username must be its admin)")
    p.add_argument("--policy", type=Path, help="zone policy: after each sensor's scan, send it "
                   "a probe plan; evaluate new data every round (--round)")
    p.add_argument("--round", type=float, metavar="SECONDS", default=30.0,
                   help="how often the policy round runs: plans after the sensors' scans, "
                   "then an evaluation of what came in (default 30; at least 1)")
    p.add_argument("--max-clock-skew", type=float, metavar="SECONDS", default=600.0,
                   help="refuse findings stamped more than this far ahead of the central's "
                   "clock (default 600)")
    p.add_argument("--notify", type=Path, help="notification file: route events to webhooks, "
                   "syslog/CEF, e-mail and MISP; a digest per organisation each night")

    for name in ("events", "changes"):
        p = add(name, cmd_events)
        _db_arg(p)
        p.add_argument("--since", help="from this date or time (default: the last 7 days)")
        p.add_argument("--org")
        p.add_argument("--site")
        p.add_argument("--asset", type=int, help="one asset's history")
        p.add_argument("--format", choices=("table", "json"), default="table")
    p = add("notify check", cmd_notify)
    p.add_argument("--config", type=Path, default=Path("/etc/netvagt/notify.toml"))
    p = add("notify run", cmd_notify)
    _db_arg(p)
    p.add_argument("--config", type=Path, default=Path("/etc/netvagt/notify.toml"))

    p = add("assets", cmd_assets)
    _db_arg(p)
    p.add_argument("--format", choices=(*FORMATS, "csv"), default=FORMATS[0])
    p.add_argument("--site", help="only this site")

    p = add("stats", cmd_stats)
    _db_arg(p)
    p.add_argument("--format", choices=FORMATS, default=FORMATS[0])
    p.add_argument("--recent", type=int, default=10, help="how many recent rejections to show")

    def policy_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--policy", type=Path, default=DEFAULT_POLICY,
                       help=f"zone policy (default: {DEFAULT_POLICY}, or $NETVAGT_POLICY)")

    p = add("policy check", cmd_policy_check)
    policy_arg(p)
    p.add_argument("--format", choices=FORMATS, default=FORMATS[0])

    p = add("plan", cmd_plan)
    _db_arg(p)
    policy_arg(p)
    p.add_argument("--sensor", action="append", help="only this sensor; repeatable "
                   "(default: every active sensor)")
    p.add_argument("--key", type=Path, help="the central's private key (default: beside --db)")
    p.add_argument("--out", type=Path, help="write the signed plan to this file (a directory "
                   "for several sensors) for 'netvagt-agent reach --plan'")
    p.add_argument("--format", choices=FORMATS, default=FORMATS[0])

    p = add("evaluate", cmd_evaluate)
    _db_arg(p)
    policy_arg(p)
    p.add_argument("--format", choices=FORMATS, default=FORMATS[0])

    p = add("violations", cmd_violations)
    _db_arg(p)
    p.add_argument("--status", choices=("all", *STATUSES),
                   help="default: open and acknowledged")
    p.add_argument("--zone", help="involving this zone")
    p.add_argument("--kind", choices=KINDS)
    p.add_argument("--site")
    p.add_argument("--format", choices=FORMATS, default=FORMATS[0])

    p = add("review", cmd_review)
    _db_arg(p)
    p.add_argument("--format", choices=FORMATS, default=FORMATS[0])
    p.add_argument("ids", nargs="+", type=int, metavar="ID")
    p.add_argument("--action", required=True,
                   choices=list(ACTIONS))
    p.add_argument("--reason", help="why (required for accept and false-positive)")
    p.add_argument("--until", help="accept: until this date (YYYY-MM-DD) or timestamp")
    p.add_argument("--reviewer", help="who decides (default: the logged-in user)")

    p = add("matrix", cmd_matrix)
    _db_arg(p)
    policy_arg(p)
    p.add_argument("--format", choices=FORMATS, default=FORMATS[0])

    p = add("export", cmd_export)
    _db_arg(p)
    policy_arg(p)
    p.add_argument("what", choices=exports.WHAT)
    p.add_argument("--format", choices=exports.FORMATS, default=exports.FORMATS[0])
    p.add_argument("--out", type=Path, help="file to write (default: stdout)")
    p.add_argument("--site", help="only this site")
    p.add_argument("--zone", help="only this zone")
    p.add_argument("--lang", choices=("da", "en"), default="da",
                   help="the register's headings and values (default: da)")
    p.add_argument("--status", choices=("open", "accepted", "all"), default="open",
                   help="the register's rows: still to handle (default), accepted risks, all")

    by_help = "who made the change (default: the OS user)"
    default_by = None  # the operator (see operator()), found when the command runs
    p = add("asset set", cmd_ownership)
    _db_arg(p)
    p.add_argument("id", type=int, help="the asset's id (assets --format json)")
    p.add_argument("--owner", help="a person or a department")
    p.add_argument("--tag", action="append", help="a tag (repeat for several; replaces them)")
    p.add_argument("--notes")
    p.add_argument("--by", default=default_by, help=by_help)
    p = add("owner add-rule", cmd_ownership)
    _db_arg(p)
    policy_arg(p)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--zone")
    where.add_argument("--cidr")
    p.add_argument("--org", help="with --cidr: only this organisation's assets (a zone rule"
                   " takes the policy's); without it, every organisation's")
    p.add_argument("--owner")
    p.add_argument("--tag", action="append")
    p.add_argument("--by", default=default_by, help=by_help)
    p = add("owner rules", cmd_ownership)
    _db_arg(p)
    p.add_argument("--format", choices=("table", "json"), default="table")
    p = add("owner remove-rule", cmd_ownership)
    _db_arg(p)
    p.add_argument("id", type=int)
    p.add_argument("--by", default=default_by, help=by_help)

    p = add("user add", cmd_user)
    _db_arg(p)
    p.add_argument("name")
    p.add_argument("--role", choices=("viewer", "reviewer", "admin"), required=True)
    p.add_argument("--org", action="append", required=True, help="repeat for several")
    p.add_argument("--password-file", type=Path, help="default: asked for on the terminal")
    p = add("user token", cmd_user)
    _db_arg(p)
    p.add_argument("name")
    p.add_argument("--name", dest="token_name", default="api", help="what the token is for")
    p.add_argument("--days", type=int, default=90)
    p = add("web", cmd_web)
    _db_arg(p)
    p.add_argument("--policy", type=Path, action="append",
                   help="a zone policy, for the console's matrix (once per organisation)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--insecure-cookies", action="store_true",
                   help="session cookies without Secure: only behind no TLS, on a lab host")

    p = add("register set", cmd_register)
    _db_arg(p)
    p.add_argument("id", type=int, help="the violation's id (the register's first column)")
    p.add_argument("--likelihood", type=int, choices=range(1, 6), metavar="1-5")
    p.add_argument("--consequence", type=int, choices=range(1, 6), metavar="1-5")
    p.add_argument("--measure", help="the proposed measure, in the team's words")
    p.add_argument("--responsible", help="who carries the measure out")
    p.add_argument("--deadline", help="YYYY-MM-DD")
    p.add_argument("--by", default=default_by, help=by_help)

    p = add("demo", cmd_demo)
    p.add_argument("--db-out", type=Path, help="keep the demo's inventory database here")
    p.add_argument("--no-console", action="store_true",
                   help="end when the results are printed (on a terminal the demo then "
                        "serves the console with its data until Ctrl-C)")
    p.add_argument("--sensors", type=int, default=4, choices=(1, 2, 3, 4),
                   help="how many sensors: the town hall's segments get one each (1 to 3), "
                        "the 4th is the school's, on the trunk of its two VLANs (default 4)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = terminal.parse(build_parser(), argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except PermissionError as exc:
        print(f"netvagt-central: {exc} (run as root, or check the file's owner)", file=sys.stderr)
        return 1
    except InventoryError as exc:
        print(f"netvagt-central: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

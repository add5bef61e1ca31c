"""``sudo netvagt-central demo``: a simulated municipal network, scanned by sensors that
report signed findings through Mosquitto to the central, which prints its inventory.

Everything runs inside namespaces the demo creates; they and every process it started are
removed at the end, on Ctrl-C and on failure alike.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from sqlite_utils import Database

from agent import signing
from central import inventory, registry, render
from central.db import open_db
from central.keys import key_path_for, load_or_create
from central.lab.broker import Mosquitto, free_port
from central.lab.municipal import (
    MUNICIPAL_WITH_SCHOOL,
    SCHOOL_SITE,
    TRUNK_SENSOR,
    policy_path,
)
from central.lab.netns import LabError
from central.lab.topology import CORE_HOST, Lab, LabSpec

ORG = "demo-kommune"
SITE = "raadhuset"
INGEST_TIMEOUT_S = 600.0  # the longest the demo waits for every sensor's findings


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorSetup:
    id: str
    segment: str
    ns: str
    config: Path


def central_public_key(db_path: Path, workdir: Path) -> Path:
    """Create the central's key beside the database and write its public JWK for sensors."""
    path = workdir / "central.jwk"
    if not path.exists():
        key = load_or_create(key_path_for(db_path))
        path.write_text(json.dumps(signing.public_jwk(key)) + "\n")
    return path


def write_sensor(lab: Lab, segment: str, workdir: Path, db_path: Path, broker_port: int,
                 *, profile: str = "standard", resend_s: float = 10.0,
                 scope: tuple[str, ...] = ("10.20.0.0/16",), site: str = SITE) -> SensorSetup:
    """Create a sensor's key and config, and register it at the central (at ``site``)."""
    # what the sensor may probe: its segment by default, the lab's other segments for the
    # segmentation checks' probe plans
    scan = (f'interface = "eth0"\nprofile = "{profile}"\n'
            f"scope = {json.dumps(list(scope))}\n")
    return _sensor(f"s-{segment}", segment, lab.sensor_ns(segment), site, segment, scan,
                   workdir, db_path, broker_port, resend_s=resend_s)


def write_trunk_sensor(lab: Lab, workdir: Path, db_path: Path, broker_port: int, *,
                       profile: str = "standard") -> SensorSetup:
    """The school's sensor on the trunk port: one VLAN per zone, reaching the broker by its
    management interface. It is registered at the school without a zone: the policy lists
    it in both of the school's zones."""
    zone_of = {seg.vlan: seg.name for seg in lab.spec.segments if seg.vlan is not None}
    scan = f'interface = "eth0"\nprofile = "{profile}"\nscope = ["10.21.0.0/16"]\n'
    for vid, address, gateway in lab.trunk_vlans():
        scan += (f'[[scan.vlans]]\nid = {vid}\nzone = "{zone_of[vid]}"\n'
                 f'address = "{address}"\ngateway = "{gateway}"\n')
    return _sensor(TRUNK_SENSOR, "trunk", lab.trunk_sensor_ns, SCHOOL_SITE, None, scan, workdir,
                   db_path, broker_port)


def _sensor(sensor_id: str, segment: str, ns: str, site: str, zone: str | None, scan: str,
            workdir: Path, db_path: Path, broker_port: int, *, resend_s: float = 10.0
            ) -> SensorSetup:
    state = workdir / sensor_id
    state.mkdir(parents=True, exist_ok=True)
    key = signing.generate_private_key()
    signing.save_private_key(key, state / "sensor.key")
    db = open_db(db_path)
    registry.add_sensor(db, sensor=sensor_id, org=ORG, site=site, zone=zone,
                        public_jwk=signing.public_jwk(key))
    db.close()
    config = state / "agent.toml"
    config.write_text(
        "[sensor]\n"
        f'id = "{sensor_id}"\norg = "{ORG}"\n'
        f'key = "{state / "sensor.key"}"\nstate_dir = "{state}"\n'
        "[broker]\n"
        f'host = "{CORE_HOST}"\nport = {broker_port}\n'
        "[central]\n"
        f'public_key = "{central_public_key(db_path, workdir)}"\n'
        "delivery_timeout_s = 120\n"
        f"resend_s = {resend_s}\n"
        "[scan]\n" + scan
    )
    return SensorSetup(id=sensor_id, segment=segment, ns=ns, config=config)


def query(db_path: Path, sql: str, params: list[object] | None = None) -> list[tuple[Any, ...]]:
    """Rows of a read-only query on an inventory a running central writes to."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql, params or []).fetchall()
    finally:
        conn.close()


def wait_for_messages(db_path: Path, sensors: list[str], *, timeout: float) -> bool:
    """True once every sensor has at least one message committed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
            try:
                rows = conn.execute("SELECT DISTINCT sensor_id FROM messages").fetchall()
            finally:
                conn.close()
            if {r[0] for r in rows} >= set(sensors):
                return True
        except sqlite3.Error:
            pass
        time.sleep(0.2)
    return False


def scan_then_serve(lab: Lab, sensors: list[SensorSetup], db_path: Path) -> None:
    """The lab tests' first night: each sensor's one scan (all at once), every sensor's
    findings stored by the running central, then each sensor's daemon, which takes plans
    and commands from then on (started here, ended with the lab)."""
    scans = [lab.popen(s.ns, [sys.executable, "-m", "agent.cli", "run", "--config",
                              str(s.config), "--once"], stderr=subprocess.PIPE)
             for s in sensors]
    for proc in scans:
        _, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise LabError(f"a sensor's scan failed: {err.decode(errors='replace')[-3000:]}")
    if not wait_for_messages(db_path, [s.id for s in sensors], timeout=60):
        raise LabError("the central stored no findings from some sensor within 60 s")
    for s in sensors:
        lab.popen(s.ns, [sys.executable, "-m", "agent.cli", "run", "--config", str(s.config)],
                  stderr=subprocess.DEVNULL)
    time.sleep(2.0)  # let the daemons subscribe to their command topics


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the demo like Ctrl-C, so the clean-up runs."""

    def raise_interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _agents(lab: Lab, setups: list[SensorSetup], console: Console, failure: str,
            argv: Callable[[SensorSetup], list[str]]) -> bool:
    """Run one agent command in every sensor's namespace at once; False if any failed."""
    procs = [lab.popen(s.ns, [sys.executable, "-m", "agent.cli", *argv(s)],
                       stderr=subprocess.PIPE) for s in setups]
    ok = True
    for setup, proc in zip(setups, procs, strict=True):
        _, err = proc.communicate(timeout=INGEST_TIMEOUT_S)
        if proc.returncode != 0:
            ok = False
            console.print(f"[red]sensor {setup.id} {failure}:[/red]")
            console.print(err.decode(errors="replace")[-2000:], markup=False)
    return ok


def _segmentation(lab: Lab, setups: list[SensorSetup], db_path: Path, workdir: Path,
                  console: Console) -> bool:
    """Each sensor runs a probe plan signed by the central; then the central evaluates."""
    from central import plans, violations
    from central import policy as zone_policy

    policy = zone_policy.load(policy_path())
    db = open_db(db_path)
    key = load_or_create(key_path_for(db_path))
    stands = plans.sensor_zones(db, policy)
    issued: list[str] = []
    files: dict[str, list[str]] = {}
    for setup in setups:
        for zone in stands.get(setup.id, []):  # the trunk sensor: one plan per VLAN
            plan, token = plans.issue_plan(db, policy, setup.id, key, by_hand=True,
                                           zone=zone.name)
            path = workdir / f"{setup.id}-{zone.name}.plan.jws"
            path.write_bytes(token)
            issued.append(plan.id)
            files.setdefault(setup.id, []).append(str(path))
            console.print(f"[bold]plan[/bold] {setup.id} in {zone.name}: probe "
                          f"{len(plan.targets)} addresses in the other zones of {zone.site} "
                          "(signed by the central)")
    ok = _agents(lab, [s for s in setups if s.id in files], console, "could not run its plan",
                 lambda s: ["reach", "--plan", *files[s.id], "--config", str(s.config)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = {r[0] for r in db.execute("SELECT DISTINCT plan_id FROM reach").fetchall()}
        if set(issued) <= done:
            break
        time.sleep(0.3)
    changes = violations.evaluate(db, policy)
    console.print(f"[bold]evaluate[/bold] against {policy_path().name}: {changes['new']} "
                  "violations")
    db.close()
    return ok


def _digest(db: Database) -> dict[str, object]:
    """What tonight's digest for the organisation would say (no channel in the demo)."""
    from central import events, notify

    day = time.strftime("%Y-%m-%d")
    return notify.digest_body(ORG, day, events.listed(db, org=ORG),
                              notify.NotifyConfig(channels={}, language="en"))


def _serve_console(db_path: Path, console: Console) -> None:
    """The demo's inventory in the console, on loopback, until Ctrl-C."""
    import secrets
    import socket

    from central import users
    from central.web import serve

    password = secrets.token_urlsafe(12)
    db = open_db(db_path)
    users.add_user(db, "demo", password, role="admin", orgs=[ORG])
    db.close()
    with socket.socket() as probe:  # 8080 if it is free, else any free port
        try:
            probe.bind(("127.0.0.1", 8080))
            port = 8080
        except OSError:
            port = free_port()
    console.print(f"[bold]console[/bold] http://127.0.0.1:{port}/  login: demo / {password}"
                  "  (Ctrl-C ends the demo)")
    serve(db_path, host="127.0.0.1", port=port, secure_cookies=False,
          policy_path=policy_path())


def _announce(lab: Lab, setups: list[SensorSetup], console: Console) -> None:
    for setup in setups:
        if setup.id == TRUNK_SENSOR:
            console.print(f"[bold]sensor[/bold] {setup.id} on the school's trunk: " + ", ".join(
                f"VLAN {vid} ({address})" for vid, address, _ in lab.trunk_vlans()))
        else:
            console.print(f"[bold]sensor[/bold] {setup.id} scanning segment {setup.segment} "
                          f"({lab.spec.segment(setup.segment).cidr})")


def _identifying_with() -> str:
    """Which fingerprint databases the sensors will name devices with: without recog they
    name far fewer, and the demo says how to add it."""
    from fingerprints.databases import in_use

    found = in_use()
    if any(d.startswith("recog ") for d in found):
        return f"[bold]identify[/bold] with the built-in rules and {', '.join(found)}"
    return ("[yellow]identify[/yellow] with the built-in rules only: no recog database is "
            "installed (online: sudo ./install.sh; offline: sudo ./install.sh --recog DIR, or "
            "netvagt-central fingerprints import DIR)"
            + (f"; {', '.join(found)}" if found else ""))


def run_demo(*, keep_db: Path | None = None, sensors: int = 4,
             spec: LabSpec = MUNICIPAL_WITH_SCHOOL, console: Console | None = None,
             serve_console: bool = False) -> int:
    """The town hall's segments each with a sensor of its own, and (from the fourth sensor
    on) the school's VLANs with one sensor on their trunk."""
    console = console or Console(width=None if sys.stdout.isatty() else 160)
    if os.geteuid() != 0:
        console.print("[red]netvagt-central demo builds network namespaces: run it with sudo[/red]")
        return 2
    for tool in ("ip", "nft", "nmap"):
        if shutil.which(tool) is None:
            console.print(f"[red]{tool} is not installed: run install.sh first[/red]")
            return 2
    workdir = Path(tempfile.mkdtemp(prefix="netvagt-demo-"))
    db_path = workdir / "central.db"
    segments = [s.name for s in spec.segments if s.sensor][:sensors]
    trunk = sensors > len(segments) and any(s.vlan is not None for s in spec.segments)
    setups: list[SensorSetup] = []
    started = time.monotonic()
    try:
        with _terminate_as_interrupt(), Lab(spec) as lab:
            console.print(f"[bold]lab[/bold] {lab.prefix}: {len(spec.segments)} segments, "
                          f"{len(spec.devices)} emulated devices, router with nftables policy")
            console.print(_identifying_with())
            # the core namespace is new and empty: the standard port is free there
            with Mosquitto(ns=lab.core, bind=(CORE_HOST, "127.0.0.1"), port=1883) as broker:
                console.print(f"[bold]broker[/bold] mosquitto on {CORE_HOST}:{broker.port} "
                              f"(pid {broker.process.pid if broker.process else '?'})")
                open_db(db_path).close()
                setups = [write_sensor(lab, seg, workdir, db_path, broker.port)
                          for seg in segments]
                if trunk:
                    setups.append(write_trunk_sensor(lab, workdir, db_path, broker.port))
                central = lab.popen(
                    lab.core,
                    [sys.executable, "-m", "central.cli", "serve", "--db", str(db_path),
                     "--broker-host", "127.0.0.1", "--broker-port", str(broker.port)],
                    stderr=subprocess.DEVNULL,
                )
                console.print(f"[bold]central[/bold] verifying and storing (pid {central.pid})")
                _announce(lab, setups, console)
                failed = not _agents(lab, setups, console, "failed",
                                     lambda s: ["run", "--config", str(s.config), "--once"])
                if not wait_for_messages(db_path, [s.id for s in setups], timeout=30):
                    console.print("[red]the central did not receive every sensor's findings[/red]")
                    failed = True
                if len(setups) > 1 and not failed:
                    failed = not _segmentation(lab, setups, db_path, workdir, console)
        db = open_db(db_path)
        rows = inventory.assets(db)
        console.print(render.assets_table(rows))
        if len(setups) > 1:
            from central import policy as zone_policy
            from central.matrix import matrix
            from central.violations import violations

            found = violations(db)
            console.print(render.violations_table(
                found, title=f"Violations of the zone policy: {len(found)}", detail=False))
            policy = zone_policy.load(policy_path())
            console.print(render.matrix_table(matrix(db, policy), policy))
            console.print(render.digest_table(_digest(db)))
        counts = {r["reason"]: r["count"] for r in db.query("SELECT * FROM message_counts")}
        console.print(f"messages: {json.dumps(counts)}; {len(rows)} assets; "
                      f"{time.monotonic() - started:.0f} s in all")
        db.close()
        if keep_db is not None:
            shutil.copy(db_path, keep_db)
            console.print(f"inventory kept at {keep_db}")
        if serve_console and not failed:
            _serve_console(db_path, console)
        return 1 if failed else 0
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: lab removed[/yellow]")
        return 130
    except LabError as exc:
        console.print(f"[red]demo failed: {exc}[/red]")
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

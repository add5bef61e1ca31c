"""Enrollment and broker access per sensor, in the lab, with Mosquitto's dynamic security:
a token enrolls a sensor once, its findings arrive, it cannot touch another sensor's topics,
and after revocation it is shut out."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
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

from agent import signing, wire
from central.db import open_db
from central.lab.broker import Mosquitto
from central.lab.topology import CORE_HOST, DeviceSpec, Lab, LabSpec, SegmentSpec, ServiceSpec

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: needs root"),
]

ORG, SITE = "demo-kommune", "raadhuset"
EDGE = LabSpec(
    segments=(SegmentSpec(name="edge", cidr="10.70.0.0/24", router_mac="00:00:0c:70:00:01"),),
    devices=(DeviceSpec(name="meter", segment="edge", host=33, mac="00:13:ea:70:00:33",
                        vendor="Kamstrup A/S", device_type="meter",
                        services=(ServiceSpec(port=80, kind="http",
                                              params={"server": "lighttpd", "title": "m"}),)),),
)
PY = sys.executable


@dataclass
class Site:
    lab: Lab
    db: Path
    work: Path

    def central(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PY, "-m", "central.cli", *args, "--db", str(self.db)],
                              capture_output=True, text=True, timeout=60)

    def agent(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.lab.run(self.lab.sensor_ns("edge"), [PY, "-m", "agent.cli", *args],
                            timeout=300)

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        db = open_db(self.db)
        try:
            return [tuple(r) for r in db.execute(sql, list(params)).fetchall()]
        finally:
            db.close()

    def token(self) -> str:
        made = self.central("token", "create", "--org", ORG, "--site", SITE, "--zone", "edge")
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        _wait(lambda: self.query("SELECT broker_state FROM tokens WHERE id = ?",
                                 token.split(".")[0]) == [("created",)])
        return token


def _wait(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    work = Path(tempfile.mkdtemp(prefix="netvagt-enroll-"))
    admin_password = secrets.token_urlsafe(16)
    (work / "central.password").write_text(admin_password)
    try:
        with Lab(EDGE) as lab, Mosquitto(ns=lab.core, bind=(CORE_HOST, "127.0.0.1"), port=1883,
                                         dynsec_admin=("netvagt-central", admin_password)):
            db = work / "central.db"
            open_db(db).close()
            lab.popen(lab.core, [PY, "-m", "central.cli", "serve", "--db", str(db),
                                 "--username", "netvagt-central", "--password-file",
                                 str(work / "central.password"), "--manage-access"],
                      stderr=subprocess.DEVNULL)
            yield Site(lab=lab, db=db, work=work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _enroll(site: Site, token: str, name: str) -> subprocess.CompletedProcess[str]:
    state = site.work / name
    return site.agent("enroll", "--central", CORE_HOST, "--token", token, "--name", name,
                      "--config", str(state / "agent.toml"), "--state-dir", str(state),
                      "--interface", "eth0", "--profile", "safe")


def test_enroll_scan_reuse_forgery_isolation_and_revocation(site: Site) -> None:
    token = site.token()
    enrolled = _enroll(site, token, "s-edge")
    assert enrolled.returncode == 0, enrolled.stderr
    config = site.work / "s-edge" / "agent.toml"
    assert (site.work / "s-edge" / "sensor.key").stat().st_mode & 0o777 == 0o600
    assert (site.work / "s-edge" / "mqtt.password").stat().st_mode & 0o777 == 0o600

    # its findings arrive, through its own broker identity
    ran = site.agent("run", "--config", str(config), "--once")
    assert ran.returncode == 0, ran.stderr
    assert site.query("SELECT count(*) FROM messages WHERE sensor_id = 's-edge'") == [(1,)]
    assert ("10.70.0.33",) in site.query("SELECT ip FROM addresses")

    # the same token a second time, and a forged one, are refused with a clear message
    again = _enroll(site, token, "s-second")
    assert again.returncode == 1
    assert "token" in again.stderr and "enrollment failed" in again.stderr
    forged = _enroll(site, token.split(".")[0] + "." + secrets.token_urlsafe(24), "s-forged")
    assert forged.returncode == 1 and "enrollment failed" in forged.stderr
    assert site.query("SELECT id FROM sensors ORDER BY id") == [("s-edge",)]

    # its broker identity may not publish to another sensor's topic nor read its commands
    login = _login(site, "s-edge")
    before = site.query("SELECT sum(count) FROM message_counts")
    pub = site.lab.run(site.lab.sensor_ns("edge"), ["mosquitto_pub", *login, "-q", "1", "-t",
                                                    f"netvagt/v1/{ORG}/s-victim/findings",
                                                    "-m", "x"])
    sub = site.lab.run(site.lab.sensor_ns("edge"), ["mosquitto_sub", *login, "-t",
                                                    f"netvagt/v1/{ORG}/s-victim/commands",
                                                    "-C", "1", "-W", "3"])
    assert "denied" in (sub.stdout + sub.stderr).lower(), sub  # SUBACK refused, not a timeout
    # a marker on its own topic, sent after the attempt: once the central has seen it, it
    # would have seen the earlier one too (it would be counted 'malformed')
    header = base64.urlsafe_b64encode(b'{"alg":"Ed25519","kid":"s-nobody"}').rstrip(b"=")
    own = site.lab.run(site.lab.sensor_ns("edge"), ["mosquitto_pub", *login, "-q", "1", "-t",
                                                    f"netvagt/v1/{ORG}/s-edge/findings",
                                                    "-m", header.decode() + ".e30.AAAA"])
    assert own.returncode == 0, own.stderr
    _wait(lambda: site.query("SELECT count FROM message_counts WHERE reason = 'unknown_sensor'")
          == [(1,)])
    assert site.query("SELECT count(*) FROM message_counts WHERE reason = 'malformed'") == [(0,)]
    assert site.query("SELECT sum(count) FROM message_counts") == [((before[0][0] or 0) + 1,)]
    assert pub.returncode == 0 or "authori" in (pub.stdout + pub.stderr).lower(), pub.stderr

    # revoked: the broker shuts it out and the central would refuse it
    revoked = site.central("sensor", "revoke", "s-edge")
    assert revoked.returncode == 0, revoked.stderr
    _wait(lambda: site.query("SELECT broker_state FROM sensors WHERE id = 's-edge'")
          == [("removed",)])
    after = site.agent("run", "--config", str(config), "--once")
    assert after.returncode == 1
    assert "refused this sensor's login" in after.stderr, after.stderr
    assert site.query("SELECT count(*) FROM messages WHERE sensor_id = 's-edge'") == [(1,)]


def _login(site: Site, name: str, client_id: str | None = None) -> list[str]:
    """mosquitto_pub/sub arguments for an enrolled sensor's broker login (by default with
    the client id the central bound it to)."""
    import tomllib

    broker = tomllib.loads((site.work / name / "agent.toml").read_text())["broker"]
    password = (site.work / name / "mqtt.password").read_text().strip()
    return ["-h", CORE_HOST, "-V", "mqttv5", "-u", broker["username"], "-P", password,
            "-i", client_id or broker["client_id"]]


def _status(site: Site, sensor: str) -> dict[str, Any]:
    rows = site.query("SELECT last_status FROM sensors WHERE id = ?", sensor)
    return json.loads(rows[0][0]) if rows and rows[0][0] else {}


def test_schedule_status_signed_commands_and_last_will(site: Site) -> None:
    token = site.token()
    assert _enroll(site, token, "s-sched").returncode == 0
    config = site.work / "s-sched" / "agent.toml"
    doctor = site.agent("doctor", "--config", str(config))
    assert "broker: 10.99.0.10:1883, authenticated as nvs-" in doctor.stdout, doctor.stdout
    assert "FAIL" not in doctor.stdout.replace("clock", ""), doctor.stdout
    base = config.read_text().replace("[central]\n", "[central]\nheartbeat_s = 1\nresend_s = 2\n")
    count = "SELECT count(*) FROM messages WHERE sensor_id = 's-sched'"

    # 1. on a schedule (every four seconds here), findings arrive and the status says so
    config.write_text(base + '\n[schedule]\ncron = "* * * * * */4"\njitter_s = 0\n')
    daemon = site.lab.popen(site.lab.sensor_ns("edge"), [PY, "-m", "agent.cli", "run",
                                                         "--config", str(config)],
                            stderr=subprocess.DEVNULL)
    _wait(lambda: site.query(count)[0][0] >= 2, timeout=60)
    _wait(lambda: _status(site, "s-sched").get("last_scan_assets") == 2)  # router and meter
    daemon.terminate()
    daemon.wait(10)

    # 2. now rarely scheduled: only a command signed by the central makes it scan
    config.write_text(base + '\n[schedule]\ncron = "0 3 1 1 *"\njitter_s = 0\n')
    daemon = site.lab.popen(site.lab.sensor_ns("edge"), [PY, "-m", "agent.cli", "run",
                                                         "--config", str(config)],
                            stderr=subprocess.DEVNULL)
    _wait(lambda: _status(site, "s-sched").get("state") == "online")
    _wait(lambda: str(_status(site, "s-sched").get("next_scan_at", "")).startswith("20") and
          str(_status(site, "s-sched").get("next_scan_at"))[5:10] == "01-01")
    before = site.query(count)[0][0]
    forger = signing.generate_private_key()
    forged = wire.Command(id=uuid.uuid4().hex, sensor="s-sched", org=ORG, command="scan",
                          issued_at=wire.utc_now(), expires_at="2099-01-01T00:00:00.000000Z")
    token_text = signing.sign(forged.encode(), forger, kid=signing.CENTRAL_KID,
                              typ=signing.TYPE_COMMAND).decode()
    password = (site.work / "central.password").read_text()
    sent = site.lab.run(site.lab.core, ["mosquitto_pub", "-h", "127.0.0.1", "-V", "mqttv5",
                                        "-u", "netvagt-central", "-P", password, "-q", "1",
                                        "-t", wire.commands_topic(ORG, "s-sched"),
                                        "-m", token_text])
    assert sent.returncode == 0, sent.stderr
    _wait(lambda: any("does not verify" in e for e in _status(site, "s-sched").get("errors", [])))
    assert site.query(count)[0][0] == before  # the forged command was not obeyed
    asked = site.central("sensor", "scan", "s-sched", "--profile", "safe")
    assert asked.returncode == 0, asked.stderr
    _wait(lambda: site.query(count)[0][0] == before + 1, timeout=60)

    # 3. a sensor that dies is reported offline by its last will
    os.kill(daemon.pid, signal.SIGKILL)
    daemon.wait(10)
    _wait(lambda: _status(site, "s-sched").get("state") == "offline", timeout=90)
    listing = json.loads(site.central("sensors", "--format", "json").stdout)
    sched = next(s for s in listing if s["id"] == "s-sched")
    assert sched["state"] == "offline" and sched["status"] == "active"
    assert next(s for s in listing if s["id"] == "s-edge")["status"] == "revoked"


def _alive(site: Site) -> bool:
    """The central still serves: a fresh token gets its broker login."""
    try:
        site.token()
    except AssertionError:
        return False
    return True


def test_hostile_names_cannot_touch_the_broker_or_the_central(site: Site) -> None:
    """Names that were broker identities before (the dynamic-security admin role, the
    central's own login, another token's enrollment login) are refused, and the central and
    the broker go on: asking for 'admin' once deleted the admin role and stopped the central."""
    other = site.token()
    hostile = ["admin", "netvagt-central", f"enroll-{other.split('.')[0]}",
               f"nve-{other.split('.')[0]}", "nvs-000000000000", "mosquitto"]
    for name in hostile:
        token = site.token()
        refused = _enroll(site, token, name)
        assert refused.returncode == 1, (name, refused.stdout)
        assert "reserved" in refused.stderr, (name, refused.stderr)
        assert site.query("SELECT count(*) FROM sensors WHERE id = ?", name) == [(0,)]
    # the token another technician holds still works, and so does the central
    assert _enroll(site, other, "s-after").returncode == 0
    assert _alive(site)
    assert site.query("SELECT broker_state FROM sensors WHERE id = 's-after'") == [("active",)]


def test_no_sensor_can_take_a_session_or_read_another_organisation(site: Site) -> None:
    """A sensor login connecting as the central (clean_start=False) inherited its
    subscriptions and read another municipality's findings. Logins are bound to their own
    client id now: as the central's, or another sensor's, the broker refuses the login."""
    assert _enroll(site, site.token(), "s-mine").returncode == 0
    made = site.central("token", "create", "--org", "anden-kommune", "--site", "skole",
                        "--zone", "edge")
    assert made.returncode == 0, made.stderr
    _wait(lambda: site.query("SELECT broker_state FROM tokens WHERE id = ?",
                             made.stdout.strip().split(".")[0]) == [("created",)])
    assert _enroll(site, made.stdout.strip(), "s-theirs").returncode == 0
    theirs_id = _login(site, "s-theirs")[-1]
    ns = site.lab.sensor_ns("edge")
    for client_id in ("netvagt.central", "netvagt-central", theirs_id, "anything-else"):
        took = site.lab.run(ns, ["mosquitto_sub", *_login(site, "s-mine", client_id), "-c",
                                 "-t", "netvagt/v1/#", "-C", "1", "-W", "3"])
        said = (took.stdout + took.stderr).lower()
        assert took.returncode != 0 and "not authori" in said, (client_id, took)
    # with its own client id: every other sensor's topic, and any wildcard, is refused
    for topic in ("netvagt/v1/#", "netvagt/v1/anden-kommune/s-theirs/findings",
                  "netvagt/v1/anden-kommune/+/ack", "$CONTROL/dynamic-security/v1/response",
                  "#"):
        sub = site.lab.run(ns, ["mosquitto_sub", *_login(site, "s-mine"), "-t", topic,
                                "-C", "1", "-W", "3"])
        assert "denied" in (sub.stdout + sub.stderr).lower(), (topic, sub)
    # nor can it speak as the central to another sensor: what it publishes on the other's
    # command and acknowledgement topics never reaches that sensor
    listening = site.lab.popen(ns, ["mosquitto_sub", *_login(site, "s-theirs"), "-t",
                                    "netvagt/v1/anden-kommune/s-theirs/commands", "-t",
                                    "netvagt/v1/anden-kommune/s-theirs/ack", "-W", "4"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.0)
    for topic in ("netvagt/v1/anden-kommune/s-theirs/commands",
                  "netvagt/v1/anden-kommune/s-theirs/ack"):
        site.lab.run(ns, ["mosquitto_pub", *_login(site, "s-mine"), "-q", "1", "-t", topic,
                          "-m", "forged"])
    heard, _ = listening.communicate(timeout=15)
    assert b"forged" not in heard
    # meanwhile the other municipality's findings arrive at the central, and only there
    config = site.work / "s-theirs" / "agent.toml"
    ran = site.agent("run", "--config", str(config), "--once")
    assert ran.returncode == 0, ran.stderr
    assert site.query("SELECT count(*) FROM messages WHERE sensor_id = 's-theirs'") == [(1,)]
    assert _alive(site)

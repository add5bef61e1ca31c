"""A night in the lab, told to people and systems: the central serves with the zone policy
and a notification file; two sensors scan, the central plans, probes and evaluates by
itself; its events go to a webhook (down when the night starts, up later), a syslog
collector (CEF) and, as one digest for the organisation, to an SMTP server. The receivers
(tests/receivers.py) run in the central's namespace and check what a SOC's would: the
webhook signature, RFC 5424 and CEF, the e-mail. Nothing is lost while the webhook is down,
nothing arrives twice, and there is exactly one digest."""

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
from central.lab.municipal import banner, http, rtsp
from central.lab.topology import CORE_HOST, DeviceSpec, Lab, LabSpec, SegmentSpec

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: needs root"),
]

ROOT = Path(__file__).parents[2]
CLI = [sys.executable, "-m", "central.cli"]
SECRET = "lab-webhook-secret"
WEBHOOK, SYSLOG, SMTP = 18080, 16514, 12525
SPEC = LabSpec(
    segments=(SegmentSpec(name="office", cidr="10.77.1.0/24", router_mac="00:00:0c:77:01:01"),
              SegmentSpec(name="cameras", cidr="10.77.2.0/24", router_mac="00:00:0c:77:02:01")),
    devices=(
        DeviceSpec(name="office-pc", segment="office", host=30, mac="d0:43:1e:77:01:30",
                   vendor="Dell Inc.", device_type="workstation",
                   services=(http(80, "Microsoft-IIS/10.0", "Intranet"),)),
        DeviceSpec(name="axis", segment="cameras", host=20, mac="ac:cc:8e:77:02:20",
                   vendor="Axis Communications AB", device_type="camera",
                   services=(rtsp(554, "GStreamer RTSP server"),
                             banner(23, "AXIS P1375 Network Camera\r\nlogin: "))),
    ),
    allowed_flows=(("office", "cameras", "tcp", 554),),  # the fault: RTSP from the office
)
POLICY = f"""
org = "{ORG}"
[defaults]
tcp_ports = [23, 80, 554]
udp_ports = []
[[site]]
name = "{SITE}"
[[zone]]
name = "office"
cidrs = ["10.77.1.0/24"]
allowed_types = ["workstation"]
[[zone]]
name = "cameras"
cidrs = ["10.77.2.0/24"]
allowed_types = ["camera"]
"""
NOTIFY = f"""
language = "en"
[[channel]]
name = "soc"
type = "webhook"
url = "http://127.0.0.1:{WEBHOOK}/netvagt"
secret = "{SECRET}"
[[channel]]
name = "siem"
type = "syslog"
host = "127.0.0.1"
port = {SYSLOG}
format = "cef"
[[channel]]
name = "mail"
type = "email"
smtp_host = "127.0.0.1"
smtp_port = {SMTP}
starttls = false
sender = "netvagt@kommune.dk"
to = ["it@kommune.dk"]
[[route]]
channels = ["soc", "siem"]
[digest]
channels = ["mail"]
after_scans = true
settle_minutes = 1
"""



def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.timeout(900)
def test_a_night_reaches_the_webhook_the_siem_and_one_digest() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="netvagt-notify-"))
    db_path, received = workdir / "central.db", workdir / "received"
    (workdir / "policy.toml").write_text(POLICY)
    (workdir / "notify.toml").write_text(NOTIFY)
    try:
        with Lab(SPEC) as lab, Mosquitto(ns=lab.core, bind=(CORE_HOST, "127.0.0.1"),
                                         port=1883):
            open_db(db_path).close()
            collectors = lab.popen(lab.core, [sys.executable, "-m", "tests.receivers",
                                              "--syslog", str(SYSLOG), "--smtp", str(SMTP),
                                              "--out", str(received)],
                                   stdout=subprocess.PIPE, cwd=ROOT)
            assert collectors.stdout is not None and collectors.stdout.readline() == b"ready\n"
            sensors = [write_sensor(lab, seg, workdir, db_path, 1883, scope=("10.77.0.0/16",))
                       for seg in ("office", "cameras")]
            lab.popen(lab.core, [*CLI, "serve", "--db", str(db_path), "--broker-host",
                                 "127.0.0.1", "--policy", str(workdir / "policy.toml"), "--round", "5",
                                 "--notify", str(workdir / "notify.toml")],
                      stderr=subprocess.DEVNULL, cwd=ROOT)
            for s in sensors:
                done = lab.run(s.ns, [sys.executable, "-m", "agent.cli", "run", "--config",
                                      str(s.config), "--once"], timeout=600)
                assert done.returncode == 0, done.stderr[-3000:]
            assert wait_for_messages(db_path, [s.id for s in sensors], timeout=60)
            for s in sensors:
                lab.popen(s.ns, [sys.executable, "-m", "agent.cli", "run", "--config",
                                 str(s.config)], stderr=subprocess.DEVNULL, cwd=ROOT)
            # the webhook is down: deliveries to it wait in the queue and are retried
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and not query(
                    db_path, "SELECT 1 FROM deliveries WHERE channel = 'soc' AND attempts > 0"):
                time.sleep(2)
            failed_before = query(db_path, "SELECT count(*) FROM deliveries WHERE channel ="
                                           " 'soc' AND attempts > 0")[0][0]
            webhook = lab.popen(lab.core, [sys.executable, "-m", "tests.receivers", "--webhook",
                                           str(WEBHOOK), "--secret", SECRET, "--out",
                                           str(received)], stdout=subprocess.PIPE, cwd=ROOT)
            assert webhook.stdout is not None and webhook.stdout.readline() == b"ready\n"
            deadline = time.monotonic() + 420  # plans, probes, evaluations, back-off, digest
            while time.monotonic() < deadline:
                flows = query(db_path, "SELECT count(*) FROM events WHERE kind = 'violation.new'"
                                       " AND title LIKE '%reaches cameras%'")[0][0]
                pending = query(db_path, "SELECT count(*) FROM deliveries WHERE state !="
                                         " 'sent'")[0][0]
                digests = query(db_path, "SELECT count(*) FROM digests")[0][0]
                if flows and digests and not pending:
                    break
                time.sleep(5)
            routed = {r[0] for r in query(db_path, "SELECT event_id FROM deliveries WHERE"
                                                   " channel = 'soc'")}
            sent = query(db_path, "SELECT channel, state, count(*) FROM deliveries"
                                  " GROUP BY channel, state")
            kinds = [r[0] for r in query(db_path, "SELECT kind FROM events ORDER BY id")]
            time.sleep(1)  # the receivers' last writes
        hooks, lines = _lines(received / "webhook.jsonl"), _lines(received / "syslog.jsonl")
        mails = _lines(received / "smtp.jsonl")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    state = json.dumps({"sent": sent, "kinds": kinds, "failed_before": failed_before})
    assert failed_before > 0, state  # the webhook really was down for some
    assert {"violation.new"} <= set(kinds) and flows, state
    # one webhook delivery per event, none lost while it was down, none twice
    keys = [h["key"] for h in hooks]
    assert len(keys) == len(set(keys)), keys
    assert {h["body"]["id"] for h in hooks} == routed and routed, state
    # the SIEM reads each event as RFC 5424 with a CEF message
    assert len(lines) == len(routed), state
    assert all(line["cef"]["vendor"] == "netvagt" and line["params"]["id"] for line in lines)
    assert {line["cef"]["signature"] for line in lines} == set(kinds)
    # exactly one digest for the organisation, by e-mail
    assert [m["subject"].startswith(f"netvagt: tonight's results for {ORG}") for m in mails] \
        == [True], mails

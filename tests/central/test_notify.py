"""Events and their channels, with real receivers on loopback (tests/receivers.py): a
webhook endpoint that checks the HMAC signature and goes down mid-run, a syslog collector
that parses RFC 5424 and CEF, an SMTP server. Nothing is lost while a receiver is down,
nothing is delivered twice, and each organisation gets one digest a night."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from agent import signing, wire
from agent.wire import Asset, Findings, Observation, Service, Status
from central import events, notify, registry
from central.db import immediate
from central.ingest import Ingestor
from central.policy import parse
from central.violations import evaluate
from tests.receivers import (
    Mailbox,
    MispStandIn,
    Syslog,
    Webhook,
    parse_cef,
    parse_syslog,
    self_signed,
)

SECRET = b"s3cret-shared-with-the-soc"
HOSTILE = 'cam|era=1\n<script>alert(1)</script> =cmd|" /C calc"!A0'
POLICY_TEXT = """
org = "kommune"
[[site]]
name = "raadhus"
[[zone]]
name = "cameras"
cidrs = ["10.20.30.0/24"]
allowed_types = ["camera"]
"""
POLICY = parse(POLICY_TEXT)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sensor:
    """One registered sensor sending through the real ingest path."""

    def __init__(self, db: Database, name: str = "s-cam", org: str = "kommune") -> None:
        self.db, self.name, self.org = db, name, org
        self.key = signing.generate_private_key()
        registry.add_sensor(db, sensor=name, org=org, site="raadhus",
                            public_jwk=signing.public_jwk(self.key))
        self.seq = 0
        self.ingestor = Ingestor(db)

    def scan(self, *assets: Asset, at: str | None = None) -> None:
        self.seq += 1
        at = at or wire.utc_now()
        findings = Findings(sensor=self.name, org=self.org, seq=self.seq,
                            msg_id=uuid.uuid4().hex, scan_id=uuid.uuid4().hex, sent_at=at,
                            scan_started_at=at, scan_finished_at=at, assets=assets)
        outcome = self.ingestor.ingest(wire.findings_topic(self.org, self.name),
                                       signing.sign(findings.encode(), self.key, kid=self.name))
        assert outcome.accepted, outcome

    def status(self, *, at: str, state: str = "online", depth: int = 0,
               errors: tuple[str, ...] = ()) -> None:
        status = Status(sensor=self.name, org=self.org, state=state, at=at,
                        outbox_depth=depth, errors=errors)
        self.db.execute("UPDATE sensors SET last_status = ?, last_status_at = ? WHERE id = ?",
                        [status.encode().decode(), at, self.name])


def camera(host: int, *, telnet: bool = False, version: str = "10.12.114",
           title: str = "AXIS") -> Asset:
    services = (Service(port=23, name="telnet"),) if telnet else ()
    return Asset(ip=f"10.20.30.{host}", mac=f"ac:cc:8e:10:30:{host:02x}", sources=("arp",),
                 services=services, observations=(
                     Observation("ftp.banner", f"220 AXIS P1375 Network Camera {version} "
                                 "(2023) ready.", "21/tcp"),
                     Observation("http.title", title, "80/tcp")))


def _config(**channels: dict[str, Any]) -> notify.NotifyConfig:
    """Events to every channel but e-mail; the digest to e-mail."""
    routed = [n for n, c in channels.items() if c["type"] != "email"]
    return notify.parse({
        "language": "da", "console_url": "https://netvagt.kommune.dk",
        "channel": [{"name": n, **c} for n, c in channels.items()],
        "route": [{"kinds": ["violation.new", "violation.reopened", "device.new",
                             "device.changed", "device.gone"], "channels": routed}]
        if routed else [],
        "digest": {"channels": [n for n, c in channels.items() if c["type"] == "email"],
                   "after_scans": True, "settle_minutes": 0, "at": None}})


def test_a_wrong_notification_file_names_each_problem() -> None:
    with pytest.raises(notify.NotifyError) as caught:
        notify.parse({"channel": [{"name": "a", "type": "pager"},
                                  {"name": "b", "type": "webhook", "url": "ftp://x"}],
                      "route": [{"channels": ["c"], "kinds": ["violation.nw"],
                                 "min_severity": "urgent"}],
                      "digest": {"channels": ["d"], "at": "7 am"}, "language": "de"})
    text = str(caught.value)
    for needle in ("type 'pager'", "url must be http", "unknown channel(s) ['c']",
                   "unknown kind(s) ['violation.nw']", "min_severity 'urgent'",
                   "[digest]: unknown channel", "'7 am' is not a time", "'de' is not da or en"):
        assert needle in text, needle


def test_routes_choose_by_org_site_zone_kind_and_severity() -> None:
    route = notify.Route(channels=("x",), org="kommune", sites=("raadhus",), zones=("bms",),
                         kinds=("violation.new",), min_severity="high")
    event = events.Event(id=1, at="2026-11-29T01:00:00.000000Z", kind="violation.new",
                         severity="high", org="kommune", site="raadhus", zone="bms", title="t",
                         data={})
    assert route.wants(event)
    for change in ({"org": "other"}, {"site": "skole"}, {"zone": "admin"},
                   {"kind": "device.new"}, {"severity": "medium"}):
        assert not route.wants(events.Event(**{**event.to_dict(), **change})), change


def test_devices_new_changed_and_gone_after_the_baseline(db: Database) -> None:
    sensor = Sensor(db)
    start = datetime(2026, 11, 20, 1, tzinfo=UTC)
    sensor.scan(camera(21), camera(22), at=wire.format_ts(start))
    with immediate(db):
        first = events.track_devices(db, POLICY)
    assert first == {"device.new": 0, "device.changed": 0, "device.gone": 0}  # the baseline
    for night in range(1, 4):  # the camera .22 is upgraded, .21 disappears, .23 arrives
        sensor.scan(camera(22, version="10.12.200"), camera(23),
                    at=wire.format_ts(start + timedelta(days=night)))
    with immediate(db):
        counts = events.track_devices(db, POLICY)
    assert counts == {"device.new": 1, "device.changed": 1, "device.gone": 1}
    found = {e.kind: e for e in events.listed(db)}
    assert found["device.new"].title.startswith("new camera 10.20.30.23")
    assert found["device.changed"].data["changes"]["version"] == {"from": "10.12.114",
                                                                 "to": "10.12.200"}
    assert "not seen in the last 3 scans" in found["device.gone"].title
    with immediate(db):  # told once
        assert events.track_devices(db, POLICY) == dict.fromkeys(counts, 0)


def test_a_second_sensors_first_scan_is_no_news_its_later_finds_are(db: Database) -> None:
    """The site was looked at (the first sensor's night); a sensor installed in another
    segment a week later finds what was always there: its first scan is that segment's first
    look, not a flood of device.new. What it finds after that is new."""
    start = datetime(2026, 11, 20, 1, tzinfo=UTC)
    Sensor(db).scan(camera(21), at=wire.format_ts(start))
    with immediate(db):
        events.track_devices(db, POLICY)
    second = Sensor(db, name="s-cam2")
    second.scan(camera(40), camera(41), at=wire.format_ts(start + timedelta(days=7)))
    with immediate(db):
        assert events.track_devices(db, POLICY)["device.new"] == 0
    second.scan(camera(40), camera(41), camera(42), at=wire.format_ts(start + timedelta(days=8)))
    with immediate(db):
        assert events.track_devices(db, POLICY)["device.new"] == 1
    assert [e.title for e in events.listed(db) if e.kind == "device.new"] == [
        "new camera 10.20.30.42 (Axis Communications P1375)"]


def test_devices_coming_and_going_in_a_zone_of_visitors_are_no_news(db: Database) -> None:
    """A guest Wi-Fi sees new phones every day. With ``baseline = "visitors"`` none of them
    is told as new, changed or gone (each would be a notification); what they are is kept."""
    visitors = parse(POLICY_TEXT.replace('allowed_types = ["camera"]', 'baseline = "visitors"'))
    sensor = Sensor(db)
    start = datetime(2026, 11, 20, 1, tzinfo=UTC)
    sensor.scan(camera(21), camera(22), at=wire.format_ts(start))
    with immediate(db):
        events.track_devices(db, visitors)
    for night in range(1, 4):
        sensor.scan(camera(22, version="10.12.200"), camera(23),
                    at=wire.format_ts(start + timedelta(days=night)))
    with immediate(db):
        assert events.track_devices(db, visitors) == {
            "device.new": 0, "device.changed": 0, "device.gone": 0}
    assert db.execute("SELECT count(*) FROM asset_states").fetchone()[0] == 3


def _sensor_news(db: Database) -> Callable[[datetime], dict[str, int]]:
    """The sensor events one round of the service would raise at a given moment."""
    def look(moment: datetime) -> dict[str, int]:
        with immediate(db):
            return events.track_sensors(db, now=wire.format_ts(moment))
    return look


def test_sensors_offline_back_outbox_and_failed_scans_are_told_once(db: Database) -> None:
    sensor = Sensor(db)
    now = datetime(2026, 11, 29, 2, tzinfo=UTC)

    look = _sensor_news(db)

    sensor.status(at=wire.format_ts(now))
    assert sum(look(now).values()) == 0
    assert look(now + timedelta(minutes=30))["sensor.offline"] == 1  # silent for 30 min
    assert look(now + timedelta(minutes=31))["sensor.offline"] == 0
    later = now + timedelta(minutes=40)
    sensor.status(at=wire.format_ts(later), depth=500,
                  errors=("scan failed: nmap exited with 1",))
    counts = look(later)
    assert counts == {"sensor.offline": 0, "sensor.back": 1, "sensor.outbox_filling": 1,
                      "scan.failed": 1}
    assert sum(look(later + timedelta(minutes=1)).values()) == 0


def test_a_restarted_sensor_is_no_news_one_that_stays_stopped_is(db: Database) -> None:
    """A daemon that stops says 'offline' itself (so that the central sends it nothing
    meanwhile): a restart for an upgrade was an offline and a back event, two
    notifications about nothing. It is offline once it stays so for the restart grace."""
    sensor = Sensor(db)
    now = datetime(2026, 12, 2, 2, tzinfo=UTC)

    look = _sensor_news(db)

    sensor.status(at=wire.format_ts(now))
    assert sum(look(now).values()) == 0
    stopped = now + timedelta(minutes=5)
    sensor.status(at=wire.format_ts(stopped), state="offline")  # a restart
    assert sum(look(stopped + timedelta(seconds=20)).values()) == 0
    sensor.status(at=wire.format_ts(stopped + timedelta(seconds=30)))  # back
    assert sum(look(stopped + timedelta(seconds=40)).values()) == 0
    stopped += timedelta(minutes=10)
    sensor.status(at=wire.format_ts(stopped), state="offline")  # stopped for good
    assert look(stopped + timedelta(minutes=1))["sensor.offline"] == 0
    assert look(stopped + timedelta(minutes=3))["sensor.offline"] == 1
    assert look(stopped + timedelta(minutes=4))["sensor.offline"] == 0  # told once


def _violation_events(db: Database, sensor: Sensor, count: int) -> None:
    """``count`` new violations (Telnet on cameras), through a real evaluation."""
    sensor.scan(*(camera(30 + i, telnet=True, title=HOSTILE) for i in range(count)))
    evaluate(db, POLICY)


def test_webhook_down_mid_run_loses_nothing_and_doubles_nothing(db: Database) -> None:
    port = _free_port()
    config = _config(soc={"type": "webhook", "url": f"http://127.0.0.1:{port}/hook",
                          "secret": SECRET.decode()})
    sensor = Sensor(db)
    start = datetime.now(UTC)
    _violation_events(db, sensor, 2)
    with Webhook("127.0.0.1", port, SECRET) as first:
        done = notify.notify_round(db, config, now=wire.format_ts(start))
        assert (done["queued"], done["sent"]) == (2, 2)
    received = list(first.deliveries)
    # the receiver is down: two more cameras (each Telnet, a new device, an unknown device in
    # the zone: six events) wait in the queue, with back-off
    _violation_events(db, sensor, 4)  # 30..33: two are new
    down = notify.notify_round(db, config, now=wire.format_ts(start))
    assert (down["queued"], down["sent"], down["retry"]) == (6, 0, 1)  # one try per round
    state = [dict(r) for r in db.query("SELECT * FROM deliveries WHERE state = 'pending'")]
    assert len(state) == 6 and max(r["attempts"] for r in state) == 1
    assert notify.deliver_due(db, config, now=wire.format_ts(start + timedelta(seconds=5))
                              )["sent"] == 0  # not due yet: 10 s back-off
    with Webhook("127.0.0.1", port, SECRET) as second:  # back up
        later = notify.deliver_due(db, config, now=wire.format_ts(start + timedelta(seconds=30)))
        assert later["sent"] == 6
        assert notify.deliver_due(db, config, now=wire.format_ts(
            start + timedelta(hours=2)))["sent"] == 0
    received += second.deliveries
    keys = [r["key"] for r in received]
    assert len(keys) == len(set(keys)) == 8  # every event once
    assert sorted(r["body"]["id"] for r in received) == [e.id for e in events.listed(db)]
    assert {r["body"]["kind"] for r in received} == {"violation.new", "device.new"}
    assert sum(r["body"]["title"].startswith("Telnet on camera") for r in received) == 4
    assert first.refused == second.refused == 0


def test_a_forged_signature_is_refused_by_the_receiver(db: Database) -> None:
    port = _free_port()
    config = _config(soc={"type": "webhook", "url": f"http://127.0.0.1:{port}/",
                          "secret": "the-wrong-secret"})
    _violation_events(db, Sensor(db), 1)
    with Webhook("127.0.0.1", port, SECRET) as receiver:
        done = notify.notify_round(db, config)
    assert (done["sent"], done["retry"], receiver.refused, receiver.deliveries) == (0, 1, 1, [])


def test_syslog_lines_parse_as_rfc5424_and_cef_with_hostile_text_escaped(db: Database) -> None:
    port = _free_port()
    config = _config(siem={"type": "syslog", "host": "127.0.0.1", "port": port,
                           "format": "cef"},
                     plain={"type": "syslog", "host": "127.0.0.1", "port": port,
                            "format": "rfc5424"})
    _violation_events(db, Sensor(db), 1)
    with Syslog("127.0.0.1", port) as collector:
        done = notify.notify_round(db, config)
        assert done["sent"] == 2
        deadline = datetime.now(UTC) + timedelta(seconds=5)
        while len(collector.lines) < 2 and datetime.now(UTC) < deadline:
            pass
    cef = next(line for line in collector.lines if "cef" in line)
    assert cef["pri"] == str(16 * 8 + 4) and cef["app"] == "netvagt"  # local0, warning
    assert cef["params"]["kind"] == "violation.new" and cef["params"]["zone"] == "cameras"
    header = cef["cef"]
    assert (header["vendor"], header["signature"], header["severity"]) == (
        "netvagt", "violation.new", "5")
    assert header["extension"]["cs3"] == "cameras" and header["extension"]["dst"] == "10.20.30.30"
    assert "Telnet on camera 10.20.30.30" in header["name"]
    plain = next(line for line in collector.lines if "cef" not in line)
    assert plain["msg"].startswith("Telnet on camera 10.20.30.30") and "\n" not in plain["msg"]
    # a hostile value cannot add a CEF field or a syslog line
    forged = notify.syslog_line({"kind": "violation.new", "title": HOSTILE, "severity": "high",
                                 "id": 7, "org": "k", "site": "s", "zone": 'z"]'}, fmt="cef")
    parsed = parse_syslog(forged)
    assert parsed["params"]["zone"] == 'z"]' and parsed["cef"]["name"] == HOSTILE.replace(
        "\n", " ")
    assert set(parsed["cef"]["extension"]) == {"rt", "cs1Label", "cs1", "cs2Label", "cs2",
                                               "cs3Label", "cs3", "cs4Label", "cs4", "msg"}
    assert parse_cef("CEF:0|a|b|c|d|e\\|f|3|k=v\\=w x=1")["extension"] == {"k": "v=w", "x": "1"}


def test_one_digest_per_organisation_per_night_by_email(db: Database, tmp_path: Path) -> None:
    port = _free_port()
    config = _config(mail={"type": "email", "smtp_host": "127.0.0.1", "smtp_port": port,
                           "starttls": False, "sender": "netvagt@kommune.dk",
                           "to": ["it@kommune.dk"]})
    sensor = Sensor(db)
    other = Sensor(db, "s-other", org="nabokommune")
    _violation_events(db, sensor, 1)
    now = datetime.now(UTC)
    if (now + timedelta(minutes=10)).astimezone().date() != now.astimezone().date():
        now += timedelta(minutes=15)  # the rounds below would straddle midnight: all on the new day
    # the other municipality's sensor has not scanned tonight: its digest waits
    with Mailbox("127.0.0.1", port) as box:
        first = notify.notify_round(db, config, now=wire.format_ts(now))
        again = notify.notify_round(db, config, now=wire.format_ts(now + timedelta(minutes=5)))
        other.scan(Asset(ip="10.20.30.99", sources=("icmp",)))
        third = notify.notify_round(db, config, now=wire.format_ts(now + timedelta(minutes=9)))
    assert first["digests"] == [f"kommune:{now.astimezone().date().isoformat()}"]
    assert again["digests"] == [] and len(third["digests"]) == 1
    assert [m["Subject"] for m in box.messages] == [
        f"netvagt: nattens resultat for kommune {now.astimezone().date().isoformat()}",
        f"netvagt: nattens resultat for nabokommune {now.astimezone().date().isoformat()}"]
    message = box.messages[0]
    parts = {p.get_content_type(): bytes(p.get_payload(decode=True)).decode()
             for p in message.walk() if not p.is_multipart()}
    assert "nye overtrædelser: 1" in parts["text/plain"]
    assert "[medium] Telnet on camera 10.20.30.30" in parts["text/plain"]
    assert 'href="https://netvagt.kommune.dk"' in parts["text/html"]
    # a device's words in an event's title stay text in the HTML part
    hostile = notify.email_message({"type": "event", "title": HOSTILE, "severity": "high"},
                                   config, sender="a@b", to=["c@d"])
    html_part = next(p for p in hostile.walk() if p.get_content_type() == "text/html")
    assert "<script>" not in html_part.get_content() and "&lt;script&gt;" in \
        html_part.get_content()


def test_misp_files_carry_tlp_and_no_host_names(db: Database, tmp_path: Path) -> None:
    config = _config(misp={"type": "misp_file", "folder": str(tmp_path / "misp"),
                           "tlp": "amber"})
    _violation_events(db, Sensor(db), 1)
    assert notify.notify_round(db, config)["sent"] == 1
    (path,) = (tmp_path / "misp").glob("*.json")
    event = json.loads(path.read_text())["Event"]
    assert {t["name"] for t in event["Tag"]} >= {"tlp:amber", 'netvagt:kind="violation.new"',
                                                 'netvagt:nis2="secure configuration"'}
    assert {(a["type"], a["value"]) for a in event["Attribute"]} == {("ip-dst", "10.20.30.30")}
    assert not [a for a in event["Attribute"] if a["type"] == "hostname"]
    assert event["info"].startswith("netvagt violation.new: Telnet on camera")


def test_pymisp_publishes_to_a_misp_server_once_per_event(db: Database, tmp_path: Path) -> None:
    key = "k" * 40
    (tmp_path / "misp.key").write_text(key + "\n")
    with MispStandIn("127.0.0.1", 0, key) as misp:
        config = _config(cert={"type": "misp", "url": f"http://127.0.0.1:{misp.port}",
                               "key_file": str(tmp_path / "misp.key"), "verify_tls": False,
                               "tlp": "green"})
        _violation_events(db, Sensor(db), 1)
        assert notify.notify_round(db, config)["sent"] == 1
        # the same event again (a lost acknowledgement): MISP knows its uuid, and the
        # delivery is done rather than retried for a week
        db.execute("UPDATE deliveries SET state = 'pending'")
        assert notify.deliver_due(db, config)["sent"] == 1
    (event,) = misp.events
    assert misp.unauthorised == 0 and event["info"].startswith("netvagt violation.new: Telnet")
    assert {t["name"] for t in event["Tag"]} >= {"tlp:green", 'netvagt:kind="violation.new"'}
    assert [(a["type"], a["value"]) for a in event["Attribute"]] == [("ip-dst", "10.20.30.30")]


def test_mail_goes_by_starttls_and_syslog_by_tls_verified_against_their_ca(
        db: Database, tmp_path: Path) -> None:
    ca_file, server = self_signed(tmp_path)
    smtp, siem = _free_port(), _free_port()
    config = _config(mail={"type": "email", "smtp_host": "127.0.0.1", "smtp_port": smtp,
                           "ca_file": str(ca_file), "sender": "netvagt@kommune.dk",
                           "to": "it@kommune.dk"},
                     siem={"type": "syslog", "host": "127.0.0.1", "port": siem, "tls": True,
                           "ca_file": str(ca_file), "format": "rfc5424"})
    _violation_events(db, Sensor(db), 1)
    with Mailbox("127.0.0.1", smtp, tls=server) as box, \
            Syslog("127.0.0.1", siem, tls=server) as collector:
        done = notify.notify_round(db, config)
        deadline = datetime.now(UTC) + timedelta(seconds=5)
        while not collector.lines and datetime.now(UTC) < deadline:
            pass
    assert done["sent"] == 2 and len(box.messages) == 1  # one event to syslog, one digest
    assert collector.lines[0]["msgid"] == "violation.new"
    # a channel that does not trust the server's certificate sends nothing
    wrong = _config(siem={"type": "syslog", "host": "127.0.0.1", "port": siem, "tls": True,
                          "format": "rfc5424"})
    _violation_events(db, Sensor(db, "s-2"), 2)
    with Syslog("127.0.0.1", siem, tls=server) as collector:
        refused = notify.notify_round(db, wrong)
    assert refused["sent"] == 0 and refused["retry"] == 1 and collector.lines == []


def test_chat_targets_go_through_apprise(db: Database) -> None:
    """Apprise's json:// target posts to a plain HTTP endpoint: a stand-in for Teams or
    Slack that records what a person would read."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    posted: list[dict[str, Any]] = []

    class Chat(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posted.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Chat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = _config(teams={"type": "apprise",
                                "urls": [f"json://127.0.0.1:{server.server_address[1]}/c"]})
        _violation_events(db, Sensor(db), 1)
        assert notify.notify_round(db, config)["sent"] == 1
    finally:
        server.shutdown()
        server.server_close()
    (message,) = posted
    assert message["title"].startswith("netvagt: Telnet on camera 10.20.30.30")
    assert "[medium] violation.new" in message["message"]
    assert "https://netvagt.kommune.dk" in message["message"]
    with pytest.raises(notify.NotifyError, match="missing urls"):
        notify.parse({"channel": [{"name": "x", "type": "apprise"}]})

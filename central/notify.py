"""Results reach people and systems: events routed to channels, a nightly digest per
organisation, and a durable queue so that an unreachable receiver loses nothing.

The central's notification file (TOML, e.g. ``/etc/netvagt/notify.toml``)::

    language = "da"                       # da | en: e-mails and digests
    console_url = "https://netvagt.kommune.dk"   # links in e-mails, where a console runs

    [[channel]]
    name = "soc"
    type = "webhook"                      # JSON, HMAC-SHA256 signed, retried with back-off
    url = "https://soc.kommune.dk/hooks/netvagt"
    secret_file = "/etc/netvagt/webhook.secret"

    [[channel]]
    name = "siem"
    type = "syslog"                       # RFC 5424 over TCP (octet counting) or TLS
    host = "siem.kommune.dk"
    port = 6514
    tls = true
    format = "cef"                        # cef | rfc5424

    [[channel]]
    name = "it-mail"
    type = "email"                        # SMTP with STARTTLS: plain text and HTML
    smtp_host = "smtp.kommune.dk"
    smtp_port = 587
    sender = "netvagt@kommune.dk"
    to = ["it-sikkerhed@kommune.dk"]

    [[channel]]
    name = "misp"
    type = "misp_file"                    # MISP events as JSON files, for an air-gapped exchange
    folder = "/var/lib/netvagt/misp"
    tlp = "amber"

    [[channel]]
    name = "kommunecert"
    type = "misp"                         # MISP events to a MISP server, through PyMISP
    url = "https://misp.kommunecert.dk"
    key_file = "/etc/netvagt/misp.key"
    tlp = "amber"

    [[route]]                             # which events go where; every key is optional
    org = "aarhus"
    sites = ["raadhuset"]
    zones = ["bms", "cameras"]
    kinds = ["violation.new", "violation.reopened", "vulnerability.kev"]
    min_severity = "medium"
    channels = ["soc", "siem", "misp"]

    [digest]                              # one per organisation per night
    channels = ["it-mail"]
    after_scans = true                    # once every sensor of the organisation has scanned
    settle_minutes = 30                   # ... and nothing new came for this long
    at = "07:00"                          # at the latest at this local time

Delivery is at least once: a channel that fails is tried again with back-off (10 s,
doubling, at most an hour) for up to a week. Each webhook delivery carries the event's id,
so a receiver can refuse a repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import re
import smtplib
import socket
import ssl
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from agent import terminal, wire
from central import events
from central.db import immediate

log = logging.getLogger("netvagt.central.notify")

CHANNEL_TYPES = ("webhook", "syslog", "email", "misp_file", "misp", "apprise")
SEVERITY_ORDER = {s: i for i, s in enumerate(events.SEVERITIES)}
FIRST_RETRY_S, LAST_RETRY_S = 10.0, 3600.0
GIVE_UP_AFTER = timedelta(days=7)
MAX_BATCH = 200  # deliveries attempted per round
SYSLOG_SEVERITY = {"critical": 2, "high": 3, "medium": 4, "low": 5, "info": 6}
CEF_SEVERITY = {"critical": 10, "high": 8, "medium": 5, "low": 3, "info": 1}
PEN = 32473  # the private enterprise number RFC 5612 reserves for documentation


class NotifyError(ValueError):
    """The notification file is missing, not TOML, or names something wrong."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Channel:
    name: str
    type: str
    settings: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.settings.get(key, default)


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    channels: tuple[str, ...]
    org: str | None = None
    sites: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    min_severity: str = "info"

    def wants(self, event: events.Event) -> bool:
        return ((self.org is None or event.org == self.org)
                and (not self.sites or event.site in self.sites)
                and (not self.zones or event.zone in self.zones)
                and (not self.kinds or event.kind in self.kinds)
                and SEVERITY_ORDER[event.severity] >= SEVERITY_ORDER[self.min_severity])


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestRule:
    channels: tuple[str, ...] = ()
    after_scans: bool = True
    settle_minutes: float = 30.0
    at: str | None = "07:00"  # local time, HH:MM


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyConfig:
    channels: dict[str, Channel]
    routes: tuple[Route, ...] = ()
    digest: DigestRule = field(default_factory=DigestRule)
    language: str = "da"
    console_url: str | None = None


_REQUIRED = {"webhook": ("url",), "syslog": ("host",), "email": ("smtp_host", "sender", "to"),
             "misp_file": ("folder",), "misp": ("url",), "apprise": ("urls",)}


def load(path: Path) -> NotifyConfig:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise NotifyError(f"{path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise NotifyError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, where=str(path))


def parse(data: dict[str, Any], *, where: str = "notify") -> NotifyConfig:
    problems: list[str] = []
    channels = _channels(data.get("channel") or [], problems)
    routes = _routes(data.get("route") or [], channels, problems)
    raw_digest = data.get("digest") or {}
    digest = DigestRule(channels=tuple(raw_digest.get("channels") or ()),
                        after_scans=bool(raw_digest.get("after_scans", True)),
                        settle_minutes=float(raw_digest.get("settle_minutes", 30)),
                        at=raw_digest.get("at", "07:00"))
    if [c for c in digest.channels if c not in channels]:
        problems.append(f"[digest]: unknown channel(s) in {list(digest.channels)}")
    if digest.at is not None and not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", str(digest.at)):
        problems.append(f"[digest] at {digest.at!r} is not a time like 07:00")
    language = data.get("language", "da")
    if language not in ("da", "en"):
        problems.append(f"language {language!r} is not da or en")
    if problems:
        raise NotifyError("\n".join(f"{where}: {p}" for p in problems))
    return NotifyConfig(channels=channels, routes=tuple(routes), digest=digest,
                        language=language, console_url=data.get("console_url"))


def _channels(raws: list[Any], problems: list[str]) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    for index, raw in enumerate(raws):
        name, kind = raw.get("name"), raw.get("type")
        if not isinstance(name, str) or not name:
            problems.append(f"[[channel]] {index + 1}: needs a name")
            continue
        if kind not in CHANNEL_TYPES:
            problems.append(f"channel {name!r}: type {kind!r} is not one of {CHANNEL_TYPES}")
            continue
        missing = [k for k in _REQUIRED[kind] if not raw.get(k)]
        if missing:
            problems.append(f"channel {name!r} ({kind}): missing {', '.join(missing)}")
        if kind == "webhook" and not str(raw.get("url", "")).startswith(("https://",
                                                                         "http://")):
            problems.append(f"channel {name!r}: url must be http:// or https://")
        if name in channels:
            problems.append(f"channel {name!r} is declared twice")
        channels[name] = Channel(name=name, type=kind, settings={
            k: v for k, v in raw.items() if k not in ("name", "type")})
    return channels


def _routes(raws: list[Any], channels: dict[str, Channel], problems: list[str]
            ) -> list[Route]:
    routes = []
    for index, raw in enumerate(raws):
        unknown = [c for c in raw.get("channels") or [] if c not in channels]
        kinds = [k for k in raw.get("kinds") or [] if k not in events.KINDS]
        severity = raw.get("min_severity", "info")
        if not raw.get("channels"):
            problems.append(f"[[route]] {index + 1}: names no channels")
        if unknown:
            problems.append(f"[[route]] {index + 1}: unknown channel(s) {unknown}")
        if kinds:
            problems.append(f"[[route]] {index + 1}: unknown kind(s) {kinds} (known: "
                            f"{', '.join(events.KINDS)})")
        if severity not in SEVERITY_ORDER:
            problems.append(f"[[route]] {index + 1}: min_severity {severity!r} is not one of "
                            f"{events.SEVERITIES}")
            continue
        routes.append(Route(channels=tuple(raw.get("channels") or ()), org=raw.get("org"),
                            sites=tuple(raw.get("sites") or ()),
                            zones=tuple(raw.get("zones") or ()),
                            kinds=tuple(raw.get("kinds") or ()), min_severity=severity))
    return routes


# --------------------------------------------------------------------------- routing


def route(db: Database, config: NotifyConfig, *, now: str | None = None) -> int:
    """Queue a delivery for every new event on every channel a route sends it to; returns
    how many were queued. Each event is routed once."""
    now = now or wire.utc_now()
    queued = 0
    with immediate(db):
        for event in _unrouted(db):
            for channel in sorted({c for r in config.routes if r.wants(event)
                                   for c in r.channels}):
                db.execute("INSERT OR IGNORE INTO deliveries (event_id, channel, state, next_at)"
                           " VALUES (?, ?, 'pending', ?)", [event.id, channel, now])
                queued += 1
            db.execute("UPDATE events SET routed = 1 WHERE id = ?", [event.id])
    return queued


def _unrouted(db: Database) -> list[events.Event]:
    return [events.from_row(dict(r)) for r in db.query(
        "SELECT * FROM events WHERE routed = 0 ORDER BY id LIMIT 10000")]


# --------------------------------------------------------------------------- digest


def _local(now: str) -> datetime:
    return wire.parse_ts(now).astimezone()


def digest_due(db: Database, config: NotifyConfig, org: str, now: str) -> bool:
    """Is tonight's digest of ``org`` due: every active sensor has scanned since the last
    digest (or within the night) and nothing new came for the settle time; or the set time
    has come. Never twice a day."""
    local = _local(now)
    day = local.date().isoformat()
    if db.execute("SELECT 1 FROM digests WHERE org = ? AND day = ?", [org, day]).fetchone():
        return False
    rule = config.digest
    if rule.at is not None:
        hour, minute = (int(p) for p in rule.at.split(":"))
        if (local.hour, local.minute) >= (hour, minute):
            return True
    if not rule.after_scans:
        return False
    last = db.execute("SELECT max(made_at) FROM digests WHERE org = ?", [org]).fetchone()[0]
    since = last or wire.format_ts(wire.parse_ts(now) - timedelta(hours=12))
    sensors = [r[0] for r in db.execute("SELECT id FROM sensors WHERE org_id = ? AND status ="
                                        " 'active'", [org]).fetchall()]
    if not sensors:
        return False
    scanned = {sensor: at for sensor, at in db.execute(
        "SELECT sensor_id, max(received_at) FROM messages WHERE assets > 0 AND received_at > ?"
        " GROUP BY sensor_id", [since]).fetchall() if sensor in sensors}
    if set(scanned) != set(sensors):
        return False
    quiet_since = wire.format_ts(wire.parse_ts(now) - timedelta(minutes=rule.settle_minutes))
    latest_event = db.execute("SELECT max(at) FROM events WHERE org = ?", [org]).fetchone()[0]
    latest = max(filter(None, (latest_event, max(scanned.values()))))
    return latest <= quiet_since


def make_digests(db: Database, config: NotifyConfig, *, now: str | None = None) -> list[str]:
    """Make and queue each organisation's digest that is due; returns their keys."""
    if not config.digest.channels:
        return []
    now = now or wire.utc_now()
    made = []
    orgs = [r[0] for r in db.execute("SELECT id FROM orgs ORDER BY id").fetchall()]
    for org in orgs:
        if not digest_due(db, config, org, now):
            continue
        day = _local(now).date().isoformat()
        with immediate(db):
            if db.execute("SELECT 1 FROM digests WHERE org = ? AND day = ?",
                          [org, day]).fetchone():
                continue
            after = db.execute("SELECT coalesce(max(through_event), 0) FROM digests WHERE"
                               " org = ?", [org]).fetchone()[0]
            items = [e for e in events.listed(db, org=org, after_id=after)]
            through = db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
            body = digest_body(org, day, items, config)
            db.execute("INSERT INTO digests (org, day, through_event, made_at, body) VALUES"
                       " (?, ?, ?, ?, ?)", [org, day, max(through, after), now,
                                            json.dumps(body)])
            key = f"{org}:{day}"
            for channel in config.digest.channels:
                db.execute("INSERT OR IGNORE INTO deliveries (digest, channel, state, next_at)"
                           " VALUES (?, ?, 'pending', ?)", [key, channel, now])
        made.append(key)
    return made


def digest_body(org: str, day: str, items: list[events.Event],
                config: NotifyConfig) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.kind] = counts.get(item.kind, 0) + 1
    notable = [e.to_dict() for e in items if e.kind in (
        "violation.new", "violation.reopened", "vulnerability.kev", "sensor.offline",
        "scan.failed", "device.new", "device.gone")][:200]
    return {"type": "digest", "org": org, "day": day, "counts": counts, "events": notable,
            "language": config.language}


# --------------------------------------------------------------------------- delivery

Sender = Callable[[Channel, dict[str, Any], NotifyConfig], None]


def deliver_due(db: Database, config: NotifyConfig, *, now: str | None = None,
                senders: dict[str, Sender] | None = None) -> dict[str, int]:
    """Try every delivery that is due; returns how many went, failed for now, gave up."""
    now = now or wire.utc_now()
    senders = senders or SENDERS
    result = {"sent": 0, "retry": 0, "failed": 0}
    due = [dict(r) for r in db.query(
        "SELECT d.*, e.at AS event_at FROM deliveries d LEFT JOIN events e ON e.id = d.event_id"
        " WHERE d.state = 'pending' AND d.next_at <= ? ORDER BY d.id LIMIT ?",
        [now, MAX_BATCH])]
    down: set[str] = set()  # a channel that failed this round is not tried again in it
    for row in due:
        channel = config.channels.get(row["channel"])
        if channel is None:
            _settle(db, row, state="failed", error="the channel is no longer configured", now=now)
            result["failed"] += 1
            continue
        if channel.name in down:
            continue
        try:
            senders[channel.type](channel, _payload(db, row), config)
        except Exception as exc:  # any channel's failure is retried, never fatal
            down.add(channel.name)
            started = row["event_at"] or now
            if wire.parse_ts(now) - wire.parse_ts(started) > GIVE_UP_AFTER:
                _settle(db, row, state="failed", error=str(exc)[:500], now=now)
                result["failed"] += 1
                log.error("gave up delivering %s to %s: %s", _what(row), channel.name, exc)
            else:
                wait = min(LAST_RETRY_S, FIRST_RETRY_S * 2 ** row["attempts"])
                db.execute("UPDATE deliveries SET attempts = attempts + 1, next_at = ?,"
                           " last_error = ? WHERE id = ?",
                           [wire.format_ts(wire.parse_ts(now) + timedelta(seconds=wait)),
                            f"{type(exc).__name__}: {exc}"[:500], row["id"]])
                result["retry"] += 1
                log.warning("delivering %s to %s failed (%s); next try in %.0f s", _what(row),
                            channel.name, exc, wait)
            continue
        _settle(db, row, state="sent", error=None, now=now)
        result["sent"] += 1
    return result


def _what(row: dict[str, Any]) -> str:
    return f"event {row['event_id']}" if row["event_id"] else f"digest {row['digest']}"


def _settle(db: Database, row: dict[str, Any], *, state: str, error: str | None,
            now: str) -> None:
    db.execute("UPDATE deliveries SET state = ?, attempts = attempts + 1, last_error = ?,"
               " sent_at = ? WHERE id = ?",
               [state, error, now if state == "sent" else None, row["id"]])


def _payload(db: Database, row: dict[str, Any]) -> dict[str, Any]:
    if row["event_id"] is not None:
        found = events.listed(db, after_id=row["event_id"] - 1, limit=1)
        return {"type": "event", "delivery": row["id"], **found[0].to_dict()}
    org, day = row["digest"].split(":", 1)
    body = db.execute("SELECT body FROM digests WHERE org = ? AND day = ?",
                      [org, day]).fetchone()[0]
    return {"delivery": row["id"], **json.loads(body)}


# --------------------------------------------------------------------------- channels


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The webhook's signature: HMAC-SHA256 over ``timestamp.body``, hex."""
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _secret(channel: Channel) -> bytes:
    if channel.get("secret_file"):
        return Path(channel.get("secret_file")).read_bytes().strip()
    return str(channel.get("secret", "")).encode()


def send_webhook(channel: Channel, payload: dict[str, Any], config: NotifyConfig) -> None:
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
    timestamp = str(int(time.time()))
    key = (f"event-{payload['id']}" if payload.get("type") == "event"
           else f"digest-{payload['org']}-{payload['day']}")
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked on load
        channel.get("url"), data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": f"netvagt/{terminal.version()}",
        "X-Netvagt-Delivery": key, "X-Netvagt-Timestamp": timestamp,
        "X-Netvagt-Signature": "sha256=" + signature(_secret(channel), timestamp, body)})
    context = None
    if channel.get("ca_file"):
        context = ssl.create_default_context(cafile=channel.get("ca_file"))
    with urllib.request.urlopen(request, timeout=float(channel.get("timeout_s", 10)),  # noqa: S310
                                context=context) as reply:
        if not 200 <= reply.status < 300:
            raise OSError(f"HTTP {reply.status}")


def _sd_value(value: object) -> str:
    return re.sub(r'(["\\\]])', r"\\\1", str(value))


def _cef_header(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _cef_ext(value: object) -> str:
    text = str(value).replace("\\", "\\\\").replace("=", "\\=")
    return text.replace("\r", "\\r").replace("\n", "\\n")


def syslog_line(payload: dict[str, Any], *, fmt: str, hostname: str | None = None,
                app: str = "netvagt") -> str:
    """One event (or a digest) as an RFC 5424 message, its text CEF when ``fmt`` is cef."""
    severity = payload.get("severity", "info")
    pri = 16 * 8 + SYSLOG_SEVERITY.get(severity, 6)  # facility local0
    stamp = payload.get("at") or wire.utc_now()
    host = (hostname or socket.gethostname() or "-")[:255].replace(" ", "_")
    kind = payload.get("kind", "digest")
    title = payload.get("title") or f"digest for {payload.get('org')} {payload.get('day')}"
    params = {"id": payload.get("id", payload.get("day", "")), "kind": kind,
              "org": payload.get("org") or "", "site": payload.get("site") or "",
              "zone": payload.get("zone") or ""}
    sd = f"[netvagt@{PEN} " + " ".join(f'{k}="{_sd_value(v)}"' for k, v in params.items()) + "]"
    if fmt == "cef":
        ext = {"rt": int(wire.parse_ts(stamp).timestamp() * 1000), "cs1Label": "org",
               "cs1": params["org"], "cs2Label": "site", "cs2": params["site"],
               "cs3Label": "zone", "cs3": params["zone"], "cs4Label": "eventId",
               "cs4": params["id"], "msg": title}
        data = payload.get("data") or {}
        evidence = (data.get("evidence") or [{}])[0] if isinstance(data, dict) else {}
        if isinstance(evidence, dict) and evidence.get("address"):
            ext["dst"] = evidence["address"]
        if isinstance(data, dict) and data.get("mac"):
            ext["dmac"] = data["mac"]
        message = (f"CEF:0|netvagt|netvagt|{_cef_header(terminal.version())}|"
                   f"{_cef_header(kind)}|{_cef_header(title)}|{CEF_SEVERITY.get(severity, 1)}|"
                   + " ".join(f"{k}={_cef_ext(v)}" for k, v in ext.items()))
    else:
        message = title
    message = message.replace("\n", " ")
    return f"<{pri}>1 {stamp} {host} {app} - {kind} {sd} {message}"


def send_syslog(channel: Channel, payload: dict[str, Any], config: NotifyConfig) -> None:
    line = syslog_line(payload, fmt=channel.get("format", "rfc5424")).encode("utf-8")
    frame = f"{len(line)} ".encode() + line  # RFC 6587 octet counting (RFC 5425 for TLS)
    port = int(channel.get("port", 6514 if channel.get("tls") else 514))
    with socket.create_connection((channel.get("host"), port),
                                  timeout=float(channel.get("timeout_s", 10))) as raw:
        if channel.get("tls"):
            context = ssl.create_default_context(cafile=channel.get("ca_file"))
            with context.wrap_socket(raw, server_hostname=channel.get("host")) as tls:
                tls.sendall(frame)
        else:
            raw.sendall(frame)


WORDS: dict[str, dict[str, Any]] = {
    "da": {"subject": "netvagt: nattens resultat for {org} {day}",
           "event_subject": "netvagt: {title}", "intro": "Resultatet af nattens scanninger:",
           "none": "Intet nyt.", "link": "Se detaljer i netvagt",
           "kinds": {"violation.new": "nye overtrædelser", "violation.reopened": "genåbnede",
                     "violation.resolved": "løste", "device.new": "nye enheder",
                     "device.gone": "forsvundne enheder", "device.changed": "ændrede enheder",
                     "sensor.offline": "sensorer offline", "sensor.back": "sensorer tilbage",
                     "sensor.outbox_filling": "sensorer med fyldt udbakke",
                     "scan.failed": "fejlede scanninger",
                     "vulnerability.kev": "udnyttede sårbarheder"}},
    "en": {"subject": "netvagt: tonight's results for {org} {day}",
           "event_subject": "netvagt: {title}", "intro": "The results of tonight's scans:",
           "none": "Nothing new.", "link": "See the details in netvagt",
           "kinds": {k: k.replace(".", " ").replace("_", " ") for k in events.KINDS}},
}


def email_message(payload: dict[str, Any], config: NotifyConfig, *, sender: str,
                  to: list[str]) -> EmailMessage:
    """A digest or an event as an e-mail: plain text and HTML, in the configured language;
    every device-supplied text escaped in the HTML."""
    words = WORDS[config.language]
    message = EmailMessage()
    message["From"], message["To"] = sender, ", ".join(to)
    message["Message-ID"] = f"<{uuid.uuid4().hex}@netvagt>"
    lines: list[str]
    if payload.get("type") == "digest":
        message["Subject"] = words["subject"].format(org=payload["org"], day=payload["day"])
        counts = payload["counts"]
        lines = [words["intro"], ""] + [f"- {words['kinds'].get(k, k)}: {n}"
                                        for k, n in sorted(counts.items())]
        if not counts:
            lines.append(words["none"])
        details = [f"[{e['severity']}] {e['title']}" for e in payload["events"]]
    else:
        # one line: a device's words cannot add a header
        title = " ".join(str(payload["title"]).split())[:120]
        message["Subject"] = words["event_subject"].format(title=title)
        lines, details = [], [f"[{payload['severity']}] {payload['title']}"]
    url = config.console_url
    text = "\n".join([*lines, "", *details] + ([f"\n{words['link']}: {url}"] if url else []))
    message.set_content(text)
    items = "".join(f"<li>{html.escape(d)}</li>" for d in details)
    link = (f'<p><a href="{html.escape(url)}">{html.escape(words["link"])}</a></p>'
            if url else "")
    message.add_alternative(
        f"<html><body><p>{'<br>'.join(html.escape(line) for line in lines)}</p>"
        f"<ul>{items}</ul>{link}</body></html>", subtype="html")
    return message


def send_email(channel: Channel, payload: dict[str, Any], config: NotifyConfig) -> None:
    to = channel.get("to")
    recipients = [to] if isinstance(to, str) else list(to)
    message = email_message(payload, config, sender=channel.get("sender"), to=recipients)
    port = int(channel.get("smtp_port", 587))
    with smtplib.SMTP(channel.get("smtp_host"), port,
                      timeout=float(channel.get("timeout_s", 30))) as smtp:
        if channel.get("starttls", True):
            smtp.starttls(context=ssl.create_default_context(cafile=channel.get("ca_file")))
        if channel.get("username"):
            password = Path(channel.get("password_file")).read_text().strip() if channel.get(
                "password_file") else ""
            smtp.login(channel.get("username"), password)
        smtp.send_message(message)


def misp_event(payload: dict[str, Any], *, tlp: str = "amber",
               include_hostnames: bool = False) -> dict[str, Any]:
    """An event in MISP's JSON format: TLP and the kind as tags, addresses, MACs and CVEs as
    attributes; no host names unless allowed (they can name a person's device)."""
    data = payload.get("data") or {}
    attributes: list[dict[str, Any]] = []
    for item in (data.get("evidence") or []) if isinstance(data, dict) else []:
        if not isinstance(item, dict):
            continue
        for key, kind, category in (("address", "ip-dst", "Network activity"),
                                    ("target", "ip-dst", "Network activity"),
                                    ("mac", "mac-address", "Network activity"),
                                    ("cve", "vulnerability", "External analysis")):
            if item.get(key):
                attributes.append({"type": kind, "category": category,
                                   "value": str(item[key]), "to_ids": False,
                                   "comment": payload.get("kind", "")})
        if include_hostnames and item.get("hostname"):
            attributes.append({"type": "hostname", "category": "Network activity",
                               "value": str(item["hostname"]), "to_ids": False})
    unique = list({(a["type"], a["value"]): a for a in attributes}.values())
    level = {"critical": "1", "high": "1", "medium": "2", "low": "3"}.get(
        payload.get("severity", ""), "4")
    return {"Event": {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"netvagt:{payload.get('org')}:"
                                                   f"{payload.get('id')}")),
        "info": f"netvagt {payload.get('kind')}: {payload.get('title')}"[:500],
        "date": str(payload.get("at", wire.utc_now()))[:10], "threat_level_id": level,
        "analysis": "1", "distribution": "0", "published": False,
        "Tag": [{"name": f"tlp:{tlp}"}, {"name": f'netvagt:kind="{payload.get("kind")}"'}]
        + ([{"name": f'netvagt:nis2="{data["nis2"]}"'}] if isinstance(data, dict)
           and data.get("nis2") else []),
        "Attribute": unique}}


def send_misp_file(channel: Channel, payload: dict[str, Any], config: NotifyConfig) -> None:
    if payload.get("type") == "digest":
        return  # MISP carries events, not digests
    folder = Path(channel.get("folder"))
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"netvagt-{payload.get('org')}-{payload['id']}.json"
    partial = target.with_suffix(".part")
    partial.write_text(json.dumps(misp_event(payload, tlp=channel.get("tlp", "amber"),
                                             include_hostnames=bool(channel.get(
                                                 "include_hostnames", False))), indent=2))
    partial.replace(target)  # a reader never sees half a file


def send_misp(channel: Channel, payload: dict[str, Any], config: NotifyConfig) -> None:
    """The event to a MISP server through PyMISP (its uuid is the event's own, so a repeat
    is the same MISP event)."""
    if payload.get("type") == "digest":
        return
    from pymisp import MISPEvent, PyMISP

    key = (Path(channel.get("key_file")).read_text().strip() if channel.get("key_file")
           else str(channel.get("key", "")))
    verify: bool | str = channel.get("ca_file") or bool(channel.get("verify_tls", True))
    misp = PyMISP(channel.get("url"), key, ssl=verify,
                  timeout=float(channel.get("timeout_s", 30)))
    event = MISPEvent()
    event.from_dict(**misp_event(payload, tlp=channel.get("tlp", "amber"),
                                 include_hostnames=bool(channel.get("include_hostnames",
                                                                    False))))
    result = misp.add_event(event, pythonify=False)
    if isinstance(result, dict) and "already exists" in json.dumps(result.get("errors", "")):
        return  # a repeat (its first acknowledgement was lost): MISP has it, by its uuid
    if not isinstance(result, dict) or "errors" in result or "Event" not in result:
        raise OSError(f"MISP refused the event: {str(result)[:300]}")


def message_text(payload: dict[str, Any], config: NotifyConfig) -> tuple[str, str]:
    """(title, body) of an event or a digest as plain text, in the configured language."""
    words = WORDS[config.language]
    if payload.get("type") == "digest":
        title = words["subject"].format(org=payload["org"], day=payload["day"])
        lines = [f"{words['kinds'].get(k, k)}: {n}" for k, n in sorted(payload["counts"].items())]
        lines += [f"[{e['severity']}] {e['title']}" for e in payload["events"][:20]]
        body = "\n".join(lines) or words["none"]
    else:
        title = words["event_subject"].format(title=" ".join(str(payload["title"]).split()))
        body = f"[{payload['severity']}] {payload['kind']}: {payload['title']}"
    if config.console_url:
        body += f"\n{words['link']}: {config.console_url}"
    return title[:250], body


def send_apprise(channel: Channel, payload: dict[str, Any], config: NotifyConfig) -> None:
    """Chat and other targets through Apprise (Microsoft Teams, Slack, Matrix, ntfy, ...),
    one URL each, as Apprise writes them (``msteams://...``); plain text, no markup."""
    import apprise

    targets = apprise.Apprise()
    urls = channel.get("urls")
    for url in [urls] if isinstance(urls, str) else urls:
        if not targets.add(url):
            raise OSError(f"Apprise does not understand the URL {url.split(':', 1)[0]}://...")
    title, body = message_text(payload, config)
    if not targets.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT):
        raise OSError("Apprise could not deliver to every URL")


SENDERS: dict[str, Sender] = {"apprise": send_apprise, "webhook": send_webhook, "syslog": send_syslog,
                              "email": send_email, "misp_file": send_misp_file,
                              "misp": send_misp}


# --------------------------------------------------------------------------- one round


def notify_round(db: Database, config: NotifyConfig, *, now: str | None = None
                 ) -> dict[str, Any]:
    """What the service does every few seconds: sensors' news, routing, digests, delivery."""
    now = now or wire.utc_now()
    with immediate(db):
        sensors = events.track_sensors(db, now=now)
    queued = route(db, config, now=now)
    digests = make_digests(db, config, now=now)
    delivered = deliver_due(db, config, now=now)
    return {"sensors": sensors, "queued": queued, "digests": digests, **delivered}


def queue_state(db: Database) -> dict[str, int]:
    return {r[0]: r[1] for r in db.execute("SELECT state, count(*) FROM deliveries"
                                          " GROUP BY state").fetchall()}

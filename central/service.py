"""The central's service: verify and store findings, acknowledge them, enroll sensors, and
keep the broker's per-sensor access in step with the registry.

``async with aiomqtt.Client(...)``; one task reads the client's messages and routes them
(findings to the ingest queue, enrollment requests to the enrollment queue, broker-control
answers to the admin); queued findings are taken together and committed in one transaction,
so the rate is bounded by SQLite's commits, not by one fsync per message. Reconnection is
this loop around ``async with``: the broker may go away and come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import aiomqtt
from joserfc.jwk import OKPKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlite_utils import Database

from agent import signing, wire
from central import broker_admin, enroll, registry
from central.broker_admin import BrokerAdmin
from central.db import open_db
from central.ingest import MAX_CLOCK_SKEW, Ingestor, Outcome
from central.ingest_worker import IngestWorker
from central.keys import key_path_for, load_or_create

if TYPE_CHECKING:
    from central.policy import Policy, Zone

log = logging.getLogger("netvagt.central.service")

MAX_BATCH = 500  # messages committed in one transaction
IN_HAND = 2  # batches handed to the ingest process and not yet acknowledged
RECONNECT_S = 1.0  # seconds between attempts to reach the broker
SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps our queued messages this long offline
RECONCILE_S = 1.0  # how often the broker's clients are brought in line with the registry
POLICY_ROUND_S = 30.0  # how often plans are issued and new data evaluated (serve --round)
TOKEN_GRACE_S = 5.0  # a used token's broker client lives this long, to read its reply
STATUS_FILTER = f"{wire.TOPIC_ROOT}/+/+/status"


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    client_id: str = wire.CENTRAL_CLIENT_ID  # no sensor login can use it (bound to their own)
    # manage per-sensor broker access through the dynamic security plugin (the username
    # must be the plugin's admin); without it the broker's own configuration decides
    manage_access: bool = False


class _Stop(Exception):
    """Raised inside the task group to leave it when the service is asked to stop."""


async def serve(
    db_path: Path,
    broker: BrokerConfig,
    *,
    key_path: Path | None = None,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
    max_messages: int | None = None,
    policy_path: Path | None = None,
    max_clock_skew: timedelta = MAX_CLOCK_SKEW,
    notify_path: Path | None = None,
    policy_round_s: float = POLICY_ROUND_S,
) -> IngestWorker:
    """Run until ``stop`` is set (or ``max_messages`` findings were handled); returns the
    ingest worker, whose ``counts`` are this run's outcomes by reason."""
    db = open_db(db_path)
    key = load_or_create(key_path or key_path_for(db_path))
    ingestor = Ingestor(db, max_clock_skew=max_clock_skew)  # statuses, on the loop's thread
    worker = await asyncio.to_thread(  # findings, in a process of their own
        IngestWorker, db_path, max_clock_skew=max_clock_skew)
    stop = stop or asyncio.Event()
    notifier = (asyncio.create_task(notify_loop(db_path, notify_path, stop))
                if notify_path is not None else None)
    try:  # (the fingerprint databases are loaded by the ingest process, which names devices)
        await _sessions(db, worker, ingestor, key, broker, stop, ready, max_messages,
                        policy_path, policy_round_s)
    finally:  # a batch in the worker finishes (and commits) before its connection closes
        if notifier is not None:
            notifier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await notifier
        await asyncio.to_thread(worker.close)
        db.close()
    return worker


NOTIFY_ROUND_S = 10.0


async def notify_loop(db_path: Path, notify_path: Path, stop: asyncio.Event) -> None:
    """Every few seconds: the sensors' news, routing, digests and deliveries (its own
    connection, in a thread: a slow receiver never holds up ingest). The notification file
    is read afresh each round, so an edit takes effect without a restart."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(notify_once, db_path, notify_path)
        except Exception:  # a bad round is logged; the next one tries again
            log.exception("notification round failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), NOTIFY_ROUND_S)


def notify_once(db_path: Path, notify_path: Path) -> dict[str, object] | None:
    from central import notify

    try:
        config = notify.load(notify_path)
    except notify.NotifyError as exc:
        log.error("notification file not used:\n%s", exc)
        return None
    db = open_db(db_path)
    try:
        done = notify.notify_round(db, config)
    finally:
        db.close()
    if done["queued"] or done["digests"] or done["sent"] or done["retry"]:
        log.info("notifications: %s", done)
    return done


async def _sessions(db: Database, worker: IngestWorker, ingestor: Ingestor, key: OKPKey,
                    broker: BrokerConfig, stop: asyncio.Event, ready: asyncio.Event | None,
                    max_messages: int | None, policy_path: Path | None,
                    policy_round_s: float) -> None:
    """Broker sessions, one after another, until the stop."""
    handled = [0]
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = SESSION_EXPIRY_S
    while not stop.is_set():
        failure: BaseException | None = None
        try:
            async with aiomqtt.Client(
                broker.host,
                broker.port,
                identifier=broker.client_id,
                username=broker.username,
                password=broker.password,
                protocol=aiomqtt.ProtocolVersion.V5,
                clean_start=False,
                properties=properties,
                max_queued_incoming_messages=10_000,
            ) as client:
                await Session(client, db=db, ingestor=ingestor, key=key, broker=broker,
                              stop=stop, handled=handled, max_messages=max_messages,
                              policy_path=policy_path, worker=worker,
                              policy_round_s=policy_round_s).run(ready)
        except* _Stop:
            stop.set()
        except* aiomqtt.MqttError as group:
            failure = group.exceptions[0]
        if stop.is_set():
            break
        log.warning("broker %s:%d unavailable (%s); retrying", broker.host, broker.port, failure)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RECONNECT_S)


class Session:
    """One connection to the broker and the loops that serve it: the reader routes each
    message to its queue; the ingest, enrollment, reconcile, status, command and policy
    loops each take from theirs. A loop's failure ends the session (and the service
    reconnects); a bad message or a broker refusal is logged and the loop goes on."""

    def __init__(self, client: aiomqtt.Client, *, db: Database, ingestor: Ingestor, key: OKPKey,
                 broker: BrokerConfig, stop: asyncio.Event, handled: list[int],
                 max_messages: int | None = None, policy_path: Path | None = None,
                 worker: IngestWorker | None = None,
                 policy_round_s: float = POLICY_ROUND_S) -> None:
        self.client, self.db, self.ingestor, self.key = client, db, ingestor, key
        self.policy_round_s = policy_round_s
        self.broker, self.stop, self.handled = broker, stop, handled
        self.max_messages, self.policy_path = max_messages, policy_path
        self.worker = worker
        self.findings: asyncio.Queue[aiomqtt.Message] = asyncio.Queue()
        self.requests: asyncio.Queue[aiomqtt.Message] = asyncio.Queue()
        self.statuses: asyncio.Queue[aiomqtt.Message] = asyncio.Queue(maxsize=10_000)
        self.admin = BrokerAdmin(client) if broker.manage_access else None

    def route(self, message: aiomqtt.Message) -> None:
        """One message to the queue of the loop that handles it (or nowhere)."""
        topic = str(message.topic)
        if self.admin is not None and self.admin.handle(message):
            return
        if topic.startswith(broker_admin.ENROLL_PREFIX + "/"):
            if topic.endswith("/request"):
                self.requests.put_nowait(message)
        elif topic.endswith("/findings"):
            self.findings.put_nowait(message)
        elif topic.endswith("/status") and not self.statuses.full():
            self.statuses.put_nowait(message)

    async def read(self) -> None:
        async for message in self.client.messages:
            self.route(message)

    def take_batch(self, first: aiomqtt.Message) -> list[aiomqtt.Message]:
        batch = [first]
        while not self.findings.empty() and len(batch) < MAX_BATCH:
            batch.append(self.findings.get_nowait())
        return batch

    async def ingest_loop(self, worker: IngestWorker) -> None:
        """Batches to the ingest process, and their acknowledgements to the sensors, in
        order. Two batches are in hand at a time: the process works on the next while the
        last one's acknowledgements go out, and the one after is taken only when a batch
        is done (so batches grow with the backlog instead of going one message at a
        time)."""
        in_hand = asyncio.Semaphore(IN_HAND)
        results: asyncio.Queue[asyncio.Task[list[Outcome]]] = asyncio.Queue()

        async def acknowledge_in_order() -> None:
            while True:
                ingesting = await results.get()
                try:
                    outcomes = await ingesting
                finally:
                    in_hand.release()
                await acknowledge(self.client, self.key, outcomes)
                self.handled[0] += len(outcomes)
                if self.max_messages is not None and self.handled[0] >= self.max_messages:
                    self.stop.set()

        async with asyncio.TaskGroup() as group:
            group.create_task(acknowledge_in_order())
            while True:
                await in_hand.acquire()
                batch = self.take_batch(await self.findings.get())
                results.put_nowait(group.create_task(
                    worker.ingest([(str(m.topic), _payload(m)) for m in batch])))

    async def enroll_loop(self, admin: BrokerAdmin) -> None:
        while True:
            message = await self.requests.get()
            try:
                await handle_enrollment(self.db, admin, self.client, self.key, message)
            except (broker_admin.BrokerAdminError, TimeoutError, ValueError) as exc:
                log.error("enrollment request on %r not answered: %s", str(message.topic)[:120],
                          exc)  # one bad request must not stop the central
            self.ingestor.refresh()

    async def reconcile_loop(self, admin: BrokerAdmin) -> None:
        while True:
            try:
                await reconcile(self.db, admin)
            except (broker_admin.BrokerAdminError, TimeoutError) as exc:
                log.error("broker access not brought in line with the registry: %s", exc)
            await asyncio.sleep(RECONCILE_S)

    async def status_loop(self) -> None:
        while True:
            message = await self.statuses.get()
            store_status(self.db, self.ingestor, str(message.topic), _payload(message))

    async def command_loop(self) -> None:
        while True:
            await send_commands(self.db, self.client, self.key)
            await asyncio.sleep(RECONCILE_S)

    async def policy_loop(self, policy_path: Path) -> None:
        evaluated: str | None = None  # the newest message the last evaluation saw
        while True:
            await asyncio.sleep(self.policy_round_s)
            try:
                evaluated = segmentation_round(self.db, policy_path, self.key, evaluated)
            except Exception as exc:  # a bad policy edit must not stop the ingest
                log.error("segmentation round failed: %s", exc)

    async def watch_stop(self) -> None:
        await self.stop.wait()
        raise _Stop

    async def start_admin(self, admin: BrokerAdmin, group: asyncio.TaskGroup) -> None:
        await admin.start()
        if self.broker.username:
            await admin.ensure_central(self.broker.username)
        await self.client.subscribe(broker_admin.enroll_request_topic("+"), qos=1)
        group.create_task(self.enroll_loop(admin))
        group.create_task(self.reconcile_loop(admin))

    async def run(self, ready: asyncio.Event | None = None) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self.read())
            group.create_task(self.watch_stop())
            if self.admin is not None:
                await self.start_admin(self.admin, group)
            await self.client.subscribe(wire.FINDINGS_FILTER, qos=1)
            await self.client.subscribe(STATUS_FILTER, qos=1)
            group.create_task(self.status_loop())
            group.create_task(self.command_loop())
            if self.policy_path is not None:
                group.create_task(self.policy_loop(self.policy_path))
            log.info("subscribed to %s on %s:%d", wire.FINDINGS_FILTER, self.broker.host,
                     self.broker.port)
            if self.worker is not None:  # a session without one only routes (its tests)
                group.create_task(self.ingest_loop(self.worker))
            if ready is not None:
                ready.set()


async def acknowledge(client: aiomqtt.Client, key: OKPKey, outcomes: list[Outcome]) -> None:
    by_sensor: dict[tuple[str, str], list[str]] = {}
    for outcome in outcomes:
        if outcome.committed and outcome.org and outcome.sensor and outcome.msg_id:
            by_sensor.setdefault((outcome.org, outcome.sensor), []).append(outcome.msg_id)
    for (org, sensor), msg_ids in by_sensor.items():
        for i in range(0, len(msg_ids), wire.MAX_ACKED_PER_MESSAGE):
            ack = wire.Ack(sensor=sensor, org=org,
                           msg_ids=tuple(msg_ids[i:i + wire.MAX_ACKED_PER_MESSAGE]),
                           acked_at=wire.utc_now())
            token = signing.sign(ack.encode(), key, kid=signing.CENTRAL_KID, typ=signing.TYPE_ACK)
            await client.publish(wire.ack_topic(org, sensor), token, qos=1)


def _payload(message: aiomqtt.Message) -> bytes:
    payload = message.payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()


async def handle_enrollment(db: Database, admin: BrokerAdmin, client: aiomqtt.Client,
                            key: OKPKey, message: aiomqtt.Message) -> None:
    """Answer one enrollment request: check it, give the sensor a broker login the central
    draws, then register it. A broker that fails leaves nothing behind: no sensor, and the
    token still unused, so the technician can simply try again."""
    token_id = str(message.topic).split("/")[-2]
    reply = await _enrollment_reply(db, admin, key, token_id, _payload(message))
    token = signing.sign(reply.encode(), key, kid=signing.CENTRAL_KID,
                         typ=signing.TYPE_ENROLL_REPLY)
    await client.publish(broker_admin.enroll_reply_topic(token_id), token, qos=1)


async def _enrollment_reply(db: Database, admin: BrokerAdmin, key: OKPKey, token_id: str,
                            payload: bytes) -> wire.EnrollReply:
    try:
        checked = enroll.check(db, token_id, payload)
    except enroll.EnrollmentError as exc:
        log.warning("enrollment refused for token %s: %s", token_id[:16], exc)
        return wire.EnrollReply(ok=False, error=str(exc)[:300])
    login, password = broker_admin.new_sensor_login(), broker_admin.new_password()
    try:
        await admin.add_client(login, password, broker_admin.sensor_role(checked.org,
                                                                         checked.sensor))
    except (broker_admin.BrokerAdminError, TimeoutError) as exc:
        log.error("enrollment of %s: the broker refused its login: %s", checked.sensor, exc)
        return wire.EnrollReply(ok=False, error="the central could not create the sensor's "
                                "broker login; try again in a minute")
    try:
        done = enroll.register(db, checked, broker_user=login)
    except enroll.EnrollmentError as exc:
        await admin.remove_client(login)
        return wire.EnrollReply(ok=False, error=str(exc)[:300])
    log.info("enrolled sensor %s (broker login %s) for %s / %s / %s", done.sensor, login,
             done.org, done.site, done.zone)
    return wire.EnrollReply(ok=True, sensor=done.sensor, org=done.org, site=done.site,
                            zone=done.zone, mqtt_username=login, mqtt_password=password,
                            central_jwk=signing.public_jwk(key))


async def reconcile(db: Database, admin: BrokerAdmin) -> None:
    """Create broker logins for new tokens; remove those of used or expired tokens and of
    revoked sensors; bind logins made before client ids were bound."""
    now = wire.utc_now()
    for token_id, secret in db.execute(
        "SELECT id, broker_secret FROM tokens WHERE broker_state = 'pending'"
        " AND used_at IS NULL AND expires_at > ?", [now]
    ).fetchall():
        await admin.add_client(wire.enroll_login(token_id), secret,
                               broker_admin.enrollment_role(token_id))
        db.execute("UPDATE tokens SET broker_state = 'created', broker_secret = NULL WHERE id = ?",
                   [token_id])
    grace = wire.format_ts(datetime.now(UTC) - timedelta(seconds=TOKEN_GRACE_S))
    for (token_id,) in db.execute(
        "SELECT id FROM tokens WHERE broker_state = 'created'"
        " AND ((used_at IS NOT NULL AND used_at < ?) OR expires_at <= ?)", [grace, now]
    ).fetchall():
        await admin.remove_client(wire.enroll_login(token_id))
        db.execute("UPDATE tokens SET broker_state = 'removed', broker_secret = NULL WHERE id = ?",
                   [token_id])
    for sensor, login in db.execute(
        "SELECT id, coalesce(broker_user, id) FROM sensors WHERE status = 'revoked'"
        " AND broker_state = 'active'"
    ).fetchall():
        try:
            await admin.remove_client(login)
        except broker_admin.BrokerAdminError as exc:
            log.error("revoked sensor %s: %s; remove it from the broker by hand", sensor, exc)
        db.execute("UPDATE sensors SET broker_state = 'removed' WHERE id = ?", [sensor])
        log.info("removed the broker access of revoked sensor %s", sensor)
    for sensor, login in db.execute(
        "SELECT id, broker_user FROM sensors WHERE status = 'active' AND broker_state = 'active'"
        " AND broker_user IS NOT NULL AND broker_client_id IS NULL"
    ).fetchall():
        client_id = f"netvagt-{sensor}"  # what those sensors' agents connect as
        try:
            await admin.bind_client_id(login, client_id)
        except broker_admin.BrokerAdminError as exc:
            log.error("sensor %s: cannot bind its login to a client id: %s", sensor, exc)
            client_id = ""  # tried; a person has to look (logged), do not retry every second
        db.execute("UPDATE sensors SET broker_client_id = ? WHERE id = ?", [client_id, sensor])


def store_status(db: Database, ingestor: Ingestor, topic: str, payload: bytes) -> None:
    """Keep a sensor's latest status if it is signed by that sensor; drop anything else."""
    try:
        header = signing.read_header(payload)
        sensor = ingestor.sensor_record(header.kid)
        if sensor is None:
            raise ValueError(f"unknown sensor {header.kid[:64]!r}")
        status = wire.Status.decode(signing.verify(payload, sensor.key, typ=signing.TYPE_STATUS))
        if (status.sensor, status.org) != (sensor.id, sensor.org) or topic != wire.status_topic(
            sensor.org, sensor.id
        ):
            raise ValueError("status names another sensor or came on another topic")
    except (signing.SignatureError, wire.WireError, ValueError) as exc:
        log.warning("ignoring a status on %r: %s", topic[:200], exc)
        return
    was = db.execute("SELECT json_extract(last_status, '$.state') FROM sensors WHERE id = ?",
                     [status.sensor]).fetchone()[0]
    db.execute(
        "UPDATE sensors SET last_status = ?, last_status_at = ? WHERE id = ?",
        [status.encode().decode(), status.at, status.sensor],
    )
    if status.state == "offline" and was != "offline":
        _send_again(db, status.sensor)


# A daemon that loses power says nothing: the broker sends its last will ('offline') once
# 1.5 keep-alives (aiomqtt's 60 s) have passed without a packet. Until then the central
# takes it for listening, and a plan sent then was lost with the connection.
LOST_WITH_A_DAEMON_S = 150.0


def _send_again(db: Database, sensor: str) -> None:
    """A sensor's daemon went offline: what was sent to it while it may already have been
    gone, and not answered, is sent again once it listens again. A plan is answered by its
    results; a scan command by any scan's findings received after it was sent (a scan
    that was under way then counts too: its findings are as fresh). The sensor runs a plan
    or command id once while it runs; one it did obey before a power loss (its findings
    still in its outbox) it runs again: a second scan, not a duplicate."""
    since = wire.format_ts(datetime.now(UTC) - timedelta(seconds=LOST_WITH_A_DAEMON_S))
    now = wire.utc_now()
    plans = db.execute(
        "UPDATE plans SET sent_at = NULL WHERE sensor_id = ? AND sent_at >= ? AND targets > 0"
        " AND expires_at > ? AND NOT EXISTS (SELECT 1 FROM reach r WHERE r.plan_id = plans.id)",
        [sensor, since, now]).rowcount
    commands = db.execute(
        "UPDATE commands SET sent_at = NULL WHERE sensor_id = ? AND sent_at >= ?"
        " AND expires_at > ? AND NOT EXISTS (SELECT 1 FROM messages m"
        "  WHERE m.sensor_id = commands.sensor_id AND m.received_at > commands.sent_at"
        "  AND NOT EXISTS (SELECT 1 FROM reach r WHERE r.msg_id = m.msg_id))",
        [sensor, since, now]).rowcount
    if plans or commands:
        log.info("sensor %s went offline: %d probe plan(s) and %d scan command(s) sent in its "
                 "last %d s will be sent again when it is back", sensor, plans, commands,
                 LOST_WITH_A_DAEMON_S)


def segmentation_round(db: Database, policy_path: Path, key: OKPKey,
                       evaluated: str | None = None, *, now: datetime | None = None
                       ) -> str | None:
    """After a sensor's scan, a probe plan for it; after new data, an evaluation.

    The policy file is read afresh each round, so an edit takes effect without a restart
    (and an invalid edit is logged, with its lines, and skipped)."""
    from central import plans, violations
    from central import policy as zone_policy

    try:
        policy = zone_policy.load(policy_path)
    except zone_policy.PolicyError as exc:
        log.error("zone policy not used:\n%s", exc)
        return evaluated
    zones = plans.sensor_zones(db, policy)
    # each active sensor's site and latest scan, read once a round (not once per sensor pair)
    scans = dict(db.execute("SELECT sensor_id, max(received_at) FROM messages WHERE assets > 0"
                            " GROUP BY sensor_id").fetchall())
    sites = dict(db.execute("SELECT id, site_id FROM sensors WHERE status = 'active'"
                            ).fetchall())
    for sensor, homes in zones.items():
        scanned = scans.get(sensor)
        siblings = [o for o, site in sites.items() if site == sites.get(sensor) and o != sensor]
        # what the site's other sensors reported last: new assets in another zone are
        # targets this sensor's plan did not have (the night's first plan had none)
        others = max((scans[o] for o in siblings if o in scans), default=None)
        waiting = (_still_to_scan(siblings, scans, scanned, now or datetime.now(UTC))
                   if scanned else [])
        for zone in homes:  # one plan per zone it stands in (a trunk: one per VLAN)
            _plan_round(db, policy, key, sensor, zone, scanned=scanned, others=others,
                        waiting=waiting)
    latest = db.execute("SELECT max(received_at) FROM messages").fetchone()[0]
    if latest and latest != evaluated:
        changes = violations.evaluate(db, policy)
        log.info("zone policy evaluated: %s", changes)
    return latest or evaluated


def _plan_round(db: Database, policy: Policy, key: OKPKey, sensor: str, zone: Zone, *,
                scanned: str | None, others: str | None, waiting: list[str]
                ) -> None:
    """Issue ``sensor``'s plan for ``zone`` if its scan is newer than its last plan there
    (once the site's other scans are in), or if the site's other zones reported new
    targets since."""
    from central import plans

    last = db.execute("SELECT issued_at, token FROM plans WHERE sensor_id = ? AND zone = ?"
                      " ORDER BY issued_at DESC LIMIT 1", [sensor, zone.name]).fetchone()
    planned = last[0] if last else None
    plan = None
    if scanned and (planned is None or planned < scanned):  # its own new scan
        if waiting:  # the second phase waits for the site's scans, up to a deadline
            log.info("probe plan for %s waits for the scans of %s (at most %d min after "
                     "its own)", sensor, ", ".join(waiting), PHASE_DEADLINE_S // 60)
            return
        plan = plans.plan_for(db, policy, sensor, zone=zone.name)
    elif scanned and others and planned is not None and planned < others:
        fresh = plans.plan_for(db, policy, sensor, zone=zone.name)
        if _targets_changed(fresh, last[1]):
            plan = fresh
    if plan is None:
        return
    plan, _ = plans.issue_plan(db, policy, sensor, key, plan=plan)
    if plan.targets:
        log.info("probe plan %s for %s in %s: %d targets", plan.id, sensor, zone.name,
                 len(plan.targets))
    else:
        log.warning("probe plan %s for %s in %s is empty: %s", plan.id, sensor, zone.name,
                    plans.empty_plan_cause(policy, zone))


# Probe plans are the night's second phase: a sensor's plan waits until the other sensors of
# its site have scanned too (their assets are its targets), or until this long after its
# own scan, whichever comes first. A sensor that has not scanned this night (within
# NIGHT_S of this one's scan) is waited for; one that is revoked or gone is not a sensor.
PHASE_DEADLINE_S = 45 * 60
NIGHT_S = 12 * 3600


def _still_to_scan(siblings: list[str], scans: dict[str, str], scanned: str,
                   now: datetime) -> list[str]:
    """The site's other active sensors that have not scanned since this night began, while
    the deadline after this sensor's scan has not passed; [] when the plan may go."""
    own = wire.parse_ts(scanned)
    if now >= own + timedelta(seconds=PHASE_DEADLINE_S):
        return []
    night = wire.format_ts(own - timedelta(seconds=NIGHT_S))
    return sorted(o for o in siblings if o not in scans or scans[o] < night)


def _targets_changed(fresh: wire.ProbePlan, token: str) -> bool:
    """Does a plan built now probe other addresses than the sensor's last one?"""
    try:
        last = wire.ProbePlan.decode(signing.peek_payload(token.encode()))
    except (signing.SignatureError, wire.WireError):
        return True
    return {t.ip for t in fresh.targets} != {t.ip for t in last.targets}


async def send_commands(db: Database, client: aiomqtt.Client, key: OKPKey) -> None:
    """Publish commands and probe plans issued since the last round, signed with the
    central's key, to the sensors listening now; the others' wait (until they expire)."""
    rows = db.execute(
        "SELECT c.id, c.sensor_id, s.org_id, c.command, c.profile, c.issued_at, c.expires_at"  # noqa: S608
        " FROM commands c JOIN sensors s ON s.id = c.sensor_id"
        f" WHERE c.sent_at IS NULL AND c.expires_at > ? AND {registry.LISTENING}",
        [wire.utc_now()],
    ).fetchall()
    for cid, sensor, org, command, profile, issued, expires in rows:
        body = wire.Command(id=cid, sensor=sensor, org=org, command=command, profile=profile,
                            issued_at=issued, expires_at=expires)
        token = signing.sign(body.encode(), key, kid=signing.CENTRAL_KID, typ=signing.TYPE_COMMAND)
        await client.publish(wire.commands_topic(org, sensor), token, qos=1)
        db.execute("UPDATE commands SET sent_at = ? WHERE id = ?", [wire.utc_now(), cid])
    # probe plans were signed when issued ('netvagt-central plan'); they travel the same way
    plans = db.execute(
        "SELECT p.id, p.sensor_id, s.org_id, p.token FROM plans p JOIN sensors s"  # noqa: S608
        " ON s.id = p.sensor_id WHERE p.sent_at IS NULL AND p.expires_at > ?"
        f" AND {registry.LISTENING}", [wire.utc_now()]).fetchall()
    for pid, sensor, org, token in plans:
        await client.publish(wire.commands_topic(org, sensor), token.encode(), qos=1)
        db.execute("UPDATE plans SET sent_at = ? WHERE id = ?", [wire.utc_now(), pid])

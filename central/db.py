"""The central inventory's storage: SQLite through sqlite-utils, evolved by numbered migrations.

Each migration is a function ``mNNN_name`` registered in :data:`migrations`; sqlite-utils
records the applied ones in the database, so :func:`open_db` brings any older file up to
date and a new file up from empty.

Sites are address spaces of their own (municipalities reuse private ranges), so an asset's
identity is scoped to its site: its MAC where one was seen on the wire, else its address.
"""

from __future__ import annotations

import ipaddress
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("netvagt")

BUSY_TIMEOUT_MS = 10_000  # wait this long for another writer before failing


def _run(db: Database, script: str) -> None:
    """Run statements one by one: ``executescript`` would commit the migration's transaction."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


@migrations()
def m001_core(db: Database) -> None:
    _run(
        db,
        """
        CREATE TABLE orgs (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL
        );
        CREATE TABLE sites (
            id INTEGER PRIMARY KEY,
            org_id TEXT NOT NULL REFERENCES orgs(id),
            name TEXT NOT NULL,
            UNIQUE (org_id, name)
        );
        CREATE TABLE zones (
            id INTEGER PRIMARY KEY,
            site_id INTEGER NOT NULL REFERENCES sites(id),
            name TEXT NOT NULL,
            UNIQUE (site_id, name)
        );
        CREATE TABLE sensors (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL REFERENCES orgs(id),
            site_id INTEGER NOT NULL REFERENCES sites(id),
            zone_id INTEGER REFERENCES zones(id),
            public_jwk TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'active',
            last_seq INTEGER NOT NULL DEFAULT 0,
            registered_at TEXT NOT NULL,
            last_message_at TEXT
        );
        """
    )


@migrations()
def m002_assets(db: Database) -> None:
    _run(
        db,
        """
        CREATE TABLE assets (
            id INTEGER PRIMARY KEY,
            site_id INTEGER NOT NULL REFERENCES sites(id),
            identity TEXT NOT NULL,          -- 'mac:00:11:..' or 'ip:10.0.0.5'
            mac TEXT,
            mac_vendor TEXT,
            mac_random INTEGER NOT NULL DEFAULT 0,
            hostname TEXT,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            UNIQUE (site_id, identity)
        );
        CREATE TABLE addresses (
            id INTEGER PRIMARY KEY,
            asset_id INTEGER NOT NULL REFERENCES assets(id),
            ip TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('probed', 'claimed')),
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            last_sensor TEXT,
            UNIQUE (asset_id, ip, kind)
        );
        CREATE INDEX addresses_ip ON addresses (ip);
        CREATE TABLE services (
            id INTEGER PRIMARY KEY,
            asset_id INTEGER NOT NULL REFERENCES assets(id),
            ip TEXT NOT NULL,
            proto TEXT NOT NULL,
            port INTEGER NOT NULL,
            state TEXT NOT NULL,
            name TEXT,
            product TEXT,
            version TEXT,
            extrainfo TEXT,
            banner TEXT,
            source TEXT,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            UNIQUE (asset_id, ip, proto, port)
        );
        CREATE TABLE observations (
            id INTEGER PRIMARY KEY,
            asset_id INTEGER NOT NULL REFERENCES assets(id),
            sensor_id TEXT NOT NULL REFERENCES sensors(id),
            scan_id TEXT NOT NULL,
            msg_id TEXT NOT NULL,
            ip TEXT NOT NULL,
            observed_at TEXT NOT NULL,
            rtt_ms REAL,
            sources TEXT NOT NULL
        );
        CREATE INDEX observations_asset ON observations (asset_id, observed_at);
        """
    )


@migrations()
def m003_ingest_log(db: Database) -> None:
    _run(
        db,
        """
        CREATE TABLE messages (
            msg_id TEXT PRIMARY KEY,
            sensor_id TEXT NOT NULL REFERENCES sensors(id),
            seq INTEGER NOT NULL,
            scan_id TEXT NOT NULL,
            part INTEGER NOT NULL,
            parts INTEGER NOT NULL,
            sent_at TEXT NOT NULL,
            received_at TEXT NOT NULL,
            assets INTEGER NOT NULL,
            UNIQUE (sensor_id, seq)
        );
        CREATE TABLE rejections (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            reason TEXT NOT NULL,
            sensor TEXT,
            topic TEXT,
            size INTEGER NOT NULL,
            detail TEXT
        );
        CREATE TABLE message_counts (
            reason TEXT PRIMARY KEY,
            count INTEGER NOT NULL
        );
        """
    )


@migrations()
def m004_enrollment(db: Database) -> None:
    _run(
        db,
        """
        CREATE TABLE tokens (
            id TEXT PRIMARY KEY,               -- 12 hex digits, public
            secret_hash TEXT NOT NULL,         -- sha256 of the secret
            broker_secret TEXT,                -- kept only until the broker client exists
            org_id TEXT NOT NULL REFERENCES orgs(id),
            site_id INTEGER NOT NULL REFERENCES sites(id),
            zone_id INTEGER REFERENCES zones(id),
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            used_at TEXT,
            sensor_id TEXT REFERENCES sensors(id),
            broker_state TEXT NOT NULL DEFAULT 'pending'  -- pending | created | removed
        );
        ALTER TABLE sensors ADD COLUMN broker_state TEXT NOT NULL DEFAULT 'none';
        ALTER TABLE sensors ADD COLUMN revoked_at TEXT;
        ALTER TABLE sensors ADD COLUMN hostname TEXT
        """,
    )


@migrations()
def m005_status_commands(db: Database) -> None:
    _run(
        db,
        """
        ALTER TABLE sensors ADD COLUMN last_status TEXT;
        ALTER TABLE sensors ADD COLUMN last_status_at TEXT;
        CREATE TABLE commands (
            id TEXT PRIMARY KEY,
            sensor_id TEXT NOT NULL REFERENCES sensors(id),
            command TEXT NOT NULL,
            profile TEXT,
            issued_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            issued_by TEXT,
            sent_at TEXT
        )
        """,
    )


@migrations()
def m006_identity(db: Database) -> None:
    _run(
        db,
        """
        ALTER TABLE assets ADD COLUMN device_type TEXT;
        ALTER TABLE assets ADD COLUMN vendor TEXT;
        ALTER TABLE assets ADD COLUMN product TEXT;
        ALTER TABLE assets ADD COLUMN model TEXT;
        ALTER TABLE assets ADD COLUMN version TEXT;
        ALTER TABLE assets ADD COLUMN os TEXT;
        ALTER TABLE assets ADD COLUMN identity_confidence REAL;
        ALTER TABLE assets ADD COLUMN identity_evidence TEXT;
        ALTER TABLE assets ADD COLUMN identity_conflicts TEXT;
        ALTER TABLE assets ADD COLUMN identified_at TEXT
        """,
    )


@migrations()
def m007_facts(db: Database) -> None:
    """Every string a device said about itself, kept (not only those a rule matched): host
    names, SNMP engine ids, certificate fingerprints tie one device's addresses together."""
    _run(
        db,
        """
        CREATE TABLE facts (
            id INTEGER PRIMARY KEY,
            asset_id INTEGER NOT NULL REFERENCES assets(id),
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            source TEXT,
            ip TEXT NOT NULL,
            sensor_id TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            UNIQUE (asset_id, key, value, ip)
        );
        CREATE INDEX facts_key_value ON facts (key, value)
        """,
    )


@migrations()
def m008_segmentation(db: Database) -> None:
    """Probe plans sent to sensors, what they found, and the violations with their history."""
    _run(
        db,
        """
        CREATE TABLE plans (
            id TEXT PRIMARY KEY,
            sensor_id TEXT NOT NULL REFERENCES sensors(id),
            zone TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            targets INTEGER NOT NULL,
            token TEXT NOT NULL,
            sent_at TEXT
        );
        CREATE TABLE reach (
            id INTEGER PRIMARY KEY,
            plan_id TEXT NOT NULL,
            sensor_id TEXT NOT NULL,
            msg_id TEXT NOT NULL,
            ip TEXT NOT NULL,
            proto TEXT NOT NULL,
            port INTEGER NOT NULL,
            state TEXT NOT NULL,
            rtt_ms REAL,
            observed_at TEXT NOT NULL
        );
        CREATE INDEX reach_plan ON reach (plan_id, sensor_id);
        CREATE TABLE violations (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            severity TEXT NOT NULL,
            site TEXT,
            zone TEXT,
            other_zone TEXT,
            asset_id INTEGER REFERENCES assets(id),
            title TEXT NOT NULL,
            evidence TEXT NOT NULL,
            nis2 TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN
                ('open', 'acknowledged', 'accepted', 'false_positive', 'resolved')),
            accepted_until TEXT,
            decision_reason TEXT,
            reviewer TEXT,
            reviewed_at TEXT,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            resolved_at TEXT
        );
        CREATE TABLE violation_events (
            id INTEGER PRIMARY KEY,
            violation_id INTEGER NOT NULL REFERENCES violations(id),
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            old_status TEXT,
            new_status TEXT NOT NULL,
            reason TEXT NOT NULL
        );
        CREATE TABLE zone_baselines (
            zone TEXT PRIMARY KEY,
            established_at TEXT NOT NULL
        )
        """,
    )


@migrations()
def m009_broker_identity(db: Database) -> None:
    """The broker login the central drew for each sensor, and the client id it is bound to.
    Sensors enrolled before used their sensor id as login, with no client id bound yet."""
    _run(
        db,
        """
        ALTER TABLE sensors ADD COLUMN broker_user TEXT;
        ALTER TABLE sensors ADD COLUMN broker_client_id TEXT;
        UPDATE sensors SET broker_user = id WHERE broker_state IN ('active', 'pending')
        """,
    )


@migrations()
def m010_approved_assets(db: Database) -> None:
    """The municipality's list of approved assets per site (netvagt-central inventory
    import): a device on none of its lines is an 'unapproved_device'."""
    _run(
        db,
        """
        CREATE TABLE approved_assets (
            id INTEGER PRIMARY KEY,
            site_id INTEGER NOT NULL REFERENCES sites(id),
            mac TEXT,
            ip TEXT,
            owner TEXT,
            device_type TEXT,
            imported_at TEXT NOT NULL,
            CHECK (mac IS NOT NULL OR ip IS NOT NULL)
        );
        CREATE INDEX approved_by_site ON approved_assets (site_id)
        """,
    )


@contextmanager
def immediate(db: Database) -> Iterator[Database]:
    """One write transaction that takes the write lock at its start (BEGIN IMMEDIATE): for
    work that reads and then writes, which a deferred transaction could not upgrade once
    another writer committed. Commits at the end, rolls back on any exception."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


@migrations()
def m011_reach_ttl(db: Database) -> None:
    """The IP TTL of a probe's answer: an answer from another zone that crossed no router
    (64, 128, 255) came from a device on the sensor's own segment."""
    _run(db, "ALTER TABLE reach ADD COLUMN ttl INTEGER")


@migrations()
def m012_vulnerabilities(db: Database) -> None:
    """Known vulnerabilities imported offline (CISA KEV, NVD CVE records), the vulnerable
    CPE ranges, and which assets fall in them; the CPE an identity carried."""
    _run(
        db,
        """
        ALTER TABLE assets ADD COLUMN cpe TEXT;
        CREATE TABLE vuln_cves (
            cve TEXT PRIMARY KEY,
            description TEXT,
            cvss REAL,
            cvss_severity TEXT,
            published TEXT,
            kev INTEGER NOT NULL DEFAULT 0,
            kev_added TEXT,
            kev_due TEXT,
            kev_ransomware TEXT,
            kev_vendor TEXT,
            kev_product TEXT,
            kev_name TEXT
        );
        CREATE TABLE vuln_ranges (
            id INTEGER PRIMARY KEY,
            cve TEXT NOT NULL REFERENCES vuln_cves(cve),
            criteria TEXT NOT NULL,
            vendor TEXT NOT NULL,
            product TEXT NOT NULL,
            version TEXT NOT NULL,
            start_incl TEXT,
            start_excl TEXT,
            end_incl TEXT,
            end_excl TEXT
        );
        CREATE INDEX vuln_ranges_cve ON vuln_ranges (cve);
        CREATE INDEX vuln_ranges_vendor ON vuln_ranges (vendor, product);
        CREATE TABLE asset_vulns (
            asset_id INTEGER NOT NULL REFERENCES assets(id),
            cve TEXT NOT NULL REFERENCES vuln_cves(cve),
            status TEXT NOT NULL CHECK (status IN ('affected', 'possibly_affected')),
            criteria TEXT NOT NULL,
            matched_at TEXT NOT NULL,
            PRIMARY KEY (asset_id, cve)
        )
        """,
    )


@migrations()
def m013_events(db: Database) -> None:
    """The event stream (violations, devices, sensors), what each device and sensor was at
    the last look, and the notifier's durable queue and digests."""
    _run(
        db,
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            severity TEXT NOT NULL,
            org TEXT,
            site TEXT,
            zone TEXT,
            title TEXT NOT NULL,
            data TEXT NOT NULL,
            asset_id INTEGER,
            sensor_id TEXT,
            violation_id INTEGER,
            routed INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX events_at ON events (at);
        CREATE INDEX events_routed ON events (routed);
        CREATE TABLE asset_states (
            asset_id INTEGER PRIMARY KEY REFERENCES assets(id),
            state TEXT NOT NULL,
            gone INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE sensor_states (
            sensor_id TEXT PRIMARY KEY,
            online INTEGER,
            outbox_high INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            event_id INTEGER REFERENCES events(id),
            digest TEXT,
            channel TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at TEXT NOT NULL,
            last_error TEXT,
            sent_at TEXT,
            UNIQUE (event_id, channel),
            UNIQUE (digest, channel)
        );
        CREATE INDEX deliveries_due ON deliveries (state, next_at);
        CREATE TABLE digests (
            org TEXT NOT NULL,
            day TEXT NOT NULL,
            through_event INTEGER NOT NULL,
            made_at TEXT NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (org, day)
        )
        """,
    )


@migrations()
def m014_register(db: Database) -> None:
    """The team's own assessment of a risk-register row: likelihood, consequence, measure,
    responsible person and deadline, kept across evaluations."""
    _run(
        db,
        """
        CREATE TABLE register_entries (
            violation_id INTEGER PRIMARY KEY REFERENCES violations(id),
            likelihood INTEGER CHECK (likelihood BETWEEN 1 AND 5),
            consequence INTEGER CHECK (consequence BETWEEN 1 AND 5),
            measure TEXT,
            responsible TEXT,
            deadline TEXT,
            updated_by TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
    )


@migrations()
def m015_ownership(db: Database) -> None:
    """Who owns an asset, its tags and notes; rules that set them per zone or CIDR."""
    _run(
        db,
        """
        CREATE TABLE asset_owners (
            asset_id INTEGER PRIMARY KEY REFERENCES assets(id),
            owner TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            notes TEXT,
            updated_by TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE owner_rules (
            id INTEGER PRIMARY KEY,
            zone TEXT,
            cidr TEXT,
            owner TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            CHECK ((zone IS NULL) != (cidr IS NULL))
        )
        """,
    )


@migrations()
def m016_users(db: Database) -> None:
    """The console's users, their organisations, sessions, API tokens and failed logins;
    each violation's organisation, so that a user sees only their own."""
    _run(
        db,
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('viewer', 'reviewer', 'admin')),
            created_at TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE user_orgs (
            user_id INTEGER NOT NULL REFERENCES users(id),
            org_id TEXT NOT NULL REFERENCES orgs(id),
            PRIMARY KEY (user_id, org_id)
        );
        CREATE TABLE web_sessions (
            id TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id),
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL
        );
        CREATE TABLE api_tokens (
            id TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id),
            name TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL
        );
        CREATE TABLE login_failures (
            username TEXT NOT NULL,
            address TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX login_failures_at ON login_failures (at);
        ALTER TABLE violations ADD COLUMN org TEXT
        """,
    )


@migrations()
def m017_console(db: Database) -> None:
    """What the console's lists and detail pages look up by (a page of 100,000 assets and
    10,000 violations over 20 organisations reads its rows, not the whole table); the audit
    log of who exported, edited or administered what."""
    _run(
        db,
        """
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            org TEXT,
            detail TEXT NOT NULL
        );
        CREATE INDEX audit_org ON audit (org, id);
        ALTER TABLE owner_rules ADD COLUMN org TEXT;
        CREATE INDEX violations_org_status ON violations (org, status);
        CREATE INDEX violations_asset ON violations (asset_id);
        CREATE INDEX violation_events_violation ON violation_events (violation_id);
        CREATE INDEX events_asset ON events (asset_id);
        CREATE INDEX events_org ON events (org, id);
        CREATE INDEX sites_org ON sites (org_id)
        """,
    )


@migrations()
def m018_port_vlans(db: Database) -> None:
    """What each sensor's latest scan heard of its own switch port, and that scan's time:
    the other VLANs whose tagged frames reached it (JSON: its list of wire.PortVlan; '[]'
    when none), and what the port said of trunking (wire.PortTrunking)."""
    _run(
        db,
        """
        ALTER TABLE sensors ADD COLUMN port_vlans TEXT;
        ALTER TABLE sensors ADD COLUMN port_trunking TEXT;
        ALTER TABLE sensors ADD COLUMN port_vlans_at TEXT
        """,
    )


def ip_order(ip: str | None) -> str:
    """An address as text that sorts IPv4 before IPv6 and both numerically; none last
    (SQLite's integers hold no IPv6 address)."""
    parts = (ip or "").split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts):  # the usual case
        a, b, c, d = map(int, parts)
        if max(a, b, c, d) < 256:
            return f"4{(a << 24 | b << 16 | c << 8 | d):032x}"
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return "9"
    return f"{address.version}{int(address):032x}"


class InventoryError(RuntimeError):
    """The inventory database is missing, unreadable or not one of ours; the message says
    which file and why, in one line."""


def open_db(path: str | Path, *, create: bool = True, one_thread: bool = True) -> Database:
    """Open the inventory, in WAL mode, with every migration applied.

    ``create``: make a missing file (mode 0600, in a folder made 0700): the commands that
    write. A read command passes False and is refused on a missing file, instead of making
    one and reporting an empty inventory."""
    path = Path(path)
    if not path.exists():
        if not create:
            raise InventoryError(f"{path}: no inventory here (create one with "
                                 f"'netvagt-central init --db {path}', or give --db)")
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        # one_thread=False: a connection handed from thread to thread, used by one at a time
        # (a web request's: opened in one worker thread, used in another)
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=one_thread)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.create_function("ip_order", 1, ip_order, deterministic=True)  # sorting addresses
        db = Database(conn)
        if db.journal_mode != "wal":
            db.enable_wal()
        conn.execute("PRAGMA synchronous = FULL")  # a commit survives power loss; batches amortise it
        migrations.apply(db)
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        raise InventoryError(f"{path}: not a readable netvagt inventory ({exc})") from None
    return db

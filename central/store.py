"""Inventory storage: an accepted message's assets, services, facts, claimed addresses,
identities and probe results, written into the open transaction.

Assets are found by MAC within their site, else by address (an address first seen without
a MAC keeps its own asset until a sensor on its link sees the MAC).
"""

from __future__ import annotations

import ipaddress
import json
import sqlite3
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from agent.wire import Asset, Findings
from central.verify import SensorKey
from fingerprints.classify import Identity, classify_device
from fingerprints.observation import CLAIM_KEY, CLAIM_KEYS

# identities' columns kept as written (see Store._identity_values): as many as the classifier
# keeps identities, and only small ones (it keeps none for a device that said a lot)
IDENTITY_COLUMNS_KEPT = 2048
MAX_KEPT_EVIDENCE_CHARS = 8192
MAX_REJECTION_ROWS = 10_000  # the rejection log keeps the newest this many; counters keep all
ADDRESS_UPSERT = (  # probed or claimed: (asset, ip, kind, first seen, last seen, sensor)
    "INSERT INTO addresses (asset_id, ip, kind, first_seen, last_seen, last_sensor)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (asset_id, ip, kind) DO UPDATE SET"
    " last_seen = max(last_seen, excluded.last_seen), last_sensor = excluded.last_sensor")
# the names a device goes by, surest first; an mDNS host name only where the device said one:
# a reflector or a sleep proxy repeats other devices' names, several in one scan
HOSTNAME_KEYS = ("netbios.name", "dhcp.hostname", "snmp.sysname", "lldp.sysname",
                 "mdns.hostname")
REPEATED_NAMES = frozenset({"mdns.hostname"})
SERVICE_UPSERT = (
    "INSERT INTO services (asset_id, ip, proto, port, state, name, product, version, extrainfo,"
    " banner, source, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (asset_id, ip, proto, port) DO UPDATE SET state = excluded.state,"
    " name = coalesce(excluded.name, name), product = coalesce(excluded.product, product),"
    " version = coalesce(excluded.version, version),"
    " extrainfo = coalesce(excluded.extrainfo, extrainfo),"
    " banner = coalesce(excluded.banner, banner), source = excluded.source,"
    " last_seen = max(last_seen, excluded.last_seen)")
# A fact is one row whatever said it; where the sensor's own knowledge said it (its routes,
# its VLAN configuration: a segment's router) that source stays, so a router that also
# advertises itself is not taken for a device's own word (detectors._routed)
TRUSTED_SOURCES = ("route", "config")
FACT_UPSERT = (
    "INSERT INTO facts (asset_id, key, value, source, ip, sensor_id, first_seen, last_seen)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (asset_id, key, value, ip)"
    " DO UPDATE SET last_seen = max(last_seen, excluded.last_seen),"
    " sensor_id = excluded.sensor_id,"
    " source = CASE WHEN excluded.source IN ('route', 'config') THEN excluded.source"
    " ELSE source END")
IDENTITY_UPDATE = (
    "UPDATE assets SET device_type = ?, vendor = ?, product = ?, model = ?, version = ?, os = ?,"
    " cpe = ?, identity_confidence = ?, identity_evidence = ?, identity_conflicts = ?,"
    " identified_at = ? WHERE id = ?"
    # the last parameter: an identity from the MAC alone (an address that said nothing: a
    # dual-stack device's IPv6 address answering a ping, in another part of the scan)
    # replaces no identity from what the device said
    " AND (NOT ? OR NOT EXISTS (SELECT 1 FROM json_each(coalesce(identity_evidence, '[]'))"
    " WHERE json_extract(value, '$.source') IS NOT 'mac'))")


@lru_cache(maxsize=256)
def _sources_json(sources: tuple[str, ...]) -> str:
    """Which probes saw an asset, as the observations table keeps it (a handful of lists)."""
    return json.dumps(list(sources))


class _Rows:
    """One message's rows beyond its assets and probed addresses, written together."""

    def __init__(self) -> None:
        self.services: list[tuple[Any, ...]] = []
        self.facts: list[tuple[Any, ...]] = []
        self.claims: list[tuple[Any, ...]] = []
        self.hostnames: list[tuple[Any, ...]] = []
        self.identities: list[tuple[Any, ...]] = []
        self.observations: list[tuple[Any, ...]] = []

    def write(self, conn: sqlite3.Connection) -> None:
        conn.executemany(SERVICE_UPSERT, self.services)
        conn.executemany(ADDRESS_UPSERT, self.claims)
        conn.executemany(FACT_UPSERT, self.facts)
        conn.executemany("UPDATE assets SET hostname = ? WHERE id = ?", self.hostnames)
        conn.executemany(IDENTITY_UPDATE, self.identities)
        conn.executemany(
            "INSERT INTO observations (asset_id, sensor_id, scan_id, msg_id, ip, observed_at,"
            " rtt_ms, sources) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self.observations)


ASSET_UPDATE = (  # what a sighting changes on a known asset; the same as the upsert's
    "UPDATE assets SET mac_vendor = coalesce(?, mac_vendor), mac_random = ?,"
    " hostname = coalesce(?, hostname), first_seen = min(first_seen, ?),"
    " last_seen = max(last_seen, ?) WHERE id = ?")
ASSET_INSERT = (
    "INSERT INTO assets (site_id, identity, mac, mac_vendor, mac_random, hostname,"
    " first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
ASSET_UPSERT = (
    ASSET_INSERT
    + " ON CONFLICT (site_id, identity) DO UPDATE SET"
    " mac_vendor = coalesce(excluded.mac_vendor, mac_vendor),"
    " mac_random = excluded.mac_random,"
    " hostname = coalesce(excluded.hostname, hostname),"
    " first_seen = min(first_seen, excluded.first_seen),"
    " last_seen = max(last_seen, excluded.last_seen)"
    " RETURNING id")
LOOKUP_CHUNK = 400  # identities per look-up query (SQLite's variable limit is far above)


class _Assets:
    """Finds or creates one message's assets: by MAC within the site, else by address
    within the site.

    An address first seen without a MAC (routed, ICMP) is kept as its own asset until a
    sensor on its link sees its MAC; then that asset takes the MAC as its identity.

    The message's known identities are looked up in one query, and the sightings of known
    assets and their probed addresses are written together (:meth:`flush`), so a message of
    known devices costs a few statements, not four per asset. An asset without a MAC is
    looked up by its probed address, so what is pending is written first: the asset before
    it in the message may be the one it is found by.
    """

    def __init__(self, conn: sqlite3.Connection, site_id: int, assets: Sequence[Asset],
                 observed: str) -> None:
        self.conn = conn
        self.site_id = site_id
        self.observed = observed
        self.probed: list[tuple[Any, ...]] = []  # ADDRESS_UPSERT rows
        self.seen: list[tuple[Any, ...]] = []  # ASSET_UPDATE rows
        wanted = sorted({f"{kind}:{value}" for a in assets if a.mac is not None
                         for kind, value in (("mac", a.mac), ("ip", a.ip))})
        self.known: dict[str, int] = self._ids(wanted)
        # inserted together below, not yet resolved: their first sighting is their insert
        self.fresh: set[str] = set()
        if all(a.mac is not None for a in assets):
            self._insert_new(assets)

    def _ids(self, identities: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for at in range(0, len(identities), LOOKUP_CHUNK):
            chunk = identities[at:at + LOOKUP_CHUNK]
            placeholders = ", ".join("?" * len(chunk))  # only placeholders go in the text
            found.update(self.conn.execute(
                "SELECT identity, id FROM assets WHERE site_id = ? AND identity IN"  # noqa: S608
                f" ({placeholders})", (self.site_id, *chunk)).fetchall())
        return found

    def _insert_new(self, assets: Sequence[Asset]) -> None:
        """Insert the message's new devices in one statement, when every asset has a MAC
        (an asset without one may leave an address-only asset that a later one promotes,
        so then each is resolved in turn). A MAC whose address-only asset exists is
        promoted in turn, as are its later sightings."""
        rows: list[tuple[Any, ...]] = []
        decided: set[str] = set()
        for asset in assets:
            identity = f"mac:{asset.mac}"
            if identity in decided or identity in self.known:
                continue
            decided.add(identity)
            if f"ip:{asset.ip}" not in self.known:
                rows.append((self.site_id, identity, asset.mac, asset.mac_vendor,
                             int(asset.mac_random), asset.hostname, self.observed,
                             self.observed))
        if rows:
            self.conn.executemany(ASSET_INSERT, rows)
            inserted = self._ids([row[1] for row in rows])
            self.known.update(inserted)
            self.fresh.update(inserted)

    def resolve(self, asset: Asset) -> int:
        if asset.mac is None:
            return self._by_address(asset)
        identity = f"mac:{asset.mac}"
        if identity in self.fresh:  # its insert was its first sighting
            self.fresh.discard(identity)
            return self.known[identity]
        known = self.known.get(identity)
        if known is None:
            address_only = self.known.pop(f"ip:{asset.ip}", None)
            if address_only is not None:  # promote it now that its MAC is known
                self.conn.execute("UPDATE assets SET identity = ?, mac = ? WHERE id = ?",
                                  (identity, asset.mac, address_only))
                known = self.known[identity] = address_only
        if known is None:
            known = self.known[identity] = self._insert(identity, asset)
        else:
            self.seen.append((asset.mac_vendor, int(asset.mac_random), asset.hostname,
                              self.observed, self.observed, known))
        return known

    def _by_address(self, asset: Asset) -> int:
        self.flush()
        row = self.conn.execute(
            "SELECT a.id FROM assets a JOIN addresses d ON d.asset_id = a.id"
            " WHERE a.site_id = ? AND d.ip = ? AND d.kind = 'probed'"
            " ORDER BY d.last_seen DESC LIMIT 1",
            (self.site_id, asset.ip),
        ).fetchone()
        if row is not None:
            self.conn.execute(
                "UPDATE assets SET last_seen = max(last_seen, ?),"
                " hostname = coalesce(?, hostname) WHERE id = ?",
                (self.observed, asset.hostname, row[0]),
            )
            return int(row[0])
        identity = f"ip:{asset.ip}"
        self.known[identity] = asset_id = self._insert(identity, asset)
        return asset_id

    def _insert(self, identity: str, asset: Asset) -> int:
        row = self.conn.execute(ASSET_UPSERT, (
            self.site_id, identity, asset.mac, asset.mac_vendor, int(asset.mac_random),
            asset.hostname, self.observed, self.observed)).fetchone()
        return int(row[0])

    def flush(self) -> None:
        """Write the pending sightings and probed addresses."""
        if self.seen:
            self.conn.executemany(ASSET_UPDATE, self.seen)
            self.seen.clear()
        if self.probed:
            self.conn.executemany(ADDRESS_UPSERT, self.probed)
            self.probed.clear()


class Store:
    """Writes accepted findings on one connection, inside the caller's transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._identity_columns: dict[int, tuple[Identity, tuple[Any, ...] | None]] = {}

    def findings(self, sensor: SensorKey, findings: Findings, received_at: str) -> None:
        conn = self.conn
        conn.execute(
            "INSERT INTO messages (msg_id, sensor_id, seq, scan_id, part, parts, sent_at,"
            " received_at, assets) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                findings.msg_id,
                sensor.id,
                findings.seq,
                findings.scan_id,
                findings.part,
                findings.parts,
                findings.sent_at,
                received_at,
                len(findings.assets),
            ),
        )
        conn.execute(
            "UPDATE sensors SET last_seq = max(last_seq, ?), last_message_at = ? WHERE id = ?",
            (findings.seq, received_at, sensor.id),
        )
        observed = findings.scan_finished_at
        if findings.plan_id is None:  # a scan: what its port carried, unless a later one said
            conn.execute(
                "UPDATE sensors SET port_vlans = ?, port_trunking = ?, port_vlans_at = ?"
                " WHERE id = ? AND coalesce(port_vlans_at, '') <= ?",
                (json.dumps([v.to_dict() for v in findings.port_vlans]),
                 json.dumps([t.to_dict() for t in findings.port_trunking]), observed,
                 sensor.id, observed))
        else:
            # a plan's results once: the central sends a plan again after its sensor went
            # offline, and a sensor that had run it (its results still in its outbox) after
            # a restart runs it again; the first result of each probe is kept
            conn.executemany(
                "INSERT INTO reach (plan_id, sensor_id, msg_id, ip, proto, port, state, rtt_ms,"
                " ttl, observed_at) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS"
                " (SELECT 1 FROM reach WHERE plan_id = ?1 AND sensor_id = ?2 AND ip = ?4"
                " AND proto = ?5 AND port = ?6 AND msg_id != ?3)",
                [(findings.plan_id, sensor.id, findings.msg_id, p.ip, p.proto, p.port, p.state,
                  p.rtt_ms, p.ttl, observed) for p in findings.probes])
        rows = _Rows()
        assets = _Assets(conn, sensor.site_id, findings.assets, observed)
        # one device's addresses (IPv4 and IPv6, or two legs) are named by all they said
        said: dict[int, tuple[Asset, list[Any]]] = {}
        for asset in findings.assets:
            asset_id = assets.resolve(asset)
            assets.probed.append((asset_id, asset.ip, "probed", observed, observed, sensor.id))
            rows.services.extend(
                (asset_id, asset.ip, s.proto, s.port, s.state, s.name, s.product, s.version,
                 s.extrainfo, s.banner, s.source, observed, observed) for s in asset.services)
            self._facts(rows, asset_id, asset, sensor.id, observed)
            kept = said.get(asset_id)
            if kept is None or (asset.mac and not kept[0].mac):  # named with its MAC's maker
                said[asset_id] = kept = (asset, kept[1] if kept else [])
            kept[1].extend(asset.observations)
            rows.observations.append((asset_id, sensor.id, findings.scan_id, findings.msg_id,
                                      asset.ip, observed, asset.rtt_ms,
                                      _sources_json(asset.sources)))
        for asset_id, (asset, observations) in said.items():
            self._identify(rows, asset_id, asset, observations, observed)
        assets.flush()
        rows.write(conn)

    def _facts(self, rows: _Rows, asset_id: int, asset: Asset, sensor_id: str,
               observed: str) -> None:
        """Keep what the device said; addresses it only claims go apart from probed ones."""
        for item in asset.observations:
            if item.key not in CLAIM_KEYS:
                rows.facts.append((asset_id, item.key, item.value, item.source, asset.ip,
                                   sensor_id, observed, observed))
                continue
            try:  # each key holds its own family's addresses, written the one way
                family = ipaddress.IPv4Address if item.key == CLAIM_KEY else ipaddress.IPv6Address
                claimed = str(family(item.value))
            except ValueError:
                continue
            rows.claims.append((asset_id, claimed, "claimed", observed, observed, sensor_id))
        named: dict[str, list[str]] = {}
        for item in asset.observations:
            if item.key in HOSTNAME_KEYS:
                named.setdefault(item.key, []).append(item.value)
        hostname = next((named[k][-1] for k in HOSTNAME_KEYS if k in named
                         and (k not in REPEATED_NAMES or len(set(named[k])) == 1)), None)
        if hostname and asset.hostname is None:
            rows.hostnames.append((hostname[:255], asset_id))

    def _identify(self, rows: _Rows, asset_id: int, asset: Asset,
                  observations: list[Any], observed: str) -> None:
        """Name the device from what it said (and its MAC), keeping the evidence."""
        identity = classify_device(
            observations, mac=asset.mac, mac_random=asset.mac_random, mac_vendor=asset.mac_vendor)
        values = self._identity_values(identity)
        if values is None:  # nothing new: keep what an earlier, fuller scan found
            return
        by_mac = all(e.source == "mac" for e in identity.evidence)
        rows.identities.append((*values, observed, asset_id, by_mac))

    def _identity_values(self, identity: Identity) -> tuple[Any, ...] | None:
        """An identity's columns, its evidence as JSON, or None if it names nothing; kept
        for identities the classifier keeps (the same object comes back for devices that
        say the same things)."""
        kept = self._identity_columns.get(id(identity))
        if kept is not None and kept[0] is identity:
            return kept[1]
        values: tuple[Any, ...] | None = None
        if identity.names_anything:
            evidence = [{"rule": e.rule, "key": e.key, "value": e.value, "source": e.source,
                         "fields": e.fields, "confidence": e.confidence}
                        for e in identity.evidence]
            values = (identity.device_type, identity.vendor, identity.product, identity.model,
                      identity.version, identity.os, identity.cpe, round(identity.confidence, 3),
                      json.dumps(evidence), json.dumps(list(identity.conflicts)))
        if values is not None and len(values[8]) > MAX_KEPT_EVIDENCE_CHARS:
            return values  # a device that said a lot: its identity is not kept either
        if len(self._identity_columns) >= IDENTITY_COLUMNS_KEPT:
            self._identity_columns.clear()
        # the identity itself is kept beside its columns, so its id cannot be reused meanwhile
        self._identity_columns[id(identity)] = (identity, values)
        return values

    def outcomes(self, tally: Counter[str], rejections: Sequence[tuple[str, str | None, str, int, str]],
                 at: str) -> None:
        """Count a batch's outcomes by reason and log its rejections (reason, sensor, topic,
        size, detail), keeping the newest MAX_REJECTION_ROWS."""
        conn = self.conn
        conn.executemany(
            "INSERT INTO message_counts (reason, count) VALUES (?, ?)"
            " ON CONFLICT (reason) DO UPDATE SET count = count + excluded.count",
            list(tally.items()),
        )
        if rejections:
            conn.executemany(
                "INSERT INTO rejections (at, reason, sensor, topic, size, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(at, reason, sensor, topic[:200], size, detail)
                 for reason, sensor, topic, size, detail in rejections],
            )
            conn.execute(
                "DELETE FROM rejections WHERE id <= (SELECT max(id) FROM rejections) - ?",
                (MAX_REJECTION_ROWS,),
            )

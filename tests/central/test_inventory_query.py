"""The console's asset query: filters in SQL, pages in address order (IPv4 before IPv6,
numerically), and a total that counts every match, not the page."""

from __future__ import annotations

import uuid

from sqlite_utils import Database

from agent import signing, wire
from agent.wire import Asset, Findings, Service
from central import inventory, registry
from central.ingest import Ingestor


def _scan(db: Database, org: str, ips: list[str]) -> None:
    key = signing.generate_private_key()
    sensor = f"s-{org}"
    registry.add_sensor(db, sensor=sensor, org=org, site="raadhus",
                        public_jwk=signing.public_jwk(key))
    at = wire.utc_now()
    assets = tuple(Asset(ip=ip, mac=f"ac:cc:8e:00:00:{n:02x}", sources=("arp",),
                         hostname=f"cam_{n}%", services=(Service(port=80, name="http"),))
                   for n, ip in enumerate(ips))
    findings = Findings(sensor=sensor, org=org, seq=1, msg_id=uuid.uuid4().hex,
                        scan_id=uuid.uuid4().hex, sent_at=at, scan_started_at=at,
                        scan_finished_at=at, assets=assets)
    assert Ingestor(db).ingest(wire.findings_topic(org, sensor),
                               signing.sign(findings.encode(), key, kid=sensor)).accepted


def test_pages_come_in_address_order_with_the_total_and_stay_in_the_organisation(
        db: Database) -> None:
    _scan(db, "aarhus", ["10.0.0.10", "fd00::5", "10.0.0.9", "10.0.0.100", "9.1.1.1"])
    _scan(db, "odense", ["10.0.0.1"])
    mine = frozenset({"aarhus"})
    pages = [inventory.find(db, inventory.AssetQuery(orgs=mine), limit=2, offset=start)
             for start in (0, 2, 4)]
    assert [total for _, total in pages] == [5, 5, 5]
    order = [a.addresses[0] for rows, _ in pages for a in rows]
    assert order == ["9.1.1.1", "10.0.0.9", "10.0.0.10", "10.0.0.100", "fd00::5"]
    # LIKE's wildcards in a search are text, not patterns
    assert inventory.find(db, inventory.AssetQuery(orgs=mine, q="_1%"))[1] == 1  # cam_1%
    assert inventory.find(db, inventory.AssetQuery(orgs=mine, q="%"))[1] == 5
    assert inventory.find(db, inventory.AssetQuery(orgs=mine, q="x%y"))[1] == 0
    assert inventory.find(db, inventory.AssetQuery(orgs=mine, q="10.0.0.1"))[1] == 2
    assert inventory.find(db, inventory.AssetQuery(orgs=mine), limit=0) == ([], 5)


def test_an_asset_with_several_addresses_sorts_by_its_lowest(db: Database) -> None:
    """Numerically lowest, not by text: an asset at 10.0.0.50 that also answers at 10.0.0.9
    comes before one at 10.0.0.20 (as text, "10.0.0.50" would be its lowest)."""
    _scan(db, "aarhus", ["10.0.0.50", "10.0.0.20"])
    both = dict(db.execute("SELECT d.ip, d.asset_id FROM addresses d").fetchall())
    db.execute("INSERT INTO addresses (asset_id, ip, kind, first_seen, last_seen) VALUES"
               " (?, '10.0.0.9', 'probed', 'x', 'x')", [both["10.0.0.50"]])
    rows, _ = inventory.find(db, inventory.AssetQuery())
    assert [r.addresses for r in rows] == [("10.0.0.9", "10.0.0.50"), ("10.0.0.20",)]

"""Who owns an asset: its own owner, else the most specific rule (the longest CIDR, then a
zone), else the approved list; every matching rule adds its tags. The register and the
inventory show the same owner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlite_utils import Database

from central import inventory, ownership, register
from central.approved import import_file
from central.violations import evaluate
from tests.central.test_notify import POLICY, Sensor, camera

ROOT = Path(__file__).parents[2]


@pytest.fixture
def cameras(db: Database, tmp_path: Path) -> dict[str, int]:
    approved = tmp_path / "approved.csv"
    approved.write_text("mac,ejer\nac:cc:8e:10:30:14,Borgerservice\n")
    import_file(db, approved, org="kommune", site="raadhus")
    Sensor(db).scan(camera(20), camera(30, telnet=True), camera(40))
    evaluate(db, POLICY)
    return {a.addresses[0]: a.id for a in inventory.assets(db)}


def test_the_assets_own_owner_then_the_longest_cidr_then_the_zone_then_the_list(
        db: Database, cameras: dict[str, int]) -> None:
    ownership.add_rule(db, owner="Ejendomme", tags=["video"], zone="cameras", policy=POLICY,
                       by="anne")
    ownership.add_rule(db, owner="Skoleområdet", tags=["skole"], cidr="10.20.30.32/28",
                       by="anne")
    ownership.set_asset(db, cameras["10.20.30.40"], owner="Teknik og Miljø",
                        tags=["varme"], notes="<b>under udskiftning</b>", by="anne")
    found = ownership.of_assets(db, POLICY)
    owners = {ip: (found[i].owner, found[i].owner_from, found[i].tags)
              for ip, i in cameras.items()}
    assert owners["10.20.30.40"] == ("Teknik og Miljø", "asset", ("skole", "varme", "video"))
    assert owners["10.20.30.30"] == ("Ejendomme", "rule 1", ("video",))  # not in the /28
    # a zone rule outranks the approved list; the list names only where no rule does
    assert owners["10.20.30.20"][0] == "Ejendomme"
    ownership.remove_rule(db, 1)
    assert ownership.of_assets(db, POLICY)[cameras["10.20.30.20"]].owner == "Borgerservice"
    # the inventory (zones as the last evaluation saw them) and the register agree
    rows = {a.addresses[0]: a for a in inventory.assets(db)}
    assert rows["10.20.30.40"].notes == "<b>under udskiftning</b>"
    assert rows["10.20.30.40"].owner == "Teknik og Miljø"
    def owners_in_register() -> set[tuple[str, str]]:  # (address, owner) of its rows
        return {(r["asset"].split()[1], r["owner"]) for r in register.rows(db, POLICY)}

    # .30 (Telnet, not on the approved list) has no owner left; .40 (not on it) its own
    assert owners_in_register() == {("10.20.30.30", ""), ("10.20.30.40", "Teknik og Miljø")}
    ownership.add_rule(db, owner="Ejendomme", cidr="10.20.30.0/24", by="anne")
    assert owners_in_register() == {("10.20.30.30", "Ejendomme"),
                                    ("10.20.30.40", "Teknik og Miljø")}


def test_wrong_edits_are_refused(db: Database, cameras: dict[str, int]) -> None:
    for call, message in (
            (lambda: ownership.set_asset(db, 999, owner="x", by="a"), "no asset 999"),
            (lambda: ownership.add_rule(db, owner="x", by="a"), "either a zone or a CIDR"),
            (lambda: ownership.add_rule(db, owner="x", cidr="10.20.300.0/24", by="a"),
             "not a CIDR"),
            (lambda: ownership.add_rule(db, owner="x", zone="nowhere", policy=POLICY, by="a"),
             "no zone 'nowhere'"),
            (lambda: ownership.set_asset(db, cameras["10.20.30.20"], owner="x" * 300, by="a"),
             "longer than 256"),
            (lambda: ownership.remove_rule(db, 42), "no rule 42")):
        with pytest.raises(ownership.OwnershipError, match=message):
            call()


def test_the_ownership_commands(db: Database, cameras: dict[str, int], tmp_path: Path) -> None:
    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "central.cli", *argv, "--db",
                               str(tmp_path / "central.db")],
                              capture_output=True, text=True, cwd=ROOT, timeout=120)

    done = run("asset", "set", str(cameras["10.20.30.20"]), "--owner", "IT", "--tag", "a",
               "--tag", "b", "--by", "anne")
    assert done.returncode == 0, done.stderr
    done = run("owner", "add-rule", "--cidr", "10.20.30.0/24", "--owner", "Ejendomme")
    assert done.returncode == 0, done.stderr
    listed = json.loads(run("owner", "rules", "--format", "json").stdout)
    assert [(r["cidr"], r["owner"]) for r in listed] == [("10.20.30.0/24", "Ejendomme")]
    assets = {a["addresses"][0]: a for a in json.loads(run("assets", "--format", "json").stdout)}
    assert (assets["10.20.30.20"]["owner"], assets["10.20.30.20"]["tags"]) == ("IT", ["a", "b"])
    assert assets["10.20.30.30"]["owner"] == "Ejendomme"
    assert run("asset", "set", "999", "--owner", "x").returncode == 2

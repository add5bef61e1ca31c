"""The risk register: one row per violation still to handle, in Danish or English, with the
owner from the approved list, defaults from the kind and the zone's criticality that the
team can change, and a workbook a register can take in (real dates, autofilter, widths, a
frozen header, formulas neutralised)."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlite_utils import Database

from central import exports, register
from central.approved import import_file
from central.policy import parse
from central.violations import evaluate, review
from tests.central.test_notify import Sensor, camera

ROOT = Path(__file__).parents[2]
POLICY_TEXT = """
org = "kommune"
[[site]]
name = "raadhus"
[[zone]]
name = "cameras"
cidrs = ["10.20.30.0/24"]
criticality = "high"
allowed_types = ["camera"]
"""
POLICY = parse(POLICY_TEXT)
FORMULA_OWNER = '=HYPERLINK("http://evil.example/x","Facilities")'


@pytest.fixture
def violated(db: Database, tmp_path: Path) -> Database:
    """Two cameras with Telnet (insecure_service); one of them on the approved list."""
    approved = tmp_path / "approved.csv"
    approved.write_text('mac,ejer\nac:cc:8e:10:30:1e,Teknik og Miljø\n'
                        'ac:cc:8e:10:30:1f,"' + FORMULA_OWNER.replace('"', '""') + '"\n')
    import_file(db, approved, org="kommune", site="raadhus")
    Sensor(db).scan(camera(30, telnet=True), camera(31, telnet=True))
    evaluate(db, POLICY)
    return db


def test_rows_speak_danish_with_defaults_from_kind_and_zone(violated: Database) -> None:
    rows = register.rows(violated, POLICY)
    assert len(rows) == 2
    first = next(r for r in rows if "10.20.30.30" in r["asset"])
    assert first["owner"] == first["responsible"] == "Teknik og Miljø"
    assert first["threat"] == "Aflytning af adgangskoder og overtagelse af enheden"
    assert first["vulnerability"].startswith("Telnet on camera 10.20.30.30")
    # insecure_service: likelihood 4, consequence 3 + 1 for a zone of high criticality
    assert (first["likelihood"], first["consequence"], first["risk"]) == (4, 4, "Høj")
    assert first["status"] == "Åben" and first["nis2"].startswith("Sikker konfiguration")
    # a high risk is due 30 days after it was first seen
    assert first["deadline"] == (date.fromisoformat(first["first_seen"])
                                 + timedelta(days=30)).isoformat()
    english = register.rows(violated, POLICY, language="en")
    assert english[0]["status"] == "Open" and english[0]["risk"] == "High"


def test_the_teams_assessment_is_kept_and_checked(violated: Database) -> None:
    row = register.rows(violated, POLICY)[0]
    register.assess(violated, row["id"], register.Assessment(
        likelihood=5, consequence=5, measure="Telnet slås fra", responsible="IT-drift",
        deadline="2027-01-31"), by="anne")
    evaluate(violated, POLICY)  # a new evaluation keeps it
    again = next(r for r in register.rows(violated, POLICY) if r["id"] == row["id"])
    assert (again["risk"], again["measure"], again["responsible"], again["deadline"]) == (
        "Kritisk", "Telnet slås fra", "IT-drift", "2027-01-31")
    assert register.rows(violated, POLICY)[0]["id"] == row["id"]  # worst first
    for wrong, message in ((register.Assessment(likelihood=6), "between 1 and 5"),
                           (register.Assessment(deadline="31/1/2027"), "not a date")):
        with pytest.raises(register.RegisterError, match=message):
            register.assess(violated, row["id"], wrong, by="anne")
    with pytest.raises(register.RegisterError, match="no violation 999"):
        register.assess(violated, 999, register.Assessment(likelihood=1), by="anne")


def test_accepted_risks_leave_the_open_register_and_show_under_accepted(
        violated: Database) -> None:
    row = register.rows(violated, POLICY)[0]
    review(violated, [row["id"]], action="accept", reviewer="anne", reason="udskiftes Q1",
           until="2099-01-01")
    assert row["id"] not in {r["id"] for r in register.rows(violated, POLICY)}
    accepted = register.rows(violated, POLICY, status="accepted")
    assert [(r["id"], r["status"]) for r in accepted] == [(row["id"], "Risiko accepteret")]


def test_the_workbook_has_dates_a_filter_widths_a_frozen_header_and_no_formulas(
        violated: Database) -> None:
    data = exports.export(violated, "register", "xlsx", policy=POLICY, language="da")
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    header = [c.value for c in sheet[1]]
    assert header[:5] == ["ID", "Aktiv", "Ejer", "Lokation", "Zone"] and "Frist" in header
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:Q3"
    assert sheet.column_dimensions["B"].width == 40
    deadline = sheet.cell(row=2, column=header.index("Frist") + 1)
    assert deadline.is_date and isinstance(deadline.value, datetime)
    owners = [sheet.cell(row=r, column=3) for r in (2, 3)]
    assert {c.value for c in owners} == {"Teknik og Miljø", "'" + FORMULA_OWNER}
    assert all(c.data_type == "s" for c in owners)
    csv_text = exports.export(violated, "register", "csv", policy=POLICY, language="en"
                              ).decode("utf-8-sig")
    assert csv_text.startswith("ID,Asset,Owner,Site,Zone,Threat")
    assert "'=HYPERLINK" in csv_text


def test_the_register_commands(violated: Database, tmp_path: Path) -> None:
    db_path = tmp_path / "central.db"  # the fixture's database file
    (tmp_path / "policy.toml").write_text(POLICY_TEXT)
    row = register.rows(violated, POLICY)[0]

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "central.cli", *argv, "--db", str(db_path)],
                              capture_output=True, text=True, cwd=ROOT, timeout=120)

    done = run("register", "set", str(row["id"]), "--consequence", "2", "--by", "anne")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "register.xlsx"
    done = run("export", "register", "--format", "xlsx", "--lang", "en", "--out", str(out),
               "--policy", str(tmp_path / "policy.toml"))
    assert done.returncode == 0, done.stderr
    sheet = load_workbook(out).active
    assert sheet is not None and sheet.title == "Risk register"
    values = {sheet.cell(row=r, column=1).value: sheet.cell(row=r, column=10).value
              for r in (2, 3)}
    assert values[row["id"]] == 2

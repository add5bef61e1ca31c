"""What an operator meets at the central's command line when something is off: a missing or
corrupt inventory, a folder that is not there, a zone the policy does not have, a policy
too deep or too large. Each is one line that says the cause, never a traceback, and the
audit trail records a real person once per decision."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from agent import signing
from central import cli
from central.db import open_db
from central.policy import PolicyError, parse

POLICY = """org = "kommune"
[[site]]
name = "raadhuset"
[[zone]]
name = "admin"
site = "raadhuset"
cidrs = ["10.20.10.0/24"]
"""


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", [["assets"], ["sensors"], ["stats"], ["violations"]])
def test_read_commands_refuse_a_missing_inventory_and_create_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    db = tmp_path / "nowhere" / "central.db"
    code, _out, err = _run(capsys, *command, "--db", str(db))
    assert code == 1
    assert "no inventory here" in err and "init" in err
    assert not db.parent.exists()


def test_a_new_inventory_is_private(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "var" / "central.db"
    assert _run(capsys, "init", "--db", str(db))[0] == 0
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700


def test_a_corrupt_inventory_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "central.db"
    db.write_bytes(b"this is not SQLite" * 100)
    code, _out, err = _run(capsys, "assets", "--db", str(db))
    assert code == 1
    assert err.strip().count("\n") == 0 and "not a readable netvagt inventory" in err


def test_plan_into_a_missing_folder_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "central.db"
    open_db(db).close()
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    code, _out, err = _run(capsys, "plan", "--db", str(db), "--policy", str(policy),
                           "--out", str(tmp_path / "missing" / "plans"))
    assert code == 2 and "is not a folder" in err


@pytest.mark.parametrize("seconds", ["0", "-5", "nan"])
def test_a_policy_round_under_a_second_is_refused_before_any_connection(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], seconds: str) -> None:
    code, _out, err = _run(capsys, "serve", "--db", str(tmp_path / "central.db"),
                           "--broker-port", "1", "--round", seconds)
    assert code == 2 and err.strip() == f"netvagt-central: --round {float(seconds)}: at least 1 second"


def test_a_scan_command_for_a_sensor_not_listening_says_it_waits(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from central import registry

    db_path = tmp_path / "central.db"
    db = open_db(db_path)
    registry.add_sensor(db, sensor="s-one", org="kommune", site="raadhus",
                        public_jwk=signing.public_jwk(signing.generate_private_key()))
    code, out, _err = _run(capsys, "sensor", "scan", "s-one", "--db", str(db_path),
                           "--valid-minutes", "30")
    assert code == 0 and "its daemon has not said it is running" in out and "30 minutes" in out
    db.execute("UPDATE sensors SET last_status = ?, last_status_at = ? WHERE id = 's-one'",
               ['{"state": "online"}', "2026-12-02T05:00:00.000000Z"])
    code, out, _err = _run(capsys, "sensor", "scan", "s-one", "--db", str(db_path))
    assert code == 0 and out.strip().endswith("the running service signs and sends it")
    db.execute("UPDATE sensors SET last_status = ? WHERE id = 's-one'", ['{"state": "offline"}'])
    code, out, _err = _run(capsys, "sensor", "scan", "s-one", "--db", str(db_path))
    assert "its daemon said offline at 2026-12-02T05:00:00.000000Z" in out
    assert db.execute("SELECT count(*) FROM commands").fetchone()[0] == 3  # each one queued


def test_a_zone_the_policy_does_not_have_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "central.db"
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    jwk = tmp_path / "s.jwk"
    jwk.write_text(json.dumps(signing.public_jwk(signing.generate_private_key())))
    common = ["--db", str(db), "--org", "kommune", "--site", "raadhuset", "--policy", str(policy)]
    code, _out, err = _run(capsys, "sensor", "add", "--id", "s-x", "--zone", "admn",
                           "--public-key", str(jwk), *common)
    assert code == 2 and "zone 'admn' is not in" in err and "admin" in err
    code, _out, err = _run(capsys, "token", "create", "--zone", "kamera", *common)
    assert code == 2 and "zone 'kamera'" in err
    assert _run(capsys, "sensor", "add", "--id", "s-x", "--zone", "admin",
                "--public-key", str(jwk), *common)[0] == 0


def _violation(db_path: Path) -> int:
    db = open_db(db_path)
    db.execute("INSERT INTO violations (key, kind, severity, title, evidence, nis2, status,"
               " first_seen, last_seen) VALUES ('k', 'unexpected_flow', 'high', 't', '[]', 'x',"
               " 'open', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')")
    vid = int(db.execute("SELECT id FROM violations").fetchone()[0])
    db.close()
    return vid


def test_reviews_record_the_day_given_a_real_person_and_each_decision_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    db_path = tmp_path / "central.db"
    vid = _violation(db_path)
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.delenv("USER", raising=False)
    for _ in range(2):
        assert _run(capsys, "review", str(vid), "--action", "acknowledge", "--db", str(db_path))[0] == 0
    assert _run(capsys, "review", str(vid), "--action", "accept", "--until", "2099-03-31",
                "--reason", "replacement ordered", "--db", str(db_path))[0] == 0
    db = open_db(db_path)
    events = db.execute("SELECT actor, new_status FROM violation_events ORDER BY id").fetchall()
    until = db.execute("SELECT accepted_until FROM violations").fetchone()[0]
    db.close()
    import pwd

    me = pwd.getpwuid(os.getuid()).pw_name
    assert [tuple(e) for e in events] == [(me, "acknowledged"), (me, "accepted")]
    assert until.startswith("2099-03-31T23:59:59")


@pytest.mark.parametrize(("text", "expected"), [
    ("x = " + "[" * 5000 + "]" * 5000, "nested too deeply"),
    ('org = "k"\n' + '[[zone]]\nname = "a"\n' * 2500, "at most 2000"),
    ("#" * (5 * 1024 * 1024), "at most"),
])
def test_a_hostile_policy_is_one_line(text: str, expected: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse(text, "p.toml")
    assert len(caught.value.problems) == 1 and expected in caught.value.problems[0]

"""The console and API through FastAPI's test client, on a real inventory: logging in (and
being throttled), roles (a viewer cannot review), CSRF on every form, hostile device text
shown inert, and isolation: a user or token of one organisation reaches nothing of
another's, by page, API, export or id. The isolation table must name every route the app
has, so a route added later without a check fails here."""

from __future__ import annotations

import io
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlite_utils import Database

from agent import signing, wire
from agent.wire import Asset, Findings, Observation, Service
from central import audit, registry, users
from central.ingest import Ingestor
from central.policy import parse
from central.violations import evaluate
from central.web import create_app

HOSTILE = "<script>alert(1)</script><b>x</b>' OR 1=1 -- =cmd|' /C calc'!A0"
PASSWORD = "correct horse battery"


def _policy(org: str, cidr: str) -> Any:
    return parse(f'org = "{org}"\n[[site]]\nname = "s-{org}"\n[[zone]]\nname = "z-{org}"\n'
                 f'cidrs = ["{cidr}"]\nallowed_types = ["printer"]\n')


def _scan(db: Database, org: str, net: str) -> None:
    key = signing.generate_private_key()
    sensor = f"s-{org}"
    registry.add_sensor(db, sensor=sensor, org=org, site=f"s-{org}",
                        public_jwk=signing.public_jwk(key))
    at = wire.utc_now()
    assets = (Asset(ip=f"{net}.30", mac="ac:cc:8e:10:30:1e" if org == "aarhus" else
                    "ac:cc:8e:20:30:1e", sources=("arp",), hostname=HOSTILE,
                    services=(Service(port=23, name="telnet", banner=HOSTILE),),
                    observations=(Observation("ftp.banner", "220 AXIS P1375 Network Camera "
                                              "10.12.114 (2023) ready.", "21/tcp"),)),)
    findings = Findings(sensor=sensor, org=org, seq=1, msg_id=uuid.uuid4().hex,
                        scan_id=uuid.uuid4().hex, sent_at=at, scan_started_at=at,
                        scan_finished_at=at, assets=assets)
    outcome = Ingestor(db).ingest(wire.findings_topic(org, sensor),
                                  signing.sign(findings.encode(), key, kid=sensor))
    assert outcome.accepted, outcome


@pytest.fixture
def console(db: Database, tmp_path: Path) -> dict[str, Any]:
    """Two municipalities, each with a camera that breaks its policy; a reviewer and a viewer
    of the first, a reviewer of the second."""
    _scan(db, "aarhus", "10.1.1")
    _scan(db, "odense", "10.2.1")
    evaluate(db, _policy("aarhus", "10.1.1.0/24"))
    evaluate(db, _policy("odense", "10.2.1.0/24"))
    for name, role, org in (("anne", "reviewer", "aarhus"), ("vera", "viewer", "aarhus"),
                            ("otto", "reviewer", "odense"), ("ada", "admin", "aarhus")):
        users.add_user(db, name, PASSWORD, role=role, orgs=[org])
    ids: dict[str, dict[str, int]] = {}
    for org in ("aarhus", "odense"):
        asset = db.execute("SELECT a.id FROM assets a JOIN sites s ON s.id = a.site_id"
                           " WHERE s.org_id = ?", [org]).fetchone()[0]
        violation = db.execute("SELECT id FROM violations WHERE org = ? ORDER BY id",
                               [org]).fetchone()[0]
        user = db.execute("SELECT user_id FROM user_orgs WHERE org_id = ? ORDER BY user_id",
                          [org]).fetchone()[0]
        ids[org] = {"asset": asset, "violation": violation, "user": user}
    policies = []
    for org, cidr in (("aarhus", "10.1.1.0/24"), ("odense", "10.2.1.0/24")):
        policies.append(tmp_path / f"{org}.toml")
        policies[-1].write_text(f'org = "{org}"\n[[site]]\nname = "s-{org}"\n[[zone]]\n'
                                f'name = "z-{org}"\ncidrs = ["{cidr}"]\n'
                                'allowed_types = ["printer"]\n')
    app = create_app(tmp_path / "central.db", secret="test-secret", secure_cookies=False,
                     policy_path=policies)
    return {"app": app, "ids": ids, "db": db}


def _login(app: Any, name: str) -> TestClient:
    client = TestClient(app)
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    done = client.post("/login", data={"username": name, "password": PASSWORD,
                                       "csrf_token": token.group(1)}, follow_redirects=False)
    assert done.status_code == 303, done.text
    return client


def _csrf(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found is not None, path
    return found.group(1)


def test_login_is_checked_throttled_and_pages_need_it(console: dict[str, Any]) -> None:
    app = console["app"]
    client = TestClient(app)
    assert client.get("/assets", follow_redirects=False).headers["location"] == "/login"
    assert client.get("/api/assets").status_code == 401
    token = _csrf(client, "/login")
    wrong = client.post("/login", data={"username": "anne", "password": "nope" * 4,
                                        "csrf_token": token})
    assert wrong.status_code == 401 and "wrong user name or password" in wrong.text
    no_csrf = client.post("/login", data={"username": "anne", "password": PASSWORD})
    assert no_csrf.status_code == 403
    page = _login(app, "anne").get("/")
    assert page.status_code == 200 and "anne (reviewer: aarhus)" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in re.sub(r'href="/[^"]*"', "", page.text.split("<main")[0]).replace(
        "http-equiv", "")  # no script or style from elsewhere
    for _ in range(4):  # with the one above, five failures from this address
        client.post("/login", data={"username": "vera", "password": "x" * 12,
                                    "csrf_token": _csrf(client, "/login")})
    throttled = client.post("/login", data={"username": "vera", "password": PASSWORD,
                                            "csrf_token": _csrf(client, "/login")})
    assert throttled.status_code == 429  # even the right password, for a while


def test_a_viewer_reads_and_a_reviewer_reviews_with_a_comment(console: dict[str, Any]) -> None:
    app, ids = console["app"], console["ids"]["aarhus"]
    viewer = _login(app, "vera")
    path = f"/violations/{ids['violation']}"
    assert "name=\"action\"" not in viewer.get(path).text
    refused = viewer.post(f"{path}/review", data={"action": "acknowledge", "reason": "ok",
                                                  "csrf_token": _csrf(viewer, path)})
    assert refused.status_code == 403
    reviewer = _login(app, "anne")
    forged = reviewer.post(f"{path}/review", data={"action": "acknowledge"})
    assert forged.status_code == 403  # no CSRF token
    done = reviewer.post(f"{path}/review", data={
        "action": "accept", "reason": "erstattes i Q1", "until": "2099-01-31",
        "csrf_token": _csrf(reviewer, path)}, follow_redirects=False)
    assert done.status_code == 303
    record = reviewer.get(f"/api{path}").json()
    assert record["status"] == "accepted" and record["reviewer"] == "anne"
    assert record["history"][-1]["actor"] == "anne"
    assert record["history"][-1]["reason"] == "erstattes i Q1"


def test_hostile_device_text_is_shown_inert(console: dict[str, Any]) -> None:
    app, ids = console["app"], console["ids"]["aarhus"]
    client = _login(app, "anne")
    for path in ("/assets", f"/assets/{ids['asset']}", f"/violations/{ids['violation']}"):
        text = client.get(path).text
        assert "<script>alert(1)</script>" not in text and "<b>x</b>" not in text, path
    assert "&lt;script&gt;" in client.get(f"/assets/{ids['asset']}").text
    book = load_workbook(io.BytesIO(client.get("/register.xlsx").content))
    assert book.active is not None
    assert not [c for row in book.active.iter_rows() for c in row
                if isinstance(c.value, str) and c.value.startswith(("=", "+", "@"))]


# every route of the app, and how to reach another organisation's data through it
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/login"): "public", ("POST", "/login"): "public", ("POST", "/logout"): "public",
    ("GET", "/lang/{lang}"): "public", ("GET", "/"): "list", ("GET", "/assets"): "list",
    ("GET", "/sensors"): "list", ("GET", "/matrix"): "list",
    ("POST", "/assets/{asset_id}/owner"): "asset", ("PUT", "/api/assets/{asset_id}/owner"): "asset",
    ("GET", "/assets/{asset_id}"): "asset", ("GET", "/violations"): "list",
    ("GET", "/violations/{violation_id}"): "violation",
    ("POST", "/violations/{violation_id}/review"): "violation",
    ("GET", "/register.xlsx"): "list", ("GET", "/api/assets"): "list",
    ("GET", "/api/assets/{asset_id}"): "asset", ("GET", "/api/violations"): "list",
    ("GET", "/api/violations/{violation_id}"): "violation",
    ("POST", "/api/violations/{violation_id}/review"): "violation",
    ("GET", "/api/events"): "list", ("GET", "/api/openapi.json"): "public",
    ("GET", "/api/matrix"): "list", ("GET", "/api/register"): "list", ("GET", "/events"): "list",
    ("POST", "/violations/{violation_id}/register"): "violation",
    ("PUT", "/api/violations/{violation_id}/register"): "violation",
    ("GET", "/admin/users"): "list", ("POST", "/admin/users"): "their-org",
    ("POST", "/admin/users/{user_id}"): "user",
}


def test_one_organisation_reaches_nothing_of_another(console: dict[str, Any]) -> None:
    app, ids, db = console["app"], console["ids"], console["db"]
    routes = {(m, r.path) for r in app.routes if hasattr(r, "methods") and r.path != "/static"
              for m in r.methods - {"HEAD"}}
    assert routes == set(ROUTES), "a route without an isolation check"
    theirs = ids["odense"]
    for who, client in (("session", _login(app, "anne")), ("admin", _login(app, "ada")),
                        ("token", TestClient(app, headers={
                            "Authorization": "Bearer " + users.create_token(db, "anne",
                                                                           name="t")}))):
        for (method, path), kind in ROUTES.items():
            if kind == "public":
                continue
            url = path.replace("{asset_id}", str(theirs["asset"])).replace(
                "{violation_id}", str(theirs["violation"])).replace("{user_id}",
                                                                     str(theirs["user"]))
            if kind == "list":  # naming their organisation changes nothing
                url += "?org=odense"
            if method == "GET":
                answer = client.get(url, follow_redirects=False)
            elif path.startswith("/api"):
                answer = client.request(method, url, json={"action": "acknowledge",
                                                           "reason": "x", "owner": "x",
                                                           "likelihood": 5})
            else:  # every form's fields at once, the organisation theirs
                answer = client.post(url, data={
                    "action": "acknowledge", "reason": "x", "likelihood": "5", "role": "admin",
                    "disabled": "yes", "username": "eve", "password": "x" * 12,
                    "orgs": "odense", **({"csrf_token": _csrf(client, "/violations")}
                                         if who != "token" else {})})
            body = answer.content
            if kind == "list" and answer.status_code == 200:
                assert b"10.2.1." not in body and b"odense" not in body, (who, path)
            else:
                assert answer.status_code in (303, 401, 403, 404), (who, method, path,
                                                                    answer.status_code)
            if path.endswith(".xlsx") and answer.status_code == 200:
                sheet = load_workbook(io.BytesIO(body)).active
                assert sheet is not None
                assert "10.2.1" not in str([c.value for r in sheet.iter_rows() for c in r])
    # nothing of theirs changed, and nobody was made in their name
    assert db.execute("SELECT count(*) FROM users WHERE username = 'eve'").fetchone()[0] == 0
    assert db.execute("SELECT disabled FROM users WHERE id = ?",
                      [theirs["user"]]).fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM register_entries").fetchone()[0] == 0
    # and their own is there: the table above tests something
    mine = _login(app, "anne")
    assert mine.get(f"/api/assets/{ids['aarhus']['asset']}").status_code == 200
    assert "10.1.1.30" in mine.get("/assets").text
    spec = mine.get("/api/openapi.json").json()
    assert "/api/violations/{violation_id}/review" in spec["paths"]


def test_two_municipalities_with_the_same_ranges_and_zone_names_are_judged_apart(
        db: Database) -> None:
    """Municipalities on one central overlap: the same private ranges, the same zone names.
    Each evaluation judges its own organisation's devices and violations only; evaluating
    one never resolves, reopens or claims the other's (it did before organisations were
    kept apart)."""
    _scan(db, "aarhus", "10.20.10")
    _scan(db, "odense", "10.20.10")  # the same address, another municipality's camera
    for org in ("aarhus", "odense", "aarhus", "odense"):
        evaluate(db, _policy(org, "10.20.10.0/24"))
    rows = [dict(r) for r in db.query("SELECT org, kind, status, asset_id FROM violations")]
    by_org = {org: sorted((r["kind"], r["status"]) for r in rows if r["org"] == org)
              for org in ("aarhus", "odense")}
    assert by_org["aarhus"] == by_org["odense"] == [("insecure_service", "open"),
                                                    ("misplaced_device", "open")]
    owners = {r["asset_id"]: r["org"] for r in rows}
    sites = dict(db.execute("SELECT a.id, s.org_id FROM assets a JOIN sites s"
                            " ON s.id = a.site_id").fetchall())
    assert all(sites[asset] == org for asset, org in owners.items())
    assert not [r for r in db.query("SELECT kind FROM events WHERE kind LIKE 'violation.%'")
                if r["kind"] != "violation.new"]  # nothing resolved and reopened in turn


def test_the_matrix_and_sensors_pages_show_the_users_organisation(
        console: dict[str, Any], tmp_path: Path) -> None:
    policy = tmp_path / "aarhus.toml"
    policy.write_text('org = "aarhus"\n[[site]]\nname = "s-aarhus"\n[[zone]]\nname = "office"\n'
                      'cidrs = ["10.1.2.0/24"]\n[[zone]]\nname = "z-aarhus"\n'
                      'cidrs = ["10.1.1.0/24"]\n')
    app = create_app(tmp_path / "central.db", secret="test-secret", secure_cookies=False,
                     policy_path=policy)
    from fingerprints.databases import in_use

    # the sensor's own status names its fingerprint databases (the shared recog here)
    said = in_use()
    assert any(d.startswith("recog ") for d in said), said
    status = wire.Status(sensor="s-aarhus", org="aarhus", state="online", at=wire.utc_now(),
                         version="0.9.0", databases=said)
    assert wire.Status.decode(status.encode()).databases == said
    console["db"].execute("UPDATE sensors SET last_status = ? WHERE id = 's-aarhus'",
                          [status.encode().decode()])
    # its latest scan heard the phones' voice VLAN and VLAN 40 on its port
    console["db"].execute("UPDATE sensors SET port_vlans = ? WHERE id = 's-aarhus'",
                          [json.dumps([{"vlan": 20, "frames": 9}, {"vlan": 40, "frames": 1}])])
    mine = _login(app, "anne")
    matrix = mine.get("/matrix").text
    assert "office" in matrix and "z-aarhus" in matrix and "ikke afprøvet" in matrix
    mine.get("/lang/en")
    english = mine.get("/matrix").text
    assert "not probed" in english and "ikke afprøvet" not in english
    assert "Zone matrix" in english and "Sensors" in english
    mine.get("/lang/da")
    theirs = _login(app, "otto").get("/matrix").text
    assert "z-aarhus" not in theirs and "ingen zonepolitik for din organisation" in theirs
    sensors = mine.get("/sensors").text
    assert "s-aarhus" in sensors and "s-odense" not in sensors
    changes = mine.get("/events?site=s-aarhus").text
    assert "10.1.1.30" in changes and "10.2.1" not in changes
    assert mine.get("/events?site=s-odense").text.count("<tr>") == 2  # the head and "none"
    assert {e["site"] for e in mine.get("/api/events?since=2000-01-01").json()} == {"s-aarhus"}
    assert said[0] in sensors and "0.9.0" in sensors
    assert "Andre VLAN på porten" in sensors and "<td>20, 40</td>" in sensors
    overview = mine.get("/").text
    assert "Zone z-aarhus" in overview and "camera" in overview


def test_assets_are_filtered_and_a_reviewer_sets_their_owner(console: dict[str, Any]) -> None:
    app, ids = console["app"], console["ids"]["aarhus"]
    reviewer = _login(app, "anne")
    for query, found in (("zone=z-aarhus", True), ("zone=elsewhere", False),
                         ("vendor=axis", True), ("vendor=hikvision", False),
                         ("violation=true", True), ("new_since=2099-01-01", False),
                         ("seen_since=2000-01-01", True), ("q=10.1.1.30", True)):
        rows = reviewer.get(f"/api/assets?{query}").json()
        assert bool(rows) is found, query
    assert reviewer.get("/api/assets?new_since=someday").status_code == 400
    path = f"/assets/{ids['asset']}"
    done = reviewer.post(f"{path}/owner", data={"owner": "Teknik og Miljø", "tags": "video, ude",
                                                "csrf_token": _csrf(reviewer, path)},
                         follow_redirects=False)
    assert done.status_code == 303
    asset = reviewer.get(f"/api{path}").json()
    assert (asset["owner"], asset["tags"]) == ("Teknik og Miljø", ["ude", "video"])
    assert reviewer.get("/api/assets?q=ude").json()  # tags are searched too
    viewer = TestClient(app, headers={"Authorization": "Bearer " + users.create_token(
        console["db"], "vera", name="t")})
    assert viewer.put(f"/api{path}/owner", json={"owner": "x"}).status_code == 403
    only_high = reviewer.get("/api/violations?severity=critical").json()
    assert only_high == []


def test_owner_rules_and_the_approved_list_stay_in_their_organisation(
        db: Database, tmp_path: Path) -> None:
    """Two municipalities with the same range and the same zone name: a rule or approved
    list entry of one names no owner in the other (before, a zone rule reached every
    organisation's zone of that name, and the approved list matched any address)."""
    from central import inventory, ownership
    from central.approved import import_file

    def shared(org: str) -> Any:
        return parse(f'org = "{org}"\n[[site]]\nname = "s-{org}"\n[[zone]]\nname = "admin"\n'
                     'cidrs = ["10.20.10.0/24"]\n')

    _scan(db, "aarhus", "10.20.10")
    _scan(db, "odense", "10.20.10")
    for org in ("aarhus", "odense"):
        evaluate(db, shared(org))
    ownership.add_rule(db, owner="IT Aarhus", tags=["drift"], zone="admin",
                       policy=shared("aarhus"), by="anne")
    ownership.add_rule(db, owner="Net Aarhus", tags=["net"], cidr="10.20.10.0/28",
                       org="aarhus", by="anne")
    listed = tmp_path / "approved.csv"
    listed.write_text("ip,ejer\n10.20.10.30,Borgerservice Aarhus\n")
    import_file(db, listed, org="aarhus", site="s-aarhus")
    rows = {a.org: a for a in inventory.assets(db)}
    assert (rows["aarhus"].owner, rows["aarhus"].tags) == ("IT Aarhus", ("drift",))
    assert (rows["odense"].owner, rows["odense"].tags) == (None, ())
    found, total = inventory.find(db, inventory.AssetQuery(orgs=frozenset({"odense"}),
                                                           q="aarhus"))
    assert (found, total) == ([], 0)
    entries = [(e.actor, e.action, e.org) for e in audit.listed(db)]
    assert ("anne", "owner.rule.add", "aarhus") in entries


def test_a_reviewer_edits_the_register_and_an_admin_manages_users(
        console: dict[str, Any]) -> None:
    app, ids, db = console["app"], console["ids"]["aarhus"], console["db"]
    reviewer = _login(app, "anne")
    path = f"/violations/{ids['violation']}"
    assert 'name="likelihood"' in reviewer.get(path).text
    done = reviewer.post(f"{path}/register", data={
        "likelihood": "5", "consequence": "4", "measure": "Udskift kameraet",
        "responsible": "Jens <Drift>", "deadline": "2027-01-15",
        "csrf_token": _csrf(reviewer, path)}, follow_redirects=False)
    assert done.status_code == 303
    (row,) = [r for r in reviewer.get("/api/register?lang=da").json()
              if r["id"] == ids["violation"]]
    assert (row["likelihood"], row["consequence"], row["risk"], row["measure"],
            row["responsible"], row["deadline"]) == (5, 4, "Kritisk", "Udskift kameraet",
                                                    "Jens <Drift>", "2027-01-15")
    assert "Jens &lt;Drift&gt;" in reviewer.get(path).text
    api = TestClient(app, headers={"Authorization": "Bearer " + users.create_token(
        db, "anne", name="t")})
    changed = api.put(f"/api{path}/register", json={"consequence": 2})
    assert changed.status_code == 200
    assert (changed.json()["consequence"], changed.json()["measure"]) == (2, "Udskift kameraet")
    assert api.put(f"/api{path}/register", json={"deadline": "snart"}).status_code == 400
    assert api.put(f"/api{path}/register", json={"likelihood": 7}).status_code == 422
    viewer = TestClient(app, headers={"Authorization": "Bearer " + users.create_token(
        db, "vera", name="t")})
    assert viewer.put(f"/api{path}/register", json={"likelihood": 1}).status_code == 403
    assert reviewer.get("/admin/users").status_code == 403
    # the admin: sees their organisation's users, adds one, disables another
    vera = _login(app, "vera")
    admin = _login(app, "ada")
    page = admin.get("/admin/users").text
    assert "anne" in page and "vera" in page and "otto" not in page
    made = admin.post("/admin/users", data={
        "username": "nina", "password": PASSWORD, "role": "viewer", "orgs": "aarhus",
        "csrf_token": _csrf(admin, "/admin/users")}, follow_redirects=False)
    assert made.status_code == 303
    _login(app, "nina")
    vera_id = db.execute("SELECT id FROM users WHERE username = 'vera'").fetchone()[0]
    off = admin.post(f"/admin/users/{vera_id}", data={
        "disabled": "yes", "csrf_token": _csrf(admin, "/admin/users")}, follow_redirects=False)
    assert off.status_code == 303
    assert vera.get("/", follow_redirects=False).status_code == 303  # her session ended
    assert viewer.get("/api/assets").status_code == 401  # and her token
    log = admin.get("/admin/users").text
    for action in ("register.assess", "user.add", "user.change", "export.register"):
        assert action in log, action
    entries = {(e.actor, e.action) for e in audit.listed(db)}
    assert {("anne", "register.assess"), ("ada", "user.add"), ("ada", "user.change"),
            ("anne", "export.register")} <= entries


def test_numbers_past_what_sqlite_holds_are_refused_not_a_crash(console: dict[str, Any]) -> None:
    """Found by schemathesis against the served OpenAPI description: a page or id beyond
    SQLite's 64-bit integers made a 500 (an OverflowError binding it)."""
    api = TestClient(console["app"], headers={"Authorization": "Bearer " + users.create_token(
        console["db"], "anne", name="t")})
    huge = str(2**70)
    for path in (f"/api/violations?page={huge}", f"/api/assets?offset={huge}",
                 f"/api/assets/{huge}", f"/api/violations/{huge}", f"/api/events?asset_id={huge}"):
        assert api.get(path).status_code == 422, path
    assert api.put(f"/api/violations/{huge}/register", json={"likelihood": 1}).status_code == 422


def test_every_word_the_pages_use_exists_in_danish_and_english() -> None:
    """A template's t.<word> missing in one language renders as nothing: a page with holes."""
    from central.web import HERE, TEXT

    used = {word for page in (HERE / "templates").glob("*.html")
            for word in re.findall(r"\bt\.(\w+)", page.read_text())}
    assert TEXT["da"].keys() == TEXT["en"].keys()
    assert used - TEXT["da"].keys() == set()

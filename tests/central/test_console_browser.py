"""The console in a real browser (Debian's chromium, driven by Playwright): a reviewer logs
in, filters assets, opens a violation, scores its register row, accepts the risk with a
comment, downloads the register and reads it back; a viewer logs in by keyboard alone and
cannot review. Every form field has a label. No script dialog opens and the browser
reports no error (a style or script the Content Security Policy blocked would be one)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlite_utils import Database

from central import users
from central.violations import evaluate
from tests.browser import Watched, chromium, console, needs_chromium
from tests.central.test_web import PASSWORD, _policy, _scan

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture
def inventory(db: Database, tmp_path: Path) -> dict[str, Any]:
    _scan(db, "aarhus", "10.1.1")
    _scan(db, "odense", "10.2.1")
    evaluate(db, _policy("aarhus", "10.1.1.0/24"))
    evaluate(db, _policy("odense", "10.2.1.0/24"))
    for name, role, org in (("anne", "reviewer", "aarhus"), ("vera", "viewer", "aarhus")):
        users.add_user(db, name, PASSWORD, role=role, orgs=[org])
    violation = db.execute("SELECT id FROM violations WHERE org = 'aarhus' AND kind ="
                           " 'insecure_service'").fetchone()[0]
    return {"db": tmp_path / "central.db", "violation": violation}


def test_a_reviewer_works_through_the_console_and_a_viewer_cannot_review(
        inventory: dict[str, Any], tmp_path: Path) -> None:
    vid = inventory["violation"]
    with console(inventory["db"]) as base, chromium() as browser:
        anne = Watched(browser, base)
        page = anne.page
        anne.login("anne", PASSWORD)
        assert "anne (reviewer: aarhus)" in page.inner_text("header")
        # filter assets
        page.get_by_role("navigation", name="main").get_by_role("link", name="Aktiver").click()
        page.get_by_label("Producent").fill("axis")
        page.get_by_role("button", name="Søg").click()
        page.wait_for_url(re.compile(r"vendor=axis"))
        assert anne.unlabelled() == []
        rows = page.locator("main table tbody tr")
        assert rows.count() == 1 and "10.1.1.30" in rows.first.inner_text()
        assert "10.2.1" not in page.content()  # the other municipality's camera
        page.get_by_label("Producent").fill("hikvision")
        page.get_by_role("button", name="Søg").click()
        page.wait_for_url(re.compile(r"vendor=hikvision"))
        assert page.locator("main table tbody tr").count() == 0
        # open a violation from the queue
        page.get_by_role("navigation", name="main").get_by_role("link", name="Overtrædelser").click()
        page.get_by_role("link", name=str(vid), exact=True).click()
        page.wait_for_url(re.compile(rf"/violations/{vid}$"))
        assert "insecure_service" in page.inner_text("main")
        assert anne.unlabelled() == []
        # score its register row
        page.get_by_label("Sandsynlighed (1-5)").select_option("5")
        page.get_by_label("Ansvarlig").fill("Jens, Drift")
        page.get_by_role("button", name="Gem").click()
        page.wait_for_url(re.compile(rf"/violations/{vid}$"))
        assert "Jens, Drift" in page.inner_text("dl.entry")
        # accept the risk with a comment, until a date
        # the page's own script: "accepted until" shows for "accept the risk" alone
        page.get_by_label("Behandl", exact=True).select_option("acknowledge")
        assert page.locator("#until").is_hidden()
        page.get_by_label("Behandl", exact=True).select_option("accept")
        assert page.locator("#until").is_visible()
        page.get_by_label("Kommentar").fill("Erstattes i Q1 <b>ikke fed</b>")
        page.get_by_label("Accepteret til").fill("2099-01-31")
        page.locator("form[action$='/review'] button").click()
        page.wait_for_url(re.compile(rf"/violations/{vid}$"))
        main = page.inner_text("main")
        assert "Risiko accepteret" in main and "anne: Åben → Risiko accepteret" in main
        assert "Erstattes i Q1 <b>ikke fed</b>" in main  # shown as text, not bold
        # download the register of accepted risks and read it back
        page.goto("/violations?status=accepted")
        with page.expect_download() as waiting:
            page.get_by_role("link", name=re.compile("Risikoregister: Risiko accepteret")).click()
        saved = tmp_path / "register.xlsx"
        waiting.value.save_as(saved)
        sheet = load_workbook(saved).active
        assert sheet is not None
        head = [c.value for c in sheet[1]]
        (row,) = [dict(zip(head, (c.value for c in r), strict=True))
                  for r in sheet.iter_rows(min_row=2) if r[0].value == vid]
        assert (row["Status"], row["Sandsynlighed (1-5)"], row["Ansvarlig"]) == (
            "Risiko accepteret", 5, "Jens, Drift")
        assert anne.dialogs == [] and anne.errors == []
        anne.close()
        # a viewer reads the decision, has no review form, and a forged post is refused
        vera = Watched(browser, base)
        vera.login_by_keyboard("vera", PASSWORD)
        vera.page.goto(f"/violations/{vid}")
        assert "anne: Åben → Risiko accepteret" in vera.page.inner_text("main")
        assert vera.page.locator("#action").count() == 0
        assert vera.page.locator("#likelihood").count() == 0
        token = vera.page.locator("input[name=csrf_token]").first.get_attribute("value")
        forged = vera.page.request.post(f"/violations/{vid}/review", form={
            "action": "reopen", "reason": "x", "csrf_token": token or ""}, max_redirects=0)
        assert forged.status == 403
        assert vera.dialogs == [] and vera.errors == []
        vera.close()

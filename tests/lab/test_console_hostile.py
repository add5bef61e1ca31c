"""Hostile devices, through the whole chain to the console: lab devices whose Telnet banner,
DHCP host name, HTTP title and Server header and UPnP names carry <script>, HTML, SQL and
spreadsheet formulas are scanned by a real sensor, reported through a real Mosquitto,
judged by the policy, and shown in a real browser (Debian's chromium). No script runs (no
dialog opens, no script or image element of theirs is in the page), the text is there as
text, and every export neutralises the formulas.

The browser and the console run in the root namespace and talk over loopback only; every
probe stays in the lab's namespaces."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from central import users
from central.db import open_db
from central.lab.broker import Mosquitto
from central.lab.demo import ORG, SITE, wait_for_messages, write_sensor
from central.lab.municipal import banner, chatter, http
from central.lab.topology import CORE_HOST, DeviceSpec, Lab, LabSpec, SegmentSpec, ServiceSpec
from tests.browser import Watched, chromium, console, needs_chromium

pytestmark = [
    pytest.mark.lab, pytest.mark.browser, needs_chromium,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: needs root"),
]

ROOT = Path(__file__).parents[2]
PASSWORD = "hostile-lab-password"
SCRIPT = "<script>alert('banner')</script>"
IMG = "<img src=x onerror=alert('title')>"
FORMULA = '=HYPERLINK("http://evil.example/x","click")'
SQL = "'; DROP TABLE assets;--"
UPNP = (
    '<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device>'
    "<deviceType>urn:schemas-upnp-org:device:MediaRenderer:1</deviceType>"
    "<friendlyName>&lt;script&gt;alert('upnp')&lt;/script&gt;</friendlyName>"
    "<manufacturer>=cmd|' /C calc'!A0</manufacturer>"
    "<modelName>&lt;b&gt;bold&lt;/b&gt;'; DROP TABLE assets;--</modelName>"
    "<modelNumber>@SUM(1+1)</modelNumber></device></root>")
SEGMENT = SegmentSpec(name="cameras", cidr="10.20.30.0/24", router_mac="00:00:0c:14:1e:01")
DEVICES = (
    DeviceSpec(
        name="telnet-cam", segment="cameras", host=24, mac="10:06:1c:10:30:24",
        vendor="Espressif Inc.", device_type="camera",
        services=(banner(23, f"{FORMULA} {SCRIPT} {SQL}\\r\\nlogin: ", "Password: "),
                  chatter("dhcp", hostname="+cmd-<b>x</b>", interval="1")),
    ),
    DeviceSpec(
        name="web-cam", segment="cameras", host=25, mac="44:19:b6:10:30:25",
        vendor="Hangzhou Hikvision Digital Technology Co.,Ltd.", device_type="camera",
        services=(http(80, f"{FORMULA}", IMG),),
    ),
    DeviceSpec(
        name="upnp-box", segment="cameras", host=26, mac="54:2a:1b:10:30:26",
        vendor="Sonos, Inc.", device_type="media_player",
        services=(
            ServiceSpec(port=1400, kind="xml", params={"body": UPNP}),
            ServiceSpec(port=1900, proto="udp", kind="ssdp", params={
                "address": "10.20.30.26", "location": "http://10.20.30.26:1400/desc.xml",
                "server": f"Linux UPnP/1.0 {SCRIPT}", "usn": "uuid:hostile-26",
                "interval": "1"}),
        ),
    ),
)
POLICY = f"""org = "{ORG}"
[[site]]
name = "{SITE}"
[[zone]]
name = "cameras"
site = "{SITE}"
cidrs = ["10.20.30.0/24"]
allowed_types = ["printer"]
"""


@pytest.fixture(scope="module")
def scanned() -> Iterator[dict[str, Path]]:
    workdir = Path(tempfile.mkdtemp(prefix="netvagt-hostile-"))
    db_path, policy = workdir / "central.db", workdir / "policy.toml"
    policy.write_text(POLICY)
    try:
        with Lab(LabSpec(segments=(SEGMENT,), devices=DEVICES)) as lab, \
                Mosquitto(ns=lab.core, bind=(CORE_HOST, "127.0.0.1"), port=1883):
            open_db(db_path).close()
            sensor = write_sensor(lab, "cameras", workdir, db_path, 1883)
            lab.popen(lab.core, [sys.executable, "-m", "central.cli", "serve", "--db",
                                 str(db_path), "--broker-host", "127.0.0.1"],
                      stderr=subprocess.DEVNULL)
            time.sleep(3)  # the devices' DHCP and SSDP chatter, for the passive listeners
            agent = lab.popen(sensor.ns, [sys.executable, "-m", "agent.cli", "run",
                                          "--config", str(sensor.config), "--once"],
                              stderr=subprocess.PIPE)
            _, err = agent.communicate(timeout=600)
            assert agent.returncode == 0, err.decode()[-3000:]
            assert wait_for_messages(db_path, [sensor.id], timeout=60)
        cli = [sys.executable, "-m", "central.cli"]
        judged = subprocess.run([*cli, "evaluate", "--db", str(db_path), "--policy",
                                 str(policy)], capture_output=True, text=True, cwd=ROOT)
        assert judged.returncode == 0, judged.stderr
        db = open_db(db_path)
        users.add_user(db, "ada", PASSWORD, role="admin", orgs=[ORG])
        db.close()
        yield {"db": db_path, "policy": policy, "workdir": workdir}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _stored(db_path: Path) -> str:
    """Every text the inventory holds about the devices, joined: what the lab sent arrived."""
    db = open_db(db_path)
    parts = [str(v) for table in ("assets", "services", "facts", "violations")
             for row in db.query(f"SELECT * FROM {table}") for v in dict(row).values()]  # noqa: S608
    db.close()
    return "\n".join(parts)


def test_hostile_device_text_reaches_the_console_inert(scanned: dict[str, Path]) -> None:
    stored = _stored(scanned["db"])
    # the payloads made it into the inventory: the test below has something to show
    for payload in ("<script>alert('banner')</script>", "onerror=alert('title')",
                    "DROP TABLE assets", "=HYPERLINK("):
        assert payload in stored, payload
    with console(scanned["db"], scanned["policy"]) as base, chromium() as browser:
        ada = Watched(browser, base)
        page = ada.page
        ada.login("ada", PASSWORD)
        page.goto("/assets")
        links = [a.get_attribute("href") for a in page.locator("main table a").all()]
        assert len(links) >= 3
        page.goto("/violations?status=all")
        links += [a.get_attribute("href") for a in page.locator("main table a").all()]
        shown = ""
        for path in ["/", "/assets", "/violations?status=all", "/matrix", "/admin/users",
                     *[link for link in links if link]]:
            page.goto(path)
            # nothing of theirs became an element: no script, image, SVG or bold of theirs
            for selector in ("main script", "main img", "main svg", "main b"):
                assert page.locator(selector).count() == 0, (path, selector)
            shown += page.inner_text("main")
            assert ada.unlabelled() == [], path
        assert "<script>alert('banner')</script>" in shown  # as text, on the asset page
        assert "<img src=x onerror=alert('title')>" in shown
        assert ada.dialogs == [], ada.dialogs  # no alert() ran
        assert ada.errors == [], ada.errors
        # the register, downloaded through the console
        page.goto("/violations?status=all")
        with page.expect_download() as waiting:
            page.get_by_role("link", name="Risikoregister: Alle (XLSX)").click()
        saved = scanned["workdir"] / "register.xlsx"
        waiting.value.save_as(saved)
        ada.close()
    book = load_workbook(saved)
    assert book.active is not None
    cells = [c.value for row in book.active.iter_rows(min_row=2) for c in row]
    assert cells and not _formulas(cells)
    # and the command line's exports of the same inventory
    cli = [sys.executable, "-m", "central.cli", "export"]
    for what in ("assets", "violations", "register"):
        text = subprocess.run([*cli, what, "--db", str(scanned["db"]), "--format", "csv",
                               "--policy", str(scanned["policy"])], capture_output=True,
                              text=True, cwd=ROOT, check=True).stdout
        values = [v for row in csv.reader(io.StringIO(text)) for v in row]
        assert values and not _formulas(values), what
    out = scanned["workdir"] / "assets.xlsx"
    subprocess.run([*cli, "assets", "--db", str(scanned["db"]), "--format", "xlsx", "--out",
                    str(out)], capture_output=True, cwd=ROOT, check=True)
    sheet = load_workbook(out).active
    assert sheet is not None
    assert not _formulas([c.value for row in sheet.iter_rows() for c in row])
    assert "+cmd-<b>x</b>" in str([c.value for row in sheet.iter_rows() for c in row])  # its host name


def _formulas(values: list[Any]) -> list[str]:
    """Values a spreadsheet would run: text starting with =, +, -, @, a tab or CR."""
    return [v for v in values if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t",
                                                                  "\r")]

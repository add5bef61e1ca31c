"""Known vulnerabilities: a KEV catalogue and NVD CVE records (JSON 2.0) that the test makes
in the real formats, imported and matched against an inventory built through the real
ingest path from the lab devices' own words. A device is marked only when its product and
version fall in a listed range; one without a version is possibly affected, never
affected; a range it is outside of, or another vendor's product, marks nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlite_utils import Database

from agent import signing, wire
from agent.wire import Asset, Findings, Observation
from central import exports, inventory, registry, vulns
from central.ingest import Ingestor
from central.policy import parse
from central.violations import evaluate, violations
from tests.central.vuln_feeds import KEV, NVD, cve_record, write_feeds

ROOT = Path(__file__).parents[2]
POLICY = parse("""
org = "kommune"
[[site]]
name = "raadhus"
[[zone]]
name = "cameras"
cidrs = ["10.20.30.0/24"]
allowed_types = ["camera"]
[[zone]]
name = "bms"
cidrs = ["10.20.40.0/24"]
allowed_types = ["plc", "switch", "bms_controller"]
""")

# the lab devices' own words: what the sensors report of them
DEVICES = {
    "10.20.30.22": ("ac:cc:8e:10:30:22", [("ftp.banner", "220 AXIS P1375 Network Camera "
                                           "10.12.114 (2023) ready.")]),
    "10.20.40.2": ("20:87:56:10:40:02", [("lldp.sysdescr", "Siemens, SIMATIC NET, SCALANCE "
                                          "XC208, 6GK5 208-0BA00-2AC2, HW: Version 1, FW: "
                                          "Version V04.01.00, SVPH1234567")]),
    "10.20.40.31": ("00:80:f4:10:40:31", [("http.server", "Schneider-WEB/V2.1.4"),
                                          ("ftp.banner", "220 FTP server (Schneider Electric "
                                           "BMX NOE 0100) ready.")]),
    "10.20.40.34": ("00:1b:08:10:40:34", [("http.title", "Danfoss ECL Comfort 296")]),
}


@pytest.fixture
def inventory_db(db: Database) -> Database:
    key = signing.generate_private_key()
    registry.add_sensor(db, sensor="s-1", org="kommune", site="raadhus",
                        public_jwk=signing.public_jwk(key))
    at = wire.utc_now()
    assets = tuple(Asset(ip=ip, mac=mac, sources=("arp", "tcp"), observations=tuple(
        Observation(key=k, value=v, source="x") for k, v in said))
        for ip, (mac, said) in DEVICES.items())
    findings = Findings(sensor="s-1", org="kommune", seq=1, msg_id=uuid.uuid4().hex,
                        scan_id=uuid.uuid4().hex, sent_at=at, scan_started_at=at,
                        scan_finished_at=at, assets=assets)
    outcome = Ingestor(db).ingest(wire.findings_topic("kommune", "s-1"),
                                  signing.sign(findings.encode(), key, kid="s-1"))
    assert outcome.accepted, outcome
    return db


def test_versions_compare_part_by_part() -> None:
    key = vulns.version_key
    assert key("V04.01.00") == key("4.1") and key("10.12.114") < key("10.12.200")
    assert key("1.0rc1") < key("1.0.1") and key("2.1.4") > key("2.0") > key("1.99")
    cover = vulns.Range(cve="C", criteria="x", vendor="v", product="p", version="*",
                        start_excl="1.0", end_incl="2.0")
    assert [cover.covers(v) for v in ("1.0", "1.0.1", "2.0", "2.0.1")] == [
        None, vulns.AFFECTED, vulns.AFFECTED, None]
    assert cover.covers(None) == vulns.POSSIBLY  # no version: never "affected"
    exact = vulns.Range(cve="C", criteria="x", vendor="v", product="p", version="3.2")
    assert (exact.covers("3.2.0"), exact.covers("3.3")) == (vulns.AFFECTED, None)
    assert vulns.parse_cpe(r"cpe:2.3:o:ven\:dor:prod:1.0:*:*:*:*:*:*:*") == (
        "o", "ven:dor", "prod", "1.0")
    assert vulns.parse_cpe("cpe:/h:axis:p1375") == ("h", "axis", "p1375", "*")


def test_a_web_servers_cpe_is_not_the_devices() -> None:
    """recog names the lighttpd on a heating controller cpe:/a:lighttpd:lighttpd:1.4.35: that
    is software on the device, and 1.4.35 is not its firmware (the lab found this)."""
    assert vulns.device_cpe("cpe:/a:lighttpd:lighttpd:1.4.35", "Danfoss") is None
    assert vulns.device_cpe("cpe:/h:hikvision:ds-2cd2032", "Axis Communications") is None
    assert vulns.device_cpe("cpe:/h:axis:p1375", "Axis Communications") == (
        "h", "axis", "p1375", "*")
    row = {"vendor": "Danfoss", "product": None, "model": "ECL Comfort 296", "version": None,
           "cpe": "cpe:/a:lighttpd:lighttpd:1.4.35"}
    assert vulns._asset_names(row) == (("danfoss",), {("ecl", "comfort", "296")}, None)


def test_kev_and_nvd_mark_the_devices_in_a_listed_range_and_no_others(
        inventory_db: Database, tmp_path: Path) -> None:
    db = inventory_db
    kev, nvd = write_feeds(tmp_path)
    assert vulns.import_file(db, kev) == {"file": str(kev), "kind": "kev", "cves": 2}
    assert vulns.import_file(db, nvd)["ranges"] == 6  # the platform CPE is not vulnerable
    assert vulns.match(db) == {"affected": 2, "possibly_affected": 1, "assets": 3}
    by_ip = {a.addresses[0]: a for a in inventory.assets(db)}
    marked = {ip: [(v["cve"], v["status"]) for v in a.vulnerabilities]
              for ip, a in by_ip.items() if a.vulnerabilities}
    assert marked == {"10.20.30.22": [("CVE-2025-1001", "affected")],
                      "10.20.40.2": [("CVE-2025-1002", "affected")],
                      "10.20.40.34": [("CVE-2025-1004", "possibly_affected")]}
    # each identified device has a CPE 2.3 name: its firmware at its version, or its hardware
    assert by_ip["10.20.30.22"].cpe == "cpe:2.3:o:axis:p1375_firmware:10.12.114:*:*:*:*:*:*:*"
    assert by_ip["10.20.40.2"].cpe == ("cpe:2.3:o:siemens:scalance_xc208_firmware:4.1:"
                                       "*:*:*:*:*:*:*")
    assert by_ip["10.20.40.34"].cpe == "cpe:2.3:h:danfoss:ecl_comfort_296:-:*:*:*:*:*:*:*"
    camera = by_ip["10.20.30.22"].vulnerabilities[0]
    assert camera["kev"] and camera["ransomware"] and camera["cvss"] == 9.8  # the primary score
    assert "<b>" in camera["description"]  # kept as text: every view escapes it

    evaluate(db, POLICY)
    found = {v.asset_id: v for v in violations(db) if v.kind == "vulnerable_device"}
    assert {by_ip[ip].id for ip in marked} == set(found)
    severities = {ip: found[by_ip[ip].id].severity for ip in marked}
    # exploited in the wild: critical; CVSS 7.5: high; 6.5 and only possibly: low
    assert severities == {"10.20.30.22": "critical", "10.20.40.2": "high",
                          "10.20.40.34": "low"}
    assert found[by_ip["10.20.40.34"].id].title.startswith("bms_controller 10.20.40.34 "
                                                          "(Danfoss ECL Comfort 296): possibly")
    evidence = found[by_ip["10.20.30.22"].id].evidence[0]
    assert evidence["cve"] == "CVE-2025-1001" and evidence["kev"] and evidence["cvss"] == 9.8
    # and the risk register shows them
    assets_csv = exports.export(db, "assets", "csv", policy=POLICY).decode("utf-8-sig")
    assert "CVE-2025-1001 (KEV)" in assets_csv and "CVE-2025-1004 possibly" in assets_csv
    register = json.loads(exports.export(db, "violations", "json"))
    assert sum(r["kind"] == "vulnerable_device" for r in register) == 3


def test_a_kev_entry_without_nvd_data_is_only_possible_and_a_fixed_version_clears(
        inventory_db: Database, tmp_path: Path) -> None:
    db = inventory_db
    kev = dict(KEV, vulnerabilities=[dict(KEV["vulnerabilities"][0], cveID="CVE-2025-2000",
                                          vendorProject="Axis Communications")])
    path = tmp_path / "kev.json"
    path.write_text(json.dumps(kev))
    vulns.import_file(db, path)
    vulns.match(db)
    assert [(v["cve"], v["status"]) for a in inventory.assets(db) for v in a.vulnerabilities] \
        == [("CVE-2025-2000", "possibly_affected")]
    # NVD then publishes the record: its range (fixed in 10.12.100) decides, not KEV's names
    record = cve_record("CVE-2025-2000", [{"criteria": "cpe:2.3:o:axis:p1375_firmware:*:*:*:*:*:*:*"
                                     ":*", "versionEndExcluding": "10.12.100"}], 9.0)
    nvd = tmp_path / "nvd.json"
    nvd.write_text(json.dumps(dict(NVD, vulnerabilities=[record])))
    vulns.import_file(db, nvd)
    assert vulns.match(db)["assets"] == 0  # 10.12.114 is fixed


def test_other_files_are_refused_with_the_reason(db: Database, tmp_path: Path) -> None:
    for name, content in (("a.json", "[1, 2]"), ("b.json", "{not json"),
                          ("c.json.gz", "not gzip")):
        (tmp_path / name).write_text(content)
        with pytest.raises(vulns.FeedError, match=name):
            vulns.import_file(db, tmp_path / name)


def test_the_vulns_commands_import_list_and_report(inventory_db: Database,
                                                   tmp_path: Path) -> None:
    db_path = tmp_path / "inventory.db"
    kev, nvd = write_feeds(tmp_path)

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "central.cli", "vulns", *argv, "--db",
                               str(db_path)], capture_output=True, text=True, cwd=ROOT,
                              timeout=120)

    done = run("import", str(kev), str(nvd))
    assert done.returncode == 0, done.stderr
    assert "KEV, 2 CVEs" in done.stdout and "NVD, 5 CVEs, 6 vulnerable CPE ranges" in done.stdout
    status = json.loads(run("status", "--format", "json").stdout)
    assert status["cves"] == 6 and status["kev"] == 2
    refused = run("import", str(tmp_path / "missing.json"))
    assert refused.returncode == 2 and "missing.json" in refused.stderr

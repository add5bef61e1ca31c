"""Known vulnerabilities of identified devices: CISA's Known Exploited Vulnerabilities
catalogue and NVD CVE records (JSON 2.0) imported offline, matched against each asset's
product and version.

Matching is deliberately narrow, because a wrong vulnerability on a risk register costs a
municipality more than a missing one:

- the CPE's vendor must be the asset's vendor (its first words: ``axis`` is "Axis
  Communications"), and the CPE's product (less a trailing ``firmware``) must be the
  asset's model or product, word for word (``scalance_xc208`` is "SCALANCE XC208");
- the version is compared part by part, numbers as numbers (``04.01.00`` is 4.1), against
  the record's exact version or its range (``versionStartIncluding``,
  ``versionStartExcluding``, ``versionEndIncluding``, ``versionEndExcluding``);
- an asset without a version is "possibly affected", never "affected".

A KEV entry marks its CVE as exploited in the wild; it names no CPE, so a KEV-only CVE
(no NVD record imported for it) matches only an asset whose vendor and product are KEV's
``vendorProject`` and ``product``, and then only as "possibly affected".
"""

from __future__ import annotations

import gzip
import json
import re
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from agent import wire
from central.db import immediate

MAX_FEED_BYTES = 1024 * 1024 * 1024  # an NVD yearly feed is a few hundred MB unpacked
KEV_URL = ("https://www.cisa.gov/sites/default/files/feeds/"
           "known_exploited_vulnerabilities.json")
NVD_FEEDS = ("https://nvd.nist.gov/feeds/json/cve/2.0/nvdcve-2.0-recent.json.gz",
             "https://nvd.nist.gov/feeds/json/cve/2.0/nvdcve-2.0-modified.json.gz")
AFFECTED, POSSIBLY = "affected", "possibly_affected"
_CVE_RE = re.compile(r"^CVE-\d{4}-\d{4,}$")


class FeedError(ValueError):
    """A file that is neither the KEV catalogue nor NVD CVE records (JSON 2.0)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Range:
    """One vulnerable CPE of a CVE: the product, and the versions affected."""

    cve: str
    criteria: str  # the CPE 2.3 name as NVD gives it
    vendor: str
    product: str
    version: str  # '*' any, '-' not applicable, or one exact version
    start_incl: str | None = None
    start_excl: str | None = None
    end_incl: str | None = None
    end_excl: str | None = None

    def covers(self, version: str | None) -> str | None:
        """AFFECTED, POSSIBLY (no version to compare) or None (not in the range)."""
        bounded = any((self.start_incl, self.start_excl, self.end_incl, self.end_excl))
        exact = self.version not in ("*", "-", "")
        if version is None:
            return POSSIBLY
        key = version_key(version)
        if exact:
            return AFFECTED if key == version_key(self.version) else None
        if not bounded:
            return AFFECTED  # every version of the product
        checks = ((self.start_incl, lambda k, b: k >= b), (self.start_excl, lambda k, b: k > b),
                  (self.end_incl, lambda k, b: k <= b), (self.end_excl, lambda k, b: k < b))
        for bound, holds in checks:
            if bound is not None and not holds(key, version_key(bound)):
                return None
        return AFFECTED


def version_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """A version as comparable parts: numbers as numbers, letters below numbers (1.0rc1 <
    1.0.1), a leading 'v' and trailing zero parts ignored (V04.01.00 == 4.1)."""
    parts = re.findall(r"\d+|[a-z]+", text.lower().lstrip("v. "))
    key: list[tuple[int, int | str]] = [(1, int(p)) if p.isdigit() else (0, p) for p in parts]
    while key and key[-1] == (1, 0):
        key.pop()
    return tuple(key)


def words(text: str | None) -> tuple[str, ...]:
    return tuple(re.findall(r"[a-z0-9]+", (text or "").lower()))


def parse_cpe(name: str) -> tuple[str, str, str, str] | None:
    """(part, vendor, product, version) of a CPE 2.3 name or a CPE 2.2 URI, else None."""
    if name.startswith("cpe:2.3:"):
        fields = re.split(r"(?<!\\):", name)
        if len(fields) < 6:
            return None
        return fields[2], fields[3].replace("\\", ""), fields[4].replace("\\", ""), fields[5]
    if name.startswith("cpe:/"):
        fields = name[5:].split(":")
        fields += [""] * (4 - len(fields))
        return fields[0], fields[1], fields[2], fields[3] or "*"
    return None


_CORPORATE = frozenset({"inc", "co", "ltd", "llc", "ab", "as", "a", "s", "gmbh", "ag", "corp",
                        "corporation", "company", "limited", "holding", "technology",
                        "technologies", "communications", "systems", "digital"})


def cpe_name(*, vendor: str | None, product: str | None, model: str | None,
             version: str | None) -> str | None:
    """A CPE 2.3 name for an identified device that no fingerprint database named: the
    firmware of its model at its version (``cpe:2.3:o:axis:p1375_firmware:10.12.114``), or
    the hardware when no version is known. For the register's reader and for searching NVD
    by hand; the matching itself compares vendor, product and version (see :func:`hits`)."""
    maker = [w for w in words(vendor) if w not in _CORPORATE][:2]
    thing = "_".join(words(model or product))
    if not maker or not thing:
        return None
    vendor_part = "_".join(maker)
    if version:
        clean = ".".join(str(p[1]) for p in version_key(version)) or version
        return f"cpe:2.3:o:{vendor_part}:{thing}_firmware:{clean}:*:*:*:*:*:*:*"
    return f"cpe:2.3:h:{vendor_part}:{thing}:-:*:*:*:*:*:*:*"


# --------------------------------------------------------------------------- import


def _load(path: Path) -> Any:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read(MAX_FEED_BYTES + 1)
    except (OSError, EOFError) as exc:
        raise FeedError(f"{path}: cannot read it ({exc})") from None
    if len(data) > MAX_FEED_BYTES:
        raise FeedError(f"{path}: more than {MAX_FEED_BYTES} bytes")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise FeedError(f"{path}: not JSON ({str(exc)[:120]})") from None


def import_file(db: Database, path: Path) -> dict[str, Any]:
    """Import one file (KEV or NVD, plain or .gz); returns what it held."""
    data = _load(path)
    if isinstance(data, dict) and "catalogVersion" in data and isinstance(
            data.get("vulnerabilities"), list):
        return {"file": str(path), "kind": "kev", "cves": _import_kev(db, data)}
    if isinstance(data, dict) and (data.get("format") == "NVD_CVE" or isinstance(
            data.get("vulnerabilities"), list)):
        cves, ranges = _import_nvd(db, data)
        return {"file": str(path), "kind": "nvd", "cves": cves, "ranges": ranges}
    raise FeedError(f"{path}: neither CISA's KEV catalogue nor NVD CVE records (JSON 2.0)")


def _text(value: object, limit: int = 2000) -> str | None:
    return wire.printable(value, limit=limit) if isinstance(value, str) else None


def _import_kev(db: Database, data: dict[str, Any]) -> int:
    count = 0
    with immediate(db):
        for item in data["vulnerabilities"]:
            cve = item.get("cveID") if isinstance(item, dict) else None
            if not isinstance(cve, str) or not _CVE_RE.match(cve):
                continue
            db.execute(
                "INSERT INTO vuln_cves (cve, kev, kev_added, kev_due, kev_ransomware,"
                " kev_vendor, kev_product, kev_name) VALUES (?, 1, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (cve) DO UPDATE SET kev = 1, kev_added = excluded.kev_added,"
                " kev_due = excluded.kev_due, kev_ransomware = excluded.kev_ransomware,"
                " kev_vendor = excluded.kev_vendor, kev_product = excluded.kev_product,"
                " kev_name = excluded.kev_name",
                [cve, _text(item.get("dateAdded"), 32), _text(item.get("dueDate"), 32),
                 _text(item.get("knownRansomwareCampaignUse"), 32),
                 _text(item.get("vendorProject"), 200), _text(item.get("product"), 200),
                 _text(item.get("vulnerabilityName"), 500)])
            count += 1
    return count


def _score(metrics: object) -> tuple[float | None, str | None]:
    """The primary (else the first) CVSS base score, newest CVSS version first."""
    if not isinstance(metrics, dict):
        return None, None
    for name in ("cvssMetricV40", "cvssMetricV31", "cvssMetricV30", "cvssMetricV2"):
        entries = [e for e in metrics.get(name) or [] if isinstance(e, dict)]
        entries.sort(key=lambda e: e.get("type") != "Primary")
        for entry in entries:
            data = entry.get("cvssData") or {}
            score = data.get("baseScore")
            if isinstance(score, int | float) and not isinstance(score, bool):
                severity = data.get("baseSeverity") or entry.get("baseSeverity")
                return float(score), _text(severity, 16)
    return None, None


def _matches(configurations: object) -> Iterator[dict[str, Any]]:
    """Every vulnerable cpeMatch of a CVE's configurations (nested nodes included)."""
    stack = list(configurations) if isinstance(configurations, list) else []
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        stack.extend(node.get("nodes") or [])
        stack.extend(node.get("children") or [])
        for match in node.get("cpeMatch") or []:
            if isinstance(match, dict) and match.get("vulnerable") is True and isinstance(
                    match.get("criteria"), str):
                yield match


def _import_nvd(db: Database, data: dict[str, Any]) -> tuple[int, int]:
    cves = ranges = 0
    with immediate(db):
        for item in data.get("vulnerabilities") or []:
            cve = item.get("cve") if isinstance(item, dict) else None
            name = cve.get("id") if isinstance(cve, dict) else None
            if not isinstance(name, str) or not _CVE_RE.match(name):
                continue
            assert isinstance(cve, dict)
            description = next((d.get("value") for d in cve.get("descriptions") or []
                                if isinstance(d, dict) and d.get("lang") == "en"), None)
            score, severity = _score(cve.get("metrics"))
            db.execute(
                "INSERT INTO vuln_cves (cve, description, cvss, cvss_severity, published)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (cve) DO UPDATE SET"
                " description = excluded.description, cvss = excluded.cvss,"
                " cvss_severity = excluded.cvss_severity, published = excluded.published",
                [name, _text(description), score, severity, _text(cve.get("published"), 32)])
            db.execute("DELETE FROM vuln_ranges WHERE cve = ?", [name])  # the record is whole
            for match in _matches(cve.get("configurations")):
                parsed = parse_cpe(match["criteria"])
                if parsed is None:
                    continue
                _part, vendor, product, version = parsed
                bounds = [_text(match.get(k), 64) for k in (
                    "versionStartIncluding", "versionStartExcluding", "versionEndIncluding",
                    "versionEndExcluding")]
                db.execute("INSERT INTO vuln_ranges (cve, criteria, vendor, product, version,"
                           " start_incl, start_excl, end_incl, end_excl)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [name, _text(match["criteria"], 500), vendor.lower(),
                            product.lower(), version, *bounds])
                ranges += 1
            cves += 1
    return cves, ranges


def update(db: Database, *, urls: Iterable[str] = (KEV_URL, *NVD_FEEDS),
           folder: Path, timeout_s: float = 120.0) -> list[dict[str, Any]]:
    """Fetch KEV and NVD's recent and modified feeds (a central with internet access) into
    ``folder``, then import them."""
    results = []
    folder.mkdir(parents=True, exist_ok=True)
    for url in urls:
        target = folder / url.rsplit("/", 1)[1]
        request = urllib.request.Request(url, headers={"User-Agent": "netvagt"})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as reply:  # noqa: S310
                body = reply.read(MAX_FEED_BYTES + 1)
        except OSError as exc:
            raise FeedError(f"{url}: {exc}") from None
        if len(body) > MAX_FEED_BYTES:
            raise FeedError(f"{url}: more than {MAX_FEED_BYTES} bytes")
        target.write_bytes(body)
        results.append(import_file(db, target))
    return results


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True, slots=True)
class Hit:
    asset_id: int
    cve: str
    status: str
    criteria: str


def device_cpe(cpe: str | None, vendor: str | None) -> tuple[str, str, str, str] | None:
    """The parts of a CPE a fingerprint database gave, if it names the device itself: its
    hardware or operating system (``h``, ``o``) by the device's own vendor. A web server's
    application CPE (``cpe:/a:lighttpd:lighttpd:1.4.35``) names what runs on it, and its
    version is not the device's firmware."""
    parsed = parse_cpe(cpe) if cpe else None
    if parsed is None or parsed[0] not in ("h", "o"):
        return None
    maker = words(vendor)
    if maker and words(parsed[1].replace("_", " "))[:1] != maker[:1]:
        return None
    return parsed


def _asset_names(row: dict[str, Any]) -> tuple[tuple[str, ...], set[tuple[str, ...]],
                                                 str | None]:
    """(vendor words, product names as words, version) of an identified asset."""
    vendor = words(row["vendor"])
    products = {words(row["product"]), words(row["model"])} - {()}
    version = row["version"]
    if (parsed := device_cpe(row.get("cpe"), row["vendor"])) is not None:
        _part, cpe_vendor, cpe_product, cpe_version = parsed
        vendor = vendor or words(cpe_vendor)
        products.add(_product_words(cpe_product))
        if not version and cpe_version not in ("*", "-", ""):
            version = cpe_version
    return vendor, products, version


def _product_words(product: str) -> tuple[str, ...]:
    found = words(product.replace("_", " "))
    return found[:-1] if len(found) > 1 and found[-1] == "firmware" else found


def _ranges_for(db: Database, first_word: str) -> dict[str, list[Range]]:
    """The imported ranges whose CPE vendor starts with ``first_word`` (by the index)."""
    out: dict[str, list[Range]] = {}
    for row in db.query("SELECT * FROM vuln_ranges WHERE vendor >= ? AND vendor < ?",
                        [first_word, first_word + "\uffff"]):
        out.setdefault(row["vendor"], []).append(Range(
            cve=row["cve"], criteria=row["criteria"], vendor=row["vendor"],
            product=row["product"], version=row["version"], start_incl=row["start_incl"],
            start_excl=row["start_excl"], end_incl=row["end_incl"], end_excl=row["end_excl"]))
    return out


def hits(db: Database) -> list[Hit]:
    """Which identified assets fall in which imported CVE's range."""
    kev_only = [dict(r) for r in db.query(
        "SELECT cve, kev_vendor, kev_product FROM vuln_cves c WHERE kev = 1 AND NOT EXISTS"
        " (SELECT 1 FROM vuln_ranges r WHERE r.cve = c.cve)")]
    by_vendor: dict[str, dict[str, list[Range]]] = {}
    out: list[Hit] = []
    for row in db.query("SELECT id, vendor, product, model, version, cpe FROM assets"
                        " WHERE vendor IS NOT NULL OR cpe IS NOT NULL"):
        vendor, products, version = _asset_names(dict(row))
        if not vendor or not products:
            continue
        if vendor[0] not in by_vendor:
            by_vendor[vendor[0]] = _ranges_for(db, vendor[0])
        seen: dict[str, Hit] = {}
        for cpe_vendor, candidates in by_vendor[vendor[0]].items():
            wanted = words(cpe_vendor.replace("_", " "))
            if not wanted or vendor[:len(wanted)] != wanted:
                continue
            for candidate in candidates:
                if _product_words(candidate.product) not in products:
                    continue
                status = candidate.covers(version)
                known = seen.get(candidate.cve)
                if status and (known is None or (known.status, status) == (POSSIBLY, AFFECTED)):
                    seen[candidate.cve] = Hit(row["id"], candidate.cve, status, candidate.criteria)
        for entry in kev_only:
            if words(entry["kev_vendor"])[:1] == vendor[:1] and words(entry["kev_product"]) in \
                    products and entry["cve"] not in seen:
                seen[entry["cve"]] = Hit(row["id"], entry["cve"], POSSIBLY,
                                         f"KEV: {entry['kev_vendor']} {entry['kev_product']}")
        out.extend(seen.values())
    return out


def refresh(db: Database) -> None:
    """Match again before an evaluation (new devices, new versions), when any
    vulnerability data is imported; nothing to do otherwise."""
    if db.execute("SELECT 1 FROM vuln_cves LIMIT 1").fetchone() is not None:
        match(db)


def match(db: Database) -> dict[str, int]:
    """Recompute which assets each imported CVE affects; returns the counts."""
    found = hits(db)
    now = wire.utc_now()
    with immediate(db):
        db.execute("DELETE FROM asset_vulns")
        for hit in found:
            db.execute("INSERT INTO asset_vulns (asset_id, cve, status, criteria, matched_at)"
                       " VALUES (?, ?, ?, ?, ?)",
                       [hit.asset_id, hit.cve, hit.status, hit.criteria, now])
    return {AFFECTED: sum(h.status == AFFECTED for h in found),
            POSSIBLY: sum(h.status == POSSIBLY for h in found),
            "assets": len({h.asset_id for h in found})}


def of_assets(db: Database, *, ids: list[int] | None = None) -> dict[int, list[dict[str, Any]]]:
    """Each asset's matched vulnerabilities, worst first: CVE, status, CVSS, KEV; only these
    assets' when ``ids`` is given."""
    out: dict[int, list[dict[str, Any]]] = {}
    where, args = ("", []) if ids is None else (
        " WHERE v.asset_id IN (SELECT value FROM json_each(?))", [json.dumps(ids)])
    for row in db.query(
            "SELECT v.asset_id, v.cve, v.status, v.criteria, c.cvss, c.cvss_severity, c.kev,"  # noqa: S608
            " c.kev_ransomware, c.description FROM asset_vulns v JOIN vuln_cves c"
            " ON c.cve = v.cve" + where + " ORDER BY c.kev DESC, coalesce(c.cvss, 0) DESC,"
            " v.cve", args):
        out.setdefault(row["asset_id"], []).append({
            "cve": row["cve"], "status": row["status"], "cvss": row["cvss"],
            "cvss_severity": row["cvss_severity"], "kev": bool(row["kev"]),
            "ransomware": row["kev_ransomware"] == "Known", "cpe": row["criteria"],
            "description": (row["description"] or "")[:300]})
    return out


def severity(vulns: list[dict[str, Any]]) -> str:
    """A vulnerable device's severity: exploited (KEV) or CVSS 9+ is critical, 7+ high,
    4+ medium; a device only possibly affected is one step lower."""
    order = ("low", "medium", "high", "critical")

    def one(v: dict[str, Any]) -> int:
        score = v["cvss"] or 0.0
        level = 3 if v["kev"] or score >= 9 else 2 if score >= 7 else 1 if score >= 4 else 0
        return level if v["status"] == AFFECTED else max(0, level - 1)

    return order[max(one(v) for v in vulns)]


def status(db: Database) -> dict[str, Any]:
    row = db.execute("SELECT count(*), sum(kev), max(published), max(kev_added)"
                     " FROM vuln_cves").fetchone()
    ranges = db.execute("SELECT count(*) FROM vuln_ranges").fetchone()[0]
    matched = db.execute("SELECT count(DISTINCT asset_id) FROM asset_vulns").fetchone()[0]
    return {"cves": row[0], "kev": row[1] or 0, "latest_published": row[2],
            "latest_kev_added": row[3], "ranges": ranges, "assets_matched": matched}

"""Vulnerability feeds in the real formats (CISA KEV, NVD CVE records JSON 2.0), made by the
tests: ranges that cover some of the lab devices' product and version, and some that do not."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path
from typing import Any


def cve_record(name: str, criteria: list[dict[str, Any]], score: float, *,
         platform: str | None = None) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [{"operator": "OR", "negate": False, "cpeMatch": [
        {"vulnerable": True, "matchCriteriaId": str(uuid.uuid4()).upper(), **c}
        for c in criteria]}]
    if platform:  # firmware AND the hardware it runs on, as NVD writes it
        nodes.append({"operator": "OR", "negate": False, "cpeMatch": [
            {"vulnerable": False, "criteria": platform, "matchCriteriaId": "X"}]})
    return {"cve": {
        "id": name, "sourceIdentifier": "psirt@example.com", "published": "2025-03-11T10:15:00.000",
        "lastModified": "2025-03-12T10:15:00.000", "vulnStatus": "Analyzed",
        "descriptions": [{"lang": "en", "value": f"<b>{name}</b> in the web server"},
                         {"lang": "es", "value": "en el servidor"}],
        "metrics": {"cvssMetricV31": [
            {"source": "other@example.com", "type": "Secondary",
             "cvssData": {"version": "3.1", "baseScore": 1.0, "baseSeverity": "LOW"}},
            {"source": "nvd@nist.gov", "type": "Primary",
             "cvssData": {"version": "3.1", "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U"
                          "/C:H/I:H/A:H", "baseScore": score,
                          "baseSeverity": "CRITICAL" if score >= 9 else "HIGH"}}]},
        "configurations": [{"operator": "AND" if platform else "OR", "nodes": nodes}],
        "references": [{"url": "https://example.com/advisory"}]}}


NVD: dict[str, Any] = {
    "resultsPerPage": 5, "startIndex": 0, "totalResults": 5, "format": "NVD_CVE",
    "version": "2.0", "timestamp": "2025-06-01T00:00:00.000",
    "vulnerabilities": [
        # the camera's firmware is below the fixed release: affected
        cve_record("CVE-2025-1001", [{"criteria": "cpe:2.3:o:axis:p1375_firmware:*:*:*:*:*:*:*:*",
                                "versionEndExcluding": "10.12.200"}], 9.8,
             platform="cpe:2.3:h:axis:p1375:-:*:*:*:*:*:*:*"),
        # the switch's V04.01.00 is inside 4.0 <= v <= 4.1: affected
        cve_record("CVE-2025-1002", [{"criteria": "cpe:2.3:o:siemens:scalance_xc208_firmware:*:*:*:*"
                                ":*:*:*:*", "versionStartIncluding": "4.0",
                                "versionEndIncluding": "4.1"}], 7.5),
        # the PLC's 2.1.4 is above the range: not affected
        cve_record("CVE-2025-1003", [{"criteria": "cpe:2.3:o:schneider-electric:bmx_noe_0100_firmware"
                                ":*:*:*:*:*:*:*:*", "versionEndExcluding": "2.0"}], 8.1),
        # the heating controller shows no version: possibly affected
        cve_record("CVE-2025-1004", [{"criteria": "cpe:2.3:h:danfoss:ecl_comfort_296:*:*:*:*:*:*:*:*",
                                "versionEndExcluding": "1.20"}], 6.5),
        # another vendor's camera, and another Axis model: nothing here
        cve_record("CVE-2025-1005", [{"criteria": "cpe:2.3:o:hikvision:ds-2cd2032-i_firmware:*:*:*:*"
                                ":*:*:*:*", "versionEndExcluding": "5.4.0"},
                               {"criteria": "cpe:2.3:o:axis:p1375-e_firmware:*:*:*:*:*:*:*:*"}],
             9.8),
    ]}
KEV: dict[str, Any] = {
    "title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "2025.06.01",
    "dateReleased": "2025-06-01T12:00:00.000Z", "count": 2, "vulnerabilities": [
        {"cveID": "CVE-2025-1001", "vendorProject": "Axis", "product": "P1375",
         "vulnerabilityName": "Axis P1375 Command Injection", "dateAdded": "2025-04-01",
         "shortDescription": "...", "requiredAction": "Apply updates.", "dueDate": "2025-04-22",
         "knownRansomwareCampaignUse": "Known", "notes": "", "cwes": ["CWE-78"]},
        {"cveID": "CVE-2024-9999", "vendorProject": "Fortinet", "product": "FortiOS",
         "vulnerabilityName": "x", "dateAdded": "2024-10-01", "shortDescription": "...",
         "requiredAction": "...", "dueDate": "2024-10-22",
         "knownRansomwareCampaignUse": "Unknown", "notes": "", "cwes": []},
    ]}


def write_feeds(tmp_path: Path) -> tuple[Path, Path]:
    kev, nvd = tmp_path / "known_exploited_vulnerabilities.json", tmp_path / "nvd.json.gz"
    kev.write_text(json.dumps(KEV))
    nvd.write_bytes(gzip.compress(json.dumps(NVD).encode()))
    return kev, nvd



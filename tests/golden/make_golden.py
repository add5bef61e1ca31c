"""Regenerate the golden envelopes (run only when the schema version changes on purpose).

    python tests/golden/make_golden.py
"""

from __future__ import annotations

from pathlib import Path

from agent import signing
from agent.wire import Asset, Findings, Service

HERE = Path(__file__).parent
SEED = bytes(range(32))  # a published test key: never a real sensor's


def golden_findings_v1() -> Findings:
    return Findings(
        sensor="s-golden",
        org="golden-kommune",
        seq=7,
        msg_id="0123456789abcdef0123456789abcdef",
        scan_id="fedcba9876543210fedcba9876543210",
        sent_at="2026-11-22T03:00:05.000000Z",
        scan_started_at="2026-11-22T03:00:00.000000Z",
        scan_finished_at="2026-11-22T03:00:04.500000Z",
        networks=("10.20.30.0/24",),
        assets=(
            Asset(
                ip="10.20.30.21",
                mac="44:19:b6:10:30:21",
                mac_vendor="Hangzhou Hikvision Digital Technology Co.,Ltd.",
                rtt_ms=0.41,
                sources=("arp", "tcp"),
                services=(
                    Service(port=80, name="http", product="Hikvision IP camera httpd",
                            source="nmap"),
                    Service(port=554, name="rtsp", banner="RTSP/1.0 200 OK\r\nCSeq: 1\r\n",
                            source="tcp"),
                ),
            ),
            Asset(ip="10.20.30.99", mac="da:a1:19:00:00:01", mac_random=True, rtt_ms=1.5,
                  sources=("arp",)),
        ),
    )


def main() -> None:
    key = signing.private_key_from_seed(SEED)
    token = signing.sign(golden_findings_v1().encode(), key, kid="s-golden")
    (HERE / "findings-v1.jws").write_bytes(token)
    (HERE / "s-golden.jwk").write_text(__import__("json").dumps(signing.public_jwk(key)) + "\n")


if __name__ == "__main__":
    main()

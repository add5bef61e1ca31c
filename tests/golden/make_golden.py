"""Regenerate the golden envelopes (run only when the schema version changes on purpose).

    python tests/golden/make_golden.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent import signing, wire
from agent.wire import Asset, Findings, Observation, Probe, Service

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


GOLDEN_ID = "0123456789abcdef0123456789abcdef"
PLAN_ID = "aaaaaaaabbbbbbbbccccccccdddddddd"
AT = "2026-11-22T03:00:05.000000Z"


def golden_messages() -> dict[str, tuple[Any, str]]:
    """One message of every kind the wire carries, with the JWS type it is signed as: the
    envelopes every side must keep producing and reading (findings-v1 is the first)."""
    jwk = signing.public_jwk(signing.private_key_from_seed(SEED))
    return {
        "findings-v1": (golden_findings_v1(), signing.TYPE_FINDINGS),
        "findings-observed-v1": (Findings(
            sensor="s-golden", org="golden-kommune", seq=8, msg_id=GOLDEN_ID.replace("0", "1"),
            scan_id=GOLDEN_ID, sent_at=AT, scan_started_at=AT, scan_finished_at=AT,
            assets=(Asset(ip="10.20.30.40", hostname="printer-2", sources=("passive",),
                          observations=(Observation(key="snmp.sysdescr", value="HP LaserJet",
                                                    source="161/udp"),)),)),
            signing.TYPE_FINDINGS),
        "reach-v1": (Findings(
            sensor="s-golden", org="golden-kommune", seq=9, msg_id=GOLDEN_ID.replace("0", "2"),
            scan_id=GOLDEN_ID, sent_at=AT, scan_started_at=AT, scan_finished_at=AT,
            plan_id=PLAN_ID, probes=(Probe(ip="10.20.40.7", proto="tcp", port=502,
                                           state="reachable", rtt_ms=0.8),
                                     Probe(ip="10.20.40.7", proto="icmp", state="filtered"))),
            signing.TYPE_FINDINGS),
        "ack-v1": (wire.Ack(sensor="s-golden", org="golden-kommune",
                            msg_ids=(GOLDEN_ID,), acked_at=AT), signing.TYPE_ACK),
        "enroll-v1": (wire.EnrollRequest(token="0123456789ab." + "s" * 32, public_jwk=jwk,
                                         name="s-golden", hostname="pi-cameras"),
                      signing.TYPE_ENROLL),
        "enroll-reply-v1": (wire.EnrollReply(ok=True, sensor="s-golden", org="golden-kommune",
                                             site="raadhuset", zone="cameras",
                                             mqtt_username="nvs-0123456789ab",
                                             mqtt_password="p" * 32, central_jwk=jwk),
                            signing.TYPE_ENROLL_REPLY),
        "plan-v1": (wire.ProbePlan(id=PLAN_ID, sensor="s-golden", org="golden-kommune",
                                   zone="admin", issued_at=AT, expires_at=AT.replace("03", "05", 1),
                                   targets=(wire.PlanTarget(ip="10.20.40.7", zone="bms",
                                                            tcp=(22, 502), udp=(161,)),)),
                    signing.TYPE_PLAN),
        "status-v1": (wire.Status(sensor="s-golden", org="golden-kommune", state="online", at=AT,
                                  version="0.1.0", last_scan_at=AT, last_scan_assets=12,
                                  outbox_depth=0, errors=(f"{AT} scan stopped after 60 s",)),
                      signing.TYPE_STATUS),
        "command-v1": (wire.Command(id=GOLDEN_ID, sensor="s-golden", org="golden-kommune",
                                    command="scan", issued_at=AT,
                                    expires_at=AT.replace("03", "04", 1), profile="safe"),
                       signing.TYPE_COMMAND),
    }


def main() -> None:
    key = signing.private_key_from_seed(SEED)
    for name, (message, typ) in golden_messages().items():
        token = signing.sign(message.encode(), key, kid="s-golden", typ=typ)
        (HERE / f"{name}.jws").write_bytes(token)
    (HERE / "s-golden.jwk").write_text(__import__("json").dumps(signing.public_jwk(key)) + "\n")


if __name__ == "__main__":
    main()

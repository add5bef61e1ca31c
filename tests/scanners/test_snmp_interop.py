"""The product's SNMP encoder and parser against another implementation (scapy's SNMP
layers and BER codec), in both directions: agreeing with itself proves nothing."""

from __future__ import annotations

from typing import Any

import scapy.layers.snmp  # noqa: F401 - loads scapy's MIB for ASN1_OID
from scapy.asn1.asn1 import ASN1_IPADDRESS, ASN1_OID, ASN1_STRING, ASN1_Codecs
from scapy.layers.snmp import SNMP, ASN1_Class_SNMP, SNMPget, SNMPnext, SNMPresponse, SNMPvarbind

from central.lab.devices import _SnmpAgent
from scanners import snmp


def test_scapy_reads_the_product_s_requests() -> None:
    get = SNMP(snmp.get_request("public", snmp.SYSTEM_OIDS, 77))
    assert isinstance(get.PDU, SNMPget) and get.PDU.id.val == 77
    assert bytes(get.community.val) == b"public"
    assert [v.oid.val for v in get.PDU.varbindlist] == list(snmp.SYSTEM_OIDS)
    walk = SNMP(snmp.get_request("x", (snmp.IP_AD_ENT_ADDR,), 3, kind=snmp.GET_NEXT))
    assert isinstance(walk.PDU, SNMPnext)
    decoded: Any = ASN1_Codecs.BER.dec(snmp.discovery_request(42), context=ASN1_Class_SNMP)
    v3 = decoded[0]
    assert int(v3.val[0].val) == 3 and int(v3.val[1].val[0].val) == 42


def test_the_product_reads_what_scapy_builds() -> None:
    response = SNMP(community=b"public", PDU=SNMPresponse(id=5, varbindlist=[
        SNMPvarbind(oid=ASN1_OID(snmp.SYSDESCR), value=ASN1_STRING(b"HP LaserJet M402")),
        SNMPvarbind(oid=ASN1_OID(snmp.SYSOBJECTID), value=ASN1_OID("1.3.6.1.4.1.11.2.3.9.1")),
        SNMPvarbind(oid=ASN1_OID(f"{snmp.IP_AD_ENT_ADDR}.10.9.0.4"),
                    value=ASN1_IPADDRESS("10.9.0.4"))]))
    assert snmp.parse_response(bytes(response)) == {
        snmp.SYSDESCR: "HP LaserJet M402", snmp.SYSOBJECTID: "1.3.6.1.4.1.11.2.3.9.1",
        f"{snmp.IP_AD_ENT_ADDR}.10.9.0.4": "10.9.0.4"}


def test_the_lab_agent_answers_the_product_as_a_real_agent_would() -> None:
    agent = _SnmpAgent({"community": "private", "sysdescr": "Siemens, SIMATIC NET",
                        "sysname": "plc-3", "engine_id": "80001f8880e9630000d61ff449",
                        "addresses": "10.0.0.1,192.168.0.1"})
    answered = snmp.parse_response(agent.answer(snmp.get_request("private"), ("x", 1)) or b"")
    assert answered == {snmp.SYSDESCR: "Siemens, SIMATIC NET", snmp.SYSNAME: "plc-3"}
    assert agent.answer(snmp.get_request("public"), ("x", 1)) is None  # wrong community
    report = agent.answer(snmp.discovery_request(9), ("x", 1)) or b""
    assert snmp.parse_engine_id(report) == "80001f8880e9630000d61ff449"
    walk = agent.answer(snmp.get_request("private", (snmp.IP_AD_ENT_ADDR,), 3,
                                         kind=snmp.GET_NEXT), ("x", 1)) or b""
    assert snmp.parse_response(walk) == {f"{snmp.IP_AD_ENT_ADDR}.10.0.0.1": "10.0.0.1"}
    assert agent.answer(b"\x30\x03abc", ("x", 1)) is None

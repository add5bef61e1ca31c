"""The wire format: golden envelopes, strict decoding, bounds, topics."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent import signing, wire
from agent.wire import Asset, Findings, MalformedMessage, Service, UnsupportedVersion

GOLDEN = Path(__file__).parents[1] / "golden"


def _golden_module():  # the generator doubles as the source of the golden values
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_agent_produces_the_golden_envelope_byte_for_byte() -> None:
    golden = _golden_module()
    key = signing.private_key_from_seed(golden.SEED)
    token = signing.sign(golden.golden_findings_v1().encode(), key, kid="s-golden")
    assert token == (GOLDEN / "findings-v1.jws").read_bytes()


def test_golden_v1_still_decodes_and_verifies() -> None:
    token = (GOLDEN / "findings-v1.jws").read_bytes()
    key = signing.public_key_from_jwk((GOLDEN / "s-golden.jwk").read_text())
    findings = Findings.decode(signing.verify(token, key))
    assert findings.seq == 7
    assert findings.assets[0].services[1].banner == "RTSP/1.0 200 OK\r\nCSeq: 1\r\n"
    assert findings.assets[1].mac_random is True


KINDS: dict[str, type[wire.Message]] = {
    "findings": Findings, "reach": Findings, "ack": wire.Ack, "enroll": wire.EnrollRequest,
    "enroll-reply": wire.EnrollReply, "plan": wire.ProbePlan, "status": wire.Status,
    "command": wire.Command}
GOLDEN_NAMES = sorted(_golden_module().golden_messages())


def _kind(name: str) -> type[wire.Message]:
    return KINDS[name.rsplit("-v", 1)[0].removesuffix("-observed")]


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_every_kind_produces_its_golden_envelope_byte_for_byte(name: str) -> None:
    golden = _golden_module()
    message, typ = golden.golden_messages()[name]
    token = signing.sign(message.encode(), signing.private_key_from_seed(golden.SEED),
                         kid="s-golden", typ=typ)
    assert token == (GOLDEN / f"{name}.jws").read_bytes()


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_every_golden_envelope_verifies_decodes_and_round_trips(name: str) -> None:
    message, typ = _golden_module().golden_messages()[name]
    key = signing.public_key_from_jwk((GOLDEN / "s-golden.jwk").read_text())
    body = signing.verify((GOLDEN / f"{name}.jws").read_bytes(), key, typ=typ)
    decoded = _kind(name).decode(body)
    assert decoded == message
    assert decoded.encode() == body


def test_round_trip_is_identity() -> None:
    findings = _golden_module().golden_findings_v1()
    assert Findings.decode(findings.encode()) == findings


def test_canonical_encoding_sorts_keys_without_spaces() -> None:
    assert wire.canonical_json({"b": 1, "a": "æ"}) == '{"a":"æ","b":1}'.encode()


def _payload(**changes: object) -> bytes:
    data = _golden_module().golden_findings_v1().to_dict()
    data.update(changes)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"seq": 0}, "seq"),
        ({"seq": "1"}, "seq"),
        ({"seq": True}, "seq"),
        ({"sensor": "a/b"}, "sensor"),
        ({"org": "+"}, "org"),
        ({"msg_id": "x"}, "msg_id"),
        ({"sent_at": "yesterday"}, "sent_at"),
        ({"assets": [{"ip": "10.0.0.999"}]}, "ip"),
        ({"assets": [{"ip": "10.0.0.1", "mac": "zz"}]}, "mac"),
        ({"assets": [{"ip": "10.0.0.1", "services": [{"port": 70000}]}]}, "port"),
        ({"assets": [{"ip": "10.0.0.1", "services": [{"port": 1, "state": "x"}]}]}, "state"),
        ({"assets": [{"ip": "10.0.0.1", "hostname": "a" * 300}]}, "hostname"),
        ({"assets": [{"ip": "10.0.0.1", "hostname": "bell\x07"}]}, "hostname"),
        ({"assets": [{"ip": "10.0.0.1", "extra": 1}]}, "unknown field"),
        ({"surprise": 1}, "unknown field"),
        ({"assets": "many"}, "assets"),
        ({"part": 3, "parts": 2}, "part"),
    ],
)
def test_malformed_fields_are_named(changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(MalformedMessage, match=fragment):
        Findings.decode(_payload(**changes))


def test_not_json_and_constants_are_malformed() -> None:
    for payload in (b"\xff\xfe", b"{", b"[]", b'{"v": 1, "seq": NaN}', b"null"):
        with pytest.raises(MalformedMessage):
            Findings.decode(payload)


def test_unknown_schema_version_is_its_own_error() -> None:
    with pytest.raises(UnsupportedVersion):
        Findings.decode(_payload(v=2))


def test_oversized_payload_is_refused_before_parsing() -> None:
    with pytest.raises(MalformedMessage, match="bytes"):
        Findings.decode(b" " * (wire.MAX_MESSAGE_BYTES + 1))


def test_printable_escapes_control_bytes_and_bounds_length() -> None:
    assert wire.printable(b"SSH-2.0-x\r\n\x00\x1b[31m") == "SSH-2.0-x\r\n\\x00\\x1b[31m"
    assert wire.printable(b"\xff\xfb\x01") == "\\xff\\xfb\\x01"
    assert len(wire.printable(b"A" * 10_000)) == wire.MAX_BANNER_CHARS


def test_printable_output_is_always_accepted_by_the_schema() -> None:
    hostile = bytes(range(256)) * 40
    Service(port=1, banner=wire.printable(hostile))


def test_topics_and_filter_match() -> None:
    from aiomqtt import Topic

    topic = wire.findings_topic("aarhus", "s-admin")
    assert topic == "netvagt/v1/aarhus/s-admin/findings"
    assert Topic(topic).matches(wire.FINDINGS_FILTER)
    with pytest.raises(wire.WireError):
        wire.findings_topic("aarhus", "s/#")


def test_batches_stay_under_the_message_limit() -> None:
    banner = "x" * wire.MAX_BANNER_CHARS
    assets = [
        Asset(ip=f"10.0.{i // 250}.{i % 250 + 1}",
              services=tuple(Service(port=p, banner=banner) for p in range(1, 20)))
        for i in range(200)
    ]
    batches = list(wire.batches(assets))
    assert sum(len(b) for b in batches) == 200
    assert len(batches) > 1
    for batch in batches:
        findings = _golden_module().golden_findings_v1()
        data = findings.to_dict() | {"assets": [a.to_dict() for a in batch]}
        token_size = len(wire.canonical_json(data)) * 4 // 3 + 200
        assert token_size < wire.MAX_MESSAGE_BYTES


def test_acks_round_trip_and_cannot_pass_as_findings() -> None:
    central = signing.generate_private_key()
    ack = wire.Ack(sensor="s-one", org="aarhus", msg_ids=("0" * 32, "f" * 32),
                   acked_at=wire.utc_now())
    token = signing.sign(ack.encode(), central, kid=signing.CENTRAL_KID, typ=signing.TYPE_ACK)
    public = signing.public_key_from_jwk(signing.public_jwk(central))
    assert wire.Ack.decode(signing.verify(token, public, typ=signing.TYPE_ACK)) == ack
    with pytest.raises(signing.BadHeader, match="type"):
        signing.verify(token, public)  # the findings verifier refuses an ack
    assert wire.ack_topic("aarhus", "s-one") == "netvagt/v1/aarhus/s-one/ack"
    with pytest.raises(MalformedMessage):
        wire.Ack.decode(b'{"v":1,"type":"ack","sensor":"s","org":"o","msg_ids":[],'
                        b'"acked_at":"2026-01-01T00:00:00.000000Z"}')


def test_claimed_addresses_travel_under_one_key_on_both_sides() -> None:
    from agent import wire
    from scanners.observations import CLAIM_KEY

    assert wire.CLAIM_KEY == CLAIM_KEY
    assert wire.Observation(key=CLAIM_KEY, value="10.20.40.9", source="mdns").key == CLAIM_KEY


def test_a_probe_carries_its_answer_s_ttl_and_only_when_known() -> None:
    probe = wire.Probe(ip="10.20.40.7", proto="tcp", port=80, state="reachable", ttl=64)
    assert wire.Probe.from_dict(probe.to_dict()) == probe
    assert "ttl" not in wire.Probe(ip="10.20.40.7", proto="icmp", state="filtered").to_dict()
    with pytest.raises(MalformedMessage, match="ttl"):
        wire.Probe.from_dict(probe.to_dict() | {"ttl": 300})


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                               max_size=4),
    max_leaves=12)


def _strict(payload: bytes) -> object:
    try:
        return json.loads(payload.decode("utf-8"), parse_constant=wire._no_constants,
                          object_pairs_hook=wire._unique_keys)
    except Exception as exc:
        return type(exc)


@given(st.dictionaries(st.text(max_size=4), _JSON, max_size=5), st.booleans(), st.booleans())
@settings(max_examples=400, deadline=None)
def test_the_fast_json_reading_says_what_the_strict_one_says(
        value: dict[str, object], canonical: bool, duplicate: bool) -> None:
    """Canonical messages are read by msgspec, anything else by json with the duplicate-key
    hook; whichever reads it, a payload means the same, and a key twice is always refused."""
    payload = (wire.canonical_json(value) if canonical
               else json.dumps(value, ensure_ascii=True, indent=1).encode())
    if duplicate and value:
        key = json.dumps(next(iter(value)))
        payload = payload[:-1] + (b"," if len(payload) > 2 else b"") + key.encode() + b":1}"
    try:
        got: object = wire._decode_json("message", payload, 1 << 20)
    except MalformedMessage:
        got = MalformedMessage
    expected = _strict(payload)
    if expected is MalformedMessage or isinstance(expected, type):
        assert got is MalformedMessage
    else:
        assert got == expected


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_the_fast_and_the_field_by_field_reading_build_the_same_records(name: str) -> None:
    """A canonical message is read by msgspec; any other, field by field. Every kind of
    message means the same either way, and a message the fast reading cannot take (a key
    it does not know, deep inside) is refused, with its place named, by the other."""
    message, _typ = _golden_module().golden_messages()[name]
    kind = _kind(name)
    body = message.encode()
    fast = kind.decode(body)
    slow = wire.decode_record(kind, json.loads(body), kind.WHAT)
    assert fast == slow == message
    assert type(fast) is type(slow)
    respaced = json.dumps(json.loads(body), indent=1).encode()  # not canonical: the slow way
    assert kind.decode(respaced) == message


def test_a_key_the_wire_does_not_know_is_refused_at_any_depth() -> None:
    findings = json.loads(_golden_module().golden_messages()["findings-observed-v1"][0].encode())
    asset = findings["assets"][0]
    asset["services"] = [{"port": 80}]
    for place in (findings, asset, asset["services"][0], asset["observations"][0]):
        place["extra"] = 1
        with pytest.raises(MalformedMessage, match="unknown field"):
            Findings.decode(wire.canonical_json(findings))
        del place["extra"]
    assert Findings.decode(wire.canonical_json(findings))  # and without it, all is well


def test_a_read_message_leaves_nothing_for_the_cycle_collector() -> None:
    """The central holds a batch of messages at a time, each a few thousand records: the
    records are not tracked by Python's cycle collector (msgspec ``gc=False``), which would
    otherwise walk them all again and again. That is safe only while a record can hold
    nothing that can refer back to it: texts, numbers and tuples of such records."""
    import gc
    import types
    import typing

    import msgspec

    from fingerprints.observation import Observation

    findings = Findings.decode(_golden_module().golden_messages()["findings-observed-v1"][0]
                               .encode())
    asset = findings.assets[0]
    untracked = (findings, asset, asset.observations[0], *asset.services)
    assert not any(gc.is_tracked(record) for record in untracked)
    untracked_kinds: set[type[msgspec.Struct]] = {wire.Findings, wire.Asset, wire.Service,
                                                  wire.Probe, wire.PortVlan, wire.PortTrunking,
                                                  Observation}
    atoms = {str, int, float, bool, type(None)}

    def immutable(tp: object) -> bool:
        args = typing.get_args(tp)
        if typing.get_origin(tp) is typing.Annotated:
            return immutable(args[0])
        if typing.get_origin(tp) is typing.Literal:
            return all(type(a) in atoms for a in args)
        if typing.get_origin(tp) in (tuple, typing.Union, types.UnionType):
            return all(immutable(a) for a in args if a is not Ellipsis)
        return tp in atoms or tp in untracked_kinds

    for kind in untracked_kinds:
        for field in msgspec.structs.fields(kind):
            assert immutable(field.type), f"{kind.__name__}.{field.name}: {field.type}"


_PLAIN_ASSET: dict[str, Any] = {
    "ip": "10.20.30.40", "mac": "00:1b:1b:0a:0b:0c", "mac_vendor": "Siemens AG",
    "hostname": "pump-1", "mac_random": False, "rtt_ms": 0.5, "sources": ["arp", "tcp"],
    "services": [{"port": 80, "proto": "tcp", "state": "open", "source": "tcp", "name": "http",
                  "product": "Boa", "version": "0.94", "extrainfo": "x", "banner": "HTTP/1.0"}]}
_TEXTS = ["a" * wire.MAX_TEXT_CHARS, "æ" * wire.MAX_TEXT_CHARS, "a" * (wire.MAX_TEXT_CHARS + 1),
          "a\\b", 'a"b', "a\u0085b", "a\tb", "a\x7fb", "a\x00b", "", None, 5]
# one field changed: to a value at its bound, or one step out of it, or of the wrong kind
_CHANGES: list[tuple[str, str | None, object]] = [
    *(("asset", "ip", v) for v in ("fe80::1", "10.20.30.256", "10.020.30.4", "x" * 46, 7)),
    *(("asset", "mac", v) for v in (None, "00:1B:1b:0a:0b:0c", "00:1b:1b:0a:0b", 5)),
    *(("asset", f, v) for f in ("mac_vendor", "hostname") for v in _TEXTS),
    *(("asset", "mac_random", v) for v in (True, 1, None)),
    *(("asset", "rtt_ms", v) for v in (None, 0, 599_999.9, 600_000, -0.1, "1", True)),
    *(("asset", "sources", v) for v in ([], ["bogus"], ["arp"] * wire.MAX_SOURCES,
                                        ["arp"] * (wire.MAX_SOURCES + 1), "arp", [1])),
    *(("service", "port", v) for v in (0, 65535, 65536, -1, True, "80", 80.0)),
    *(("service", "proto", v) for v in ("udp", "sctp", "TCP", None)),
    *(("service", "state", v) for v in ("open|filtered", "up", None)),
    *(("service", "source", v) for v in (*sorted(wire.SOURCES), "bogus")),
    *(("service", f, v) for f in ("name", "product", "version", "extrainfo") for v in _TEXTS),
    *(("service", "banner", v) for v in ("a" * wire.MAX_BANNER_CHARS,
                                          "a" * (wire.MAX_BANNER_CHARS + 1), "a\x01b", 3)),
]


def _changed(changes: list[tuple[str, str | None, object]]) -> dict[str, Any]:
    asset = json.loads(json.dumps(_PLAIN_ASSET))
    for where, name, value in changes:
        (asset if where == "asset" else asset["services"][0])[name] = value
    return asset


_ASSET = st.lists(st.sampled_from(_CHANGES), max_size=2).map(_changed)


@given(st.lists(_ASSET, min_size=1, max_size=2))
@settings(max_examples=400, deadline=None)
def test_msgspec_s_bounds_and_the_records_own_checks_give_one_verdict(
        assets: list[dict[str, object]]) -> None:
    """A canonical message whose every string is plain text is checked by the bounds msgspec
    reads the fields with, not by the records' own checks: for any service and asset,
    valid or one step out of bounds, both say the same (the same record, or the same
    error)."""
    envelope = json.loads(_golden_module().golden_messages()["findings-v1"][0].encode())
    payload = wire.canonical_json(envelope | {"assets": assets})

    def verdict(read: Any) -> object:
        try:
            return read()
        except MalformedMessage as exc:
            return str(exc)

    fast = verdict(lambda: Findings.decode(payload))
    slow = verdict(lambda: wire.decode_record(Findings, json.loads(payload), Findings.WHAT))
    assert fast == slow


def test_every_part_of_a_scan_says_which_other_vlans_reached_the_port(tmp_path: Path) -> None:
    """The listener's count of other VLANs' frames goes to the central with the scan (it
    judges the port by the latest scan's), in each part: parts are stored one by one. A
    scan that heard none sends no such field, as before it existed."""
    from agent.outbox import Outbox

    key = signing.generate_private_key()
    assets = [Asset(ip=f"10.1.{n // 250}.{n % 250 + 1}", sources=("arp",)) for n in range(700)]
    heard = (wire.PortVlan(vlan=20, frames=14, senders=("00:04:f2:76:14:29",)),
             wire.PortVlan(vlan=40, frames=1))
    said = (wire.PortTrunking(sender="00:1b:2b:76:02:fe", mode="auto"),)
    with Outbox(tmp_path / "outbox.db") as outbox:
        for vlans, trunking in ((heard, said), ((), ())):
            outbox.enqueue_scan(sensor="s-one", org="o", key=key, started_at=wire.utc_now(),
                                finished_at=wire.utc_now(), networks=("10.1.0.0/22",),
                                assets=assets, port_vlans=vlans, port_trunking=trunking)
        payloads = [signing.verify(p.token, key) for p in outbox.pending()]
    parts = [Findings.decode(p) for p in payloads]
    assert len(parts) == 4 and {p.parts for p in parts} == {2}
    assert [p.port_vlans for p in parts] == [heard, heard, (), ()]
    assert [p.port_trunking for p in parts] == [said, said, (), ()]
    assert [b'"port_vlans"' in p for p in payloads] == [True, True, False, False]

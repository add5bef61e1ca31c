"""The wire format between sensors and the central, defined once.

Everything a sensor sends is a *findings* message: a JSON object, canonically encoded
(sorted keys, no insignificant white space, UTF-8) and signed as a JWS (see
``agent.signing``). This module is imported by the central too, so it must stay light: it
imports nothing from scapy, nmap or aiomqtt (a test guards that).

Values are frozen dataclasses that check themselves in ``__post_init__``; ``from_dict``
turns untrusted JSON into them and raises :class:`MalformedMessage` (or
:class:`UnsupportedVersion`) with a message that says which field is wrong.
"""

from __future__ import annotations

import functools
import json
import re
import socket
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

SCHEMA_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})

TOPIC_ROOT = "netvagt/v1"
FINDINGS_FILTER = f"{TOPIC_ROOT}/+/+/findings"  # what the central subscribes to

# Bounds: what a hostile device (or a hostile sender) can make either side hold.
MAX_MESSAGE_BYTES = 256 * 1024  # a whole signed message (JWS compact) as it travels; one
# limit for both sides: the agent's signer refuses to build more, the central's verifier
# (joserfc's registry, set from this) and its size check refuse more
MAX_SIGNATURE_OVERHEAD = 1024  # protected header (at most 512) + signature (86) + two dots
MAX_PAYLOAD_BYTES = (MAX_MESSAGE_BYTES - MAX_SIGNATURE_OVERHEAD) * 3 // 4  # JSON, before base64url
ENVELOPE_RESERVE = 8 * 1024  # a message's fields besides its assets or probes (64 networks...)
MAX_ASSETS_PER_MESSAGE = 512
MAX_SERVICES_PER_ASSET = 256
MAX_BANNER_CHARS = 4096  # a banner, after escaping non-printable bytes
MAX_TEXT_CHARS = 256  # product, version, hostname, vendor and other short texts
MAX_SOURCES = 8

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")  # topic-safe: no '/', '+', '#'
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_UUID_RE = re.compile(r"^[0-9a-f]{32}$")
_TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
_NAME_RE = re.compile(r"^[a-z0-9_.+-]{1,32}$")

SERVICE_STATES = frozenset({"open", "closed", "filtered", "open|filtered"})
PROTOCOLS = frozenset({"tcp", "udp"})
SOURCES = frozenset({"arp", "icmp", "tcp", "udp", "nmap", "banner", "passive"})


class WireError(ValueError):
    """A message that does not follow the wire format."""


class MalformedMessage(WireError):
    """Not valid JSON, a missing or wrong field, or a value out of bounds."""


class UnsupportedVersion(WireError):
    """A schema version this side does not speak."""


def is_valid_id(value: object) -> bool:
    """True for an organisation or sensor id that is safe inside a topic."""
    return isinstance(value, str) and _ID_RE.match(value) is not None


def is_supported_version(value: object) -> bool:
    """True for a schema version this side speaks (an integer, never a list or a bool)."""
    return type(value) is int and value in SUPPORTED_VERSIONS


def findings_topic(org: str, sensor: str) -> str:
    """The topic a sensor publishes its findings on: ``netvagt/v1/<org>/<sensor>/findings``."""
    for name, value in (("org", org), ("sensor", sensor)):
        if not is_valid_id(value):
            msg = f"{name} id {value!r} is not of the form [a-z0-9][a-z0-9_-]{{0,62}}"
            raise WireError(msg)
    return f"{TOPIC_ROOT}/{org}/{sensor}/findings"


def utc_now() -> str:
    """The current time as the wire writes it: ISO 8601, UTC, microseconds, 'Z'."""
    return format_ts(datetime.now(UTC))


def format_ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> bytes:
    """The one encoding of a JSON value that is signed and sent."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def printable(data: bytes | str, *, limit: int = MAX_BANNER_CHARS) -> str:
    """Make untrusted bytes safe to carry: printable text with the rest escaped, bounded.

    Tabs, carriage returns and line feeds stay (banners span lines); any other control
    or undecodable byte becomes ``\\xNN``. The result is cut to ``limit`` characters.
    """
    text = data.decode("utf-8", "backslashreplace") if isinstance(data, bytes) else data
    out: list[str] = []
    size = 0
    for ch in text:
        if ch.isprintable() or ch in "\t\r\n":
            piece = ch
        elif ord(ch) <= 0xFF:
            piece = f"\\x{ord(ch):02x}"
        else:
            piece = f"\\u{ord(ch):04x}"
        size += len(piece)
        if size > limit:
            break
        out.append(piece)
    return "".join(out)


# --------------------------------------------------------------------------- checks


def _fail(where: str, problem: str) -> MalformedMessage:
    return MalformedMessage(f"{where}: {problem}")


def _text(where: str, value: object, *, limit: int = MAX_TEXT_CHARS, optional: bool = True) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise _fail(where, f"expected a string, got {type(value).__name__}")
    if len(value) > limit:
        raise _fail(where, f"{len(value)} characters, at most {limit} allowed")
    if not value.isprintable() and any(
        not (ch.isprintable() or ch in "\t\r\n") for ch in value
    ):
        raise _fail(where, "control or unpaired surrogate characters must be escaped")


def _int(where: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, f"expected an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise _fail(where, f"{value} is outside {low}..{high}")


def parse_ts(value: str) -> datetime:
    """A wire timestamp as an aware datetime; ValueError for one that only looks like one
    (``2026-99-99T99:99:99Z``)."""
    if not _TS_RE.match(value):
        raise ValueError(f"{value[:40]!r} is not a UTC timestamp")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _ts(where: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    try:
        if not isinstance(value, str):
            raise ValueError
        parse_ts(value)
    except ValueError:
        raise _fail(where, "expected a UTC timestamp like 2026-01-31T23:59:59.000000Z") from None


def _ip(where: str, value: object) -> None:
    if not isinstance(value, str) or len(value) > 45:
        raise _fail(where, "expected an IP address")
    try:  # inet_pton: strict (no octal, no short forms) and fast
        socket.inet_pton(socket.AF_INET6 if ":" in value else socket.AF_INET, value)
    except OSError:
        raise _fail(where, f"{value!r} is not an IP address") from None


@functools.cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


def _only_keys(where: str, data: Mapping[str, Any], cls: type) -> None:
    unknown = data.keys() - _field_names(cls)
    if unknown:
        raise _fail(where, f"unknown field(s) {sorted(unknown)!r}")


_Flat = TypeVar("_Flat")


def _build(cls: type[_Flat], data: object, where: str) -> _Flat:
    """A flat record from untrusted JSON: only its own keys, and its own checks."""
    mapping = _mapping(where, data)
    _only_keys(where, mapping, cls)
    try:
        return cls(**mapping)
    except TypeError as exc:
        raise _fail(where, str(exc)) from None


def _mapping(where: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, f"expected an object, got {type(value).__name__}")
    return value


def _list(where: str, value: object, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(where, f"expected a list, got {type(value).__name__}")
    if len(value) > limit:
        raise _fail(where, f"{len(value)} entries, at most {limit} allowed")
    return value


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """One port of one address, as a sensor observed it."""

    port: int
    proto: str = "tcp"
    state: str = "open"
    name: str | None = None  # service name, e.g. "http", "rtsp"
    product: str | None = None
    version: str | None = None
    extrainfo: str | None = None
    banner: str | None = None  # what the service said first, escaped and bounded
    source: str = "tcp"  # which probe found it

    def __post_init__(self) -> None:
        where = f"service {self.proto}/{self.port}"
        _int(f"{where}.port", self.port, 0, 65535)
        if self.proto not in PROTOCOLS:
            raise _fail(f"{where}.proto", f"{self.proto!r} is not one of {sorted(PROTOCOLS)}")
        if self.state not in SERVICE_STATES:
            raise _fail(f"{where}.state", f"{self.state!r} is not a port state")
        if self.source not in SOURCES:
            raise _fail(f"{where}.source", f"{self.source!r} is not a known source")
        for name in ("name", "product", "version", "extrainfo"):
            _text(f"{where}.{name}", getattr(self, name))
        _text(f"{where}.banner", self.banner, limit=MAX_BANNER_CHARS)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_dict(cls, data: object, where: str = "service") -> Service:
        mapping = _mapping(where, data)
        _only_keys(where, mapping, cls)
        if "port" not in mapping:
            raise _fail(where, "missing field 'port'")
        try:
            return cls(**mapping)
        except TypeError as exc:
            raise _fail(where, str(exc)) from None


MAX_OBSERVATIONS = 64  # per asset and message
MAX_OBSERVED_CHARS = 1024  # one observed string (a title, a Server header, a banner line)
CLAIM_KEY = "claim.ipv4"  # an address the device claims (scanners.observations.CLAIM_KEY)
# What the sensor's own routes say of an address: the segment's default gateway (so the
# central knows each zone's router without the policy naming it)
ROLE_KEY = "net.role"
DEFAULT_GATEWAY = "default-gateway"
_KEY_RE = re.compile(r"^[a-z0-9]{1,16}\.[a-z0-9_]{1,32}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """One string a device said about itself, under its match key (``http.server``, ...)."""

    key: str
    value: str
    source: str = ""  # where it was seen, e.g. "80/tcp"

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not _KEY_RE.match(self.key):
            raise _fail("observation.key", "expected <protocol>.<field>")
        _text("observation.value", self.value, limit=MAX_OBSERVED_CHARS, optional=False)
        _text("observation.source", self.source, limit=64, optional=False)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "source": self.source}

    @classmethod
    def from_dict(cls, data: object, where: str = "observation") -> Observation:
        return _build(cls, data, where)


@dataclass(frozen=True, slots=True, kw_only=True)
class Asset:
    """One device as one sensor saw it in one scan: an address that answered, and what it said."""

    ip: str
    mac: str | None = None  # lower case, colon separated; only when seen on the sensor's link
    mac_vendor: str | None = None  # the IEEE registration of the MAC's OUI
    mac_random: bool = False  # locally administered (randomised) MAC: vendor unknown
    rtt_ms: float | None = None
    sources: tuple[str, ...] = ()
    hostname: str | None = None
    services: tuple[Service, ...] = field(default_factory=tuple)
    observations: tuple[Observation, ...] = ()  # what the device said about itself

    def __post_init__(self) -> None:
        where = f"asset {self.ip}"
        if len(self.observations) > MAX_OBSERVATIONS:
            raise _fail(f"{where}.observations", f"at most {MAX_OBSERVATIONS} allowed")
        _ip(f"{where}.ip", self.ip)
        if self.mac is not None and (not isinstance(self.mac, str) or not _MAC_RE.match(self.mac)):
            raise _fail(f"{where}.mac", "expected a lower-case MAC like 00:11:22:aa:bb:cc")
        _text(f"{where}.mac_vendor", self.mac_vendor)
        _text(f"{where}.hostname", self.hostname)
        if not isinstance(self.mac_random, bool):
            raise _fail(f"{where}.mac_random", "expected true or false")
        if self.rtt_ms is not None and (
            isinstance(self.rtt_ms, bool)
            or not isinstance(self.rtt_ms, int | float)
            or not 0 <= self.rtt_ms < 600_000
        ):
            raise _fail(f"{where}.rtt_ms", "expected milliseconds between 0 and 600000")
        if len(self.sources) > MAX_SOURCES or any(s not in SOURCES for s in self.sources):
            raise _fail(f"{where}.sources", f"expected up to {MAX_SOURCES} of {sorted(SOURCES)}")
        if len(self.services) > MAX_SERVICES_PER_ASSET:
            raise _fail(f"{where}.services", f"at most {MAX_SERVICES_PER_ASSET} allowed")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ip": self.ip, "mac_random": self.mac_random}
        for name in ("mac", "mac_vendor", "rtt_ms", "hostname"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out["sources"] = list(self.sources)
        out["services"] = [s.to_dict() for s in self.services]
        if self.observations:  # absent when empty: version 1 messages keep their bytes
            out["observations"] = [o.to_dict() for o in self.observations]
        return out

    @classmethod
    def from_dict(cls, data: object, where: str = "asset") -> Asset:
        mapping = dict(_mapping(where, data))
        _only_keys(where, mapping, cls)
        if "ip" not in mapping:
            raise _fail(where, "missing field 'ip'")
        services = _list(f"{where}.services", mapping.pop("services", []), MAX_SERVICES_PER_ASSET)
        sources = _list(f"{where}.sources", mapping.pop("sources", []), MAX_SOURCES)
        if not all(isinstance(s, str) for s in sources):
            raise _fail(f"{where}.sources", "expected strings")
        observed = _list(f"{where}.observations", mapping.pop("observations", []),
                         MAX_OBSERVATIONS)
        try:
            return cls(
                **mapping,
                sources=tuple(sources),
                observations=tuple(Observation.from_dict(o, f"{where}.observations[{i}]")
                                   for i, o in enumerate(observed)),
                services=tuple(
                    Service.from_dict(s, f"{where}.services[{i}]") for i, s in enumerate(services)
                ),
            )
        except TypeError as exc:
            raise _fail(where, str(exc)) from None


MAX_PROBES_PER_MESSAGE = 2048
PROBE_STATES = frozenset({"reachable", "refused", "filtered"})
PROBE_PROTOS = frozenset({"tcp", "udp", "icmp"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    """One reachability probe from the sensor's segment: did the packet get through?

    ``reachable``: a service answered; ``refused``: the target (or something on the path)
    said no (TCP RST, ICMP port unreachable); ``filtered``: nothing came back in time."""

    ip: str
    proto: str
    port: int = 0  # 0 for ICMP echo
    state: str
    rtt_ms: float | None = None

    def __post_init__(self) -> None:
        _ip("probe.ip", self.ip)
        if self.proto not in PROBE_PROTOS:
            raise _fail("probe.proto", f"expected one of {sorted(PROBE_PROTOS)}")
        _int("probe.port", self.port, 0, 65535)
        if self.state not in PROBE_STATES:
            raise _fail("probe.state", f"expected one of {sorted(PROBE_STATES)}")
        if self.rtt_ms is not None and not (type(self.rtt_ms) in (int, float)
                                            and 0 <= self.rtt_ms < 3_600_000):
            raise _fail("probe.rtt_ms", "expected milliseconds")

    def to_dict(self) -> dict[str, Any]:
        return {"ip": self.ip, "proto": self.proto, "port": self.port, "state": self.state,
                "rtt_ms": self.rtt_ms}

    @classmethod
    def from_dict(cls, data: object, where: str = "probe") -> Probe:
        return _build(cls, data, where)


@dataclass(frozen=True, slots=True, kw_only=True)
class Findings:
    """One signed message: a batch of assets from one scan of one sensor.

    ``seq`` increases by one with every message the sensor ever sends (it survives
    restarts); the central accepts a message only if its ``seq`` is above the last one it
    committed for that sensor, so a replay or a reordering is refused. ``part`` and
    ``parts`` say where this batch stands in its scan (a scan is split to stay under
    :data:`MAX_MESSAGE_BYTES`).
    """

    sensor: str
    org: str
    seq: int
    msg_id: str  # 32 hex digits, unique per message
    scan_id: str  # 32 hex digits, shared by the parts of one scan
    sent_at: str
    scan_started_at: str
    scan_finished_at: str
    part: int = 1
    parts: int = 1
    networks: tuple[str, ...] = ()  # what was scanned, as CIDRs or ranges
    assets: tuple[Asset, ...] = ()
    plan_id: str | None = None  # set when the message carries a probe plan's results
    probes: tuple[Probe, ...] = ()
    v: int = SCHEMA_VERSION
    type: str = "findings"

    def __post_init__(self) -> None:
        if not is_supported_version(self.v):
            raise UnsupportedVersion(f"schema version {self.v!r} is not supported")
        if self.type != "findings":
            raise _fail("type", f"{self.type!r} is not 'findings'")
        for name in ("sensor", "org"):
            if not is_valid_id(getattr(self, name)):
                raise _fail(name, "expected an id of the form [a-z0-9][a-z0-9_-]{0,62}")
        _int("seq", self.seq, 1, 2**63 - 1)
        for name in ("msg_id", "scan_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _UUID_RE.match(value):
                raise _fail(name, "expected 32 lower-case hex digits")
        for name in ("sent_at", "scan_started_at", "scan_finished_at"):
            _ts(name, getattr(self, name))
        if parse_ts(self.scan_finished_at) < parse_ts(self.scan_started_at):
            raise _fail("scan_finished_at", "the scan finished before it started")
        _int("parts", self.parts, 1, 100_000)
        _int("part", self.part, 1, self.parts)
        if len(self.networks) > 64:
            raise _fail("networks", "at most 64 allowed")
        for net in self.networks:
            _text("networks[]", net, limit=64, optional=False)
        if len(self.assets) > MAX_ASSETS_PER_MESSAGE:
            raise _fail("assets", f"at most {MAX_ASSETS_PER_MESSAGE} allowed")
        if len(self.probes) > MAX_PROBES_PER_MESSAGE:
            raise _fail("probes", f"at most {MAX_PROBES_PER_MESSAGE} allowed")
        if self.plan_id is not None and not (isinstance(self.plan_id, str)
                                             and _UUID_RE.match(self.plan_id)):
            raise _fail("plan_id", "expected 32 lower-case hex digits")
        if self.probes and self.plan_id is None:
            raise _fail("probes", "probe results need the plan_id they answer")

    def to_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.plan_id is not None:  # only reachability messages carry these
            extra = {"plan_id": self.plan_id, "probes": [p.to_dict() for p in self.probes]}
        return extra | {
            "v": self.v,
            "type": self.type,
            "sensor": self.sensor,
            "org": self.org,
            "seq": self.seq,
            "msg_id": self.msg_id,
            "scan_id": self.scan_id,
            "sent_at": self.sent_at,
            "scan_started_at": self.scan_started_at,
            "scan_finished_at": self.scan_finished_at,
            "part": self.part,
            "parts": self.parts,
            "networks": list(self.networks),
            "assets": [a.to_dict() for a in self.assets],
        }

    def encode(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: object) -> Findings:
        mapping = dict(_mapping("message", data))
        version = mapping.get("v")
        if not is_supported_version(version):
            raise UnsupportedVersion(f"schema version {version!r} is not supported")
        _only_keys("message", mapping, cls)
        for required in ("sensor", "org", "seq", "msg_id", "scan_id", "sent_at"):
            if required not in mapping:
                raise _fail("message", f"missing field {required!r}")
        assets = _list("assets", mapping.pop("assets", []), MAX_ASSETS_PER_MESSAGE)
        networks = _list("networks", mapping.pop("networks", []), 64)
        probes = _list("probes", mapping.pop("probes", []), MAX_PROBES_PER_MESSAGE)
        try:
            return cls(
                **mapping,
                networks=tuple(networks),
                probes=tuple(Probe.from_dict(p, f"probes[{i}]") for i, p in enumerate(probes)),
                assets=tuple(Asset.from_dict(a, f"assets[{i}]") for i, a in enumerate(assets)),
            )
        except TypeError as exc:
            raise _fail("message", str(exc)) from None

    @classmethod
    def decode(cls, payload: bytes) -> Findings:
        return cls.from_dict(_decode_json("message", payload, MAX_PAYLOAD_BYTES))


def _no_constants(name: str) -> Any:
    raise MalformedMessage(f"message: {name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are unique: with a duplicate, which one a reader takes is up
    to the reader (RFC 8259 4), so a signed message that has one means two things."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedMessage(f"duplicate key {key[:64]!r} in a JSON object")
        result[key] = value
    return result


def _decode_json(what: str, payload: bytes, limit: int = 65_536) -> dict[str, Any]:
    """An untrusted JSON object, bounded in size; every message kind decodes through here."""
    if len(payload) > limit:
        raise _fail(what, f"{len(payload)} bytes, at most {limit} allowed")
    try:
        data = json.loads(payload.decode("utf-8"), parse_constant=_no_constants,
                          object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _fail(what, f"not JSON: {exc}") from None
    return dict(_mapping(what, data))


_Item = TypeVar("_Item", "Asset", "Probe")

BATCH_BUDGET = MAX_PAYLOAD_BYTES - ENVELOPE_RESERVE  # bytes of assets (or probes) per message


def _by_size(items: Iterable[_Item], *, budget: int, most: int) -> Iterator[list[_Item]]:
    batch: list[_Item] = []
    size = 0
    for item in items:
        cost = len(canonical_json(item.to_dict())) + 1
        if batch and (size + cost > budget or len(batch) >= most):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += cost
    if batch:
        yield batch


def batches(assets: Iterable[Asset], *, budget: int = BATCH_BUDGET) -> Iterator[list[Asset]]:
    """Split assets into batches whose signed message stays under :data:`MAX_MESSAGE_BYTES`.

    An asset too large for a message of its own is cut down by :func:`fit` first, so every
    message the agent builds is one the central accepts."""
    yield from _by_size((fit(a, budget) for a in assets), budget=budget,
                        most=MAX_ASSETS_PER_MESSAGE)


def probe_batches(probes: Iterable[Probe], *, budget: int = BATCH_BUDGET) -> Iterator[list[Probe]]:
    """Probe results in batches under the message limit (IPv6 addresses make them longer)."""
    yield from _by_size(probes, budget=budget, most=MAX_PROBES_PER_MESSAGE)


def fit(asset: Asset, budget: int = BATCH_BUDGET) -> Asset:
    """The asset, cut down until its encoding fits ``budget`` bytes: first the services'
    banners (the bulk a hostile device controls), then observations, then services from
    the end. An asset that fits is returned as it is."""
    def size(candidate: Asset) -> int:
        return len(canonical_json(candidate.to_dict()))

    if size(asset) <= budget:
        return asset
    asset = replace(asset, services=tuple(replace(s, banner=None, extrainfo=None)
                                          for s in asset.services))
    while size(asset) > budget and asset.observations:
        asset = replace(asset, observations=asset.observations[: len(asset.observations) // 2])
    while size(asset) > budget and asset.services:
        asset = replace(asset, services=asset.services[: len(asset.services) // 2])
    return asset


# --------------------------------------------------------------------------- acknowledgements

ACK_TYPE = "ack"
MAX_ACKED_PER_MESSAGE = 1000


def ack_topic(org: str, sensor: str) -> str:
    """Where the central acknowledges what it committed: ``netvagt/v1/<org>/<sensor>/ack``."""
    return findings_topic(org, sensor).rsplit("/", 1)[0] + "/ack"


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    """The central's signed word that these messages of one sensor are committed.

    A sensor deletes a message from its outbox only on this; a message the central already
    holds is acknowledged again, so a redelivery changes nothing and still empties the outbox.
    """

    sensor: str
    org: str
    msg_ids: tuple[str, ...]
    acked_at: str
    v: int = SCHEMA_VERSION
    type: str = ACK_TYPE

    def __post_init__(self) -> None:
        if not is_supported_version(self.v):
            raise UnsupportedVersion(f"schema version {self.v!r} is not supported")
        if self.type != ACK_TYPE:
            raise _fail("type", f"{self.type!r} is not {ACK_TYPE!r}")
        for name in ("sensor", "org"):
            if not is_valid_id(getattr(self, name)):
                raise _fail(name, "expected an id of the form [a-z0-9][a-z0-9_-]{0,62}")
        if not 0 < len(self.msg_ids) <= MAX_ACKED_PER_MESSAGE:
            raise _fail("msg_ids", f"expected 1 to {MAX_ACKED_PER_MESSAGE} message ids")
        for msg_id in self.msg_ids:
            if not isinstance(msg_id, str) or not _UUID_RE.match(msg_id):
                raise _fail("msg_ids[]", "expected 32 lower-case hex digits")
        _ts("acked_at", self.acked_at)

    def encode(self) -> bytes:
        return canonical_json({"v": self.v, "type": self.type, "sensor": self.sensor,
                               "org": self.org, "msg_ids": list(self.msg_ids),
                               "acked_at": self.acked_at})

    @classmethod
    def decode(cls, payload: bytes) -> Ack:
        mapping = _decode_json("ack", payload, MAX_MESSAGE_BYTES)
        _only_keys("ack", mapping, cls)
        ids = _list("msg_ids", mapping.pop("msg_ids", []), MAX_ACKED_PER_MESSAGE)
        try:
            return cls(**mapping, msg_ids=tuple(ids))
        except TypeError as exc:
            raise _fail("ack", str(exc)) from None


# --------------------------------------------------------------------------- enrollment

ENROLL_TYPE = "enroll"
ENROLL_REPLY_TYPE = "enroll-reply"
_TOKEN_RE = re.compile(r"^([0-9a-f]{12})\.([A-Za-z0-9_-]{20,64})$")
_TOKEN_ID_RE = re.compile(r"^[0-9a-f]{12}$")


def split_token(token: str) -> tuple[str, str]:
    """``<token id>.<secret>`` into its parts; raises WireError for anything else."""
    match = _TOKEN_RE.match(token.strip())
    if match is None:
        raise WireError("not an enrollment token (expected 12 hex digits, a dot, and a secret)")
    return match.group(1), match.group(2)


# Broker identities are the central's to choose, never a sensor's: an enrollment token's
# short-lived login and every sensor's login are these prefixes plus hex the central drew,
# of fixed length (so no one is a prefix of another), and the login is bound to the same
# client id. The central's own client id has a '.', which no sensor id or login can hold.
ENROLL_LOGIN_PREFIX = "nve-"
SENSOR_LOGIN_PREFIX = "nvs-"
CENTRAL_CLIENT_ID = "netvagt.central"
_LOGIN_RE = re.compile(r"^nv[es]-[0-9a-f]{12}$")
# Sensor names nobody may ask for: they read as broker identities or administration.
RESERVED_NAME_PREFIXES = ("nve-", "nvs-", "netvagt", "enroll", "admin", "mosquitto", "dynsec")


def enroll_login(token_id: str) -> str:
    """The broker login (and client id) that may send one token's enrollment request."""
    if not _TOKEN_ID_RE.match(token_id):
        raise WireError("a token id is 12 hex digits")
    return ENROLL_LOGIN_PREFIX + token_id


def is_broker_login(value: str) -> bool:
    """True for a login the central draws (and so may create, bind and delete)."""
    return _LOGIN_RE.match(value) is not None


def is_reserved_name(name: str) -> bool:
    return name.startswith(RESERVED_NAME_PREFIXES)


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrollRequest:
    """A new sensor asks to join; signed with the key it just made (proof of possession)."""

    token: str
    public_jwk: dict[str, str]
    name: str | None = None  # a wished-for sensor id; the central may refuse or change it
    hostname: str | None = None
    v: int = SCHEMA_VERSION
    type: str = ENROLL_TYPE

    def __post_init__(self) -> None:
        if not is_supported_version(self.v) or self.type != ENROLL_TYPE:
            raise UnsupportedVersion("not an enrollment request this side speaks")
        split_token(self.token)
        if not isinstance(self.public_jwk, dict) or set(self.public_jwk) != {"kty", "crv", "x"}:
            raise _fail("public_jwk", "expected an Ed25519 public JWK (kty, crv, x)")
        if self.name is not None and not is_valid_id(self.name):
            raise _fail("name", "expected an id of the form [a-z0-9][a-z0-9_-]{0,62}")
        _text("hostname", self.hostname)

    def encode(self) -> bytes:
        return canonical_json({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def decode(cls, payload: bytes) -> EnrollRequest:
        mapping = _decode_json("enroll", payload, 16_384)
        _only_keys("enroll", mapping, cls)
        try:
            return cls(**mapping)
        except TypeError as exc:
            raise _fail("enroll", str(exc)) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrollReply:
    """The central's answer, signed with its key: the sensor's identity and broker login."""

    ok: bool
    error: str | None = None
    sensor: str | None = None
    org: str | None = None
    site: str | None = None
    zone: str | None = None
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    central_jwk: dict[str, str] | None = None
    v: int = SCHEMA_VERSION
    type: str = ENROLL_REPLY_TYPE

    def encode(self) -> bytes:
        return canonical_json({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def decode(cls, payload: bytes) -> EnrollReply:
        mapping = _decode_json("enroll-reply", payload)
        _only_keys("enroll-reply", mapping, cls)
        try:
            reply = cls(**mapping)
        except TypeError as exc:
            raise _fail("enroll-reply", str(exc)) from None
        if reply.type != ENROLL_REPLY_TYPE or not is_supported_version(reply.v):
            raise UnsupportedVersion("not an enrollment reply this side speaks")
        if reply.ok:
            for name in ("sensor", "org", "mqtt_username"):
                if not is_valid_id(getattr(reply, name)):
                    raise _fail(f"enroll-reply.{name}", "expected an id")
            for name in ("site", "zone", "mqtt_password"):
                _text(f"enroll-reply.{name}", getattr(reply, name))
        return reply


# --------------------------------------------------------------------------- status, commands

STATUS_TYPE = "status"
COMMAND_TYPE = "command"
COMMANDS = frozenset({"scan"})


def _central_envelope(message: Any, kind: str, what: str) -> None:
    """What every instruction from the central carries: version, type, id, addressee."""
    if not is_supported_version(message.v) or message.type != kind:
        raise UnsupportedVersion(f"not a {what} this side speaks")
    if not isinstance(message.id, str) or not _UUID_RE.match(message.id):
        raise _fail("id", "expected 32 lower-case hex digits")
    if not (is_valid_id(message.sensor) and is_valid_id(message.org)):
        raise _fail(what, "bad sensor or org id")
    _ts("issued_at", message.issued_at)
    _ts("expires_at", message.expires_at)
PLAN_TYPE = "probe_plan"
MAX_PLAN_TARGETS = 4096
MAX_PLAN_PORTS = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanTarget:
    ip: str
    zone: str
    tcp: tuple[int, ...] = ()
    udp: tuple[int, ...] = ()
    icmp: bool = True

    def __post_init__(self) -> None:
        _ip("target.ip", self.ip)
        if not _NAME_RE.match(str(self.zone)):
            raise _fail("target.zone", "not a zone name")
        for name in ("tcp", "udp"):
            ports = getattr(self, name)
            if len(ports) > MAX_PLAN_PORTS:
                raise _fail(f"target.{name}", f"at most {MAX_PLAN_PORTS} ports")
            for port in ports:
                _int(f"target.{name}[]", port, 1, 65535)
        if not isinstance(self.icmp, bool):
            raise _fail("target.icmp", "expected true or false")

    def to_dict(self) -> dict[str, Any]:
        return {"ip": self.ip, "zone": self.zone, "tcp": list(self.tcp), "udp": list(self.udp),
                "icmp": self.icmp}


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbePlan:
    """What one sensor must probe to test its zone's boundaries, signed by the central."""

    id: str
    sensor: str
    org: str
    zone: str
    issued_at: str
    expires_at: str
    targets: tuple[PlanTarget, ...]
    global_pps: float = 5000.0
    host_pps: float = 100.0
    timeout_s: float = 2.0
    v: int = SCHEMA_VERSION
    type: str = PLAN_TYPE

    def __post_init__(self) -> None:
        _central_envelope(self, PLAN_TYPE, "plan")
        if not _NAME_RE.match(str(self.zone)):
            raise _fail("zone", "not a zone name")
        if len(self.targets) > MAX_PLAN_TARGETS:
            raise _fail("targets", f"at most {MAX_PLAN_TARGETS} allowed")
        for name, low, high in (("global_pps", 1, 10_000), ("host_pps", 1, 1000),
                                ("timeout_s", 0.1, 30)):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not low <= value <= high:
                raise _fail(name, f"expected {low} to {high}")

    def encode(self) -> bytes:
        return canonical_json({f.name: getattr(self, f.name) for f in fields(self)}
                              | {"targets": [t.to_dict() for t in self.targets]})

    @classmethod
    def decode(cls, payload: bytes) -> ProbePlan:
        mapping = _decode_json("plan", payload, MAX_MESSAGE_BYTES)
        _only_keys("plan", mapping, cls)
        raw = _list("targets", mapping.pop("targets", []), MAX_PLAN_TARGETS)
        targets = []
        for index, item in enumerate(raw):
            target = dict(_mapping(f"targets[{index}]", item))
            _only_keys(f"targets[{index}]", target, PlanTarget)
            for name in ("tcp", "udp"):
                target[name] = tuple(_list(f"targets[{index}].{name}", target.get(name, []),
                                           MAX_PLAN_PORTS))
            try:
                targets.append(PlanTarget(**target))
            except TypeError as exc:
                raise _fail(f"targets[{index}]", str(exc)) from None
        try:
            return cls(**mapping, targets=tuple(targets))
        except TypeError as exc:
            raise _fail("plan", str(exc)) from None
SENSOR_STATES = frozenset({"online", "offline", "scanning", "paused"})


def status_topic(org: str, sensor: str) -> str:
    return findings_topic(org, sensor).rsplit("/", 1)[0] + "/status"


def commands_topic(org: str, sensor: str) -> str:
    return findings_topic(org, sensor).rsplit("/", 1)[0] + "/commands"


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """A sensor's retained status (and, as its MQTT last will, its 'offline')."""

    sensor: str
    org: str
    state: str
    at: str
    version: str = ""
    last_scan_at: str | None = None
    last_scan_assets: int | None = None
    next_scan_at: str | None = None
    outbox_depth: int = 0
    errors: tuple[str, ...] = ()
    v: int = SCHEMA_VERSION
    type: str = STATUS_TYPE

    def __post_init__(self) -> None:
        if not is_supported_version(self.v) or self.type != STATUS_TYPE:
            raise UnsupportedVersion("not a status this side speaks")
        if not (is_valid_id(self.sensor) and is_valid_id(self.org)):
            raise _fail("status", "bad sensor or org id")
        if self.state not in SENSOR_STATES:
            raise _fail("state", f"{self.state!r} is not one of {sorted(SENSOR_STATES)}")
        _ts("at", self.at)
        _ts("last_scan_at", self.last_scan_at, optional=True)
        _ts("next_scan_at", self.next_scan_at, optional=True)
        _text("version", self.version)
        if len(self.errors) > 16:
            raise _fail("errors", "at most 16")
        for error in self.errors:
            _text("errors[]", error, optional=False)

    def encode(self) -> bytes:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["errors"] = list(self.errors)
        return canonical_json(data)

    @classmethod
    def decode(cls, payload: bytes) -> Status:
        mapping = _decode_json("status", payload)
        _only_keys("status", mapping, cls)
        errors = _list("errors", mapping.pop("errors", []), 16)
        try:
            return cls(**mapping, errors=tuple(errors))
        except TypeError as exc:
            raise _fail("status", str(exc)) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """An instruction from the central, signed with its key; used once, before it expires."""

    id: str  # 32 hex digits; a sensor acts on each id once
    sensor: str
    org: str
    command: str
    issued_at: str
    expires_at: str
    profile: str | None = None
    v: int = SCHEMA_VERSION
    type: str = COMMAND_TYPE

    def __post_init__(self) -> None:
        _central_envelope(self, COMMAND_TYPE, "command")
        if self.command not in COMMANDS:
            raise _fail("command", f"{self.command!r} is not one of {sorted(COMMANDS)}")
        if self.profile is not None and not _NAME_RE.match(str(self.profile)):
            raise _fail("profile", "not a profile name")

    def encode(self) -> bytes:
        return canonical_json({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def decode(cls, payload: bytes) -> Command:
        mapping = _decode_json("command", payload)
        _only_keys("command", mapping, cls)
        try:
            return cls(**mapping)
        except TypeError as exc:
            raise _fail("command", str(exc)) from None

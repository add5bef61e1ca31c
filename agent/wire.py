"""The wire format between sensors and the central, defined once.

Everything a sensor sends is a *findings* message: a JSON object, canonically encoded
(sorted keys, no insignificant white space, UTF-8) and signed as a JWS (see
``agent.signing``). This module is imported by the central too, so it must stay light: it
imports nothing from scapy, nmap or aiomqtt (a test guards that).

Values are frozen msgspec Structs that check themselves in ``__post_init__``. One codec
(:func:`to_json`, :func:`from_json`) carries every record and message kind: it turns
untrusted JSON into them and raises :class:`MalformedMessage` (or
:class:`UnsupportedVersion`) with a message that says which field is wrong. A message in
canonical form is read by msgspec straight into its records (:meth:`Message.decode`); the
codec reads the rest, and says what is wrong. When such a message's strings are all plain
text, a service's and an asset's bounds are checked by msgspec as it reads them (the same
bounds, written as the fields' types), not again by the records themselves. Each message
kind has a golden envelope under ``tests/golden``.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Self, TypeAlias, TypeVar

import msgspec

from fingerprints.observation import CLAIM_KEY as CLAIM_KEY  # the wire carries these keys
from fingerprints.observation import CONFLICT_KEY as CONFLICT_KEY
from fingerprints.observation import DEFAULT_GATEWAY as DEFAULT_GATEWAY
from fingerprints.observation import LINK_KEY as LINK_KEY
from fingerprints.observation import REDUNDANCY_KEY as REDUNDANCY_KEY
from fingerprints.observation import ROLE_KEY as ROLE_KEY
from fingerprints.observation import Observation

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

_SERVICE_STATES = ("open", "closed", "filtered", "open|filtered")
_PROTOCOLS = ("tcp", "udp")
_SOURCES = ("arp", "icmp", "tcp", "udp", "nmap", "banner", "passive")
SERVICE_STATES = frozenset(_SERVICE_STATES)
PROTOCOLS = frozenset(_PROTOCOLS)
SOURCES = frozenset(_SOURCES)

# The bounds of a service's and an asset's fields again, as msgspec checks them while it
# reads a canonical message (in C, with no __post_init__ called for each record; see
# Message.decode). Python code that builds a record sees plain types, and __post_init__
# checks the same bounds; a test holds the two to one verdict.
_Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS)]
_Banner = Annotated[str, msgspec.Meta(max_length=MAX_BANNER_CHARS)]
_Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
_Mac = Annotated[str, msgspec.Meta(pattern=_MAC_RE.pattern)]
_Rtt = Annotated[float, msgspec.Meta(ge=0, lt=600_000)]
if TYPE_CHECKING:  # Python code that builds records passes plain strings
    _Proto: TypeAlias = str
    _State: TypeAlias = str
    _Source: TypeAlias = str
else:
    _Proto = Literal[_PROTOCOLS]
    _State = Literal[_SERVICE_STATES]
    _Source = Literal[_SOURCES]


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


class _Reading(threading.local):
    """Set while msgspec reads a canonical message whose every string is known printable
    (:meth:`Message.decode`): its bounds were checked as it read the fields, so a service's
    and an asset's own checks need not run again. Per thread: a record built elsewhere
    meanwhile is checked as always."""

    checked = False


_READING = _Reading()


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


def _plain(value: object, limit: int = MAX_TEXT_CHARS) -> bool:
    """The common case, checked fast: absent, or a short text of printable characters only
    (anything else goes through the checks that say what is wrong)."""
    return value is None or (type(value) is str and len(value) <= limit and value.isprintable())


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


def _is_ip(value: object) -> bool:
    if type(value) is not str or len(value) > 45:
        return False
    try:  # inet_pton: strict (no octal, no short forms) and fast
        socket.inet_pton(socket.AF_INET6 if ":" in value else socket.AF_INET, value)
    except OSError:
        return False
    return True


def _ip(where: str, value: object) -> None:
    if _is_ip(value):
        return
    if not isinstance(value, str) or len(value) > 45:
        raise _fail(where, "expected an IP address")
    raise _fail(where, f"{value!r} is not an IP address")


def _mapping(where: str, value: object) -> Mapping[str, Any]:
    if type(value) is not dict and not isinstance(value, Mapping):
        raise _fail(where, f"expected an object, got {type(value).__name__}")
    return value


def _list(where: str, value: object, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(where, f"expected a list, got {type(value).__name__}")
    if len(value) > limit:
        raise _fail(where, f"{len(value)} entries, at most {limit} allowed")
    return value


# --------------------------------------------------------------------------- the codec
#
# One encoder and one decoder for every record and message kind. A record says, in class
# variables, what the codec cannot read off its fields: how many items each tuple field may
# hold (LIMITS), which fields are left out of the JSON when None (OMIT_NONE) or empty
# (OMIT_EMPTY); a message kind adds its name in errors (WHAT) and its size bound
# (MAX_BYTES). The checks of values stay in each record's __post_init__.


@dataclass(frozen=True, slots=True)
class _Spec:
    names: tuple[str, ...]
    name_set: frozenset[str]
    required: tuple[str, ...]
    records: dict[str, type]  # tuple field -> its record type (absent: a tuple of scalars)
    scalars: dict[str, type]  # tuple field -> its scalar type
    limits: dict[str, int]
    omit_none: frozenset[str]
    omit_empty: frozenset[str]


_SPECS: dict[type, _Spec] = {}


def _spec(cls: type) -> _Spec:
    known = _SPECS.get(cls)
    if known is None:
        known = _SPECS[cls] = _make_spec(cls)
    return known


def _is_record(value: object) -> bool:
    """A record or a record type: a msgspec Struct (every wire record, and Observation)."""
    return isinstance(value, msgspec.Struct) or (
        isinstance(value, type) and issubclass(value, msgspec.Struct))


def _bare(kind: Any) -> Any:
    """A field's type without the bounds msgspec checks (``Annotated[T, Meta(...)]`` is T)."""
    import typing

    return typing.get_args(kind)[0] if typing.get_origin(kind) is typing.Annotated else kind


def _make_spec(cls: type) -> _Spec:
    import typing

    records: dict[str, type] = {}
    scalars: dict[str, type] = {}
    known = msgspec.structs.fields(cls)  # types resolved, defaults as msgspec sees them
    for f in known:
        kind = _bare(f.type)
        if typing.get_origin(kind) is tuple:
            item = _bare(typing.get_args(kind)[0])
            if typing.get_origin(item) is typing.Literal:  # one of some strings: a str
                item = type(typing.get_args(item)[0])
            (records if _is_record(item) else scalars)[f.name] = item
    limits = dict(getattr(cls, "LIMITS", {}))
    missing = (records.keys() | scalars.keys()) - limits.keys()
    assert not missing, f"{cls.__name__}: no LIMITS for {sorted(missing)}"
    return _Spec(
        names=tuple(f.name for f in known),
        name_set=frozenset(f.name for f in known),
        required=tuple(f.name for f in known if f.required),
        records=records, scalars=scalars, limits=limits,
        omit_none=frozenset(getattr(cls, "OMIT_NONE", ())),
        omit_empty=frozenset(getattr(cls, "OMIT_EMPTY", ())),
    )


def _json_value(value: Any) -> Any:
    if _is_record(value):
        return to_json(value)
    if isinstance(value, tuple):
        return [_json_value(item) for item in value]
    return value


def to_json(record: Any) -> dict[str, Any]:
    """A record as the JSON object the wire carries."""
    spec = _spec(type(record))
    out: dict[str, Any] = {}
    for name in spec.names:
        value = getattr(record, name)
        if (value is None and name in spec.omit_none) or (value == () and name in spec.omit_empty):
            continue
        out[name] = _json_value(value)
    return out


_Record = TypeVar("_Record")


class _Retry(Exception):
    """The fast reading met something wrong: read again, slowly, to say where."""


def _fast(cls: type[_Record], data: object) -> _Record:
    """The common case, read fast: a well-formed record builds with no error text made.
    Anything the codec would refuse raises _Retry; a record's own check raises as usual
    (its message does not depend on where the record sits)."""
    spec = _spec(cls)
    if type(data) is not dict or not spec.name_set.issuperset(data):
        raise _Retry
    for name in spec.required:
        if name not in data:
            raise _Retry
    mapping = dict(data) if spec.records or spec.scalars else data
    for name, item_type in spec.records.items():
        items = mapping.get(name)
        if items is not None:
            if type(items) is not list or len(items) > spec.limits[name]:
                raise _Retry
            mapping[name] = tuple([_fast(item_type, item) for item in items])
    for name, scalar in spec.scalars.items():
        items = mapping.get(name)
        if items is not None:
            if type(items) is not list or len(items) > spec.limits[name] or not all(
                    type(item) is scalar for item in items):
                raise _Retry
            mapping[name] = tuple(items)
    try:
        return cls(**mapping)
    except TypeError:
        raise _Retry from None


def decode_record(cls: type[_Record], data: object, where: str, prefix: str = "") -> _Record:
    """A record from untrusted JSON: fast when it is well formed, else read by
    :func:`from_json`, whose error says which field is wrong."""
    try:
        return _fast(cls, data)
    except _Retry:
        return from_json(cls, data, where, prefix)


def from_json(cls: type[_Record], data: object, where: str, prefix: str = "") -> _Record:
    """A record from untrusted JSON: only its own keys, every required one, bounded tuples
    of the right items; then its own checks. ``where`` names it in errors; ``prefix`` goes
    before its fields' names (empty for a whole message, whose fields are named bare)."""
    spec = _spec(cls)
    mapping = dict(_mapping(where, data))
    unknown = mapping.keys() - set(spec.names)
    if unknown:
        raise _fail(where, f"unknown field(s) {sorted(unknown)!r}")
    for name in spec.required:
        if name not in mapping:
            raise _fail(where, f"missing field {name!r}")
    for name, item_type in spec.records.items():
        if name in mapping:
            items = _list(f"{prefix}{name}", mapping[name], spec.limits[name])
            mapping[name] = tuple(from_json(item_type, item, f"{prefix}{name}[{i}]",
                                            f"{prefix}{name}[{i}].")
                                  for i, item in enumerate(items))
    for name, scalar in spec.scalars.items():
        if name in mapping:
            items = _list(f"{prefix}{name}", mapping[name], spec.limits[name])
            if not all(type(item) is scalar for item in items):
                raise _fail(f"{prefix}{name}", f"expected {scalar.__name__}s")
            mapping[name] = tuple(items)
    try:
        return cls(**mapping)
    except TypeError as exc:
        raise _fail(where, str(exc)) from None


class Record:
    """A record the wire carries: to and from its JSON object."""

    __slots__ = ()
    WHAT: ClassVar[str] = "record"

    def to_dict(self) -> dict[str, Any]:
        return to_json(self)

    @classmethod
    def from_dict(cls, data: object, where: str | None = None) -> Self:
        where = where or cls.WHAT
        return decode_record(cls, data, where, f"{where}.")


class Message(Record):
    """What every message kind shares: one canonical encoding, one bounded decoding that
    refuses a version this side does not speak before anything else."""

    __slots__ = ()
    WHAT: ClassVar[str]
    MAX_BYTES: ClassVar[int] = 65_536

    def encode(self) -> bytes:
        return canonical_json(to_json(self))

    @classmethod
    def from_dict(cls, data: object, where: str | None = None) -> Self:
        return decode_record(cls, data, where or cls.WHAT)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        """A message from untrusted bytes: a canonical message, as a sensor or the central
        writes it, is read by msgspec straight into its records (their own checks run as
        they are built); anything else, or anything msgspec refuses, is read field by field,
        which says exactly what is wrong."""
        _check_size(cls.WHAT, payload, cls.MAX_BYTES)
        data = _canonical_object(payload)  # None: not canonical, a key may be there twice
        if data is not None and is_supported_version(data.get("v")):
            _READING.checked = _all_text_printable(payload)
            try:  # unknown keys, missing ones, wrong types: msgspec refuses them all
                return _typed_decoder(cls).decode(payload)
            except msgspec.ValidationError:
                pass  # read again below, to raise the error this module raises
            finally:
                _READING.checked = False
        mapping = data if data is not None else _strict_object(cls.WHAT, payload)
        if not is_supported_version(mapping.get("v")):
            raise UnsupportedVersion(f"schema version {mapping.get('v')!r} is not supported")
        return decode_record(cls, mapping, cls.WHAT)


_DECODERS: dict[type, msgspec.json.Decoder[Any]] = {}


def _typed_decoder(cls: type[_Record]) -> msgspec.json.Decoder[_Record]:
    decoder = _DECODERS.get(cls)
    if decoder is None:
        decoder = _DECODERS[cls] = msgspec.json.Decoder(cls)
    return decoder


def _all_text_printable(payload: bytes) -> bool:
    """True if every string in this JSON (valid, UTF-8) is printable text: no escape but
    an escaped quote or backslash, and no character that is not printable. In JSON each
    backslash starts a two-character escape, so removing the escaped backslashes first,
    left to right, leaves a backslash exactly where another escape began."""
    if b"\\" in payload:
        payload = payload.replace(b"\\\\", b"").replace(b'\\"', b"")
        if b"\\" in payload:
            return False
    if payload.isascii():  # the common case, checked without decoding
        return not payload.translate(None, _PRINTABLE_ASCII)
    return payload.decode("utf-8").isprintable()


_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))


def _canonical_object(payload: bytes) -> dict[str, Any] | None:
    """The JSON object, if the payload is exactly its canonical encoding (then no key is
    there twice: a canonical encoding has each key once); else None."""
    try:
        data = msgspec.json.decode(payload)
    except Exception:  # not JSON msgspec reads: the strict reading says why
        return None
    if type(data) is dict and msgspec.json.encode(data, order="sorted") == payload:
        return data
    return None


# --------------------------------------------------------------------------- values


class Service(msgspec.Struct, Record, frozen=True, kw_only=True, forbid_unknown_fields=True,
              gc=False):
    """One port of one address, as a sensor observed it."""

    WHAT = "service"
    OMIT_NONE = ("name", "product", "version", "extrainfo", "banner")

    port: _Port
    proto: _Proto = "tcp"
    state: _State = "open"
    name: _Text | None = None  # service name, e.g. "http", "rtsp"
    product: _Text | None = None
    version: _Text | None = None
    extrainfo: _Text | None = None
    banner: _Banner | None = None  # what the service said first, escaped and bounded
    source: _Source = "tcp"  # which probe found it

    def __post_init__(self) -> None:
        if _READING.checked:  # msgspec checked every field as it read it
            return
        port = self.port
        if not (type(port) is int and 0 <= port <= 65535 and self.proto in PROTOCOLS
                and self.state in SERVICE_STATES and self.source in SOURCES
                and _plain(self.name) and _plain(self.product) and _plain(self.version)
                and _plain(self.extrainfo) and _plain(self.banner, MAX_BANNER_CHARS)):
            self._explain()

    def _explain(self) -> None:
        """Each check in turn, raising the one that fails (the slow path)."""
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

MAX_OBSERVATIONS = 64  # per asset and message
MAX_OBSERVED_CHARS = 1024  # one observed string (a title, a Server header, a banner line)
_KEY_RE = re.compile(r"^[a-z0-9]{1,16}\.[a-z0-9_]{1,32}$")


class Asset(msgspec.Struct, Record, frozen=True, kw_only=True, forbid_unknown_fields=True,
            gc=False):
    """One device as one sensor saw it in one scan: an address that answered, and what it said."""

    WHAT = "asset"
    LIMITS: ClassVar[dict[str, int]] = {"sources": MAX_SOURCES,
                                        "services": MAX_SERVICES_PER_ASSET,
                                        "observations": MAX_OBSERVATIONS}
    OMIT_NONE = ("mac", "mac_vendor", "rtt_ms", "hostname")
    OMIT_EMPTY = ("observations",)  # absent when empty: version 1 messages keep their bytes

    ip: str
    mac: _Mac | None = None  # lower case, colon separated; only when seen on the sensor's link
    mac_vendor: _Text | None = None  # the IEEE registration of the MAC's OUI
    mac_random: bool = False  # locally administered (randomised) MAC: vendor unknown
    rtt_ms: _Rtt | None = None
    sources: Annotated[tuple[_Source, ...], msgspec.Meta(max_length=MAX_SOURCES)] = ()
    hostname: _Text | None = None
    services: Annotated[tuple[Service, ...], msgspec.Meta(max_length=MAX_SERVICES_PER_ASSET)] = ()
    # what the device said about itself
    observations: Annotated[tuple[Observation, ...], msgspec.Meta(max_length=MAX_OBSERVATIONS)] = ()

    def __post_init__(self) -> None:
        mac, rtt = self.mac, self.rtt_ms
        # while msgspec reads a canonical message it has checked these as it read them
        if not _READING.checked and not (
                (mac is None or (type(mac) is str and _MAC_RE.match(mac)))
                and type(self.mac_random) is bool and _plain(self.mac_vendor)
                and _plain(self.hostname)
                and (rtt is None or (type(rtt) in (int, float) and 0 <= rtt < 600_000))
                and len(self.sources) <= MAX_SOURCES and SOURCES.issuperset(self.sources)
                and len(self.services) <= MAX_SERVICES_PER_ASSET
                and len(self.observations) <= MAX_OBSERVATIONS):
            self._explain()
        if not _is_ip(self.ip):
            _ip(f"asset {self.ip}.ip", self.ip)
        for item in self.observations:
            if not (type(item) is Observation and type(item.key) is str and _KEY_RE.match(item.key)
                    and _plain(item.value, MAX_OBSERVED_CHARS) and _plain(item.source, 64)):
                self._explain_observation(item)

    def _explain_observation(self, item: object) -> None:
        where = f"asset {self.ip}"
        if not isinstance(item, Observation) or not isinstance(item.key, str) \
                or not _KEY_RE.match(item.key):
            raise _fail(f"{where}.observations[].key", "expected <protocol>.<field>")
        _text(f"{where}.observations[].value", item.value, limit=MAX_OBSERVED_CHARS,
              optional=False)
        _text(f"{where}.observations[].source", item.source, limit=64, optional=False)

    def _explain(self) -> None:
        """Each check in turn, raising the one that fails (the slow path)."""
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

MAX_PROBES_PER_MESSAGE = 2048
MAX_PORT_VLANS = 64  # the listener counts at most this many other VLANs
MAX_VLAN_SENDERS = 4  # and names this many MACs that sent in each
PROBE_STATES = frozenset({"reachable", "refused", "filtered"})
PROBE_PROTOS = frozenset({"tcp", "udp", "icmp"})


class Probe(msgspec.Struct, Record, frozen=True, kw_only=True, forbid_unknown_fields=True,
            gc=False):
    """One reachability probe from the sensor's segment: did the packet get through?

    ``reachable``: a service answered; ``refused``: the target (or something on the path)
    said no (TCP RST, ICMP port unreachable); ``filtered``: nothing came back in time."""

    WHAT = "probe"
    OMIT_NONE = ("ttl",)  # absent when unknown: version 1 messages keep their bytes

    ip: str
    proto: str
    port: int = 0  # 0 for ICMP echo
    state: str
    rtt_ms: float | None = None
    ttl: int | None = None  # the answer's IP TTL, where the probe could read it

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
        if self.ttl is not None:
            _int("probe.ttl", self.ttl, 0, 255)


class PortVlan(msgspec.Struct, Record, frozen=True, kw_only=True, forbid_unknown_fields=True,
               gc=False):
    """Another VLAN whose tagged frames reached the sensor's port during a scan (a voice
    VLAN, a trunk): how many frames, and the first MACs that sent them (a phone, a switch,
    or one device tagging frames itself)."""

    WHAT = "port_vlan"
    LIMITS: ClassVar[dict[str, int]] = {"senders": MAX_VLAN_SENDERS}

    vlan: Annotated[int, msgspec.Meta(ge=1, le=4094)]
    frames: Annotated[int, msgspec.Meta(ge=1, le=2**31)]
    senders: Annotated[tuple[_Mac, ...], msgspec.Meta(max_length=MAX_VLAN_SENDERS)] = ()

    def __post_init__(self) -> None:
        _int("port_vlan.vlan", self.vlan, 1, 4094)
        _int("port_vlan.frames", self.frames, 1, 2**31)
        if len(self.senders) > MAX_VLAN_SENDERS or not all(
                isinstance(m, str) and _MAC_RE.match(m) for m in self.senders):
            raise _fail("port_vlan.senders", f"expected up to {MAX_VLAN_SENDERS} MACs")


TRUNK_MODES = frozenset({"on", "off", "desirable", "auto", "unknown"})


class PortTrunking(msgspec.Struct, Record, frozen=True, kw_only=True, forbid_unknown_fields=True,
                   gc=False):
    """What the sensor's switch port said of trunking (Cisco's DTP) during a scan: its mode
    (``auto`` and ``desirable`` negotiate, ``on`` is a trunk), whether it is a trunk now,
    and the MAC that said it."""

    WHAT = "port_trunking"

    sender: _Mac
    mode: str
    trunk: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.sender, str) or not _MAC_RE.match(self.sender):
            raise _fail("port_trunking.sender", "expected a MAC")
        if self.mode not in TRUNK_MODES:
            raise _fail("port_trunking.mode", f"expected one of {sorted(TRUNK_MODES)}")
        if type(self.trunk) is not bool:
            raise _fail("port_trunking.trunk", "expected true or false")


class Findings(msgspec.Struct, Message, frozen=True, kw_only=True, forbid_unknown_fields=True,
               gc=False):
    """One signed message: a batch of assets from one scan of one sensor.

    ``seq`` increases by one with every message the sensor ever sends (it survives
    restarts); the central accepts a message only if its ``seq`` is above the last one it
    committed for that sensor, so a replay or a reordering is refused. ``part`` and
    ``parts`` say where this batch stands in its scan (a scan is split to stay under
    :data:`MAX_MESSAGE_BYTES`).
    """

    WHAT = "message"
    MAX_BYTES = MAX_PAYLOAD_BYTES
    LIMITS: ClassVar[dict[str, int]] = {"networks": 64, "assets": MAX_ASSETS_PER_MESSAGE,
                                        "probes": MAX_PROBES_PER_MESSAGE,
                                        "port_vlans": MAX_PORT_VLANS,
                                        "port_trunking": MAX_VLAN_SENDERS}
    OMIT_NONE = ("plan_id",)  # only reachability messages carry these
    OMIT_EMPTY = ("probes", "port_vlans", "port_trunking")

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
    # the other VLANs whose tagged frames reached the sensor's port during the scan (a voice
    # VLAN, a trunk): sent with every part of a scan (as port_trunking), absent when none
    port_vlans: tuple[PortVlan, ...] = ()
    # the switch port offering to become a trunk, or being one (DTP), by who said it
    port_trunking: tuple[PortTrunking, ...] = ()
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
        self._check_times_and_parts()
        self._check_contents()

    def _check_times_and_parts(self) -> None:
        for name in ("sent_at", "scan_started_at", "scan_finished_at"):
            _ts(name, getattr(self, name))
        if parse_ts(self.scan_finished_at) < parse_ts(self.scan_started_at):
            raise _fail("scan_finished_at", "the scan finished before it started")
        _int("parts", self.parts, 1, 100_000)
        _int("part", self.part, 1, self.parts)

    def _check_contents(self) -> None:
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
        if len(self.port_vlans) > MAX_PORT_VLANS:
            raise _fail("port_vlans", f"at most {MAX_PORT_VLANS} allowed")
        if len(self.port_trunking) > MAX_VLAN_SENDERS:
            raise _fail("port_trunking", f"at most {MAX_VLAN_SENDERS} allowed")


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


def _check_size(what: str, payload: bytes, limit: int) -> None:
    if len(payload) > limit:
        raise _fail(what, f"{len(payload)} bytes, at most {limit} allowed")


def _decode_json(what: str, payload: bytes, limit: int = 65_536) -> dict[str, Any]:
    """An untrusted JSON object, bounded in size; every message kind decodes through here."""
    _check_size(what, payload, limit)
    # the common case: a message exactly as :func:`canonical_json` wrote it; anything else
    # (another spelling, or not JSON) takes the strict reading, as it always was
    canonical = _canonical_object(payload)
    return canonical if canonical is not None else _strict_object(what, payload)


def _strict_object(what: str, payload: bytes) -> dict[str, Any]:
    """JSON read with every key checked for a second occurrence and no NaN or Infinity."""
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
    asset = msgspec.structs.replace(asset, services=tuple(
        msgspec.structs.replace(s, banner=None, extrainfo=None) for s in asset.services))
    while size(asset) > budget and asset.observations:
        asset = msgspec.structs.replace(
            asset, observations=asset.observations[: len(asset.observations) // 2])
    while size(asset) > budget and asset.services:
        asset = msgspec.structs.replace(
            asset, services=asset.services[: len(asset.services) // 2])
    return asset


# --------------------------------------------------------------------------- acknowledgements

ACK_TYPE = "ack"
MAX_ACKED_PER_MESSAGE = 1000


def ack_topic(org: str, sensor: str) -> str:
    """Where the central acknowledges what it committed: ``netvagt/v1/<org>/<sensor>/ack``."""
    return findings_topic(org, sensor).rsplit("/", 1)[0] + "/ack"


class Ack(msgspec.Struct, Message, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The central's signed word that these messages of one sensor are committed.

    A sensor deletes a message from its outbox only on this; a message the central already
    holds is acknowledged again, so a redelivery changes nothing and still empties the outbox.
    """

    WHAT = "ack"
    MAX_BYTES = MAX_MESSAGE_BYTES
    LIMITS: ClassVar[dict[str, int]] = {"msg_ids": MAX_ACKED_PER_MESSAGE}

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


class EnrollRequest(msgspec.Struct, Message, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A new sensor asks to join; signed with the key it just made (proof of possession)."""

    WHAT = "enroll"
    MAX_BYTES = 16_384

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

class EnrollReply(msgspec.Struct, Message, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The central's answer, signed with its key: the sensor's identity and broker login."""

    WHAT = "enroll-reply"

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

    def __post_init__(self) -> None:
        if self.type != ENROLL_REPLY_TYPE or not is_supported_version(self.v):
            raise UnsupportedVersion("not an enrollment reply this side speaks")
        if not isinstance(self.ok, bool):
            raise _fail("enroll-reply.ok", "expected true or false")
        _text("enroll-reply.error", self.error, limit=1024)
        if self.ok:
            for name in ("sensor", "org", "mqtt_username"):
                if not is_valid_id(getattr(self, name)):
                    raise _fail(f"enroll-reply.{name}", "expected an id")
            for name in ("site", "zone", "mqtt_password"):
                _text(f"enroll-reply.{name}", getattr(self, name))


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


class PlanTarget(msgspec.Struct, Record, frozen=True, kw_only=True, forbid_unknown_fields=True):
    WHAT = "target"
    LIMITS: ClassVar[dict[str, int]] = {"tcp": MAX_PLAN_PORTS, "udp": MAX_PLAN_PORTS}

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

class ProbePlan(msgspec.Struct, Message, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What one sensor must probe to test its zone's boundaries, signed by the central."""

    WHAT = "plan"
    MAX_BYTES = MAX_MESSAGE_BYTES
    LIMITS: ClassVar[dict[str, int]] = {"targets": MAX_PLAN_TARGETS}

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

SENSOR_STATES = frozenset({"online", "offline", "scanning", "paused"})


def status_topic(org: str, sensor: str) -> str:
    return findings_topic(org, sensor).rsplit("/", 1)[0] + "/status"


def commands_topic(org: str, sensor: str) -> str:
    return findings_topic(org, sensor).rsplit("/", 1)[0] + "/commands"


class Status(msgspec.Struct, Message, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A sensor's retained status (and, as its MQTT last will, its 'offline')."""

    WHAT = "status"
    LIMITS: ClassVar[dict[str, int]] = {"errors": 16, "databases": 8}
    OMIT_EMPTY = ("databases",)  # absent when none: older statuses keep their bytes

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
    databases: tuple[str, ...] = ()  # the fingerprint databases in use: "recog 3.1.28", ...
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
        for database in self.databases:
            _text("databases[]", database, limit=80, optional=False)

class Command(msgspec.Struct, Message, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An instruction from the central, signed with its key; used once, before it expires."""

    WHAT = "command"

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

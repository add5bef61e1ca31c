"""nmap's service database (``nmap-service-probes``), read at run time from the installed
nmap package and applied to the answers the targeted probes already collected.

Each answer is matched only against the match lines of the nmap probe that asks the same
question (our ``GET /`` is nmap's ``GetRequest``, a banner read unasked is its ``NULL``
probe, ...) and of the probes it declares as fallbacks: trying every probe's lines would
only add wrong answers (generic lines such as ``^.{111}`` match anything). A probe's lines
are compiled when the probe is first asked about, all at once, through the regex cache
(:mod:`fingerprints.regex_cache`): some ten thousand lines that take seconds to compile are
at hand in a tenth of one at the next start.

A match becomes an observation ``nmap.match`` of the form
``service=http; product=Hikvision IP camera httpd; devicetype=webcam; cpe=cpe:/h:...``,
which the classifier turns into identity fields through ``nmap_devices.toml``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from fingerprints import regex_cache
from fingerprints.rules import name_list, name_map

log = logging.getLogger("netvagt.fingerprints.nmap")

DEFAULT_PATHS = (Path("/usr/share/nmap/nmap-service-probes"),
                 Path("/usr/local/share/nmap/nmap-service-probes"))
MAX_RESPONSE_CHARS = 16_384  # nmap itself reads a few KB; hostile pages stop here
KEY = "nmap.match"
CONFIDENCE = 0.6  # nmap's line for a device is specific; its line for a server is generic
# our probes -> the nmap probe asking the same question
PROBES = {"banner": "NULL", "http": "GetRequest", "rtsp": "RTSPRequest", "sip": "SIPOptions",
          "netbios": "NBTStat"}
_VERSION_FIELD = re.compile(r"(p|v|i|h|o|d)([/|=%@#!])(.*?)\2|(cpe):([/|])(.*?)\5a?")
_MATCH_RE = re.compile(r"^(match|softmatch) (\S+) m(.)(.*?)\3([si]*)(?: (.*))?$")


@dataclass(slots=True)
class Match:
    service: str
    pattern: str
    flags: str
    version: str  # the rest of the line: p/.../ v/.../ ...
    soft: bool
    compiled: re.Pattern[str] | None = None
    broken: bool = False

    def regex(self) -> re.Pattern[str] | None:
        if self.compiled is None and not self.broken:
            options = (re.I if "i" in self.flags else 0) | (re.S if "s" in self.flags else 0)
            try:
                self.compiled = regex_cache.regex(self.pattern, options)
            except (re.error, OverflowError, RecursionError):
                self.broken = True  # PCRE that Python's re does not speak: skipped
        return self.compiled


@dataclass(slots=True)
class Probe:
    name: str
    protocol: str
    matches: list[Match] = field(default_factory=list)
    fallbacks: tuple[str, ...] = ()


def parse(text: str) -> dict[str, Probe]:
    """The probes of an nmap-service-probes file, with their match lines in order."""
    probes: dict[str, Probe] = {}
    current: Probe | None = None
    for line in text.splitlines():
        if line.startswith("Probe "):
            parts = line.split(" ", 3)
            current = Probe(name=parts[2], protocol=parts[1])
            probes[f"{parts[1]}:{parts[2]}"] = current
        elif current is None:
            continue
        elif line.startswith("fallback "):
            current.fallbacks = tuple(line[9:].replace(",", " ").split())
        elif line.startswith(("match ", "softmatch ")):
            found = _MATCH_RE.match(line)
            if found:
                current.matches.append(Match(service=found.group(2), pattern=found.group(4),
                                             flags=found.group(5), version=found.group(6) or "",
                                             soft=found.group(1) == "softmatch"))
    return probes


@cache
def database() -> dict[str, Probe]:
    """The installed nmap's probes; {} (with a warning) where nmap is not installed."""
    for path in DEFAULT_PATHS:
        if path.exists():
            try:
                return parse(path.read_text(encoding="latin-1"))
            except OSError as exc:
                log.warning("%s: %s", path, exc)
    log.warning("nmap-service-probes not found: nmap's service database not used")
    return {}


def release() -> str | None:
    """The nmap release the database comes with (for doctor), or None."""
    for path in DEFAULT_PATHS:
        if path.exists():
            for line in path.read_text(encoding="latin-1").splitlines()[:40]:
                found = re.search(r"\$Id: nmap-service-probes (\d+)", line)
                if found:
                    return f"r{found.group(1)}"
            return "installed"
    return None


def _lines(probe_name: str, protocol: str) -> Iterator[Match]:
    probes = database()
    seen: set[str] = set()
    order = [probe_name]
    probe = probes.get(f"{protocol}:{probe_name}")
    if probe is not None:
        order += [f for f in probe.fallbacks if f != probe_name]
    for name in order:
        found = probes.get(f"{protocol}:{name}")
        if found is None or name in seen:
            continue
        seen.add(name)
        yield from found.matches


@cache
def ready(probe_name: str, protocol: str = "TCP") -> int:
    """Compile the lines of one probe and its fallbacks (kept for the next start); how many
    Python's ``re`` can use."""
    with regex_cache.session("nmap", prune=False):
        return sum(line.regex() is not None for line in _lines(probe_name, protocol))


def _expand(template: str, groups: tuple[str | None, ...]) -> str:
    """nmap's ``$1``, ``$P(1)`` (printable) and ``$SUBST(1,"_",".")`` in a version field."""
    def group(n: str) -> str:
        index = int(n)
        return (groups[index - 1] or "") if 0 < index <= len(groups) else ""

    text = re.sub(r'\$SUBST\((\d+),"([^"]*)","([^"]*)"\)',
                  lambda m: group(m.group(1)).replace(m.group(2), m.group(3)), template)
    text = re.sub(r"\$P\((\d+)\)",
                  lambda m: "".join(c for c in group(m.group(1)) if c.isprintable()), text)
    text = re.sub(r"\$I\(\d+,\"[<>]\"\)", "", text)
    return re.sub(r"\$(\d)", lambda m: group(m.group(1)), text).strip()


def identify(response: bytes, asked: str, *, protocol: str = "TCP") -> str | None:
    """What nmap's database says of one answer to one of our probes (``asked`` is a key of
    :data:`PROBES`), as an ``nmap.match`` observation value; None when no hard match."""
    probe = PROBES.get(asked)
    if probe is None or not response:
        return None
    text = response[:MAX_RESPONSE_CHARS].decode("latin-1")
    ready(probe, protocol)
    for line in _lines(probe, protocol):
        if line.soft:
            continue  # a soft match names the protocol only, which the port already says
        regex = line.regex()
        if regex is None:
            continue
        try:
            found = regex.search(text)
        except RecursionError:
            continue
        if found is None:
            continue
        return as_value({"service": line.service, **line_fields(line.version, found.groups())})
    return None


_FIELD_NAMES = {"p": "product", "v": "version", "i": "info", "h": "hostname", "o": "os",
                "d": "devicetype", "cpe": "cpe"}


def line_fields(version: str, groups: tuple[str | None, ...]) -> dict[str, str]:
    """A match line's version fields (``p/.../ d/.../ cpe:/...``) by name, its templates
    filled from the match's groups (with none, a ``$1`` names nothing), each at most 200
    characters: what :func:`identify` says of an answer, and the accuracy report of a line."""
    fields: dict[str, str] = {}
    for item in _VERSION_FIELD.finditer(version):
        name = item.group(1) or item.group(4)
        value = (_expand(item.group(3), groups) if item.group(1)
                 else "cpe:/" + _expand(item.group(6), groups))
        if value:
            fields[_FIELD_NAMES[name]] = value[:200]
    return fields


def as_value(fields: dict[str, str]) -> str:
    """An ``nmap.match`` observation's value from what nmap said of one service (service,
    product, version, info, hostname, os, devicetype, cpe): what :func:`identify` makes of
    a match line, and what the agent makes of ``nmap -sV``'s answer. The service, type,
    operating system and CPE come first: the free text after them (a device's own words,
    through nmap's ``$1``) may be long, and the wire bounds an observation's length."""
    first = [k for k in ("service", "devicetype", "os", "cpe") if k in fields]
    ordered = first + [k for k in fields if k not in first]
    return "; ".join(f"{k}={fields[k].replace(';', ',')}" for k in ordered if fields[k])


def device_map() -> dict[str, str]:
    """nmap's device types (``d/.../``) -> netvagt's."""
    return name_map("nmap_devices.toml", "devices")


def _parts(value: str) -> dict[str, str]:
    """An ``nmap.match`` observation's fields by name (what :func:`as_value` wrote)."""
    return dict(p.split("=", 1) for p in value.split("; ") if "=" in p)


def described(value: str) -> tuple[str, ...]:
    """What nmap's line calls the device, where it gave no type: its product, then its extra
    information ('Hikvision IP camera httpd'; 'HP ProCurve Switch', then 'JetDirect'), for
    the model catalogue and the device words to read in that order."""
    parts = _parts(value)
    return tuple(text for name in ("product", "info") if (text := parts.get(name, "")))


def broad_type(value: str) -> bool:
    """Whether the type nmap gave is one of its buckets for many kinds (``[broad]`` in
    ``nmap_devices.toml``), which the line's own words may name more exactly."""
    return _parts(value).get("devicetype", "") in name_list("nmap_devices.toml", "broad")


def identity_fields(value: str) -> dict[str, str]:
    """An ``nmap.match`` observation as identity fields: the device type from ``d/``, the
    maker from a hardware CPE (``cpe:/h:vendor:...``), product and version as nmap names
    them (the classifier sets those aside when they are only the server software)."""
    parts = _parts(value)
    out: dict[str, str] = {}
    device_type = device_map().get(parts.get("devicetype", ""))
    if device_type and device_type != "unknown":
        out["device_type"] = device_type
    cpe = parts.get("cpe", "")
    if cpe.startswith("cpe:/h:") and cpe.count(":") >= 3:
        out["vendor"] = cpe.split(":")[2].replace("_", " ").title()
    if cpe:
        out["cpe"] = cpe
    if parts.get("product"):
        out["product"] = parts["product"]
    if parts.get("version"):
        out["version"] = parts["version"]
    if parts.get("os"):
        out["os"] = parts["os"]
    return out

"""Rapid7 recog's fingerprint XML as rules of the same classifier.

recog (BSD-2-Clause) keeps about 4,700 fingerprints in one XML file per kind of string
(``html_title.xml``, ``ssh_banners.xml``, ...): a regex with flags, the parameters it sets
(from a capture position, or a fixed value that may hold templates such as
``{service.version}``), and examples with the parameters they must yield. This module reads
those files into :class:`RecogRule` objects that the classifier asks like its own rules,
maps recog's parameters onto netvagt's identity fields (``hw.device`` onto the device-type
vocabulary through ``recog_devices.toml``), and checks every example the way recog does.

recog's regexes are Ruby's. The translation (:func:`python_regex`) handles what the files
use: ``^``/``$`` match at every line in Ruby (so ``re.M`` always), ``REG_DOT_NEWLINE`` and
``REG_MULTILINE`` let ``.`` match a newline (``re.S``), ``\\z``, ``\\Z``, ``\\h`` and POSIX
bracket classes. What Python cannot express is reported by name, never guessed.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fingerprints import regex_cache
from fingerprints.field_forms import AUTH_SCHEME
from fingerprints.rules import MAX_VALUE_CHARS, name_map

# recog file (its ``matches`` attribute) -> the match key whose observations it reads
RECOG_KEYS = {
    "html_title": "http.title",
    "http_servers": "http.server",
    "http_wwwauth": "http.www_authenticate",
    "snmp_sysdescr": "snmp.sysdescr",
    "snmp_sysobjid": "snmp.sysobjectid",
    "ftp_banners": "ftp.banner",
    "telnet_banners": "telnet.banner",
    "ssh_banners": "ssh.banner",
    "dhcp_vendor_class": "dhcp.vendor_class",
    "mdns_device-info_txt": "mdns.txt",
    "sip_banners": "sip.server",
    "sip_user_agents": "sip.user_agent",
    "rtsp_servers": "rtsp.server",
    "x509_subjects": "tls.subject",
    "hp_pjl_id": "pjl.id",
    "http_xpoweredby": "http.x_powered_by",
    "http_cookies": "http.cookie",
    "x509_issuers": "tls.issuer",
    "favicons": "http.favicon_md5",
}
# A recog match counts for less than a netvagt rule of the same key: those were written for
# the devices municipalities run and checked in the lab; recog's are broader.
RECOG_WEIGHT = 0.85
MAX_FILE_BYTES = 8 * 1024 * 1024  # recog's largest file is under 1 MB

_POSIX = {"alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z",
          "lower": "a-z", "space": r"\s", "xdigit": "0-9a-fA-F", "punct": r"!-/:-@\[-`{-~",
          "print": r" -~", "word": r"\w", "blank": r" \t", "cntrl": r"\x00-\x1f"}
_TEMPLATE = re.compile(r"\{([a-z0-9_.]+)\}")
_FTP_CODE = re.compile(r"^\d{3}(?:[ -]|$)", re.M)  # '220 ', '220-' at the start of each line


class RecogError(ValueError):
    """A recog file that cannot be read at all."""


def python_regex(pattern: str, flags: str) -> re.Pattern[str]:
    """recog's Ruby regex as Python's; raises re.error for what Python cannot express."""
    translated = pattern
    translated = re.sub(r"\(\?<([A-Za-z_]\w*)>", r"(?P<\1>", translated)
    translated = re.sub(r"\[:(\w+):\]", lambda m: _POSIX.get(m.group(1), m.group(0)), translated)
    translated = translated.replace(r"\h", "[0-9a-fA-F]")
    # \z is Ruby's end of string (Python's \Z); Ruby's \Z also allows one final newline
    translated = re.sub(r"(?<!\\)((?:\\\\)*)\\Z", r"\1(?=\\n?\\Z)", translated)
    translated = re.sub(r"(?<!\\)((?:\\\\)*)\\z", r"\1\\Z", translated)
    translated = _scope_inline_flags(translated)
    options = re.M
    names = {f.strip() for f in flags.split(",") if f.strip()}
    if "REG_ICASE" in names:
        options |= re.I
    if names & {"REG_DOT_NEWLINE", "REG_MULTILINE"}:
        options |= re.S
    return regex_cache.regex(translated, options)


def _scope_inline_flags(pattern: str) -> str:
    """Ruby lets ``(?i)`` stand anywhere and act from there on; Python wants global flags
    first. At the top level, ``X(?i)Y`` is ``X(?i:Y)`` in both."""
    depth, escaped, in_class = 0, False, False
    for at, ch in enumerate(pattern):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            flag = re.match(r"\(\?([imx]+)\)", pattern[at:])
            if flag and depth == 0 and at > 0:
                return (pattern[:at] + f"(?{flag.group(1)}:"
                        + _scope_inline_flags(pattern[at + len(flag.group(0)):]) + ")")
            depth += 1
        elif ch == ")":
            depth -= 1
    return pattern


@dataclass(frozen=True, slots=True, kw_only=True)
class Param:
    name: str
    position: int  # 0: a fixed value (maybe a template); n: the regex's n-th group
    value: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Example:
    text: str
    expected: dict[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecogRule:
    """One recog fingerprint, asked like a netvagt rule: ``match(value)`` gives identity
    fields (or None); ``params(value)`` gives recog's own parameters."""

    name: str  # recog's description, the rule's name in evidence
    key: str
    regex: re.Pattern[str]
    params_spec: tuple[Param, ...]
    examples: tuple[Example, ...]
    confidence: float
    source: str  # "recog/html_title.xml#<description>"
    devices: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    generic: bool = False  # recog's certainty-0 entries assert nothing instead

    def params(self, value: str) -> dict[str, str] | None:
        found = self.regex.search(value[:MAX_VALUE_CHARS])
        if found is None:
            return None
        out: dict[str, str] = {}
        groups = found.groups()
        for param in self.params_spec:
            if param.position == 0:
                out[param.name] = param.value
            elif param.position <= len(groups) and groups[param.position - 1] is not None:
                out[param.name] = groups[param.position - 1]
        for name, text in out.items():  # templates: "{service.version}" -> its value
            if "{" in text:
                out[name] = _TEMPLATE.sub(lambda m: out.get(m.group(1), ""), text).strip()
        return out

    def match(self, value: str) -> dict[str, str] | None:
        for candidate in candidates(self.key, value):
            params = self.params(candidate)
            if params is not None:
                return identity_fields(params, self.devices)
        return None


def candidates(key: str, value: str) -> Iterator[str]:
    """The strings recog expects, from what the sensor observed: recog's SSH file matches
    the software version after ``SSH-2.0-``; its mDNS file one TXT entry at a time."""
    if key == "ssh.banner":
        yield re.sub(r"^SSH-\d+\.\d+-", "", value.strip())
    elif key == "ftp.banner":  # recog reads the greeting without its reply codes...
        if _FTP_CODE.match(value):
            yield _FTP_CODE.sub("", value)
        yield value  # ...but for a few that it wrote with them
    elif key == "http.www_authenticate":  # the sensor keeps the realm; recog the header
        yield value if AUTH_SCHEME.match(value) else f'Basic realm="{value}"'
    elif key == "mdns.txt":
        yield from (part.strip() for part in value.split("; ") if part.strip())
    else:
        yield value


def identity_fields(params: dict[str, str], devices: dict[str, str]) -> dict[str, str]:
    """recog's parameters as netvagt's identity fields.

    A fingerprint that asserts nothing (certainty 0, as recog's generic '404 Not Found'
    entries do) gives no fields. The device's maker is ``hw.vendor``, or the OS vendor when
    the OS is the device's own (a router's IOS, a camera's firmware): never a PC's
    Microsoft. Service product and version are kept; the classifier sets them aside when
    other evidence names the device."""
    if any(params.get(f"{part}.certainty") in ("0", "0.0") for part in ("hw", "os", "service")):
        return {}
    device = params.get("hw.device") or params.get("os.device") or ""
    device_type = devices.get(device) if device else None
    out: dict[str, str] = {}
    own_os = bool(params.get("os.device")) and device_type not in (None, "workstation",
                                                                    "server", "mobile")
    vendor = params.get("hw.vendor") or (params.get("os.vendor") if own_os else None)
    if vendor:
        out["vendor"] = vendor
    if device_type and device_type != "unknown":
        out["device_type"] = device_type
    product = params.get("hw.product") or params.get("service.product")
    if product:
        out["product"] = product
    if params.get("hw.model"):
        out["model"] = params["hw.model"]
    version = params.get("hw.version") or params.get("os.version") if params.get("hw.product") \
        else params.get("service.version")
    if version:
        out["version"] = version
    os_vendor = params.get("os.vendor") if not own_os else None
    os_product = params.get("os.product") or ""
    if os_vendor and os_product.lower().startswith(os_vendor.lower()):
        os_vendor = None  # "Dell Remote Access Controller", not "Dell Dell Remote ..."
    os_name = " ".join(p for p in (os_vendor, os_product) if p)
    if os_name and not own_os:
        out["os"] = os_name
    cpe = params.get("hw.cpe23") or params.get("os.cpe23") or params.get("service.cpe23")
    if cpe:
        out["cpe"] = cpe
    return {k: v.strip()[:256] for k, v in out.items() if v and v.strip()}


def device_map() -> dict[str, str]:
    """recog's device vocabulary (``identifiers/device.txt``) -> netvagt's device types."""
    return name_map("recog_devices.toml", "devices")


@dataclass(frozen=True, slots=True, kw_only=True)
class RecogFile:
    path: str
    matches: str
    key: str | None  # None: a file the sensor has nothing to feed
    preference: float
    rules: tuple[RecogRule, ...]
    unusable: tuple[tuple[str, str], ...]  # (fingerprint, why Python cannot use it)


def parse_file(path: Path) -> RecogFile:
    """One recog XML file; fingerprints Python's ``re`` cannot express are listed, not
    loaded."""
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    data = path.read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise RecogError(f"{path}: {len(data)} bytes, larger than any recog file")
    try:
        root = ElementTree.fromstring(data)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise RecogError(f"{path}: not recog XML: {exc}") from None
    matches = root.get("matches") or path.stem
    key = RECOG_KEYS.get(path.stem)
    try:
        preference = float(root.get("preference", "0.5"))
    except ValueError:
        preference = 0.5
    devices = device_map()
    rules: list[RecogRule] = []
    unusable: list[tuple[str, str]] = []
    for index, element in enumerate(root.iter("fingerprint")):
        description = " ".join((element.findtext("description") or "").split())[:120]
        name = description or f"fingerprint {index + 1}"
        try:
            regex = python_regex(element.get("pattern", ""), element.get("flags", ""))
        except re.error as exc:
            unusable.append((name, f"regex: {exc}"))
            continue
        params = tuple(Param(name=p.get("name", ""), position=int(p.get("pos", "0")),
                             value=p.get("value", "")) for p in element.iter("param"))
        examples = []
        for example in element.iter("example"):
            text = example.text or ""
            if example.get("_encoding") == "base64":
                try:
                    text = base64.b64decode(text).decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    continue
            expected = {k: v for k, v in example.attrib.items() if not k.startswith("_")}
            examples.append(Example(text=text, expected=expected))
        rules.append(RecogRule(name=name, key=key or matches, regex=regex, params_spec=params,
                               examples=tuple(examples),
                               confidence=round(preference * RECOG_WEIGHT, 3),
                               source=f"recog/{path.name}#{name}", devices=devices))
    return RecogFile(path=str(path), matches=matches, key=key, preference=preference,
                     rules=tuple(rules), unusable=tuple(unusable))


def load(directory: Path) -> list[RecogFile]:
    """Every recog file in ``directory`` (its ``xml/`` folder, or the folder itself)."""
    folder = directory / "xml" if (directory / "xml").is_dir() else directory
    files = sorted(folder.glob("*.xml"))
    if not files:
        raise RecogError(f"{directory}: no recog XML files here")
    return [parse_file(p) for p in files]


@dataclass(frozen=True, slots=True, kw_only=True)
class FileReport:
    path: str
    key: str | None
    examples: int
    passed: int
    failures: tuple[str, ...]  # "<fingerprint>: <example>: <why>"


def verify(directory: Path) -> list[FileReport]:
    """Run every recog example through the loader: does it yield what recog states?"""
    reports = []
    for recog_file in load(directory):
        failures = [f"{name}: {why}" for name, why in recog_file.unusable]
        total = passed = 0
        for rule in recog_file.rules:
            for example in rule.examples:
                total += 1
                got = rule.params(example.text)
                if got is None:
                    failures.append(f"{rule.name}: {example.text[:60]!r}: does not match")
                    continue
                wrong = {k: (v, got.get(k)) for k, v in example.expected.items()
                         if got.get(k) != v}
                if wrong:
                    failures.append(f"{rule.name}: {example.text[:60]!r}: {wrong}")
                else:
                    passed += 1
        reports.append(FileReport(path=recog_file.path, key=recog_file.key, examples=total,
                                  passed=passed, failures=tuple(failures)))
    return reports

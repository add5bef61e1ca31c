"""Fingerprint rules as data, and the verifier that makes them test themselves.

One TOML file per match key (``rules/ssh_banner.toml`` for ``ssh.banner``): a ``[file]``
header names the key, says what it matches and its preference (how much a match from this
source is worth, 0..1); then ``[[rule]]`` entries in priority order, each a regex (TOML
literal strings need no double escaping), the fields its capture groups fill, fixed
fields, and examples: real strings with exactly the fields they must yield.

:func:`verify` checks every rule the way Rapid7's recog does: the regex compiles, its group
count equals the captures it declares, every example matches its own rule with exactly the
expected fields and is not matched first by an earlier rule, every captured field is
asserted by some example, and field names and device types come from the vocabulary.
Each problem is a :class:`RuleError` with a stable ``code``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from fingerprints import regex_cache

MAX_VALUE_CHARS = 4096  # a rule sees at most this much of an observed string


class RuleError(ValueError):
    """One problem in one rule file; ``code`` names the kind of problem."""

    def __init__(self, code: str, where: str, message: str) -> None:
        super().__init__(f"{where}: {code}: {message}")
        self.code = code
        self.where = where


@dataclass(frozen=True, slots=True)
class Vocabulary:
    fields: frozenset[str]
    device_types: frozenset[str]
    keys: frozenset[str]  # what rules match
    facts: frozenset[str] = frozenset()  # what names a device; kept, matched by no rule
    derived: frozenset[str] = frozenset()  # made by the classifier itself, not a scanner

    @property
    def every_key(self) -> frozenset[str]:
        return self.keys | self.facts


@cache
def vocabulary() -> Vocabulary:
    data = tomllib.loads(resources.files("fingerprints").joinpath("vocabulary.toml").read_text())
    return Vocabulary(fields=frozenset(data["fields"]), device_types=frozenset(data["device_types"]),
                      keys=frozenset(data["keys"]), facts=frozenset(data.get("facts", ())),
                      derived=frozenset(data.get("derived", ())))


@cache
def _packaged(file: str) -> dict[str, Any]:
    return tomllib.loads(resources.files("fingerprints").joinpath(file).read_text())


@cache
def name_map(file: str, table: str) -> dict[str, str]:
    """A packaged name-to-name table (``recog_devices.toml``, ``nmap_devices.toml``,
    ``vendor_types.toml``): another vocabulary's words as netvagt's."""
    return {str(k): str(v) for k, v in _packaged(file)[table].items()}


@cache
def name_list(file: str, table: str) -> tuple[str, ...]:
    """A packaged list of names (``vendor_types.toml``'s makers of many kinds)."""
    return tuple(str(name) for name in _packaged(file)[table]["names"])


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    name: str
    key: str
    regex: re.Pattern[str]
    captures: tuple[str, ...]
    fixed: dict[str, str]
    examples: tuple[dict[str, str], ...]
    confidence: float
    source: str  # "file.toml#name"
    # generic server software (IIS, Apache, lighttpd, GoAhead...): what it says of the device
    # counts only where nothing specific to the device says otherwise
    generic: bool = False
    # a word rule asked only of these keys (empty: of every key that may hold the words)
    asked_of: frozenset[str] = frozenset()

    def match(self, value: str) -> dict[str, str] | None:
        found = self.regex.search(value[:MAX_VALUE_CHARS])
        if found is None:
            return None
        fields = dict(self.fixed)
        for name, captured in zip(self.captures, found.groups(), strict=True):
            if captured:
                fields[name] = captured.strip()
        return fields


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleFile:
    key: str
    description: str
    preference: float
    rules: tuple[Rule, ...]
    path: str
    errors: tuple[RuleError, ...] = field(default_factory=tuple)


def _where(path: str, name: str | None = None) -> str:
    return f"{path}#{name}" if name else path


def parse(text: str, path: str) -> RuleFile:
    """Parse one rule file, collecting (not raising) per-rule errors."""
    vocab = vocabulary()
    errors: list[RuleError] = []
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError("not-toml", path, str(exc)) from None
    except RecursionError:
        raise RuleError("not-toml", path, "nested too deeply") from None
    header = data.get("file", {})
    key = header.get("key", "")
    if key not in vocab.keys:
        raise RuleError("unknown-key", path, f"match key {key!r} is not in the vocabulary")
    preference = float(header.get("preference", 0.5))
    rules: list[Rule] = []
    for index, raw in enumerate(data.get("rule", [])):
        name = str(raw.get("name") or f"rule{index + 1}")
        where = _where(path, name)
        try:
            rules.append(_rule(raw, name, key, preference, where, vocab))
        except RuleError as exc:
            errors.append(exc)
    return RuleFile(key=key, description=str(header.get("description", "")),
                    preference=preference, rules=tuple(rules), path=path, errors=tuple(errors))


def _rule(raw: dict[str, Any], name: str, key: str, preference: float, where: str,
          vocab: Vocabulary) -> Rule:
    try:
        regex = regex_cache.regex(raw["pattern"])
    except KeyError:
        raise RuleError("no-pattern", where, "the rule has no pattern") from None
    except re.error as exc:
        raise RuleError("bad-regex", where, str(exc)) from None
    captures = tuple(raw.get("captures", ()))
    if regex.groups != len(captures):
        raise RuleError("capture-count", where, f"the pattern has {regex.groups} group(s) but "
                        f"{len(captures)} capture(s) are declared")
    fixed = {str(k): str(v) for k, v in raw.get("fixed", {}).items()}
    for field_name in (*captures, *fixed):
        if field_name not in vocab.fields:
            raise RuleError("unknown-field", where, f"field {field_name!r} is not in the vocabulary")
    if "device_type" in fixed and fixed["device_type"] not in vocab.device_types:
        raise RuleError("unknown-device-type", where,
                        f"device type {fixed['device_type']!r} is not in the vocabulary")
    examples = tuple({str(k): str(v) for k, v in e.items()} for e in raw.get("examples", ()))
    if not examples:
        raise RuleError("no-examples", where, "every rule needs at least one real example")
    asked_of = frozenset(str(k) for k in raw.get("keys", ()))
    if asked_of and key != "words":
        raise RuleError("keys-not-words", where, "only a word rule is asked of chosen keys")
    if unknown := sorted(asked_of - vocab.keys):
        raise RuleError("unknown-key", where, f"keys {unknown} are not in the vocabulary")
    return Rule(name=name, key=key, regex=regex, captures=captures, fixed=fixed,
                examples=examples, confidence=float(raw.get("confidence", preference)),
                generic=bool(raw.get("generic", False)), asked_of=asked_of,
                source=where.rsplit("/", 1)[-1])


def verify_file(rule_file: RuleFile) -> list[RuleError]:
    """Every problem in one parsed file (parse errors included)."""
    errors = list(rule_file.errors)
    rules = in_answer_order(rule_file.key, rule_file.rules)
    for position, rule in enumerate(rules):
        where = _where(rule_file.path, rule.name)
        asserted: set[str] = set()
        for example in rule.examples:
            value = example.get("value", "")
            expected = {k: v for k, v in example.items() if k != "value"}
            asserted |= set(expected)
            earlier = next((r for r in rules[:position] if r.match(value)), None)
            if earlier is not None:
                errors.append(RuleError("shadowed", where, f"example {value!r} is matched "
                                        f"first by the earlier rule {earlier.name!r}"))
                continue
            got = rule.match(value)
            if got is None:
                errors.append(RuleError("example-no-match", where,
                                        f"example {value!r} does not match its rule"))
            elif got != expected:
                errors.append(RuleError("example-fields", where, f"example {value!r} yields "
                                        f"{got} but the example says {expected}"))
        for capture in rule.captures:
            if capture not in asserted:
                errors.append(RuleError("capture-unasserted", where,
                                        f"no example asserts the captured field {capture!r}"))
    return errors


def _bundled() -> Iterator[tuple[str, str]]:
    folder = resources.files("fingerprints").joinpath("rules")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            yield f"rules/{entry.name}", entry.read_text()


def load_files(paths: Iterable[Path] | None = None) -> list[RuleFile]:
    sources = _bundled() if paths is None else ((str(p), p.read_text()) for p in paths)
    return [parse(text, path) for path, text in sources]


def verify(paths: Iterable[Path] | None = None) -> list[RuleError]:
    """The rule files (the bundled ones, with the name tables beside them, by default)."""
    errors: list[RuleError] = []
    for path, text in (_bundled() if paths is None else ((str(p), p.read_text()) for p in paths)):
        try:
            errors.extend(verify_file(parse(text, path)))
        except RuleError as exc:
            errors.append(exc)
    return errors + (verify_tables() if paths is None else [])


# the tables that give a maker, or another vocabulary's word, one of netvagt's device types
KIND_TABLES = (("vendor_types.toml", "vendors"), ("recog_devices.toml", "devices"),
               ("nmap_devices.toml", "devices"))


def verify_tables() -> list[RuleError]:
    """The name tables beside the rules: each one reads, each kind it gives is the
    vocabulary's, and no maker is both a maker of one kind and a maker of many."""
    errors: list[RuleError] = []
    for file, table in (*KIND_TABLES, ("vendor_types.toml", "spellings")):
        try:
            kinds = name_map(file, table)
        except (tomllib.TOMLDecodeError, KeyError) as exc:
            errors.append(RuleError("table-syntax", f"{file}[{table}]", str(exc)))
            continue
        if (file, table) in KIND_TABLES:
            errors.extend(RuleError("table-kind", f"{file}[{table}]#{name}",
                                    f"{kind!r} is not a device type of the vocabulary")
                          for name, kind in kinds.items()
                          if kind not in vocabulary().device_types)
    try:
        many = name_list("vendor_types.toml", "makers")
        one = name_map("vendor_types.toml", "vendors")
    except (tomllib.TOMLDecodeError, KeyError):
        return errors  # reported above, or the list's own table
    errors.extend(RuleError("maker-both", f"vendor_types.toml[makers]#{maker}",
                            "a maker of many kinds is also a maker of one kind in [vendors]")
                  for maker in many if maker.lower() in one)
    return errors


@cache
def rules_by_key() -> dict[str, tuple[Rule, ...]]:
    """The bundled rules, by match key, in priority order (verified files only). The model
    catalogue answers with its first match: its rules that name a kind come before those
    that name a maker only (a product line, 'Forti...'), so that a line cannot hide a model
    of it ('FortiAP')."""
    by_key: dict[str, list[Rule]] = {}
    with regex_cache.session("rules"):
        rule_files = load_files()
    for rule_file in rule_files:
        by_key.setdefault(rule_file.key, []).extend(rule_file.rules)
    return {k: tuple(in_answer_order(k, v)) for k, v in by_key.items()}


def in_answer_order(key: str, rules: Iterable[Rule]) -> list[Rule]:
    """A key's rules in the order the classifier tries them: as written, but the model
    catalogue's rules that name a kind before those that name a maker only."""
    if key != "model":
        return list(rules)
    return sorted(rules, key=lambda rule: ("device_type" not in rule.fixed
                                           and "device_type" not in rule.captures))

"""The accuracy report: the classifier against labelled cases that are not its rules'
examples, per source (the match key), per device type, and per corpus.

Three kinds of corpus are read, each recognised by what the path holds:

- a TOML file of ``[[sample]]`` tables (``key``, ``value``, ``vendor``, ``device_type``):
  the corpus written here, where a field left out means the classifier must leave it empty.
  A sample may carry the device's ``mac`` too (its OUI and the registry's organisation are
  evidence, as on a live segment), or be a MAC alone (``key = "mac"``). A file that sets
  ``vendor_scored = false`` is scored on the type only;
- a Fingerbank DHCP database folder (``dhcp_fingerprints.conf`` and ``labels.toml``): each
  option 55 list and option 60 string of an entry, labelled with the entry's device type;
- a recog release (a folder with ``xml/``): recog's examples, labelled with what recog says
  of them, scored with recog *unloaded*. With recog loaded they are its own rules' examples
  and say only that the loader works; without it they measure how far netvagt's own rules
  reach on strings written by others.

Every case falls in one of two halves by a hash of its key and value. Rules may be tuned
by looking at the misses of the ``dev`` half; the ``test`` half is reported, never listed,
so that its figure says how the rules do on cases nobody looked at.

    python -m fingerprints accuracy tests/fingerprints/corpus.toml \\
        tests/fingerprints/public/fingerbank ../shared/fingerprint-db/recog
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from fingerprints.classify import Observation, classify, classify_device
from fingerprints.rules import name_list

UNTYPED = "(none)"  # the row of cases whose device type must stay open


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    corpus: str
    key: str
    value: str
    device_type: str  # "" : the classifier must leave the type open
    vendor: str | None  # None : the vendor is not scored; "" : it must stay open
    builtin_only: bool = False  # score with the built-in rules alone
    mac: str | None = None  # the device's MAC, when the case is what a device said and its MAC

    @property
    def half(self) -> str:
        digest = hashlib.sha256(f"{self.key}\0{self.value}".encode()).digest()
        return "dev" if digest[0] % 2 == 0 else "test"


@dataclass
class Tally:
    samples: int = 0
    vendor_scored: int = 0
    vendor_right: int = 0
    typed: int = 0  # cases labelled with a device type
    typed_right: int = 0
    typed_wrong: int = 0  # another type was given: the worse mistake
    untyped: int = 0  # cases whose type must stay open
    untyped_named: int = 0  # ... and a type was given anyway

    def add(self, case: Case, *, vendor: str | None, device_type: str | None) -> None:
        self.samples += 1
        if case.vendor is not None:
            self.vendor_scored += 1
            self.vendor_right += (vendor or "") == case.vendor
        if case.device_type:
            self.typed += 1
            self.typed_right += device_type == case.device_type
            self.typed_wrong += bool(device_type) and device_type != case.device_type
        else:
            self.untyped += 1
            self.untyped_named += bool(device_type)

    def merge(self, other: Tally) -> None:
        for name in (f.name for f in dataclasses.fields(self)):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Report:
    by_source: dict[tuple[str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_type: dict[tuple[str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_half: dict[tuple[str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    misses: list[str] = field(default_factory=list)  # of the dev half only
    excluded: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, case: Case, *, vendor: str | None, device_type: str | None) -> None:
        for table, row in ((self.by_source, case.key),
                           (self.by_type, case.device_type or UNTYPED),
                           (self.by_half, case.half)):
            table[(case.corpus, row)].add(case, vendor=vendor, device_type=device_type)
        vendor_ok = case.vendor is None or (vendor or "") == case.vendor
        if case.half == "dev" and not (vendor_ok and (device_type or "") == case.device_type):
            mac = f" (MAC {case.mac})" if case.mac and case.key != MAC_ONLY else ""
            self.misses.append(f"{case.corpus} {case.key}: {case.value[:70]!r}{mac}: got "
                               f"{vendor}/{device_type}, labelled {case.vendor}/"
                               f"{case.device_type or None}")


# --- corpus readers --------------------------------------------------------------------------

MAC_ONLY = "mac"  # a sample's key when the MAC is all the device showed


def toml_cases(path: Path) -> Iterator[Case]:
    corpus = tomllib.loads(path.read_text())
    vendor_scored = corpus.get("vendor_scored", True)
    for sample in corpus.get("sample", []):
        mac = sample["value"] if sample["key"] == MAC_ONLY else sample.get("mac")
        yield Case(corpus=path.stem, key=sample["key"], value=sample["value"],
                   device_type=sample.get("device_type", ""),
                   vendor=sample.get("vendor", "") if vendor_scored else None, mac=mac)


_SECTION = re.compile(r"^\[(class|os) (\d+)\]\s*$")


def _fingerbank_entries(text: str) -> Iterator[tuple[str, str, dict[str, list[str]]]]:
    """(section kind, number, {field: lines}) of a PacketFence/Fingerbank .conf file, whose
    multi-line fields are ``name=<<EOT`` ... ``EOT``."""
    kind = number = ""
    fields: dict[str, list[str]] = {}
    heredoc: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if heredoc is not None:
            if line == "EOT":
                heredoc = None
            elif line and not line.startswith("#"):
                fields[heredoc].append(line)
            continue
        section = _SECTION.match(line)
        if section:
            if kind:
                yield kind, number, fields
            kind, number, fields = section.group(1), section.group(2), {}
        elif "=" in line and not line.startswith("#") and kind:
            name, _, value = line.partition("=")
            if value == "<<EOT":
                heredoc = name.strip()
                fields[heredoc] = []
            else:
                fields[name.strip()] = [value.strip()]
    if kind:
        yield kind, number, fields


def fingerbank_cases(folder: Path) -> Iterator[Case]:
    labels = tomllib.loads((folder / "labels.toml").read_text())
    classes: list[tuple[range, str]] = []
    entries: list[tuple[str, str, dict[str, list[str]]]] = []
    for kind, number, fields in _fingerbank_entries(
            (folder / "dhcp_fingerprints.conf").read_text(encoding="utf-8")):
        if kind == "class":
            description = fields.get("description", [""])[0]
            for part in fields.get("members", [""])[0].split(","):
                low, _, high = part.partition("-")
                classes.append((range(int(low), int(high or low) + 1), description))
        else:
            entries.append((kind, number, fields))
    seen: set[tuple[str, str, str]] = set()
    for _, number, fields in entries:
        description = " ".join(fields.get("description", [""])[0].split())
        klass = next((name for members, name in classes if int(number) in members), "")
        device_type = labels["entries"].get(description,
                                            labels["entries"].get(number,
                                                                  labels["classes"][klass]))
        for key, values in (("dhcp.params", fields.get("fingerprints", [])),
                            ("dhcp.vendor_class", fields.get("vendor_id", []))):
            for value in values:
                if (key, value, device_type) in seen:
                    continue  # listed twice under one label: one case
                seen.add((key, value, device_type))
                yield Case(corpus="fingerbank", key=key, value=value,
                           device_type=device_type, vendor=None)


def recog_cases(directory: Path) -> Iterator[Case]:
    from fingerprints.recog import identity_fields, load

    for recog_file in load(directory):
        if recog_file.key is None:
            continue
        for rule in recog_file.rules:
            for example in rule.examples:
                params = rule.params(example.text)
                if params is None:
                    continue  # an example recog's own regex misses: verify lists those
                said = identity_fields(params, rule.devices)
                if not said and not params:
                    continue
                yield Case(corpus="recog-examples", key=recog_file.key, value=example.text,
                           device_type=said.get("device_type", ""),
                           vendor=said.get("vendor") or None, builtin_only=True)


def nmap_service_cases(path: Path) -> Iterator[Case]:
    """nmap's service database as a corpus nobody here wrote: each hard match line that gives
    a device type (``d/``) is its product and extra words as an ``nmap.match`` without the
    type, labelled with nmap's type in netvagt's words. Left out: lines whose type names
    none here, and nmap's buckets for many kinds (its 'media device' is a DVR as often as a
    television, which the words name and the label would count wrong)."""
    from fingerprints import nmap_probes

    kinds = nmap_probes.device_map()
    broad = set(name_list("nmap_devices.toml", "broad"))
    seen: set[str] = set()
    for probe in nmap_probes.parse(path.read_text(encoding="latin-1")).values():
        for line in probe.matches:
            said = {k: " ".join(v.split())
                    for k, v in nmap_probes.line_fields(line.version, ()).items()}
            device_type = kinds.get(said.get("devicetype", ""), "unknown")
            value = nmap_probes.as_value({"service": line.service,
                                          "product": said.get("product", ""),
                                          "info": said.get("info", "")})
            if (line.soft or not said.get("product") or device_type == "unknown"
                    or said["devicetype"] in broad or value in seen):
                continue
            seen.add(value)
            yield Case(corpus="nmap-service-probes", key=nmap_probes.KEY, value=value,
                       device_type=device_type, vendor=None, builtin_only=True)


def cases(path: Path) -> Iterator[Case]:
    if path.name == "nmap-service-probes":
        yield from nmap_service_cases(path)
    elif path.is_file():
        yield from toml_cases(path)
    elif (path / "dhcp_fingerprints.conf").is_file():
        yield from fingerbank_cases(path)
    elif (path / "xml").is_dir():
        yield from recog_cases(path)
    else:
        raise ValueError(f"{path}: not a corpus (a TOML file, a Fingerbank folder, a recog "
                         "release or nmap's nmap-service-probes)")


# --- scoring ------------------------------------------------------------------------------------

def score(all_cases: Iterable[Case]) -> Report:
    from fingerprints.databases import without_recog

    result = Report()
    examples = rule_examples()
    pending = []
    for case in all_cases:
        if (case.key, case.value) in examples:
            result.excluded[case.corpus] += 1  # a rule's own example proves nothing
        else:
            pending.append(case)
    for builtin_only in (False, True):
        batch = [c for c in pending if c.builtin_only == builtin_only]
        with without_recog() if builtin_only else nullcontext():
            _score_into(result, batch)
    return result


def rule_examples() -> set[tuple[str, str]]:
    """(key, value) of every built-in rule's example: a corpus case that is one is not
    scored (a fixed identifier such as 'MSFT 5.0' has no other form to test on)."""
    from fingerprints.classify import SHARED_RULES
    from fingerprints.rules import rules_by_key

    found = {(key, str(example["value"])) for key, rules in rules_by_key().items()
             for rule in rules for example in rule.examples}
    for reader, rules_of in SHARED_RULES.items():  # keys read with another key's rules
        found |= {(reader, value) for key, value in found if key == rules_of}
    return found


def _score_into(result: Report, batch: list[Case]) -> None:
    for case in batch:
        said = [] if case.key == MAC_ONLY else [Observation(key=case.key, value=case.value)]
        if case.mac is None:
            identity = classify(said)
        else:
            identity = classify_device(said, mac=case.mac, mac_vendor=registrant(case.mac))
        result.add(case, vendor=identity.vendor, device_type=identity.device_type)


def registrant(mac: str) -> str | None:
    """The organisation the IEEE registry (netaddr's copy, as the sensor reads it) gives
    for a MAC's OUI: scanners.oui.vendor's lookup, which fingerprints may not import (the
    layers point one way, tests/test_import_graph.py)."""
    from netaddr import EUI, NotRegisteredError

    try:
        return str(EUI(mac).oui.registration().org).strip() or None
    except (NotRegisteredError, IndexError):
        return None


def report(*paths: Path) -> Report:
    return score(c for path in paths for c in cases(path))


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "–"


def render(table: dict[tuple[str, str], Tally], *, row_name: str) -> str:
    """A Markdown table. 'right', 'open' and 'wrong' are of the cases labelled with a device
    type; 'false names' of those whose type must stay open."""
    lines = [f"| corpus | {row_name} | cases | typed | right | left open | wrong type "
             "| must stay open | false names | vendor right |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    totals: dict[str, Tally] = defaultdict(Tally)
    for (corpus, row) in sorted(table):
        lines.append(_row(corpus, f"`{row}`", table[(corpus, row)]))
        totals[corpus].merge(table[(corpus, row)])
    for corpus in sorted(totals):
        lines.append(_row(corpus, "**all**", totals[corpus]))
    return "\n".join(lines)


def _row(corpus: str, row: str, t: Tally) -> str:
    return (f"| {corpus} | {row} | {t.samples} | {t.typed} | {_pct(t.typed_right, t.typed)} | "
            f"{_pct(t.typed - t.typed_right - t.typed_wrong, t.typed)} | "
            f"{_pct(t.typed_wrong, t.typed)} | {t.untyped} | "
            f"{_pct(t.untyped_named, t.untyped)} | {_pct(t.vendor_right, t.vendor_scored)} |")

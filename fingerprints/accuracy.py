"""The accuracy report: the classifier against a labelled corpus kept apart from the rules'
own examples. For each match key (the source of the evidence) it counts how often vendor
and device type come out as labelled; a sample labelled with neither must stay unnamed.

    python -m fingerprints accuracy tests/fingerprints/corpus.toml
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from fingerprints.classify import Observation, classify


@dataclass
class Tally:
    samples: int = 0
    vendor_right: int = 0
    type_right: int = 0
    named: int = 0  # samples for which the classifier named anything

    def add(self, *, vendor_ok: bool, type_ok: bool, named: bool) -> None:
        self.samples += 1
        self.vendor_right += vendor_ok
        self.type_right += type_ok
        self.named += named


def report(corpus: Path) -> tuple[dict[str, Tally], list[str]]:
    data = tomllib.loads(corpus.read_text())
    tallies: dict[str, Tally] = defaultdict(Tally)
    misses: list[str] = []
    for sample in data.get("sample", []):
        identity = classify([Observation(key=sample["key"], value=sample["value"])])
        want_vendor, want_type = sample.get("vendor"), sample.get("device_type")
        vendor_ok = identity.vendor == want_vendor
        type_ok = identity.device_type == want_type
        tallies[sample["key"]].add(vendor_ok=vendor_ok, type_ok=type_ok,
                                   named=bool(identity.to_dict()))
        if not (vendor_ok and type_ok):
            misses.append(f"{sample['key']}: {sample['value'][:70]!r}: got "
                          f"{identity.vendor}/{identity.device_type}, "
                          f"labelled {want_vendor}/{want_type}")
    return dict(tallies), misses


def render(tallies: dict[str, Tally]) -> str:
    lines = ["| source | samples | vendor right | device type right |",
             "| --- | ---: | ---: | ---: |"]
    total = Tally()
    for key in sorted(tallies):
        t = tallies[key]
        lines.append(f"| `{key}` | {t.samples} | {t.vendor_right / t.samples:.0%} | "
                     f"{t.type_right / t.samples:.0%} |")
        total.samples += t.samples
        total.vendor_right += t.vendor_right
        total.type_right += t.type_right
    if total.samples:
        lines.append(f"| all | {total.samples} | {total.vendor_right / total.samples:.0%} | "
                     f"{total.type_right / total.samples:.0%} |")
    return "\n".join(lines)

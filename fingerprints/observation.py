"""What a device said about itself: one type from the scanner that heard it, over the wire,
to the central and the classifier.

A named tuple: scanners make many, cheaply, and compare them as tuples; the wire carries
it as ``{"key", "value", "source"}`` and checks it where an asset is checked (untrusted
values are bounded there, and escaped by the scanner that read them). Its keys are the
vocabulary's (``fingerprints/vocabulary.toml``).
"""

from __future__ import annotations

from typing import NamedTuple


class Observation(NamedTuple):
    key: str  # <protocol>.<field>, e.g. "ssh.banner"
    value: str
    source: str = ""  # where it was seen, e.g. "22/tcp", "mdns", "mac"

"""What a device said about itself: one type from the scanner that heard it, over the wire,
to the central and the classifier.

A named tuple: scanners make many, cheaply, and compare them as tuples; the wire carries
it as ``{"key", "value", "source"}`` and checks it where an asset is checked (untrusted
values are bounded there, and escaped by the scanner that read them). Its keys are the
vocabulary's (``fingerprints/vocabulary.toml``).
"""

from __future__ import annotations

from typing import NamedTuple

# An address a device names (in mDNS, SSDP, LLDP, CDP, DHCP, SNMP) without having answered
# from it: carried under this key, so it is never taken for a probed address.
CLAIM_KEY = "claim.ipv4"
# What the segment says of an address: it is the segment's default gateway (the sensor's
# own routes say so, or the router advertises itself for IPv6), so the central knows each
# zone's router without the policy naming it.
ROLE_KEY = "net.role"
DEFAULT_GATEWAY = "default-gateway"


class Observation(NamedTuple):
    key: str  # <protocol>.<field>, e.g. "ssh.banner"
    value: str
    source: str = ""  # where it was seen, e.g. "22/tcp", "mdns", "mac"

"""What a device said about itself: one type from the scanner that heard it, over the wire,
to the central and the classifier.

A frozen msgspec record that equals, orders, hashes and unpacks like the tuple it once was
(scanners sort and unpack them); the wire carries it as ``{"key", "value", "source"}`` and
checks it where an asset is checked (untrusted values are bounded there, and escaped by the
scanner that read them). Not a named tuple: msgspec, which reads messages on the central,
reads a named tuple from a JSON array only. Its keys are the
vocabulary's (``fingerprints/vocabulary.toml``).
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

# An address a device names (in mDNS, SSDP, LLDP, CDP, DHCP, SNMP) without having answered
# from it: carried under this key, so it is never taken for a probed address.
CLAIM_KEY = "claim.ipv4"
CLAIM6_KEY = "claim.ipv6"  # the same for an IPv6 address (an mDNS AAAA record's, LLDP's)
CLAIM_KEYS = frozenset({CLAIM_KEY, CLAIM6_KEY})


def claim_key(address: str) -> str:
    """The key an address a device only names travels under, by its family."""
    return CLAIM6_KEY if ":" in address else CLAIM_KEY
# What the segment says of an address: it is the segment's default gateway (the sensor's
# own routes say so, or the router advertises itself for IPv6), so the central knows each
# zone's router without the policy naming it.
ROLE_KEY = "net.role"
DEFAULT_GATEWAY = "default-gateway"
# The link an address was heard on, where the address is not of the link's subnet: the
# sensor's own address there, with its prefix ("10.76.1.250/24"). A device on the office
# wire with a camera zone's address joins the two zones at layer 2 (a camera plugged into
# the wrong socket, a second subnet on one VLAN); the central compares the two zones.
LINK_KEY = "net.link"
# A router of a redundant gateway (VRRP, HSRP) said it serves a virtual gateway address:
# "<virtual address> <the router's own address>". The master's advertisement comes from the
# virtual MAC, so it lands on the gateway's address; a standby's from its own.
REDUNDANCY_KEY = "net.redundancy"
# Another MAC that holds this address on the link (ARP from it), where the sensor's own ARP
# was answered by the address's MAC: an address conflict, or a device diverting the
# address's traffic to itself (ARP spoofing the gateway)
CONFLICT_KEY = "net.conflict"


class Observation(msgspec.Struct, frozen=True, eq=False, forbid_unknown_fields=True, gc=False):
    key: str  # <protocol>.<field>, e.g. "ssh.banner"
    value: str
    source: str = ""  # where it was seen, e.g. "22/tcp", "mdns", "mac"

    # the value of the (key, value, source) tuple it was: equal to it, hashed and ordered
    # as it, and unpacked like it
    def _tuple(self) -> tuple[str, str, str]:
        return (self.key, self.value, self.source)

    def __iter__(self) -> Iterator[str]:
        return iter(self._tuple())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Observation):
            return self._tuple() == other._tuple()
        if isinstance(other, tuple):
            return self._tuple() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._tuple())

    def __lt__(self, other: Observation | tuple[str, ...]) -> bool:
        return self._tuple() < tuple(other)

    def __le__(self, other: Observation | tuple[str, ...]) -> bool:
        return self._tuple() <= tuple(other)

    def __gt__(self, other: Observation | tuple[str, ...]) -> bool:
        return self._tuple() > tuple(other)

    def __ge__(self, other: Observation | tuple[str, ...]) -> bool:
        return self._tuple() >= tuple(other)

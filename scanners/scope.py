"""What a sensor may probe: the configured scope minus the exclusion list.

Every scanner asks the scope before it sends a packet; a target outside the scope or
inside the exclusion list is refused with :class:`OutOfScope`, in every mode. Targets are
parsed strictly (an address, a CIDR, or a range ``a-b``), so nothing that reaches nmap or a
socket can carry shell syntax or options.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from netaddr import AddrFormatError, IPAddress, IPNetwork, IPRange, IPSet

MAX_TARGETS = 65_536  # one scan touches at most a /16: a typo must not become a /8 sweep
_TARGET_RE = re.compile(r"^[0-9a-fA-F:.]+(/\d{1,3})?$|^[0-9.]+-[0-9.]+$")
_MAC_PREFIX_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){0,5}$")


class ScopeError(ValueError):
    """A target or scope that cannot be used."""


class BadTarget(ScopeError):
    """Not an address, a CIDR or a range."""


class OutOfScope(ScopeError):
    """A target outside the configured scope, or inside the exclusion list."""


def parse_target(text: str) -> IPSet:
    """Parse one target: ``10.0.0.5``, ``10.0.0.0/24`` or ``10.0.0.10-10.0.0.20``."""
    value = text.strip()
    if not value or len(value) > 64 or not _TARGET_RE.match(value):
        raise BadTarget(f"{text!r} is not an IP address, CIDR or range (a-b)")
    try:
        if "-" in value:
            first, last = value.split("-", 1)
            return IPSet(IPRange(first, last))
        if "/" in value:
            return IPSet([IPNetwork(value)])
        return IPSet([IPAddress(value)])
    except (AddrFormatError, ValueError) as exc:
        raise BadTarget(f"{text!r} is not an IP address, CIDR or range: {exc}") from None


def parse_targets(texts: Iterable[str]) -> IPSet:
    result = IPSet()
    for text in texts:
        result |= parse_target(text)
    return result


def normalise_mac_prefix(text: str) -> str:
    value = text.strip().lower().replace("-", ":")
    if not _MAC_PREFIX_RE.match(value):
        raise ScopeError(f"{text!r} is not a MAC address or prefix like 00:11:22")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """Addresses a sensor may probe (``include``) minus those it must never touch."""

    include: IPSet
    exclude: IPSet = field(default_factory=IPSet)
    exclude_macs: tuple[str, ...] = ()  # MAC prefixes that never receive a packet

    @classmethod
    def from_strings(
        cls,
        include: Iterable[str],
        *,
        exclude: Iterable[str] = (),
        exclude_macs: Iterable[str] = (),
    ) -> Scope:
        return cls(
            include=parse_targets(include),
            exclude=parse_targets(exclude),
            exclude_macs=tuple(normalise_mac_prefix(m) for m in exclude_macs),
        )

    def allows(self, ip: str | IPAddress) -> bool:
        address = IPAddress(ip)
        return address in self.include and address not in self.exclude

    def excludes(self, ip: str | IPAddress) -> bool:
        """Whether the operator excluded the address: never probed, and never reported."""
        return IPAddress(ip) in self.exclude

    def allows_mac(self, mac: str | None) -> bool:
        if mac is None:
            return True
        value = mac.lower()
        return not any(value.startswith(prefix) for prefix in self.exclude_macs)

    def check(self, ip: str | IPAddress) -> None:
        address = IPAddress(ip)
        if address in self.exclude:
            raise OutOfScope(f"{address} is in the exclusion list")
        if address not in self.include:
            raise OutOfScope(f"{address} is outside the configured scope")

    def resolve(self, targets: IPSet, *, limit: int = MAX_TARGETS) -> list[str]:
        """The addresses of ``targets`` that may be probed, refusing any outside the scope.

        Network and broadcast addresses of the given CIDRs stay in (a /31 or a device that
        answers on them is real); excluded addresses are dropped silently because the
        operator asked for that; anything outside ``include`` is an error, so a scan never
        quietly shrinks to less than what was asked.
        """
        outside = targets - self.include
        if outside:
            first = next(iter(outside.iter_cidrs()))
            raise OutOfScope(f"{first} is outside the configured scope")
        allowed = targets - self.exclude
        if allowed.size > limit:
            raise ScopeError(f"{allowed.size} addresses to probe, more than the limit of {limit}")
        return [str(ip) for ip in _iter(allowed)]


def _iter(ipset: IPSet) -> Iterator[IPAddress]:
    for cidr in ipset.iter_cidrs():
        yield from cidr


def scope_and_targets(network: str, scope: Sequence[str], exclude: Sequence[str],
                      exclude_macs: Sequence[str], targets: Sequence[str]
                      ) -> tuple[Scope, IPSet | None]:
    """A sensor's scope (default: its own subnet ``network``) and explicit targets, if any."""
    found = Scope.from_strings(scope or [network], exclude=exclude, exclude_macs=exclude_macs)
    return found, parse_targets(targets) if targets else None

"""Vendor from a MAC address's OUI, with the IEEE registry that netaddr carries."""

from __future__ import annotations

from functools import lru_cache

from netaddr import EUI, AddrFormatError, NotRegisteredError

LOCALLY_ADMINISTERED_BIT = 0x02  # second-lowest bit of the first octet (IEEE 802)
MULTICAST_BIT = 0x01


def normalise_mac(mac: str) -> str:
    """``00-1B-1B-AA-BB-CC`` or ``001b.1baa.bbcc`` to ``00:1b:1b:aa:bb:cc``."""
    try:
        value = EUI(mac)
    except (AddrFormatError, TypeError, ValueError):
        raise ValueError(f"{mac!r} is not a MAC address") from None
    return str(value).replace("-", ":").lower()


def is_locally_administered(mac: str) -> bool:
    """A randomised or locally assigned MAC: its OUI names no vendor."""
    return bool(int(normalise_mac(mac)[:2], 16) & LOCALLY_ADMINISTERED_BIT)


@lru_cache(maxsize=4096)
def vendor(mac: str) -> str | None:
    """The organisation the MAC's OUI is registered to, or None (random or unregistered)."""
    if is_locally_administered(mac):
        return None
    try:
        return str(EUI(mac).oui.registration().org).strip() or None
    except (NotRegisteredError, AddrFormatError, IndexError):
        return None

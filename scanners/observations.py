"""What scanners produce: typed, immutable observations of one address or one port.

Scanners import neither ``agent`` nor ``central``; the agent turns these into wire assets.
"""

from __future__ import annotations

from dataclasses import dataclass

from fingerprints.observation import CLAIM_KEY, DEFAULT_GATEWAY, ROLE_KEY

__all__ = ["CLAIM_KEY", "DEFAULT_GATEWAY", "ROLE_KEY", "HostReply", "PortResult", "ServiceInfo"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HostReply:
    """An address that answered a discovery probe."""

    ip: str
    source: str  # "arp" or "icmp"
    rtt_s: float
    mac: str | None = None  # only ARP sees the link-layer address


@dataclass(frozen=True, slots=True, kw_only=True)
class PortResult:
    """The state of one port of one address after a probe."""

    ip: str
    port: int
    proto: str  # "tcp" or "udp"
    state: str  # "open", "closed", "filtered", "open|filtered"
    rtt_s: float | None = None
    banner: bytes | None = None  # what the service said first, bounded by the prober


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceInfo:
    """What service detection named on one open port."""

    ip: str
    port: int
    proto: str
    name: str | None = None
    product: str | None = None
    version: str | None = None
    extrainfo: str | None = None
    devicetype: str | None = None  # nmap's d/ for the line that matched ('webcam', 'printer')
    ostype: str | None = None  # nmap's o/ for it ('Linux', 'Windows', 'IOS')
    cpe: tuple[str, ...] = ()

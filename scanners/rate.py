"""Packet rate limits: a global budget and one per host, as token buckets.

Defaults follow the spirit of what fragile networks tolerate: 1000 packets per second in
all, 40 per second to any one host. A sweep sends one packet per host per round, so the
global bucket paces it; a port probe sends many packets to one host, so the per-host bucket
keeps one embedded device from being flooded.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

DEFAULT_GLOBAL_PPS = 1000.0  # packets per second, all targets together
DEFAULT_HOST_PPS = 40.0  # packets per second to one host
BURST_S = 0.01  # a bucket holds at most this many seconds' worth of tokens


@dataclass(slots=True)
class TokenBucket:
    """Tokens accrue at ``rate`` per second up to ``burst``; one token is one packet."""

    rate: float
    burst: float = 0.0
    _tokens: float = field(init=False, default=0.0)
    _stamp: float = field(init=False, default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.rate <= 0:
            msg = f"rate must be positive, got {self.rate}"
            raise ValueError(msg)
        if self.burst <= 0:
            self.burst = max(1.0, self.rate * BURST_S)
        self._tokens = self.burst  # a new bucket starts full

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    def take(self, now: float | None = None) -> float:
        """Take one token if there is one and return 0, else return the seconds to wait."""
        self._refill(time.monotonic() if now is None else now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate

    def available(self, now: float | None = None) -> int:
        self._refill(time.monotonic() if now is None else now)
        return int(self._tokens)


@dataclass(slots=True)
class RateLimiter:
    """A global bucket plus one bucket per host, created on first use."""

    global_pps: float = DEFAULT_GLOBAL_PPS
    host_pps: float = DEFAULT_HOST_PPS
    _global: TokenBucket = field(init=False)
    _hosts: dict[str, TokenBucket] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._global = TokenBucket(self.global_pps)

    def _host(self, host: str) -> TokenBucket:
        bucket = self._hosts.get(host)
        if bucket is None:
            bucket = self._hosts[host] = TokenBucket(self.host_pps, burst=min(4.0, self.host_pps))
        return bucket

    def try_take(self, host: str) -> float:
        """Take a token for one packet to ``host``; 0 if sent now, else seconds to wait."""
        now = time.monotonic()
        host_bucket = self._host(host)
        wait = host_bucket.take(now)
        if wait:
            return wait
        wait = self._global.take(now)
        if wait:
            host_bucket._tokens += 1.0  # give back: the packet was not sent
        return wait

    def wait_sync(self, host: str) -> None:
        """Block until a packet to ``host`` may be sent (for sender threads)."""
        while (wait := self.try_take(host)) > 0:
            time.sleep(wait)

    async def wait(self, host: str) -> None:
        """Wait, without blocking the loop, until a packet to ``host`` may be sent."""
        while (wait := self.try_take(host)) > 0:
            await asyncio.sleep(wait)

"""Probes leave by the segment under test, never by a management route.

A field sensor often has a second interface into the management network (that is how it
reaches the broker). Left to the kernel's routing table, a probe to a management address
would leave by that interface and "reach" the management zone directly: a false flow that
hides the real ones. Every socket a scanner opens goes through here, and while a scan runs
``with scanning_on("eth0"):`` each is bound to that interface with ``SO_BINDTODEVICE``: the
routing lookup is confined to routes via it (its own subnet, and its default gateway).

The interface travels in a context variable, so the asyncio tasks and worker threads a scan
starts inherit it. Binding needs CAP_NET_RAW, which a sensor has; when it cannot be done,
the probe is refused rather than sent along another route.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

_INTERFACE: ContextVar[str | None] = ContextVar("netvagt_scan_interface", default=None)
_P = TypeVar("_P", bound=asyncio.DatagramProtocol)


class BindError(OSError):
    """A probe socket could not be bound to the scan interface; nothing was sent."""


@contextmanager
def scanning_on(interface: str | None) -> Iterator[None]:
    """Bind every probe opened inside the block to ``interface`` (None: the kernel's route)."""
    token = _INTERFACE.set(interface)
    try:
        yield
    finally:
        _INTERFACE.reset(token)


def interface() -> str | None:
    return _INTERFACE.get()


def bind(sock: socket.socket) -> socket.socket:
    """Bind ``sock`` to the scan interface, if a scan set one; closes it on failure."""
    name = _INTERFACE.get()
    if name is None:
        return sock
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, name.encode() + b"\0")
    except OSError as exc:
        sock.close()
        raise BindError(exc.errno, f"cannot bind a probe to {name}: {exc.strerror} (the sensor "
                        "needs CAP_NET_RAW; without it no probe is sent)") from None
    return sock


def new_socket(family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM,
               proto: int = 0) -> socket.socket:
    """A socket bound to the scan interface (see :func:`bind`)."""
    return bind(socket.socket(family, kind, proto))


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


async def open_connection(host: str, port: int, **kwargs: Any
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``asyncio.open_connection`` on a socket bound to the scan interface."""
    sock = new_socket(_family(host))
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock, **kwargs)


async def datagram_endpoint(factory: Callable[[], _P], remote: tuple[str, int]
                            ) -> tuple[asyncio.DatagramTransport, _P]:
    """A connected UDP endpoint on a socket bound to the scan interface."""
    sock = new_socket(_family(remote[0]), socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        sock.connect(remote)
    except BaseException:
        sock.close()
        raise
    return await asyncio.get_running_loop().create_datagram_endpoint(factory, sock=sock)


def create_connection(address: tuple[str, int], timeout: float) -> socket.socket:
    """A blocking TCP connection bound to the scan interface (for paramiko's key exchange)."""
    sock = new_socket(_family(address[0]))
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def multicast_exchange(own_ip: str, group: str, port: int, messages: list[bytes], *,
                       wait_s: float, max_answers: int, max_bytes: int
                       ) -> list[tuple[str, bytes]]:
    """Send ``messages`` to a multicast group on this segment only (TTL 1, from ``own_ip``)
    and collect the unicast answers for ``wait_s``: (sender, datagram), at most
    ``max_answers`` of at most ``max_bytes`` each. Blocking: run it in a thread."""
    sock = new_socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)  # this segment only
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(own_ip))
        sock.bind((own_ip, 0))
        for message in messages:
            sock.sendto(message, (group, port))
        answers: list[tuple[str, bytes]] = []
        deadline = time.monotonic() + wait_s
        while len(answers) < max_answers and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data, (ip, _port) = sock.recvfrom(max_bytes)
            except TimeoutError:
                break
            answers.append((ip, data))
        return answers
    finally:
        sock.close()

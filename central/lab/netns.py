"""Linux network namespaces for the lab: create, wire, enter, and remove them.

Everything the lab builds lives in namespaces it created itself, joined by veth pairs and
bridges that live in those namespaces too: nothing is added to the root namespace, and no
namespace has a route to the host's network.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"


class LabError(RuntimeError):
    """The lab could not be built: not root, a command missing, or a command failed."""


def ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    argv = ["ip"] + (["-n", ns] if ns else []) + list(args)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(argv)}: {result.stderr.strip()}")
    return result.stdout


def run_in(ns: str, argv: Sequence[str], *, check: bool = True, input: str | None = None) -> str:
    full = ["ip", "netns", "exec", ns, *argv]
    result = subprocess.run(full, capture_output=True, text=True, timeout=60, input=input)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(full)}: {result.stderr.strip()}")
    return result.stdout


def add(ns: str) -> None:
    ip("netns", "add", ns)
    ip("link", "set", "lo", "up", ns=ns)


def delete(ns: str) -> None:
    ip("netns", "delete", ns, check=False)


def existing(prefix: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def sysctl(ns: str, key: str, value: str, *, check: bool = True) -> None:
    """Set a kernel setting inside a namespace; ``check=False``: where the kernel has it."""
    run_in(ns, ["sysctl", "-qw", f"{key}={value}"], check=check)


_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextmanager
def entered(ns: str) -> Iterator[None]:
    """Run the body with this thread inside namespace ``ns``; sockets made there stay there."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(os.path.join(NETNS_DIR, ns), os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)

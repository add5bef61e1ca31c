"""The console started for a test, a benchmark or a look: ``netvagt-central web`` as its own
process on a free loopback port, until the block ends (then stopped by its PID)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from central.lab.broker import free_port
from central.lab.netns import LabError
from central.lab.topology import stop_process

READY_TIMEOUT_S = 15.0


@contextmanager
def running(db_path: Path, policies: list[Path] | tuple[Path, ...] = ()) -> Iterator[str]:
    """The console on ``db_path`` (and these zone policies); yields its address."""
    port = free_port()
    args = [sys.executable, "-m", "central.cli", "web", "--db", str(db_path), "--host",
            "127.0.0.1", "--port", str(port), "--insecure-cookies"]
    for policy in policies:
        args += ["--policy", str(policy)]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if server.poll() is not None:
                raise LabError("netvagt-central web ended: " + (
                    server.stderr.read().decode(errors="replace")[-2000:] if server.stderr else ""))
            try:
                with urllib.request.urlopen(base + "/login", timeout=1):  # noqa: S310 - loopback
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise LabError(f"netvagt-central web did not answer on {base}") from None
                time.sleep(0.1)
        yield base
    finally:
        stop_process(server)

"""A Mosquitto broker started for the lab, the demo or a test: own config, own port, own PID."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from central.lab.netns import LabError
from central.lab.topology import stop_process

READY_TIMEOUT_S = 10.0


def free_port() -> int:
    """A TCP port free on loopback now (the broker binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mosquitto_path() -> str:
    for candidate in ("mosquitto", "/usr/sbin/mosquitto"):
        found = shutil.which(candidate)
        if found:
            return found
    raise LabError("mosquitto is not installed (apt-get install mosquitto)")


@dataclass(slots=True)
class Mosquitto:
    """``with Mosquitto(port=...) as broker:``; inside a namespace when ``ns`` is given."""

    port: int = field(default_factory=free_port)
    bind: Sequence[str] = ("127.0.0.1",)
    ns: str | None = None
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="netvagt-mqtt-")))
    persistence: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def write_config(self) -> None:
        lines = [
            "per_listener_settings false",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "max_inflight_messages 100",
            "max_queued_messages 100000",
            "message_size_limit 1048576",
        ]
        for address in self.bind:
            lines.append(f"listener {self.port} {address}")
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        self.write_config()
        argv = [mosquitto_path(), "-c", str(self.config_path)]
        if self.ns:
            argv = ["ip", "netns", "exec", self.ns, *argv]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        probe = ["bash", "-c", f"exec 3<>/dev/tcp/{self.bind[0]}/{self.port}"]
        if self.ns:
            probe = ["ip", "netns", "exec", self.ns, *probe]
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise LabError(f"mosquitto exited: {err.strip()[-1000:]}")
            if subprocess.run(probe, capture_output=True).returncode == 0:
                return
            time.sleep(0.05)
        raise LabError(f"mosquitto did not listen on port {self.port} within {READY_TIMEOUT_S} s")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

"""A Mosquitto broker started for the lab, the demo or a test: own config, own port, own PID."""

from __future__ import annotations

import os
import pwd
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


def _hand_to_broker_user(workdir: Path) -> None:
    """Started as root, mosquitto drops to its own user: let that user read and write the
    plugin's state (it saves every change), and nobody else."""
    try:
        owner = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    for path in (workdir, *workdir.iterdir()):
        os.chown(path, owner.pw_uid, owner.pw_gid)


def dynsec_plugin_path() -> str:
    """Mosquitto's dynamic security plugin, wherever the distribution put it."""
    candidates = [*sorted(Path("/usr/lib").glob("*/mosquitto_dynamic_security.so")),
                  Path("/usr/lib/mosquitto_dynamic_security.so")]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    raise LabError("mosquitto's dynamic security plugin is missing (apt-get install mosquitto)")


def mosquitto_path() -> str:
    for candidate in ("mosquitto", "/usr/sbin/mosquitto"):
        found = shutil.which(candidate)
        if found:
            return found
    raise LabError("mosquitto is not installed (apt-get install mosquitto)")


# The broker's resource limits, as packaging/mosquitto-netvagt.conf ships them (a test holds
# the two equal). A message is at most 512 KiB (a findings message 256 KiB signed); the
# central's queue while it is away is bounded in messages and in bytes: a sensor holder who
# floods findings while the central is down fills 256 MiB and no more (the sensors keep
# every finding until the central's signed acknowledgement, so a message the broker drops is
# sent again). Not memory_limit: with Mosquitto 2.0.11 and dynamic security, a broker under
# a 1 GiB limit stopped answering the central's administration after a few enrolments
# (tests/lab/test_enrollment.py failed with it, and passes without).
LIMITS = {
    "max_inflight_messages": 100,
    "max_queued_messages": 100_000,
    "max_queued_bytes": 256 * 1024 * 1024,
    "message_size_limit": 512 * 1024,
}


@dataclass(slots=True)
class Mosquitto:
    """``with Mosquitto(port=...) as broker:``; inside a namespace when ``ns`` is given."""

    port: int = field(default_factory=free_port)
    bind: Sequence[str] = ("127.0.0.1",)
    ns: str | None = None
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="netvagt-mqtt-")))
    persistence: bool = False
    # with an admin user, the broker authenticates and authorises through Mosquitto's
    # dynamic security plugin (no anonymous access), administered over MQTT by the central
    dynsec_admin: tuple[str, str] | None = None
    # (cafile, certfile, keyfile): the listener speaks TLS only
    tls: tuple[Path, Path, Path] | None = None
    plain_ports: tuple[int, ...] = ()  # more listeners on the first address, without TLS
    process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def write_config(self) -> None:
        lines = ["per_listener_settings false"]
        if self.dynsec_admin is not None:
            dynsec = self.workdir / "dynamic-security.json"
            if not dynsec.exists():
                user, password = self.dynsec_admin
                subprocess.run(["mosquitto_ctrl", "dynsec", "init", str(dynsec), user, password],
                               check=True, capture_output=True)
            lines += [f"plugin {dynsec_plugin_path()}", f"plugin_opt_config_file {dynsec}"]
        else:
            lines.append("allow_anonymous true")
        lines += [
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            *(f"{name} {value}" for name, value in LIMITS.items()),
        ]
        for address in self.bind:
            lines.append(f"listener {self.port} {address}")
            if self.tls is not None:
                # copies the broker's own user can read, whatever the originals' folders allow
                copies = []
                for source, name in zip(self.tls, ("ca.crt", "broker.crt", "broker.key"),
                                        strict=True):
                    shutil.copyfile(source, self.workdir / name)
                    copies.append(self.workdir / name)
                lines += [f"cafile {copies[0]}", f"certfile {copies[1]}", f"keyfile {copies[2]}"]
        lines += [f"listener {port} {self.bind[0]}" for port in self.plain_ports]
        self.config_path.write_text("\n".join(lines) + "\n")
        if os.geteuid() == 0:
            _hand_to_broker_user(self.workdir)

    def start(self) -> None:
        self.write_config()
        argv = [mosquitto_path(), "-c", str(self.config_path)]
        if self.ns:
            argv = ["ip", "netns", "exec", self.ns, *argv]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        probe = ["bash", "-c", f"exec 3<>/dev/tcp/{self.bind[0]}/{self.port}"]  # TCP accept only
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

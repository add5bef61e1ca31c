"""``netvagt-agent doctor``: is this sensor ready? Each check says what is wrong and the
command that fixes it."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.config import AgentConfig

CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
BROKER_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    warning: bool = False  # a doubt, not a failure


def _capabilities() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def check_config(path: Path) -> tuple[Check, AgentConfig | None]:
    from agent.config import ConfigError, load

    try:
        config = load(path)
    except ConfigError as exc:
        return Check(name="configuration", ok=False, detail=str(exc),
                     fix="sudo netvagt-agent enroll --central HOST --token TOKEN "
                         f"--config {path}"), None
    where = " / ".join(x for x in (config.org, config.site, config.zone) if x)
    return Check(name="configuration", ok=True,
                 detail=f"{path}: sensor {config.sensor} in {where}"), config


def check_interface(name: str | None) -> Check:
    from scanners.netinfo import InterfaceError, interface

    try:
        iface = interface(name)
    except InterfaceError as exc:
        return Check(name="interface", ok=False, detail=str(exc),
                     fix="set [scan] interface in the configuration, or: "
                         f"sudo ip link set {name or 'eth0'} up")
    return Check(name="interface and segment", ok=True,
                 detail=f"{iface.name} {iface.ip} in segment {iface.cidr} (MAC {iface.mac})")


def check_trunk(config: AgentConfig) -> list[Check]:
    """A trunk sensor: the trunk is up, and each VLAN says how it is reached (a
    sub-interface with its address, or tagged frames on the trunk)."""
    from agent import vlans
    from scanners.netinfo import _ip_json

    name = config.interface or ""
    links = _ip_json("link", "show", "dev", name) if Path(f"/sys/class/net/{name}").exists() \
        else []
    if not links or "UP" not in (links[0].get("flags") or []):
        return [Check(name="trunk", ok=False, detail=f"trunk interface {name!r} is missing or down",
                      fix=f"sudo ip link set {name or 'eth0'} up, or set [scan] interface")]
    checks = [Check(name="trunk", ok=True, detail=f"{name} up, {len(config.vlans)} VLAN(s)")]
    for vlan in config.vlans:
        sub = vlans.sub_interface(config, vlan)
        label = f"VLAN {vlan.id}" + (f" ({vlan.zone})" if vlan.zone else "")
        if sub is not None:
            checks.append(Check(name=label, ok=True, detail=f"sub-interface {sub.name} "
                                f"{sub.ip} in {sub.cidr}: every scanner works on it"))
        else:
            checks.append(Check(name=label, ok=True, warning=True,
                                detail=f"tagged frames on {name} from {vlan.address}: "
                                       "discovery, open ports and probe plans; services named "
                                       "by port only",
                                fix="sudo netvagt-agent vlans --apply (where the kernel has "
                                    "802.1Q)"))
    return checks


def check_capabilities() -> Check:
    caps = _capabilities()
    missing = [n for n, bit in (("CAP_NET_RAW", CAP_NET_RAW), ("CAP_NET_ADMIN", CAP_NET_ADMIN))
               if not caps >> bit & 1]
    if missing:
        return Check(name="capabilities", ok=False, detail=f"missing {', '.join(missing)}",
                     fix="run as root (sudo), or as the service from "
                         "packaging/netvagt-agent.service, which grants exactly these")
    return Check(name="capabilities", ok=True, detail="CAP_NET_RAW and CAP_NET_ADMIN")


def check_nmap() -> Check:
    path = shutil.which("nmap")
    if path is None:
        return Check(name="nmap", ok=False, detail="not installed",
                     fix="sudo apt-get install nmap")
    version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    first = (version.stdout.splitlines() or ["nmap"])[0]
    return Check(name="nmap", ok=True, detail=first)


def check_clock() -> Check:
    if shutil.which("timedatectl"):
        result = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                                capture_output=True, text=True, timeout=10)
        if result.stdout.strip() == "yes":
            return Check(name="clock", ok=True, detail="synchronised (NTP)")
        if result.returncode == 0 and result.stdout.strip() == "no":
            return Check(name="clock", ok=False, detail="not synchronised: timestamps and "
                         "token expiry depend on it", fix="sudo timedatectl set-ntp true")
    if Path("/run/systemd/timesync/synchronized").exists():
        return Check(name="clock", ok=True, detail="synchronised (systemd-timesyncd)")
    return Check(name="clock", ok=True, warning=True,
                 detail="synchronisation unknown (no timedatectl here)",
                 fix="sudo apt-get install systemd-timesyncd")


def check_keys(config: object) -> list[Check]:
    from agent import signing
    from agent.config import AgentConfig, ConfigError

    assert isinstance(config, AgentConfig)
    checks = []
    try:
        signing.load_private_key(config.key)
        mode = config.key.stat().st_mode & 0o777
        checks.append(Check(name="sensor key", ok=mode & 0o077 == 0,
                            detail=f"{config.key} (mode {mode:o})",
                            fix=f"sudo chmod 600 {config.key}"))
    except (OSError, signing.SignatureError, ValueError) as exc:
        checks.append(Check(name="sensor key", ok=False, detail=str(exc),
                            fix="sudo netvagt-agent enroll --central HOST --token TOKEN"))
    try:
        config.load_central_key()
        checks.append(Check(name="central key", ok=True, detail=str(config.central_key)))
    except ConfigError as exc:
        checks.append(Check(name="central key", ok=False, detail=str(exc),
                            fix="netvagt-central key > central.jwk, on the central"))
    return checks


def check_broker(config: object) -> Check:
    import aiomqtt

    from agent.config import AgentConfig, ConfigError
    from agent.publish import is_refused

    assert isinstance(config, AgentConfig)
    where = f"{config.broker_host}:{config.broker_port}"

    async def connect() -> None:
        async with aiomqtt.Client(config.broker_host, config.broker_port,
                                  username=config.broker_username,
                                  password=config.broker_password(),
                                  identifier=config.client_id,  # the login is bound to it
                                  protocol=aiomqtt.ProtocolVersion.V5,
                                  timeout=BROKER_TIMEOUT_S, tls_context=config.tls_context()):
            pass

    try:
        asyncio.run(asyncio.wait_for(connect(), BROKER_TIMEOUT_S * 2))
    except ConfigError as exc:
        return Check(name="broker", ok=False, detail=str(exc), fix="enroll again")
    except aiomqtt.MqttError as exc:
        if is_refused(exc):
            return Check(name="broker", ok=False, detail=f"{where} refused the login: {exc}",
                         fix="the sensor may be revoked: ask the central team for a new token")
        return Check(name="broker", ok=False, detail=f"{where} unreachable: {exc}",
                     fix=f"check the route and firewall to {where} (tcp)")
    except (TimeoutError, OSError) as exc:
        return Check(name="broker", ok=False, detail=f"{where} unreachable: {exc}",
                     fix=f"check the route and firewall to {where} (tcp)")
    return Check(name="broker", ok=True, detail=f"{where}, authenticated as "
                 f"{config.broker_username or '(anonymous)'}")


def check_outbox(config: object) -> Check:
    from agent.config import AgentConfig
    from agent.outbox import Outbox

    assert isinstance(config, AgentConfig)
    if not config.outbox_path.exists():
        return Check(name="outbox", ok=True, detail="empty (no scan yet)")
    with Outbox(config.outbox_path) as outbox:
        depth, size, limit = outbox.depth(), outbox.size_bytes(), outbox.limit_bytes
    full = size > limit
    return Check(name="outbox", ok=not full, warning=depth > 0 and not full,
                 detail=f"{depth} message(s) waiting, {size} of {limit} bytes",
                 fix="scanning is paused until the central acknowledges: "
                     "check the broker check above, then: sudo netvagt-agent flush"
                 if depth else "")


def check_fingerprints() -> Check:
    """Which fingerprint databases are loaded, with their releases; none is a warning."""
    from fingerprints.databases import installed, store
    from fingerprints.nmap_probes import release as nmap_release

    found = installed()
    nmap = f"; nmap-service-probes {nmap_release()}" if nmap_release() else \
        "; no nmap-service-probes (apt-get install nmap)"
    if not found:
        return Check(name="fingerprints", ok=True, warning=True,
                     detail=f"built-in rules only: no recog database in {store()}{nmap}",
                     fix="sudo netvagt-agent fingerprints import DIR (a copy of recog "
                         "v3.1.28), or sudo ./install.sh --sensor with network access")
    return Check(name="fingerprints", ok=True,
                 detail="; ".join(f"built-in rules + {d.name} {d.release} "
                                  f"({d.fingerprints} fingerprints)" for d in found) + nmap)


def run_checks(config_path: Path) -> list[Check]:
    first, config = check_config(config_path)
    checks = [first]
    steps: list[Callable[[], Check | list[Check]]] = [
        (lambda: check_trunk(config)) if config is not None and config.vlans else
        lambda: check_interface(getattr(config, "interface", None)),
        check_capabilities,
        check_nmap,
        check_clock,
        check_fingerprints,
    ]
    if config is not None:
        steps += [lambda: check_keys(config), lambda: check_broker(config),
                  lambda: check_outbox(config)]
    for step in steps:
        result = step()
        checks.extend(result if isinstance(result, list) else [result])
    return checks


def is_root() -> bool:
    return os.geteuid() == 0

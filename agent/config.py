"""The sensor's configuration file (TOML), checked when it is loaded.

Example::

    [sensor]
    id = "s-admin"
    org = "aarhus"
    key = "/var/lib/netvagt/sensor.key"
    state_dir = "/var/lib/netvagt"

    [broker]
    host = "central.example.dk"
    port = 1883

    [central]
    public_key = "/etc/netvagt/central.jwk"   # netvagt-central key prints it

    [scan]
    interface = "eth0"          # default: the interface of the default route
    profile = "standard"        # safe | standard | deep
    scope = ["10.20.10.0/24"]   # default: the interface's subnet
    exclude = ["10.20.10.50"]   # never receives a packet
    exclude_macs = ["00:80:f4"]
    targets = []                # routed ranges to sweep by ICMP, within scope

    [schedule]
    cron = "0 1 * * *"          # nightly at 01:00 local time ...
    jitter_s = 10800            # ... plus this sensor's own offset within 3 hours
    quiet_hours = "07:00-17:00" # never start a scan inside these hours
    max_duration_s = 14400      # a scan still running after this is stopped

A sensor on a trunk port covers several VLANs, each its own segment and zone::

    [scan]
    interface = "eth0"          # the trunk

    [[scan.vlans]]
    id = 110
    zone = "elev"               # the policy's zone this VLAN is
    address = "10.21.10.249/24" # the sensor's own address in it
    gateway = "10.21.10.1"      # the VLAN's router: probes to other zones go there
"""

from __future__ import annotations

import ssl
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agent import wire
from agent.schedule import Schedule, ScheduleError
from scanners.ports import DEFAULT_PROFILE, PROFILES

if TYPE_CHECKING:
    from joserfc.jwk import OKPKey


class ConfigError(ValueError):
    """The configuration file is missing, not TOML, or holds a wrong value."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VlanConfig:
    """One VLAN on the sensor's trunk port: its own segment, with the sensor's address in it."""

    id: int
    address: str  # with its prefix length: "10.21.10.249/24"
    gateway: str | None = None
    zone: str | None = None
    targets: tuple[str, ...] = ()  # routed ranges to sweep by ICMP from this VLAN

    def __post_init__(self) -> None:
        from netaddr import AddrFormatError, IPAddress, IPNetwork

        if not isinstance(self.id, int) or not 1 <= self.id <= 4094:
            raise ConfigError(f"[[scan.vlans]] id {self.id!r} is not a VLAN id (1 to 4094)")
        try:
            net = IPNetwork(self.address)
            valid = "/" in self.address and net.version == 4
        except (AddrFormatError, ValueError, TypeError):
            valid = False
        if not valid:
            raise ConfigError(f"[[scan.vlans]] {self.id}: address {self.address!r} must be the "
                              "sensor's IPv4 address with its prefix, like 10.21.10.249/24")
        try:
            inside = self.gateway is None or IPAddress(self.gateway) in net
        except (AddrFormatError, ValueError, TypeError):
            inside = False
        if not inside:
            raise ConfigError(f"[[scan.vlans]] {self.id}: gateway {self.gateway!r} is not an "
                              f"address in {net.cidr}")

    def sub_interface(self, parent: str) -> str:
        """The kernel's name for this VLAN on ``parent`` (``eth0.110``)."""
        return f"{parent}.{self.id}"[:15]


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    sensor: str
    org: str
    key: Path
    state_dir: Path
    broker_host: str
    site: str | None = None  # as the central registered it (informational)
    zone: str | None = None
    broker_port: int = 1883
    broker_username: str | None = None
    # the MQTT client id; the central binds each enrolled login to its own (enroll writes it)
    broker_client_id: str | None = None
    broker_password_file: Path | None = None  # written by enroll, readable by the service only
    broker_ca_file: Path | None = None  # with it, the broker connection is TLS, verified by this CA
    central_key: Path | None = None  # the central's public JWK: acknowledgements verify with it
    delivery_timeout_s: float = 120.0  # how long one run waits for acknowledgements
    resend_s: float = 10.0  # send a message again when its acknowledgement is this late
    interface: str | None = None
    profile: str = DEFAULT_PROFILE
    scope: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    exclude_macs: tuple[str, ...] = ()
    targets: tuple[str, ...] = field(default_factory=tuple)
    snmp_communities: tuple[str, ...] = ("public",)  # SNMP v2c, read-only; never in 'safe'
    schedule: Schedule = field(default_factory=Schedule)
    heartbeat_s: float = 60.0  # status is published this often, and on every change
    outbox_limit_bytes: int = 64 * 1024 * 1024  # past this, scanning pauses; nothing is dropped
    vlans: tuple[VlanConfig, ...] = ()  # a trunk port: each VLAN its own segment

    def __post_init__(self) -> None:
        for name in ("sensor", "org"):
            if not wire.is_valid_id(getattr(self, name)):
                raise ConfigError(f"[sensor] {name} must match [a-z0-9][a-z0-9_-]{{0,62}}")
        if self.profile not in PROFILES:
            raise ConfigError(f"[scan] profile {self.profile!r} is not one of {sorted(PROFILES)}")
        if not 0 < self.broker_port < 65536:
            raise ConfigError(f"[broker] port {self.broker_port} is not a TCP port")
        ids = [v.id for v in self.vlans]
        if len(set(ids)) < len(ids):
            raise ConfigError("[[scan.vlans]]: a VLAN id is listed twice")
        if self.vlans and not self.interface:
            raise ConfigError("[scan] interface must name the trunk when [[scan.vlans]] are set")

    def vlan_for_zone(self, zone: str) -> VlanConfig | None:
        """The VLAN that is ``zone`` (a probe plan names the zone it is for)."""
        return next((v for v in self.vlans if v.zone == zone), None)

    @property
    def client_id(self) -> str:
        return self.broker_client_id or f"netvagt-{self.sensor}"

    @property
    def outbox_path(self) -> Path:
        return self.state_dir / "outbox.sqlite"

    def tls_context(self) -> ssl.SSLContext | None:
        """A context that verifies the broker against the configured CA (and its name)."""
        if self.broker_ca_file is None:
            return None
        try:
            return ssl.create_default_context(cafile=str(self.broker_ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"[broker] ca_file: {self.broker_ca_file}: {exc}") from None

    def broker_password(self) -> str | None:
        if self.broker_password_file is None:
            return None
        try:
            return self.broker_password_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"[broker] password_file: {exc}") from None

    def load_central_key(self) -> OKPKey:
        """The central's public key, or a clear error saying how to get it."""
        from agent import signing

        if self.central_key is None:
            raise ConfigError("[central] public_key is not set: copy the output of "
                              "'netvagt-central key' to a file and name it there")
        try:
            return signing.public_key_from_jwk(self.central_key.read_text())
        except FileNotFoundError:
            raise ConfigError(f"[central] public_key: {self.central_key} does not exist") from None
        except (ValueError, signing.SignatureError) as exc:
            raise ConfigError(f"[central] public_key: {self.central_key}: {exc}") from None


# Every setting the file may hold: a misspelt one ('exlude') must not silently drop what it
# meant (the exclusion list is the promise that those addresses get no packet).
KNOWN_KEYS: dict[str, frozenset[str]] = {
    "sensor": frozenset({"id", "org", "site", "zone", "key", "state_dir", "outbox_limit_mb"}),
    "broker": frozenset({"host", "port", "username", "password_file", "ca_file", "client_id"}),
    "central": frozenset({"public_key", "delivery_timeout_s", "resend_s", "heartbeat_s"}),
    "scan": frozenset({"interface", "profile", "scope", "exclude", "exclude_macs", "targets",
                       "snmp_communities", "vlans"}),
    "schedule": frozenset({"cron", "jitter_s", "quiet_hours", "max_duration_s"}),
}


def _line_of(text: str, section: str | None, key: str) -> int:
    """The line where ``key`` is set in ``[section]`` (a top-level key: section None), or 0."""
    current: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            current = stripped.strip("[] \t").split("]")[0].strip()
        elif current == section and stripped.split("=", 1)[0].strip().strip('"\'') == key:
            return number
    return 0


def unknown_keys(text: str, data: dict[str, object], path: Path) -> list[str]:
    """One line per setting the file holds that this version does not know."""
    problems = []
    for section, values in data.items():
        if section not in KNOWN_KEYS:
            line = _line_of(text, None, section) or next(
                (n for n, t in enumerate(text.splitlines(), 1) if t.strip() == f"[{section}]"), 0)
            problems.append(f"{path}:{line}: unknown section [{section}] (known: "
                            f"{', '.join(sorted(KNOWN_KEYS))})")
            continue
        if not isinstance(values, dict):
            continue
        for key in values.keys() - KNOWN_KEYS[section]:
            problems.append(f"{path}:{_line_of(text, section, key)}: unknown setting {key!r} in "
                            f"[{section}] (known: {', '.join(sorted(KNOWN_KEYS[section]))})")
    return sorted(problems)


def load(path: Path) -> AgentConfig:
    try:
        text = path.read_text()
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (tomllib.TOMLDecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {str(exc)[:200] or type(exc).__name__}") from None
    problems = unknown_keys(text, data, path)
    if problems:
        raise ConfigError("\n".join(problems))
    sensor = data.get("sensor", {})
    broker = data.get("broker", {})
    scan = data.get("scan", {})
    central = data.get("central", {})
    schedule = data.get("schedule", {})
    try:
        return AgentConfig(
            sensor=sensor["id"],
            org=sensor["org"],
            site=sensor.get("site"),
            zone=sensor.get("zone"),
            key=Path(sensor.get("key", "/var/lib/netvagt/sensor.key")),
            state_dir=Path(sensor.get("state_dir", "/var/lib/netvagt")),
            broker_host=broker["host"],
            broker_port=int(broker.get("port", 1883)),
            broker_username=broker.get("username"),
            broker_client_id=broker.get("client_id"),
            broker_password_file=Path(broker["password_file"]) if "password_file" in broker
            else None,
            broker_ca_file=Path(broker["ca_file"]) if "ca_file" in broker else None,
            central_key=Path(central["public_key"]) if "public_key" in central else None,
            delivery_timeout_s=float(central.get("delivery_timeout_s", 120)),
            resend_s=float(central.get("resend_s", 10)),
            interface=scan.get("interface"),
            profile=scan.get("profile", DEFAULT_PROFILE),
            scope=tuple(scan.get("scope", ())),
            exclude=tuple(scan.get("exclude", ())),
            exclude_macs=tuple(scan.get("exclude_macs", ())),
            targets=tuple(scan.get("targets", ())),
            snmp_communities=tuple(scan.get("snmp_communities", ("public",))),
            schedule=Schedule(**schedule),
            heartbeat_s=float(central.get("heartbeat_s", 60)),
            outbox_limit_bytes=int(float(sensor.get("outbox_limit_mb", 64)) * 1024 * 1024),
            vlans=_vlans(scan.get("vlans", []), path),
        )
    except KeyError as exc:
        raise ConfigError(f"{path}: missing setting {exc.args[0]!r}") from None
    except (TypeError, ValueError, ScheduleError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


VLAN_KEYS = frozenset({"id", "address", "gateway", "zone", "targets"})


def _vlans(raws: object, path: Path) -> tuple[VlanConfig, ...]:
    if not isinstance(raws, list) or not all(isinstance(r, dict) for r in raws):
        raise ConfigError(f"{path}: [scan] vlans must be [[scan.vlans]] tables")
    out = []
    for raw in raws:
        unknown = set(raw) - VLAN_KEYS
        if unknown:
            raise ConfigError(f"{path}: unknown setting(s) {sorted(unknown)} in [[scan.vlans]] "
                              f"(known: {', '.join(sorted(VLAN_KEYS))})")
        if "id" not in raw or "address" not in raw:
            raise ConfigError(f"{path}: each [[scan.vlans]] needs an id and an address")
        out.append(VlanConfig(id=raw["id"], address=str(raw["address"]),
                              gateway=raw.get("gateway"), zone=raw.get("zone"),
                              targets=tuple(raw.get("targets", ()))))
    return tuple(out)

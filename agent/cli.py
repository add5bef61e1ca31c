"""``netvagt-agent``: the sensor's command line.

``scan`` is the technician's one-shot scan (no central needed); ``run`` scans and sends
signed findings to the central through the broker; ``keygen`` creates the sensor's key.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import ipaddress
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from agent import terminal

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.wire import Asset

log = logging.getLogger("netvagt.agent")

Handler = Callable[[argparse.Namespace], int]
EXIT_USAGE = 2
EXIT_FAILURE = 1

COMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("scan the local segment (or given targets) and print the assets found",
             "sudo netvagt-agent scan --interface eth0 --format json"),
    "run": ("scan on the schedule (or when the central asks) and send signed findings",
            "sudo netvagt-agent run --config /etc/netvagt/agent.toml --once"),
    "keygen": ("create the sensor's Ed25519 key and print its public JWK",
               "sudo netvagt-agent keygen --key /var/lib/netvagt/sensor.key > sensor.jwk"),
    "enroll": ("join the central with a one-time token: creates the key and the configuration",
               "sudo netvagt-agent enroll --central central.kommune.dk --token 3f2a...e1.Xk..."),
    "doctor": ("check interface, capabilities, nmap, clock, keys, broker and outbox; "
               "each problem with the command that fixes it",
               "sudo netvagt-agent doctor"),
    "flush": ("send what waits in the outbox, without scanning",
              "sudo netvagt-agent flush --config /etc/netvagt/agent.toml"),
    "reach": ("run a probe plan signed by the central (which other zones this segment can "
              "reach) and send the results",
              "sudo netvagt-agent reach --plan plan.jws --config /etc/netvagt/agent.toml"),
    "fingerprints": ("the fingerprint databases: status, import a release, update to another",
                     "sudo netvagt-agent fingerprints import /media/usb/recog-3.1.28"),
    "vlans": ("a trunk sensor's VLAN sub-interfaces from [[scan.vlans]]: print the "
              "configuration, or --apply it (needs the kernel's 802.1Q)",
              "sudo netvagt-agent vlans --apply"),
}
EXIT_REFUSED = 3  # a plan or command that does not verify


class _Bar:
    """A progress bar on stderr, shown only when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.progress: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        if enabled:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )

    def __enter__(self) -> _Bar:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def update(self, phase: str, done: int, total: int) -> None:
        if self.progress is None:
            return
        task = self.tasks.get(phase)
        if task is None:
            task = self.tasks[phase] = self.progress.add_task(phase, total=total)
        self.progress.update(task, completed=done, total=total)


# a capture's addresses, read without sending anything: every IPv4 address, and IPv6's
# global and unique local ones (a device's link-local address names it on no other link)
PCAP_SCOPE = ("0.0.0.0/0", "2000::/3", "fc00::/7")


def cmd_scan_pcap(args: argparse.Namespace) -> int:
    """Read a capture instead of the wire: passive parsers only, nothing is sent."""
    from agent.scan import build_assets
    from fingerprints.classify import names_a_device
    from scanners.observations import HostReply
    from scanners.passive import FrameStats, read_pcap
    from scanners.scope import Scope, ScopeError

    stats = FrameStats()
    try:
        scope = Scope.from_strings(args.scope or list(PCAP_SCOPE), exclude=args.exclude,
                                   exclude_macs=args.exclude_mac)
        with _Bar(sys.stderr.isatty() and not args.no_progress) as bar:
            heard = read_pcap(args.pcap, scope=scope, stats=stats, limit=args.max_frames,
                              telling=names_a_device,
                              progress=lambda done, size: bar.update("reading", done, size))
    except (ScopeError, OSError) as exc:
        print(f"netvagt-agent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # scapy raises its own kinds on a file that is not a capture
        print(f"netvagt-agent: {args.pcap}: not a readable capture ({exc})", file=sys.stderr)
        return EXIT_USAGE
    hosts, observed = {}, {}
    for host in heard.values():
        address = host.home(scope.allows) or host.automatic_address()
        if address is not None:
            hosts[address] = HostReply(ip=address, mac=host.mac, rtt_s=0.0, source="passive")
            observed[address] = host.said()
        for six in sorted(host.addresses6()):  # collect kept only in-scope IPv6 addresses
            hosts[six] = HostReply(ip=six, mac=host.mac, rtt_s=0.0, source="passive")
    assets = build_assets(hosts, [], [], observed)
    if stats.malformed:
        print(f"netvagt-agent: {stats.malformed} of {stats.read:,} frames were malformed and "
              "skipped", file=sys.stderr)
    if stats.other_links:
        print(f"netvagt-agent: {args.pcap}: frames of link type "
              f"{', '.join(map(str, sorted(stats.other_links)))} were skipped: only Ethernet, "
              "Linux cooked (tcpdump -i any) and decrypted Wi-Fi captures are read",
              file=sys.stderr)
    if args.max_frames is not None and stats.read >= args.max_frames:
        print(f"netvagt-agent: {args.pcap}: stopped after --max-frames {args.max_frames}; "
              "the rest of the capture was not read", file=sys.stderr)
    if stats.damaged_capture:
        print(f"netvagt-agent: {args.pcap}: damaged {stats.damaged_capture}; what came before "
              "is reported", file=sys.stderr)
    if args.format == "json":
        print(assets_json(assets))
    else:
        print_assets(assets, title=f"{len(assets)} assets heard in {args.pcap} "
                                   f"({stats.read:,} frames read)")
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    from agent.scan import scan

    if args.pcap is not None:
        return cmd_scan_pcap(args)
    from scanners.netinfo import InterfaceError, interface
    from scanners.ports import PROFILES
    from scanners.scope import ScopeError, scope_and_targets

    try:
        iface = interface(args.interface)
        scope, targets = scope_and_targets(
            iface.cidr, args.scope, args.exclude, args.exclude_mac, args.targets
        )
    except (InterfaceError, ScopeError) as exc:
        print(f"netvagt-agent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if os.geteuid() != 0:
        print("netvagt-agent: scanning needs root or CAP_NET_RAW (try: sudo netvagt-agent scan)",
              file=sys.stderr)
        return EXIT_USAGE
    show_bar = sys.stderr.isatty() and not args.no_progress
    try:
        with _Bar(show_bar) as bar:
            profile = PROFILES[args.profile]
            if args.listen is not None:
                profile = dataclasses.replace(profile, listen_s=max(0.0, args.listen))
            result = asyncio.run(
                scan(iface=iface, scope=scope, targets=targets,
                     profile=profile, progress=bar.update,
                     snmp_communities=tuple(args.snmp_community or ("public",)))
            )
    except ScopeError as exc:
        print(f"netvagt-agent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for warning in result.warnings:
        print(f"netvagt-agent: warning: {warning}", file=sys.stderr)
    if args.format == "json":
        print(assets_json(result.assets))
    else:
        print_assets(result.assets, title=f"{len(result.assets)} assets on {iface.name} "
                     f"({iface.cidr}) in {result.duration_s:.1f} s")
    return 0


def identities(assets: Sequence[Asset]) -> list[dict[str, object]]:
    """What the fingerprint rules make of each asset: of what its device said at all its
    addresses (one MAC: a dual-stack device's IPv6 address that only answered a ping is
    named by what its IPv4 address said), and its MAC."""
    from fingerprints.classify import classify_device

    said: dict[str, list[Any]] = {}
    for asset in assets:
        if asset.mac:
            said.setdefault(asset.mac, []).extend(asset.observations)
    return [classify_device(
        said[a.mac] if a.mac else a.observations,
        mac=a.mac, mac_random=a.mac_random, mac_vendor=a.mac_vendor).to_dict() for a in assets]


def assets_json(assets: Sequence[Asset]) -> str:
    return json.dumps([a.to_dict() | {"identity": identity}
                       for a, identity in zip(assets, identities(assets), strict=True)],
                      indent=2, ensure_ascii=False)


def print_assets(assets: Sequence[Asset], *, title: str) -> None:
    from agent import wire
    from agent.scan import heard_off_link

    table = terminal.table(title, ("address", "MAC", "vendor (OUI)", "type", "named by",
                                   "open ports", "services"))
    strangers = contested = unleased = 0
    for a, identity in zip(assets, identities(assets), strict=True):
        vendor = "(random MAC)" if a.mac_random else (a.mac_vendor or "")
        away = heard_off_link(a.observations)
        automatic = away and ipaddress.ip_address(a.ip).is_link_local
        strangers += away and not automatic
        unleased += automatic
        others = [o.value for o in a.observations if o.key == wire.CONFLICT_KEY]
        contested += bool(others)
        services = ", ".join(
            f"{s.port}/{s.proto} {s.name or ''} {s.product or ''} {s.version or ''}".strip()
            for s in a.services
        )
        table.add_row(
            escape(a.ip) + (" (automatic address only, on this wire)" if automatic
                             else " (another subnet, on this wire)" if away else "")
            + (f" (ARP from {escape(', '.join(others))} too)" if others else ""),
            escape(a.mac or "-"),
            escape(vendor),
            escape(str(identity.get("device_type", ""))),
            escape(str(identity.get("named_by") or "")),
            escape(" ".join(f"{s.port}/{s.proto}" for s in a.services)),
            escape(services),
        )
    terminal.console().print(table)
    if strangers:
        terminal.console().print(
            f"{strangers} address(es) of another subnet heard on this wire: a device in the "
            "wrong socket, or two subnets on one VLAN (not probed; the central reports the "
            "zones it joins)")
    if unleased:
        terminal.console().print(
            f"{unleased} device(s) with an automatic address only (169.254/16, fe80::/10): "
            "no DHCP server answered them, or their IPv4 is off (not probed)")
    if contested:
        terminal.console().print(
            f"{contested} address(es) another MAC also sends ARP from: a device spoofing it "
            "(if it is the gateway's, the segment's traffic may go to that device), or two "
            "devices on one address")


def cmd_keygen(args: argparse.Namespace) -> int:
    from agent import signing

    if args.key.exists():
        print(f"netvagt-agent: {args.key} exists; refusing to replace a sensor's key",
              file=sys.stderr)
        return EXIT_USAGE
    key = signing.generate_private_key()
    signing.save_private_key(key, args.key)
    print(json.dumps(signing.public_jwk(key)))
    return 0


def _load_config(path: Path) -> AgentConfig:
    from agent.config import load

    return load(path)


def cmd_run(args: argparse.Namespace) -> int:

    from agent.config import ConfigError

    try:
        config = _load_config(args.config)
    except ConfigError as exc:
        print(f"netvagt-agent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.once:
        from agent.outbox import Outbox
        from agent.publish import BrokerRefused
        from agent.run import run_once

        try:
            asyncio.run(run_once(config))
        except ConfigError as exc:
            print(f"netvagt-agent: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except BrokerRefused as exc:
            print(f"netvagt-agent: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        with Outbox(config.outbox_path) as outbox:
            waiting = outbox.depth()
        if waiting:
            print(f"netvagt-agent: {waiting} message(s) not yet acknowledged by the central; "
                  "they stay in the outbox (netvagt-agent flush sends them)", file=sys.stderr)
            return EXIT_FAILURE
        return 0
    from agent.daemon import run_daemon
    from agent.publish import BrokerRefused

    async def until_signalled() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_daemon(config, stop=stop)

    try:
        asyncio.run(until_signalled())
    except (ConfigError, BrokerRefused) as exc:
        print(f"netvagt-agent: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILURE
    return 0


def cmd_reach(args: argparse.Namespace) -> int:
    from agent.config import ConfigError
    from agent.outbox import Outbox
    from agent.publish import BrokerRefused
    from agent.reach import PlanRefused, run_plan, verify_plan
    from agent.run import flush
    from agent.wire import PROBE_STATES

    try:
        config = _load_config(args.config)
        central_key = config.load_central_key()
        tokens = [path.read_bytes()[: 2 * 1024 * 1024].strip() for path in args.plan]
    except (ConfigError, OSError) as exc:
        print(f"netvagt-agent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:  # every plan verified before any is run
        plans = [verify_plan(token, config=config, central_key=central_key) for token in tokens]
    except PlanRefused as exc:
        print(f"netvagt-agent: {exc}", file=sys.stderr)
        return EXIT_REFUSED

    async def go() -> int:
        with Outbox(config.outbox_path, limit_bytes=config.outbox_limit_bytes) as outbox:
            for plan in plans:  # a trunk sensor has one per VLAN: one after the other
                print(f"probe plan {plan.id}: {len(plan.targets)} targets in other zones, "
                      f"seen from zone {plan.zone}", file=sys.stderr)
                try:
                    with _Bar(sys.stderr.isatty()) as bar:
                        probes = await run_plan(
                            plan, config=config, outbox=outbox,
                            progress=lambda d, t: bar.update("reachability", d, t))
                except PlanRefused as exc:
                    print(f"netvagt-agent: {exc}", file=sys.stderr)
                    return EXIT_REFUSED
                counts = {s: sum(p.state == s for p in probes) for s in sorted(PROBE_STATES)}
                print(" ".join(f"{k}={v}" for k, v in counts.items()), file=sys.stderr)
            if args.no_send:
                return 0
            await flush(config, outbox)
            return 0 if not outbox.depth() else EXIT_FAILURE

    try:
        return asyncio.run(go())
    except BrokerRefused as exc:
        print(f"netvagt-agent: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def cmd_flush(args: argparse.Namespace) -> int:

    from agent.config import ConfigError
    from agent.outbox import Outbox

    try:
        config = _load_config(args.config)
    except ConfigError as exc:
        print(f"netvagt-agent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with Outbox(config.outbox_path) as outbox:
        from agent.publish import BrokerRefused
        from agent.run import flush

        try:
            sent = asyncio.run(flush(config, outbox))
        except (ConfigError, BrokerRefused) as exc:
            print(f"netvagt-agent: {exc}", file=sys.stderr)
            return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILURE
        waiting = outbox.depth()
        print(f"the central acknowledged {sent} message(s); {waiting} waiting")
    return EXIT_FAILURE if waiting else 0


def cmd_enroll(args: argparse.Namespace) -> int:
    import aiomqtt

    from agent.enroll import EnrollFailed, enroll

    host, _, port = args.central.partition(":")
    try:
        result = asyncio.run(enroll(
            host=host, port=int(port or 1883), token=args.token, name=args.name,
            config_path=args.config, state_dir=args.state_dir, interface=args.interface,
            profile=args.profile, timeout=args.timeout, ca_file=args.ca_file))
    except EnrollFailed as exc:
        print(f"netvagt-agent: enrollment failed: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except aiomqtt.MqttError as exc:
        print(f"netvagt-agent: enrollment failed: the broker at {args.central} refused or did "
              f"not answer ({exc}); a token works once and expires: ask for a new one if "
              "this one was used", file=sys.stderr)
        return EXIT_FAILURE
    print(f"enrolled as {result.sensor} ({result.org} / {result.site} / {result.zone}); "
          f"configuration in {args.config}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from agent.doctor import run_checks

    checks = run_checks(args.config)
    failed = [c for c in checks if not c.ok]
    if args.format == "json":
        print(json.dumps([dataclasses.asdict(c) for c in checks], indent=2))
        return EXIT_FAILURE if failed else 0
    console = terminal.console()
    for check in checks:
        mark = "[yellow]![/yellow]" if check.ok and check.warning else (
            "[green]ok[/green]" if check.ok else "[red]FAIL[/red]")
        console.print(f"{mark} [bold]{escape(check.name)}[/bold]: {escape(check.detail)}")
        if check.fix and (not check.ok or check.warning):
            console.print(f"     fix: {escape(check.fix)}")
    console.print(f"{len(checks) - len(failed)} of {len(checks)} checks passed")
    return EXIT_FAILURE if failed else 0


def fingerprint_args(p: argparse.ArgumentParser) -> None:
    """The arguments of both command lines' ``fingerprints`` commands."""
    from fingerprints.databases import RECOG_RELEASE

    p.add_argument("action", choices=("status", "import", "update"),
                   help="status: what is in use; import DIR: the pinned release from a copy; "
                        "update DIR: another release (with --release and --pins)")
    p.add_argument("source", nargs="?", type=Path, help="folder of a recog release")
    p.add_argument("--release", default=RECOG_RELEASE, help=f"default {RECOG_RELEASE}")
    p.add_argument("--pins", type=Path, help="SHA-256 sums of the release's files (update)")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="status as JSON (for a program)")


def cmd_fingerprints(args: argparse.Namespace) -> int:
    from fingerprints.databases import command

    return command(args, prog="netvagt-agent")


def cmd_vlans(args: argparse.Namespace) -> int:
    import subprocess

    from agent import vlans
    from agent.config import ConfigError

    try:
        config = _load_config(args.config)
        style = args.style or vlans.detect_style()
        files = vlans.network_config(config, style)
    except (ConfigError, ValueError) as exc:
        print(f"netvagt-agent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.apply:
        for path, content in files.items():
            print(f"# {path}" if path != "nmcli" else "# NetworkManager")
            print(content)
        return 0
    if args.root is None and not vlans.kernel_has_8021q():
        print("netvagt-agent: this kernel has no 802.1Q (module 8021q): nothing to set up. The "
              "sensor speaks tagged frames on the trunk itself (discovery, open ports and "
              "probe plans; services named by port only).", file=sys.stderr)
        return 0
    try:
        for line in vlans.apply(config, style, root=args.root or Path("/")):
            print(line)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"netvagt-agent: setting up the VLANs with {style} failed: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netvagt-agent",
        description="netvagt sensor: discover devices in this segment and report them signed.",
        epilog="Example: sudo netvagt-agent scan\n\n" + terminal.EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {terminal.version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler) -> argparse.ArgumentParser:
        summary, example = COMMANDS[name]
        p = sub.add_parser(name, help=summary, description=summary.capitalize() + ".",
                           epilog=f"Example: {example}")
        p.set_defaults(handler=handler, _parser=p)
        return p

    from scanners.ports import DEFAULT_PROFILE, PROFILES

    p = add("fingerprints", cmd_fingerprints)
    fingerprint_args(p)

    p = add("scan", cmd_scan)
    p.add_argument("targets", nargs="*", metavar="TARGET",
                   help="addresses, CIDRs or ranges a-b (default: the interface's subnet)")
    p.add_argument("--interface", "-i", help="interface facing the segment (default: default route)")
    p.add_argument("--profile", choices=sorted(PROFILES), default=DEFAULT_PROFILE,
                   help=f"how hard to probe (default: {DEFAULT_PROFILE}; 'safe' for fragile networks)")
    p.add_argument("--scope", action="append", default=[],
                   help="what may be probed (default: the interface's subnet; with --pcap, "
                        "every IPv4 address and IPv6's global and unique local ones); "
                        "repeatable")
    p.add_argument("--exclude", action="append", default=[],
                   help="address, CIDR or range that never receives a packet; repeatable")
    p.add_argument("--exclude-mac", action="append", default=[],
                   help="MAC or MAC prefix never probed after discovery; repeatable")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--snmp-community", action="append", metavar="NAME",
                   help="SNMP v2c community to try (default: public); repeatable; "
                        "the safe profile sends no SNMP")
    p.add_argument("--pcap", type=Path, metavar="FILE",
                   help="read a capture file instead of scanning (passive parsers; no root)")
    p.add_argument("--max-frames", type=int, metavar="N",
                   help="with --pcap: read only the first N frames (default: the whole file)")
    p.add_argument("--listen", type=float, metavar="SECONDS",
                   help="with --profile passive: how long to listen (default 60)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    p = add("run", cmd_run)
    p.add_argument("--config", "-c", type=Path, default=Path("/etc/netvagt/agent.toml"))
    p.add_argument("--once", action="store_true", help="one scan, send, and exit")

    p = add("keygen", cmd_keygen)
    p.add_argument("--key", type=Path, default=Path("/var/lib/netvagt/sensor.key"))

    p = add("enroll", cmd_enroll)
    p.add_argument("--central", required=True, help="the broker's host[:port] (the central's)")
    p.add_argument("--token", required=True, help="the one-time token from the central team")
    p.add_argument("--name", help="wished-for sensor id (default: chosen by the central)")
    p.add_argument("--config", type=Path, default=Path("/etc/netvagt/agent.toml"))
    p.add_argument("--state-dir", type=Path, default=Path("/var/lib/netvagt"))
    p.add_argument("--interface", help="interface facing the segment (default: default route)")
    p.add_argument("--profile", choices=sorted(PROFILES), default=DEFAULT_PROFILE)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the reply")
    p.add_argument("--ca-file", type=Path,
                   help="the central's CA certificate: connect with TLS (port 8883) and verify it")

    p = add("doctor", cmd_doctor)
    p.add_argument("--config", "-c", type=Path, default=Path("/etc/netvagt/agent.toml"))
    p.add_argument("--format", choices=("table", "json"), default="table")

    p = add("flush", cmd_flush)
    p.add_argument("--config", "-c", type=Path, default=Path("/etc/netvagt/agent.toml"))

    p = add("reach", cmd_reach)
    p.add_argument("--plan", type=Path, required=True, nargs="+",
                   help="the signed plan (JWS) to run; a sensor on a trunk gets one per VLAN")
    p.add_argument("--config", "-c", type=Path, default=Path("/etc/netvagt/agent.toml"))
    p.add_argument("--no-send", action="store_true", help="queue the results, do not send yet")

    from agent.vlans import STYLES

    p = add("vlans", cmd_vlans)
    p.add_argument("--config", "-c", type=Path, default=Path("/etc/netvagt/agent.toml"))
    p.add_argument("--style", choices=STYLES,
                   help="the network configuration to write (default: what runs this machine)")
    p.add_argument("--apply", action="store_true",
                   help="write it and bring the sub-interfaces up (root)")
    p.add_argument("--root", type=Path,
                   help="with --apply: write the files under this folder instead (an image)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = terminal.parse(build_parser(), argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

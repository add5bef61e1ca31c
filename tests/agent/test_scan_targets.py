"""Which addresses a scan probes the ports of (the probes themselves run in the lab)."""

from __future__ import annotations

from agent.scan import probe_targets
from scanners.observations import HostReply


def _reply(ip: str, mac: str | None) -> HostReply:
    return HostReply(ip=ip, source="icmp" if ":" in ip else "arp", rtt_s=0.001, mac=mac)


def test_ipv6_only_devices_are_probed_and_dual_stack_ones_once() -> None:
    hosts = {r.ip: r for r in (
        _reply("10.73.1.40", "00:80:77:73:01:40"),
        _reply("fd73:1::28", "00:80:77:73:01:40"),  # the printer's other name
        _reply("fd73:1::50", "3c:2a:f4:73:01:50"),  # IPv6 only
        _reply("fd73:1::60", None),  # no MAC seen: nothing joins it to an IPv4 address
    )}
    assert sorted(probe_targets(hosts)) == ["10.73.1.40", "fd73:1::50", "fd73:1::60"]

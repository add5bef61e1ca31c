"""One scan into the outbox, and the outbox to the central: the work that ``netvagt-agent
run --once``, ``flush`` and the daemon share.

Library code with real types; the command line and the daemon both call it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from agent import signing
from agent.config import AgentConfig
from agent.outbox import Outbox, OutboxFull
from agent.publish import BrokerConfig, deliver

log = logging.getLogger("netvagt.agent")

Progress = Callable[[str, int, int], None]


def broker_config(config: AgentConfig) -> BrokerConfig:
    """How this sensor logs in to the broker (the password file, else the environment)."""
    return BrokerConfig(host=config.broker_host, port=config.broker_port,
                        username=config.broker_username,
                        password=config.broker_password() or os.environ.get("NETVAGT_MQTT_PASSWORD"),
                        client_id=config.client_id, tls_context=config.tls_context())


async def scan_into_outbox(config: AgentConfig, outbox: Outbox, *, profile: str | None = None,
                           progress: Progress | None = None) -> int:
    """One scan, signed into the outbox; returns how many assets it found."""
    from agent.scan import scan  # scapy and nmap: only when a scan runs
    from scanners.netinfo import interface
    from scanners.ports import PROFILES
    from scanners.scope import scope_and_targets

    if outbox.size_bytes() > outbox.limit_bytes:  # before the scan: no probe is wasted
        raise OutboxFull(f"the outbox holds more than {outbox.limit_bytes} bytes "
                         "not yet acknowledged by the central")
    key = signing.load_private_key(config.key)
    chosen = PROFILES.get(profile or config.profile, PROFILES[config.profile])
    if config.vlans:  # a trunk: every VLAN its own segment
        from agent.vlans import scan_vlans

        result = await scan_vlans(config, chosen, progress=progress)
    else:
        iface = interface(config.interface)
        scope, targets = scope_and_targets(iface.cidr, config.scope, config.exclude,
                                           config.exclude_macs, config.targets)
        result = await scan(iface=iface, scope=scope, targets=targets,
                            profile=chosen, progress=progress,
                            snmp_communities=config.snmp_communities)
    for warning in result.warnings:
        log.warning("%s", warning)
    seqs = outbox.enqueue_scan(
        sensor=config.sensor, org=config.org, key=key, started_at=result.started_at,
        finished_at=result.finished_at, networks=result.networks, assets=result.assets,
        port_vlans=result.port_vlans, port_trunking=result.port_trunking,
    )
    log.info("scan (%s) found %d assets in %.1f s; queued as seq %s", chosen.name,
             len(result.assets), result.duration_s, seqs)
    return len(result.assets)


async def flush(config: AgentConfig, outbox: Outbox) -> int:
    """Deliver what waits in the outbox; returns the messages the central acknowledged."""
    acked = await deliver(broker_config(config), outbox, sensor=config.sensor, org=config.org,
                          central_key=config.load_central_key(),
                          timeout=config.delivery_timeout_s, resend_s=config.resend_s)
    log.info("the central acknowledged %d message(s); %d wait in the outbox", acked,
             outbox.depth())
    return acked


async def run_once(config: AgentConfig, *, progress: Progress | None = None) -> int:
    """One scan into the outbox, then deliver the outbox; returns messages acknowledged."""
    config.load_central_key()  # fail before a long scan, not after it
    with Outbox(config.outbox_path, limit_bytes=config.outbox_limit_bytes) as outbox:
        await scan_into_outbox(config, outbox, progress=progress)
        return await flush(config, outbox)

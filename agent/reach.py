"""Probe plans on the sensor: verify the central's signature, probe, queue the results.

A plan arrives on the sensor's command topic or as a file (``netvagt-agent reach --plan``).
It is obeyed only if the central's key (from the sensor's configuration) verifies it, it
names this sensor, and it has not expired; otherwise the sensor refuses it and says why.
Targets outside the sensor's own scope, or on its exclusion list, are not probed: the
plan cannot widen what a technician allowed this sensor to touch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from joserfc.jwk import OKPKey

from agent import signing, wire
from agent.config import AgentConfig
from agent.outbox import Outbox

log = logging.getLogger("netvagt.agent.reach")


class PlanRefused(ValueError):
    """A plan the sensor will not run; the message says why."""


def verify_plan(token: bytes, *, config: AgentConfig, central_key: OKPKey) -> wire.ProbePlan:
    try:
        plan = wire.ProbePlan.decode(signing.verify(token, central_key, typ=signing.TYPE_PLAN))
    except signing.SignatureError as exc:
        raise PlanRefused(f"refused the probe plan: its signature does not verify with the "
                          f"central's key ({exc})") from None
    except wire.WireError as exc:
        raise PlanRefused(f"refused the probe plan: it is malformed ({exc})") from None
    if (plan.sensor, plan.org) != (config.sensor, config.org):
        raise PlanRefused(f"refused probe plan {plan.id}: it is for {plan.sensor} of {plan.org}")
    if plan.expires_at < wire.utc_now():
        raise PlanRefused(f"refused probe plan {plan.id}: it expired at {plan.expires_at}")
    return plan


async def run_plan(plan: wire.ProbePlan, *, config: AgentConfig, outbox: Outbox,
                   progress: Callable[[int, int], None] | None = None) -> list[wire.Probe]:
    """Probe what the plan asks (within this sensor's scope) and queue the signed results."""
    from scanners.bind import scanning_on
    from scanners.netinfo import interface
    from scanners.reach import Target, probe_reach
    from scanners.scope import scope_and_targets

    vlan = config.vlan_for_zone(plan.zone) if config.vlans else None
    if config.vlans and vlan is None:
        raise PlanRefused(f"refused probe plan {plan.id}: it is for zone {plan.zone}, and no "
                          "VLAN of this sensor's [[scan.vlans]] names that zone")
    if vlan is not None:
        from agent import vlans

        scope = vlans.scope_of(config, vlan)
    else:
        iface = interface(config.interface)
        scope, _ = scope_and_targets(iface.cidr, config.scope, config.exclude,
                                     config.exclude_macs, ())
    allowed = [t for t in plan.targets if scope.allows(t.ip)]
    if len(allowed) < len(plan.targets):
        log.warning("probe plan %s: %d of %d targets are outside this sensor's scope or "
                    "excluded, and were not probed", plan.id,
                    len(plan.targets) - len(allowed), len(plan.targets))
    started_at, started = wire.utc_now(), time.monotonic()
    targets = [Target(ip=t.ip, tcp=t.tcp, udp=t.udp, icmp=t.icmp) for t in allowed]
    if vlan is not None:  # from inside the plan's VLAN
        results = await vlans.reach(config, vlan, targets, scope=scope,
                                    global_pps=plan.global_pps, host_pps=plan.host_pps,
                                    timeout_s=plan.timeout_s, progress=progress)
    else:
        with scanning_on(iface.name):  # out by the segment under test, never a management route
            results = await probe_reach(targets, scope=scope, global_pps=plan.global_pps,
                                        host_pps=plan.host_pps, timeout_s=plan.timeout_s,
                                        progress=progress)
    probes = [wire.Probe(ip=r.ip, proto=r.proto, port=r.port, state=r.state, rtt_ms=r.rtt_ms,
                         ttl=r.ttl)
              for r in results]
    seqs = outbox.enqueue_scan(
        sensor=config.sensor, org=config.org, key=signing.load_private_key(config.key),
        started_at=started_at, finished_at=wire.utc_now(), networks=(), plan_id=plan.id,
        probes=probes)
    reachable = sum(p.state == "reachable" for p in probes)
    log.info("probe plan %s: %d probes (%d reachable) in %.1f s; queued as seq %s", plan.id,
             len(probes), reachable, time.monotonic() - started, seqs)
    return probes

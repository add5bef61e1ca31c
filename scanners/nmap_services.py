"""Service and version detection with nmap, through python-nmap.

The driver (:func:`detect_services`) runs nmap on the open ports of live hosts in a thread,
with an argument list (python-nmap never uses a shell) built only from addresses that
passed the scope check and from port numbers. The pure function :func:`services_from_nmap`
turns python-nmap's result into observations; it is tested on saved nmap XML.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any

from scanners import bind
from scanners.observations import ServiceInfo
from scanners.scope import Scope

HOST_TIMEOUT_S = 120  # nmap gives up on a host after this long
MAX_FIELD_CHARS = 256


class NmapError(RuntimeError):
    """nmap is missing or failed."""


def _clip(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:MAX_FIELD_CHARS]


LEFT_OUT = ("devicetype", "ostype")


def left_out(xml: str) -> dict[tuple[str, str, int], dict[str, str]]:
    """nmap's device type and operating system per (address, protocol, port), from its XML
    output: the fields of a service that python-nmap's result leaves out (``<service
    devicetype="webcam" ostype="Linux">``)."""
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    try:
        root = ElementTree.fromstring(xml)
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        return {}
    out: dict[tuple[str, str, int], dict[str, str]] = {}
    for host in root.iter("host"):
        address = next((a.get("addr", "") for a in host.iter("address")
                        if a.get("addrtype") in ("ipv4", "ipv6")), "")
        for port in host.iter("port"):
            service = port.find("service")
            said = {name: value for name in LEFT_OUT
                    if service is not None and (value := _clip(service.get(name)))}
            if address and said and port.get("portid", "").isdigit():
                out[(address, port.get("protocol", ""), int(port.get("portid", "")))] = said
    return out


def services_from_nmap(result: Mapping[str, Any],
                       extra: Mapping[tuple[str, str, int], Mapping[str, str]] | None = None
                       ) -> list[ServiceInfo]:
    """Observations from python-nmap's result dict (``PortScanner.analyse_nmap_xml_scan``)
    and the device types and operating systems nmap gave (:func:`left_out`)."""
    out: list[ServiceInfo] = []
    scan = result.get("scan") or {}
    for ip, host in scan.items():
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            continue
        for proto in ("tcp", "udp"):
            for port, info in (host.get(proto) or {}).items():
                if not isinstance(info, Mapping) or info.get("state") != "open":
                    continue
                told = (extra or {}).get((ip, proto, int(port)), {})
                cpes = tuple(
                    c for c in str(info.get("cpe") or "").split() if c.startswith("cpe:")
                )[:8]
                out.append(
                    ServiceInfo(
                        ip=ip,
                        port=int(port),
                        proto=proto,
                        name=_clip(info.get("name")),
                        product=_clip(info.get("product")),
                        version=_clip(info.get("version")),
                        extrainfo=_clip(info.get("extrainfo")),
                        devicetype=told.get("devicetype"),
                        ostype=told.get("ostype"),
                        cpe=cpes,
                    )
                )
    out.sort(key=lambda s: (ipaddress.ip_address(s.ip), s.proto, s.port))
    return out


_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")  # IFNAMSIZ, and never an option


def nmap_arguments(*, intensity: int, host_timeout_s: int = HOST_TIMEOUT_S,
                   interface: str | None = None) -> str:
    if not 0 <= intensity <= 9:
        raise ValueError(f"version intensity {intensity} is not within 0..9")
    arguments = f"-sV -Pn -n --version-intensity {intensity} --host-timeout {host_timeout_s}s"
    if interface is not None:  # the scan's interface, as every other probe (scanners.bind)
        if not _IFNAME_RE.match(interface):
            raise ValueError(f"{interface!r} is not an interface name")
        arguments += f" -e {interface}"
    return arguments


def detect_services_sync(
    open_ports: Mapping[str, Sequence[int]],
    *,
    scope: Scope,
    intensity: int = 5,
    host_timeout_s: int = HOST_TIMEOUT_S,
) -> list[ServiceInfo]:
    """Run ``nmap -sV`` once over all hosts, on the union of their open TCP ports."""
    hosts = sorted(ip for ip, ports in open_ports.items() if ports)
    if not hosts:
        return []
    for ip in hosts:
        scope.check(ip)
        ipaddress.ip_address(ip)  # an address, never an option or a name
    ports = sorted({int(p) for ip in hosts for p in open_ports[ip] if 0 < int(p) < 65536})
    import nmap

    try:
        scanner = nmap.PortScanner()
        result = scanner.scan(
            hosts=" ".join(hosts),
            ports="T:" + ",".join(str(p) for p in ports),
            arguments=nmap_arguments(intensity=intensity, host_timeout_s=host_timeout_s,
                                     interface=bind.interface()),
            sudo=False,
        )
    except nmap.PortScannerError as exc:
        raise NmapError(str(exc).strip() or "nmap failed") from None
    wanted = {(ip, p) for ip in hosts for p in open_ports[ip]}
    extra = left_out(scanner.get_nmap_last_output())
    return [s for s in services_from_nmap(result, extra) if (s.ip, s.port) in wanted]


async def detect_services(
    open_ports: Mapping[str, Sequence[int]],
    *,
    scope: Scope,
    intensity: int = 5,
    host_timeout_s: int = HOST_TIMEOUT_S,
) -> list[ServiceInfo]:
    """Service detection in a thread, so the event loop keeps running."""
    return await asyncio.to_thread(
        detect_services_sync,
        open_ports,
        scope=scope,
        intensity=intensity,
        host_timeout_s=host_timeout_s,
    )

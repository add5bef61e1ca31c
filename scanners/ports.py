"""The curated port lists: what matters for IoT inventory and segmentation, and scan profiles.

Each entry names what usually listens there, so a report can say why a port was probed.
"""

from __future__ import annotations

from dataclasses import dataclass

TCP_PORTS: dict[int, str] = {
    21: "ftp",
    22: "ssh",
    23: "telnet",
    25: "smtp",
    53: "domain",
    80: "http",
    102: "iso-tsap (Siemens S7)",
    135: "msrpc",
    139: "netbios-ssn",
    443: "https",
    445: "microsoft-ds",
    502: "modbus",
    515: "printer (LPD)",
    554: "rtsp",
    631: "ipp",
    1400: "sonos (UPnP)",
    1883: "mqtt",
    1911: "niagara-fox",
    3389: "ms-wbt-server (RDP)",
    5000: "upnp (NAS admin)",
    5001: "commplex-link (NAS admin TLS)",
    4911: "niagara-fox-tls",
    5900: "vnc",
    8000: "http-alt (camera/NVR)",
    8080: "http-proxy",
    8443: "https-alt",
    8883: "secure-mqtt",
    9100: "jetdirect",
    20000: "dnp3",
    37777: "dahua-dvr",
    44818: "ethernet-ip",
}

UDP_PORTS: dict[int, str] = {
    137: "netbios-ns",
    161: "snmp",
    623: "asf-rmcp (IPMI)",
    3671: "knxnet-ip",
    5060: "sip",
    10001: "ubiquiti-discovery",
    47808: "bacnet",
}

PRINTER_PORTS = frozenset({515, 631, 9100})  # raw printing prints what it receives

SAFE_TCP_PORTS = (22, 23, 80, 443, 554, 8080, 8443)


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """How hard a scan may push: which ports, how fast, whether versions are probed."""

    name: str
    tcp_ports: tuple[int, ...]
    udp_ports: tuple[int, ...]
    global_pps: float
    host_pps: float
    host_concurrency: int  # open connections to one host at a time
    banner_wait_s: float  # how long to listen for a server-first banner on an open port
    version_detection: bool  # nmap -sV on open ports
    nmap_intensity: int
    icmp: bool = True
    multicast: bool = False  # one mDNS browse and one SSDP M-SEARCH, then UPnP descriptions
    listen_beside: bool = True  # listen passively while probing (sends nothing)
    active: bool = True  # False: send nothing at all, only listen
    listen_s: float = 0.0  # how long to listen passively before (or instead of) probing
    pjl: bool = False  # ask printers' raw port 9100 for their PJL id


PROFILES: dict[str, Profile] = {
    "passive": Profile(
        name="passive",
        tcp_ports=(),
        udp_ports=(),
        global_pps=1.0,
        host_pps=1.0,
        host_concurrency=1,
        banner_wait_s=0.0,
        version_detection=False,
        nmap_intensity=0,
        icmp=False,
        active=False,
        listen_s=60.0,
    ),
    "safe": Profile(
        name="safe",
        tcp_ports=SAFE_TCP_PORTS,
        udp_ports=(),
        global_pps=200.0,
        host_pps=10.0,
        host_concurrency=2,
        banner_wait_s=0.0,
        version_detection=False,
        nmap_intensity=0,
    ),
    "standard": Profile(
        name="standard",
        tcp_ports=tuple(TCP_PORTS),
        udp_ports=(137, 161, 3671, 5060, 10001, 47808),
        global_pps=1000.0,
        host_pps=40.0,
        host_concurrency=8,
        banner_wait_s=0.3,
        version_detection=True,
        nmap_intensity=2,
        multicast=True,
    ),
    "deep": Profile(
        name="deep",
        tcp_ports=tuple(TCP_PORTS),
        udp_ports=tuple(UDP_PORTS),
        global_pps=1000.0,
        host_pps=40.0,
        host_concurrency=8,
        banner_wait_s=1.0,
        version_detection=True,
        nmap_intensity=7,
        multicast=True,
        pjl=True,
    ),
}
DEFAULT_PROFILE = "standard"

"""WS-Discovery: what ONVIF cameras and recorders, and WSD printers and scanners, say of
themselves on UDP 3702.

Every ONVIF device answers a WS-Discovery Probe (it is how recorders and ONVIF Device
Manager find cameras), and announces itself with a Hello when it joins the network. Its
answer names its kind in two places: the ``Types`` (``dn:NetworkVideoTransmitter``,
``wprt:PrintDeviceType``) and, for ONVIF, the ``Scopes``
(``onvif://www.onvif.org/type/video_encoder``, ``.../hardware/DS-2CD2143G2-I``,
``.../name/HIKVISION``). Those become two observations, ``wsd.types`` and ``wsd.scopes``.

Active: three Probes (any device, ONVIF video devices, WSD devices) go to the segment's
WS-Discovery group with a multicast TTL of 1, and the ProbeMatches that come back within a
few seconds are read. Passive: a Hello or ProbeMatches heard on the wire is read the same
way. The SOAP XML is untrusted: at most :data:`MAX_MESSAGE_BYTES` of it is parsed, with
defusedxml (no entities, no external references), and every value is bounded.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from fingerprints.observation import CLAIM_KEY, Observation
from scanners import bind
from scanners.scope import Scope

WSD_GROUP = "239.255.255.250"
WSD_PORT = 3702
WAIT_S = 2.0  # a device waits up to 500 ms (APP_MAX_DELAY) before it answers; as long as SSDP
MAX_ANSWERS = 1024
MAX_MESSAGE_BYTES = 16_384  # a ProbeMatch is 1 to 4 KB; anything longer is read this far
MAX_TYPES = 8
MAX_SCOPES = 16
MAX_VALUE_CHARS = 512
SOURCE = "3702/udp"
ONVIF_SCOPE = "onvif://www.onvif.org/"
# the scopes that identify the device (not its MAC, which the sensor reads from the link,
# nor where someone wrote it is)
NAMING_SCOPES = ("type/", "hardware/", "name/", "Profile/")

_PROBE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"'
    ' xmlns:w="http://schemas.xmlsoap.org/ws/2004/08/addressing"'
    ' xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"'
    ' xmlns:dn="http://www.onvif.org/ver10/network/wsdl"'
    ' xmlns:wsdp="http://schemas.xmlsoap.org/ws/2006/02/devprof">'
    "<e:Header><w:MessageID>uuid:{id}</w:MessageID>"
    "<w:To e:mustUnderstand=\"true\">urn:schemas-xmlsoap-org:ws:2005:04:discovery</w:To>"
    "<w:Action e:mustUnderstand=\"true\">"
    "http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</w:Action></e:Header>"
    "<e:Body><d:Probe>{types}</d:Probe></e:Body></e:Envelope>")
# any device; ONVIF video devices (some answer only a probe for their type); WSD devices
# (printers and scanners, which Windows looks for this way)
PROBED_TYPES = ("", "<d:Types>dn:NetworkVideoTransmitter</d:Types>",
                "<d:Types>wsdp:Device</d:Types>")
ANSWERS = ("Hello", "ProbeMatches", "ResolveMatches")


def probes() -> list[bytes]:
    """The Probe messages the sensor sends, each with its own message id."""
    return [_PROBE.format(id=uuid.uuid4(), types=types).encode() for types in PROBED_TYPES]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _clean(text: str, limit: int = 128) -> str:
    return "".join(ch for ch in " ".join(text.split()) if ch.isprintable())[:limit]


def parse(message: bytes, sender: str | None = None) -> list[tuple[str, str]]:
    """``(key, value)`` pairs from a Hello, ProbeMatches or ResolveMatches message: the
    device's types, its naming ONVIF scopes, and an address its XAddrs name other than the
    one it spoke from. [] for anything else (a Probe, a Bye, not XML)."""
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    try:
        root = ElementTree.fromstring(message[:MAX_MESSAGE_BYTES])
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        return []
    action = next((e.text or "" for e in root.iter() if _local(e.tag) == "Action"), "")
    if action.rsplit("/", 1)[-1].strip() not in ANSWERS:
        return []
    said: dict[str, list[str]] = {"Types": [], "Scopes": [], "XAddrs": []}
    for element in root.iter():
        name = _local(element.tag)
        if name in said:
            said[name].extend((element.text or "").split()[:64])
    types = _unique((_clean(q.rsplit(":", 1)[-1], 64) for q in said["Types"]), MAX_TYPES)
    scopes = _unique((_clean(unquote(s[len(ONVIF_SCOPE):])).replace(";", ",")
                      for s in said["Scopes"] if s.startswith(ONVIF_SCOPE)), MAX_SCOPES,
                     wanted=NAMING_SCOPES)
    claims = _unique((_host(a) or "" for a in said["XAddrs"]), 8)
    out = []
    if types:
        out.append(("wsd.types", " ".join(types)[:MAX_VALUE_CHARS]))
    if scopes:
        out.append(("wsd.scopes", "; ".join(scopes)[:MAX_VALUE_CHARS]))
    out.extend((CLAIM_KEY, host) for host in claims if host != sender)
    return out


def _unique(values: Iterable[str], most: int, *, wanted: tuple[str, ...] = ("",)) -> list[str]:
    """The first ``most`` distinct non-empty values that start with one of ``wanted``."""
    out: list[str] = []
    for value in values:
        if value and value.startswith(wanted) and value not in out:
            out.append(value)
            if len(out) == most:
                break
    return out


def _host(address: str) -> str | None:
    """The IPv4 address an XAddrs URL names, or None (a name, IPv6, or not a URL)."""
    try:
        host = urlsplit(address).hostname
        socket.inet_aton(host or "")
    except (ValueError, OSError):
        return None
    return host if host and host.count(".") == 3 else None


def _answers(own_ip: str, scope: Scope, wait_s: float) -> dict[str, list[tuple[str, str]]]:
    """What each in-scope address answered to the probes (blocking: one thread for the
    probes and the reading of every answer)."""
    said: dict[str, list[tuple[str, str]]] = {}
    for ip, data in bind.multicast_exchange(own_ip, WSD_GROUP, WSD_PORT, probes(),
                                            wait_s=wait_s, max_answers=MAX_ANSWERS,
                                            max_bytes=MAX_MESSAGE_BYTES):
        if scope.allows(ip):
            said.setdefault(ip, []).extend(parse(data, ip))
    return said


async def discover(own_ip: str, *, scope: Scope,
                   wait_s: float = WAIT_S) -> dict[str, list[Observation]]:
    """Observations per in-scope address from the WS-Discovery answers to the probes."""
    found: dict[str, list[Observation]] = {}
    for ip, said in (await asyncio.to_thread(_answers, own_ip, scope, wait_s)).items():
        for key, value in said:
            item = Observation(key, value, "wsd" if key == CLAIM_KEY else SOURCE)
            if item not in found.setdefault(ip, []):
                found[ip].append(item)
    return found

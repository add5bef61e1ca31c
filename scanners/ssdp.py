"""SSDP discovery and UPnP device descriptions.

One M-SEARCH goes to the segment's SSDP group with a multicast TTL of 1 (it never leaves the
segment); every answer names a description URL, which is fetched only when it points back
at the address that answered and that address is in scope. The description XML is read
with defusedxml (no external entities, no entity expansion), at most 64 KiB, and its
identifying fields become one ``upnp.description`` observation.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import urlsplit

from fingerprints.observation import Observation
from scanners import bind
from scanners.observations import CLAIM_KEY
from scanners.scope import Scope

SSDP_GROUP = "239.255.255.250"
SSDP_PORT = 1900
WAIT_S = 2.0  # answers come within MX (1 s) plus the round trip
MAX_ANSWERS = 1024
MAX_DESCRIPTION_BYTES = 65_536  # the same bound as every targeted probe's answer
DESCRIPTION_FIELDS = ("deviceType", "friendlyName", "manufacturer", "modelName", "modelNumber")
M_SEARCH = (b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n"
            b"MX: 1\r\nST: ssdp:all\r\n\r\n")

Found = Observation


def parse_ssdp(datagram: bytes, *, kinds: tuple[str, ...] = ("HTTP/1.1 200", "NOTIFY")
               ) -> dict[str, str]:
    """Headers of an SSDP answer or NOTIFY (or of the ``kinds`` of message asked for),
    upper-cased names, bounded values."""
    lines = datagram[:4096].decode("utf-8", "replace").split("\r\n")
    if not lines or not lines[0].startswith(kinds):
        return {}
    headers = {}
    for line in lines[1:32]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().upper()] = value.strip()[:512]
    return headers


_DEVICE_URN = re.compile(r"urn:[A-Za-z0-9.-]{1,64}:device:[A-Za-z0-9_.-]{1,64}:\d{1,4}")
# a maker's own service or search target: a Samsung television's MainTVAgent2, an LG's
# webos-second-screen, DIAL (the TVs and sticks that cast), a Frontier Silicon radio's fsapi
_OWN_SERVICE_URN = re.compile(r"urn:(?!schemas-upnp-org:)[A-Za-z0-9.-]{1,64}:(?!device:)"
                              r"[A-Za-z0-9_.-]{1,32}:[A-Za-z0-9_.-]{1,64}:\d{1,4}")
OWN_TARGETS = frozenset({"roku:ecp"})  # a Roku answers a search for its control protocol


def device_type(headers: dict[str, str]) -> str | None:
    """What an SSDP NOTIFY (NT) or answer (ST) says of the kind of device, as a
    ``upnp.description`` value: the device type it announces (``deviceType=...``), or a
    maker's own service (``serviceType=...``); None for the standard services every UPnP
    stack offers, a root device or a UUID, which say nothing of the kind."""
    for name in ("NT", "ST"):
        value = headers.get(name, "")
        if _DEVICE_URN.fullmatch(value):
            return f"deviceType={value}"
        if _OWN_SERVICE_URN.fullmatch(value) or value in OWN_TARGETS:
            return f"serviceType={value}"
    return None


def _device(xml: bytes) -> Any | None:
    """The ``<device>`` element of a UPnP description (bounded, defused), or None."""
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    try:
        root = ElementTree.fromstring(xml[:MAX_DESCRIPTION_BYTES])
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        return None
    return next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "device"), None)


def parse_description(xml: bytes) -> str | None:
    """``deviceType=...; manufacturer=...; ...`` from a UPnP description, or None."""
    device = _device(xml)
    if device is None:
        return None
    values: dict[str, str] = {}
    for child in device:
        name = child.tag.rsplit("}", 1)[-1]
        if name in DESCRIPTION_FIELDS and child.text and child.text.strip():
            values[name] = child.text
    return _described(values)


def _described(values: dict[str, str]) -> str | None:
    """The fields in their order, each on one line, bounded, with no ';' of its own."""
    clean = {}
    for name, text in values.items():
        text = " ".join(text.split())[:200].replace(";", ",")
        clean[name] = "".join(ch for ch in text if ch.isprintable())
    said = "; ".join(f"{k}={clean[k]}" for k in DESCRIPTION_FIELDS if clean.get(k))
    return said or None


_FIELD_RE = re.compile(rb"<(deviceType|friendlyName|manufacturer|modelName|modelNumber)>"
                       rb"([^<]{1,400})</\1>")


def parse_description_head(body: bytes) -> str | None:
    """The root device's fields from the start of a UPnP description, as
    ``parse_description`` writes them. A capture holds the answer's first segment, seldom
    the whole document (no XML parser takes half of one); the root device's own fields
    come first, before any embedded device's (its ``deviceList``)."""
    import html

    if b"urn:schemas-upnp-org:device-1-0" not in body[:1024]:
        return None
    head = body[:4096].split(b"<deviceList", 1)[0]
    values: dict[str, str] = {}
    for found in _FIELD_RE.finditer(head):
        values.setdefault(found.group(1).decode(), html.unescape(
            found.group(2).decode("utf-8", "replace")))
    return _described(values)


IDENTIFIERS = {"UDN": "upnp.udn", "serialNumber": "upnp.serial"}


def parse_identifiers(xml: bytes) -> list[tuple[str, str]]:
    """What names this one device in its UPnP description: its UDN (``uuid:...``, unique by
    the UPnP rules) and its serial number; the central links its addresses by them."""
    device = _device(xml)
    out = []
    for child in device if device is not None else ():
        key = IDENTIFIERS.get(child.tag.rsplit("}", 1)[-1])
        text = " ".join((child.text or "").split())[:128]
        if key and text and text.isprintable():
            out.append((key, text))
    return out


async def _fetch(url: str) -> bytes:
    """The body at an http:// description URL (the targeted probes' bounded exchange)."""
    from scanners.identify import exchange

    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode()
    return (await exchange(host, port, request)).partition(b"\r\n\r\n")[2]


def _search(own_ip: str, wait_s: float) -> list[tuple[str, dict[str, str]]]:
    answers = bind.multicast_exchange(own_ip, SSDP_GROUP, SSDP_PORT, [M_SEARCH], wait_s=wait_s,
                                      max_answers=MAX_ANSWERS, max_bytes=4096)
    return [(ip, headers) for ip, data in answers if (headers := parse_ssdp(data))]


async def discover(own_ip: str, *, scope: Scope, wait_s: float = WAIT_S) -> dict[str, list[Found]]:
    """Observations per address from SSDP answers and the descriptions they point to."""
    answers = await asyncio.to_thread(_search, own_ip, wait_s)
    found: dict[str, list[Found]] = {}
    locations: dict[str, str] = {}
    announced: dict[str, list[str]] = {}  # the device types an address's answers named
    for ip, headers in answers:
        if not scope.allows(ip):
            continue
        seen = found.setdefault(ip, [])
        server = headers.get("SERVER", "")
        if server and ("ssdp.server", server, "1900/udp") not in seen:
            seen.append(Observation("ssdp.server", server[:512], "1900/udp"))
        location = headers.get("LOCATION", "")
        try:
            host = urlsplit(location).hostname if location else None
        except ValueError:
            host = None
        kind = device_type(headers)
        if kind and kind not in announced.setdefault(ip, []):
            announced[ip].append(kind)
        if host == ip and urlsplit(location).scheme == "http":
            locations.setdefault(ip, location)
        elif host and host.count(".") == 3 and (CLAIM_KEY, host, "ssdp") not in seen:
            seen.append(Observation(CLAIM_KEY, host, "ssdp"))  # it names an address it did not answer from
    for ip, location in locations.items():
        try:
            port = urlsplit(location).port or 80  # ValueError for a port out of range
            xml = await _fetch(location)
        except (TimeoutError, OSError, ValueError):
            continue
        described = parse_description(xml)
        if described:
            # the whole description says more than the answers' device types alone: it
            # stands for them (the same evidence is not counted twice)
            announced.pop(ip, None)
            found.setdefault(ip, []).append(Observation("upnp.description", described,
                                                        f"{port}/tcp"))
        found.setdefault(ip, []).extend(Observation(key, value, f"{port}/tcp")
                                        for key, value in parse_identifiers(xml))
    for ip, kinds in announced.items():
        found[ip].extend(Observation("upnp.description", kind, "1900/udp") for kind in kinds)
    return found

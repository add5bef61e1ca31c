"""Active mDNS browse: ask the segment which DNS-SD services exist, and who offers them.

One query to 224.0.0.251 (link-local: never routed) from an ephemeral port, for the
service listing (``_services._dns-sd._udp.local``) and the service types IoT devices use.
A query from a port other than 5353 is a "legacy unicast" query (RFC 6762 section 6.7):
responders answer us directly, so nothing else on the segment hears the answers. A second
query follows for types learned from the listing. Answers are read by the same parser as
passive listening; answers from outside the scope are dropped, and the addresses a device
names in its A records are kept as claims, apart from the address that answered.
"""

from __future__ import annotations

import asyncio
import socket

from fingerprints.observation import Observation, claim_key
from scanners import bind
from scanners.passive_parse import Heard, mdns_records, repeats_others
from scanners.scope import Scope

MDNS_GROUP = "224.0.0.251"
MDNS_PORT = 5353
MAX_ANSWER_BYTES = 9000
MAX_ANSWERS = 2048  # datagrams read in one browse
MAX_TYPES = 32  # service types followed up from the listing
WELL_KNOWN = (
    "_services._dns-sd._udp", "_ipp._tcp", "_pdl-datastream._tcp", "_printer._tcp",
    "_googlecast._tcp", "_airplay._tcp", "_raop._tcp", "_sonos._tcp", "_hue._tcp",
    "_hap._tcp", "_axis-video._tcp", "_rtsp._tcp", "_shelly._tcp", "_http._tcp",
    "_smb._tcp", "_workstation._tcp", "_device-info._tcp",
)

Found = Observation


def query(types: tuple[str, ...]) -> bytes:
    from scapy.layers.dns import DNS, DNSQR

    questions = [DNSQR(qname=f"{t}.local", qtype="PTR") for t in types]
    return bytes(DNS(id=0, qr=0, qd=questions))


def parse_answer(data: bytes, sender: str) -> list[Heard]:
    from scapy.layers.dns import DNS

    try:
        return mdns_records(DNS(data[:MAX_ANSWER_BYTES]), "", sender)
    except Exception:  # an untrusted device's garbage says nothing
        return []


class _Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answers: list[tuple[bytes, str]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(self.answers) < MAX_ANSWERS:
            self.answers.append((data, addr[0]))


async def browse(source_ip: str, *, scope: Scope, wait_s: float = 1.0) -> dict[str, list[Found]]:
    """Observations per answering address: mdns.service, mdns.instance, mdns.txt and
    claim.ipv4."""
    loop = asyncio.get_running_loop()
    sock = bind.new_socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source_ip))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    sock.bind((source_ip, 0))
    transport, collector = await loop.create_datagram_endpoint(_Collector, sock=sock)
    found: dict[str, list[Found]] = {}
    about: dict[str, dict[Found, str]] = {}
    asked: set[str] = set(WELL_KNOWN)
    try:
        transport.sendto(query(WELL_KNOWN), (MDNS_GROUP, MDNS_PORT))
        await asyncio.sleep(wait_s)
        learned = _fold(collector.answers, scope, found, about)
        follow_up = tuple(t for t in sorted(learned - asked))[:MAX_TYPES]
        if follow_up:
            collector.answers.clear()
            transport.sendto(query(follow_up), (MDNS_GROUP, MDNS_PORT))
            await asyncio.sleep(wait_s)
            _fold(collector.answers, scope, found, about)
    finally:
        transport.close()
    _own_or_repeated(found, about)
    return found


def _fold(answers: list[tuple[bytes, str]], scope: Scope, found: dict[str, list[Found]],
          about: dict[str, dict[Found, str]]) -> set[str]:
    """Fold answers into ``found`` per sender; what an answer said of a host whose addresses
    are not the sender's goes to ``about`` (see ``_own_or_repeated``)."""
    types: set[str] = set()
    for data, sender in answers:
        if not scope.allows(sender):
            continue
        for heard in parse_answer(data, sender):
            entry: Found | None = None
            if heard.claimed and heard.ip and heard.ip != sender:
                entry = Observation(claim_key(heard.ip), heard.ip, "mdns")
            elif heard.key and heard.value:
                entry = Observation(heard.key, heard.value, "5353/udp")
                if heard.key == "mdns.service":
                    types.add(heard.value)
            if entry is None:
                continue
            if heard.about:
                about.setdefault(sender, {}).setdefault(entry, heard.about)
            elif entry not in found.setdefault(sender, []):
                found[sender].append(entry)
    return types


def _own_or_repeated(found: dict[str, list[Found]], about: dict[str, dict[Found, str]]) -> None:
    """A sender's answers about one other host of its own name are its own (a device with
    two legs names its other address); about several, or one that is not its name, they are
    a reflector's or a sleep proxy's, and none is."""
    for sender, said in about.items():
        if not repeats_others(said.values(), found.get(sender, ())):
            kept = found.setdefault(sender, [])
            kept.extend(entry for entry in said if entry not in kept)

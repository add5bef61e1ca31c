"""One sensor on a trunk port, several segments: ARP and ICMP discovery and TCP SYN, UDP and
ICMP reachability per VLAN, in 802.1Q-tagged frames on the trunk's packet socket.

Where the kernel has 802.1Q (Debian and Raspberry Pi OS ship it as a module), the installer
makes a sub-interface per VLAN (``eth0.20``) and every scanner works on it as on a plain
interface. This module is for the kernels without it, and for a sensor that may not touch
the host's interfaces: it needs nothing but CAP_NET_RAW on the trunk.

Frames go out with the VLAN's tag, from the sensor's own address in that VLAN (from the
configuration; the kernel does not know it). Frames come back either with the tag still
in them, or with the tag taken off by the kernel or the NIC and handed over beside the
frame (``PACKET_AUXDATA``); both are read. A kernel without 802.1Q drops tagged frames, so
it neither answers ARP for the sensor's VLAN address nor resets a SYN-ACK: this module
answers ARP for its own addresses while it runs, and resets every SYN-ACK itself, as
nmap -sS leaves no connection open on the device.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from netaddr import IPAddress, IPNetwork

from scanners.icmp import ICMP_ECHO_REPLY, checksum, echo_request
from scanners.netinfo import AUXDATA_SPACE, PACKET_AUXDATA, SOL_PACKET, aux_vid
from scanners.observations import HostReply
from scanners.rate import RateLimiter
from scanners.scope import Scope
from scanners.sweep import Answer, Progress, SweepTiming, sweep
from scanners.syn import (
    ACK,
    RST,
    SYN,
    Key,
    parse_tcp,
    probe_key,
    probe_name,
    sequence_for,
    sweep_probes,
    syn_segment,
    unreachable_answer,
)
from scanners.tcp import UDP_PAYLOADS

ETH_P_ALL, ETH_P_IP, ETH_P_ARP, ETH_P_8021Q = 0x0003, 0x0800, 0x0806, 0x8100
PACKET_OUTGOING = 4
_ARP = struct.Struct("!HHBBH6s4s6s4s")
MAX_FRAME = 1522  # one tagged Ethernet frame; a longer one is read truncated
BROADCAST = b"\xff" * 6
ZERO_MAC = b"\x00" * 6


class TrunkError(OSError):
    """The trunk cannot be used: no such interface, no permission, a VLAN without an address."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Vlan:
    """One VLAN on the trunk: its id, the sensor's own address in it, and its gateway."""

    id: int
    ip: str
    network: IPNetwork
    gateway: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.id <= 4094:
            raise TrunkError(f"VLAN id {self.id} is not between 1 and 4094")
        if IPAddress(self.ip) not in self.network:
            raise TrunkError(f"VLAN {self.id}: address {self.ip} is not in {self.network}")
        if self.gateway is not None and IPAddress(self.gateway) not in self.network:
            raise TrunkError(f"VLAN {self.id}: gateway {self.gateway} is not in {self.network}")

    @classmethod
    def parse(cls, vid: int, address: str, gateway: str | None = None) -> Vlan:
        """From the configuration's ``address = "10.30.20.249/24"``."""
        if "/" not in address:
            raise TrunkError(f"VLAN {vid}: address {address!r} needs its prefix length "
                             "(e.g. 10.30.20.249/24)")
        net = IPNetwork(address)
        return cls(id=vid, ip=str(net.ip), network=net.cidr, gateway=gateway)

    def hosts(self) -> list[str]:
        """Its subnet's host addresses, without ours."""
        hosts = self.network.iter_hosts() if self.network.size > 2 else self.network
        return [str(a) for a in hosts if str(a) != self.ip]


@dataclass(frozen=True, slots=True)
class Frame:
    vid: int
    src: bytes  # the sender's MAC
    ethertype: int
    payload: bytes
    at: float  # time.monotonic() when it was read


def mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def tagged(dst: bytes, src: bytes, vid: int, ethertype: int, payload: bytes) -> bytes:
    """An Ethernet frame with an 802.1Q tag (priority 0)."""
    return dst + src + struct.pack("!HHH", ETH_P_8021Q, vid & 0x0FFF, ethertype) + payload


def untag(data: bytes, aux_vid: int | None) -> tuple[int, int, bytes] | None:
    """(VLAN id, EtherType, payload) of a frame read from the trunk, else None (untagged).
    The tag is either beside the frame (``aux_vid``) or still in it."""
    if len(data) < 14:
        return None
    ethertype = int.from_bytes(data[12:14], "big")
    if aux_vid is not None:
        return aux_vid, ethertype, data[14:]
    if ethertype == ETH_P_8021Q and len(data) >= 18:
        return (int.from_bytes(data[14:16], "big") & 0x0FFF,
                int.from_bytes(data[16:18], "big"), data[18:])
    return None


def arp_packet(op: int, sender_mac: bytes, sender_ip: str, target_mac: bytes,
               target_ip: str) -> bytes:
    return _ARP.pack(1, ETH_P_IP, 6, 4, op, sender_mac, socket.inet_aton(sender_ip),
                     target_mac, socket.inet_aton(target_ip))


def parse_arp(payload: bytes) -> tuple[int, bytes, str, str] | None:
    """(op, sender MAC, sender address, target address) of an Ethernet/IPv4 ARP packet."""
    if len(payload) < _ARP.size:
        return None
    htype, ptype, hlen, plen, op, sha, spa, _tha, tpa = _ARP.unpack_from(payload)
    if (htype, ptype, hlen, plen) != (1, ETH_P_IP, 6, 4):
        return None
    return op, sha, socket.inet_ntoa(spa), socket.inet_ntoa(tpa)


def ipv4(source: str, target: str, proto: int, payload: bytes, ident: int) -> bytes:
    """An IPv4 packet (TTL 64, don't fragment) with its header checksum."""
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident & 0xFFFF, 0x4000,
                         64, proto, 0, socket.inet_aton(source), socket.inet_aton(target))
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + payload


def read_mac(ifname: str) -> bytes:
    try:
        text = Path(f"/sys/class/net/{ifname}/address").read_text().strip()
    except OSError:
        raise TrunkError(f"trunk interface {ifname!r} does not exist") from None
    return bytes.fromhex(text.replace(":", ""))


class Trunk:
    """The trunk's packet socket: frames out with a VLAN's tag, frames in with their VLAN.
    ARP requests for the sensor's own VLAN addresses are answered while frames are read."""

    def __init__(self, ifname: str, vlans: Sequence[Vlan]) -> None:
        self.ifname = ifname
        self.mac = read_mac(ifname)
        self.vlans = {v.id: v for v in vlans}
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError:
            raise TrunkError(f"reading the trunk {ifname} needs CAP_NET_RAW") from None
        try:
            self.sock.bind((ifname, ETH_P_ALL))
            self.sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
            self.sock.setblocking(False)
        except OSError as exc:
            self.sock.close()
            raise TrunkError(f"cannot open the trunk {ifname}: {exc.strerror}") from None
        self.arp_answered = 0

    def __enter__(self) -> Trunk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, vid: int, dst: bytes, ethertype: int, payload: bytes) -> None:
        with contextlib.suppress(BlockingIOError):  # a full queue: a lost frame, retried
            self.sock.send(tagged(dst, self.mac, vid, ethertype, payload))

    def frames(self, timeout: float) -> list[Frame]:
        """Every frame of our VLANs that arrives within ``timeout`` (all that are waiting
        once one has arrived)."""
        out: list[Frame] = []
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        while ready:
            try:
                data, ancillary, _flags, address = self.sock.recvmsg(
                    MAX_FRAME, AUXDATA_SPACE)
            except BlockingIOError:
                break
            if address[2] != PACKET_OUTGOING:
                frame = self._frame(data, ancillary)
                if frame is not None:
                    out.append(frame)
            ready, _, _ = select.select([self.sock], [], [], 0)
        return out

    def _frame(self, data: bytes, ancillary: list[tuple[int, int, bytes]]) -> Frame | None:
        parts = untag(data, aux_vid(ancillary))
        if parts is None or parts[0] not in self.vlans:
            return None
        vid, ethertype, payload = parts
        frame = Frame(vid, data[6:12], ethertype, payload, time.monotonic())
        if ethertype == ETH_P_ARP:
            self._answer_arp(frame)
        return frame

    def _answer_arp(self, frame: Frame) -> None:
        arp = parse_arp(frame.payload)
        vlan = self.vlans[frame.vid]
        if arp is not None and arp[0] == 1 and arp[3] == vlan.ip:
            self.send(vlan.id, arp[1], ETH_P_ARP, arp_packet(2, self.mac, vlan.ip, arp[1], arp[2]))
            self.arp_answered += 1


def arp_sweep(trunk: Trunk, vlan: Vlan, targets: Sequence[str], *, scope: Scope,
              limiter: RateLimiter, timing: SweepTiming = SweepTiming(),
              progress: Progress | None = None) -> list[HostReply]:
    """ARP for ``targets`` in ``vlan`` (blocking); who answered, with their MACs."""
    for target in targets:
        scope.check(target)

    def send(target: str) -> None:
        trunk.send(vlan.id, BROADCAST, ETH_P_ARP,
                   arp_packet(1, trunk.mac, vlan.ip, ZERO_MAC, target))

    def poll(timeout: float) -> list[Answer[str]]:
        answers = []
        for frame in trunk.frames(timeout):
            arp = parse_arp(frame.payload) if frame.ethertype == ETH_P_ARP else None
            if frame.vid == vlan.id and arp is not None and arp[0] == 2 and arp[3] == vlan.ip:
                answers.append(Answer(arp[2], mac_text(arp[1]), frame.at))
        return answers

    replies = sweep(targets, send=send, poll=poll, limiter=limiter, timing=timing,
                    progress=progress)
    return [HostReply(ip=ip, mac=r.info, rtt_s=r.rtt_s, source="arp")
            for ip, r in sorted(replies.items(), key=lambda kv: socket.inet_aton(kv[0]))]


def probe(trunk: Trunk, vlan: Vlan, probes: Sequence[Key], *, next_hops: dict[str, bytes],
          scope: Scope, limiter: RateLimiter, timing: SweepTiming = SweepTiming(),
          progress: Callable[[int, int], None] | None = None,
          ttls: dict[Key, int] | None = None) -> dict[Key, tuple[str, float | None]]:
    """{(proto, ip, port): (state, rtt)} for TCP SYN, UDP and ICMP echo (``("icmp", ip, 0)``)
    probes from ``vlan``; ``next_hops`` gives the MAC each target's frames go to (its own
    on the VLAN's subnet, the gateway's beyond). A target without one is 'filtered'."""
    for _, ip, _ in probes:
        scope.check(ip)
    return sweep_probes(_Prober(trunk, vlan, next_hops), probes, limiter=limiter,
                        timing=timing, progress=progress, ttls=ttls,
                        sendable=lambda p: p[1] in next_hops)


class _Prober:
    """One probe run in one VLAN: the SYN's sequence number is a keyed hash of its target,
    so an answer must acknowledge it; echo requests carry this run's identifier."""

    def __init__(self, trunk: Trunk, vlan: Vlan, next_hops: dict[str, bytes]) -> None:
        self.trunk, self.vlan, self.next_hops = trunk, vlan, next_hops
        self.secret = os.urandom(16)
        self.tcp_port = random.randint(40000, 60999)  # a port number, not a secret
        self.udp_port = self.tcp_port + 1
        self.ident = int.from_bytes(os.urandom(2), "big")
        self.ttls: dict[str, int] = {}
        self.packet_id = 0

    def seq_for(self, ip: str, port: int) -> int:
        return sequence_for(self.secret, ip, port)

    def _ip(self, target: str, proto: int, payload: bytes) -> None:
        self.packet_id += 1
        self.trunk.send(self.vlan.id, self.next_hops[target], ETH_P_IP,
                        ipv4(self.vlan.ip, target, proto, payload, self.packet_id))

    def send(self, name: str) -> None:
        proto, ip, port = probe_key(name)
        if proto == "tcp":
            self._ip(ip, socket.IPPROTO_TCP,
                     syn_segment(self.vlan.ip, ip, self.tcp_port, port, self.seq_for(ip, port)))
        elif proto == "udp":
            data = UDP_PAYLOADS.get(port, b"\r\n")
            self._ip(ip, socket.IPPROTO_UDP,
                     struct.pack("!HHHH", self.udp_port, port, 8 + len(data), 0) + data)
        else:
            self._ip(ip, socket.IPPROTO_ICMP, echo_request(self.ident, self.packet_id & 0xFFFF))

    def poll(self, timeout: float) -> list[Answer[str]]:
        answers = []
        for frame in self.trunk.frames(timeout):
            if frame.vid == self.vlan.id and frame.ethertype == ETH_P_IP:
                packet = frame.payload
                if len(packet) >= 20 and packet[16:20] == socket.inet_aton(self.vlan.ip):
                    answer = self.answer(packet, frame.at)
                    if answer is not None:
                        answers.append(answer)
        return answers

    def answer(self, packet: bytes, at: float) -> Answer[str] | None:
        proto = packet[9]
        if proto == socket.IPPROTO_TCP:
            return self.tcp_answer(packet, at)
        if proto == socket.IPPROTO_UDP:
            ihl = (packet[0] & 0x0F) * 4
            if len(packet) >= ihl + 8:
                sport, dport = struct.unpack_from("!HH", packet, ihl)
                if dport == self.udp_port:
                    return Answer(probe_name(("udp", socket.inet_ntoa(packet[12:16]), sport)),
                                  "reachable", at)
            return None
        if proto == socket.IPPROTO_ICMP:
            return self.icmp_answer(packet, at)
        return None

    def tcp_answer(self, packet: bytes, at: float) -> Answer[str] | None:
        seen = parse_tcp(packet, self.tcp_port)
        if seen is None:
            return None
        ip, port, ack, flags = seen
        if ack != (self.seq_for(ip, port) + 1) & 0xFFFFFFFF or ip not in self.next_hops:
            return None
        if flags & (SYN | ACK) == SYN | ACK:
            # no kernel here resets it: we do, so no half-open connection is left behind
            self._ip(ip, socket.IPPROTO_TCP,
                     syn_segment(self.vlan.ip, ip, self.tcp_port, port, ack, flags=RST))
            self.ttls.setdefault(probe_name(("tcp", ip, port)), packet[8])
            return Answer(probe_name(("tcp", ip, port)), "reachable", at)
        return Answer(probe_name(("tcp", ip, port)), "refused", at) if flags & RST else None

    def icmp_answer(self, packet: bytes, at: float) -> Answer[str] | None:
        ihl = (packet[0] & 0x0F) * 4
        if len(packet) < ihl + 8:
            return None
        kind, _code, _csum, ident = struct.unpack_from("!BBHH", packet, ihl)
        if kind == ICMP_ECHO_REPLY:
            return (Answer(probe_name(("icmp", socket.inet_ntoa(packet[12:16]), 0)), "reachable", at)
                    if ident == self.ident else None)
        return unreachable_answer(packet, tcp_port=self.tcp_port, udp_port=self.udp_port, at=at)

"""Stateless probes: the SYN is well formed, and only answers to our probes count."""

from __future__ import annotations

import struct

from scapy.layers.inet import ICMP, IP, TCP, UDP

from scanners.syn import parse_tcp, parse_unreachable, syn_segment


def test_syn_segment_checksums_like_the_kernel() -> None:
    segment = syn_segment("10.20.10.250", "10.20.30.21", 40123, 554, 0x11223344)
    packet = IP(bytes(IP(src="10.20.10.250", dst="10.20.30.21", proto=6) / segment))
    tcp = packet[TCP]
    sent = tcp.chksum
    del tcp.chksum  # scapy recomputes it over the pseudo-header
    assert IP(bytes(packet))[TCP].chksum == sent
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.flags) == (40123, 554, 0x11223344, "S")
    assert ("MSS", 1460) in tcp.options


def test_only_segments_to_our_port_are_read() -> None:
    answer = bytes(IP(src="10.20.30.21", dst="10.20.10.250")
                   / TCP(sport=554, dport=40123, flags="SA", seq=7, ack=0x11223345))
    assert parse_tcp(answer, 40123) == ("10.20.30.21", 554, 0x11223345, 0x12)
    assert parse_tcp(answer, 40124) is None
    assert parse_tcp(answer[:30], 40123) is None


def test_an_unreachable_names_the_probe_it_is_about() -> None:
    probe = IP(src="10.20.10.250", dst="10.20.40.33") / UDP(sport=50000, dport=161)
    port_unreachable = bytes(IP(src="10.20.40.33", dst="10.20.10.250")
                             / ICMP(type=3, code=3) / bytes(probe)[:28])
    assert parse_unreachable(port_unreachable) == ("udp", "10.20.40.33", 161, 50000, 3)
    prohibited = bytes(IP(src="10.20.40.1", dst="10.20.10.250") / ICMP(type=3, code=13)
                       / bytes(IP(src="10.20.10.250", dst="10.20.40.33")
                               / TCP(sport=40123, dport=23))[:28])
    assert parse_unreachable(prohibited) == ("tcp", "10.20.40.33", 23, 40123, 13)
    echo_reply = bytes(IP() / ICMP(type=0) / struct.pack("!HH", 1, 1))
    assert parse_unreachable(echo_reply) is None

"""Packet parsers and pacing, on real bytes and a fake clock-free engine."""

from __future__ import annotations

import pytest

from scanners import icmp, oui
from scanners.arp import _parse_reply
from scanners.rate import RateLimiter, TokenBucket
from scanners.sweep import Answer, SweepTiming, sweep

# ARP reply 10.20.30.21 is-at 44:19:b6:10:30:21, to 10.20.30.250 (b8:27:eb:00:00:02), padded
ARP_REPLY = bytes.fromhex(
    "b827eb00000244 19b6103021 0806 0001 0800 06 04 0002 4419b6103021 0a141e15"
    " b827eb000002 0a141efa 000000000000000000000000000000000000".replace(" ", "")
)
# ICMP echo reply from 10.20.40.33 to 10.20.40.250, id 0x1234 seq 1 (IPv4 header + ICMP)
ECHO_REPLY = bytes.fromhex(
    "4500002d1c4600004001c0d70a1428210a1428fa" "0000" "a1b6" "1234" "0001"
    + b"netvagt-discovery".hex()
)


def test_arp_reply_parses_to_sender_ip_and_mac() -> None:
    assert _parse_reply(ARP_REPLY, "10.20.30.250") == ("10.20.30.21", "44:19:b6:10:30:21")
    assert _parse_reply(ARP_REPLY, "10.20.30.1") is None  # not addressed to us
    assert _parse_reply(b"\x00" * 10, "10.20.30.250") is None
    assert _parse_reply(ARP_REPLY[:20], "10.20.30.250") is None


def test_icmp_checksum_and_echo_parsing() -> None:
    request = icmp.echo_request(0x1234, 1)
    assert icmp.checksum(request) == 0  # a correct checksum sums to zero
    assert icmp.parse_echo_reply(ECHO_REPLY, 0x1234) == "10.20.40.33"
    assert icmp.parse_echo_reply(ECHO_REPLY, 0x9999) is None
    assert icmp.parse_echo_reply(ECHO_REPLY[:22], 0x1234) is None


def test_oui_vendor_and_random_macs() -> None:
    assert oui.vendor("00:1B:1B:10:40:32") == "Siemens AG,"
    assert oui.vendor("00-13-ea-10-40-33") == "Kamstrup A/S"
    assert oui.is_locally_administered("da:a1:19:00:00:01")
    assert oui.vendor("da:a1:19:00:00:01") is None
    assert not oui.is_locally_administered("44:19:b6:10:30:21")


def test_token_bucket_paces_to_its_rate() -> None:
    bucket = TokenBucket(100.0, burst=1.0)
    now = 1000.0
    bucket._stamp = now
    assert bucket.take(now) == 0.0  # starts full: one token of burst
    wait = bucket.take(now)
    assert 0.009 < wait <= 0.0101
    assert bucket.take(now + 0.0101) == 0.0


def test_per_host_limit_holds_while_global_allows() -> None:
    limiter = RateLimiter(global_pps=1_000_000, host_pps=10)
    sent = sum(1 for _ in range(50) if limiter.try_take("10.0.0.1") == 0)
    assert sent <= 5  # the per-host burst, not fifty
    assert limiter.try_take("10.0.0.2") == 0  # another host is not held back


class FakeClock:
    """time.monotonic for the sweep engine: advances only when the engine waits."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_sweep_retries_silent_targets_and_stops_when_answers_stop(monkeypatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr("scanners.sweep.time.monotonic", clock)
    monkeypatch.setattr("scanners.rate.time.monotonic", clock)
    sent: list[str] = []
    inbox: list[Answer[str]] = []
    flaky = {"10.0.0.3"}  # answers only its second probe

    def send(target: str) -> None:
        sent.append(target)
        clock.now += 0.001  # one packet on the wire
        if target == "10.0.0.9" or target in flaky:
            flaky.discard(target)
            return  # silent
        inbox.append(Answer(target, f"mac-{target}", clock.now + 0.002))

    def poll(timeout: float) -> list[Answer[str]]:
        due = [a for a in inbox if a.at <= clock.now + timeout]
        if due:
            clock.now = max(clock.now, max(a.at for a in due))
        else:
            clock.now += timeout
        for a in due:
            inbox.remove(a)
        return due

    targets = [f"10.0.0.{i}" for i in range(1, 10)]
    started = clock.now
    replies = sweep(targets, send=send, poll=poll, limiter=RateLimiter(global_pps=100_000),
                    timing=SweepTiming(retries=1, min_quiet_s=0.02, max_wait_s=5.0))
    assert set(replies) == {f"10.0.0.{i}" for i in range(1, 9)}
    assert sent.count("10.0.0.9") == 2 and sent.count("10.0.0.3") == 2
    assert sent.count("10.0.0.1") == 1
    assert replies["10.0.0.1"].rtt_s == pytest.approx(0.003)  # 1 ms on the wire + 2 ms
    # it stopped on silence (a few quiet periods), never waiting out max_wait_s
    assert clock.now - started < 1.0


def test_sweep_of_a_silent_network_waits_max_wait_per_round(monkeypatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr("scanners.sweep.time.monotonic", clock)
    monkeypatch.setattr("scanners.rate.time.monotonic", clock)

    def poll(timeout: float) -> list[Answer[None]]:
        clock.now += timeout
        return []

    started = clock.now
    replies = sweep(["10.0.0.1", "10.0.0.2"], send=lambda t: None, poll=poll,
                    limiter=RateLimiter(global_pps=100_000),
                    timing=SweepTiming(retries=1, max_wait_s=0.5))
    assert replies == {}
    assert 1.0 <= clock.now - started < 1.1  # two rounds, each waited out once


def test_a_probe_is_bound_to_the_scan_interface_or_not_sent() -> None:
    """Inside a scan every probe socket carries SO_BINDTODEVICE; an interface that cannot be
    bound (here: one that does not exist) refuses the probe instead of routing it elsewhere."""
    import socket

    from scanners import bind

    with socket.socket() as plain:
        assert bind.bind(plain) is plain  # outside a scan: the kernel's route, as before
    with bind.scanning_on("nv-nonexistent0"), pytest.raises(bind.BindError, match="nv-nonexist"):
        bind.new_socket()
    with bind.scanning_on("lo"):
        try:
            sock = bind.new_socket()
        except bind.BindError:
            pytest.skip("binding needs CAP_NET_RAW (CI runs as root)")
        with sock:
            name = sock.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16)
            assert name.rstrip(b"\0") == b"lo"
    assert bind.interface() is None


def test_an_icmpv6_echo_reply_names_its_sender_and_mac() -> None:
    import socket
    import struct

    from scanners.ndp import parse_reply

    # 00:80:77:73:01:40 -> us, IPv6 fd73:1::28 -> fd73:1::fa, ICMPv6 echo reply, id 0x1234
    ether = bytes.fromhex("02000000000100807773014086dd")
    ipv6 = (bytes.fromhex("60000000000f3a40") + socket.inet_pton(socket.AF_INET6, "fd73:1::28")
            + socket.inet_pton(socket.AF_INET6, "fd73:1::fa"))
    icmp = struct.pack("!BBHHH", 129, 0, 0, 0x1234, 1) + b"netvagt"
    frame = ether + ipv6 + icmp
    assert parse_reply(frame, 0x1234) == ("fd73:1::28", "00:80:77:73:01:40")
    assert parse_reply(frame, 0x4321) is None  # someone else's echo
    assert parse_reply(frame[:60], 0x1234) is None  # cut short
    assert parse_reply(ether + ipv6[:6] + b"\x11" + ipv6[7:] + icmp, 0x1234) is None  # UDP

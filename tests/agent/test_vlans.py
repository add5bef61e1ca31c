"""A sensor on a trunk port, without a network: its configuration, the sub-interface set-up
it generates for NetworkManager, systemd-networkd and ifupdown, and the tagged-frame
engine's parsing of what comes back (forged and stray answers ignored, SYN-ACKs reset,
ARP answered only for its own address in the right VLAN)."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from agent import vlans
from agent.config import AgentConfig, ConfigError, load
from scanners import netinfo, trunk
from scanners.icmp import checksum, echo_request
from scanners.syn import ACK, RST, SYN

ROOT = Path(__file__).parents[2]
BASE = """
[sensor]
id = "s-skole"
org = "kommune"
key = "/tmp/k"
[broker]
host = "central"
[scan]
interface = "eth0"
"""
VLANS = """
[[scan.vlans]]
id = 110
zone = "elev"
address = "10.21.10.249/24"
gateway = "10.21.10.1"

[[scan.vlans]]
id = 120
zone = "personale"
address = "10.21.20.249/24"
"""


def _config(tmp_path: Path, text: str) -> AgentConfig:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return load(path)


def test_vlans_are_read_with_their_zone_address_and_gateway(tmp_path: Path) -> None:
    config = _config(tmp_path, BASE + VLANS)
    assert [(v.id, v.zone, v.address, v.gateway) for v in config.vlans] == [
        (110, "elev", "10.21.10.249/24", "10.21.10.1"),
        (120, "personale", "10.21.20.249/24", None)]
    assert config.vlan_for_zone("personale") is config.vlans[1]
    assert config.vlan_for_zone("admin") is None
    assert config.vlans[0].sub_interface("eth0") == "eth0.110"


@pytest.mark.parametrize(("change", "message"), [
    ("id = 110", "id 4095 is not a VLAN id"),
    ('address = "10.21.10.249/24"', "must be the sensor's IPv4 address with its prefix"),
    ('gateway = "10.21.10.1"', "gateway '10.21.99.1' is not an address in 10.21.10.0/24"),
])
def test_a_wrong_vlan_is_refused_with_what_is_wrong(tmp_path: Path, change: str,
                                                     message: str) -> None:
    wrong = {"id = 110": "id = 4095", 'address = "10.21.10.249/24"': 'address = "10.21.10.249"',
             'gateway = "10.21.10.1"': 'gateway = "10.21.99.1"'}[change]
    with pytest.raises(ConfigError, match=message):
        _config(tmp_path, BASE + VLANS.replace(change, wrong, 1))


def test_a_vlan_listed_twice_an_unknown_key_and_a_missing_trunk_are_refused(
        tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="listed twice"):
        _config(tmp_path, BASE + VLANS.replace("id = 120", "id = 110"))
    with pytest.raises(ConfigError, match=r"unknown setting.*'vlan_id'"):
        _config(tmp_path, BASE + VLANS.replace("id = 120", "id = 120\nvlan_id = 3"))
    with pytest.raises(ConfigError, match="must name the trunk"):
        _config(tmp_path, BASE.replace('interface = "eth0"\n', "") + VLANS)


def test_ifupdown_sub_interfaces_route_only_what_is_bound_to_them(tmp_path: Path) -> None:
    config = _config(tmp_path, BASE + VLANS)
    (path, text), = vlans.network_config(config, "ifupdown").items()
    assert path == "/etc/network/interfaces.d/netvagt-vlans"
    assert "auto eth0.110\niface eth0.110 inet static\n    address 10.21.10.249/24\n" \
           "    vlan-raw-device eth0\n" in text
    # the VLAN's default route at a high metric: the host's own default route stays
    assert "up ip route replace default via 10.21.10.1 dev eth0.110 metric 1110" in text
    assert "eth0.120" in text and "dev eth0.120" not in text  # no gateway, no route


def test_networkd_gets_a_netdev_and_a_network_per_vlan_and_the_trunk_carries_them(
        tmp_path: Path) -> None:
    config = _config(tmp_path, BASE + VLANS)
    files = vlans.network_config(config, "networkd")
    assert "Kind=vlan\n\n[VLAN]\nId=110\n" in files[
        "/etc/systemd/network/60-netvagt-eth0.110.netdev"]
    network = files["/etc/systemd/network/60-netvagt-eth0.110.network"]
    assert "Address=10.21.10.249/24" in network and "Metric=1110" in network
    assert "[Route]" not in files["/etc/systemd/network/60-netvagt-eth0.120.network"]
    parent = files["/etc/systemd/network/10-netvagt-eth0.network"]
    assert "Name=eth0" in parent and "VLAN=eth0.110\nVLAN=eth0.120\n" in parent


def test_networkmanager_commands_name_parent_id_address_and_metric(tmp_path: Path) -> None:
    config = _config(tmp_path, BASE + VLANS)
    lines = [line for line in vlans.network_config(config, "nmcli")["nmcli"].splitlines()
             if line.startswith("nmcli")]
    assert lines[0] == ("nmcli connection add type vlan con-name netvagt-eth0.110 ifname "
                        "eth0.110 vlan.parent eth0 vlan.id 110 ipv4.method manual "
                        "ipv4.addresses 10.21.10.249/24 ipv6.method disabled ipv4.gateway "
                        "10.21.10.1 ipv4.route-metric 1110")
    assert "ipv4.gateway" not in lines[1]


def test_the_vlans_command_prints_and_writes_under_a_root(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(BASE + VLANS)
    shown = subprocess.run([sys.executable, "-m", "agent.cli", "vlans", "--config",
                            str(tmp_path / "agent.toml"), "--style", "networkd"],
                           capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "# /etc/systemd/network/60-netvagt-eth0.120.netdev" in shown.stdout
    image = tmp_path / "image"
    written = subprocess.run([sys.executable, "-m", "agent.cli", "vlans", "--config",
                              str(tmp_path / "agent.toml"), "--style", "ifupdown", "--apply",
                              "--root", str(image)],
                             capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert written.returncode == 0, written.stderr
    assert "vlan-raw-device eth0" in (image / "etc/network/interfaces.d/netvagt-vlans"
                                      ).read_text()
    (tmp_path / "plain.toml").write_text(BASE)
    refused = subprocess.run([sys.executable, "-m", "agent.cli", "vlans", "--config",
                              str(tmp_path / "plain.toml"), "--style", "nmcli"],
                             capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert refused.returncode == 2 and "no [[scan.vlans]]" in refused.stderr


# --- the tagged-frame engine's reading, on bytes -------------------------------------------

VLAN = trunk.Vlan.parse(110, "10.21.10.249/24", "10.21.10.1")
OUR_MAC = bytes.fromhex("025e0000007b")
PEER_MAC = bytes.fromhex("d0431e151414")


def test_a_tag_in_the_frame_and_a_tag_beside_it_read_the_same() -> None:
    frame = trunk.tagged(OUR_MAC, PEER_MAC, 110, trunk.ETH_P_ARP, b"payload")
    assert frame[12:16] == b"\x81\x00\x00\x6e"
    assert trunk.untag(frame, None) == (110, trunk.ETH_P_ARP, b"payload")
    stripped = frame[:12] + frame[16:]  # as the kernel hands it over, the tag beside it
    aux = struct.pack("IIIHHHH", netinfo.TP_STATUS_VLAN_VALID, 0, 0, 0, 0, 0x2000 | 110, 0x8100)
    vid = netinfo.aux_vid([(netinfo.SOL_PACKET, netinfo.PACKET_AUXDATA, aux)])
    assert vid == 110  # the priority bits are not the VLAN
    assert trunk.untag(stripped, vid) == (110, trunk.ETH_P_ARP, b"payload")
    assert trunk.untag(stripped, None) is None  # untagged: no VLAN of ours
    invalid = struct.pack("IIIHHHH", 0, 0, 0, 0, 0, 110, 0)
    assert netinfo.aux_vid([(netinfo.SOL_PACKET, netinfo.PACKET_AUXDATA, invalid)]) is None


def test_ipv4_header_checksums_and_vlan_bounds() -> None:
    packet = trunk.ipv4("10.21.10.249", "10.21.20.20", socket.IPPROTO_ICMP,
                        echo_request(7, 1), 42)
    assert checksum(packet[:20]) == 0 and packet[8] == 64
    with pytest.raises(trunk.TrunkError, match="between 1 and 4094"):
        trunk.Vlan.parse(0, "10.0.0.1/24")
    with pytest.raises(trunk.TrunkError, match="needs its prefix"):
        trunk.Vlan.parse(5, "10.0.0.1")
    assert "10.21.10.249" not in VLAN.hosts() and len(VLAN.hosts()) == 253


class _Wire:
    """Stands in for the trunk's socket: what was sent, nothing to read."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, frame: bytes) -> None:
        self.sent.append(frame)


def _trunk() -> tuple[trunk.Trunk, _Wire]:
    port = trunk.Trunk.__new__(trunk.Trunk)
    port.ifname, port.mac, port.vlans, port.arp_answered = "eth0", OUR_MAC, {110: VLAN}, 0
    wire = _Wire()
    port.sock = wire  # type: ignore[assignment]
    return port, wire


def _reply(source: str, proto: int, payload: bytes) -> bytes:
    return trunk.ipv4(source, VLAN.ip, proto, payload, 9)


def test_a_syn_ack_is_reachable_and_reset_a_forged_one_is_ignored() -> None:
    port, wire = _trunk()
    prober = trunk._Prober(port, VLAN, {"10.21.20.20": PEER_MAC})
    seq = prober.seq_for("10.21.20.20", 445)
    syn_ack = struct.pack("!HHIIBBHHH", 445, prober.tcp_port, 77, seq + 1, 5 << 4, SYN | ACK,
                          1000, 0, 0)
    answer = prober.answer(_reply("10.21.20.20", socket.IPPROTO_TCP, syn_ack), 1.0)
    assert answer is not None and (answer.target, answer.info) == ("tcp:10.21.20.20:445",
                                                                   "reachable")
    reset = wire.sent[-1]
    assert reset[:6] == PEER_MAC and reset[14:16] == b"\x00\x6e"  # tagged, to its next hop
    tcp = reset[18 + 20:]
    assert tcp[13] == RST and struct.unpack("!I", tcp[4:8])[0] == seq + 1
    forged = struct.pack("!HHIIBBHHH", 445, prober.tcp_port, 77, seq + 99, 5 << 4, SYN | ACK,
                         1000, 0, 0)
    assert prober.answer(_reply("10.21.20.20", socket.IPPROTO_TCP, forged), 1.0) is None
    stray = struct.pack("!HHIIBBHHH", 445, prober.tcp_port + 7, 77, seq + 1, 5 << 4, RST,
                        0, 0, 0)
    assert prober.answer(_reply("10.21.20.20", socket.IPPROTO_TCP, stray), 1.0) is None


def test_echo_udp_and_unreachable_answers_are_read_and_others_ignored() -> None:
    port, _ = _trunk()
    prober = trunk._Prober(port, VLAN, {"10.21.10.30": PEER_MAC})
    mine = struct.pack("!BBHHH", 0, 0, 0, prober.ident, 1)
    other = struct.pack("!BBHHH", 0, 0, 0, prober.ident ^ 1, 1)
    echo = prober.answer(_reply("10.21.10.30", 1, mine), 1.0)
    assert echo is not None and echo.target == "icmp:10.21.10.30:0"
    assert prober.answer(_reply("10.21.10.30", 1, other), 1.0) is None
    udp = struct.pack("!HHHH", 161, prober.udp_port, 8, 0)
    answered = prober.answer(_reply("10.21.10.30", 17, udp), 1.0)
    assert answered is not None and answered.info == "reachable"
    # ICMP port unreachable about our UDP probe: the packet got through, nobody listens
    inner = trunk.ipv4(VLAN.ip, "10.21.10.30", 17,
                       struct.pack("!HHHH", prober.udp_port, 5060, 8, 0), 3)
    unreachable = struct.pack("!BBHI", 3, 3, 0, 0) + inner
    refused = prober.answer(_reply("10.21.10.30", 1, unreachable), 1.0)
    assert refused is not None and (refused.target, refused.info) == ("udp:10.21.10.30:5060",
                                                                      "refused")


def test_arp_is_answered_for_our_address_in_its_own_vlan_only() -> None:
    port, wire = _trunk()
    asks_us = trunk.arp_packet(1, PEER_MAC, "10.21.10.30", b"\0" * 6, VLAN.ip)
    port._frame(trunk.tagged(b"\xff" * 6, PEER_MAC, 110, trunk.ETH_P_ARP, asks_us), [])
    assert port.arp_answered == 1
    op, sender, sender_ip, target_ip = trunk.parse_arp(wire.sent[-1][18:])  # type: ignore[misc]
    assert (op, sender, sender_ip, target_ip) == (2, OUR_MAC, VLAN.ip, "10.21.10.30")
    other = trunk.arp_packet(1, PEER_MAC, "10.21.10.30", b"\0" * 6, "10.21.10.1")
    port._frame(trunk.tagged(b"\xff" * 6, PEER_MAC, 110, trunk.ETH_P_ARP, other), [])
    # our address asked in a VLAN that is not ours: not our frame at all
    assert port._frame(trunk.tagged(b"\xff" * 6, PEER_MAC, 120, trunk.ETH_P_ARP, asks_us),
                       []) is None
    assert port.arp_answered == 1 and len(wire.sent) == 1


def test_other_vlans_frames_are_counted_with_their_first_senders_within_bounds() -> None:
    """A device tagging frames itself for every VLAN (a VLAN-hopping tool) must not grow
    the count without end: 64 VLANs, 4 senders each, are kept; the rest only counted where
    kept. VLAN 4095 is reserved: no VLAN the central is told of."""
    from agent.scan import port_vlans
    from scanners.passive import MAX_OTHER_VLANS, FrameStats

    stats = FrameStats()
    phone = bytes.fromhex("ffffffffffff" "0004f2761429") + b"\x08\x06" + bytes(28)
    for _ in range(3):
        stats.tagged(20, phone)
    for n in range(6):
        stats.tagged(20, bytes(6) + bytes([2, 0, 0, 0, 0, n]) + b"\x08\x00")
    for vlan in range(100, 400):
        stats.tagged(vlan, phone)
    stats.tagged(4095, phone)
    assert len(stats.other_vlans) == MAX_OTHER_VLANS and 4095 not in stats.other_vlans
    assert stats.other_vlans[20].frames == 9
    assert stats.other_vlans[20].senders == [
        "00:04:f2:76:14:29", "02:00:00:00:00:00", "02:00:00:00:00:01", "02:00:00:00:00:02"]
    told = port_vlans(stats)
    assert [v.vlan for v in told] == [20, *range(100, 163)]
    assert told[0].to_dict() == {"vlan": 20, "frames": 9, "senders": [
        "00:04:f2:76:14:29", "02:00:00:00:00:00", "02:00:00:00:00:01", "02:00:00:00:00:02"]}
    stats = FrameStats()
    stats.tagged(4095, phone)  # the reserved id: counted for the technician, not sent
    assert port_vlans(stats) == ()


def test_a_switch_port_s_trunk_negotiation_is_read_from_its_dtp_frames() -> None:
    """Cisco's access ports default to dynamic auto on many switches: their DTP frames say
    so, and any device in the socket can answer 'desirable' and get a trunk. Frames built
    with scapy's own DTP layers; a port in mode off, and a broken frame, say nothing."""
    from scapy.contrib.dtp import DTP, DTPDomain, DTPNeighbor, DTPStatus, DTPType
    from scapy.layers.l2 import LLC, SNAP, Dot3

    from agent.scan import port_trunking
    from scanners.passive import FrameStats
    from scanners.passive_parse import dtp_status

    def dtp(mac: str, status: int) -> bytes:
        return bytes(Dot3(src=mac, dst="01:00:0c:cc:cc:cc") / LLC() / SNAP()
                     / DTP(tlvlist=[DTPDomain(domain=b"KOMMUNE\x00"),
                                    DTPStatus(status=bytes([status])), DTPType(),
                                    DTPNeighbor(neighbor=mac)]))

    auto = dtp("00:1b:2b:76:02:fe", 0x04)
    assert [dtp_status(f) for f in (auto, dtp("00:1b:2b:76:02:fd", 0x83), auto[:30])] == [
        0x04, 0x83, None]
    assert dtp_status(auto[:25] + b"\x00\x00" + auto[27:]) is None  # a TLV of length 0
    cdp = auto[:20] + b"\x20\x00" + auto[22:]  # CDP's SNAP type: not DTP
    assert dtp_status(cdp) is None
    stats = FrameStats()
    for mac, status in (("00:1b:2b:76:02:fe", 0x04), ("00:1b:2b:76:02:fd", 0x81),
                        ("00:1b:2b:76:02:fc", 0x02), ("00:1b:2b:76:02:fe", 0x03)):
        stats.negotiates(dtp(mac, status), status)
    for n in range(10):  # a tool forging DTP from random MACs fills four places, no more
        stats.negotiates(dtp(f"02:00:00:00:00:{n:02x}", 0x03), 0x03)
    assert len(stats.trunking) == 4
    told = [(t.sender, t.mode, t.trunk) for t in port_trunking(stats)]
    assert told == [("00:1b:2b:76:02:fd", "on", True), ("00:1b:2b:76:02:fe", "desirable", False),
                    ("02:00:00:00:00:00", "desirable", False)]  # mode off: not told

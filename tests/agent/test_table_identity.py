"""What a device said goes with all its addresses: in the technician's table, and in the scan."""

from __future__ import annotations

import json

from netaddr import IPNetwork

from agent.cli import assets_json
from agent.wire import Asset
from fingerprints.observation import Observation
from scanners.netinfo import Interface


def test_a_dual_stack_device_s_bare_ipv6_address_is_named_by_what_its_ipv4_address_said() -> None:
    """A recorder's IPv4 address showed its pages; its IPv6 address only answered a ping.
    Each row was named alone, so the IPv6 row said 'camera' (its MAC's maker) beside a
    'video_recorder' row of the same device. A device at another MAC is named alone."""
    mac, vendor = "44:19:b6:76:02:30", "Hangzhou Hikvision Digital Technology Co.,Ltd."
    said = (Observation("http.server", "Hikvision-Webs", "80/tcp"),
            Observation("http.title", "NVR", "80/tcp"),
            Observation("rtsp.server", "Hikvision-Webs", "554/tcp"))
    rows = json.loads(assets_json([
        Asset(ip="fd76:2::1e", mac=mac, mac_vendor=vendor, sources=("icmp",)),
        Asset(ip="10.76.2.30", mac=mac, mac_vendor=vendor, sources=("arp",), observations=said),
        Asset(ip="10.76.2.31", mac="44:19:b6:76:02:31", mac_vendor=vendor, sources=("arp",)),
        Asset(ip="10.76.2.32", sources=("icmp",))]))
    assert [r["identity"].get("device_type") for r in rows] == [
        "video_recorder", "video_recorder", "camera", None]


def test_a_device_the_sensor_heard_over_ipv6_only_keeps_what_it_said() -> None:
    """The sensor's scan folds in what it heard: a device heard over IPv6 only (a Matter
    plug) got its IPv6 rows, and what it said went nowhere: it was kept with an IPv4
    address alone."""
    from agent.scan import _merge_passive
    from scanners.passive import PassiveHost

    host = PassiveHost(mac="a8:03:2a:76:06:01", ip6={"fd76:6::601"},
                       observations=[Observation("mdns.service", "_hap._tcp", "passive")])
    hosts: dict = {}
    observed: dict = {}
    _merge_passive({host.mac: host}, {"10.76.6.9"}, hosts, observed, OFFICE)
    assert set(hosts) == {"fd76:6::601"}
    assert observed == {"fd76:6::601": [Observation("mdns.service", "_hap._tcp", "passive")]}


OFFICE = Interface(name="eth0", mac="02:00:00:76:01:fa", ip="10.76.1.250",
                   network=IPNetwork("10.76.1.0/24"))


def _arp(mac: str, address: str, asks: str, *, to: str = "ff:ff:ff:ff:ff:ff",
         op: int = 1) -> bytes:
    """An ARP frame from ``mac`` sent from ``address`` about ``asks``: to everyone, or to
    one MAC (``to``); a request, or a reply (``op=2``)."""
    from scapy.layers.l2 import ARP, Ether

    hwdst = "00:00:00:00:00:00" if to == "ff:ff:ff:ff:ff:ff" else to
    return bytes(Ether(src=mac, dst=to) / ARP(op=op, hwsrc=mac, psrc=address, hwdst=hwdst,
                                              pdst=asks))


def test_a_device_with_another_subnet_s_address_on_the_link_is_reported_with_the_link() -> None:
    """A camera plugged into the office socket keeps its camera zone address: it asks for
    its gateway (ARP) and announces itself (mDNS) on the office wire from 10.76.2.77. That
    address is outside the sensor's subnet, so it was dropped (or, among the sensor's
    routed targets, reported as if it were in its own zone), and the camera on the office
    wire went unseen. It is now a host with what it said, marked with the link it was on.
    A PC holding a camera zone address beside its office one (ARP from both) is both. An
    address heard only in a frame a router may have forwarded (an SSDP answer unicast from
    another segment, with the router's MAC) is no mark, nor is one a host only claims."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import ARP, Ether

    from agent.scan import _merge_passive
    from scanners.passive import collect
    from scanners.passive_parse import parse
    from scanners.scope import Scope

    camera, pc, router = "ac:cc:8e:76:02:77", "d0:43:1e:76:01:31", "00:00:0c:76:00:01"
    frames = [
        Ether(src=camera, dst="ff:ff:ff:ff:ff:ff") / ARP(
            op=1, hwsrc=camera, psrc="10.76.2.77", pdst="10.76.2.1"),
        Ether(src=pc, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=pc, psrc="10.76.1.31",
                                                     pdst="10.76.1.1"),
        Ether(src=pc, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=pc, psrc="10.76.2.31",
                                                     pdst="10.76.2.1"),
        # a device in another segment answering an M-SEARCH, through the router
        Ether(src=router, dst="02:00:00:76:01:fa") / IP(src="10.76.2.40", dst="10.76.1.250")
        / UDP(sport=1900, dport=50000) / (b"HTTP/1.1 200 OK\r\nSERVER: Linux UPnP/1.0\r\n"
                                          b"LOCATION: http://10.76.2.40/d.xml\r\n\r\n")]
    heard = [h for f in frames for h in parse(bytes(f))]
    passive = collect(heard, scope=Scope.from_strings(["10.76.0.0/16"]))
    # the sensor's targets reach the other zones too (through the router): the camera's
    # address is among them, and still not of this link
    wanted = {str(a) for a in IPNetwork("10.76.0.0/22")}
    hosts: dict = {}
    observed: dict = {}
    _merge_passive(passive, wanted, hosts, observed, OFFICE)
    marked = {ip for ip, said in observed.items() if any(o.key == "net.link" for o in said)}
    assert marked == {"10.76.2.77", "10.76.2.31"}
    assert Observation("net.link", "10.76.1.250/24", "link") in observed["10.76.2.77"]
    assert (hosts["10.76.2.77"].mac, hosts["10.76.2.31"].mac, hosts["10.76.1.31"].mac) == (
        camera, pc, pc)


def test_the_technician_s_table_says_which_addresses_are_another_subnet_s(capsys) -> None:
    """The technician at the office switch sees the camera in the wrong socket as such,
    not as one more row of the office."""
    from agent.cli import print_assets

    camera = Asset(ip="10.76.2.77", mac="ac:cc:8e:76:02:77", sources=("passive",),
                   observations=(Observation("net.link", "10.76.1.250/24", "link"),))
    pc = Asset(ip="10.76.1.30", mac="d0:43:1e:76:01:30", sources=("arp",))
    print_assets([camera, pc], title="2 assets")
    shown = capsys.readouterr().out
    assert "another subnet" in shown.split("10.76.2.77", 1)[1].split("\n", 1)[0]
    assert "another subnet" not in shown.split("10.76.1.30", 1)[1].split("\n", 1)[0]
    assert "1 address(es) of another subnet heard on this wire" in " ".join(shown.split())


def test_a_device_heard_twice_from_another_prefix_is_marked_once() -> None:
    """The scan folds in what it heard before probing and again after: a device on the
    wire with another zone's IPv6 address (NDP) carries the link's mark once, not twice."""
    from agent.scan import _merge_passive
    from scanners.passive import PassiveHost

    link = Interface(name="eth0", mac="02:00:00:76:01:fa", ip="10.76.1.250",
                     network=IPNetwork("10.76.1.0/24"), ip6="fd76:1::fa",
                     network6=IPNetwork("fd76:1::/64"))
    camera = PassiveHost(mac="ac:cc:8e:76:02:77", ip6={"fd76:2::4d"})
    hosts: dict = {}
    observed: dict = {}
    for _ in range(2):
        _merge_passive({camera.mac: camera}, set(), hosts, observed, link)
    assert observed["fd76:2::4d"] == [Observation("net.link", "fd76:1::fa/64", "link")]


def _heard_on_office(frames: list, scope: tuple[str, ...] = ("10.76.0.0/16",),
                     exclude: tuple[str, ...] = ()) -> tuple[dict, dict]:
    """Real frames through the listener's parser, its collection and the scan's merge, as
    the office sensor (10.76.1.250/24) folds them in; the sensor's targets reach the other
    zones through the router."""
    from agent.scan import _merge_passive
    from scanners.passive import collect
    from scanners.passive_parse import parse
    from scanners.scope import Scope

    heard = [h for f in frames for h in parse(bytes(f))]
    passive = collect(heard, scope=Scope.from_strings(list(scope), exclude=list(exclude)))
    wanted = {str(a) for a in IPNetwork("10.76.0.0/22")}
    hosts: dict = {}
    observed: dict = {}
    _merge_passive(passive, wanted, hosts, observed, OFFICE)
    return hosts, observed


def _marked(observed: dict) -> set[str]:
    return {ip for ip, said in observed.items() if any(o.key == "net.link" for o in said)}


def test_a_laptop_checking_for_its_last_network_is_not_on_the_wire_with_that_address() -> None:
    """A Mac or iPhone joining a network first asks, by unicast ARP to the router it
    remembers (RFC 4436, DNAv4), from the address it held there. That router's MAC is
    unknown to this switch, so the ARP is flooded and the sensor hears it. A laptop come
    from the camera zone's Wi-Fi was then 'on the office wire with a camera zone address':
    a misplaced device of high severity, for an address it never used here. The check
    names an address, it does not hold it: only ARP sent to everyone (a request for a
    gateway, an announcement) shows an address held on this wire. The laptop is reported
    at the office address it then took, and what it said goes there."""

    laptop, old_router = "f0:18:98:76:01:40", "00:00:0c:76:02:01"
    frames = [
        _arp(laptop, "10.76.2.140", "10.76.2.1", to=old_router),
        _arp(laptop, "10.76.1.40", "10.76.1.1")]
    hosts, observed = _heard_on_office(frames)
    assert _marked(observed) == set()
    assert hosts["10.76.1.40"].mac == laptop
    # the order the frames came in does not matter
    hosts, observed = _heard_on_office(frames[::-1])
    assert _marked(observed) == set() and hosts["10.76.1.40"].mac == laptop


def test_a_router_answering_arp_for_other_subnets_is_not_on_the_wire_with_them() -> None:
    """A router with proxy ARP on (Cisco's default) answers a host that asks for another
    subnet's address (a PC with too wide a mask) with its own MAC and that address. The
    router was then on the office wire 'with' the camera zone's addresses. An answer to
    one asker is no announcement: only ARP sent to everyone marks an address."""

    pc, router = "d0:43:1e:76:01:31", "00:00:0c:76:01:01"
    frames = [
        _arp(router, "10.76.1.1", "10.76.1.31"),
        _arp(pc, "10.76.1.31", "10.76.2.20"),
        _arp(router, "10.76.2.20", "10.76.1.31", to=pc, op=2)]
    hosts, observed = _heard_on_office(frames)
    assert _marked(observed) == set()
    assert hosts["10.76.1.1"].mac == router and hosts["10.76.1.31"].mac == pc


def test_a_device_on_the_wire_outside_the_sensor_s_scope_is_reported_and_never_probed() -> None:
    """With the default scope (the sensor's own subnet), a camera at its factory address
    (192.168.1.64) or a camera zone camera in an office socket, heard asking for its
    gateway on the office wire, was dropped: the scope said what may be probed, and so,
    by accident, what may be seen. It is on this wire: it is reported, with the link's
    mark (which keeps it from every probe). Addresses the operator excluded stay unseen."""

    from agent.scan import heard_off_link

    frames = [_arp("44:19:b6:00:00:64", "192.168.1.64", "192.168.1.1"),
              _arp("ac:cc:8e:76:02:77", "10.76.2.77", "10.76.2.1"),
              _arp("00:80:f4:00:00:09", "172.16.0.9", "172.16.0.1"),
              _arp("00:80:f4:00:00:0a", "169.254.0.10", "169.254.0.1")]
    hosts, observed = _heard_on_office(frames, scope=("10.76.1.0/24",),
                                       exclude=("172.16.0.0/24", "169.254.0.0/24"))
    assert _marked(observed) == {"192.168.1.64", "10.76.2.77"}
    assert set(hosts) == {"192.168.1.64", "10.76.2.77"}
    assert all(heard_off_link(observed[ip]) for ip in hosts)


def _mdns(mac: str, source: str, instance: str, kind: str) -> bytes:
    """An mDNS announcement of ``instance`` (a service of ``kind``) from ``source``, with
    its host's address record (of ``source``), as responders send it."""
    from scapy.layers.dns import DNS, DNSRR
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    six = ":" in source
    net = IPv6(src=source, dst="ff02::fb") if six else IP(src=source, dst="224.0.0.251", ttl=255)
    return bytes(Ether(src=mac, dst="01:00:5e:00:00:fb") / net / UDP(sport=5353, dport=5353)
                 / DNS(qr=1, aa=1, an=[
                     DNSRR(rrname=f"{kind}.local.", type="PTR", rdata=f"{instance}.{kind}.local."),
                     DNSRR(rrname=f"host-{mac.replace(':', '')}.local.",
                           type="AAAA" if six else "A", rdata=source)]))


def test_a_device_with_an_automatic_address_only_is_reported_with_the_link() -> None:
    """A camera no DHCP server answered takes an automatic address (169.254/16, RFC 3927)
    and announces itself from it; a device with IPv4 off, on a link without an IPv6
    prefix, speaks from its fe80:: address alone. Such an address is of every link, so
    it was dropped, and with it the device: the camera in the wire's socket was missing
    from the inventory. It is now reported at that address, with the link's mark (never
    probed; the central places it in the segment's zone), with what it said. A device
    with an address of its own (one also keeping an automatic one, as Axis cameras do,
    or one the sweep found) is reported at that address only."""
    from agent.scan import _merge_passive, heard_off_link
    from scanners.observations import HostReply
    from scanners.passive import collect
    from scanners.passive_parse import parse
    from scanners.scope import Scope

    camera, plug, axis, swept, plc = ("44:19:b6:00:02:09", "a8:03:2a:00:06:01",
                                      "ac:cc:8e:76:01:33", "ac:cc:8e:76:01:34",
                                      "00:80:f4:00:01:64")
    frames = [_arp(camera, "169.254.7.9", "169.254.7.9"),  # its announcement
              _mdns(camera, "169.254.7.9", "HIKVISION DS-2CD2143G2-I", "_http._tcp"),
              _mdns(plug, "fe80::aa03:2aff:fe00:601", "Eve Energy 5A2B", "_hap._tcp"),
              _arp(axis, "169.254.1.33", "169.254.1.33"),
              _arp(axis, "10.76.1.33", "10.76.1.1"),
              _arp(swept, "169.254.1.34", "169.254.1.34"),
              # a PLC the operator excluded stays unseen by its link-local address too
              _arp(plc, "10.76.1.100", "10.76.1.1"),
              _mdns(plc, "fe80::280:f4ff:fe00:164", "PLC", "_http._tcp")]
    heard = collect([h for f in frames for h in parse(f)],
                    scope=Scope.from_strings(["10.76.1.0/24"], exclude=["10.76.1.100"]))
    hosts = {"10.76.1.34": HostReply(ip="10.76.1.34", mac=swept, rtt_s=0.001, source="arp")}
    observed: dict = {}
    _merge_passive(heard, {str(a) for a in IPNetwork("10.76.1.0/24")}, hosts, observed, OFFICE)
    assert {ip: h.mac for ip, h in hosts.items()} == {
        "169.254.7.9": camera, "fe80::aa03:2aff:fe00:601": plug, "10.76.1.33": axis,
        "10.76.1.34": swept}
    assert _marked(observed) == {"169.254.7.9", "fe80::aa03:2aff:fe00:601"}
    assert heard_off_link(observed["169.254.7.9"])  # never probed
    assert Observation("mdns.service", "_http._tcp", "passive") in observed["169.254.7.9"]
    assert Observation("mdns.service", "_hap._tcp", "passive") in observed[
        "fe80::aa03:2aff:fe00:601"]


def test_forged_automatic_addresses_count_against_the_bound() -> None:
    """ARP from random MACs and 169.254 addresses is as easy to forge as from any
    other: each such device counts against MAX_OFF_LINK_PER_SCAN."""
    from agent.scan import MAX_OFF_LINK_PER_SCAN, _merge_passive
    from scanners.passive import PassiveHost

    flood = {f"02:00:00:01:{i // 256:02x}:{i % 256:02x}": PassiveHost(
        mac=f"02:00:00:01:{i // 256:02x}:{i % 256:02x}",
        automatic={f"169.254.{1 + i // 250}.{1 + i % 250}"})
        for i in range(MAX_OFF_LINK_PER_SCAN + 10)}
    hosts: dict = {}
    assert _merge_passive(flood, set(), hosts, {}, OFFICE) == 10
    assert len(hosts) == MAX_OFF_LINK_PER_SCAN


def test_the_technician_s_table_says_which_devices_have_an_automatic_address_only(capsys) -> None:
    from agent.cli import print_assets

    camera = Asset(ip="169.254.7.9", mac="44:19:b6:00:02:09", sources=("passive",),
                   observations=(Observation("net.link", "10.76.1.250/24", "link"),))
    stranger = Asset(ip="10.76.2.77", mac="ac:cc:8e:76:02:77", sources=("passive",),
                     observations=(Observation("net.link", "10.76.1.250/24", "link"),))
    print_assets([camera, stranger], title="2 assets")
    shown = " ".join(capsys.readouterr().out.split())
    assert "169.254.7.9 (automatic address only" in shown
    assert "1 device(s) with an automatic address only" in shown
    assert "1 address(es) of another subnet heard on this wire" in shown


def test_a_flood_of_addresses_from_other_subnets_reports_a_bounded_number_and_says_so() -> None:
    """Any address heard on the wire outside the sensor's subnet is reported, inside the
    scope or not. A hostile device sending ARP to everyone from random MACs and addresses
    (20,000 a minute fit in the listener's budget) would then fill the inventory with
    'misplaced' devices that do not exist. The scan reports at most MAX_OFF_LINK_PER_SCAN
    of them, the first heard, and says how many it left out; none left out is probed."""
    from agent.scan import MAX_OFF_LINK_PER_SCAN, _merge_passive, heard_off_link
    from scanners.passive import PassiveHost

    flood = {f"02:00:00:00:{i // 256:02x}:{i % 256:02x}": PassiveHost(
        mac=f"02:00:00:00:{i // 256:02x}:{i % 256:02x}", local={f"198.18.{i // 256}.{i % 256}"})
        for i in range(MAX_OFF_LINK_PER_SCAN + 39)}  # with the camera, 40 too many
    camera = PassiveHost(mac="ac:cc:8e:76:02:77", local={"10.76.2.77"}, own={"10.76.2.77"},
                         ip="10.76.2.77")
    hosts: dict = {}
    observed: dict = {}
    left = _merge_passive({camera.mac: camera, **flood}, {"10.76.2.77"}, hosts, observed, OFFICE)
    assert left == 40
    assert "10.76.2.77" in hosts and heard_off_link(observed["10.76.2.77"])
    assert len(hosts) == MAX_OFF_LINK_PER_SCAN
    assert all(heard_off_link(observed[ip]) for ip in hosts)
    # folded in again after probing: nothing more, and the same count left out
    assert _merge_passive({camera.mac: camera, **flood}, {"10.76.2.77"}, hosts, observed,
                          OFFICE) == 40
    assert len(hosts) == MAX_OFF_LINK_PER_SCAN


def _routers_marked(frames: list, swept: dict[str, str], monkeypatch) -> set[str]:
    """What the office sensor marks as its segment's gateway (from its routes: 10.76.1.1)
    after its sweep found ``swept`` (address: MAC) and it heard ``frames``."""
    from agent.scan import _merge_passive, note_gateways
    from scanners import netinfo
    from scanners.observations import HostReply
    from scanners.passive import collect
    from scanners.passive_parse import parse
    from scanners.scope import Scope

    monkeypatch.setattr(netinfo, "default_gateways", lambda interface: {"10.76.1.1"})
    hosts = {ip: HostReply(ip=ip, mac=mac, rtt_s=0.001, source="arp") for ip, mac in swept.items()}
    observed: dict = {}
    heard = collect([h for f in frames for h in parse(bytes(f))],
                    scope=Scope.from_strings(["10.76.1.0/24"]))
    _merge_passive(heard, set(swept), hosts, observed, OFFICE)
    warnings: list[str] = []
    note_gateways("eth0", hosts, observed, warnings)
    assert not warnings
    return {ip for ip, said in observed.items()
            if Observation("net.role", "default-gateway", "route") in said}


def test_the_routers_of_a_redundant_gateway_are_the_segment_s_routers(monkeypatch) -> None:
    """Two core switches share the office's gateway address by HSRP. Each holds an address
    of its own on every VLAN (10.76.1.2 and .3 here), with one MAC on all of them, and
    only the virtual address was the sensor's gateway: each switch was a device answering
    in every zone, a bridge, at every site with a redundant core. What they say in their
    hellos (the active one from the virtual MAC, the standby from its own, HSRP v1 and v2)
    makes them the segment's routers, as the gateway is."""
    from scapy.layers.hsrp import HSRP, HSRPv2
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    virtual, switch_a, switch_b = "00:00:0c:07:ac:01", "00:00:0c:76:00:02", "00:00:0c:76:00:03"
    frames = [
        Ether(src=virtual, dst="01:00:5e:00:00:02") / IP(src="10.76.1.2", dst="224.0.0.2", ttl=1)
        / UDP(sport=1985, dport=1985) / HSRP(group=1, state=16, virtualIP="10.76.1.1"),
        Ether(src=switch_b, dst="01:00:5e:00:00:66") / IP(src="10.76.1.3", dst="224.0.0.102",
                                                          ttl=1)
        / UDP(sport=1985, dport=1985) / HSRPv2(group=1, state=8, virtualIP="10.76.1.1")]
    swept = {"10.76.1.1": virtual, "10.76.1.2": switch_a, "10.76.1.3": switch_b,
             "10.76.1.30": "d0:43:1e:76:01:30"}
    assert _routers_marked(frames, swept, monkeypatch) == {"10.76.1.1", "10.76.1.2", "10.76.1.3"}


def test_a_vrrp_master_is_a_router_and_a_device_naming_another_address_is_not(monkeypatch) -> None:
    """VRRP's master advertises from the virtual MAC with its own address: that address is
    the segment's router, and is not bound to the virtual MAC. A device advertising an
    address that is not the sensor's gateway is no router of it."""
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether
    from scapy.layers.vrrp import VRRP, VRRPv3

    from scanners.passive_parse import parse

    virtual, master, pi = "00:00:5e:00:01:01", "00:1b:17:76:00:02", "b8:27:eb:76:01:50"
    frames = [
        Ether(src=virtual, dst="01:00:5e:00:00:12") / IP(src="10.76.1.2", dst="224.0.0.18",
                                                         ttl=255, proto=112)
        / VRRPv3(vrid=1, priority=200, addrlist=["10.76.1.1"]),
        Ether(src=pi, dst="01:00:5e:00:00:12") / IP(src="10.76.1.50", dst="224.0.0.18",
                                                    ttl=255, proto=112)
        / VRRP(vrid=9, priority=10, addrlist=["10.76.1.99"])]
    assert [(h.mac, h.ip, h.value) for h in parse(bytes(frames[0]))] == [
        (virtual, None, "10.76.1.1 10.76.1.2")]
    swept = {"10.76.1.1": virtual, "10.76.1.2": master, "10.76.1.50": pi}
    assert _routers_marked(frames, swept, monkeypatch) == {"10.76.1.1", "10.76.1.2"}


def test_a_router_forwarding_other_subnets_answers_does_not_take_their_words() -> None:
    """On a mirror port (or where multicast is routed) the sensor hears unicast SSDP and
    WS-Discovery answers from devices in other subnets, forwarded by the router: their
    source MAC is the router's. What they said became the router's, and the router was
    reported at their addresses (a Sonos speaker's and an ONVIF camera's words on the
    office gateway). A unicast datagram may have crossed a router, as a DNS query or a
    TLS hello may: what it says counts as its sender's own only from an address the sender
    holds on the link. A device on the link answering a phone's M-SEARCH (a capture of a
    home network) keeps what it said."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    router, wemo, phone = "00:00:0c:76:01:01", "94:10:3e:76:01:61", "d0:43:1e:76:01:12"

    def answering(src_mac: str, src: str, server: bytes) -> object:
        return (Ether(src=src_mac, dst=phone) / IP(src=src, dst="10.76.1.12")
                / UDP(sport=1900, dport=50123)
                / (b"HTTP/1.1 200 OK\r\nSERVER: " + server + b"\r\nLOCATION: http://" + src.encode()
                   + b":1400/xml/device_description.xml\r\nST: upnp:rootdevice\r\n\r\n"))

    frames = [
        _arp(router, "10.76.1.1", "10.76.1.12"),
        _arp(wemo, "10.76.1.61", "10.76.1.1"),
        *(answering(router, f"10.76.{3 + i}.40", b"Linux UPnP/1.0 Sonos/70.3-35220 (ZPS1)")
          for i in range(3)),
        answering(wemo, "10.76.1.61", b"Unspecified, UPnP/1.0, Unspecified")]
    hosts, observed = _heard_on_office(frames)
    assert not any(o.key == "ssdp.server" for o in observed.get("10.76.1.1", ()))
    assert {ip for ip, reply in hosts.items() if reply.mac == router} == {"10.76.1.1"}
    assert Observation("ssdp.server", "Unspecified, UPnP/1.0, Unspecified", "passive") in \
        observed["10.76.1.61"]


def test_a_device_spoofing_the_gateway_s_address_is_marked_and_takes_nothing() -> None:
    """A device sending ARP replies that say the gateway's address is at its MAC (arpspoof,
    bettercap: to everyone, or to each host in turn, the sensor too) was folded in as a
    host at the gateway's address: what it said became the gateway's, and its own address
    went unreported. The address the sweep's ARP found at the router's MAC is the router's;
    another MAC sending from it is marked on that address (``net.conflict``) and is
    reported at its own address. Before the sweep, neither of two MACs sending from one
    address takes it."""

    from agent.scan import _merge_passive
    from scanners.observations import HostReply
    from scanners.passive import collect
    from scanners.passive_parse import parse
    from scanners.scope import Scope

    router, spoofer = "00:00:0c:76:01:01", "b8:27:eb:76:01:66"
    frames = [
        _arp(router, "10.76.1.1", "10.76.1.30"),
        _arp(spoofer, "10.76.1.66", "10.76.1.1"),
        _arp(spoofer, "10.76.1.1", "10.76.1.250", to=OFFICE.mac, op=2)]
    heard = collect([h for f in frames for h in parse(bytes(f))],
                    scope=Scope.from_strings(["10.76.1.0/24"]))
    heard[spoofer].observations.append(Observation("dhcp.hostname", "kali", "passive"))
    wanted = {str(a) for a in IPNetwork("10.76.1.0/24")}
    # before the sweep
    hosts: dict = {}
    observed: dict = {}
    _merge_passive(heard, wanted, hosts, observed, OFFICE)
    assert hosts["10.76.1.66"].mac == spoofer
    assert "10.76.1.1" not in hosts or hosts["10.76.1.1"].mac == router
    # after it: the router answered the sensor's ARP for its address
    hosts = {"10.76.1.1": HostReply(ip="10.76.1.1", mac=router, rtt_s=0.001, source="arp")}
    observed = {}
    _merge_passive(heard, wanted, hosts, observed, OFFICE)
    assert Observation("net.conflict", spoofer, "arp") in observed["10.76.1.1"]
    assert not any(o.value == "kali" for o in observed["10.76.1.1"])
    assert hosts["10.76.1.66"].mac == spoofer
    assert Observation("dhcp.hostname", "kali", "passive") in observed["10.76.1.66"]


def test_the_technician_s_table_says_which_addresses_another_mac_sends_from(capsys) -> None:
    """The router's row says that another MAC sends ARP from its address (an ARP spoofer,
    or two devices on one address), and which; the count is under the table."""
    from agent.cli import print_assets

    spoofer = "b8:27:eb:76:01:66"
    router = Asset(ip="10.76.1.1", mac="00:00:0c:76:01:01", sources=("arp",),
                   observations=(Observation("net.conflict", spoofer, "arp"),))
    pc = Asset(ip="10.76.1.30", mac="d0:43:1e:76:01:30", sources=("arp",))
    print_assets([router, pc], title="2 assets")
    shown = " ".join(capsys.readouterr().out.split())
    assert f"10.76.1.1 (ARP from {spoofer} too)" in shown
    assert "1 address(es) another MAC also sends ARP from" in shown
    assert shown.count(" too)") == 1  # the PC's row says nothing

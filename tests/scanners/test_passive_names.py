"""The names a device calls (DNS queries, TLS SNI), heard in a capture: frames built with
scapy's own DNS and TLS layers (not the product's parser), then the classifier naming IoT
devices by their maker's cloud, and setting the names aside where they would mislead (a
resolver asking for everyone, a phone whose apps call the same clouds)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.tls.extensions import ServerName, TLS_Ext_ServerName
from scapy.layers.tls.handshake import TLSClientHello
from scapy.layers.tls.record import TLS
from scapy.utils import wrpcap

from scanners.passive_parse import (
    Heard,
    dns_query_name,
    http_user_agent,
    parse,
    tls_server_name,
)

ROUTER = "00:00:0c:14:1e:01"


def _query(mac: str, ip: str, name: str, **dns: Any) -> Any:
    return (Ether(src=mac, dst=ROUTER) / IP(src=ip, dst="10.20.30.1")
            / UDP(sport=40000, dport=53) / DNS(rd=1, qd=DNSQR(qname=name), **dns))


def _hello(mac: str, ip: str, name: str, port: int = 443) -> Any:
    hello = TLS(msg=[TLSClientHello(ext=[TLS_Ext_ServerName(
        servernames=[ServerName(servername=name.encode())])])])
    return (Ether(src=mac, dst=ROUTER) / IP(src=ip, dst="52.1.2.3")
            / TCP(sport=50000, dport=port, flags="PA") / hello)


def test_a_dns_query_and_a_client_hello_name_what_the_device_calls() -> None:
    cam = "30:8c:fb:10:30:40"
    assert parse(bytes(_query(cam, "10.20.30.40", "oculus519.dropcam.com"))) == [
        Heard(mac=cam, ip="10.20.30.40", key="dns.query", value="oculus519.dropcam.com",
              routed=True)]
    assert parse(bytes(_hello(cam, "10.20.30.40", "Nexus.Dropcam.com", port=8443))) == [
        Heard(mac=cam, ip="10.20.30.40", key="tls.sni", value="nexus.dropcam.com", routed=True)]
    six = (Ether(src=cam, dst=ROUTER) / IPv6(src="2001:db8:30::40", dst="2001:db8:30::1")
           / UDP(sport=40000, dport=53) / DNS(rd=1, qd=DNSQR(qname="ws.meethue.com")))
    assert parse(bytes(six)) == [Heard(mac=cam, ip="2001:db8:30::40", key="dns.query",
                                       value="ws.meethue.com", routed=True)]


def test_a_name_under_a_maker_s_own_domain_names_a_maker_of_one_kind() -> None:
    """A device calls its maker for updates, time and its cloud under the maker's own
    domain; the cloud rules list some clouds, and the maker table knows more makers than
    they do. A site a person browses (www.), another company's domain that is a word of
    the table, and a maker's name elsewhere in a name say nothing; a device that calls
    two makers is named by neither, as with the clouds."""
    from agent.wire import Observation
    from fingerprints.classify import classify

    for said, expected in (("autoupdate.synology.com", ("Synology", "nas")),
                           ("fw.hikvision.com.cn", ("Hikvision", "camera")),
                           ("connect.konicaminolta.com", ("Konica Minolta", "printer")),
                           ("firmware.teltonika-networks.com", ("Teltonika Networks", "router")),
                           ("www.hikvision.com", (None, None)), ("wiz.io", (None, None)),
                           ("hikvision.example.org", (None, None))):
        found = classify([Observation("dns.query", said, "passive")])
        assert (found.vendor, found.device_type) == expected, said
    both = classify([Observation("dns.query", "api.sonos.com", "passive"),
                     Observation("tls.sni", "checkip.synology.com", "passive")])
    assert (both.vendor, both.device_type) == (None, None)


def test_what_names_nothing() -> None:
    cam = "30:8c:fb:10:30:40"
    answer = _query(cam, "10.20.30.40", "dropcam.com", qr=1,
                    an=DNSRR(rrname="dropcam.com", rdata="1.2.3.4"))
    for frame in (answer, _query(cam, "10.20.30.40", "40.30.20.10.in-addr.arpa"),
                  _query(cam, "10.20.30.40", "printer.local"), _query(cam, "10.20.30.40", "wpad"),
                  _hello(cam, "10.20.30.40", "bad name.example.com")):
        assert [h for h in parse(bytes(frame)) if h.key] == [], frame.summary()
    plain = (Ether(src=cam, dst=ROUTER) / IP(src="10.20.30.40", dst="52.1.2.3")
             / TCP(sport=50000, dport=443, flags="PA") / b"GET / HTTP/1.1\r\n\r\n")
    assert parse(bytes(plain)) == []
    # a name that points back into itself (compression in a query), cut short, or too long
    header = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    assert dns_query_name(header + b"\x03abc\xc0\x0c\x00\x01\x00\x01") is None
    assert dns_query_name(header + b"\x07dropcam\x03co") is None
    assert dns_query_name(header + (b"\x3f" + b"a" * 63) * 5 + b"\x00\x00\x01\x00\x01") is None


def test_an_http_request_names_its_client() -> None:
    tv = "02:aa:00:00:00:60"
    request = (Ether(src=tv, dst=ROUTER) / IP(src="10.20.30.60", dst="52.1.2.3")
               / TCP(sport=50000, dport=80, flags="PA")
               / (b"GET /firmware HTTP/1.1\r\nHost: x\r\nuser-agent:  Roku/DVP-12.5 (12.5.0)"
                  b"\x00\r\n\r\nUser-Agent: in the body, not the head"))
    assert parse(bytes(request)) == [Heard(mac=tv, ip="10.20.30.60", key="http.user_agent",
                                           value="Roku/DVP-12.5 (12.5.0)", routed=True)]
    assert http_user_agent(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") is None
    assert len(http_user_agent(b"GET / HTTP/1.1\r\nUser-Agent: " + b"A" * 5000) or "") <= 512


def test_a_firmware_s_http_client_names_its_maker_and_an_app_names_no_device() -> None:
    """A device's firmware calls its maker by name ('Sonos/57.3', 'Dropcam/5.5'); the
    maker's app on a phone says the platform it runs on ('Ring/3.32.0 (iPhone)', 'Hue/4.0
    CFNetwork'), and that is no camera or lighting bridge. Tools say nothing either."""
    from agent.wire import Observation
    from fingerprints.classify import classify

    for said, expected in (("Sonos/57.3", ("Sonos", "media_player")),
                           ("Dropcam/5.5", ("Dropcam", "camera")),
                           ("Withings UserAgent", ("Withings", "medical")),
                           ("Ring/3.32.0 (iPhone)", (None, None)),
                           ("Hue/4.0 CFNetwork/1220.1 Darwin/20.3.0", ("Apple", None)),
                           ("Nest/5.3 (iOScom.nestlabs.jasper.release)", (None, None)),
                           ("curl/7.68.0", (None, None)), ("okhttp/3.12.1", (None, None))):
        found = classify([Observation("http.user_agent", said, "passive")])
        assert (found.vendor, found.device_type) == expected, said


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_the_name_readers_survive_any_bytes(data: bytes) -> None:
    http_user_agent(b"GET / HTTP/1.1\r\nUser-Agent: " + data)  # never raises
    for reader in (dns_query_name, tls_server_name):
        name = reader(data)
        assert name is None or (0 < len(name) <= 253 and name == name.lower())
    hello = bytes(TLS(msg=[TLSClientHello(ext=[TLS_Ext_ServerName(
        servernames=[ServerName(servername=b"fw.ring.com")])])]))
    assert tls_server_name(hello + data) == "fw.ring.com"  # what follows the record
    assert tls_server_name(hello[:len(data) % len(hello)]) is None  # a record cut short


def test_a_capture_names_iot_devices_by_their_makers_cloud(tmp_path: Path) -> None:
    frames = [
        # a camera and a lighting bridge with no other word about themselves
        _query("02:aa:00:00:00:40", "10.20.30.40", "oculus519.dropcam.com"),
        _hello("02:aa:00:00:00:40", "10.20.30.40", "nexus.dropcam.com"),
        _query("02:aa:00:00:00:41", "10.20.30.41", "ws.meethue.com"),
        # a camera whose lookup was cached before the capture began: its plain HTTP
        # request's Host names the cloud all the same
        Ether(src="02:aa:00:00:00:42", dst=ROUTER) / IP(src="10.20.30.42", dst="52.1.2.4")
        / TCP(sport=50002, dport=80, flags="PA")
        / b"POST /upload HTTP/1.1\r\nHost: api.wyzecam.com:80\r\nContent-Length: 0\r\n\r\n",
        # the segment's resolver asks for every maker: no name of its own from that
        *(_query("02:aa:00:00:00:02", "10.20.30.2", name) for name in (
            "fw.ring.com", "ws.meethue.com", "devs.tplinkcloud.com")),
        # an Android phone whose app calls the camera's cloud stays a phone
        Ether(src="02:aa:00:00:00:50", dst="ff:ff:ff:ff:ff:ff")
        / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67)
        / BOOTP(chaddr=bytes.fromhex("02aa00000050"))
        / DHCP(options=[("message-type", "request"), ("requested_addr", "10.20.30.50"),
                        ("param_req_list", [1, 3, 6, 15, 26, 28, 51, 58, 59, 43]), "end"]),
        _query("02:aa:00:00:00:50", "10.20.30.50", "api.ring.com"),
        # a PC, known by its system's own HTTP client, browsing a camera maker's site
        Ether(src="02:aa:00:00:00:51", dst=ROUTER) / IP(src="10.20.30.51", dst="52.1.2.3")
        / TCP(sport=50001, dport=80, flags="PA")
        / b"GET /msdownload/update HTTP/1.1\r\nUser-Agent: Microsoft-CryptoAPI/10.0\r\n\r\n",
        _hello("02:aa:00:00:00:51", "10.20.30.51", "shop.ring.com"),
        # an iPhone (a private MAC, nothing else said) whose app calls the lighting cloud:
        # its system's own check calls Apple, so it names two makers, and is no light
        _query("02:aa:00:00:00:52", "10.20.30.52", "captive.apple.com"),
        _hello("02:aa:00:00:00:52", "10.20.30.52", "ws.meethue.com"),
    ]
    capture = tmp_path / "home.pcap"
    wrpcap(str(capture), frames)
    done = subprocess.run([sys.executable, "-m", "agent.cli", "scan", "--pcap", str(capture),
                           "--format", "json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    named = {a["ip"]: (a["identity"].get("vendor"), a["identity"].get("device_type"))
             for a in json.loads(done.stdout)}
    assert named["10.20.30.40"] == ("Google Nest", "camera")
    assert named["10.20.30.41"] == ("Signify", "lighting")
    assert named["10.20.30.42"] == ("Wyze", "camera")
    assert named["10.20.30.2"] == (None, None)
    assert named["10.20.30.50"][1] == "mobile"
    assert named["10.20.30.51"] == ("Microsoft", "workstation")
    assert named["10.20.30.52"] == (None, None)


def test_a_host_name_follows_its_factory_habit_in_mdns_and_netbios_too() -> None:
    from agent.wire import Observation
    from fingerprints.classify import classify

    for key, name, expected in (("mdns.hostname", "BRW0080927AFBCD", ("Brother", "printer")),
                                ("netbios.name", "DESKTOP-4F2K9QZ", (None, "workstation")),
                                ("netbios.name", "KOMMUNE-PC042", (None, None))):
        found = classify([Observation(key, name, "passive")])
        assert (found.vendor, found.device_type) == expected, name


def test_an_mdns_instance_or_txt_model_names_what_its_factory_called_it() -> None:
    """A DNS-SD instance is named by its factory as its maker and model, and a TXT
    record's model entry (HomeKit's md=, IPP's ty=, a printer's USB name) holds the model
    with or without its maker: both are read as the device's own words. A name someone
    chose ('Stue') names nothing. Before, the instance was not read at all, and a model
    entry only where a rule knew the whole record."""
    from agent.wire import Observation
    from fingerprints.classify import classify

    for key, said, expected in (
            ("mdns.instance", "Brother HL-L2350DW series", ("Brother", "printer")),
            ("mdns.instance", "EPSON XP-4100 Series", ("Epson", "printer")),
            ("mdns.instance", "AXIS P1435-LE - ACCC8E1A2B3C", ("Axis Communications", "camera")),
            ("mdns.instance", "shellyplus1pm-a8032ab12345", ("Shelly", "smart_plug")),
            ("mdns.instance", "Stue", (None, None)),
            ("mdns.instance", "Sonos Roam", ("Sonos", "media_player")),  # no model number
            ("mdns.instance", "Philips Hue - 1A2B3C", ("Philips Hue", "lighting")),
            ("mdns.instance", "free wifi", (None, None)),  # a common word, not the ISP
            ("mdns.txt", "md=LIFX Candle; ci=5", ("LIFX", "lighting")),
            ("mdns.txt", "c#=3; md=ecobee3 lite; s#=1", ("ecobee", "bms_controller")),
            ("mdns.txt", "usb_MFG=EPSON; usb_MDL=ET-2750 Series", ("Epson", "printer")),
            ("mdns.txt", "md=Netatmo Relay", ("Netatmo", "bms_controller")),
            ("mdns.txt", "c#=1; md=Living Room; ci=2", (None, "iot_hub"))):
        found = classify([Observation(key, said, "5353/udp")])
        assert (found.vendor, found.device_type) == expected, said


def _dhcp_request(mac: str, host: bytes) -> Any:
    return (Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
            / UDP(sport=68, dport=67) / BOOTP(chaddr=bytes.fromhex(mac.replace(":", "")))
            / DHCP(options=[("message-type", "request"), ("requested_addr", "10.20.30.60"),
                            ("hostname", host), "end"]))


def test_a_day_long_capture_keeps_what_names_a_device_to_the_end(tmp_path: Path) -> None:
    """A device in a day's capture looks up hundreds of names (CDNs, time servers) before it
    renews its lease or calls its maker's cloud: those late words still name it. Once the
    first 32 things a host said were all the evidence kept, and a capture was read only to
    its millionth frame, so the bridge below was named by its MAC's registrant alone."""
    from scapy.utils import PcapWriter

    bridge = "02:aa:00:00:00:60"
    capture = tmp_path / "day.pcap"
    with PcapWriter(str(capture), linktype=1) as out:
        for n in range(60):
            out.write(_query(bridge, "10.20.30.60", f"edge{n}.cdn-example.net"))
        # a million frames of traffic no parser reads (60 bytes each, written as one block)
        filler = bytes(Ether(src=ROUTER, dst=bridge) / IP(src="52.1.2.3", dst="10.20.30.60")
                       / TCP(sport=443, dport=50000, flags="A")).ljust(60, b"\0")
        out.flush()
        out.f.write((struct.pack("<IIII", 1, 0, len(filler), len(filler)) + filler)
                    * 1_000_050)
        out.write(_dhcp_request(bridge, b"Philips-hue"))
        out.write(_query(bridge, "10.20.30.60", "diagnostics.meethue.com"))
    done = subprocess.run([sys.executable, "-m", "agent.cli", "scan", "--pcap", str(capture),
                           "--format", "json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (bridge_asset,) = json.loads(done.stdout)
    assert bridge_asset["identity"]["named_by"].startswith("dhcp.hostname")
    kept = {(o["key"], o["value"]) for o in bridge_asset["observations"]}
    assert ("dns.query", "diagnostics.meethue.com") in kept
    assert not any("cdn-example" in value for _key, value in kept)  # they name nothing
    cut = subprocess.run([sys.executable, "-m", "agent.cli", "scan", "--pcap", str(capture),
                          "--format", "json", "--max-frames", "100"],
                         capture_output=True, text=True)
    assert cut.returncode == 0 and "--max-frames 100" in cut.stderr
    (cut_asset,) = json.loads(cut.stdout)
    assert "dhcp.hostname" not in {o["key"] for o in cut_asset.get("observations", [])}


def test_no_kind_of_announcement_crowds_out_the_rest() -> None:
    """A host that announces forty mDNS services, or looks up forty names a rule reads,
    keeps a few of each, and still the host name it says after them."""
    from fingerprints.classify import names_a_device
    from scanners.passive import MAX_NAMES_PER_HOST, MAX_VALUES_PER_KEY, collect
    from scanners.scope import Scope

    mac = "02:aa:00:00:00:61"
    said = [Heard(mac=mac, ip="10.20.30.61", key="mdns.service", value=f"_svc{n}._tcp")
            for n in range(40)]
    said += [Heard(mac=mac, ip="10.20.30.61", key="tls.sni", value=f"n{n}.ring.com")
             for n in range(40)]
    said.append(Heard(mac=mac, ip="10.20.30.61", key="dhcp.hostname", value="RingCam"))
    said.insert(0, Heard(mac=mac, ip="10.20.30.61", key="dns.query", value="time.example.net"))
    (host,) = collect(said, scope=Scope.from_strings(["10.20.30.0/24"]),
                      telling=names_a_device).values()
    keys = [o.key for o in host.said()]
    assert keys.count("mdns.service") == MAX_VALUES_PER_KEY
    assert keys.count("tls.sni") == MAX_NAMES_PER_HOST
    assert "dhcp.hostname" in keys and "dns.query" not in keys  # the first name names nothing


def test_a_mirror_of_routed_traffic_names_no_router_by_its_clients(tmp_path: Path) -> None:
    """On a mirror port at the core, a client in another VLAN reaches the resolver through
    the router: its DNS query carries the router's MAC and the client's address. Once, the
    router took the last such client's address and every name they looked up. A frame that
    never crosses a router (ARP) says which addresses a MAC holds."""
    from scapy.layers.l2 import ARP

    from fingerprints.classify import names_a_device
    from scanners.passive import read_pcap
    from scanners.scope import Scope

    camera, lone, gateway = "02:aa:00:00:00:40", "02:aa:00:00:00:70", "02:aa:00:00:00:01"
    hidden_router = "02:aa:00:00:00:02"
    frames = [
        Ether(src=gateway, dst="ff:ff:ff:ff:ff:ff")
        / ARP(op=1, hwsrc=gateway, psrc="10.20.30.1", pdst="10.20.30.40"),
        Ether(src=camera, dst=gateway) / ARP(op=2, hwsrc=camera, psrc="10.20.30.40",
                                             pdst="10.20.30.1"),
        _query(camera, "10.20.30.40", "fw.ring.com"),
        # one client behind the gateway is enough: the gateway holds 10.20.30.1, not this
        _query(gateway, "10.20.40.11", "ws.meethue.com"),
        # a router whose own ARP is not in the capture forwards for three clients
        *(_query(hidden_router, f"10.20.50.{n}", "devs.tplinkcloud.com") for n in (11, 12, 13)),
        # a device heard only by its lookups, from one address: its own
        _hello(lone, "10.20.30.70", "api.wyzecam.com"),
    ]
    capture = tmp_path / "core-mirror.pcap"
    wrpcap(str(capture), frames)
    heard = read_pcap(capture, scope=Scope.from_strings(["10.20.0.0/16"]),
                      telling=names_a_device)
    said = {mac: {o.value for o in host.said()} for mac, host in heard.items()}
    assert heard[gateway].address == "10.20.30.1" and said[gateway] == set()
    assert heard[hidden_router].forwards and heard[hidden_router].address is None
    assert said[hidden_router] == set()
    assert heard[camera].address == "10.20.30.40" and said[camera] == {"fw.ring.com"}
    assert heard[lone].address == "10.20.30.70" and said[lone] == {"api.wyzecam.com"}


def test_a_name_looked_up_over_ipv6_counts_under_an_ipv4_scope(tmp_path: Path) -> None:
    """A dual-stack device asks its resolver over IPv6 as often as not. Under an IPv4 scope
    the IPv6 address is no asset of it, but what the device said from it is still the
    device's."""
    from scapy.layers.l2 import ARP

    camera = "02:aa:00:00:00:40"
    lookup = (Ether(src=camera, dst=ROUTER) / IPv6(src="2001:db8:30::40", dst="2001:db8:30::1")
              / UDP(sport=40000, dport=53) / DNS(rd=1, qd=DNSQR(qname="nexus.dropcam.com")))
    frames = [Ether(src=camera, dst="ff:ff:ff:ff:ff:ff")
              / ARP(op=1, hwsrc=camera, psrc="10.20.30.40", pdst="10.20.30.1"), lookup]
    capture = tmp_path / "dual-stack.pcap"
    wrpcap(str(capture), frames)
    done = subprocess.run([sys.executable, "-m", "agent.cli", "scan", "--pcap", str(capture),
                           "--scope", "0.0.0.0/0", "--format", "json"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (asset,) = json.loads(done.stdout)  # the IPv6 address is out of scope: no row of its own
    assert asset["ip"] == "10.20.30.40"
    assert (asset["identity"]["vendor"], asset["identity"]["device_type"]) == (
        "Google Nest", "camera")
    # a lookup from a link-local address (a router that offers a link-local resolver)
    # never crossed a router: it is the MAC's own
    from scanners.passive import collect
    from scanners.scope import Scope

    local = (Ether(src=camera, dst=ROUTER) / IPv6(src="fe80::2aa:ff:fe00:40", dst="fe80::1")
             / UDP(sport=40000, dport=53) / DNS(rd=1, qd=DNSQR(qname="fw.ring.com")))
    (host,) = collect(parse(bytes(local)), scope=Scope.from_strings(["10.20.30.0/24"])).values()
    assert [(o.key, o.value) for o in host.said()] == [("dns.query", "fw.ring.com")]

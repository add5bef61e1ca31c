"""Passive parsers on frames as devices send them (built with scapy to the formats of real
captures: a Windows DHCP request, an IPP printer's mDNS announcement, a switch's LLDP)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.contrib.lldp import (
    LLDPDUChassisID,
    LLDPDUEndOfLLDPDU,
    LLDPDUManagementAddress,
    LLDPDUPortID,
    LLDPDUSystemDescription,
    LLDPDUSystemName,
    LLDPDUTimeToLive,
)
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether

from scanners.passive_parse import Heard, interesting, parse

PC = "d0:43:1e:10:20:12"


def test_dhcp_request_names_hostname_vendor_class_and_parameters() -> None:
    frame = bytes(
        Ether(src=PC, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67) / BOOTP(chaddr=bytes.fromhex(PC.replace(":", "")))
        / DHCP(options=[("message-type", "request"), ("requested_addr", "10.20.10.12"),
                        ("hostname", b"KOMMUNE-PC042"), ("vendor_class_id", b"MSFT 5.0"),
                        ("param_req_list", [1, 3, 6, 15, 31, 33, 43, 44, 46, 47, 119, 121, 249,
                                            252]), "end"]))
    heard = parse(frame)
    assert Heard(mac=PC, ip="10.20.10.12", claimed=True) in heard
    observed = {h.key: h.value for h in heard if h.key}
    assert observed == {"dhcp.hostname": "KOMMUNE-PC042", "dhcp.vendor_class": "MSFT 5.0",
                        "dhcp.params": "1,3,6,15,31,33,43,44,46,47,119,121,249,252"}


def test_mdns_announcement_names_services_txt_and_claimed_address() -> None:
    printer = "64:4e:d7:10:20:11"
    answers = [DNSRR(rrname="_ipp._tcp.local.", type="PTR", rdata="HP LaserJet._ipp._tcp.local."),
               DNSRR(rrname="HP LaserJet._ipp._tcp.local.", type="TXT",
                     rdata=[b"ty=HP LaserJet MFP M426fdn", b"pdl=application/pdf"]),
               DNSRR(rrname="NPI1A2B3C.local.", type="A", rdata="10.20.10.11")]
    frame = bytes(Ether(src=printer, dst="01:00:5e:00:00:fb")
                  / IP(src="10.20.10.11", dst="224.0.0.251") / UDP(sport=5353, dport=5353)
                  / DNS(qr=1, aa=1, an=answers))
    heard = parse(frame)
    observed = {(h.key, h.value) for h in heard if h.key}
    assert ("mdns.service", "_ipp._tcp") in observed
    assert ("mdns.txt", "ty=HP LaserJet MFP M426fdn; pdl=application/pdf") in observed
    assert Heard(mac=printer, ip="10.20.10.11", claimed=True) in heard


def test_an_mdns_query_s_known_answers_are_other_devices_records() -> None:
    """A phone browsing for Chromecasts and AirPlay speakers lists the answers it already
    knows in its query (RFC 6762, 7.1): those records are the speakers', not the phone's.
    Read as the phone's own, every iPhone on a segment was a media player by its services.
    A device probing for its own name (RFC 6762, 8.1) proposes its records in the
    authority section: those are its own."""
    phone = "f0:18:98:10:20:30"
    known = [DNSRR(rrname="_googlecast._tcp.local.", type="PTR",
                   rdata="Chromecast-1a2b._googlecast._tcp.local."),
             DNSRR(rrname="_airplay._tcp.local.", type="PTR", rdata="Stue._airplay._tcp.local.")]
    query = bytes(Ether(src=phone, dst="01:00:5e:00:00:fb")
                  / IP(src="10.20.10.30", dst="224.0.0.251") / UDP(sport=5353, dport=5353)
                  / DNS(qr=0, qd=[DNSQR(qname="_googlecast._tcp.local.", qtype="PTR")],
                        an=known))
    assert not [h for h in parse(query) if h.key], parse(query)
    printer = "64:4e:d7:10:20:11"
    probe = bytes(Ether(src=printer, dst="01:00:5e:00:00:fb")
                  / IP(src="10.20.10.11", dst="224.0.0.251") / UDP(sport=5353, dport=5353)
                  / DNS(qr=0, qd=[DNSQR(qname="NPI1A2B3C.local.", qtype="ALL")],
                        ns=[DNSRR(rrname="NPI1A2B3C.local.", type="A", rdata="10.20.10.11")]))
    assert ("mdns.hostname", "NPI1A2B3C") in {(h.key, h.value) for h in parse(probe)}


def test_an_mdns_instance_name_is_kept_as_the_device_s_own_name() -> None:
    """A DNS-SD instance (RFC 6763, 4.1) is named by its device: its maker and model until
    someone renames it ('Brother HL-L2350DW series', 'shellyplus1pm-a8032ab12345'). The
    name is read from the PTR's target and from the SRV and TXT records' owner names,
    dots and spaces kept; a reverse-lookup PTR or the service listing names no instance."""
    plug = "a8:03:2a:b1:23:45"
    answers = [DNSRR(rrname="_http._tcp.local.", type="PTR",
                     rdata="shellyplus1pm-a8032ab12345._http._tcp.local."),
               DNSRR(rrname="_printer._sub._http._tcp.local.", type="PTR",
                     rdata="Brother HL-L2350DW series._http._tcp.local."),
               DNSRR(rrname="_services._dns-sd._udp.local.", type="PTR",
                     rdata="_shelly._tcp.local."),
               DNSRR(rrname="45.10.20.10.in-addr.arpa.", type="PTR", rdata="plug.local."),
               DNSRR(rrname="Stue v2.1._hap._tcp.local.", type="TXT", rdata=[b"md=Plug"])]
    frame = bytes(Ether(src=plug, dst="01:00:5e:00:00:fb")
                  / IP(src="10.20.10.45", dst="224.0.0.251") / UDP(sport=5353, dport=5353)
                  / DNS(qr=1, aa=1, an=answers))
    named = sorted(str(h.value) for h in parse(frame) if h.key == "mdns.instance")
    assert named == ["Brother HL-L2350DW series", "Stue v2.1", "shellyplus1pm-a8032ab12345"]
    long = bytes(Ether(src=plug, dst="01:00:5e:00:00:fb")
                 / IP(src="10.20.10.45", dst="224.0.0.251") / UDP(sport=5353, dport=5353)
                 / DNS(qr=1, aa=1, an=[DNSRR(rrname="_http._tcp.local.", type="PTR",
                                             rdata="<b>" + "x" * 60 + "._http._tcp.local.")]))
    assert [len(str(h.value)) for h in parse(long) if h.key == "mdns.instance"] == [63]


SCALANCE = (b"Siemens, SIMATIC NET, SCALANCE XC208, 6GK5 208-0BA00-2AC2, HW: Version 1, "
            b"FW: Version V04.01.00, SVPH1234567")


def _mdns_answer(mac: str, sender: str, answers: list[Any]) -> bytes:
    return bytes(Ether(src=mac, dst="01:00:5e:00:00:fb") / IP(src=sender, dst="224.0.0.251")
                 / UDP(sport=5353, dport=5353) / DNS(qr=1, aa=1, an=answers))


def test_a_sleep_proxy_s_answer_for_a_sleeping_mac_is_not_its_own() -> None:
    """An Apple TV is the Bonjour Sleep Proxy for the Macs asleep on its segment: it answers
    for them, from its own MAC and address, beside its own records. The Mac's host name,
    services, instance, model and address are the Mac's. Read as the Apple TV's, it took the
    Mac's host name (a fact the bridging check compares) and claimed the Mac's address."""
    from scapy.layers.dns import DNSRRSRV

    apple_tv = "d0:03:4b:10:20:40"
    answers = [
        DNSRR(rrname="_airplay._tcp.local.", type="PTR", rdata="Stue._airplay._tcp.local."),
        DNSRR(rrname="Stue._airplay._tcp.local.", type="TXT", rdata=[b"model=AppleTV11,1"]),
        DNSRRSRV(rrname="Stue._airplay._tcp.local.", target="Stue.local.", port=7000),
        DNSRR(rrname="Stue.local.", type="A", rdata="10.20.10.40"),
        # the sleeping Mac's, proxied
        DNSRR(rrname="_smb._tcp.local.", type="PTR", rdata="Laerer-Mac._smb._tcp.local."),
        DNSRR(rrname="Laerer-Mac._smb._tcp.local.", type="TXT", rdata=[b"model=MacBookPro16,1"]),
        DNSRRSRV(rrname="Laerer-Mac._smb._tcp.local.", target="Laerer-Mac.local.", port=445),
        DNSRR(rrname="Laerer-Mac.local.", type="A", rdata="10.20.10.41"),
        DNSRR(rrname="Laerer-Mac.local.", type="AAAA", rdata="fe80::1c2b:3a4d:5e6f:7081")]
    heard = parse(_mdns_answer(apple_tv, "10.20.10.40", answers))
    assert {(h.key, h.value) for h in heard if h.key} == {
        ("mdns.service", "_airplay._tcp"), ("mdns.txt", "model=AppleTV11,1"),
        ("mdns.instance", "Stue"), ("mdns.hostname", "Stue")}
    assert not [h for h in heard if h.claimed and h.ip != "10.20.10.40"], heard


def test_a_sleep_proxy_s_answer_holding_only_the_mac_s_records_is_not_its_own() -> None:
    """The Apple TV answers a browse for the sleeping Mac with the Mac's records alone (no
    record of its own in that message). One such message looks like a device with two legs
    naming its other address; but over the scan the Apple TV announces itself as ``Stue``,
    and a host of another name is someone else's. Before, the Apple TV took the Mac's name,
    model and address."""
    from scapy.layers.dns import DNSRRSRV

    from scanners.passive import claims, collect
    from scanners.scope import Scope

    apple_tv = "d0:03:4b:10:20:40"
    own = [DNSRR(rrname="_airplay._tcp.local.", type="PTR", rdata="Stue._airplay._tcp.local."),
           DNSRR(rrname="Stue._airplay._tcp.local.", type="TXT", rdata=[b"model=AppleTV11,1"]),
           DNSRR(rrname="Stue.local.", type="A", rdata="10.20.10.40")]
    mac = [DNSRR(rrname="_smb._tcp.local.", type="PTR", rdata="Laerer-Mac._smb._tcp.local."),
           DNSRR(rrname="Laerer-Mac._smb._tcp.local.", type="TXT", rdata=[b"model=MacBookPro16,1"]),
           DNSRRSRV(rrname="Laerer-Mac._smb._tcp.local.", target="Laerer-Mac.local.", port=445),
           DNSRR(rrname="Laerer-Mac.local.", type="A", rdata="10.20.10.41")]
    frames = [_mdns_answer(apple_tv, "10.20.10.40", own), _mdns_answer(apple_tv, "10.20.10.40", mac)]
    (host,) = collect([h for f in frames for h in parse(f)],
                      scope=Scope.from_strings(["10.20.0.0/16"])).values()
    said = {(o.key, o.value) for o in host.said()}
    assert ("mdns.txt", "model=AppleTV11,1") in said and ("mdns.hostname", "Stue") in said
    assert not [o for o in said if "Mac" in o[1]], said
    assert claims(host) == []


def test_an_mdns_gateway_s_answer_for_other_segments_says_nothing_of_its_own() -> None:
    """A wireless controller's mDNS gateway answers a browse with every printer it knows,
    in other segments too, from its own address. None of the hosts is the gateway: neither
    their services (the gateway is no printer) nor their names and addresses."""
    from scapy.layers.dns import DNSRRSRV

    gateway = "00:1a:1e:10:20:01"
    answers = []
    for name, address in (("NPI1A2B3C", "10.20.40.11"), ("BRW3C2AF4", "10.20.50.12")):
        answers += [
            DNSRR(rrname="_ipp._tcp.local.", type="PTR", rdata=f"{name}._ipp._tcp.local."),
            DNSRR(rrname=f"{name}._ipp._tcp.local.", type="TXT", rdata=[b"ty=Printer"]),
            DNSRRSRV(rrname=f"{name}._ipp._tcp.local.", target=f"{name}.local.", port=631),
            DNSRR(rrname=f"{name}.local.", type="A", rdata=address)]
    heard = parse(_mdns_answer(gateway, "10.20.10.1", answers))
    assert heard == [Heard(mac=gateway, ip="10.20.10.1", local=True)]


def _printer_records(name: str, address: str, model: str) -> list[Any]:
    from scapy.layers.dns import DNSRRSRV

    return [DNSRR(rrname="_ipp._tcp.local.", type="PTR", rdata=f"{name}._ipp._tcp.local."),
            DNSRR(rrname=f"{name}._ipp._tcp.local.", type="TXT", rdata=[f"ty={model}".encode()]),
            DNSRRSRV(rrname=f"{name}._ipp._tcp.local.", target=f"{name}.local.", port=631),
            DNSRR(rrname=f"{name}.local.", type="A", rdata=address)]


def test_a_reflector_repeating_one_device_a_message_is_told_from_a_device_with_two_legs() -> None:
    """Avahi's reflector (a Linux box with a leg in each segment) repeats each device's
    announcement alone, from its own address. One message cannot tell it from a printer
    with two legs naming its other address; a night of them can: the reflector repeats
    several hosts. Its own announcement stays its own, and the printers' services, models,
    names and addresses are not its (it was a printer claiming the other zone's addresses);
    a device that names one other address keeps what it said."""
    from scanners.passive import claims, collect
    from scanners.scope import Scope

    reflector, printer = "52:54:00:10:20:02", "00:80:77:10:20:11"
    own = [DNSRR(rrname="_ssh._tcp.local.", type="PTR", rdata="relay._ssh._tcp.local."),
           DNSRR(rrname="relay.local.", type="A", rdata="10.20.10.2")]
    frames = [_mdns_answer(reflector, "10.20.10.2", own),
              _mdns_answer(reflector, "10.20.10.2",
                           _printer_records("NPI1A2B3C", "10.20.40.11", "HP LaserJet M426")),
              _mdns_answer(reflector, "10.20.10.2",
                           _printer_records("BRW3C2AF4", "10.20.50.12", "Brother HL-L2350DW")),
              # a printer with two legs, announcing on this one only its other address
              _mdns_answer(printer, "10.20.10.11",
                           _printer_records("EPSON1A2B3C", "192.168.0.11", "EPSON ET-2750"))]
    hosts = collect([h for f in frames for h in parse(f)],
                    scope=Scope.from_strings(["10.20.0.0/16", "192.168.0.0/24"]))
    assert {(o.key, o.value) for o in hosts[reflector].said()} == {
        ("mdns.service", "_ssh._tcp"), ("mdns.instance", "relay"), ("mdns.hostname", "relay")}
    assert claims(hosts[reflector]) == []
    assert ("mdns.txt", "ty=EPSON ET-2750") in {(o.key, o.value) for o in hosts[printer].said()}
    assert [o.value for o in claims(hosts[printer])] == ["192.168.0.11"]


def test_a_reflector_repeating_one_device_beside_its_own_name_is_a_reflector() -> None:
    """A Linux box with a leg in the office and one in the printers' segment runs Avahi's
    reflector and announces itself (``relay``). On a quiet segment it repeats one printer
    only. One other host is what a device with two legs says of its other address, but such
    a device names itself by one name on every leg: a host not of the sender's own name is
    someone else's. Before, the reflector took the printer's model and claimed its address
    (a bridge into the printers' zone). A printer with two legs that announces itself by
    the same name on this leg and names its other address keeps the claim."""
    from scanners.passive import claims, collect
    from scanners.scope import Scope

    reflector, printer = "52:54:00:10:20:02", "00:80:77:10:20:11"
    own = [DNSRR(rrname="_ssh._tcp.local.", type="PTR", rdata="relay._ssh._tcp.local."),
           DNSRR(rrname="relay.local.", type="A", rdata="10.20.10.2")]
    epson = _printer_records("EPSON1A2B3C", "10.20.10.11", "EPSON ET-2750")
    frames = [_mdns_answer(reflector, "10.20.10.2", own),
              _mdns_answer(reflector, "10.20.10.2",
                           _printer_records("NPI1A2B3C", "10.20.40.11", "HP LaserJet M426")),
              _mdns_answer(printer, "10.20.10.11", epson),
              _mdns_answer(printer, "10.20.10.11",
                           [DNSRR(rrname="EPSON1A2B3C.local.", type="A", rdata="192.168.0.11")])]
    hosts = collect([h for f in frames for h in parse(f)],
                    scope=Scope.from_strings(["10.20.0.0/16", "192.168.0.0/24"]))
    assert {(o.key, o.value) for o in hosts[reflector].said()} == {
        ("mdns.service", "_ssh._tcp"), ("mdns.instance", "relay"), ("mdns.hostname", "relay")}
    assert claims(hosts[reflector]) == []
    assert [o.value for o in claims(hosts[printer])] == ["192.168.0.11"]


def test_the_active_browse_tells_a_reflector_of_one_device_by_its_own_name() -> None:
    """The browse hears the reflector's own answer and its repeat of one printer: the
    printer is not the reflector's; a camera naming its other leg under its own name is."""
    from scanners.mdns import _fold, _own_or_repeated
    from scanners.scope import Scope

    def answer(records: list[Any]) -> bytes:
        return bytes(DNS(qr=1, aa=1, an=records))

    camera = [DNSRR(rrname="axis-1.local.", type="A", rdata="10.20.10.81")]
    answers = [(answer([DNSRR(rrname="relay.local.", type="A", rdata="10.20.10.2")]), "10.20.10.2"),
               (answer(_printer_records("NPI1A2B3C", "10.20.40.11", "HP LaserJet")), "10.20.10.2"),
               (answer(camera), "10.20.10.81"),
               (answer([DNSRR(rrname="axis-1.local.", type="A", rdata="10.20.60.81")]),
                "10.20.10.81")]
    found: dict[str, list[Any]] = {}
    about: dict[str, dict[Any, str]] = {}
    _fold(answers, Scope.from_strings(["10.20.0.0/16"]), found, about)
    _own_or_repeated(found, about)
    assert {(o.key, o.value) for o in found["10.20.10.2"]} == {("mdns.hostname", "relay")}
    assert ("claim.ipv4", "10.20.60.81") in {(o.key, o.value) for o in found["10.20.10.81"]}


def test_the_active_browse_keeps_a_reflector_s_repeated_answers_apart_too() -> None:
    """The sensor's own mDNS browse reads answers the same way: a reflector answering for
    two hosts says nothing of itself by them; a printer naming its other leg keeps it."""
    from scanners.mdns import _fold, _own_or_repeated
    from scanners.scope import Scope

    def answer(records: list[Any]) -> bytes:
        return bytes(DNS(qr=1, aa=1, an=records))

    answers = [(answer(_printer_records("NPI1A2B3C", "10.20.40.11", "HP LaserJet")), "10.20.10.2"),
               (answer(_printer_records("BRW3C2AF4", "10.20.50.12", "Brother HL")), "10.20.10.2"),
               (answer(_printer_records("EPSON1A2B3C", "192.168.0.11", "EPSON ET")), "10.20.10.11")]
    found: dict[str, list[Any]] = {}
    about: dict[str, dict[Any, str]] = {}
    _fold(answers, Scope.from_strings(["10.20.0.0/16"]), found, about)
    _own_or_repeated(found, about)
    assert not found.get("10.20.10.2")
    assert {(o.key, o.value) for o in found["10.20.10.11"]} >= {
        ("mdns.txt", "ty=EPSON ET"), ("claim.ipv4", "192.168.0.11")}


def test_a_dual_homed_camera_names_its_other_leg_s_ipv6_address_as_a_claim() -> None:
    """A camera announces, on its office leg, its host's AAAA records: its camera-zone leg's
    unique local address among them. That is the other leg's IPv6 address, a claim as an A
    record's address is; it was read as nothing, so a dual-homed camera in IPv6 zones went
    unseen. A link-local address names it on no other link and is no claim."""
    from scanners.passive import claims, collect
    from scanners.scope import Scope

    camera = "ac:cc:8e:10:20:81"
    answers = [DNSRR(rrname="axis-accc8e102081.local.", type="A", rdata="10.20.10.81"),
               DNSRR(rrname="axis-accc8e102081.local.", type="AAAA", rdata="fd20:40::81"),
               DNSRR(rrname="axis-accc8e102081.local.", type="AAAA",
                     rdata="fe80::aecc:8eff:fe10:2081")]
    heard = parse(_mdns_answer(camera, "10.20.10.81", answers))
    (host,) = collect(heard, scope=Scope.from_strings(["10.20.0.0/16", "fd20::/16"])).values()
    assert [(o.key, o.value) for o in claims(host)] == [("claim.ipv6", "fd20:40::81")]
    assert host.address == "10.20.10.81"
    # a device naming twenty temporary IPv6 addresses first still has room for its IPv4 leg
    many = [DNSRR(rrname="axis-accc8e102081.local.", type="AAAA", rdata=f"fd20:40::{n:x}")
            for n in range(0x100, 0x114)]
    heard = parse(_mdns_answer(camera, "10.20.10.81", [
        *many, answers[0], DNSRR(rrname="axis-accc8e102081.local.", type="A",
                                 rdata="192.168.0.81")]))
    (host,) = collect(heard, scope=Scope.from_strings(["10.20.0.0/16", "fd20::/16"])).values()
    named = claims(host)
    assert ("claim.ipv4", "192.168.0.81") in [(o.key, o.value) for o in named]
    assert sum(o.key == "claim.ipv6" for o in named) == 16


def test_lldp_names_the_switch_and_its_management_address() -> None:
    switch = "00:1b:1b:00:00:aa"
    frame = bytes(Ether(src=switch, dst="01:80:c2:00:00:0e")
                  / LLDPDUChassisID(subtype=4, id=switch) / LLDPDUPortID(subtype=5, id=b"1/0/7")
                  / LLDPDUTimeToLive(ttl=120) / LLDPDUSystemName(system_name=b"sw-raadhus-3")
                  / LLDPDUSystemDescription(description=SCALANCE)
                  / LLDPDUManagementAddress(management_address_subtype=1,
                                            management_address=bytes([10, 99, 0, 2]),
                                            interface_numbering_subtype=2, interface_number=1)
                  # its IPv6 management address, and a link-local one that names nothing
                  / LLDPDUManagementAddress(management_address_subtype=2,
                                            management_address=bytes.fromhex(
                                                "fd990000000000000000000000000002"),
                                            interface_numbering_subtype=2, interface_number=1)
                  / LLDPDUManagementAddress(management_address_subtype=2,
                                            management_address=bytes.fromhex(
                                                "fe80000000000000021b1bfffe0000aa"),
                                            interface_numbering_subtype=2, interface_number=1)
                  / LLDPDUEndOfLLDPDU())
    heard = parse(frame)
    assert ("lldp.sysdescr", SCALANCE.decode()) in {(h.key, h.value) for h in heard}
    assert [h.ip for h in heard if h.claimed] == ["10.99.0.2", "fd99::2"]


def test_lldp_keeps_the_system_name_the_central_names_devices_by() -> None:
    switch = "00:1b:1b:00:00:ab"
    frame = bytes(Ether(src=switch, dst="01:80:c2:00:00:0e")
                  / LLDPDUChassisID(subtype=4, id=switch) / LLDPDUPortID(subtype=5, id=b"7")
                  / LLDPDUTimeToLive(ttl=120) / LLDPDUSystemName(system_name=b"sw-skole-1")
                  / LLDPDUEndOfLLDPDU())
    assert ("lldp.sysname", "sw-skole-1") in {(h.key, h.value) for h in parse(frame)}


def test_arp_and_what_is_skipped() -> None:
    arp = bytes(Ether(src="00:13:ea:10:40:33", dst="ff:ff:ff:ff:ff:ff")
                / ARP(op=1, hwsrc="00:13:ea:10:40:33", psrc="10.20.40.33", pdst="10.20.40.1"))
    # ARP never crosses a router: the sender is on this wire with that address
    assert parse(arp) == [Heard(mac="00:13:ea:10:40:33", ip="10.20.40.33", local=True)]
    tcp = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2", proto=6) / (b"\x00" * 20))
    assert not interesting(tcp) and parse(tcp) == []
    assert parse(b"\x00" * 13) == []
    assert parse(arp[:20]) == []  # truncated: nothing, and no exception


def _scan_capture(path: Any, frames: list[Any]) -> list[dict[str, Any]]:
    """Write ``frames`` to a capture at ``path`` and read it as the technician does
    (``netvagt-agent scan --pcap FILE --format json``): the rows it prints."""
    import json

    from scapy.utils import wrpcap

    wrpcap(str(path), frames)
    done = subprocess.run([sys.executable, "-m", "agent.cli", "scan", "--pcap", str(path),
                           "--format", "json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def _eve_plug(source: str, txt: list[bytes]) -> Any:
    """A HomeKit plug's mDNS answer, sent from and naming ``source`` (its AAAA record)."""
    from scapy.layers.inet6 import IPv6

    return (Ether(src="a8:03:2a:76:06:01", dst="33:33:00:00:00:fb")  # Espressif: no kind
            / IPv6(src=source, dst="ff02::fb") / UDP(sport=5353, dport=5353)
            / DNS(qr=1, aa=1, an=[
                DNSRR(rrname="_hap._tcp.local.", type="PTR", rdata="Eve Energy 1A2B._hap._tcp.local."),
                DNSRR(rrname="Eve Energy 1A2B._hap._tcp.local.", type="TXT", rdata=txt),
                DNSRR(rrname="Eve-Energy-1A2B.local.", type="AAAA", rdata=source)]))


def test_scan_pcap_reads_a_capture_and_names_what_it_heard(tmp_path) -> None:
    dhcp = (Ether(src=PC, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
            / UDP(sport=68, dport=67) / BOOTP(chaddr=bytes.fromhex(PC.replace(":", "")))
            / DHCP(options=[("message-type", "request"), ("requested_addr", "10.20.10.12"),
                            ("hostname", b"KOMMUNE-PC042"), ("vendor_class_id", b"MSFT 5.0"),
                            "end"]))
    hue = (Ether(src="00:17:88:aa:bb:cc", dst="01:00:5e:00:00:fb")
           / IP(src="10.20.30.60", dst="224.0.0.251") / UDP(sport=5353, dport=5353)
           / DNS(qr=1, aa=1, an=[DNSRR(rrname="_hue._tcp.local.", type="PTR",
                                       rdata="Hue Bridge - 1A2B3C._hue._tcp.local.")]))
    noise = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=9)
    frames: list[Any] = [dhcp, hue, noise, Ether() / b"\x00" * 30]
    assets = {a["ip"]: a for a in _scan_capture(tmp_path / "segment.pcap", frames)}
    assert set(assets) == {"10.20.10.12", "10.20.30.60"}
    assert assets["10.20.10.12"]["identity"]["device_type"] == "workstation"
    assert assets["10.20.30.60"]["identity"]["vendor"] == "Signify"
    assert all(a["sources"] == ["passive"] for a in assets.values())
    bad = tmp_path / "not.pcap"
    bad.write_text("hello")
    refused = subprocess.run([sys.executable, "-m", "agent.cli", "scan", "--pcap", str(bad)],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "not a readable capture" in refused.stderr


def test_scan_pcap_names_a_device_heard_over_ipv6_only(tmp_path) -> None:
    """A Matter plug on Wi-Fi speaks IPv6 only: its mDNS comes from its unique local
    address. The capture's default scope held IPv4 alone, and what a device said went with
    its IPv4 address only, so the plug was not in the table at all."""
    answer = _eve_plug("fd76:6::a803:2aff:fe76:601",
                       [b"c#=2", b"ff=1", b"id=1A:2B:3C:4D:5E:6F", b"md=Eve Energy",
                        b"pv=1.1", b"s#=1", b"sf=1", b"ci=7"])
    (row,) = _scan_capture(tmp_path / "ipv6-only.pcap", [answer])
    assert (row["ip"], row["mac"]) == ("fd76:6::a803:2aff:fe76:601", "a8:03:2a:76:06:01")
    assert row["identity"]["device_type"] == "smart_plug", row
    # its AAAA record's owner is its host name, as an A record's is
    assert {"key": "mdns.hostname", "value": "Eve-Energy-1A2B",
            "source": "passive"} in row["observations"], row


def test_scan_pcap_names_a_device_heard_from_its_link_local_address_only(tmp_path) -> None:
    """The same plug on a network with no IPv6 prefix: its only address is fe80::, which
    is of every link and was dropped, and the plug with it (a capture of a device's first
    minutes shows this). It is reported at that address, with what it said."""
    local = "fe80::aa03:2aff:fe76:601"
    answer = _eve_plug(local, [b"c#=2", b"md=Eve Energy", b"ci=7"])
    (row,) = _scan_capture(tmp_path / "link-local.pcap", [answer])
    assert (row["ip"], row["mac"]) == (local, "a8:03:2a:76:06:01")
    assert row["identity"]["device_type"] == "smart_plug", row


def test_cdp_names_the_platform_and_management_address() -> None:
    from scapy.contrib.cdp import (
        CDPAddrRecordIPv4,
        CDPMsgAddr,
        CDPMsgDeviceID,
        CDPMsgPlatform,
        CDPv2_HDR,
    )
    from scapy.layers.l2 import LLC, SNAP, Dot3

    from fingerprints.classify import Observation, classify

    switch = "00:1b:54:aa:bb:cc"
    frame = bytes(Dot3(src=switch, dst="01:00:0c:cc:cc:cc") / LLC() / SNAP()
                  / CDPv2_HDR(msg=[CDPMsgDeviceID(val=b"sw-core"),
                                   CDPMsgPlatform(val=b"cisco WS-C2960X-48FPD-L"),
                                   CDPMsgAddr(addr=[CDPAddrRecordIPv4(addr="10.20.10.2")])]))
    heard = parse(frame)
    assert Heard(mac=switch, key="cdp.platform", value="cisco WS-C2960X-48FPD-L") in heard
    assert Heard(mac=switch, ip="10.20.10.2", claimed=True) in heard
    identity = classify([Observation(key="cdp.platform", value="cisco WS-C2960X-48FPD-L")])
    assert (identity.vendor, identity.device_type) == ("Cisco", "switch")


def test_ssdp_notify_names_the_server_and_a_claimed_address() -> None:
    hue = "00:17:88:10:20:60"
    notify = (b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=100\r\n"
              b"LOCATION: http://192.168.7.60:80/description.xml\r\n"
              b"SERVER: Hue/1.0 UPnP/1.0 IpBridge/1.58.0\r\nNTS: ssdp:alive\r\n"
              b"NT: upnp:rootdevice\r\nUSN: uuid:2f402f80-da50-11e1-9b23-001788102060\r\n\r\n")
    frame = bytes(Ether(src=hue, dst="01:00:5e:7f:ff:fa") / IP(src="10.20.10.60",
                  dst="239.255.255.250") / UDP(sport=1900, dport=1900) / notify)
    assert interesting(frame)
    heard = parse(frame)
    assert Heard(mac=hue, ip="10.20.10.60", key="ssdp.server",
                 value="Hue/1.0 UPnP/1.0 IpBridge/1.58.0") in heard
    # the description lives on an address the bridge did not send from: a claim, kept apart
    assert Heard(mac=hue, ip="192.168.7.60", claimed=True) in heard
    search = bytes(Ether(src=hue) / IP(src="10.20.10.60", dst="239.255.255.250")
                   / UDP(sport=40000, dport=1900) / b"M-SEARCH * HTTP/1.1\r\n\r\n")
    assert parse(search) == []
    # a Sonos player searching for its peers says its UPnP stack as its NOTIFY would
    sonos = "5c:aa:fd:10:20:62"
    searching = parse(bytes(Ether(src=sonos) / IP(src="10.20.10.62", dst="239.255.255.250")
                            / UDP(sport=40000, dport=1900)
                            / (b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n"
                               b'MAN: "ssdp:discover"\r\nMX: 1\r\n'
                               b"ST: urn:schemas-upnp-org:device:ZonePlayer:1\r\n"
                               b"USER-AGENT: Linux UPnP/1.0 Sonos/70.3-35220 (ZPS1)\r\n\r\n")))
    assert searching == [Heard(mac=sonos, ip="10.20.10.62", key="ssdp.server",
                               value="Linux UPnP/1.0 Sonos/70.3-35220 (ZPS1)")]
    wemo = "94:10:3e:10:20:61"
    announce = (b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n"
                b"LOCATION: http://10.20.10.61:49153/setup.xml\r\nNTS: ssdp:alive\r\n"
                b"NT: urn:Belkin:device:controllee:1\r\n"
                b"USN: uuid:Socket-1_0-221517K0101769::urn:Belkin:device:controllee:1\r\n\r\n")
    heard = parse(bytes(Ether(src=wemo, dst="01:00:5e:7f:ff:fa") / IP(
        src="10.20.10.61", dst="239.255.255.250") / UDP(sport=1900, dport=1900) / announce))
    assert Heard(mac=wemo, ip="10.20.10.61", key="upnp.description",
                 value="deviceType=urn:Belkin:device:controllee:1") in heard
    # its unicast answer to a phone's M-SEARCH says the same (a capture hears these)
    answer = (b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=86400\r\nEXT:\r\n"
              b"LOCATION: http://10.20.10.61:49153/setup.xml\r\n"
              b"SERVER: Unspecified, UPnP/1.0, Unspecified\r\n"
              b"ST: urn:Belkin:device:controllee:1\r\n"
              b"USN: uuid:Socket-1_0-221517K0101769::urn:Belkin:device:controllee:1\r\n\r\n")
    frame = bytes(Ether(src=wemo, dst=PC) / IP(src="10.20.10.61", dst="10.20.10.12")
                  / UDP(sport=1900, dport=50123) / answer)
    assert interesting(frame)
    said = {(h.key, h.value) for h in parse(frame) if h.key}
    assert said == {("ssdp.server", "Unspecified, UPnP/1.0, Unspecified"),
                    ("upnp.description", "deviceType=urn:Belkin:device:controllee:1")}


def test_mdns_browse_query_and_a_legacy_unicast_answer() -> None:
    from scanners.mdns import parse_answer, query

    asked = DNS(query(("_services._dns-sd._udp", "_ipp._tcp")))
    assert [q.qname for q in asked.qd] == [b"_services._dns-sd._udp.local.", b"_ipp._tcp.local."]
    assert asked.qr == 0 and all(q.qtype == 12 for q in asked.qd)
    answer = bytes(DNS(qr=1, aa=1, an=[
        DNSRR(rrname="_services._dns-sd._udp.local.", type="PTR", rdata="_ipp._tcp.local."),
        DNSRR(rrname="_ipp._tcp.local.", type="PTR", rdata="HP LaserJet._ipp._tcp.local."),
        DNSRR(rrname="HP LaserJet._ipp._tcp.local.", type="TXT", rdata=[b"ty=HP LaserJet"]),
        DNSRR(rrname="NPI1A2B3C.local.", type="A", rdata="10.20.40.11")]))
    heard = parse_answer(answer, "10.20.10.11")
    assert {(h.key, h.value) for h in heard if h.key} == {
        ("mdns.service", "_ipp._tcp"), ("mdns.txt", "ty=HP LaserJet"),
        ("mdns.hostname", "NPI1A2B3C"),  # the A record's owner: the printer's own name
        ("mdns.instance", "HP LaserJet")}
    # the answer's one host holds another address: the printer's other leg, or a host it
    # repeats (a reflector's, were there more than one): marked with the host it is about
    assert Heard(mac="", ip="10.20.40.11", claimed=True, about="npi1a2b3c.local") in heard
    assert {h.about for h in heard if h.key} == {"npi1a2b3c.local"}
    assert parse_answer(b"\x00" * 7, "10.20.10.11") == []


def test_ipv6_neighbour_discovery_names_a_device_s_global_address() -> None:
    from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6ND_NS, IPv6

    from scanners.passive import collect
    from scanners.scope import Scope

    printer = "00:80:77:73:01:40"
    # the printer answers a neighbour solicitation for its global address
    advert = bytes(Ether(src=printer, dst="33:33:00:00:00:01")
                   / IPv6(src="fd73:1::28", dst="ff02::1") / ICMPv6ND_NA(tgt="fd73:1::28"))
    # duplicate address detection: a solicitation from the unspecified address says nothing
    dad = bytes(Ether(src=printer, dst="33:33:ff:00:00:28") / IPv6(src="::", dst="ff02::1:ff00:28")
                / ICMPv6ND_NS(tgt="fd73:1::28"))
    # a solicitation from a link-local address names no address a zone holds
    local = bytes(Ether(src=printer, dst="33:33:ff:00:00:01")
                  / IPv6(src="fe80::280:77ff:fe73:140", dst="ff02::1:ff00:1")
                  / ICMPv6ND_NS(tgt="fd73:1::1"))
    assert parse(advert) == [Heard(mac=printer, ip="fd73:1::28")]
    assert parse(dad) == [] and parse(local) == []
    hosts = collect([*parse(advert), Heard(mac=printer, ip="10.73.1.40")],
                    scope=Scope.from_strings(["10.73.1.0/24", "fd73:1::/64"]))
    assert hosts[printer].ip == "10.73.1.40" and hosts[printer].ip6 == {"fd73:1::28"}


def test_ipv6_router_advertisements_listener_reports_and_mdns_over_ipv6() -> None:
    from scapy.layers.dns import DNS, DNSRR
    from scapy.layers.inet import UDP
    from scapy.layers.inet6 import ICMPv6MLReport2, ICMPv6ND_RA, IPv6

    router = "00:00:5e:00:53:01"
    ra = bytes(Ether(src=router, dst="33:33:00:00:00:01")
               / IPv6(src="fe80::1", dst="ff02::1") / ICMPv6ND_RA(routerlifetime=1800))
    assert Heard(mac=router, key="net.role", value="default-gateway") in parse(ra)
    quiet = bytes(Ether(src=router, dst="33:33:00:00:00:01")
                  / IPv6(src="fe80::1", dst="ff02::1") / ICMPv6ND_RA(routerlifetime=0))
    assert [h for h in parse(quiet) if h.key] == []  # a router, not a default router

    host = "3c:2a:f4:10:30:40"
    mld = bytes(Ether(src=host, dst="33:33:00:00:00:16")
                / IPv6(src="fd73:1::40", dst="ff02::16", hlim=1) / ICMPv6MLReport2())
    assert Heard(mac=host, ip="fd73:1::40") in parse(mld)
    from_link_local = bytes(Ether(src=host, dst="33:33:00:00:00:16")
                            / IPv6(src="fe80::3e2a:f4ff:fe10:3040", dst="ff02::16", hlim=1)
                            / ICMPv6MLReport2())
    assert parse(from_link_local) == [Heard(mac=host)]  # present, by MAC; no global name

    printer = "3c:2a:f4:10:30:41"
    mdns6 = bytes(Ether(src=printer, dst="33:33:00:00:00:fb")
                  / IPv6(src="fe80::3e2a:f4ff:fe10:3041", dst="ff02::fb")
                  / UDP(sport=5353, dport=5353)
                  / DNS(qr=1, aa=1, an=DNSRR(rrname="_ipp._tcp.local.", type="PTR",
                                             rdata="Brother HL._ipp._tcp.local.")))
    assert ("mdns.service", "_ipp._tcp") in {(h.key, h.value) for h in parse(mdns6)}


def test_lldp_and_cdp_capabilities_say_what_a_device_is_for() -> None:
    """A desk phone's LLDP says telephone (and bridge, for its PC port), an access point's
    WLAN AP; CDP's capability bits say the same in other words."""
    from scapy.contrib.cdp import CDPMsgCapabilities, CDPMsgDeviceID, CDPv2_HDR
    from scapy.contrib.lldp import LLDPDUSystemCapabilities
    from scapy.layers.l2 import LLC, SNAP, Dot3

    from fingerprints.classify import Observation, classify

    phone = "80:5e:c0:12:34:56"
    lldp = bytes(Ether(src=phone, dst="01:80:c2:00:00:0e")
                 / LLDPDUChassisID(subtype=4, id=phone) / LLDPDUPortID(subtype=3, id=phone)
                 / LLDPDUTimeToLive(ttl=120)
                 / LLDPDUSystemCapabilities(telephone_available=1, telephone_enabled=1,
                                            mac_bridge_available=1, mac_bridge_enabled=1,
                                            router_available=1)  # available, not enabled
                 / LLDPDUEndOfLLDPDU())
    said = {(h.key, h.value) for h in parse(lldp)}
    assert ("lldp.capabilities", "telephone,bridge") in said
    assert classify([Observation(key="lldp.capabilities", value="telephone,bridge")]
                    ).device_type == "voip_phone"

    ap = "00:11:22:33:44:55"
    cdp = bytes(Dot3(src=ap, dst="01:00:0c:cc:cc:cc") / LLC() / SNAP()
                / CDPv2_HDR(msg=[CDPMsgDeviceID(val=b"ap-2-sal"),
                                 CDPMsgCapabilities(cap=0x80 | 0x08)]))  # phone + switch
    assert ("cdp.capabilities", "telephone,bridge") in {(h.key, h.value) for h in parse(cdp)}
    routes_and_bridges = classify([Observation(key="lldp.capabilities", value="router,bridge")])
    assert routes_and_bridges.device_type is None  # an L3 switch or a router: left open
    assert classify([Observation(key="cdp.capabilities", value="router")]
                    ).device_type == "router"


def test_a_capture_from_any_interface_or_a_trunk_mirror_is_read_like_ethernet(tmp_path) -> None:
    """'tcpdump -i any' writes cooked frames (SLL, and SLL2 since libpcap 1.10): the sender's
    MAC and the protocol, no Ethernet header. A mirror of a trunk port keeps the 802.1Q tags
    (two with QinQ). Read as plain Ethernet, every one of these frames named nothing."""
    from scapy.contrib.cdp import CDPMsgDeviceID, CDPMsgPlatform, CDPv2_HDR
    from scapy.layers.l2 import LLC, SNAP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q
    from scapy.utils import wrpcap

    from scanners.passive import FrameStats, read_pcap
    from scanners.scope import Scope

    dhcp = (IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67)
            / BOOTP(chaddr=bytes.fromhex(PC.replace(":", "")))
            / DHCP(options=[("message-type", "request"), ("requested_addr", "10.20.10.12"),
                            ("hostname", b"KOMMUNE-PC042"), "end"]))
    arp = ARP(op=1, psrc="10.20.10.7", hwsrc="00:1b:1b:00:00:07", pdst="10.20.10.1")
    cdp = (LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0x0C, code=0x2000)
           / CDPv2_HDR(msg=[CDPMsgDeviceID(val=b"SEP6C03B5102041"),
                            CDPMsgPlatform(val=b"Cisco IP Phone 8845")]))
    scope = Scope.from_strings(["0.0.0.0/0"])
    sll, sll2 = tmp_path / "sll.pcap", tmp_path / "sll2.pcap"
    wrpcap(str(sll), [CookedLinux(pkttype=4, lladdrtype=1, lladdrlen=6,
                                  src=bytes.fromhex(PC.replace(":", "")) + b"\0\0",
                                  proto=0x0800) / dhcp,
                      CookedLinux(pkttype=2, lladdrtype=1, lladdrlen=6,
                                  src=bytes.fromhex("6c03b5102041") + b"\0\0", proto=4) / cdp],
           linktype=113)
    wrpcap(str(sll2), [CookedLinuxV2(proto=0x0806, lladdrtype=1, pkttype=1, lladdrlen=6,
                                     src=bytes.fromhex("001b1b000007") + b"\0\0") / arp],
           linktype=276)
    heard = read_pcap(sll, scope=scope)
    assert heard[PC].address == "10.20.10.12"
    assert ("dhcp.hostname", "KOMMUNE-PC042") in [(o.key, o.value) for o in heard[PC].observations]
    assert ("cdp.platform", "Cisco IP Phone 8845") in [
        (o.key, o.value) for o in heard["6c:03:b5:10:20:41"].observations]
    assert read_pcap(sll2, scope=scope)["00:1b:1b:00:00:07"].ip == "10.20.10.7"
    trunk = tmp_path / "trunk.pcap"
    wrpcap(str(trunk), [Ether(src=PC, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=20) / dhcp,
                        Ether(src="00:1b:1b:00:00:07", dst="ff:ff:ff:ff:ff:ff")
                        / Dot1AD(vlan=100) / Dot1Q(vlan=30) / arp])
    tagged = read_pcap(trunk, scope=scope)
    assert tagged[PC].address == "10.20.10.12" and tagged["00:1b:1b:00:00:07"].ip == "10.20.10.7"
    # a link the parsers cannot read is skipped, not misread as Ethernet
    raw = tmp_path / "raw-ip.pcap"
    wrpcap(str(raw), [dhcp], linktype=101)
    stats = FrameStats()
    assert read_pcap(raw, scope=scope, stats=stats) == {} and stats.other_links == {101}
    said = subprocess.run([sys.executable, "-m", "agent.cli", "scan", "--pcap", str(raw)],
                          capture_output=True, text=True)
    assert said.returncode == 0 and "link type 101 were skipped" in said.stderr


def test_a_decrypted_wifi_capture_is_read_like_ethernet(tmp_path) -> None:
    """Many IoT devices are on Wi-Fi only, and their captures are 802.11 frames (with the
    radio's radiotap header, or without), decrypted: the sender is the station by the DS
    bits, the packet follows a SNAP header. Frames built with scapy's own 802.11 layers."""
    from scapy.layers.dot11 import Dot11, Dot11Beacon, Dot11QoS, RadioTap
    from scapy.layers.l2 import LLC, SNAP
    from scapy.utils import wrpcap

    from scanners.passive import read_pcap
    from scanners.scope import Scope

    plug, camera, ap = "50:c7:bf:00:00:01", "a4:da:32:00:00:02", "02:00:00:00:00:fe"
    dhcp = (LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0800)
            / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67)
            / BOOTP(chaddr=bytes.fromhex(plug.replace(":", "")))
            / DHCP(options=[("message-type", "request"), ("requested_addr", "192.168.0.21"),
                            ("hostname", b"HS110"), "end"]))
    arp = (LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0806)
           / ARP(op=2, psrc="192.168.0.22", hwsrc=camera, pdst="192.168.0.1"))
    frames = [
        # station to AP (ToDS): the sender is the second address; a QoS data frame
        RadioTap(present="Flags", Flags="FCS") / Dot11(type=2, subtype=8, FCfield="to_DS",
                                                      addr1=ap, addr2=plug,
                                                      addr3="ff:ff:ff:ff:ff:ff")
        / Dot11QoS() / dhcp / b"\xde\xad\xbe\xef",
        # AP to station (FromDS), relaying the camera's answer: the sender is the third
        RadioTap() / Dot11(type=2, subtype=0, FCfield="from_DS", addr1="ff:ff:ff:ff:ff:ff",
                           addr2=ap, addr3=camera) / arp,
        # a frame the radio received damaged, an encrypted frame and a beacon say nothing
        RadioTap(present="TSFT+Flags", Flags="FCS+badFCS") / Dot11(
            type=2, subtype=0, FCfield="to_DS", addr1=ap, addr2="02:00:00:00:00:08",
            addr3=ap) / arp / b"\x00\x00\x00\x00",
        RadioTap() / Dot11(type=2, subtype=0, FCfield="to_DS+protected", addr1=ap,
                           addr2="02:00:00:00:00:09", addr3=ap) / (b"\x00" * 60),
        RadioTap() / Dot11(type=0, subtype=8, addr2=ap, addr3=ap) / Dot11Beacon(),
    ]
    scope = Scope.from_strings(["0.0.0.0/0"])
    radiotap = tmp_path / "wifi-radiotap.pcap"
    wrpcap(str(radiotap), frames, linktype=127)
    heard = read_pcap(radiotap, scope=scope)
    assert set(heard) == {plug, camera}
    assert heard[plug].address == "192.168.0.21"
    assert ("dhcp.hostname", "HS110") in [(o.key, o.value) for o in heard[plug].observations]
    assert heard[camera].ip == "192.168.0.22"
    bare = tmp_path / "wifi.pcap"
    wrpcap(str(bare), [frames[i][Dot11] for i in (1, 3, 4)], linktype=105)  # no radio header
    assert set(read_pcap(bare, scope=scope)) == {camera}


def test_a_client_that_sends_only_its_fqdn_is_named_by_it() -> None:
    """Some DHCP clients send option 81 (Client FQDN) and no option 12: its first label is
    the host name, in text or in DNS wire format (flag E)."""
    def request(*options: Any) -> list[Heard]:
        frame = (Ether(src=PC, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
                 / UDP(sport=68, dport=67) / BOOTP(chaddr=bytes.fromhex(PC.replace(":", "")))
                 / DHCP(options=[("message-type", "request"), *options, "end"]))
        return [h for h in parse(bytes(frame)) if h.key == "dhcp.hostname"]

    assert [h.value for h in request(("client_FQDN", b"\x00\x00\x00PC042.kommune.local"))] == [
        "PC042"]
    wire = b"\x05\x00\x00\x05PC042\x07kommune\x05local\x00"
    assert [h.value for h in request(("client_FQDN", wire))] == ["PC042"]
    # with a host name too, the host name alone
    assert [h.value for h in request(("hostname", b"PC042"), ("client_FQDN", wire))] == ["PC042"]
    for broken in (b"", b"\x05\x00\x00", b"\x05\x00\x00\x40abc", b"\x00\x00\x00"):
        assert request(("client_FQDN", broken)) == []


def test_an_lldp_med_phone_says_its_class_and_model() -> None:
    """LLDP-MED (ANSI/TIA-1057): class III (a communication endpoint) and the inventory TLVs;
    the serial number is left out, and another organisation's TLVs are not read as MED."""
    from scapy.contrib.lldp import LLDPDUGenericOrganisationSpecific as Org

    from fingerprints.classify import Observation, classify

    phone = "80:5e:c0:10:20:42"
    frame = (Ether(src=phone, dst="01:80:c2:00:00:0e")
             / LLDPDUChassisID(subtype=4, id=phone) / LLDPDUPortID(subtype=5, id=b"WAN")
             / LLDPDUTimeToLive(ttl=120)
             / Org(org_code=0x0012BB, subtype=1, data=b"\x00\x33\x03")  # capabilities, class III
             / Org(org_code=0x0012BB, subtype=7, data=b"66.86.0.15")
             / Org(org_code=0x0012BB, subtype=8, data=b"SERIAL123")
             / Org(org_code=0x0012BB, subtype=9, data=b"Yealink")
             / Org(org_code=0x0012BB, subtype=10, data=b"SIP-T46S")
             / Org(org_code=0x00120F, subtype=1, data=b"\x03\x6c\x00\x10")  # 802.3, not MED
             / LLDPDUEndOfLLDPDU())
    said = {h.key: str(h.value) for h in parse(bytes(frame)) if h.key}
    assert said["lldp.med"] == "class=III; software=66.86.0.15; manufacturer=Yealink; model=SIP-T46S"
    named = classify([Observation("lldp.med", said["lldp.med"])])
    assert (named.vendor, named.model, named.device_type) == ("Yealink", "SIP-T46S", "voip_phone")
    switch = (Ether(src=phone, dst="01:80:c2:00:00:0e") / LLDPDUChassisID(subtype=4, id=phone)
              / LLDPDUPortID(subtype=5, id=b"1") / LLDPDUTimeToLive(ttl=120)
              / Org(org_code=0x0012BB, subtype=1, data=b"\x00\x01\x04") / LLDPDUEndOfLLDPDU())
    med = [str(h.value) for h in parse(bytes(switch)) if h.key == "lldp.med"]
    assert med == ["class=network"]
    assert classify([Observation("lldp.med", med[0])]).device_type is None


def test_a_server_s_answer_in_a_capture_names_the_server(tmp_path) -> None:
    """A phone's app asks a camera for its page, a bridge for its UPnP description, a
    recorder for its stream: the answers' heads say what the servers are, as the active
    probes read them. An answer from the internet (via the router) names nobody here."""
    from scapy.layers.inet import TCP

    camera, bridge, recorder = "c0:56:e3:00:00:41", "00:17:88:00:00:42", "02:aa:00:00:00:43"
    phone, router = "02:aa:00:00:00:50", "02:aa:00:00:00:01"

    def answer(mac: str, ip: str, port: int, payload: bytes) -> Any:
        return (Ether(src=mac, dst=phone) / IP(src=ip, dst="192.168.1.50")
                / TCP(sport=port, dport=50000, flags="PA") / payload)

    description = (b'<?xml version="1.0"?>\r\n<root xmlns="urn:schemas-upnp-org:device-1-0">'
                   b"<device><deviceType>urn:schemas-upnp-org:device:Basic:1</deviceType>"
                   b"<friendlyName>Hue Bridge (192.168.1.42)</friendlyName>"
                   b"<manufacturer>Signify</manufacturer><modelName>Philips hue bridge 2015"
                   b"</modelName><modelNumber>BSB002</modelNumber><serviceList>")  # cut here
    frames = [
        answer(camera, "192.168.1.41", 80,
               b"HTTP/1.1 401 Unauthorized\r\nServer: App-webs/\r\nSet-Cookie: s=1\r\n"
               b'WWW-Authenticate: Digest realm="DS-2CD2142FWD-I", nonce="abc"\r\n\r\n'),
        answer(bridge, "192.168.1.42", 80,
               b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 1900\r\n\r\n"
               + description),
        answer(recorder, "192.168.1.43", 554,
               b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nServer: Rtsp Server/3.0\r\n\r\n"),
        answer(router, "93.184.216.34", 80, b"HTTP/1.1 200 OK\r\nServer: ECS (dcb/7EA3)\r\n\r\n"),
    ]
    heard = {(h.mac, h.key): h.value for frame in frames for h in parse(bytes(frame)) if h.key}
    assert heard == {
        (camera, "http.server"): "App-webs/",
        (camera, "http.www_authenticate"): "DS-2CD2142FWD-I",
        (bridge, "upnp.description"): (
            "deviceType=urn:schemas-upnp-org:device:Basic:1; friendlyName=Hue Bridge "
            "(192.168.1.42); manufacturer=Signify; modelName=Philips hue bridge 2015; "
            "modelNumber=BSB002"),
        (recorder, "rtsp.server"): "Rtsp Server/3.0",
    }
    # not even parsed: on a busy mirror port, the internet's answers would spend the budget
    assert not interesting(bytes(frames[-1])) and interesting(bytes(frames[0]))
    named = {a["mac"]: a["identity"] for a in _scan_capture(tmp_path / "home.pcap", frames)}
    assert named[camera]["device_type"] == "camera"
    assert (named[bridge]["vendor"], named[bridge]["device_type"]) == ("Signify", "lighting")
    assert router not in named  # an internet server's address is no asset of this network


def _tls12_server_flight(subject: str, *, cut: int | None = None) -> bytes:
    """A TLS 1.2 server's first flight as one segment carries it: a ServerHello record, then
    a Certificate record with a self-signed certificate (made with cryptography)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name.from_rfc4514_string(subject)
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    der = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
           .public_key(key.public_key()).serial_number(7).not_valid_before(start)
           .not_valid_after(start + datetime.timedelta(days=3650)).sign(key, hashes.SHA256())
           .public_bytes(serialization.Encoding.DER))
    hello_body = b"\x03\x03" + bytes(32) + b"\x00" + b"\xc0\x2f" + b"\x00"
    hello = b"\x02" + len(hello_body).to_bytes(3, "big") + hello_body
    chain = len(der).to_bytes(3, "big") + der
    certificate = (b"\x0b" + (len(chain) + 3).to_bytes(3, "big")
                   + len(chain).to_bytes(3, "big") + chain)

    def record(body: bytes) -> bytes:
        return b"\x16\x03\x03" + len(body).to_bytes(2, "big") + body

    flight = record(hello) + record(certificate)
    return flight[:cut] if cut else flight


def test_a_server_s_certificate_in_a_capture_names_the_server() -> None:
    """A phone's app opens a printer's or a camera's HTTPS page: in TLS 1.2 the server's
    certificate passes in clear, and its subject is what the active probe reads on 443.
    Only servers at private addresses; a certificate cut by the segment, TLS 1.3 (which
    encrypts it) and lying lengths name nothing."""
    from scapy.layers.inet import TCP

    from fingerprints.classify import Observation, classify
    from scanners.passive_parse import server_certificate

    printer, router = "00:80:77:00:00:61", "02:aa:00:00:00:01"

    def answer(mac: str, ip: str, payload: bytes) -> bytes:
        return bytes(Ether(src=mac, dst="02:aa:00:00:00:50") / IP(src=ip, dst="192.168.1.50")
                     / TCP(sport=443, dport=50000, flags="PA") / payload)

    flight = _tls12_server_flight("CN=BRN3C2AF41B2C3D,O=Brother Industries Ltd.,C=JP")
    heard = {(h.mac, h.key): h.value
             for h in parse(answer(printer, "192.168.1.61", flight)) if h.key}
    assert heard[(printer, "tls.subject")] == "CN=BRN3C2AF41B2C3D,O=Brother Industries Ltd.,C=JP"
    assert len(heard[(printer, "tls.cert_sha256")] or "") == 64
    # a device's own certificate names its maker as the organisation: Brother, a printer
    named = classify([Observation("tls.subject", heard[(printer, "tls.subject")] or "")])
    assert (named.vendor, named.device_type) == ("Brother", "printer")
    from_internet = answer(router, "93.184.216.34", flight)
    assert not interesting(from_internet) and parse(from_internet) == []
    assert server_certificate(flight[:len(flight) - 20]) == []  # the leaf cut by the segment
    tls13 = flight[:flight.index(b"\x16\x03\x03", 5)] + b"\x14\x03\x03\x00\x01\x01"
    assert server_certificate(tls13) == []
    lying = flight[:5] + b"\x02\xff\xff\xff" + flight[9:]
    assert server_certificate(lying) == []


def test_the_listener_leaves_the_answers_to_its_own_probes_to_the_probes() -> None:
    """Beside an active scan, the listener hears the answers to the sensor's own questions
    (pages, SSDP answers): the probes report those, so the listener skips IP addressed to
    the sensor; ARP and neighbour discovery addressed to it still say who is there."""
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import ICMPv6ND_NS, IPv6

    from scanners.passive_parse import answer_to_us

    page = bytes(Ether(src=PC, dst="02:00:00:00:00:aa") / IP(src="10.20.10.12", dst="10.20.10.2")
                 / TCP(sport=80, dport=40000, flags="PA") / b"HTTP/1.1 200 OK\r\n\r\n")
    ssdp6 = bytes(Ether(src=PC) / IPv6(src="2001:db8::12", dst="2001:db8::2")
                  / UDP(sport=1900, dport=40000) / b"HTTP/1.1 200 OK\r\n\r\n")
    arp = bytes(Ether(src=PC) / ARP(op=1, psrc="10.20.10.12", pdst="10.20.10.2"))
    solicit = bytes(Ether(src=PC) / IPv6(src="2001:db8::12", dst="2001:db8::2")
                    / ICMPv6ND_NS(tgt="2001:db8::2"))
    assert answer_to_us(page) and answer_to_us(ssdp6)
    assert not answer_to_us(arp) and not answer_to_us(solicit)


def _kasa_obscure(text: bytes) -> bytes:
    """The Kasa app's obscuring, written the way python-kasa writes it (XorEncryption)."""
    key, out = 171, bytearray()
    for byte in text:
        key ^= byte
        out.append(key)
    return bytes(out)


def test_a_tp_link_plug_s_discovery_answer_names_it() -> None:
    """Kasa answers its app's broadcast on UDP 9999 with its system information, obscured by
    a chained XOR; Tapo answers on 20002, a 16-byte header and plain JSON. Hostile JSON (a
    list, a number where a name goes, bytes that decode to nothing) names nothing."""
    import json

    from fingerprints.classify import classify
    from fingerprints.observation import Observation

    plug = "50:c7:bf:00:00:21"

    def answer(port: int, payload: bytes) -> list[Heard]:
        return parse(bytes(Ether(src=plug, dst=PC) / IP(src="192.168.0.21", dst="192.168.0.50")
                           / UDP(sport=port, dport=50000) / payload))

    sysinfo = {"system": {"get_sysinfo": {
        "sw_ver": "1.5.4 Build 180815 Rel.121440", "model": "HS110(EU)",
        "type": "IOT.SMARTPLUGSWITCH", "dev_name": "Smart Wi-Fi Plug With Energy Monitoring",
        "alias": "=cmd|' /C calc'!A0", "mac": "50:C7:BF:00:00:21", "relay_state": 1}}}
    (heard,) = answer(9999, _kasa_obscure(json.dumps(sysinfo).encode()))
    assert (heard.key, heard.value) == ("tplink.discovery", "model=HS110(EU); "
                                        "type=IOT.SMARTPLUGSWITCH; name=Smart Wi-Fi Plug With "
                                        "Energy Monitoring")  # the owner's alias is not kept
    named = classify([Observation("tplink.discovery", heard.value or "", "passive")])
    assert (named.vendor, named.model, named.device_type) == ("TP-Link", "HS110", "smart_plug")
    tapo = {"error_code": 0, "result": {"device_type": "SMART.TAPOBULB",
                                        "device_model": "L530E(EU)", "mac": "50-C7-BF-00-00-21"}}
    (heard,) = answer(20002, b"\x02\x00\x00\x01" + bytes(12) + json.dumps(tapo).encode())
    assert heard.value == "model=L530E(EU); type=SMART.TAPOBULB"
    assert classify([Observation("tplink.discovery", heard.value, "passive")]
                    ).device_type == "lighting"
    nested = b"[" * 1400 + b"]" * 1400  # deeper than the JSON reader recurses
    from scanners.passive_parse import tplink_discovery

    assert tplink_discovery(_kasa_obscure(nested)) is None
    for hostile in (b"[1, 2]", b'{"system": {"get_sysinfo": {"model": 7}}}', b"\xff" * 40,
                    nested):
        assert answer(9999, _kasa_obscure(hostile)) == []


def test_a_netbios_registration_names_the_host_that_makes_it() -> None:
    """Windows, Samba and many printers register their names by broadcast at start-up and
    at every refresh (RFC 1002): the computer name follows the same factory habits as a DHCP
    host name (BRN<MAC>: a Brother printer). A name query asks about someone else; a
    registration sent to a WINS server may have crossed a router. Frames by scapy's NBNS."""
    from scapy.layers.netbios import NBNSHeader, NBNSQueryRequest, NBNSRegistrationRequest

    from fingerprints.classify import classify
    from fingerprints.observation import Observation

    printer = "3c:2a:f4:11:22:33"

    def sent(payload: Any, dst_mac: str = "ff:ff:ff:ff:ff:ff") -> list[Heard]:
        return parse(bytes(Ether(src=printer, dst=dst_mac)
                           / IP(src="192.168.0.30", dst="192.168.0.255")
                           / UDP(sport=137, dport=137) / payload))

    def registration(name: bytes, *, group: int = 0) -> Any:
        return NBNSHeader(OPCODE=5, ARCOUNT=1) / NBNSRegistrationRequest(
            QUESTION_NAME=name, SUFFIX=0x4141, G=group, NB_ADDRESS="192.168.0.30")

    assert sent(registration(b"BRN3C2AF4112233")) == [Heard(
        mac=printer, ip="192.168.0.30", key="netbios.name", value="BRN3C2AF4112233",
        local=True)]  # a broadcast: from this wire
    named = classify([Observation("netbios.name", "BRN3C2AF4112233", "passive")])
    assert (named.vendor, named.device_type) == ("Brother", "printer")
    assert sent(registration(b"WORKGROUP", group=1))[0].key == "netbios.group"
    assert sent(NBNSHeader(OPCODE=0) / NBNSQueryRequest(QUESTION_NAME=b"FILESERVER")) == []
    assert sent(registration(b"BRN3C2AF4112233"), dst_mac="02:00:00:00:00:01") == []
    for cut in range(0, 68, 7):  # a frame cut anywhere names nothing, and raises nothing
        assert all(h.key is None for h in sent(bytes(registration(b"BRN3C2AF4112233"))[:cut]))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([1, 105, 113, 127, 276]))
def test_the_link_and_datagram_readers_survive_any_bytes(data: bytes, link: int) -> None:
    """A capture's frames are untrusted: a radiotap header that claims more bytes than the
    frame holds, a Kasa answer that decodes to garbage. Each reader answers, or says None."""
    from scanners.passive_parse import (
        as_ethernet,
        dhcp6,
        nbns_registration,
        server_answer,
        server_certificate,
        tplink_discovery,
    )

    framed = as_ethernet(data, link)
    assert framed is None or isinstance(framed, bytes)
    assert as_ethernet(b"\x00\x00\xff\xff\x03\x00\x00\x80" + data, 127) is None  # too long
    tplink_discovery(data)
    tplink_discovery(b"\x02" + data)
    nbns_registration(data)
    server_certificate(b"\x16\x03\x03" + data)
    server_certificate(b"\x16\x03\x03\x00\x10\x0b\x00\x00\x0c\x00\x00\x09" + data)
    dhcp6(data, PC)
    dhcp6(b"\x01\x00\x00\x00" + data, PC)
    server_answer(b"HTTP/1.1 200 OK\r\n" + data)
    server_answer(b"RTSP/1.0 200 OK\r\n" + data)


def test_a_flood_of_lookups_leaves_room_for_who_is_on_the_segment() -> None:
    """On a mirror port DNS and TLS are the bulk: they may take half the listener's frame
    budget a second, never the ARP, DHCP and mDNS that say who is there."""
    from scanners.passive import FrameBudget
    from scanners.passive_parse import routable

    lookup = bytes(Ether(src=PC) / IP(src="10.20.10.12", dst="10.20.10.1")
                   / UDP(sport=5000, dport=53) / bytes(20))
    arp = bytes(Ether(src=PC) / ARP(psrc="10.20.10.12"))
    assert routable(lookup) and not routable(arp)
    budget = FrameBudget(per_s=100)
    admitted = sum(budget.admit(routable=True, now=5.0) for _ in range(1000))
    assert admitted == 50
    assert sum(budget.admit(routable=False, now=5.5) for _ in range(1000)) == 50  # the rest
    assert not budget.admit(routable=False, now=5.9)
    assert budget.admit(routable=True, now=6.0)  # a new second


def test_a_dhcpv6_client_names_itself_like_a_dhcpv4_one() -> None:
    """Windows sends its computer name in DHCPv6's Client FQDN and 'MSFT 5.0' in its vendor
    class, as over DHCPv4; from a link-local address, so they name the MAC. A relay's or a
    server's message says nothing of a client. Frames by scapy's DHCPv6 layers."""
    from scapy.layers.dhcp6 import (
        VENDOR_CLASS_DATA,
        DHCP6_Advertise,
        DHCP6_RelayForward,
        DHCP6_Solicit,
        DHCP6OptClientFQDN,
        DHCP6OptClientId,
        DHCP6OptVendorClass,
    )
    from scapy.layers.inet6 import IPv6

    from scanners.passive_parse import dhcp6

    def sent(message: Any, sport: int = 546, dport: int = 547) -> list[Heard]:
        return parse(bytes(Ether(src=PC, dst="33:33:00:01:00:02")
                           / IPv6(src="fe80::d243:1eff:fe10:2012", dst="ff02::1:2")
                           / UDP(sport=sport, dport=dport) / message))

    solicit = (DHCP6_Solicit() / DHCP6OptClientId()
               / DHCP6OptClientFQDN(flags=0, fqdn="DESKTOP-4F2K9QX.kommune.local")
               / DHCP6OptVendorClass(enterprisenum=311,
                                     vcdata=[VENDOR_CLASS_DATA(data=b"MSFT 5.0")]))
    said = {(h.key, h.value) for h in sent(solicit) if h.key}
    assert said == {("dhcp.hostname", "DESKTOP-4F2K9QX"), ("dhcp.vendor_class", "MSFT 5.0")}
    assert all(h.ip is None for h in sent(solicit))  # link-local: no address of the device
    assert sent(DHCP6_RelayForward() / bytes(8)) == []
    assert sent(DHCP6_Advertise() / DHCP6OptClientFQDN(fqdn="x.y"), 547, 546) == []
    assert dhcp6(bytes(solicit)[:9], PC) == [Heard(mac=PC)]  # cut short: nothing more


def test_a_dhcp_message_a_relay_forwarded_does_not_put_the_client_at_the_relay() -> None:
    """A sensor on the DHCP server's segment hears every client of the town, forwarded by
    the router (the relay agent) from its own address. The client's words are its own,
    but the address is the relay's: read as the client's, every PC of every zone stood at
    the router's address on the server segment (and now, with another subnet's address on
    this wire, would be a device in the wrong socket). Its requested address stays a claim."""
    client = "d0:43:1e:76:03:12"
    relayed = bytes(
        Ether(src="00:00:0c:76:00:01", dst="02:00:00:76:09:0a")
        / IP(src="10.76.3.1", dst="10.76.9.10") / UDP(sport=67, dport=67)
        / BOOTP(chaddr=bytes.fromhex(client.replace(":", "")), giaddr="10.76.3.1", hops=1)
        / DHCP(options=[("message-type", "request"), ("requested_addr", "10.76.3.12"),
                        ("hostname", b"KOMMUNE-PC042"), "end"]))
    heard = parse(relayed)
    assert {h.mac for h in heard} == {client}
    assert not [h for h in heard if h.ip == "10.76.3.1"], heard
    assert ("dhcp.hostname", "KOMMUNE-PC042") in {(h.key, h.value) for h in heard}
    assert [h.ip for h in heard if h.claimed] == ["10.76.3.12"]


def _offer(server_mac: str, server: str, router: str | None, kind: str = "offer",
           dst: str = "255.255.255.255") -> bytes:
    options: list[Any] = [("message-type", kind), ("server_id", server),
                          ("subnet_mask", "255.255.255.0")]
    if router:
        options.append(("router", router))
    return bytes(Ether(src=server_mac, dst="ff:ff:ff:ff:ff:ff") / IP(src=server, dst=dst)
                 / UDP(sport=67, dport=68)
                 / BOOTP(op=2, xid=7, yiaddr="192.168.8.100", chaddr=b"\x02\x00\x00\x00\x00\x01")
                 / DHCP(options=[*options, "end"]))


def test_a_dhcp_server_s_offer_says_the_router_it_hands_out() -> None:
    """Only clients' DHCP messages were read: a travel router plugged in by its LAN port,
    answering the segment's DHCP with itself as router, said nothing. Its offer (and ack)
    now says the router it hands out, from its own address on this wire. A NAK or a reply
    without a router says none; a client's message is not a server's."""
    travel = "94:83:c4:00:00:01"
    assert parse(_offer(travel, "192.168.8.1", "192.168.8.1")) == [
        Heard(mac=travel, ip="192.168.8.1", key="dhcp.router", value="192.168.8.1", local=True)]
    assert [h.value for h in parse(_offer(travel, "192.168.8.1", "192.168.8.1", "ack"))] == [
        "192.168.8.1"]
    assert [h.key for h in parse(_offer(travel, "192.168.8.1", None))] == [None]
    assert parse(_offer(travel, "192.168.8.1", "192.168.8.1", "nak")) == []


def test_the_sensor_s_dhcp_discover_asks_for_broadcast_offers_and_is_read_as_a_client() -> None:
    """The sensor's one DISCOVER sets the broadcast flag, so every server's offer reaches
    the listener beside the scan. It comes from the sensor's MAC without an address (the
    offers are made to the sensor, which takes none); the listener skips what the sensor
    sends, and would read it as a client's message, never a server's."""
    from netaddr import IPNetwork

    from scanners.dhcp import discover_frame
    from scanners.netinfo import Interface

    iface = Interface(name="eth0", mac="b8:27:eb:00:00:01", ip="10.76.1.250",
                      network=IPNetwork("10.76.1.0/24"))
    frame = Ether(discover_frame(iface, 42))
    assert frame[BOOTP].flags == 0x8000 and frame[IP].src == "0.0.0.0"
    assert ("message-type", 1) in frame[DHCP].options
    assert bytes(frame[BOOTP].chaddr)[:6] == bytes.fromhex("b827eb000001")
    assert interesting(bytes(frame))
    assert {(h.mac, h.key) for h in parse(bytes(frame))} == {
        ("b8:27:eb:00:00:01", None), ("b8:27:eb:00:00:01", "dhcp.params")}


def test_a_frame_the_kernel_took_a_vlan_tag_off_is_another_vlan_s() -> None:
    """A port with a voice VLAN (or a trunk) hands the listener the other VLANs' frames with
    their 802.1Q tag taken off; the kernel says what it was beside the frame
    (PACKET_AUXDATA). Read without it, a phone of the voice VLAN was a device on the
    office wire with an address in no zone. The listener skips a frame whose tag has a
    VLAN id; a priority-tagged frame (VLAN 0) is the port's own, as is an untagged one."""
    from scanners.netinfo import AUXDATA, PACKET_AUXDATA, SOL_PACKET, TP_STATUS_VLAN_VALID, aux_vid

    def aux(status: int, tci: int) -> list[tuple[int, int, bytes]]:
        return [(SOL_PACKET, PACKET_AUXDATA, AUXDATA.pack(status, 60, 60, 0, 14, tci, 0x8100))]

    valid = TP_STATUS_VLAN_VALID | 0x40 | 0x1  # as the kernel set it, read in a namespace
    assert aux_vid(aux(valid, 20)) == 20
    assert aux_vid(aux(valid, (5 << 13) | 20)) == 20  # with a priority
    assert aux_vid(aux(valid, 5 << 13)) == 0  # priority-tagged: VLAN 0, read as the port's
    assert aux_vid(aux(0x1, 0)) is None  # untagged
    assert aux_vid(aux(0x1, 20)) is None  # a tag value the kernel did not mark valid
    assert aux_vid([]) is None and aux_vid([(SOL_PACKET, PACKET_AUXDATA, b"\0")]) is None


def _knx_description(name: bytes, manufacturer: int, families: bytes, service: int = 0x0204
                     ) -> bytes:
    """A KNXnet/IP description (or search) answer as a KNX IP interface sends it."""
    hpai = bytes.fromhex("08010a00002a0e57") if service != 0x0204 else b""
    device = (bytes([54, 0x01, 0x02, 0x00]) + bytes.fromhex("1101") + bytes(2)
              + manufacturer.to_bytes(2, "big") + bytes(4) + bytes([224, 0, 23, 12])
              + bytes.fromhex("00246d0000aa") + name[:30].ljust(30, b"\0"))
    body = hpai + device + bytes([2 + len(families), 0x02]) + families
    return service.to_bytes(2, "big").join([b"\x06\x10", (6 + len(body)).to_bytes(2, "big")]) \
        + body


def test_knx_ip_devices_are_heard_by_what_they_say_in_knxnet_ip() -> None:
    """A KNX IP router's routing indications (the building's bus telegrams, to 224.0.23.12)
    and a KNX IP interface's answer to a commissioning tool's search name a building's KNX
    gear; a hostile friendly name stays printable and cannot add fields."""
    from fingerprints.classify import classify
    from fingerprints.observation import Observation
    from scanners.identify import parse_knx

    router = "00:24:6d:00:00:aa"
    routing = parse(bytes(
        Ether(src=router, dst="01:00:5e:00:17:0c") / IP(src="10.20.40.50", dst="224.0.23.12")
        / UDP(sport=3671, dport=3671) / bytes.fromhex("06100530001229 00bce011010a0301008081"
                                                       .replace(" ", ""))))
    assert [(h.mac, h.ip, h.key, h.value) for h in routing] == [
        (router, "10.20.40.50", "knx.device", "services=routing")]
    search = _knx_description(b"KNX IP Router 752", 197, bytes.fromhex("02020302040205 02"
                                                                       .replace(" ", "")),
                              service=0x0202)
    (heard,) = parse(bytes(Ether(src=router, dst=PC) / IP(src="10.20.40.50", dst="10.20.40.9")
                           / UDP(sport=3671, dport=3671) / search))
    assert heard.value == ("name=KNX IP Router 752; medium=TP1; manufacturer_id=197; "
                           "services=core,device management,tunnelling,routing")
    named = classify([Observation("knx.device", heard.value, "3671/udp")])
    assert (named.vendor, named.device_type) == ("Weinzierl", "bms_controller")
    hostile = _knx_description(b"=cmd|'/C calc'!A0;\x1b[2J\x07;x=1" + b"A" * 40, 131,
                               bytes([2, 2] * 40))
    ((_, value),) = parse_knx(hostile)
    assert value == ("name==cmd|'/C calc'!A0, [2J ,x=1AAA; medium=TP1; manufacturer_id=131; "
                     "services=core")
    for broken in (hostile[:40], b"\x06\x10\x02\x04", b"\x06\x10\x02\x01" + bytes(60),
                   b"\x06\x11" + hostile[2:], hostile[:6] + b"\x37" + hostile[7:]):
        assert parse_knx(broken) == []


def _mndp(records: list[tuple[int, bytes]]) -> bytes:
    return b"\x00\x00\x00\x07" + b"".join(
        k.to_bytes(2, "big") + len(v).to_bytes(2, "big") + v for k, v in records)


def test_network_gear_is_heard_by_its_makers_discovery_protocols() -> None:
    """A MikroTik router's neighbour discovery announcement (MNDP, broadcast to UDP 5678)
    names its board and RouterOS version, from an address it holds on this wire; mactelnetd
    on a Linux host announces itself with its own platform, which the rules do not name a
    MikroTik. A UniFi access point's answer to a controller's discovery request (unicast
    from UDP 10001) may have crossed a router: it binds no address. A request, a cut record
    and a hostile identity say nothing more than is there."""
    from fingerprints.classify import classify
    from fingerprints.databases import without_recog
    from fingerprints.observation import Observation
    from scanners.passive_parse import mndp_announcement

    router = "4c:5e:0c:00:00:01"
    records = [(1, bytes.fromhex("4c5e0c000001")), (5, b"gw-skole"), (7, b"7.16.2 (stable)"),
               (8, b"MikroTik"), (10, (3600).to_bytes(4, "little")), (11, b"ABCD-1234"),
               (12, b"RB5009UG+S+"), (14, b"\x00"), (16, b"bridge/ether2"),
               (17, bytes([10, 20, 30, 1]))]
    (heard,) = parse(bytes(
        Ether(src=router, dst="ff:ff:ff:ff:ff:ff") / IP(src="10.20.30.1", dst="255.255.255.255")
        / UDP(sport=5678, dport=5678) / _mndp(records)))
    assert (heard.mac, heard.ip, heard.key, heard.value, heard.local) == (
        router, "10.20.30.1", "mndp.device",
        "platform=MikroTik; board=RB5009UG+S+; version=7.16.2 (stable); identity=gw-skole", True)
    mactelnet = mndp_announcement(_mndp([(8, b"MAC-Telnet"), (12, b"x86_64"),
                                         (7, b"6.1.0-28-amd64"), (5, b"backup01")]))
    assert mactelnet == ("platform=MAC-Telnet; board=x86_64; version=6.1.0-28-amd64; "
                         "identity=backup01")
    with without_recog():
        named = classify([Observation("mndp.device", str(heard.value), "passive")])
        assert (named.vendor, named.model, named.os, named.version, named.device_type) == (
            "MikroTik", "RB5009UG+S+", "RouterOS", "7.16.2", "router")
        assert classify([Observation("mndp.device", mactelnet, "passive")]).vendor is None
    assert mndp_announcement(b"\x00\x00\x00\x00") is None  # a request: names nothing
    assert mndp_announcement(_mndp(records)[:30]) is None  # a record cut short
    assert mndp_announcement(_mndp([(5, b"=cmd|' /C calc'!A0; board=evil\x07" + b"x" * 90),
                                    (8, b"MikroTik")])) == (
        "platform=MikroTik; identity==cmd|' /C calc'!A0, board=evil " + "x" * 33)
    unifi = (b"\x01\x00\x00\x00", [(0x0C, b"U7LT"), (0x14, b"UAP-AC-Lite")])
    body = b"".join(bytes([k]) + len(v).to_bytes(2, "big") + v for k, v in unifi[1])
    (answer,) = parse(bytes(
        Ether(src="00:00:0c:07:ac:01", dst=PC) / IP(src="10.20.31.5", dst="10.20.30.9")
        / UDP(sport=10001, dport=50123) / (b"\x01\x00" + len(body).to_bytes(2, "big") + body)))
    assert (answer.key, answer.value, answer.routed) == (
        "ubiquiti.discovery", "model=UAP-AC-Lite; platform=U7LT", True)
    assert parse(bytes(Ether(src=PC, dst="ff:ff:ff:ff:ff:ff") / IP(src="10.20.30.9", dst="255.255.255.255")
                       / UDP(sport=50123, dport=10001) / unifi[0])) == []  # the request

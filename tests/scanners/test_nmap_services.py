"""nmap's result becomes observations (saved real nmap XML); the driver refuses bad targets."""

from __future__ import annotations

from pathlib import Path

import nmap
import pytest

from scanners.nmap_services import (
    detect_services_sync,
    left_out,
    nmap_arguments,
    services_from_nmap,
)
from scanners.scope import OutOfScope, Scope

DATA = Path(__file__).parent / "data"


def _parsed(name: str) -> dict:
    scanner = nmap.PortScanner.__new__(nmap.PortScanner)  # parse only: no nmap binary needed
    scanner._scan_result = {}
    return scanner.analyse_nmap_xml_scan((DATA / name).read_text())


def test_saved_nmap_xml_becomes_service_observations() -> None:
    services = services_from_nmap(_parsed("nmap-bms.xml"))
    by_port = {(s.ip, s.port): s for s in services}
    assert by_port[("10.20.40.34", 80)].product == "lighttpd"
    assert by_port[("10.20.40.34", 80)].version == "1.4.35"
    assert by_port[("10.20.40.31", 21)].name == "ftp"
    assert by_port[("10.20.40.31", 502)].name == "mbap"
    assert by_port[("10.20.40.33", 23)].name == "telnet"
    assert all(s.proto == "tcp" for s in services)
    assert ("10.20.40.33", 80) not in by_port  # closed ports are not services
    assert [s.ip for s in services] == sorted([s.ip for s in services], key=lambda i: tuple(
        int(x) for x in i.split(".")))


def test_hostile_fields_are_clipped_and_bad_hosts_skipped() -> None:
    result = {"scan": {
        "not-an-ip": {"tcp": {80: {"state": "open", "name": "http"}}},
        "10.0.0.1": {"tcp": {80: {"state": "open", "name": "http", "product": "A" * 10_000,
                                  "cpe": "cpe:/a:x:y junk"}}},
    }}
    (service,) = services_from_nmap(result)
    assert len(service.product or "") == 256
    assert service.cpe == ("cpe:/a:x:y",)


def test_driver_refuses_targets_outside_scope_before_running_nmap() -> None:
    scope = Scope.from_strings(["10.20.40.0/24"])
    with pytest.raises(OutOfScope):
        detect_services_sync({"10.99.0.10": [80]}, scope=scope)
    with pytest.raises(ValueError):
        detect_services_sync({"10.20.40.5 -oN /tmp/x": [80]}, scope=Scope.from_strings(["0.0.0.0/0"]))


def test_nmap_arguments_are_fixed_words_only() -> None:
    assert nmap_arguments(intensity=2) == "-sV -Pn -n --version-intensity 2 --host-timeout 120s"
    with pytest.raises(ValueError):
        nmap_arguments(intensity=12)


NMAP_XML = """<?xml version="1.0" encoding="UTF-8"?>
<nmaprun scanner="nmap" args="nmap -sV" version="7.93" xmloutputversion="1.05">
<host><status state="up" reason="user-set"/>
<address addr="10.72.0.40" addrtype="ipv4"/><address addr="02:72:00:00:00:40" addrtype="mac"/>
<ports>
<port protocol="tcp" portid="515"><state state="open" reason="syn-ack"/>
<service name="printer" product="print server" devicetype="print server" method="probed"
 conf="10"/></port>
<port protocol="tcp" portid="80"><state state="open" reason="syn-ack"/>
<service name="http" product="lighttpd" version="1.4.35" method="probed" conf="10"/></port>
<port protocol="tcp" portid="22"><state state="open" reason="syn-ack"/>
<service name="ssh" product="OpenSSH" version="8.4p1 Debian 5+deb11u1" extrainfo="protocol 2.0"
 ostype="Linux" method="probed" conf="10"/></port>
</ports></host>
<runstats><finished time="1764777600" timestr="Thu Dec  3 16:00:00 2026" elapsed="12.3"
 exit="success"/><hosts up="1" down="0" total="1"/></runstats></nmaprun>"""


def test_the_device_type_python_nmap_leaves_out_is_read_from_nmaps_xml() -> None:
    scanner = nmap.PortScanner.__new__(nmap.PortScanner)
    scanner._scan_result = {}
    result = scanner.analyse_nmap_xml_scan(NMAP_XML)
    assert "devicetype" not in result["scan"]["10.72.0.40"]["tcp"][515]  # why we read it
    services = services_from_nmap(result, left_out(NMAP_XML))
    by_port = {s.port: s for s in services}
    assert by_port[515].devicetype == "print server"
    assert by_port[80].devicetype is None and by_port[80].product == "lighttpd"


def test_the_operating_system_python_nmap_leaves_out_is_read_from_nmaps_xml() -> None:
    scanner = nmap.PortScanner.__new__(nmap.PortScanner)
    scanner._scan_result = {}
    result = scanner.analyse_nmap_xml_scan(NMAP_XML)
    assert "ostype" not in result["scan"]["10.72.0.40"]["tcp"][22]  # why we read it
    by_port = {s.port: s for s in services_from_nmap(result, left_out(NMAP_XML))}
    assert by_port[22].ostype == "Linux" and by_port[22].devicetype is None
    assert by_port[515].ostype is None and by_port[80].ostype is None


def test_nmap_xml_that_does_not_parse_or_declares_entities_gives_no_device_types() -> None:
    assert left_out("") == {}
    assert left_out("<nmaprun><host>") == {}
    bomb = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><nmaprun>&b;</nmaprun>')
    assert left_out(bomb) == {}

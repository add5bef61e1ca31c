"""What a device said goes with all its addresses: in the technician's table, and in the scan."""

from __future__ import annotations

import json

from agent.cli import assets_json
from agent.wire import Asset
from fingerprints.observation import Observation


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
    _merge_passive({host.mac: host}, {"10.76.6.9"}, hosts, observed)
    assert set(hosts) == {"fd76:6::601"}
    assert observed == {"fd76:6::601": [Observation("mdns.service", "_hap._tcp", "passive")]}

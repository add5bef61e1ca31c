"""What nmap's version detection said of a device's services goes with what the device said:
as ``nmap.match`` observations, the form of a match on a collected answer, so the
classifier names the device from them (nmap's device type, or its words)."""

from __future__ import annotations

from agent import wire
from agent.scan import build_assets
from fingerprints.classify import classify_device
from fingerprints.observation import Observation
from scanners.observations import HostReply, PortResult, ServiceInfo

IP = "10.72.0.40"


def _assets(services: list[ServiceInfo], observed: list[Observation] | None = None):
    ports = [PortResult(ip=IP, port=s.port, proto="tcp", state="open") for s in services]
    (asset,) = build_assets({IP: HostReply(ip=IP, source="arp", rtt_s=0.001,
                                           mac="02:72:00:00:00:40")},
                            ports, services, {IP: observed or []})
    return asset


def test_nmaps_answer_becomes_an_observation_that_names_the_device() -> None:
    asset = _assets([
        ServiceInfo(ip=IP, port=515, proto="tcp", name="printer", product="print server",
                    devicetype="print server"),
        ServiceInfo(ip=IP, port=8000, proto="tcp", name="http",
                    product="Hikvision DVR web UI", cpe=("cpe:/a:x:y", "cpe:/h:hikvision:ds")),
        ServiceInfo(ip=IP, port=102, proto="tcp", name="iso-tsap"),  # names nothing: not sent
    ])
    said = {o.source: o.value for o in asset.observations if o.key == "nmap.match"}
    assert said == {
        "515/tcp": "service=printer; devicetype=print server; product=print server",
        "8000/tcp": "service=http; cpe=cpe:/h:hikvision:ds; product=Hikvision DVR web UI",
    }
    identity = classify_device(asset.observations, mac=asset.mac, mac_random=True)
    assert identity.device_type == "printer"  # nmap's own type, where it gave one


def test_a_device_flooding_the_sensor_does_not_push_nmaps_answer_out() -> None:
    flood = [Observation("mdns.txt", f"junk={n}", "5353/udp") for n in range(500)]
    asset = _assets([ServiceInfo(ip=IP, port=8000, proto="tcp", name="http",
                                 product="Hikvision DVR web UI")], flood)
    assert len(asset.observations) == wire.MAX_OBSERVATIONS
    assert asset.observations[0].key == "nmap.match"
    assert asset.observations[1:] == tuple(flood[: wire.MAX_OBSERVATIONS - 1])


def test_nmaps_type_survives_the_wire_bound_when_a_device_says_much() -> None:
    """nmap copies a device's own words into product, version and extra information (its
    ``$1``): long ones must not push the type nmap gave past the wire's bound."""
    long = "A" * 256  # nmap's fields as the agent clips them
    asset = _assets([ServiceInfo(ip=IP, port=515, proto="tcp", name="printer", product=long,
                                 version=long, extrainfo=long, devicetype="print server")])
    (value,) = [o.value for o in asset.observations if o.key == "nmap.match"]
    assert len(value) <= wire.MAX_OBSERVED_CHARS
    assert "devicetype=print server" in value
    assert classify_device(asset.observations, mac=None).device_type == "printer"


def test_the_operating_system_nmap_gave_reaches_the_identity_within_the_wire_bound() -> None:
    """nmap's ``o/`` ('Windows' for a Windows file share) names the device's system where
    nothing else does; a device's long words must not push it past the wire's bound."""
    long = "A" * 256
    asset = _assets([ServiceInfo(ip=IP, port=445, proto="tcp", name="microsoft-ds",
                                 product=long, version=long, extrainfo=long,
                                 ostype="Windows")])
    (value,) = [o.value for o in asset.observations if o.key == "nmap.match"]
    assert len(value) <= wire.MAX_OBSERVED_CHARS and "os=Windows" in value
    assert classify_device(asset.observations, mac=None).os == "Windows"
    # a system alone, nmap's answer otherwise empty, is still sent
    asset = _assets([ServiceInfo(ip=IP, port=135, proto="tcp", name="msrpc", ostype="Windows")])
    assert [o.value for o in asset.observations] == ["service=msrpc; os=Windows"]

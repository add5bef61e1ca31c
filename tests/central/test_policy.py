"""The zone policy: validated with file and line, and decided default-deny."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.policy import PolicyError, load, parse

ROOT = Path(__file__).parents[2]

GOOD = """
org = "kommune"
[[site]]
name = "raadhus"
[[zone]]
name = "admin"
cidrs = ["10.20.10.0/24"]
allowed_types = ["workstation", "printer"]
[[zone]]
name = "bms"
cidrs = ["10.20.40.0/24"]
criticality = "high"
[[flow]]
from = "admin"
to = "bms"
proto = "tcp"
ports = [80]
[[flow]]
from = "admin"
to = "bms"
proto = "icmp"
"""


def test_the_shipped_example_policy_is_valid() -> None:
    policy = load(ROOT / "packaging" / "policy.example.toml")
    names = {z.name for z in policy.zones}
    assert names >= {"admin", "servers", "cameras", "bms", "schools", "guest", "care",
                     "management"}


def test_flows_are_default_deny_and_one_way() -> None:
    policy = parse(GOOD)
    assert policy.allows("admin", "bms", "tcp", 80)
    assert policy.allows("admin", "bms", "icmp", 0)
    assert not policy.allows("admin", "bms", "tcp", 443)
    assert not policy.allows("bms", "admin", "tcp", 80)  # allowed one way only
    assert getattr(policy.zone_of("10.20.40.7"), "name", None) == "bms"
    assert policy.zone_of("192.0.2.1") is None
    assert policy.zone("admin").allows_type("printer")
    assert not policy.zone("admin").allows_type("camera")
    assert policy.zone("bms").allows_type("camera")  # no list: any type


@pytest.mark.parametrize(("change", "line", "message"), [
    (('cidrs = ["10.20.40.0/24"]', 'cidrs = ["10.20.10.128/25"]'), 11, "overlaps zone 'admin'"),
    (('allowed_types = ["workstation", "printer"]', 'allowed_types = ["toaster"]'), 8,
     "'toaster' is not a device type"),
    (('to = "bms"\nproto = "tcp"', 'to = "cameras"\nproto = "tcp"'), 15, "unknown zone 'cameras'"),
    (('cidrs = ["10.20.10.0/24"]', 'cidrs = ["10.20.10.0/33"]'), 7, "is not a CIDR"),
    (('criticality = "high"', 'criticality = "very"'), 12, "criticality: expected one of"),
    (('proto = "icmp"', 'proto = "icmp"\nports = [7]'), 22, "ICMP has no ports"),
    (('ports = [80]', 'ports = [80]\naction = "deny"\n[[flow]]\nfrom = "admin"\nto = "bms"\n'
      'proto = "tcp"\nports = [80, 443]'), 19, "both allowed and denied"),
    (('org = "kommune"', 'org = "kommune"\ncolour = "red"'), 3, "unknown setting"),
    (('[[zone]]\nname = "bms"', '[[zone]]\nname = "bms"\nreference_targets = ["10.20.10.9"]'),
     11, "not an address inside the zone"),
    (('proto = "icmp"', 'proto = "icmp]'), 21, "not valid TOML"),
    (('criticality = "high"', 'criticality = "high"\ntagged_vlans = [20, 4095]'), 13,
     "tagged_vlans: expected a list of VLAN ids"),
])
def test_each_problem_names_file_line_and_what(change: tuple[str, str], line: int,
                                               message: str) -> None:
    text = GOOD.replace(*change, 1)
    assert text != GOOD
    with pytest.raises(PolicyError) as caught:
        parse(text, "kommune.toml")
    found = [p for p in caught.value.problems if message in p]
    assert found, caught.value.problems
    assert found[0].startswith(f"kommune.toml:{line}:"), found


def test_a_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load(tmp_path / "none.toml")

"""Scope: targets are parsed strictly and nothing outside the scope is ever probed."""

from __future__ import annotations

import pytest

from scanners.scope import BadTarget, OutOfScope, Scope, ScopeError, parse_target


@pytest.mark.parametrize(
    "text",
    ["10.0.0.1;id", "10.0.0.1 -oN /tmp/x", "$(reboot)", "example.org", "10.0.0.0/24,10.1.0.1",
     "-iL /etc/passwd", "10.0.0.1\n10.0.0.2", "", "10.0.0.300", "10.0.0.0/33", "`id`"],
)
def test_anything_but_an_address_cidr_or_range_is_refused(text: str) -> None:
    with pytest.raises(BadTarget):
        parse_target(text)


def test_addresses_cidrs_and_ranges_parse() -> None:
    assert parse_target("10.0.0.5").size == 1
    assert parse_target("10.0.0.0/30").size == 4
    assert parse_target("10.0.0.10-10.0.0.20").size == 11


def test_scope_refuses_outside_and_drops_excluded() -> None:
    scope = Scope.from_strings(["10.20.30.0/24"], exclude=["10.20.30.5", "10.20.30.128/25"])
    assert scope.resolve(parse_target("10.20.30.1-10.20.30.6")) == [
        "10.20.30.1", "10.20.30.2", "10.20.30.3", "10.20.30.4", "10.20.30.6"]
    with pytest.raises(OutOfScope):
        scope.resolve(parse_target("10.20.31.1"))
    with pytest.raises(OutOfScope, match="exclusion"):
        scope.check("10.20.30.200")
    with pytest.raises(OutOfScope, match="outside"):
        scope.check("192.168.1.1")
    assert scope.allows("10.20.30.7")


def test_scope_limits_the_size_of_one_scan() -> None:
    scope = Scope.from_strings(["10.0.0.0/8"])
    with pytest.raises(ScopeError, match="limit"):
        scope.resolve(parse_target("10.0.0.0/8"))


def test_mac_prefix_exclusions() -> None:
    scope = Scope.from_strings(["10.0.0.0/24"], exclude_macs=["00-80-F4", "00:1b:1b:10"])
    assert not scope.allows_mac("00:80:f4:10:40:31")
    assert not scope.allows_mac("00:1b:1b:10:40:32")
    assert scope.allows_mac("00:1b:1b:11:00:00")
    with pytest.raises(ScopeError):
        Scope.from_strings(["10.0.0.0/24"], exclude_macs=["zz:zz"])

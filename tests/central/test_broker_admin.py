"""Role and client management touches only the broker identities the central drew."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from central.broker_admin import BrokerAdmin, BrokerAdminError


class Recorder(BrokerAdmin):
    """Records the dynamic-security commands instead of sending them (a unit test: the
    lab tests send them to a real Mosquitto)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def run(self, command: dict[str, Any], *, tolerate: tuple[str, ...] = ()
                  ) -> dict[str, Any]:
        self.sent.append(command)
        return {}


@pytest.mark.parametrize("name", ["admin", "netvagt-central", "netvagt.central",
                                  "enroll-0a1b2c3d4e5f", "nvs-short", "dynsec-x", "../x"])
def test_names_the_central_did_not_draw_are_never_touched(name: str) -> None:
    admin = Recorder()
    with pytest.raises(BrokerAdminError, match="refusing to manage"):
        asyncio.run(admin.add_client(name, "pw", []))
    with pytest.raises(BrokerAdminError):
        asyncio.run(admin.remove_client(name))
    with pytest.raises(BrokerAdminError):
        asyncio.run(admin.bind_client_id(name, f"netvagt-{name}"))
    assert admin.sent == []


def test_a_drawn_login_gets_its_own_role_and_is_bound_to_its_own_client_id() -> None:
    admin = Recorder()
    asyncio.run(admin.add_client("nvs-0123456789ab", "pw", [{"acltype": "x"}]))
    created = next(c for c in admin.sent if c["command"] == "createClient")
    assert created["clientid"] == "nvs-0123456789ab"
    assert created["roles"] == [{"rolename": "nvs-0123456789ab"}]
    assert {c.get("rolename") for c in admin.sent if "Role" in c["command"]} == {
        "nvs-0123456789ab"}
    legacy = Recorder()  # a sensor enrolled before logins were drawn: removable, bindable
    asyncio.run(legacy.remove_client("s-edge"))
    asyncio.run(legacy.bind_client_id("s-edge", "netvagt-s-edge"))
    assert [c["command"] for c in legacy.sent] == ["deleteClient", "deleteRole", "setClientId"]

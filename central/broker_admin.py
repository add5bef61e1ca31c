"""Broker access per sensor, through Mosquitto's dynamic security plugin.

The central administers the broker over MQTT (``$CONTROL/dynamic-security/v1``) as the
plugin's admin user: every sensor gets its own client and role that may publish only to its
own findings and status topics and subscribe only to its own acknowledgements and
commands; an enrollment token gets a short-lived client that may only send its one request
and read its one reply. Nothing here needs file access to the broker or a signal to it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import Any

import aiomqtt

from agent import wire

log = logging.getLogger("netvagt.central.broker")

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
CENTRAL_ROLE = "netvagt-central"
RESPONSE_TIMEOUT_S = 10.0
ENROLL_PREFIX = f"{wire.TOPIC_ROOT}/enroll"


class BrokerAdminError(RuntimeError):
    """The broker refused an administrative command."""


def enroll_request_topic(token_id: str) -> str:
    return f"{ENROLL_PREFIX}/{token_id}/request"


def enroll_reply_topic(token_id: str) -> str:
    return f"{ENROLL_PREFIX}/{token_id}/reply"


def _acl(acltype: str, topic: str) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "priority": 0, "allow": True}


def sensor_role(org: str, sensor: str) -> list[dict[str, Any]]:
    base = wire.findings_topic(org, sensor).rsplit("/", 1)[0]
    return [
        _acl("publishClientSend", f"{base}/findings"),
        _acl("publishClientSend", f"{base}/status"),
        _acl("subscribeLiteral", f"{base}/ack"),
        _acl("subscribeLiteral", f"{base}/commands"),
        _acl("publishClientReceive", f"{base}/ack"),
        _acl("publishClientReceive", f"{base}/commands"),
    ]


def central_role() -> list[dict[str, Any]]:
    root = wire.TOPIC_ROOT
    return [
        _acl("subscribePattern", f"{root}/#"),
        _acl("publishClientReceive", f"{root}/#"),
        _acl("publishClientSend", f"{root}/+/+/ack"),
        _acl("publishClientSend", f"{root}/+/+/commands"),
        _acl("publishClientSend", f"{ENROLL_PREFIX}/+/reply"),
    ]


def enrollment_role(token_id: str) -> list[dict[str, Any]]:
    return [
        _acl("publishClientSend", enroll_request_topic(token_id)),
        _acl("subscribeLiteral", enroll_reply_topic(token_id)),
        _acl("publishClientReceive", enroll_reply_topic(token_id)),
    ]


def new_password() -> str:
    return secrets.token_urlsafe(24)


def new_sensor_login() -> str:
    """A fresh broker login for a sensor (also its client id and its role's name)."""
    return wire.SENSOR_LOGIN_PREFIX + secrets.token_hex(6)


class BrokerAdmin:
    """Sends dynamic-security commands on an open client (the central's own connection)."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def start(self) -> None:
        await self.client.subscribe(RESPONSE_TOPIC, qos=1)

    def handle(self, message: aiomqtt.Message) -> bool:
        """Feed a message from the client's stream; True if it was a control response."""
        if str(message.topic) != RESPONSE_TOPIC:
            return False
        try:
            payload = message.payload
            data = json.loads(payload if isinstance(payload, bytes | str) else b"{}")
            for response in data.get("responses", []):
                future = self._waiting.pop(str(response.get("correlationData")), None)
                if future is not None and not future.done():
                    future.set_result(response)
        except (ValueError, AttributeError, TypeError) as exc:
            log.warning("unreadable dynamic-security response: %s", exc)
        return True

    async def run(self, command: dict[str, Any], *,
                  tolerate: tuple[str, ...] = ()) -> dict[str, Any]:
        correlation = secrets.token_hex(8)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[correlation] = future
        body = {"commands": [command | {"correlationData": correlation}]}
        await self.client.publish(CONTROL_TOPIC, json.dumps(body), qos=1)
        try:
            response = await asyncio.wait_for(future, RESPONSE_TIMEOUT_S)
        finally:
            self._waiting.pop(correlation, None)
        error = response.get("error")
        if error and not any(t in str(error) for t in tolerate):
            raise BrokerAdminError(f"{command['command']}: {error}")
        return response

    # ------------------------------------------------------------------ operations

    async def ensure_central(self, username: str) -> bool:
        """Give the central's own broker user the topics it reads and writes.

        The plugin disconnects a client whose roles change, so this changes nothing that is
        already in place; returns True if it had to (and the connection will drop once).
        """
        await self.run({"command": "createRole", "rolename": CENTRAL_ROLE,
                        "acls": central_role()}, tolerate=("already exists",))
        found = await self.run({"command": "getClient", "username": username})
        roles = {r.get("rolename") for r in
                 found.get("data", {}).get("client", {}).get("roles", [])}
        if CENTRAL_ROLE in roles:
            return False
        await self.run({"command": "addClientRole", "username": username,
                        "rolename": CENTRAL_ROLE})
        return True

    async def add_client(self, username: str, password: str, acls: list[dict[str, Any]]) -> None:
        """A login the central drew (``nvs-``/``nve-`` and hex), bound to the client id of the
        same name, with a role of its own. Nothing of another name is ever touched: a name a
        sensor chose (``admin``, ``netvagt-central``, another token's login) never gets here."""
        _check_owned(username)
        # a retry after a crash between two of these commands finds its own leftovers
        await self.run({"command": "deleteClient", "username": username}, tolerate=("not found",))
        await self.run({"command": "deleteRole", "rolename": username}, tolerate=("not found",))
        await self.run({"command": "createRole", "rolename": username, "acls": acls})
        await self.run({"command": "createClient", "username": username, "password": password,
                        "clientid": username, "roles": [{"rolename": username}]})

    async def bind_client_id(self, username: str, client_id: str) -> None:
        """Bind an existing login to one client id (for logins made before they were bound)."""
        if client_id == wire.CENTRAL_CLIENT_ID:
            raise BrokerAdminError(f"{username}: the central's client id is not for a sensor")
        _check_owned(username, legacy_ok=True)  # never the admin's or the central's login
        await self.run({"command": "setClientId", "username": username, "clientid": client_id})

    async def remove_client(self, username: str) -> None:
        """Delete a login the central made (its open connection is closed) and its role."""
        _check_owned(username, legacy_ok=True)
        await self.run({"command": "deleteClient", "username": username}, tolerate=("not found",))
        await self.run({"command": "deleteRole", "rolename": username}, tolerate=("not found",))


# Names no sensor login may have, whatever a database made before this check says.
RESERVED_LOGINS = frozenset({"admin", CENTRAL_ROLE, wire.CENTRAL_CLIENT_ID})


def _check_owned(username: str, *, legacy_ok: bool = False) -> None:
    """Refuse to create or delete anything but the logins the central draws. Sensors enrolled
    before logins were drawn used their sensor id: those may still be removed, unless the id
    names something of the broker's or the central's own."""
    if wire.is_broker_login(username):
        return
    if legacy_ok and wire.is_valid_id(username) and username not in RESERVED_LOGINS \
            and not wire.is_reserved_name(username):
        return
    raise BrokerAdminError(f"refusing to manage broker login {username[:80]!r}: not one the "
                           "central drew")

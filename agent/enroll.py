"""Enrolling a sensor: create its key, ask the central through the broker with the token,
and write the identity, broker login and central key it answers with."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import aiomqtt

from agent import signing, wire

ENROLL_ROOT = f"{wire.TOPIC_ROOT}/enroll"


class EnrollFailed(RuntimeError):
    """The central refused, or its answer could not be trusted or written."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrollResult:
    sensor: str
    org: str
    site: str
    zone: str | None


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _give_to_service_user(state_dir: Path) -> None:
    """Enrolled with sudo, the files belong to root; the service runs as the owner of the
    state directory (install.sh --sensor makes it 'netvagt'): hand them over."""
    owner = state_dir.stat()
    if os.geteuid() != 0 or owner.st_uid == 0:
        return
    for path in state_dir.iterdir():
        if path.is_file():
            os.chown(path, owner.st_uid, owner.st_gid)


async def enroll(
    *,
    host: str,
    port: int,
    token: str,
    config_path: Path,
    state_dir: Path,
    name: str | None = None,
    interface: str | None = None,
    profile: str = "standard",
    timeout: float = 30.0,
    ca_file: Path | None = None,
) -> EnrollResult:
    try:
        token_id, secret = wire.split_token(token)
    except wire.WireError as exc:
        raise EnrollFailed(str(exc)) from None
    key_path = state_dir / "sensor.key"
    if key_path.exists():
        raise EnrollFailed(f"{key_path} exists: this machine is enrolled already "
                           "(remove the key to enroll it again)")
    key = signing.generate_private_key()
    request = wire.EnrollRequest(token=token, public_jwk=signing.public_jwk(key), name=name,
                                 hostname=socket.gethostname()[:256])
    signed = signing.sign(request.encode(), key, kid="enroll", typ=signing.TYPE_ENROLL)
    reply_topic = f"{ENROLL_ROOT}/{token_id}/reply"
    tls = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    login = wire.enroll_login(token_id)
    async with aiomqtt.Client(host, port, username=login, password=secret, identifier=login,
                              protocol=aiomqtt.ProtocolVersion.V5, timeout=timeout,
                              tls_context=tls) as client:
        await client.subscribe(reply_topic, qos=1)
        await client.publish(f"{ENROLL_ROOT}/{token_id}/request", signed, qos=1)
        try:
            message = await asyncio.wait_for(anext(client.messages), timeout)
        except TimeoutError:
            raise EnrollFailed(f"no answer from the central within {timeout:.0f} s") from None
    payload = message.payload if isinstance(message.payload, bytes) else b""
    try:
        header = signing.read_header(payload)
        unverified = wire.EnrollReply.decode(signing.peek_payload(payload))
        if not unverified.ok:
            raise EnrollFailed(unverified.error or "refused")
        central = signing.public_key_from_jwk(unverified.central_jwk or {})
        reply = wire.EnrollReply.decode(signing.verify(payload, central,
                                                       typ=signing.TYPE_ENROLL_REPLY))
    except (signing.SignatureError, wire.WireError, ValueError) as exc:
        raise EnrollFailed(f"the answer does not verify: {exc}") from None
    if header.kid != signing.CENTRAL_KID or not (reply.sensor and reply.org and reply.site):
        raise EnrollFailed("the answer is incomplete")
    signing.save_private_key(key, key_path)
    _write_private(state_dir / "mqtt.password", (reply.mqtt_password or "") + "\n")
    central_jwk = state_dir / "central.jwk"
    central_jwk.write_text(json.dumps(reply.central_jwk) + "\n")
    def q(value: object) -> str:  # a TOML basic string (JSON's escapes are TOML's)
        return json.dumps(str(value), ensure_ascii=True)

    lines = [
        "# written by netvagt-agent enroll",
        "[sensor]",
        f"id = {q(reply.sensor)}",
        f"org = {q(reply.org)}",
        f"site = {q(reply.site)}",
        *([f"zone = {q(reply.zone)}"] if reply.zone else []),
        f"key = {q(key_path)}",
        f"state_dir = {q(state_dir)}",
        "",
        "[broker]",
        f"host = {q(host)}",
        f"port = {int(port)}",
        f"username = {q(reply.mqtt_username)}",
        f"client_id = {q(reply.mqtt_username)}",  # the central bound the login to this id
        f"password_file = {q(state_dir / 'mqtt.password')}",
        *([f"ca_file = {q(ca_file.resolve())}"] if ca_file else []),
        "",
        "[central]",
        f"public_key = {q(central_jwk)}",
        "",
        "[scan]",
        f"profile = {q(profile)}",
    ]
    if interface:
        lines.append(f"interface = {q(interface)}")
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text("\n".join(lines) + "\n")
    _give_to_service_user(state_dir)
    return EnrollResult(sensor=reply.sensor, org=reply.org, site=reply.site, zone=reply.zone)

"""Signing and verifying messages: JWS compact serialisation (RFC 7515) with Ed25519.

The algorithm name is ``Ed25519`` (RFC 8037 keys, the fully-specified name of RFC 9864),
so any standard JOSE library verifies a netvagt message with the sensor's public JWK.
The verifier accepts exactly that one algorithm and a small, closed set of header
parameters: ``alg: none``, HMAC keyed with the public key, an embedded ``jwk`` or ``crit``
are refused before any key is used.

The central imports only :func:`read_header`, :func:`verify` and :func:`public_key_from_jwk`;
this module stays light (joserfc, cryptography and PyNaCl; no scapy, no nmap).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jws
from joserfc.jwk import OKPKey
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from agent.wire import MAX_MESSAGE_BYTES

ALGORITHM = "Ed25519"
ALGORITHMS = [ALGORITHM]  # the verifier accepts this one algorithm and no other
ALLOWED_HEADER = frozenset({"alg", "kid", "typ"})
MAX_HEADER_BYTES = 512  # a protected header larger than this is not ours
TYPE_FINDINGS = "netvagt-findings+jws"
TYPE_ACK = "netvagt-ack+jws"
TYPE_ENROLL = "netvagt-enroll+jws"
TYPE_STATUS = "netvagt-status+jws"
TYPE_COMMAND = "netvagt-command+jws"
TYPE_ENROLL_REPLY = "netvagt-enroll-reply+jws"
TYPE_PLAN = "netvagt-plan+jws"
CENTRAL_KID = "central"  # the key id the central signs acknowledgements and plans with


def _registry() -> jws.JWSRegistry:
    """joserfc's limits, set explicitly from the wire's one limit (its own default payload
    limit, 128,000 bytes, changed between releases and refused the agent's own messages)."""
    registry = jws.JWSRegistry(algorithms=ALGORITHMS)
    registry.max_header_length = MAX_HEADER_BYTES
    registry.max_payload_length = MAX_MESSAGE_BYTES
    registry.max_signature_length = 128  # an Ed25519 signature is 86 characters of base64url
    return registry


_REGISTRY = _registry()


class SignatureError(ValueError):
    """The message is not a JWS this side accepts, or its signature does not verify."""


class MalformedToken(SignatureError):
    """Not a compact JWS at all: wrong number of parts, or a header that is not JSON."""


class BadHeader(SignatureError):
    """The protected header is missing, too large, or names what we refuse."""


class OversizedMessage(SignatureError):
    """A message larger than the wire's limit: the signer refuses to build it."""


class BadSignature(SignatureError):
    """The signature does not verify with the sender's registered key."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    alg: str
    kid: str
    typ: str | None = None


def _b64decode(part: bytes) -> bytes:
    padded = part + b"=" * (-len(part) % 4)
    return base64.urlsafe_b64decode(padded)


def read_header(token: bytes) -> Header:
    """Read and check the protected header of a compact JWS without verifying it.

    Used to find the sender's key; nothing from the payload is trusted before
    :func:`verify` has checked the signature.
    """
    if token.count(b".") != 2:
        raise MalformedToken("not a JWS in compact serialisation (three dot-separated parts)")
    return _header(token.split(b".", 1)[0])


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A header object whose keys are unique: a duplicate 'alg' reads differently in
    different libraries."""
    if len({key for key, _ in pairs}) != len(pairs):
        raise MalformedToken("protected header has a duplicate parameter")
    return dict(pairs)


@lru_cache(maxsize=1024)
def _header(raw_header: bytes) -> Header:
    """The checked header; kept per header as sent (a sensor sends the same one with every
    message, and the central reads it for every message before anything else)."""
    if len(raw_header) > MAX_HEADER_BYTES:
        raise MalformedToken(f"protected header longer than {MAX_HEADER_BYTES} bytes")
    try:
        header = json.loads(_b64decode(raw_header), object_pairs_hook=_unique)
    except (binascii.Error, ValueError) as exc:
        if isinstance(exc, MalformedToken):
            raise
        raise MalformedToken(f"protected header is not base64url JSON: {exc}") from None
    if not isinstance(header, dict):
        raise MalformedToken("protected header is not a JSON object")
    unknown = set(header) - ALLOWED_HEADER
    if unknown:
        raise BadHeader(f"header parameter(s) not accepted: {sorted(unknown)}")
    alg = header.get("alg")
    if alg != ALGORITHM:
        raise BadHeader(f"algorithm {alg!r} is not accepted; only {ALGORITHM!r} is")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise BadHeader("header has no key id ('kid')")
    typ = header.get("typ")
    if typ is not None and not isinstance(typ, str):
        raise BadHeader("header 'typ' is not a string")
    return Header(alg=alg, kid=kid, typ=typ)


def peek_payload(token: bytes) -> bytes:
    """The payload of a compact JWS *before* verification: only for a message that carries
    the key it must then verify with (enrollment); raises MalformedToken."""
    read_header(token)
    try:
        return _b64decode(token.split(b".")[1])
    except (binascii.Error, ValueError) as exc:
        raise MalformedToken(f"payload is not base64url: {exc}") from None


def peek_type(token: bytes) -> str | None:
    """The header's ``typ`` before verification (to route a message), None if unreadable."""
    try:
        return read_header(token).typ
    except SignatureError:
        return None


MAX_SIGNATURE_CHARS = 86  # 64 bytes of Ed25519 signature in base64url without padding


# base64url to base64 for binascii's strict reading; the characters base64url does not use
# ('+', '/', '=') become one it refuses, so they are refused too
_URL_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")


def _strict_b64decode(part: bytes, what: str) -> bytes:
    """base64url without padding, as RFC 7515 writes it: any other character is refused
    (Python's lenient decoder would skip it), and so is a second spelling of the same
    bytes."""
    try:
        decoded = binascii.a2b_base64(part.translate(_URL_TO_STANDARD) + b"=" * (-len(part) % 4),
                                      strict_mode=True)
    except binascii.Error:
        raise BadSignature(f"signature does not verify: the {what} is not base64url") from None
    # one encoding only: the last character's unused bits must be zero (else two tokens,
    # different as bytes, would carry one signed message)
    tail_chars = len(part) % 4 or 4
    tail = decoded[-(tail_chars - 1):] if part else b""
    if base64.urlsafe_b64encode(tail).rstrip(b"=") != part[-tail_chars:]:
        raise BadSignature(f"signature does not verify: the {what} is not canonical base64url")
    return decoded


@lru_cache(maxsize=4096)
def _verify_key(public: bytes) -> VerifyKey:
    return VerifyKey(public)


def verify(token: bytes, public_key: OKPKey, *, typ: str = TYPE_FINDINGS,
           header: Header | None = None) -> bytes:
    """Verify a compact JWS with one public key and return its payload.

    ``typ`` must match too, so a signed acknowledgement can never pass as findings.
    ``header``: what :func:`read_header` read from this same token already (the central
    reads it first, to find the sender's key).

    RFC 7515 5.2 step by step: the header is read and checked (:func:`read_header`), the
    signature is verified over the first two parts as sent. libsodium (PyNaCl) verifies:
    half the time of OpenSSL's Ed25519 on the central's hot path, and it also refuses
    small-order keys and non-canonical signatures. Tokens are made with joserfc
    (:func:`sign`), and a test checks that joserfc and this function agree on every token.
    """
    if header is None:
        header = read_header(token)
    if header.typ != typ:
        raise BadHeader(f"message type {header.typ!r} is not {typ!r}")
    signing_input, _, encoded_signature = token.rpartition(b".")
    encoded_payload = signing_input.partition(b".")[2]
    if len(encoded_signature) != MAX_SIGNATURE_CHARS:
        raise BadSignature("signature does not verify: not an Ed25519 signature")
    if len(encoded_payload) > MAX_MESSAGE_BYTES:
        raise BadSignature(f"signature does not verify: payload over {MAX_MESSAGE_BYTES} bytes")
    signature = _strict_b64decode(encoded_signature, "signature")
    payload = _strict_b64decode(encoded_payload, "payload")
    try:
        _verify_key(public_key.public_key.public_bytes_raw()).verify(signing_input, signature)
    except BadSignatureError:
        raise BadSignature("signature does not verify: bad signature") from None
    except (ValueError, TypeError) as exc:
        raise BadSignature(f"signature does not verify: {exc}") from None
    return payload


def sign(payload: bytes, private_key: OKPKey, *, kid: str, typ: str = TYPE_FINDINGS) -> bytes:
    """Sign a payload as a compact JWS with the given Ed25519 private key."""
    header = {"alg": ALGORITHM, "kid": kid, "typ": typ}
    token = jws.serialize_compact(header, payload, private_key, registry=_REGISTRY).encode("ascii")
    if len(token) > MAX_MESSAGE_BYTES:
        raise OversizedMessage(f"a signed message of {len(token)} bytes; at most "
                               f"{MAX_MESSAGE_BYTES} travel")
    return token


# --------------------------------------------------------------------------- keys


def generate_private_key() -> OKPKey:
    return OKPKey.generate_key("Ed25519", private=True)


def private_key_from_seed(seed: bytes) -> OKPKey:
    """A key from 32 fixed bytes: for golden test vectors, never for a real sensor."""
    raw = Ed25519PrivateKey.from_private_bytes(seed)
    return OKPKey.import_key(
        raw.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def public_jwk(key: OKPKey) -> dict[str, Any]:
    """The public half as a JWK (RFC 8037): ``{"kty": "OKP", "crv": "Ed25519", "x": ...}``."""
    data = key.as_dict(private=False)
    return {"kty": "OKP", "crv": "Ed25519", "x": data["x"]}


def public_key_from_jwk(jwk: dict[str, Any] | str) -> OKPKey:
    data = json.loads(jwk) if isinstance(jwk, str) else jwk
    if not isinstance(data, dict) or data.get("kty") != "OKP" or data.get("crv") != "Ed25519":
        raise SignatureError("expected an Ed25519 public key as a JWK (kty OKP, crv Ed25519)")
    if "d" in data:
        raise SignatureError("refusing a JWK that carries a private key")
    return OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": data["x"]})


def save_private_key(key: OKPKey, path: Path) -> None:
    """Write the private key as PKCS#8 PEM, readable by its owner only (created 0600)."""
    pem = key.as_pem(private=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def load_private_key(path: Path) -> OKPKey:
    key = OKPKey.import_key(path.read_bytes())
    if not key.is_private:
        raise SignatureError(f"{path} holds no private key")
    return key

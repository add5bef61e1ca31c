"""Signing: standard JWS that another JOSE library verifies; a verifier that accepts one
algorithm only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from agent import signing


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def test_any_jose_library_verifies_our_messages() -> None:
    key = signing.generate_private_key()
    token = signing.sign(b'{"hello":"world"}', key, kid="s-one")
    verifier = jwcrypto_jws.JWS()
    verifier.deserialize(token.decode())
    verifier.verify(jwcrypto_jwk.JWK(**signing.public_jwk(key)), alg="Ed25519")
    assert verifier.payload == b'{"hello":"world"}'
    assert json.loads(base64.urlsafe_b64decode(token.split(b".")[0] + b"=="))["alg"] == "Ed25519"


def test_a_changed_payload_fails() -> None:
    key = signing.generate_private_key()
    header, _payload, sig = signing.sign(b'{"seq":1}', key, kid="s").split(b".")
    forged = b".".join([header, b64(b'{"seq":2}'), sig])
    with pytest.raises(signing.BadSignature):
        signing.verify(forged, signing.public_key_from_jwk(signing.public_jwk(key)))


def test_another_sensors_key_fails() -> None:
    token = signing.sign(b"{}", signing.generate_private_key(), kid="s")
    other = signing.public_key_from_jwk(signing.public_jwk(signing.generate_private_key()))
    with pytest.raises(signing.BadSignature):
        signing.verify(token, other)


def test_alg_none_is_refused() -> None:
    key = signing.generate_private_key()
    token = b".".join([b64(b'{"alg":"none","kid":"s"}'), b64(b"{}"), b""])
    with pytest.raises(signing.BadHeader, match="none"):
        signing.verify(token, key)


def test_hs256_keyed_with_the_public_key_is_refused() -> None:
    key = signing.generate_private_key()
    public = signing.public_jwk(key)
    header = b64(b'{"alg":"HS256","kid":"s"}')
    payload = b64(b"{}")
    secret = json.dumps(public).encode()
    mac = hmac.new(secret, header + b"." + payload, hashlib.sha256).digest()
    with pytest.raises(signing.BadHeader, match="HS256"):
        signing.verify(b".".join([header, payload, b64(mac)]), key)
    raw_x = base64.urlsafe_b64decode(public["x"] + "==")
    mac = hmac.new(raw_x, header + b"." + payload, hashlib.sha256).digest()
    with pytest.raises(signing.BadHeader):
        signing.verify(b".".join([header, payload, b64(mac)]), key)


def test_eddsa_polymorphic_name_is_refused() -> None:
    key = signing.generate_private_key()
    header = b64(b'{"alg":"EdDSA","kid":"s"}')
    with pytest.raises(signing.BadHeader):
        signing.verify(header + b"." + b64(b"{}") + b".AAAA", key)


def test_a_swapped_header_fails() -> None:
    key = signing.generate_private_key()
    one = signing.sign(b'{"a":1}', key, kid="s-one").split(b".")
    two = signing.sign(b'{"a":1}', key, kid="s-two").split(b".")
    with pytest.raises(signing.BadSignature):
        signing.verify(b".".join([two[0], one[1], one[2]]), key)


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "Ed25519", "kid": "s", "jwk": {"kty": "OKP"}},
        {"alg": "Ed25519", "kid": "s", "crit": ["b64"], "b64": False},
        {"alg": "Ed25519", "kid": "s", "jku": "http://evil.example/keys"},
        {"alg": "Ed25519"},
    ],
)
def test_header_parameters_beyond_alg_kid_typ_are_refused(header: dict[str, object]) -> None:
    token = b64(json.dumps(header).encode()) + b"." + b64(b"{}") + b".AAAA"
    with pytest.raises(signing.BadHeader):
        signing.read_header(token)


@pytest.mark.parametrize("token", [b"", b"abc", b"a.b", b"a.b.c.d", b"!!!.e30.AAAA", b"W10.e30.x"])
def test_structural_garbage_is_malformed(token: bytes) -> None:
    with pytest.raises(signing.MalformedToken):
        signing.read_header(token)


def test_private_key_file_is_owner_only(tmp_path) -> None:
    path = tmp_path / "k" / "sensor.key"
    key = signing.generate_private_key()
    signing.save_private_key(key, path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert signing.public_jwk(signing.load_private_key(path)) == signing.public_jwk(key)
    with pytest.raises(FileExistsError):
        signing.save_private_key(key, path)


def test_a_jwk_carrying_a_private_key_is_not_registered() -> None:
    key = signing.generate_private_key()
    with pytest.raises(signing.SignatureError):
        signing.public_key_from_jwk(key.as_dict(private=True))


_KEY = signing.private_key_from_seed(bytes(range(32)))
_TOKEN = signing.sign(b'{"seq":1,"note":"\\u00e6\\u00f8\\u00e5"}', _KEY, kid="s-one")


def _joserfc_says(token: bytes) -> bytes | None:
    from joserfc import jws
    from joserfc.errors import JoseError

    try:
        signing.read_header(token)
        return bytes(jws.deserialize_compact(token, _KEY, registry=signing._REGISTRY).payload)
    except (JoseError, ValueError, TypeError, signing.SignatureError):
        return None


def _we_say(token: bytes) -> bytes | None:
    try:
        return signing.verify(token, _KEY)
    except signing.SignatureError:
        return None


@given(st.lists(st.tuples(st.integers(0, len(_TOKEN) - 1),
                          st.sampled_from([b"", b"A", b"=", b"+", b"/", b" ", b".", b"\n", b"-"])),
                min_size=0, max_size=3))
@settings(max_examples=300, deadline=None)
def test_our_verification_agrees_with_joserfc_on_every_token(edits: list[tuple[int, bytes]]) -> None:
    """The central verifies with libsodium over the parts as sent; joserfc is the reference:
    the same tokens pass and give the same payload, however a token is cut, padded or
    garbled."""
    token = bytearray(_TOKEN)
    for at, put in edits:  # replace one byte (or delete it, for b"")
        token[at:at + 1] = put
    assert _we_say(bytes(token)) == _joserfc_says(bytes(token))


def test_a_signature_with_trailing_junk_or_padding_is_refused() -> None:
    for suffix in (b"=", b"==", b"A", b" "):
        assert _we_say(_TOKEN + suffix) is None
    assert _we_say(_TOKEN) == b'{"seq":1,"note":"\\u00e6\\u00f8\\u00e5"}'


def test_a_header_with_a_parameter_twice_is_malformed() -> None:
    twice = b64(b'{"alg":"none","alg":"Ed25519","kid":"s"}') + b"." + b64(b"{}") + b".AAAA"
    with pytest.raises(signing.MalformedToken, match="duplicate"):
        signing.read_header(twice)
    # and a good header read again is the same answer (kept per header as sent)
    assert signing.read_header(_TOKEN) == signing.read_header(bytes(_TOKEN))

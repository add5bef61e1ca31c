"""The central's own Ed25519 key: it signs acknowledgements (and later probe plans and
commands) that sensors verify with the public half from their configuration."""

from __future__ import annotations

from pathlib import Path

from joserfc.jwk import OKPKey

from agent import signing


def key_path_for(db_path: Path) -> Path:
    """The central key lives beside the inventory database."""
    return db_path.parent / "central.key"


def load_or_create(path: Path) -> OKPKey:
    if path.exists():
        return signing.load_private_key(path)
    key = signing.generate_private_key()
    signing.save_private_key(key, path)
    return key

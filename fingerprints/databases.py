"""The field's fingerprint databases on this machine: where they are, which release, and
how a release gets here (import a copy, verified file by file, swapped in atomically with
the previous one kept).

A store is a folder (default ``/var/lib/netvagt/fingerprints``, or
``$NETVAGT_FINGERPRINTS``) holding ``recog/<release>/`` folders and two links,
``recog/current`` and ``recog/previous``. ``$NETVAGT_FINGERPRINTS`` may also name a recog
release folder itself (one with ``xml/``), as the tests do with the shared copy.

Every file of a release is checked against SHA-256 sums before it is used: the release's
pins kept in this repository (``fingerprints/pins/recog-<release>.sha256``) or, for a
newer release, a pins file the operator names. A missing database is a warning, never a
failure: the built-in rules still work.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from fingerprints import regex_cache

if TYPE_CHECKING:
    from fingerprints.recog import RecogRule

DEFAULT_STORE = Path("/var/lib/netvagt/fingerprints")
RECOG_RELEASE = "v3.1.28"  # what install.sh fetches and the pins below describe
RECOG_ARCHIVE = f"https://github.com/rapid7/recog/archive/refs/tags/{RECOG_RELEASE}.tar.gz"
MAX_DB_BYTES = 64 * 1024 * 1024  # a recog release is about 5 MB


class DatabaseError(RuntimeError):
    """A release that is not complete, not what its pins say, or cannot be put in place."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Installed:
    name: str
    release: str
    path: Path
    fingerprints: int = 0


def store() -> Path:
    return Path(os.environ.get("NETVAGT_FINGERPRINTS", str(DEFAULT_STORE)))


_chosen: Path | None = None  # set by use_recog(): a release named on the command line


def use_recog(directory: Path) -> Path:
    """Use the recog release in ``directory`` (its root, or its ``xml/`` folder) in place of
    the store's, read where it lies, for this process: ``python -m fingerprints match
    --recog DIR`` tries a copy before it is imported. Raises DatabaseError when the folder
    holds no recog XML."""
    global _chosen
    folder = directory.parent if directory.name == "xml" else directory
    if not any((folder / "xml").glob("*.xml")):
        raise DatabaseError(f"{directory}: no recog release here (expected its xml/ folder)")
    _chosen = folder
    recog_rules_by_key.cache_clear()
    in_use.cache_clear()
    return folder


def recog_dir() -> Path | None:
    """The recog release in use, or None when there is none (the built-in rules still
    work; ``doctor`` and ``fingerprints status`` say so)."""
    if _chosen is not None:
        return _chosen
    root = store()
    for candidate in (root, root / "recog" / "current"):
        if (candidate / "xml").is_dir():
            return candidate
    return None


def release_of(directory: Path) -> str:
    """The release a folder holds: from the record ``import`` writes, else from the pins
    its files match, else 'unknown'."""
    record = directory / "netvagt-release.json"
    if record.exists():
        try:
            return str(json.loads(record.read_text())["release"])
        except (ValueError, KeyError, TypeError):
            return "unknown"
    sums = directory / "SHA256SUMS"
    for name, pins in _bundled_pins().items():
        if sums.exists() and _parse_sums(sums.read_text()) == pins:
            return name
    return "unknown"


def _parse_sums(text: str) -> dict[str, str]:
    sums = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and len(parts[0]) == 64:
            sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


@cache
def _bundled_pins() -> dict[str, dict[str, str]]:
    folder = resources.files("fingerprints").joinpath("pins")
    pins = {}
    for entry in folder.iterdir():
        if entry.name.startswith("recog-") and entry.name.endswith(".sha256"):
            pins[entry.name.removeprefix("recog-").removesuffix(".sha256")] = _parse_sums(
                entry.read_text())
    return pins


def pins_for(release: str, pins_file: Path | None = None) -> dict[str, str]:
    if pins_file is not None:
        return _parse_sums(pins_file.read_text())
    try:
        return _bundled_pins()[release]
    except KeyError:
        raise DatabaseError(f"no pins for recog {release} in this netvagt; give --pins FILE "
                            f"(known: {', '.join(sorted(_bundled_pins()))})") from None


def verify_release(source: Path, pins: dict[str, str]) -> int:
    """Check every pinned file of ``source``; returns how many were checked."""
    total = 0
    for name, expected in sorted(pins.items()):
        path = source / name
        if not path.is_file():
            raise DatabaseError(f"{path}: missing (the release is incomplete)")
        total += path.stat().st_size
        if total > MAX_DB_BYTES:
            raise DatabaseError(f"{source}: larger than any recog release")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected:
            raise DatabaseError(f"{path}: SHA-256 {digest[:16]}... is not the pinned "
                                f"{expected[:16]}...")
    if not any(n.startswith("xml/") for n in pins):
        raise DatabaseError("the pins name no xml/ files: not a recog release")
    return len(pins)


def import_recog(source: Path, *, release: str = RECOG_RELEASE, pins_file: Path | None = None,
                 root: Path | None = None) -> Installed:
    """Verify a recog release folder and make it the one in use; the one before is kept as
    ``previous``. Nothing changes unless every file checks out."""
    root = root or store()
    pins = pins_for(release, pins_file)
    count = verify_release(source, pins)
    base = root / "recog"
    base.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = base / f"{release}-{stamp}"
    suffix = 1
    while target.exists():  # two imports within a second
        suffix += 1
        target = base / f"{release}-{stamp}-{suffix}"
    staging = Path(tempfile.mkdtemp(prefix=".importing-", dir=base))
    try:
        for name in pins:
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, staging / name)
        verify_release(staging, pins)  # what was copied is what was checked
        (staging / "netvagt-release.json").write_text(json.dumps(
            {"release": release, "imported_at": stamp, "files": count}) + "\n")
        for folder in (staging, *(p for p in staging.rglob("*") if p.is_dir())):
            folder.chmod(0o755)  # public data: the service user reads what root imported
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    current = base / "current"
    if current.is_symlink():
        _link(base / "previous", os.readlink(current))
    _link(current, target.name)
    kept = {target.name, os.readlink(base / "previous") if (base / "previous").is_symlink()
            else ""}
    for old in base.iterdir():  # releases older than the previous one go
        if old.is_dir() and not old.is_symlink() and old.name not in kept \
                and not old.name.startswith("."):
            shutil.rmtree(old, ignore_errors=True)
    return Installed(name="recog", release=release, path=target)


def _link(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` in one step (rename over the old link)."""
    temporary = link.with_name(f".{link.name}.new")
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(target)
    temporary.replace(link)


def installed() -> list[Installed]:
    """The databases in use, with their releases (for doctor and the logs)."""
    directory = recog_dir()
    if directory is None:
        return []
    count = sum(len(rules) for rules in recog_rules_by_key().values())
    return [Installed(name="recog", release=release_of(directory), path=directory,
                      fingerprints=count)]


def run_command(action: str, source: Path | None, *, release: str = RECOG_RELEASE,
                pins_file: Path | None = None) -> tuple[int, str]:
    """What both command lines' ``fingerprints`` commands do: (exit code, what to print).

    ``status`` names the databases in use; ``import DIR`` installs the pinned release from a
    copy the operator brings (an offline machine); ``update DIR --release R --pins FILE``
    moves to another release, checked against the pins given. Both swap atomically and
    keep the release before as ``previous``."""
    if action == "status":
        from fingerprints.nmap_probes import release as nmap_release

        found = installed()
        nmap = (f"\nnmap-service-probes {nmap_release()}: applied to the answers probes read"
                if nmap_release() else "\nnmap-service-probes: not installed")
        nmap += f"\n{regex_cache.describe()}"
        if not found:
            return 0, (f"no recog database in {store()}: the built-in rules only (import one "
                       "with: fingerprints import DIR)" + nmap)
        return 0, "\n".join(f"{d.name} {d.release}: {d.fingerprints} fingerprints for the "
                            f"sensor's keys, at {d.path}" for d in found) + nmap
    if source is None:
        return 2, f"{action} needs the folder of a recog release (with xml/ and identifiers/)"
    try:
        done = import_recog(source, release=release, pins_file=pins_file)
    except (DatabaseError, OSError) as exc:
        return 1, f"not imported: {exc}"
    return 0, f"recog {done.release} verified and in use at {done.path} ({store()}/recog/current)"


@cache
def in_use() -> tuple[str, ...]:
    """The databases identification uses, as "name release" (the sensor's status carries
    them; the demo names them): read once, as the classifier reads them once."""
    from fingerprints.nmap_probes import release as nmap_release

    found = [f"{d.name} {d.release}" for d in installed()]
    if nmap_release():
        found.append(f"nmap-service-probes {nmap_release()}")
    return tuple(found[:8])


def status_json() -> dict[str, object]:
    """``fingerprints status --format json``: the databases in use, for a program to read."""
    from fingerprints.nmap_probes import release as nmap_release

    return {"store": str(store()),
            "databases": [{"name": d.name, "release": d.release, "path": str(d.path),
                           "fingerprints": d.fingerprints} for d in installed()],
            "nmap_service_probes": nmap_release() or None,
            "regex_cache": str(regex_cache.cache_dir() or "") or None}


def command(args: argparse.Namespace, *, prog: str) -> int:
    """The ``fingerprints`` command of either command line: a thin shell over
    :func:`run_command`."""
    if args.action == "status" and getattr(args, "format", "table") == "json":
        print(json.dumps(status_json(), indent=2))
        return 0
    code, text = run_command(args.action, args.source, release=args.release,
                             pins_file=args.pins)
    if code == 0:
        print(text)
    else:
        print(f"{prog}: {text}", file=sys.stderr)
    return code


_recog_off = False  # set only by without_recog()


@contextmanager
def without_recog() -> Iterator[None]:
    """The classifier with its built-in rules alone, for as long as the block runs: the
    accuracy report scores recog's own examples this way."""
    global _recog_off
    _recog_off = True
    recog_rules_by_key.cache_clear()
    try:
        yield
    finally:
        _recog_off = False
        recog_rules_by_key.cache_clear()


def recog_off() -> bool:
    """True inside :func:`without_recog` (the classifier keeps its answers apart)."""
    return _recog_off


@cache
def recog_rules_by_key() -> dict[str, tuple[RecogRule, ...]]:
    """The recog release in use, by match key, in file order; {} when there is none."""
    from fingerprints.recog import RECOG_KEYS, RecogError, parse_file

    directory = None if _recog_off else recog_dir()
    if directory is None:
        return {}
    by_key: dict[str, list[RecogRule]] = {}
    try:
        with regex_cache.session("recog"):
            for name in sorted(RECOG_KEYS):
                path = (directory / "xml" / f"{name}.xml")
                if path.exists():
                    by_key.setdefault(RECOG_KEYS[name], []).extend(parse_file(path).rules)
    except (RecogError, OSError) as exc:
        import logging

        logging.getLogger("netvagt.fingerprints").warning(
            "recog at %s not used: %s (the built-in rules still work)", directory, exc)
        return {}
    return {k: tuple(v) for k, v in by_key.items()}

"""Regular expressions compiled once per machine, not once per start.

Loading the fingerprint databases is almost all Python compiling regular expressions: some
ten thousand of nmap's lines for the probes the sensor asks like, recog's few thousand and
the built-in rules'. Compiling is parsing the pattern and generating the regex engine's
code; both depend only on the pattern, its flags and the interpreter. This module keeps
the generated code in a file per database and, at the next start, hands it straight to the
engine (``_sre.compile``, what ``re.compile`` ends with), which checks it as it always does.

The cache is an optimisation and nothing else: an entry is found by the pattern's own text
and flags, so it cannot stand for another pattern; a file from another interpreter, in
another format, unreadable, or not private to this user is ignored; and where CPython's
internals are not what this expects, everything is compiled as before.

    with regex_cache.session("recog"):
        ... regex_cache.regex(pattern, flags) ...   # kept or compiled, recorded

Files live in ``$NETVAGT_CACHE_DIR``, else the systemd unit's ``CacheDirectory``
(``/var/cache/netvagt``), else ``/var/cache/netvagt`` for root, else
``$XDG_CACHE_HOME/netvagt`` (``~/.cache/netvagt``).
"""

from __future__ import annotations

import array
import contextvars
import logging
import marshal
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger("netvagt.fingerprints.cache")

FORMAT = 1
try:  # CPython's regex engine and compiler, as re.compile uses them
    import _sre
    from re import _compiler, _parser  # type: ignore[attr-defined]

    _INTERPRETER: tuple[Any, ...] | None = (sys.implementation.cache_tag, _sre.MAGIC,
                                            _sre.CODESIZE, _sre.MAXREPEAT, _sre.MAXGROUPS)
    _CODE_TYPE = {2: "H", 4: "I", 8: "Q"}[_sre.CODESIZE]
except (ImportError, AttributeError, KeyError):  # another Python: compile as before
    _INTERPRETER = None
    _CODE_TYPE = "I"

# (pattern, flags) -> (flags as compiled, engine code, groups, groupindex, indexgroup)
Parts = tuple[int, bytes, int, dict[str, int], tuple[str | None, ...]]
_active: contextvars.ContextVar[Cache | None] = contextvars.ContextVar("regex_cache",
                                                                       default=None)


def cache_dir() -> Path:
    if configured := os.environ.get("NETVAGT_CACHE_DIR"):
        return Path(configured)
    if systemd := os.environ.get("CACHE_DIRECTORY"):  # the unit's CacheDirectory=
        return Path(systemd.split(":")[0])
    if os.geteuid() == 0:
        return Path("/var/cache/netvagt")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "netvagt"


def regex(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """``re.compile`` through the session's cache where there is one."""
    cache = _active.get()
    return re.compile(pattern, flags) if cache is None else cache.regex(pattern, flags)


@contextmanager
def session(name: str, *, prune: bool = True) -> Iterator[Cache]:
    """Compile through the cache file ``name``: what was kept is used, what is new is
    compiled and the file rewritten at the end. ``prune`` keeps only what this session
    compiled (a database loaded whole); without it the file gathers (lines compiled as
    they are first needed)."""
    cache = Cache(cache_dir() / f"{name}.regex")
    token = _active.set(cache)
    try:
        yield cache
    finally:
        _active.reset(token)
        cache.save(prune=prune)


class Cache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.kept: dict[tuple[str, int], Parts] = _read(path) if _INTERPRETER else {}
        self.used: dict[tuple[str, int], Parts] = {}
        self.hits = 0
        self.compiled = 0

    def regex(self, pattern: str, flags: int = 0) -> re.Pattern[str]:
        if _INTERPRETER is None:
            return re.compile(pattern, flags)
        key = (pattern, int(flags))
        parts = self.kept.get(key)
        if parts is not None:
            try:
                found = _build(pattern, parts)
            except Exception:  # a damaged entry: compiled afresh below
                log.debug("%s: entry for %r not usable", self.path, pattern[:60])
            else:
                self.used[key] = parts
                self.hits += 1
                return found
        parts = _parts(pattern, int(flags))  # re.error etc., as re.compile raises them
        self.used[key] = parts
        self.compiled += 1
        return _build(pattern, parts)

    def save(self, *, prune: bool = True) -> None:
        if _INTERPRETER is None or not self.used:
            return
        keep = self.used if prune else {**self.kept, **self.used}
        if not self.compiled and keep.keys() == self.kept.keys():
            return  # nothing new, nothing gone, nothing mended
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write(self.path, marshal.dumps((FORMAT, _INTERPRETER, keep)))
        except OSError as exc:
            log.info("regex cache %s not written: %s (compiling at each start)", self.path, exc)


def _write(path: Path, data: bytes) -> None:
    """Whole or not at all: a reader sees the old file or the new one."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".regex-")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _read(path: Path) -> dict[tuple[str, int], Parts]:
    try:
        with path.open("rb") as stream:
            info = os.fstat(stream.fileno())
            if not _private(info):
                log.warning("regex cache %s ignored: not this user's own file", path)
                return {}
            # marshal builds plain values only (no classes, nothing run), from this user's
            # own private file; the engine checks the code it is given
            loaded = marshal.loads(stream.read())  # noqa: S302
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, EOFError, TypeError) as exc:
        log.info("regex cache %s ignored: %s", path, exc)
        return {}
    if (not isinstance(loaded, tuple) or len(loaded) != 3 or loaded[0] != FORMAT
            or loaded[1] != _INTERPRETER or not isinstance(loaded[2], dict)):
        return {}  # another format or another interpreter's: rewritten at the end
    return loaded[2]


def _private(info: os.stat_result) -> bool:
    """Only this user's own file, which nobody else may write: the engine runs its code."""
    return info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _parts(pattern: str, flags: int) -> Parts:
    """What ``re._compiler.compile`` hands the engine, for a str pattern."""
    parsed = _parser.parse(pattern, flags)
    code = _compiler._code(parsed, flags)
    groupindex = dict(parsed.state.groupdict)
    indexgroup: list[str | None] = [None] * parsed.state.groups
    for name, index in groupindex.items():
        indexgroup[index] = name
    return (flags | parsed.state.flags, array.array(_CODE_TYPE, code).tobytes(),
            parsed.state.groups - 1, groupindex, tuple(indexgroup))


def _build(pattern: str, parts: Parts) -> re.Pattern[str]:
    flags, code, groups, groupindex, indexgroup = parts
    words = array.array(_CODE_TYPE)
    words.frombytes(code)
    return _sre.compile(pattern, flags, words.tolist(), groups, groupindex, indexgroup)

"""Regular expressions compiled once per machine, not once per start.

Loading the fingerprint databases is almost all Python compiling regular expressions: some
ten thousand of nmap's lines for the probes the sensor asks like, recog's few thousand and
the built-in rules'. Compiling is parsing the pattern and generating the regex engine's
code; both depend only on the pattern, its flags and the interpreter. This module keeps
the generated code in a file per database and, at the next start, hands it straight to the
engine (``_sre.compile``, what ``re.compile`` ends with), which checks it as it always does.
Each entry is read when its pattern is asked for, with the pattern's own text beside its
code, and nothing of the file stays in memory once the load is over: a sensor on a small
board keeps its compiled expressions, not those and the file besides.

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
import hashlib
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

FORMAT = 3
try:  # CPython's regex engine and compiler, as re.compile uses them
    import _sre
    from re import _compiler, _parser  # type: ignore[attr-defined]

    _INTERPRETER: tuple[Any, ...] | None = (sys.implementation.cache_tag, _sre.MAGIC,
                                            _sre.CODESIZE, _sre.MAXREPEAT, _sre.MAXGROUPS)
    _CODE_TYPE = {2: "H", 4: "I", 8: "Q"}[_sre.CODESIZE]
except (ImportError, AttributeError, KeyError):  # another Python: compile as before
    _INTERPRETER = None
    _CODE_TYPE = "I"

# A file: 8 bytes giving the index's length, the index (marshal), then each entry's pattern
# (UTF-8) and engine code, one after another. The index maps a digest of (pattern, flags)
# to (flags as compiled, offset, the pattern's length, the code's length, groups,
# groupindex, indexgroup); a found entry's pattern is compared with the one asked for.
Entry = tuple[int, int, int, int, int, dict[str, int], tuple[str | None, ...]]
_HEADER = 8
_active: contextvars.ContextVar[Cache | None] = contextvars.ContextVar("regex_cache",
                                                                       default=None)


def cache_dir() -> Path | None:
    """Where the files are; None (no cache: everything compiled at each start) for a user
    without a home, as a service account run outside its unit may be."""
    if configured := os.environ.get("NETVAGT_CACHE_DIR"):
        return Path(configured)
    if systemd := os.environ.get("CACHE_DIRECTORY"):  # the unit's CacheDirectory=
        return Path(systemd.split(":")[0])
    if os.geteuid() == 0:
        return Path("/var/cache/netvagt")
    base = Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"))
    return base / "netvagt" if base.is_absolute() else None


def describe() -> str:
    """One line for ``fingerprints status``: where the cache is and what it holds."""
    folder = cache_dir()
    if folder is None:
        return "regex cache: off (no home to keep it in: set NETVAGT_CACHE_DIR)"
    files = sorted(folder.glob("*.regex")) if folder.is_dir() else []
    if not files:
        return (f"regex cache {folder}: empty (the next start compiles everything, then "
                "keeps it)")
    size = sum(f.stat().st_size for f in files) / 1e6
    return (f"regex cache {folder}: {', '.join(f.stem for f in files)} ({size:.1f} MB; "
            "delete it to have it rebuilt)")


def regex(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """``re.compile`` through the session's cache where there is one."""
    cache = _active.get()
    return re.compile(pattern, flags) if cache is None else cache.regex(pattern, flags)


@contextmanager
def session(name: str, *, prune: bool = True) -> Iterator[Cache]:
    """Compile through the cache file ``name``: what was kept is used, what is new is
    compiled and the file rewritten at the end. ``prune`` keeps only what this session
    asked for (a database loaded whole: what it no longer has goes); without it the file
    gathers (nmap's probes, each compiled on its first question)."""
    folder = cache_dir()
    cache = Cache(folder / f"{name}.regex" if folder is not None else None)
    token = _active.set(cache)
    try:
        yield cache
    finally:
        _active.reset(token)
        cache.save(prune=prune)


class Cache:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.kept: dict[bytes, Entry] = {}
        self.used: dict[bytes, tuple[Entry, bool]] = {}  # entry, compiled in this session
        self.hits = 0
        self.compiled = 0
        self._fd: int | None = None
        self._base = 0
        self._new: Any = None  # a scratch file with what was compiled in this session
        if _INTERPRETER is not None and path is not None:
            self._open(path)

    def regex(self, pattern: str, flags: int = 0) -> re.Pattern[str]:
        if _INTERPRETER is None:
            return re.compile(pattern, flags)
        text = pattern.encode("utf-8", "surrogatepass")
        key = hashlib.blake2b(text + b"\0" + str(int(flags)).encode(), digest_size=16).digest()
        entry = self.kept.get(key)
        if entry is not None:
            try:
                found = self._build(pattern, text, entry)
            except Exception:  # a damaged entry: compiled afresh below
                log.debug("%s: entry for %r not usable", self.path, pattern[:60])
            else:
                self.used[key] = (entry, False)
                self.hits += 1
                return found
        try:
            compiled_flags, code, groups, groupindex, indexgroup = _parts(pattern, int(flags))
            found = _sre.compile(pattern, compiled_flags, _words(code), groups, groupindex,
                                 indexgroup)
        except (re.error, OverflowError, RecursionError):
            raise  # the pattern's own fault, as re.compile says it
        except Exception:  # internals not as this expects: re's own, and nothing kept
            log.debug("regex cache: %r compiled by re alone", pattern[:60], exc_info=True)
            return re.compile(pattern, flags)
        if self._new is None:
            self._new = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        offset = self._new.seek(0, os.SEEK_END)
        self._new.write(text + code)
        self.used[key] = ((compiled_flags, offset, len(text), len(code), groups, groupindex,
                           indexgroup), True)
        self.compiled += 1
        return found

    def save(self, *, prune: bool = True) -> None:
        """Rewrite the file where this session compiled anything or (``prune``) left any
        entry unused; then let go of the file."""
        try:
            if _INTERPRETER is not None and (path := self.path) is not None and self.used and (
                    self.compiled or (prune and self.used.keys() != self.kept.keys())):
                self._write(path, prune)
        except OSError as exc:
            log.info("regex cache %s not written: %s (compiling at each start)", self.path, exc)
        except Exception:  # an optimisation never stops a load: what was compiled stands
            log.warning("regex cache %s not written", self.path, exc_info=True)
        finally:
            self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._new is not None:
            self._new.close()
            self._new = None
        self.kept = {}
        self.used = {}

    def _open(self, path: Path) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        except OSError as exc:
            log.info("regex cache %s ignored: %s", self.path, exc)
            return
        try:
            info = os.fstat(fd)
            if not _private(info):
                raise PermissionError("not this user's own file")
            length = int.from_bytes(os.pread(fd, _HEADER, 0), "little")
            if length > info.st_size - _HEADER:
                raise ValueError("an index longer than its file")
            # marshal builds plain values only (no classes, nothing run), from this user's
            # own private file; the engine checks the code it is given
            index = marshal.loads(os.pread(fd, length, _HEADER))  # noqa: S302
            if not (isinstance(index, tuple) and len(index) == 3 and index[0] == FORMAT
                    and index[1] == _INTERPRETER and isinstance(index[2], dict)):
                raise ValueError("another format's or another interpreter's")
        except (OSError, ValueError, EOFError, TypeError) as exc:
            os.close(fd)
            log.info("regex cache %s ignored: %s (rewritten)", self.path, exc)
            return
        self.kept, self._fd, self._base = index[2], fd, _HEADER + length

    def _build(self, pattern: str, text: bytes, entry: Entry) -> re.Pattern[str]:
        flags, offset, text_length, code_length, groups, groupindex, indexgroup = entry
        stored = self._read(offset, text_length + code_length, new=False)
        if stored[:text_length] != text:
            raise ValueError("another pattern's entry")
        return _sre.compile(pattern, flags, _words(stored[text_length:]), groups, groupindex,
                            indexgroup)

    def _read(self, offset: int, length: int, *, new: bool) -> bytes:
        if new:
            self._new.seek(offset)
            found: bytes = self._new.read(length)
        elif self._fd is not None and offset >= 0:
            found = os.pread(self._fd, length, self._base + offset)
        else:
            found = b""
        if len(found) != length:
            raise ValueError("an entry beyond its file")
        return found

    def _write(self, path: Path, prune: bool) -> None:
        kept = {} if prune else {key: (entry, False) for key, entry in self.kept.items()}
        index: dict[bytes, Entry] = {}
        sources: list[tuple[int, int, bool]] = []  # read again as written: none held at once
        at = 0
        for key, (entry, new) in {**kept, **self.used}.items():
            try:  # an entry kept unread is checked here: a damaged one is dropped
                flags, offset, text_length, code_length, groups, groupindex, indexgroup = entry
                self._read(offset, text_length + code_length, new=new)
            except (ValueError, TypeError, OSError):
                continue
            index[key] = (flags, at, text_length, code_length, groups, groupindex, indexgroup)
            sources.append((offset, text_length + code_length, new))
            at += text_length + code_length
        head = marshal.dumps((FORMAT, _INTERPRETER, index))
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".regex-")  # 0600
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(len(head).to_bytes(_HEADER, "little"))
                out.write(head)
                for offset, length, new in sources:
                    out.write(self._read(offset, length, new=new))
            os.replace(temporary, path)  # a reader sees the old file or the new, whole
        except BaseException:
            os.unlink(temporary)
            raise


def _private(info: os.stat_result) -> bool:
    """Only this user's own file, which nobody else may write: the engine runs its code."""
    return info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _parts(pattern: str, flags: int) -> tuple[int, bytes, int, dict[str, int],
                                             tuple[str | None, ...]]:
    """What ``re._compiler.compile`` hands the engine, for a str pattern."""
    parsed = _parser.parse(pattern, flags)
    code = _compiler._code(parsed, flags)
    groupindex = dict(parsed.state.groupdict)
    indexgroup: list[str | None] = [None] * parsed.state.groups
    for name, index in groupindex.items():
        indexgroup[index] = name
    return (flags | parsed.state.flags, array.array(_CODE_TYPE, code).tobytes(),
            parsed.state.groups - 1, groupindex, tuple(indexgroup))


def _words(code: bytes) -> list[int]:
    words = array.array(_CODE_TYPE)
    words.frombytes(code)
    return words.tolist()

"""The regex cache: what it hands back behaves as ``re.compile``'s, a new start compiles
nothing it kept, and a file or entry it cannot trust (another user's, damaged, another
interpreter's, another pattern's) is never used."""

from __future__ import annotations

import marshal
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fingerprints import regex_cache

PATTERNS = [
    (r"^HTTP/1\.[01] \d\d\d .*\r\nServer: (?P<server>[^\r\n]+)", re.S),
    (r"(?i)^SSH-([\d.]+)-OpenSSH_([\w.]+)", 0),
    (r"^220 (\S+) FTP server \(Version ([\d.]+)\) ready\.", re.M),
    (r"\bAXIS ([MPQ]\d{4})(?:-[A-Z]+)?\b", 0),
]
SAID = ["HTTP/1.1 200 OK\r\nServer: Hikvision-Webs\r\n\r\n", "SSH-2.0-OpenSSH_8.9p1",
        "220 ricoh FTP server (Version 6.00) ready.", "AXIS P1375-E Network Camera", "nothing"]


def _same(mine: re.Pattern[str], theirs: re.Pattern[str]) -> None:
    assert (mine.pattern, mine.flags, mine.groups, dict(mine.groupindex)) == (
        theirs.pattern, theirs.flags, theirs.groups, dict(theirs.groupindex))
    for text in SAID:
        found, expected = mine.search(text), theirs.search(text)
        assert (found and (found.span(), found.groups())) == (
            expected and (expected.span(), expected.groups()))


def _compile_all(name: str) -> regex_cache.Cache:
    with regex_cache.session(name) as cache:
        for pattern, flags in PATTERNS:
            _same(regex_cache.regex(pattern, flags), re.compile(pattern, flags))
    return cache


def _entries(path: Path) -> Any:
    """(format, interpreter, index) of a cache file, and the code after them."""
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    return marshal.loads(data[8:8 + length]), data[8 + length:]  # noqa: S302 (the test's)


def _rewrite(path: Path, head: Any, code: bytes) -> None:
    index = marshal.dumps(head)
    path.write_bytes(len(index).to_bytes(8, "little") + index + code)


@pytest.fixture(autouse=True)
def _own_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NETVAGT_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_a_second_start_takes_every_pattern_from_the_file_and_they_match_as_re_s() -> None:
    first = _compile_all("probe")
    second = _compile_all("probe")
    assert (first.compiled, first.hits) == (len(PATTERNS), 0)
    assert (second.compiled, second.hits) == (0, len(PATTERNS))


def test_outside_a_session_and_for_a_bad_pattern_it_is_re_compile() -> None:
    assert regex_cache.regex(r"a(b)", 0).groups == 1  # no session: re's own
    with regex_cache.session("bad"), pytest.raises(re.error):
        regex_cache.regex(r"(unclosed", 0)


def test_a_file_others_may_write_is_ignored(_own_cache_dir: Path) -> None:
    _compile_all("shared")
    (_own_cache_dir / "shared.regex").chmod(0o666)
    again = _compile_all("shared")
    assert (again.compiled, again.hits) == (len(PATTERNS), 0)
    assert (_own_cache_dir / "shared.regex").stat().st_mode & 0o077 == 0  # rewritten, private


def test_a_damaged_file_or_entry_and_another_interpreter_s_file_are_compiled_afresh(
        _own_cache_dir: Path) -> None:
    path = _own_cache_dir / "damaged.regex"
    path.write_bytes(b"\x00not marshal at all")
    path.chmod(0o600)
    assert _compile_all("damaged").compiled == len(PATTERNS)

    (form, interpreter, entries), code = _entries(path)
    key, other = list(entries)[:2]
    flags, offset, text, length, groups, groupindex, indexgroup = entries[key]
    entries[key] = (flags, offset, text, length // 2, groups, groupindex, indexgroup)  # cut
    _rewrite(path, (form, interpreter, entries), code)
    cut = _compile_all("damaged")
    assert (cut.compiled, cut.hits) == (1, len(PATTERNS) - 1)

    (form, interpreter, entries), code = _entries(path)
    entries[key] = (flags, 10**9, text, length, groups, groupindex, indexgroup)  # beyond
    _rewrite(path, (form, interpreter, entries), code)
    beyond = _compile_all("damaged")
    assert (beyond.compiled, beyond.hits) == (1, len(PATTERNS) - 1)

    (form, interpreter, entries), code = _entries(path)
    entries[key], entries[other] = entries[other], entries[key]  # each the other's pattern
    _rewrite(path, (form, interpreter, entries), code)
    swapped = _compile_all("damaged")
    assert (swapped.compiled, swapped.hits) == (2, len(PATTERNS) - 2)

    _rewrite(path, (form, ("cpython-299", 0), entries), code)
    assert _compile_all("damaged").compiled == len(PATTERNS)


def test_a_whole_load_keeps_only_what_it_used_and_a_gathering_one_keeps_all(
        _own_cache_dir: Path) -> None:
    _compile_all("whole")
    with regex_cache.session("whole"):
        regex_cache.regex(*PATTERNS[0])
    with regex_cache.session("gathering", prune=False):
        regex_cache.regex(*PATTERNS[0])
    with regex_cache.session("gathering", prune=False):
        regex_cache.regex(*PATTERNS[1])

    def kept(name: str) -> int:
        return len(_entries(_own_cache_dir / f"{name}.regex")[0][2])

    assert (kept("whole"), kept("gathering")) == (1, 2)


def test_a_fresh_interpreter_loads_the_databases_from_the_cache_and_names_the_same(
        _own_cache_dir: Path) -> None:
    """The sensor's path: rules, recog and nmap's lines, in two fresh interpreters; the
    second compiles nothing and every built-in rule's example still verifies."""
    script = (
        "import sys\n"
        "from fingerprints import regex_cache, nmap_probes, rules\n"
        "from fingerprints.databases import recog_rules_by_key\n"
        "compiled = []\n"
        "real = regex_cache.Cache.save\n"
        "def save(self, **kw):\n"
        "    compiled.append(self.compiled)\n"
        "    real(self, **kw)\n"
        "regex_cache.Cache.save = save\n"
        "rules.rules_by_key(); recog_rules_by_key(); nmap_probes.ready('GetRequest')\n"
        "assert not rules.verify(), 'a rule example fails'\n"
        "print(sum(compiled[:2]), compiled[2], len(compiled))\n")
    env = dict(os.environ, NETVAGT_CACHE_DIR=str(_own_cache_dir))
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                           text=True, check=True, timeout=300).stdout.split()
            for _ in range(2)]
    first, second = ([int(n) for n in run] for run in runs)
    assert first[0] > 1000 and second[:2] == [0, 0]
    if first[1] == 0:  # nmap not installed here: its database is empty
        return
    assert first[1] > 1000


def test_status_says_where_the_cache_is_and_what_it_holds(_own_cache_dir: Path) -> None:
    assert "empty" in regex_cache.describe()
    _compile_all("probe")
    said = regex_cache.describe()
    assert str(_own_cache_dir) in said and "probe" in said and "MB" in said


def test_a_user_without_a_home_compiles_everything_and_writes_nothing(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A service account run outside its unit may have no home: no cache, no stray
    relative '~/.cache' folder, and the expressions are re's own."""
    for name in ("NETVAGT_CACHE_DIR", "CACHE_DIRECTORY", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 4242)
    monkeypatch.setattr(os.path, "expanduser", lambda path: path)  # no passwd entry either
    monkeypatch.chdir(tmp_path)
    assert regex_cache.cache_dir() is None
    assert _compile_all("homeless").compiled == len(PATTERNS)
    assert list(tmp_path.iterdir()) == [] and "off" in regex_cache.describe()


def test_an_interpreter_whose_internals_differ_gets_re_s_own_and_keeps_nothing(
        monkeypatch: pytest.MonkeyPatch, _own_cache_dir: Path) -> None:
    """Should a later CPython change its compiler's inner functions, loading must still
    work: every pattern compiled by re, no file written."""
    def changed(*args: object) -> None:
        raise TypeError("compile() takes 5 arguments")

    monkeypatch.setattr(regex_cache, "_parts", changed)
    assert _compile_all("changed").compiled == 0
    assert not (_own_cache_dir / "changed.regex").exists()


def test_a_gathering_file_drops_a_damaged_entry_it_did_not_read(_own_cache_dir: Path) -> None:
    """nmap's file gathers the lines of every probe: an entry this start never asked for
    is still checked when the file is rewritten, and a damaged one dropped, not copied on
    (nor the rewrite abandoned)."""
    with regex_cache.session("gathering", prune=False):
        for pattern, flags in PATTERNS[:2]:
            regex_cache.regex(pattern, flags)
    path = _own_cache_dir / "gathering.regex"
    (form, interpreter, entries), code = _entries(path)
    key = next(iter(entries))
    flags, _offset, text, length, groups, groupindex, indexgroup = entries[key]
    entries[key] = (flags, 10**9, text, length, groups, groupindex, indexgroup)
    _rewrite(path, (form, interpreter, entries), code)
    with regex_cache.session("gathering", prune=False):
        regex_cache.regex(*PATTERNS[3])  # new: the file is rewritten
    kept = _entries(path)[0][2]
    assert len(kept) == 2 and key not in kept

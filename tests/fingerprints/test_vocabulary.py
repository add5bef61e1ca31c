"""One vocabulary of observation keys: every key the central or a rule relies on is listed
in fingerprints/vocabulary.toml, and every key listed there is produced by a scanner (or
made by the classifier itself). Keys are found as they are written: string literals of the
form <protocol>.<field> in the code (docstrings aside) and the rule files' ``key``."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from fingerprints.rules import vocabulary

ROOT = Path(__file__).parents[2]
KEY = re.compile(r"\b([a-z0-9]{1,16})\.([a-z0-9_]{1,32})\b")
PRODUCERS = [*sorted((ROOT / "scanners").rglob("*.py")), ROOT / "agent" / "scan.py",
             ROOT / "agent" / "wire.py", ROOT / "fingerprints" / "observation.py"]
CONSUMERS = [p for p in sorted((ROOT / "central").rglob("*.py")) if "lab" not in p.parts]
CONSUMERS += [ROOT / "fingerprints" / "classify.py"]


def literals(path: Path) -> set[str]:
    """The string constants of a module, its docstrings aside."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                                | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings}


def keys_in(paths: list[Path], protocols: set[str]) -> dict[str, str]:
    """Keys of the given protocols written in these modules -> the first module using it."""
    found: dict[str, str] = {}
    for path in paths:
        for text in literals(path):
            for match in KEY.finditer(text):
                if match.group(1) in protocols:
                    found.setdefault(match.group(0), path.name)
    return found


def rule_keys() -> dict[str, str]:
    """Each rule file's match key (its [file] header), and the recog files' keys."""
    from fingerprints.recog import RECOG_KEYS

    found = {str(tomllib.loads(path.read_text())["file"]["key"]): str(path.relative_to(ROOT))
             for path in sorted((ROOT / "fingerprints" / "rules").glob("*.toml"))}
    return found | {key: f"recog {name}.xml" for name, key in RECOG_KEYS.items()}


def protocols() -> set[str]:
    return {key.split(".")[0] for key in vocabulary().every_key if "." in key}


def test_every_key_the_central_or_a_rule_uses_is_listed() -> None:
    used = keys_in(CONSUMERS, protocols()) | rule_keys()
    unlisted = {key: where for key, where in used.items() if key not in vocabulary().every_key}
    assert unlisted == {}


def test_every_listed_key_is_produced_by_a_scanner_or_the_classifier() -> None:
    words = vocabulary()
    produced = keys_in(PRODUCERS, protocols())
    idle = sorted(words.every_key - produced.keys() - words.derived)
    assert idle == []


def test_what_the_scanners_produce_is_listed_too() -> None:
    # a new key a scanner starts sending must be listed, or nothing downstream knows it
    produced = keys_in(PRODUCERS, protocols())
    assert sorted(set(produced) - vocabulary().every_key) == []


def test_the_finder_sees_keys_in_sql_and_not_in_docstrings(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('"""Mentions snmp.fake in prose."""\n'
                      'SQL = "SELECT 1 FROM facts WHERE key = \'lldp.sysname\'"\n')
    assert keys_in([module], {"snmp", "lldp"}) == {"lldp.sysname": "m.py"}

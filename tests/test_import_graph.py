"""The import graph of the four packages: no cycle between modules (lazy imports inside
functions count: a cycle hidden in a function is still a cycle), and the layers point one
way: scanners and fingerprints know nothing of the agent or the central, the agent nothing
of the central."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("agent", "scanners", "fingerprints", "central")
# a package may import from the packages (or modules) listed for it, besides itself: the
# scanners know one thing of fingerprints, the type of what a device said
LAYERS = {"scanners": {"fingerprints.observation"}, "fingerprints": set(),
          "agent": {"scanners", "fingerprints"}, "central": {"agent", "scanners", "fingerprints"}}


def _allowed(target: str, package: str) -> bool:
    return any(target == entry or target.startswith(entry + ".")
               for entry in LAYERS[package] | {package})


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def graph() -> dict[str, set[str]]:
    """Module -> the first-party modules it imports, anywhere in its text."""
    known = modules()

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            edges[name] |= {t for t in map(resolve, targets) if t and t != name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The modules of an import cycle, if there is one (the standard library finds it)."""
    from graphlib import CycleError, TopologicalSorter

    try:
        TopologicalSorter(edges).prepare()
    except CycleError as exc:
        return [sorted(set(exc.args[1]))]
    return []


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle() -> None:
    assert cycles(graph()) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_layers_point_one_way(package: str) -> None:
    wrong = sorted(f"{source} imports {target}" for source, targets in graph().items()
                   if source.split(".")[0] == package for target in targets
                   if not _allowed(target, package))
    assert wrong == []


def third_party(module_names: set[str]) -> set[str]:
    """The distributions the given modules import (lazily or not)."""
    import sys
    from importlib.metadata import packages_distributions

    known = modules()
    providers = packages_distributions()
    found: set[str] = set()
    for name in module_names:
        for node in ast.walk(ast.parse(known[name].read_text())):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top in sys.stdlib_module_names or top in PACKAGES or top == "__future__":
                    continue
                found |= {d.lower().replace("_", "-") for d in providers.get(top, [top])}
    return found


def closure(roots: set[str], edges: dict[str, set[str]], *, outside: str = "central.lab"
            ) -> set[str]:
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name.startswith(outside):
            continue
        seen.add(name)
        todo.extend(edges[name])
    return seen


def requirements(*extras: str) -> set[str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return {re.split(r"[<>=\[ ;]", line, maxsplit=1)[0].lower() for line in lines
            if not line.startswith("netvagt")}


@pytest.mark.parametrize(("side", "package"), [("sensor", "agent"), ("central", "central")])
def test_each_side_installs_what_it_imports_and_the_sensor_no_central_parts(
        side: str, package: str) -> None:
    """A side's modules (and all they import, the lab aside: it is the demo's) need no
    distribution outside the side's requirements."""
    edges = graph()
    reached = closure({m for m in edges if m.split(".")[0] == package}, edges)
    assert third_party(reached) - requirements(side) == set()
    assert not requirements("sensor") & {"openpyxl", "sqlite-utils"}


def test_lab_devices_answer_without_the_product_s_encoders() -> None:
    """The emulated devices speak through scapy and their own bytes: a device built on the
    product's encoder would agree with the product's parser whatever both got wrong."""
    product = {"agent", "scanners", "fingerprints"}
    assert sorted(t for t in graph()["central.lab.devices"] if t.split(".")[0] in product) == []

"""The distribution's shape: our packages, one-way dependencies, commands documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def test_imported_packages_are_ours() -> None:
    import agent
    import central
    import fingerprints
    import scanners

    for package in (agent, scanners, fingerprints, central):
        assert Path(package.__file__ or "").resolve().parent.parent == ROOT, package.__file__


@pytest.mark.parametrize(
    ("modules", "forbidden"),
    [
        ("agent.wire, agent.signing", ("scapy", "nmap", "aiomqtt", "paho")),
        ("central.ingest, central.db, central.inventory, central.registry, central.cli",
         ("scapy", "nmap")),
    ],
)
def test_the_central_side_stays_light(modules: str, forbidden: tuple[str, ...]) -> None:
    code = (
        f"import sys, {modules}\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {forbidden!r}]\n"
        "print(','.join(sorted(bad)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.strip()
    assert out == "", f"importing {modules} pulled in {out}"


def test_scanners_import_neither_agent_nor_central() -> None:
    for path in (ROOT / "scanners").glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import) (agent|central)\b", text, re.M), path


def _commands(module: str) -> dict[str, tuple[str, str]]:
    return __import__(module, fromlist=["COMMANDS"]).COMMANDS


@pytest.mark.parametrize(("prog", "module"), [("netvagt-agent", "agent.cli"),
                                              ("netvagt-central", "central.cli")])
def test_every_command_has_help_with_an_example_and_is_in_the_readme(prog: str, module: str) -> None:
    """Each subcommand's --help, read from the parser in this process (one interpreter per
    command took nine seconds of the unit run); the entry point itself runs once."""
    import contextlib
    import io

    readme = (ROOT / "README.md").read_text()
    top = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                         text=True, cwd=ROOT)
    assert top.returncode == 0 and "Example" in top.stdout, top.stderr
    build_parser = __import__(module, fromlist=["build_parser"]).build_parser
    for name in _commands(module):
        shown = io.StringIO()
        with contextlib.redirect_stdout(shown), pytest.raises(SystemExit) as done:
            build_parser().parse_args([*name.split(), "--help"])
        assert done.value.code == 0
        assert "Example:" in shown.getvalue(), f"{prog} {name} --help has no example"
        assert f"{prog} {name}" in readme, f"README does not mention {prog} {name}"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    match = re.search(r"<!-- test-command -->\s*```sh\n(.+?)\n```", readme, re.S)
    assert match, "README has no marked test command"
    assert match.group(1).strip() in ci


def test_every_dependency_is_pinned_at_a_version_its_floor_admits() -> None:
    """install.sh installs with constraints.txt: each dependency pyproject names is pinned
    there, at or above its floor (sqlite-utils' floor once named a release without the
    atomic() the code uses)."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = version
    extras = project["optional-dependencies"].values()
    for spec in [*project["dependencies"], *(line for extra in extras for line in extra)]:
        requirement = Requirement(spec)
        name = requirement.name.lower().replace("_", "-")
        if name == "netvagt":  # an extra made of the others
            continue
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name]), (name, pins[name])


@pytest.mark.parametrize("module", ["agent.cli", "central.cli"])
def test_cli_conventions_version_exit_codes_and_subcommand_errors(module: str) -> None:
    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", module, *argv], capture_output=True,
                              text=True, cwd=ROOT)

    version = run("--version")
    assert version.returncode == 0 and re.search(r"netvagt-\w+ \S+", version.stdout)
    assert "exit codes: 0 done" in run("--help").stdout
    leaf = "scan" if module == "agent.cli" else "assets"
    wrong = run(leaf, "--no-such-option")
    assert wrong.returncode == 2
    assert f"usage: netvagt-{module.split('.')[0]}" in wrong.stderr
    assert f" {leaf} " in wrong.stderr.splitlines()[0]  # the subcommand's usage, not the top's


def test_piped_tables_are_not_cut() -> None:
    import io

    from rich.console import Console

    from agent import terminal

    table = terminal.table("t", ("sensor", "address", "what"))
    table.add_row("s-administration-bygning-7", "10.20.10.250", "x" * 300)
    out = io.StringIO()
    Console(file=out, width=terminal.PIPED_WIDTH, soft_wrap=False).print(table)
    text = out.getvalue()
    assert "s-administration-bygning-7" in text and "…" not in text and "x" * 300 in text


def test_the_readme_layout_names_every_module_and_nothing_else() -> None:
    text = (ROOT / "README.md").read_text()
    layout = text[text.index("## Layout"):]
    named = set(re.findall(r"^\| `([a-z_/]+\.py)` \|", layout, re.MULTILINE))
    modules = {str(p.relative_to(ROOT)) for package in ("agent", "scanners", "fingerprints",
                                                         "central", "bench")
               for p in (ROOT / package).rglob("*.py") if p.name != "__init__.py"}
    assert sorted(modules - named) == [], "modules the README's layout does not name"
    assert sorted(named - modules) == [], "the README's layout names modules that are gone"


@pytest.mark.parametrize("argv", [
    ["agent.cli", "doctor", "--config", "/nonexistent/agent.toml", "--format", "json"],
    ["agent.cli", "fingerprints", "status", "--format", "json"],
    ["central.cli", "fingerprints", "status", "--format", "json"],
])
def test_commands_that_list_or_evaluate_speak_json(argv: list[str], tmp_path: Path) -> None:
    env = {**__import__("os").environ, "NETVAGT_FINGERPRINTS": str(tmp_path / "store")}
    done = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=60)
    parsed = __import__("json").loads(done.stdout)
    assert parsed, done.stderr
    if argv[1] == "doctor":  # the missing configuration fails, and says how to fix it
        assert done.returncode == 1 and parsed[0]["ok"] is False and parsed[0]["fix"]

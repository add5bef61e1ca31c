"""The sensor's configuration: a misspelt setting is refused with its file and line, and the
shipped example loads as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import config

BASE = '[sensor]\nid = "s-a"\norg = "o"\n\n[broker]\nhost = "127.0.0.1"\n'


def test_a_misspelt_exclusion_list_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(BASE + '\n[scan]\nexlude = ["10.0.0.5"]\n')
    with pytest.raises(config.ConfigError) as caught:
        config.load(path)
    assert f"{path}:9: unknown setting 'exlude' in [scan]" in str(caught.value)
    assert "exclude" in str(caught.value)  # what it may have meant is listed


def test_unknown_sections_and_keys_are_all_listed(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(BASE + 'usernme = "x"\n\n[sceduler]\ncron = "0 1 * * *"\n')
    with pytest.raises(config.ConfigError) as caught:
        config.load(path)
    lines = str(caught.value).splitlines()
    assert any(":7: unknown setting 'usernme' in [broker]" in line for line in lines)
    assert any(":9: unknown section [sceduler]" in line for line in lines)


def test_deeply_nested_toml_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(BASE + "x = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.load(path)


def test_the_packaged_example_loads_with_its_central_section() -> None:
    example = Path(__file__).parents[2] / "packaging" / "agent.toml.example"
    loaded = config.load(example)
    assert loaded.central_key == Path("/etc/netvagt/central.jwk")
    assert loaded.client_id == "netvagt-s-admin"

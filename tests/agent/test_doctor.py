"""doctor names each problem with its fix."""

from __future__ import annotations

from pathlib import Path

from agent.doctor import check_config, check_outbox, run_checks


def test_missing_configuration_points_to_enroll(tmp_path: Path) -> None:
    check, config = check_config(tmp_path / "agent.toml")
    assert not check.ok and config is None
    assert "netvagt-agent enroll" in check.fix


def test_a_half_configured_sensor_gets_one_fix_per_problem(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(f'[sensor]\nid = "s-x"\norg = "o"\nkey = "{tmp_path}/none.key"\n'
                    f'state_dir = "{tmp_path}"\n[broker]\nhost = "127.0.0.1"\nport = 1\n'
                    '[scan]\ninterface = "nv-missing0"\n')
    checks = {c.name: c for c in run_checks(path)}
    assert checks["configuration"].ok
    assert not checks["interface"].ok and "ip link set" in checks["interface"].fix
    assert not checks["sensor key"].ok and "enroll" in checks["sensor key"].fix
    assert not checks["central key"].ok and "netvagt-central key" in checks["central key"].fix
    assert not checks["broker"].ok and "unreachable" in checks["broker"].detail
    assert checks["outbox"].ok
    assert checks["nmap"].ok  # installed by install.sh


def test_outbox_depth_is_reported(tmp_path: Path) -> None:
    from agent import signing, wire
    from agent.config import AgentConfig
    from agent.outbox import Outbox

    config = AgentConfig(sensor="s-x", org="o", key=tmp_path / "k", state_dir=tmp_path,
                         broker_host="127.0.0.1")
    with Outbox(config.outbox_path, limit_bytes=10) as outbox:
        outbox.enqueue_scan(sensor="s-x", org="o", key=signing.generate_private_key(),
                            started_at=wire.utc_now(), finished_at=wire.utc_now(), networks=(),
                            assets=())
    check = check_outbox(config)
    assert check.ok  # the default limit is 64 MiB; this outbox holds one message
    assert "1 message(s) waiting" in check.detail

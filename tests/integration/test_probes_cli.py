"""`kazoo-harness probe once` and `probe serve` as an operator runs them: exit codes, JSON, the
listening line, a clean stop on SIGTERM, usage errors, and secrets masked in what they print."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from probe_helpers import ACL, CATALOG, REPO, ROUTED, dead_port, get, parse, stack_file, value
from typer.testing import CliRunner

from harness.cli import app

SECRET = "esl-Pw-once-91d0"
START_DEADLINE = 60.0
FAILING_CONFIG = f"""
probes:
  unlisted_routes:
    scenario: {ACL}
    params: {{expect: {{outcome: routed, never: []}}}}
  carrier_{SECRET}:
    scenario: {ROUTED}
"""


def _once(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["probe", "once", "--catalog", str(CATALOG), *args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_once_exits_0_1_2_with_json(tmp_path: Path) -> None:
    config = tmp_path / "probes.yaml"
    config.write_text(FAILING_CONFIG, encoding="utf-8")
    code, out, _ = _once("--scenario", ACL, "--json")
    assert code == 0
    assert json.loads(out)["status"] == "success" and json.loads(out)["final_code"] == 407
    code, out, _ = _once("--scenario", "unlisted_routes", "--config", str(config), "--json")
    assert code == 1
    data = json.loads(out)
    assert (data["status"], data["cause"], data["expected_outcome"]) == ("failed", "acl", "routed")
    code, out, err = _once("--scenario", "no_such_scenario")
    assert code == 2 and "no scenario 'no_such_scenario'" in err and out == ""


def test_once_exits_3_when_the_stack_is_down_and_masks_secrets(tmp_path: Path) -> None:
    target = stack_file(tmp_path, dead_port())
    with target.open("a", encoding="utf-8") as f:  # the secret is the file's event-socket password
        f.write('\n[[esl]]\nname = "fs"\nhost = "127.0.0.1"\nport = 8021\npassword_env = "T_ONCE_ESL_PW"\n')
    config = tmp_path / "probes.yaml"
    config.write_text(FAILING_CONFIG, encoding="utf-8")
    env = {"T_ONCE_ESL_PW": SECRET}
    args = ["--target", str(target), "--config", str(config), "--timeout", "3"]
    code, out, err = _once(*args, "--scenario", f"carrier_{SECRET}", "--json", env=env)
    assert code == 3
    data = json.loads(out)
    assert (data["status"], data["reason"], data["probe"]) == ("error", "unreachable", "carrier_***")
    code, text_out, text_err = _once(*args, "--scenario", f"carrier_{SECRET}", env=env)
    assert code == 3 and "carrier_***" in text_out
    code, _, refused = _once(*args, "--scenario", SECRET, env=env)
    assert code == 2 and "***" in refused
    for text in (out, err, text_out, text_err, refused):
        assert SECRET not in text


def test_serve_answers_probes_and_stops_on_sigterm(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "harness.cli",
        "probe",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--catalog",
        str(CATALOG),
    ]
    child = subprocess.Popen(
        command,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        line = _line(child, START_DEADLINE)
        assert "listening on http://127.0.0.1:" in line, line
        url = line.split("listening on ")[1].split()[0]
        series = parse(get(url, "/probe", scenario=ROUTED).text)
        assert value(series, "probe_success") == 1 and value(series, "probe_sip_final_code") == 200
        own = parse(get(url, "/metrics").text)
        assert value(own, "kazoo_harness_probes_total", probe=ROUTED, sbc="", status="success") == 1
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    assert child.returncode == 0, err
    assert "stopped" in out
    assert f"probe {ROUTED}: success" in err  # the exporter's log: one line per probe


def test_serve_refuses_a_bad_config_with_its_line(tmp_path: Path) -> None:
    config = tmp_path / "probes.yaml"
    config.write_text("probes:\n  p:\n    scenario: nowhere_to_be_found\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["probe", "serve", "--listen", "127.0.0.1:0", "--config", str(config), "--catalog", str(CATALOG)]
    )
    assert result.exit_code == 2
    assert f"{config}:2: probe 'p': no scenario 'nowhere_to_be_found'" in result.stderr


def _line(child: subprocess.Popen[str], deadline: float) -> str:
    """The child's first line of output, within ``deadline`` seconds."""
    assert child.stdout is not None
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        ready, _, _ = select.select([child.stdout], [], [], end - time.monotonic())
        if ready:
            return child.stdout.readline()
    pytest.fail("probe serve printed nothing in time")

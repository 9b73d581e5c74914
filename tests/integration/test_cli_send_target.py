"""`send --target FILE`: the same target files as `run`, carrier roles by name, and their safety."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.model.stack import ModelConfig, RunningModel, start_model


@pytest.fixture(scope="module")
def model() -> Iterator[RunningModel]:
    with start_model(ModelConfig(sbc_port=0, media_port=0, esl_port=0, couch_port=0)) as running:
        yield running


def _target_file(tmp_path: Path, model: RunningModel, host: str | None = None) -> Path:
    path = tmp_path / "stack.toml"
    path.write_text(
        f'name = "t"\nprofile = "kazoo-4.3"\n\n[[sbc]]\nhost = "{host or model.sbc[0]}"\n'
        f"port = {model.sbc[1]}\n\n"
        '[carriers]\nlisted = "127.0.0.10"\nunlisted = "127.0.0.66"\n\n[numbers]\nrouted = "+14155550100"\n',
        encoding="utf-8",
    )
    return path


def test_carrier_role_from_the_target_file(tmp_path: Path, model: RunningModel) -> None:
    path = _target_file(tmp_path, model)
    result = CliRunner().invoke(
        app, ["send", "--target", str(path), "--source-ip", "unlisted", "--to", "+14155550100", "--json"]
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["final"]["code"] == 407 and record["sent"][0]["src"].startswith("127.0.0.66:")


def test_unknown_role_is_a_usage_error(tmp_path: Path, model: RunningModel) -> None:
    path = _target_file(tmp_path, model)
    result = CliRunner().invoke(app, ["send", "--target", str(path), "--source-ip", "nope", "--to", "+1415"])
    assert result.exit_code == 2
    assert "not an IP address" in result.output or "carrier role" in result.output


def test_target_from_the_environment(tmp_path: Path, model: RunningModel) -> None:
    path = _target_file(tmp_path, model)
    result = CliRunner().invoke(
        app,
        ["send", "--source-ip", "listed", "--to", "+14155550100", "--json"],
        env={"KAZOO_TARGET": str(path)},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["final"]["code"] == 200

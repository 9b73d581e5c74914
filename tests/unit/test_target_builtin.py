"""Target files that name a target the harness starts itself (`builtin = "lab"`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario.target import TargetError
from harness.scenario.targets import builtin_of

REPO = Path(__file__).resolve().parents[2]


def test_shipped_builtin_files() -> None:
    assert builtin_of(REPO / "scenarios/targets/docker.toml") == "docker"
    assert builtin_of(REPO / "scenarios/targets/lab-started.toml") == "lab"
    assert builtin_of(REPO / "scenarios/targets/staging.example.toml") is None


def test_unknown_builtin_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('builtin = "kubernetes"\n', encoding="utf-8")
    with pytest.raises(TargetError, match="builtin must be one of embedded, lab, docker"):
        builtin_of(path)


def test_builtin_with_stack_details_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('builtin = "lab"\n[[sbc]]\nhost = "127.0.0.1"\n', encoding="utf-8")
    with pytest.raises(TargetError, match="unexpected: sbc"):
        builtin_of(path)

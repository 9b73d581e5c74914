"""Target files that name a target the harness starts itself (`builtin = "lab"`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.targets.kinds import resolve, with_data
from harness.targets.target import TargetError

REPO = Path(__file__).resolve().parents[2]


def test_shipped_builtin_files() -> None:
    assert resolve(str(REPO / "scenarios/targets/docker.toml")).kind.name == "docker"
    assert resolve(str(REPO / "scenarios/targets/lab-started.toml")).kind.name == "lab"
    assert resolve(str(REPO / "scenarios/targets/staging.example.toml")).kind.name == "file"


def test_every_command_resolves_the_same_references() -> None:
    assert resolve("lab").kind.name == "lab"
    assert resolve("127.0.0.1:5060").address == ("127.0.0.1", 5060)
    with pytest.raises(TargetError, match="only loopback"):
        resolve("192.0.2.1:5060")
    with pytest.raises(TargetError, match="no such target"):
        resolve("nowhere.toml")


def test_unknown_builtin_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('builtin = "kubernetes"\n', encoding="utf-8")
    with pytest.raises(TargetError, match="builtin must be one of embedded, lab, docker"):
        resolve(str(path))


def test_builtin_with_stack_details_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('builtin = "lab"\n[[sbc]]\nhost = "127.0.0.1"\n', encoding="utf-8")
    with pytest.raises(TargetError, match="unexpected: sbc"):
        resolve(str(path))


def test_data_goes_only_to_a_kind_that_starts_the_model_on_it(tmp_path: Path) -> None:
    data = tmp_path / "couch"
    data.mkdir()
    assert with_data(resolve("embedded"), data).data_dir == data
    assert with_data(resolve("lab"), None).data_dir is None  # no data: every kind, the demo's
    for ref in ("lab", "docker", "kazoo-sbc", "model", "127.0.0.1:5060"):
        with pytest.raises(TargetError, match=r"loads the model a target starts \(embedded\)"):
            with_data(resolve(ref), data)
    with pytest.raises(TargetError, match="not a directory"):
        with_data(resolve("embedded"), tmp_path / "absent")

"""The docker target's engine-free parts: the error without an engine, the build context, the
Dockerfiles' contract (BASE_IMAGE argument, few instructions)."""

from __future__ import annotations

import ast
import tarfile
from pathlib import Path

import pytest

from harness.targets.docker_images import (
    IMAGES,
    REPO_ROOT,
    DockerUnavailable,
    build_context,
    docker_client,
    engine_unavailable_reason,
)
from harness.targets.target import TargetStartError


def test_no_engine_names_the_engine_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    with pytest.raises(DockerUnavailable) as caught:
        docker_client(timeout=2)
    assert "docker/engine.sh start" in str(caught.value)
    assert str(tmp_path) in str(caught.value)
    assert isinstance(caught.value, TargetStartError)  # the plugin turns it into a usage error
    reason = engine_unavailable_reason()
    assert reason is not None and "docker/engine.sh start" in reason


def _names(role: str) -> set[str]:
    with tarfile.open(fileobj=build_context(role), mode="r") as tar:
        return set(tar.getnames())


@pytest.mark.parametrize("role", sorted(IMAGES))
def test_build_context_holds_its_dockerfile_and_no_venv(role: str) -> None:
    names = _names(role)
    assert IMAGES[role][0] in names
    assert "harness/lab/kamailio.cfg.tmpl" in names  # the Kamailio image's config, the model's package data
    assert not any(n.startswith((".venv", ".git")) or "__pycache__" in n for n in names)


def test_contexts_hold_what_each_image_installs() -> None:
    assert {"pyproject.toml", "harness/scenario/runner.py", "scenarios"} <= _names("harness")
    assert {"pyproject.toml", "harness/model/stack.py"} <= _names("model")
    kamailio = _names("kamailio")
    assert "docker/lab_kamailio.py" in kamailio and "pyproject.toml" not in kamailio  # no pip install


def test_build_context_is_stable_for_the_build_cache(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    assert build_context("model").getvalue() == build_context("model").getvalue()
    with tarfile.open(fileobj=build_context("model", ca_bundle=ca), mode="r") as tar:
        assert "docker/build-ca.crt" in tar.getnames()


@pytest.mark.parametrize("role", sorted(IMAGES))
def test_dockerfiles_take_base_image_and_stay_short(role: str) -> None:
    text = (REPO_ROOT / IMAGES[role][0]).read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith(("#", " "))]
    assert lines[0] == "ARG BASE_IMAGE=debian:bookworm-slim"
    assert lines[1] == "FROM ${BASE_IMAGE}"
    # vfs copies the whole filesystem for each layer-making instruction
    assert sum(line.split()[0] in ("COPY", "RUN", "ADD") for line in lines) <= 2


def test_the_kamailio_context_holds_every_harness_module_its_entry_point_imports() -> None:
    """The Kamailio image has no pip install: docker/lab_kamailio.py runs from the files in its context,
    so every harness module it reaches, directly or through another, must be in that context."""
    kamailio = _names("kamailio")
    pending, seen = [REPO_ROOT / "docker" / "lab_kamailio.py"], set[Path]()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            for module in (m for m in modules if m == "harness" or m.startswith("harness.")):
                relative = module.replace(".", "/")
                file = (
                    relative + ".py"
                    if (REPO_ROOT / f"{relative}.py").is_file()
                    else relative + "/__init__.py"
                )
                assert file in kamailio, f"{path.relative_to(REPO_ROOT)} imports {module}, not in the image"
                pending.append(REPO_ROOT / file)
    assert len(seen) > 2  # the walk reached the harness modules, not only the entry point

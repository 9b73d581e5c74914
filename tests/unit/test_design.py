"""The house holds: every import points down the picture in docs/design.md, and the release names and
cause names are spelled in their one home only (a copy elsewhere is how checks stopped checking)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[2] / "harness"
# What each package may use (docs/design.md): nothing upward, no circles.
ALLOWED: dict[str, set[str]] = {
    "sip": set(),
    "yaml_schema": set(),
    "progress": set(),
    "lifetime": set(),
    "hep": set(),  # sans-I/O HEP: bytes in, packets out, nothing of the house
    "kazoo": {"sip", "yaml_schema"},
    "net": {"sip"},
    "logs": {"hep", "kazoo", "net", "sip"},
    "model": {"kazoo", "sip"},
    "lab": {"kazoo"},
    "media": {"kazoo", "net", "sip"},
    "kazoo_sbc": {"kazoo", "lab", "lifetime"},
    "targets": {"kazoo", "kazoo_sbc", "lab", "lifetime", "logs", "model", "net", "progress", "sip"},
    "scenario": {"kazoo", "logs", "net", "sip", "targets", "yaml_schema"},
    "replay": {"hep", "kazoo", "logs", "net", "sip", "targets"},
    "interop": {"kazoo", "kazoo_sbc", "lab", "logs", "model", "net", "sip", "targets"},
    "report": {"hep", "kazoo", "logs", "net", "sip"},
    "probes": {"kazoo", "logs", "net", "replay", "report", "scenario", "sip", "targets", "yaml_schema"},
    "load": {"kazoo", "logs", "net", "scenario", "sip", "targets", "yaml_schema"},
}
FACES = {"commands", "pytest_plugin", "cli"}  # the top: they may use anything below


def _package(path: Path) -> str:
    parts = path.relative_to(HARNESS).with_suffix("").parts
    return parts[0]


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found |= {n.split(".")[1] for n in names if n.startswith("harness.")}
    return found


def test_every_import_points_down_the_picture() -> None:
    upward = []
    for path in sorted(HARNESS.rglob("*.py")):
        package = _package(path)
        if package in FACES or package == "__init__":
            continue
        assert package in ALLOWED, f"{package} is not in docs/design.md's picture"
        for used in _imports(path) - {package}:
            if used not in ALLOWED[package]:
                upward.append(f"{path.relative_to(HARNESS.parent)} imports harness.{used}")
    assert not upward, upward


def _literals(pattern: str, allowed: set[str]) -> list[str]:
    regex = re.compile(pattern)
    hits = []
    for path in sorted(HARNESS.rglob("*.py")):
        if str(path.relative_to(HARNESS)) in allowed:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if regex.search(line):
                hits.append(f"{path.relative_to(HARNESS.parent)}:{number}: {line.strip()}")
    return hits


def test_release_names_are_spelled_in_the_release_model_only() -> None:
    assert _literals(r"\"kazoo-(4\.3|5)\"", {"kazoo/release.py"}) == []


def test_cause_names_are_spelled_in_the_cause_list_only() -> None:
    # "acl" stands also for Kamailio's ACL role and FreeSWITCH's `acl` command (other ideas, same word)
    hits = _literals(r"\"(number_format|number_mapping|call_flow|malformed_invite)\"", {"kazoo/causes.py"})
    assert hits == []

"""Scenario cases: one checked scenario, expanded over its `params` into concrete runs."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.scenario.schema import load_file


@dataclass(frozen=True)
class ScenarioCase:
    """One concrete run of a scenario (a scenario without params is one case)."""

    name: str
    cause: str
    description: str
    path: Path
    line: int
    param_id: str | None = None
    carrier: dict[str, Any] = field(default_factory=dict)
    send: dict[str, Any] = field(default_factory=dict)
    expect: dict[str, Any] = field(default_factory=dict)
    setup: dict[str, Any] = field(default_factory=dict)
    releases: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    markers: tuple[str, ...] = ()
    seed: int | None = None

    @property
    def test_id(self) -> str:
        """A pytest-friendly name: the scenario name as an identifier, with the param id."""
        base = slug(self.name)
        return f"{base}[{self.param_id}]" if self.param_id else base

    @property
    def via(self) -> str:
        return str(self.send.get("to", "sbc"))

    @property
    def method(self) -> str:
        return str(self.send.get("method", "INVITE"))


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower() or "scenario"


PARAM_FIELDS = ("carrier", "send", "expect", "setup")  # what a params entry may change


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def expand(data: dict[str, Any], path: Path, line: int) -> list[ScenarioCase]:
    """The cases of one checked scenario mapping."""
    params: list[dict[str, Any]] = data.get("params") or [{}]
    cases = []
    for param in params:
        merged = _merge(data, {k: v for k, v in param.items() if k != "id"})
        cases.append(
            ScenarioCase(
                name=str(data["name"]),
                cause=str(data["cause"]),
                description=" ".join(str(data["description"]).split()),
                path=path,
                line=line,
                param_id=str(param["id"]) if "id" in param else None,
                carrier=merged.get("carrier") or {},
                send=merged.get("send") or {},
                expect=merged.get("expect") or {},
                setup=merged.get("setup") or {},
                releases=tuple(data.get("releases") or ()),
                targets=tuple(data.get("targets") or ()),
                markers=tuple(data.get("markers") or ()),
                seed=data.get("seed"),
            )
        )
    return cases


def with_overrides(case: ScenarioCase, over: Mapping[str, Any], param_id: str) -> ScenarioCase:
    """``case`` with a `params:`-style entry merged over it (carrier, send, expect, setup), as `params:`
    merges over a scenario: a probe of the catalog scenario with its own carrier or expectation."""
    fields: dict[str, Any] = {k: _merge(getattr(case, k), dict(over[k])) for k in PARAM_FIELDS if k in over}
    return replace(case, param_id=param_id, **fields)


def load_cases(path: Path, ctx: Mapping[str, Any] | None = None) -> list[ScenarioCase]:
    """Every case in a scenario file (raises SchemaError with file:line for schema errors); ``ctx``:
    what is known of the target (harness.scenario.schema.context)."""
    out: list[ScenarioCase] = []
    for data, line in load_file(path, ctx):
        out.extend(expand(data, path, line))
    return out

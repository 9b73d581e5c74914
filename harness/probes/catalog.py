"""Finding the scenario a probe names: a catalog case by its test id (`unlisted_carrier_is_challenged`,
`a_routed_call_rings_answers_and_hangs_up[udp]`) or by its scenario name when that names one case."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.scenario.case import ScenarioCase, load_cases, slug
from harness.scenario.schema import is_scenario_file


class UnknownScenario(LookupError):
    """A name that is no case of the catalog, or several: the message says which to use."""


@dataclass(frozen=True)
class Catalog:
    cases: Mapping[str, ScenarioCase]  # by test id, in catalog order
    folder: Path | None = None

    @classmethod
    def load(cls, folder: Path, ctx: Mapping[str, Any] | None = None) -> Catalog:
        """Every case of every scenario file under ``folder`` (SchemaError at file:line on a bad one)."""
        if not folder.is_dir():
            raise UnknownScenario(f"no scenario catalog folder {folder}")
        files = sorted(p for p in folder.rglob("*.y*ml") if is_scenario_file(p) is not False)
        return cls.of((case for path in files for case in load_cases(path, ctx)), folder)

    @classmethod
    def of(cls, cases: Iterable[ScenarioCase], folder: Path | None = None) -> Catalog:
        by_id: dict[str, ScenarioCase] = {}
        for case in cases:
            if case.test_id in by_id:
                first = by_id[case.test_id]
                raise UnknownScenario(
                    f"two scenarios have the test id {case.test_id!r}: {first.path}:{first.line} and "
                    f"{case.path}:{case.line}"
                )
            by_id[case.test_id] = case
        return cls(by_id, folder)

    def find(self, ref: str) -> ScenarioCase:
        """The case ``ref`` names: a test id, a scenario name, or its slug (one case only)."""
        if ref in self.cases:
            return self.cases[ref]
        wanted = slug(ref)
        matches = [c for c in self.cases.values() if c.name == ref or slug(c.name) == wanted]
        if len(matches) == 1:
            return matches[0]
        if matches:
            ids = ", ".join(c.test_id for c in matches)
            raise UnknownScenario(f"scenario {ref!r} has {len(matches)} cases; name one: {ids}")
        where = f" in {self.folder}" if self.folder is not None else ""
        raise UnknownScenario(f"no scenario {ref!r}{where}")

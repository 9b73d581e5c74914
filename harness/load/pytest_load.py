"""Load runs inside pytest: the ``load`` marker, what the ``load_run`` fixture runs, and (with
``--harness-load``) one ``[load]`` item per catalog scenario that has a ``load:`` block, so a small load
check can sit in a pytest smoke job::

    @pytest.mark.load
    def test_burst_is_routed(load_run):
        result = load_run("scenarios/load/trusted_burst.yaml", workers=2)
        assert result.summary.calls == 80

    pytest scenarios/load --harness-load -m load

The plugin (harness.pytest_plugin) offers the fixture and collects the items; both run against the
session's ``kazoo`` target, with its setup applied as a scenario's is (harness.scenario.setup).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.load.launch import LocustOptions, free_tcp_port
from harness.load.plan import PlanSkipped
from harness.load.report import describe
from harness.load.run import LoadResult, run_load
from harness.load.spec import load_spec
from harness.net.gate import SendRefused
from harness.scenario.case import ScenarioCase, expand, load_cases
from harness.scenario.plan import skip_reason
from harness.scenario.schema import check_scenario
from harness.scenario.setup import applied
from harness.targets.target import SetupUnsupported, Target

MARKER = "load: a scenario at rate on Locust (kazoo-harness load); collect YAML ones with --harness-load"


def scenario_case(scenario: str | Path | dict[str, Any]) -> ScenarioCase:
    """One case: a file, FILE::test_id, or a dict in the YAML schema (checked the same way)."""
    if isinstance(scenario, dict):
        data = {"description": scenario.get("name", "python load scenario"), **scenario}
        cases = expand(check_scenario(data), Path("<python>"), 1)
    else:
        file, _, wanted = str(scenario).partition("::")
        cases = [c for c in load_cases(Path(file)) if not wanted or c.test_id == wanted]
    if len(cases) != 1:
        raise ValueError(f"{scenario}: {len(cases)} cases; name one as FILE::test_id")
    return cases[0]


def execute(
    case: ScenarioCase,
    target: Target,
    *,
    workers: int | None = None,
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
) -> LoadResult:
    """The case at rate on ``target`` (its setup applied for the run); pytest.skip where the case does not
    run there (other releases, a setup the target cannot apply, a load its gate refuses), as a scenario
    item skips."""
    skip = skip_reason(case, target)  # before the setup starts a twin for nothing
    if skip is not None:
        pytest.skip(skip)
    spec = load_spec(case, overrides)
    count = spec.workers if workers is None else workers
    options = LocustOptions(
        mode="processes" if count else "local", workers=count, master_port=free_tcp_port()
    )
    try:
        with applied(target, case.setup) as effective:
            return run_load(case, effective, spec, options, session_seed=seed, on_line=lambda line: None)
    except (PlanSkipped, SetupUnsupported, SendRefused) as exc:
        pytest.skip(str(exc))


def load_runner(target: Target, seed: int) -> Callable[..., LoadResult]:
    """What the ``load_run`` fixture gives: ``load_run(scenario, workers=1, check=True, **overrides)``
    runs a scenario (a file, FILE::case, or a dict in the YAML schema) at rate against the session's
    target; with ``check`` a failed threshold fails the test with the run's report. Overrides are the
    `load:` keys (calls, rate, sources...)."""

    def run(
        scenario: str | Path | dict[str, Any],
        *,
        workers: int | None = None,
        check: bool = True,
        **overrides: Any,
    ) -> LoadResult:
        case = scenario_case(scenario)
        result = execute(case, target, workers=workers, seed=seed, overrides=overrides)
        if check and not result.ok:
            raise AssertionError(describe(result, case, target.name))
        return result

    return run


def _load_test(kazoo: Target) -> None:
    """What a [load] item calls: the body lives in LoadItem.runtest (it needs the item)."""


class LoadItem(pytest.Function):
    """A catalog scenario's `load:` block as one test taking the ``kazoo`` fixture (--harness-load)."""

    def __init__(self, *, case: ScenarioCase, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.seed = seed

    def runtest(self) -> None:
        target: Target = self.funcargs["kazoo"]  # type: ignore[assignment]
        result = execute(self.case, target, seed=self.seed)
        if not result.ok:
            raise AssertionError(describe(result, self.case, target.name))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, AssertionError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, f"load: {self.case.name}"


def load_items(parent: pytest.File, cases: list[ScenarioCase], seed: int) -> list[LoadItem]:
    """The ``[load]`` items of a scenario file's cases, when --harness-load asks for them."""
    if not parent.config.getoption("harness_load", False):
        return []
    items = []
    for case in cases:
        if case.load:
            item = LoadItem.from_parent(
                parent, name=f"{case.test_id}[load]", case=case, seed=seed, callobj=_load_test
            )
            item.add_marker("load")
            items.append(item)
    return items

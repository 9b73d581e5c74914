"""From a request (a probe name, an SBC node, a time budget) to a ProbeResult: what `probe once` and
every `GET /probe` share. The target is opened once by the caller and stays open; the service finds
the scenario (a probe of the config first, then the catalog), refuses what the target does not allow,
waits for a slot of the node (harness.probes.slots) and runs the probe within its deadline."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.probes.catalog import Catalog, UnknownScenario
from harness.probes.config import ProbeConfig, load_config
from harness.probes.probe import BUSY, ProbeRefused, ProbeResult, Status, run_probe
from harness.probes.safety import refusal
from harness.probes.slots import NodeBusy, NodeSlots
from harness.scenario.case import ScenarioCase, with_overrides
from harness.scenario.schema import context
from harness.targets.target import Target

DEFAULT_CATALOG = Path("scenarios")


@dataclass(frozen=True)
class ProbeRequest:
    name: str  # as asked: a probe of the config, a catalog test id or scenario name
    case: ScenarioCase
    node: str | None
    target: Target  # the target, aimed at the node
    timeout: float  # seconds for the whole probe, the wait for a slot included

    @property
    def slot(self) -> str:
        host, port = self.target.sbc
        return f"{host}:{port}"


class ProbeService:
    def __init__(
        self,
        target: Target,
        catalog: Catalog,
        config: ProbeConfig | None = None,
        *,
        concurrency: int | None = None,
        timeout: float | None = None,
    ) -> None:
        self.target = target
        self.catalog = catalog
        self.config = config or ProbeConfig()
        self.timeout = timeout or self.config.timeout
        self.slots = NodeSlots(concurrency or self.config.concurrency)
        self.probes: dict[str, ScenarioCase] = {}
        for name, spec in self.config.probes.items():  # a bad probe of the file stops the start
            try:
                case = with_overrides(catalog.find(spec.scenario), spec.params, name)
            except UnknownScenario as exc:
                raise ProbeRefused(f"{spec.where}: probe {name!r}: {exc}") from exc
            problem = refusal(case, target)
            if problem:
                raise ProbeRefused(f"{spec.where}: probe {name!r}: {problem}")
            self.probes[name] = case
        self._nodes: dict[str, Target] = {}

    @classmethod
    def load(
        cls,
        target: Target,
        *,
        config: Path | None = None,
        catalog: Path | None = None,
        concurrency: int | None = None,
        timeout: float | None = None,
    ) -> ProbeService:
        """The service for ``target`` with the probes file and the catalog folder (``catalog``, else the
        file's `catalog:`, else ./scenarios); SchemaError for a bad file, ProbeRefused for a bad probe."""
        ctx = context(list(target.logs), sorted(target.profile.never))
        loaded = load_config(config, ctx) if config is not None else ProbeConfig()
        folder = catalog or loaded.catalog or DEFAULT_CATALOG
        try:
            cases = Catalog.load(folder, ctx)
        except UnknownScenario as exc:
            raise ProbeRefused(str(exc)) from exc
        return cls(target, cases, loaded, concurrency=concurrency, timeout=timeout)

    def names(self) -> list[str]:
        """Every name a probe can be asked by: the config's probes, then the catalog's test ids."""
        return [*self.probes, *self.catalog.cases]

    def request(self, name: str, node: str | None = None, *, cap: float | None = None) -> ProbeRequest:
        """The probe ``name`` against ``node``; ``cap``: a budget the caller imposes (a scrape's own
        timeout). ProbeRefused when it names nothing or the target does not allow it."""
        if not name:
            raise ProbeRefused(
                "name a probe: ?scenario=NAME (a probe of the config, a catalog test id or scenario name)"
            )
        if name in self.probes:
            case = self.probes[name]
            spec_timeout = self.config.probes[name].timeout
        else:
            try:
                case = self.catalog.find(name)
            except UnknownScenario as exc:
                raise ProbeRefused(str(exc)) from exc
            spec_timeout = None
            problem = refusal(case, self.target)
            if problem:
                raise ProbeRefused(problem)
        timeout = spec_timeout or self.timeout
        if cap is not None:
            timeout = min(timeout, cap)
        return ProbeRequest(name, case, node or None, self._node(node or None), timeout)

    def _node(self, node: str | None) -> Target:
        if node is None:
            return self.target
        nodes: Mapping[str, tuple[str, int]] = self.target.sbc_nodes
        if node not in nodes:
            known = ", ".join(nodes) or "none: it has one SBC"
            raise ProbeRefused(f"target {self.target.name!r} has no SBC node {node!r} (its nodes: {known})")
        if node not in self._nodes:  # the same name: the target's one rate cap covers every node
            self._nodes[node] = self.target.with_changes(sbc=nodes[node])
        return self._nodes[node]

    def run(self, request: ProbeRequest, started: float | None = None) -> ProbeResult:
        """Run the probe once a slot of its node is free, all within its timeout from ``started``
        (monotonic; default now). ProbeRefused when the target's rules refuse what it would send."""
        started = time.monotonic() if started is None else started
        deadline = started + request.timeout
        try:
            with self.slots.hold(request.slot, deadline):
                return run_probe(
                    request.name,
                    request.case,
                    request.target,
                    timeout=request.timeout,
                    node=request.node,
                    started=started,
                )
        except NodeBusy as exc:
            return ProbeResult(
                request.name,
                request.node,
                Status.ERROR,
                time.monotonic() - started,
                request.case,
                reason=BUSY,
                detail=str(exc),
            )

    def probe(self, name: str, node: str | None = None, *, cap: float | None = None) -> ProbeResult:
        started = time.monotonic()
        return self.run(self.request(name, node, cap=cap), started)

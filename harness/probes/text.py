"""A probe result for people: `probe once` without --json, and `GET /probe?...&debug=true`."""

from __future__ import annotations

from harness.probes.probe import ProbeResult
from harness.report.ladder import text_ladder


def explain(result: ProbeResult) -> str:
    scenario = result.case.test_id if result.case is not None else "-"
    head = f"probe {result.probe} (scenario {scenario}"
    head += f", sbc {result.node})" if result.node else ")"
    lines = [f"{head}: {result.status}" + (f" ({result.reason})" if result.reason else "")]
    lines.append(f"duration: {result.duration:.3f} s")
    run = result.scenario
    if run is not None and run.expectation is not None:
        outcome = f" (outcome {run.expectation.outcome})" if run.expectation.outcome else ""
        lines += [f"expected: {run.expectation.describe()}{outcome}", f"got:      {run.got}"]
    if result.diagnosis is not None:
        lines.append(f"cause:    {result.diagnosis.cause} (matches outcome {result.diagnosis.outcome})")
    for line in result.log_lines:
        mark = "seen" if line.seen else "not seen"
        lines.append(f"log line {line.id} [{line.source or 'any'}] must be {line.expected}: {mark}")
    if result.detail:
        lines += ["", result.detail]
    if result.exchange is not None:
        lines += ["", text_ladder(result.exchange)]
    return "\n".join(lines)

"""One JSON record per scenario run: what the reports (JSON file, summary table) are made from."""

from __future__ import annotations

from typing import Any

from harness.logs.assertions import LogVerdict
from harness.net.exchange import outcome_text
from harness.scenario.capture import capture_record
from harness.scenario.case import ScenarioCase
from harness.scenario.runner import ScenarioResult


def scenario_record(
    case: ScenarioCase, result: ScenarioResult | None, verdict: str, reproduce: str
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": case.test_id,
        "name": case.name,
        "cause": case.cause,
        "file": str(case.path),
        "line": case.line,
        "param": case.param_id,
        "verdict": verdict,
        "reproduce": reproduce,
    }
    if result is None:
        return record
    exp = result.expectation
    ex = result.exchange
    record.update(
        {
            "expected": exp.describe() if exp is not None else "",
            "outcome_name": exp.outcome if exp is not None else None,
            "got": result.got,
            "failures": result.failures,
            "seed": result.seed,
            "timings": {"duration_ms": round(result.duration * 1000, 1)},
            "placeholders": result.placeholders,
        }
    )
    if result.skipped is not None:
        record["skipped"] = result.skipped
    if ex is not None:
        record["outcome"] = ex.outcome
        record["outcome_text"] = outcome_text(ex)
        record["codes"] = {"final": ex.final_code, "provisional": ex.provisional_codes}
        record["call_id"] = ex.call_id
        record["timings"]["started"] = ex.started_wall  # epoch: the report's run time, log line offsets
        record["timings"]["exchange_ms"] = round(ex.duration * 1000, 1)
        record["timings"]["ended_early"] = ex.ended_early
        record["exchange"] = ex.to_json()
    if result.logs is not None:
        record["logs"] = logs_record(result.logs)
    if result.capture is not None and ex is not None:
        record["capture"] = capture_record(result.capture, ex)
    return record


def logs_record(verdict: LogVerdict) -> dict[str, Any]:
    return {
        "ok": verdict.ok,
        # regex and source: what the HTML report highlights; received: where a drop line sits on the ladder
        "matched": [
            {
                "pattern": e.describe(),
                "regex": e.pattern,
                "source": hits[0].source,
                "line": hits[0].raw,
                "received": hits[0].received,
            }
            for e, hits in verdict.matched
        ],
        "missing": [e.describe() for e in verdict.missing],
        "unexpected": [{"pattern": e.describe(), "line": line.raw} for e, line in verdict.unexpected],
        "wrong_count": [{"pattern": e.describe(), "seen": n} for e, n in verdict.wrong_count],
        "silent_sources": verdict.silent_sources,
        "related": [
            {"source": line.source, "line": line.raw, "reason": verdict.correlation.reason(line)}
            for line in verdict.correlation.related
        ],
        "decided_early": verdict.decided_early,
    }

"""One load run, end to end: plan -> Locust (master and workers) -> summary + log counts -> verdict.

``run_load(case, target, spec, options)`` is what the ``load`` command and the ``run_load`` pytest
fixture call. The target is already open (the caller owns its lifetime); Locust runs as a child process
group the run owns and always stops, also on Ctrl-C (KeyboardInterrupt is re-raised after the stop).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.kazoo.profile import LogPattern, PlaceholderError, fill
from harness.load.engine import BYE_GRACE
from harness.load.launch import LocustOptions, LocustProcess, locust_command
from harness.load.logwatch import LogWatch
from harness.load.plan import LoadPlan, Matcher, PlanError, make_plan, outcome_matcher
from harness.load.spec import LoadSpec
from harness.load.verdict import LogCount, RunSummary, judge_run
from harness.scenario.case import ScenarioCase
from harness.targets.target import Target

START_MARGIN = 20.0  # seconds for Locust to start its processes and connect its workers
LOG_GRACE = 1.0  # seconds after the run for the last calls' log lines to arrive


class LoadRunError(RuntimeError):
    """Locust did not produce a summary (it crashed, or could not start); the output says why."""


@dataclass
class LoadResult:
    plan: LoadPlan
    summary: RunSummary
    logs: list[LogCount]
    failures: list[str]
    command: list[str]
    returncode: int
    output: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def time_bound(plan: LoadPlan, spec: LoadSpec) -> float:
    """Locust's own -t: the last call's send time, its timeout, a hang-up, and start-up."""
    return spec.schedule.span + plan.timeout + BYE_GRACE + START_MARGIN


def log_patterns(
    patterns: tuple[LogPattern, ...], plan: LoadPlan, target: Target, case: ScenarioCase
) -> list[LogPattern]:
    """The run's log patterns with placeholders filled; {source_ip} matches any address of the pool. A
    per-call value ({call_id}, {source_port}, {from_user}) has no one value over a run: PlanError."""
    fields = plan.invite_fields
    values = {
        "sbc_ip": target.sbc_ip,
        "number": str(fields.get("ruri_user", "")),
        "dialed": str(fields.get("ruri_user", "")),
        "to_user": str(fields.get("to_user", "")),
        "to_host": str(fields.get("to_host") or plan.destination[0]),
        "seen_ip": target.sbc_ip if case.via == "sbc" else plan.sources[0],
    }
    pool = "(?:" + "|".join(re.escape(ip) for ip in plan.sources) + ")"
    out = []
    for p in patterns:
        text = p.pattern.replace("{source_ip}", "\0POOL\0")
        try:
            filled = fill(text, values)
        except PlaceholderError as exc:
            raise PlanError(f"{case.path}:{case.line}: load.expect.logs: {exc}") from exc
        out.append(LogPattern(filled.replace("\0POOL\0", pool), p.source, p.count))
    return out


def run_load(
    case: ScenarioCase,
    target: Target,
    spec: LoadSpec,
    options: LocustOptions,
    *,
    session_seed: int = 0,
    work_dir: Path | None = None,
    on_line: Callable[[str], None] | None = None,
    on_started: Callable[[LocustProcess], None] | None = None,
) -> LoadResult:
    plan = make_plan(case, target, spec, senders=options.senders, session_seed=session_seed, web=options.web)
    expected = plan.matchers()[0]
    matchers: dict[str, Matcher] = {
        name: outcome_matcher(name, case, target) for name in spec.thresholds.outcomes
    }
    present = log_patterns(spec.thresholds.logs_present, plan, target, case)
    absent = log_patterns(spec.thresholds.logs_absent, plan, target, case)
    folder = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="kh-load-"))
    folder.mkdir(parents=True, exist_ok=True)
    plan_file, summary_file = folder / "plan.json", folder / "summary.json"
    plan_file.write_text(plan.to_json(), encoding="utf-8")
    bound = time_bound(plan, spec)
    host = f"sip:{plan.destination[0]}:{plan.destination[1]}"
    command = locust_command(options, plan_file, summary_file, bound, host)
    locust = LocustProcess(command, on_line=on_line)
    with LogWatch(target.log_sources, present, absent) as logs:
        locust.start()
        try:
            if on_started is not None:
                on_started(locust)
            deadline = time.monotonic() + bound + (options.web_linger if options.web else 0) + START_MARGIN
            code = locust.wait(deadline)
        except BaseException:
            locust.stop()
            raise
        counts = logs.finish(LOG_GRACE)
    if not summary_file.is_file():
        tail = "\n".join(locust.output[-30:])
        raise LoadRunError(f"Locust exited with {code} and wrote no summary:\n{tail}")
    summary = RunSummary.read(summary_file)
    failures = judge_run(
        spec.thresholds,
        summary,
        matchers,
        expected,
        counts,
        planned=spec.schedule.total,
        senders=plan.senders,
    )
    if logs.errors:
        failures += [f"logs: source {name} could not be read: {err}" for name, err in logs.errors.items()]
    return LoadResult(plan, summary, counts, failures, command, code, list(locust.output))


def result_record(result: LoadResult) -> dict[str, object]:
    """The run as one JSON-able record (the command's --json)."""
    s = result.summary
    return {
        "scenario": result.plan.scenario,
        "verdict": "passed" if result.ok else "failed",
        "failures": result.failures,
        "calls": s.calls,
        "rate": s.rate,
        "seconds": s.active,
        "outcomes": s.outcomes,
        "final_ms": s.final_ms,
        "first_provisional_ms": s.first_provisional_ms,
        "counters": s.counters,
        "per_sender": s.per_sender,
        "logs": [
            {
                "pattern": c.pattern,
                "source": c.source,
                "present": c.present,
                "wanted": c.wanted,
                "count": c.count,
            }
            for c in result.logs
        ],
        "sources": result.plan.sources,
        "destination": list(result.plan.destination),
    }


def dumps(result: LoadResult) -> str:
    return json.dumps(result_record(result), indent=2)

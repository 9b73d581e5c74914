"""Judge a whole load run: the summary Locust's master wrote and the log counts, against the thresholds.
Every failed threshold is one sentence that starts with the threshold's own name."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.load.plan import Matcher
from harness.load.spec import Share, Thresholds


@dataclass(frozen=True)
class RunSummary:
    """The master's summary (harness/load/locustfile.py ``summary``), read back."""

    complete: bool
    calls: int
    failures: int
    elapsed: float
    outcomes: dict[str, dict[str, float]]  # outcome name -> count, failures, p50... (ms)
    final_ms: dict[str, float]
    first_provisional_ms: dict[str, float]
    counters: dict[str, float]
    per_sender: dict[str, int]
    workers: int = 0
    senders_done: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> RunSummary:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return cls(**data)

    @property
    def active(self) -> float:
        """Seconds from the first call to the last outcome (the slowest sender's); Locust's own elapsed
        time also counts the workers' spawn."""
        return float(self.counters.get("active_seconds") or self.elapsed)

    @property
    def rate(self) -> float:
        return self.calls / self.active if self.active > 0 else 0.0

    def count(self, matcher: Matcher) -> int:
        return int(sum(o["count"] for name, o in self.outcomes.items() if matcher.matches(name)))


@dataclass(frozen=True)
class LogCount:
    """How many lines of ``source`` matched ``pattern`` over the run."""

    pattern: str
    source: str | None
    present: bool  # True: at least ``wanted``; False: none may match
    wanted: int
    count: int
    sample: str = ""

    @property
    def ok(self) -> bool:
        return self.count >= self.wanted if self.present else self.count == 0

    def describe(self) -> str:
        where = f"[{self.source}] " if self.source else ""
        return f"{where}/{self.pattern}/"


def _pct(share: float) -> str:
    return f"{share * 100:.1f}%"


def judge_run(
    thresholds: Thresholds,
    summary: RunSummary,
    matchers: dict[str, Matcher],
    expected: Matcher,
    logs: list[LogCount],
    *,
    planned: int,
    senders: int,
) -> list[str]:
    """The failed thresholds (empty: the run passed). ``matchers``: threshold outcome name -> matcher;
    ``expected``: the scenario's own outcome (every call must get it when no outcome share is given)."""
    failures: list[str] = []
    calls = summary.calls
    if not summary.complete or calls < planned:
        failures.append(
            f"run: {calls} of {planned} planned calls have an outcome, {summary.senders_done} of {senders} "
            "senders finished (the run was stopped, or a worker was lost)"
        )
    if calls == 0:
        return [*failures, "outcomes: no call has an outcome"]
    shares = thresholds.outcomes or {expected.label: _all()}
    for name, bound in shares.items():
        matcher = matchers.get(name, expected)
        count = summary.count(matcher)
        share = count / calls
        got = f"{count} of {calls} calls ({_pct(share)}) got {matcher.describe()}"
        if bound.min is not None and share < bound.min:
            failures.append(
                f"outcomes.{name}: {got}, expected at least {_pct(bound.min)}{_others(summary, matcher)}"
            )
        if bound.max is not None and share > bound.max:
            failures.append(f"outcomes.{name}: {got}, expected at most {_pct(bound.max)}")
    for label, limits, measured in (
        ("latency.final", thresholds.final_ms, summary.final_ms),
        ("latency.first_provisional", thresholds.provisional_ms, summary.first_provisional_ms),
    ):
        for key, limit in limits.items():
            value = measured.get(key)
            if value is None:
                failures.append(f"{label}.{key}: no call measured it, expected at most {limit:g} ms")
            elif value > limit:
                failures.append(f"{label}.{key}: {value:g} ms, expected at most {limit:g} ms")
    counted: tuple[tuple[str, int | None], ...] = (
        ("retransmissions", thresholds.retransmissions),
        ("timeouts", thresholds.timeouts),
        ("send_errors", thresholds.send_errors),
    )
    for name, most in counted:
        count = int(summary.counters.get(name, 0))
        if most is not None and count > most:
            failures.append(f"{name}: {count}, expected at most {most}")
    present_index = absent_index = 0
    for log in logs:
        if log.present:
            label, present_index = f"logs.present[{present_index}]", present_index + 1
            if not log.ok:
                failures.append(
                    f"{label} {log.describe()}: {log.count} line(s), expected at least {log.wanted}"
                )
        else:
            label, absent_index = f"logs.absent[{absent_index}]", absent_index + 1
            if not log.ok:
                failures.append(
                    f"{label} {log.describe()}: {log.count} line(s), expected none; first: {log.sample}"
                )
    return failures


def _all() -> Share:
    return Share(min=1.0)


def _others(summary: RunSummary, matcher: Matcher) -> str:
    others = sorted(
        ((o["count"], name) for name, o in summary.outcomes.items() if not matcher.matches(name)),
        reverse=True,
    )
    return f"; the others: {', '.join(f'{name} x{int(n)}' for n, name in others[:4])}" if others else ""

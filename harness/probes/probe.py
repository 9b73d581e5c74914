"""One probe: a scenario case run against a target within a deadline, and what it tells — the verdict
(the scenario's own: a probe of the ACL scenario succeeds when the stack rejects the unlisted carrier as
the profile says), the SIP timings, each expected log line seen or not, and on failure the cause the
profile names (harness.replay.cause).

A probe that could not look at the stack (nothing answers, its deadline passed, the node was busy) has
no verdict: status ``error`` with a short reason, never an exception. A probe the target's rules refuse
raises :class:`ProbeRefused` (a request to fix, not a stack to alert on).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from harness.kazoo.profile import LogPattern, fill
from harness.logs.assertions import LogExpectation, LogVerdict
from harness.net.exchange import Exchange
from harness.net.gate import SendRefused
from harness.replay.cause import Diagnosis, diagnose_call
from harness.scenario.case import ScenarioCase
from harness.scenario.runner import ScenarioResult, run_case_sync
from harness.targets.target import Target, TargetError


class ProbeRefused(ValueError):
    """The probe may not or cannot run as asked on this target (unknown scenario, unsafe, not
    applicable): the message says why; nothing was sent."""


class Status(StrEnum):
    SUCCESS = "success"  # the scenario's verdict passed
    FAILED = "failed"  # the stack answered, not as the scenario expects
    ERROR = "error"  # could not probe: see ProbeResult.reason


# ProbeResult.reason when the status is ERROR
UNREACHABLE = "unreachable"  # nothing listens (ICMP port unreachable, connection refused)
TRANSPORT_ERROR = "transport_error"  # the connection or TLS handshake failed, a socket error
TIMEOUT = "timeout"  # the probe's deadline passed before its verdict
BUSY = "busy"  # the node's concurrency cap was taken until the deadline
ERROR_REASONS = (UNREACHABLE, TRANSPORT_ERROR, TIMEOUT, BUSY)


@dataclass(frozen=True)
class LogLineSeen:
    """One expected log line of the probe: seen or not. ``id`` is short and stable (a hash of the
    unfilled pattern): metrics label it by id and source, never by the regex itself."""

    id: str
    source: str | None
    expected: str  # "present" (must appear) | "absent" (must not appear)
    seen: bool
    pattern: str  # the unfilled pattern (JSON output only, redacted there)


def line_id(pattern: LogPattern, expected: str) -> str:
    text = f"{pattern.source or ''}\0{pattern.pattern}\0{expected}"
    return hashlib.sha256(text.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class ProbeResult:
    probe: str  # the name the probe was asked by
    node: str | None  # the SBC node (sbc=NODE), None for the target's default
    status: Status
    duration: float  # seconds, from the request to the verdict
    case: ScenarioCase | None = None
    reason: str | None = None  # one of ERROR_REASONS when status is ERROR
    detail: str = ""  # a sentence for people: the failures, or why it could not probe
    scenario: ScenarioResult | None = None
    diagnosis: Diagnosis | None = None  # on failure: the profile outcome the exchange matches, its cause
    log_lines: tuple[LogLineSeen, ...] = ()

    @property
    def success(self) -> bool:
        return self.status == Status.SUCCESS

    @property
    def exchange(self) -> Exchange | None:
        return self.scenario.exchange if self.scenario is not None else None

    @property
    def final_code(self) -> int | None:
        ex = self.exchange
        return ex.final_code if ex is not None else None

    @property
    def first_provisional_seconds(self) -> float | None:
        return _time_to(self.exchange, final=False)

    @property
    def final_seconds(self) -> float | None:
        return _time_to(self.exchange, final=True)

    @property
    def expected_outcome(self) -> str | None:
        exp = self.scenario.expectation if self.scenario is not None else None
        return exp.outcome if exp is not None else None

    def to_json(self) -> dict[str, Any]:
        result = self.scenario
        return {
            "probe": self.probe,
            "scenario": self.case.test_id if self.case is not None else None,
            "sbc": self.node,
            "status": str(self.status),
            "success": self.success,
            "reason": self.reason,
            "cause": self.diagnosis.cause if self.diagnosis is not None else None,
            "observed_outcome": self.diagnosis.outcome if self.diagnosis is not None else None,
            "expected": result.expectation.describe() if result and result.expectation else None,
            "expected_outcome": self.expected_outcome,
            "got": result.got if result is not None else None,
            "final_code": self.final_code,
            "duration_seconds": round(self.duration, 6),
            "first_provisional_seconds": _rounded(self.first_provisional_seconds),
            "final_seconds": _rounded(self.final_seconds),
            "log_lines": [
                {
                    "id": ln.id,
                    "source": ln.source,
                    "expected": ln.expected,
                    "seen": ln.seen,
                    "pattern": ln.pattern,
                }
                for ln in self.log_lines
            ],
            "failures": list(result.failures) if result is not None else [],
            "detail": self.detail,
            "call_id": self.exchange.call_id if self.exchange is not None else None,
        }


def _rounded(value: float | None) -> float | None:
    return round(value, 6) if value is not None else None


def _time_to(exchange: Exchange | None, *, final: bool) -> float | None:
    """Seconds from the first request sent to the first provisional (or to the final) response."""
    if exchange is None or not exchange.sent:
        return None
    start = exchange.sent[0].t
    for event in exchange.received:
        code = _status_code(event.first_line)
        if code is None:
            continue
        if (code >= 200) == final:
            return max(0.0, event.t - start)
    return None


def _status_code(first_line: str) -> int | None:
    parts = first_line.split(" ", 2)
    if len(parts) >= 2 and parts[0] == "SIP/2.0" and parts[1].isdigit():
        return int(parts[1])
    return None


def run_probe(
    probe: str,
    case: ScenarioCase,
    target: Target,
    *,
    timeout: float,
    node: str | None = None,
    started: float | None = None,
) -> ProbeResult:
    """Run ``case`` on ``target`` as a probe that must end within ``timeout`` seconds of ``started``
    (monotonic; default now). ProbeRefused when the target's rules refuse it or it does not apply."""
    started = time.monotonic() if started is None else started
    remaining = timeout - (time.monotonic() - started)

    def ended(status: Status, **fields: Any) -> ProbeResult:
        return ProbeResult(probe, node, status, time.monotonic() - started, case, **fields)

    if remaining <= 0:
        return ended(Status.ERROR, reason=TIMEOUT, detail=f"no time left of the probe's {timeout:g} s")
    try:
        result = run_case_sync(case, target, timeout=remaining)
    except TimeoutError:
        return ended(Status.ERROR, reason=TIMEOUT, detail=f"no verdict within the probe's {timeout:g} s")
    except (SendRefused, TargetError) as exc:
        raise ProbeRefused(str(exc)) from exc
    except OSError as exc:  # the carrier's source address could not be bound or locked
        return ended(Status.ERROR, reason=TRANSPORT_ERROR, detail=str(exc))
    if result.skipped is not None:
        raise ProbeRefused(
            f"scenario {case.test_id!r} does not run on target {target.name!r}: {result.skipped}"
        )
    exchange = result.exchange
    if exchange is None:  # the plan failed: it cannot be judged there as written
        raise ProbeRefused("; ".join(result.failures) or f"scenario {case.test_id!r} did not run")
    lines = _log_lines(result, target)
    if exchange.outcome in ("unreachable", "error"):
        reason = UNREACHABLE if exchange.outcome == "unreachable" else TRANSPORT_ERROR
        return ended(
            Status.ERROR,
            reason=reason,
            detail=exchange.error or exchange.outcome,
            scenario=result,
            log_lines=lines,
        )
    if result.ok:
        return ended(Status.SUCCESS, scenario=result, log_lines=lines)
    seen = result.logs.lines if result.logs is not None else []
    diagnosis = diagnose_call(exchange, seen, target.profile)
    return ended(
        Status.FAILED,
        detail="; ".join(result.failures),
        scenario=result,
        diagnosis=diagnosis,
        log_lines=lines,
    )


def _log_lines(result: ScenarioResult, target: Target) -> tuple[LogLineSeen, ...]:
    """Each expected line of the run (and the profile's lines for its `never:` words), seen or not.
    The verdict holds the patterns as filled for this call; the unfilled ones give the stable ids."""
    exp, verdict = result.expectation, result.logs
    if exp is None or verdict is None:
        return ()
    never = tuple(target.profile.never[w] for w in exp.never if w in target.profile.never)
    out = []
    for expected, patterns in (("present", exp.logs_present), ("absent", (*exp.logs_absent, *never))):
        for pattern in patterns:
            filled = LogExpectation(
                fill(pattern.pattern, result.placeholders),
                pattern.source,
                pattern.count if expected == "present" else None,
                expected == "present",
            )
            out.append(
                LogLineSeen(
                    line_id(pattern, expected),
                    pattern.source,
                    expected,
                    _seen(filled, verdict),
                    pattern.pattern,
                )
            )
    return tuple(out)


def _seen(expectation: LogExpectation, verdict: LogVerdict) -> bool:
    if not expectation.present:
        return any(e == expectation for e, _ in verdict.unexpected)
    return any(e == expectation for e, _ in verdict.matched) or any(
        e == expectation for e, _ in verdict.wrong_count
    )

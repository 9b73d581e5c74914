"""Compare an exchange (and its log verdict) with an expectation; every mismatch is one sentence."""

from __future__ import annotations

import re

from harness.logs.assertions import LogVerdict
from harness.logs.legs import LegVerdict
from harness.net.exchange import Exchange
from harness.scenario.expectation import Expectation


def _subsequence(wanted: tuple[int, ...], got: list[int]) -> bool:
    it = iter(got)
    return all(any(code == g for g in it) for code in wanted)


def judge(
    exp: Expectation,
    ex: Exchange,
    logs: LogVerdict | None,
    *,
    min_delay: float | None = None,
    capture: LegVerdict | None = None,
) -> list[str]:
    """The list of failures (empty = the scenario passed)."""
    failures: list[str] = []
    got_final = ex.final
    if ex.outcome in ("unreachable", "error"):
        failures.append(f"expected {exp.describe()}, got {ex.outcome}: {ex.error or 'no detail'}")
        return failures
    if exp.silence:
        if ex.received:
            failures.append(
                f"expected silence (no response), got {len(ex.received)} message(s), first: "
                f"{ex.received[0].first_line!r}"
            )
    elif exp.closed:
        if ex.outcome != "closed":
            failures.append(f"expected the connection to be closed without an answer, got {_got(ex)}")
    elif exp.final_codes:
        if got_final is None:
            failures.append(f"expected final {exp.describe()}, got {_got(ex)}")
        else:
            if got_final.code not in exp.final_codes:
                failures.append(f"expected final {exp.describe()}, got {got_final.code} {got_final.reason}")
            elif exp.final_reason and not re.search(exp.final_reason, got_final.reason):
                failures.append(
                    f"expected reason /{exp.final_reason}/, got {got_final.code} {got_final.reason!r}"
                )
            for name, pattern in exp.headers:
                value = got_final.get(name)
                if value is None:
                    failures.append(f"expected header {name} in the {got_final.code}, it is missing")
                elif not re.search(pattern, value):
                    failures.append(f"expected header {name} matching /{pattern}/, got {value!r}")
            for name in exp.absent_headers:
                if got_final.has(name):
                    failures.append(
                        f"header {name} must not be in the {got_final.code}: {got_final.get(name)!r}"
                    )
    if exp.provisional and not _subsequence(exp.provisional, ex.provisional_codes):
        failures.append(
            f"expected provisional {list(exp.provisional)} in that order, got {ex.provisional_codes}"
        )
    if min_delay is not None and got_final is not None:
        final_event = next(
            (e for e in ex.received if e.first_line.startswith("SIP/2.0 " + str(got_final.code))), None
        )
        first_sent = ex.sent[0] if ex.sent else None
        if final_event is not None and first_sent is not None:
            delay = final_event.t - first_sent.t
            if delay < min_delay * 0.9:
                failures.append(
                    f"expected the final after at least {min_delay:.2f} s (route timeout), got {delay:.3f} s"
                )
    for never in exp.never:
        if never == "answered" and got_final is not None and 200 <= got_final.code < 300:
            failures.append(f"the call must never be answered, got {got_final.code}")
        if never == "ringing_without_audio" and any(c in (180, 183) for c in ex.provisional_codes):
            failures.append(f"the caller must never hear ringing here, got {ex.provisional_codes}")
    if logs is not None and not logs.ok:
        failures.append(logs.explain())  # its first line: "log expectations: NOT met"
    if capture is not None and not capture.ok:
        failures.append("captured legs not as expected:\n" + capture.explain())
    return failures


def _got(ex: Exchange) -> str:
    if ex.final is not None:
        return f"{ex.final.code} {ex.final.reason}"
    if ex.outcome == "silence":
        codes = ex.provisional_codes
        return "silence" + (f" after provisional {codes}" if codes else "")
    return ex.outcome

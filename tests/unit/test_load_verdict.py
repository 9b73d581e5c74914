"""A run's verdict names every threshold that failed, and only those."""

from __future__ import annotations

from harness.load.plan import Matcher
from harness.load.spec import Share, Thresholds
from harness.load.verdict import LogCount, RunSummary, judge_run

NOPE = Matcher("unknown_number", (604,), "^Nope Nope Nope$")
ROUTED = Matcher("routed", (200,))
SILENT = Matcher("silence", names=("silence",))


def _summary(outcomes: dict[str, int], **kwargs: object) -> RunSummary:
    calls = sum(outcomes.values())
    data: dict[str, object] = {
        "complete": True,
        "calls": calls,
        "failures": 0,
        "elapsed": 1.0,
        "outcomes": {name: {"count": n, "failures": 0, "p50": 3.0} for name, n in outcomes.items()},
        "final_ms": {"p50": 3.0, "p95": 12.0, "p99": 40.0, "max": 55.0},
        "first_provisional_ms": {"count": calls, "p95": 2.0},
        "counters": {"retransmissions": 0, "timeouts": 0, "send_errors": 0},
        "per_sender": {"0": calls},
        "senders_done": 1,
    }
    data.update(kwargs)
    return RunSummary(**data)  # type: ignore[arg-type]


def _judge(thresholds: Thresholds, summary: RunSummary, logs: list[LogCount] | None = None) -> list[str]:
    matchers = {"unknown_number": NOPE, "routed": ROUTED, "silence": SILENT}
    return judge_run(thresholds, summary, matchers, NOPE, logs or [], planned=summary.calls, senders=1)


def test_by_default_every_call_gets_the_scenarios_outcome() -> None:
    assert _judge(Thresholds(), _summary({"604 Nope Nope Nope": 100})) == []
    (failure,) = _judge(Thresholds(), _summary({"604 Nope Nope Nope": 99, "200 OK": 1}))
    assert failure.startswith("outcomes.unknown_number: 99 of 100 calls (99.0%) got 604 /^Nope Nope Nope$/")
    assert "expected at least 100.0%; the others: 200 OK x1" in failure


def test_share_bounds_name_the_outcome() -> None:
    thresholds = Thresholds(outcomes={"silence": Share(min=0.55, max=0.6), "routed": Share(max=0.0)})
    summary = _summary({"silence": 50, "200 OK": 50})
    failures = _judge(thresholds, summary)
    assert failures == [
        "outcomes.silence: 50 of 100 calls (50.0%) got silence, expected at least 55.0%;"
        " the others: 200 OK x50",
        "outcomes.routed: 50 of 100 calls (50.0%) got 200, expected at most 0.0%",
    ]


def test_latency_counters_and_logs_each_name_themselves() -> None:
    thresholds = Thresholds(
        final_ms={"p95": 10.0, "p50": 5.0},
        provisional_ms={"p99": 1.0},
        retransmissions=0,
        timeouts=3,
    )
    logs = [
        LogCount("dropping request", "kamailio", True, 70, 12),
        LogCount("New Channel", "freeswitch", False, 0, 1, "[freeswitch] New Channel x"),
    ]
    summary = _summary({"604 Nope Nope Nope": 10}, counters={"retransmissions": 2, "timeouts": 3})
    assert _judge(thresholds, summary, logs) == [
        "latency.final.p95: 12 ms, expected at most 10 ms",
        "latency.first_provisional.p99: no call measured it, expected at most 1 ms",
        "retransmissions: 2, expected at most 0",
        "logs.present[0] [kamailio] /dropping request/: 12 line(s), expected at least 70",
        "logs.absent[0] [freeswitch] /New Channel/: 1 line(s), expected none;"
        " first: [freeswitch] New Channel x",
    ]


def test_an_interrupted_run_fails_as_such() -> None:
    summary = _summary({"604 Nope Nope Nope": 40}, complete=False, senders_done=1)
    failures = judge_run(Thresholds(), summary, {}, NOPE, [], planned=100, senders=2)
    assert failures == [
        "run: 40 of 100 planned calls have an outcome, 1 of 2 senders finished (the run was stopped, or a "
        "worker was lost)"
    ]

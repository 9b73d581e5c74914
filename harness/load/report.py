"""A load run's result as text: the outcome table, latencies, counters, log counts and the verdict."""

from __future__ import annotations

from harness.load.run import LoadResult
from harness.scenario.case import ScenarioCase


def _ms(values: dict[str, float], key: str) -> str:
    value = values.get(key)
    return "-" if value is None else f"{value:g}"


def describe(result: LoadResult, case: ScenarioCase, target_name: str) -> str:
    s = result.summary
    plan = result.plan
    sources = plan.sources[0] if len(plan.sources) == 1 else f"{plan.sources[0]}..{plan.sources[-1]}"
    lines = [
        f"load run: {case.name} ({case.path}:{case.line})",
        f"target {target_name}, {len(plan.sources)} source address(es) {sources} -> "
        f"{plan.destination[0]}:{plan.destination[1]}, {plan.senders} sender(s)"
        + (f" on {s.workers} worker(s)" if s.workers else ""),
        f"{s.calls} calls in {s.active:.2f} s ({s.rate:.0f}/s), {s.failures} unexpected"
        + (
            f"; per sender {', '.join(f'{n}' for n in s.per_sender.values())}"
            if len(s.per_sender) > 1
            else ""
        ),
        "",
        f"  {'outcome':<36} {'calls':>7} {'share':>7} {'p50':>6} {'p95':>6} {'p99':>6} {'max':>7}"
        "  ms to final",
    ]
    for name, o in sorted(s.outcomes.items(), key=lambda item: -item[1]["count"]):
        share = o["count"] / s.calls * 100 if s.calls else 0.0
        lines.append(
            f"  {name[:36]:<36} {int(o['count']):>7} {share:>6.1f}% {_ms(o, 'p50'):>6} {_ms(o, 'p95'):>6} "
            f"{_ms(o, 'p99'):>6} {o.get('max', 0):>7.1f}"
        )
    p = s.first_provisional_ms
    if p.get("count"):
        lines.append(
            f"  first provisional: {int(p['count'])} calls, p50 {_ms(p, 'p50')} ms, p95 {_ms(p, 'p95')} ms, "
            f"p99 {_ms(p, 'p99')} ms"
        )
    c = s.counters
    lines.append(
        "  "
        + ", ".join(
            f"{label} {int(c.get(key, 0))}"
            for label, key in (
                ("retransmissions", "retransmissions"),
                ("timeouts", "timeouts"),
                ("send errors", "send_errors"),
                ("ACKs", "acks"),
                ("CANCELs", "cancels"),
                ("BYEs", "byes"),
                ("stray responses", "stray"),
                ("capped", "capped"),
            )
        )
        + f", latest send {c.get('max_lag', 0.0) * 1000:.1f} ms behind schedule"
    )
    for log in result.logs:
        want = f">= {log.wanted}" if log.present else "none"
        lines.append(
            f"  log {log.describe()}: {log.count} line(s) (want {want}) {'ok' if log.ok else 'FAILED'}"
        )
    lines.append("")
    if result.ok:
        lines.append("verdict: passed")
    else:
        lines.append("verdict: FAILED")
        lines += [f"  - {f}" for f in result.failures]
    return "\n".join(lines)

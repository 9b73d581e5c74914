"""Benchmark (prints figures, asserts nothing): how soon a silence scenario ends after its drop line.

    .venv/bin/python tests/perf/bench_silence.py [--runs 100]

Runs the catalog's missing-CSeq scenario (Kamailio drops it without a reply) against one embedded model
`--runs` times. For each run: the time from the drop line's arrival in the log hub to the end of the
exchange (the carrier UA's early end), and the whole scenario time. Without the early end each run would
wait out the target's silence window (2 s).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from harness.kazoo.profile import load_profile
from harness.scenario.case import load_cases
from harness.scenario.runner import run_case_sync
from harness.targets.embedded import open_embedded

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    cases = load_cases(ROOT / "scenarios/malformed/missing_mandatory_headers.yaml")
    case = next(c for c in cases if c.param_id == "no_cseq")
    after_drop: list[float] = []
    exchanges: list[float] = []
    totals: list[float] = []
    with open_embedded(load_profile()) as target:
        for i in range(args.runs):
            result = run_case_sync(case, target, session_seed=i)
            ex, logs = result.exchange, result.logs
            assert ex is not None and logs is not None and not result.failures, result.failures
            drop = logs.matched[0][1][0].received
            after_drop.append((ex.started_wall + ex.duration - drop) * 1000)
            exchanges.append(ex.duration * 1000)
            totals.append(result.duration * 1000)
    q = statistics.quantiles(after_drop, n=20)
    med_drop, med_ex = statistics.median(after_drop), statistics.median(exchanges)
    p95_total = statistics.quantiles(totals, n=20)[18]
    print(f"silence scenario (missing CSeq, dropped): {args.runs} runs, window {target.silence_window} s")
    print(
        f"end after the drop line: median {med_drop:.2f} ms, p95 {q[18]:.2f} ms, max {max(after_drop):.2f} ms"
    )
    print(f"INVITE sent to exchange end (drop, log line, early end): median {med_ex:.2f} ms")
    print(f"whole scenario: median {statistics.median(totals):.1f} ms, p95 {p95_total:.1f} ms")


if __name__ == "__main__":
    main()

"""Benchmark (prints figures, asserts nothing): wall time of the whole catalog against the embedded model.

    .venv/bin/python tests/perf/bench_catalog.py [--runs 3] [--workers 0]

Each run is `kazoo-harness run scenarios --json ...` in a fresh process, so the figure includes Python
start-up, collection and the model's start; the per-scenario sum and the silence scenarios' time (ended by
their drop line, not by a timeout) are read from the JSON report.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[2]


def one_run(workers: int, profile: str) -> tuple[float, list[dict[str, object]]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "records.json"
        cmd = [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            "scenarios",
            "--json",
            str(out),
            "--profile",
            profile,
        ]
        if workers:
            cmd += ["-n", str(workers)]
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            print(proc.stdout[-3000:], file=sys.stderr)
            raise SystemExit(f"catalog run failed with exit status {proc.returncode}")
        return wall, json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--profile", default="kazoo-4.3")
    args = parser.parse_args()
    walls = []
    records: list[dict[str, object]] = []
    for _ in range(args.runs):
        wall, records = one_run(args.workers, args.profile)
        walls.append(wall)
    n = len(records)
    timings = [cast(dict[str, Any], r["timings"]) for r in records]
    summed = sum(float(t["duration_ms"]) for t in timings) / 1000
    silent = [t for r, t in zip(records, timings, strict=True) if r.get("outcome") in ("silence", "closed")]
    silence_time = sum(float(t["duration_ms"]) for t in silent) / 1000
    early = sum(bool(t.get("ended_early")) for t in silent)
    print(f"catalog: {n} scenarios, profile {args.profile}, workers {args.workers or 'none'}")
    print(f"wall time (fresh process, median of {args.runs}): {statistics.median(walls):.2f} s  "
          f"(runs: {', '.join(f'{w:.2f}' for w in walls)})")  # fmt: skip
    print(f"sum of scenario times: {summed:.2f} s; mean {summed / n * 1000:.0f} ms per scenario")
    print(
        f"silence/closed scenarios: {len(silent)}, {silence_time:.2f} s in all, {early} ended by a log line"
    )


if __name__ == "__main__":
    main()

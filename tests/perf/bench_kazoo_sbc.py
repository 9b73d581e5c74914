"""Benchmark (prints figures, asserts nothing): the kazoo-sbc target's start time and the catalog on it.

    .venv/bin/python tests/perf/bench_kazoo_sbc.py [--runs 3] [--release kazoo-4.3]

Start: a private RabbitMQ from exec to its first AMQP handshake, then Kazoo's Kamailio configuration from
copying the tree (edits, local.cfg, SQLite database) to its first 200 to OPTIONS, measured in this
process by KazooSbc itself. Catalog: `pytest scenarios --kazoo-target kazoo-sbc` in a fresh process (so
it includes Python start-up, the model, the broker and Kamailio), wall time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness.kazoo_sbc.launcher import KazooSbc  # noqa: E402


def start_once(release: str) -> dict[str, float]:
    began = time.perf_counter()
    sbc = KazooSbc(release)
    with sbc:
        total = time.perf_counter() - began
    return {**sbc.timings, "total": total}


def catalog_once(release: str) -> tuple[float, str]:
    command = [sys.executable, "-m", "pytest", "scenarios", "--kazoo-target", "kazoo-sbc",
               "--kazoo-profile", release, "-q", "-p", "no:cacheprovider"]  # fmt: skip
    began = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    wall = time.perf_counter() - began
    return wall, (done.stdout.strip().splitlines() or ["?"])[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--release", default="kazoo-4.3")
    args = parser.parse_args()
    starts = [start_once(args.release) for _ in range(args.runs)]
    for key in ("rabbitmq", "prepare", "kamailio", "total"):
        values = [s[key] for s in starts]
        print(f"start {args.release} {key:9s}: median {statistics.median(values):6.2f} s  "
              f"(min {min(values):.2f}, max {max(values):.2f}, {len(values)} runs)")  # fmt: skip
    walls = []
    for _ in range(args.runs):
        wall, summary = catalog_once(args.release)
        walls.append(wall)
        print(f"catalog {args.release}: {wall:6.1f} s  ({summary})")
    print(f"catalog {args.release} wall time: median {statistics.median(walls):.1f} s of {len(walls)} runs")


if __name__ == "__main__":
    main()

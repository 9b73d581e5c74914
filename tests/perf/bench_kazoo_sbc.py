"""Benchmark (prints figures, asserts nothing): the kazoo-sbc target's start time and the catalog on it,
for every Kazoo release.

    .venv/bin/python tests/perf/bench_kazoo_sbc.py [--runs 3] [--release kazoo-4.3 ...]

Start: a private RabbitMQ from exec to its first AMQP handshake, then Kazoo's Kamailio configuration from
copying the tree (the release's port, the SQLite database) to its first 200 to OPTIONS, measured in this
process by KazooSbc itself (its ``timings``). Catalog: `pytest scenarios --kazoo-target kazoo-sbc` in a
fresh process (Python start-up, the model, Kamailio; the broker shared through KAZOO_SBC_AMQP_URL as the
CI test does, started once here), wall time, sequential and with ``-n 2``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness.kazoo.release import RELEASE_NAMES  # noqa: E402
from harness.kazoo_sbc.launcher import KazooSbc  # noqa: E402
from harness.kazoo_sbc.rabbit import RabbitBroker  # noqa: E402
from harness.targets.kazoo_sbc import AMQP_ENV  # noqa: E402


def start_once(release: str) -> dict[str, float]:
    began = time.perf_counter()
    sbc = KazooSbc(release)
    with sbc:
        total = time.perf_counter() - began
    return {**sbc.timings, "total": total}


def catalog_once(release: str, broker_url: str, *extra: str) -> tuple[float, str]:
    command = [sys.executable, "-m", "pytest", "scenarios", "--kazoo-target", "kazoo-sbc",
               "--kazoo-profile", release, "-q", "-p", "no:cacheprovider", *extra]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "KAZOO_SBC_CONFIG"} | {AMQP_ENV: broker_url}
    began = time.perf_counter()
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False, env=env
    )
    wall = time.perf_counter() - began
    return wall, (done.stdout.strip().splitlines() or ["?"])[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--release", action="append", choices=RELEASE_NAMES, help="default: every release")
    args = parser.parse_args()
    releases = args.release or list(RELEASE_NAMES)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for release in releases:
        starts = [start_once(release) for _ in range(args.runs)]
        for key in ("rabbitmq", "prepare", "kamailio", "total"):
            values = [s[key] for s in starts]
            print(f"start {release} {key:9s}: median {statistics.median(values):6.2f} s  "
                  f"(min {min(values):.2f}, max {max(values):.2f}, {len(values)} runs)")  # fmt: skip
    with RabbitBroker() as broker:
        for release in releases:
            for label, extra in (("sequential", ()), ("-n 2", ("-n", "2"))):
                walls = []
                for _ in range(args.runs):
                    wall, summary = catalog_once(release, broker.url, *extra)
                    walls.append(wall)
                    print(f"catalog {release} {label}: {wall:6.1f} s  ({summary})")
                print(f"catalog {release} {label} wall time: median {statistics.median(walls):.1f} s "
                      f"of {len(walls)} runs")  # fmt: skip
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

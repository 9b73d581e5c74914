"""Benchmark (prints figures, asserts nothing): what starting the ported 5.x configuration costs.

    .venv/bin/python tests/perf/bench_kazoo_sbc_5x.py [--runs 3]

For ``--runs`` fresh work directories: copying the pristine tree, ``port_5x`` (86 edits, the import
indexes, the routes check), building the SQLite database from its db_scripts, ``kamailio -c``, and the
start of Kamailio (exec to the first ``200 Rawr!!``); plus one private RabbitMQ start (exec to an AMQP
greeting) that the Kamailio starts share. Medians. The kazoo-sbc target's own benchmark (branch sbc)
measures the whole target; this one splits the 5.x port's part.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from kazoo_sbc5_stack import PRISTINE_5X, Ported5x, PrivateRabbit, copy_tree, stack_unavailable

from harness.kazoo_sbc.edits_5x import port_5x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    reason = stack_unavailable()
    if reason is not None:
        sys.exit(f"cannot run: {reason}")
    names = ("copy", "port_5x", "database", "kamailio -c", "start")
    figures: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="bench-sbc5-") as tmp:
        base = Path(tmp)
        began = time.perf_counter()
        with PrivateRabbit(base / "rabbit") as rabbit:
            rabbit_start = time.perf_counter() - began
            for run in range(args.runs):
                work = base / f"run{run}"
                t0 = time.perf_counter()
                copy_tree(PRISTINE_5X, work / "copy")
                t1 = time.perf_counter()
                port_5x(work / "copy")
                t2 = time.perf_counter()
                sbc = Ported5x(work / "sbc", rabbit.url)  # its own copy and port, with site values
                t2 = time.perf_counter()
                sbc.db().close()
                t3 = time.perf_counter()
                sbc.check()
                t4 = time.perf_counter()
                sbc.start()
                t5 = time.perf_counter()
                sbc.stop()
                for name, seconds in zip(figures, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                    figures[name].append(seconds)
    print(f"private RabbitMQ start (exec to AMQP greeting): {rabbit_start:.2f} s")
    for name, values in figures.items():
        runs = ", ".join(f"{v:.3f}" for v in values)
        print(f"{name:12} median {statistics.median(values):.3f} s  (runs: {runs})")


if __name__ == "__main__":
    main()

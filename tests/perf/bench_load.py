"""Benchmark: the harness's load path (on Locust) beside SIPp's UAC, on INVITE -> 604 -> ACK.

Run: .venv/bin/python tests/perf/bench_load.py [--calls N] [--rate R1,R2] [--scale-rate R]

One target for every run: a SIPp UAS answering each INVITE with 604 at once and waiting for the ACK
(harness/interop/scenarios/uas_604.xml, -buff_size 4194304 so bursts are not dropped by its socket).
Clients, at the same offered rate and call count:

- SIPp's UAC (harness/interop/scenarios/uac_604.xml: INVITE, 604, ACK; no SDP);
- the harness's load path: `kazoo-harness load`'s machinery (Locust master + workers, the hot loop of
  harness/load/engine.py), the same flow (send.sdp: false), 1 worker.

Client CPU: for SIPp, getrusage(RUSAGE_CHILDREN) around its run (the UAS is a child too but is reaped
only at the end). For the harness, two figures: the senders' own process CPU while they ran (each
worker process measures itself: steady state, heartbeats and stats reports included), and every
Locust process from exec to exit (getrusage again: the master reaps its forked workers, we reap the
master), which adds Python's and Locust's start-up. Then the achieved rate of 1 worker and 2 workers
offered more than they can place. Prints figures; asserts nothing. The machine is shared: figures are
provisional, and the load average is printed beside them.

``--worker-cores F`` (root, a cgroup CPU controller) runs the 1 vs 2 worker comparison with the Locust
processes held to F cores per worker (a CFS quota on their cgroup: F x workers), the rest of the machine
left to the UAS. It reads the scaling on a machine with fewer cores than workers + UAS need (two here):
as if each worker had a core of its own, F times as fast. ``--scale-pairs N`` runs N such pairs (1 worker
then 2) and prints their median: the VM's speed drifts between runs, and a pair side by side shares it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.interop.sipp import UAS_BUFFER, Sipp, SippOptions, scenario_path, sipp_available, sipp_version
from harness.kazoo.profile import load_profile
from harness.load.launch import LocustOptions, free_tcp_port
from harness.load.pytest_load import scenario_case
from harness.load.run import LoadResult, run_load
from harness.load.spec import load_spec
from harness.targets.target import Target

NUMBER = "+14155550199"


@dataclass
class Figures:
    client: str
    calls: int
    failed: int
    wall: float
    cpu: float  # the headline client CPU
    cpu_total: float | None = None  # with start-up (harness only)

    @property
    def per_cpu_second(self) -> float:
        return self.calls / self.cpu if self.cpu > 0 else 0.0

    def line(self) -> str:
        total = ""
        if self.cpu_total is not None:
            total = f"  (all Locust processes exec to exit: {self.cpu_total:.2f} CPU-s, "
            total += f"{self.calls / self.cpu_total:,.0f} calls/CPU-s)"
        return (
            f"  {self.client:<22} {self.calls:7d} calls {self.failed:5d} failed"
            f"  {self.calls / self.wall:8,.0f}/s"
            f"  {self.cpu:6.2f} CPU-s  {self.per_cpu_second:9,.0f} calls per client CPU-second{total}"
        )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sipp_uac(uas: Sipp, calls: int, rate: float) -> Figures:
    options = SippOptions(
        scenario_path("uac_604.xml"),
        "127.0.0.10",
        remote=uas.address,
        service=NUMBER,
        calls=calls,
        rate=rate,
        max_concurrent=max(2000, int(rate)),
        run_timeout=calls / rate * 4 + 30,
        recv_timeout=5.0,
        buff_size=UAS_BUFFER,
    )
    before, started = _children_cpu(), time.monotonic()
    result = Sipp(options).start().wait()
    wall, cpu = time.monotonic() - started, _children_cpu() - before
    stats = result.stats
    if stats is None:
        raise RuntimeError(result.describe())
    return Figures("SIPp UAC", stats.successful, stats.failed, stats.elapsed or wall, cpu)


def uas_target(uas: Sipp) -> Target:
    return Target(
        name="sipp-uas",
        kind="address",
        sbc=uas.address,
        profile=load_profile(),
        carriers={"listed": ("127.0.0.11", None)},
        numbers={},
        route_timeout=2.0,
    )


def harness_run(uas: Sipp, calls: int, rate: float, workers: int) -> tuple[Figures, LoadResult]:
    case = scenario_case(
        {
            "name": "INVITE 604 ACK",
            "cause": "number_mapping",
            "carrier": {"role": "listed"},
            "send": {"number": NUMBER, "sdp": False},
            "expect": {"final": {"code": 604}},
        }
    )
    spec = load_spec(case, {"calls": calls, "rate": rate, "concurrency": 4000, "timeout": 5.0})
    mode = "processes" if workers else "local"
    options = LocustOptions(mode=mode, workers=workers, master_port=free_tcp_port())
    before = _children_cpu()
    result = run_load(case, uas_target(uas), spec, options, on_line=lambda line: None)
    total = _children_cpu() - before
    s = result.summary
    figures = Figures(
        f"harness, {workers} worker{'s' if workers != 1 else ''}",
        s.calls - s.failures,
        s.failures,
        s.active,
        float(s.counters.get("cpu_seconds", 0.0)),
        total,
    )
    return figures, result


CGROUP_V1_CPU = Path("/sys/fs/cgroup/cpu")
CGROUP_V2 = Path("/sys/fs/cgroup")
CFS_PERIOD_US = 100_000


def cpu_budget_unavailable() -> str | None:
    """Why this process cannot hold its children to a CPU quota, or None."""
    if (CGROUP_V1_CPU / "cpu.cfs_quota_us").exists() or "cpu" in _v2_controllers():
        return None if os.access(_cgroup_root(), os.W_OK) else "the cgroup CPU controller is not writable"
    return "no cgroup CPU controller (cgroup v1 cpu, or v2 with cpu enabled)"


def _v2_controllers() -> list[str]:
    path = CGROUP_V2 / "cgroup.subtree_control"
    return path.read_text().split() if path.exists() else []


def _cgroup_root() -> Path:
    return CGROUP_V1_CPU if (CGROUP_V1_CPU / "cpu.cfs_quota_us").exists() else CGROUP_V2


@contextlib.contextmanager
def cpu_budget(cores: float) -> Iterator[None]:
    """This process, and every process it starts meanwhile, held to ``cores`` CPUs' worth of time (a CFS
    quota on a cgroup of their own); back in the cgroup it came from afterwards."""
    root = _cgroup_root()
    group = root / f"kazoo-harness-bench-{os.getpid()}"
    group.mkdir()
    quota = int(cores * CFS_PERIOD_US)
    try:
        if root == CGROUP_V1_CPU:
            (group / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (group / "cpu.max").write_text(f"{quota} {CFS_PERIOD_US}")
        (group / "cgroup.procs").write_text(str(os.getpid()))
        try:
            yield
        finally:
            (root / "cgroup.procs").write_text(str(os.getpid()))
    finally:
        group.rmdir()  # (empty: the Locust processes have exited, and this one moved back)


def _limits(result: LoadResult) -> str:
    """What held a run back: the concurrency cap, the schedule it fell behind, its CPU share."""
    c = result.summary.counters
    share = c.get("cpu_seconds", 0.0) / max(c.get("active_seconds", 0.0), 1e-9)
    return (
        f"    calls held by the concurrency cap: {int(c.get('capped', 0))}, latest send "
        f"{c.get('max_lag', 0.0) * 1000:.0f} ms behind schedule, senders' CPU {share:.0%} of their wall time"
        f", p50 to final {result.summary.final_ms.get('p50', 0):g} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=40_000, help="calls per client run")
    parser.add_argument(
        "--rate",
        default="2000,8000",
        help="offered calls/s for the CPU comparison (comma-separated: one run each)",
    )
    parser.add_argument("--scale-calls", type=int, default=60_000, help="calls for the 1 vs 2 worker runs")
    parser.add_argument("--scale-rate", type=float, default=30_000, help="offered calls/s, 1 vs 2 workers")
    parser.add_argument(
        "--worker-cores",
        type=float,
        default=None,
        help="hold the 1 vs 2 worker runs' Locust processes to this many cores per worker (root, cgroups)",
    )
    parser.add_argument("--skip-ratio", action="store_true", help="only the 1 vs 2 worker comparison")
    parser.add_argument("--scale-pairs", type=int, default=1, help="1 vs 2 worker pairs to run (median)")
    args = parser.parse_args()
    if args.worker_cores is not None:
        budget_reason = cpu_budget_unavailable()
        if budget_reason:
            print(f"--worker-cores: {budget_reason}")
            return
    reason = sipp_available()
    if reason:
        print(f"skipped: {reason}")
        return
    print(f"INVITE -> 604 -> ACK against a SIPp {sipp_version()} UAS (-buff_size {UAS_BUFFER}) on loopback")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    uas = Sipp(
        SippOptions(
            scenario_path("uas_604.xml"),
            "127.0.0.1",
            calls=10**8,
            rate=1,
            run_timeout=3600,
            recv_timeout=None,
            buff_size=UAS_BUFFER,
        )
    ).start()
    try:
        uas.wait_listening()
        for rate in () if args.skip_ratio else (float(r) for r in args.rate.split(",")):
            print(f"\nsame offered rate: {rate:,.0f} calls/s, {args.calls:,} calls each")
            sipp = sipp_uac(uas, args.calls, rate)
            print(sipp.line(), flush=True)
            harness, _ = harness_run(uas, args.calls, rate, workers=1)
            print(harness.line(), flush=True)
            ratio = harness.per_cpu_second / sipp.per_cpu_second if sipp.per_cpu_second else 0.0
            print(
                f"  ratio harness / SIPp, calls per client CPU-second: {ratio:.2f} (goal >= 0.6; 1.0 later)"
            )
        print(f"\nscaling: {args.scale_calls:,} calls offered at {args.scale_rate:,.0f} calls/s")
        if args.worker_cores is not None:
            print(f"  the Locust processes held to {args.worker_cores:g} core(s) per worker (a CFS quota)")
        gains = []
        for _pair in range(args.scale_pairs):  # 1 then 2 workers, side by side: the VM's speed drifts
            rates = []
            for workers in (1, 2):
                budget = (
                    cpu_budget(args.worker_cores * workers)
                    if args.worker_cores is not None
                    else contextlib.nullcontext()
                )
                with budget:
                    figures, run = harness_run(uas, args.scale_calls, args.scale_rate, workers=workers)
                print(figures.line(), flush=True)
                print(_limits(run), flush=True)
                rates.append(figures.calls / figures.wall if figures.wall else 0.0)
            gains.append(rates[1] / rates[0] if rates[0] else 0.0)
            print(f"  2 workers / 1 worker, achieved rate: {gains[-1]:.2f}x (goal >= 1.7x)", flush=True)
        if len(gains) > 1:
            listed = ", ".join(f"{g:.2f}x" for g in gains)
            print(f"  over {len(gains)} pairs: median {statistics.median(gains):.2f}x ({listed})")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        uas.stop()


if __name__ == "__main__":
    main()

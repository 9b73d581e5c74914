"""Load runs on Locust for real: a master and two worker processes over ZeroMQ on loopback, against the
session's embedded model. What the statistics say, how a failed threshold reads, and that Ctrl-C leaves
no process behind."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness.load.launch import LocustOptions, free_tcp_port
from harness.load.pytest_load import execute
from harness.load.run import run_load
from harness.load.spec import load_spec
from harness.scenario.case import load_cases
from harness.targets.target import Target

ROOT = Path(__file__).resolve().parents[2]
ABSENT = ROOT / "scenarios" / "number_mapping" / "absent_number.yaml"
UNTRUSTED_BURST = ROOT / "scenarios" / "load" / "untrusted_burst.yaml"
DEADLINE = 60.0


def test_two_workers_statistics_are_merged_by_the_master(kazoo: Target, tmp_path: Path) -> None:
    (case,) = load_cases(ABSENT)
    spec = load_spec(case, {"calls": 200, "rate": 100})
    options = LocustOptions(mode="processes", workers=2, master_port=free_tcp_port(), csv=tmp_path / "run")
    result = run_load(case, kazoo, spec, options, on_line=lambda line: None)
    summary = result.summary
    # What this test is about holds whether or not a loaded machine's model kept up with every call:
    assert summary.complete and summary.workers == 2
    assert summary.per_sender == {"0": 100, "1": 100}  # each worker placed its half ...
    assert summary.calls == 200 == sum(int(o["count"]) for o in summary.outcomes.values())  # ... all merged
    answered = sum(int(o["count"]) for name, o in summary.outcomes.items() if name[0].isdigit())
    assert summary.counters["sent"] == 200 and summary.counters["acks"] >= answered
    # the harness's own entry (time to the first provisional) is merged from both workers like Locust's
    assert 0 < summary.first_provisional_ms["count"] <= 200
    assert summary.outcomes["604 Nope Nope Nope"]["count"] > 0
    # Locust's percentiles come from rounded buckets (to 10 ms past 100 ms, 100 ms past 1 s): p95 may
    # round above the exact maximum
    assert 0 < summary.final_ms["p50"] <= summary.final_ms["p95"] and summary.final_ms["max"] > 0
    # Locust's own report of the same run: the calls, by outcome, merged across both workers
    with (tmp_path / "run_stats.csv").open(newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    assert rows["Aggregated"]["Request Count"] == "200"
    for name, outcome in summary.outcomes.items():
        assert rows[name]["Request Count"] == str(int(outcome["count"]))
        assert rows[name]["Failure Count"] == str(int(outcome["failures"]))


def test_an_untrusted_burst_loses_its_tail_to_antiflood_with_the_drop_lines(kazoo: Target) -> None:
    """120 INVITEs in 200 ms from 127.0.0.66, two workers, the model's ANTIFLOOD role on (the scenario's
    setup): pike lets 63 through in a fresh unit (up to 112 when a unit ends inside the burst), drops the
    rest without a reply, and Kamailio logs a drop line for every INVITE copy it drops."""
    (case,) = load_cases(UNTRUSTED_BURST)
    result = execute(case, kazoo, workers=2)
    summary = result.summary
    assert result.ok, "\n".join(result.failures)  # the scenario's shares and log counts held
    assert summary.per_sender == {"0": 60, "1": 60}
    silent = summary.outcomes["silence"]["count"]
    challenged = sum(o["count"] for name, o in summary.outcomes.items() if name.startswith(("407", "403")))
    assert silent + challenged == 120
    assert 8 <= silent <= 57  # pike's density of 50 per 2 s unit, as Kamailio's tree counts it
    drop_lines = next(c.count for c in result.logs if "due to rate of requests" in c.pattern)
    # each silent call's every copy (the INVITE and timer A's retransmissions) was dropped with its line
    assert silent <= drop_lines <= silent + summary.counters["retransmissions"]
    assert summary.counters["acks"] >= challenged  # every 407 was acknowledged


SCENARIO = """\
name: an absent number expected to route
cause: number_mapping
description: a threshold that cannot hold, to see it named
carrier: {role: listed}
send: {number: absent}
expect: {outcome: unknown_number}
load:
  calls: 20
  rate: 100
  workers: 0
  expect:
    outcomes:
      routed: {min: 0.999}
    latency:
      final: {p95: 100000}
"""


def _cli(*args: str, **kwargs: object) -> list[str]:
    return [sys.executable, "-m", "harness.cli", "load", *args]


def test_a_failed_threshold_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "absent_routed.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    done = subprocess.run(_cli(str(path)), capture_output=True, text=True, timeout=DEADLINE, cwd=ROOT)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "verdict: FAILED" in done.stdout
    assert (
        "  - outcomes.routed: 0 of 20 calls (0.0%) got 200, expected at least 99.9%; "
        "the others: 604 Nope Nope Nope x20"
    ) in done.stdout.splitlines()
    assert "latency" not in done.stdout.split("verdict: FAILED")[1]  # the threshold that held is not named


def _start_long_run() -> tuple[subprocess.Popen[str], list[psutil.Process]]:
    """A run far longer than the test, once its calls flow (then the master and both workers run)."""
    command = _cli(str(ABSENT), "--workers", "2", "--calls", "100000", "--rate", "100")
    harness = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    assert harness.stdout is not None
    deadline = time.monotonic() + DEADLINE
    for line in harness.stdout:
        if line.startswith("load ") and " calls 0 " not in line:
            break
        assert time.monotonic() < deadline, "no call was placed in time"
    tree = psutil.Process(harness.pid).children(recursive=True)
    locust = [p for p in tree if "locust" in " ".join(p.cmdline())]
    assert len(locust) == 3, [p.cmdline() for p in tree]  # the master and its two forked workers
    return harness, locust


def test_ctrl_c_stops_the_master_and_every_worker() -> None:
    harness, locust = _start_long_run()
    try:
        os.killpg(harness.pid, signal.SIGINT)  # what a terminal's Ctrl-C does to its foreground group
        rest = harness.communicate(timeout=DEADLINE)[0]
        assert harness.returncode == 130, rest
        _, alive = psutil.wait_procs(locust, timeout=5)
        assert not alive, f"still running after Ctrl-C: {[p.pid for p in alive]}"
        assert "interrupted: Locust and its workers were stopped" in rest
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait(5)


def test_a_killed_harness_leaves_no_locust_behind() -> None:
    harness, locust = _start_long_run()
    harness.kill()  # SIGKILL: no chance to stop anything; Locust's master notices its parent is gone
    harness.wait(5)
    _, alive = psutil.wait_procs(locust, timeout=10)
    for proc in alive:  # do not leave them to the next test either
        proc.kill()
    assert not alive, f"still running after the harness was killed: {[p.pid for p in alive]}"


@pytest.mark.load
def test_the_load_run_fixture(load_run: object) -> None:
    result = load_run(str(ABSENT), workers=0, calls=20, rate=40)  # type: ignore[operator]
    assert result.summary.calls == 20 and result.ok

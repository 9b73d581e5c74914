"""Locust's side of a load run: `locust -f harness/load/locustfile.py --kh-plan PLAN.json ...`
(harness/load/launch.py builds that command; nobody needs to write it by hand).

Locust runs what it is good at — processes (``--processes``), master and workers over ZeroMQ
(``--master-host`` for workers elsewhere), the web UI and its charts, CSV/HTML/JSON reports, merged
percentiles. The harness supplies one user class, :class:`SipCarrier`: each Locust user is one sender
of the plan (one per worker process) running the hot loop of :mod:`harness.load.engine`, and every call
it places is reported to Locust's ``request`` event, named by its outcome ("604 Nope Nope Nope",
"silence"), failed when the scenario does not expect it. So Locust's statistics are the calls.

Beside Locust's own statistics the run carries, through Locust's worker reports: the time to the first
provisional (a Locust StatsEntry of its own, merged like Locust merges its own), and each sender's
counters (retransmissions, timeouts, ACKs...). When every sender has reported done, the master writes the
summary (``--kh-summary``) and ends the run; ``quitting`` writes it too when the run ends otherwise
(Ctrl-C, the time bound), marked incomplete.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import gevent
import gevent.select
import locust.runners
import psutil
from locust import User, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import RequestStats, StatsEntry

from harness.load.engine import Counters, Sender, SenderConfig
from harness.load.plan import LoadPlan, Matcher
from harness.load.schedule import Schedule

PROVISIONAL = ("first provisional", "INVITE")  # the key of the time-to-first-provisional entry
PROGRESS_INTERVAL = 1.0
DONE = "kh_done"
# Workers report their statistics every 3 s by default: progress on the master would lag that much.
locust.runners.WORKER_REPORT_INTERVAL = 1.0
PARENT_ENV = "KH_LOAD_PARENT"  # the harness process's PID: when it is gone, the run ends
PARENT_POLL = 1.0
# Started from a shell's background job, SIGINT arrives ignored and Locust could not be interrupted (the
# harness stops Locust with one SIGINT, the way Ctrl-C does): give SIGINT its default meaning back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

_state: dict[str, Any] = {
    "provisional": RequestStats(),  # this process's time to first provisional
    "senders": {},  # sender index -> live Counters (on a worker or a local runner)
    "counters": {},  # sender index -> last reported counters (on the master)
    "done": {},  # sender index -> its final report (on the master)
    "started": None,
    "written": False,
    "finished": False,
}


class UnexpectedOutcome(Exception):
    """A call whose outcome the scenario does not expect (Locust counts it as a failure)."""


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    parser.add_argument(
        "--kh-plan", default="", help="kazoo-harness: the load plan file", include_in_web_ui=False
    )
    parser.add_argument("--kh-plan-json", default="", help="(set by the master)", include_in_web_ui=False)
    parser.add_argument(
        "--kh-summary", default="", help="kazoo-harness: write the summary here", include_in_web_ui=False
    )


def plan_of(environment: Environment) -> LoadPlan:
    options = environment.parsed_options
    text = getattr(options, "kh_plan_json", "") if options is not None else ""
    if not text:
        raise RuntimeError("no kazoo-harness load plan: run this through `kazoo-harness load`")
    return LoadPlan.from_json(text)


@events.init.add_listener
def _init(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    options = environment.parsed_options
    if runner is None or options is None:
        return
    if not isinstance(runner, WorkerRunner):  # the master, or a single process
        if options.kh_plan and not options.kh_plan_json:
            options.kh_plan_json = Path(options.kh_plan).read_text(encoding="utf-8")
        runner.register_message(DONE, _on_done)
        environment.events.worker_report.add_listener(_on_worker_report)
        environment.events.test_start.add_listener(_on_test_start)
        environment.events.quitting.add_listener(_on_quitting)
    if os.environ.get(PARENT_ENV, "").isdigit():  # every process of the run, forked workers too
        gevent.spawn(_watch_parent, environment, int(os.environ[PARENT_ENV]))
    if not isinstance(runner, MasterRunner):
        environment.events.report_to_master.add_listener(_on_report_to_master)


def _harness_alive(harness: psutil.Process) -> bool:
    try:
        return harness.is_running() and harness.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _watch_parent(environment: Environment, parent: int) -> None:
    """End this process's part of the run when the harness that started it is gone (killed without a
    chance to stop us). Each process watches for itself: a worker forked by the master still writes to the
    harness's pipe, and the master's quit would wait on a worker stuck on that broken pipe."""
    try:
        harness: psutil.Process | None = psutil.Process(parent)  # with its start time: PIDs are reused
    except psutil.NoSuchProcess:
        harness = None
    while harness is not None and _harness_alive(harness):
        gevent.sleep(PARENT_POLL)
    # Our output went to the harness: with it gone every write would fail, and Locust's shutdown with it.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    if environment.runner is not None:
        environment.runner.quit()


# -- the user ------------------------------------------------------------------------------------------


class SipCarrier(User):
    """One sender of the plan: places its share of the calls, then reports done and stops."""

    @task
    def place_calls(self) -> None:
        environment = self.environment
        plan = plan_of(environment)
        runner = environment.runner
        index = runner.worker_index if isinstance(runner, WorkerRunner) else 0
        if index >= plan.senders:
            print(
                f"kazoo-harness: worker index {index} has no share of a plan for {plan.senders} senders",
                file=sys.stderr,
            )
            raise StopUser()
        config = SenderConfig(
            destination=plan.destination,
            sources=plan.sources,
            invite_fields=plan.invite_fields,
            mutators=plan.mutators,
            seed=plan.seed,
            schedule=Schedule(**plan.schedule),
            sender=index,
            senders=plan.senders,
            concurrency=plan.concurrency,
            t1=plan.t1,
            timeout=plan.timeout,
            run_id=plan.run_id,
        )
        reporter = LocustReporter(environment, plan)
        sender = Sender(config, reporter, wait=_cooperative_wait)
        _state["senders"][index] = sender.counters
        try:
            counters = sender.run()
        finally:
            sender.close()
        _report_done(environment, index, counters, reporter.calls)
        raise StopUser()


def _cooperative_wait(socks: list[Any], timeout: float) -> None:
    """The sender's wait, as a gevent wait: the worker's heartbeats and reports run meanwhile."""
    if timeout <= 0 or not socks:
        gevent.sleep(max(timeout, 0.0))
    else:
        gevent.select.select(socks, [], [], timeout)


class LocustReporter:
    """Each call to Locust's request event; the first provisional to this process's own entry."""

    def __init__(self, environment: Environment, plan: LoadPlan) -> None:
        self._fire = environment.events.request.fire
        self._matchers: list[Matcher] = plan.matchers()
        self._expected = plan.expected
        self._verdicts: dict[str, UnexpectedOutcome | None] = {}
        self._provisional: StatsEntry = _state["provisional"].get(*PROVISIONAL)
        self.calls = 0

    def call(self, name: str, latency_ms: float, size: int) -> None:
        if name not in self._verdicts:
            ok = any(m.matches(name) for m in self._matchers)
            self._verdicts[name] = None if ok else UnexpectedOutcome(f"expected {self._expected}, got {name}")
        self.calls += 1
        self._fire(
            request_type="INVITE",
            name=name,
            response_time=latency_ms,
            response_length=size,
            exception=self._verdicts[name],
            context={},
        )

    def provisional(self, latency_ms: float) -> None:
        # Locust's hint says int; it rounds floats itself, as for the request event's response_time
        self._provisional.log(latency_ms, 0)  # type: ignore[arg-type]


def _report_done(environment: Environment, index: int, counters: Counters, calls: int) -> None:
    runner = environment.runner
    assert runner is not None
    if isinstance(runner, WorkerRunner):
        # A last statistics report first: the master reads messages in order, so it has every call of
        # this sender when the done message arrives.
        data: dict[str, Any] = {}
        environment.events.report_to_master.fire(client_id=runner.client_id, data=data)
        runner.send_message("stats", data)
    runner.send_message(DONE, {"sender": index, "counters": counters.as_dict(), "calls": calls})


# -- worker -> master ----------------------------------------------------------------------------------


def _on_report_to_master(client_id: str, data: dict[str, Any]) -> None:
    data["kh_provisional"] = _state["provisional"].get(*PROVISIONAL).get_stripped_report()
    data["kh_counters"] = {str(i): c.as_dict() for i, c in _state["senders"].items()}


def _on_worker_report(client_id: str, data: dict[str, Any]) -> None:
    if "kh_provisional" in data:
        stats: RequestStats = _state["provisional"]
        stats.get(*PROVISIONAL).extend(StatsEntry.unserialize(data["kh_provisional"], stats))
    for index, counters in (data.get("kh_counters") or {}).items():
        _state["counters"][int(index)] = counters


def _on_done(environment: Environment, msg: Any, **_: Any) -> None:
    data = msg.data
    _state["done"][int(data["sender"])] = data
    _state["counters"][int(data["sender"])] = data["counters"]
    plan = plan_of(environment)
    if len(_state["done"]) >= plan.senders:
        gevent.spawn(_finish, environment, plan)


def _finish(environment: Environment, plan: LoadPlan) -> None:
    """Every sender is done: write the summary, then end the run (the web UI stays up until Ctrl-C)."""
    _write_summary(environment, complete=True)
    runner = environment.runner
    assert runner is not None
    _state["finished"] = True
    _print_progress(environment)
    if plan.web:
        runner.stop()
        print("kazoo-harness: run complete; the web UI stays up until Ctrl-C", flush=True)
    else:
        runner.quit()


# -- the master's view: progress and summary -----------------------------------------------------------


def _on_test_start(environment: Environment, **_: Any) -> None:
    _state["started"] = time.time()
    gevent.spawn(_progress, environment)


def _progress(environment: Environment) -> None:
    while True:
        gevent.sleep(PROGRESS_INTERVAL)
        if _state["finished"]:
            return
        _print_progress(environment)


def _counter_total(name: str) -> float:
    return sum(float(c.get(name, 0)) for c in _counters().values())


def _counters() -> dict[int, dict[str, float]]:
    live = {i: c.as_dict() for i, c in _state["senders"].items()}  # a local runner's own senders
    return {**_state["counters"], **live}


def _print_progress(environment: Environment) -> None:
    stats = environment.stats
    now = time.time()
    started = _state["started"] or now
    last_at, last_calls = _state.get("last_progress") or (started, 0)
    rate = (stats.total.num_requests - last_calls) / (now - last_at) if now > last_at else 0.0
    _state["last_progress"] = (now, stats.total.num_requests)
    outcomes = "  ".join(
        f"{e.name}: {e.num_requests}" for e in sorted(stats.entries.values(), key=lambda e: -e.num_requests)
    )
    print(
        f"load {now - started:5.1f} s  calls {stats.total.num_requests}"
        f"  {rate:.0f}/s  failures {stats.total.num_failures}"
        f"  retransmissions {_counter_total('retransmissions'):.0f}"
        f"  timeouts {_counter_total('timeouts'):.0f}"
        f"  send errors {_counter_total('send_errors'):.0f}  |  {outcomes or '-'}",
        flush=True,
    )


def _percentiles(entry: StatsEntry) -> dict[str, float]:
    if entry.num_requests == 0:
        return {}
    out = {
        key: float(entry.get_response_time_percentile(p))
        for key, p in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99))
    }
    out["max"] = float(entry.max_response_time or 0.0)
    out["avg"] = float(entry.avg_response_time)
    return out


def summary(environment: Environment, *, complete: bool) -> dict[str, Any]:
    stats = environment.stats
    runner = environment.runner
    total = stats.total
    provisional = _state["provisional"].get(*PROVISIONAL)
    elapsed = (total.last_request_timestamp or 0) - (total.start_time or 0)
    counters = Counters.merge(list(_counters().values()))
    return {
        "complete": complete,
        "senders_done": len(_state["done"]),
        "workers": runner.worker_count if isinstance(runner, MasterRunner) else 0,
        "elapsed": max(elapsed, 0.0),
        "calls": total.num_requests,
        "failures": total.num_failures,
        "outcomes": {
            e.name: {"count": e.num_requests, "failures": e.num_failures, **_percentiles(e)}
            for e in stats.entries.values()
        },
        "final_ms": _percentiles(total),
        "first_provisional_ms": {"count": provisional.num_requests, **_percentiles(provisional)},
        "counters": counters,
        "per_sender": {str(i): d.get("calls", 0) for i, d in sorted(_state["done"].items())},
        "errors": {e.error: e.occurrences for e in stats.errors.values()},
    }


def _write_summary(environment: Environment, *, complete: bool) -> None:
    options = environment.parsed_options
    if options is None or not options.kh_summary or _state["written"]:
        return
    _state["written"] = True
    Path(options.kh_summary).write_text(
        json.dumps(summary(environment, complete=complete), indent=2), encoding="utf-8"
    )


def _on_quitting(environment: Environment, **_: Any) -> None:
    _write_summary(environment, complete=False)  # ended before every sender was done (Ctrl-C, time bound)

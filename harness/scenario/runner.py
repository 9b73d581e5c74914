"""Run one scenario case against a target: plan it (harness.scenario.plan), execute it — send as the
carrier while watching the logs, then collect the log lines and the stack's captured legs
(harness.scenario.capture) — and judge it (harness.scenario.verdict). One-way: case + target in,
ScenarioResult out."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from harness.kazoo.access import couch_client
from harness.kazoo.couch import CouchError
from harness.kazoo.numbers import InboundConfig
from harness.logs.assertions import LogExpectation, LogVerdict, check
from harness.logs.hub import LogHub
from harness.logs.legs import LegVerdict
from harness.logs.watch import send_watching
from harness.net.carrier import CarrierUA
from harness.net.exchange import Exchange
from harness.scenario.capture import check_capture
from harness.scenario.case import ScenarioCase
from harness.scenario.expectation import Expectation
from harness.scenario.plan import Plan, PlanError, Rendered, case_seed, plan, render, skip_reason
from harness.scenario.setup import applied
from harness.scenario.verdict import judge
from harness.sip.transaction import Timers
from harness.targets.target import SetupUnsupported, Target

# Grace after the exchange ends for the log lines that explain it to arrive.
LOG_GRACE = 1.0
# How long "must not appear" patterns are watched after the exchange when nothing else is pending.
ABSENT_WINDOW = 0.05
CARRIER_TIMERS = Timers(t1=0.5)


@dataclass
class ScenarioResult:
    case: ScenarioCase
    expectation: Expectation | None
    exchange: Exchange | None
    failures: list[str] = field(default_factory=list)
    logs: LogVerdict | None = None
    capture: LegVerdict | None = None  # the stack's captured legs (HEP), where the target has a capture
    placeholders: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    duration: float = 0.0
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failures and self.skipped is None

    @property
    def got(self) -> str:
        ex = self.exchange
        if ex is None:
            return "not run"
        if ex.final is not None:
            return f"{ex.final.code} {ex.final.reason}".strip()
        return {"silence": "silence", "closed": "connection closed"}.get(ex.outcome, ex.outcome)


def inbound_config(target: Target) -> InboundConfig:
    """How the stack reads a dialed number: its stepswitch and number_manager documents as its node
    sees them, read now (a scenario's setup may have just changed them); Kazoo's defaults when the
    target gives no way to read them."""
    if target.documents is not None:
        return InboundConfig.read(target.documents, target.stack.node)
    client = couch_client(target.stack, timeout=2.0)
    if client is None:
        return InboundConfig(node=target.stack.node)
    with client:
        try:
            return InboundConfig.read(client, target.stack.node)
        except CouchError:
            return InboundConfig(node=target.stack.node)


async def execute(
    planned: Plan, target: Target
) -> tuple[Exchange, LogVerdict | None, LegVerdict | None, Rendered]:
    """Send the planned message as the carrier, through the target's gate, while following its logs."""
    ip, port = planned.source
    ua = CarrierUA(ip, port, planned.transport, gate=target.gate, timers=CARRIER_TIMERS)
    try:
        rendered = render(planned, ua.spec(planned.destination, **planned.fields))
        async with LogHub(target.log_sources()) as hub:
            since = time.time()

            async def send(early_end: asyncio.Event | None) -> Exchange:
                if planned.method == "OPTIONS":
                    return await ua.send_raw(
                        rendered.data, planned.destination, timeout=planned.timeout, early_end=early_end,
                        mutated=rendered.mutated,
                    )  # fmt: skip
                return await ua.invite(
                    rendered.data,
                    planned.destination,
                    timeout=planned.timeout,
                    credentials=planned.credentials,
                    early_end=early_end,
                    dialed=rendered.dialed,
                    cancel_after_provisional=planned.cancel_after_provisional,
                    seed=planned.seed,
                    mutated=rendered.mutated,
                )

            drop = rendered.proves_drop if rendered.drop else None
            exchange = await send_watching(send, hub, drop, since=since, deadline=since + planned.timeout)
            exchange.seed = planned.seed
            logs, legs = await asyncio.gather(  # both follow the same hub
                check_logs(hub, exchange, rendered.present, rendered.absent, since, planned),
                check_capture(hub, exchange, target, planned, rendered, since),
            )
    finally:
        ua.close()
    return exchange, logs, legs, rendered


async def check_logs(
    hub: LogHub,
    exchange: Exchange,
    present: tuple[LogExpectation, ...],
    absent: tuple[LogExpectation, ...],
    since: float,
    planned: Plan,
) -> LogVerdict | None:
    """ "Must appear" lines are awaited up to LOG_GRACE and pass the moment they arrive; "must not appear"
    lines are watched over the exchange and a short window after it, so a clean scenario ends early.
    None when nothing is expected of the logs."""
    verdict = None
    if present:
        verdict = await check(
            hub, exchange, present, since=since, deadline=time.time() + LOG_GRACE,
            ordered=planned.expectation.logs_ordered,
        )  # fmt: skip
    if absent:
        forbidden = await check(hub, exchange, absent, since=since, deadline=time.time() + ABSENT_WINDOW)
        if verdict is None:
            return forbidden
        verdict.unexpected += forbidden.unexpected
        verdict.ok = verdict.ok and forbidden.ok
    return verdict


async def run_case(case: ScenarioCase, target: Target, *, session_seed: int = 0) -> ScenarioResult:
    """Plan, execute and judge ``case`` on ``target`` (its setup already applied)."""
    started = time.monotonic()
    try:
        planned = plan(case, target, inbound_config(target), session_seed=session_seed)
    except PlanError as exc:
        return ScenarioResult(case, None, None, failures=[str(exc)], seed=case_seed(case, session_seed))
    result = ScenarioResult(case, planned.expectation, None, seed=planned.seed)
    if planned.skip is not None:
        result.skipped = planned.skip
        return result
    try:
        exchange, logs, legs, rendered = await execute(planned, target)
    except PlanError as exc:
        result.failures = [str(exc)]
        return result
    result.exchange, result.logs, result.capture, result.placeholders = exchange, logs, legs, rendered.values
    result.failures = judge(planned.expectation, exchange, logs, min_delay=planned.min_delay, capture=legs)
    result.duration = time.monotonic() - started
    return result


def run_case_sync(
    case: ScenarioCase, target: Target, *, session_seed: int = 0, timeout: float | None = None
) -> ScenarioResult:
    """Apply the case's setup, run it on a fresh event loop, undo the setup. A setup the target cannot
    apply skips the case with the reason; a refused send raises SendRefused (harness.net.gate).
    ``timeout``: a deadline for the run (the probes' own): past it the run is cancelled, TimeoutError."""
    skip = skip_reason(case, target)  # before a setup starts anything for a case that does not run here
    if skip is not None:
        return ScenarioResult(case, None, None, seed=case_seed(case, session_seed), skipped=skip)
    try:
        with applied(target, case.setup) as effective:
            running = run_case(case, effective, session_seed=session_seed)
            return asyncio.run(asyncio.wait_for(running, timeout))
    except SetupUnsupported as exc:
        return ScenarioResult(case, None, None, seed=case_seed(case, session_seed), skipped=str(exc))

"""Run one scenario case against a target: build the message, send it as the carrier, watch the logs,
and reach a verdict. One-way: case + target + profile in, ScenarioResult out."""

from __future__ import annotations

import asyncio
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

from harness.kazoo import numbers as kazoo_numbers
from harness.logs.assertions import LogExpectation, LogVerdict, check, wait_for_drop
from harness.logs.file_source import FileSource
from harness.logs.hub import LogHub
from harness.logs.legs import LegVerdict
from harness.logs.source import LogSource
from harness.net.carrier import CarrierUA
from harness.net.exchange import Exchange
from harness.replay.template import raw_request
from harness.scenario.case import ScenarioCase
from harness.scenario.expectation import Expectation, LogPattern, resolve
from harness.scenario.hep_capture import capture_failure, capture_unavailable, judge_capture
from harness.scenario.numbers import dialed_form
from harness.scenario.safety import before_send
from harness.scenario.setup import SetupUnsupported, applied
from harness.scenario.target import Target
from harness.scenario.verdict import judge
from harness.sip import builder
from harness.sip.digest import Credentials
from harness.sip.mutators import apply_mutators
from harness.sip.transaction import Timers

# Grace after the exchange ends for the log lines that explain it to arrive.
LOG_GRACE = 1.0
# How long "must not appear" patterns are watched after the exchange when nothing else is pending.
ABSENT_WINDOW = 0.05

NEVER_PATTERNS: dict[str, LogPattern] = {
    "voicemail": LogPattern(r"(?i)cf_voicemail|voicemail", "kazoo"),
    "ivr": LogPattern(r"(?i)cf_menu|\bmenu\b", "kazoo"),
}


@dataclass
class ScenarioResult:
    case: ScenarioCase
    expectation: Expectation
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


class ScenarioSetupError(RuntimeError):
    """The scenario cannot run on this target (a role it names is unknown, a setup is unsupported)."""


def case_seed(case: ScenarioCase, session_seed: int) -> int:
    """A stable per-case seed: the same session seed replays the same bytes for every case."""
    return (
        case.seed
        if case.seed is not None
        else random.Random(f"{session_seed}:{case.test_id}").randrange(2**31)
    )


_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def fill(pattern: str, values: dict[str, str]) -> str:
    """Fill `{name}` placeholders (regex-escaped values); other braces (regex counts) stay as they are."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            raise ScenarioSetupError(
                f"log pattern {pattern!r} uses {{{name}}}, known: {', '.join(sorted(values))}"
            )
        return re.escape(values[name])

    return _PLACEHOLDER.sub(sub, pattern)


def _resolve_user(target: Target, value: str | None, fmt: str) -> str | None:
    if value is None:
        return None
    if target.has_number_role(value):
        return dialed_form(target.number(value), fmt)
    return value


def _log_sources(target: Target) -> list[LogSource]:
    files = [FileSource(path, name, poll_interval=0.005) for name, path in target.log_files.items()]
    streams = [make() for make in target.log_sources.values()]  # e.g. container logs (docker target)
    return [*files, *streams]


def _log_expectations(
    expectation: Expectation, placeholders: dict[str, str]
) -> tuple[list[LogExpectation], list[LogExpectation]]:
    """The lines that must appear and those that must not (the `never` outcomes included)."""
    present = [
        LogExpectation(fill(p.pattern, placeholders), p.source, p.count, True)
        for p in expectation.logs_present
    ]
    absent = [
        LogExpectation(fill(p.pattern, placeholders), p.source, p.count, False)
        for p in expectation.logs_absent
    ]
    absent += [
        LogExpectation(NEVER_PATTERNS[n].pattern, NEVER_PATTERNS[n].source, None, False)
        for n in expectation.never
        if n in NEVER_PATTERNS
    ]
    return present, absent


async def run_case(case: ScenarioCase, target: Target, *, session_seed: int = 0) -> ScenarioResult:
    """Run ``case`` against ``target`` and judge it with the target's profile."""
    started = time.monotonic()
    seed = case_seed(case, session_seed)
    expectation = resolve(case.expect, target.profile, case.via)
    result = ScenarioResult(case, expectation, None, seed=seed)
    if target.profile.release not in case.releases and case.releases:
        result.skipped = f"scenario applies to {', '.join(case.releases)} only"
        return result
    if (no_capture := capture_unavailable(case, target)) is not None:
        result.skipped = no_capture
        return result

    send = case.send
    fmt = str(send.get("format", "e164"))
    number_ref = str(send["number"]) if "number" in send else "routed"
    number = _resolve_user(target, number_ref, fmt) or ""
    ruri_user = _resolve_user(target, send.get("ruri_user"), fmt) or number
    to_user = _resolve_user(target, send.get("to_user"), fmt) or ruri_user
    # the user Kazoo reads as the dialed number (stepswitch inbound_user_field, Request by default)
    field = ((case.setup.get("system_config") or {}).get("stepswitch") or {}).get(
        "inbound_user_field", "Request"
    )
    dialed = to_user if str(field).lower() == "to" else ruri_user
    destination = target.media if case.via == "media" else target.sbc
    if destination is None:
        raise ScenarioSetupError(f"target {target.name!r} does not expose its media role for direct INVITEs")
    carrier = case.carrier
    local_ip, local_port = target.carrier(carrier.get("role"), carrier.get("address"), carrier.get("port"))
    transport = str(carrier.get("transport", "udp"))

    ua = CarrierUA(local_ip, local_port, transport, timers=Timers(t1=0.5))
    try:
        fields: dict[str, Any] = {"ruri_user": ruri_user, "to_user": to_user, "seed": seed}
        for key in ("ruri_host", "to_host", "from_display"):
            if key in send:
                fields[key] = str(send[key])
        if "from_user" in send:
            fields["from_user"] = _resolve_user(target, str(send["from_user"]), "e164")
        if send.get("sdp") is False:
            fields["rtp_port"] = None
        if "codecs" in send:
            fields["codecs"] = tuple(send["codecs"])
        fields["extra_headers"] = [(str(k), str(v)) for k, v in (send.get("headers") or {}).items()]
        fields["remove_headers"] = list(send.get("remove_headers") or [])
        resolved = builder.resolve(ua.spec(destination, **fields))  # defaults drawn once, from the seed
        message = (
            builder.build_options(resolved) if case.method == "OPTIONS" else builder.build_invite(resolved)
        )
        data = message.to_bytes()
        mutators = [str(m) for m in send.get("mutators") or []]
        if mutators:
            data = apply_mutators(data, mutators, seed=seed)
        to_host = str(resolved.to_host or destination[0])
        source_port = ua.local_port or resolved.local_port
        placeholders = {
            "call_id": message.call_id,
            "source_ip": local_ip,
            "source_port": str(source_port),
            "seen_ip": target.sbc_ip if case.via == "sbc" else local_ip,
            "sbc_ip": target.sbc_ip,
            "number": kazoo_numbers.normalize(dialed) if dialed else "",
            "dialed": dialed,
            "to_user": str(resolved.to_user or ruri_user),
            "to_host": to_host,
            "from_user": str(resolved.from_user or ""),
        }
        if "raw" in send:  # a captured message as a template (harness.replay.template) replaces it
            data, placeholders = raw_request(str(send["raw"]), placeholders, target=destination, seed=seed)
            data = apply_mutators(data, mutators, seed=seed) if mutators else data
            dialed = placeholders["dialed"]
        result.placeholders = placeholders
        credentials = None
        if send.get("credentials"):
            creds = send["credentials"]
            credentials = Credentials(str(creds["username"]), str(creds["password"]))
        present, absent = _log_expectations(expectation, placeholders)
        waits_for_silence = expectation.silence or expectation.closed
        if expectation.timeout is not None:
            timeout = expectation.timeout
        elif waits_for_silence:
            timeout = target.silence_window
        else:
            timeout = target.route_timeout + 3.0

        await before_send(target, destination)  # safety: named/loopback destinations only, rate cap
        async with LogHub(_log_sources(target)) as hub:
            since = time.time()
            early_end = asyncio.Event()
            watcher = None
            if expectation.silence and present:
                # silence is proven by the drop line: stop waiting the moment it arrives. Not so for a
                # closed connection: the close follows the drop line and the UA must see it happen.
                drop_patterns = [p.pattern for p in present]
                watcher = asyncio.create_task(
                    wait_for_drop(hub, drop_patterns, since=since, deadline=since + timeout, event=early_end)
                )
            try:
                if case.method == "OPTIONS":
                    exchange = await ua.send_raw(data, destination, timeout=timeout, early_end=early_end)
                else:
                    exchange = await ua.invite(
                        data,
                        destination,
                        timeout=timeout,
                        credentials=credentials,
                        early_end=early_end,
                        dialed=dialed,
                        cancel_after_provisional=bool(send.get("cancel_after_provisional")),
                        seed=seed,
                    )
            finally:
                if watcher is not None:
                    watcher.cancel()
                    await asyncio.gather(watcher, return_exceptions=True)
            exchange.seed = seed
            result.exchange = exchange
            # the captured legs are judged beside the log lines: both follow the same hub
            capture = asyncio.ensure_future(judge_capture(hub, exchange, case, target, since, placeholders))
            try:
                if present or absent:
                    result.logs = await _check_logs(
                        hub, exchange, present, absent, since, placeholders, expectation
                    )
                result.capture = await capture
            finally:
                capture.cancel()
    finally:
        ua.close()
    min_delay = expectation.min_delay
    min_seconds = target.route_timeout if min_delay == "route_timeout" else min_delay
    result.failures = judge(
        expectation, exchange, result.logs, min_delay=float(min_seconds) if min_seconds is not None else None
    )
    if (capture_failed := capture_failure(result.capture)) is not None:
        result.failures.append(capture_failed)
    result.duration = time.monotonic() - started
    return result


async def _check_logs(
    hub: LogHub,
    exchange: Exchange,
    present: list[LogExpectation],
    absent: list[LogExpectation],
    since: float,
    placeholders: dict[str, str],
    expectation: Expectation,
) -> LogVerdict:
    """ "Must appear" lines are awaited up to LOG_GRACE and pass the moment they arrive; "must not appear"
    lines are watched over the exchange and a short window after it, so a clean scenario ends early."""
    verdict = None
    if present:
        verdict = await check(
            hub, exchange, present, since=since, deadline=time.time() + LOG_GRACE,
            placeholders=placeholders, ordered=expectation.logs_ordered,
        )  # fmt: skip
    if absent:
        forbidden = await check(
            hub,
            exchange,
            absent,
            since=since,
            deadline=time.time() + ABSENT_WINDOW,
            placeholders=placeholders,
        )
        if verdict is None:
            return forbidden
        verdict.unexpected += forbidden.unexpected
        verdict.ok = verdict.ok and forbidden.ok
    assert verdict is not None
    return verdict


def run_case_sync(case: ScenarioCase, target: Target, *, session_seed: int = 0) -> ScenarioResult:
    """Apply the case's setup, run it on a fresh event loop, undo the setup."""
    try:
        with applied(target, case.setup) as effective:
            return asyncio.run(run_case(case, effective, session_seed=session_seed))
    except SetupUnsupported as exc:
        raise ScenarioSetupError(str(exc)) from exc

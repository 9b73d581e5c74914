"""Plan one scenario case against a target: everything that is decided before a socket is opened.

``plan(case, target, config)`` is pure: the expectation from the target's profile, who sends from where
to where, the number (through the stack's own inbound rules, harness.kazoo.numbers.InboundConfig), the
timeouts. ``render(plan, local)`` makes the bytes once the carrier's socket is bound (its port goes into
Via and Contact) and fills the log patterns with the values of the message actually built. The legs the
stack's own HEP capture must (not) hold are planned and filled the same way (docs/hep.md).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.kazoo.numbers import InboundConfig
from harness.kazoo.profile import LegPattern, LogPattern, PlaceholderError, fill, request_values
from harness.logs.assertions import LogExpectation
from harness.logs.legs import LegExpectation
from harness.logs.line import LogLine
from harness.scenario.case import ScenarioCase
from harness.scenario.expectation import Expectation, resolve
from harness.scenario.numbers import dialed_form
from harness.sip import builder
from harness.sip.digest import Credentials
from harness.sip.errors import SipParseError
from harness.sip.message import Request, parse_message
from harness.sip.mutators import apply_mutators
from harness.sip.template import raw_bytes
from harness.targets.target import Address, Target

# How long "must appear" lines may take after the exchange; the exchange's own timeout beyond the
# route timeout (the slowest answer a stack gives on purpose)
ANSWER_MARGIN = 3.0


class PlanError(ValueError):
    """The scenario cannot be judged as written on this target (an unknown log source, a placeholder
    without a value): a failure of the scenario, raised before anything is sent."""


@dataclass(frozen=True)
class Plan:
    case: ScenarioCase
    seed: int
    expectation: Expectation
    destination: Address
    source: Address  # (ip, port or 0)
    transport: str
    fields: Mapping[str, Any]  # the builder's fields, less the carrier's own address
    mutators: tuple[str, ...]
    raw: str | None  # a captured message as a template (harness.sip.template)
    config: InboundConfig  # how the stack reads the dialed number
    sbc_ip: str
    timeout: float
    min_delay: float | None
    credentials: Credentials | None = None
    cancel_after_provisional: bool = False
    skip: str | None = None  # why the case does not run on this target
    never: tuple[LogPattern, ...] = field(default=())  # the profile's lines for the `never:` words
    capture: tuple[LegPattern, ...] = ()  # the legs the target's HEP capture must (not) hold
    parity: bool = False  # its capture is complete: every carrier<->SBC message must be in it

    @property
    def method(self) -> str:
        return self.case.method


@dataclass(frozen=True)
class Rendered:
    """The bytes to send and what the logs are checked for."""

    data: bytes
    mutated: bool  # changed after the builder made them (mutators, a raw template)
    dialed: str  # the number as Kazoo reads it from the request
    values: dict[str, str]  # placeholder values (harness.kazoo.profile.PLACEHOLDERS)
    present: tuple[LogExpectation, ...]
    absent: tuple[LogExpectation, ...]
    drop: tuple[re.Pattern[str], ...]  # lines that prove the drop (a silence ends on the first)
    drop_sources: tuple[str | None, ...]
    legs: tuple[LegExpectation, ...] = ()  # what the captured legs are checked for

    def proves_drop(self, line: LogLine) -> bool:
        return any(
            (source is None or line.source == source) and regex.search(line.raw)
            for regex, source in zip(self.drop, self.drop_sources, strict=True)
        )


def case_seed(case: ScenarioCase, session_seed: int) -> int:
    """A stable per-case seed: the same session seed replays the same bytes for every case."""
    return (
        case.seed
        if case.seed is not None
        else random.Random(f"{session_seed}:{case.test_id}").randrange(2**31)
    )


def _user(target: Target, value: Any, fmt: str) -> str | None:
    if value is None:
        return None
    text = str(value)
    return dialed_form(target.number(text), fmt) if target.has_number_role(text) else text


def skip_reason(case: ScenarioCase, target: Target) -> str | None:
    """Why ``case`` does not run on ``target`` at all (its releases or target kinds), None when it does:
    known before any setup is applied."""
    if case.releases and target.release.name not in case.releases:
        return f"scenario applies to {', '.join(case.releases)} only"
    if case.targets and target.kind not in case.targets:
        return f"scenario runs on {', '.join(case.targets)} targets only, not {target.kind}"
    return None


def plan(case: ScenarioCase, target: Target, config: InboundConfig, *, session_seed: int = 0) -> Plan:
    """The plan of ``case`` on ``target`` (PlanError: it cannot be judged there as written)."""
    seed = case_seed(case, session_seed)
    expectation = resolve(case.expect, target.profile, case.via)
    skip = skip_reason(case, target)
    missing = sorted(expectation.log_sources - set(target.logs))
    if missing and skip is None:
        raise PlanError(
            f"log source(s) {', '.join(missing)} named by the expectation are not sources of target "
            f"{target.name!r} (its sources: {', '.join(target.logs) or 'none'})"
        )
    never = tuple(target.profile.never[w] for w in expectation.never if w in target.profile.never)
    captures = target.captures
    if expectation.capture and not captures and skip is None:
        skip = f"expects captured legs, and target {target.name!r} has no HEP capture (docs/hep.md)"
    complete = case.via == "sbc" and any(c.complete for c in captures)  # a missing leg proves something
    legs = (*(expectation.outcome_capture if complete else ()), *expectation.capture) if captures else ()
    destination = target.media if case.via == "media" else target.sbc
    if destination is None:
        raise PlanError(f"target {target.name!r} does not expose its media role for direct INVITEs")
    send = case.send
    fmt = str(send.get("format", "e164"))
    number = _user(target, send.get("number", "routed"), fmt) or ""
    ruri_user = _user(target, send.get("ruri_user"), fmt) or number
    fields: dict[str, Any] = {
        "ruri_user": ruri_user,
        "to_user": _user(target, send.get("to_user"), fmt) or ruri_user,
        "seed": seed,
        "extra_headers": [(str(k), str(v)) for k, v in (send.get("headers") or {}).items()],
        "remove_headers": list(send.get("remove_headers") or []),
    }
    for key in ("ruri_host", "to_host", "from_display"):
        if key in send:
            fields[key] = str(send[key])
    if "from_user" in send:
        fields["from_user"] = _user(target, send["from_user"], "e164")
    if send.get("sdp") is False:
        fields["rtp_port"] = None
    if "codecs" in send:
        fields["codecs"] = tuple(send["codecs"])
    creds = send.get("credentials")
    if expectation.timeout is not None:
        timeout = expectation.timeout
    elif expectation.silence or expectation.closed:
        timeout = target.silence_window
    else:
        timeout = target.route_timeout + ANSWER_MARGIN
    delay = expectation.min_delay
    carrier = case.carrier
    return Plan(
        case=case,
        seed=seed,
        expectation=expectation,
        destination=destination,
        source=target.carrier(carrier.get("role"), carrier.get("address"), carrier.get("port")),
        transport=str(carrier.get("transport", "udp")),
        fields=fields,
        mutators=tuple(str(m) for m in send.get("mutators") or ()),
        raw=str(send["raw"]) if "raw" in send else None,
        config=config,
        sbc_ip=target.sbc_ip,
        timeout=timeout,
        min_delay=target.route_timeout
        if delay == "route_timeout"
        else (float(delay) if delay is not None else None),
        credentials=Credentials(str(creds["username"]), str(creds["password"])) if creds else None,
        cancel_after_provisional=bool(send.get("cancel_after_provisional")),
        skip=skip,
        never=never,
        capture=legs,
        parity=complete,
    )


def render(plan: Plan, spec: builder.InviteSpec) -> Rendered:
    """The bytes of ``plan`` from the carrier's InviteSpec (its address, port and RTP port filled in by
    the UA: ``ua.spec(plan.destination, **plan.fields)``)."""
    resolved = builder.resolve(spec)  # defaults drawn once, from the seed
    built = builder.build_options(resolved) if plan.method == "OPTIONS" else builder.build_invite(resolved)
    values = {
        "source_ip": resolved.local_ip,
        "source_port": str(resolved.local_port),
        "sbc_ip": plan.sbc_ip,
        "seen_ip": plan.sbc_ip if plan.case.via == "sbc" else resolved.local_ip,
        **request_values(built, plan.config),
    }
    data = built.to_bytes()
    if plan.raw is not None:
        data = raw_bytes(
            plan.raw,
            target=plan.destination,
            source=(resolved.local_ip, resolved.local_port),
            call_id=built.call_id,
            seed=plan.seed,
        )
        values.update(_sent_values(data, plan.config))
    if plan.mutators:
        data = apply_mutators(data, list(plan.mutators), seed=plan.seed)
    exp = plan.expectation
    try:
        present = tuple(_expect(p, values, True) for p in exp.logs_present)
        absent = tuple(_expect(p, values, False) for p in (*exp.logs_absent, *plan.never))
        drop = tuple(re.compile(e.pattern) for e in present) if exp.silence else ()
        legs = tuple(_leg(p, values) for p in plan.capture)
    except PlaceholderError as exc:
        raise PlanError(str(exc)) from exc
    return Rendered(
        data=data,
        mutated=bool(plan.mutators) or plan.raw is not None,
        dialed=values.get("dialed", ""),
        values=values,
        present=present,
        absent=absent,
        drop=drop,
        drop_sources=tuple(e.source for e in present) if exp.silence else (),
        legs=legs,
    )


def _sent_values(data: bytes, config: InboundConfig) -> dict[str, str]:
    try:
        message = parse_message(data)
    except SipParseError:
        return {}  # a deliberately malformed capture: the generated values stay
    return request_values(message, config) if isinstance(message, Request) else {}


def _expect(pattern: LogPattern, values: Mapping[str, str], present: bool) -> LogExpectation:
    count = pattern.count if present else None
    return LogExpectation(fill(pattern.pattern, values), pattern.source, count, present)


def _leg(pattern: LegPattern, values: Mapping[str, str]) -> LegExpectation:
    headers = tuple((name, fill(regex, values)) for name, regex in pattern.headers)
    return LegExpectation(
        pattern.src, pattern.dst, pattern.message, headers, pattern.count, pattern.present, pattern.source,
        pattern.capture_id,
    )  # fmt: skip

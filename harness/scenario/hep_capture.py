"""Glue between scenarios/targets and the stack's HEP capture (docs/hep.md). The one place the runner,
the records and the target kinds reach the capture: which captures a target has, the roles of its
addresses, what a case expects of the captured legs, and the record of what was captured.

A case's capture expectations come from the scenario (``expect.capture``: present / absent legs) and,
where the target's capture is *complete* (HepCapture.complete), from the profile outcome's ``capture``
block, with a parity check: every carrier<->SBC message captured once, byte exact, except the bytes
Kamailio's core never reads as SIP (harness.kazoo.siptrace: garbage, a TCP stream it cannot frame),
which the capture cannot hold and the record names.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from harness.kazoo.siptrace import unmirrored_reason
from harness.logs.assertions import fill_placeholders
from harness.logs.hep_source import HepCapture, HepReceiver
from harness.logs.hub import LogHub
from harness.logs.legs import Leg, LegExpectation, LegVerdict, Roles, check_legs
from harness.net.exchange import Exchange
from harness.scenario.case import ScenarioCase
from harness.scenario.target import Target

SBC_CAPTURE = "sbc-capture"  # the lab's HEP source: its Kamailio's siptrace
CAPTURE_GRACE = 1.0  # seconds after the exchange for captured legs to arrive (as the runner's LOG_GRACE)


def loopback_capture(name: str, *, complete: bool, transport: str = "udp") -> HepCapture:
    """A started receiver on a free port of 127.0.0.1 (``udp`` or ``tcp``), as a target's capture point."""
    return HepCapture(HepReceiver([f"{transport}:127.0.0.1:0"], name).start(), complete=complete)


def captures(target: Target) -> list[HepCapture]:
    return [factory for factory in target.log_sources.values() if isinstance(factory, HepCapture)]


def close_captures(sources: Mapping[str, object]) -> Callable[[], None] | None:
    """A target's close: stop the HEP receivers among its log sources (None when it has none)."""
    found = [factory for factory in sources.values() if isinstance(factory, HepCapture)]
    if not found:
        return None

    def close() -> None:
        for capture in found:
            capture.close()

    return close


def roles(target: Target, exchange: Exchange) -> Roles:
    sbc = {target.sbc, *target.sbc_nodes.values()}
    return Roles(exchange.local, frozenset(sbc), frozenset({target.media} if target.media else ()))


def leg_expectations(
    spec: Mapping[str, Any], placeholders: Mapping[str, object] | None = None
) -> list[LegExpectation]:
    """``{present: [...], absent: [...]}`` (the schema's CAPTURE) as expectations; header patterns may
    use the log patterns' placeholders (``{source_ip}``, ``{call_id}``, ...)."""
    values = placeholders or {}
    out = []
    for key, present in (("present", True), ("absent", False)):
        for item in spec.get(key) or []:
            message = item.get("message")
            out.append(
                LegExpectation(
                    src=item.get("from"),
                    dst=item.get("to"),
                    message=str(message) if message is not None else None,
                    headers=tuple(
                        (str(k), fill_placeholders(str(v), values))
                        for k, v in (item.get("headers") or {}).items()
                    ),
                    count=item.get("count"),
                    present=present,
                    source=item.get("source"),
                    capture_id=item.get("capture_id"),
                )
            )
    return out


def case_expectations(
    case: ScenarioCase, target: Target, placeholders: Mapping[str, object] | None = None
) -> tuple[list[LegExpectation], bool]:
    """What ``case`` expects of the captured legs on ``target``, and whether parity is checked."""
    expectations = leg_expectations(case.expect.get("capture") or {}, placeholders)
    complete = any(c.complete for c in captures(target))
    parity = complete and case.via == "sbc"
    outcome = case.expect.get("outcome")
    if complete and outcome and case.via == "sbc":
        spec = target.profile.outcome(str(outcome), case.via).get("capture") or {}
        expectations = leg_expectations(spec, placeholders) + expectations
    return expectations, parity


async def judge_capture(
    hub: LogHub,
    exchange: Exchange,
    case: ScenarioCase,
    target: Target,
    since: float,
    placeholders: Mapping[str, object] | None = None,
) -> LegVerdict | None:
    """The captured legs of ``exchange`` judged against ``case``; None when the target has no capture."""
    found = captures(target)
    if not found:
        return None
    expectations, parity = case_expectations(case, target, placeholders)
    verdict = await check_legs(
        hub,
        exchange,
        roles(target, exchange),
        expectations,
        since=since,
        deadline=time.time() + CAPTURE_GRACE,
        sources=[c.name for c in found],
        parity_check=parity,
        unmirrored=unmirrored_reason,
    )
    return verdict


def capture_unavailable(case: ScenarioCase, target: Target) -> str | None:
    """The reason to skip a case that expects captured legs on a target without a HEP capture."""
    if case.expect.get("capture") and not captures(target):
        return f"expects captured legs, and target {target.name!r} has no HEP capture (docs/hep.md)"
    return None


def capture_failure(verdict: LegVerdict | None) -> str | None:
    """The failure sentence for a verdict that is not met (None when it is, or there is none)."""
    if verdict is None or verdict.ok:
        return None
    return "captured legs not as expected:\n" + verdict.explain()


def leg_record(leg: Leg, exchange: Exchange) -> dict[str, Any]:
    packet = leg.line.packet
    return {
        "source": leg.line.source,
        "capture_id": packet.capture_id if packet else None,
        "node": packet.node_name if packet else None,
        "hop": leg.hop,
        "src": f"{leg.src[0]}:{leg.src[1]}" if leg.src else None,
        "dst": f"{leg.dst[0]}:{leg.dst[1]}" if leg.dst else None,
        "transport": packet.transport if packet else None,
        "t_ms": round((leg.captured - exchange.started_wall) * 1000, 3),
        "captured": leg.captured,
        "first_line": leg.first_line,
        "kind": leg.kind,
        "bytes": len(leg.data),
        "tied_by": leg.reason,
    }


def capture_record(verdict: LegVerdict, exchange: Exchange) -> dict[str, Any]:
    """The JSON record of a case's captured legs (for reports: the stack's legs beside the carrier's)."""
    parity = verdict.parity
    return {
        "ok": verdict.ok,
        "sources": list(verdict.sources),
        "legs": [leg_record(leg, exchange) for leg in verdict.legs],
        "matched": [e.describe() for e, _ in verdict.matched],
        "missing": [e.describe() for e in verdict.missing],
        "unexpected": [{"expected": e.describe(), "leg": leg.describe()} for e, leg in verdict.unexpected],
        "wrong_count": [{"expected": e.describe(), "seen": n} for e, n in verdict.wrong_count],
        "parity": None
        if parity is None
        else {
            "ok": parity.ok,
            "compared": parity.compared,
            "unseen": [{"first_line": e.first_line, "why": why} for e, why in parity.unseen],
            "summary": parity.summary(),
        },
    }

"""The stack's own legs of one scenario (docs/hep.md): what the execute step collects from the target's HEP
captures, beside the log lines and on the same hub, judged against the plan's leg expectations; and the
JSON record of it.

Which legs a case expects is decided in the plan (harness.scenario.plan): the scenario's own
``expect.capture`` wherever the target captures, and where its capture is *complete* (HepCapture.complete)
and the call goes through the SBC, the profile outcome's ``capture`` block and a parity check — every
carrier<->SBC message captured once, byte exact, except the bytes Kamailio's core never reads as SIP
(harness.kazoo.siptrace), which the capture cannot hold and the record names.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from harness.kazoo.siptrace import core_reads
from harness.logs.hub import LogHub
from harness.logs.legs import Leg, LegVerdict, Roles, check_legs
from harness.net.exchange import Exchange
from harness.scenario.plan import Plan, Rendered
from harness.targets.target import Target

CAPTURE_GRACE = 1.0  # seconds after the exchange for captured legs to arrive (as the runner's LOG_GRACE)


def roles(target: Target, exchange: Exchange) -> Roles:
    """Which addresses are whom in this exchange on this target."""
    sbc = {target.sbc, *target.sbc_nodes.values()}
    return Roles(exchange.local, frozenset(sbc), frozenset({target.media} if target.media else ()))


async def check_capture(
    hub: LogHub, exchange: Exchange, target: Target, planned: Plan, rendered: Rendered, since: float
) -> LegVerdict | None:
    """The captured legs of ``exchange`` judged against the rendered expectations; None when the target
    has no capture."""
    captures = target.captures
    if not captures:
        return None
    return await check_legs(
        hub,
        exchange,
        roles(target, exchange),
        rendered.legs,
        since=since,
        deadline=time.time() + CAPTURE_GRACE,
        sources=[c.name for c in captures],
        parity_check=planned.parity,
        core_reads=functools.partial(
            core_reads, accept_no_content_length=target.release.sbc_accepts_tcp_without_content_length
        ),
    )


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
            "late": [leg.first_line for leg in parity.late],
            "summary": parity.summary(),
        },
    }

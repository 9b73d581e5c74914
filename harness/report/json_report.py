"""JSON report pieces. ``scenario_record`` (the lead's) embeds :func:`exchange_summary` beside
``Exchange.to_json()``: what the raw record leaves a reader to work out — one time-ordered message list,
the response timings and the retransmission count — computed once here."""

from __future__ import annotations

import re
from typing import Any

from harness.net.exchange import Exchange, WireEvent
from harness.report.ladder import outcome_text

_STATUS = re.compile(r"^SIP/[0-9]+\.[0-9]+ ([0-9]{3})")


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _first_received(exchange: Exchange, final: bool) -> float | None:
    for e in exchange.received:
        m = _STATUS.match(e.first_line)
        if m and (not final or int(m.group(1)) >= 200):
            return e.t
    return None


def _retransmissions(sent: list[WireEvent]) -> int:
    seen: set[bytes] = set()
    repeats = 0
    for e in sent:
        if e.data in seen:
            repeats += 1
        seen.add(e.data)
    return repeats


def exchange_summary(exchange: Exchange) -> dict[str, Any]:
    """Codes, timings and first lines of one exchange, for a JSON or HTML report."""
    return {
        "outcome": exchange.outcome,
        "outcome_text": outcome_text(exchange),
        "final_code": exchange.final_code,
        "provisional_codes": exchange.provisional_codes,
        "first_response_ms": _ms(_first_received(exchange, final=False)),
        "final_response_ms": _ms(_first_received(exchange, final=True)),
        "duration_ms": _ms(exchange.duration),
        "retransmissions": _retransmissions(exchange.sent),
        "messages": [
            {
                "t_ms": _ms(e.t),
                "direction": e.direction,
                "src": f"{e.src[0]}:{e.src[1]}",
                "dst": f"{e.dst[0]}:{e.dst[1]}",
                "first_line": e.first_line,
                "bytes": len(e.data),
            }
            for e in exchange.events
        ],
    }


__all__ = ["exchange_summary"]

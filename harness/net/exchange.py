"""The exchange record: everything one carrier transaction sent and received.

Produced by the carrier UA, consumed (read-only) by verdicts, the log correlator and the reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from harness.sip.errors import SipParseError
from harness.sip.message import Response, parse_message

Address = tuple[str, int]
Outcome = Literal["response", "silence", "unreachable", "error", "closed"]


@dataclass(frozen=True)
class WireEvent:
    """One message on the wire. ``t`` is seconds since the exchange started (monotonic clock),
    ``wall`` the epoch time it happened (to compare with log lines)."""

    direction: Literal["sent", "received"]
    t: float
    wall: float
    src: Address
    dst: Address
    transport: str  # "udp" | "tcp" | "tls"
    data: bytes

    @property
    def first_line(self) -> str:
        end = self.data.find(b"\r\n")
        if end < 0:
            end = self.data.find(b"\n")
        line = self.data if end < 0 else self.data[:end]
        return line[:200].decode("utf-8", "replace")

    def parsed(self) -> Any:
        """The parsed message, or None when the bytes do not parse."""
        try:
            return parse_message(self.data)
        except SipParseError:
            return None

    def to_json(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "t_ms": round(self.t * 1000, 3),
            "wall": self.wall,
            "src": f"{self.src[0]}:{self.src[1]}",
            "dst": f"{self.dst[0]}:{self.dst[1]}",
            "transport": self.transport,
            "first_line": self.first_line,
            "bytes": len(self.data),
        }


@dataclass
class Exchange:
    """One INVITE (or OPTIONS) transaction as the carrier saw it."""

    call_id: str | None
    method: str
    transport: str
    local: Address
    remote: Address
    started_wall: float
    events: list[WireEvent] = field(default_factory=list)
    outcome: Outcome = "silence"
    final: Response | None = None
    provisional: list[Response] = field(default_factory=list)
    error: str | None = None
    duration: float = 0.0
    ended_early: bool = False  # silence proven by an external signal (a log line) before the deadline
    challenged: bool = False  # a 407/401 was answered with credentials
    dialed: str | None = None  # the number under test, for the log correlator
    seed: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def sent(self) -> list[WireEvent]:
        return [e for e in self.events if e.direction == "sent"]

    @property
    def received(self) -> list[WireEvent]:
        return [e for e in self.events if e.direction == "received"]

    @property
    def final_code(self) -> int | None:
        return self.final.code if self.final is not None else None

    @property
    def provisional_codes(self) -> list[int]:
        return [r.code for r in self.provisional]

    @property
    def responses(self) -> list[Response]:
        out = []
        for e in self.received:
            m = e.parsed()
            if isinstance(m, Response):
                out.append(m)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "final": None if self.final is None else {"code": self.final.code, "reason": self.final.reason},
            "provisional": self.provisional_codes,
            "sent": [e.to_json() for e in self.sent],
            "received": [e.to_json() for e in self.received],
            "call_id": self.call_id,
            "method": self.method,
            "transport": self.transport,
            "local": f"{self.local[0]}:{self.local[1]}",
            "remote": f"{self.remote[0]}:{self.remote[1]}",
            "duration_ms": round(self.duration * 1000, 3),
            "ended_early": self.ended_early,
            "challenged": self.challenged,
            "error": self.error,
            "seed": self.seed,
        }


def outcome_text(exchange: Exchange) -> str:
    """One line: how the transaction ended (the ladders' last line, the records' ``outcome_text``)."""
    if exchange.outcome == "response" and exchange.final is not None:
        text = f"final {exchange.final.code} {exchange.final.reason}"
    elif exchange.outcome == "silence":
        text = "silence: no final response"
        if exchange.ended_early:
            text += " (ended early on an external signal)"
    else:
        text = exchange.outcome
    if exchange.error:
        text += f": {exchange.error}"
    return f"{text} after {exchange.duration * 1000:.1f} ms"

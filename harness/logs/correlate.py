"""Tie log lines to one exchange: by Call-ID (FreeSWITCH's channel UUID is the Call-ID), by the dialed
number, by the carrier's source address (``ip:port`` or the bare IP in the text), inside a time window
around the exchange. Lines that match none of these are kept as context, not thrown away."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.logs.line import LogLine
from harness.net.exchange import Exchange

WINDOW_BEFORE = 1.0  # seconds before the exchange started (clock skew between hosts, early writers)
WINDOW_AFTER = 5.0  # seconds after it ended (Kazoo apps log after the final response)


@dataclass
class Correlation:
    related: list[LogLine] = field(default_factory=list)
    context: list[LogLine] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)  # id(line) -> why it was tied to the exchange

    def reason(self, line: LogLine) -> str | None:
        return self.reasons.get(id(line))


def _bare_ip(ip: str) -> re.Pattern[str]:
    # 127.0.0.1 must not match inside 127.0.0.10 or 1127.0.0.1
    return re.compile(rf"(?<![\d.]){re.escape(ip)}(?!\d|\.\d)")


def number_forms(number: str) -> list[str]:
    """The ways a dialed number shows up in logs: as given, without '+', and the NANP national 10 digits."""
    forms = [number]
    digits = number.lstrip("+")
    if digits != number:
        forms.append(digits)
    if len(digits) == 11 and digits.startswith("1"):
        forms.append(digits[1:])
    return forms


@dataclass(frozen=True)
class Correlator:
    call_id: str | None
    numbers: tuple[str, ...]
    source_ip: str
    source_port: int
    start: float
    end: float

    @classmethod
    def for_exchange(
        cls, exchange: Exchange, *, before: float = WINDOW_BEFORE, after: float = WINDOW_AFTER
    ) -> Correlator:
        numbers = tuple(number_forms(exchange.dialed)) if exchange.dialed else ()
        started = exchange.started_wall
        return cls(
            exchange.call_id,
            numbers,
            exchange.local[0],
            exchange.local[1],
            started - before,
            started + exchange.duration + after,
        )

    def in_window(self, line: LogLine) -> bool:
        return self.start <= line.received <= self.end

    def reason(self, line: LogLine) -> str | None:
        """Why ``line`` belongs to the exchange, or None."""
        if self.call_id and (line.call_id == self.call_id or self.call_id in line.raw):
            return "call-id"
        if (
            f"{self.source_ip}:{self.source_port}" in line.raw
            or f"{self.source_ip} {self.source_port}" in line.raw
        ):
            return "source address"
        # Numbers of 5 digits or fewer would match timestamps and ports by chance.
        if any(
            len(n.lstrip("+")) > 5 and re.search(rf"(?<!\d){re.escape(n)}(?!\d)", line.raw)
            for n in self.numbers
        ):
            return "dialed number"
        if _bare_ip(self.source_ip).search(line.raw):
            return "source ip"
        return None


def correlate(
    lines: list[LogLine], exchange: Exchange, *, before: float = WINDOW_BEFORE, after: float = WINDOW_AFTER
) -> Correlation:
    """Split ``lines`` into those tied to ``exchange`` (within its window) and the rest (context)."""
    correlator = Correlator.for_exchange(exchange, before=before, after=after)
    out = Correlation()
    for line in lines:
        why = correlator.reason(line) if correlator.in_window(line) else None
        if why is None:
            out.context.append(line)
        else:
            out.related.append(line)
            out.reasons[id(line)] = why
    return out

"""The stack's own legs beside the carrier's: one text ladder with a column per role (carrier, SBC,
media, other), time running down. Each row says who saw the message: ``carrier`` (the harness's own
wire) or the HEP source that captured it, so "received, not relayed" reads as an arrow into the SBC
column with nothing leaving it. A pure function of the exchange and the legs (harness.logs.legs)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from harness.logs.legs import ROLES, Leg, Roles
from harness.net.exchange import Exchange

_COLUMN = 24  # characters between two role columns
_LEFT = 29  # the time and who saw it


@dataclass(frozen=True)
class _Row:
    t: float  # seconds since the exchange started (wall clocks: the capture agent's for legs)
    seen_by: str
    src: str
    dst: str
    label: str


def _label(first_line: str) -> str:
    """``INVITE`` for a request, ``407 Proxy Authentication Required`` for a response."""
    status = re.match(r"SIP/\d+\.\d+ (.*)", first_line)
    if status:
        return status.group(1)
    request = re.match(r"(\S+) \S+ SIP/", first_line)
    return request.group(1) if request else first_line


def _rows(exchange: Exchange, legs: Sequence[Leg], roles: Roles) -> list[_Row]:
    rows = [
        _Row(
            e.wall - exchange.started_wall,
            "carrier",
            roles.of(e.src) if e.direction == "received" else "carrier",
            roles.of(e.dst) if e.direction == "sent" else "carrier",
            _label(e.first_line),
        )
        for e in exchange.events
    ]
    rows += [
        _Row(
            leg.captured - exchange.started_wall,
            leg.line.source,
            leg.src_role,
            leg.dst_role,
            _label(leg.first_line),
        )
        for leg in legs
    ]
    return sorted(rows, key=lambda r: r.t)


def _arrow(row: _Row, columns: list[str]) -> str:
    width = _COLUMN * (len(columns) - 1) + 1
    cells = [" "] * width
    for i in range(len(columns)):
        cells[i * _COLUMN] = "|"
    a, b = columns.index(row.src), columns.index(row.dst)
    if a == b:  # a message between two addresses of one role: mark it in place
        text = f"{row.label} (within {row.src})"
        start = a * _COLUMN + 2
        cells[start : start + len(text)] = list(text[: width - start])
        return "".join(cells[:width]).rstrip()
    lo, hi = sorted((a, b))
    start, end = lo * _COLUMN + 1, hi * _COLUMN
    room = end - start - 3  # a dash, the label, at least one dash and the arrow head
    label = row.label if len(row.label) <= room else row.label[: max(room - 3, 0)] + "..."
    body = list(f"-{label}".ljust(end - start, "-"))
    if a < b:
        body[-1] = ">"
    else:
        body[0] = "<"
    cells[start:end] = body[: end - start]
    return "".join(cells).rstrip()


def stack_ladder(exchange: Exchange, legs: Sequence[Leg], roles: Roles) -> str:
    """The carrier's messages and the captured legs of one call, merged by time."""
    rows = _rows(exchange, legs, roles)
    used = {r.src for r in rows} | {r.dst for r in rows} | {"carrier", "sbc"}
    columns = [role for role in ROLES if role in used]
    head = " " * _LEFT + "".join(role.ljust(_COLUMN) for role in columns).rstrip()
    lines = [f"the stack's legs beside the carrier's (call-id {exchange.call_id or '-'})", head]
    for row in rows:
        lines.append(f"{row.t * 1000:9.1f} ms  {row.seen_by[:13]:<13}  {_arrow(row, columns)}")
    if not legs:
        lines.append(" " * _LEFT + "(no leg of this call was captured)")
    return "\n".join(lines)


__all__ = ["stack_ladder"]

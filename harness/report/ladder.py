"""Ladder (arrow) diagrams of one exchange: text for failure messages and the CLI, SVG for HTML reports.

Both are pure functions of :class:`~harness.net.exchange.Exchange`. The carrier (``exchange.local``) is
the left column and the target (``exchange.remote``) the right one; time runs down, in milliseconds since
the exchange started.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from harness.net.exchange import Address, Exchange, WireEvent, outcome_text

_ARROW_WIDTH = 64  # characters between the two columns in the text ladder


def _addr(a: Address) -> str:
    host = f"[{a[0]}]" if ":" in a[0] else a[0]
    return f"{host}:{a[1]}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms"


def _stray(event: WireEvent, exchange: Exchange) -> str:
    """A note when a message came from / went to another address than the exchange's peer."""
    peer = event.dst if event.direction == "sent" else event.src
    if peer == exchange.remote:
        return ""
    return f" ({'to' if event.direction == 'sent' else 'from'} {_addr(peer)})"


def _silence_until(exchange: Exchange) -> float | None:
    """When the diagram should show a silent tail: no final response and time passed after the last event."""
    if exchange.final is not None:
        return None
    last = exchange.events[-1].t if exchange.events else 0.0
    return max(exchange.duration, last)


def text_ladder(exchange: Exchange) -> str:
    """A readable arrow diagram of the exchange, one line per message."""
    left = f"carrier {_addr(exchange.local)}"
    right = f"target {_addr(exchange.remote)}"
    pad = " " * 14
    lines = [
        f"{exchange.method} call-id {exchange.call_id or '-'} over {exchange.transport}",
        f"{pad}{left}{' ' * max(1, _ARROW_WIDTH + 2 - len(left) - len(right))}{right}",
    ]
    for e in exchange.events:
        label = f" {e.first_line}{_stray(e, exchange)} "
        room = _ARROW_WIDTH - 4
        if len(label) > room:
            label = label[: room - 4] + "... "
        if e.direction == "sent":
            arrow = "|--" + label + "-" * (room - len(label)) + "->|"
        else:
            arrow = "|<-" + label + "-" * (room - len(label)) + "--|"
        lines.append(f"{_ms(e.t)}   {arrow}")
    until = _silence_until(exchange)
    if until is not None:
        lines.append(f"{_ms(until)}   ... silence until {until * 1000:.1f} ms")
    lines.append(f"outcome: {outcome_text(exchange)}")
    lines.extend(f"note: {n}" for n in exchange.notes)
    return "\n".join(lines)


# -- SVG ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LadderArrow:
    """One message of an SVG ladder: when (ms since the exchange started), from where to where, what."""

    t_ms: float
    src: str  # "ip:port"
    dst: str
    first_line: str
    direction: str  # "sent" | "received" (the carrier's point of view; colours the label)


@dataclass(frozen=True)
class DropMarker:
    """A log line that proved a silence: drawn on the lane of the element that logged it."""

    t_ms: float
    text: str  # "[kamailio] ... dropping insane message ..."


@dataclass(frozen=True)
class Ladder:
    """What an SVG ladder shows, independent of where it came from (an Exchange or its JSON record)."""

    title: str
    local: str  # the carrier's address: the first lane
    remote: str  # the target's address: the second lane
    transport: str
    method: str
    arrows: tuple[LadderArrow, ...]
    outcome: str  # outcome_text
    silence_until_ms: float | None = None  # no final response: the silent tail lasts until then
    drops: tuple[DropMarker, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def lanes(self) -> list[str]:
        """One lane per address, as sngrep and Homer draw it: carrier, target, then others as they appear."""
        lanes = [self.local, self.remote]
        for a in self.arrows:
            for address in (a.src, a.dst):
                if address not in lanes:
                    lanes.append(address)
        return lanes


def ladder_of(exchange: Exchange) -> Ladder:
    """The ladder of an exchange record (no drop markers: those come from the log verdict)."""
    return Ladder(
        title=f"{exchange.method} {exchange.call_id or '-'}: {outcome_text(exchange)}",
        local=_addr(exchange.local),
        remote=_addr(exchange.remote),
        transport=exchange.transport,
        method=exchange.method,
        arrows=tuple(
            LadderArrow(e.t * 1000, _addr(e.src), _addr(e.dst), e.first_line, e.direction)
            for e in exchange.events
        ),
        outcome=outcome_text(exchange),
        silence_until_ms=None if (until := _silence_until(exchange)) is None else until * 1000,
        notes=tuple(exchange.notes),
    )


@dataclass(frozen=True)
class _Layout:
    time_col: int = 86  # left margin holding each message's time
    lane_gap: int = 460  # between two lanes: room for a Request-URI
    top: int = 44
    row: int = 34
    char_width: float = 7.2  # approximate monospace advance at 12px, to shorten long labels

    def lane_x(self, index: int) -> float:
        return self.time_col + 70 + index * self.lane_gap

    def label_chars(self, span: float) -> int:
        return max(12, int((span - 16) / self.char_width))


def _text(x: float, y: float, text: str, *, anchor: str = "start", cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="{anchor}"{klass}>{escape(text)}</text>'


def _shorten(text: str, room: int) -> str:
    return text if len(text) <= room else text[: room - 3] + "..."


# scoped to the SVG's class: inline in an HTML page a <style> inside an <svg> applies to the whole page
_STYLE = (
    "<style>.ladder text{font-family:monospace;font-size:12px;fill:#222}.ladder .head{font-weight:bold}"
    ".ladder .t{fill:#666}.ladder .received{fill:#0b5394}.ladder .sent{fill:#38761d}"
    ".ladder .quiet{fill:#999;font-style:italic}.ladder .drop{fill:#b00020;font-weight:bold}"
    ".ladder .outcome{font-weight:bold}</style>"
)


def svg_of(ladder: Ladder, *, ident: str = "arrow") -> str:
    """A self-contained SVG document (inline style, no external fonts, scripts or links). Arrows are the
    ``<line class="arrow">`` elements, one per message; a silence ends in a dashed tail on the target's
    lane, with a red cross where a log line proved the drop. ``ident`` names the arrowhead marker: give
    each SVG of one HTML page its own (a marker inside a collapsed section would not be drawn elsewhere)."""
    lay = _Layout()
    lanes = ladder.lanes
    lane = {address: lay.lane_x(i) for i, address in enumerate(lanes)}
    width = int(lay.lane_x(len(lanes) - 1) + 190)
    tail = ladder.silence_until_ms is not None
    rows = len(ladder.arrows) + len(ladder.drops) + (1 if tail else 0)
    bottom = lay.top + rows * lay.row + 10
    height = bottom + 40 + 16 * len(ladder.notes)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" class="ladder">',
        f"<title>{escape(ladder.title)}</title>",
        f"<defs><marker id='{ident}' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='8' "
        "markerHeight='8' orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' fill='#333'/></marker>"
        "</defs>",
        _STYLE,
        f'<rect width="{width}" height="{height}" fill="#fff"/>',
        _text(10, 24, "time", cls="t"),
    ]
    for i, address in enumerate(lanes):
        name = "carrier" if i == 0 else "target" if i == 1 else "other"
        out.append(_text(lane[address], 24, f"{name} {address}", anchor="middle", cls="head"))
        out.append(
            f'<line class="lane" x1="{lane[address]:.0f}" y1="34" x2="{lane[address]:.0f}" y2="{bottom}" '
            'stroke="#888" stroke-width="1"/>'
        )
    out.append(_text(10, 42, f"{ladder.method} over {ladder.transport}", cls="t"))
    # messages and drop lines in time order, one row each
    rows_in_order: list[tuple[float, int, LadderArrow | DropMarker]] = [
        (a.t_ms, 0, a) for a in ladder.arrows
    ] + [(d.t_ms, 1, d) for d in ladder.drops]
    rows_in_order.sort(key=lambda r: (r[0], r[1]))  # stable: messages keep their recorded order
    y = float(lay.top)
    for t_ms, _, item in rows_in_order:
        y += lay.row
        out.append(_text(10, y + 4, f"{t_ms:.1f} ms", cls="t"))
        if isinstance(item, LadderArrow):
            x1, x2 = lane[item.src], lane[item.dst]
            room = lay.label_chars(abs(x2 - x1))
            label = _shorten(item.first_line, room)
            out.append(_text((x1 + x2) / 2, y - 6, label, anchor="middle", cls=item.direction))
            out.append(
                f'<line class="arrow" x1="{x1:.0f}" y1="{y:.0f}" x2="{x2:.0f}" y2="{y:.0f}" stroke="#333" '
                f'stroke-width="1.5" marker-end="url(#{ident})"/>'
            )
        else:
            x = lane[ladder.remote]
            out.append(
                f'<path class="drop-marker" d="M{x - 6:.0f},{y - 6:.0f} L{x + 6:.0f},{y + 6:.0f} '
                f'M{x - 6:.0f},{y + 6:.0f} L{x + 6:.0f},{y - 6:.0f}" stroke="#b00020" stroke-width="2.5"/>'
            )
            room = lay.label_chars(x - lane[ladder.local])  # left of the target's lane: it has room there
            text = _shorten(f"drop line: {item.text}", room)
            out.append(_text(x - 12, y + 4, text, anchor="end", cls="drop"))
    if tail:
        assert ladder.silence_until_ms is not None
        x = lane[ladder.remote]
        y_end = y + lay.row
        out.append(
            f'<line class="silence" x1="{x:.0f}" y1="{y + 8:.0f}" x2="{x:.0f}" y2="{y_end:.0f}" '
            'stroke="#b00020" stroke-width="3" stroke-dasharray="4 4"/>'
        )
        out.append(_text(10, y_end + 4, f"{ladder.silence_until_ms:.1f} ms", cls="t"))
        quiet = f"... silence until {ladder.silence_until_ms:.1f} ms"
        out.append(_text(x - 12, y_end - 6, quiet, anchor="end", cls="quiet"))
    out.append(_text(10, bottom + 26, f"outcome: {ladder.outcome}", cls="outcome"))
    for j, note in enumerate(ladder.notes):
        out.append(_text(10, bottom + 42 + j * 16, f"note: {note}", cls="t"))
    out.append("</svg>")
    return "\n".join(out)


def svg_ladder(exchange: Exchange) -> str:
    """The ladder of an exchange as a self-contained SVG document (see :func:`svg_of`)."""
    return svg_of(ladder_of(exchange))


__all__ = [
    "DropMarker",
    "Ladder",
    "LadderArrow",
    "ladder_of",
    "outcome_text",
    "svg_ladder",
    "svg_of",
    "text_ladder",
]

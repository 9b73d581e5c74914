"""Ladder (arrow) diagrams of one exchange: text for failure messages and the CLI, SVG for HTML reports.

Both are pure functions of :class:`~harness.net.exchange.Exchange`. The carrier (``exchange.local``) is
the left column and the target (``exchange.remote``) the right one; time runs down, in milliseconds since
the exchange started.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from harness.net.exchange import Address, Exchange, WireEvent

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


def outcome_text(exchange: Exchange) -> str:
    """One line: how the transaction ended."""
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
class _Layout:
    width: int = 820
    left_x: int = 200
    right_x: int = 760
    top: int = 70
    row: int = 34
    char_width: float = 7.2  # approximate monospace advance at 12px, to shorten long labels

    @property
    def label_chars(self) -> int:
        return int((self.right_x - self.left_x - 20) / self.char_width)


def _text(x: float, y: float, text: str, *, anchor: str = "start", cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="{anchor}"{klass}>{escape(text)}</text>'


def svg_ladder(exchange: Exchange) -> str:
    """The same ladder as a self-contained SVG document (no external fonts, scripts or links)."""
    lay = _Layout()
    rows = len(exchange.events) + (1 if _silence_until(exchange) is not None else 0)
    notes = exchange.notes
    title = f"{exchange.method} {exchange.call_id or '-'}: {outcome_text(exchange)}"
    height = lay.top + rows * lay.row + 50 + 16 * len(notes)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{lay.width}" height="{height}" '
        f'viewBox="0 0 {lay.width} {height}" role="img">',
        f"<title>{escape(title)}</title>",
        "<defs><marker id='arrow' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='8' markerHeight='8' "
        "orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' fill='#333'/></marker></defs>",
        "<style>text{font-family:monospace;font-size:12px;fill:#222}.head{font-weight:bold}"
        ".t{fill:#666}.recv{fill:#0b5394}.sent{fill:#38761d}.quiet{fill:#999;font-style:italic}"
        ".outcome{font-weight:bold}</style>",
        f'<rect width="{lay.width}" height="{height}" fill="#fff"/>',
        _text(lay.left_x, 24, f"carrier {_addr(exchange.local)}", anchor="middle", cls="head"),
        _text(lay.right_x - 60, 24, f"target {_addr(exchange.remote)}", anchor="middle", cls="head"),
        _text(lay.left_x, 42, f"{exchange.method} over {exchange.transport}", anchor="middle", cls="t"),
    ]
    bottom = lay.top + rows * lay.row + 10
    for x in (lay.left_x, lay.right_x - 60):
        out.append(f'<line x1="{x}" y1="50" x2="{x}" y2="{bottom}" stroke="#888" stroke-width="1"/>')
    x1, x2 = lay.left_x, lay.right_x - 60
    for i, e in enumerate(exchange.events):
        y = lay.top + i * lay.row + 16
        label = f"{e.first_line}{_stray(e, exchange)}"
        if len(label) > lay.label_chars:
            label = label[: lay.label_chars - 3] + "..."
        start, end = (x1, x2) if e.direction == "sent" else (x2, x1)
        out.append(_text(10, y + 4, f"{e.t * 1000:.1f} ms", cls="t"))
        out.append(_text((x1 + x2) / 2, y - 6, label, anchor="middle", cls=e.direction))
        out.append(
            f'<line x1="{start}" y1="{y}" x2="{end}" y2="{y}" stroke="#333" stroke-width="1.5" '
            f'marker-end="url(#arrow)"/>'
        )
    until = _silence_until(exchange)
    if until is not None:
        y = lay.top + len(exchange.events) * lay.row + 16
        out.append(_text(10, y + 4, f"{until * 1000:.1f} ms", cls="t"))
        out.append(f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="#bbb" stroke-dasharray="4 4"/>')
        out.append(
            _text(
                (x1 + x2) / 2, y - 6, f"... silence until {until * 1000:.1f} ms", anchor="middle", cls="quiet"
            )
        )
    out.append(_text(10, bottom + 26, f"outcome: {outcome_text(exchange)}", cls="outcome"))
    for j, note in enumerate(notes):
        out.append(_text(10, bottom + 42 + j * 16, f"note: {note}", cls="t"))
    out.append("</svg>")
    return "\n".join(out)


__all__ = ["outcome_text", "svg_ladder", "text_ladder"]

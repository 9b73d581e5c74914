"""What Kazoo's Kamailio can show of a call in its HEP capture (the siptrace module).

With ``trace_mode`` 1 (the lab, Kazoo 5.x's SIP_TRACE_ALL_ROLE) siptrace mirrors from the core's receive
and send events, before any script runs, so a message the script drops is still captured as received.
Two kinds of bytes never get that far (Kamailio 5.6 core/receive.c):

- the receive event runs only when ``sip_check_fline()`` accepts the first line: after leading blanks,
  ``SIP/2.0 `` (a status line), or a first line ending in `` SIP/2.0`` (a request line; nothing may
  follow the version, not even a blank). Garbage, ``SIP/7.0``, a request line with trailing blanks are
  read, dropped and never mirrored;
- on TCP a message reaches receive_msg() only once the stream reader has framed it: by Content-Length
  (none: "bad request"), and within ``tcp_rd_buf_size`` (Kazoo: 80,000 bytes; beyond it: "buffer
  overrun").

Kazoo's SIP_TRACE_ROLE is not such a capture: it calls sip_trace() from the request route, after the
sanity and ACL checks, so what those drop is never captured (docs/hep.md says what to switch on).
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.sip.framing import FramingError, StreamFramer

TCP_READ_BUFFER = 80_000  # tcp_rd_buf_size in Kazoo's configuration and in the lab's
_BLANKS = b" \t\r\n"
_VERSION = b"SIP/2.0"


def sip_first_line(data: bytes) -> bool:
    """Kamailio's ``sip_check_fline()``: a SIP/2.0 status line, or a request line ending in SIP/2.0."""
    start = len(data) - len(data.lstrip(_BLANKS))
    if len(data) - start < 10:
        return False
    if data.startswith(_VERSION + b" ", start):
        return True
    ends = [i for i in (data.find(b"\r", start), data.find(b"\n", start)) if i >= 0]
    if not ends:
        return False
    end = min(ends)
    return end >= 10 and data[end - 8 : end] == b" " + _VERSION


FIRST_LINE = "its first line is not a SIP/2.0 request or status line (core sip_check_fline)"
# what the core mirrors of one message sent, in order: the pieces it reads as messages and captures, and
# why that is not the message as sent (None: it is)
CoreRead = tuple[tuple[bytes, ...], "str | None"]


def core_reads(
    sent: Sequence[tuple[bytes, str, object]],
    *,
    stream_buffer: int = TCP_READ_BUFFER,
    accept_no_content_length: bool = False,
) -> list[CoreRead]:
    """What a complete Kamailio capture mirrors of each message sent as ``(data, transport, stream)``, in
    order. A datagram is one message. On a stream (one per ``stream`` key, e.g. the destination) the
    reader frames the bytes as they come: by Content-Length, or, with ``accept_no_content_length``
    (Kazoo 5.x's ``tcp_accept_no_cl=yes``), a message without it as its headers alone, the rest starting
    the next one; after a framing error, or a framed message the core cannot read, the reader closes the
    connection and reads nothing more."""
    framers: dict[tuple[str, object], StreamFramer] = {}
    closed: dict[tuple[str, object], str] = {}
    out: list[CoreRead] = []
    for data, transport, stream in sent:
        if transport not in ("tcp", "tls"):
            out.append(((data,), None) if sip_first_line(data) else ((), FIRST_LINE))
            continue
        key = (transport, stream)
        if key in closed:
            out.append(((), closed[key]))
            continue
        framer = framers.setdefault(
            key, StreamFramer(stream_buffer, accept_no_content_length=accept_no_content_length)
        )
        try:
            framed = framer.feed(data)
        except FramingError as exc:
            closed[key] = f"sent after Kamailio closed the stream ({exc.reason})"
            out.append(
                ((), f"Kamailio cannot frame it on the stream ({exc.reason}): it never reaches the core")
            )
            continue
        pieces = tuple(piece for piece in framed if sip_first_line(piece))
        if len(pieces) < len(framed):  # the core cannot read one: the reader closes the connection
            closed[key] = "sent after Kamailio closed the stream (it could not parse what it framed)"
        if framed == [data]:
            out.append((pieces, None if pieces else FIRST_LINE))
        elif not framed:
            out.append(((), "an incomplete message on the stream: it never reaches the core"))
        else:
            out.append(
                (
                    pieces,
                    f"the stream reader framed it as {len(framed)} message(s), not as sent"
                    + (
                        " (no Content-Length: its headers alone, tcp_accept_no_cl)"
                        if accept_no_content_length
                        else ""
                    ),
                )
            )
    return out

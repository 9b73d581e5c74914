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


def unmirrored_reason(data: bytes, transport: str, *, stream_buffer: int = TCP_READ_BUFFER) -> str | None:
    """None when a complete Kamailio capture mirrors ``data`` received over ``transport``; else why not."""
    if transport in ("tcp", "tls"):
        try:
            framed = StreamFramer(stream_buffer).feed(data)
        except FramingError as exc:
            return f"Kamailio cannot frame it on the stream ({exc.reason}): it never reaches the core"
        if not framed:
            return "an incomplete message on the stream: it never reaches the core"
    if not sip_first_line(data):
        return "its first line is not a SIP/2.0 request or status line (core sip_check_fline)"
    return None

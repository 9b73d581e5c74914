"""Framing SIP messages out of a byte stream (RFC 3261 §18.3: Content-Length is mandatory on streams)."""

from __future__ import annotations

import re

from harness.sip.errors import SipParseError
from harness.sip.uri import bounded_int

# the whole value to the line end (stripped later, with the CR of a CRLF), so "1, 2" is seen as bad
_CL = re.compile(rb"^(?:content-length|l)[ \t]*:(.*)$", re.I | re.M)
_HEAD_END = re.compile(rb"\r?\n\r?\n")


class FramingError(SipParseError):
    """The stream cannot be framed: the connection must be closed. ``reason`` is a short code."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(what)
        self.reason = reason  # "no-content-length" | "bad-content-length" | "too-large"
        self.framed: list[bytes] = []  # complete messages framed from the same feed() before the error


class StreamFramer:
    """Feed bytes from a TCP/TLS stream; take complete messages out.

    ``max_message`` caps one message (header and body); past it :class:`FramingError` with reason
    ``too-large`` is raised (Kamailio: ``buffer overrun``). Leading CRLF keep-alives are skipped.
    ``accept_no_content_length``: a message without a usable Content-Length has no body and what follows
    its headers is the next message (Kamailio's ``tcp_accept_no_cl=yes``), instead of an error.
    """

    def __init__(self, max_message: int | None = None, *, accept_no_content_length: bool = False) -> None:
        self._buf = bytearray()
        self.max_message = max_message
        self.accept_no_content_length = accept_no_content_length

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            try:
                msg = self._next()
            except FramingError as exc:
                exc.framed = out
                raise
            if msg is None:
                break
            out.append(msg)
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)

    def _next(self) -> bytes | None:
        while self._buf[:2] == b"\r\n" or self._buf[:1] == b"\n":
            del self._buf[: 2 if self._buf[:2] == b"\r\n" else 1]
        if not self._buf:
            return None
        end = _HEAD_END.search(self._buf)  # the first empty line, whichever line ends are used
        if end is None:
            if self.max_message is not None and len(self._buf) > self.max_message:
                raise FramingError(f"message headers exceed {self.max_message} bytes", "too-large")
            return None
        head_end, body_start = end.start(), end.end()
        head = bytes(self._buf[:head_end])
        # header lines only, not the start line
        values = [v.strip() for v in _CL.findall(head, head.find(b"\n") + 1)]
        if not values:
            if not self.accept_no_content_length:
                raise FramingError("Content-Length missing on a stream transport", "no-content-length")
            values = [b"0"]
        length = bounded_int(values[0].decode("ascii", "replace"), 2**32 - 1)
        if len(set(values)) > 1 or length is None:
            if not self.accept_no_content_length:
                raise FramingError(f"unusable Content-Length {values[0][:20]!r}", "bad-content-length")
            length = 0  # as if it had none (RFC 4475 ncl through Kazoo 5.x: dropped as insane, not closed)
        total = body_start + length
        if self.max_message is not None and total > self.max_message:
            raise FramingError(f"message of {total} bytes exceeds {self.max_message}", "too-large")
        if len(self._buf) < total:
            return None
        msg = bytes(self._buf[:total])
        del self._buf[:total]
        return msg

"""Framing SIP messages out of a byte stream (RFC 3261 §18.3: Content-Length is mandatory on streams)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.sip.errors import SipParseError

_CL = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\S*)[ \t]*$", re.I | re.M)


@dataclass
class FramingError(SipParseError):
    """The stream cannot be framed: the connection must be closed. ``reason`` is a short code."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(what)
        self.reason = reason  # "no-content-length" | "bad-content-length" | "too-large"


class StreamFramer:
    """Feed bytes from a TCP/TLS stream; take complete messages out.

    ``max_message`` caps one message (header and body); past it :class:`FramingError` with reason
    ``too-large`` is raised (Kamailio: ``buffer overrun``). Leading CRLF keep-alives are skipped.
    """

    def __init__(self, max_message: int | None = None) -> None:
        self._buf = bytearray()
        self.max_message = max_message

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            msg = self._next()
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
        head_end = self._buf.find(b"\r\n\r\n")
        sep = 4
        if head_end < 0:
            head_end = self._buf.find(b"\n\n")
            sep = 2
        if head_end < 0:
            if self.max_message is not None and len(self._buf) > self.max_message:
                raise FramingError(f"message headers exceed {self.max_message} bytes", "too-large")
            return None
        head = bytes(self._buf[:head_end])
        values = _CL.findall(head)
        if not values:
            raise FramingError("Content-Length missing on a stream transport", "no-content-length")
        if len(set(values)) > 1 or not values[0].isdigit():
            raise FramingError(f"unusable Content-Length {values[0][:20]!r}", "bad-content-length")
        total = head_end + sep + int(values[0])
        if self.max_message is not None and total > self.max_message:
            raise FramingError(f"message of {total} bytes exceeds {self.max_message}", "too-large")
        if len(self._buf) < total:
            return None
        msg = bytes(self._buf[:total])
        del self._buf[:total]
        return msg

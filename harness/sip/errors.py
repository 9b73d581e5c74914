"""The one exception type the SIP layer raises for bad input."""

from __future__ import annotations


class SipParseError(ValueError):
    """Malformed SIP input.

    ``what`` says what is wrong, ``offset`` is the byte offset in the message where it was found
    (or None when it concerns a header value), ``line`` the 1-based line number where known.
    Every parser and typed accessor in :mod:`harness.sip` raises this and nothing else for bad bytes.
    """

    def __init__(self, what: str, *, offset: int | None = None, line: int | None = None) -> None:
        self.what = what
        self.offset = offset
        self.line = line
        where = []
        if line is not None:
            where.append(f"line {line}")
        if offset is not None:
            where.append(f"byte {offset}")
        super().__init__(f"{what} ({', '.join(where)})" if where else what)

"""Field scanners over raw response bytes, for paths that handle thousands of responses per second.

:func:`harness.sip.message.parse_message` builds a full message (every header a segment object): right
for one scenario, too slow at load rates. These scanners read only what a client transaction needs —
the status code and reason, the top Via's branch, the raw value of one header — with regexes compiled
once from the same grammar (RFC 3261 §7.1 status line, §7.3.3 compact forms from
:mod:`harness.sip.headers`). They never raise: ``None`` means "not there or not readable", and the
caller falls back to the full parser or counts the message as stray.
"""

from __future__ import annotations

import re
from functools import cache

from harness.sip.headers import COMPACT

_STATUS = re.compile(rb"SIP/2\.0 ([1-6][0-9][0-9]) ?([^\r\n]*)\r?\n")
_BRANCH = re.compile(rb";[ \t]*branch[ \t]*=[ \t]*([^;,\s]+)", re.I)


def status(data: bytes) -> tuple[int, bytes] | None:
    """(code, status line without its line end) of a response; None for a request or garbage."""
    m = _STATUS.match(data)
    if m is None:
        return None
    return int(m.group(1)), data[: m.end()].rstrip(b"\r\n")


@cache
def _header(name: str) -> re.Pattern[bytes]:
    full = name.lower()
    names = [full] + [short for short, long in COMPACT.items() if long == full]
    alternatives = b"|".join(re.escape(n.encode()) for n in names)
    # a header line: after a line end, the name, optional blanks, the colon; the value to the line end
    return re.compile(rb"\n(?:" + alternatives + rb")[ \t]*:[ \t]*([^\r\n]*)", re.I)


def header(data: bytes, name: str) -> bytes | None:
    """The first ``name`` header's raw value (compact form too), without folding; None when absent."""
    m = _header(name).search(data, 0, _head_end(data))
    return m.group(1).rstrip(b" \t") if m else None


def first_header_line(data: bytes, name: str) -> tuple[int, int] | None:
    """Where the first ``name`` header line starts and where the next line starts; None when there is
    none, or when it is folded (its value goes on over the next line)."""
    m = _header(name).search(data, 0, _head_end(data))
    if m is None:
        return None
    end = data.find(b"\n", m.end()) + 1
    if end == 0 or data[end : end + 1] in (b" ", b"\t"):
        return None
    return m.start() + 1, end


def top_via_branch(data: bytes) -> bytes | None:
    """The branch parameter of the first Via header (the one a UAC put there)."""
    via = header(data, "via")
    return None if via is None else via_branch(via)


def via_branch(via: bytes) -> bytes | None:
    """The branch parameter of the first value in a Via header's value (or line)."""
    m = _BRANCH.search(via.split(b",", 1)[0])
    return m.group(1) if m else None


def _head_end(data: bytes) -> int:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        end = data.find(b"\n\n")
    return len(data) if end < 0 else end + 1

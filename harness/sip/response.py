"""Building a response to a request the way a UAS does (RFC 3261 §8.2.6)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from harness.sip.errors import SipParseError
from harness.sip.headers import parse_name_addr
from harness.sip.message import Request, Response, encode, parse_message

CRLF = "\r\n"
_TAG = re.compile(r";\s*tag\s*=", re.I)


def _has_tag(to_value: str) -> bool:
    try:
        return parse_name_addr(to_value).tag is not None
    except SipParseError:  # a broken To still gets answered (400s are responses too)
        # a tag inside <...> belongs to the URI, not to the header
        return bool(_TAG.search(to_value.rpartition(">")[2] if ">" in to_value else to_value))


def render_response(
    request: Request,
    code: int,
    reason: str,
    *,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    to_tag: str | None = None,
    content_type: str | None = None,
) -> bytes:
    """The bytes of a response to ``request``: every Via in order, From, To (``;tag=to_tag`` added when
    the To has none), Call-ID, CSeq, then ``headers``, then Content-Type (when given) and Content-Length.

    Headers missing from the request are left out rather than invented, so a 400 can answer a request
    without a To. Raises ValueError for a code outside 100..699 or a reason with a line end in it.
    """
    if not 100 <= code <= 699:
        raise ValueError(f"response code must be 100..699, not {code}")
    if "\r" in reason or "\n" in reason:
        raise ValueError(f"could not build a response from reason {reason!r}")
    lines = [f"SIP/2.0 {code} {reason}"]
    lines += [f"Via: {v}" for v in request.values("via")]
    from_ = request.get("from")
    if from_ is not None:
        lines.append(f"From: {from_}")
    to = request.get("to")
    if to is not None:
        if to_tag is not None and not _has_tag(to):
            to = f"{to};tag={to_tag}"
        lines.append(f"To: {to}")
    for name, key in (("Call-ID", "call-id"), ("CSeq", "cseq")):
        value = request.get(key)
        if value is not None:
            lines.append(f"{name}: {value}")
    lines += [f"{name}: {value}" for name, value in headers]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    return encode(CRLF.join(lines) + CRLF + CRLF) + body


def make_response(
    request: Request,
    code: int,
    reason: str,
    *,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    to_tag: str | None = None,
    content_type: str | None = None,
) -> Response:
    """:func:`render_response`, parsed (for callers that read or edit the response before sending)."""
    data = render_response(
        request, code, reason, headers=headers, body=body, to_tag=to_tag, content_type=content_type
    )
    msg = parse_message(data)
    if not isinstance(msg, Response):  # e.g. a header value with a line end in it
        raise ValueError(f"could not build a response from reason {reason!r}")
    return msg

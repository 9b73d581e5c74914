"""Where Kamailio 5.6's parser draws its lines, for messages the harness's own parser reads differently.

Found by sending the RFC 4475 corpus to the lab Kamailio (docs/conformance.md):

- ``parse_msg()`` (before any script) parses the start line and then the headers up to the first Via
  of a request (the second of a response), fully parsing each Via, To, CSeq and Content-Length met on
  the way. A failure there is "core parsing of SIP message failed": no answer, and over TCP the
  connection is closed.
- Header names may only use ``0-9A-Za-z-._+~`` (parse_hname2.c); a name with another token character
  (``!%*`'``) fails wherever it stands: before the first Via in the core, after it in sanity's full
  header parse (then the message is insane).
- A status code must be exactly three digits followed by a space; a CSeq folded over two lines has
  "no method" (its number is not range-checked there: sanity does that); a Via must be SIP/2.0.
- Trailing whitespace after the request line's version is accepted (the harness's parser refuses it).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from harness.sip.errors import SipParseError
from harness.sip.headers import canonical_name, parse_name_addr, split_commas
from harness.sip.message import Header, Request, SipMessage

HEADER_NAME = re.compile(r"[0-9A-Za-z._+~-]+")  # parse_hname2.c _ksr_hname_chars_list
STATUS_LINE = re.compile(r"SIP/2\.0 [0-9]{3}( |$)")
CSEQ = re.compile(r"\s*[0-9]+\s+[^\s]+\s*")
VIA_PROTOCOL = re.compile(r"SIP\s*/\s*2\.0\s*/", re.I)
URI_SCHEMES = ("sip", "sips", "tel", "tels", "urn")  # parse_uri.c


def tolerate_start_line(data: bytes) -> bytes | None:
    """``data`` with the blanks after the start line's last token removed, or None when it has none."""
    end = data.find(b"\n")
    if end < 0:
        return None
    line = data[:end].rstrip(b"\r")
    stripped = line.rstrip(b" \t")
    if stripped == line:
        return None
    return stripped + data[len(line) :]


def _to_failure(header: Header) -> str | None:
    parse_name_addr(header.value)
    return None


def _cseq_failure(header: Header) -> str | None:
    # the number is kept as text (no size limit here); a fold before the method loses it
    folded = b"\n" in header.raw.rstrip(b"\r\n")
    return "bad cseq" if folded or not CSEQ.fullmatch(header.value) else None


def _content_length_failure(header: Header) -> str | None:
    return None if header.value.strip().isdigit() else "bad content_length header"


def _via_failure(header: Header) -> str | None:
    return None if all(VIA_PROTOCOL.match(item) for item in split_commas(header.value)) else "bad via"


_VALUE_CHECKS: dict[str, Callable[[Header], str | None]] = {
    "to": _to_failure,
    "cseq": _cseq_failure,
    "content-length": _content_length_failure,
    "via": _via_failure,
}


@functools.lru_cache(maxsize=1024)  # a handful of names, met in every message
def _name_rule(name: str) -> tuple[str | None, str, Callable[[Header], str | None] | None]:
    """For a header name: the failure of the name itself, its canonical key, and its value's check."""
    if not HEADER_NAME.fullmatch(name):
        return f"bad header field [{name}]", "", None
    key = canonical_name(name)
    return None, key, _VALUE_CHECKS.get(key)


def _header_failure(header: Header) -> str | None:
    """Why Kamailio's get_hdr_field() refuses this header, or None (only To, CSeq, Content-Length and
    Via have their value parsed there)."""
    failure, key, check = _name_rule(header.name)
    if failure is not None or check is None:
        return failure
    try:
        return check(header)
    except SipParseError:
        return f"bad {key} header"


def core_parse_failure(message: SipMessage) -> str | None:
    """Why Kamailio's ``parse_msg()`` fails on ``message`` (see the module doc), or None."""
    if not isinstance(message, Request) and not STATUS_LINE.match(message.first_line):
        return "bad status line"
    vias_needed = 1 if isinstance(message, Request) else 2
    seen = 0
    for header in message.headers:
        failure = _header_failure(header)
        if failure is not None:
            return failure
        if canonical_name(header.name) == "via":
            seen += len(split_commas(header.value))
            if seen >= vias_needed:
                break
    return None


def full_parse_failure(message: SipMessage) -> str | None:
    """Why ``parse_headers(HDR_EOH)`` (sanity's required-headers check) fails, or None."""
    for header in message.headers:
        failure = _header_failure(header)
        if failure is not None:
            return failure
    if message.count("content-length") > 1:
        return "duplicate Content-Length header field"
    return None


def uri_scheme_failure(message: Request) -> str | None:
    """sanity's URI check (uri_checks 7): From and To must hold URIs Kamailio's parse_uri() knows."""
    for name in ("from", "to"):
        try:
            scheme = parse_name_addr(message.values(name)[0]).uri.scheme.lower()
        except (SipParseError, IndexError):
            continue  # a missing or unparsable header fails the required-headers check instead
        if scheme not in URI_SCHEMES:
            return f"invalid {name.capitalize()} header or uri"
    return None

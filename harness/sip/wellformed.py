"""Is this request well formed? The defects an element's sanity checks would find in an outgoing request,
judged on the bytes alone (RFC 3261), so that a send gate can tell a malformed message from a proper one
whatever produced it — a mutator, a captured message, or a scenario's own header overrides.
"""

from __future__ import annotations

from harness.sip.errors import SipParseError
from harness.sip.message import Request, parse_message, version_ok

# RFC 3261 §8.1.1: the headers every request carries; the first four exactly once.
SINGLE = ("to", "from", "call-id", "cseq")
REQUIRED = (*SINGLE, "via", "max-forwards")
SCHEMES = ("sip", "sips", "tel")
# RFC 3261 §18.1.1: a request within 200 bytes of the path MTU, or over 1300 bytes without one, must not
# go over UDP; over a stream, Kamailio's read buffer (kazoo-behaviour.md §4) is the bound.
UDP_SIZE_LIMIT = 1300
STREAM_SIZE_LIMIT = 65_535


def defects(data: bytes, transport: str = "udp") -> tuple[str, ...]:
    """What is wrong with ``data`` as a request sent over ``transport``: () when it is well formed."""
    limit = UDP_SIZE_LIMIT if transport == "udp" else STREAM_SIZE_LIMIT
    found: list[str] = []
    if len(data) > limit:
        found.append(f"{len(data)} bytes, over the {limit}-byte limit for {transport.upper()}")
    try:
        message = parse_message(data)
    except SipParseError as exc:
        return (*found, f"does not parse as SIP: {exc}")
    if not isinstance(message, Request):
        return (*found, "a response, not a request")
    if message.version != "SIP/2.0" or not version_ok(message.version):
        found.append(f"SIP version {message.version!r}, not SIP/2.0")
    scheme = message.uri_text.partition(":")[0].lower()
    if scheme not in SCHEMES:
        found.append(f"Request-URI scheme {scheme!r}")
    for name in REQUIRED:
        if not message.has(name):
            found.append(f"no {name} header")
    for name in SINGLE:
        if len(message.all(name)) > 1:
            found.append(f"{len(message.all(name))} {name} headers")
    found += _values(message)
    return tuple(found)


def _values(message: Request) -> list[str]:
    found: list[str] = []
    checks = (
        ("Via", lambda: message.top_via),
        ("From", lambda: message.from_),
        ("To", lambda: message.to),
        ("Request-URI", lambda: message.uri),
    )
    for name, read in checks:
        try:
            read()
        except SipParseError as exc:
            found.append(f"bad {name}: {exc.what}")
    if message.has("cseq") and len(message.all("cseq")) == 1:
        try:
            cseq = message.cseq
            if cseq.method != message.method:
                found.append(f"CSeq method {cseq.method} is not the request's {message.method}")
        except SipParseError as exc:
            found.append(f"bad CSeq: {exc.what}")
    if message.has("max-forwards"):
        try:
            hops = message.max_forwards
            if hops is None or not 0 <= hops <= 255:
                found.append(f"Max-Forwards {hops} out of range")
        except SipParseError as exc:
            found.append(f"bad Max-Forwards: {exc.what}")
    try:
        length = message.content_length
    except SipParseError as exc:
        found.append(f"bad Content-Length: {exc.what}")
    else:
        if length is not None and length != len(message.body):
            found.append(f"Content-Length {length} but a {len(message.body)}-byte body")
        if length is None and message.body:
            found.append("a body without Content-Length")
    return found

"""Typed views of header values (RFC 3261 §20). Pure functions of text; errors are SipParseError."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from harness.sip.errors import SipParseError
from harness.sip.uri import SipUri, bounded_int, parse_uri

_T = TypeVar("_T")

# RFC 3261 §7.3.3 compact forms, and the canonical spelling used when the harness writes a header.
COMPACT = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "r": "refer-to",
    "b": "referred-by",
    "o": "event",
    "u": "allow-events",
    "x": "session-expires",
    "y": "identity",
    "a": "accept-contact",
    "j": "reject-contact",
    "d": "request-disposition",
    "n": "identity-info",
}

PRETTY = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
}


@functools.lru_cache(maxsize=4096)  # hot: every header lookup canonicalizes every header's name
def canonical_name(name: str) -> str:
    """Lower-case full header name; compact forms expanded (``v`` -> ``via``)."""
    low = name.strip().lower()
    return COMPACT.get(low, low)


def pretty_name(name: str) -> str:
    """The conventional spelling of a header name (``call-id`` -> ``Call-ID``)."""
    canon = canonical_name(name)
    return PRETTY.get(canon) or "-".join(p.capitalize() for p in canon.split("-"))


def split_commas(value: str) -> list[str]:
    """Split a header value on commas outside quotes and angle brackets (RFC 3261 §7.3.1)."""
    if '"' not in value and "<" not in value:  # nothing to be inside of: a plain split says the same
        return [p for p in map(str.strip, value.split(",")) if p]
    parts: list[str] = []
    buf: list[str] = []
    quoted = False
    angle = 0
    escape = False
    for ch in value:
        if escape:
            buf.append(ch)
            escape = False
            continue
        if quoted and ch == "\\":
            escape = True
            buf.append(ch)
            continue
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            angle += 1
        elif not quoted and ch == ">":
            angle = max(0, angle - 1)
        if ch == "," and not quoted and angle == 0:
            parts.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
    if quoted:
        raise SipParseError(f"unterminated quoted string in {value[:60]!r}")
    parts.append("".join(buf).strip())
    return [p for p in parts if p]


def _params(text: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    if not text:
        return out
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        name, eq, val = part.partition("=")
        out[name.strip().lower()] = val.strip().strip('"') if eq else None
    return out


@dataclass(frozen=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...;rport``."""

    protocol: str
    transport: str
    host: str
    port: int | None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | bool | None:
        """None when absent, True when present without a value, the port number when filled in."""
        if "rport" not in self.params:
            return None
        val = self.params["rport"]
        if val is None or val == "":
            return True
        port = bounded_int(val, 65535)
        if port is None:
            raise SipParseError(f"bad rport {val[:20]!r}")
        return port


_CSEQ = re.compile(r"\s*([0-9]{1,10})\s+([A-Za-z0-9.!%*_+`'~-]+)\s*")
_VIA = re.compile(
    r"^\s*([A-Za-z0-9.!%*_+`'~-]+\s*/\s*[0-9.]+)\s*/\s*([A-Za-z0-9.!%*_+`'~-]+)\s+"
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-_]+)(?:\s*:\s*([0-9]+))?\s*((?:;.*)?)$",
    re.S,
)


def parse_via(value: str) -> list[Via]:
    """The Via values of one Via header. A value recurs as a request and its answers pass each element
    (each adds its own and parses the others'), so the parse is kept: the Via objects are shared,
    never change their ``params``."""
    return list(_parse_via(value))


@functools.lru_cache(maxsize=4096)
def _parse_via(value: str) -> tuple[Via, ...]:
    vias = []
    for item in split_commas(value):
        m = _VIA.match(item)
        if not m:
            raise SipParseError(f"bad Via value {item[:80]!r}")
        port = bounded_int(m.group(4), 65535) if m.group(4) else None
        if m.group(4) and port is None:
            raise SipParseError(f"bad Via port {m.group(4)[:20]!r}")
        fields = {
            "protocol": "".join(m.group(1).split()),  # "SIP / 2.0" -> "SIP/2.0"
            "transport": m.group(2).upper(),
            "host": m.group(3),
            "port": port,
            "params": _params(m.group(5)),
        }
        vias.append(built(Via, fields))
    return tuple(vias)


def built(cls: type[_T], fields: Mapping[str, object]) -> _T:
    """An instance of the frozen dataclass ``cls`` holding ``fields``, as its ``__init__`` would make it
    but without that cost (an ``object.__setattr__`` per field: 2 us for a parsed message) on the
    parsers' hot paths. Only for classes without ``__post_init__``, given every field."""
    instance = object.__new__(cls)
    instance.__dict__.update(fields)
    return instance


@dataclass(frozen=True)
class NameAddr:
    """From/To/Contact/Route value: optional display name, a URI, header parameters (tag...)."""

    display: str | None
    uri: SipUri
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")


_QUOTED_DISPLAY = re.compile(r'^\s*"((?:[^"\\]|\\.)*)"\s*<([^>]*)>(.*)$', re.S)
_TOKEN_DISPLAY = re.compile(r"^\s*([^<\"]*?)\s*<([^>]*)>(.*)$", re.S)


@functools.lru_cache(maxsize=4096)  # the same To and Contact values recur call after call
def parse_name_addr(value: str) -> NameAddr:
    """Parse a name-addr or addr-spec (RFC 3261 §20.10, §20.20, §20.39). The result may be shared
    with other callers: never change its ``params``."""
    text = value.strip()
    if not text:
        raise SipParseError("empty address header")
    if text.startswith('"') and not _QUOTED_DISPLAY.match(text):
        raise SipParseError(f"unterminated or bad quoted display name in {text[:60]!r}")
    m = _QUOTED_DISPLAY.match(text) or _TOKEN_DISPLAY.match(text)
    if m:
        display = m.group(1) or None
        uri = parse_uri(m.group(2))
        rest = m.group(3).strip()
        if rest and not rest.startswith(";"):
            raise SipParseError(f"unexpected text after URI in {text[:60]!r}")
        return NameAddr(display, uri, _params(rest))
    if "<" in text or ">" in text:
        raise SipParseError(f"unbalanced angle brackets in {text[:60]!r}")
    # addr-spec: parameters after the first ';' belong to the header, not the URI
    uri_text, _, rest = text.partition(";")
    return NameAddr(None, parse_uri(uri_text), _params(rest))


@dataclass(frozen=True)
class CSeq:
    number: int
    method: str


def parse_cseq(value: str) -> CSeq:
    m = _CSEQ.fullmatch(value)
    if not m or int(m.group(1)) >= 2**31:
        raise SipParseError(f"bad CSeq {value[:60]!r}")
    return CSeq(int(m.group(1)), m.group(2))


def parse_int(name: str, value: str, maximum: int = 2**32 - 1) -> int:
    parsed = bounded_int(value.strip(), maximum)
    if parsed is None:
        raise SipParseError(f"bad {name} value {value[:40]!r}")
    return parsed


@dataclass(frozen=True)
class Challenge:
    """WWW-/Proxy-Authenticate or Authorization value: scheme and auth-params."""

    scheme: str
    params: dict[str, str]


def parse_challenge(value: str) -> Challenge:
    text = value.strip()
    scheme, _, rest = text.partition(" ")
    if not scheme:
        raise SipParseError("empty authentication header")
    params: dict[str, str] = {}
    for item in split_commas(rest):
        name, eq, val = item.partition("=")
        if not eq:
            raise SipParseError(f"bad auth-param {item[:40]!r}")
        val = val.strip()
        if val.startswith('"'):
            if len(val) < 2 or not val.endswith('"'):
                raise SipParseError(f"unterminated quoted auth-param {item[:40]!r}")
            val = val[1:-1].replace('\\"', '"')
        params[name.strip().lower()] = val
    return Challenge(scheme, params)


def parse_tags(values: list[str]) -> list[str]:
    """Option tags from Require/Supported/Unsupported/Proxy-Require headers (all occurrences)."""
    tags: list[str] = []
    for v in values:
        tags.extend(t.strip() for t in v.split(",") if t.strip())
    return tags

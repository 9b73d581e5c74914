"""SIP requests and responses that keep their raw bytes (RFC 3261 §7).

A parsed message is a list of byte segments: the start line, one segment per header (a folded header
keeps its continuation lines), the blank line, and the body. Serializing concatenates the segments,
so a parsed message re-serializes byte for byte whatever its spacing, folding, compact names or
repetitions. Edits return a new message and rewrite only the segments they touch.

Typed accessors parse header values on demand and raise :class:`SipParseError` when a value is bad;
so does :func:`parse_message` for bytes that are not a SIP message. Nothing else escapes. A message
is immutable, so its header index and the values its accessors parsed are kept once computed (the
model's roles read the same Via, From, To and CSeq several times per message); the lists returned
are fresh copies.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Generic, NamedTuple, TypeVar, overload

from harness.sip.errors import SipParseError
from harness.sip.headers import (
    Challenge,
    CSeq,
    NameAddr,
    Via,
    built,
    canonical_name,
    parse_challenge,
    parse_cseq,
    parse_int,
    parse_name_addr,
    parse_tags,
    parse_via,
    pretty_name,
)
from harness.sip.uri import SipUri, parse_uri

_TOKEN = rb"[A-Za-z0-9.!%*_+`'~\-]+"
_REQUEST_LINE = re.compile(rb"^(" + _TOKEN + rb") (\S+) (SIP/[0-9]+\.[0-9]+)$")
_STATUS_LINE = re.compile(rb"^(SIP/[0-9]+\.[0-9]+) ([0-9]{3}) ?(.*)$", re.S)
_HEADER_NAME = re.compile(rb"^(" + _TOKEN + rb")[ \t]*:")
# header names as written -> canonical keys, for the names every message carries
_KEYS = {name: canonical_name(name) for name in (
    "Via", "v", "From", "f", "To", "t", "Call-ID", "i", "CSeq", "Contact", "m", "Max-Forwards",
    "Content-Type", "c", "Content-Length", "l", "User-Agent", "Record-Route", "Route", "Allow",
    "Supported", "k", "Server", "X-AUTH-IP", "X-AUTH-PORT")}  # fmt: skip
_PLAIN_NAME = re.compile("(" + _TOKEN.decode() + r")[ \t]*\Z")  # what stands before a plain line's colon
_PLAIN_NAMES: dict[str, tuple[str, str]] = {}  # name as written -> (name, canonical key)
_PLAIN_NAMES_MAX = 512
# start line as written -> its message class and start-line fields (never changed once made)
_Start = tuple[type["Request"] | type["Response"], dict[str, Any]]
_PLAIN_STARTS: dict[bytes, _Start] = {}
_VERSION = re.compile(rb"^SIP/[0-9]+\.[0-9]+$")


_T = TypeVar("_T")
_R = TypeVar("_R")


class _memo(Generic[_T, _R]):
    """functools.cached_property without its lock (3.11 takes a class-wide lock on every first read,
    a cost the hot path pays per header): the value is computed once and kept in the instance."""

    def __init__(self, function: Callable[[_T], _R]) -> None:
        self.function = function
        self.name = function.__name__
        self.__doc__ = function.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: Any = None) -> _memo[_T, _R]: ...
    @overload
    def __get__(self, instance: _T, owner: Any = None) -> _R: ...
    def __get__(self, instance: _T | None, owner: Any = None) -> _R | _memo[_T, _R]:
        if instance is None:
            return self
        value = self.function(instance)
        instance.__dict__[self.name] = value  # frozen dataclasses forbid setattr, not their __dict__
        return value


def decode(data: bytes) -> str:
    """Header text: UTF-8, with undecodable bytes kept (surrogateescape) so nothing is lost."""
    return data.decode("utf-8", "surrogateescape")


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


class Header(NamedTuple):
    """One header as it stood on the wire (immutable; a tuple, the cheapest object to make, since every
    parsed message makes one per header).

    ``raw`` holds the header line with its continuation lines and line ends; ``name`` is the name as
    written, ``value`` the unfolded value with surrounding whitespace removed.
    """

    raw: bytes
    name: str
    value: str

    @property
    def key(self) -> str:
        """Canonical lower-case name (compact forms expanded)."""
        return canonical_name(self.name)


def _line_end(data: bytes, start: int) -> tuple[int, int]:
    """Index of the next line end at or after ``start`` and its length (CRLF, or a bare LF)."""
    i = data.find(b"\n", start)
    if i < 0:
        return -1, 0
    if i > start and data[i - 1 : i] == b"\r":
        return i - 1, 2
    return i, 1


@dataclass(frozen=True)
class SipMessage:
    start_line: bytes  # without its line end
    start_end: bytes  # the start line's line end as written
    headers: tuple[Header, ...]
    blank: bytes  # the empty line that ends the headers (b"" when the message has none)
    body: bytes

    # -- serialization ------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        head = b"".join([h.raw for h in self.headers])
        return self.start_line + self.start_end + head + self.blank + self.body

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    @property
    def first_line(self) -> str:
        return decode(self.start_line)

    @property
    def version(self) -> str:
        raise NotImplementedError

    # -- raw header access --------------------------------------------------------------------
    @_memo
    def _by_key(self) -> dict[str, list[Header]]:  # never handed out: all() copies
        index: dict[str, list[Header]] = {}
        for h in self.headers:
            key = canonical_name(h.name)  # (h.key, without the property call)
            found = index.get(key)
            if found is None:
                index[key] = [h]
            else:
                found.append(h)
        return index

    def _found(self, name: str) -> list[Header] | None:
        # the index's keys are canonical, so a name that is one itself ("call-id") needs no
        # canonicalizing: the hot callers pass such names, everyone else pays one lookup more
        index = self._by_key
        found = index.get(name)
        return found if found is not None else index.get(canonical_name(name))

    def all(self, name: str) -> list[Header]:
        return list(self._found(name) or ())

    def values(self, name: str) -> list[str]:
        return [h.value for h in self._found(name) or ()]

    def get(self, name: str) -> str | None:
        """The first value of a header, or None."""
        found = self._found(name)
        return found[0].value if found else None

    def has(self, name: str) -> bool:
        return self._found(name) is not None

    def count(self, name: str) -> int:
        """How many times the header occurs."""
        found = self._found(name)
        return len(found) if found is not None else 0

    def _one(self, name: str) -> str:
        v = self.get(name)
        if v is None:
            raise SipParseError(f"missing {pretty_name(name)} header")
        return v

    # -- typed accessors ----------------------------------------------------------------------
    @_memo
    def _vias(self) -> tuple[Via, ...]:
        out: list[Via] = []
        for v in self.values("via"):
            out.extend(parse_via(v))
        return tuple(out)

    @property
    def vias(self) -> list[Via]:
        return list(self._vias)

    @property
    def top_via(self) -> Via:
        vias = self._vias
        if not vias:
            raise SipParseError("missing Via header")
        return vias[0]

    @_memo
    def from_(self) -> NameAddr:
        return parse_name_addr(self._one("from"))

    @_memo
    def to(self) -> NameAddr:
        return parse_name_addr(self._one("to"))

    @property
    def contact(self) -> NameAddr | None:
        v = self.get("contact")
        return None if v is None or v.strip() == "*" else parse_name_addr(v)

    @_memo
    def call_id(self) -> str:
        return self._one("call-id")

    @_memo
    def cseq(self) -> CSeq:
        return parse_cseq(self._one("cseq"))

    @property
    def max_forwards(self) -> int | None:
        v = self.get("max-forwards")
        return None if v is None else parse_int("Max-Forwards", v, 255)

    @property
    def content_length(self) -> int | None:
        """The Content-Length value; None when absent; SipParseError when bad or given twice."""
        vals = self.values("content-length")
        if not vals:
            return None
        if len(vals) > 1:
            raise SipParseError(f"{len(vals)} Content-Length headers")
        return parse_int("Content-Length", vals[0])

    @property
    def require(self) -> list[str]:
        return parse_tags(self.values("require"))

    @property
    def proxy_require(self) -> list[str]:
        return parse_tags(self.values("proxy-require"))

    @property
    def supported(self) -> list[str]:
        return parse_tags(self.values("supported"))

    @property
    def unsupported(self) -> list[str]:
        return parse_tags(self.values("unsupported"))

    @property
    def proxy_authenticate(self) -> Challenge | None:
        v = self.get("proxy-authenticate")
        return None if v is None else parse_challenge(v)

    @property
    def www_authenticate(self) -> Challenge | None:
        v = self.get("www-authenticate")
        return None if v is None else parse_challenge(v)

    @property
    def user_agent(self) -> str | None:
        return self.get("user-agent")

    @property
    def content_type(self) -> str | None:
        return self.get("content-type")

    # -- edits (each returns a new message) ----------------------------------------------------
    def _header_raw(self, name: str, value: str) -> bytes:
        return encode(f"{name}: {value}") + self.start_end

    def with_headers(self, headers: Iterable[Header]) -> SipMessage:
        return replace(self, headers=tuple(headers))

    def replace_header(self, name: str, value: str) -> SipMessage:
        """Set the first ``name`` header to ``value`` (keeping its spelling and place), or append it."""
        key = canonical_name(name)
        out = list(self.headers)
        for i, h in enumerate(out):
            if h.key == key:
                out[i] = Header(self._header_raw(h.name, value), h.name, value)
                return self.with_headers(out)
        return self.add_header(name, value)

    def add_header(self, name: str, value: str, *, top: bool = False) -> SipMessage:
        new = Header(self._header_raw(name, value), name, value)
        return self.with_headers((new, *self.headers) if top else (*self.headers, new))

    def insert_header_before(self, before: str, name: str, value: str) -> SipMessage:
        """Insert a header just before the first ``before`` header (prepend when there is none)."""
        key = canonical_name(before)
        new = Header(self._header_raw(name, value), name, value)
        out = list(self.headers)
        for i, h in enumerate(out):
            if h.key == key:
                out.insert(i, new)
                return self.with_headers(out)
        return self.with_headers((new, *out))

    def remove_headers(self, name: str) -> SipMessage:
        key = canonical_name(name)
        return self.with_headers(h for h in self.headers if h.key != key)

    def remove_first(self, name: str) -> SipMessage:
        key = canonical_name(name)
        out = list(self.headers)
        for i, h in enumerate(out):
            if h.key == key:
                del out[i]
                break
        return self.with_headers(out)

    def with_body(self, body: bytes, *, content_length: bool = True) -> SipMessage:
        """Replace the body; by default set Content-Length to match."""
        msg: SipMessage = replace(self, body=body, blank=self.blank or self.start_end)
        if content_length:
            msg = msg.replace_header("Content-Length", str(len(body)))
        return msg

    def with_start_line(self, line: bytes) -> SipMessage:
        return replace(self, start_line=line)


@dataclass(frozen=True)
class Request(SipMessage):
    method: str = ""
    uri_text: str = ""
    sip_version: str = ""

    @property
    def version(self) -> str:
        return self.sip_version

    @_memo
    def uri(self) -> SipUri:
        return parse_uri(self.uri_text)


@dataclass(frozen=True)
class Response(SipMessage):
    code: int = 0
    reason: str = ""
    sip_version: str = ""

    @property
    def version(self) -> str:
        return self.sip_version


def parse_message(data: bytes) -> Request | Response:
    """Parse one SIP message from ``data``: a datagram, or one message framed from a stream.

    The body is everything after the blank line (Content-Length is checked by the element that
    receives the message, not here). Raises :class:`SipParseError` for anything that is not a SIP
    start line followed by well-formed header lines.
    """
    try:
        return _parse(data)
    except SipParseError:
        raise
    except Exception as exc:  # defensive: a parser bug must surface as the documented error
        raise SipParseError(f"unparsable message: {type(exc).__name__}: {exc}") from exc


def _parse(data: bytes) -> Request | Response:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SipParseError("message must be bytes")
    data = bytes(data)
    plain = _parse_plain(data)  # (it refuses a message of blanks: there is no start line)
    if plain is not None:
        return plain
    if not data.strip():
        raise SipParseError("empty message", offset=0, line=1)
    return _parse_lines(data)


def _parse_lines(data: bytes) -> Request | Response:
    """The general parser: any line ends, folded headers, errors with their offset and line."""
    end, n = _line_end(data, 0)
    if end < 0:
        raise SipParseError("no line end after the start line", offset=len(data), line=1)
    start_line, start_end = data[:end], data[end : end + n]
    cls, fields = _parse_start_line(start_line)
    headers: list[Header] = []
    pos = end + n
    line_no = 2
    blank = b""
    while True:
        if pos >= len(data):
            raise SipParseError("headers not ended by an empty line", offset=pos, line=line_no)
        end, n = _line_end(data, pos)
        if end < 0:
            raise SipParseError("headers not ended by an empty line", offset=pos, line=line_no)
        if end == pos:  # the empty line
            blank = data[pos : pos + n]
            pos += n
            break
        first = data[pos:end]
        hm = _HEADER_NAME.match(first)
        if not hm:
            if first[:1] in (b" ", b"\t"):
                raise SipParseError("continuation line without a header", offset=pos, line=line_no)
            raise SipParseError(f"bad header line {decode(first[:60])!r}", offset=pos, line=line_no)
        value_parts = [first[hm.end() :]]
        seg_end = end + n
        line_no += 1
        # folded continuation lines (RFC 3261 §7.3.1: LWS = [*WSP CRLF] 1*WSP)
        while seg_end < len(data) and data[seg_end : seg_end + 1] in (b" ", b"\t"):
            cend, cn = _line_end(data, seg_end)
            if cend < 0:
                raise SipParseError("headers not ended by an empty line", offset=seg_end, line=line_no)
            value_parts.append(data[seg_end:cend])
            seg_end = cend + cn
            line_no += 1
        value = " ".join(decode(p).strip(" \t") for p in value_parts).strip(" \t")
        headers.append(Header(data[pos:seg_end], decode(hm.group(1)), value))
        pos = seg_end
    return cls(
        start_line=start_line,
        start_end=start_end,
        headers=tuple(headers),
        blank=blank,
        body=data[pos:],
        **fields,
    )


def _parse_plain(data: bytes) -> Request | Response | None:
    """The common case in one pass: CRLF line ends only, no folded header, every header line well formed.
    None sends anything else (and every error, to be reported with its line) to the general parser.

    The header block is split on CRLF once, as bytes (each header's raw segment) and as text decoded
    once (UTF-8 never puts CR, LF or a colon inside a multi-byte sequence, so decoding the block or each
    value gives the same text); each line is split on its first colon (a token holds none): no regex
    per line. Names are checked against the token grammar the first time they are seen, then
    remembered (a bounded cache: a message's names are a handful of the same few)."""
    head_end = data.find(b"\r\n\r\n")
    first_end = data.find(b"\r\n")
    if head_end < 0 or data.find(b"\n", 0, first_end) >= 0:
        return None
    start_line = data[:first_end]
    start = _PLAIN_STARTS.get(start_line)
    if start is None:
        try:
            start = _parse_start_line(start_line)
        except SipParseError:
            return None
        if len(_PLAIN_STARTS) < _PLAIN_NAMES_MAX:  # status lines and a run's R-URIs recur
            _PLAIN_STARTS[start_line] = start
    block = data[first_end + 2 : head_end]
    lines = block.split(b"\r\n") if head_end > first_end else []
    breaks = len(lines) - 1 if lines else 0
    if block.count(b"\n") != breaks or block.count(b"\r") != breaks:  # a bare LF or CR: not plain
        return None
    texts = block.decode("utf-8", "surrogateescape").split("\r\n") if lines else []
    headers: list[Header] = []
    index: dict[str, list[Header]] = {}  # the message's _by_key, built on the way
    append, new, names = headers.append, tuple.__new__, _PLAIN_NAMES
    for line, text in zip(lines, texts, strict=True):
        name_part, colon, value = text.partition(":")
        if not colon:  # not a header line: the general parser says so with its line
            return None
        known = names.get(name_part)
        if known is None:
            m = _PLAIN_NAME.match(name_part)
            if m is None:  # a folded line, a bad name: the general parser decides
                return None
            name = m.group(1)
            known = (name, _KEYS.get(name) or canonical_name(name))
            if len(names) < _PLAIN_NAMES_MAX:
                names[name_part] = known
        name, key = known
        header = new(Header, (line + b"\r\n", name, value.strip(" \t")))
        append(header)  # (Header(...) without NamedTuple's Python-level __new__)
        same = index.get(key)
        if same is None:
            index[key] = [header]
        else:
            same.append(header)
    cls, fields = start
    message = built(cls, fields)
    message.__dict__.update(
        start_line=start_line,
        start_end=b"\r\n",
        headers=tuple(headers),
        blank=b"\r\n",
        body=data[head_end + 4 :],
        _by_key=index,  # what _memo would compute, already known
    )
    return message


def _parse_start_line(line: bytes) -> _Start:
    """The message class the start line names and its start-line fields."""
    if line.startswith(b"SIP/"):
        m = _STATUS_LINE.match(line)
        if not m:
            raise SipParseError(f"bad status line {decode(line[:60])!r}", offset=0, line=1)
        fields = {"code": int(m.group(2)), "reason": decode(m.group(3)), "sip_version": decode(m.group(1))}
        return Response, fields
    m = _REQUEST_LINE.match(line)
    if not m:
        raise SipParseError(f"bad request line {decode(line[:80])!r}", offset=0, line=1)
    fields = {"method": decode(m.group(1)), "uri_text": decode(m.group(2)), "sip_version": decode(m.group(3))}
    return Request, fields


def version_ok(version: str) -> bool:
    return bool(_VERSION.match(encode(version)))


__all__ = [
    "Header",
    "Request",
    "Response",
    "SipMessage",
    "SipParseError",
    "decode",
    "encode",
    "parse_message",
]

"""Named transformations of SIP message bytes, for crafting malformed or unusual INVITEs.

Mutators work on raw bytes with regexes, never through :func:`parse_message`, so they compose: the
output of one may no longer parse and the next still applies. A spec is ``name`` or ``name=arg``
(``pad=70000``, ``drop-header=Max-Forwards``); :func:`apply_mutators` applies a list in order with one
seeded ``random.Random`` so a run is reproducible.

Byte model: the head (start line and header lines, each with its own line end) ends at the first empty
line; the rest is the body. Bytes with no empty line are all head. New headers go at the end of the
head; Content-Length is fixed only by mutators that say so.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from harness.sip.headers import canonical_name
from harness.sip.sdp import make_offer
from harness.sip.uri import bounded_int

PADDING_HEADER = "P-Harness-Padding"  # not X-: Kazoo's Kamailio strips X- headers
# codecs outside FREESWITCH_CODECS (Kazoo's FreeSWITCH answers an offer of only these with 488)
UNSUPPORTED_CODECS: tuple[str, ...] = ("iLBC", "AMR", "G726-32")

_HEADER_LINE = re.compile(rb"^([!-9;-~]+)[ \t]*:")  # a header name is any visible ASCII but ':'
_LINE = re.compile(rb"[^\n]*\n|[^\n]+$")


# -- the byte model -------------------------------------------------------------------------------


@dataclass
class _Message:
    start: bytes  # the start line with its line end
    headers: list[bytes]  # header lines, continuation lines joined to their header
    blank: bytes  # the empty line ending the head, b"" when absent
    body: bytes
    eol: bytes  # the line end to write new lines with

    @classmethod
    def split(cls, data: bytes) -> _Message:
        eol = b"\r\n" if b"\r\n" in data else b"\n"
        lines = _LINE.findall(data)
        start = lines[0] if lines else b""
        headers: list[bytes] = []
        i = 1
        while i < len(lines):
            line = lines[i]
            if line in (b"\r\n", b"\n"):
                return cls(start, headers, line, b"".join(lines[i + 1 :]), eol)
            if line[:1] in (b" ", b"\t") and headers:
                headers[-1] += line
            else:
                headers.append(line)
            i += 1
        return cls(start, headers, b"", b"", eol)

    def join(self) -> bytes:
        return self.start + b"".join(self.headers) + self.blank + self.body

    def line(self, name: str, value: bytes | str) -> bytes:
        raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
        return name.encode() + b": " + raw + self.eol

    def indexes(self, name: str) -> list[int]:
        key = canonical_name(name)
        out = []
        for i, h in enumerate(self.headers):
            m = _HEADER_LINE.match(h)
            if m and canonical_name(m.group(1).decode("latin-1")) == key:
                out.append(i)
        return out

    def drop(self, name: str) -> None:
        gone = set(self.indexes(name))
        self.headers = [h for i, h in enumerate(self.headers) if i not in gone]

    def add(self, name: str, value: bytes | str) -> None:
        # truncated bytes: keep the new header on its own line
        if self.headers and not self.headers[-1].endswith(b"\n"):
            self.headers[-1] += self.eol
        elif not self.start.endswith(b"\n"):
            self.start += self.eol
        self.headers.append(self.line(name, value))

    def set(self, name: str, value: bytes | str) -> None:
        """Replace the first ``name`` header (keeping its place and spelling) and drop the others."""
        found = self.indexes(name)
        if not found:
            self.add(name, value)
            return
        first = self.headers[found[0]]
        m = _HEADER_LINE.match(first)
        assert m is not None
        self.headers[found[0]] = self.line(m.group(1).decode("latin-1"), value)
        rest = set(found[1:])
        self.headers = [h for i, h in enumerate(self.headers) if i not in rest]

    def value(self, name: str) -> bytes | None:
        found = self.indexes(name)
        if not found:
            return None
        h = self.headers[found[0]]
        return re.sub(rb"\r?\n[ \t]+", b" ", h[h.index(b":") + 1 :]).strip()

    def set_body(self, body: bytes) -> None:
        """Replace the body and set Content-Length to its length."""
        if not self.blank:
            self.blank = self.eol
        self.body = body
        self.set("Content-Length", str(len(body)))


# -- the registry ---------------------------------------------------------------------------------

Apply = Callable[[bytes, "str | None", random.Random], bytes]


@dataclass(frozen=True)
class Mutator:
    """``apply(data, arg, rng)`` transforms bytes; ``check(arg)`` raises ValueError for a bad arg."""

    name: str
    arg_help: str  # "" when the mutator takes no argument
    help: str
    func: Apply
    check: Callable[[str | None], None]

    def apply(self, data: bytes, arg: str | None, rng: random.Random) -> bytes:
        self.check(arg)
        return self.func(data, arg, rng)


MUTATORS: dict[str, Mutator] = {}


def _no_arg(name: str) -> Callable[[str | None], None]:
    def check(arg: str | None) -> None:
        if arg is not None:
            raise ValueError(f"mutator {name!r} takes no argument (got {arg!r})")

    return check


def _needs(name: str, pattern: str, what: str, optional: bool = False) -> Callable[[str | None], None]:
    def check(arg: str | None) -> None:
        if arg is None:
            if optional:
                return
            raise ValueError(f"mutator {name!r} needs an argument: {name}={what}")
        if not re.fullmatch(pattern, arg, re.S):
            raise ValueError(f"mutator {name!r}: bad argument {arg!r}, expected {what}")

    return check


def mutator(
    name: str, arg_help: str = "", check: Callable[[str | None], None] | None = None
) -> Callable[[Apply], Apply]:
    """Register the decorated function; its docstring's first line is the help text."""

    def register(func: Apply) -> Apply:
        doc = (func.__doc__ or "").strip().splitlines()
        MUTATORS[name] = Mutator(name, arg_help, doc[0] if doc else name, func, check or _no_arg(name))
        return func

    return register


_NAME = r"[!-9;-~]+"
_NAME_VALUE = _NAME + r":.*"
_INT = r"[0-9]+"


def _name_value(arg: str | None) -> tuple[str, str]:
    assert arg is not None
    name, _, value = arg.partition(":")
    return name.strip(), value.strip()


# -- headers ---------------------------------------------------------------------------------------


@mutator("drop-header", "NAME", _needs("drop-header", _NAME, "a header name"))
def _drop_header(data: bytes, arg: str | None, rng: random.Random) -> bytes:
    """Remove every NAME header, compact form too (drop-header=Via also drops v:)."""
    assert arg is not None
    msg = _Message.split(data)
    msg.drop(arg)
    return msg.join()


@mutator("dup-header", "NAME", _needs("dup-header", _NAME, "a header name"))
def _dup_header(data: bytes, arg: str | None, rng: random.Random) -> bytes:
    """Repeat the first NAME header right after itself (no-op when absent)."""
    assert arg is not None
    msg = _Message.split(data)
    found = msg.indexes(arg)
    if found:
        msg.headers.insert(found[0] + 1, msg.headers[found[0]])
    return msg.join()


@mutator("set-header", "NAME:VALUE", _needs("set-header", _NAME_VALUE, "NAME:VALUE"))
def _set_header(data: bytes, arg: str | None, rng: random.Random) -> bytes:
    """Set NAME to the raw VALUE: the first one rewritten in place, others dropped, added if absent."""
    name, value = _name_value(arg)
    msg = _Message.split(data)
    msg.set(name, value)
    return msg.join()


@mutator("add-header", "NAME:VALUE", _needs("add-header", _NAME_VALUE, "NAME:VALUE"))
def _add_header(data: bytes, arg: str | None, rng: random.Random) -> bytes:
    """Append a NAME: VALUE header at the end of the head, whatever is already there."""
    name, value = _name_value(arg)
    msg = _Message.split(data)
    msg.add(name, value)
    return msg.join()


@mutator(
    "content-length",
    "larger|smaller|negative|missing|double|N",
    _needs(
        "content-length",
        r"larger|smaller|negative|missing|double|[0-9]+",
        "larger|smaller|negative|missing|double|N",
    ),
)
def _content_length(data: bytes, arg: str | None, rng: random.Random) -> bytes:
    """Wrong Content-Length: body+100, body-10 (floor 0), -999, none, two differing headers, or N."""
    msg = _Message.split(data)
    n = len(msg.body)
    if arg == "missing":
        msg.drop("content-length")
    elif arg == "double":  # RFC 4475 mcl01: the right value and a second, different one
        msg.set("Content-Length", str(n))
        msg.add("Content-Length", str(n + 1))
    else:
        value = {"larger": str(n + 100), "smaller": str(max(n - 10, 0)), "negative": "-999"}.get(
            arg or "", arg
        )
        msg.set("Content-Length", value or "0")
    return msg.join()


@mutator("no-content-length", check=_no_arg("no-content-length"))
def _no_content_length(data: bytes, arg: str | None, rng: random.Random) -> bytes:
    """Remove Content-Length (l: too): a stream transport can no longer frame the message."""
    return _drop_header(data, "Content-Length", rng)


@mutator(
    "max-forwards",
    "0|garbage|missing|N",
    _needs("max-forwards", r"garbage|missing|[0-9]+", "0|garbage|missing|N"),
)
def _max_forwards(data: bytes, arg: str | None, rng: random.Random) -> bytes:
    """Max-Forwards set to N (0: Kamailio answers 483), to a non-number, or removed."""
    msg = _Message.split(data)
    if arg == "missing":
        msg.drop("max-forwards")
    else:
        msg.set("Max-Forwards", "seventy" if arg == "garbage" else arg or "0")
    return msg.join()


@mutator("require", "TAG", _needs("require", r"[^\r\n]+", "an option tag", optional=True))
def _require(data: bytes, arg: str | None, rng: random.Random) -> bytes:
    """Add Require: TAG (default 100rel, which Kazoo's FreeSWITCH answers with 420 Bad Extension)."""
    msg = _Message.split(data)
    msg.add("Require", arg or "100rel")
    return msg.join()


@mutator("second-to", check=_no_arg("second-to"))
def _second_to(data: bytes, arg: str | None, rng: random.Random) -> bytes:
    """Add a second, different To header right after the first (Kamailio drops such messages)."""
    msg = _Message.split(data)
    found = msg.indexes("to")
    second = msg.line("To", "<sip:second-to@127.0.0.1>")
    if found:
        msg.headers.insert(found[0] + 1, second)
    else:
        msg.add("To", "<sip:second-to@127.0.0.1>")
    return msg.join()


@mutator("cseq-mismatch", check=_no_arg("cseq-mismatch"))
def _cseq_mismatch(data: bytes, arg: str | None, rng: random.Random) -> bytes:
    """Make the CSeq method differ from the request's (RFC 4475 mismatch01; 400 from FreeSWITCH)."""
    msg = _Message.split(data)
    method = msg.start.split(b" ", 1)[0].strip()
    other = "OPTIONS" if method.upper() == b"INVITE" else "INVITE"
    cseq = msg.value("cseq") or b"1"
    number = cseq.split()[0] if cseq.split() else b"1"
    msg.set("CSeq", number + b" " + other.encode())
    return msg.join()


@mutator("route", "URI", _needs("route", r"[^\r\n]+", "a Route value", optional=True))
def _route(data: bytes, arg: str | None, rng: random.Random) -> bytes:
    """Add a Route header (default <sip:127.0.0.1;lr>): Kamailio answers 403 No pre-loaded routes."""
    msg = _Message.split(data)
    msg.add("Route", arg or "<sip:127.0.0.1;lr>")
    return msg.join()


@mutator("user-agent", "VALUE|scanner", _needs("user-agent", r"[^\r\n]+", "a User-Agent or 'scanner'"))
def _user_agent(data: bytes, arg: str | None, rng: random.Random) -> bytes:
    """Set User-Agent to VALUE; 'scanner' gives friendly-scanner, which Kamailio drops silently."""
    msg = _Message.split(data)
    msg.set("User-Agent", "friendly-scanner" if arg == "scanner" else arg or "")
    return msg.join()


@mutator("non-utf8", check=_no_arg("non-utf8"))
def _non_utf8(data: bytes, arg: str | None, rng: random.Random) -> bytes:
    """Put invalid UTF-8 bytes (FF FE, C3 28) in the From display name (a From is added if absent)."""
    bad = b'"\xff\xfe Caller \xc3\x28"'
    msg = _Message.split(data)
    value = msg.value("from")
    if value is None:
        msg.add("From", bad + b" <sip:caller@127.0.0.1>;tag=nonutf8")
        return msg.join()
    if b"<" in value:
        new = bad + b" " + value[value.index(b"<") :]
    else:  # addr-spec: header parameters stay outside the brackets
        uri, semi, params = value.partition(b";")
        new = bad + b" <" + uri.strip() + b">" + semi + params
    msg.set("From", new)
    return msg.join()


# -- start line ------------------------------------------------------------------------------------


@mutator("sip-version", "VALUE", _needs("sip-version", r"\S+", "a version such as SIP/7.0", optional=True))
def _sip_version(data: bytes, arg: str | None, rng: random.Random) -> bytes:
    """Rewrite the SIP version of the start line (default SIP/7.0: FreeSWITCH answers 505)."""
    msg = _Message.split(data)
    version = (arg or "SIP/7.0").encode()
    body = msg.start.rstrip(b"\r\n")
    end = msg.start[len(body) :]
    if body.startswith(b"SIP/"):
        parts = body.split(b" ", 1)
        body = version + (b" " + parts[1] if len(parts) > 1 else b"")
    else:
        parts = body.rsplit(b" ", 1)
        body = (parts[0] + b" " if len(parts) > 1 else body + b" ") + version
    msg.start = body + end
    return msg.join()


@mutator(
    "uri-scheme", "SCHEME", _needs("uri-scheme", r"[A-Za-z][A-Za-z0-9+.\-]*", "a URI scheme", optional=True)
)
def _uri_scheme(data: bytes, arg: str | None, rng: random.Random) -> bytes:
    """Rewrite the Request-URI scheme (default nobodyKnowsThisScheme: FreeSWITCH answers 416)."""
    msg = _Message.split(data)
    scheme = (arg or "nobodyKnowsThisScheme").encode()
    parts = msg.start.split(b" ", 2)
    if len(parts) == 3 and not parts[0].startswith(b"SIP/"):
        uri = parts[1]
        m = re.match(rb"[A-Za-z][A-Za-z0-9+.\-]*:", uri)
        parts[1] = scheme + b":" + (uri[m.end() :] if m else uri)
        msg.start = b" ".join(parts)
    return msg.join()


# -- body ------------------------------------------------------------------------------------------

_SDP_CONN = re.compile(rb"^c=IN IP[46] (\S+)", re.M)
_SDP_AUDIO = re.compile(rb"^m=audio ([0-9]+)", re.M)


@mutator("sdp-unsupported-codecs", check=_no_arg("sdp-unsupported-codecs"))
def _sdp_unsupported(data: bytes, arg: str | None, rng: random.Random) -> bytes:
    """Replace the SDP with an offer of only iLBC/AMR/G726-32, which FreeSWITCH answers with 488.

    The offer keeps the old SDP's address and port; Content-Type and Content-Length are fixed.
    """
    msg = _Message.split(data)
    conn = _SDP_CONN.search(msg.body)
    audio = _SDP_AUDIO.search(msg.body)
    ip = conn.group(1).decode("ascii", "replace") if conn else "127.0.0.1"
    port = (bounded_int(audio.group(1).decode(), 65535) if audio else None) or 40000
    msg.set_body(make_offer(ip, port, UNSUPPORTED_CODECS, session_id=rng.getrandbits(31)))
    msg.set("Content-Type", "application/sdp")
    return msg.join()


@mutator("pad", "N", _needs("pad", _INT, "a total size in bytes"))
def _pad(data: bytes, arg: str | None, rng: random.Random) -> bytes:
    """Grow the whole message to N bytes with a P-Harness-Padding header (N may pass 65,535)."""
    assert arg is not None
    target = int(arg)
    msg = _Message.split(data)
    msg.add(PADDING_HEADER, b"")
    room = target - len(msg.join())
    if room < 0:
        raise ValueError(
            f"pad={target}: the message is already {len(data)} bytes (a padding header needs 21)"
        )
    msg.headers[-1] = msg.line(PADDING_HEADER, b"x" * room)
    return msg.join()


@mutator("pad-body", "N", _needs("pad-body", _INT, "a body size in bytes"))
def _pad_body(data: bytes, arg: str | None, rng: random.Random) -> bytes:
    """Grow the body to N bytes with an SDP line a=x-harness-padding:..., Content-Length fixed.

    With fewer than 22 bytes to add, spaces go at the end of the last line instead.
    """
    assert arg is not None
    target = int(arg)
    msg = _Message.split(data)
    room = target - len(msg.body)
    if room < 0:
        raise ValueError(f"pad-body={target}: the body is already {len(msg.body)} bytes")
    prefix, eol = b"a=x-harness-padding:", msg.eol
    if room >= len(prefix) + len(eol):
        body = msg.body + prefix + b"x" * (room - len(prefix) - len(eol)) + eol
    elif msg.body.endswith(eol):  # too little room for a line: trailing spaces on the last one
        body = msg.body[: -len(eol)] + b" " * room + eol
    else:
        body = msg.body + b" " * room
    msg.set_body(body)
    return msg.join()


@mutator("truncate", "N", _needs("truncate", _INT, "a byte count"))
def _truncate(data: bytes, arg: str | None, rng: random.Random) -> bytes:
    """Keep only the first N bytes."""
    return data[: int(arg or 0)]


@mutator("garbage", "N", _needs("garbage", _INT, "a byte count"))
def _garbage(data: bytes, arg: str | None, rng: random.Random) -> bytes:
    """Replace everything with N random bytes (from the seeded generator), never starting with 0x00: Kazoo's
    Kamailio loads stun.so, and a UDP datagram with a zero first byte goes to its STUN module
    (src/core/udp_server.c), which answers a STUN error instead of failing to parse SIP."""
    data = rng.randbytes(int(arg or 0))
    if data[:1] == b"\x00":
        data = bytes([rng.randrange(1, 256)]) + data[1:]
    return data


# -- specs -----------------------------------------------------------------------------------------


def parse_spec(spec: str) -> tuple[Mutator, str | None]:
    """``"pad=70000"`` -> (the pad mutator, "70000"); ValueError for an unknown name or a bad argument."""
    name, eq, arg = spec.partition("=")
    name = name.strip()
    if name not in MUTATORS:
        raise ValueError(f"unknown mutator {name!r}; known: {', '.join(sorted(MUTATORS))}")
    mut = MUTATORS[name]
    value = arg if eq else None
    mut.check(value)
    return mut, value


def apply_mutators(data: bytes, specs: list[str], seed: int = 0) -> bytes:
    """Apply ``specs`` in order; all specs are checked before any is applied."""
    parsed = [parse_spec(s) for s in specs]
    rng = random.Random(seed)
    for mut, arg in parsed:
        data = mut.apply(data, arg, rng)
    return data


def describe() -> list[tuple[str, str]]:
    """(``name=ARG``, help) for every mutator, for --help texts and docs."""
    return [(f"{m.name}={m.arg_help}" if m.arg_help else m.name, m.help) for m in MUTATORS.values()]

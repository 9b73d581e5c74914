"""The parser against the RFC 4475/5118 torture corpus, and property tests over mutated corpus bytes:
parse_message and the typed accessors raise SipParseError and nothing else, and what parses
re-serializes byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.sip.errors import SipParseError
from harness.sip.message import Request, SipMessage, parse_message

CORPUS = (Path(__file__).parents[2] / ".." / "shared" / "corpus").resolve()
FILES = sorted(CORPUS.glob("*/*.dat")) if CORPUS.is_dir() else []
needs_corpus = pytest.mark.skipif(not FILES, reason=f"SIP torture corpus not found at {CORPUS}")

ACCESSORS = (
    "vias", "top_via", "from_", "to", "contact", "call_id", "cseq", "max_forwards", "content_length",
    "require", "proxy_require", "supported", "unsupported", "proxy_authenticate", "www_authenticate",
    "user_agent", "content_type", "first_line", "version",
)  # fmt: skip


def touch_accessors(msg: SipMessage) -> None:
    """Read every typed accessor; each may raise SipParseError, nothing else."""
    for name in ACCESSORS:
        try:
            value = getattr(msg, name)
            if name == "vias":
                for via in value:
                    _ = (via.branch, via.received, via.rport, via.host, via.port, via.transport)
            if name in ("from_", "to", "contact") and value is not None:
                _ = (value.display, value.uri, value.tag)
        except SipParseError:
            pass
    if isinstance(msg, Request):
        try:
            _ = msg.uri
        except SipParseError:
            pass


def check_bytes(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except SipParseError:
        return
    assert msg.to_bytes() == data
    touch_accessors(msg)


@needs_corpus
@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_file_round_trips_or_raises_sip_parse_error(path: Path) -> None:
    check_bytes(path.read_bytes())


@needs_corpus
def test_corpus_valid_messages_parse() -> None:
    valid = ["wsinv", "intmeth", "esc01", "escnull", "esc02", "lwsdisp", "longreq", "dblreq", "semiuri",
             "transports", "mpart01", "unreason", "noreason"]  # fmt: skip
    for name in valid:
        msg = parse_message((CORPUS / "rfc4475" / f"{name}.dat").read_bytes())
        assert msg.call_id, name


@needs_corpus
def test_corpus_wsinv_typed_values() -> None:
    msg = parse_message((CORPUS / "rfc4475" / "wsinv.dat").read_bytes())
    assert isinstance(msg, Request)
    assert msg.method == "INVITE"
    assert (msg.cseq.number, msg.cseq.method) == (9, "INVITE")  # folded "cseq: 0009\r\n  INVITE"
    vias = msg.vias
    assert [v.transport for v in vias] == ["UDP", "TCP", "UDP"]
    assert (
        vias[1].branch == "z9hG4bK9ikj8"
    )  # "v:  SIP  / 2.0  / TCP  spindle.example.com   ;\r\n  branch  =  ..."


def _corpus_bytes() -> list[bytes]:
    return [p.read_bytes() for p in FILES]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    sources = _corpus_bytes()
    data = bytearray(draw(st.sampled_from(sources)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(
                st.sampled_from([b"\r", b"\n", b"\r\n", b"\x00", b" ", b":", b"<", b'"', b";", b","])
            )
        elif kind == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del data[pos:]
        else:
            other = draw(st.sampled_from(sources))
            cut = draw(st.integers(0, len(other)))
            data[pos:] = other[cut:]
    return bytes(data)


@needs_corpus
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_corpus_raises_only_sip_parse_error(data: bytes) -> None:
    check_bytes(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_sip_parse_error(data: bytes) -> None:
    check_bytes(b"INVITE sip:a@127.0.0.1 SIP/2.0\r\n" + data)
    check_bytes(data)


HEAD = b"INVITE sip:a@127.0.0.1 SIP/2.0\r\n"
HUGE = b"9" * 5000  # int() refuses more than 4,300 digits with a plain ValueError


@pytest.mark.parametrize(
    ("data", "accessor"),
    [
        (b"INVITE sip:a@127.0.0.1:" + HUGE + b" SIP/2.0\r\n\r\n", "uri"),
        (HEAD + "Max-Forwards: \u00b2\r\n\r\n".encode(), "max_forwards"),  # str.isdigit() says yes
        (HEAD + b"Content-Length: " + HUGE + b"\r\n\r\n", "content_length"),
        (HEAD + b"Via: SIP/2.0/UDP 127.0.0.1:" + HUGE + b"\r\n\r\n", "vias"),
        (HEAD + "Via: SIP/2.0/UDP 127.0.0.1;rport=\u00b2\r\n\r\n".encode(), "top_via"),
        (HEAD + b"Contact: <sip:a@127.0.0.1:" + HUGE + b">\r\n\r\n", "contact"),
    ],
    ids=["uri-port", "max-forwards", "content-length", "via-port", "rport", "contact-port"],
)
def test_numeric_accessors_raise_sip_parse_error_on_unusable_numbers(data: bytes, accessor: str) -> None:
    msg = parse_message(data)
    with pytest.raises(SipParseError):
        value = getattr(msg, accessor)
        _ = value.rport  # top_via: the rport is parsed on access

"""The parser's one-pass path for plain messages (CRLF only, nothing folded) against its general path:
for every message the plain path takes, both must give the same message, segment for segment; and the
plain path must step aside (None) for everything it does not handle, errors included."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.sip.errors import SipParseError
from harness.sip.message import SipMessage, _parse_lines, _parse_plain, parse_message

CORPUS = (Path(__file__).parents[2] / ".." / "shared" / "corpus").resolve()
FILES = sorted(CORPUS.glob("*/*.dat")) if CORPUS.is_dir() else []


def same(a: SipMessage, b: SipMessage) -> None:
    assert type(a) is type(b)
    assert (a.start_line, a.start_end, a.blank, a.body) == (b.start_line, b.start_end, b.blank, b.body)
    assert a.headers == b.headers
    fields = lambda m: {k: v for k, v in m.__dict__.items() if not k.startswith("_")}  # noqa: E731
    assert fields(a) == fields(b)  # the start line's fields (method, uri, code, reason...)
    assert a._by_key == b._by_key  # the plain path builds the header index as it goes: the same one
    assert a.to_bytes() == b.to_bytes()


def check(data: bytes) -> None:
    plain = _parse_plain(data)
    try:
        general = _parse_lines(data)
    except SipParseError:
        assert plain is None, "the plain path accepted what the general parser refuses"
        return
    if plain is not None:
        same(plain, general)


@pytest.mark.skipif(not FILES, reason=f"SIP torture corpus not found at {CORPUS}")
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_corpus_messages_parse_alike(path: Path) -> None:
    check(path.read_bytes())


INVITE = (
    b"INVITE sip:+14155550100@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bK1\r\n"
    b"From: <sip:a@127.0.0.10>;tag=1\r\nTo: <sip:+14155550100@127.0.0.1>\r\nCall-ID: c@h\r\n"
    b"CSeq: 1 INVITE\r\nContent-Length: 4\r\n\r\nbody"
)


@pytest.mark.parametrize(
    "data", [b"SIP/2.0 200 OK\r\n\r\n", INVITE.replace(b"CSeq: 1 INVITE", b"CSeq :1 INVITE:x")]
)
def test_the_plain_path_takes_no_headers_and_odd_colons(data: bytes) -> None:
    plain = _parse_plain(data)
    assert plain is not None
    same(plain, _parse_lines(data))


def test_a_remembered_name_without_its_colon_is_not_a_header() -> None:
    """The plain path remembers the names it has checked; a line holding only such a name is still no
    header line (the general parser refuses it)."""
    assert _parse_plain(b"SIP/2.0 200 OK\r\nX-Seen: 1\r\n\r\n") is not None
    refused = b"SIP/2.0 200 OK\r\nX-Seen\r\n\r\n"
    assert _parse_plain(refused) is None
    check(refused)


def test_the_plain_path_takes_a_plain_invite() -> None:
    plain = _parse_plain(INVITE)
    assert plain is not None
    same(plain, _parse_lines(INVITE))
    assert parse_message(INVITE).to_bytes() == INVITE


@pytest.mark.parametrize(
    "data",
    [
        INVITE.replace(b"\r\nTo:", b"\nTo:"),  # a bare LF line end
        INVITE.replace(b"\r\nTo:", b"\r\n To:"),  # a folded line
        INVITE.replace(b"\r\nTo:", b"\r\n\tTo:"),
        INVITE.replace(b"Call-ID: c@h", b"Call-ID c@h"),  # no colon: an error, for the general parser
        INVITE.replace(b"\r\n\r\n", b"\r\n"),  # headers never ended
        b"\r\n\r\n",
        INVITE.replace(b"Call-ID: c@h", b"Call-ID: c@\rh"),  # a bare CR inside a line
        INVITE.replace(b"Call-ID: c@h", b"Call-ID: c@\nh"),  # a bare LF inside a line
    ],
)
def test_the_plain_path_steps_aside(data: bytes) -> None:
    assert _parse_plain(data) is None
    check(data)


LINE = st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b)
NAME = st.sampled_from([b"Via", b"v", b"From", b"To", b"X-Odd", b"CSeq", b"Bad Name", b"", b"Call-ID"])


@settings(max_examples=400, deadline=None)
@given(
    start=st.sampled_from([b"INVITE sip:a@b SIP/2.0", b"SIP/2.0 200 OK", b"SIP/2.0 604 Nope", b"BAD"]),
    headers=st.lists(st.tuples(NAME, st.sampled_from([b":", b" :", b"\t: ", b""]), LINE), max_size=8),
    ends=st.lists(st.sampled_from([b"\r\n", b"\n", b"\r\n ", b"\r\n\t"]), min_size=9, max_size=9),
    body=st.binary(max_size=20),
)
def test_random_messages_parse_alike(
    start: bytes, headers: list[tuple[bytes, bytes, bytes]], ends: list[bytes], body: bytes
) -> None:
    data = start + ends[0]
    for (name, colon, value), end in zip(headers, ends[1:], strict=False):
        data += name + colon + value + end
    check(data + b"\r\n" + body)

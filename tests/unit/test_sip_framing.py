from __future__ import annotations

import pytest

from harness.sip.framing import FramingError, StreamFramer


def message(body: bytes = b"hello", *, cl_first: bool = False, eol: bytes = b"\r\n") -> bytes:
    lines = [b"OPTIONS sip:a@127.0.0.1 SIP/2.0", b"Call-ID: x", b"CSeq: 1 OPTIONS"]
    cl = b"Content-Length: " + str(len(body)).encode()
    lines.insert(1 if cl_first else len(lines), cl)
    return eol.join(lines) + eol + eol + body


@pytest.mark.parametrize("cl_first", [False, True], ids=["content-length-last", "content-length-first"])
def test_one_message(cl_first: bool) -> None:
    data = message(cl_first=cl_first)
    assert StreamFramer().feed(data) == [data]


def test_byte_by_byte_and_back_to_back() -> None:
    a, b = message(b"first"), message(b"")
    framer = StreamFramer()
    out: list[bytes] = []
    for byte in a + b:
        out += framer.feed(bytes([byte]))
    assert out == [a, b]
    assert framer.pending == 0


def test_keepalive_crlf_skipped_and_partial_body_waits() -> None:
    data = message(b"0123456789")
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n" + data[:-3]) == []
    assert framer.pending == len(data) - 3
    assert framer.feed(data[-3:]) == [data]


def test_bare_lf_and_compact_form() -> None:
    data = b"OPTIONS sip:a@127.0.0.1 SIP/2.0\nl: 2\nCall-ID: x\n\nhi"
    assert StreamFramer().feed(data) == [data]


def test_first_empty_line_ends_the_head_whatever_the_line_ends() -> None:
    lf = message(b"", eol=b"\n")
    crlf = message(b"abc")
    assert StreamFramer().feed(lf + crlf) == [lf, crlf]


def test_missing_content_length() -> None:
    with pytest.raises(FramingError) as err:
        StreamFramer().feed(b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nCall-ID: x\r\n\r\n")
    assert err.value.reason == "no-content-length"


@pytest.mark.parametrize("value", [b"-1", b"abc", b"9" * 5000, b"1, 2"])
def test_bad_content_length(value: bytes) -> None:
    with pytest.raises(FramingError) as err:
        StreamFramer().feed(b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nContent-Length: " + value + b"\r\n\r\n")
    assert err.value.reason == "bad-content-length"


def test_two_differing_content_lengths() -> None:
    with pytest.raises(FramingError) as err:
        StreamFramer().feed(b"OPTIONS sip:a@h SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nab")
    assert err.value.reason == "bad-content-length"


def test_too_large_declared_and_unterminated() -> None:
    with pytest.raises(FramingError) as err:
        StreamFramer(max_message=100).feed(message(b"x" * 200))
    assert err.value.reason == "too-large"
    with pytest.raises(FramingError) as err:
        StreamFramer(max_message=100).feed(b"OPTIONS sip:a@h SIP/2.0\r\nP-Pad: " + b"x" * 200)
    assert err.value.reason == "too-large"


def test_framing_error_is_hashable_and_a_sip_parse_error() -> None:
    from harness.sip.errors import SipParseError

    err = FramingError("x", "too-large")
    assert isinstance(err, SipParseError)
    assert hash(err) is not None
    assert err != FramingError("x", "too-large")  # exceptions compare by identity


def test_a_framer_that_accepts_no_content_length_frames_bodiless() -> None:
    """Kamailio's tcp_accept_no_cl=yes (Kazoo 5.x's http.cfg): no usable Content-Length means no body,
    and the bytes after the headers begin the next message."""
    framer = StreamFramer(accept_no_content_length=True)
    head = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1\r\n\r\n"
    assert framer.feed(head + b"v=0\r\n") == [head]
    assert framer.pending == len(b"v=0\r\n")
    negative = b"INVITE sip:a@b SIP/2.0\r\nContent-Length: -999\r\n\r\n"
    assert StreamFramer(accept_no_content_length=True).feed(negative) == [negative]
    with pytest.raises(FramingError):
        StreamFramer().feed(negative)

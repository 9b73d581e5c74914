"""What a complete Kamailio capture can hold: the first-line rule of Kamailio 5.6's sip_check_fline()
(core/receive.c) and the stream framing a TCP message must pass first (harness.kazoo.siptrace)."""

from __future__ import annotations

import pytest

from harness.kazoo.siptrace import TCP_READ_BUFFER, core_reads, sip_first_line

REQUEST = b"INVITE sip:+14155550100@127.0.0.1 SIP/2.0\r\nContent-Length: 0\r\n\r\n"


@pytest.mark.parametrize(
    ("data", "mirrored"),
    [
        (REQUEST, True),
        (b"SIP/2.0 100 Trying\r\n\r\n", True),
        (b"\r\n  SIP/2.0 200 OK\r\n\r\n", True),  # leading blanks are skipped
        (b"OPTIONS sip:x SIP/2.0\n\n", True),  # a bare LF ends the line too
        (b"INVITE sip:x SIP/7.0\r\n\r\n", False),  # only SIP/2.0
        (b"INVITE sip:x SIP/2.0 \r\n\r\n", False),  # not even a blank after the version
        (b"SIP/7.0 200 OK\r\n\r\n", False),
        (b"garbage bytes that are not SIP\r\n\r\n", False),
        (b"A SIP/2.0", False),  # no line end, and shorter than the 10 bytes asked for
        (b"SIP/2.0 1", False),  # 9 bytes
        (b"X SIP/2.0\r\n", False),  # the line end must be at byte 10 or later
        (b"", False),
    ],
)
def test_sip_first_line(data: bytes, mirrored: bool) -> None:
    assert sip_first_line(data) is mirrored


def unmirrored_reason(data: bytes, transport: str, *, stream_buffer: int = TCP_READ_BUFFER) -> str | None:
    """Why a message alone on its stream (or a datagram) is not mirrored as sent; None when it is."""
    ((_, why),) = core_reads([(data, transport, None)], stream_buffer=stream_buffer)
    return why


def test_unmirrored_reasons() -> None:
    assert unmirrored_reason(REQUEST, "udp") is None
    assert unmirrored_reason(REQUEST, "tcp") is None
    no_length = REQUEST.replace(b"Content-Length: 0\r\n", b"")
    assert "no-content-length" in (unmirrored_reason(no_length, "tcp") or "")
    assert unmirrored_reason(no_length, "udp") is None  # a datagram needs no length
    big = REQUEST.replace(b"\r\n\r\n", b"\r\nX-Pad: " + b"x" * 90_000 + b"\r\n\r\n")
    assert "too-large" in (unmirrored_reason(big, "tcp") or "")
    assert unmirrored_reason(big, "tcp", stream_buffer=200_000) is None
    assert "incomplete" in (unmirrored_reason(REQUEST[:-5], "tcp") or "")
    assert "sip_check_fline" in (unmirrored_reason(b"SIP/7.0 200 OK\r\n\r\n", "udp") or "")


INVITE_NO_LENGTH = (
    b"INVITE sip:+14155550100@127.0.0.1 SIP/2.0\r\nCall-ID: a\r\n\r\nv=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"
)
ACK = b"ACK sip:+14155550100@127.0.0.1 SIP/2.0\r\nCall-ID: a\r\nContent-Length: 0\r\n\r\n"
STREAM = ("127.0.0.1", 5060)


def test_a_stream_without_content_length_as_kazoo_5_reads_it() -> None:
    """tcp_accept_no_cl=yes: the INVITE is read as its headers alone (what the capture holds), its body
    starts the next message, which swallows the ACK that follows on the same stream."""
    sent = [(INVITE_NO_LENGTH, "tcp", STREAM), (ACK, "tcp", STREAM)]
    (invite_pieces, invite_why), (ack_pieces, ack_why) = core_reads(sent, accept_no_content_length=True)
    assert invite_pieces == (INVITE_NO_LENGTH[: INVITE_NO_LENGTH.index(b"\r\n\r\n") + 4],)
    assert invite_why is not None and "tcp_accept_no_cl" in invite_why
    assert ack_pieces == () and ack_why is not None  # read as part of "v=0 ..." and never mirrored
    # which the core cannot parse: the connection is closed, and a BYE after it never read
    (_, bye_why) = core_reads(
        [*sent, (ACK.replace(b"ACK", b"BYE"), "tcp", STREAM)], accept_no_content_length=True
    )[2]
    assert "closed the stream" in (bye_why or "")
    # another stream is read on its own
    assert core_reads([*sent, (ACK, "tcp", ("127.0.0.2", 5060))], accept_no_content_length=True)[2] == (
        (ACK,),
        None,
    )


def test_a_stream_without_content_length_as_kazoo_4_3_reads_it() -> None:
    """Without tcp_accept_no_cl the reader cannot frame it and closes the connection: nothing after it."""
    (invite_pieces, invite_why), (ack_pieces, ack_why) = core_reads(
        [(INVITE_NO_LENGTH, "tcp", STREAM), (ACK, "tcp", STREAM)]
    )
    assert invite_pieces == () and "no-content-length" in (invite_why or "")
    assert ack_pieces == () and "closed the stream" in (ack_why or "")

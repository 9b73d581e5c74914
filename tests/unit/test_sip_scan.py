"""The byte scanners the load path reads responses with."""

from __future__ import annotations

from harness.sip import scan

RESPONSE = (
    b"SIP/2.0 604 Nope Nope Nope\r\n"
    b"v: SIP/2.0/UDP 127.0.0.10:5060;rport=5060;branch=z9hG4bKabc123;received=127.0.0.10\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKother\r\n"
    b"From: <sip:+14155550000@127.0.0.10>;tag=f1\r\n"
    b"t: <sip:+14155550199@127.0.0.1>;tag=sbc\r\n"
    b"CALL-ID: x@127.0.0.10\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_status_line() -> None:
    assert scan.status(RESPONSE) == (604, b"SIP/2.0 604 Nope Nope Nope")
    assert scan.status(b"INVITE sip:x SIP/2.0\r\n\r\n") is None
    assert scan.status(b"\xff\xfe garbage") is None


def test_headers_by_full_or_compact_name_any_case() -> None:
    assert scan.header(RESPONSE, "to") == b"<sip:+14155550199@127.0.0.1>;tag=sbc"
    assert scan.header(RESPONSE, "call-id") == b"x@127.0.0.10"
    assert scan.header(RESPONSE, "cseq") == b"1 INVITE"
    assert scan.header(RESPONSE, "contact") is None


def test_the_branch_is_the_top_vias() -> None:
    assert scan.top_via_branch(RESPONSE) == b"z9hG4bKabc123"
    assert scan.top_via_branch(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n") is None


def test_a_body_is_not_searched_for_headers() -> None:
    data = b"SIP/2.0 200 OK\r\nContent-Length: 9\r\n\r\n\nTo: body"
    assert scan.header(data, "to") is None


def test_the_first_header_line_is_found_whole() -> None:
    start, end = scan.first_header_line(RESPONSE, "via") or (0, 0)
    assert RESPONSE[start:end] == RESPONSE.split(b"\r\n")[1] + b"\r\n"
    start, end = scan.first_header_line(RESPONSE, "cseq") or (0, 0)
    assert RESPONSE[start:end] == b"CSeq: 1 INVITE\r\n"
    assert scan.first_header_line(RESPONSE, "contact") is None
    folded = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1,\r\n SIP/2.0/UDP b\r\n\r\n"
    assert scan.first_header_line(folded, "via") is None  # its value goes on: not one line


def test_the_branch_of_a_via_value_is_its_first_values() -> None:
    assert (
        scan.via_branch(b"SIP/2.0/UDP a;branch=z9hG4bK1;rport, SIP/2.0/UDP b;branch=z9hG4bK2") == b"z9hG4bK1"
    )
    assert scan.via_branch(b"Via: SIP/2.0/UDP a ; BRANCH = z9hG4bKx\r\n") == b"z9hG4bKx"
    assert scan.via_branch(b"SIP/2.0/UDP a, SIP/2.0/UDP b;branch=z9hG4bK2") is None  # not the first's

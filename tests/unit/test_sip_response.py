from __future__ import annotations

import pytest

from harness.sip.message import Request, parse_message
from harness.sip.response import make_response

INVITE = (
    b"INVITE sip:+14155550100@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKproxy\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bKcarrier;rport=5060, "
    b"SIP/2.0/TCP 127.0.0.11;branch=z9hG4bKx\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice" <sip:alice@127.0.0.10>;tag=abc\r\n'
    b"To: <sip:+14155550100@127.0.0.1>\r\n"
    b"Call-ID: call-1@127.0.0.10\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Contact: <sip:alice@127.0.0.10>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def invite(data: bytes = INVITE) -> Request:
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def test_copies_vias_in_order_and_dialog_headers() -> None:
    resp = make_response(invite(), 486, "Busy Here", to_tag="t1")
    assert (resp.code, resp.reason, resp.version) == (486, "Busy Here", "SIP/2.0")
    assert resp.values("via") == invite().values("via")
    assert [v.branch for v in resp.vias] == ["z9hG4bKproxy", "z9hG4bKcarrier", "z9hG4bKx"]
    assert resp.get("from") == '"Alice" <sip:alice@127.0.0.10>;tag=abc'
    assert resp.to.tag == "t1"
    assert resp.call_id == "call-1@127.0.0.10"
    assert (resp.cseq.number, resp.cseq.method) == (7, "INVITE")
    assert resp.content_length == 0
    assert not resp.has("contact")  # not copied: a UAS writes its own


def test_existing_to_tag_is_kept() -> None:
    tagged = invite(INVITE.replace(b"To: <sip:+14155550100@127.0.0.1>", b"To: <sip:b@127.0.0.1>;tag=old"))
    assert make_response(tagged, 200, "OK", to_tag="new").to.tag == "old"


def test_no_to_tag_when_not_asked() -> None:
    assert make_response(invite(), 100, "Trying").to.tag is None


def test_tag_detected_in_a_to_that_does_not_parse() -> None:
    broken = invite(INVITE.replace(b"To: <sip:+14155550100@127.0.0.1>", b'To: "unterminated <sip:b@h>;tag=x'))
    assert make_response(broken, 400, "Bad To", to_tag="y").get("to") == '"unterminated <sip:b@h>;tag=x'


def test_extra_headers_then_content_type_and_length_with_body() -> None:
    body = b"v=0\r\n"
    resp = make_response(
        invite(),
        420,
        "Bad Extension",
        headers=[("Unsupported", "100rel"), ("Server", "model")],
        body=body,
        content_type="application/sdp",
    )
    names = [h.name for h in resp.headers]
    assert names[-4:] == ["Unsupported", "Server", "Content-Type", "Content-Length"]
    assert resp.unsupported == ["100rel"]
    assert resp.body == body
    assert resp.content_length == len(body)
    assert resp.to_bytes().endswith(b"\r\n\r\n" + body)


def test_missing_request_headers_are_left_out() -> None:
    bare = invite(b"INVITE sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.10;branch=z9hG4bK1\r\n\r\n")
    resp = make_response(bare, 400, "Missing To")
    assert [h.name for h in resp.headers] == ["Via", "Content-Length"]


def test_bad_code_rejected() -> None:
    with pytest.raises(ValueError):
        make_response(invite(), 99, "Nope")

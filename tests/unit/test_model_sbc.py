"""The SBC and media roles' pure decisions: failure-route rewrites, sanity and sofia checks, scanners."""

from __future__ import annotations

from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.kazoo.release import KAZOO_4_3, KAZOO_5, release
from harness.model.media import direct_reach_problem
from harness.model.routing import callflow_behaviour, reorder_response
from harness.model.sbc import (
    is_scanner,
    parse_media_answer,
    read_media_answer,
    rewrite_failure,
    sanity_failure,
)
from harness.model.store import DocumentStore
from harness.sip.message import Request, parse_message
from harness.sip.response import render_response

INVITE = (
    "INVITE sip:+14155550100@127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bKabc\r\n"
    "From: <sip:a@127.0.0.10>;tag=1\r\nTo: <sip:+14155550100@127.0.0.1>\r\n"
    "Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)


def request(text: str = INVITE) -> Request:
    return cast(Request, parse_message(text.encode()))


@pytest.mark.parametrize(
    ("code", "reason", "after_18x", "profile", "expected"),
    [
        (407, "Proxy Authentication Required", False, "kazoo-4.3", (407, "Proxy Authentication Required")),
        (401, "Unauthorized", False, "kazoo-4.3", (401, "Unauthorized")),
        (486, "Number busy", False, "kazoo-4.3", (486, "Number busy")),
        (403, "Forbidden", False, "kazoo-4.3", (403, "Forbidden")),
        (402, "Payment Required", False, "kazoo-4.3", (486, "Insufficient Funds")),
        (686, "PICNIC", False, "kazoo-4.3", (486, "PICNIC")),
        (604, "Nope Nope Nope", False, "kazoo-4.3", (604, "Nope Nope Nope")),
        (604, "Nope Nope Nope", False, "kazoo-5", (486, "Unable to Comply")),
        (603, "Decline", False, "kazoo-4.3", (603, "Decline")),
        (600, "Busy Everywhere", False, "kazoo-4.3", (600, "Busy Everywhere")),
        (606, "Not Acceptable", False, "kazoo-4.3", (606, "Not Acceptable")),
        (680, "Odd", False, "kazoo-4.3", (480, "Odd")),
        (420, "Bad Extension", False, "kazoo-4.3", (486, "Unable to Comply")),
        (488, "Not Acceptable Here", False, "kazoo-4.3", (486, "Unable to Comply")),
        (503, "Service Unavailable", False, "kazoo-4.3", (486, "Unable to Comply")),
        (488, "Not Acceptable Here", True, "kazoo-4.3", (488, "Not Acceptable Here")),
        (480, "Temporarily Unavailable", True, "kazoo-4.3", (603, "Endpoint Not Available")),
        (487, "Request Terminated", True, "kazoo-4.3", (487, "Request Terminated")),
        (200, "OK", True, "kazoo-4.3", (200, "OK")),
    ],
)
def test_failure_route(
    code: int, reason: str, after_18x: bool, profile: str, expected: tuple[int, str]
) -> None:
    verdict = rewrite_failure(code, reason, after_18x, release(profile))
    assert (verdict.code, verdict.reason) == expected


def test_failure_route_log_lines() -> None:
    """The lines are the release's own (harness.model.sbc_lines): 4.3 relays a media 407 and 604, 5.x has
    no 407 branch (one more 4xx: 486) and logs the 604 before overriding it."""
    assert rewrite_failure(686, "PICNIC", False, KAZOO_4_3).lines == (
        ("sending_6xx", {"code": 686, "reason": "PICNIC", "new_code": 486}),
    )
    assert rewrite_failure(403, "Forbidden", False, KAZOO_4_3, source_ip="127.0.0.66").lines == (
        ("failed_auth", {"ip": "127.0.0.66"}),
    )
    challenged = rewrite_failure(407, "Proxy Authentication Required", False, KAZOO_4_3, media_uri="sip:x:1")
    assert challenged.lines == (("media_challenged", {"uri": "sip:x:1"}),)
    on_5 = rewrite_failure(407, "Proxy Authentication Required", False, KAZOO_5)
    assert (on_5.code, on_5.reason, on_5.lines[0][0]) == (486, "Unable to Comply", "internal_reply")
    nope = {"code": 604, "reason": "Nope Nope Nope"}
    assert rewrite_failure(604, "Nope Nope Nope", False, KAZOO_4_3).lines == (("reply_604", nope),)
    assert rewrite_failure(604, "Nope Nope Nope", False, KAZOO_5).lines == (
        ("reply_604", nope),
        ("override_604", {"code": 486, "reason": "Unable to Comply"}),
    )
    assert rewrite_failure(607, "Unwanted", False, KAZOO_4_3).code == 407
    assert rewrite_failure(607, "Unwanted", False, KAZOO_5).code == 607


def test_failure_route_leaves_a_cancelled_transaction_alone() -> None:
    verdict = rewrite_failure(487, "Request Terminated", False, KAZOO_4_3, cancelled=True)
    assert (verdict.code, verdict.reason) == (487, "Request Terminated")


def test_call_barred_is_relayed() -> None:
    verdict = rewrite_failure(403, "call barred", False, KAZOO_4_3)
    assert (verdict.code, verdict.reason) == (403, "call barred")


@pytest.mark.parametrize(
    ("agent", "scanner"),
    [
        ("friendly-scanner", True),
        ("sundayddr", True),
        ("pplsip", True),
        ("friendly-scanner 2", False),  # equality, not containment, for the first three
        ("x NiceGuy y", True),
        ("PortSIP VoIP SDK", True),
        ("sipcli/v1.8", True),
        ("kazoo-harness/0.1", False),
        (None, False),
    ],
)
def test_scanner_user_agents(agent: str | None, scanner: bool) -> None:
    assert is_scanner(agent, KAZOO_4_3) is scanner
    assert is_scanner(agent, KAZOO_5) is scanner


def test_qnq_is_a_scanner_on_5x_only() -> None:  # 5.x sanity.cfg:63 adds it; 4.3's list has no QNQ
    assert is_scanner("QNQ", KAZOO_5) and not is_scanner("QNQ", KAZOO_4_3)


@pytest.mark.parametrize(
    ("edit", "insane"),
    [
        (lambda t: t, False),
        (lambda t: t.replace("CSeq: 1 INVITE", "CSeq: 1 BYE"), True),
        (lambda t: t.replace("CSeq: 1 INVITE", "CSeq: x INVITE"), True),
        (lambda t: t.replace("Call-ID: c1\r\n", ""), True),
        (lambda t: t.replace("Content-Length: 0", "Content-Length: 10"), True),
        (lambda t: t.replace(" SIP/2.0\r\n", " SIP/3.0\r\n", 1), True),
        (lambda t: t.replace("INVITE sip:", "INVITE mailto:", 1), True),
        (lambda t: t.replace("Content-Length: 0", "Expires: soon\r\nContent-Length: 0"), True),
    ],
)
def test_sanity_checks(edit: object, insane: bool) -> None:
    text = edit(INVITE)  # type: ignore[operator]
    assert (sanity_failure(request(text), "udp") is not None) is insane


def test_content_length_is_not_compared_on_streams() -> None:
    text = INVITE.replace("Content-Length: 0", "Content-Length: 10")
    assert sanity_failure(request(text), "tcp") is None


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        (lambda t: t, None),
        (lambda t: t.replace(" SIP/2.0\r\n", " SIP/7.0\r\n", 1), 505),
        (lambda t: t.replace("To: <sip:+14155550100@127.0.0.1>\r\n", ""), 400),
        (lambda t: t.replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS"), 400),
        (lambda t: t.replace("INVITE sip:", "INVITE mailto:", 1), 416),
        (lambda t: t.replace("Content-Length: 0", "Require: 100rel\r\nContent-Length: 0"), 420),
        (lambda t: t.replace("Content-Length: 0", "Require: replaces, path\r\nContent-Length: 0"), None),
        (lambda t: t.replace("Content-Length: 0", "Content-Length: 5"), 400),
    ],
)
def test_sofia_checks(edit: object, code: int | None) -> None:
    problem = direct_reach_problem(request(edit(INVITE)), "udp")  # type: ignore[operator]
    assert (problem[0] if problem else None) == code


def test_callflow_behaviour_from_flags() -> None:
    assert callflow_behaviour({"flags": ["busy"]}) == "busy"
    assert callflow_behaviour({"flags": ["ring_forever"]}) == "ring_forever"
    assert callflow_behaviour({"model_behaviour": "no_media"}) == "no_media"
    assert callflow_behaviour({"flags": ["something-else"]}) == "answer"


def test_reorder_response_from_system_config() -> None:
    store = DocumentStore()
    assert reorder_response(store) == (604, "Nope Nope Nope")
    store.create_db("system_config")
    store.put(
        "system_config",
        {"_id": "reorder", "default": {"unknown_number": {"response_code": 404, "response_message": "Gone"}}},
    )
    assert reorder_response(store) == (404, "Gone")


RELAYED = (
    "INVITE sip:+14155550100@127.0.0.1:5080 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKsbc1;rport\r\n"
    "Record-Route: <sip:127.0.0.1:5060;lr>\r\n"
    "{carrier_vias}"
    'From: "Caller" <sip:a@127.0.0.10>;tag=1\r\nTo: <sip:+14155550100@127.0.0.1>\r\n'
    "Call-ID: c1\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n"
)


@given(
    code=st.sampled_from([100, 180, 183, 200, 403, 407, 480, 486, 487, 488, 500, 603, 604, 686]),
    reason=st.text(
        st.characters(min_codepoint=32, max_codepoint=0x2FF, blacklist_characters="\r\n"), max_size=20
    ),
    vias=st.lists(
        st.sampled_from(
            [
                "v: SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bKc",
                "Via: SIP/2.0/TCP h;branch=z9hG4bKd, SIP/2.0/UDP g",
            ]
        ),
        max_size=3,
    ),
    to_tag=st.sampled_from([None, "t1"]),
    body=st.sampled_from([b"", b"v=0\r\n"]),
)
def test_the_sbc_reads_a_media_answer_from_its_bytes_as_the_parser_does(
    code: int, reason: str, vias: list[str], to_tag: str | None, body: bytes
) -> None:
    """The SBC reads the media role's answers from their bytes (harness.sip.scan); whatever the media
    role renders (harness.sip.response, as MediaRole._respond calls it), that reading is the parser's."""
    invite = request(RELAYED.format(carrier_vias="".join(f"{v}\r\n" for v in vias)))
    data = render_response(
        invite, code, reason, headers=[("Contact", "<sip:x@127.0.0.1:5080>")], body=body, to_tag=to_tag,
        content_type="application/sdp" if body else None,
    )  # fmt: skip
    by_bytes = read_media_answer(data)
    assert by_bytes is not None and by_bytes == parse_media_answer(data)
    assert (by_bytes.branch, by_bytes.method, by_bytes.code) == ("z9hG4bKsbc1", "INVITE", code)
    relayed = parse_message(by_bytes.relayed(by_bytes.start_line))
    assert [v.branch for v in relayed.vias] == [v.branch for v in invite.vias[1:]]


def test_an_answer_the_bytes_do_not_tell_goes_to_the_parser() -> None:
    both_on_one_line = (
        b"SIP/2.0 604 Nope\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKsbc1, SIP/2.0/UDP c\r\n"
        b"To: <sip:x@h>;tag=1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    assert read_media_answer(both_on_one_line) is None
    parsed = parse_media_answer(both_on_one_line)
    assert parsed is not None and (parsed.branch, parsed.code, parsed.to) == (
        "z9hG4bKsbc1",
        604,
        "<sip:x@h>;tag=1",
    )
    assert read_media_answer(b"INVITE sip:x SIP/2.0\r\n\r\n") is None
    assert parse_media_answer(b"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n") is None

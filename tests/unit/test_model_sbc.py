"""The SBC and media roles' pure decisions: failure-route rewrites, sanity and sofia checks, scanners."""

from __future__ import annotations

from typing import cast

import pytest

from harness.kazoo.release import KAZOO_4_3, KAZOO_5, release
from harness.model.media import direct_reach_problem
from harness.model.routing import callflow_behaviour, reorder_response
from harness.model.sbc import is_scanner, rewrite_failure, sanity_failure
from harness.model.store import DocumentStore
from harness.sip.message import Request, parse_message

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

"""The corpus loader, the loopback guard and the conformance table, without sockets."""

from __future__ import annotations

import pytest

from harness.interop.conformance import Answer, Row, cell_summary, recorded_answers, render_table
from harness.interop.corpus import (
    CorpusMessage,
    leaves_loopback,
    leaves_loopback_through_kazoo,
    rfc4475_verdicts,
    via_port,
)


def _message(data: bytes, name: str = "x") -> CorpusMessage:
    return CorpusMessage("rfc4475", name, data, "verdict")


README = """| files | RFC section | verdict |
|---|---|---|
| badinv01 | 3.1.2.1 | 400 |
| ltgtruri lwsstart | 3.1.2.7/9 | 400, or accept liberally |
"""


def test_rfc4475_verdicts_come_from_the_readme_table() -> None:
    verdicts = rfc4475_verdicts(README)
    assert verdicts == {
        "badinv01": "3.1.2.1: 400",
        "ltgtruri": "3.1.2.7/9: 400, or accept liberally",
        "lwsstart": "3.1.2.7/9: 400, or accept liberally",
    }


@pytest.mark.parametrize(
    ("via", "port"),
    [
        (b"Via: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bK1", 5050),
        (b"Via: SIP/2.0/UDP host.example.com;branch=z9hG4bK1", 5060),
        (b"v: SIP/2.0/TCP [2001:db8::9:1]:6050;branch=z9hG4bK1", 6050),
        (b"Via  : SIP  /   2.0 / UDP 192.0.2.2;branch=z9hG4bK1", 5060),
        (b"Via: SIP/2.0/UDP 192.0.2.2:99999", 5060),
        (b"To: <sip:a@b>", 5060),
    ],
)
def test_via_port_is_where_a_via_following_element_answers(via: bytes, port: int) -> None:
    assert via_port(b"OPTIONS sip:a@b SIP/2.0\r\n" + via + b"\r\n\r\n") == port


def test_in_dialog_request_with_a_foreign_route_would_leave_loopback() -> None:
    data = (
        b"BYE sip:a@b SIP/2.0\r\nTo: <sip:a@b> ;  tag = 1\r\nRoute:\r\n <sip:services.example.com;lr>\r\n\r\n"
    )
    assert "services.example.com" in (leaves_loopback(_message(data)) or "")


def test_routes_on_initial_requests_or_to_loopback_stay_on_loopback() -> None:
    initial = b"MESSAGE sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\nRoute: <sip:192.0.2.1;lr>\r\n\r\n"
    loopback = b"BYE sip:a@b SIP/2.0\r\nTo: <sip:a@b>;tag=1\r\nRoute: <sip:127.0.0.1:5080;lr>\r\n\r\n"
    assert leaves_loopback(_message(initial)) is None
    assert leaves_loopback(_message(loopback)) is None


def test_a_response_with_a_second_via_would_be_forwarded_there() -> None:
    two = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.198\r\nVia: SIP/2.0/UDP 255.255.255.255\r\n\r\n"
    one = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1\r\n\r\n"
    assert "255.255.255.255" in (leaves_loopback(_message(two)) or "")
    assert leaves_loopback(_message(one)) is None


def test_agreement_compares_codes_and_accepts_only_listed_races() -> None:
    row = Row(_message(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n", "dblreq"))
    row.answers[("model", "udp")] = Answer("response", 405, "Method Not Allowed")
    row.answers[("kamailio", "udp")] = Answer("response", 405, "Not Allowed Here")
    row.answers[("model", "tcp")] = Answer("closed")
    row.answers[("kamailio", "tcp")] = Answer("response", 405, "Method Not Allowed")
    assert row.agree("udp") is True
    assert row.agree("tcp") is True  # dblreq over TCP: Kamailio itself races its 405 and its close
    row.answers[("model", "udp")] = Answer("silence", ended_early=True)
    assert row.agree("udp") is False
    # the same answer agrees even where a race is listed (5.x challenges dblreq's REGISTER: 407 both)
    row.answers[("model", "tcp")] = Answer("response", 407, "Proxy Authentication Required")
    row.answers[("kamailio", "tcp")] = Answer("response", 407, "Proxy Authentication Required")
    assert row.agree("tcp") is True


def test_the_table_reads_back_into_the_answers_it_shows() -> None:
    row = Row(_message(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n", "zeromf"))
    row.answers[("model", "udp")] = Answer("response", 483, "Too Many Hops", evidence="too much hops")
    row.answers[("kamailio", "udp")] = Answer("response", 483, "Too Many Hops")
    row.answers[("model", "tcp")] = Answer("silence", ended_early=True, serving=False)
    row.answers[("kamailio", "tcp")] = Answer("not sent", note="not sent: would leave loopback: a | b")
    table = render_table([row], "kazoo-4.3")
    assert "**stopped serving**" in table and "udp: yes, tcp: —" in table
    assert recorded_answers(table) == {("zeromf", "udp"): "483", ("zeromf", "tcp"): "not sent"}
    assert recorded_answers(table, "model") == {("zeromf", "udp"): "483", ("zeromf", "tcp"): "silence"}


@pytest.mark.parametrize(
    ("cell", "summary"),
    [
        ("405 Method Not Allowed", "405"),
        ("silence (log)", "silence"),
        ("closed", "closed"),
        ("not sent", "not sent"),
    ],
)
def test_cell_summary(cell: str, summary: str) -> None:
    assert cell_summary(cell) == summary


def test_kazoo_is_sent_no_in_dialog_request_to_a_request_uri_off_loopback() -> None:
    """Kazoo 5.x relays an in-dialog request it cannot loose-route to its Request-URI (seen: a DNS query
    for host.example.net during a conformance run); the lab answers 481, so only Kazoo needs this."""
    bye = (
        b"BYE sip:user@host.example.net SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1\r\nTo: <sip:a@b>;tag=1\r\n\r\n"
    )
    assert leaves_loopback(_message(bye)) is None
    assert "host.example.net" in (leaves_loopback_through_kazoo(_message(bye)) or "")
    local = bye.replace(b"host.example.net", b"127.0.0.1")
    initial = bye.replace(b";tag=1", b"")
    assert leaves_loopback_through_kazoo(_message(local)) is None
    assert leaves_loopback_through_kazoo(_message(initial)) is None

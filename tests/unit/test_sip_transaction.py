"""The client transaction state machines, driven by a fake clock (plain floats) and crafted bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.sip.message import Request, Response, parse_message
from harness.sip.transaction import (
    Action,
    Deliver,
    InviteClientTransaction,
    NonInviteClientTransaction,
    Send,
    State,
    Terminated,
    TimedOut,
    Timers,
    ack_for_non_2xx,
)

BRANCH = "z9hG4bK-test-1"
INVITE = (
    "INVITE sip:+14155550100@127.0.0.1:5060 SIP/2.0\r\n"
    f"Via: SIP/2.0/UDP 127.0.0.66:5070;branch={BRANCH};rport\r\n"
    "Max-Forwards: 70\r\n"
    "Route: <sip:127.0.0.1;lr>\r\n"
    "From: <sip:+12125550000@127.0.0.66>;tag=from-1\r\n"
    "To: <sip:+14155550100@127.0.0.1>\r\n"
    "Call-ID: call-1@127.0.0.66\r\n"
    "CSeq: 7 INVITE\r\n"
    "Content-Length: 0\r\n"
    "\r\n"
).encode()


def invite() -> Request:
    msg = parse_message(INVITE)
    assert isinstance(msg, Request)
    return msg


def response(code: int, *, branch: str = BRANCH, method: str = "INVITE", to_tag: str = "to-9") -> Response:
    msg = parse_message(
        (
            f"SIP/2.0 {code} Reason\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.66:5070;branch={branch};rport=5070\r\n"
            "From: <sip:+12125550000@127.0.0.66>;tag=from-1\r\n"
            f"To: <sip:+14155550100@127.0.0.1>;tag={to_tag}\r\n"
            "Call-ID: call-1@127.0.0.66\r\n"
            f"CSeq: 7 {method}\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
    )
    assert isinstance(msg, Response)
    return msg


def sends(actions: list[Action]) -> list[bytes]:
    return [a.data for a in actions if isinstance(a, Send)]


def run_clock(txn: InviteClientTransaction | NonInviteClientTransaction, until: float) -> list[float]:
    """Tick exactly at every deadline up to ``until``; return the times a Send happened."""
    times: list[float] = []
    while txn.next_deadline is not None and txn.next_deadline <= until:
        now = txn.next_deadline
        times += [now] * len(sends(txn.tick(now)))
    return times


def test_timer_a_doubles_without_t2_cap_until_timer_b() -> None:
    txn = InviteClientTransaction(invite(), reliable=False, timers=Timers(t1=0.5, t2=4.0))
    assert sends(txn.start(0.0)) == [INVITE]
    times = run_clock(txn, until=31.9)
    assert times == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert txn.state is State.CALLING
    assert txn.next_deadline == 32.0
    actions = txn.tick(32.0)
    assert actions == [TimedOut(), Terminated()]
    assert txn.state is State.TERMINATED
    assert txn.next_deadline is None


def test_custom_timer_b() -> None:
    txn = InviteClientTransaction(invite(), reliable=False, timers=Timers(t1=0.1, timer_b=0.35))
    txn.start(10.0)
    assert run_clock(txn, until=10.34) == pytest.approx([10.1, 10.3])
    assert txn.tick(10.35) == [TimedOut(), Terminated()]


def test_late_tick_catches_up_in_sequence() -> None:
    txn = InviteClientTransaction(invite(), reliable=False, timers=Timers(t1=0.5))
    txn.start(0.0)
    assert len(sends(txn.tick(4.0))) == 3  # 0.5, 1.5, 3.5 were due
    assert txn.next_deadline == 7.5


def test_reliable_transport_never_retransmits() -> None:
    txn = InviteClientTransaction(invite(), reliable=True, timers=Timers(t1=0.5))
    txn.start(0.0)
    assert txn.next_deadline == 32.0
    assert run_clock(txn, until=31.9) == []
    assert txn.tick(32.0) == [TimedOut(), Terminated()]


def test_provisional_stops_retransmission_and_timer_b() -> None:
    txn = InviteClientTransaction(invite(), reliable=False, timers=Timers(t1=0.5))
    txn.start(0.0)
    txn.tick(0.5)
    r100 = response(100)
    assert txn.receive(r100, 0.7) == [Deliver(r100)]
    assert txn.state is State.PROCEEDING
    assert txn.next_deadline is None
    assert txn.tick(100.0) == []


def test_non_2xx_final_is_acked_with_same_branch_and_response_to_tag() -> None:
    txn = InviteClientTransaction(invite(), reliable=False, timers=Timers(timer_d=32.0))
    txn.start(0.0)
    r486 = response(486, to_tag="abc")
    actions = txn.receive(r486, 1.0)
    assert actions[1:] == [Deliver(r486)]
    ack = parse_message(sends(actions)[0])
    assert isinstance(ack, Request)
    assert ack.method == "ACK"
    assert ack.uri_text == "sip:+14155550100@127.0.0.1:5060"
    assert ack.top_via.branch == BRANCH
    assert len(ack.vias) == 1
    assert ack.to.tag == "abc"
    assert ack.from_.tag == "from-1"
    assert ack.call_id == "call-1@127.0.0.66"
    assert (ack.cseq.number, ack.cseq.method) == (7, "ACK")
    assert ack.values("route") == ["<sip:127.0.0.1;lr>"]
    assert ack.content_length == 0
    assert txn.state is State.COMPLETED
    assert txn.next_deadline == 33.0


def test_retransmitted_final_is_absorbed_by_resending_the_ack() -> None:
    txn = InviteClientTransaction(invite(), reliable=False, timers=Timers(timer_d=32.0))
    txn.start(0.0)
    first = sends(txn.receive(response(404), 1.0))
    again = txn.receive(response(404), 2.0)
    assert again == [Send(first[0])]  # no second Deliver
    assert txn.tick(32.9) == []
    assert txn.tick(33.0) == [Terminated()]
    assert txn.receive(response(404), 34.0) == []


def test_reliable_non_2xx_terminates_at_once() -> None:
    txn = InviteClientTransaction(invite(), reliable=True, timers=Timers())
    txn.start(0.0)
    actions = txn.receive(response(407), 0.1)
    assert [type(a) for a in actions] == [Send, Deliver, Terminated]
    assert txn.state is State.TERMINATED


def test_2xx_is_delivered_and_terminates_without_ack() -> None:
    txn = InviteClientTransaction(invite(), reliable=False, timers=Timers())
    txn.start(0.0)
    txn.receive(response(180), 0.1)
    r200 = response(200)
    assert txn.receive(r200, 0.2) == [Deliver(r200), Terminated()]
    assert txn.ack is None


def test_response_of_another_transaction_is_ignored() -> None:
    txn = InviteClientTransaction(invite(), reliable=False, timers=Timers())
    txn.start(0.0)
    assert txn.receive(response(486, branch="z9hG4bK-other"), 0.1) == []
    assert txn.receive(response(200, method="BYE"), 0.1) == []
    assert txn.state is State.CALLING


def test_ack_for_mutated_invite_without_cseq_takes_the_response_number() -> None:
    broken = parse_message(INVITE.replace(b"CSeq: 7 INVITE\r\n", b""))
    assert isinstance(broken, Request)
    ack = parse_message(ack_for_non_2xx(broken, response(400)))
    assert isinstance(ack, Request)
    assert ack.cseq.number == 7


def non_invite(method: str = "OPTIONS") -> Request:
    msg = parse_message(INVITE.replace(b"INVITE", method.encode()))
    assert isinstance(msg, Request)
    return msg


def test_timer_e_caps_at_t2_and_timer_f_times_out() -> None:
    txn = NonInviteClientTransaction(non_invite(), reliable=False, timers=Timers(t1=0.5, t2=4.0))
    txn.start(0.0)
    times = run_clock(txn, until=31.9)
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert txn.tick(32.0) == [TimedOut(), Terminated()]


def test_non_invite_provisional_retransmits_at_t2_then_final_completes() -> None:
    txn = NonInviteClientTransaction(non_invite("BYE"), reliable=False, timers=Timers(t1=0.5, t2=4.0, t4=5.0))
    txn.start(0.0)
    txn.tick(0.5)  # next E at 1.5 with interval 1.0
    txn.receive(response(100, method="BYE"), 0.6)
    assert run_clock(txn, until=9.9) == [1.5, 5.5, 9.5]
    ok = response(200, method="BYE")
    assert txn.receive(ok, 10.0) == [Deliver(ok)]
    assert txn.receive(ok, 10.5) == []  # retransmission absorbed
    assert txn.next_deadline == 15.0
    assert txn.tick(15.0) == [Terminated()]


def test_non_invite_reliable_has_no_timer_e() -> None:
    txn = NonInviteClientTransaction(non_invite(), reliable=True, timers=Timers(t1=0.5))
    txn.start(0.0)
    assert txn.next_deadline == 32.0
    ok = response(200, method="OPTIONS")
    assert txn.receive(ok, 0.1) == [Deliver(ok), Terminated()]


@given(st.lists(st.floats(min_value=0.0, max_value=40.0), max_size=30))
def test_any_tick_pattern_sends_exactly_the_due_retransmissions(ticks: list[float]) -> None:
    """However irregularly the adaptor ticks, the number of INVITE copies sent by time t is the number
    of timer A firings due by t (T1·(2^k − 1) before timer B), and timer B fires once."""
    txn = InviteClientTransaction(invite(), reliable=False, timers=Timers(t1=0.5))
    sent = len(sends(txn.start(0.0)))
    timed_out = 0
    for now in sorted(ticks):
        before = sent
        actions = txn.tick(now)
        sent += len(sends(actions))
        timed_out += actions.count(TimedOut())
        if now < 32.0:
            assert sent == 1 + len([a for a in (0.5, 1.5, 3.5, 7.5, 15.5, 31.5) if a <= now])
        else:  # a tick at or past timer B times out without catching up on missed copies
            assert sent == before
    assert timed_out == (1 if ticks and max(ticks) >= 32.0 else 0)

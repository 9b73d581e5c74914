"""The load path's hot loop against a real UDP peer: outcomes, ACKs, timer A, deadlines, CANCEL, the
2xx hang-up, source pools and the concurrency cap. No Locust here: the sender reports to a list."""

from __future__ import annotations

import gc
from collections import Counter
from typing import Any

import pytest
from load_peer import Address, UdpPeer, answer

from harness.interop.sipp import UAS_BUFFER, Sipp, SippOptions, scenario_path, sipp_available
from harness.load.engine import NO_FINAL, SILENCE, Sender, SenderConfig
from harness.load.schedule import Schedule
from harness.sip.message import Request


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []
        self.provisionals: list[float] = []

    def call(self, name: str, latency_ms: float, size: int) -> None:
        self.calls.append((name, latency_ms))

    def provisional(self, latency_ms: float) -> None:
        self.provisionals.append(latency_ms)

    @property
    def names(self) -> Counter[str]:
        return Counter(name for name, _ in self.calls)


def _run(peer: UdpPeer, calls: int = 20, rate: float = 400.0, **kwargs: Any) -> tuple[Recorder, Any]:
    config = SenderConfig(
        destination=peer.address,
        sources=kwargs.pop("sources", ["127.0.0.10"]),
        invite_fields={"ruri_user": "+14155550199"},
        mutators=kwargs.pop("mutators", []),
        seed=3,
        schedule=Schedule("constant", rate=rate, calls=calls),
        t1=kwargs.pop("t1", 0.05),
        timeout=kwargs.pop("timeout", 1.0),
        run_id=0xABCDEF,
        **kwargs,
    )
    recorder = Recorder()
    sender = Sender(config, recorder)
    try:
        counters = sender.run()
    finally:
        sender.close()
    return recorder, counters


def reject_604(request: Request, source: Address) -> list[tuple[float, bytes]]:
    if request.method == "INVITE":
        return [(0, answer(request, 100, "Trying")), (0, answer(request, 604, "Nope Nope Nope"))]
    return []


def test_each_call_is_one_outcome_and_each_non_2xx_final_is_acked() -> None:
    with UdpPeer(reject_604) as peer:
        recorder, counters = _run(peer, calls=30)
        acks = peer.wait_requests("ACK", counters.acks)
        sent = peer.requests("INVITE")
    assert recorder.names == Counter({"604 Nope Nope Nope": 30})
    assert len(recorder.provisionals) == 30
    invites = {r.call_id: r for r, _, _ in sent}
    # On a busy machine an answer can come after timer A: the retransmitted INVITE is answered again
    # and that 604 is ACKed again (RFC 3261 17.1.1.2), so the wire, not a fixed 30, is the reference.
    assert len(invites) == 30 and {ack.call_id for ack, _, _ in acks} == set(invites)
    assert len(acks) == counters.acks >= 30
    assert counters.retransmissions == len(sent) - 30
    for ack, _, _ in acks:
        invite = invites[ack.call_id]
        assert ack.top_via.branch == invite.top_via.branch  # RFC 3261 17.1.1.3: same transaction
        assert ack.to.tag == "peer" and ack.cseq.method == "ACK" and ack.uri_text == invite.uri_text
    assert counters.stray == 0


def test_a_retransmitted_final_is_acked_again() -> None:
    finals: list[bytes] = []

    def resend_the_previous(request: Request, source: Address) -> list[tuple[float, bytes]]:
        # as a UAS whose ACK was lost resends its 604 (timer G); it goes out before the next call's
        # answer, so the sender is still running when it arrives
        if request.method != "INVITE":
            return []
        again = [(0.0, finals[-1])] if finals else []
        finals.append(answer(request, 604, "Nope Nope Nope"))
        return [*again, (0.0, finals[-1])]

    with UdpPeer(resend_the_previous) as peer:
        recorder, counters = _run(peer, calls=10, rate=100, t1=0.5)
        acks = peer.wait_requests("ACK", 19)
        order = [r.call_id for r, _, _ in peer.first_requests("INVITE")]
    assert recorder.names == Counter({"604 Nope Nope Nope": 10})
    acked = Counter(ack.call_id for ack, _, _ in acks)
    assert [acked[call_id] for call_id in order] == [2] * 9 + [1]
    assert counters.acks == 19


def test_timer_a_retransmits_until_a_response() -> None:
    seen: set[str] = set()

    def deaf_once(request: Request, source: Address) -> list[tuple[float, bytes]]:
        if request.method != "INVITE":
            return []
        if request.call_id not in seen:
            seen.add(request.call_id)
            return []  # the first copy is "lost"
        return [(0, answer(request, 604, "Nope Nope Nope"))]

    with UdpPeer(deaf_once) as peer:
        recorder, counters = _run(peer, calls=10)
    assert recorder.names == Counter({"604 Nope Nope Nope": 10})
    assert counters.retransmissions == 10
    latencies = [ms for _, ms in recorder.calls]
    assert min(latencies) >= 45  # the answer came to the copy sent at T1 (50 ms)


def test_silence_ends_at_the_deadline_with_timer_a_doubling() -> None:
    with UdpPeer(lambda request, source: []) as peer:
        recorder, counters = _run(peer, calls=5, timeout=0.4)
    assert recorder.names == Counter({SILENCE: 5})
    assert counters.timeouts == 5
    # T1 = 50 ms: copies at 50, 150 and 350 ms before the 400 ms deadline
    assert counters.retransmissions == 15
    assert all(390 <= ms <= 600 for _, ms in recorder.calls)


def test_a_call_ringing_at_its_deadline_is_cancelled_and_its_487_acked() -> None:
    def ringing(request: Request, source: Address) -> list[tuple[float, bytes]]:
        if request.method == "INVITE":
            return [(0, answer(request, 180, "Ringing"))]
        if request.method == "CANCEL":
            invite = next(r for r, _, _ in peer.requests("INVITE") if r.call_id == request.call_id)
            return [(0, answer(request, 200, "OK")), (0, answer(invite, 487, "Request Terminated"))]
        return []

    with UdpPeer(ringing) as peer:
        recorder, counters = _run(peer, calls=5, timeout=0.4)
        deadline_acks = peer.wait_requests("ACK", 5)
    assert recorder.names == Counter({NO_FINAL: 5})
    assert counters.cancels == 5
    # no timer A after a provisional: without one, copies go at 50, 150 and 350 ms (4 per call); a
    # busy machine may deliver the 180 after the first, never after the second
    per_call = Counter(r.call_id for r, _, _ in peer.requests("INVITE"))
    assert max(per_call.values()) <= 2 and counters.retransmissions == sum(per_call.values()) - 5
    cancels = peer.requests("CANCEL")
    invites = {r.call_id: r for r, _, _ in peer.requests("INVITE")}
    assert all(c.top_via.branch == invites[c.call_id].top_via.branch for c, _, _ in cancels)
    assert len(deadline_acks) == 5  # the 487s came after the calls' deadlines and were still acknowledged


def test_a_2xx_is_acked_and_hung_up() -> None:
    def answered(request: Request, source: Address) -> list[tuple[float, bytes]]:
        if request.method == "INVITE":
            contact = f"<sip:peer@{peer.address[0]}:{peer.address[1]}>"
            return [(0, answer(request, 200, "OK", headers=[("Contact", contact)]))]
        if request.method == "BYE":
            return [(0, answer(request, 200, "OK"))]
        return []

    with UdpPeer(answered) as peer:
        recorder, counters = _run(peer, calls=8)
        acks, byes = peer.wait_requests("ACK", 8), peer.wait_requests("BYE", 8)
    assert recorder.names == Counter({"200 OK": 8})
    assert len(acks) == 8 and len(byes) == 8 and counters.bye_failures == 0
    invites = {r.call_id: r for r, _, _ in peer.requests("INVITE")}
    for ack, _, _ in acks:
        assert ack.top_via.branch != invites[ack.call_id].top_via.branch  # a 2xx ACK is its own transaction


def test_a_pool_spreads_calls_over_its_source_addresses() -> None:
    pool = ["127.0.2.1", "127.0.2.2", "127.0.2.3", "127.0.2.4"]
    late: list[str] = []

    def one_late_answer(request: Request, source: Address) -> list[tuple[float, bytes]]:
        # the first call is answered after timer A (50 ms): its retransmission is not another call,
        # as on a busy CI machine where any answer can be late
        if request.method == "INVITE" and (not late or late[0] == request.call_id):
            late.append(request.call_id)
            return [(0.12, answer(request, 604, "Nope Nope Nope"))] if len(late) == 1 else []
        return reject_604(request, source)

    with UdpPeer(one_late_answer) as peer:
        recorder, _ = _run(peer, calls=40, sources=pool)
        assert len(peer.requests("INVITE")) > 40  # the late call was retransmitted
        by_source = Counter(source[0] for _, source, _ in peer.first_requests("INVITE"))
        vias = {r.top_via.host for r, _, _ in peer.requests("INVITE")}
    assert by_source == Counter({ip: 10 for ip in pool})
    assert vias == set(pool)  # each source's template names its own address
    assert recorder.names == Counter({"604 Nope Nope Nope": 40})


def test_the_concurrency_cap_holds_calls_back() -> None:
    def slow(request: Request, source: Address) -> list[tuple[float, bytes]]:
        return [(0.05, answer(request, 604, "Nope Nope Nope"))] if request.method == "INVITE" else []

    with UdpPeer(slow) as peer:
        recorder, counters = _run(peer, calls=10, rate=1000, concurrency=2)
        starts = sorted(t for _, _, t in peer.first_requests("INVITE"))
    assert recorder.names == Counter({"604 Nope Nope Nope": 10})
    assert counters.capped > 0
    # at most two calls in flight: the third INVITE waits for the first final (50 ms)
    assert starts[2] - starts[0] >= 0.045


def test_responses_of_other_runs_are_stray() -> None:
    def foreign(request: Request, source: Address) -> list[tuple[float, bytes]]:
        if request.method != "INVITE":
            return []
        other = request.replace_header("Via", "SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bKnotours")
        assert isinstance(other, Request)
        return [(0, answer(other, 604, "Nope")), (0, answer(request, 604, "Nope Nope Nope"))]

    with UdpPeer(foreign) as peer:
        recorder, counters = _run(peer, calls=5)
    assert recorder.names == Counter({"604 Nope Nope Nope": 5})
    assert counters.stray == 5


@pytest.mark.parametrize("mutators", [["pad=1200"], ["max-forwards=5"]])
def test_mutated_invites_go_out_as_rendered(mutators: list[str]) -> None:
    with UdpPeer(reject_604) as peer:
        recorder, _ = _run(peer, calls=3, mutators=mutators)
        invites = peer.requests("INVITE")
    assert recorder.names == Counter({"604 Nope Nope Nope": 3})
    if mutators == ["pad=1200"]:
        assert {len(r.to_bytes()) for r, _, _ in invites} == {1200}
    else:
        assert {r.max_forwards for r, _, _ in invites} == {5}


@pytest.mark.skipif(sipp_available() is not None, reason=sipp_available() or "")
def test_the_hot_path_gives_the_garbage_collector_nothing_to_chase() -> None:
    """Calls live in preallocated slots and their messages are bytes: placing 2,000 of them leaves no
    tracked container behind per call, so the collector's first generation never fills (700 objects) and no
    collection runs. Per-call objects kept for the run (transactions, exchanges, result lists) would make it
    run. The peer is SIPp, in its own process, so only the sender's allocations count."""
    uas = Sipp(
        SippOptions(
            scenario_path("uas_604.xml"),
            "127.0.0.1",
            calls=10**6,
            rate=1,
            run_timeout=60,
            recv_timeout=None,
            buff_size=UAS_BUFFER,
        )
    ).start()
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    try:
        uas.wait_listening()
        config = SenderConfig(
            destination=uas.address,
            sources=["127.0.0.10"],
            invite_fields={"ruri_user": "+14155550199", "rtp_port": None},
            mutators=[],
            seed=3,
            schedule=Schedule("constant", rate=2000, calls=2000),
            timeout=2.0,
        )
        sender = Sender(config, Counting())
        gc.collect()
        gc.callbacks.append(count)
        try:
            counters = sender.run()
        finally:
            gc.callbacks.remove(count)
            sender.close()
    finally:
        uas.stop()
    assert counters.acks >= 2000 and counters.timeouts == 0
    assert collections == [], f"collections during the run, by generation: {collections}"


class Counting:
    """A reporter that keeps only counts (ints are not tracked by the collector)."""

    def __init__(self) -> None:
        self.calls = 0

    def call(self, name: str, latency_ms: float, size: int) -> None:
        self.calls += 1

    def provisional(self, latency_ms: float) -> None:
        pass

"""The carrier UA over real loopback UDP against a scripted responder (no mocks)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine
from typing import Any, TypeVar

from carrier_responder import Responder, final_for_invite, reply, silent

from harness.net.carrier import CarrierUA
from harness.net.exchange import Exchange
from harness.sip import builder
from harness.sip.digest import Credentials, make_challenge_value, verify
from harness.sip.message import Request, parse_message
from harness.sip.mutators import apply_mutators
from harness.sip.transaction import Timers
from harness.targets.gate import own_stack_gate

GATE = own_stack_gate("the harness's own tests")  # these tests send to their own peers
SOURCE = "127.0.0.66"
FAST = Timers(t1=0.04, timer_d=0.2, t4=0.2)
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 20))


def invite_for(ua: CarrierUA, target: tuple[str, int], **fields: Any) -> Request:
    return builder.build_invite(ua.spec(target, **{"seed": 7, **fields}))


def test_source_address_retransmissions_and_ack_after_4xx() -> None:
    copies = 0

    def handler(req: Request | None, data: bytes) -> list[bytes]:
        nonlocal copies
        if req is not None and req.method == "INVITE":
            copies += 1
            if copies == 3:  # ignore the first two: the UA must retransmit
                return [reply(req, 486, "Busy Here")]
        return []

    async def scenario() -> tuple[Exchange, Responder, Request, int]:
        async with Responder(handler) as peer:
            ua = CarrierUA(SOURCE, transport="udp", timers=FAST, gate=GATE)
            with_ua = invite_for(ua, peer.address)
            exchange = await ua.invite(with_ua, peer.address, timeout=3)
            await peer.wait_for(lambda p: bool(p.requests("ACK")))
            ua.close()
            return exchange, peer, with_ua, ua.local_port

    exchange, peer, invite, port = run(scenario())
    assert {src for _, src in peer.received} == {(SOURCE, port)}
    invites = [data for data, _ in peer.received if data.startswith(b"INVITE")]
    assert invites == [invite.to_bytes()] * 3
    assert exchange.outcome == "response"
    assert exchange.final_code == 486
    assert [e.first_line.split()[0] for e in exchange.sent] == ["INVITE", "INVITE", "INVITE", "ACK"]
    ack = peer.requests("ACK")[0]
    assert ack.top_via.branch == invite.top_via.branch
    assert ack.to.tag == "peer-tag"
    assert ack.cseq.number == invite.cseq.number
    assert exchange.local == (SOURCE, port)
    assert exchange.received[0].src == peer.address


def test_mutated_bytes_arrive_exactly() -> None:
    async def scenario() -> tuple[Exchange, Responder, bytes]:
        async with Responder(final_for_invite(400, "Missing CSeq")) as peer:
            ua = CarrierUA(SOURCE, timers=FAST, gate=GATE)
            data = apply_mutators(invite_for(ua, peer.address).to_bytes(), ["drop-header=Max-Forwards"], 1)
            exchange = await ua.invite(data, peer.address, timeout=3)
            ua.close()
            return exchange, peer, data

    exchange, peer, data = run(scenario())
    assert b"Max-Forwards" not in data
    assert peer.received[0][0] == data
    assert exchange.sent[0].data == data
    assert exchange.final_code == 400


def test_2xx_gets_ack_with_new_branch_then_bye() -> None:
    async def scenario() -> tuple[Exchange, Responder, Request]:
        async with Responder(final_for_invite(200, "OK")) as peer:
            ua = CarrierUA(SOURCE, timers=FAST, gate=GATE)
            invite = invite_for(ua, peer.address)
            exchange = await ua.invite(invite, peer.address, timeout=3, bye_after=0.0)
            ua.close()
            return exchange, peer, invite

    exchange, peer, invite = run(scenario())
    assert [r.method for r in peer.requests()] == ["INVITE", "ACK", "BYE"]
    ack, bye = peer.requests("ACK")[0], peer.requests("BYE")[0]
    assert ack.top_via.branch not in (None, invite.top_via.branch)
    assert bye.top_via.branch not in (None, invite.top_via.branch, ack.top_via.branch)
    assert ack.to.tag == bye.to.tag == "peer-tag"
    assert bye.cseq.number == invite.cseq.number + 1
    assert exchange.final_code == 200
    assert exchange.received[-1].first_line == "SIP/2.0 200 OK"  # the BYE's 200


def test_retransmitted_2xx_gets_the_same_ack_again() -> None:
    def twice(req: Request | None, data: bytes) -> list[bytes]:
        if req is not None and req.method == "INVITE":
            return [reply(req, 200, "OK")] * 2  # as if our first ACK was lost
        return final_for_invite(200, "OK")(req, data)

    async def scenario() -> Responder:
        async with Responder(twice) as peer:
            ua = CarrierUA(SOURCE, timers=FAST, gate=GATE)
            await ua.invite(invite_for(ua, peer.address), peer.address, timeout=3, bye_after=0.1)
            ua.close()
            return peer

    peer = run(scenario())
    assert [r.method for r in peer.requests()] == ["INVITE", "ACK", "ACK", "BYE"]
    first, second = peer.requests("ACK")
    assert first.to_bytes() == second.to_bytes()


def test_bye_after_none_sends_no_bye() -> None:
    async def scenario() -> Responder:
        async with Responder(final_for_invite(200, "OK")) as peer:
            ua = CarrierUA(SOURCE, timers=FAST, gate=GATE)
            await ua.invite(invite_for(ua, peer.address), peer.address, timeout=3, bye_after=None)
            await peer.wait_for(lambda p: bool(p.requests("ACK")))
            ua.close()
            return peer

    assert [r.method for r in run(scenario()).requests()] == ["INVITE", "ACK"]


def test_407_answered_once_with_credentials() -> None:
    creds = Credentials("carrier", "s3cret")

    def handler(req: Request | None, data: bytes) -> list[bytes]:
        if req is None or req.method != "INVITE":
            return []
        auth = req.get("proxy-authorization")
        if auth is None:
            challenge = make_challenge_value("127.0.0.66", "nonce-1")
            return [
                reply(req, 407, "Proxy Authentication Required", headers=[("Proxy-Authenticate", challenge)])
            ]
        ok = verify(auth, "INVITE", creds.password, realm="127.0.0.66", nonce="nonce-1")
        return [reply(req, 604 if ok else 403, "Nope Nope Nope" if ok else "Forbidden")]

    async def scenario() -> tuple[Exchange, Responder]:
        async with Responder(handler) as peer:
            ua = CarrierUA(SOURCE, timers=FAST, gate=GATE)
            exchange = await ua.invite(
                invite_for(ua, peer.address), peer.address, timeout=3, credentials=creds
            )
            ua.close()
            return exchange, peer

    exchange, peer = run(scenario())
    first, second = peer.requests("INVITE")
    assert second.call_id == first.call_id
    assert second.cseq.number == first.cseq.number + 1
    assert second.top_via.branch != first.top_via.branch
    assert exchange.challenged
    assert exchange.final_code == 604  # the digest verified
    assert [r.code for r in exchange.responses] == [407, 604]


def test_407_without_credentials_is_the_final() -> None:
    async def scenario() -> Exchange:
        async with Responder(final_for_invite(407, "Proxy Authentication Required")) as peer:
            ua = CarrierUA(SOURCE, timers=FAST, gate=GATE)
            exchange = await ua.invite(invite_for(ua, peer.address), peer.address, timeout=3)
            ua.close()
            return exchange

    exchange = run(scenario())
    assert (exchange.final_code, exchange.challenged) == (407, False)


def test_cancel_after_first_provisional() -> None:
    def handler(req: Request | None, data: bytes) -> list[bytes]:
        if req is None or req.method == "ACK":
            return []
        if req.method == "INVITE":
            return [reply(req, 180, "Ringing")]
        invite = peer.requests("INVITE")[0]
        return [reply(req, 200, "OK"), reply(invite, 487, "Request Terminated")]

    peer = Responder(handler)

    async def scenario() -> Exchange:
        async with peer:
            ua = CarrierUA(SOURCE, timers=FAST, gate=GATE)
            exchange = await ua.invite(
                invite_for(ua, peer.address), peer.address, timeout=3, cancel_after_provisional=True
            )
            await peer.wait_for(lambda p: bool(p.requests("ACK")))
            ua.close()
            return exchange

    exchange = run(scenario())
    assert [r.method for r in peer.requests()] == ["INVITE", "CANCEL", "ACK"]
    cancel = peer.requests("CANCEL")[0]
    assert cancel.top_via.branch == peer.requests("INVITE")[0].top_via.branch
    assert exchange.provisional_codes == [180]
    assert exchange.final_code == 487


def ring_forever(req: Request | None, data: bytes) -> list[bytes]:
    if req is None or req.method == "ACK":
        return []
    if req.method == "INVITE":
        return [reply(req, 180, "Ringing")]
    return [reply(req, 200, "OK"), reply(req, 487, "Request Terminated").replace(b" CANCEL", b" INVITE")]


def test_ringing_at_the_deadline_is_cancelled_and_stays_silence() -> None:
    async def scenario() -> tuple[Exchange, Responder]:
        async with Responder(ring_forever) as peer:
            ua = CarrierUA(SOURCE, timers=FAST, gate=GATE)
            exchange = await ua.invite(invite_for(ua, peer.address), peer.address, timeout=0.3)
            await peer.wait_for(lambda p: bool(p.requests("ACK")))
            ua.close()
            return exchange, peer

    exchange, peer = run(scenario())
    assert [r.method for r in peer.requests()] == ["INVITE", "CANCEL", "ACK"]
    assert exchange.outcome == "silence"
    assert exchange.final is None
    assert exchange.provisional_codes == [180]
    assert any("CANCEL" in note for note in exchange.notes)


def test_silence_until_deadline_and_early_end() -> None:
    async def scenario() -> tuple[Exchange, Exchange]:
        async with Responder(silent) as peer:
            ua = CarrierUA(SOURCE, timers=Timers(t1=0.5), gate=GATE)
            timed_out = await ua.invite(invite_for(ua, peer.address), peer.address, timeout=0.3)
            early = asyncio.Event()
            task = asyncio.create_task(
                ua.invite(invite_for(ua, peer.address), peer.address, timeout=10, early_end=early)
            )
            await peer.wait_for(lambda p: len(p.received) == 2)
            early.set()
            ended = await asyncio.wait_for(task, 2)
            ua.close()
            return timed_out, ended

    timed_out, ended = run(scenario())
    assert (timed_out.outcome, timed_out.ended_early) == ("silence", False)
    assert timed_out.duration >= 0.3
    assert (ended.outcome, ended.ended_early) == ("silence", True)
    assert ended.duration < 10


def test_garbage_is_sent_once_as_is() -> None:
    garbage = b"\x00\x01 not SIP at all\r\n\r\n"

    async def scenario() -> tuple[Exchange, Responder]:
        async with Responder(silent) as peer:
            ua = CarrierUA(SOURCE, timers=Timers(t1=0.02), gate=GATE)
            exchange = await ua.invite(garbage, peer.address, timeout=0.3)
            ua.close()
            return exchange, peer

    exchange, peer = run(scenario())
    assert peer.received == [(garbage, (SOURCE, exchange.local[1]))]
    assert exchange.outcome == "silence"
    assert exchange.call_id is None


def test_unreachable_udp_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    async def scenario() -> Exchange:
        ua = CarrierUA(SOURCE, timers=FAST, gate=GATE)
        exchange = await ua.invite(
            invite_for(ua, ("127.0.0.1", closed_port)), ("127.0.0.1", closed_port), timeout=3
        )
        ua.close()
        return exchange

    exchange = run(scenario())
    assert exchange.outcome == "unreachable"
    assert exchange.error is not None and "unreachable" in exchange.error


def test_datagram_too_large_is_an_error_that_suggests_tcp() -> None:
    async def scenario() -> Exchange:
        async with Responder(silent) as peer:
            ua = CarrierUA(SOURCE, timers=FAST, gate=GATE)
            data = apply_mutators(invite_for(ua, peer.address).to_bytes(), ["pad=65508"])
            exchange = await ua.invite(data, peer.address, timeout=1)
            ua.close()
            return exchange

    exchange = run(scenario())
    assert exchange.outcome == "error"
    assert exchange.error is not None and "tcp" in exchange.error
    assert exchange.sent == []


def test_largest_datagram_is_sent() -> None:
    async def scenario() -> tuple[Exchange, Responder, bytes]:
        async with Responder(final_for_invite(486, "Busy Here")) as peer:
            ua = CarrierUA(SOURCE, timers=FAST, gate=GATE)
            data = apply_mutators(invite_for(ua, peer.address).to_bytes(), ["pad=65507"])
            exchange = await ua.invite(data, peer.address, timeout=3)
            ua.close()
            return exchange, peer, data

    exchange, peer, data = run(scenario())
    assert len(data) == 65507
    assert peer.received[0][0] == data
    assert exchange.final_code == 486


def test_options() -> None:
    async def scenario() -> tuple[Exchange, Responder]:
        async with Responder(final_for_invite(200, "Rawr!!")) as peer:
            ua = CarrierUA(SOURCE, timers=FAST, gate=GATE)
            exchange = await ua.options(peer.address, timeout=3)
            ua.close()
            return exchange, peer

    exchange, peer = run(scenario())
    assert peer.requests()[0].method == "OPTIONS"
    assert (exchange.method, exchange.final_code) == ("OPTIONS", 200)


def test_rtp_port_is_a_real_socket_on_the_source_address() -> None:
    ua = CarrierUA(SOURCE, gate=GATE)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as clash:
            try:
                clash.bind((SOURCE, ua.rtp_port))
            except OSError:
                pass
            else:
                raise AssertionError("the RTP port is not bound")
        body = invite_for(ua, ("127.0.0.1", 5060)).body
        assert f"m=audio {ua.rtp_port} ".encode() in body
        assert f"c=IN IP4 {SOURCE}".encode() in body
        assert isinstance(parse_message(invite_for(ua, ("127.0.0.1", 5060)).to_bytes()), Request)
    finally:
        ua.close()


def test_back_to_back_exchanges_reuse_the_source_port() -> None:
    async def scenario() -> list[Exchange]:
        async with Responder(final_for_invite(486, "Busy Here")) as peer:
            ua = CarrierUA(SOURCE, timers=FAST, gate=GATE)
            exchanges = [
                await ua.invite(invite_for(ua, peer.address, seed=i), peer.address, timeout=3)
                for i in range(3)
            ]
            ua.close()
            return exchanges

    exchanges = run(scenario())
    assert [e.final_code for e in exchanges] == [486, 486, 486]
    assert len({e.local for e in exchanges}) == 1

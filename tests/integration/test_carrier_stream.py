"""The carrier UA over real loopback TCP and TLS against a scripted responder (no mocks)."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from carrier_responder import CLOSE, Responder, final_for_invite, self_signed_tls

from harness.net.carrier import CarrierUA
from harness.net.exchange import Exchange
from harness.sip import builder
from harness.sip.message import Request
from harness.sip.mutators import apply_mutators
from harness.sip.transaction import Timers
from harness.targets.gate import own_stack_gate

GATE = own_stack_gate("the harness's own tests")  # these tests send to their own peers
SOURCE = "127.0.0.66"
FAST = Timers(t1=0.04, timer_d=0.2, t4=0.2)
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_tcp_frames_a_100000_byte_invite_and_acks_on_the_connection() -> None:
    async def scenario() -> tuple[Exchange, Responder, bytes]:
        async with Responder(final_for_invite(413, "Request Entity Too Large"), transport="tcp") as peer:
            ua = CarrierUA(SOURCE, transport="tcp", timers=FAST, gate=GATE)
            invite = builder.build_invite(ua.spec(peer.address, seed=3)).to_bytes()
            data = apply_mutators(invite, ["pad=100000"])
            exchange = await ua.invite(data, peer.address, timeout=3)
            await peer.wait_for(lambda p: bool(p.requests("ACK")))
            ua.close()
            return exchange, peer, data

    exchange, peer, data = run(scenario())
    assert len(data) == 100_000
    assert peer.received[0][0] == data
    assert [r.method for r in peer.requests()] == ["INVITE", "ACK"]  # no retransmission over TCP
    assert peer.received[0][1][0] == SOURCE
    assert len({src for _, src in peer.received}) == 1  # one connection
    assert exchange.final_code == 413
    assert exchange.transport == "tcp"
    assert exchange.sent[0].transport == "tcp"


def test_tcp_fixed_source_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((SOURCE, 0))
        port = probe.getsockname()[1]

    async def scenario() -> tuple[Responder, list[Exchange]]:
        async with Responder(final_for_invite(486, "Busy Here"), transport="tcp") as peer:
            ua = CarrierUA(SOURCE, port, transport="tcp", timers=FAST, gate=GATE)
            # twice in a row from the same port: the first connection must not block the second
            exchanges = [
                await ua.invite(builder.build_invite(ua.spec(peer.address)), peer.address, timeout=3)
                for _ in range(2)
            ]
            ua.close()
            return peer, exchanges

    peer, exchanges = run(scenario())
    assert [e.final_code for e in exchanges] == [486, 486]
    assert {src for data, src in peer.received if data.startswith(b"INVITE")} == {(SOURCE, port)}


def test_tcp_peer_closing_without_answer_is_closed() -> None:
    def hang_up(req: Request | None, data: bytes) -> list[bytes]:
        return [CLOSE]

    async def scenario() -> Exchange:
        async with Responder(hang_up, transport="tcp") as peer:
            ua = CarrierUA(SOURCE, transport="tcp", timers=FAST, gate=GATE)
            exchange = await ua.invite(builder.build_invite(ua.spec(peer.address)), peer.address, timeout=3)
            ua.close()
            return exchange

    exchange = run(scenario())
    assert exchange.outcome == "closed"
    assert exchange.final is None
    assert exchange.duration < 3


def test_tcp_refused_is_unreachable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    async def scenario() -> Exchange:
        ua = CarrierUA(SOURCE, transport="tcp", timers=FAST, gate=GATE)
        target = ("127.0.0.1", closed_port)
        exchange = await ua.invite(builder.build_invite(ua.spec(target)), target, timeout=3)
        ua.close()
        return exchange

    exchange = run(scenario())
    assert exchange.outcome == "unreachable"
    assert exchange.sent == []


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl binary makes the test certificate")
def test_tls_call_with_self_signed_certificate(tmp_path: Path) -> None:
    server_ctx, client_ctx = self_signed_tls(tmp_path)

    async def scenario() -> tuple[Exchange, Responder]:
        async with Responder(final_for_invite(200, "OK"), transport="tls", ssl_context=server_ctx) as peer:
            ua = CarrierUA(SOURCE, transport="tls", tls_context=client_ctx, timers=FAST, gate=GATE)
            exchange = await ua.invite(builder.build_invite(ua.spec(peer.address)), peer.address, timeout=3)
            await peer.wait_for(lambda p: bool(p.requests("BYE")))
            ua.close()
            return exchange, peer

    exchange, peer = run(scenario())
    assert [r.method for r in peer.requests()] == ["INVITE", "ACK", "BYE"]
    assert peer.requests("INVITE")[0].top_via.transport == "TLS"
    assert peer.received[0][1][0] == SOURCE
    assert (exchange.outcome, exchange.final_code, exchange.transport) == ("response", 200, "tls")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl binary makes the test certificate")
def test_tls_untrusted_certificate_is_an_error(tmp_path: Path) -> None:
    server_ctx, _ = self_signed_tls(tmp_path)
    import ssl

    strict = ssl.create_default_context()  # does not trust the test certificate

    async def scenario() -> Exchange:
        async with Responder(final_for_invite(200, "OK"), transport="tls", ssl_context=server_ctx) as peer:
            ua = CarrierUA(SOURCE, transport="tls", tls_context=strict, timers=FAST, gate=GATE)
            exchange = await ua.invite(builder.build_invite(ua.spec(peer.address)), peer.address, timeout=3)
            ua.close()
            return exchange

    exchange = run(scenario())
    assert exchange.outcome == "error"
    assert exchange.error is not None and "certificate" in exchange.error.lower()

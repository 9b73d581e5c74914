"""The HEP receiver as a log source, on real loopback sockets: Kamailio's recorded packets sent over UDP
and TCP arrive as HepLines (summary, Call-ID, packet), bad packets as lines that say why, and a source
delivers only what arrives after it is entered."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import hep_samples as kamailio
import pytest

from harness.hep import decode_packet
from harness.logs.hep_source import HepCapture, HepLine, HepReceiver, Listen, hep_line
from harness.logs.hub import LogHub


@pytest.fixture
def receiver() -> Iterator[HepReceiver]:
    r = HepReceiver(["udp:127.0.0.1:0", "tcp:127.0.0.1:0"], name="sbc-capture").start()
    yield r
    r.stop()


async def _lines(hub: LogHub, count: int, timeout: float = 5.0) -> list[HepLine]:
    """Wait (with a deadline) until ``count`` HEP lines are in the hub."""
    deadline = time.time() + timeout
    cursor = hub.cursor(0.0)
    out: list[HepLine] = []
    while len(out) < count:
        line = await cursor.next(deadline)
        assert line is not None, f"only {len(out)} of {count} HEP lines within {timeout} s: {out}"
        assert isinstance(line, HepLine)
        out.append(line)
    return out


def test_udp_packets_become_lines_with_call_id_and_bytes(receiver: HepReceiver) -> None:
    async def run() -> list[HepLine]:
        async with LogHub([receiver.source()]) as hub:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as agent:
                for data in kamailio.HEP3_UDP[:6]:
                    agent.sendto(data, receiver.address("udp"))
                agent.sendto(b"HEP3\x00\x05", receiver.address("udp"))
            return await _lines(hub, 7)

    lines = asyncio.run(run())
    invite = lines[2]
    assert invite.source == "sbc-capture" and invite.packet == decode_packet(kamailio.HEP3_UDP[2])
    assert invite.data.startswith(b"INVITE ") and invite.call_id and invite.call_id in invite.raw
    assert "HEP3 capture 4321 udp 127.0.0.10:" in invite.raw and "| INVITE sip:+14155550100@" in invite.raw
    assert invite.peer is not None and invite.peer[0] == "127.0.0.1"
    assert invite.parsed.timestamp == invite.packet.timestamp
    bad = lines[6]
    assert bad.packet is None and bad.raw.startswith("bad HEP packet from 127.0.0.1:")
    assert "shorter than the HEP3 header" in bad.raw and bad.level == "WARNING"
    assert receiver.received == 6 and receiver.errors == [bad.raw]


def test_a_tcp_stream_is_framed_and_a_broken_one_is_reported(receiver: HepReceiver) -> None:
    async def run() -> list[HepLine]:
        async with LogHub([receiver.source()]) as hub:
            with socket.create_connection(receiver.address("tcp")) as agent:
                for data in kamailio.HEP3_TCP_CHUNKS:
                    agent.sendall(data)
                agent.sendall(b"\x02\x10garbage that is not HEP3")
                lines = await _lines(hub, 9)
                agent.settimeout(5.0)
                assert agent.recv(10) == b""  # the receiver closed the stream it could no longer read
            return lines

    lines = asyncio.run(run())
    assert [ln.packet is not None for ln in lines] == [True] * 8 + [False]
    assert "HEP v1/v2 cannot be streamed" in lines[8].raw


def test_a_source_starts_at_now(receiver: HepReceiver) -> None:
    arrived = threading.Event()
    unsubscribe = receiver.subscribe(lambda line: arrived.set())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as agent:
        agent.sendto(kamailio.HEP3_UDP[0], receiver.address("udp"))  # before the source exists
        assert arrived.wait(5.0), "the receiver never got the first packet"
        unsubscribe()

        async def run() -> list[HepLine]:
            async with LogHub([receiver.source()]) as hub:
                agent.sendto(kamailio.HEP3_UDP[1], receiver.address("udp"))
                await _lines(hub, 1)
                return [ln for ln in hub.lines() if isinstance(ln, HepLine)]

        lines = asyncio.run(run())
    assert [ln.data[:7] for ln in lines] == [b"SIP/2.0"]


def test_a_log_event_becomes_a_line_of_its_text() -> None:
    from harness.hep import HepPacket

    packet = HepPacket(3, payload=b"dropping insane message\n", protocol_type=100, correlation_id=b"c1@x")
    line = hep_line("sbc-capture", packet, None, 1.0)
    assert line.raw.endswith("| dropping insane message") and line.call_id == "c1@x"


def test_the_hub_keeps_the_packet_when_it_orders_times() -> None:
    async def run() -> HepLine:
        packet = decode_packet(kamailio.HEP3_UDP[2])
        async with LogHub([]) as hub:
            hub.add(replace(hep_line("a", packet, None, 10.0)))
            hub.add(hep_line("a", packet, None, 5.0))  # earlier than the last: re-stamped, not rebuilt
            last = hub.lines()[-1]
            assert isinstance(last, HepLine)
            return last

    last = asyncio.run(run())
    assert last.received == 10.0 and last.packet == decode_packet(kamailio.HEP3_UDP[2])


def test_listen_addresses_and_errors() -> None:
    assert Listen.parse("udp:127.0.0.1:9060") == Listen("udp", "127.0.0.1", 9060)
    assert Listen.parse("tcp:[::1]:9061") == Listen("tcp", "::1", 9061)
    assert str(Listen("tcp", "::1", 9061)) == "tcp:[::1]:9061"
    for bad in ("udp:127.0.0.1", "sctp:127.0.0.1:9060", "udp:127.0.0.1:x", "udp:127.0.0.1:70000"):
        with pytest.raises(ValueError):
            Listen.parse(bad)
    with pytest.raises(ValueError, match="at least one"):
        HepReceiver([])
    taken = HepReceiver(["udp:127.0.0.1:0"]).start()
    try:
        with pytest.raises(OSError, match=r"cannot listen on udp:127\.0\.0\.1:"):
            HepReceiver([f"udp:127.0.0.1:{taken.address()[1]}"]).start()
        with pytest.raises(LookupError, match="no tcp listener"):
            taken.address("tcp")
    finally:
        taken.stop()


def test_a_capture_is_the_sources_factory() -> None:
    receiver = HepReceiver(["udp:127.0.0.1:0"], name="fs-capture")
    capture = HepCapture(receiver, complete=False)
    try:
        source = capture()

        async def enter() -> None:
            async with source:  # entering the first source starts the receiver
                assert receiver.addresses

        asyncio.run(enter())
        assert source.name == capture.name == "fs-capture"
    finally:
        capture.close()


def test_a_receiver_that_cannot_bind_is_a_source_error_and_fails_the_legs() -> None:
    from harness.logs.legs import LegExpectation, Roles, check_legs
    from harness.net.exchange import Exchange

    taken = HepReceiver(["udp:127.0.0.1:0"]).start()
    try:
        blocked = HepCapture(HepReceiver([f"udp:127.0.0.1:{taken.address()[1]}"], "sbc-capture"))

        async def run() -> str:
            async with LogHub([blocked()]) as hub:
                assert "sbc-capture" in hub.errors
                ex = Exchange("c@x", "INVITE", "udp", ("127.0.0.10", 5070), ("127.0.0.1", 5060), time.time())
                roles = Roles(ex.local, frozenset({ex.remote}))
                verdict = await check_legs(hub, ex, roles, [LegExpectation(present=False)], since=0.0,
                                           deadline=time.time() + 0.1, sources=["sbc-capture"])  # fmt: skip
                assert not verdict.ok
                return verdict.explain()

        assert "source sbc-capture failed: OSError" in asyncio.run(run())
    finally:
        taken.stop()

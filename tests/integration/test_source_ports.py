"""Source addresses are held, not probed: a UDP carrier UA keeps its port between exchanges, and a fixed
port is shared between harness processes by waiting for it instead of failing to bind."""

from __future__ import annotations

import asyncio
import errno
import socket
import threading
from pathlib import Path

import pytest

from harness.net.carrier import CarrierUA
from harness.net.portlock import SourceAddressBusy, SourcePortLock
from harness.sip.message import parse_message
from harness.targets.gate import own_stack_gate

GATE = own_stack_gate("the harness's own tests")  # these tests send to their own peers
SOURCE = "127.0.0.71"
PEER = "127.0.0.72"


@pytest.fixture(autouse=True)
def private_lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAZOO_HARNESS_LOCK_DIR", str(tmp_path / "locks"))


def test_a_held_fixed_address_makes_the_next_holder_wait_then_fail_naming_it() -> None:
    first = SourcePortLock(SOURCE, 5070, "udp")
    try:
        with pytest.raises(SourceAddressBusy, match=r"127\.0\.0\.71:5070/udp is held by another harness"):
            SourcePortLock(SOURCE, 5070, "udp", wait=0.2)
        other = SourcePortLock(SOURCE, 5070, "tcp", wait=0.2)  # another transport is another resource
        other.release()
    finally:
        first.release()
    # the lock the timed-out waiter abandoned is given back as soon as it is granted
    again = SourcePortLock(SOURCE, 5070, "udp", wait=5.0)
    again.release()


def test_a_waiter_gets_the_address_when_the_holder_releases_it() -> None:
    first = SourcePortLock(SOURCE, 5071, "udp")
    got: list[SourcePortLock] = []
    waiter = threading.Thread(target=lambda: got.append(SourcePortLock(SOURCE, 5071, "udp", wait=10.0)))
    waiter.start()
    first.release()
    waiter.join(timeout=10.0)
    assert not waiter.is_alive() and len(got) == 1
    got[0].release()


def test_a_udp_ua_holds_its_port_between_exchanges_so_nobody_else_can_bind_it() -> None:
    async def scenario() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind((PEER, 0))
            peer.setblocking(False)
            async with CarrierUA(SOURCE, gate=GATE) as ua:
                intruder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                with pytest.raises(OSError) as refused, intruder:
                    intruder.bind((SOURCE, ua.local_port))
                assert refused.value.errno == errno.EADDRINUSE

                # a late datagram queued between two exchanges is not taken for the next answer
                peer.sendto(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", (SOURCE, ua.local_port))
                answered = asyncio.create_task(answer_options(peer))
                exchange = await ua.options(peer.getsockname(), timeout=5.0)
                await asyncio.wait_for(answered, 5.0)
                assert exchange.final is not None and exchange.final.reason == "Fresh"
                assert [e.first_line for e in exchange.received] == ["SIP/2.0 200 Fresh"]

    asyncio.run(scenario())


async def answer_options(peer: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    data, source = await loop.sock_recvfrom(peer, 65535)
    request = parse_message(data)
    lines = [
        "SIP/2.0 200 Fresh",
        *(f"{name}: {request.get(name)}" for name in ("Via", "From", "To", "Call-ID", "CSeq")),
        "Content-Length: 0",
    ]
    await loop.sock_sendto(peer, ("\r\n".join(lines) + "\r\n\r\n").encode(), source)

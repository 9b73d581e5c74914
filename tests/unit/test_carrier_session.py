"""The carrier UA's record of what it sent: the time of a message is when it was handed to the transport,
not when the sending task next ran (a delay measured from a late stamp comes out short: a 604 after the
route timeout looked early under load)."""

from __future__ import annotations

import asyncio
import time

from harness.net.carrier import _Session
from harness.net.exchange import Exchange


class _HeldTransport:
    """A transport whose send returns only when the test lets it (a busy loop, a full socket buffer)."""

    local = ("127.0.0.66", 5060)
    remote = ("127.0.0.1", 5060)
    name = "udp"
    reliable = False

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def send(self, data: bytes) -> None:
        await self.release.wait()


def test_a_sent_message_is_stamped_before_the_send_returns() -> None:
    async def body() -> None:
        transport = _HeldTransport()
        t0 = time.monotonic()
        exchange = Exchange("c@h", "INVITE", "udp", transport.local, transport.remote, time.time())
        session = _Session(transport, exchange, t0, None)  # type: ignore[arg-type]
        sending = asyncio.create_task(session.send(b"INVITE sip:x SIP/2.0\r\n\r\n"))
        await asyncio.sleep(0)  # one turn of the loop: the task is now inside the transport's send
        released = time.monotonic()
        transport.release.set()
        await sending
        (event,) = exchange.events
        assert t0 + event.t <= released

    asyncio.run(asyncio.wait_for(body(), 5))

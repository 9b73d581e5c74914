"""Send while watching for the line that proves a drop: the one helper every sender shares (scenarios,
diagnose's test INVITE, replay, conformance), so that "no answer" ends the moment the stack logs why,
not when the wait runs out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from harness.logs.hub import LogHub
from harness.logs.line import LogLine
from harness.net.exchange import Exchange

DropTest = Callable[[LogLine], bool]
Send = Callable[[asyncio.Event | None], Awaitable[Exchange]]  # early_end -> the exchange


async def send_watching(
    send: Send, hub: LogHub, proves_drop: DropTest | None, *, since: float, deadline: float
) -> Exchange:
    """Run ``send(early_end)``; ``early_end`` is set the moment a line received after ``since`` (epoch)
    passes ``proves_drop``, until ``deadline`` (epoch). Without a test, ``send(None)``."""
    if proves_drop is None:
        return await send(None)
    early_end = asyncio.Event()

    async def watch() -> None:
        if await hub.wait_for(proves_drop, since, deadline) is not None:
            early_end.set()

    watcher = asyncio.create_task(watch())
    try:
        return await send(early_end)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)

"""The model's LogBus end to end: lines written by the roles reach a LogHub through the event socket
(EslSource) and through the log files (FileSource), and log assertions decide on them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from harness.kazoo.profile import fill
from harness.logs.assertions import LogExpectation, check
from harness.logs.esl_source import EslSource
from harness.logs.file_source import FileSource
from harness.logs.hub import LogHub
from harness.logs.source import LogSource
from harness.model.esl_server import EslServer
from harness.model.logbus import LogBus
from harness.net.exchange import Exchange

T = TypeVar("T")
CID = "5a5a5a5a-pipeline@127.0.0.66"


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout=20)

    return asyncio.run(bounded())


def test_bus_to_hub_through_event_socket_and_files(tmp_path: Path) -> None:
    async def body() -> None:
        bus = LogBus(tmp_path, "pipe")
        server = EslServer(bus, "127.0.0.1", 0, "ClueCon")
        await server.start()
        sources: list[LogSource] = [
            EslSource("127.0.0.1", server.port, "ClueCon", name="freeswitch", level="notice"),
            FileSource(bus.path("kamailio"), "kamailio", poll_interval=0.01),
            FileSource(bus.path("kazoo"), "kazoo", poll_interval=0.01),
        ]
        async with LogHub(sources) as hub:
            t0 = time.time()
            ex = Exchange(
                CID, "INVITE", "udp", ("127.0.0.66", 5062), ("127.0.0.1", 5060), t0, dialed="+14155550100"
            )
            bus.freeswitch("DEBUG", "sofia.c", 1, "below the event socket level", CID)
            bus.freeswitch(
                "WARNING",
                "sofia_reg.c",
                1780,
                "SIP auth challenge (INVITE) on sofia profile 'sipinterface_1' for "
                "[+14155550100@127.0.0.1] from ip 127.0.0.66",
                CID,
            )
            bus.kamailio("INFO", "challenged the invite, creating redirect", CID)
            verdict = await check(
                hub,
                ex,
                [
                    LogExpectation(
                        fill(
                            r"SIP auth challenge \(INVITE\).*from ip {source_ip}", {"source_ip": "127.0.0.66"}
                        ),
                        source="freeswitch",
                    ),
                    LogExpectation(
                        fill(r"{call_id}\|end\|challenged the invite", {"call_id": CID}), source="kamailio"
                    ),
                    LogExpectation("below the event socket level", present=False),
                ],
                since=t0,
                deadline=time.time() + 1.0,
            )
            assert verdict.ok, verdict.explain()
            assert verdict.silent_sources == ["kazoo"]
            fs_line = next(line for line in hub.lines(t0) if line.source == "freeswitch")
            assert fs_line.call_id == CID  # from the frame's User-Data
            assert verdict.correlation.reason(fs_line) == "call-id"
        await server.stop()
        bus.close()

    run(body())


def test_esl_source_reconnects_after_the_server_restarts(tmp_path: Path) -> None:
    async def body() -> None:
        bus = LogBus(tmp_path, "prefixed")
        server = EslServer(bus, "127.0.0.1", 0)
        await server.start()
        port = server.port
        async with LogHub([EslSource("127.0.0.1", port, connect_timeout=5)]) as hub:
            t0 = time.time()
            bus.freeswitch("NOTICE", "switch_channel.c", 1142, "before restart")
            assert await hub.wait_for(lambda x: "before restart" in x.raw, t0, time.time() + 5) is not None
            await server.stop()
            server = EslServer(bus, "127.0.0.1", port)
            await server.start()
            source = hub.sources[0]
            assert isinstance(source, EslSource)
            # The source announces itself by subscribing; keep logging until its new subscription sees one.
            found = None
            deadline = time.time() + 5
            while found is None and time.time() < deadline:
                bus.freeswitch("NOTICE", "switch_channel.c", 1142, "after restart")
                found = await hub.wait_for(lambda x: "after restart" in x.raw, t0, time.time() + 0.1)
            assert found is not None, f"no line after the restart; source errors: {hub.errors}"
            assert source.reconnects == 1
        await server.stop()
        bus.close()

    run(body())

"""A third-party event-socket client (greenswitch, gevent based, used against real FreeSWITCH in
production) drives the model's event socket: proof the framing is FreeSWITCH's, not just ours."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.model.esl_server import EslServer
from harness.model.logbus import LogBus

greenswitch = pytest.importorskip("greenswitch", reason="greenswitch (dev dependency) is not installed")
gevent_event = pytest.importorskip("gevent.event")

CALL_ID = "9f8e7d6c-greenswitch@127.0.0.10"


@dataclass
class RunningServer:
    server: EslServer
    bus: LogBus
    loop: asyncio.AbstractEventLoop


@pytest.fixture
def esl_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """The server on its own asyncio loop in a thread, as the embedded model runs it; greenswitch
    blocks (gevent) in the test's thread."""
    acl = getattr(request, "param", None)
    bus = LogBus(tmp_path, "pipe")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def api(cmd: str) -> str:
        return f"+OK ran {cmd}\n"

    server = EslServer(bus, "127.0.0.1", 0, "ClueCon", api, acl=acl)
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=5)
    try:
        yield RunningServer(server, bus, loop)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
        bus.close()


def test_greenswitch_auth_log_and_api(esl_server: RunningServer) -> None:
    client = greenswitch.InboundESL("127.0.0.1", esl_server.server.port, "ClueCon", timeout=5)
    client.connect()
    try:
        got: Future[Any] = Future()
        arrived = gevent_event.Event()

        def on_log(event: Any) -> None:
            if not got.done():
                got.set_result(event)
            arrived.set()

        client.register_handle("log", on_log)
        assert client.send("log 7").data == "+OK log level 7 [7]"
        esl_server.bus.freeswitch("WARNING", "sofia_reg.c", 1780, "SIP auth challenge (INVITE)", CALL_ID)
        assert arrived.wait(timeout=5), "no log/data frame reached greenswitch"
        event = got.result(timeout=0)
        assert event.headers["User-Data"] == CALL_ID
        assert event.headers["Log-Level"] == "4"
        assert "[WARNING] sofia_reg.c:1780 SIP auth challenge (INVITE)" in event.data
        assert client.send("api reloadacl").data == "+OK ran reloadacl\n"
    finally:
        client.stop()


def test_greenswitch_bad_password(esl_server: RunningServer) -> None:
    client = greenswitch.InboundESL("127.0.0.1", esl_server.server.port, "wrong", timeout=5)
    with pytest.raises(ValueError, match="Invalid password"):
        client.connect()
    client._run = False  # greenswitch leaves its reader running after a refused auth
    client.sock.close()


@pytest.mark.parametrize("esl_server", [["127.0.0.99/32"]], indirect=True)
def test_greenswitch_sees_rude_rejection(esl_server: RunningServer) -> None:
    client = greenswitch.InboundESL("127.0.0.1", esl_server.server.port, "ClueCon", timeout=5)
    with pytest.raises(greenswitch.esl.NotConnectedError, match="Server closed connection"):
        client.connect()
    client.sock.close()

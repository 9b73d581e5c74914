"""The model's event socket server and our client, over loopback TCP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from harness.kazoo.esl import EslAuthError, EslClient, EslError, EslRejected, read_frame
from harness.kazoo.logformat import parse_line
from harness.model.esl_server import EslServer
from harness.model.logbus import LogBus

T = TypeVar("T")
CALL_ID = "3c2a7f1e-test@127.0.0.10"


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout=15)

    return asyncio.run(bounded())


async def with_server(
    tmp_path: Path,
    body: Callable[[EslServer, LogBus], Awaitable[T]],
    *,
    acl: list[str] | None = None,
    api: Callable[[str], Awaitable[str]] | None = None,
) -> T:
    bus = LogBus(tmp_path, "pipe")
    server = EslServer(bus, "127.0.0.1", 0, "ClueCon", api, acl=acl)
    await server.start()
    try:
        return await body(server, bus)
    finally:
        await server.stop()
        bus.close()


def test_auth_ok_and_log_frames_carry_call_id(tmp_path: Path) -> None:
    async def body(server: EslServer, bus: LogBus) -> None:
        async with await EslClient.open("127.0.0.1", server.port, "ClueCon") as esl:
            assert await esl.log(7) == "+OK log level 7 [7]"
            bus.kamailio("WARNING", "not for the event socket", CALL_ID)  # Kamailio lines never go there
            bus.freeswitch(
                "WARNING", "sofia_reg.c", 1780, "SIP auth challenge (INVITE)", CALL_ID, func="sofia_reg_auth"
            )
            frame = await esl.next_frame()
            assert frame is not None
            assert frame.content_type == "log/data"
            assert frame.headers["Log-Level"] == "4"
            assert frame.headers["Log-File"] == "sofia_reg.c"
            assert frame.headers["Log-Func"] == "sofia_reg_auth"
            assert frame.headers["Log-Line"] == "1780"
            assert frame.headers["User-Data"] == CALL_ID
            assert frame.headers["Text-Channel"] == "3"
            assert frame.body.endswith("\n")
            parsed = parse_line(frame.body)
            assert (parsed.format, parsed.level, parsed.message) == (
                "freeswitch",
                "WARNING",
                "SIP auth challenge (INVITE)",
            )

    run(with_server(tmp_path, body))


def test_log_level_filters_and_nolog(tmp_path: Path) -> None:
    async def body(server: EslServer, bus: LogBus) -> None:
        async with await EslClient.open("127.0.0.1", server.port) as esl:
            assert await esl.log("warning") == "+OK log level warning [4]"
            bus.freeswitch("DEBUG", "sofia.c", 1, "too verbose")
            bus.freeswitch("ERR", "sofia.c", 2, "kept")
            frame = await esl.next_frame()
            assert frame is not None and "kept" in frame.body
            assert frame.headers["User-Data"] == ""
            assert await esl.nolog() == "+OK no longer logging"
            bus.freeswitch("ERR", "sofia.c", 3, "after nolog")
            # The api reply proves the server handled everything before it; no frame may be queued.
            await esl.api("status")
            assert esl._frames.empty()

    run(with_server(tmp_path, body))


def test_bad_password_raises_auth_error(tmp_path: Path) -> None:
    async def body(server: EslServer, bus: LogBus) -> None:
        with pytest.raises(EslAuthError, match="-ERR invalid"):
            await EslClient.open("127.0.0.1", server.port, "wrong")
        # The server closes the connection after the refusal, as FreeSWITCH does.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert (await read_frame(reader)).content_type == "auth/request"
        writer.write(b"auth nope\n\n")
        reply = await read_frame(reader)
        assert reply.headers["Reply-Text"] == "-ERR invalid"
        notice = await read_frame(reader)
        assert notice.content_type == "text/disconnect-notice"
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""
        writer.close()

    run(with_server(tmp_path, body))


def test_api_delegates_to_the_stack(tmp_path: Path) -> None:
    seen: list[str] = []

    async def api(cmd: str) -> str:
        seen.append(cmd)
        return "+OK acl reloaded\n"

    async def body(server: EslServer, bus: LogBus) -> None:
        async with await EslClient.open("127.0.0.1", server.port) as esl:
            assert await esl.api("reloadacl") == "+OK acl reloaded\n"
        assert seen == ["reloadacl"]

    run(with_server(tmp_path, body, api=api))


def test_api_without_handler_says_command_not_found(tmp_path: Path) -> None:
    async def body(server: EslServer, bus: LogBus) -> str:
        async with await EslClient.open("127.0.0.1", server.port) as esl:
            return await esl.api("status")

    assert run(with_server(tmp_path, body)) == "-ERR status Command not found!\n"


def test_events_json(tmp_path: Path) -> None:
    async def body(server: EslServer, bus: LogBus) -> dict[str, Any]:
        async with await EslClient.open("127.0.0.1", server.port) as esl:
            reply = await esl.events("CHANNEL_CREATE", "CHANNEL_HANGUP_COMPLETE")
            assert reply == "+OK event listener enabled json"
            server.publish_event({"Event-Name": "HEARTBEAT"})  # not subscribed
            server.publish_event({"Event-Name": "CHANNEL_CREATE", "Unique-ID": CALL_ID})
            frame = await esl.next_frame()
            assert frame is not None and frame.content_type == "text/event-json"
            return frame.event()

    assert run(with_server(tmp_path, body)) == {"Event-Name": "CHANNEL_CREATE", "Unique-ID": CALL_ID}


def test_rude_rejection_outside_acl(tmp_path: Path) -> None:
    async def body(server: EslServer, bus: LogBus) -> None:
        with pytest.raises(EslRejected, match="rude-rejection"):
            await EslClient.open("127.0.0.1", server.port)

    run(with_server(tmp_path, body, acl=["127.0.0.77/32"]))


def test_acl_allows_listed_address(tmp_path: Path) -> None:
    async def body(server: EslServer, bus: LogBus) -> str:
        async with await EslClient.open("127.0.0.1", server.port) as esl:
            return await esl.log(7)

    assert run(with_server(tmp_path, body, acl=["127.0.0.0/8"])) == "+OK log level 7 [7]"


def test_exit_says_bye_then_disconnect_notice(tmp_path: Path) -> None:
    async def body(server: EslServer, bus: LogBus) -> None:
        async with await EslClient.open("127.0.0.1", server.port) as esl:
            assert await esl.exit() == "+OK bye"
            frames = [frame async for frame in esl]
            assert [f.content_type for f in frames] == ["text/disconnect-notice"]
            assert "goodbye" in frames[0].body

    run(with_server(tmp_path, body))


def test_open_retries_until_deadline_then_explains(tmp_path: Path) -> None:
    async def body() -> None:
        # A port nobody listens on: bind, read the number, close.
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(EslError, match=f"cannot reach event socket 127.0.0.1:{port}"):
            await EslClient.open("127.0.0.1", port, retry=True, deadline=time.time() + 0.3)

    run(body())


def test_open_retry_succeeds_when_server_comes_up(tmp_path: Path) -> None:
    async def body() -> str:
        bus = LogBus(tmp_path, "prefixed")
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        server = EslServer(bus, "127.0.0.1", port)
        opening = asyncio.create_task(EslClient.open("127.0.0.1", port, retry=True, deadline=time.time() + 5))
        await asyncio.sleep(0.2)  # deliberately let the first attempts fail before the server exists
        await server.start()
        try:
            async with await opening as esl:
                return await esl.log(5)
        finally:
            await server.stop()

    assert run(body()) == "+OK log level 5 [5]"


def test_bgapi_result_arrives_as_background_job_event(tmp_path: Path) -> None:
    async def api(cmd: str) -> str:
        return f"+OK {cmd}\n"

    async def body(server: EslServer, bus: LogBus) -> None:
        async with await EslClient.open("127.0.0.1", server.port) as esl:
            assert await esl.events("BACKGROUND_JOB", fmt="plain") == "+OK event listener enabled plain"
            job = await esl.bgapi("reloadacl now")
            frame = await esl.next_frame()
            assert frame is not None and frame.content_type == "text/event-plain"
            event = frame.event()
            assert (
                event["Event-Name"],
                event["Job-UUID"],
                event["Job-Command"],
                event["Job-Command-Arg"],
            ) == (
                "BACKGROUND_JOB",
                job,
                "reloadacl",
                "now",
            )
            assert event["_body"] == "+OK reloadacl now\n"

    run(with_server(tmp_path, body, api=api))


def test_replies_match_freeswitch_wording(tmp_path: Path) -> None:
    async def body(server: EslServer, bus: LogBus) -> list[str]:
        async with await EslClient.open("127.0.0.1", server.port) as esl:
            return [
                (await esl.command("event json")).reply_text,
                (await esl.command("log")).reply_text,
                (await esl.command("log loud")).reply_text,
                (await esl.command("noevents")).reply_text,
                (await esl.command("nolog")).reply_text,
                (await esl.command("nolog")).reply_text,
                (await esl.command("sendevent X")).reply_text,
            ]

    assert run(with_server(tmp_path, body)) == [
        "-ERR no keywords supplied",
        "+OK log level  [7]",
        "-ERR invalid log level",
        "-ERR not listening for events",
        "+OK no longer logging",
        "-ERR not loging",
        "-ERR command not found",
    ]


def test_rude_rejection_is_logged_and_followed_by_disconnect(tmp_path: Path) -> None:
    async def body(server: EslServer, bus: LogBus) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        rejection = await read_frame(reader)
        assert (rejection.content_type, rejection.body) == (
            "text/rude-rejection",
            "Access Denied, go away.\n",
        )
        assert (await read_frame(reader)).content_type == "text/disconnect-notice"
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""
        writer.close()
        logged = (tmp_path / "freeswitch.log").read_text()
        assert 'IP 127.0.0.1 Rejected by acl "esl"' in logged

    run(with_server(tmp_path, body, acl=["127.0.0.77/32"]))

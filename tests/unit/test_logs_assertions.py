"""Correlator, hub and log assertions, fed from in-memory sources (no external component involved)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

import pytest

from harness.kazoo.profile import fill
from harness.logs.assertions import LogExpectation, check
from harness.logs.correlate import correlate, number_forms
from harness.logs.hub import LogHub
from harness.logs.line import LogLine
from harness.logs.source import MemorySource
from harness.logs.watch import send_watching
from harness.net.exchange import Exchange, WireEvent

T = TypeVar("T")
CID = "c0ffee-1@127.0.0.10"
INVITE = (
    b"INVITE sip:+14155550100@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.10:5099;branch=z9hG4bK-1\r\n"
    b"From: <sip:carrier@127.0.0.10>;tag=1\r\nTo: <sip:+14155550100@127.0.0.1>\r\n"
    b"Call-ID: c0ffee-1@127.0.0.10\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout=10)

    return asyncio.run(bounded())


def exchange(started: float | None = None) -> Exchange:
    started = time.time() if started is None else started
    ex = Exchange(
        CID, "INVITE", "udp", ("127.0.0.10", 5099), ("127.0.0.1", 5060), started, dialed="+14155550100"
    )
    ex.events.append(WireEvent("sent", 0.0, started, ex.local, ex.remote, "udp", INVITE))
    return ex


# what the profile's placeholders stand for in these tests' exchange (filled before the check, as the
# runner does: harness.scenario.plan)
VALUES = {"call_id": CID, "source_ip": "127.0.0.10", "source_port": "5099", "number": "+14155550100"}


def filled(pattern: str, **kwargs: object) -> LogExpectation:
    return LogExpectation(fill(pattern, VALUES), **kwargs)  # type: ignore[arg-type]


def line(source: str, raw: str, received: float) -> LogLine:
    return LogLine.make(source, raw, received=received)


# ---------------------------------------------------------------- correlator


def test_correlate_by_call_id_address_number_and_window() -> None:
    t0 = time.time()
    ex = exchange(t0)
    lines = [
        line(
            "freeswitch",
            f"{CID} 2026-11-26 04:00:00.000001 [NOTICE] switch_channel.c:1 New Channel",
            t0 + 0.1,
        ),
        line("kamailio", "end - dropping insane message from 127.0.0.10:5099", t0 + 0.1),
        line("kazoo", "x [info] |0000000000|stepswitch:1 (<0.1.0>) lookup 4155550100 failed", t0 + 0.2),
        line("freeswitch", "IP 127.0.0.10 Approved by acl", t0 + 0.2),
        line("freeswitch", "IP 127.0.0.100 Approved by acl", t0 + 0.2),  # another carrier
        line("kamailio", "end - unrelated", t0 + 0.3),
        line("freeswitch", f"late {CID}", t0 + 60),  # outside the window
    ]
    result = correlate(lines, ex)
    assert [result.reason(x) for x in result.related] == [
        "call-id",
        "source address",
        "dialed number",
        "source ip",
    ]
    assert [x.raw for x in result.context] == [
        "IP 127.0.0.100 Approved by acl",
        "end - unrelated",
        f"late {CID}",
    ]


def test_number_forms() -> None:
    assert number_forms("+14155550100") == ["+14155550100", "14155550100", "4155550100"]
    assert number_forms("442071234567") == ["442071234567"]


# ---------------------------------------------------------------- check()


async def _with_hub(*names: str) -> tuple[LogHub, dict[str, MemorySource]]:
    sources = {name: MemorySource(name) for name in names}
    hub = LogHub(sources.values())
    await hub.__aenter__()
    return hub, sources


def test_check_passes_at_once_when_all_must_appear_lines_came() -> None:
    async def body() -> None:
        hub, src = await _with_hub("freeswitch", "kamailio")
        t0 = time.time()
        ex = exchange(t0)
        src["freeswitch"].push(
            f"SIP auth challenge (INVITE) on sofia profile 'sipinterface_1' from ip 127.0.0.10 {CID}"
        )
        src["kamailio"].push(f"{CID}|end|challenged the invite, creating redirect")
        started = time.monotonic()
        verdict = await check(
            hub,
            ex,
            [
                filled(r"SIP auth challenge \(INVITE\).*from ip {source_ip}", source="freeswitch"),
                filled(r"{call_id}\|end\|challenged", source="kamailio"),
            ],
            since=t0,
            deadline=t0 + 30,  # a long window: the verdict must not wait for it
        )
        assert time.monotonic() - started < 5
        assert verdict.ok and verdict.decided_early, verdict.explain()
        assert verdict.silent_sources == []
        await hub.__aexit__(None, None, None)

    run(body())


def test_check_ignores_lines_before_since() -> None:
    async def body() -> None:
        hub, src = await _with_hub("kamailio")
        stale = src["kamailio"].push("end - dropping insane message from 127.0.0.10:5099")
        await hub.wait_for(lambda x: x is stale or x.raw == stale.raw, since=0, deadline=time.time() + 5)
        t0 = time.time() + 0.001
        verdict = await check(
            hub,
            exchange(t0),
            [filled("dropping insane message from {source_ip}:{source_port}")],
            since=t0,
            deadline=t0 + 0.2,
        )
        assert not verdict.ok
        assert [e.pattern for e in verdict.missing] == [r"dropping insane message from 127\.0\.0\.10:5099"]
        assert verdict.silent_sources == ["kamailio"]
        text = verdict.explain()
        assert "MISSING" in text and "silent sources" in text and "kamailio" in text
        await hub.__aexit__(None, None, None)

    run(body())


def test_forbidden_line_fails_at_once_and_absence_passes_at_window_end() -> None:
    async def body() -> None:
        hub, src = await _with_hub("freeswitch")
        t0 = time.time()
        expectations = [LogExpectation("New Channel", present=False), LogExpectation("Approved by acl")]
        src["freeswitch"].push("IP 127.0.0.10 Approved by acl")
        quiet = await check(hub, exchange(t0), expectations, since=t0, deadline=time.time() + 0.3)
        assert quiet.ok and not quiet.decided_early  # absence is proven only by the window's end

        t1 = time.time()
        src["freeswitch"].push(f"New Channel sofia/sipinterface_1/carrier [{CID}]")
        loud = await check(hub, exchange(t1), expectations, since=t1, deadline=time.time() + 30)
        assert not loud.ok and loud.decided_early
        assert [line.raw for _, line in loud.unexpected] == [
            f"New Channel sofia/sipinterface_1/carrier [{CID}]"
        ]
        assert "FORBIDDEN" in loud.explain()
        await hub.__aexit__(None, None, None)

    run(body())


def test_exact_count() -> None:
    async def body() -> None:
        hub, src = await _with_hub("kamailio")
        t0 = time.time()
        for _ in range(2):
            src["kamailio"].push("end - too much hops, not enough barley from 127.0.0.10:5099")
        verdict = await check(
            hub,
            exchange(t0),
            [LogExpectation("not enough barley", count=1)],
            since=t0,
            deadline=time.time() + 5,
        )
        assert not verdict.ok and verdict.decided_early
        assert verdict.wrong_count[0][1] == 2
        await hub.__aexit__(None, None, None)

    run(body())


def test_ordered_expectations() -> None:
    async def body() -> None:
        hub, src = await _with_hub("freeswitch")
        expectations = [LogExpectation("New Channel"), LogExpectation("won call control")]
        t0 = time.time()
        src["freeswitch"].push("ecallmgr@kazoo won call control")
        src["freeswitch"].push("New Channel sofia/x")
        wrong = await check(
            hub, exchange(t0), expectations, since=t0, deadline=time.time() + 0.3, ordered=True
        )
        assert not wrong.ok and [e.pattern for e in wrong.missing] == ["won call control"]
        unordered = await check(hub, exchange(t0), expectations, since=t0, deadline=time.time() + 5)
        assert unordered.ok
        src["freeswitch"].push("ecallmgr@kazoo won call control")
        right = await check(hub, exchange(t0), expectations, since=t0, deadline=time.time() + 5, ordered=True)
        assert right.ok and right.decided_early
        await hub.__aexit__(None, None, None)

    run(body())


def test_check_waits_for_a_line_that_comes_later() -> None:
    async def body() -> None:
        hub, src = await _with_hub("kazoo")
        t0 = time.time()
        pending = asyncio.create_task(
            check(
                hub, exchange(t0), [LogExpectation("unable to determine account")], since=t0, deadline=t0 + 30
            )
        )
        await asyncio.sleep(0)  # let check() start following before the line arrives
        assert not pending.done()
        src["kazoo"].push("unable to determine account for fetch-id 1, +14155550199: not_found")
        verdict = await pending
        assert verdict.ok and verdict.decided_early
        await hub.__aexit__(None, None, None)

    run(body())


def test_send_watching_ends_the_send_on_the_drop_line() -> None:
    async def body() -> None:
        hub, src = await _with_hub("kamailio")
        t0 = time.time()
        ended: list[asyncio.Event | None] = []

        async def send(early_end: asyncio.Event | None) -> Exchange:
            ended.append(early_end)
            assert early_end is not None
            src["kamailio"].push("end - dropping insane message from 127.0.0.11:5099")  # another carrier
            src["kamailio"].push("end - dropping insane message from 127.0.0.10:5099")
            await asyncio.wait_for(early_end.wait(), timeout=5)  # set by the watcher, not by a timeout
            return exchange(t0)

        def proves_drop(line: LogLine) -> bool:
            return line.raw.endswith("from 127.0.0.10:5099")

        result = await send_watching(send, hub, proves_drop, since=t0, deadline=t0 + 30)
        assert result.call_id == CID and ended[0] is not None and ended[0].is_set()
        # without a drop test the send gets no event at all
        ended.clear()

        async def plain(early_end: asyncio.Event | None) -> Exchange:
            ended.append(early_end)
            return exchange(t0)

        await send_watching(plain, hub, None, since=t0, deadline=t0 + 30)
        assert ended == [None]
        await hub.__aexit__(None, None, None)

    run(body())


def test_hub_records_a_failing_source_and_keeps_the_others() -> None:
    class Broken(MemorySource):
        def __aiter__(self):  # type: ignore[no-untyped-def]
            return self._fail()

        async def _fail(self):  # type: ignore[no-untyped-def]
            raise OSError("permission denied: /var/log/kamailio.log")
            yield

    async def body() -> None:
        good = MemorySource("kazoo")
        async with LogHub([Broken("kamailio"), good]) as hub:
            t0 = time.time()
            good.push("hello")
            assert await hub.wait_for(lambda x: x.raw == "hello", since=t0, deadline=t0 + 5) is not None
            assert "permission denied" in str(hub.errors["kamailio"])
            assert hub.lines(since=t0, source="kazoo")[0].raw == "hello"

    run(body())


def test_hub_trims_old_lines_without_losing_cursor_position() -> None:
    async def body() -> None:
        hub = LogHub(max_lines=3)
        cursor = hub.cursor(0)
        for i in range(5):
            hub.add(LogLine.make("x", f"line {i}"))
        got = [await cursor.next(time.time() + 1) for _ in range(3)]
        assert [x.raw for x in got if x] == ["line 2", "line 3", "line 4"]
        assert await cursor.next(time.time() + 0.05) is None

    run(body())


def test_hub_records_a_source_that_cannot_start() -> None:
    class Unreachable(MemorySource):
        async def __aenter__(self) -> MemorySource:
            raise ConnectionRefusedError("event socket 127.0.0.1:8021 refused")

    async def body() -> None:
        good = MemorySource("kamailio")
        async with LogHub([Unreachable("freeswitch"), good]) as hub:
            t0 = time.time()
            good.push("end - dropping insane message")
            assert await hub.wait_for(lambda x: "insane" in x.raw, since=t0, deadline=t0 + 5) is not None
            assert "refused" in str(hub.errors["freeswitch"])
            verdict = await check(hub, exchange(t0), [LogExpectation("insane")], since=t0, deadline=t0 + 5)
            assert verdict.ok and verdict.silent_sources == ["freeswitch"]
            assert "source freeswitch failed" in verdict.explain()
        with pytest.raises(ConnectionRefusedError):
            async with LogHub([Unreachable("freeswitch")], strict=True):
                pass

    run(body())

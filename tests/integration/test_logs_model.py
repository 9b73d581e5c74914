"""The log layer against the embedded model's real log files and event socket: the lines that prove
each seed cause are matched by Call-ID, and a "must not appear" assertion fails when the line is there."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from harness.logs.assertions import LogExpectation, LogVerdict, check
from harness.logs.esl_source import EslSource
from harness.logs.file_source import FileSource
from harness.logs.hub import LogHub
from harness.model.stack import ModelConfig, RunningModel, start_model
from harness.net.carrier import CarrierUA
from harness.net.exchange import Exchange
from harness.sip import builder
from harness.sip.mutators import apply_mutators
from harness.targets.gate import own_stack_gate

GATE = own_stack_gate("the harness's own tests")  # these tests send to their own peers
LISTED, UNLISTED = "127.0.0.10", "127.0.0.66"
ROUTED, ABSENT = "+14155550100", "+14155550199"


@pytest.fixture(scope="module")
def model() -> Iterator[RunningModel]:
    with start_model(ModelConfig(sbc_port=0, media_port=0, esl_port=0, couch_port=0, route_timeout=0.2)) as m:
        yield m


def _hub(model: RunningModel) -> LogHub:
    files = [FileSource(model.log_dir / f"{n}.log", n, poll_interval=0.01) for n in ("kamailio", "kazoo")]
    esl = EslSource(model.esl[0], model.esl[1], model.config.esl_password, name="freeswitch")
    return LogHub([*files, esl], strict=True)


async def _call(
    model: RunningModel,
    source: str,
    number: str,
    expectations: list[LogExpectation],
    mutators: list[str] = (),
) -> tuple[Exchange, LogVerdict]:
    async with _hub(model) as hub:
        since = time.time()
        ua = CarrierUA(source, gate=GATE)
        try:
            data = builder.build_invite(ua.spec(model.sbc, ruri_user=number, seed=3)).to_bytes()
            data = apply_mutators(data, list(mutators), seed=3)
            exchange = await ua.invite(data, model.sbc, timeout=1.0, dialed=number)
        finally:
            ua.close()
        verdict = await check(hub, exchange, expectations, since=since, deadline=time.time() + 2.0)
        return exchange, verdict


def _matched_call_ids(verdict: LogVerdict) -> set[str | None]:
    return {line.call_id for _, hits in verdict.matched for line in hits}


def test_challenge_line_of_an_unlisted_carrier_over_the_event_socket(model: RunningModel) -> None:
    expect = [
        LogExpectation(r"SIP auth challenge \(INVITE\) on sofia profile 'sipinterface_1'", "freeswitch")
    ]
    exchange, verdict = asyncio.run(_call(model, UNLISTED, ROUTED, expect))
    assert exchange.final_code == 407
    assert verdict.ok, verdict.explain()
    assert _matched_call_ids(verdict) == {exchange.call_id}  # User-Data of the log/data frame
    assert exchange.call_id in [line.call_id for line in verdict.correlation.related]


def test_insane_message_drop_of_a_cseq_mismatch_invite(model: RunningModel) -> None:
    # (a missing CSeq never reaches the script: Kamailio's core drops it, with no Call-ID in its line)
    expect = [LogExpectation(r"dropping insane message from 127\.0\.0\.10:\d+", "kamailio")]
    exchange, verdict = asyncio.run(_call(model, LISTED, ROUTED, expect, ["cseq-mismatch"]))
    assert exchange.outcome == "silence" and not exchange.received
    assert verdict.ok, verdict.explain()
    assert _matched_call_ids(verdict) == {exchange.call_id}  # Kamailio's `<callid>|end|` prefix


def test_604_path_of_an_absent_number(model: RunningModel) -> None:
    expect = [LogExpectation(r"unable to determine account for fetch-id .*\+14155550199: not_found", "kazoo")]
    exchange, verdict = asyncio.run(_call(model, LISTED, ABSENT, expect))
    assert exchange.final_code == 604
    assert verdict.ok, verdict.explain()
    assert _matched_call_ids(verdict) == {exchange.call_id}


def test_must_not_appear_fails_when_the_line_is_there(model: RunningModel) -> None:
    expect = [LogExpectation(r"SIP auth challenge \(INVITE\)", "freeswitch", present=False)]
    exchange, verdict = asyncio.run(_call(model, UNLISTED, ROUTED, expect))
    assert exchange.final_code == 407
    assert not verdict.ok
    assert [line.call_id for _, line in verdict.unexpected] == [exchange.call_id]
    assert "FORBIDDEN" in verdict.explain()


def test_lines_before_the_exchange_never_count(model: RunningModel) -> None:
    first, _ = asyncio.run(_call(model, UNLISTED, ROUTED, []))
    # the same pattern without a Call-ID: only a line written after `since` may satisfy it
    expect = [LogExpectation(r"SIP auth challenge \(INVITE\)", "freeswitch")]
    exchange, verdict = asyncio.run(_call(model, LISTED, ROUTED, expect))
    assert exchange.final_code == 200 and first.final_code == 407
    assert not verdict.ok and verdict.missing

"""SIPp against the harness: SIPp's UAC through the embedded model (and through the lab's real Kamailio
in front of the model's media role), SIPp's UAS answering the carrier UA.

Both sides are real: SIPp is a separate process on loopback; nothing is mocked.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from harness.interop.sipp import (
    UAS_BUFFER,
    Sipp,
    SippOptions,
    SippResult,
    run_sipp,
    scenario_path,
    sipp_available,
)
from harness.model.stack import RunningModel
from harness.net.carrier import CarrierUA
from harness.net.exchange import Address, Exchange
from harness.sip import builder
from harness.sip.message import parse_message
from harness.targets.gate import own_stack_gate

GATE = own_stack_gate("the harness's own tests")  # these tests send to their own peers
SKIP_REASON = sipp_available()
pytestmark = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")

CARRIER_IP = "127.0.0.10"  # the demo data's trusted carrier (role `listed`)
SIPP_UAS_IP = "127.0.0.61"
ROUTED = "+14155550100"
ABSENT = "+14155550199"


def uac_through(
    sbc: Address, number: str, calls: int, rate: float, work_dir: Path, scenario: str = "uac"
) -> SippResult:
    chosen = scenario if scenario == "uac" else scenario_path(scenario)
    options = SippOptions(
        chosen, CARRIER_IP, remote=sbc, service=number, calls=calls, rate=rate, run_timeout=20.0
    )
    return run_sipp(options, timeout=30.0, work_dir=work_dir)


def test_sipp_built_in_uac_places_routed_calls_through_the_model(model: RunningModel, tmp_path: Path) -> None:
    """The built-in uac ignores Record-Route; the model's SBC relays its ACK/BYE anyway (Kamailio: 481)."""
    result = uac_through(model.sbc, ROUTED, calls=20, rate=40, work_dir=tmp_path)
    assert result.returncode == 0, result.describe()
    assert result.stats is not None, result.describe()
    assert (result.stats.successful, result.stats.failed) == (20, 0), result.describe()


@pytest.mark.slow
def test_sipp_uac_places_routed_calls(sbc: Address, tmp_path: Path) -> None:
    result = uac_through(sbc, ROUTED, calls=40, rate=20, work_dir=tmp_path, scenario="uac_routed_call.xml")
    assert result.returncode == 0, result.describe()
    assert result.stats is not None, result.describe()
    assert (result.stats.successful, result.stats.failed) == (40, 0), result.describe()


def test_sipp_uac_counts_a_rejected_number_as_failed(sbc: Address, tmp_path: Path) -> None:
    """The control: an absent number gets 604 (kazoo-4.3), which the UAC scenario does not expect."""
    result = uac_through(sbc, ABSENT, calls=2, rate=20, work_dir=tmp_path, scenario="uac_routed_call.xml")
    assert result.returncode == 1, result.describe()
    assert result.stats is not None and result.stats.failed == 2, result.describe()
    assert result.stats.failures.get("FailedUnexpectedMessage") == 2, result.describe()


def uas(name: str, work_dir: Path, recv_timeout: float = 5.0) -> Sipp:
    return Sipp(
        SippOptions(
            scenario_path(name),
            SIPP_UAS_IP,
            calls=1,
            buff_size=UAS_BUFFER,
            run_timeout=15.0,
            recv_timeout=recv_timeout,
            trace_messages=True,
        ),
        work_dir,
    )


def call(sipp: Sipp, bye_after: float | None = 0.0) -> Exchange:
    async def invite() -> Exchange:
        async with CarrierUA(CARRIER_IP, gate=GATE) as ua:
            request = builder.build_invite(ua.spec(sipp.address))
            return await ua.invite(request, sipp.address, timeout=8.0, bye_after=bye_after)

    sipp.wait_listening()
    return asyncio.run(invite())


def sent(exchange: Exchange, method: str) -> list[bytes]:
    return [e.data for e in exchange.sent if e.first_line.startswith(f"{method} ")]


def test_carrier_acks_and_hangs_up_a_call_sipp_answers(tmp_path: Path) -> None:
    with uas("uas_answer.xml", tmp_path) as sipp:
        exchange = call(sipp)
        result = sipp.wait(20.0)
    assert exchange.final_code == 200, exchange.to_json()
    assert exchange.provisional_codes == [100, 180]
    assert result.returncode == 0 and result.stats is not None, result.describe()
    assert result.stats.successful == 1, result.describe()
    assert [m.first_line.split()[0] for m in result.messages if m.direction == "received"] == [
        "INVITE",
        "ACK",
        "BYE",
    ]


def test_carrier_acks_a_4xx_in_the_invite_transaction(tmp_path: Path) -> None:
    with uas("uas_reject.xml", tmp_path) as sipp:
        exchange = call(sipp)
        result = sipp.wait(20.0)
    assert exchange.final_code == 486, exchange.to_json()
    assert result.returncode == 0 and result.stats is not None and result.stats.successful == 1, (
        result.describe()
    )
    (invite,), (ack,) = sent(exchange, "INVITE"), sent(exchange, "ACK")
    # RFC 3261 17.1.1.3: the ACK of a non-2xx final belongs to the INVITE's transaction
    assert parse_message(ack).top_via.branch == parse_message(invite).top_via.branch
    assert len(result.received("ACK ")) == 1, result.describe()


def test_carrier_retransmits_an_invite_sipp_leaves_unanswered(tmp_path: Path) -> None:
    with uas("uas_late_reject.xml", tmp_path) as sipp:
        exchange = call(sipp)
        result = sipp.wait(20.0)
    invites = sent(exchange, "INVITE")
    assert len(invites) >= 2 and len(set(invites)) == 1, exchange.to_json()  # same bytes: a retransmission
    assert exchange.final_code == 486
    assert len(result.received("INVITE ")) == len(invites), result.describe()
    assert result.returncode == 0 and result.stats is not None and result.stats.successful == 1, (
        result.describe()
    )


def test_sipp_fails_the_call_when_the_carrier_sends_no_bye(tmp_path: Path) -> None:
    """The control for the answer scenario: without the BYE, SIPp's call fails on its receive timeout."""
    with uas("uas_answer.xml", tmp_path, recv_timeout=1.0) as sipp:
        exchange = call(sipp, bye_after=None)
        result = sipp.wait(20.0)
    assert exchange.final_code == 200
    assert result.returncode == 1 and result.stats is not None, result.describe()
    assert result.stats.failures.get("FailedTimeoutOnRecv") == 1, result.describe()

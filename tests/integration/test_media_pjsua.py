"""Real calls with media: a pjsua2 user agent (its own process) through the embedded model's SBC role,
and through the lab's real Kamailio in front of the model's media role (skipped without Kamailio).

Nothing is mocked: pjsua2 sends and receives RTP on loopback, the model's media role answers.
"""

from __future__ import annotations

import ipaddress

import pytest

from harness.media.pjsua_carrier import MediaResult, pjsua_available, place_call
from harness.model.stack import RunningModel
from harness.net.exchange import Address

SKIP_REASON = pjsua_available()
pytestmark = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")

CARRIER_IP = "127.0.0.10"  # the demo data's trusted carrier (role `listed`)
NUMBERS = {  # demo data number roles (harness/model/demo/roles.json)
    "routed": "+14155550100",
    "busy": "+14155550120",
    "ringing_forever": "+14155550121",
    "dead_air": "+14155550122",
}
HOLD = 1.0  # T: how long an answered call is kept up while RTP is counted


def is_loopback(address: str | None) -> bool:
    return address is not None and ipaddress.ip_address(address.rpartition(":")[0]).is_loopback


@pytest.mark.slow
def test_routed_call_has_two_way_audio(sbc: Address) -> None:
    result = place_call(sbc, CARRIER_IP, NUMBERS["routed"], HOLD)
    assert result.answered and result.final_code == 200, result
    assert result.codec == "PCMU", result
    assert result.rtp_rx_packets > 0 and result.rtp_tx_packets > 0, result
    assert result.two_way_audio and not result.dead_air
    assert result.first_rtp_after is not None and result.first_rtp_after < HOLD
    # media stayed on loopback: our RTP on the carrier's address, the peer's on a loopback one
    assert result.local_rtp is not None and result.local_rtp.startswith(f"{CARRIER_IP}:"), result
    assert is_loopback(result.remote_rtp), result


@pytest.mark.slow
def test_dead_air_is_an_answered_call_without_rtp(sbc: Address) -> None:
    result = place_call(sbc, CARRIER_IP, NUMBERS["dead_air"], HOLD)
    assert result.answered and result.final_code == 200, result
    assert result.dead_air, result
    assert result.rtp_rx_packets == 0 and result.first_rtp_after is None
    assert result.rtp_tx_packets > 0, result  # we did send: the silence is the far end's
    assert result.held >= HOLD


def test_busy_number_gets_486(sbc: Address) -> None:
    result = place_call(sbc, CARRIER_IP, NUMBERS["busy"], HOLD)
    assert (result.final_code, result.final_reason) == (486, "Number busy"), result
    assert not result.answered and not result.cancelled
    assert result.rtp_rx_packets == 0 and result.rtp_tx_packets == 0


@pytest.mark.slow
def test_ringing_forever_rings_until_the_caller_cancels(sbc: Address) -> None:
    ring = 1.0
    result: MediaResult = place_call(
        sbc,
        CARRIER_IP,
        NUMBERS["ringing_forever"],
        HOLD,
        answer_timeout=10.0,
        cancel_after_ringing=ring,
    )
    assert result.provisional_codes == [180], result
    # no final answer came during `ring` seconds of ringing: we cancelled, and the INVITE ended in 487
    assert result.cancelled and result.rang_for is not None and result.rang_for >= ring, result
    assert result.final_code == 487 and not result.answered, result


@pytest.mark.slow
def test_the_model_receives_the_callers_rtp(model: RunningModel) -> None:
    """The other direction of two-way audio, seen by the stack: FreeSWITCH's hangup event carries the
    packet counts (variable_rtp_audio_in/out_packet_count), read here over the event socket."""
    import asyncio
    import time

    from harness.kazoo.esl import EslClient

    async def call_and_read_hangup() -> tuple[MediaResult, dict[str, str]]:
        async with await EslClient.open(model.esl[0], model.esl[1], model.config.esl_password) as esl:
            await esl.events("CHANNEL_HANGUP_COMPLETE")
            result = await asyncio.to_thread(place_call, model.sbc, CARRIER_IP, NUMBERS["routed"], HOLD)
            deadline = time.time() + 5.0
            while (frame := await esl.next_frame(deadline=deadline)) is not None:
                if frame.content_type == "text/event-json":
                    event = frame.event()
                    if event.get("Unique-ID") == result.call_id:
                        return result, event
            raise AssertionError(f"no CHANNEL_HANGUP_COMPLETE for {result.call_id} within 5 s")

    result, hangup = asyncio.run(call_and_read_hangup())
    assert result.two_way_audio, result
    assert int(hangup["variable_rtp_audio_in_packet_count"]) > 0, hangup  # the caller's RTP reached the stack
    assert int(hangup["variable_rtp_audio_out_packet_count"]) > 0, hangup

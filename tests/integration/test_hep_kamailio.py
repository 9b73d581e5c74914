"""HEP from a real Kamailio: the lab target's Kamailio 5.6 (siptrace, trace_mode 1) mirrors every SIP
message it reads and writes to the harness's receiver, over UDP and TCP, in HEP3 and HEP v2; the
captured legs are judged by the scenario runner as in any scenario: the SBC received the INVITE with
the carrier's header, relayed it to media without it, FreeSWITCH (the model's media role) answered 407,
an insane INVITE was received and never relayed, garbage never reached siptrace at all."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.kazoo.profile import load_profile
from harness.lab.kamailio import kamailio_available
from harness.logs.legs import Leg
from harness.scenario.case import ScenarioCase, expand
from harness.scenario.runner import ScenarioResult, run_case_sync
from harness.targets.lab import open_lab
from harness.targets.target import Target

MISSING = kamailio_available("siptrace")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(MISSING is not None, reason=f"needs Kamailio with siptrace: {MISSING}"),
]


@pytest.fixture(
    scope="module", params=[("udp", 3), ("tcp", 3), ("udp", 2)], ids=["hep3-udp", "hep3-tcp", "hep2"]
)
def lab(request: pytest.FixtureRequest) -> Iterator[Target]:
    transport, version = request.param
    with open_lab(load_profile("kazoo-4.3"), hep_transport=transport, hep_version=version) as target:
        yield target


_CALLS = itertools.count()


def case(**scenario: Any) -> ScenarioCase:
    # a name of its own per call: the seed (hence Call-ID and branch) follows it, and the same branch
    # twice would be a retransmission to Kamailio
    scenario.setdefault("name", f"hep call {next(_CALLS)}")
    scenario.setdefault("cause", "call_flow")
    scenario.setdefault("description", "captured legs")
    [one] = expand(scenario, Path("<hep>"), 1)
    return one


def run(target: Target, **scenario: Any) -> ScenarioResult:
    result = run_case_sync(case(**scenario), target)
    assert result.capture is not None
    return result


def hops(result: ScenarioResult) -> list[tuple[str, str]]:
    assert result.capture is not None
    return [(leg.hop, leg.kind) for leg in result.capture.legs]


def legs(result: ScenarioResult, hop: str, kind: str) -> list[Leg]:
    assert result.capture is not None
    return [leg for leg in result.capture.legs if leg.hop == hop and leg.kind == kind]


def test_the_sbc_received_the_invite_with_the_carriers_header_and_relayed_it_without(lab: Target) -> None:
    result = run(
        lab,
        carrier={"role": "listed"},
        send={"number": "routed", "headers": {"X-Carrier-Tag": "blue"}},
        expect={
            "outcome": "routed",
            "capture": {
                "present": [
                    {
                        "from": "carrier",
                        "to": "sbc",
                        "message": "INVITE",
                        "headers": {"X-Carrier-Tag": "^blue$"},
                    }
                ],
                "absent": [{"from": "sbc", "to": "media", "headers": {"X-Carrier-Tag": ".*"}}],
            },
        },
    )
    assert result.ok, result.failures
    assert result.exchange is not None and result.capture is not None
    [received] = legs(result, "carrier->sbc", "INVITE")
    assert received.data == result.exchange.sent[0].data  # byte for byte what the carrier sent
    [relayed] = legs(result, "sbc->media", "INVITE")
    assert relayed.header("X-AUTH-IP") == result.exchange.local[0]
    assert {
        ("media->sbc", "200"),
        ("sbc->carrier", "200"),
        ("carrier->sbc", "ACK"),
        ("carrier->sbc", "BYE"),
    } <= set(hops(result))
    assert result.capture.parity is not None and result.capture.parity.ok
    packet = received.line.packet
    assert packet is not None and packet.capture_id == 1 and packet.timestamp is not None
    assert abs(packet.timestamp - result.exchange.events[0].wall) < 1.0


def test_freeswitch_answered_407_and_the_sbc_relayed_it(lab: Target) -> None:
    result = run(
        lab, carrier={"role": "unlisted"}, send={"number": "routed"}, expect={"outcome": "acl_rejected"}
    )
    assert result.ok, result.failures
    assert [h for h in hops(result) if h[1] == "407"] == [("media->sbc", "407"), ("sbc->carrier", "407")]


def test_an_insane_invite_is_received_and_never_relayed(lab: Target) -> None:
    result = run(
        lab,
        carrier={"role": "listed"},
        send={"number": "routed", "mutators": ["cseq-mismatch"]},
        expect={"outcome": "dropped_insane"},
    )
    assert result.ok, result.failures
    assert {h[0] for h in hops(result)} == {"carrier->sbc"}


def test_garbage_never_reaches_siptrace_and_the_parity_says_so(lab: Target) -> None:
    result = run(
        lab,
        cause="malformed",
        carrier={"role": "listed"},
        send={"number": "routed", "mutators": ["garbage=300"]},
        expect={"outcome": "dropped_garbage"},
    )
    assert result.ok, result.failures
    assert result.capture is not None and result.capture.parity is not None
    assert hops(result) == [] and result.capture.parity.compared == 0
    assert "sip_check_fline" in result.capture.parity.summary()


def test_a_leg_that_was_never_captured_fails_the_scenario(lab: Target) -> None:
    result = run(
        lab,
        carrier={"role": "unlisted"},
        send={"number": "routed"},
        expect={
            "outcome": "acl_rejected",
            "capture": {"present": [{"from": "media", "to": "sbc", "message": 200}]},
        },
    )
    assert not result.ok
    [failure] = result.failures
    assert (
        "captured legs not as expected" in failure and "MISSING  at least once: media -> sbc 200" in failure
    )

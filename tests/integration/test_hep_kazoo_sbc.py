"""HEP from Kazoo's own Kamailio configuration (issue 18 item 2): the kazoo-sbc kind switches on its
SIP_TRACE_ROLE in local.cfg's site block (SIP_TRACE_URI at the target's receiver, HEP_CAPTURE_ID 1,
KZ_TRACE 1: without it nothing is traced) and the `sbc-capture` source gets the SBC's legs as HEP3.

That role traces from the script: the sanity check traces an insane message before dropping it, the
request route traces what passes its checks; a scanner's INVITE, dropped by the User-Agent check, is
never traced. So this capture is not complete — the profile's capture blocks and the parity check do not
apply there, and a scenario asserts only legs that exist."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.kazoo_sbc.launcher import kazoo_sbc_available
from harness.scenario.case import expand
from harness.scenario.runner import ScenarioResult, run_case_sync
from harness.targets import open_target
from harness.targets.capture import SBC_CAPTURE
from harness.targets.target import Target

MISSING = kazoo_sbc_available()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        MISSING is not None,
        reason=f"Kazoo's Kamailio configuration needs: {MISSING} (CI installs kamailio-kazoo-modules, "
        "kamailio-sqlite-modules, rabbitmq-server...)",
    ),
]
_CALLS = itertools.count()


@pytest.fixture(scope="module")
def sbc() -> Iterator[Target]:
    with open_target("kazoo-sbc", "kazoo-4.3") as target:
        yield target


def run(target: Target, **scenario: Any) -> ScenarioResult:
    scenario.setdefault("name", f"sip trace role call {next(_CALLS)}")  # its own seed: its own branch
    scenario.setdefault("description", "captured by Kazoo's SIP_TRACE_ROLE")
    [case] = expand(scenario, Path("<kazoo-sbc hep>"), 1)
    result = run_case_sync(case, target)
    assert result.capture is not None, "the kazoo-sbc target has a capture"
    return result


def test_the_target_owns_an_incomplete_capture(sbc: Target) -> None:
    [capture] = sbc.captures
    assert capture.name == SBC_CAPTURE and not capture.complete
    assert capture.receiver.address("udp")[0] == "127.0.0.1"


def test_a_routed_call_s_requests_are_captured_as_the_sbc_received_them(sbc: Target) -> None:
    result = run(
        sbc,
        cause="call_flow",
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
                    },
                    {"from": "carrier", "to": "sbc", "message": "ACK"},
                    {"from": "carrier", "to": "sbc", "message": "BYE"},
                ]
            },
        },
    )
    assert result.ok, result.failures
    assert result.capture is not None and result.exchange is not None
    assert result.capture.parity is None  # not a complete capture: no parity to hold it to
    [received] = [leg for leg in result.capture.legs if leg.hop == "carrier->sbc" and leg.kind == "INVITE"]
    # what the carrier sent, but for Max-Forwards: traced from the script, after maxfwd lowered it in the
    # message's own buffer to its max_limit (50 in default.cfg)
    sent = result.exchange.sent[0].data
    assert b"Max-Forwards: 70\r\n" in sent and b"Max-Forwards: 50\r\n" in received.data
    assert received.data.replace(b"Max-Forwards: 50\r\n", b"Max-Forwards: 70\r\n") == sent
    packet = received.line.packet
    assert packet is not None and packet.version == 3 and packet.capture_id == 1  # HEP_CAPTURE_ID
    # 4.3's route calls sip_trace() before setflag(FLAG_SIP_TRACE), and Kamailio 5.6's siptrace picks
    # transaction tracing (relayed requests, replies) only from the flag as sip_trace() runs: the relayed
    # INVITE and the replies are not captured (docs/hep.md)
    assert not [leg for leg in result.capture.legs if leg.kind == "INVITE" and leg.hop != "carrier->sbc"]
    assert not [leg for leg in result.capture.legs if leg.kind.isdigit()]


def test_an_insane_invite_is_traced_by_the_sanity_check_and_never_relayed(sbc: Target) -> None:
    result = run(
        sbc,
        cause="malformed",
        carrier={"role": "listed"},
        send={"number": "routed", "mutators": ["cseq-mismatch"]},
        expect={
            "outcome": "dropped_insane",
            "capture": {
                "present": [{"from": "carrier", "to": "sbc", "message": "INVITE", "count": 1}],
                "absent": [{"from": "sbc"}],
            },
        },
    )
    assert result.ok, result.failures  # sanity.cfg calls sip_trace() before it drops


def test_a_scanner_dropped_before_the_role_traces_leaves_no_leg(sbc: Target) -> None:
    # why this capture is not complete: the User-Agent check drops before route(SIP_TRACE), untraced
    result = run(
        sbc,
        cause="malformed",
        carrier={"role": "listed"},
        send={"number": "routed", "mutators": ["user-agent=scanner"]},
        expect={"outcome": "dropped_scanner"},  # its "received, not relayed" block is not applied here
    )
    assert result.ok, result.failures
    assert result.capture is not None and result.capture.legs == [] and result.capture.parity is None

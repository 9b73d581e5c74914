"""`setup: {kamailio_roles: ...}` is what the target can do, never a stand-in: the embedded model opens a
twin whose SBC role plays the role; kazoo-sbc opens a twin of Kazoo's own Kamailio configuration with the
role switched on in its local.cfg (real pike drops the flood), in front of the same model on the same
broker; the lab refuses (our configuration has no such role) instead of answering from a second model.

A burst here is 120 INVITEs from one untrusted address, sent back to back; it has ended when every INVITE
has either an answer or a drop line in the twin's Kamailio log (each dropped INVITE writes one)."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from model_helpers import Invite, UdpPeer

from harness.kazoo.profile import load_profile
from harness.kazoo.roles import BROKEN_ON_DEBIAN
from harness.kazoo_sbc.launcher import kazoo_sbc_available
from harness.lab.kamailio import kamailio_available
from harness.scenario.case import load_cases
from harness.scenario.runner import run_case_sync
from harness.scenario.setup import applied
from harness.targets.embedded import ModelSetup, open_embedded
from harness.targets.kazoo_sbc import SbcSetup, open_kazoo_sbc
from harness.targets.lab import open_lab
from harness.targets.setup import LAB_ROLES_REASON
from harness.targets.target import SetupUnsupported, Target

UNLISTED = "127.0.0.66"
ABSENT = "+14155550199"
BURST = 120
DEADLINE = 20.0
DROP = re.compile(r"dropping request from \S+ due to rate of requests with source 127\.0\.0\.66:\d+")
UNTRUSTED_BURST = Path(__file__).resolve().parents[2] / "scenarios" / "load" / "untrusted_burst.yaml"
ANTIFLOOD = {"kamailio_roles": {"antiflood": True}}


def burst(target: Target, log: Path) -> tuple[set[str], int]:
    """Send the burst to ``target``'s SBC; the Call-IDs answered and the drop lines, once they add up."""
    with UdpPeer(UNLISTED) as peer:
        peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sent = [Invite(ABSENT, peer.address, target.sbc) for _ in range(BURST)]
        for invite in sent:
            peer.send(invite.render(), target.sbc)
        answered: set[str] = set()
        drops = 0
        deadline = time.monotonic() + DEADLINE
        while len(answered) + drops < BURST and time.monotonic() < deadline:
            response = peer.recv(0.05)
            if response is not None:
                answered.add(response.get("call-id") or "")
            drops = len(DROP.findall(log.read_text(encoding="utf-8"))) if log.exists() else 0
    assert answered <= {i.call_id for i in sent}
    return answered, drops


@pytest.fixture(scope="module")
def embedded() -> Iterator[Target]:
    with open_embedded(load_profile("kazoo-4.3")) as target:
        yield target


def test_the_embedded_model_opens_a_twin_that_plays_the_role(embedded: Target) -> None:
    with applied(embedded, ANTIFLOOD) as twin:
        assert twin.sbc != embedded.sbc and twin.profile.role_on("antiflood")
        assert not embedded.profile.role_on("antiflood")
        assert isinstance(twin.setup, ModelSetup)
        model = twin.setup.model
        assert model.config.role_switches["antiflood"]
        answered, drops = burst(twin, Path(model.log_dir) / "kamailio.log")
        assert len(answered) == 63 and drops == BURST - 63  # pike in a fresh tree (test_model_flood.py)
        assert twin.carriers == embedded.carriers and twin.numbers == embedded.numbers
        address = twin.sbc
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(address)  # free again: the twin was stopped with the block


def test_a_role_the_target_already_plays_as_asked_needs_no_twin(embedded: Target) -> None:
    with applied(embedded, {"kamailio_roles": {"antiflood": False}}) as same:
        assert same is embedded


def test_the_burst_scenario_runs_through_the_twin(embedded: Target) -> None:
    (case,) = load_cases(UNTRUSTED_BURST)
    result = run_case_sync(case, embedded)
    assert result.ok and result.skipped is None, result.failures


@pytest.mark.skipif(
    kamailio_available() is not None, reason=f"the lab needs Kamailio: {kamailio_available()}"
)
def test_the_lab_refuses_a_role_its_configuration_does_not_have() -> None:
    (case,) = load_cases(UNTRUSTED_BURST)
    with open_lab(load_profile("kazoo-4.3")) as lab:
        refused = rf"antiflood on; target 'lab': {re.escape(LAB_ROLES_REASON)}"
        with pytest.raises(SetupUnsupported, match=refused), applied(lab, ANTIFLOOD):
            pass
        result = run_case_sync(case, lab)  # skipped with the reason, never run against a second model
        assert result.skipped is not None and LAB_ROLES_REASON in result.skipped
        assert result.exchange is None


SBC_MISSING = kazoo_sbc_available()


@pytest.mark.slow
@pytest.mark.skipif(SBC_MISSING is not None, reason=f"kazoo-sbc needs: {SBC_MISSING}")
def test_kazoo_sbc_opens_a_twin_configuration_with_the_role_switched_on() -> None:
    with open_kazoo_sbc(load_profile("kazoo-4.3")) as kazoo:
        assert isinstance(kazoo.setup, SbcSetup)
        first = kazoo.setup.sbc
        assert "antiflood" not in first.roles
        with applied(kazoo, ANTIFLOOD) as twin:
            assert isinstance(twin.setup, SbcSetup)
            second = twin.setup.sbc
            assert "antiflood" in second.roles and twin.profile.role_on("antiflood")
            assert twin.sbc == second.address != kazoo.sbc
            assert second.amqp_url == first.amqp_url and second.broker is None  # the first's broker
            assert twin.setup.model is kazoo.setup.model  # in front of the same model
            answered, drops = burst(twin, second.log_path)
            # Kamailio's own pike: the head of the burst gets the ACL's answer, the tail is dropped
            # with the role's line (how many pass depends on Kamailio's timer phase, as in the model)
            assert drops > 0 and 50 <= len(answered) < BURST and len(answered) + drops == BURST
            pid = second.pid
        assert pid is not None and not Path(f"/proc/{pid}").exists()
        broken = re.escape(BROKEN_ON_DEBIAN["rate_limiter"])
        with (
            pytest.raises(SetupUnsupported, match=broken),
            applied(kazoo, {"kamailio_roles": {"rate_limiter": True}}),
        ):
            pass
        answered, drops = burst(kazoo, first.log_path)  # the first SBC never ran the role
        assert len(answered) == BURST and drops == 0

"""How a case's capture expectations are planned (harness.scenario.plan, docs/hep.md): the scenario's own
`expect.capture`, the profile outcome's typed `capture` block only where the target's capture is complete
and the call goes through the SBC, the parity check, placeholders filled by the one filler, the skip on a
target without a capture, and the file:line errors of both schemas (scenario and profile)."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from harness.kazoo.numbers import InboundConfig
from harness.kazoo.profile import LegPattern, ProfileError, load_profile, profile_for
from harness.kazoo.release import DEFAULT_RELEASE
from harness.logs.hep_source import HepCapture, HepReceiver
from harness.logs.source import MemorySource
from harness.scenario.case import ScenarioCase, load_cases
from harness.scenario.plan import Plan, PlanError, plan, render
from harness.sip.builder import InviteSpec
from harness.targets.target import LogFactory, Target
from harness.yaml_schema import SchemaError

PROFILE = profile_for(DEFAULT_RELEASE.name)


def target(*, capture: bool | None) -> Target:
    """``capture``: None = no capture, False = an incomplete one, True = a complete one. The receiver
    is never started: only its description matters here."""
    logs: dict[str, LogFactory] = {n: partial(MemorySource, n) for n in ("freeswitch", "kamailio", "kazoo")}
    if capture is not None:
        logs["sbc-capture"] = HepCapture(HepReceiver(["udp:127.0.0.1:0"], "sbc-capture"), capture)
    return Target(
        "t", "file", PROFILE, ("127.0.0.1", 5060), media=("127.0.0.1", 11000),
        carriers={"listed": ("127.0.0.10", None)}, numbers={"routed": "+14155550100"}, logs=logs,
    )  # fmt: skip


def case(expect: dict[str, object], **send: object) -> ScenarioCase:
    return ScenarioCase("c", "malformed", "d", Path("x.yaml"), 1, send=dict(send), expect=expect)


def planned(c: ScenarioCase, t: Target) -> Plan:
    return plan(c, t, InboundConfig())


def described(p: Plan) -> list[str]:
    spec = InviteSpec(local_ip="127.0.0.10", local_port=5070, **p.fields)  # type: ignore[arg-type]
    return [e.describe() for e in render(p, spec).legs]


def test_a_complete_capture_adds_the_profiles_block_and_parity() -> None:
    p = planned(case({"outcome": "dropped_insane"}), target(capture=True))
    assert p.parity
    assert described(p) == ["never: sbc -> media any message", "never: sbc -> carrier any message"]


def test_an_incomplete_capture_or_a_call_to_media_keeps_only_the_scenarios_own() -> None:
    own = {"outcome": "dropped_insane", "capture": {"present": [{"from": "carrier", "to": "sbc"}]}}
    for t, c in (
        (target(capture=False), case(own)),
        (target(capture=True), case({**own, "outcome": "routed"}, to="media")),
    ):
        p = planned(c, t)
        assert not p.parity and described(p) == ["at least once: carrier -> sbc any message"]


def test_placeholders_fill_header_patterns_from_the_message_built() -> None:
    p = planned(case({"outcome": "routed"}), target(capture=True))
    spec = InviteSpec(local_ip="127.0.0.10", local_port=5070, **p.fields)  # type: ignore[arg-type]
    relayed = render(p, spec).legs[0]
    assert relayed.src == "sbc" and relayed.dst == "media"
    assert relayed.headers == (("X-AUTH-IP", r"^127\.0\.0\.10$"),)
    # a placeholder without a value here is the scenario's failure, before anything is sent
    undeclared = replace(p, capture=(LegPattern("sbc", "media", headers=(("X", "{nothing}"),)),))
    with pytest.raises(PlanError, match=r"\{nothing\} is not a placeholder"):
        render(undeclared, spec)


def test_a_case_expecting_legs_is_skipped_where_nothing_captures() -> None:
    wants = case({"capture": {"absent": [{"from": "sbc", "to": "media"}]}})
    assert "has no HEP capture" in (planned(wants, target(capture=None)).skip or "")
    assert planned(wants, target(capture=False)).skip is None
    plain = planned(case({"outcome": "routed"}), target(capture=None))
    assert plain.skip is None and plain.capture == () and not plain.parity


def test_leg_patterns_from_the_schemas_mapping() -> None:
    spec = {
        "present": [
            {
                "from": "media",
                "to": "sbc",
                "message": 407,
                "count": 1,
                "capture_id": 2,
                "source": "sbc-capture",
            }
        ],
        "absent": [{"to": "media", "headers": {"X-AUTH-IP": "^127"}}],
    }
    p = planned(case({"capture": spec}), target(capture=False))
    present, absent = p.capture
    assert (present.src, present.dst, present.message, present.count, present.capture_id, present.source) == (
        "media", "sbc", "407", 1, 2, "sbc-capture",
    )  # fmt: skip
    assert not absent.present and absent.headers == (("X-AUTH-IP", "^127"),)


def test_the_profile_outcomes_carry_typed_capture_blocks() -> None:
    routed = PROFILE.outcome("routed").capture
    assert routed[0] == LegPattern("sbc", "media", "INVITE", (("X-AUTH-IP", "^{source_ip}$"),))
    assert all(not leg.present for leg in PROFILE.outcome("dropped_insane").capture)
    assert PROFILE.outcome("routed", "media").capture == ()  # a call straight to media: no SBC legs


def test_the_schema_checks_capture_blocks(tmp_path: Path) -> None:
    good = tmp_path / "scenarios" / "good.yaml"
    good.parent.mkdir()
    good.write_text(
        "name: n\ncause: acl\ndescription: d\nsend: {number: routed}\n"
        "expect:\n  outcome: routed\n  capture:\n    present:\n"
        "      - {from: sbc, to: media, message: INVITE}\n"
    )
    [loaded] = load_cases(good)
    assert loaded.expect["capture"]["present"] == [{"from": "sbc", "to": "media", "message": "INVITE"}]
    bad = tmp_path / "scenarios" / "bad.yaml"
    bad.write_text(good.read_text().replace("to: media", "to: proxy"))
    with pytest.raises(SchemaError) as caught:
        load_cases(bad)
    assert str(caught.value).startswith(f"{bad}:9: expect.capture.present[0].to: 'proxy' is not one of")


def test_the_profile_schema_checks_capture_blocks_at_file_line(tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        f"extends: {PROFILE.name}\noutcomes:\n  routed:\n    cause: none\n    final: {{code: 200}}\n"
        "    capture:\n      present:\n        - {from: sbc, to: media, headers: {X-AUTH-IP: '{nope}'}}\n"
    )
    with pytest.raises(ProfileError, match=rf"^{mine}:8: outcomes\.routed\.capture\.present\[0\]\.headers"):
        load_profile(mine)
    mine.write_text(mine.read_text().replace("to: media", "to: proxy").replace("{nope}", "x"))
    with pytest.raises(ProfileError, match=rf"^{mine}:8: .*\.to: 'proxy' is not one of"):
        load_profile(mine)

"""How a case's capture expectations are put together (harness.scenario.hep_capture): the scenario's
own `expect.capture`, the profile outcome's block only where the target's capture is complete and the
call goes through the SBC, the parity check, placeholders, the skip on a target without a capture,
and the schema's file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.kazoo.profiles import load_profile
from harness.logs.hep_source import HepCapture, HepReceiver
from harness.scenario.case import ScenarioCase, load_cases
from harness.scenario.hep_capture import capture_unavailable, case_expectations, leg_expectations
from harness.scenario.schema import ScenarioError
from harness.scenario.target import Target

PROFILE = load_profile("kazoo-4.3")


def target(*, capture: bool | None) -> Target:
    """``capture``: None = no capture, False = an incomplete one, True = a complete one. The receiver
    is never started: only its description matters here."""
    t = Target("t", "file", ("127.0.0.1", 5060), PROFILE, media=("127.0.0.1", 11000))
    if capture is not None:
        t.log_sources["sbc-capture"] = HepCapture(HepReceiver(["udp:127.0.0.1:0"], "sbc-capture"), capture)
    return t


def case(expect: dict[str, object], **send: object) -> ScenarioCase:
    return ScenarioCase("c", "malformed", "d", Path("x.yaml"), 1, send=dict(send), expect=expect)


def test_a_complete_capture_adds_the_profiles_block_and_parity() -> None:
    expectations, parity = case_expectations(case({"outcome": "dropped_insane"}), target(capture=True))
    assert parity
    assert [e.describe() for e in expectations] == [
        "never: sbc -> media any message",
        "never: sbc -> carrier any message",
    ]


def test_an_incomplete_capture_or_a_call_to_media_keeps_only_the_scenarios_own() -> None:
    own = {"outcome": "dropped_insane", "capture": {"present": [{"from": "carrier", "to": "sbc"}]}}
    for t, c in (
        (target(capture=False), case(own)),
        (target(capture=True), case(own, to="media")),
    ):
        expectations, parity = case_expectations(c, t)
        assert not parity and [e.describe() for e in expectations] == [
            "at least once: carrier -> sbc any message"
        ]


def test_placeholders_fill_header_patterns() -> None:
    expectations, _ = case_expectations(
        case({"outcome": "routed"}), target(capture=True), {"source_ip": "127.0.0.10", "call_id": "x"}
    )
    relayed = expectations[0]
    assert relayed.src == "sbc" and relayed.dst == "media"
    assert relayed.headers == (("X-AUTH-IP", r"^127\.0\.0\.10$"),)
    with pytest.raises(ValueError, match=r"uses \{source_ip\}"):
        case_expectations(case({"outcome": "routed"}), target(capture=True), {})


def test_a_case_expecting_legs_is_skipped_where_nothing_captures() -> None:
    wants = case({"capture": {"absent": [{"from": "sbc", "to": "media"}]}})
    assert "has no HEP capture" in (capture_unavailable(wants, target(capture=None)) or "")
    assert capture_unavailable(wants, target(capture=False)) is None
    assert capture_unavailable(case({"outcome": "routed"}), target(capture=None)) is None


def test_leg_expectations_from_the_schemas_mapping() -> None:
    spec = {
        "present": [
            {"from": "media", "to": "sbc", "message": 407, "count": 1, "capture_id": 2, "source": "s"}
        ],
        "absent": [{"to": "media", "headers": {"X-AUTH-IP": "^127"}}],
    }
    present, absent = leg_expectations(spec)
    assert (present.src, present.dst, present.message, present.count, present.capture_id, present.source) == (
        "media", "sbc", "407", 1, 2, "s",
    )  # fmt: skip
    assert not absent.present and absent.headers == (("X-AUTH-IP", "^127"),)


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
    with pytest.raises(ScenarioError) as caught:
        load_cases(bad)
    assert str(caught.value).startswith(f"{bad}:9: expect.capture.present[0].to: 'proxy' is not one of")

"""The typed profile: shipped profiles load, user profiles are checked like scenario files (errors at
file:line:field), every outcome names its cause, and the one placeholder filler."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.kazoo.causes import VERDICTS
from harness.kazoo.profile import PlaceholderError, ProfileError, fill, load_profile, shipped_profiles
from harness.kazoo.release import RELEASE_NAMES


def test_one_shipped_profile_per_release() -> None:
    assert shipped_profiles() == sorted(RELEASE_NAMES)
    for name in RELEASE_NAMES:
        profile = load_profile(name)
        assert profile.release.name == name
        assert all(outcome.cause in VERDICTS for outcome in profile.outcomes.values())
        assert {"voicemail", "ivr"} <= set(profile.never)


def test_drop_outcomes_are_the_silent_ones_with_their_lines() -> None:
    profile = load_profile()
    drops = {o.name for o in profile.drop_outcomes()}
    assert {"dropped_insane", "dropped_no_via", "connection_closed"} <= drops
    assert "acl_rejected" not in drops and "too_many_hops" not in drops  # answered: no drop line
    assert all(o.drop_lines for o in profile.drop_outcomes())


def _user_profile(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        (
            "extends: kazoo-4.3\noutcomes:\n  routed:\n    final: {code: 200}\n",
            ":4: outcomes.routed",  # where the outcome's mapping starts
            "missing required field 'cause'",
        ),
        (
            "extends: kazoo-4.3\noutcomes:\n  routed:\n    cause: nonsense\n    final: {code: 200}\n",
            ":4: outcomes.routed.cause",
            "is not one of",
        ),
        (
            "extends: kazoo-4.3\noutcomes:\n  routed:\n    cause: none\n    logs:\n      present:\n"
            "        - {source: kamailio, pattern: 'from {carrier_ip}'}\n",
            ":7: outcomes.routed.logs.present[0].pattern",
            "unknown placeholder(s) {carrier_ip}",
        ),
        (
            "extends: kazoo-4.3\noutcomes:\n  routed:\n    cause: none\n    final: {code: 1200}\n",
            ":5: outcomes.routed.final.code",
            "SIP status code",
        ),
        ("release: kazoo-9\n", ":1: release", "is not one of"),
        ("extends: kazoo-4.3\nroles: {antiflod: true}\n", ":2: roles.antiflod", "unknown field"),
    ],
    ids=["no-cause", "bad-cause", "unknown-placeholder", "bad-code", "bad-release", "bad-role"],
)
def test_a_user_profile_is_checked_at_file_line_field(
    tmp_path: Path, text: str, where: str, what: str
) -> None:
    path = _user_profile(tmp_path, text)
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert f"{path}{where}: " in str(caught.value) and what in str(caught.value), str(caught.value)


def test_a_user_profile_replaces_an_outcome_and_switches_a_role(tmp_path: Path) -> None:
    path = _user_profile(
        tmp_path,
        "name: my-stack\nextends: kazoo-5\nroles: {antiflood: true}\noutcomes:\n"
        "  acl_rejected:\n    cause: acl\n    final: {code: 407}\n",
    )
    profile = load_profile(path)
    assert profile.name == "my-stack" and profile.release.name == "kazoo-5"
    assert profile.outcome("acl_rejected").final_codes == (407,)
    assert profile.outcome("acl_rejected").logs_present == ()  # replaced whole
    assert profile.role_on("antiflood") and not load_profile("kazoo-5").role_on("antiflood")


def test_fill_escapes_values_keeps_quantifiers_and_names_what_is_missing() -> None:
    values = {"source_ip": "127.0.0.10", "source_port": "5099", "number": "+14155550100"}
    filled = fill(r"from {source_ip}:{source_port} \d{2,5} {number}", values)
    assert filled == r"from 127\.0\.0\.10:5099 \d{2,5} \+14155550100"
    with pytest.raises(PlaceholderError, match=r"uses \{to_host\}, which has no value"):
        fill("{to_host}", values)
    with pytest.raises(PlaceholderError, match="not a placeholder"):
        fill("{nonsense}", values)
    assert fill("at {to_host} from {source_ip}", values, loose=True) == r"at .*? from 127\.0\.0\.10"

"""A profile's `roles:` (Kazoo's optional Kamailio roles a stack runs) and where they take effect: the
`model` command's configuration and the new outcomes of the shipped profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.commands.model import build_config
from harness.kazoo.profiles import ProfileError, load_profile


def write(tmp: Path, text: str) -> Path:
    path = tmp / "site.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["kazoo-4.3", "kazoo-5"])
def test_shipped_profiles_run_no_optional_role_and_know_the_new_outcomes(name: str) -> None:
    profile = load_profile(name)
    assert profile.roles == {}
    assert profile.outcome("flood_dropped")["silence"] is True
    assert profile.outcome("rate_limited")["final"] == {"code": 603, "reason": "^Over rate Limit$"}


def test_roles_are_inherited_and_overridden(tmp_path: Path) -> None:
    base = write(tmp_path, "name: base\nextends: kazoo-5\nroles: {antiflood: on, acl: on}\n")
    child = tmp_path / "child.yaml"
    child.write_text(
        f"name: child\nextends: {base}\nroles: {{acl: off, rate_limiter: true}}\n", encoding="utf-8"
    )
    assert load_profile(child).roles == {"antiflood": True, "acl": False, "rate_limiter": True}
    assert load_profile(child).release == "kazoo-5"


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        ("{pike: on}", "unknown Kamailio role"),
        ("{antiflood: 3}", "must be on or off"),
        ("[antiflood]", "mapping"),
    ],
)
def test_bad_roles_are_refused_with_the_file(tmp_path: Path, roles: str, message: str) -> None:
    path = write(tmp_path, f"name: x\nextends: kazoo-4.3\nroles: {roles}\n")
    with pytest.raises(ProfileError, match=message) as caught:
        load_profile(path)
    assert str(path) in str(caught.value)


def test_the_model_command_runs_the_roles_of_a_profile_file(tmp_path: Path) -> None:
    path = write(tmp_path, "name: site\nextends: kazoo-4.3\nroles: {antiflood: on, rate_limiter: on}\n")
    config = build_config(
        str(path), None, None, "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0",
        ["rate_limiter=off"], 0.3,
    )  # fmt: skip
    assert config.profile == "kazoo-4.3"
    assert config.role_switches == {"antiflood": True, "rate_limiter": False}  # a flag beats the file


def test_setup_kamailio_roles_on_a_real_stack_needs_the_profile_to_say_so(tmp_path: Path) -> None:
    from harness.scenario.setup import SetupUnsupported, applied
    from harness.scenario.target import Target

    plain = Target("staging.toml", "file", ("127.0.0.1", 5060), load_profile("kazoo-4.3"))
    with (
        pytest.raises(SetupUnsupported, match="antiflood on"),
        applied(plain, {"kamailio_roles": {"antiflood": True}}),
    ):
        pass
    site = write(tmp_path, "name: site\nextends: kazoo-4.3\nroles: {antiflood: on}\n")
    flooded = Target("staging.toml", "file", ("127.0.0.1", 5060), load_profile(site))
    with applied(flooded, {"kamailio_roles": {"antiflood": True}}) as effective:
        assert effective is flooded  # nothing to switch: the stack runs it already
    with (
        pytest.raises(ValueError, match="unknown Kamailio role"),
        applied(flooded, {"kamailio_roles": {"pike": True}}),
    ):
        pass

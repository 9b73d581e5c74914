"""A profile's `roles:` (Kazoo's optional Kamailio roles a stack runs) and where they take effect: the
`model` command's configuration, the new outcomes of the shipped profiles, a scenario's `setup:
kamailio_roles` on a target whose roles the harness cannot switch, and the schema of both files."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.commands.model import build_config
from harness.kazoo.profile import ProfileError, load_profile
from harness.kazoo.release import release
from harness.kazoo.roles import OPTIONAL_ROLES
from harness.scenario.schema import load_file
from harness.scenario.setup import applied
from harness.targets.setup import LAB_ROLES_REASON, ProvisionedSetup
from harness.targets.target import SetupUnsupported, Target
from harness.yaml_schema import SchemaError


def write(tmp: Path, text: str, name: str = "site.yaml") -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["kazoo-4.3", "kazoo-5"])
def test_shipped_profiles_run_no_optional_role_and_know_the_new_outcomes(name: str) -> None:
    profile = load_profile(name)
    assert profile.roles == {role: False for role in OPTIONAL_ROLES}
    flood = profile.outcome("flood_dropped")
    assert flood.silence and "due to rate of requests" in flood.drop_lines[0].pattern
    limited = profile.outcome("rate_limited")
    assert (limited.final_codes, limited.final_reason) == ((603,), "^Over rate Limit$")


def test_roles_are_inherited_and_overridden(tmp_path: Path) -> None:
    base = write(tmp_path, "name: base\nextends: kazoo-5\nroles: {antiflood: on, acl: on}\n", "base.yaml")
    child = write(tmp_path, f"name: child\nextends: {base}\nroles: {{acl: off, rate_limiter: true}}\n")
    loaded = load_profile(child)
    assert {name for name, on in loaded.roles.items() if on} == {"antiflood", "rate_limiter"}
    assert loaded.release == release("kazoo-5")


@pytest.mark.parametrize(("roles", "message"), [("{pike: on}", "unknown field"), ("{antiflood: 3}", "bool")])
def test_bad_roles_are_refused_with_the_file_and_line(tmp_path: Path, roles: str, message: str) -> None:
    path = write(tmp_path, f"name: x\nextends: kazoo-4.3\nroles: {roles}\n")
    with pytest.raises(ProfileError, match=message) as caught:
        load_profile(path)
    assert f"{path}:3" in str(caught.value)


def test_the_model_command_runs_the_roles_of_a_profile_file(tmp_path: Path) -> None:
    path = write(tmp_path, "name: site\nextends: kazoo-4.3\nroles: {antiflood: on, rate_limiter: on}\n")
    config = build_config(
        str(path), None, None, "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0",
        ["rate_limiter=off"], 0.3,
    )  # fmt: skip
    assert config.release == release("kazoo-4.3")
    assert config.role_switches == {"antiflood": True, "rate_limiter": False}  # a flag beats the file


def _file_target(profile_path: str | Path, setup: ProvisionedSetup) -> Target:
    return Target("staging.toml", "file", load_profile(profile_path), ("127.0.0.1", 5060), setup=setup)


def test_setup_kamailio_roles_on_a_real_stack_needs_the_profile_to_say_so(tmp_path: Path) -> None:
    plain = _file_target("kazoo-4.3", ProvisionedSetup())
    with (
        pytest.raises(SetupUnsupported, match=r"antiflood on.*says it runs none of the optional roles"),
        applied(plain, {"kamailio_roles": {"antiflood": True}}),
    ):
        pass
    site = write(tmp_path, "name: site\nextends: kazoo-4.3\nroles: {antiflood: on}\n")
    flooded = _file_target(site, ProvisionedSetup())
    with applied(flooded, {"kamailio_roles": {"antiflood": True}}) as effective:
        assert effective is flooded  # nothing to switch: the stack runs it already
    with (
        pytest.raises(SetupUnsupported, match="antiflood off"),
        applied(flooded, {"kamailio_roles": {"antiflood": False}}),
    ):
        pass


def test_the_lab_configuration_in_containers_runs_no_optional_role() -> None:
    docker = _file_target("kazoo-4.3", ProvisionedSetup(fixed_roles=LAB_ROLES_REASON))
    with (
        pytest.raises(SetupUnsupported, match=r"rate_limiter on.*our lab configuration has no such role"),
        applied(docker, {"kamailio_roles": {"rate_limiter": True}}),
    ):
        pass
    with applied(docker, {"kamailio_roles": {"antiflood": False}}) as effective:
        assert effective is docker  # off is what it runs


def test_a_scenario_naming_an_unknown_role_is_a_schema_error_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: x\ncause: acl\ndescription: d\nsend: {number: routed}\nexpect: {outcome: routed}\n"
        "setup:\n  kamailio_roles:\n    pike: on\n",
        "scenario.yaml",
    )
    with pytest.raises(SchemaError, match=r"setup\.kamailio_roles\.pike") as caught:
        load_file(path)
    assert f"{path}:8" in str(caught.value)

"""The `load:` block: schema errors at file:line, shapes that cannot run, the target's load rules (its send
gate's admit_load: the shape, and each source address's INVITE through the destination and malformed
rules)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.kazoo.profile import load_profile
from harness.load.plan import PlanError, PlanSkipped, make_plan
from harness.load.spec import load_spec
from harness.logs.source import MemorySource
from harness.net.gate import SendRefused
from harness.scenario.case import load_cases
from harness.targets.file import TargetFileError, load_target_file
from harness.targets.target import SafetyPolicy, Target
from harness.yaml_schema import SchemaError

LOGS = {name: (lambda name=name: MemorySource(name)) for name in ("freeswitch", "kamailio", "kazoo")}
BASE = """\
name: absent at rate
cause: number_mapping
description: a load test
carrier: {role: listed}
send: {number: absent}
expect: {outcome: unknown_number}
"""


def _file(tmp_path: Path, load: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(BASE + load, encoding="utf-8")
    return path


def _target(**safety: object) -> Target:
    return Target(
        name="t",
        kind="file",
        sbc=("127.0.0.1", 5060),
        profile=load_profile("kazoo-4.3"),
        carriers={"listed": ("127.0.0.10", None), "unlisted": ("127.0.0.66", None)},
        numbers={"absent": "+14155550199"},
        logs=LOGS,
        policy=SafetyPolicy(origin="t.toml [safety]", **safety),  # type: ignore[arg-type]
    )


def test_a_wrongly_typed_field_names_file_line_and_field(tmp_path: Path) -> None:
    path = _file(tmp_path, "load:\n  shape: burst\n  calls: lots\n")
    with pytest.raises(SchemaError) as err:
        load_cases(path)
    assert str(err.value) == f"{path}:9: load.calls: expected a whole number, got 'lots'"


def test_an_unknown_threshold_is_refused_where_it_stands(tmp_path: Path) -> None:
    path = _file(tmp_path, "load:\n  calls: 10\n  expect:\n    latency:\n      final: {p42: 10}\n")
    with pytest.raises(SchemaError, match=r":11: load\.expect\.latency\.final\.p42: unknown field"):
        load_cases(path)


def test_a_shape_that_cannot_run_names_the_scenario(tmp_path: Path) -> None:
    path = _file(tmp_path, "load:\n  shape: ramp\n  rate: 100\n")
    (case,) = load_cases(path)
    with pytest.raises(SchemaError, match=rf"^{path}:1: load: a ramp needs a duration"):
        load_spec(case)


def test_shares_are_fractions(tmp_path: Path) -> None:
    path = _file(tmp_path, "load:\n  expect:\n    outcomes:\n      unknown_number: {min: 99.9}\n")
    (case,) = load_cases(path)
    with pytest.raises(SchemaError, match=r"load\.expect\.outcomes\.unknown_number\.min: a share is 0\.\.1"):
        load_spec(case)


def test_overrides_win_and_a_burst_is_inferred(tmp_path: Path) -> None:
    (case,) = load_cases(_file(tmp_path, "load:\n  calls: 10\n  within_ms: 100\n"))
    spec = load_spec(case, {"calls": 120, "rate": None})
    assert spec.schedule.shape == "burst" and spec.schedule.total == 120
    assert spec.schedule.within == pytest.approx(0.1)


def test_a_duration_override_bounds_the_run_instead_of_the_files_count(tmp_path: Path) -> None:
    (case,) = load_cases(_file(tmp_path, "load:\n  calls: 10\n  rate: 20\n"))
    assert load_spec(case, {"duration": 3.0}).schedule.total == 60
    assert load_spec(case, {"duration": 3.0, "calls": 5}).schedule.total == 5


def test_a_pool_of_source_addresses_counts_up_from_the_role(tmp_path: Path) -> None:
    (case,) = load_cases(_file(tmp_path, "load:\n  calls: 10\n  sources: 3\n"))
    plan = make_plan(case, _target(), load_spec(case), senders=2)
    assert plan.sources == ["127.0.0.10", "127.0.0.11", "127.0.0.12"]
    assert plan.invite_fields["ruri_user"] == "+14155550199"
    assert plan.concurrency * 2 >= load_spec(case).concurrency


def test_a_target_file_without_allow_load_refuses_naming_the_rule(tmp_path: Path) -> None:
    (case,) = load_cases(_file(tmp_path, "load:\n  calls: 10\n  rate: 5\n"))
    with pytest.raises(SendRefused, match=r"allow_load = true \(t\.toml \[safety\]; rule allow_load\)"):
        make_plan(case, _target(allow_load=False), load_spec(case), senders=1)


def test_max_rate_and_max_duration_refuse_naming_the_rule(tmp_path: Path) -> None:
    (case,) = load_cases(_file(tmp_path, "load:\n  calls: 100\n  rate: 50\n"))
    peak = r"peaks at 50 calls/s, above its max_rate = 20 \(t\.toml \[safety\]; rule max_rate\)"
    with pytest.raises(SendRefused, match=peak):
        make_plan(case, _target(max_load_rate=20.0), load_spec(case), senders=1)
    with pytest.raises(SendRefused, match=r"max_duration = 3 s \(t\.toml \[safety\]; rule max_duration\)"):
        make_plan(case, _target(max_load_duration=3.0), load_spec(case), senders=1)
    burst = load_spec(case, {"shape": "burst", "within_ms": 0})
    with pytest.raises(SendRefused, match=r"unbounded \(a burst within 0 ms\)"):
        make_plan(case, _target(max_load_rate=1000.0), burst, senders=1)
    # a load run paces itself: the per-message cap does not refuse it (nor could it pace the engine)
    assert make_plan(case, _target(rate_limit=1.0), load_spec(case), senders=1).sources


def test_the_gate_sees_each_source_addresses_invite(tmp_path: Path) -> None:
    """The engine writes straight to its sockets: the gate's malformed rule is applied at plan time, on
    the INVITE each source will send, and names the rule and the file."""
    path = tmp_path / "padded.yaml"
    path.write_text(BASE.replace("send: {number: absent}", "send: {number: absent, mutators: [pad=2000]}")
                    + "load: {calls: 5, sources: 2}\n")  # fmt: skip
    (case,) = load_cases(path)
    with pytest.raises(SendRefused, match=r"allow_malformed = true \(t\.toml \[safety\]\).*mutated"):
        make_plan(case, _target(allow_malformed=False), load_spec(case), senders=1)
    assert make_plan(case, _target(allow_malformed=True), load_spec(case), senders=1).mutators == ["pad=2000"]
    clean = tmp_path / "clean.yaml"
    clean.write_text(BASE.replace("send: {number: absent}", "send: {number: absent, headers: {Via: x}}")
                     + "load: {calls: 5}\n")  # fmt: skip
    (case,) = load_cases(clean)
    with pytest.raises(SendRefused, match="malformed request"):  # built, not mutated, but defective
        make_plan(case, _target(allow_malformed=False), load_spec(case), senders=1)
    away = Target(
        name="t", kind="file", sbc=("192.0.2.1", 5060), profile=load_profile("kazoo-4.3"),
        carriers={"listed": ("127.0.0.10", None)}, numbers={"absent": "+14155550199"}, logs=LOGS,
    )  # fmt: skip
    (case,) = load_cases(_file(tmp_path, "load:\n  calls: 5\n"))
    with pytest.raises(SendRefused, match=r"refusing to send to 192\.0\.2\.1:5060"):
        make_plan(case, away, load_spec(case), senders=1)


def test_a_case_for_another_release_is_skipped(tmp_path: Path) -> None:
    (case,) = load_cases(_file(tmp_path, "releases: [kazoo-5]\nload: {calls: 5}\n"))
    with pytest.raises(PlanSkipped, match="applies to kazoo-5 only"):
        make_plan(case, _target(), load_spec(case), senders=1)


def test_what_the_load_path_cannot_do_is_said(tmp_path: Path) -> None:
    path = tmp_path / "tcp.yaml"
    path.write_text(BASE.replace("{role: listed}", "{role: listed, transport: tcp}") + "load: {calls: 5}\n")
    (case,) = load_cases(path)
    with pytest.raises(PlanError, match="UDP only"):
        make_plan(case, _target(), load_spec(case), senders=1)


def test_target_file_safety_keys(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[[sbc]]\nhost = "127.0.0.1"\n[safety]\nallow_load = true\nmax_rate = 25\n')
    target = load_target_file(path).to_target(load_profile("kazoo-4.3"))
    policy = target.policy
    assert (policy.allow_load, policy.max_load_rate, policy.max_load_duration) == (True, 25.0, 60.0)
    assert not load_target_file(_toml(tmp_path, "")).to_target(load_profile("kazoo-4.3")).policy.allow_load
    with pytest.raises(TargetFileError, match=r"safety\.max_duration: must be > 0"):
        load_target_file(_toml(tmp_path, "max_duration = 0\n"))


def _toml(tmp_path: Path, safety: str) -> Path:
    path = tmp_path / "u.toml"
    path.write_text('[[sbc]]\nhost = "127.0.0.1"\n[safety]\n' + safety)
    return path

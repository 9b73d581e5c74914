"""Target files (validation, the Target built from them) and the send gate's rules, without sockets."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
from pathlib import Path

import pytest

from harness.kazoo.profile import load_profile
from harness.model.stack import ModelConfig
from harness.net.gate import Outgoing, SendRefused
from harness.sip import builder
from harness.targets.address import open_running_model
from harness.targets.file import (
    Secret,
    TargetFileError,
    load_target_file,
    parse_target_file,
    sbc_refs,
    split_target_ref,
)
from harness.targets.gate import RateCap
from harness.targets.redact import RedactingFilter, redact
from harness.targets.target import SafetyPolicy, Target

EXAMPLES = Path(__file__).resolve().parents[2] / "scenarios" / "targets"
PROFILE = load_profile("kazoo-4.3")


def parse(data: dict[str, object]) -> object:
    return parse_target_file(Path("t.toml"), data)


@pytest.mark.parametrize("name", ["embedded-model.toml", "staging.example.toml", "lab.toml"])
def test_examples_validate(name: str) -> None:
    spec = load_target_file(EXAMPLES / name)
    target = spec.to_target(PROFILE)
    assert target.kind == "file" and target.sbc == spec.sbc[0].address
    assert target.carriers["listed"][0]


def test_staging_example_is_locked_down() -> None:
    spec = load_target_file(EXAMPLES / "staging.example.toml")
    assert [n.name for n in spec.sbc] == ["kam1", "kam2"]
    assert not spec.safety.allow_malformed and not spec.safety.allow_provisioning
    assert spec.safety.rate_limit == 5
    target = spec.to_target(PROFILE, "kam2")
    assert target.sbc == ("192.0.2.12", 5060) and target.name.endswith("#kam2")
    assert set(target.logs) == {"freeswitch", "kamailio", "kazoo"}
    assert target.stack.node == "ecallmgr@apps1.staging"


def test_embedded_model_example_and_the_model_kind_match_model_defaults() -> None:
    spec = load_target_file(EXAMPLES / "embedded-model.toml")
    config = ModelConfig()
    with open_running_model(PROFILE) as model:
        assert spec.sbc[0].address == (config.host, config.sbc_port) == model.sbc
        assert spec.media == (config.host, config.media_port) == model.media
        assert spec.couch is not None and spec.couch.url == model.stack.couch_url
        assert model.stack.esl == (config.host, config.esl_port, config.esl_password)
        assert spec.node == model.stack.node == config.node


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "sbc: missing"),
        ({"sbc": {"host": "kazoo.example.com"}}, "sbc[0].host: not an IP address"),
        ({"sbc": {"host": "127.0.0.1", "port": 70000}}, "port out of range"),
        ({"sbc": {"host": "127.0.0.1", "port": "5060"}}, "expected int"),
        ({"sbc": {"host": "127.0.0.1", "transports": ["sctp"]}}, "unknown transport"),
        ({"sbc": [{"host": "127.0.0.1", "name": "a"}, {"host": "127.0.0.2", "name": "a"}]}, "unique"),
        ({"sbc": {"host": "127.0.0.1"}, "colour": "red"}, "colour: unknown key"),
        ({"sbc": {"host": "127.0.0.1"}, "carriers": {"listed": "127.0.0.10:x"}}, "carriers.listed"),
        ({"sbc": {"host": "127.0.0.1"}, "couch": {"url": "http://admin:pw@127.0.0.1:5984"}}, "credentials"),
        ({"sbc": {"host": "127.0.0.1"}, "couch": {"url": "ftp://127.0.0.1"}}, "http(s) URL"),
        ({"sbc": {"host": "127.0.0.1"}, "esl": [{"host": "127.0.0.1", "password_env": "a b"}]}, "variable"),
        ({"sbc": {"host": "127.0.0.1"}, "logs": [{"name": "k", "kind": "file"}]}, "logs[0].path"),
        ({"sbc": {"host": "127.0.0.1"}, "logs": [{"name": "f", "kind": "esl", "esl": "x"}]}, "no [[esl]]"),
        ({"sbc": {"host": "127.0.0.1"}, "safety": {"rate_limit": -1}}, "rate_limit"),
        ({"sbc": {"host": "127.0.0.1"}, "safety": {"allow_malformed": "yes"}}, "expected bool"),
    ],
)
def test_invalid_files_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(TargetFileError, match=None) as caught:
        parse(data)
    assert message in str(caught.value) and "t.toml" in str(caught.value)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[sbc]\nhost=", encoding="utf-8")
    with pytest.raises(TargetFileError, match="not valid TOML"):
        load_target_file(bad)
    with pytest.raises(TargetFileError, match="cannot read"):
        load_target_file(tmp_path / "absent.toml")


def test_defaults_are_safe() -> None:
    spec = parse({"sbc": {"host": "10.0.0.5"}})
    assert spec.safety.allow_malformed is False  # type: ignore[attr-defined]
    assert spec.safety.allow_provisioning is False  # type: ignore[attr-defined]
    assert spec.safety.rate_limit == 10.0  # type: ignore[attr-defined]


def test_target_refs_and_nodes() -> None:
    # (open_target itself pings the SBC: tested against the model in tests/integration/test_target_check.py)
    target = load_target_file(EXAMPLES / "staging.example.toml").to_target(PROFILE, "kam2")
    assert target.sbc == ("192.0.2.12", 5060) and target.policy.allow_malformed is False
    assert split_target_ref("a/b.toml#n1") == ("a/b.toml", "n1")
    assert split_target_ref("embedded") == ("embedded", None)
    refs = sbc_refs(str(EXAMPLES / "staging.example.toml"))
    assert [r.rsplit("#", 1)[1] for r in refs] == ["kam1", "kam2"]
    assert sbc_refs("embedded") == ["embedded"]


def test_secrets_come_from_the_environment_and_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_ESL", "esl-secret-1")
    monkeypatch.setenv("T_COUCH", "couch-secret-2")
    spec = parse(
        {
            "sbc": {"host": "127.0.0.1"},
            "esl": [{"host": "127.0.0.1", "password_env": "T_ESL"}],
            "couch": {"url": "http://127.0.0.1:5984", "username_env": "T_USER", "password_env": "T_COUCH"},
        }
    )
    target = spec.to_target(PROFILE)  # type: ignore[attr-defined]
    assert target.stack.esl is not None and target.stack.esl[2] == "esl-secret-1"
    assert set(target.secrets) == {"esl-secret-1", "couch-secret-2"}
    shown = repr(target)
    assert "esl-secret-1" not in shown and "couch-secret-2" not in shown and "***" in shown
    assert repr(Secret("x")) == "'***'" and str(Secret("x")) == "x"


def test_redact_and_log_filter(caplog: pytest.LogCaptureFixture) -> None:
    assert redact("auth s3cret ok s3cret-long", ["s3cret", "s3cret-long"]) == "auth *** ok ***"
    logger = logging.getLogger("harness.test.redact")
    logger.addFilter(RedactingFilter(["hunter2"]))
    with caplog.at_level(logging.INFO, logger="harness.test.redact"):
        logger.info("password is %s", "hunter2")
    assert "hunter2" not in caplog.text and "***" in caplog.text


def file_target(**policy: object) -> Target:
    target = load_target_file(EXAMPLES / "staging.example.toml").to_target(PROFILE)
    return target.with_changes(policy=dataclasses.replace(target.policy, **policy)) if policy else target


def invite(host: str = "192.0.2.11") -> bytes:
    spec = builder.InviteSpec(target_host=host, target_port=5060, local_ip="127.0.0.10", local_port=5070,
                              ruri_user="+14155550100", to_user="+14155550100", seed=1)  # fmt: skip
    return builder.build_invite(spec).to_bytes()


def refusal(target: Target, data: bytes, *, mutated: bool = False, to: tuple[str, int] = ("192.0.2.11", 5060)
            ) -> str | None:  # fmt: skip
    return target.gate.refusal(Outgoing(to, data, "udp", mutated))


def test_destinations_only_named_or_loopback() -> None:
    target = file_target()
    assert refusal(target, invite()) is None  # named in the file
    assert refusal(target, invite("127.0.0.1"), to=("127.0.0.1", 5060)) is None  # loopback
    assert "203.0.113.9" in (refusal(target, invite("203.0.113.9"), to=("203.0.113.9", 5060)) or "")
    with pytest.raises(SendRefused, match=r"203\.0\.113\.9"):
        asyncio.run(target.gate.admit(Outgoing(("203.0.113.9", 5060), invite(), "udp", False)))


def test_the_gate_judges_the_bytes_not_a_label() -> None:
    target = file_target()
    good = invite()
    assert refusal(target, good) is None
    no_cseq = b"".join(line for line in good.splitlines(keepends=True) if not line.startswith(b"CSeq:"))
    reason = refusal(target, no_cseq)  # not declared mutated: the bytes themselves are malformed
    assert reason is not None and "allow_malformed" in reason and "no cseq header" in reason
    assert "staging.example.toml [safety]" in reason  # where the rule is set
    assert "mutated" in (refusal(target, good, mutated=True) or "")  # declared mutated, even well formed
    oversized = good.replace(b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\nX-Pad: " + b"x" * 2000 + b"\r\n")
    assert "over the 1300-byte limit" in (refusal(target, oversized) or "")
    assert refusal(file_target(allow_malformed=True), no_cseq) is None


def test_provisioning_refused_without_the_rule() -> None:
    with pytest.raises(SendRefused, match="allow_provisioning"):
        file_target().provisioner()


def test_a_policy_default_is_permissive_only_for_the_harness_own_stacks() -> None:
    assert SafetyPolicy().allow_malformed and not file_target().policy.allow_malformed


def test_rate_cap_spaces_sends() -> None:
    cap = RateCap(20.0)
    waits = [cap.reserve() for _ in range(10)]
    # each reservation is one interval after the previous one (minus the instants between the calls)
    gaps = [b - a for a, b in itertools.pairwise(waits)]
    assert waits[0] == 0.0
    assert all(0.049 < gap <= 0.05 for gap in gaps), gaps
    assert 0.44 < waits[-1] <= 0.45
    with pytest.raises(ValueError):
        RateCap(0)

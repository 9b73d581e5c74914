"""`kazoo-harness diagnose` against the embedded model (its CouchDB-compatible API and event socket stand
in for a real stack's): each seed cause, a healthy pair, JSON shape and exit statuses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from targets_helpers import model_target_file
from typer.testing import CliRunner

from harness.cli import app
from harness.kazoo.couch import CouchClient
from harness.model.stack import ModelConfig, RunningModel, start_model

runner = CliRunner()
EXIT_NONE, EXIT_FOUND, EXIT_UNCHECKED = 0, 1, 3


@pytest.fixture(scope="module")
def model() -> Iterator[RunningModel]:
    running = start_model(ModelConfig(sbc_port=0, media_port=0, esl_port=0, couch_port=0, route_timeout=0.3))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def target_file(model: RunningModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_target_file(model, tmp_path_factory.mktemp("targets"))


def diagnose(target_file: Path, number: str, ip: str, *extra: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(
        app, ["diagnose", number, "--carrier-ip", ip, "--target", str(target_file), "--json", *extra]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize(
    ("number", "ip", "extra", "cause", "step_data"),
    [
        ("+14155550100", "127.0.0.66", (), "acl", {"trusted": False}),
        ("+14155550100", "127.0.0.20", ("--carrier-port", "5071"), "acl", {"trusted": False}),
        ("12345", "127.0.0.10", (), "number_format", {"reconcilable": False}),
        ("+14155550100", "127.0.0.10", ("--ruri-user", "trunk42"), "number_format", {"read": "trunk42"}),
        ("+14155550199", "127.0.0.10", (), "number_mapping", {"found": False}),
        ("+14155550106", "127.0.0.10", (), "number_mapping", {"state": "available", "routes": False}),
        ("+14155550110", "127.0.0.10", (), "number_mapping", {"state": "aging"}),
        ("+14155550104", "127.0.0.10", (), "number_mapping", {"state": "in_service", "callflow_id": None}),
        ("+14155550109", "127.0.0.10", (), "number_mapping", {"found_in_db": "numbers/+1416"}),
        ("+14155550100", "127.0.0.10", (), "none", {}),
        ("4155550100", "127.0.1.25", (), "none", {}),
        ("+14155550100", "127.0.0.20", ("--carrier-port", "5070"), "none", {}),
    ],
)
def test_diagnose_names_the_cause(
    target_file: Path, number: str, ip: str, extra: tuple[str, ...], cause: str, step_data: dict[str, Any]
) -> None:
    code, out = diagnose(target_file, number, ip, *extra)
    assert out["cause"] == cause, out
    assert code == (EXIT_NONE if cause == "none" else EXIT_FOUND)
    assert set(out["steps"]) == {"acl", "number_format", "number_mapping"}
    if cause != "none":
        step = out["steps"][cause]
        assert step["status"] == "problem" and step["fix"] and out["fix"] == step["fix"]
        for key, value in step_data.items():
            assert step["data"][key] == value, step
    else:
        assert all(s["status"] == "ok" for s in out["steps"].values()), out


def test_sbc_address_as_carrier_is_an_acl_problem(target_file: Path, model: RunningModel) -> None:
    code, out = diagnose(target_file, "+14155550100", model.sbc[0])
    assert (code, out["cause"]) == (EXIT_FOUND, "acl")
    assert out["steps"]["acl"]["data"]["authoritative"] is True
    assert "authoritative" in out["verdict"]


def test_acl_edited_but_not_reloaded(target_file: Path, model: RunningModel) -> None:
    # a trusted entry for the unlisted address goes into the document, without reloadacl
    with CouchClient(model.couch_url) as couch:
        before = couch.get_doc("system_config", "ecallmgr")
        assert before is not None
        edited = json.loads(json.dumps(before))
        edited[model.node]["acls"]["new_carrier"] = {
            "type": "allow",
            "network-list-name": "trusted",
            "cidr": "127.0.0.66/32",
        }
        couch.put_doc("system_config", edited)
        try:
            code, out = diagnose(target_file, "+14155550100", "127.0.0.66")
            assert (code, out["cause"]) == (EXIT_FOUND, "acl")
            acl = out["steps"]["acl"]
            assert acl["data"]["trusted"] is True and acl["data"]["live_trusted"] is False
            assert "reloadacl" in acl["fix"] and "not reloaded" in acl["summary"]
        finally:
            current = couch.get_doc("system_config", "ecallmgr")
            assert current is not None
            before["_rev"] = current["_rev"]
            couch.put_doc("system_config", before)


def test_healthy_pair_with_a_test_invite(target_file: Path) -> None:
    code, out = diagnose(target_file, "+14155550100", "127.0.0.10", "--invite")
    assert (code, out["cause"]) == (EXIT_NONE, "none"), out
    invite = out["steps"]["invite"]
    assert invite["status"] == "ok" and invite["data"]["got"].startswith("200")


def test_malformed_from_a_capture(target_file: Path, tmp_path: Path, model: RunningModel) -> None:
    sbc_ip, sbc_port = model.sbc
    capture = (
        f"INVITE sip:+14155550100@{sbc_ip}:{sbc_port} SIP/2.0\r\n"
        "From: <sip:carrier@127.0.0.10>;tag=1\r\nTo: <sip:+14155550100@127.0.0.1>\r\n"
        "Call-ID: diag-missing-via@127.0.0.10\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    path = tmp_path / "invite.sip"
    path.write_bytes(capture)
    code, out = diagnose(target_file, "+14155550100", "127.0.0.10", "--invite-file", str(path))
    assert (code, out["cause"]) == (EXIT_FOUND, "malformed"), out
    assert any("no via found" in line for line in out["steps"]["invite"]["data"]["log_lines"])


def test_human_output_shows_evidence_and_fix(target_file: Path) -> None:
    result = runner.invoke(
        app, ["diagnose", "+14155550104", "--carrier-ip", "127.0.0.10", "--target", str(target_file)]
    )
    assert result.exit_code == EXIT_FOUND
    assert "cause: number_mapping" in result.stdout
    assert "callflows" in result.stdout and "no callflow" in result.stdout


def test_unreachable_stack_is_could_not_check(tmp_path: Path) -> None:
    path = tmp_path / "dead.toml"
    # port 9 (discard) on loopback: nothing listens there
    path.write_text('[[sbc]]\nhost = "127.0.0.1"\n[couch]\nurl = "http://127.0.0.1:9"\n', encoding="utf-8")
    result = runner.invoke(
        app, ["diagnose", "+14155550100", "--carrier-ip", "127.0.0.10", "--target", str(path)]
    )
    assert result.exit_code == EXIT_UNCHECKED
    assert "no CouchDB answers" in result.stderr


def test_without_target_says_when_no_model_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    # The default addresses may be taken by a model someone runs on this machine: point them at a
    # closed port to see the message (the real defaults are checked in test_targets unit tests).
    import dataclasses

    import harness.targets.address as address

    monkeypatch.setattr(address, "DEFAULTS", dataclasses.replace(address.DEFAULTS, couch_port=9))
    result = runner.invoke(app, ["diagnose", "+14155550100", "--carrier-ip", "127.0.0.10"])
    assert result.exit_code == EXIT_UNCHECKED
    assert "kazoo-harness model" in result.stderr

"""Target files against a running embedded model: `target check`, scenarios through a file target with
its safety settings, and a search of every output, report, log and journal for the secrets used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from targets_helpers import model_target_file
from typer.testing import CliRunner

from harness.cli import app
from harness.kazoo.profile import load_profile
from harness.model.stack import ModelConfig, RunningModel, start_model
from harness.net.gate import SendRefused
from harness.scenario.case import load_cases
from harness.scenario.runner import run_case_sync
from harness.targets.file import load_target_file

REPO = Path(__file__).resolve().parents[2]
ESL_SECRET = "esl-Pw-7f3a91c2"
COUCH_USER_SECRET = "couch-user-b81d"
COUCH_PASSWORD_SECRET = "couch-Pw-50e6aa"
SECRETS = (ESL_SECRET, COUCH_USER_SECRET, COUCH_PASSWORD_SECRET)
SECRET_ENV = {"T_ESL_PW": ESL_SECRET, "T_COUCH_USER": COUCH_USER_SECRET, "T_COUCH_PW": COUCH_PASSWORD_SECRET}
RUN_DEADLINE = 120.0


@pytest.fixture(scope="module")
def model() -> Iterator[RunningModel]:
    config = ModelConfig(
        sbc_port=0, media_port=0, esl_port=0, couch_port=0, route_timeout=0.3, esl_password=ESL_SECRET
    )
    running = start_model(config)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)


def secret_file(model: RunningModel, directory: Path, safety: str | None = None) -> Path:
    kwargs = {"safety": safety} if safety is not None else {}
    return model_target_file(
        model, directory, esl_password_env="T_ESL_PW", couch_env=("T_COUCH_USER", "T_COUCH_PW"), **kwargs
    )


def test_target_check_probes_every_endpoint(model: RunningModel, tmp_path: Path, secret_env: None) -> None:
    result = CliRunner().invoke(app, ["target", "check", str(secret_file(model, tmp_path))])
    assert result.exit_code == 0, result.output
    for probe in ("SBC OPTIONS", "event socket auth", "CouchDB"):
        assert probe in result.stdout
    assert "FAIL" not in result.stdout and "200 Rawr!!" in result.stdout
    assert not any(secret in result.output for secret in SECRETS)


def test_target_check_reports_what_fails(
    model: RunningModel, tmp_path: Path, secret_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_ESL_PW", "wrong-password")
    path = secret_file(model, tmp_path)
    text = path.read_text(encoding="utf-8").replace(f"port = {model.sbc[1]}", "port = 9", 1)
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["target", "check", str(path)])
    assert result.exit_code == 1, result.output
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 3}
    assert "FAIL" in rows["SBC OPTIONS"] and "FAIL" in rows["event socket auth"]
    assert "ok" in rows["CouchDB"]
    assert "wrong-password" not in result.output


def test_invalid_target_file_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[sbc]]\nhost = "sbc.example.com"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["target", "check", str(path)])
    assert result.exit_code == 2 and "sbc[0].host" in result.stderr


def test_runner_refuses_a_destination_the_file_does_not_name(model: RunningModel, tmp_path: Path) -> None:
    target = load_target_file(model_target_file(model, tmp_path)).to_target(load_profile("kazoo-4.3"))
    target = target.with_changes(sbc=("203.0.113.9", 5060))  # TEST-NET-3: never sent to, the gate refuses
    case = load_cases(REPO / "scenarios/acl/listed_host.yaml")[0]
    with pytest.raises(SendRefused, match=r"203\.0\.113\.9"):
        run_case_sync(case, target)


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=RUN_DEADLINE,
    )


@pytest.mark.slow
def test_malformed_refused_and_secrets_never_written(model: RunningModel, tmp_path: Path) -> None:
    env = {**os.environ, **SECRET_ENV, "KAZOO_HARNESS_JOURNAL_DIR": str(tmp_path / "journals")}
    env["PYTHONPATH"] = str(REPO)
    locked = secret_file(model, tmp_path, safety="allow_malformed = false\nallow_provisioning = true\n")
    scenarios = [
        str(REPO / "scenarios/malformed/missing_via.yaml"),
        str(REPO / "scenarios/acl/listed_host.yaml"),
    ]
    outputs: list[str] = []

    report = tmp_path / "locked.json"
    junit = tmp_path / "locked.xml"
    done = run_cli(
        ["run", *scenarios, "--target", str(locked), "--json", str(report), "--junit", str(junit)], env, REPO
    )
    outputs += [done.stdout, done.stderr]
    assert done.returncode == 0, done.stdout + done.stderr
    records = {r["cause"]: r for r in json.loads(report.read_text())}
    assert records["malformed"]["verdict"] == "skipped"
    assert "allow_malformed" in records["malformed"]["skip_reason"]
    assert records["acl"]["verdict"] == "passed"

    (tmp_path / "open").mkdir()
    open_file = secret_file(model, tmp_path / "open", safety="allow_malformed = true\n")
    report2 = tmp_path / "open.json"
    done = run_cli(["run", scenarios[0], "--target", str(open_file), "--json", str(report2)], env, REPO)
    outputs += [done.stdout, done.stderr]
    assert done.returncode == 0, done.stdout + done.stderr
    assert [r["verdict"] for r in json.loads(report2.read_text())] == ["passed"]

    for args in (
        ["diagnose", "+14155550100", "--carrier-ip", "127.0.0.66", "--target", str(locked), "--json"],
        ["diagnose", "+14155550100", "--carrier-ip", "127.0.0.10", "--target", str(locked), "--invite"],
        ["target", "check", str(locked)],
        ["restore"],
    ):
        done = run_cli(args, env, REPO)
        outputs += [done.stdout, done.stderr]
        assert done.returncode in (0, 1), done.stdout + done.stderr

    # everything written: command outputs, reports, model logs, journals, pytest's run logs
    written = [p for p in [*tmp_path.rglob("*"), *model.log_dir.rglob("*")] if p.is_file()]
    texts = outputs + [p.read_text(encoding="utf-8", errors="replace") for p in written]
    assert len(written) >= 5
    for secret in SECRETS:
        leaks = [t[:200] for t in texts if secret in t]
        assert not leaks, f"secret {secret!r} leaked: {leaks}"


@pytest.mark.slow
def test_each_sbc_runs_every_node_and_fails_with_one_bad_node(model: RunningModel, tmp_path: Path) -> None:
    sbc_table = f'[[sbc]]\nname = "sbc1"\nhost = "{model.sbc[0]}"\nport = {model.sbc[1]}\n'
    second = sbc_table.replace('"sbc1"', '"sbc2"')
    path = model_target_file(model, tmp_path)
    path.write_text(path.read_text(encoding="utf-8").replace(sbc_table, sbc_table + second), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    scenario = str(REPO / "scenarios/acl/listed_host.yaml")
    report = tmp_path / "both.json"
    reports = ["--junit", str(tmp_path / "junit.xml"), "--pcap", str(tmp_path / "pcaps")]
    done = run_cli(
        ["run", scenario, "--target", str(path), "--each-sbc", "--json", str(report), *reports], env, REPO
    )
    assert done.returncode == 0, done.stdout + done.stderr
    records = json.loads(report.read_text())
    assert sorted(r["sbc"] for r in records) == ["sbc1", "sbc2"]
    assert all(r["verdict"] == "passed" for r in records)
    # each node keeps its own reports: none overwrites another's
    assert sorted(p.name for p in tmp_path.glob("junit*.xml")) == ["junit-sbc1.xml", "junit-sbc2.xml"]
    assert [len(list((tmp_path / "pcaps" / n).glob("*.pcap"))) for n in ("sbc1", "sbc2")] == [1, 1]

    # one node down (nothing listens on port 9): the cluster run fails, as an infrastructure error
    path.write_text(path.read_text(encoding="utf-8").replace(second, second.replace(str(model.sbc[1]), "9")))
    done = run_cli(["run", scenario, "--target", str(path), "--each-sbc", "--json", str(report)], env, REPO)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "SBC unreachable" in done.stdout
    assert {r["sbc"]: r["verdict"] for r in json.loads(report.read_text())} == {"sbc1": "passed"}


def test_open_target_reads_a_file_and_pings_its_sbc(model: RunningModel, tmp_path: Path) -> None:
    from harness.targets.kinds import open_target
    from harness.targets.target import TargetStartError

    path = model_target_file(model, tmp_path)
    with open_target(f"{path}#sbc1", load_profile("kazoo-4.3")) as target:
        assert (target.kind, target.sbc, target.sbc_nodes) == ("file", model.sbc, {"sbc1": model.sbc})
    path.write_text(path.read_text(encoding="utf-8").replace(f"port = {model.sbc[1]}", "port = 9", 1))
    with pytest.raises(TargetStartError, match="unreachable"), open_target(str(path)):
        pass

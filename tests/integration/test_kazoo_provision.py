"""Provisioning against the embedded model: changes are visible to Kazoo (live ACL, diagnose), and every
document is back byte-exact (revisions aside) after a failure, Ctrl-C, or SIGKILL plus `restore`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from targets_helpers import NEW_IP, NEW_NUMBER, model_target_file, provision_everything
from typer.testing import CliRunner

from harness.cli import app
from harness.kazoo.access import esl_api
from harness.kazoo.couch import CouchClient
from harness.kazoo.diagnose import diagnose
from harness.kazoo.journal import pending_journals
from harness.kazoo.profile import load_profile
from harness.kazoo.provision import canonical
from harness.model.stack import ModelConfig, RunningModel, start_model
from harness.net.gate import SendRefused
from harness.targets.embedded import roles_for, target_for_model
from harness.targets.file import load_target_file

CHILD_DEADLINE = 20.0


@pytest.fixture
def model() -> Iterator[RunningModel]:
    running = start_model(ModelConfig(sbc_port=0, media_port=0, esl_port=0, couch_port=0, route_timeout=0.3))
    try:
        yield running
    finally:
        running.stop()


def snapshot(client: CouchClient) -> dict[str, dict[str, str]]:
    """Every document of every database, as canonical JSON without _rev."""
    return {
        db: {row["id"]: canonical(row["doc"]) for row in client.all_docs(db, include_docs=True)}
        for db in client.all_dbs()
    }


def live_trusted(model: RunningModel, ip: str) -> str:
    return esl_api((model.esl[0], model.esl[1], "ClueCon"), f"acl {ip} trusted")[0]


def test_provision_then_fail_restores_every_document(model: RunningModel, tmp_path: Path) -> None:
    target = target_for_model(model, load_profile("kazoo-4.3"), roles_for(None), "embedded")
    with CouchClient(model.couch_url) as couch:
        before = snapshot(couch)
        assert live_trusted(model, NEW_IP) == "false"
        prov = target.provisioner(journal_dir=tmp_path)
        with pytest.raises(RuntimeError, match="on purpose"), prov:
            provision_everything(prov)
            # Kazoo sees it: the live ACL was reloaded, the number routes to a callflow
            assert live_trusted(model, NEW_IP) == "true"
            found = diagnose(couch, number=NEW_NUMBER, carrier_ip=NEW_IP, node=model.node)
            assert found.cause == "none", found.to_json()
            assert snapshot(couch) != before
            assert list(pending_journals(tmp_path))
            raise RuntimeError("scenario failed on purpose")
        assert snapshot(couch) == before
        assert live_trusted(model, NEW_IP) == "false"
        assert not list(pending_journals(tmp_path))


def test_refused_without_allow_provisioning(model: RunningModel, tmp_path: Path) -> None:
    path = model_target_file(model, tmp_path, safety="allow_provisioning = false\n")
    target = load_target_file(path).to_target(load_profile("kazoo-4.3"))
    with CouchClient(model.couch_url) as couch:
        before = snapshot(couch)
        with pytest.raises(SendRefused, match="allow_provisioning"):
            target.provisioner(journal_dir=tmp_path)
        assert snapshot(couch) == before
    assert not list(pending_journals(tmp_path))


CHILD = """
import sys
from pathlib import Path
from harness.kazoo.profile import load_profile
from harness.targets.file import load_target_file
from targets_helpers import provision_everything

target = load_target_file(sys.argv[1]).to_target(load_profile("kazoo-4.3"))
with target.provisioner(journal_dir=Path(sys.argv[2])) as prov:
    provision_everything(prov)
    print("provisioned", flush=True)
    sys.stdin.readline()  # the scenario "runs" until the test kills or interrupts this process
"""


def start_child(target_file: Path, journal_dir: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(target_file), str(journal_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)},
    )
    assert child.stdout is not None
    line = child.stdout.readline()  # blocks until the child has provisioned (or died)
    assert line.strip() == "provisioned", f"child did not provision (exit {child.poll()})"
    return child


@pytest.mark.slow
def test_sigkill_mid_scenario_then_restore(model: RunningModel, tmp_path: Path) -> None:
    target_file = model_target_file(model, tmp_path)
    journals = tmp_path / "journals"
    with CouchClient(model.couch_url) as couch:
        before = snapshot(couch)
        child = start_child(target_file, journals)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(CHILD_DEADLINE) == -signal.SIGKILL
        assert snapshot(couch) != before  # nothing was undone by the killed process
        assert live_trusted(model, NEW_IP) == "true"
        assert len(list(pending_journals(journals))) == 1
        result = CliRunner().invoke(app, ["restore", "--journal-dir", str(journals)])
        assert result.exit_code == 0, result.output
        assert "restored" in result.stdout and "reloadacl" in result.stdout
        assert snapshot(couch) == before
        assert live_trusted(model, NEW_IP) == "false"
        assert not list(pending_journals(journals))
        again = CliRunner().invoke(app, ["restore", "--journal-dir", str(journals)])
        assert (again.exit_code, again.stdout.strip()) == (0, "nothing to restore")


@pytest.mark.slow
def test_ctrl_c_mid_scenario_restores(model: RunningModel, tmp_path: Path) -> None:
    target_file = model_target_file(model, tmp_path)
    journals = tmp_path / "journals"
    with CouchClient(model.couch_url) as couch:
        before = snapshot(couch)
        child = start_child(target_file, journals)
        os.kill(child.pid, signal.SIGINT)
        assert child.wait(CHILD_DEADLINE) != 0  # KeyboardInterrupt after the restore
        assert snapshot(couch) == before
        assert live_trusted(model, NEW_IP) == "false"
        assert not list(pending_journals(journals))


def test_scenario_setup_on_a_file_target(model: RunningModel, tmp_path: Path) -> None:
    from harness.kazoo.provision import provisioned_setup

    target = load_target_file(model_target_file(model, tmp_path)).to_target(load_profile("kazoo-4.3"))
    with CouchClient(model.couch_url) as couch:
        before = snapshot(couch)
        with provisioned_setup(target.provisioner(), {"stepswitch": {"inbound_user_field": "To"}}):
            doc = couch.get_doc("system_config", "stepswitch")
            assert doc is not None and doc["default"]["inbound_user_field"] == "To"
        assert snapshot(couch) == before

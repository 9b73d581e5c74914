"""The CouchDB code path (diagnose, provisioning, restore) against an independent CouchDB-protocol
server: pouchdb-server from npm (.ci/run installs it into .cache/pouchdb), in memory, on a free
loopback port, stopped by its PID. pouchdb-server stores database names without `/`, so the client
runs with strip_db_slashes."""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.kazoo.couch import CouchClient
from harness.kazoo.diagnose import diagnose
from harness.kazoo.journal import pending_journals
from harness.kazoo.provision import Provisioner, canonical
from harness.model.demo import load_demo

REPO = Path(__file__).resolve().parents[2]
POUCH_ENV = "POUCHDB_SERVER"  # path of the pouchdb-server executable, if not in .cache/pouchdb
START_DEADLINE = 30.0
NODE = "ecallmgr@kazoo-model.local"


def pouchdb_server() -> str | None:
    candidates = [os.environ.get(POUCH_ENV), str(REPO / ".cache/pouchdb/node_modules/.bin/pouchdb-server")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    return shutil.which("pouchdb-server")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def pouch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    executable = pouchdb_server()
    if executable is None or shutil.which("node") is None:
        pytest.skip(
            "pouchdb-server not installed: npm install --prefix .cache/pouchdb pouchdb-server "
            f"(or set {POUCH_ENV})"
        )
    port = free_port()
    workdir = tmp_path_factory.mktemp("pouchdb")  # it writes config.json and log.txt into its cwd
    process = subprocess.Popen(
        [executable, "--in-memory", "--port", str(port), "--host", "127.0.0.1"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    try:
        while True:  # wait for the "has started" line, each read bounded by the deadline
            line = lines.get(timeout=START_DEADLINE)
            if "has started" in line:
                break
            if line == "":
                pytest.fail(f"pouchdb-server exited with {process.wait(5)} before it started")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()  # by PID
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
def seeded(pouch: str) -> str:
    """The demo data set loaded into pouchdb-server."""
    store = load_demo()
    with CouchClient(pouch, strip_db_slashes=True) as client:
        for db in store.all_dbs():
            client.create_db(db)
            for row in store.all_docs(db, include_docs=True):
                doc = {k: v for k, v in row["doc"].items() if k != "_rev"}
                client.put_doc(db, doc)
    return pouch


def snapshot(client: CouchClient) -> dict[str, dict[str, str]]:
    return {
        db: {row["id"]: canonical(row["doc"]) for row in client.all_docs(db, include_docs=True)}
        for db in client.all_dbs()
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("number", "ip", "cause"),
    [
        ("+14155550100", "127.0.0.10", "none"),
        ("+14155550100", "127.0.0.66", "acl"),
        ("12345", "127.0.0.10", "number_format"),
        ("+14155550199", "127.0.0.10", "number_mapping"),
        ("+14155550104", "127.0.0.10", "number_mapping"),
        ("+14155550109", "127.0.0.10", "number_mapping"),
    ],
)
def test_diagnose_reads_pouchdb(seeded: str, number: str, ip: str, cause: str) -> None:
    with CouchClient(seeded, strip_db_slashes=True) as client:
        found = diagnose(client, number=number, carrier_ip=ip, node=NODE)
    assert found.cause == cause, found.to_json()
    if number == "+14155550109":
        mapping = next(s for s in found.steps if s.name == "number_mapping")
        assert mapping.data["found_in_db"] == "numbers+1416"


@pytest.mark.slow
def test_provision_fail_restore_on_pouchdb(seeded: str, tmp_path: Path) -> None:
    with CouchClient(seeded, strip_db_slashes=True) as client:
        before = snapshot(client)
        prov = Provisioner(CouchClient(seeded, strip_db_slashes=True), node=NODE, journal_dir=tmp_path)
        with pytest.raises(RuntimeError, match="on purpose"), prov:
            prov.acl_entry("127.0.0.77/32", reload=False)
            account = prov.account()
            prov.number("+19995550100", account_id=account)
            prov.edit("numbers/+1415", "+14155550100", lambda d: d.update(pvt_state="available"))
            assert snapshot(client) != before
            found = diagnose(client, number="+19995550100", carrier_ip="127.0.0.77", node=NODE)
            assert found.cause == "none", found.to_json()
            raise RuntimeError("scenario failed on purpose")
        assert snapshot(client) == before


@pytest.mark.slow
def test_abandoned_run_restored_by_command(seeded: str, tmp_path: Path) -> None:
    with CouchClient(seeded, strip_db_slashes=True) as client:
        before = snapshot(client)
        prov = Provisioner(CouchClient(seeded, strip_db_slashes=True), node=NODE, journal_dir=tmp_path)
        prov.acl_entry("127.0.0.78/32", reload=False)
        prov.number("+14155550199", account_id="4a1f7c2e9b3d4e8fa6c50b1d2e3f4a5b")
        prov.delete("numbers/+1415", "+14155550104")
        assert snapshot(client) != before
        # the process "died" here: only the journal knows what to undo
        result = CliRunner().invoke(app, ["restore", "--journal-dir", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert snapshot(client) == before
        assert not list(pending_journals(tmp_path))

"""The six defects of issue 14, each seen as a user meets it (CLI, pytest, a stack in front of a raw
socket). Each test failed on the main before the redesign; the fix is named in its docstring."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TYPO_ABSENT = """\
name: typo in an absent source
cause: acl
description: The absent line names a source the target does not have.
carrier: {role: unlisted}
send: {number: routed}
expect:
  outcome: acl_rejected
  logs:
    absent:
      - {source: freeswitchh, pattern: 'SIP auth challenge'}
"""
TYPO_PRESENT = TYPO_ABSENT.replace("absent:", "present:")
ANYWHERE = """\
name: a scenario kept outside the catalog
cause: call_flow
description: Any file or folder can be run.
carrier: {role: listed}
send: {number: routed}
expect: {outcome: routed}
"""
# Kazoo falls back to the To user when the Request-URI user is empty or "nouser"
# (kapps_util:get_destination): the {number} the scenario asserts on is the one the stack routes on.
NOUSER = """\
name: an empty request user falls back to the To user
cause: number_mapping
description: The R-URI user is nouser, so stepswitch looks the To user up.
carrier: {role: listed}
send: {ruri_user: nouser, to_user: absent}
expect: {outcome: unknown_number}
"""
# kapps_config compares the field name as written: "to" is not "To", so the Request-URI user is read.
LOWERCASE_TO = """\
name: inbound_user_field is case sensitive
cause: number_format
description: The field name "to" is not Kazoo's "To", so the Request-URI user is looked up.
carrier: {role: listed}
send: {ruri_user: absent, to_user: routed}
setup:
  system_config: {stepswitch: {inbound_user_field: to}}
expect:
  outcome: unknown_number
  logs:
    present:
      - {source: kazoo, pattern: 'unable to determine account for fetch-id .*\\+14155550199'}
"""


def _cli(*args: str, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


# -- 1. a log source that names nothing --------------------------------------------------------------


@pytest.mark.parametrize("text", [TYPO_ABSENT, TYPO_PRESENT], ids=["absent", "present"])
def test_unknown_log_source_is_a_schema_error(tmp_path: Path, text: str) -> None:
    """Before: the absent line with source 'freeswitchh' was watched in no source and passed every time."""
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "typo.yaml").write_text(text, encoding="utf-8")
    result = _cli("run", "scenarios/typo.yaml", cwd=tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "scenarios/typo.yaml:10:" in out and "freeswitchh" in out, out
    assert "freeswitch, kamailio, kazoo" in out, out  # the sources the target has


def test_unknown_log_source_fails_the_python_fixture(pytester: pytest.Pytester) -> None:
    """A scenario given as a dict has no file:line, so the run fails and names the source."""
    pytester.makepyfile(
        """
        def test_typo(run_scenario):
            run_scenario({"name": "typo", "cause": "acl", "carrier": {"role": "unlisted"},
                          "send": {"number": "routed"},
                          "expect": {"outcome": "acl_rejected",
                                     "logs": {"absent": [{"source": "freeswitchh", "pattern": "x"}]}}})
        """
    )
    result = pytester.runpytest("-p", "no:xdist")
    result.assert_outcomes(failed=1)
    assert "freeswitchh" in result.stdout.str()


# -- 2. the send gate ----------------------------------------------------------------------------------


class _Listener:
    """A UDP socket standing in for a stack's SBC: it answers OPTIONS (the reachability probe) with 200
    and records every other request that arrives, answering nothing."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            if data.startswith(b"OPTIONS "):
                head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
                keep = [h for h in head[1:] if h.split(b":", 1)[0].lower() in
                        (b"via", b"from", b"to", b"call-id", b"cseq")]  # fmt: skip
                self.sock.sendto(
                    b"\r\n".join([b"SIP/2.0 200 OK", *keep, b"Content-Length: 0", b"", b""]), peer
                )
            else:
                self.requests.append(data)

    def invites(self) -> list[bytes]:
        return [r for r in self.requests if r.startswith(b"INVITE ")]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[_Listener]:
    sink = _Listener()
    yield sink
    sink.close()


def _strict_target(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "strict.toml"
    path.write_text(
        f'name = "strict"\nprofile = "kazoo-4.3"\n\n[[sbc]]\nhost = "127.0.0.1"\nport = {port}\n\n'
        '[carriers]\nlisted = "127.0.0.10"\n\n[numbers]\nrouted = "+14155550100"\n\n'
        "[safety]\nallow_malformed = false\nrate_limit = 0\n",
        encoding="utf-8",
    )
    return path


def test_send_refuses_a_mutated_invite_where_malformed_is_not_allowed(
    tmp_path: Path, listener: _Listener
) -> None:
    """Before: the CSeq-less INVITE reached the target (and was retransmitted)."""
    target = _strict_target(tmp_path, listener.port)
    result = _cli(
        "send", "--target", str(target), "--source-ip", "listed", "--to", "+14155550100",
        "--mutate", "drop-header=CSeq", "--timeout", "0.5", "--json", cwd=tmp_path,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "allow_malformed" in out and "strict" in out, out
    assert listener.invites() == []


def test_send_lets_a_well_formed_invite_through_the_same_gate(tmp_path: Path, listener: _Listener) -> None:
    """The gate refuses what is malformed, not everything: the same command without the mutator sends."""
    target = _strict_target(tmp_path, listener.port)
    result = _cli(
        "send", "--target", str(target), "--source-ip", "listed", "--to", "+14155550100",
        "--timeout", "0.3", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    got = listener.invites()
    assert got and got[0].startswith(b"INVITE sip:+14155550100@")


def test_run_scenario_fixture_refuses_mutated_bytes_whatever_the_cause_label(
    pytester: pytest.Pytester, tmp_path: Path, listener: _Listener
) -> None:
    """Before: the fixture decided from the cause label; a 'call_flow' scenario with a mutator was sent."""
    target = _strict_target(tmp_path, listener.port)
    pytester.makepyfile(
        """
        def test_mutated(run_scenario):
            run_scenario({"name": "mutated", "cause": "call_flow", "carrier": {"role": "listed"},
                          "send": {"number": "routed", "mutators": ["drop-header=CSeq"]},
                          "expect": {"silence": True, "timeout": 0.3}})
        """
    )
    result = pytester.runpytest("-p", "no:xdist", "--kazoo-target", str(target))
    out = result.stdout.str()
    assert "allow_malformed" in out, out
    assert result.ret != 0
    assert listener.invites() == []


# -- 3. diagnose never crashes ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`kazoo-harness model` on free ports, described by a target file."""
    directory = tmp_path_factory.mktemp("model")
    ready = directory / "ready.json"
    ports = []
    for _ in range(4):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    sbc, media, esl, couch = ports
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "model", "--sbc", f"127.0.0.1:{sbc}",
         "--media", f"127.0.0.1:{media}", "--esl", f"127.0.0.1:{esl}", "--couch", f"127.0.0.1:{couch}",
         "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the model did not start: {proc.stderr.read() if proc.stderr else ''!r}")
        time.sleep(0.05)  # polling a file another process writes: no event to wait on
    path = directory / "model.toml"
    path.write_text(
        f'name = "model"\nprofile = "kazoo-4.3"\n\n[[sbc]]\nhost = "127.0.0.1"\nport = {sbc}\n\n'
        f'[carriers]\nlisted = "127.0.0.10"\n\n[couch]\nurl = "http://127.0.0.1:{couch}"\n\n'
        f'[[esl]]\nname = "fs"\nhost = "127.0.0.1"\nport = {esl}\n\n'
        '[kazoo]\nnode = "ecallmgr@kazoo-model.local"\n',
        encoding="utf-8",
    )
    yield path
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.mark.parametrize("number", ["911", "12", "+1", ""])
def test_diagnose_a_number_too_short_for_a_numbers_database(model_target: Path, number: str) -> None:
    """Before: an AssertionError traceback in the number-mapping step."""
    result = _cli("diagnose", number, "--carrier-ip", "127.0.0.10", "--target", str(model_target), "--json",
                  cwd=REPO)  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stdout + result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["cause"] == "number_format"
    assert verdict["steps"]["number_mapping"]["status"] == "skipped"


# -- 4. a scenario file anywhere ------------------------------------------------------------------------


def test_run_takes_a_file_outside_a_scenarios_folder(tmp_path: Path) -> None:
    """Before: `not found: ../elsewhere/case.yaml` (only files under a folder named scenarios were
    collected)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "case.yaml").write_text(ANYWHERE, encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    result = _cli("run", "../elsewhere/case.yaml", cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 0 failed" in result.stdout


def test_run_takes_a_folder_outside_a_scenarios_folder(tmp_path: Path) -> None:
    (tmp_path / "regressions").mkdir()
    (tmp_path / "regressions" / "case.yaml").write_text(ANYWHERE, encoding="utf-8")
    result = _cli("run", "regressions", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 0 failed" in result.stdout


# -- 5. replay and the built-in targets -----------------------------------------------------------------


def _kamailio_processes_under(directory: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"kamailio" in cmdline and str(directory).encode() in cmdline:
            found.append(int(proc.name))
    return found


FOREIGN_INVITE = (
    "INVITE sip:+14155550100@127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKdefect5\r\n"
    "Max-Forwards: 70\r\nFrom: <sip:+12125550100@203.0.113.5>;tag=d5\r\n"
    "To: <sip:+14155550100@127.0.0.1>\r\n"
    "Call-ID: defect5@203.0.113.5\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)


@pytest.mark.skipif(shutil.which("kamailio") is None, reason="needs Kamailio (apt-get install kamailio)")
@pytest.mark.parametrize("refresh", [True, False], ids=["replayed", "refused"])
def test_replay_on_a_builtin_lab_target_stops_kamailio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refresh: bool
) -> None:
    """Before: only the model was stopped; the lab's Kamailio ran on for as long as anything still held
    the target — after a refused replay, the traceback the CLI runner keeps (the Python API, a test
    suite). Now the target is a context manager: closed when replay returns, whatever happened."""
    from typer.testing import CliRunner

    from harness.cli import app

    target = tmp_path / "lab.toml"
    target.write_text('builtin = "lab"\n', encoding="utf-8")
    invite = tmp_path / "invite.txt"
    invite.write_text(FOREIGN_INVITE, encoding="utf-8")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))  # the lab's run directory goes here
    args = ["replay", str(invite), "--target", str(target), "--timeout", "2"]
    result = CliRunner().invoke(app, [*args, "--refresh"] if refresh else args)
    if refresh:
        assert result.exit_code == 0, result.output
        assert "cause:" in result.output
    else:  # foreign addresses without --refresh: refused inside the open target
        assert result.exit_code == 2, result.output
    assert _kamailio_processes_under(tmp) == []  # `result` (and its traceback) is still alive here


@pytest.mark.parametrize(
    "command",
    [
        ["send", "--to", "+14155550100", "--timeout", "1", "--target"],
        ["diagnose", "+14155550100", "--carrier-ip", "127.0.0.10", "--target"],
        ["target", "check"],
    ],
    ids=["send", "diagnose", "target-check"],
)
def test_builtin_docker_target_is_accepted_by_every_command(tmp_path: Path, command: list[str]) -> None:
    """Before: `builtin = "docker"` worked for run only; send, diagnose and target check refused the file.
    With no engine reachable every command now fails the way run does: the engine is named, exit 3."""
    target = tmp_path / "docker.toml"
    target.write_text('builtin = "docker"\n', encoding="utf-8")
    result = _cli(*command, str(target), cwd=REPO, env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out
    assert result.returncode == 3, out
    assert "Docker engine" in out, out


# -- 6. the dialed number the scenario asserts on -------------------------------------------------------


@pytest.mark.parametrize("text", [NOUSER, LOWERCASE_TO], ids=["nouser-falls-back-to-To", "field-case"])
def test_the_number_a_scenario_asserts_on_is_the_one_the_stack_routes_on(tmp_path: Path, text: str) -> None:
    """Before: the runner re-implemented inbound_user_field (lower-case compare, no fallback), so {number}
    in the profile's unknown_number line was not the number stepswitch logged."""
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "case.yaml").write_text(text, encoding="utf-8")
    result = _cli("run", "scenarios/case.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 0 failed" in result.stdout

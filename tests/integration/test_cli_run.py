"""`kazoo-harness run` as a user runs it: exit codes, the JSON report, JUnit XML and pcaps."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROUTED = """\
name: listed carrier routes
cause: call_flow
description: A trusted carrier calls a routed number.
carrier: {role: listed}
send: {number: routed}
expect: {outcome: routed}
"""
UNLISTED = """\
name: unlisted carrier is challenged
cause: acl
description: An unlisted carrier gets the challenge and the FreeSWITCH line.
carrier: {role: unlisted}
send: {number: routed}
expect: {outcome: acl_rejected}
"""
DROPPED = """\
name: missing CSeq is dropped
cause: malformed
description: Silence, ended by the drop line.
carrier: {role: listed}
send: {number: routed, mutators: [drop-header=CSeq]}
expect: {outcome: dropped_missing_headers}
"""


def _run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _catalog(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return folder


def test_all_pass_exit_0_with_reports(tmp_path: Path) -> None:
    _catalog(tmp_path, routed=ROUTED, unlisted=UNLISTED, dropped=DROPPED)
    proc = _run(
        tmp_path, "scenarios", "--json", "out.json", "--junit", "junit.xml", "--pcap", "pcaps", "--seed", "5"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().splitlines()[-1] == "3 passed, 0 failed"
    assert "Scenario results by seed cause" in proc.stdout
    records = {r["name"]: r for r in json.loads((tmp_path / "out.json").read_text())}
    assert set(records) == {
        "listed carrier routes",
        "unlisted carrier is challenged",
        "missing CSeq is dropped",
    }
    unlisted = records["unlisted carrier is challenged"]
    assert unlisted["verdict"] == "passed" and unlisted["outcome"] == "response"
    assert unlisted["codes"] == {"final": 407, "provisional": [100]}
    assert (
        unlisted["logs"]["missing"] == [] and "SIP auth challenge" in unlisted["logs"]["matched"][0]["line"]
    )
    assert (
        unlisted["reproduce"].startswith("pytest scenarios/unlisted.yaml::")
        and "--harness-seed 5" in unlisted["reproduce"]
    )
    assert unlisted["timings"]["duration_ms"] > 0 and unlisted["call_id"]
    dropped = records["missing CSeq is dropped"]
    assert dropped["outcome"] == "silence" and dropped["timings"]["ended_early"] is True
    cases = ET.parse(tmp_path / "junit.xml").getroot().findall(".//testcase")
    assert len(cases) == 3
    assert len(list((tmp_path / "pcaps").glob("*.pcap"))) == 3


def test_failures_exit_1(tmp_path: Path) -> None:
    _catalog(tmp_path, wrong=UNLISTED.replace("acl_rejected", "routed"), routed=ROUTED)
    proc = _run(tmp_path, "scenarios")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().splitlines()[-1] == "1 passed, 1 failed"
    assert "reproduce: pytest scenarios/wrong.yaml::" in proc.stdout


def test_a_narrow_terminal_gets_a_table_that_fits_with_whole_words(tmp_path: Path) -> None:
    wrong = UNLISTED.replace("acl_rejected", "routed").replace("is challenged", "is expected to be routed")
    _catalog(tmp_path, unlisted=UNLISTED, wrong=wrong, routed=ROUTED)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = _run(tmp_path, "scenarios", "-q", env={**env, "COLUMNS": "80"})  # piped: not a tty
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(line for line in lines if len(line) > 80)
    names = ["unlisted carrier is challenged", "unlisted carrier is expected to be routed",
             "listed carrier routes"]  # fmt: skip
    for name in names:  # each scenario on a line of its own, its name whole, with its verdict
        (row,) = [line for line in lines if name in line]
        assert row.split()[0] == ("FAIL" if "expected to be" in name else "pass")
    assert "expected 200 · got 407 Proxy Authentication Required" in proc.stdout
    assert lines[-1] == "2 passed, 1 failed"
    # a log file (not a tty, no COLUMNS) keeps the wide table with a column per field
    wide = _run(tmp_path, "scenarios", "-q", env=env)
    assert any(line.startswith("┃ cause") for line in wide.stdout.splitlines()), wide.stdout


SLOW = """\
name: slow silence
cause: malformed
description: Dropped, and with no drop line to wait for the harness waits out the whole window.
carrier: {role: listed}
send: {number: routed, mutators: [drop-header=CSeq]}
expect: {silence: true, timeout: 1.5}
"""


def test_a_log_shows_the_target_starting_before_the_table(tmp_path: Path) -> None:
    _catalog(tmp_path, routed=ROUTED)
    proc = _run(tmp_path, "scenarios", "--target", "lab" if shutil.which("kamailio") else "embedded")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\[ *[0-9.]+ s\] starting target ", line))
    ready = next(i for i, line in enumerate(lines) if re.match(r"\[ *[0-9.]+ s\] target \w+ ready in ", line))
    table = next(i for i, line in enumerate(lines) if "Scenario results by seed cause" in line)
    assert start < ready < table
    if shutil.which("kamailio"):
        assert any("starting the lab Kamailio" in line for line in lines[start:ready])


def test_a_terminal_sees_which_scenario_is_running(tmp_path: Path) -> None:
    _catalog(tmp_path, slow=SLOW, routed=ROUTED)
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "TERM")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "scenarios", "-q"],
        cwd=tmp_path, stdin=secondary, stdout=secondary, stderr=secondary, env={**env, "TERM": "xterm"},
    )  # fmt: skip
    os.close(secondary)
    screen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], deadline - time.monotonic())
        try:
            chunk = os.read(primary, 65536) if ready else b""
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    os.close(primary)
    assert proc.wait(timeout=30) == 0, screen.decode(errors="replace")[-2000:]
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode(errors="replace"))
    # the live bar's label while the 1.5 s scenario runs (the table at the end says its name, not this)
    assert "running slow_silence" in text, text[-2000:]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-folder"], "no such scenario path"),
        (["scenarios", "--profile", "kazoo-9"], "unknown profile"),
        (["scenarios", "--bogus-flag"], "No such option"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    _catalog(tmp_path, routed=ROUTED)
    proc = _run(tmp_path, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stdout + proc.stderr


def test_schema_error_exit_2(tmp_path: Path) -> None:
    _catalog(tmp_path, bad=ROUTED.replace("send:", "sned:"))
    proc = _run(tmp_path, "scenarios")
    assert proc.returncode == 2
    assert "bad.yaml:5: sned: unknown field" in proc.stdout


def test_unreachable_target_exit_3(tmp_path: Path) -> None:
    _catalog(tmp_path, routed=ROUTED)
    target = tmp_path / "down.toml"
    target.write_text(
        'name = "down"\nprofile = "kazoo-4.3"\n\n[[sbc]]\nhost = "127.0.0.1"\nport = 9\n'
        'transports = ["udp"]\n\n'
        '[carriers]\nlisted = "127.0.0.10"\n\n[numbers]\nrouted = "+14155550100"\n',
        encoding="utf-8",
    )
    proc = _run(tmp_path, "scenarios", "--target", str(target))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "error" in proc.stdout.lower()


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (CI installs it)")
def test_pcap_is_dissected_as_sip_by_tshark(tmp_path: Path) -> None:
    _catalog(tmp_path, routed=ROUTED)
    proc = _run(tmp_path, "scenarios", "--pcap", "pcaps", "--json", "out.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (pcap,) = (tmp_path / "pcaps").glob("*.pcap")
    record = json.loads((tmp_path / "out.json").read_text())[0]
    messages = record["exchange"]["sent"] + record["exchange"]["received"]
    fields = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "sip", "-T", "fields", "-e", "ip.src", "-e", "sip.CSeq.method"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split("\n")  # fmt: skip
    rows = [line.split("\t") for line in fields if line.strip()]
    assert len(rows) == len(messages)  # INVITE, 100, 180, 200, ACK, BYE, 200
    sources = {row[0] for row in rows}
    assert sources == {"127.0.0.10", "127.0.0.1"}
    assert {row[1] for row in rows} >= {"INVITE", "ACK", "BYE"}


def test_html_report_puts_the_failure_first_with_ladders_and_log_lines(tmp_path: Path) -> None:
    _catalog(tmp_path, unlisted=UNLISTED, wrong=UNLISTED.replace("acl_rejected", "routed"), routed=ROUTED)
    proc = _run(tmp_path, "scenarios", "--html", "out/report.html")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    html = (tmp_path / "out/report.html").read_text(encoding="utf-8")
    sections = re.findall(r'<section class="scenario verdict-(\w+)"', html)
    assert sections == ["failed", "passed", "passed"]  # the failure is the first scenario on the page
    first = html[html.index('<section class="scenario') :]
    first = first[: first.index("</section>")]
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in first and "INVITE sip:+14155550100@" in first
    assert "SIP auth challenge (INVITE)" in first  # the FreeSWITCH line tied to the call
    # self-contained: nothing is loaded from anywhere (the SVG namespace is a name, not a request)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script src" not in html and "<link" not in html

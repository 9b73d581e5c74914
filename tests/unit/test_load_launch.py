"""Locust's command line for each mode: what the forked workers connect to, what a worker needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.load.launch import LocustOptions, locust_command


def _flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_processes_mode_points_the_forked_workers_at_the_masters_own_port() -> None:
    options = LocustOptions(mode="processes", workers=2, master_port=45001)
    command = locust_command(options, Path("p.json"), Path("s.json"), 12.2, "sip:127.0.0.1:5060")
    assert _flag(command, "--processes") == "2"
    assert _flag(command, "--master-bind-port") == _flag(command, "--master-port") == "45001"
    assert _flag(command, "--master-host") == _flag(command, "--master-bind-host") == "127.0.0.1"
    assert (_flag(command, "-u"), _flag(command, "-r")) == ("2", "2")  # one sender per worker
    assert _flag(command, "-t") == "12s" and "--headless" in command
    assert _flag(command, "--kh-plan") == "p.json" and _flag(command, "--kh-summary") == "s.json"


def test_a_worker_needs_only_its_master() -> None:
    command = locust_command(
        LocustOptions(mode="worker", master_host="127.0.0.2", master_port=6000), None, None, 0
    )
    assert command[-5:] == ["--worker", "--master-host", "127.0.0.2", "--master-port", "6000"]
    assert "--kh-plan" not in command and "-u" not in command


def test_master_mode_waits_for_its_workers_and_local_mode_has_one_sender() -> None:
    master = locust_command(LocustOptions(mode="master", workers=3), Path("p"), Path("s"), 5)
    assert _flag(master, "--expect-workers") == "3" and _flag(master, "-u") == "3"
    local = locust_command(LocustOptions(mode="local", workers=0), Path("p"), Path("s"), 5)
    assert "--processes" not in local and "--master" not in local and _flag(local, "-u") == "1"


def test_web_mode_and_report_files() -> None:
    options = LocustOptions(mode="local", web=True, web_port=18089, json_file=Path("out/stats.json"))
    command = locust_command(options, Path("p"), Path("s"), 5)
    assert "--headless" not in command and "--autostart" in command
    assert _flag(command, "--web-host") == "127.0.0.1" and _flag(command, "--web-port") == "18089"
    assert _flag(command, "--json-file") == "out/stats"  # Locust adds .json itself


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        LocustOptions(mode="swarm")

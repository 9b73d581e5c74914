"""A target file's HEP capture: `[[logs]] kind = "hep"` with `listen` addresses, validated with the key
named; the target gets a HepCapture whose receiver starts on first use and stops with the target."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from harness.kazoo.profiles import load_profile
from harness.logs.hep_source import HepCapture
from harness.scenario.targetfile import TargetFileError, parse_target_file

BASE: dict[str, object] = {"sbc": {"host": "127.0.0.1", "port": 5060}}


def _file(logs: list[dict[str, object]]) -> dict[str, object]:
    return {**BASE, "logs": logs}


def test_a_hep_source_becomes_a_capture_that_closes_with_the_target() -> None:
    spec = parse_target_file(
        Path("t.toml"),
        _file(
            [
                {
                    "name": "sbc-hep",
                    "kind": "hep",
                    "listen": ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"],
                    "complete": True,
                }
            ]
        ),
    )
    [log] = spec.logs
    assert log.listen == ("udp:127.0.0.1:0", "tcp:127.0.0.1:0") and log.complete
    target = spec.to_target(load_profile("kazoo-4.3"))
    capture = target.log_sources["sbc-hep"]
    assert isinstance(capture, HepCapture) and capture.complete
    capture.receiver.start()  # as entering the first scenario's source does
    host, port = capture.receiver.address("udp")
    assert target.close is not None
    target.close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host, port))  # the port is free again: the receiver stopped


def test_a_single_listen_string_and_no_close_without_a_capture() -> None:
    spec = parse_target_file(
        Path("t.toml"), _file([{"name": "h", "kind": "hep", "listen": "udp:127.0.0.1:9060"}])
    )
    assert spec.logs[0].listen == ("udp:127.0.0.1:9060",) and not spec.logs[0].complete
    assert parse_target_file(Path("t.toml"), dict(BASE)).to_target(load_profile()).close is None


@pytest.mark.parametrize(
    ("log", "message"),
    [
        ({"name": "h", "kind": "hep"}, "logs[0].listen: a hep log source needs listen"),
        ({"name": "h", "kind": "hep", "listen": "9060"}, "logs[0].listen: expected udp:IP:PORT"),
        (
            {"name": "h", "kind": "hep", "listen": ["udp:127.0.0.1:99999"]},
            "logs[0].listen: port out of range",
        ),
        ({"name": "h", "kind": "hep", "listen": "udp:127.0.0.1:9060", "complete": "yes"}, "expected bool"),
    ],
)
def test_bad_hep_sources_name_the_key(log: dict[str, object], message: str) -> None:
    with pytest.raises(TargetFileError, match=re.escape(message)):
        parse_target_file(Path("t.toml"), _file([log]))


def test_the_shipped_example_validates() -> None:
    from harness.scenario.targetfile import load_target_file

    spec = load_target_file(Path(__file__).resolve().parents[2] / "scenarios/targets/lab-hep.example.toml")
    [hep] = [log for log in spec.logs if log.kind == "hep"]
    assert hep.listen == ("udp:127.0.0.1:9060",) and hep.complete

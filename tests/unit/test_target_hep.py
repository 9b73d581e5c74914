"""A target file's HEP capture: `[[logs]] kind = "hep"` with `listen` addresses, validated with the key
named; the target gets a HepCapture (one of its log sources, listed by Target.captures) whose receiver
starts on first use and stops when the target's block ends."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from harness.kazoo.profile import load_profile
from harness.logs.hep_source import HepCapture
from harness.targets import open_target
from harness.targets.file import TargetFileError, load_target_file, parse_target_file

BASE: dict[str, object] = {"sbc": {"host": "127.0.0.1", "port": 5060}}


def _file(logs: list[dict[str, object]]) -> dict[str, object]:
    return {**BASE, "logs": logs}


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_a_hep_source_becomes_a_capture_that_closes_with_the_target(tmp_path: Path) -> None:
    spec = parse_target_file(
        Path("t.toml"),
        _file([{"name": "sbc-hep", "kind": "hep", "listen": ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"],
                "complete": True}]),
    )  # fmt: skip
    [log] = spec.logs
    assert log.listen == ("udp:127.0.0.1:0", "tcp:127.0.0.1:0") and log.complete
    target = spec.to_target(load_profile())
    [capture] = target.captures
    assert target.logs["sbc-hep"] is capture and isinstance(capture, HepCapture) and capture.complete
    # opened the one way every command opens a target: its receiver is stopped when the block ends
    port = _free_udp_port()
    path = tmp_path / "hep.toml"
    path.write_text(
        '[[sbc]]\nhost = "127.0.0.1"\nport = 5060\n'
        f'[[logs]]\nname = "sbc-hep"\nkind = "hep"\nlisten = "udp:127.0.0.1:{port}"\ncomplete = true\n'
    )
    with open_target(str(path), reach=False) as opened:
        [capture] = opened.captures
        capture.receiver.start()  # as entering the first scenario's source does
        assert capture.receiver.address("udp") == ("127.0.0.1", port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe, pytest.raises(OSError):
            probe.bind(("127.0.0.1", port))  # the receiver holds it
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", port))  # the port is free again: the receiver stopped with the target


def test_a_single_listen_string_and_no_capture_without_a_hep_source() -> None:
    spec = parse_target_file(
        Path("t.toml"), _file([{"name": "h", "kind": "hep", "listen": "udp:127.0.0.1:9060"}])
    )
    assert spec.logs[0].listen == ("udp:127.0.0.1:9060",) and not spec.logs[0].complete
    assert parse_target_file(Path("t.toml"), dict(BASE)).to_target(load_profile()).captures == []


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
    spec = load_target_file(Path(__file__).resolve().parents[2] / "scenarios/targets/lab-hep.example.toml")
    [hep] = [log for log in spec.logs if log.kind == "hep"]
    assert hep.listen == ("udp:127.0.0.1:9060",) and hep.complete

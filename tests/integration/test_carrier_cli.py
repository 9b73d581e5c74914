"""`kazoo-harness send` run as a real process against a scripted loopback responder."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from typing import Any

from carrier_responder import Responder, final_for_invite
from typer.testing import CliRunner

from harness.cli import app
from harness.sip.message import Request

SOURCE = "127.0.0.66"


async def run_cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "harness.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_send_json_against_responder() -> None:
    async def scenario() -> tuple[int, str, str, Responder]:
        async with Responder(final_for_invite(604, "Nope Nope Nope")) as peer:
            target = f"{peer.address[0]}:{peer.address[1]}"
            result = await run_cli(
                "send", "--target", target, "--source-ip", SOURCE, "--to", "+14155551234",
                "--ruri-user", "4155551234", "--mutate", "drop-header=User-Agent",
                "--header", "P-Test: yes", "--seed", "5", "--timeout", "2", "--json",
            )  # fmt: skip
            return (*result, peer)

    code, out, err, peer = asyncio.run(scenario())
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    assert doc["outcome"] == "response"
    assert doc["final"] == {"code": 604, "reason": "Nope Nope Nope"}
    assert doc["provisional"] == []
    assert [e["first_line"].split()[0] for e in doc["sent"]] == ["INVITE", "ACK"]
    assert doc["sent"][0]["src"].startswith(SOURCE + ":")
    assert doc["sent"][0]["dst"] == f"{peer.address[0]}:{peer.address[1]}"
    assert {"t_ms", "src", "dst", "first_line", "bytes"} <= doc["received"][0].keys()
    assert doc["seed"] == 5
    invite = peer.requests("INVITE")[0]
    assert isinstance(invite, Request)
    assert doc["call_id"] == invite.call_id
    assert invite.uri.user == "4155551234"
    assert invite.to.uri.user == "+14155551234"
    assert invite.get("P-Test") == "yes"
    assert not invite.has("User-Agent")
    assert invite.top_via.host == SOURCE
    assert peer.received[0][1][0] == SOURCE


def test_send_ladder_and_exit_codes() -> None:
    runner = CliRunner()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    unreachable = runner.invoke(
        app, ["send", "--target", f"127.0.0.1:{closed}", "--source-ip", SOURCE, "--to", "+14155550100"]
    )
    assert unreachable.exit_code == 3
    assert "outcome: unreachable" in unreachable.output
    assert " --> 127.0.0.1:" in unreachable.output

    remote = runner.invoke(app, ["send", "--target", "192.0.2.1:5060", "--to", "+14155550100"])
    assert remote.exit_code == 2
    assert "only loopback" in remote.output

    bad = runner.invoke(app, ["send", "--target", "127.0.0.1:5060", "--to", "1", "--mutate", "nope"])
    assert bad.exit_code == 2
    assert "unknown mutator" in bad.output

    bad_address = runner.invoke(app, ["send", "--target", "127.0.0.1", "--to", "1"])
    assert bad_address.exit_code == 2


def test_mutator_listing() -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["mutators"])
    via_send = runner.invoke(app, ["send", "--mutate", "list"])
    assert listed.exit_code == via_send.exit_code == 0
    assert listed.output == via_send.output
    assert "drop-header=NAME" in listed.output

"""The docker target on a real engine: the lab stack's containers come up answering, Kamailio's container
log streams into the scenario's log sources, and everything is removed at the end — also when a scenario
fails, on Ctrl-C and on SIGTERM (pytest runs in a child process here, so the test can interrupt it)."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.kazoo.profile import load_profile
from harness.kazoo.release import KAZOO_4_3, KAZOO_5
from harness.logs.line import LogLine
from harness.targets.docker_images import IMAGES, docker_client, engine_unavailable_reason, ensure_images
from harness.targets.docker_stack import (
    LABEL_OWNER_PID,
    LABEL_SESSION,
    DockerStack,
    start_docker_stack,
    target_for_stack,
)

_SKIP_REASON = engine_unavailable_reason()
pytestmark = [pytest.mark.skipif(_SKIP_REASON is not None, reason=_SKIP_REASON or ""), pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 20.0
# the first start may build the images (minutes on a cold engine)
CHILD_DEADLINE = 900.0


@pytest.fixture(scope="module")
def stack() -> Iterator[DockerStack]:
    started = start_docker_stack(KAZOO_4_3)
    try:
        yield started
    finally:
        started.stop()


def _session_containers(session: str) -> list[Any]:
    client = docker_client()
    try:
        return list(client.containers.list(all=True, filters={"label": f"{LABEL_SESSION}={session}"}))
    finally:
        client.close()


def _options(address: tuple[str, int], call_id: str, max_forwards: int = 70) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.66", 0))
        port = sock.getsockname()[1]
        sock.settimeout(DEADLINE)
        sock.sendto(
            (
                f"OPTIONS sip:{address[0]}:{address[1]} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.66:{port};branch=z9hG4bK{call_id[:12]};rport\r\n"
                f"Max-Forwards: {max_forwards}\r\nFrom: <sip:probe@127.0.0.66>;tag=1\r\n"
                f"To: <sip:{address[0]}>\r\nCall-ID: {call_id}\r\n"
                "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            ).encode(),
            address,
        )
        return sock.recv(65535)


def test_stack_runs_in_host_network_containers(stack: DockerStack) -> None:
    running = {c.labels["org.kazoo-harness.role"]: c for c in _session_containers(stack.session)}
    assert sorted(running) == ["kamailio", "model"]
    for container in running.values():
        assert container.status == "running"
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"
    assert _options(stack.sbc, uuid.uuid4().hex).startswith(b"SIP/2.0 200")


def test_kamailio_container_log_reaches_the_target_sources(stack: DockerStack) -> None:
    target = target_for_stack(stack, load_profile("kazoo-4.3"))
    call_id = f"docker-log-{uuid.uuid4().hex}"

    async def scenario() -> LogLine:
        async with target.logs["kamailio"]() as source:
            # keepalive OPTIONS are not logged; one with Max-Forwards 0 is refused with a log line
            reply = await asyncio.to_thread(_options, stack.sbc, call_id, 0)
            assert reply.startswith(b"SIP/2.0 483")
            async for line in source:
                if call_id in line.raw:
                    return line
        raise AssertionError("log stream ended")

    line = asyncio.run(asyncio.wait_for(scenario(), DEADLINE))
    assert line.source == "kamailio"
    assert "too much hops" in line.raw
    assert target.sbc == stack.sbc and target.kind == "docker"
    assert set(target.logs) == {"freeswitch", "kamailio", "kazoo"}


def test_images_follow_this_checkout_when_another_moved_the_tag(stack: DockerStack) -> None:
    """Two checkouts on one engine: the other's build took `latest`; this one's context build is back on
    it without a rebuild (a stale `latest` once ran an entrypoint that refused this release's flags)."""
    client = docker_client()
    try:
        tag = IMAGES["kamailio"][1]
        mine = client.images.get(tag).id
        other = client.images.get(IMAGES["model"][1])  # any other image stands for the other build
        other.tag(tag.rsplit(":", 1)[0], tag=tag.rsplit(":", 1)[1])
        assert client.images.get(tag).id == other.id
        ensure_images(client, ["kamailio"], progress=lambda message: None)
        assert client.images.get(tag).id == mine
    finally:
        client.close()


def test_stop_removes_containers_and_log_dir() -> None:
    started = start_docker_stack(KAZOO_5)
    assert len(_session_containers(started.session)) == 2
    started.stop()
    started.stop()  # idempotent
    assert _session_containers(started.session) == []
    assert not started.log_dir.exists()


# -- clean-up of a pytest session, in a child process ------------------------------------------------

CHILD_TEST = """
import json, os, sys, threading
def test_child(kazoo):
    import docker
    client = docker.from_env()
    mine = {"label": f"org.kazoo-harness.owner-pid={os.getpid()}"}
    ids = [c.id for c in client.containers.list(filters=mine)]
    print("CONTAINERS " + json.dumps(ids), flush=True)
    if os.environ["CHILD_MODE"] == "hang":
        threading.Event().wait(120)  # until the parent interrupts this process
    assert False, "a failing scenario"
"""


def _run_child(tmp_path: Path, mode: str, interrupt: signal.Signals | None) -> tuple[int, list[str], str]:
    (tmp_path / "test_child.py").write_text(CHILD_TEST)
    env = dict(os.environ, CHILD_MODE=mode)
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "--kazoo-target", "docker", str(tmp_path / "test_child.py")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    stdout = child.stdout
    assert stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:  # a thread, so that every wait below has a deadline
        for text in stdout:
            lines.put(text)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    output: list[str] = []
    ids: list[str] = []
    try:
        while (line := lines.get(timeout=CHILD_DEADLINE)) is not None:
            output.append(line)
            if line.startswith("CONTAINERS "):
                ids = json.loads(line.split(" ", 1)[1])
                if interrupt is not None:
                    child.send_signal(interrupt)
        code = child.wait(timeout=DEADLINE)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=DEADLINE)
    return code, ids, "".join(output)


# a catalog scenario whose expectation is wrong: the busy number answers 486, not 200
FAILING_SCENARIO = """
name: busy number expected to route (fails on purpose)
cause: call_flow
description: A scenario that fails against a working stack.
carrier: {role: listed}
send: {number: busy}
expect: {outcome: routed}
"""


def test_containers_removed_after_a_failing_yaml_scenario(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "busy_wrong.yaml").write_text(FAILING_SCENARIO)
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "--kazoo-target", "docker", "scenarios"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        output, _ = child.communicate(timeout=CHILD_DEADLINE)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=DEADLINE)
    assert child.returncode == 1, output
    assert "1 failed" in output and "486" in output, output  # the stack was up and answered busy
    assert _owned_by(child.pid) == [], output


def _owned_by(pid: int) -> list[str]:
    client = docker_client()
    try:
        found = client.containers.list(all=True, filters={"label": f"{LABEL_OWNER_PID}={pid}"})
        return [str(c.name) for c in found]
    finally:
        client.close()


def _existing(ids: list[str]) -> list[str]:
    client = docker_client()
    try:
        present = {c.id for c in client.containers.list(all=True)}
    finally:
        client.close()
    return [i for i in ids if i in present]


@pytest.mark.parametrize(
    ("mode", "interrupt", "expect_code"),
    [("fail", None, 1), ("hang", signal.SIGINT, 2), ("hang", signal.SIGTERM, -signal.SIGTERM)],
    ids=["failing-scenario", "ctrl-c", "sigterm"],
)
def test_containers_removed_after_the_session_ends(
    tmp_path: Path, mode: str, interrupt: signal.Signals | None, expect_code: int
) -> None:
    code, ids, output = _run_child(tmp_path, mode, interrupt)
    assert len(ids) >= 2, output  # the stack was up while the test ran
    assert code == expect_code, output
    assert _existing(ids) == [], output

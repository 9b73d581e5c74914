"""File, command and docker log sources."""

from __future__ import annotations

import asyncio
import os
import select
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from harness.logs.command_source import CommandSource
from harness.logs.docker_source import DockerSource
from harness.logs.file_source import FileSource
from harness.logs.line import LogLine

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout=15)

    return asyncio.run(bounded())


async def take(lines: AsyncIterator[LogLine], n: int, timeout: float = 5.0) -> list[str]:
    out = []
    for _ in range(n):
        out.append((await asyncio.wait_for(anext(lines), timeout=timeout)).raw)
    return out


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


# ---------------------------------------------------------------- file


def test_file_source_starts_at_the_end_and_joins_partial_lines(tmp_path: Path) -> None:
    log = tmp_path / "kamailio.log"
    log.write_text("old line before the follower\n")

    async def body() -> list[str]:
        async with FileSource(log, "kamailio", poll_interval=0.01) as source:
            lines = aiter(source)
            append(log, "first\nsecond half")
            append(log, "-joined\n")
            return await take(lines, 2)

    assert run(body()) == ["first", "second half-joined"]


def test_file_source_follows_rotation_by_rename(tmp_path: Path) -> None:
    log = tmp_path / "freeswitch.log"
    log.write_text("")

    async def body() -> list[str]:
        async with FileSource(log, "freeswitch", poll_interval=0.01) as source:
            lines = aiter(source)
            append(log, "before rotation\n")
            got = await take(lines, 1)
            append(log, "last line of the old file\n")
            os.rename(log, tmp_path / "freeswitch.log.1")
            log.write_text("first line of the new file\n")
            return got + await take(lines, 2)

    assert run(body()) == ["before rotation", "last line of the old file", "first line of the new file"]


def test_file_source_rereads_after_truncation(tmp_path: Path) -> None:
    log = tmp_path / "kazoo.log"
    log.write_text("x" * 100 + "\n")

    async def body() -> list[str]:
        async with FileSource(log, "kazoo", poll_interval=0.01) as source:
            lines = aiter(source)
            log.write_text("")  # copytruncate
            append(log, "after truncation\n")
            return await take(lines, 1)

    assert run(body()) == ["after truncation"]


def test_file_source_waits_for_a_missing_file(tmp_path: Path) -> None:
    log = tmp_path / "later.log"

    async def body() -> list[str]:
        async with FileSource(log, poll_interval=0.01) as source:
            assert source.name == "later"
            lines = aiter(source)
            log.write_text("created after the follower started\n")
            return await take(lines, 1)

    assert run(body()) == ["created after the follower started"]


# ---------------------------------------------------------------- command


def test_command_source_streams_lines_and_parses_them() -> None:
    script = (
        "import sys\nprint(' 0(7) WARNING: <script>: end - dropping insane message', flush=True)\n"
        "print('done')"
    )

    async def body() -> tuple[list[LogLine], int | None]:
        async with CommandSource([sys.executable, "-c", script], "kamailio") as source:
            got = [line async for line in source]
            return got, await source.stop()

    got, code = run(body())
    assert [line.raw for line in got] == [" 0(7) WARNING: <script>: end - dropping insane message", "done"]
    assert got[0].parsed.format == "kamailio" and got[0].level == "WARNING"
    assert code == 0


def test_command_source_stops_the_whole_process_group(tmp_path: Path) -> None:
    # The command starts a grandchild (as `ssh host tail -F` pipelines do); stopping must end both.
    pid_file = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time\\nwhile True: time.sleep(1)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "print('ready', flush=True)\n"
        "while True: time.sleep(1)\n"
    )

    async def body() -> tuple[int | None, int]:
        source = CommandSource([sys.executable, "-c", script], "tail", stop_timeout=3)
        async with source:
            assert await take(aiter(source), 1) == ["ready"]
            # A pidfd becomes readable when the process ends: a wait with a deadline, no polling.
            grandchild = os.pidfd_open(int(pid_file.read_text()))
        assert source.process is not None
        return source.process.returncode, grandchild

    code, grandchild = run(body())
    try:
        assert code is not None and code < 0  # ended by a signal, not by itself
        readable, _, _ = select.select([grandchild], [], [], 5.0)
        assert readable == [grandchild], "the grandchild outlived the stopped command"
    finally:
        os.close(grandchild)


def test_command_source_kills_a_command_that_ignores_sigterm() -> None:
    script = (
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\nwhile True: time.sleep(1)"
    )

    async def body() -> int | None:
        source = CommandSource([sys.executable, "-c", script], "stubborn", stop_timeout=0.3)
        async with source:
            assert await take(aiter(source), 1) == ["ready"]
        assert source.process is not None
        return source.process.returncode

    assert run(body()) == -9


# ---------------------------------------------------------------- docker


class _RecordedStream:
    """Stands in for the SDK's CancellableStream: no Docker engine runs on this machine, so the payloads a
    real engine streamed (chunks not aligned to lines) are replayed from a recording."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)

    def close(self) -> None:
        self.closed = True


class _FakeContainers:
    def __init__(self, stream: _RecordedStream) -> None:
        self.stream = stream
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get(self, name: str) -> Any:
        containers = self

        class _Container:
            def logs(self, **kwargs: Any) -> _RecordedStream:
                containers.calls.append((name, kwargs))
                return containers.stream

        return _Container()


class _FakeClient:
    def __init__(self, stream: _RecordedStream) -> None:
        self.containers = _FakeContainers(stream)


# Recorded from `docker logs -f` of a Kazoo Kamailio container: the multiplexed frames' payloads, as the
# SDK yields them after demultiplexing (8-byte headers stripped), split mid-line.
RECORDED_FRAMES = [
    b" 0(311) WARNING: <script>: 0a1b@127.0.0.10|end|dropping insane ",
    b"message from 127.0.0.10:5099\n 0(311) INFO: <script>: end - OPTIONS from 127.0.0.10\n",
    b"trailing line without newline",
]


def test_docker_source_splits_recorded_frames_into_lines() -> None:
    stream = _RecordedStream(RECORDED_FRAMES)
    client = _FakeClient(stream)

    async def body() -> list[LogLine]:
        async with DockerSource("kamailio-1", "kamailio", client=client) as source:
            return [line async for line in source]

    lines = run(body())
    assert [line.raw for line in lines] == [
        " 0(311) WARNING: <script>: 0a1b@127.0.0.10|end|dropping insane message from 127.0.0.10:5099",
        " 0(311) INFO: <script>: end - OPTIONS from 127.0.0.10",
        "trailing line without newline",
    ]
    assert lines[0].call_id == "0a1b@127.0.0.10" and lines[0].source == "kamailio"
    name, kwargs = client.containers.calls[0]
    assert name == "kamailio-1"
    assert kwargs["stream"] and kwargs["follow"] and kwargs["since"] > time.time() - 60
    assert stream.closed

"""DockerSource against a real container on a real engine: lines written to the container's stdout and
stderr after the source opened arrive, split into lines whatever the engine's frames, named by source."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from harness.logs.docker_source import DockerSource
from harness.logs.line import LogLine
from harness.targets.docker_images import IMAGES, LOCAL_BASE_IMAGE, docker_client, engine_unavailable_reason

_SKIP_REASON = engine_unavailable_reason()
pytestmark = pytest.mark.skipif(_SKIP_REASON is not None, reason=_SKIP_REASON or "")

DEADLINE = 10.0


def _any_local_image(client: Any) -> str:
    for tag in (LOCAL_BASE_IMAGE, IMAGES["model"][1], IMAGES["kamailio"][1], "debian:bookworm-slim"):
        if client.images.list(name=tag):
            return tag
    pytest.skip("no image with a shell on the engine: run docker/build-base.sh first")


@pytest.fixture(scope="module")
def container() -> Iterator[Any]:
    client = docker_client()
    made = client.containers.create(
        _any_local_image(client),
        command=["sleep", "infinity"],
        name=f"kazoo-harness-logtest-{uuid.uuid4().hex[:8]}",
        network_mode="host",
        init=True,
        labels={"org.kazoo-harness.test": "docker-source"},
    )
    try:
        made.start()
        yield made
    finally:
        made.remove(force=True)
        client.close()


def _emit(container: Any, script: str) -> None:
    """Write to the container's log: PID 1's stdout/stderr are what the engine records."""
    result = container.exec_run(["sh", "-c", script])
    assert result.exit_code == 0, result.output


async def _lines(source: DockerSource, count: int) -> list[LogLine]:
    got: list[LogLine] = []
    iterator: AsyncIterator[LogLine] = aiter(source)
    while len(got) < count:
        got.append(await asyncio.wait_for(anext(iterator), DEADLINE))
    return got


def test_lines_after_open_arrive_in_order_and_split(container: Any) -> None:
    marker = uuid.uuid4().hex

    async def scenario() -> list[LogLine]:
        async with DockerSource(container.id, "kamailio") as source:
            # one write with two lines and a partial one, finished by a second write
            _emit(container, f"printf '{marker} a\\n{marker} b\\n{marker} c' > /proc/1/fd/1")
            _emit(container, "printf -- '-end\\n' > /proc/1/fd/1")
            stdout = await _lines(source, 3)
            # stderr after stdout has arrived: the engine copies the two streams independently
            _emit(container, f"echo '{marker} err' > /proc/1/fd/2")
            return stdout + await _lines(source, 1)

    lines = asyncio.run(scenario())
    assert [line.source for line in lines] == ["kamailio"] * 4
    assert [line.raw for line in lines] == [f"{marker} a", f"{marker} b", f"{marker} c-end", f"{marker} err"]


def test_lines_before_open_are_not_replayed(container: Any) -> None:
    before, after = uuid.uuid4().hex, uuid.uuid4().hex
    _emit(container, f"echo {before} > /proc/1/fd/1")

    async def scenario() -> list[LogLine]:
        # the engine's `since` has whole-second granularity at worst: let the clock pass the old line's
        # second by waiting for a line written after the open (an event, with a deadline)
        async with DockerSource(container.id, "c") as source:
            _emit(container, f"echo {after} > /proc/1/fd/1")
            found: list[LogLine] = []
            async for line in source:
                found.append(line)
                if after in line.raw:
                    return found
            return found

    lines = asyncio.run(asyncio.wait_for(scenario(), DEADLINE))
    assert lines[-1].raw == after
    assert all(before not in line.raw for line in lines)


def test_close_ends_iteration(container: Any) -> None:
    async def scenario() -> list[LogLine]:
        source = DockerSource(container.id, "c")
        await source.__aenter__()
        await asyncio.wait_for(source.close(), DEADLINE)
        return [line async for line in source]

    assert asyncio.run(asyncio.wait_for(scenario(), DEADLINE)) == []

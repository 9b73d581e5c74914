"""Lines from a container's log stream through the docker SDK (``docker`` package).

The SDK is blocking, so a worker thread reads ``container.logs(stream=True, follow=True, since=now)``
and hands chunks to the event loop; chunks are split into lines here (the engine's frames are not line
aligned). Closing closes the HTTP stream, which ends the thread's read.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any

from harness.logs.line import LogLine


class DockerSource:
    def __init__(self, container: str, name: str | None = None, *, client: Any = None) -> None:
        self.container = container
        self.name = name or container
        self._client = client
        self._stream: Any = None
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._thread: threading.Thread | None = None

    async def __aenter__(self) -> DockerSource:
        loop = asyncio.get_running_loop()
        since = time.time()
        stream = await asyncio.to_thread(self._open_stream, since)
        self._stream = stream
        self._thread = threading.Thread(
            target=self._pump, args=(loop, stream), name=f"docker-logs-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def _open_stream(self, since: float) -> Any:
        if self._client is None:
            # Imported lazily (only this source needs the SDK) and by name: mypy run from the repository
            # root resolves ``docker`` to the repo's docker/ folder of images.
            docker = importlib.import_module("docker")
            self._client = docker.from_env()
        container = self._client.containers.get(self.container)
        return container.logs(stream=True, follow=True, since=since, stdout=True, stderr=True)

    def _pump(self, loop: asyncio.AbstractEventLoop, stream: Iterator[bytes]) -> None:
        try:
            for chunk in stream:
                loop.call_soon_threadsafe(self._queue.put_nowait, chunk)
        except Exception:  # the stream closed under us (close()) or the engine went away
            pass
        finally:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(self._queue.put_nowait, None)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None and hasattr(stream, "close"):
            await asyncio.to_thread(stream.close)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)
            self._thread = None

    def __aiter__(self) -> AsyncIterator[LogLine]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[LogLine]:
        pending = b""
        while (chunk := await self._queue.get()) is not None:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                yield LogLine.make(self.name, raw.decode("utf-8", "replace"))
        if pending:
            yield LogLine.make(self.name, pending.decode("utf-8", "replace"))

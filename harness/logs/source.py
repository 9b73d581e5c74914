"""The log source interface and an in-memory source.

A source is an async context manager (``__aenter__`` starts reading from *now*: earlier lines are never
delivered) and an async iterator of :class:`LogLine` that ends when the source is closed or exhausted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Protocol, runtime_checkable

from harness.logs.line import LogLine


@runtime_checkable
class LogSource(Protocol):
    name: str

    async def __aenter__(self) -> LogSource: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def __aiter__(self) -> AsyncIterator[LogLine]: ...


class MemorySource:
    """Lines pushed by code (tests, the embedded model in-process): ``push(raw)`` from the loop thread,
    ``push_threadsafe(raw)`` from any other thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: asyncio.Queue[LogLine | None] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __aenter__(self) -> MemorySource:
        self._loop = asyncio.get_running_loop()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def push(self, raw: str, *, call_id: str | None = None, received: float | None = None) -> LogLine:
        line = LogLine.make(self.name, raw, call_id=call_id, received=received)
        self._queue.put_nowait(line)
        return line

    def push_threadsafe(self, raw: str, *, call_id: str | None = None) -> None:
        if self._loop is None:
            raise RuntimeError("MemorySource is not entered")
        self._loop.call_soon_threadsafe(lambda: self.push(raw, call_id=call_id))

    def close(self) -> None:
        self._queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[LogLine]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[LogLine]:
        while (line := await self._queue.get()) is not None:
            yield line

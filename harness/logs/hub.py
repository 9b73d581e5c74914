"""Run several log sources, keep every line with its receive time, and let callers wait for lines.

``async with LogHub([FileSource(...), EslSource(...)]) as hub:`` enters every source (each starts at
*now*), then reads them concurrently. ``await hub.wait_for(pred, since=t0, deadline=t0 + 5)`` returns the
first line received at or after ``since`` that satisfies ``pred`` - already stored or still to come - or
None at the deadline. A source that fails (to start, or later) is recorded in ``hub.errors`` and the others
keep running; ``strict=True`` makes a source that cannot start fail the hub instead.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from types import TracebackType

from harness.logs.line import LogLine
from harness.logs.source import LogSource

Predicate = Callable[[LogLine], bool]


class LogCursor:
    """Reads the hub's lines received at or after ``since``, in arrival order, waiting for new ones."""

    def __init__(self, hub: LogHub, since: float) -> None:
        self._hub = hub
        self._index = hub._dropped + hub._first_index(since)  # absolute: survives trimming

    async def next(self, deadline: float) -> LogLine | None:
        """The next line, or None when ``deadline`` (epoch seconds) passes first."""
        self._index = max(self._index, self._hub._dropped)
        while self._index - self._hub._dropped >= len(self._hub._lines):
            remaining = deadline - time.time()
            if remaining <= 0:
                return None
            changed = self._hub._changed
            try:
                await asyncio.wait_for(changed.wait(), timeout=remaining)
            except TimeoutError:
                return None
            self._index = max(self._index, self._hub._dropped)
        line = self._hub._lines[self._index - self._hub._dropped]
        self._index += 1
        return line


class LogHub:
    def __init__(
        self, sources: Iterable[LogSource] = (), *, max_lines: int = 200_000, strict: bool = False
    ) -> None:
        self.sources: list[LogSource] = list(sources)
        self.max_lines = max_lines
        self.strict = strict  # True: a source that cannot start fails the hub instead of being recorded
        self.errors: dict[str, BaseException] = {}
        self._lines: list[LogLine] = []
        self._received: list[float] = []  # receive times, for bisecting ``since``
        self._dropped = 0  # lines trimmed from the front (max_lines), so cursors keep absolute positions
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stack = contextlib.AsyncExitStack()

    @property
    def source_names(self) -> list[str]:
        return [source.name for source in self.sources]

    async def __aenter__(self) -> LogHub:
        await self._stack.__aenter__()
        try:
            for source in self.sources:
                try:
                    await self._stack.enter_async_context(source)
                except Exception as exc:
                    if self.strict:
                        raise
                    # An unreachable event socket must not stop the file sources from proving a drop.
                    self.errors[source.name] = exc
                    continue
                self._tasks.append(asyncio.create_task(self._read(source), name=f"log-source-{source.name}"))
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)
        self._tasks.clear()
        await self._stack.aclose()

    async def _read(self, source: LogSource) -> None:
        try:
            async for line in source:
                self.add(line)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # kept for the verdict's explanation; the other sources go on
            self.errors[source.name] = exc

    def add(self, line: LogLine) -> None:
        """Store a line (sources call this; tests may too) and wake every waiter."""
        if line.received < (self._received[-1] if self._received else 0.0):
            # keep times monotonic; replace() keeps what a LogLine subclass carries (a HEP packet)
            line = replace(line, received=self._received[-1])
        self._lines.append(line)
        self._received.append(line.received)
        if len(self._lines) > self.max_lines:
            drop = len(self._lines) - self.max_lines
            del self._lines[:drop], self._received[:drop]
            self._dropped += drop
        self._changed.set()
        self._changed = asyncio.Event()

    def _first_index(self, since: float) -> int:
        return bisect.bisect_left(self._received, since)

    def lines(self, since: float | None = None, *, source: str | None = None) -> list[LogLine]:
        start = 0 if since is None else self._first_index(since)
        return [line for line in self._lines[start:] if source is None or line.source == source]

    def cursor(self, since: float) -> LogCursor:
        return LogCursor(self, since)

    def silent_sources(self, since: float, names: Sequence[str] | None = None) -> list[str]:
        """Sources (by name) that delivered no line at or after ``since``."""
        spoke = {line.source for line in self.lines(since)}
        return [name for name in (names or self.source_names) if name not in spoke]

    async def wait_for(self, predicate: Predicate, since: float, deadline: float) -> LogLine | None:
        cursor = self.cursor(since)
        while (line := await cursor.next(deadline)) is not None and line.received <= deadline:
            if predicate(line):
                return line
        return None

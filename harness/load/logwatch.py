"""Count log lines over a whole load run, not per call: a LogHub over the target's sources, read in a
thread of its own from the run's start, counting the lines each pattern matches (the flood drop line,
say). ``finish(grace)`` waits — until every "at least N" count is reached, or the grace ends — for the
lines the last calls caused, then stops the sources."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType

from harness.kazoo.profile import LogPattern
from harness.load.verdict import LogCount
from harness.logs.hub import LogHub
from harness.logs.source import LogSource

START_DEADLINE = 10.0  # seconds for the sources to open


class LogWatch:
    def __init__(
        self,
        sources: Callable[[], Sequence[LogSource]],
        present: Sequence[LogPattern],
        absent: Sequence[LogPattern],
    ) -> None:
        self._sources = sources
        self._patterns = [(p, True) for p in present] + [(p, False) for p in absent]
        self._compiled = [re.compile(p.pattern) for p, _ in self._patterns]
        self.counts = [0] * len(self._patterns)
        self.samples = [""] * len(self._patterns)
        self.errors: dict[str, str] = {}
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._grace_until: float | None = None
        self._thread = threading.Thread(target=self._run, name="load-logs", daemon=True)
        self._failure: BaseException | None = None

    def __enter__(self) -> LogWatch:
        if self._patterns:
            self._thread.start()
            if not self._ready.wait(START_DEADLINE):
                raise TimeoutError(f"the log sources did not open within {START_DEADLINE:g} s")
            if self._failure is not None:
                raise self._failure
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish(0.0)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the caller by __enter__ or finish
            self._failure = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with LogHub(self._sources()) as hub:
            self.errors = {name: str(exc) for name, exc in hub.errors.items()}
            cursor = hub.cursor(time.time())
            self._ready.set()
            while not self._stop.is_set():
                line = await cursor.next(time.time() + 0.05)
                if line is None:
                    if self._grace_until is not None and (
                        self._satisfied() or time.time() >= self._grace_until
                    ):
                        return
                    continue
                for i, ((pattern, _), compiled) in enumerate(
                    zip(self._patterns, self._compiled, strict=True)
                ):
                    if (pattern.source is None or pattern.source == line.source) and compiled.search(
                        line.raw
                    ):
                        self.counts[i] += 1
                        if not self.samples[i]:
                            self.samples[i] = f"[{line.source}] {line.raw}"

    def _satisfied(self) -> bool:
        return all(
            self.counts[i] >= (p.count or 1) for i, (p, present) in enumerate(self._patterns) if present
        )

    def finish(self, grace: float) -> list[LogCount]:
        """Read on for up to ``grace`` seconds (less once every "at least" count is met), then stop."""
        if self._thread.is_alive():
            self._grace_until = time.time() + grace
            self._thread.join(grace + START_DEADLINE)
        if self._failure is not None:
            raise RuntimeError(f"reading the log sources failed: {self._failure}") from self._failure
        return [
            LogCount(
                p.pattern,
                p.source,
                present,
                (p.count or 1) if present else 0,
                self.counts[i],
                self.samples[i],
            )
            for i, (p, present) in enumerate(self._patterns)
        ]

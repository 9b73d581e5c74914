"""Follow a log file from its current end, like ``tail -F``.

Polls (``poll_interval``, 50 ms by default): portable, no extra dependency, and fast enough for log
assertions whose windows are seconds long. Handles rotation by rename (the path now names another inode:
the old file is drained, then the new one is read from its start), truncation (size below the read
position: read again from the start) and a file that does not exist yet (read from its start once it
appears, since every line in it is newer than the follower).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from harness.logs.line import LogLine

MAX_LINE = 1 << 20  # a "line" longer than this is delivered in pieces rather than buffered forever


class FileSource:
    def __init__(self, path: Path | str, name: str | None = None, *, poll_interval: float = 0.05) -> None:
        self.path = Path(path)
        self.name = name or self.path.stem
        self.poll_interval = poll_interval
        self._handle: BinaryIO | None = None
        self._inode: tuple[int, int] | None = None
        self._partial = b""
        self._closed = asyncio.Event()

    async def __aenter__(self) -> FileSource:
        self._closed.clear()
        self._open(at_end=True)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _open(self, *, at_end: bool) -> None:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            self._handle, self._inode = None, None
            return
        stat = os.fstat(handle.fileno())
        if at_end:
            handle.seek(0, os.SEEK_END)
        self._handle, self._inode = handle, (stat.st_dev, stat.st_ino)
        self._partial = b""

    def __aiter__(self) -> AsyncIterator[LogLine]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[LogLine]:
        while not self._closed.is_set():
            for raw in self._poll():
                yield LogLine.make(self.name, raw)
            # Files give no readiness signal without inotify; a short poll bounded by close() is the wait.
            try:
                await asyncio.wait_for(self._closed.wait(), timeout=self.poll_interval)
            except TimeoutError:
                pass

    def _poll(self) -> list[str]:
        """Whole lines added since the last poll, following rotation and truncation."""
        if self._handle is None:
            self._open(at_end=False)
            if self._handle is None:
                return []
        lines = self._read_lines()
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return lines  # renamed away and not recreated yet: keep reading the old file
        if (stat.st_dev, stat.st_ino) != self._inode:
            lines += self._read_lines()  # drain what was written to the old file before the rename
            if self._partial:
                lines.append(self._partial.decode("utf-8", "replace"))
            self._handle.close()
            self._open(at_end=False)
            lines += self._read_lines() if self._handle is not None else []
        elif stat.st_size < self._handle.tell():
            self._handle.seek(0)
            self._partial = b""
            lines += self._read_lines()
        return lines

    def _read_lines(self) -> list[str]:
        assert self._handle is not None
        data = self._partial + self._handle.read()
        *complete, self._partial = data.split(b"\n")
        if len(self._partial) > MAX_LINE:
            complete.append(self._partial)
            self._partial = b""
        return [line.rstrip(b"\r").decode("utf-8", "replace") for line in complete]

"""Lines from any command that streams logs on its output (``ssh host tail -F ...``, ``journalctl -f``,
``kubectl logs -f``). The command runs in its own process group; closing terminates that group by the
child's PID, then kills it if it has not exited within ``stop_timeout``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Sequence
from types import TracebackType

from harness.logs.line import LogLine


class CommandSource:
    def __init__(self, argv: Sequence[str], name: str, *, stop_timeout: float = 3.0) -> None:
        if not argv:
            raise ValueError("CommandSource needs a command")
        self.argv = list(argv)
        self.name = name
        self.stop_timeout = stop_timeout
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> CommandSource:
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group, so children (tail under ssh...) stop too
            limit=1 << 20,
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def stop(self) -> int | None:
        """Terminate the command's process group (SIGTERM, then SIGKILL after ``stop_timeout``)."""
        process = self.process
        if process is None:
            return None
        if process.returncode is None:
            self._signal_group(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=self.stop_timeout)
            except TimeoutError:
                self._signal_group(process.pid, signal.SIGKILL)
                await asyncio.wait_for(process.wait(), timeout=self.stop_timeout)
        return process.returncode

    @staticmethod
    def _signal_group(pid: int, sig: signal.Signals) -> None:
        # The group id is the child's PID (start_new_session); never a name pattern.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)

    def __aiter__(self) -> AsyncIterator[LogLine]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[LogLine]:
        if self.process is None or self.process.stdout is None:
            raise RuntimeError("CommandSource is not entered")
        stdout = self.process.stdout
        while True:
            try:
                raw = await stdout.readline()
            except ValueError:  # a line over the limit: take what is buffered
                raw = await stdout.read(1 << 20)
            if not raw:
                return
            yield LogLine.make(self.name, raw.decode("utf-8", "replace"))

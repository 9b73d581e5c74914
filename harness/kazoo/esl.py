"""FreeSWITCH event-socket client (inbound mode), asyncio.

``async with await EslClient.open(host, port, password, deadline=...) as esl:`` connects and authenticates;
``await esl.log(7)``, ``await esl.events("CHANNEL_CREATE", ...)``, ``await esl.api("status")``; iterate
``async for frame in esl`` for ``log/data`` and ``text/event-*`` frames. Replies to commands arrive in
order on the same socket, so one reader task routes them to the waiting command and everything else to
the frame queue. Every wait is bound by the client's ``timeout`` or an explicit deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any


class EslError(Exception):
    """An event-socket failure; the message says what was expected and what came."""


class EslAuthError(EslError):
    """The server answered ``-ERR invalid`` to ``auth``: wrong password."""


class EslRejected(EslError):
    """The server sent ``text/rude-rejection``: this client's address is not in its event-socket ACL."""


class EslClosed(EslError):
    """The connection ended (``text/disconnect-notice`` or EOF)."""


@dataclass(frozen=True)
class EslFrame:
    headers: dict[str, str]
    body: str = ""

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    @property
    def reply_text(self) -> str:
        return self.headers.get("Reply-Text", "")

    def event(self) -> dict[str, Any]:
        """The event carried by a ``text/event-json`` or ``text/event-plain`` frame."""
        if self.content_type == "text/event-json":
            parsed: dict[str, Any] = json.loads(self.body)
            return parsed
        if self.content_type == "text/event-plain":
            head, _, rest = self.body.partition("\n\n")
            out: dict[str, Any] = {}
            for line in head.splitlines():
                name, _, value = line.partition(": ")
                out[name] = urllib.parse.unquote(value)
            if rest:
                out["_body"] = rest
            return out
        raise EslError(f"frame {self.content_type!r} carries no event")


async def read_frame(reader: asyncio.StreamReader) -> EslFrame:
    """One frame: header lines, a blank line, ``Content-Length`` bytes of body. Raises EslClosed at EOF."""
    headers: dict[str, str] = {}
    while True:
        raw = await reader.readline()
        if not raw:
            raise EslClosed("event socket closed by the server")
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if headers:
                break
            continue  # stray blank lines between frames
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    length = int(headers.get("Content-Length", "0") or 0)
    body = ""
    if length > 0:
        try:
            body = (await reader.readexactly(length)).decode("utf-8", "replace")
        except asyncio.IncompleteReadError as exc:
            raise EslClosed(f"event socket closed inside a {length}-byte body") from exc
    return EslFrame(headers, body)


@dataclass
class EslClient:
    host: str
    port: int
    password: str = "ClueCon"
    timeout: float = 5.0
    _reader: asyncio.StreamReader | None = field(default=None, repr=False)
    _writer: asyncio.StreamWriter | None = field(default=None, repr=False)
    _replies: asyncio.Queue[EslFrame] = field(default_factory=asyncio.Queue, repr=False)
    _frames: asyncio.Queue[EslFrame | None] = field(default_factory=asyncio.Queue, repr=False)
    _reader_task: asyncio.Task[None] | None = field(default=None, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    closed_reason: str | None = None

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        password: str = "ClueCon",
        *,
        deadline: float | None = None,
        timeout: float = 5.0,
        retry: bool = False,
    ) -> EslClient:
        """Connect and authenticate. With ``retry`` a refused or reset connection is retried with
        exponential backoff until ``deadline`` (epoch seconds); auth and ACL failures never are."""
        deadline = deadline if deadline is not None else time.time() + timeout
        delay = 0.05
        while True:
            client = cls(host, port, password, timeout)
            try:
                await client.connect(deadline=deadline)
                return client
            except (OSError, EslClosed) as exc:
                await client.close()
                remaining = deadline - time.time()
                if not retry or remaining <= 0:
                    raise EslError(f"cannot reach event socket {host}:{port}: {exc}") from exc
                # Backoff between attempts (rate limit, not a wait for an event), capped by the deadline.
                await asyncio.sleep(min(delay, remaining))
                delay = min(delay * 2, 1.0)

    async def connect(self, *, deadline: float | None = None) -> None:
        budget = self._budget(deadline)
        reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), timeout=budget
        )
        self._reader = reader
        first = await asyncio.wait_for(read_frame(reader), timeout=self._budget(deadline))
        if first.content_type == "text/rude-rejection":
            await self.close()
            raise EslRejected(
                f"{self.host}:{self.port} refused this client by ACL "
                f"(text/rude-rejection: {first.body.strip()!r}); "
                "add the harness address to the event socket's apply-inbound-acl list"
            )
        if first.content_type != "auth/request":
            await self.close()
            raise EslError(f"expected auth/request from {self.host}:{self.port}, got {first.headers}")
        self._reader_task = asyncio.create_task(self._read_loop())
        try:
            reply = await self.command(f"auth {self.password}", deadline=deadline)
        except EslError:
            await self.close()
            raise
        if not reply.reply_text.startswith("+OK"):
            await self.close()
            raise EslAuthError(
                f"event socket {self.host}:{self.port} refused the password ({reply.reply_text}); "
                "check event_socket.conf.xml 'password' (default ClueCon)"
            )

    def _budget(self, deadline: float | None) -> float:
        if deadline is None:
            return self.timeout
        return max(0.0, deadline - time.time())

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                frame = await read_frame(self._reader)
                kind = frame.content_type
                if kind in ("command/reply", "api/response"):
                    self._replies.put_nowait(frame)
                elif kind == "text/disconnect-notice":
                    self.closed_reason = frame.body.strip() or "disconnect-notice"
                    self._frames.put_nowait(frame)
                else:
                    self._frames.put_nowait(frame)
        except (EslClosed, ConnectionError) as exc:
            self.closed_reason = self.closed_reason or str(exc)
        finally:
            self._frames.put_nowait(None)
            # Wake a command waiting for a reply that will never come.
            self._replies.put_nowait(EslFrame({"Content-Type": "closed"}, self.closed_reason or "closed"))

    async def command(self, text: str, *, deadline: float | None = None) -> EslFrame:
        """Send one command and return its reply frame (``command/reply`` or ``api/response``)."""
        if self._writer is None:
            raise EslClosed("not connected")
        async with self._lock:  # replies come back in command order; one command in flight at a time
            self._writer.write(text.encode("utf-8") + b"\n\n")
            await self._writer.drain()
            try:
                reply = await asyncio.wait_for(self._replies.get(), timeout=self._budget(deadline))
            except TimeoutError as exc:
                raise EslError(f"no reply to {text.split(' ')[0]!r} from {self.host}:{self.port}") from exc
        if reply.content_type == "closed":
            raise EslClosed(f"connection closed while waiting for the reply to {text.split(' ')[0]!r}")
        if reply.reply_text == "-ERR invalid" and text.startswith("auth "):
            raise EslAuthError(
                f"event socket {self.host}:{self.port} refused the password (-ERR invalid); "
                "check event_socket.conf.xml 'password' (default ClueCon)"
            )
        return reply

    async def log(self, level: int | str = 7) -> str:
        return (await self.command(f"log {level}")).reply_text

    async def nolog(self) -> str:
        return (await self.command("nolog")).reply_text

    async def events(self, *names: str, fmt: str = "json") -> str:
        return (await self.command(f"event {fmt} {' '.join(names)}")).reply_text

    async def api(self, cmd: str, *, deadline: float | None = None) -> str:
        return (await self.command(f"api {cmd}", deadline=deadline)).body

    async def bgapi(self, cmd: str) -> str:
        """Start a background api command; returns its Job-UUID (the result comes as a BACKGROUND_JOB
        event, for clients subscribed to it)."""
        reply = await self.command(f"bgapi {cmd}")
        if not reply.reply_text.startswith("+OK"):
            raise EslError(f"bgapi {cmd!r} refused: {reply.reply_text}")
        return reply.headers.get("Job-UUID", reply.reply_text.removeprefix("+OK Job-UUID: "))

    async def exit(self) -> str:
        """Polite goodbye: ``+OK bye``; the server then sends a disconnect notice and closes."""
        return (await self.command("exit")).reply_text

    async def next_frame(self, *, deadline: float | None = None) -> EslFrame | None:
        """The next log/event frame, or None when the connection has ended."""
        return await asyncio.wait_for(self._frames.get(), timeout=self._budget(deadline))

    def __aiter__(self) -> AsyncIterator[EslFrame]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[EslFrame]:
        while True:
            frame = await self._frames.get()
            if frame is None:
                return
            yield frame

    async def close(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task
            self._reader_task = None
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.wait_closed(), timeout=self.timeout)
            self._writer = None

    async def __aenter__(self) -> EslClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

"""FreeSWITCH log lines over the event socket (``log <level>``), reconnecting with backoff.

The channel UUID from ``User-Data`` fills in the line's Call-ID (the body carries it only in FreeSWITCH's
uuid-prefixed form). A connection that drops is reopened (backoff up to 1 s) until the source is closed;
auth and ACL refusals are not retried: they raise at once with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from types import TracebackType

from harness.kazoo.esl import EslClient, EslClosed, EslError
from harness.logs.line import LogLine


class EslSource:
    def __init__(
        self,
        host: str,
        port: int,
        password: str = "ClueCon",
        name: str = "freeswitch",
        level: int | str = 7,
        *,
        connect_timeout: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.password = password
        self.name = name
        self.level = level
        self.connect_timeout = connect_timeout
        self.reconnects = 0
        self._client: EslClient | None = None
        self._closed = asyncio.Event()

    async def __aenter__(self) -> EslSource:
        self._closed.clear()
        self._client = await self._connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed.set()
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _connect(self) -> EslClient:
        client = await EslClient.open(
            self.host, self.port, self.password, retry=True, deadline=time.time() + self.connect_timeout
        )
        try:
            await client.log(self.level)
        except EslError:
            await client.close()
            raise
        return client

    def __aiter__(self) -> AsyncIterator[LogLine]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[LogLine]:
        while not self._closed.is_set():
            client = self._client
            if client is None:
                return
            async for frame in client:
                if frame.content_type == "log/data":
                    yield LogLine.make(self.name, frame.body, call_id=frame.headers.get("User-Data") or None)
            if self._closed.is_set():
                return
            await client.close()
            self._client = None
            with contextlib.suppress(EslClosed):
                self._client = await self._connect()  # raises EslError after connect_timeout
                self.reconnects += 1

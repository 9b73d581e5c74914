"""Reaching a stack's management side: where its CouchDB, Crossbar and event socket are (StackAccess),
a CouchDB client for them, and event-socket ``api`` calls."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from harness.kazoo.couch import CouchClient
from harness.kazoo.esl import EslClient

API_TIMEOUT = 5.0
Esl = tuple[str, int, str]  # host, port, password


@dataclass(frozen=True)
class StackAccess:
    """How to reach a stack's management side (diagnose, provisioning). Secret fields are secrets
    (masked in repr by harness.targets.file.Secret); never print them."""

    couch_url: str | None = None
    couch_username: str | None = None
    couch_password: str | None = None
    strip_db_slashes: bool = False
    crossbar_url: str | None = None
    crossbar_api_key: str | None = None
    esl: Esl | None = None
    node: str | None = None  # ecallmgr node whose system_config section applies


def couch_client(access: StackAccess, timeout: float = 5.0) -> CouchClient | None:
    if not access.couch_url:
        return None
    return CouchClient(
        access.couch_url,
        access.couch_username,
        access.couch_password,
        timeout=timeout,
        strip_db_slashes=access.strip_db_slashes,
    )


async def esl_api_async(esl: Esl, *commands: str, timeout: float = API_TIMEOUT) -> list[str]:
    """Run ``api`` commands over one event-socket connection; raises EslError when it cannot."""
    host, port, password = esl
    deadline = time.time() + timeout
    client = await EslClient.open(host, port, password, deadline=deadline, timeout=timeout)
    async with client:
        return [(await client.api(cmd, deadline=deadline)).strip() for cmd in commands]


def esl_api(esl: Esl, *commands: str, timeout: float = API_TIMEOUT) -> list[str]:
    """Blocking ``esl_api_async`` (for CLI code and teardown paths without a loop)."""
    return asyncio.run(esl_api_async(esl, *commands, timeout=timeout))

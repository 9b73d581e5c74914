"""Reaching a stack's management side: CouchDB client and event-socket ``api`` calls, for a target
(file or embedded model) or for the model at its default addresses (``kazoo-harness model``)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from harness.kazoo.couch import CouchClient
from harness.kazoo.esl import EslClient
from harness.scenario.target import StackAccess, Target

# `kazoo-harness model` without flags (harness/model/stack.py ModelConfig defaults).
MODEL_DEFAULT_SBC = ("127.0.0.1", 5060)
MODEL_DEFAULT_ACCESS = StackAccess(
    couch_url="http://127.0.0.1:5984",
    esl=("127.0.0.1", 8021, "ClueCon"),
    node="ecallmgr@kazoo-model.local",
)
API_TIMEOUT = 5.0


def stack_access(target: Target) -> StackAccess:
    """The target's management endpoints; an embedded target's come from its running model."""
    if target.stack is not None:
        return target.stack
    model: Any = target.model
    if model is None:
        return StackAccess(esl=target.esl)
    return StackAccess(couch_url=model.couch_url, esl=target.esl, node=model.node)


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


async def esl_api_async(esl: tuple[str, int, str], *commands: str, timeout: float = API_TIMEOUT) -> list[str]:
    """Run ``api`` commands over one event-socket connection; raises EslError when it cannot."""
    host, port, password = esl
    deadline = time.time() + timeout
    client = await EslClient.open(host, port, password, deadline=deadline, timeout=timeout)
    async with client:
        return [(await client.api(cmd, deadline=deadline)).strip() for cmd in commands]


def esl_api(esl: tuple[str, int, str], *commands: str, timeout: float = API_TIMEOUT) -> list[str]:
    """Blocking ``esl_api_async`` (for CLI code and teardown paths without a loop)."""
    return asyncio.run(esl_api_async(esl, *commands, timeout=timeout))

"""The gate every outgoing request passes before its first byte is sent.

The carrier UA cannot be made without a :class:`Gate` and asks it before each exchange it starts, so
nothing the harness sends — a scenario, a fixture's call, `send`, a replay, diagnose's test INVITE, a
conformance probe — reaches a stack without the target's rules seeing the destination, the bytes and
whether they were mutated. The rules themselves live with the targets (harness.targets.gate); this module
only says what a gate is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

Address = tuple[str, int]


class SendRefused(Exception):
    """The target's rules refuse to send this (the message names the rule); nothing was sent."""


@dataclass(frozen=True)
class Outgoing:
    """What is about to go on the wire."""

    destination: Address
    data: bytes
    transport: str
    # the sender changed the bytes after building them (mutators, a raw template, a capture): a gate
    # treats them as malformed whatever they look like
    mutated: bool


class Gate(Protocol):
    async def admit(self, outgoing: Outgoing) -> None:
        """Return when ``outgoing`` may be sent (after the rate cap's slot, if any); raise SendRefused."""
        ...

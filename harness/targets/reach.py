"""Is a stack there? An OPTIONS ping from a carrier address, through the target's gate."""

from __future__ import annotations

import asyncio

from harness.net.carrier import CarrierUA
from harness.net.exchange import Exchange
from harness.net.gate import Gate
from harness.sip.transaction import Timers
from harness.targets.target import Address

PING_TIMEOUT = 2.0


async def options_ping(local_ip: str, sbc: Address, gate: Gate, timeout: float = PING_TIMEOUT) -> Exchange:
    async with CarrierUA(local_ip, 0, "udp", gate=gate, timers=Timers(t1=0.5)) as ua:
        return await ua.options(sbc, timeout=timeout)


def describe_exchange(exchange: Exchange) -> str:
    final = exchange.final
    if final is not None:
        return f"{final.code} {final.reason}"
    return exchange.outcome


def sbc_unreachable(sbc: Address, source_ip: str, gate: Gate, timeout: float = PING_TIMEOUT) -> str | None:
    """Why the SBC does not answer an OPTIONS ping (None when it answers anything)."""
    try:
        exchange = asyncio.run(options_ping(source_ip, sbc, gate, timeout))
    except OSError as exc:
        return f"cannot send from {source_ip}: {exc}"
    if exchange.final is not None:
        return None
    return f"no answer to OPTIONS from {sbc[0]}:{sbc[1]} ({exchange.outcome} within {timeout:g} s)"

"""Live probes of a stack: an OPTIONS ping, and diagnose's test INVITE with its correlated log lines."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from harness.kazoo.diagnose import Step
from harness.logs.file_source import FileSource
from harness.logs.hub import LogHub
from harness.net.carrier import CarrierUA
from harness.net.exchange import Exchange
from harness.sip import builder
from harness.sip.transaction import Timers

Address = tuple[str, int]

# Log texts that prove Kamailio/FreeSWITCH refused the INVITE itself (kazoo-behaviour.md §4).
MALFORMED_LINES = (
    "dropping insane message",
    "no via found",
    "core parsing of SIP message failed",
    "too much hops",
    "second To header not null",
    "dropping message with user-agent",
    "dropping initial request with route-set",
    "content length not present",
    "buffer overrun",
    "CODEC NEGOTIATION ERROR",
)
MALFORMED_CODES = {400, 413, 416, 420, 483, 488, 505}
LOG_GRACE = 0.5


def _is_drop(text: str) -> bool:
    return any(marker in text for marker in MALFORMED_LINES)


async def _watch_drop(hub: LogHub, since: float, deadline: float, found: asyncio.Event) -> None:
    if await hub.wait_for(lambda line: _is_drop(line.raw), since, deadline) is not None:
        found.set()


async def options_ping(local_ip: str, sbc: Address, timeout: float = 2.0) -> Exchange:
    ua = CarrierUA(local_ip, 0, "udp", timers=Timers(t1=0.5))
    try:
        return await ua.options(sbc, timeout=timeout)
    finally:
        ua.close()


def describe_exchange(exchange: Exchange) -> str:
    final = exchange.final
    if final is not None:
        return f"{final.code} {final.reason}"
    return exchange.outcome


async def invite_step(
    sbc: Address,
    carrier: tuple[str, int],
    number: str,
    *,
    ruri_user: str | None = None,
    raw: bytes | None = None,
    log_files: dict[str, Path] | None = None,
    timeout: float = 6.0,
) -> Step:
    """Send a test INVITE (or the ``raw`` bytes of a carrier's INVITE) from ``carrier`` to ``sbc`` and
    judge what came back with the log lines it caused."""
    ua = CarrierUA(carrier[0], carrier[1], "udp", timers=Timers(t1=0.5))
    sources = [FileSource(path, name) for name, path in (log_files or {}).items()]
    try:
        async with LogHub(sources) as hub:
            since = time.time()
            # a drop line ends the wait for an answer that will never come
            early_end = asyncio.Event()
            watcher = asyncio.create_task(_watch_drop(hub, since, since + timeout, early_end))
            try:
                if raw is not None:
                    exchange = await ua.invite(raw, sbc, timeout=timeout, early_end=early_end)
                else:
                    spec = ua.spec(sbc, ruri_user=ruri_user or number, to_user=number)
                    message = builder.build_invite(spec)
                    exchange = await ua.invite(
                        message, sbc, timeout=timeout, dialed=number, early_end=early_end
                    )
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
            await hub.wait_for(lambda _line: False, since, time.time() + (LOG_GRACE if sources else 0))
            call_id = exchange.call_id or ""
            # tied to the call by Call-ID or source address; drop lines in the window even untied (Kamailio
            # logs some, e.g. "no via found", before it knows the Call-ID)
            lines = [
                str(line)
                for line in hub.lines(since)
                if (call_id and call_id in line.raw) or carrier[0] in line.raw or _is_drop(line.raw)
            ]
    finally:
        ua.close()
    got = describe_exchange(exchange)
    evidence = [f"INVITE from {carrier[0]}:{ua.local_port} to {sbc[0]}:{sbc[1]} -> {got}", *lines[:20]]
    data = {"call_id": exchange.call_id, "got": got, "log_lines": lines[:50]}
    final = exchange.final
    dropped = [line for line in lines if _is_drop(line)]
    if (
        dropped
        or (final is not None and final.code in MALFORMED_CODES)
        or exchange.outcome in ("silence", "closed")
    ):
        return Step(
            "invite",
            "problem",
            f"the stack refused the INVITE itself ({got})",
            evidence,
            data,
            fix="fix the carrier's INVITE (see the log line: sanity checks, Max-Forwards, headers, codecs); "
            "Kamailio's sanity checks drop it before Kazoo routes it",
            cause="malformed_invite",
        )
    if final is not None and final.code < 300:
        return Step("invite", "ok", f"the test call was answered ({got})", evidence, data)
    return Step("invite", "warning", f"the test call failed ({got}); see the steps above", evidence, data)


def sbc_unreachable(sbc: Address, source_ip: str, timeout: float = 2.0) -> str | None:
    """Why the SBC does not answer an OPTIONS ping (None when it answers anything)."""
    try:
        exchange = asyncio.run(options_ping(source_ip, sbc, timeout))
    except OSError as exc:
        return f"cannot send from {source_ip}: {exc}"
    if exchange.final is not None:
        return None
    return f"no answer to OPTIONS from {sbc[0]}:{sbc[1]} ({exchange.outcome} within {timeout:g} s)"

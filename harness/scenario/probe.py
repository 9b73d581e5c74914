"""Live probes of a stack: an OPTIONS ping, and diagnose's test INVITE with its correlated log lines."""

from __future__ import annotations

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
            if raw is not None:
                exchange = await ua.invite(raw, sbc, timeout=timeout)
            else:
                spec = ua.spec(sbc, ruri_user=ruri_user or number, to_user=number)
                exchange = await ua.invite(builder.build_invite(spec), sbc, timeout=timeout, dialed=number)
            await hub.wait_for(lambda _line: False, since, time.time() + (LOG_GRACE if sources else 0))
            call_id = exchange.call_id or ""
            lines = [
                str(line)
                for line in hub.lines(since)
                if (call_id and call_id in line.raw) or carrier[0] in line.raw
            ]
    finally:
        ua.close()
    got = describe_exchange(exchange)
    evidence = [f"INVITE from {carrier[0]}:{ua.local_port} to {sbc[0]}:{sbc[1]} -> {got}", *lines[:20]]
    data = {"call_id": exchange.call_id, "got": got, "log_lines": lines[:50]}
    final = exchange.final
    dropped = [line for line in lines if any(text in line for text in MALFORMED_LINES)]
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

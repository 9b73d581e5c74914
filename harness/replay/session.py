"""Send a captured INVITE at a target again and gather what it tells: the exchange, the stack's log lines
tied to it, and the cause as the expectation profile names it.

Without refresh the bytes go out exactly as captured, from the captured source port when it is free
(the captured Via names it, and a stack may answer there). With refresh the Call-ID, branch and From
tag are new, the Request-URI and top Via name the target and our source, and every foreign routing
address (Via, Contact, Record-Route, Route, SDP) becomes the local carrier address.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from harness.kazoo.causes import UNKNOWN
from harness.kazoo.profile import Profile, fill, request_values
from harness.logs.correlate import correlate
from harness.logs.hub import LogHub
from harness.logs.line import LogLine
from harness.logs.watch import send_watching
from harness.net.carrier import CarrierUA
from harness.net.exchange import Exchange
from harness.replay.capture import CapturedMessage
from harness.replay.cause import Diagnosis, diagnose_call
from harness.replay.refresh import refresh_invite
from harness.replay.rewrite import Foreign, foreign_addresses, rewrite_foreign
from harness.sip.errors import SipParseError
from harness.sip.message import Request, Response, parse_message
from harness.sip.transaction import Timers
from harness.targets.target import Target

LOG_QUIET = 0.3  # the stack has said all it will about the call once its logs are quiet this long
LOG_DEADLINE = 2.0  # ... or at the latest this long after the exchange ended


class ReplayRefused(ValueError):
    """The INVITE names non-loopback addresses and may not be sent as captured."""


@dataclass
class ReplayResult:
    invite: CapturedMessage
    sent: bytes
    exchange: Exchange
    as_captured: bool  # the bytes sent are the captured bytes
    rewritten: list[Foreign] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    log_lines: list[LogLine] = field(default_factory=list)  # every line during and after the exchange
    related: list[LogLine] = field(default_factory=list)  # those tied to it (Call-ID, address, number)
    diagnosis: Diagnosis = field(default_factory=lambda: Diagnosis(UNKNOWN, None))
    captured_final: Response | None = None

    @property
    def matches_capture(self) -> bool | None:
        """Did the replay get the captured final code? None when the capture holds no final response."""
        if self.captured_final is None:
            return None
        return self.exchange.final is not None and self.exchange.final.code == self.captured_final.code

    def to_json(self) -> dict[str, Any]:
        captured = self.captured_final
        return {
            "invite": {
                "first_line": self.invite.first_line,
                "src": f"{self.invite.src[0]}:{self.invite.src[1]}",
                "dst": f"{self.invite.dst[0]}:{self.invite.dst[1]}",
                "transport": self.invite.transport,
                "bytes": len(self.invite.data),
            },
            "as_captured": self.as_captured,
            "rewritten": [str(f) for f in self.rewritten],
            "captured_final": None
            if captured is None
            else {"code": captured.code, "reason": captured.reason},
            "matches_capture": self.matches_capture,
            "exchange": self.exchange.to_json(),
            "logs": [str(line) for line in self.related],
            "cause": self.diagnosis.cause,
            "outcome": self.diagnosis.outcome,
            "evidence": list(self.diagnosis.evidence),
            "notes": self.notes,
        }


def _port_free(ip: str, port: int, transport: str) -> bool:
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True


def choose_port(invite: CapturedMessage, source_ip: str, refresh: bool) -> tuple[int, str | None]:
    """The local port to send from, and a note when the captured one cannot be used."""
    if refresh or invite.transport != "udp":
        return 0, None  # the Via is rewritten (refresh), or answers come back on the connection (TCP)
    port = invite.src[1]
    if not port:
        try:  # a pasted message has no capture addresses: the Via names the port it expects answers on
            msg = parse_message(invite.data)
            port = (msg.top_via.port or 5060) if isinstance(msg, Request) else 0
        except SipParseError:
            port = 0
    if port and _port_free(source_ip, port, "udp"):
        return port, None
    if port:
        return 0, f"captured source port {port} is busy on {source_ip}; sending from another port"
    return 0, None


def _dialed(data: bytes) -> str | None:
    try:
        msg = parse_message(data)
        return msg.uri.user if isinstance(msg, Request) else None
    except SipParseError:
        return None


def _drop_regexes(profile: Profile, data: bytes, source_ip: str, source_port: int) -> list[re.Pattern[str]]:
    """The log lines that prove a silent drop (the profile's), so silence ends the moment the stack logs
    it; a placeholder the sent bytes give no value for matches anything."""
    values: dict[str, str | None] = {"source_ip": source_ip, "source_port": str(source_port or "") or None}
    try:
        message = parse_message(data)
        if isinstance(message, Request):
            values.update(request_values(message))
    except SipParseError:
        pass
    return [
        re.compile(fill(p.pattern, values, loose=True))
        for outcome in profile.drop_outcomes()
        for p in outcome.drop_lines
    ]


async def _settle(hub: LogHub, since: float) -> list[LogLine]:
    """Every line since ``since`` once the logs have been quiet for LOG_QUIET (LOG_DEADLINE at most)."""
    cursor = hub.cursor(since)
    deadline = time.time() + LOG_DEADLINE
    while await cursor.next(min(time.time() + LOG_QUIET, deadline)) is not None:
        pass
    return hub.lines(since)


async def replay_invite(
    invite: CapturedMessage,
    target: Target,
    *,
    source_ip: str,
    source_port: int | None = None,
    refresh: bool = False,
    timeout: float = 5.0,
    seed: int | None = None,
    captured_final: Response | None = None,
) -> ReplayResult:
    """Send ``invite`` to the target's SBC from ``source_ip`` (port: ``source_port``, else the captured
    one when free), through its gate, and gather the exchange, its logs and the cause its profile names.
    The bytes are not mutated by the harness: the gate judges them as they are (harness.sip.wellformed)."""
    sbc = target.sbc
    if not refresh:
        foreign = foreign_addresses(invite.data)
        if foreign:
            listed = ", ".join(str(f) for f in foreign)
            raise ReplayRefused(
                f"the captured INVITE names non-loopback addresses ({listed}); a stack could send there. "
                "Use --refresh to rewrite them to the local carrier address."
            )
    transport = invite.transport if invite.transport in ("udp", "tcp") else "udp"
    notes: list[str] = []
    if transport != invite.transport:
        notes.append(f"captured over {invite.transport}; replayed over udp")
    port, note = (source_port, None) if source_port else choose_port(invite, source_ip, refresh)
    notes += [note] if note else []
    ua = CarrierUA(source_ip, port, transport, gate=target.gate, timers=Timers(t1=0.5))
    try:
        data, rewritten = invite.data, list[Foreign]()
        if refresh:
            data = refresh_invite(
                data, target=sbc, local=(source_ip, ua.advertised_port), transport=transport, seed=seed
            )
            rewritten = foreign_addresses(invite.data)  # refresh and rewrite together replace them all
            data, _ = rewrite_foreign(data, source_ip)
            left = foreign_addresses(data)
            if left:
                raise ReplayRefused(
                    f"still names non-loopback addresses after --refresh: {', '.join(map(str, left))}"
                )
        exchange, lines = await _send(ua, data, target, timeout)
    finally:
        ua.close()
    related = correlate(lines, exchange).related if lines else []
    diagnosis = diagnose_call(exchange, lines, target.profile)
    sent_first = exchange.sent[0].data if exchange.sent else b""
    return ReplayResult(
        invite=invite,
        sent=data,
        exchange=exchange,
        as_captured=sent_first == invite.data,
        rewritten=rewritten,
        notes=notes,
        log_lines=lines,
        related=related,
        diagnosis=diagnosis,
        captured_final=captured_final,
    )


async def _send(ua: CarrierUA, data: bytes, target: Target, timeout: float) -> tuple[Exchange, list[LogLine]]:
    sources = target.log_sources()
    async with LogHub(sources) as hub:
        since = time.time()
        drops = _drop_regexes(target.profile, data, ua.local_ip, ua.local_port) if sources else []

        async def send(early_end: asyncio.Event | None) -> Exchange:
            return await ua.invite(
                data, target.sbc, timeout=timeout, early_end=early_end, dialed=_dialed(data), mutated=False
            )

        def proves_drop(line: LogLine) -> bool:
            return any(r.search(line.raw) for r in drops)

        exchange = await send_watching(
            send, hub, proves_drop if drops else None, since=since, deadline=since + timeout
        )
        lines = await _settle(hub, since) if sources else []
    return exchange, lines


__all__ = ["ReplayRefused", "ReplayResult", "choose_port", "replay_invite"]

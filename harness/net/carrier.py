"""The simulated carrier: sends one crafted INVITE (or OPTIONS, or raw bytes) from a chosen source
address, runs the client transactions over a real transport and records everything in an Exchange.

The protocol rules live in :mod:`harness.sip.transaction` (sans-I/O); this module is the asyncio
adaptor: it waits for the next message or the next timer, whichever comes first, and performs the
transaction's actions. Every wait ends at the caller's deadline or when ``early_end`` is set.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

from harness.net.exchange import Address, Exchange, WireEvent
from harness.net.portlock import SourcePortLock
from harness.net.transport import (
    Packet,
    PeerClosed,
    TargetUnreachable,
    Transport,
    TransportError,
    open_transport,
)
from harness.sip import builder
from harness.sip.digest import Credentials, authorization_value
from harness.sip.errors import SipParseError
from harness.sip.headers import split_commas
from harness.sip.message import Request, Response, parse_message
from harness.sip.transaction import (
    Action,
    Deliver,
    InviteClientTransaction,
    NonInviteClientTransaction,
    Send,
    State,
    Terminated,
    TimedOut,
    Timers,
)

TRANSPORTS = ("udp", "tcp", "tls")
CANCEL_GRACE = 2.0  # seconds to wait for the 487 after a CANCEL sent at the deadline
ClientTransaction = InviteClientTransaction | NonInviteClientTransaction


@dataclass(frozen=True)
class _EarlyEnd:
    """``early_end`` was set: silence is proven, stop waiting."""


@dataclass(frozen=True)
class _Deadline:
    """The wait reached its end without a message."""


def _parse_request(data: bytes) -> Request | None:
    try:
        msg = parse_message(data)
    except SipParseError:
        return None
    return msg if isinstance(msg, Request) else None


def _call_id(msg: Request | None) -> str | None:
    return None if msg is None else msg.get("call-id")


# What a wait can end with: a transaction's actions (a matched response or a fired timer), a response
# no transaction owns, a request from the peer, the stream's end, early_end, or the deadline.
Event = tuple[ClientTransaction, list[Action]] | Response | Request | PeerClosed | _EarlyEnd | _Deadline
DEFAULT_TIMERS = Timers()


class _Session:
    """One exchange over one open transport: records the wire, waits with deadlines, runs transactions."""

    def __init__(
        self, transport: Transport, exchange: Exchange, t0: float, early_end: asyncio.Event | None
    ) -> None:
        self.transport = transport
        self.exchange = exchange
        self.t0 = t0
        self.early_end = early_end
        self.txns: list[ClientTransaction] = []

    async def send(self, data: bytes) -> None:
        # the time before the send: the stack may answer before this thread runs again (a model in
        # this process, a loaded machine), and a delay measured from a late stamp looks too short
        now, wall = time.monotonic(), time.time()
        await self.transport.send(data)
        self.exchange.events.append(
            WireEvent(
                "sent",
                now - self.t0,
                wall,
                self.transport.local,
                self.transport.remote,
                self.transport.name,
                data,
            )
        )

    async def start(self, txn: ClientTransaction) -> None:
        self.txns.append(txn)
        await self.perform(txn.start(time.monotonic()))

    async def perform(self, actions: list[Action]) -> list[Action]:
        """Send what the transaction asks to send; return the other actions for the caller."""
        rest: list[Action] = []
        for action in actions:
            if isinstance(action, Send):
                await self.send(action.data)
            else:
                rest.append(action)
        return rest

    async def next_event(
        self, until: float, *, honour_early_end: bool = True
    ) -> (
        tuple[ClientTransaction | None, list[Action]]
        | Response
        | Request
        | PeerClosed
        | _EarlyEnd
        | _Deadline
    ):
        """Wait for the next thing that happens before ``until`` (monotonic): a transaction's actions
        (a matched response or a fired timer), a response no transaction owns, a request from the peer,
        the stream's end, ``early_end`` or the deadline. Unparsable bytes are recorded and skipped."""
        while True:
            now = time.monotonic()
            timer = min((d for t in self.txns if (d := t.next_deadline) is not None), default=None)
            wake = until if timer is None else min(until, timer)
            if now >= wake:
                if now >= until and (timer is None or timer > now):
                    return _Deadline()
                for txn in self.txns:
                    deadline = txn.next_deadline
                    if deadline is not None and deadline <= now:
                        return txn, await self.perform(txn.tick(now))
            incoming = await self._receive(wake - now, honour_early_end)
            if incoming is None:
                continue
            if isinstance(incoming, PeerClosed | _EarlyEnd):
                return incoming
            self.exchange.events.append(
                WireEvent(
                    "received",
                    incoming.mono - self.t0,
                    incoming.wall,
                    incoming.src,
                    incoming.dst,
                    self.transport.name,
                    incoming.data,
                )
            )
            try:
                msg = parse_message(incoming.data)
            except SipParseError as exc:
                self.exchange.notes.append(f"unparsable message received: {exc}")
                continue
            if isinstance(msg, Request):
                return msg
            for txn in self.txns:
                if txn.state is not State.TERMINATED and txn.matches(msg):
                    return txn, await self.perform(txn.receive(msg, incoming.mono))
            return msg

    async def _receive(
        self, timeout: float, honour_early_end: bool
    ) -> Packet | PeerClosed | _EarlyEnd | None:
        if not honour_early_end or self.early_end is None:
            return await self.transport.receive(timeout)
        if self.early_end.is_set():
            return _EarlyEnd()
        receiving = asyncio.create_task(self.transport.receive(timeout))
        ending = asyncio.create_task(self.early_end.wait())
        try:
            done, _ = await asyncio.wait({receiving, ending}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (receiving, ending):
                task.cancel()
        if receiving in done:
            return receiving.result()
        return _EarlyEnd()


class CarrierUA:
    """A carrier's user agent bound to ``local_ip`` (any 127.x.y.z) and ``local_port``.

    For UDP the SIP socket is bound once, here, and held until :meth:`close`: every message of this UA
    (and its Via/Contact, see :attr:`advertised_port`) uses the same source port, and no other process
    can take that port between two exchanges. For TCP/TLS 0 means a new ephemeral port per connection.
    A fixed ``local_port`` is shared with other harness processes through
    :class:`~harness.net.portlock.SourcePortLock`: this UA waits for it rather than failing to bind.
    A local RTP socket is opened on ``local_ip`` at once so the SDP offer can name a real port
    (:attr:`rtp_port`); :meth:`close` releases it all.
    """

    def __init__(
        self,
        local_ip: str,
        local_port: int = 0,
        transport: str = "udp",
        *,
        tls_context: ssl.SSLContext | None = None,
        timers: Timers = DEFAULT_TIMERS,
        server_hostname: str | None = None,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r} (udp, tcp or tls)")
        if transport == "tls" and tls_context is None:
            raise ValueError("transport tls needs tls_context")
        self.local_ip = local_ip
        self.transport = transport
        self.tls_context = tls_context
        self.timers = timers
        self.server_hostname = server_hostname
        self._port_lock = SourcePortLock(local_ip, local_port, transport) if local_port else None
        self._sip: socket.socket | None = None
        try:
            if transport == "udp":
                self._sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self._sip.bind((local_ip, local_port))
                local_port = int(self._sip.getsockname()[1])
            self.local_port = local_port
            self._rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._rtp.bind((local_ip, 0))
            self._rtp.setblocking(False)
        except BaseException:
            self._release_sip()
            raise

    @property
    def rtp_port(self) -> int:
        """The port of this UA's RTP socket, for the SDP offer (``InviteSpec(rtp_port=ua.rtp_port)``)."""
        return int(self._rtp.getsockname()[1])

    @property
    def advertised_port(self) -> int:
        """The port to write in Via/Contact: the bound port, or 5060 for an ephemeral TCP/TLS port."""
        return self.local_port or 5060

    def spec(self, target: Address, **fields: object) -> builder.InviteSpec:
        """An InviteSpec from this UA to ``target`` with its address, transport and RTP port filled in."""
        base: dict[str, object] = {
            "target_host": target[0],
            "target_port": target[1],
            "transport": self.transport,
            "local_ip": self.local_ip,
            "local_port": self.advertised_port,
            "rtp_port": self.rtp_port,
        }
        base.update(fields)
        return builder.InviteSpec(**base)  # type: ignore[arg-type]

    def close(self) -> None:
        self._rtp.close()
        self._release_sip()

    def _release_sip(self) -> None:
        if self._sip is not None:
            self._sip.close()
            self._sip = None
        if self._port_lock is not None:
            self._port_lock.release()
            self._port_lock = None

    async def __aenter__(self) -> CarrierUA:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- public operations ------------------------------------------------------------------------
    async def invite(
        self,
        message: Request | bytes,
        target: Address,
        *,
        timeout: float = 5.0,
        credentials: Credentials | None = None,
        early_end: asyncio.Event | None = None,
        dialed: str | None = None,
        bye_after: float | None = 0.0,
        cancel_after_provisional: bool = False,
        seed: int | None = None,
    ) -> Exchange:
        """Send an INVITE and follow it to its outcome (see the module docs and docs/carrier.md).

        A parsable INVITE runs the INVITE client transaction; bytes that do not parse are sent once.
        Never raises for network trouble: it becomes the Exchange's ``outcome``.
        """
        data = message.to_bytes() if isinstance(message, Request) else bytes(message)
        request = message if isinstance(message, Request) else _parse_request(data)

        async def run(session: _Session) -> None:
            if request is None:
                await session.send(data)
                await self._await_final(session, time.monotonic() + timeout)
            else:
                await self._run_invite(
                    session, request, timeout, credentials, bye_after, cancel_after_provisional, seed
                )

        method = request.method if request is not None else "INVITE"
        return await self._exchange(method, _call_id(request), target, timeout, early_end, dialed, seed, run)

    async def options(self, target: Address, *, timeout: float = 5.0, seed: int | None = None) -> Exchange:
        """An OPTIONS ping (Kazoo's Kamailio answers 200 "Rawr!!")."""
        fields: dict[str, object] = {"rtp_port": None}
        if seed is not None:
            fields["seed"] = seed
        request = builder.build_options(self.spec(target, **fields))

        async def run(session: _Session) -> None:
            txn = NonInviteClientTransaction(request, reliable=session.transport.reliable, timers=self.timers)
            await session.start(txn)
            await self._await_final(session, time.monotonic() + timeout)

        return await self._exchange("OPTIONS", request.call_id, target, timeout, None, None, seed, run)

    async def send_raw(
        self,
        data: bytes,
        target: Address,
        *,
        timeout: float = 5.0,
        early_end: asyncio.Event | None = None,
    ) -> Exchange:
        """Send ``data`` once, as is (no retransmission, no ACK), and wait for a final response."""
        request = _parse_request(data)
        method = request.method if request is not None else "RAW"

        async def run(session: _Session) -> None:
            await session.send(data)
            await self._await_final(session, time.monotonic() + timeout)

        return await self._exchange(method, _call_id(request), target, timeout, early_end, None, None, run)

    # -- internals --------------------------------------------------------------------------------
    async def _exchange(
        self,
        method: str,
        call_id: str | None,
        target: Address,
        timeout: float,
        early_end: asyncio.Event | None,
        dialed: str | None,
        seed: int | None,
        run: Callable[[_Session], Awaitable[None]],
    ) -> Exchange:
        exchange = Exchange(
            call_id=call_id,
            method=method,
            transport=self.transport,
            local=(self.local_ip, self.local_port),
            remote=target,
            started_wall=time.time(),
            dialed=dialed,
            seed=seed,
        )
        t0 = time.monotonic()
        transport: Transport | None = None
        try:
            transport = await open_transport(
                self.transport,
                (self.local_ip, self.local_port),
                target,
                ssl_context=self.tls_context,
                server_hostname=self.server_hostname,
                connect_timeout=timeout,
                udp_socket=self._sip.dup() if self._sip is not None else None,
            )
            exchange.local = transport.local
            await run(_Session(transport, exchange, t0, early_end))
        except TargetUnreachable as exc:
            exchange.outcome, exchange.error = "unreachable", str(exc)
        except (TransportError, OSError) as exc:
            exchange.outcome, exchange.error = "error", str(exc) or type(exc).__name__
        finally:
            if transport is not None:
                transport.close()
                await transport.wait_closed()  # the next exchange may bind the same source port
            exchange.duration = time.monotonic() - t0
        return exchange

    async def _await_final(self, session: _Session, until: float) -> None:
        """Wait for any final response (or the stream's end, ``early_end``, the deadline)."""
        exchange = session.exchange
        while True:
            event = await session.next_event(until)
            if _ended(exchange, event):
                return
            responses: list[Response] = []
            if isinstance(event, Response):
                responses = [event]
            elif isinstance(event, tuple):
                if any(isinstance(a, TimedOut) for a in event[1]):
                    exchange.outcome = "silence"
                    return
                responses = [a.response for a in event[1] if isinstance(a, Deliver)]
            for response in responses:
                if response.code < 200:
                    exchange.provisional.append(response)
                else:
                    exchange.final, exchange.outcome = response, "response"
                    return

    async def _run_invite(
        self,
        session: _Session,
        request: Request,
        timeout: float,
        credentials: Credentials | None,
        bye_after: float | None,
        cancel_after_provisional: bool,
        seed: int | None,
    ) -> None:
        exchange = session.exchange
        until = time.monotonic() + timeout
        rng = random.Random(seed)
        reliable = session.transport.reliable
        invite_txn = InviteClientTransaction(request, reliable=reliable, timers=self.timers)
        await session.start(invite_txn)
        cancelled = False
        while True:
            event = await session.next_event(until)
            if _ended(exchange, event):
                if invite_txn.state is State.PROCEEDING and not cancelled:
                    grace = 0.0 if exchange.ended_early else min(timeout, CANCEL_GRACE)
                    await self._cancel_pending(session, invite_txn, grace)
                return
            if not isinstance(event, tuple):
                continue  # a stray response or a request from the peer: recorded, nothing to do
            txn, actions = event
            if txn is not invite_txn:
                continue  # the CANCEL's own transaction: its 200 is recorded, the INVITE's 487 matters
            for action in actions:
                if isinstance(action, TimedOut):
                    exchange.outcome = "silence"
                    return
                if not isinstance(action, Deliver):
                    continue
                response = action.response
                if response.code < 200:
                    exchange.provisional.append(response)
                    # a caller hangs up on ringing (18x); 100 Trying is only the next hop's receipt
                    if cancel_after_provisional and not cancelled and response.code > 100:
                        cancelled = await self._start_cancel(session, invite_txn.request)
                    continue
                exchange.final, exchange.outcome = response, "response"
                if response.code < 300:
                    await self._confirm_and_hang_up(session, invite_txn.request, response, bye_after, timeout)
                    return
                retry = self._authenticated_retry(exchange, invite_txn.request, response, credentials, rng)
                if retry is None:
                    return
                exchange.challenged = True
                exchange.final, exchange.outcome = None, "silence"
                invite_txn = InviteClientTransaction(retry, reliable=reliable, timers=self.timers)
                await session.start(invite_txn)
                until = time.monotonic() + timeout

    async def _start_cancel(self, session: _Session, invite: Request) -> bool:
        try:
            cancel = builder.build_cancel(invite)
        except (ValueError, SipParseError) as exc:
            session.exchange.notes.append(f"no CANCEL sent: {exc}")
            return True
        txn = NonInviteClientTransaction(cancel, reliable=session.transport.reliable, timers=self.timers)
        await session.start(txn)
        return True

    async def _cancel_pending(
        self, session: _Session, invite_txn: InviteClientTransaction, grace: float
    ) -> None:
        """The wait ended while the INVITE rings: CANCEL it so the stack does not ring on, and ACK the
        487 (the transaction does). The exchange's outcome stays what the deadline made it."""
        exchange = session.exchange
        exchange.notes.append("CANCEL sent: no final response by the deadline")
        await self._start_cancel(session, invite_txn.request)
        until = time.monotonic() + grace
        while True:
            event = await session.next_event(until, honour_early_end=False)
            if isinstance(event, PeerClosed | _Deadline | _EarlyEnd):
                return
            if not isinstance(event, tuple) or event[0] is not invite_txn:
                continue
            for action in event[1]:
                if isinstance(action, Deliver) and action.response.code >= 200:
                    exchange.notes.append(
                        f"after the CANCEL: {action.response.code} {action.response.reason}"
                    )
                    if action.response.code < 300:  # answered at the same moment: hang up
                        await self._confirm_and_hang_up(
                            session, invite_txn.request, action.response, 0.0, grace
                        )
                    return
                if isinstance(action, TimedOut | Terminated):
                    return

    def _authenticated_retry(
        self,
        exchange: Exchange,
        invite: Request,
        response: Response,
        credentials: Credentials | None,
        rng: random.Random,
    ) -> Request | None:
        """The INVITE again with credentials for a 401/407 (RFC 3261 §22.2): new CSeq and branch,
        same Call-ID and tags. None when there is nothing (more) to answer."""
        if credentials is None or exchange.challenged or response.code not in (401, 407):
            return None
        try:
            challenge = response.proxy_authenticate if response.code == 407 else response.www_authenticate
            if challenge is None:
                exchange.notes.append(f"{response.code} without a challenge header: not answered")
                return None
            value = authorization_value(
                challenge, invite.method, invite.uri_text, credentials, cnonce=f"{rng.getrandbits(64):016x}"
            )
            header = "Proxy-Authorization" if response.code == 407 else "Authorization"
            cseq = invite.cseq
            retry = invite.replace_header("CSeq", f"{cseq.number + 1} {cseq.method}")
            retry = retry.remove_first("Via").add_header("Via", _rebranched_top_via(invite), top=True)
            retry = retry.remove_headers(header).insert_header_before("Content-Length", header, value)
        except (ValueError, SipParseError) as exc:
            exchange.notes.append(f"challenge not answered: {exc}")
            return None
        assert isinstance(retry, Request)
        return retry

    async def _confirm_and_hang_up(
        self, session: _Session, invite: Request, ok: Response, bye_after: float | None, timeout: float
    ) -> None:
        """ACK the 2xx (new branch, RFC 3261 §13.2.2.4), answer its retransmissions with the same ACK,
        and send a BYE after ``bye_after`` seconds (never when None) and wait for its final."""
        exchange = session.exchange
        try:
            ack = builder.build_ack(invite, ok).to_bytes()
        except (ValueError, SipParseError) as exc:
            exchange.notes.append(f"2xx not acknowledged: {exc}")
            return
        await session.send(ack)
        if bye_after is None:
            return
        await self._absorb_2xx(session, ack, time.monotonic() + bye_after)
        try:
            cseq = invite.cseq.number + 1
            bye = builder.build_bye(invite, ok, cseq)
        except (ValueError, SipParseError) as exc:
            exchange.notes.append(f"no BYE sent: {exc}")
            return
        bye_txn = NonInviteClientTransaction(bye, reliable=session.transport.reliable, timers=self.timers)
        await session.start(bye_txn)
        until = time.monotonic() + timeout
        while True:
            event = await session.next_event(until, honour_early_end=False)
            if isinstance(event, PeerClosed | _Deadline | _EarlyEnd):
                if isinstance(event, _Deadline):
                    exchange.notes.append("no final response to the BYE")
                return
            if _is_2xx_to_invite(event):
                await session.send(ack)
                continue
            if isinstance(event, tuple) and event[0] is bye_txn:
                if any(isinstance(a, Deliver) and a.response.code >= 200 for a in event[1]):
                    return
                if any(isinstance(a, TimedOut | Terminated) for a in event[1]):
                    exchange.notes.append("no final response to the BYE")
                    return

    async def _absorb_2xx(self, session: _Session, ack: bytes, until: float) -> None:
        """Until ``until``, answer retransmitted 2xx with the ACK (the peer did not get it)."""
        while True:
            event = await session.next_event(until, honour_early_end=False)
            if isinstance(event, _Deadline | PeerClosed | _EarlyEnd):
                return
            if _is_2xx_to_invite(event):
                await session.send(ack)


def _is_2xx_to_invite(event: object) -> bool:
    """A retransmitted 2xx (its transaction is over): the peer did not get our ACK."""
    if not isinstance(event, Response) or not 200 <= event.code < 300:
        return False
    try:
        return event.cseq.method == "INVITE"
    except SipParseError:
        return False


def _ended(exchange: Exchange, event: object) -> bool:
    """Apply the events that end an exchange without a final response; True when it ended."""
    if isinstance(event, _EarlyEnd):
        exchange.outcome, exchange.ended_early = "silence", True
        return True
    if isinstance(event, _Deadline):
        exchange.outcome = "silence"
        return True
    if isinstance(event, PeerClosed):
        exchange.outcome, exchange.error = "closed", event.reason
        return True
    return False


_BRANCH = re.compile(r"(;\s*branch\s*=\s*)[^;,\s]*", re.I)


def _rebranched_top_via(request: Request) -> str:
    """The request's top Via value with a new branch: a new transaction from the same hop."""
    vias = split_commas(request.values("via")[0]) if request.has("via") else []
    if not vias:
        raise ValueError("the INVITE has no Via")
    branch = builder.new_branch()
    if _BRANCH.search(vias[0]):
        return _BRANCH.sub(lambda m: m.group(1) + branch, vias[0], count=1)
    return f"{vias[0]};branch={branch}"

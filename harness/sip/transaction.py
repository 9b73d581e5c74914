"""SIP client transactions (RFC 3261 §17.1) as state machines driven by bytes and time.

Nothing here touches a socket or a clock: the caller passes ``now`` (any monotonic seconds) to
``start``/``receive``/``tick`` and performs the returned actions. ``next_deadline`` says when ``tick``
must be called next. The asyncio adaptor is :mod:`harness.net.carrier`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from harness.sip.errors import SipParseError
from harness.sip.headers import split_commas
from harness.sip.message import Request, Response, SipMessage


@dataclass(frozen=True)
class Timers:
    """RFC 3261 timer values in seconds (§17.1.1.1, table 4). Shrink them in tests."""

    t1: float = 0.5
    t2: float = 4.0
    timer_b: float | None = None  # INVITE transaction timeout; None = 64*T1
    timer_d: float = 32.0  # wait for retransmitted finals after a non-2xx (unreliable transports)
    timer_f: float | None = None  # non-INVITE transaction timeout; None = 64*T1
    t4: float = 5.0  # timer K: absorb retransmitted non-INVITE finals (unreliable transports)

    @property
    def b(self) -> float:
        return 64 * self.t1 if self.timer_b is None else self.timer_b

    @property
    def f(self) -> float:
        return 64 * self.t1 if self.timer_f is None else self.timer_f


# -- actions the caller performs -------------------------------------------------------------------
@dataclass(frozen=True)
class Send:
    """Put these bytes on the transport."""

    data: bytes


@dataclass(frozen=True)
class Deliver:
    """Hand this response to the transaction user."""

    response: Response


@dataclass(frozen=True)
class TimedOut:
    """Timer B (INVITE) or F (non-INVITE) fired: no final response came."""


@dataclass(frozen=True)
class Terminated:
    """The transaction is over; drop it."""


Action = Send | Deliver | TimedOut | Terminated


class State(Enum):
    CALLING = "Calling"  # INVITE only
    TRYING = "Trying"  # non-INVITE only
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


def _branch_of(msg: SipMessage) -> str | None:
    try:
        return msg.top_via.branch
    except SipParseError:
        return None


def _cseq_method(msg: SipMessage) -> str | None:
    try:
        return msg.cseq.method
    except SipParseError:
        return None


class _ClientTransaction:
    """What both client transactions share: the request, its branch and response matching."""

    method: str

    def __init__(self, request: Request, *, reliable: bool, timers: Timers) -> None:
        self.request = request
        self.reliable = reliable
        self.timers = timers
        self.branch = _branch_of(request)
        self.method = request.method
        self._deadlines: dict[str, float] = {}

    @property
    def next_deadline(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def _terminate(self) -> list[Action]:
        self.state = State.TERMINATED
        self._deadlines.clear()
        return [Terminated()]

    def matches(self, response: Response) -> bool:
        """RFC 3261 §17.1.3: same top Via branch and same CSeq method. A side that cannot be read
        (mutated request, broken response) does not rule the response out: the harness wants to see it."""
        branch = _branch_of(response)
        if self.branch is not None and branch is not None and branch != self.branch:
            return False
        method = _cseq_method(response)
        return method is None or method == self.method


class InviteClientTransaction(_ClientTransaction):
    """RFC 3261 §17.1.1 (figure 5). Timer A retransmits over unreliable transports at T1, 2T1, 4T1...
    (an INVITE's interval is not capped at T2); timer B ends the Calling state; a non-2xx final is ACKed
    here (same branch, To tag of the response) and absorbed during timer D; a 2xx ends the transaction
    because its ACK belongs to the transaction user (new branch)."""

    def __init__(self, invite: Request, *, reliable: bool, timers: Timers = Timers()) -> None:
        super().__init__(invite, reliable=reliable, timers=timers)
        self.state = State.CALLING
        self._interval = timers.t1
        self._ack: bytes | None = None

    @property
    def ack(self) -> bytes | None:
        """The ACK sent for a non-2xx final, once there is one."""
        return self._ack

    def start(self, now: float) -> list[Action]:
        self._deadlines["B"] = now + self.timers.b
        if not self.reliable:
            self._deadlines["A"] = now + self._interval
        return [Send(self.request.to_bytes())]

    def receive(self, response: Response, now: float) -> list[Action]:
        if self.state is State.TERMINATED or not self.matches(response):
            return []
        code = response.code
        if self.state in (State.CALLING, State.PROCEEDING):
            if code < 200:
                self.state = State.PROCEEDING
                self._deadlines.pop("A", None)
                self._deadlines.pop("B", None)
                return [Deliver(response)]
            if code < 300:
                return [Deliver(response), *self._terminate()]
            self._ack = ack_for_non_2xx(self.request, response)
            self.state = State.COMPLETED
            self._deadlines.clear()
            if self.reliable:
                return [Send(self._ack), Deliver(response), *self._terminate()]
            self._deadlines["D"] = now + self.timers.timer_d
            return [Send(self._ack), Deliver(response)]
        if self.state is State.COMPLETED and code >= 300 and self._ack is not None:
            return [Send(self._ack)]  # a retransmitted final: our ACK was lost
        return []

    def tick(self, now: float) -> list[Action]:
        out: list[Action] = []
        if self.state is State.CALLING:
            while "A" in self._deadlines and self._deadlines["A"] <= now < self._deadlines["B"]:
                out.append(Send(self.request.to_bytes()))
                self._interval *= 2
                self._deadlines["A"] += self._interval
            if self._deadlines["B"] <= now:
                out += [TimedOut(), *self._terminate()]
        elif self.state is State.COMPLETED and self._deadlines.get("D", now + 1) <= now:
            out += self._terminate()
        return out


class NonInviteClientTransaction(_ClientTransaction):
    """RFC 3261 §17.1.2 (figure 6) for OPTIONS, BYE, CANCEL: timer E retransmits at T1, 2T1, ... capped
    at T2 (at T2 once a provisional came); timer F times out; timer K absorbs retransmitted finals."""

    def __init__(self, request: Request, *, reliable: bool, timers: Timers = Timers()) -> None:
        super().__init__(request, reliable=reliable, timers=timers)
        self.state = State.TRYING
        self._interval = timers.t1

    def start(self, now: float) -> list[Action]:
        self._deadlines["F"] = now + self.timers.f
        if not self.reliable:
            self._deadlines["E"] = now + self._interval
        return [Send(self.request.to_bytes())]

    def receive(self, response: Response, now: float) -> list[Action]:
        if self.state not in (State.TRYING, State.PROCEEDING) or not self.matches(response):
            return []
        if response.code < 200:
            self.state = State.PROCEEDING
            return [Deliver(response)]
        self.state = State.COMPLETED
        self._deadlines.clear()
        if self.reliable:
            return [Deliver(response), *self._terminate()]
        self._deadlines["K"] = now + self.timers.t4
        return [Deliver(response)]

    def tick(self, now: float) -> list[Action]:
        out: list[Action] = []
        if self.state in (State.TRYING, State.PROCEEDING):
            while "E" in self._deadlines and self._deadlines["E"] <= now < self._deadlines["F"]:
                out.append(Send(self.request.to_bytes()))
                if self.state is State.TRYING:
                    self._interval = min(2 * self._interval, self.timers.t2)
                else:
                    self._interval = self.timers.t2
                self._deadlines["E"] += self._interval
            if self._deadlines["F"] <= now:
                out += [TimedOut(), *self._terminate()]
        elif self.state is State.COMPLETED and self._deadlines.get("K", now + 1) <= now:
            out += self._terminate()
        return out


def ack_for_non_2xx(invite: Request, response: Response) -> bytes:
    """RFC 3261 §17.1.1.3: the ACK a client transaction sends for a 300-699.

    Request-URI, Call-ID, From, the top Via and Route come from the INVITE; To (with its tag) from the
    response; CSeq has the INVITE's number with method ACK. Raw header values are copied rather than
    re-parsed, so an INVITE the harness mutated on purpose still gets an ACK with what it had.
    """
    eol = invite.start_end.decode() or "\r\n"
    lines = [f"ACK {invite.uri_text} {invite.sip_version or 'SIP/2.0'}"]
    vias = invite.values("via")
    if vias:
        lines.append(f"Via: {_top_via_value(vias[0])}")
    lines.append("Max-Forwards: 70")
    lines += [f"Route: {v}" for v in invite.values("route")]
    for name in ("from", "to", "call-id"):
        source = response if name == "to" else invite
        value = source.get(name) or invite.get(name)
        if value is not None:
            lines.append(f"{_PRETTY[name]}: {value}")
    lines.append(f"CSeq: {_cseq_number(invite, response)} ACK")
    lines.append("Content-Length: 0")
    return (eol.join(lines) + eol + eol).encode("utf-8", "surrogateescape")


_PRETTY = {"from": "From", "to": "To", "call-id": "Call-ID"}


def _top_via_value(value: str) -> str:
    try:
        parts = split_commas(value)
    except SipParseError:
        return value
    return parts[0] if parts else value


def _cseq_number(invite: Request, response: Response) -> int:
    for msg in (invite, response):
        try:
            return msg.cseq.number
        except SipParseError:
            continue
    return 1

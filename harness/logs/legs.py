"""The stack's own legs of one test call: HEP-captured SIP messages tied to the exchange, named by hop.

A *leg* is one captured message with the roles of its two ends: ``carrier`` (the exchange's own
address), ``sbc`` (the target's SBC nodes), ``media`` (its media role), ``other``. "The SBC received the
INVITE" is a carrier→sbc INVITE, "relayed to media" an sbc→media one, "FreeSWITCH answered 407" a
media→sbc 407. A message belongs to the call by its Call-ID, by X-AUTH-IP/X-AUTH-PORT naming the
carrier (the SBC's relayed copy: the call a media server renames is still found through it, then its
Call-ID ties the rest), or, for a message without a Call-ID, by the carrier's address as one end.

``check_legs`` decides :class:`LegExpectation` s as early as the evidence allows, like
``harness.logs.assertions.check``; ``parity`` compares what the carrier put on the wire with what the
SBC captured: every message once, byte for byte.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from harness.kazoo.profile import LEG_ROLES as ROLES  # the one spelling of the roles (a profile's `capture`)
from harness.logs.hep_source import HepLine, first_line
from harness.logs.hub import LogHub
from harness.net.exchange import Address, Exchange, WireEvent
from harness.sip.errors import SipParseError
from harness.sip.message import Request, Response, parse_message

# what the capture agent's core reads of each message sent, (data, transport, stream) in order: the pieces
# it mirrors and why that is not the message as sent (harness.kazoo.siptrace.core_reads)
CoreReads = Callable[[Sequence[tuple[bytes, str, object]]], "list[tuple[tuple[bytes, ...], str | None]]"]
_STATUS = re.compile(r"^SIP/\d+\.\d+ (\d{3})")
_METHOD = re.compile(r"^([A-Za-z]+) \S+ SIP/")


@dataclass(frozen=True)
class Roles:
    """Which addresses are whom, for one exchange on one target."""

    carrier: Address
    sbc: frozenset[Address]
    media: frozenset[Address] = frozenset()

    def of(self, address: Address | None) -> str:
        if address is None:
            return "other"
        if address in self.sbc:
            return "sbc"
        if address in self.media:
            return "media"
        if address == self.carrier:
            return "carrier"
        # a carrier on TCP may be seen from another port; the SBC and media ports are known exactly
        known_ips = {a[0] for a in self.sbc | self.media}
        if address[0] == self.carrier[0] and address[0] not in known_ips:
            return "carrier"
        return "other"


@dataclass(frozen=True)
class Leg:
    line: HepLine
    src_role: str
    dst_role: str
    reason: str  # why it belongs to the call: "call-id" | "x-auth-ip" | "carrier address"

    @property
    def data(self) -> bytes:
        return self.line.data

    @property
    def src(self) -> Address | None:
        return self.line.packet.src if self.line.packet else None

    @property
    def dst(self) -> Address | None:
        return self.line.packet.dst if self.line.packet else None

    @property
    def hop(self) -> str:
        return f"{self.src_role}->{self.dst_role}"

    @property
    def captured(self) -> float:
        """The capture agent's time (the harness's receive time when the packet carries none)."""
        packet = self.line.packet
        stamp = packet.timestamp if packet is not None else None
        return stamp if stamp is not None else self.line.received

    @property
    def first_line(self) -> str:
        return first_line(self.data)

    @cached_property
    def message(self) -> Request | Response | None:
        try:
            return parse_message(self.data)
        except SipParseError:
            return None

    @property
    def kind(self) -> str:
        """The method of a request, the status code of a response ("INVITE", "407"), "?" otherwise."""
        if isinstance(self.message, Request):
            return self.message.method
        if isinstance(self.message, Response):
            return str(self.message.code)
        m = _STATUS.match(self.first_line) or _METHOD.match(self.first_line)
        return m.group(1) if m else "?"

    def header(self, name: str) -> str | None:
        return self.message.get(name) if self.message is not None else None

    def describe(self) -> str:
        packet = self.line.packet
        capture = f"capture {packet.capture_id}" if packet and packet.capture_id is not None else "capture ?"
        return f"{self.hop} {self.first_line!r} ({self.line.source}, {capture}, {self.reason})"


def _header_bytes(data: bytes, name: bytes) -> str | None:
    match = re.search(rb"^" + name + rb"[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?$", data, re.I | re.M)
    return match.group(1).decode("utf-8", "replace") if match else None


def _carrier_ties(line: HepLine, carrier: Address) -> bool:
    """An SBC's relayed copy names the carrier in X-AUTH-IP (and X-AUTH-PORT when it adds one)."""
    ip = _header_bytes(line.data, rb"X-AUTH-IP")
    port = _header_bytes(line.data, rb"X-AUTH-PORT")
    return ip == carrier[0] and (port is None or port == str(carrier[1]))


def legs_of(lines: Iterable[HepLine], exchange: Exchange, roles: Roles) -> list[Leg]:
    """The captured SIP messages of ``exchange``, in arrival order."""
    sip = [ln for ln in lines if ln.packet is not None and ln.packet.is_sip]
    call_ids = {exchange.call_id} if exchange.call_id else set()
    renamed = {ln.call_id for ln in sip if _carrier_ties(ln, roles.carrier)} - call_ids
    out = []
    for ln in sip:
        packet = ln.packet
        assert packet is not None
        cid = ln.call_id  # read from the message when the receiver made the line
        if cid is not None and cid in call_ids:
            reason = "call-id"
        elif cid is not None and cid in renamed:
            reason = "x-auth-ip"
        elif cid is None and roles.carrier in (packet.src, packet.dst):
            reason = "carrier address"  # another call from the same address has its own Call-ID
        else:
            continue
        out.append(Leg(ln, roles.of(packet.src), roles.of(packet.dst), reason))
    return out


# -- expectations -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LegExpectation:
    """A leg that must (or must not) be captured. None fields match anything."""

    src: str | None = None  # a role
    dst: str | None = None
    message: str | None = None  # a method ("INVITE"), a status code ("407") or a class ("4xx")
    headers: tuple[tuple[str, str], ...] = ()  # name, regex searched in the value; the header must exist
    count: int | None = None  # None: at least once; N: exactly N
    present: bool = True
    source: str | None = None  # a HEP source's name
    capture_id: int | None = None

    def __post_init__(self) -> None:
        for role in (self.src, self.dst):
            if role is not None and role not in ROLES:
                raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")

    def matches(self, leg: Leg) -> bool:
        if self.src is not None and leg.src_role != self.src:
            return False
        if self.dst is not None and leg.dst_role != self.dst:
            return False
        if self.source is not None and leg.line.source != self.source:
            return False
        packet = leg.line.packet
        if self.capture_id is not None and (packet is None or packet.capture_id != self.capture_id):
            return False
        if self.message is not None and not _kind_matches(self.message, leg.kind):
            return False
        for name, pattern in self.headers:
            value = leg.header(name)
            if value is None or re.search(pattern, value) is None:
                return False
        return True

    def describe(self) -> str:
        what = " ".join(
            part
            for part in (
                f"{self.src or 'any'} -> {self.dst or 'any'}",
                self.message or "any message",
                *(f"with {name} /{pattern}/" for name, pattern in self.headers),
                f"in {self.source}" if self.source else "",
                f"capture {self.capture_id}" if self.capture_id is not None else "",
            )
            if part
        )
        if not self.present:
            return f"never: {what}"
        return f"{'at least once' if self.count is None else f'exactly {self.count}x'}: {what}"


def _kind_matches(wanted: str, kind: str) -> bool:
    wanted = wanted.upper()
    if re.fullmatch(r"[1-6]XX", wanted):
        return kind[:1] == wanted[0] and kind.isdigit()
    return kind.upper() == wanted


@dataclass
class LegVerdict:
    ok: bool
    legs: list[Leg]
    matched: list[tuple[LegExpectation, list[Leg]]] = field(default_factory=list)
    missing: list[LegExpectation] = field(default_factory=list)
    unexpected: list[tuple[LegExpectation, Leg]] = field(default_factory=list)
    wrong_count: list[tuple[LegExpectation, int]] = field(default_factory=list)
    parity: Parity | None = None
    sources: tuple[str, ...] = ()
    decided_early: bool = False
    roles: Roles | None = None
    errors: dict[str, str] = field(default_factory=dict)  # a HEP source that failed (a port taken, ...)

    def explain(self) -> str:
        out = [
            f"captured legs ({', '.join(self.sources) or 'no HEP source'}): "
            + ("met" if self.ok else "NOT met")
        ]
        out += [f"  ok       {e.describe()}  <- {hits[0].describe()}" for e, hits in self.matched]
        out += [f"  MISSING  {e.describe()}" for e in self.missing]
        out += [f"  COUNT    {e.describe()}: seen {n}x" for e, n in self.wrong_count]
        out += [f"  FORBIDDEN {e.describe()}  <- {leg.describe()}" for e, leg in self.unexpected]
        if self.parity is not None:
            out.append(f"  parity with the carrier's view: {self.parity.summary()}")
        out += [f"  source {name} failed: {error}" for name, error in self.errors.items()]
        out.append(f"  legs tied to this call ({len(self.legs)}):")
        out += [f"    {leg.describe()}" for leg in self.legs]
        return "\n".join(out)


@dataclass
class _Tally:
    expectation: LegExpectation
    hits: list[Leg] = field(default_factory=list)

    @property
    def violated(self) -> bool:
        e = self.expectation
        return bool(self.hits) if not e.present else e.count is not None and len(self.hits) > e.count

    @property
    def proven(self) -> bool:
        return self.expectation.present and self.expectation.count is None and bool(self.hits)

    @property
    def ok(self) -> bool:
        e = self.expectation
        if not e.present:
            return not self.hits
        return bool(self.hits) if e.count is None else len(self.hits) == e.count


def _tally(expectations: Sequence[LegExpectation], legs: list[Leg]) -> list[_Tally]:
    return [_Tally(e, [leg for leg in legs if e.matches(leg)]) for e in expectations]


async def check_legs(
    hub: LogHub,
    exchange: Exchange,
    roles: Roles,
    expectations: Sequence[LegExpectation],
    *,
    since: float,
    deadline: float,
    sources: Sequence[str],
    parity_check: bool = False,
    core_reads: CoreReads | None = None,
    quiet: float = 0.05,
) -> LegVerdict:
    """Follow the hub's HEP lines from ``since`` until what must be captured is (every "present"
    expectation, and with ``parity_check`` every carrier<->SBC message), or ``deadline`` (epoch
    seconds) passes; then ``quiet`` seconds more for what must not be (forbidden legs, exact counts,
    copies). A forbidden leg ends the check at once. ``core_reads`` says what the capture can hold of the
    carrier's messages (see ``parity``)."""
    names = set(sources)
    cursor = hub.cursor(since)
    lines: list[HepLine] = []
    settle_at: float | None = None
    early, changed = False, True
    while True:
        if changed:  # only a new captured line can change the legs
            legs = legs_of(lines, exchange, roles)
            tallies = _tally(expectations, legs)
            if any(t.violated for t in tallies):
                early = True
                break
            if settle_at is None and _proven(tallies, exchange, legs, roles, parity_check, core_reads):
                early = True
                settle_at = min(deadline, time.time() + quiet)
            changed = False
        line = await cursor.next(settle_at if settle_at is not None else deadline)
        if line is None or line.received > (settle_at or deadline):
            break
        if isinstance(line, HepLine) and line.source in names:
            lines.append(line)
            changed = True
    verdict = LegVerdict(ok=True, legs=legs, sources=tuple(sources), decided_early=early, roles=roles)
    for t in tallies:
        e = t.expectation
        if not e.present:
            verdict.unexpected += [(e, leg) for leg in t.hits]
        elif t.ok:
            verdict.matched.append((e, t.hits))
        elif not t.hits:
            verdict.missing.append(e)
        else:
            verdict.wrong_count.append((e, len(t.hits)))
    if parity_check:
        verdict.parity = parity(exchange, legs, roles, core_reads)
    verdict.errors = {name: repr(error) for name, error in hub.errors.items() if name in names}
    verdict.ok = not (
        verdict.errors
        or verdict.missing
        or verdict.unexpected
        or verdict.wrong_count
        or (verdict.parity is not None and not verdict.parity.ok)
    )
    return verdict


def _proven(
    tallies: list[_Tally],
    exchange: Exchange,
    legs: list[Leg],
    roles: Roles,
    parity_check: bool,
    core_reads: CoreReads | None,
) -> bool:
    """Everything that must be captured is (exact counts are reached, never exceeded: that is settled)."""
    for t in tallies:
        e = t.expectation
        if e.present and (len(t.hits) < (e.count or 1)):
            return False
    return not parity_check or not parity(exchange, legs, roles, core_reads).missing


# -- parity with the carrier's view -------------------------------------------------------------------


@dataclass(frozen=True)
class Parity:
    """What the carrier sent to (and got from) the SBC against what the SBC captured, byte for byte."""

    compared: int  # carrier events compared
    missing: tuple[WireEvent, ...] = ()  # on the carrier's wire, not in the SBC's capture
    unseen: tuple[tuple[WireEvent, str], ...] = ()  # sent, but the capture cannot hold it: (event, why)
    duplicated: tuple[tuple[str, int], ...] = ()  # (first line, extra copies) captured more often than sent
    foreign: tuple[Leg, ...] = ()  # captured carrier<->SBC messages the carrier never sent or received
    # sent by the SBC after the last message the carrier read from it: its UA stops reading at the final
    # response (a CANCEL's 200 an SBC worker sends after another relayed the 487), reported, not failing
    late: tuple[Leg, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.missing and not self.duplicated and not self.foreign

    def summary(self) -> str:
        notes = [f"{e.first_line!r} not capturable: {why}" for e, why in self.unseen]
        notes += [f"{leg.first_line!r} sent after the carrier stopped reading" for leg in self.late]
        if self.ok:
            text = f"every one of {self.compared} carrier<->SBC messages captured once, byte exact"
            return f"{text} ({'; '.join(notes)})" if notes else text
        parts = ["; ".join(notes)] if notes else []
        if self.missing:
            parts.append(
                "not captured: " + "; ".join(f"{e.direction} {e.first_line!r}" for e in self.missing)
            )
        if self.duplicated:
            parts.append(
                "captured more than once: " + "; ".join(f"{line!r} +{n}" for line, n in self.duplicated)
            )
        if self.foreign:
            parts.append(
                "captured but not on the carrier's wire: " + "; ".join(leg.describe() for leg in self.foreign)
            )
        return " | ".join(parts)


def parity(
    exchange: Exchange, legs: Sequence[Leg], roles: Roles, core_reads: CoreReads | None = None
) -> Parity:
    """Every message between the carrier and the SBC appears in the SBC's capture once, byte exact: each
    one the carrier sent as carrier->sbc, each one it received from the SBC as sbc->carrier.
    ``core_reads`` says what the capture agent's core reads of the carrier's messages (bytes it cannot
    read as SIP are never seen; a stream may be framed otherwise than sent): what it reads is required,
    the rest reported. What the SBC sent the carrier after the capture of the last message the carrier
    read from it is ``late``, not foreign."""
    sent = [e for e in exchange.sent if roles.of(e.dst) == "sbc"]
    reads = (
        core_reads([(e.data, e.transport, e.dst) for e in sent])
        if core_reads is not None
        else [((e.data,), None) for e in sent]
    )
    unseen = [(e, why) for e, (_, why) in zip(sent, reads, strict=True) if why]
    out_wire = [
        dataclasses.replace(e, data=piece)
        for e, (pieces, _) in zip(sent, reads, strict=True)
        for piece in pieces
    ]
    in_wire = [e for e in exchange.received if roles.of(e.src) == "sbc"]
    missing: list[WireEvent] = []
    duplicated: list[tuple[str, int]] = []
    foreign: list[Leg] = []
    for wire, hop in ((out_wire, ("carrier", "sbc")), (in_wire, ("sbc", "carrier"))):
        captured = [leg for leg in legs if (leg.src_role, leg.dst_role) == hop]
        want = Counter(e.data for e in wire)
        have = Counter(leg.data for leg in captured)
        for data, n in want.items():
            short = n - have[data]
            if short > 0:  # the last copies are the ones not seen (retransmissions come last)
                missing += [e for e in wire if e.data == data][-short:]
        for data, n in (have - want).items():
            if data in want:
                duplicated.append((first_line(data), n))
            else:
                foreign += [leg for leg in captured if leg.data == data]
    read = [
        leg.captured for leg in legs if leg.hop == "sbc->carrier" and leg.data in {e.data for e in in_wire}
    ]
    late = [leg for leg in foreign if leg.hop == "sbc->carrier" and read and leg.captured > max(read)]
    foreign = [leg for leg in foreign if all(leg is not x for x in late)]
    return Parity(
        len(out_wire) + len(in_wire), tuple(missing), tuple(unseen), tuple(duplicated), tuple(foreign),
        tuple(late),
    )  # fmt: skip

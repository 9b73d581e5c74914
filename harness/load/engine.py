"""The load path's hot loop: one sender places its share of a run's calls over UDP, at the schedule's
times, and follows each INVITE client transaction to its outcome.

Built for rate, not for a ladder: the scenario UA (harness.net.carrier) builds, parses and records every
message of a call; here each call is a slot in preallocated arrays (no objects per call for the garbage
collector to chase), messages are templates filled with three ids (:mod:`harness.load.template`),
responses are read with the scanners of :mod:`harness.sip.scan`, one non-blocking socket serves each
source address and is drained in batches, and a timer wheel drives RFC 3261 timer A (INVITE
retransmission at T1, 2T1, ...) and each call's deadline. A non-2xx final is ACKed (§17.1.1.3) from the
template and the response's To; a retransmitted final after the call ended is ACKed again from the ids
its branch carries. A 2xx is ACKed and hung up with a BYE through the full builder (rare at rate: it
is the slow path). A call with a provisional but no final by its deadline is CANCELled.

The loop does no I/O waiting of its own kind: ``wait(fds, timeout)`` is injected (``select.select`` in a
plain process; under Locust the same call is gevent's, so the worker's other greenlets keep running).
Outcomes go to a :class:`Reporter` (Locust's request events in :mod:`harness.load.locust_user`).
"""

from __future__ import annotations

import _socket  # the C socket type: gevent's monkey-patching wraps socket.socket, not this
import select
import socket
import struct
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from harness.load.schedule import Schedule
from harness.load.template import BRANCH_PREFIX, CallTemplates, build_templates, source_fields
from harness.sip import builder, scan
from harness.sip.errors import SipParseError
from harness.sip.message import Request, Response, parse_message

Address = tuple[str, int]
RECV_BATCH = 256  # datagrams read from one socket before looking at the clock again
SEND_BATCH = 64  # calls started in one go when behind schedule, before receiving
TICK = 0.005  # timer wheel resolution (s)
# Calls are sent in groups at most this far apart (like SIPp's scheduler ticks): a call is at most this
# late, and neither side is woken up once per call. Each wake-up of an idle process costs more CPU here
# than a call: at 2,000 calls/s a plain sender spent 65-73 us per call with 1 ms ticks and 46-58 us
# with 5 ms ticks (no better with 10 ms). A call 5 ms late changes no limiter's verdict: pike and the
# rate limiter count over a second or more.
SEND_TICK = 0.005
WHEEL_SLOTS = 4096  # buckets: a 20 s horizon; later timers go round again
BYE_GRACE = 2.0  # how long a hung-up (BYE) or cancelled call waits for the final that ends it
SOCKET_BUFFER = 4 * 1024 * 1024  # bursts must not overflow the receive buffer (cf. SIPp's -buff_size)

# The kernel stamps each datagram as it arrives (Linux SO_TIMESTAMPNS, 35; Python does not name it): a
# response's latency is exact even when the loop reads it a tick later.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
STAMPED = sys.platform == "linux"
STAMP_SPACE = socket.CMSG_SPACE(16) if STAMPED else 0
_TIMESPEC = struct.Struct("qq")

FREE, CALLING, PROCEEDING, BYE_WAIT, CANCEL_WAIT = 0, 1, 2, 3, 4
KIND_INVITE, KIND_BYE = b"00", b"b0"
SILENCE = "silence"
NO_FINAL = "no final"


class Reporter(Protocol):
    """Where outcomes go. ``call`` once per call: ``name`` is the final's status ("604 Nope Nope Nope")
    or silence / no final, ``latency_ms`` the time to the final (to the deadline without one)."""

    def call(self, name: str, latency_ms: float, size: int) -> None: ...

    def provisional(self, latency_ms: float) -> None: ...


@dataclass
class Counters:
    """What a sender counts beside the outcomes (summed over senders for the run's verdict)."""

    sent: int = 0
    retransmissions: int = 0
    timeouts: int = 0  # calls that ended without a final response
    cancels: int = 0
    acks: int = 0
    byes: int = 0
    bye_failures: int = 0
    stray: int = 0  # responses that match no call of this run
    send_errors: int = 0
    capped: int = 0  # calls that waited for a free slot (the concurrency cap)
    max_lag: float = 0.0  # the latest a call was sent after its due time (s)
    cpu_seconds: float = 0.0  # this process's CPU time while the sender ran (benchmarks read it)
    active_seconds: float = 0.0  # wall time from the sender's first call to its last outcome

    MAX_MERGED = ("max_lag", "active_seconds")  # summed over senders, except these (the largest counts)

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)

    @staticmethod
    def merge(many: list[dict[str, float]]) -> dict[str, float]:
        """Several senders' counters as one run's."""
        out: dict[str, float] = {}
        for counters in many:
            for key, value in counters.items():
                if key in Counters.MAX_MERGED:
                    out[key] = max(out.get(key, 0.0), value)
                else:
                    out[key] = out.get(key, 0) + value
        return out


@dataclass(frozen=True)
class SenderConfig:
    destination: Address
    sources: Sequence[str]  # the pool of local addresses playing the carrier role
    invite_fields: dict[str, object]  # InviteSpec fields (users, headers...) without addresses and ids
    mutators: Sequence[str]
    seed: int
    schedule: Schedule
    sender: int = 0  # this sender's index ...
    senders: int = 1  # ... of how many
    concurrency: int = 1024  # calls in flight at most, for this sender
    t1: float = 0.5
    timeout: float = 5.0  # per call: no final by then = silence / no final
    run_id: int = 0  # 24 bits in every Call-ID and branch: responses from other runs are strays


@dataclass
class _Source:
    ip: str
    sock: _socket.socket
    rtp: _socket.socket  # bound so the SDP offer names a real port on the carrier's address
    templates: CallTemplates


def _open_udp(ip: str, port: int = 0, buffer: int | None = None) -> _socket.socket:
    sock = _socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer)
        sock.bind((ip, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Sender:
    """Places calls ``schedule.share(sender)`` of a run. ``run()`` returns when every call has an outcome,
    or when ``stop()`` was called (calls in flight are then abandoned, not reported)."""

    def __init__(
        self,
        config: SenderConfig,
        reporter: Reporter,
        *,
        wait: Callable[[list[_socket.socket], float], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.reporter = reporter
        self.counters = Counters()
        self._wait = wait or (lambda socks, timeout: select.select(socks, [], [], timeout))
        self._clock = clock
        self._stopping = False
        n = max(1, config.concurrency)
        self._k = [-1] * n  # the call number in each slot (-1: free)
        self._state = bytearray(n)
        self._src = [0] * n
        self._sent_at = [0.0] * n
        self._ids_of: list[dict[bytes, bytes]] = [{}] * n  # the ids the INVITE went out with (its ACK's)
        self._retx_at = [0.0] * n
        self._interval = [0.0] * n
        self._deadline = [0.0] * n
        self._invite: list[bytes] = [b""] * n  # the INVITE as sent, for timer A
        self._bye: list[bytes] = [b""] * n
        self._free = list(range(n - 1, -1, -1))
        self._wheel: list[list[int]] = [[] for _ in range(WHEEL_SLOTS)]
        self._tick = 0
        self._names: dict[bytes, str] = {}  # status line -> outcome name (a handful per run)
        self._prefix = b"%06x" % (config.run_id & 0xFFFFFF)
        self._sources: list[_Source | None] = []  # by pool index; None: a source this sender never uses
        self._socks: list[_socket.socket] = []
        self._by_fd: dict[int, int] = {}
        self._outbox: list[tuple[_socket.socket, bytes]] = []  # ACKs, sent together after a batch
        self._open()

    # -- set-up ------------------------------------------------------------------------------------
    def _open(self) -> None:
        cfg = self.config
        used = sorted({k % len(cfg.sources) for k in range(cfg.sender, cfg.schedule.total, cfg.senders)})
        try:
            for index in range(len(cfg.sources)):
                ip = cfg.sources[index]
                if index not in used:
                    self._sources.append(None)
                    continue
                sock = _open_udp(ip, 0, SOCKET_BUFFER)
                # Connected: the kernel keeps the route (a send to a sleeping peer costs a third less) and
                # only the destination's datagrams arrive. RFC 3261 18.2.2 has a UDP response come back
                # from where the request went; one from elsewhere would be lost, as the plan's docs say.
                sock.connect(cfg.destination)
                if STAMPED:
                    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                rtp = _open_udp(ip)
                fields = source_fields(
                    dict(cfg.invite_fields),
                    cfg.destination,
                    ip,
                    sip_port=sock.getsockname()[1],
                    rtp_port=rtp.getsockname()[1],
                )
                templates = build_templates(fields, list(cfg.mutators), cfg.seed)
                self._sources.append(_Source(ip, sock, rtp, templates))
                self._socks.append(sock)
                self._by_fd[sock.fileno()] = index
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for source in self._sources:
            if source is not None:
                source.sock.close()
                source.rtp.close()

    def stop(self) -> None:
        self._stopping = True

    # -- ids ---------------------------------------------------------------------------------------
    def _ids(self, k: int, slot: int, kind: bytes = KIND_INVITE) -> dict[bytes, bytes]:
        return {
            b"cid": b"%s%010x" % (self._prefix, k),
            b"br": b"%s%s%06x%010x" % (self._prefix, kind, slot, k),
            b"tag": b"%08x" % (k & 0xFFFFFFFF),
        }

    def _parse_branch(self, data: bytes) -> tuple[bytes, int, int] | None:
        """(kind, slot, call number) from the top Via branch of a response of this run."""
        head = data.find(b";branch=" + BRANCH_PREFIX)
        if head >= 0:
            start = head + 8 + len(BRANCH_PREFIX)
            branch = data[start : start + 24]
        else:
            found = scan.top_via_branch(data)
            if found is None or not found.startswith(BRANCH_PREFIX):
                return None
            branch = found[len(BRANCH_PREFIX) : len(BRANCH_PREFIX) + 24]
        if len(branch) != 24 or branch[:6] != self._prefix:
            return None
        try:
            return branch[6:8], int(branch[8:14], 16), int(branch[14:24], 16)
        except ValueError:
            return None

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> Counters:
        cfg = self.config
        schedule = cfg.schedule
        calls = range(cfg.sender, schedule.total, cfg.senders)
        due = [schedule.due(k) for k in calls]
        socks = self._socks
        slots = len(self._k)
        start = self._clock()
        cpu_start = time.process_time()
        self._tick = int(start / TICK)
        nxt = 0
        capped_at = -1
        while not self._stopping:
            now = self._clock()
            started = 0
            while nxt < len(calls) and started < SEND_BATCH:
                at = start + due[nxt]
                if at > now:
                    break
                if not self._free:
                    if capped_at != nxt:
                        self.counters.capped += 1
                        capped_at = nxt
                    break
                if now - at > self.counters.max_lag:
                    self.counters.max_lag = now - at
                self._start(calls[nxt], now)
                nxt += 1
                started += 1
            self._receive(socks)
            self._timers(self._clock())
            busy = slots - len(self._free)
            if nxt >= len(calls) and busy == 0:
                break
            if started == SEND_BATCH:
                self._wait(socks, 0)  # behind schedule: let the others run, then go on sending
                continue
            timeout = TICK if busy else 1.0
            if nxt < len(calls) and self._free:
                until = max(SEND_TICK, start + due[nxt] - self._clock())
                if until <= SEND_TICK * 2:
                    # sending goes on within two ticks: sleep to the next one without waking up for each
                    # response (they are stamped on arrival and read then); a wake-up costs more than a call
                    self._wait([], until)
                    continue
                timeout = min(timeout, until)
            self._wait(socks, timeout)
        self.counters.cpu_seconds = time.process_time() - cpu_start
        self.counters.active_seconds = self._clock() - start
        return self.counters

    def _start(self, k: int, now: float) -> None:
        cfg = self.config
        slot = self._free.pop()
        source_index = k % len(self._sources)
        source = self._sources[source_index]
        assert source is not None
        ids = self._ids(k, slot)
        data = source.templates.invite % ids
        self._k[slot] = k
        self._state[slot] = CALLING
        self._src[slot] = source_index
        self._sent_at[slot] = now
        self._ids_of[slot] = ids
        self._interval[slot] = cfg.t1
        retransmit = self._retx_at[slot] = now + cfg.t1
        deadline = self._deadline[slot] = now + min(cfg.timeout, 64 * cfg.t1)
        self._invite[slot] = data
        self._send(source.sock, data)
        self.counters.sent += 1
        self._schedule(slot, retransmit if retransmit < deadline else deadline)

    def _send(self, sock: _socket.socket, data: bytes) -> None:
        try:
            sock.send(data)
        except OSError:  # a full buffer or an ICMP error reported late: the call's timers go on
            self.counters.send_errors += 1

    def _schedule(self, slot: int, at: float) -> None:
        tick = max(int(at / TICK), self._tick + 1)
        self._wheel[tick % WHEEL_SLOTS].append((self._k[slot] << 24) | slot)

    def _free_slot(self, slot: int) -> None:
        self._k[slot] = -1
        self._state[slot] = FREE
        self._invite[slot] = b""
        self._bye[slot] = b""
        self._ids_of[slot] = {}
        self._free.append(slot)

    def _receive(self, socks: list[_socket.socket]) -> None:
        """Drain every socket, a batch at a time; the ACKs go out together after each batch."""
        # the kernel's stamps are wall-clock time: this offset turns them into the loop's clock
        offset = time.time() - self._clock()
        for sock in socks:
            source_index = self._by_fd[sock.fileno()]
            now = self._clock()
            for _ in range(RECV_BATCH):
                try:
                    data, ancillary, _, _ = sock.recvmsg(65535, STAMP_SPACE)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:  # ICMP port unreachable from an earlier send: nothing to read
                    continue
                arrived = now
                if ancillary:
                    seconds, nanoseconds = _TIMESPEC.unpack(ancillary[0][2])
                    arrived = min(now, seconds + nanoseconds * 1e-9 - offset)
                self._response(data, source_index, arrived)
            self._flush()

    def _flush(self) -> None:
        for sock, data in self._outbox:
            self._send(sock, data)
        self._outbox.clear()

    def _response(self, data: bytes, source_index: int, now: float) -> None:
        if data[:8] != b"SIP/2.0 ":
            self.counters.stray += 1
            return
        try:
            code = int(data[8:11])
        except ValueError:
            self.counters.stray += 1
            return
        ids = self._parse_branch(data)
        if ids is None:
            self.counters.stray += 1
            return
        kind, slot, k = ids
        current = slot < len(self._k) and self._k[slot] == k
        if kind == KIND_BYE:
            if current and self._state[slot] == BYE_WAIT and code >= 200:
                self._free_slot(slot)
            return
        if code >= 300:
            self._ack(data, source_index, k, slot, current)  # also a re-sent final: our ACK was lost
        if not current:
            return
        state = self._state[slot]
        if state == CANCEL_WAIT:  # reported at its deadline; the final (a 487) ends it, or a late 2xx
            if code >= 300:
                self._free_slot(slot)
            elif code >= 200 and _is_invite_response(data):
                self._hang_up(data, slot, now)
            return
        if state not in (CALLING, PROCEEDING):
            return
        if code < 200:
            if state == CALLING:  # the first provisional
                self.reporter.provisional((now - self._sent_at[slot]) * 1000.0)
            self._state[slot] = PROCEEDING
            self._retx_at[slot] = float("inf")  # timer A stops at the first provisional
            return
        if code < 300 and not _is_invite_response(data):
            return  # the 200 to a CANCEL: the INVITE's own final follows
        self.reporter.call(self._name(data), (now - self._sent_at[slot]) * 1000.0, len(data))
        if code < 300:
            self._hang_up(data, slot, now)
            return
        self._free_slot(slot)
        return

    def _name(self, data: bytes) -> str:
        end = data.find(b"\n")
        line = data[:end].rstrip(b"\r") if end >= 0 else data
        name = self._names.get(line)
        if name is None:
            name = line[8:].decode("utf-8", "replace").strip()
            self._names[line] = name
        return name

    def _ack(self, data: bytes, source_index: int, k: int, slot: int, current: bool) -> None:
        source = self._sources[source_index]
        assert source is not None
        template = source.templates.ack
        to = scan.header(data, "to")
        if template is None or to is None:
            return
        ids = self._ids_of[slot] if current else self._ids(k, slot)
        ids[b"to"] = to
        self._outbox.append((source.sock, template % ids))
        self.counters.acks += 1

    def _hang_up(self, data: bytes, slot: int, now: float) -> None:
        """The 2xx slow path: ACK (new transaction, RFC 3261 §13.2.2.4) and BYE, built by the builder."""
        source = self._sources[self._src[slot]]
        assert source is not None
        k = self._k[slot]
        try:
            invite = parse_message(self._invite[slot])
            ok = parse_message(data)
            if not isinstance(invite, Request) or not isinstance(ok, Response):
                raise ValueError("not an INVITE and its response")
            bye_branch = (BRANCH_PREFIX + self._ids(k, slot, KIND_BYE)[b"br"]).decode()
            ack = builder.build_ack(invite, ok)
            bye = builder.build_bye(invite, ok, invite.cseq.number + 1, branch=bye_branch)
        except (ValueError, SipParseError):
            self.counters.bye_failures += 1
            self._free_slot(slot)
            return
        self._send(source.sock, ack.to_bytes())
        self.counters.acks += 1
        self._bye[slot] = bye.to_bytes()
        self._send(source.sock, self._bye[slot])
        self.counters.byes += 1
        self._state[slot] = BYE_WAIT
        self._interval[slot] = self.config.t1
        self._retx_at[slot] = now + self.config.t1
        self._deadline[slot] = now + BYE_GRACE
        self._schedule(slot, self._retx_at[slot])

    def _timers(self, now: float) -> None:
        """Fire the wheel's buckets up to ``now``."""
        last = int(now / TICK)
        while self._tick < last:
            self._tick += 1
            bucket = self._wheel[self._tick % WHEEL_SLOTS]
            if not bucket:
                continue
            entries = bucket[:]
            bucket.clear()
            for entry in entries:
                slot = entry & 0xFFFFFF
                if self._k[slot] != entry >> 24 or self._state[slot] == FREE:
                    continue  # the call ended (or the slot holds a newer one): a lazy deletion
                self._timer(slot, now)

    def _timer(self, slot: int, now: float) -> None:
        state = self._state[slot]
        source = self._sources[self._src[slot]]
        assert source is not None
        if now >= self._deadline[slot]:
            if state == BYE_WAIT:
                self.counters.bye_failures += 1
            if state in (BYE_WAIT, CANCEL_WAIT):
                self._free_slot(slot)
                return
            self.counters.timeouts += 1
            proceeding = state == PROCEEDING
            latency = (now - self._sent_at[slot]) * 1000.0
            self.reporter.call(NO_FINAL if proceeding else SILENCE, latency, 0)
            if proceeding and source.templates.cancel is not None:
                self._send(source.sock, source.templates.cancel % self._ids(self._k[slot], slot))
                self.counters.cancels += 1
                self._state[slot] = CANCEL_WAIT  # until its 487 (ACKed) or the grace ends
                self._deadline[slot] = now + BYE_GRACE
                self._schedule(slot, self._deadline[slot])
                return
            self._free_slot(slot)
            return
        if now >= self._retx_at[slot]:
            if state == CALLING:
                self._send(source.sock, self._invite[slot])
                self.counters.retransmissions += 1
            elif state == BYE_WAIT:
                self._send(source.sock, self._bye[slot])
            interval = self._interval[slot] * 2
            if state == BYE_WAIT:
                interval = min(interval, 4.0)  # timer E is capped at T2
            self._interval[slot] = interval
            self._retx_at[slot] = now + interval
        self._schedule(slot, min(self._retx_at[slot], self._deadline[slot]))
        return


def _is_invite_response(data: bytes) -> bool:
    cseq = scan.header(data, "cseq")
    return cseq is not None and cseq.rstrip().upper().endswith(b"INVITE")

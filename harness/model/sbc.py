"""The SBC role: Kazoo's Kamailio in front of the media role.

Per request, in the order Kamailio 5.6's core and Kazoo's default.cfg / sanity.cfg apply them: core
parsing (a second To, a missing From/To/Call-ID/CSeq or Via, a version other than SIP/2.0 never reach
the script), sanity checks, Max-Forwards, scanner User-Agents, the optional roles, OPTIONS, 5.x's
authorization (an untrusted INVITE is challenged by Kamailio itself), pre-loaded routes; then an INVITE
gets ``100 Attempting to connect your call``, its X- headers are replaced by ``X-AUTH-IP``/``X-AUTH-PORT``
as the release does it, and it is relayed over UDP to the dispatcher (the media role). Final answers
coming back go through the INTERNAL_FAULT failure route (:func:`rewrite_failure`). What differs between
releases is a field of harness.kazoo.release.KazooRelease; every line is written as the release's own
configuration writes it (harness.model.sbc_lines). Nothing that arrives can make this role raise: every
handler logs and carries on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import ipaddress
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from harness.kazoo.acls import EdgeSource, edge_sources, edge_trusts, entries_from_store
from harness.kazoo.frontier import account_by_realm, rate_limits_answer
from harness.kazoo.logformat import KAMAILIO_NULL
from harness.kazoo.release import DEFAULTS, KazooRelease
from harness.model.antiflood import AntifloodRole, AntifloodSettings, FloodRequest
from harness.model.clock import SYSTEM_CLOCK, Clock
from harness.model.kamailio_parse import (
    core_parse_failure,
    full_parse_failure,
    tolerate_start_line,
    uri_scheme_failure,
)
from harness.model.logbus import LogBus
from harness.model.rate_limiter import LimitedRequest, RateLimiterRole
from harness.model.sbc_lines import CORE, PROTO_NUMBERS, SCRIPT, Where
from harness.model.store import DocumentStore
from harness.model.timers import Deadline, DeadlineQueue
from harness.model.transport import Address, ReplyPath, SipListener, UdpSocket
from harness.sip import scan
from harness.sip.digest import make_challenge_value
from harness.sip.errors import SipParseError
from harness.sip.framing import FramingError
from harness.sip.headers import canonical_name, parse_via
from harness.sip.message import Request, Response, decode, encode, parse_message
from harness.sip.response import render_response
from harness.sip.uri import host_is_ip, parse_uri

_log = logging.getLogger(__name__)

MAX_STREAM_MESSAGE = 80_000  # Kamailio tcp buffer: "buffer overrun, dropping"
MAX_FORWARDS_DEFAULT = 10
MAX_FORWARDS_LIMIT = 50
SCANNERS_EQUAL = ("friendly-scanner", "sundayddr", "pplsip")
SCANNERS_CONTAINING = ("NiceGuy", "PortSIP", "sipcli")
SCANNERS_CONTAINING_5X = ("QNQ",)  # 5.x sanity.cfg adds it
ROLE_SWITCHES = ("traffic_filter", "antiflood", "acl", "rate_limiter", "authorization")
PIKE_TIMER = 1.0  # pike's timers run every tick: UNBLOCK lines are written while nobody sends
PORTSIP_SESSION = re.compile(rb"^s=portsip\.com\r?$", re.M)
TRANSACTION_LINGER = 32.0  # answer retransmissions this long after the final
TRANSACTION_MAX = 180.0  # past Kamailio's 120 s INVITE timer
TRANSACTION_SWEEP = 10.0  # how often transactions still relayed are held to TRANSACTION_MAX
PROBE_TIMEOUT = 1.0  # the dispatcher's verdict when the media role stays silent
# 5.x authorization.cfg: the methods Kamailio authorizes (challenges when the source is not trusted)
AUTHORIZED_METHODS = ("INVITE", "REFER", "MESSAGE", "NOTIFY", "SUBSCRIBE", "PUBLISH")
# 5.x: AUTHORIZATION_QUERY_TIMEOUT_MS (authorization.cfg:21); the kazoo module ends the query on its
# own timer, so the running 5.x configuration answers the retry 2.0-2.6 s after it
AUTH_QUERY_TIMEOUT = 2.5
# 4.3's AUTHORIZATION_ROLE (authorization-role.cfg): unregistered senders of these get 503
NOT_REGISTERED_METHODS = ("MESSAGE", "NOTIFY", "SUBSCRIBE", "PUBLISH")
# 5.x default.cfg REMOVE_RESERVED_HEADERS (defs.cfg KZ_RESERVED_HEADERS)
RESERVED_HEADERS = re.compile(r"^(X-AUTH|X-KAZOO|X-FS-|Referred-By)", re.I)
# the dispatcher groups the 480's line names (5.x prints them): primary and backup media servers
PRIMARY_GROUP, BACKUP_GROUP = 1, 2


def is_scanner(user_agent: str | None, release: KazooRelease | None = None) -> bool:
    if not user_agent:
        return False
    containing: tuple[str, ...] = SCANNERS_CONTAINING
    if release is not None and release.sbc_drops_qnq_and_portsip_sdp:
        containing += SCANNERS_CONTAINING_5X
    return user_agent in SCANNERS_EQUAL or any(word in user_agent for word in containing)


def sanity_failure(request: Request, proto: str) -> str | None:
    """The 400 reason of Kamailio's default sanity checks, or None when the request is sane."""
    if request.version != "SIP/2.0":
        return "Version Not Supported"
    try:
        uri = parse_uri(request.uri_text)
    except SipParseError:
        return "Bad Request URI"
    if uri.scheme.lower() not in ("sip", "sips", "tel"):
        return "Unsupported URI Scheme in Request URI"
    for name in REQUIRED_HEADERS:
        if not request.has(name):
            return "Missing Required Header in Request"
    if full_parse_failure(request) is not None:  # sanity parses every header before its checks
        return "Missing Required Header in Request"
    try:
        request.from_  # noqa: B018 - parsed for the check
        request.to  # noqa: B018
        cseq = request.cseq
    except SipParseError:
        return "Bad Header"
    if cseq.method != request.method:
        return "CSeq method does not match request method"
    try:
        length = request.content_length
    except SipParseError:
        return "Content-Length mis-match"
    if proto == "udp" and length is not None and length != len(request.body):
        return "Content-Length mis-match"
    expires = request.get("expires")
    if expires is not None and not expires.strip().isdigit():
        return "Expires not a number"
    if uri_scheme_failure(request) is not None:
        return "Bad From or To URI"
    return None


LineRef = tuple[str, Mapping[str, object]]  # a key of harness.model.sbc_lines.SCRIPT and its values


@dataclass(frozen=True)
class FailureVerdict:
    """What the failure route makes of a media-role final answer: the caller's code and reason, and the
    lines it logs (keys of harness.model.sbc_lines.SCRIPT with their values, in order)."""

    code: int
    reason: str
    lines: tuple[LineRef, ...] = ()


def rewrite_failure(
    code: int,
    reason: str,
    session_progress: bool,
    release: KazooRelease,
    *,
    cancelled: bool = False,
    media_uri: str = "",
    source_ip: str = "",
) -> FailureVerdict:
    """default.cfg failure_route[INTERNAL_FAULT] for an initial INVITE, branch by branch in its order.

    ``session_progress``: a 180, 183 or 200 was relayed (FLAG_SESSION_PROGRESS). Where the release's
    failure route rewrites it (``sbc_rewrites_604``, 5.x), reorder's 604 becomes 486 Unable to Comply;
    a 480 after progress becomes 603 Endpoint Not Available (OVERRIDE_MEDIA_REPLY_480, both releases).
    With one media server, the dispatcher's "next route" and "next zone" find nothing."""
    said = {"code": code, "reason": reason}
    if code < 300 or cancelled:
        return FailureVerdict(code, reason)
    if code == 407 and release.sbc_relays_media_407:
        return FailureVerdict(code, reason, (("media_challenged", {"uri": media_uri}),))
    kept_6xx = (600, 603, 604, 606, 607) if release.sbc_relays_607 else (600, 603, 604, 606)
    if 600 <= code <= 699 and code not in kept_6xx:
        new_code = code - 200
        return FailureVerdict(new_code, reason, (("sending_6xx", {**said, "new_code": new_code}),))
    if "call barred" in reason:
        return FailureVerdict(code, reason, (("call_barred", {}),))
    if session_progress:
        if code == 480:
            return FailureVerdict(
                603, "Endpoint Not Available", (("after_progress", {}), ("override_480", {"code": 603}))
            )
        return FailureVerdict(code, reason, (("after_progress", {}),))
    if code == 403 and reason == "Forbidden":
        return FailureVerdict(code, reason, (("failed_auth", {"ip": source_ip}),))
    if code in (401, 486):
        return FailureVerdict(code, reason, (("auth_reply", said),))
    if code == 402:
        return FailureVerdict(486, "Insufficient Funds", (("override_402", {}),))
    if 400 <= code <= 599:
        return FailureVerdict(486, "Unable to Comply", (("internal_reply", said),))
    if code == 604 and release.sbc_rewrites_604:
        unable = {"code": 486, "reason": "Unable to Comply"}
        return FailureVerdict(486, "Unable to Comply", (("reply_604", said), ("override_604", unable)))
    return FailureVerdict(code, reason, (("reply_604" if code == 604 else "reply_other", said),))


def _from_uri(request: Request) -> str:
    """$fu: the From header's URI."""
    try:
        return str(request.from_.uri)
    except SipParseError:
        return KAMAILIO_NULL


REQUIRED_HEADERS = ("from", "to", "call-id", "cseq")  # what receive_msg() parses before the script
_COMPACT = {"f": "from", "t": "to", "i": "call-id"}


def _duplicate_required(request: Request) -> tuple[str, str | None]:
    """The first of From, To, Call-ID, CSeq that appears twice, and who meets its second one: "core"
    when it comes before the last of the four (receive_msg() parses up to there and refuses it),
    "sanity" after them (its parse of every header fails); ("", None) without one."""
    if all(request.count(name) < 2 for name in REQUIRED_HEADERS):
        return "", None  # the common case, from the message's index without a walk over its headers
    seen: set[str] = set()
    for header in request.headers:
        name = _COMPACT.get(header.name.lower(), header.name.lower())
        if name not in REQUIRED_HEADERS:
            continue
        if name in seen:
            return name, "sanity" if seen >= set(REQUIRED_HEADERS) else "core"
        seen.add(name)
    return "", None


_WRITTEN = {"from": rb"From|f", "to": rb"To|t", "call-id": rb"Call-ID|i", "cseq": rb"CSeq"}


def _second_header(data: bytes, name: str) -> str:
    """What Kamailio's parser prints of a duplicate header: 100 bytes from its second occurrence on."""
    starts = [m.start() + 1 for m in re.finditer(rb"\n(?:" + _WRITTEN[name] + rb")[ \t]*:", data, re.I)]
    begin = starts[1] if len(starts) > 1 else 0
    return data[begin : begin + 100].decode("utf-8", "replace").replace("\r\n", "\n")


def realm_acls(store: DocumentStore, realm: str) -> Mapping[str, object] | None:
    """The ``acls`` object of the account whose ``realm`` is ``realm`` (what frontier answers)."""
    account = account_by_realm(store, realm)
    acls = account.get("acls") if account is not None else None
    return acls if isinstance(acls, dict) else None


def _in_cidr(ip: str, cidr: object) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class MediaAnswer:
    """What the SBC reads of a media role's response: enough to match it to its transaction, run the
    failure route, acknowledge it and relay it on (``rest``: all after the start line, our Via left out)."""

    code: int
    reason: str
    start_line: bytes
    branch: str
    method: str
    to: str | None
    rest: bytes

    def relayed(self, start_line: bytes) -> bytes:
        return start_line + self.rest


def read_media_answer(data: bytes) -> MediaAnswer | None:
    """The answer read from its bytes, as the media role renders its responses (each Via on its own line,
    ours the first); None for anything else, which :func:`parse_media_answer` reads."""
    status, via, cseq = scan.status(data), scan.first_header_line(data, "via"), scan.header(data, "cseq")
    if status is None or via is None or cseq is None:
        return None
    ours = data[via[0] : via[1]]  # our Via's line
    if b"," in ours:  # more than our Via on it
        return None
    branch, cseq_fields, to = scan.via_branch(ours), cseq.split(), scan.header(data, "to")
    if branch is None or len(cseq_fields) != 2:
        return None
    code, start_line = status
    reason = start_line.split(b" ", 2)[2] if start_line.count(b" ") >= 2 else b""
    return MediaAnswer(
        code,
        decode(reason),
        start_line,
        decode(branch),
        decode(cseq_fields[1]),
        None if to is None else decode(to),
        data[len(start_line) : via[0]] + data[via[1] :],
    )


def parse_media_answer(data: bytes) -> MediaAnswer | None:
    """The answer read by the full parser; None when it is no response the SBC can match."""
    try:
        message = parse_message(data)
        if not isinstance(message, Response):
            return None
        # our own Via, the first: the rest are the caller's, which this SBC parsed on the way in
        top = message.get("via")
        ours = parse_via(top) if top is not None else []
        if not ours:
            return None
        method = message.cseq.method
    except SipParseError:
        return None
    out = [message.start_end]
    dropped = False
    for header in message.headers:
        if not dropped and header.key == "via":
            dropped = True
            continue
        out.append(header.raw)
    out += [message.blank, message.body]
    rest = b"".join(out)
    branch = ours[0].branch or ""
    return MediaAnswer(
        message.code, message.reason, message.start_line, branch, method, message.get("to"), rest
    )


@dataclass(slots=True)  # one per relayed request: no frozen dataclass's __init__ (a setattr a field)
class _Relayed:
    """A request on its way to the media role: what relaying it needs beyond the request itself."""

    request: Request
    path: ReplyPath
    branch: str  # the SBC's branch for it
    max_forwards: str | None  # the value to relay; "" when it had none (10 is added); None: as it came


TransactionKey = tuple[str, str]  # the SBC's branch and the method


@dataclass
class Transaction:
    """One relayed client transaction, keyed by the SBC's own branch and the method."""

    request: Request
    client: ReplyPath
    branch: str
    method: str
    provisional: bool = False  # a 180/183 went to the caller (FLAG_SESSION_PROGRESS)
    cancelled: bool = False
    media_heard: bool = False
    probe: Deadline[Transaction] | None = None
    started: float = 0.0  # loop time: TRANSACTION_MAX bounds it, for a media role that never answers


class SbcRole:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        release: KazooRelease,
        bus: LogBus,
        store: DocumentStore,
        dispatcher: Address | None,
        node: str = DEFAULTS.model_node,
        sanity_drops_request: bool = True,
        switches: Mapping[str, bool] | None = None,
        probe_timeout: float = PROBE_TIMEOUT,
        auth_query_timeout: float = AUTH_QUERY_TIMEOUT,
        clock: Clock = SYSTEM_CLOCK,
        antiflood: AntifloodSettings | None = None,
    ) -> None:
        self.host = host
        self.release = release
        self.bus = bus
        self.store = store
        self.dispatcher = dispatcher  # None: the dispatcher set has no media server at all
        self.node = node
        self.sanity_drops_request = sanity_drops_request
        self.switches = {name: False for name in ROLE_SWITCHES} | dict(switches or {})
        self.probe_timeout = probe_timeout
        self.auth_query_timeout = auth_query_timeout
        self.listener = SipListener(
            host,
            port,
            self._on_message,
            max_stream_message=MAX_STREAM_MESSAGE,
            on_framing_error=self._on_framing,
            accept_no_content_length=release.sbc_accepts_tcp_without_content_length,
            before_send=bus.flush,
        )
        # the transactions being relayed, and the finals of answered ones, kept TRANSACTION_LINGER to
        # answer retransmissions: all an answered one needs (it lets go of its parsed request at once,
        # which at load is ~60,000 held calls the garbage collector would scan again and again)
        self.transactions: dict[TransactionKey, Transaction] = {}
        self.answered: dict[TransactionKey, bytes] = {}
        self.trusted_sources: list[EdgeSource] = []
        self._relay: UdpSocket | None = None  # towards the dispatcher: connected, so ICMP is reported
        self._relay_address: Address = (host, 0)
        self._auth_queries: set[asyncio.TimerHandle] = set()
        self.clock = clock
        self.antiflood = AntifloodRole(
            release,
            self._role_line,
            lambda key, text: self._core(key, text=text),
            settings=antiflood,
            start=clock.monotonic(),
        )
        reader = store.reader()
        self.rate_limiter = RateLimiterRole(
            release, self._role_line, lambda query: rate_limits_answer(reader, query), start=clock.time()
        )
        self._pike_timer: asyncio.TimerHandle | None = None
        self._probes: DeadlineQueue[Transaction] = DeadlineQueue(probe_timeout, self._probe_expired)
        self._lingering: DeadlineQueue[TransactionKey] = DeadlineQueue(
            TRANSACTION_LINGER, self._forget_answer
        )
        self._sweep: asyncio.TimerHandle | None = None  # a deadline per transaction would be held 180 s

    @property
    def address(self) -> Address:
        return self.listener.address

    async def start(self) -> Address:
        self.reload_acl()
        if self.dispatcher is not None:
            self._relay = UdpSocket(
                (self.host, 0),
                self._from_media,
                remote=self.dispatcher,
                on_error=lambda _exc: self.on_dispatcher_unreachable(),
            )
            self._relay_address = self._relay.address
        if self.switches.get("antiflood"):
            self._tick_pike()
        return await self.listener.start()

    def _tick_pike(self) -> None:
        self.antiflood.tick(self.clock.monotonic())
        self._pike_timer = asyncio.get_running_loop().call_later(PIKE_TIMER, self._tick_pike)

    async def stop(self) -> None:
        if self._pike_timer is not None:
            self._pike_timer.cancel()
        await self.listener.close()
        if self._relay is not None:
            self._relay.close()
        for queue in (self._probes, self._lingering):
            queue.close()
        if self._sweep is not None:
            self._sweep.cancel()
        for query in self._auth_queries:
            query.cancel()

    def reload_acl(self) -> None:
        """The trusted sources (Kamailio's permissions address table): the rows ecallmgr's edge ACLs give
        for the same node as FreeSWITCH's (harness.kazoo.acls.edge_sources)."""
        self.trusted_sources = edge_sources(entries_from_store(self.store, self.node))

    def _trusted(self, ip: str, port: int) -> bool:
        return edge_trusts(self.trusted_sources, ip, port)

    # ------------------------------------------------------------------ logging helpers
    def _line(self, key: str, call_id: str | None, **values: object) -> None:
        """A line of the routing script, as the release writes it (harness.model.sbc_lines.SCRIPT);
        nothing where the release does not write it."""
        line = SCRIPT[key]
        text = line.text(self.release)
        if text is not None:
            self.bus.kamailio(line.level, text.format(**values), call_id, line.area_43, where=line.where_5x)

    def _role_line(
        self, level: str, message: str, call_id: str | None, area: str, where: Where | None = None
    ) -> None:
        """A script line of the antiflood or rate-limiter role (harness.model.antiflood, rate_limiter), at
        ``where`` (5.x's prefix) with ``area`` (4.3's). Kazoo runs Kamailio at ``debug =
        KAZOO_LOG_LEVEL`` (defs.cfg: L_INFO): L_DBG is not written."""
        if level != "debug":
            self.bus.kamailio(level, message, call_id, area, where=where)

    def _core(self, key: str, **values: object) -> None:
        """A line of Kamailio's core or of a module (harness.model.sbc_lines.CORE)."""
        line = CORE[key]
        self.bus.kamailio_core(line.level, line.render(**values), line.text.format(**values))

    # ------------------------------------------------------------------ client side
    def _on_framing(self, error: FramingError, peer: Address) -> None:
        ip, port = peer
        if error.reason == "too-large":
            self._core("buffer_overrun", ip=ip, port=port, local_port=self.address[1])
        else:
            self._core("bad_length")

    def _on_message(self, data: bytes, path: ReplyPath) -> None:
        try:
            self._handle(data, path)
        except Exception:  # the SBC must keep answering whatever a message does to it
            _log.exception("SBC failed on a message from %s:%d", *path.peer)

    def _handle(self, data: bytes, path: ReplyPath) -> None:
        ip, port = path.peer
        message = self._core_parse(data)
        if isinstance(message, Response):
            return  # the SBC sends no requests to callers; a stray response is absorbed
        try:
            vias = message.vias if message is not None else None
        except SipParseError:
            vias = None
        if message is None or vias is None:
            self._core("core_parse_failed", ip=ip, port=port, proto=PROTO_NUMBERS.get(path.proto, 0))
            path.close()  # Kamailio's TCP reader gives up on the connection; no-op over UDP
            return
        request = message
        if request.version != "SIP/2.0":
            return  # not SIP to the core: dropped before the script, without a line at L_INFO
        # receive_msg()'s own refusals, before the script: an error, so the TCP reader closes too
        if not vias:
            self._core("no_via")
            path.close()
            return
        duplicate, who = _duplicate_required(request)
        if who == "core":  # the parser refuses a second From/To/Call-ID/CSeq: the script never sees it
            self._core(f"duplicate_{duplicate}", header=_second_header(data, duplicate))
            self._core("relevant_headers")
            self._core("required_headers")
            path.close()
            return
        if not all(request.has(name) for name in REQUIRED_HEADERS):
            self._core("required_headers")  # the core's check, before sanity.cfg can see it
            path.close()
            return
        call_id = request.get("call-id") or KAMAILIO_NULL  # what the script's $ci prints
        if who == "sanity":
            # after the four the core parses: the script's $(hdr(To)[1]) then sanity's full parse fail
            header = _second_header(data, duplicate)
            for key in (f"duplicate_{duplicate}", "pv_headers", f"duplicate_{duplicate}", "sanity_headers"):
                self._core(key, header=header)
            self._insane(request, path, call_id)
            return
        if self.release.sbc_filters_exempt_trusted and self._bad_ruri(request):
            # 5.x classifies the source first: is_myself($ou) parses the R-URI before sanity runs
            self._core("bad_ruri", uri=request.uri_text)
        # sanity.cfg route[SANITY_CHECK]: sanity, Max-Forwards, scanners, in that order
        if sanity_failure(request, path.proto) is not None:
            self._insane(request, path, call_id)
            return
        max_forwards: str | None = None  # not checked (5.x's OPTIONS): relayed as it came
        if request.method != "OPTIONS" or not self.release.sbc_max_forwards_skips_options:
            max_forwards = self._max_forwards(request, path, call_id)
            if max_forwards is None:
                return
        user_agent = request.user_agent
        if is_scanner(user_agent, self.release):
            self._line("scanner", call_id, ua=user_agent, ip=ip, port=port)
            return
        if self.release.sbc_drops_qnq_and_portsip_sdp and PORTSIP_SESSION.search(request.body):
            self._line("portsip_sdp", call_id, sdp_line="s=portsip.com", ip=ip, port=port)
            return
        branch = self._branch_for(request, path)
        if request.method != "ACK" and self._retransmission(request, path, branch):
            return  # route[CHECK_RETRANS]: t_check_trans() answered it from the transaction
        if self._flood_dropped(request, ip, port, call_id):
            return
        if self._filter_roles_stop(request, path, call_id):
            return
        if self._rate_limited(request, path, call_id):
            return
        if request.method == "OPTIONS":
            path.respond(request, 200, "Rawr!!")
            return
        if self._not_registered(request, path, call_id):
            return
        if self._authorization_stop(request, path, call_id):
            return
        if request.method == "MESSAGE":  # default.cfg without the MESSAGE_ROLE, in- or out-of-dialog
            path.respond(request, 405, "Method Not Allowed")
            return
        relay = _Relayed(request, path, branch, max_forwards)
        if self._has_to_tag(request):  # in-dialog: loose-routed on to the media role
            if request.method == "ACK":
                self._relay_ack(relay)
            else:
                self._relay_request(relay)
            return
        self._initial_request(relay, call_id)

    def _insane(self, request: Request, path: ReplyPath, call_id: str) -> None:
        """sanity.cfg: a message sanity_check() refuses is dropped (or answered 400 with drops off)."""
        ip, port = path.peer
        if self.sanity_drops_request:
            self._line("insane", call_id, ip=ip, port=port)
        else:
            self._line("insane_answered", call_id, ip=ip, port=port)
            path.respond(request, 400, "Bad Request")

    def _initial_request(self, relay: _Relayed, call_id: str | None) -> None:
        """default.cfg: CANCEL/ACK need their transaction, some methods need a dialog, no route-set."""
        request, path = relay.request, relay.path
        if request.method == "CANCEL":
            self._relay_cancel(relay)
            return
        if request.method == "ACK":
            self._relay_ack(relay)
            return
        if request.method == "UPDATE":
            self._line("update_outside_dialog", call_id)
            path.respond(request, 403, "Dialog does not exist")
            return
        if request.method in ("BYE", "PRACK"):
            self._line("outside_dialog", call_id)
            path.respond(request, 403, "Dialog does not exist")
            return
        if self.release.sbc_removes_initial_route:
            # 5.x PREPARE_INITIAL_REQUESTS: from outside, the Route set goes and the call is recorded
            if request.has("route"):
                relay = dataclasses.replace(relay, request=cast(Request, request.remove_headers("Route")))
            self._line("record_route", call_id)
        elif request.has("route"):
            self._line("route_set", call_id)
            path.respond(request, 403, "No pre-loaded routes")
            return
        self._relay_request(relay)

    @staticmethod
    def _core_parse(data: bytes) -> Request | Response | None:
        """The message as Kamailio's core reads it, or None where its parse_msg() fails
        (harness/model/kamailio_parse.py says where that differs from the harness's parser)."""
        try:
            message = parse_message(data)
        except SipParseError:
            tolerated = tolerate_start_line(data)
            if tolerated is None:
                return None
            try:
                message = parse_message(tolerated)
            except SipParseError:
                return None
        return None if core_parse_failure(message) is not None else message

    @staticmethod
    def _bad_ruri(request: Request) -> bool:
        try:
            return parse_uri(request.uri_text).scheme.lower() not in ("sip", "sips", "tel", "tels", "urn")
        except SipParseError:
            return True

    @staticmethod
    def _has_to_tag(request: Request) -> bool:
        try:
            return request.to.tag is not None
        except SipParseError:
            return False

    def _max_forwards(self, request: Request, path: ReplyPath, call_id: str | None) -> str | None:
        """maxfwd's mf_process_maxfwd_header("10") with max_limit 50: the Max-Forwards value to relay
        ("" when the request has none: 10 is added), or None when it was answered 483."""
        value = request.get("max-forwards")
        if value is None:
            return ""
        text = value.strip()
        number = text.isdigit() and len(text) <= 5
        hops = int(text) if number else 0
        if hops == 0:
            ip, port = path.peer
            if not number:
                self._core("bad_max_forwards")
            self._line("too_many_hops", call_id, ip=ip, port=port)
            path.respond(request, 483, "Too Many Hops")
            return None
        hops = min(hops, MAX_FORWARDS_LIMIT)
        return str(hops - 1)

    def _exempt(self, ip: str, port: int) -> bool:
        """Whether ANTIFLOOD and TRAFFIC_FILTER let the source pass as trusted: only where the release
        classifies the source before they run (5.x); 4.3 runs them first, so they count everyone."""
        return self.release.sbc_filters_exempt_trusted and self._trusted(ip, port)

    def _filter_roles_stop(self, request: Request, path: ReplyPath, call_id: str | None) -> bool:
        """TRAFFIC_FILTER and ACL, roles Kazoo leaves off by default; True when one ended the request."""
        ip, port = path.peer
        if request.method != "INVITE" or self._has_to_tag(request):
            return False
        if self.switches.get("traffic_filter") and not self._exempt(ip, port):
            try:
                ip_domain = host_is_ip(request.uri.host)
            except SipParseError:
                ip_domain = False
            if ip_domain:
                self._line("ip_domain", call_id, method=request.method)
                return True
        if (
            self.switches.get("acl")
            and not self._trusted(ip, port)
            and not self._realm_acl_allows(request, ip, call_id)
        ):
            path.respond(request, 603, "Rejected by ACL")
            return True
        return False

    def _not_registered(self, request: Request, path: ReplyPath, call_id: str | None) -> bool:
        """4.3's optional AUTHORIZATION_ROLE (authorization-role.cfg AUTHORIZATION_CHECK): an initial
        MESSAGE/NOTIFY/SUBSCRIBE/PUBLISH from a source neither trusted nor registered gets 503 (no
        device registers with the model). It does not touch INVITEs."""
        ip, port = path.peer
        if not self.switches.get("authorization") or request.method not in NOT_REGISTERED_METHODS:
            return False
        if self._has_to_tag(request) or self._trusted(ip, port):
            return False
        self._line("not_authorized", call_id, from_uri=_from_uri(request), ip=ip, port=port)
        path.respond(request, 503, "Not Registered")
        return True

    def _authorization_stop(self, request: Request, path: ReplyPath, call_id: str | None) -> bool:
        """5.x authorization.cfg (always on): True when Kamailio itself answered the request. Trusted
        sources and the SBC's own address are authorized; anyone else is challenged (407), and a retry
        with credentials is asked of Kazoo's registrar over AMQP (HANDLE_AUTHORIZATION_KAZOO). No Kazoo
        app answers that query in front of the model, so the retry gets what the real configuration
        gives then: 100, then 403 once the query times out (KZ_AUTHORIZATION_CHECK_TIMEOUT)."""
        ip, port = path.peer
        if not self.release.sbc_challenges_untrusted or request.method not in AUTHORIZED_METHODS:
            return False
        if ip == self.host or self._trusted(ip, port):
            return False
        try:
            auth_user = f"{request.from_.uri.user or ''}@{request.from_.uri.host}"
            scheme = request.from_.uri.scheme
        except SipParseError:
            return False
        if request.get("proxy-authorization") is None:
            self._line(
                "challenging", call_id, method=request.method, auth_user=auth_user,
                auth_uri=f"{scheme}:{auth_user}", ip=ip, port=port,
            )  # fmt: skip
            realm = auth_user.rpartition("@")[2]
            nonce = hashlib.sha1(f"{call_id}{time.time()}".encode()).hexdigest()
            path.respond(
                request, 407, "Proxy Authentication Required",
                headers=[("Proxy-Authenticate", make_challenge_value(realm, nonce))],
            )  # fmt: skip
            return True
        path.respond(request, 100, "Attempting to connect your call")
        digest = int(hashlib.sha1(str(call_id).encode()).hexdigest()[:8], 16)
        index, label = digest % 65536, digest % 10**9  # tm's transaction id, as the line prints it

        def timed_out() -> None:
            self._auth_queries.discard(handle)
            self._line(
                "auth_query_timeout", call_id, code=0, reason="", index=index, label=label,
                auth_user=auth_user, ip=ip, port=port,
            )  # fmt: skip
            path.respond(request, 403, "Forbidden")

        handle = asyncio.get_running_loop().call_later(self.auth_query_timeout, timed_out)
        self._auth_queries.add(handle)
        return True

    def _realm_acl_allows(self, request: Request, ip: str, call_id: str | None) -> bool:
        """acl-role.cfg ACL_CHECK for the realm: the account whose ``realm`` is the From domain (the To
        domain when From holds an IP) may carry ``acls: {order, cidrs}``; none means permitted."""
        try:
            realm = request.from_.uri.host
            if host_is_ip(realm):
                realm = request.to.uri.host
        except SipParseError:
            return True
        acls = realm_acls(self.store, realm) or {}
        order = str(acls.get("order", ""))
        cidrs = acls.get("cidrs")
        permitted = True
        if order:
            listed = isinstance(cidrs, list) and any(_in_cidr(ip, cidr) for cidr in cidrs)
            permitted = listed if order == "allow,deny" else not listed
        key = "acl_permitted" if permitted else "acl_rejected"
        self._line(key, call_id, method=request.method, ip=ip, realm=realm)
        return permitted

    def _internally_sourced(self, request: Request, ip: str) -> bool:
        """DISPATCHER_CLASSIFY_SOURCE: from a media server's address (flags 2: any port), unless the
        original R-URI is this proxy (then it is treated as external)."""
        if self.dispatcher is None or ip != self.dispatcher[0]:
            return False
        try:
            return request.uri.host != self.address[0]
        except SipParseError:
            return True

    def _flood_dropped(self, request: Request, ip: str, port: int, call_id: str | None) -> bool:
        """antiflood-role.cfg ANTIFLOOD_RATE_LIMIT (harness/model/antiflood.py)."""
        if not self.switches.get("antiflood"):
            return False
        flood = FloodRequest(
            method=request.method,
            from_uri=_from_uri(request),
            source_ip=ip,
            source_port=port,
            call_id=call_id or KAMAILIO_NULL,
            in_dialog=self._has_to_tag(request),
            trusted=self._trusted(ip, port),
            internal=self._internally_sourced(request, ip),
        )
        return self.antiflood.drops(flood, self.clock.monotonic())

    def _rate_limited(self, request: Request, path: ReplyPath, call_id: str | None) -> bool:
        """rate-limiter-role.cfg DOS_PREVENTION (harness/model/rate_limiter.py); True: it ended the request
        (603 Over rate Limit; an ACK gets no reply)."""
        if not self.switches.get("rate_limiter"):
            return False
        ip, port = path.peer
        frm, to = request.from_.uri, request.to.uri
        limited = LimitedRequest(
            method=request.method,
            from_user=frm.user or "",
            from_domain=frm.host,
            to_domain=to.host,
            source_ip=ip,
            call_id=call_id or KAMAILIO_NULL,
            trusted=self._trusted(ip, port),
            internal=self._internally_sourced(request, ip),
        )
        decision = self.rate_limiter.check(limited, self.clock.time())
        if request.method != "ACK":  # sl_send_reply never answers an ACK
            for code, reason in decision.replies:
                path.respond(request, code, reason)
        return decision.rejected

    # ------------------------------------------------------------------ relaying
    def _branch_for(self, request: Request, path: ReplyPath) -> str:
        """The SBC's branch, derived from the caller's so a CANCEL maps onto its INVITE."""
        try:
            client_branch = request.top_via.branch or f"{request.get('call-id')}{request.get('cseq')}"
        except SipParseError:
            client_branch = f"{request.get('call-id')}"
        seed = f"{client_branch}|{path.peer[0]}:{path.peer[1]}|{request.get('call-id')}"
        return "z9hG4bK" + hashlib.sha1(seed.encode("utf-8", "surrogateescape")).hexdigest()[:24]

    def _prepare(self, relay: _Relayed) -> bytes:
        """The relayed copy: our Via on top, Max-Forwards decremented (or 10 added); an INVITE also has
        its X- headers replaced as the release's AUTH_HEADERS does (:meth:`_x_auth`) and, outside a
        dialog, our Record-Route just before the caller's Via. Built as bytes in one pass: the segments
        of the caller's message are kept as they came, the new ones end as its start line ends."""
        request, eol = relay.request, relay.request.start_end
        host, port = self._relay_address
        via = f"Via: SIP/2.0/UDP {host}:{port};branch={relay.branch};rport".encode()
        out = [request.start_line, eol, via, eol]
        invite = request.method == "INVITE"
        record_route = invite and not self._has_to_tag(request)
        max_forwards_seen = False
        reserved_only = self.release.sbc_x_auth_for_authorized_only
        for header in request.headers:
            key = canonical_name(header.name)  # (Header.key without a property call a header)
            if invite and (RESERVED_HEADERS.match(key) if reserved_only else key.startswith("x-")):
                continue
            if record_route and key == "via":
                sbc_host, sbc_port = self.address
                out += [f"Record-Route: <sip:{sbc_host}:{sbc_port};lr>".encode(), eol]
                record_route = False
            if key == "max-forwards" and not max_forwards_seen and relay.max_forwards is not None:
                max_forwards_seen = True
                out += [encode(f"{header.name}: {relay.max_forwards}"), eol]
                continue
            out.append(header.raw)
        if not max_forwards_seen and relay.max_forwards is not None:
            out += [f"Max-Forwards: {MAX_FORWARDS_DEFAULT}".encode(), eol]
        if invite and self._x_auth(relay.path):
            ip, peer_port = relay.path.peer
            out += [f"X-AUTH-IP: {ip}".encode(), eol, f"X-AUTH-PORT: {peer_port}".encode(), eol]
        out += [request.blank, request.body]
        return b"".join(out)

    def _x_auth(self, path: ReplyPath) -> bool:
        """AUTH_HEADERS: 4.3 removes every X- header and adds X-AUTH-IP/PORT to every INVITE from
        outside; 5.x removes the reserved ones only and adds X-AUTH-IP/PORT where SETUP_AUTH_ORIGIN ran,
        for a trusted source (not for the SBC's own address, which it authorizes without them)."""
        return not self.release.sbc_x_auth_for_authorized_only or self._trusted(*path.peer)

    def _send_to_media(self, data: bytes) -> None:
        if self._relay is not None:
            self.bus.flush()  # what was logged about the request is in the files before it goes on
            try:
                self._relay.sendto(data)
            except OSError:
                self.on_dispatcher_unreachable()

    def _retransmission(self, request: Request, path: ReplyPath, branch: str) -> bool:
        """A request of a transaction answered (its final again) or being relayed (nothing yet): True."""
        key = (branch, request.method)
        final = self.answered.get(key)
        if final is not None:
            path.send(final)
            return True
        return key in self.transactions

    def _relay_request(self, relay: _Relayed) -> None:
        request, path, branch = relay.request, relay.path, relay.branch  # (not a retransmission: _handle)
        if self.dispatcher is None and request.method == "INVITE":
            # dispatcher-role: ds_select_dst finds nothing before any transaction exists, so the 480
            # goes out statelessly (sl_send_reply), without tm's automatic 100
            self._line("no_servers", request.get("call-id"), primary=PRIMARY_GROUP, backup=BACKUP_GROUP)
            path.respond(request, 480, "All servers busy")
            return
        loop = asyncio.get_running_loop()
        tx = Transaction(request, path, branch, request.method, started=loop.time())
        self.transactions[(branch, request.method)] = tx
        if self._sweep is None:  # bounds the table whatever the media role does
            self._sweep = loop.call_later(TRANSACTION_SWEEP, self._sweep_transactions)
        if request.method == "INVITE":
            path.respond(request, 100, "Attempting to connect your call")
            tx.probe = self._probes.add(tx)
        self._send_to_media(self._prepare(relay))

    def _relay_cancel(self, relay: _Relayed) -> None:
        invite = self.transactions.get((relay.branch, "INVITE"))
        if invite is None:  # none relayed (an answered one has left the table)
            relay.path.respond(relay.request, 481, "Call leg/transaction does not exist")
            return
        invite.cancelled = True
        self._relay_request(relay)

    def _relay_ack(self, relay: _Relayed) -> None:
        key = (relay.branch, "INVITE")
        if key in self.answered or key in self.transactions:
            return  # ACK of a negative final: hop by hop, the SBC already acknowledged it
        self._send_to_media(self._prepare(relay))

    # ------------------------------------------------------------------ media side
    def _from_media(self, data: bytes, _source: Address) -> None:
        try:
            self.on_media_message(data)
        except Exception:
            _log.exception("SBC failed on a message from the media role")

    def on_media_message(self, data: bytes) -> None:
        if data.startswith(b"SIP/2.0 100 ") and self._media_trying(data):
            return
        # the media role's answers are read from their bytes (a parse each was ~2% of a call's CPU)
        answer = read_media_answer(data) or parse_media_answer(data)
        if answer is None:
            return
        tx = self.transactions.get((answer.branch, answer.method))
        if tx is None:  # not relayed, or answered already
            return
        self._media_heard(tx)
        start_line = answer.start_line
        if tx.method == "INVITE":
            if answer.code == 100:
                return  # hop by hop: the caller already has our 100
            if answer.code < 200:
                tx.provisional = tx.provisional or answer.code in (180, 183)
            else:
                if not self._has_to_tag(tx.request):  # the failure route handles initial INVITEs only
                    start_line = self._failure_route(tx, answer)
                if answer.code >= 300:
                    self._ack_media(tx, answer.to)
        self._deliver(tx, answer.relayed(start_line), final=answer.code >= 200)

    def _media_trying(self, data: bytes) -> bool:
        """A 100 to a relayed INVITE ends there (hop by hop: the caller has our own 100); all it does is
        tell the dispatcher the media server is alive. Read from its bytes, the one answer of every call
        that needs no parse; False sends anything unusual to the full path."""
        branch, cseq = scan.top_via_branch(data), scan.header(data, "cseq")
        if branch is None or cseq is None or not cseq.endswith(b" INVITE"):
            return False
        tx = self.transactions.get((branch.decode("ascii", "replace"), "INVITE"))
        if tx is not None:
            self._media_heard(tx)
        return True

    @classmethod
    def _media_heard(cls, tx: Transaction) -> None:
        """The media server answered: the dispatcher's probe of it ends."""
        tx.media_heard = True
        cls._stop_probe(tx)

    @staticmethod
    def _stop_probe(tx: Transaction) -> None:
        if tx.probe is not None:
            tx.probe.cancel()
            tx.probe = None

    def _failure_route(self, tx: Transaction, response: MediaAnswer) -> bytes:
        """failure_route[INTERNAL_FAULT]: the start line the caller gets (rewritten or as it came)."""
        host, port = self.dispatcher or ("", 0)
        verdict = rewrite_failure(
            response.code,
            response.reason,
            tx.provisional,
            self.release,
            cancelled=tx.cancelled,
            media_uri=f"sip:{host}:{port}",
            source_ip=tx.client.peer[0],
        )
        for key, values in verdict.lines:
            self._line(key, tx.request.get("call-id"), **values)
        if (verdict.code, verdict.reason) == (response.code, response.reason):
            return response.start_line
        return f"SIP/2.0 {verdict.code} {verdict.reason}".encode()

    def _ack_media(self, tx: Transaction, to: str | None) -> None:
        """tm acknowledges a negative final hop by hop (RFC 3261 §17.1.1.3)."""
        lines = [
            f"ACK {tx.request.uri_text} SIP/2.0",
            f"Via: SIP/2.0/UDP {self._relay_address[0]}:{self._relay_address[1]};branch={tx.branch};rport",
            f"From: {tx.request.get('from')}",
            f"To: {to}",
            f"Call-ID: {tx.request.get('call-id')}",
            f"CSeq: {tx.request.cseq.number} ACK",
            "Max-Forwards: 70",
            "Content-Length: 0",
        ]
        if self._relay is not None:
            self.bus.flush()
            try:
                self._relay.sendto(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"))
            except OSError:
                pass

    def _deliver(self, tx: Transaction, data: bytes, *, final: bool) -> None:
        if final:
            self._answer(tx, data)
        tx.client.send(data)

    def _answer(self, tx: Transaction, final: bytes) -> None:
        """The transaction is answered: it leaves the table of those relayed, and from now on only its
        final is kept (``answered``)."""
        key = (tx.branch, tx.method)
        self._forget(tx)
        self.answered[key] = final
        self._lingering.add(key)
        self._stop_probe(tx)

    def _forget(self, tx: Transaction) -> None:
        key = (tx.branch, tx.method)
        if self.transactions.get(key) is tx:
            del self.transactions[key]

    def _forget_answer(self, key: TransactionKey) -> None:
        self.answered.pop(key, None)

    def _sweep_transactions(self) -> None:
        """Forget the transactions relayed over TRANSACTION_MAX ago and still unanswered."""
        loop = asyncio.get_running_loop()
        cutoff = loop.time() - TRANSACTION_MAX
        for key, tx in list(self.transactions.items()):
            if tx.started <= cutoff:
                del self.transactions[key]
        self._sweep = None
        if self.transactions:
            self._sweep = loop.call_later(TRANSACTION_SWEEP, self._sweep_transactions)

    def _probe_expired(self, tx: Transaction) -> None:
        tx.probe = None
        if not tx.media_heard and self.transactions.get((tx.branch, tx.method)) is tx:  # still relayed
            self._no_servers(tx)

    def on_dispatcher_unreachable(self) -> None:
        for tx in list(self.transactions.values()):
            if tx.method == "INVITE" and not tx.media_heard:
                self._stop_probe(tx)
                self._no_servers(tx)

    def _no_servers(self, tx: Transaction) -> None:
        self._line("no_servers", tx.request.get("call-id"), primary=PRIMARY_GROUP, backup=BACKUP_GROUP)
        try:
            data = render_response(tx.request, 480, "All servers busy")
        except (SipParseError, ValueError):
            return
        self._deliver(tx, data, final=True)

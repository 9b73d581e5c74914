"""The SBC role: Kazoo's Kamailio in front of the media role.

Per request, in the order Kazoo's default.cfg / sanity.cfg apply them: core parsing, Via, a second To,
scanner User-Agents, sanity checks, Max-Forwards, OPTIONS, the optional roles, pre-loaded routes; then
an INVITE gets ``100 Attempting to connect your call``, loses every ``X-`` header, gains
``X-AUTH-IP``/``X-AUTH-PORT`` and is relayed over UDP to the dispatcher (the media role). Final answers
coming back go through the INTERNAL_FAULT failure route (:func:`rewrite_failure`). Nothing that
arrives can make this role raise: every handler logs and carries on.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from harness.kazoo.acls import TRUSTED, AclLists, entries_from_store
from harness.kazoo.frontier import rate_limits_answer
from harness.kazoo.kamailio_roles import OPTIONAL_ROLES
from harness.kazoo.logformat import KAMAILIO_NULL
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
from harness.model.store import DocumentStore
from harness.model.transport import Address, ReplyPath, SipListener, widen_receive_buffer
from harness.sip.digest import make_challenge_value, verify
from harness.sip.errors import SipParseError
from harness.sip.framing import FramingError
from harness.sip.headers import parse_challenge
from harness.sip.message import Request, Response, SipMessage, parse_message
from harness.sip.response import make_response
from harness.sip.uri import host_is_ip, parse_uri

_log = logging.getLogger(__name__)

MAX_STREAM_MESSAGE = 80_000  # Kamailio tcp buffer: "buffer overrun, dropping"
MAX_FORWARDS_DEFAULT = 10
MAX_FORWARDS_LIMIT = 50
SCANNERS_EQUAL = ("friendly-scanner", "sundayddr", "pplsip")
SCANNERS_CONTAINING = ("NiceGuy", "PortSIP", "sipcli", "QNQ")
ROLE_SWITCHES = tuple(OPTIONAL_ROLES)
PIKE_TIMER = 1.0  # pike's timers run every tick: UNBLOCK lines are written while nobody sends
PORTSIP_SESSION = re.compile(rb"^s=portsip\.com\r?$", re.M)
TRANSACTION_LINGER = 32.0  # answer retransmissions this long after the final
TRANSACTION_MAX = 180.0  # past Kamailio's 120 s INVITE timer
PROBE_TIMEOUT = 1.0  # the dispatcher's verdict when the media role stays silent


def is_scanner(user_agent: str | None) -> bool:
    if not user_agent:
        return False
    return user_agent in SCANNERS_EQUAL or any(word in user_agent for word in SCANNERS_CONTAINING)


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
    for name in ("From", "To", "Call-ID", "CSeq"):
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


@dataclass(frozen=True)
class FailureVerdict:
    """What the failure route makes of a media-role final answer: the caller's code and reason, and
    the line it logs as (level, area, message) or None."""

    code: int
    reason: str
    log: tuple[str, str, str] | None = None


def rewrite_failure(
    code: int,
    reason: str,
    session_progress: bool,
    profile: str,
    *,
    cancelled: bool = False,
    media_uri: str = "",
) -> FailureVerdict:
    """default.cfg failure_route[INTERNAL_FAULT] for an initial INVITE, branch by branch in its order.

    ``session_progress``: a 180, 183 or 200 was relayed (FLAG_SESSION_PROGRESS). Kazoo 5.x also turns
    reorder's 604 into 486 Unable to Comply; a 480 after progress becomes 603 Endpoint Not Available
    (kazoo-behaviour.md; some default.cfg versions send 486 there)."""
    if code < 300 or cancelled:
        return FailureVerdict(code, reason)
    if code == 407:
        return FailureVerdict(
            code, reason, ("info", "log", f"media {media_uri} challenged the invite, creating redirect")
        )
    if 600 <= code <= 699 and code not in (600, 603, 604, 606):
        new_code = code - 200
        return FailureVerdict(
            new_code, reason, ("info", "failure", f"sending {code} reply as {new_code} {reason}")
        )
    if code == 604 and profile == "kazoo-5":
        return FailureVerdict(486, "Unable to Comply")
    if "call barred" in reason:
        return FailureVerdict(code, reason, ("info", "failure", "ignoring call barred"))
    if session_progress:
        if code == 480:
            return FailureVerdict(
                603, "Endpoint Not Available", ("info", "failure", "overriding reply code 480")
            )
        return FailureVerdict(code, reason, ("info", "failure", "ignoring failure after session progress"))
    if code == 403 and reason == "Forbidden":
        return FailureVerdict(code, reason, ("warning", "failure", "Failed auth from IP {source_ip}"))
    if code in (401, 486):
        return FailureVerdict(code, reason, ("info", "failure", f"auth reply {code} {reason}"))
    if code == 402:
        return FailureVerdict(
            486, "Insufficient Funds", ("info", "failure", "overriding reply code 402 with 486")
        )
    if 400 <= code <= 599:
        return FailureVerdict(486, "Unable to Comply", ("info", "failure", f"internal reply {code} {reason}"))
    return FailureVerdict(code, reason)


def realm_acls(store: DocumentStore, realm: str) -> Mapping[str, object] | None:
    """The ``acls`` object of the account whose ``realm`` is ``realm`` (what frontier answers)."""
    try:
        rows = store.all_docs("accounts", include_docs=True)
    except LookupError:
        return None
    for row in rows:
        doc = row.get("doc")
        if isinstance(doc, dict) and str(doc.get("realm", "")).lower() == realm.lower():
            acls = doc.get("acls")
            return acls if isinstance(acls, dict) else None
    return None


def _in_cidr(ip: str, cidr: object) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        return False


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
    final: bytes | None = None
    probe: asyncio.TimerHandle | None = None


class _Relay(asyncio.DatagramProtocol):
    """The SBC's socket towards the dispatcher: connected, so ICMP port-unreachable is reported."""

    def __init__(self, sbc: SbcRole) -> None:
        self.sbc = sbc

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        try:
            self.sbc.on_media_message(data)
        except Exception:
            _log.exception("SBC failed on a message from the media role")

    def error_received(self, exc: Exception) -> None:
        self.sbc.on_dispatcher_unreachable()


class SbcRole:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        profile: str,
        bus: LogBus,
        store: DocumentStore,
        dispatcher: Address,
        node: str = "ecallmgr@kazoo-model.local",
        sanity_drops_request: bool = True,
        switches: Mapping[str, bool] | None = None,
        probe_timeout: float = PROBE_TIMEOUT,
        clock: Clock = SYSTEM_CLOCK,
        antiflood: AntifloodSettings | None = None,
    ) -> None:
        self.host = host
        self.profile = profile
        self.bus = bus
        self.store = store
        self.dispatcher = dispatcher
        self.node = node
        self.sanity_drops_request = sanity_drops_request
        self.switches = {name: False for name in ROLE_SWITCHES} | dict(switches or {})
        self.probe_timeout = probe_timeout
        self.listener = SipListener(
            host,
            port,
            self._on_message,
            max_stream_message=MAX_STREAM_MESSAGE,
            on_framing_error=self._on_framing,
        )
        self.transactions: dict[tuple[str, str], Transaction] = {}
        self.acls = AclLists()
        self._relay: asyncio.DatagramTransport | None = None
        self._relay_address: Address = (host, 0)
        self.clock = clock
        self.antiflood = AntifloodRole(profile, self._log, settings=antiflood, start=clock.monotonic())
        self.rate_limiter = RateLimiterRole(
            profile, self._log, lambda query: rate_limits_answer(store, query), start=clock.time()
        )
        self._pike_timer: asyncio.TimerHandle | None = None

    @property
    def address(self) -> Address:
        return self.listener.address

    async def start(self) -> Address:
        self.reload_acl()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Relay(self), local_addr=(self.host, 0), remote_addr=self.dispatcher
        )
        widen_receive_buffer(transport)
        self._relay = transport
        self._relay_address = (self.host, int(transport.get_extra_info("sockname")[1]))
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
        for tx in self.transactions.values():
            if tx.probe is not None:
                tx.probe.cancel()

    def reload_acl(self) -> None:
        """The trusted list the optional roles consult: ecallmgr's, for the same node as FreeSWITCH."""
        self.acls = AclLists.build(entries_from_store(self.store, self.node))

    def _trusted(self, ip: str, port: int) -> bool:
        try:
            return self.acls.check(TRUSTED, ip, port) is not None
        except ValueError:
            return False

    # ------------------------------------------------------------------ logging helpers
    def _log(self, level: str, message: str, call_id: str | None, area: str = "end") -> None:
        """A Kamailio line: ``area`` "" for one without the script's prefix (a module's). Kazoo runs
        Kamailio at ``debug = KAZOO_LOG_LEVEL`` (defs.cfg: L_INFO): L_DBG lines are not written."""
        if level != "debug":
            self.bus.kamailio(level, message, call_id, area)

    # ------------------------------------------------------------------ client side
    def _on_framing(self, error: FramingError, peer: Address) -> None:
        if error.reason == "too-large":
            self._log("error", "buffer overrun, dropping", None)
        else:
            self._log("error", "content length not present or unparsable", None)

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
            self._log("error", f"core parsing of SIP message failed ({ip}:{port}/{path.proto})", None)
            path.close()  # Kamailio's TCP reader gives up on the connection; no-op over UDP
            return
        request = message
        call_id = request.get("call-id") or KAMAILIO_NULL  # what the script's $ci prints
        if not vias:
            self._log("error", "no via found in request", None)  # core, before the script: no $ci
            return
        if len(request.all("to")) > 1:
            self._log("error", "second To header not null - dropping message", None)
            return
        # sanity.cfg route[SANITY_CHECK]: sanity, Max-Forwards, scanners, in that order
        insane = sanity_failure(request, path.proto)
        if insane is not None:
            if self.sanity_drops_request:
                self._log("warning", f"dropping insane message from {ip}:{port}", call_id)
            else:
                self._log("warning", f"insane message from {ip}:{port}", call_id)
                path.respond(request, 400, "Bad Request")
            return
        forwarded = self._max_forwards(request, path, call_id)
        if forwarded is None:
            return
        request = forwarded
        user_agent = request.user_agent
        if is_scanner(user_agent):
            self._log("warning", f"dropping message with user-agent {user_agent} from {ip}:{port}", call_id)
            return
        if PORTSIP_SESSION.search(request.body):
            self._log("warning", "dropping message with 's=portsip.com' string in SDP", call_id)
            return
        if request.method != "ACK" and self._retransmission(request, path):
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
        if self._authorization_stop(request, path, call_id):
            return
        if self._has_to_tag(request):  # in-dialog: loose-routed on to the media role
            if request.method == "ACK":
                self._relay_ack(request, path)
            else:
                self._relay_request(request, path)
            return
        self._initial_request(request, path, call_id)

    def _initial_request(self, request: Request, path: ReplyPath, call_id: str | None) -> None:
        """default.cfg: CANCEL/ACK need their transaction, some methods need a dialog, no route-set."""
        if request.method == "CANCEL":
            self._relay_cancel(request, path)
            return
        if request.method == "ACK":
            self._relay_ack(request, path)
            return
        if request.method == "UPDATE":
            self._log("warning", "update outside dialog not allowed", call_id)
            path.respond(request, 403, "Dialog does not exist")
            return
        if request.method in ("BYE", "PRACK"):
            self._log("warning", "originating subsequent requests outside dialog not allowed", call_id)
            path.respond(request, 403, "Dialog does not exist")
            return
        if request.has("route"):
            self._log("warning", "dropping initial request with route-set", call_id)
            path.respond(request, 403, "No pre-loaded routes")
            return
        self._relay_request(request, path)

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
    def _has_to_tag(request: Request) -> bool:
        try:
            return request.to.tag is not None
        except SipParseError:
            return False

    def _max_forwards(self, request: Request, path: ReplyPath, call_id: str | None) -> Request | None:
        """maxfwd's mf_process_maxfwd_header("10") with max_limit 50: the request to relay, or None."""
        value = request.get("max-forwards")
        if value is None:
            return cast(Request, request.add_header("Max-Forwards", str(MAX_FORWARDS_DEFAULT)))
        text = value.strip()
        hops = int(text) if text.isdigit() and len(text) <= 5 else 0
        if hops == 0:
            ip, port = path.peer
            self._log("warning", f"too much hops, not enough barley from {ip}:{port}", call_id)
            path.respond(request, 483, "Too Many Hops")
            return None
        hops = min(hops, MAX_FORWARDS_LIMIT)
        return cast(Request, request.replace_header("Max-Forwards", str(hops - 1)))

    def _filter_roles_stop(self, request: Request, path: ReplyPath, call_id: str | None) -> bool:
        """TRAFFIC_FILTER and ACL, roles Kazoo leaves off by default; True when one ended the request."""
        ip, port = path.peer
        if request.method != "INVITE" or self._has_to_tag(request):
            return False
        trusted = self._trusted(ip, port)
        if self.switches.get("traffic_filter") and not trusted:
            try:
                ip_domain = host_is_ip(request.uri.host)
            except SipParseError:
                ip_domain = False
            if ip_domain:
                self._log("warning", "dropping INVITE request with IP domain", call_id)
                return True
        if self.switches.get("acl") and not trusted and not self._realm_acl_allows(request, ip, call_id):
            path.respond(request, 603, "Rejected by ACL")
            return True
        return False

    def _authorization_stop(self, request: Request, path: ReplyPath, call_id: str | None) -> bool:
        """AUTHORIZATION (after HANDLE_OPTIONS in the route); True when it challenged the request."""
        ip, port = path.peer
        if request.method != "INVITE" or self._has_to_tag(request):
            return False
        if not self.switches.get("authorization") or self._trusted(ip, port):
            return False
        if not self._credentials_ok(request):
            frm = request.from_.uri
            self._log("info", f"challenging INVITE from {frm.user}@{frm.host} {ip}:{port}", call_id, "auth")
            challenge = make_challenge_value(
                frm.host, hashlib.sha1(f"{call_id}{time.time()}".encode()).hexdigest()
            )
            path.respond(
                request, 407, "Proxy Authentication Required", headers=[("Proxy-Authenticate", challenge)]
            )
            return True
        return False

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
        verdict = "permitted" if permitted else "rejected"
        self._log("info", f"{request.method} from {ip} is {verdict} by ACL for {realm}", call_id, "ACL")
        return permitted

    def _internally_sourced(self, request: Request, ip: str) -> bool:
        """DISPATCHER_CLASSIFY_SOURCE: from a media server's address (flags 2: any port), unless the
        original R-URI is this proxy (then it is treated as external)."""
        if ip != self.dispatcher[0]:
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
            from_uri=str(request.from_.uri),
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

    def _credentials_ok(self, request: Request) -> bool:
        value = request.get("proxy-authorization")
        if value is None:
            return False
        try:
            username = parse_challenge(value).params.get("username")
        except SipParseError:
            return False
        for db in self.store.all_dbs():
            if not db.startswith("account/"):
                continue
            for row in self.store.all_docs(db, include_docs=True):
                sip = (row.get("doc") or {}).get("sip")
                if isinstance(sip, dict) and sip.get("username") == username and "password" in sip:
                    return verify(value, request.method, str(sip["password"]))
        return False

    # ------------------------------------------------------------------ relaying
    def _branch_for(self, request: Request, path: ReplyPath) -> str:
        """The SBC's branch, derived from the caller's so a CANCEL maps onto its INVITE."""
        try:
            client_branch = request.top_via.branch or f"{request.get('call-id')}{request.get('cseq')}"
        except SipParseError:
            client_branch = f"{request.get('call-id')}"
        seed = f"{client_branch}|{path.peer[0]}:{path.peer[1]}|{request.get('call-id')}"
        return "z9hG4bK" + hashlib.sha1(seed.encode("utf-8", "surrogateescape")).hexdigest()[:24]

    def _prepare(self, request: Request, path: ReplyPath, branch: str) -> SipMessage:
        """The relayed copy: our Via on top (and for an INVITE: X- headers replaced by X-AUTH-*)."""
        message: SipMessage = request
        if request.method == "INVITE":
            for header in request.headers:
                if header.name.lower().startswith("x-"):
                    message = message.remove_headers(header.name)
            ip, port = path.peer
            message = message.add_header("X-AUTH-IP", ip).add_header("X-AUTH-PORT", str(port))
            if not self._has_to_tag(request):
                sbc_host, sbc_port = self.address
                message = message.insert_header_before(
                    "via", "Record-Route", f"<sip:{sbc_host}:{sbc_port};lr>"
                )
        host, port = self._relay_address
        return message.add_header("Via", f"SIP/2.0/UDP {host}:{port};branch={branch};rport", top=True)

    def _send_to_media(self, message: SipMessage) -> None:
        if self._relay is not None:
            try:
                self._relay.sendto(message.to_bytes())
            except OSError:
                self.on_dispatcher_unreachable()

    def _retransmission(self, request: Request, path: ReplyPath) -> bool:
        """A request of a transaction being relayed: its final again (or nothing yet); True if so."""
        existing = self.transactions.get((self._branch_for(request, path), request.method))
        if existing is None:
            return False
        if existing.final is not None:
            path.send(existing.final)
        return True

    def _relay_request(self, request: Request, path: ReplyPath) -> None:
        branch = self._branch_for(request, path)
        key = (branch, request.method)
        existing = self.transactions.get(key)
        if existing is not None:  # a retransmission: repeat the final, or let the relay run
            if existing.final is not None:
                path.send(existing.final)
            return
        tx = Transaction(request, path, branch, request.method)
        self.transactions[key] = tx
        loop = asyncio.get_running_loop()
        loop.call_later(TRANSACTION_MAX, self._forget, tx)  # bounds the table whatever the media role does
        if request.method == "INVITE":
            path.respond(request, 100, "Attempting to connect your call")
            tx.probe = asyncio.get_running_loop().call_later(self.probe_timeout, self._probe_expired, tx)
        self._send_to_media(self._prepare(request, path, branch))

    def _relay_cancel(self, request: Request, path: ReplyPath) -> None:
        branch = self._branch_for(request, path)
        invite = self.transactions.get((branch, "INVITE"))
        if invite is None or invite.final is not None:
            path.respond(request, 481, "Call leg/transaction does not exist")
            return
        invite.cancelled = True
        self._relay_request(request, path)

    def _relay_ack(self, request: Request, path: ReplyPath) -> None:
        branch = self._branch_for(request, path)
        invite = self.transactions.get((branch, "INVITE"))
        if invite is not None:
            return  # ACK of a negative final: hop by hop, the SBC already acknowledged it
        self._send_to_media(self._prepare(request, path, branch))

    # ------------------------------------------------------------------ media side
    def on_media_message(self, data: bytes) -> None:
        try:
            message = parse_message(data)
            if not isinstance(message, Response):
                return
            via = message.top_via
            key = (via.branch or "", message.cseq.method)
        except SipParseError:
            return
        tx = self.transactions.get(key)
        if tx is None or tx.final is not None:
            return
        tx.media_heard = True
        if tx.probe is not None:
            tx.probe.cancel()
            tx.probe = None
        relayed = message.remove_first("via")
        if tx.method == "INVITE":
            if message.code == 100:
                return  # hop by hop: the caller already has our 100
            if message.code < 200:
                tx.provisional = tx.provisional or message.code in (180, 183)
            else:
                if not self._has_to_tag(tx.request):  # the failure route handles initial INVITEs only
                    relayed = self._failure_route(tx, message, relayed)
                if message.code >= 300:
                    self._ack_media(tx, message)
        self._deliver(tx, relayed.to_bytes(), final=message.code >= 200)

    def _failure_route(self, tx: Transaction, response: Response, relayed: SipMessage) -> SipMessage:
        host, port = self.dispatcher
        verdict = rewrite_failure(
            response.code,
            response.reason,
            tx.provisional,
            self.profile,
            cancelled=tx.cancelled,
            media_uri=f"sip:{host}:{port}",
        )
        if verdict.log is not None:
            level, area, message = verdict.log
            self._log(
                level, message.replace("{source_ip}", tx.client.peer[0]), tx.request.get("call-id"), area
            )
        if (verdict.code, verdict.reason) == (response.code, response.reason):
            return relayed
        return relayed.with_start_line(f"SIP/2.0 {verdict.code} {verdict.reason}".encode())

    def _ack_media(self, tx: Transaction, response: Response) -> None:
        """tm acknowledges a negative final hop by hop (RFC 3261 §17.1.1.3)."""
        lines = [
            f"ACK {tx.request.uri_text} SIP/2.0",
            f"Via: SIP/2.0/UDP {self._relay_address[0]}:{self._relay_address[1]};branch={tx.branch};rport",
            f"From: {tx.request.get('from')}",
            f"To: {response.get('to')}",
            f"Call-ID: {tx.request.get('call-id')}",
            f"CSeq: {tx.request.cseq.number} ACK",
            "Max-Forwards: 70",
            "Content-Length: 0",
        ]
        if self._relay is not None:
            try:
                self._relay.sendto(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"))
            except OSError:
                pass

    def _deliver(self, tx: Transaction, data: bytes, *, final: bool) -> None:
        if final:
            tx.final = data
            asyncio.get_running_loop().call_later(TRANSACTION_LINGER, self._forget, tx)
        tx.client.send(data)

    def _forget(self, tx: Transaction) -> None:
        key = (tx.branch, tx.method)
        if self.transactions.get(key) is tx:
            del self.transactions[key]

    def _probe_expired(self, tx: Transaction) -> None:
        tx.probe = None
        if not tx.media_heard and tx.final is None:
            self._no_servers(tx)

    def on_dispatcher_unreachable(self) -> None:
        for tx in list(self.transactions.values()):
            if tx.method == "INVITE" and not tx.media_heard and tx.final is None:
                if tx.probe is not None:
                    tx.probe.cancel()
                    tx.probe = None
                self._no_servers(tx)

    def _no_servers(self, tx: Transaction) -> None:
        self._log("warning", "no servers available in primary or backup group", tx.request.get("call-id"))
        try:
            data = make_response(tx.request, 480, "All servers busy").to_bytes()
        except (SipParseError, ValueError):
            return
        self._deliver(tx, data, final=True)

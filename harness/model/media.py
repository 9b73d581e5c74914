"""The media role: FreeSWITCH's sofia profile ``sipinterface_1`` as Kazoo configures it.

Checks a request the way sofia-sip does before any dialplan (400/416/420/505, silence without a Via),
then applies ecallmgr's ACLs (``trusted`` / ``authoritative``, loaded at start and on ``reloadacl``),
asks the routing role for the call, and plays the call out: 100, 180, 200 with an SDP answer and
PCMU RTP, or the final error the routing role decided. Kazoo 4.3 challenges a caller outside the ACLs
with 407; Kazoo 5.x (``auth-calls-acl-only``) rejects it with 403.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from harness.kazoo.acls import AUTHORITATIVE, TRUSTED, AclLists, entries_from_store
from harness.kazoo.release import DEFAULTS, KazooRelease
from harness.model.logbus import LogBus
from harness.model.routing import RouteDecision, RoutingRole
from harness.model.rtp import RtpStream, is_loopback
from harness.model.store import DocumentStore
from harness.model.timers import DeadlineQueue
from harness.model.transport import Address, ReplyPath, SipListener
from harness.sip import scan
from harness.sip.digest import make_challenge_value, verify
from harness.sip.errors import SipParseError
from harness.sip.headers import parse_challenge
from harness.sip.message import Request, parse_message
from harness.sip.response import render_response
from harness.sip.sdp import SessionDescription, freeswitch_codecs_offered, make_answer, parse_sdp
from harness.sip.uri import parse_uri

_log = logging.getLogger(__name__)

PROFILE = DEFAULTS.sofia_profile
SUPPORTED_EXTENSIONS = frozenset({"path", "replaces"})  # 100rel and timer are off in Kazoo's profile
KNOWN_METHODS = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "UPDATE", "PRACK", "SUBSCRIBE",
     "NOTIFY", "REFER", "MESSAGE", "PUBLISH"}
)  # fmt: skip
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, UPDATE, REGISTER, REFER, NOTIFY"
RING_TIME = 0.02  # how long a routed call rings before the callee answers
RING_TIMEOUT = 120.0  # Kamailio's INVITE timer ends a call that rings forever
RTP_TIMEOUT = 3600.0
CALL_LINGER = 32.0  # keep a finished call to answer retransmissions (timer J/H)
MAX_STREAM_MESSAGE = 2 * 1024 * 1024  # sofia: 413 over 2 MB

EventSink = Callable[[Mapping[str, Any]], None]


@dataclass(slots=True)
class Call:
    """One inbound call. A finished call lingers CALL_LINGER to answer retransmissions; at load that is
    ~60,000 calls held at once, which the garbage collector scans again and again, so a finished call
    keeps its INVITE as bytes (parsed again on the rare later need) and nothing it no longer uses."""

    call_id: str
    branch: str | None
    _invite: Request | None
    path: ReplyPath
    to_tag: str = field(default_factory=lambda: secrets.token_hex(5))
    last: bytes = b""  # the last response sent to the INVITE (for retransmissions)
    final: int | None = None
    answered: bool = False
    ended: bool = False  # hung up, cancelled or finished
    _ended_event: asyncio.Event | None = None  # made for whoever waits on the call's end
    rtp: RtpStream | None = None
    answer_sdp: bytes = b""
    media_off: bool = False  # the callflow asked for dead air
    task: asyncio.Task[None] | None = None
    _invite_bytes: bytes = b""

    @property
    def invite(self) -> Request:
        if self._invite is None:  # finished: let go of by shed()
            self._invite = cast(Request, parse_message(self._invite_bytes))
        return self._invite

    def shed(self) -> None:
        """Keep the INVITE as bytes only (the call is finished)."""
        if self._invite is not None:
            self._invite_bytes, self._invite = self._invite.to_bytes(), None

    def end(self) -> None:
        self.ended = True
        if self._ended_event is not None:
            self._ended_event.set()

    async def ended_within(self, seconds: float) -> bool:
        """Wait for CANCEL/BYE up to ``seconds`` (the modelled timer); True when the call ended."""
        if self.ended:
            return True
        if self._ended_event is None:
            self._ended_event = asyncio.Event()
        try:
            await asyncio.wait_for(self._ended_event.wait(), seconds)
        except TimeoutError:
            return False
        return True

    @property
    def channel(self) -> str:
        try:
            uri = self.invite.from_.uri
            return f"sofia/{PROFILE}/{uri.user or ''}@{uri.host}"
        except SipParseError:
            return f"sofia/{PROFILE}/unknown"


def direct_reach_problem(request: Request, proto: str) -> tuple[int, str, list[tuple[str, str]]] | None:
    """sofia-sip's checks of a request that has a Via: the reply that ends it, or None."""
    if request.version != "SIP/2.0":
        return 505, "Version Not Supported", []
    for name, key in (("From", "from"), ("To", "to"), ("Call-ID", "call-id"), ("CSeq", "cseq")):
        if not request.has(key):
            return 400, f"Missing {name} Header", []
    try:
        cseq = request.cseq
    except SipParseError:
        return 400, "Bad CSeq Header", []
    if request.method not in KNOWN_METHODS:
        return 501, "Not Implemented", [("Allow", ALLOW)]
    if cseq.method != request.method:
        return 400, "CSeq Mismatch", []
    for name, accessor in (("From", "from_"), ("To", "to")):
        try:
            getattr(request, accessor)
        except SipParseError:
            return 400, f"Bad {name} Header", []
    try:
        uri = parse_uri(request.uri_text)
    except SipParseError:
        return 400, "Bad Request-URI", []
    if not uri.is_sip:
        return 416, "Unsupported URI Scheme", []
    try:
        length = request.content_length
    except SipParseError:
        return 400, "Bad Content-Length", []
    if proto == "udp" and length is not None and length > len(request.body):
        return 400, "Bad Content-Length", []
    if request.method not in ("ACK", "CANCEL"):
        try:
            unsupported = [tag for tag in request.require if tag.lower() not in SUPPORTED_EXTENSIONS]
        except SipParseError:
            unsupported = []
        if unsupported:
            return 420, "Bad Extension", [("Unsupported", ", ".join(unsupported))]
    return None


class MediaRole:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        release: KazooRelease,
        store: DocumentStore,
        bus: LogBus,
        routing: RoutingRole,
        node: str,
        events: EventSink | None = None,
        events_wanted: Callable[[], bool] = lambda: True,
        ring_time: float = RING_TIME,
    ) -> None:
        self.ring_time = ring_time
        self.host = host
        self.release = release
        self.store = store
        self.bus = bus
        self.routing = routing
        self.node = node
        self.events = events
        self.events_wanted = events_wanted  # False: nobody listens, the event is not even built
        self.listener = SipListener(
            host, port, self._on_message, max_stream_message=MAX_STREAM_MESSAGE, before_send=bus.flush
        )
        self.acls = AclLists()
        self.calls: dict[str, Call] = {}
        self._lingering: DeadlineQueue[Call] = DeadlineQueue(CALL_LINGER, self._forget)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> Address:
        return self.listener.address

    async def start(self) -> Address:
        self.reload_acl(log=False)
        return await self.listener.start()

    async def stop(self) -> None:
        self._lingering.close()
        await self.listener.close()
        for call in self.calls.values():
            call.end()
            if call.rtp is not None:
                call.rtp.stop()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)

    # ------------------------------------------------------------------ ACLs
    def reload_acl(self, *, log: bool = True) -> list[str]:
        """Rebuild the lists from the store (``reloadacl``); returns the NOTICE lines it logged."""
        skipped: list[str] = []
        self.acls = AclLists.build(entries_from_store(self.store, self.node, skipped), skipped)
        lines = self.acls.lines()
        if log:
            for line in lines:
                self.bus.freeswitch("notice", "switch_core.c", 1866, line)
        return lines

    def _check(self, list_name: str, ip: str, port: int | None) -> Any:
        try:
            return self.acls.check(list_name, ip, port)
        except ValueError:  # X-AUTH-IP that is no address
            return None

    # ------------------------------------------------------------------ input
    def _on_message(self, data: bytes, path: ReplyPath) -> None:
        if data.startswith(b"ACK ") and self._absorbed_ack(data):
            return
        try:
            message = parse_message(data)
        except SipParseError:
            return  # sofia drops what it cannot parse
        if not isinstance(message, Request):
            return  # the model never sends requests of its own that would be answered
        try:
            if not message.vias:
                return
        except SipParseError:
            return
        problem = direct_reach_problem(message, path.proto)
        if problem is not None:
            code, reason, headers = problem
            path.respond(message, code, reason, headers=headers)
            return
        handler = {
            "INVITE": self._on_invite,
            "ACK": self._on_ack,
            "BYE": self._on_bye,
            "CANCEL": self._on_cancel,
            "OPTIONS": self._on_options,
        }.get(message.method, self._on_other)
        handler(message, path)

    def _absorbed_ack(self, data: bytes) -> bool:
        """The ACK of a call without media (the SBC's hop-by-hop ACK of every rejected call) ends its
        transaction and nothing else (:meth:`_on_ack` does nothing for it; sofia never answers an ACK):
        read from its bytes, it needs no parse. False sends anything else to the full path."""
        call_id = scan.header(data, "call-id")
        call = self.calls.get(call_id.decode("utf-8", "surrogateescape")) if call_id is not None else None
        return call is not None and call.rtp is None

    def _on_options(self, request: Request, path: ReplyPath) -> None:
        path.respond(request, 200, "OK", headers=[("Allow", ALLOW)], to_tag=secrets.token_hex(5))

    def _on_other(self, request: Request, path: ReplyPath) -> None:
        path.respond(request, 405, "Method Not Allowed", headers=[("Allow", ALLOW)])

    def _on_ack(self, request: Request, path: ReplyPath) -> None:
        call = self.calls.get(request.call_id)
        if call is None or call.rtp is None or call.rtp.packets_sent or not request.body:
            return
        # late offer: the caller's SDP comes in the ACK
        self._spawn(self._start_rtp(call, request.body))

    def _on_bye(self, request: Request, path: ReplyPath) -> None:
        call = self.calls.get(request.call_id)
        if call is None or not call.answered:
            path.respond(request, 481, "Call/Transaction Does Not Exist")
            return
        path.respond(request, 200, "OK")
        self._hang_up(call, "NORMAL_CLEARING")

    def _on_cancel(self, request: Request, path: ReplyPath) -> None:
        call = self.calls.get(request.call_id)
        if call is None or call.final is not None:
            path.respond(request, 481, "Call/Transaction Does Not Exist")
            return
        path.respond(request, 200, "OK")
        self._respond(call, 487, "Request Terminated")
        self._hang_up(call, "ORIGINATOR_CANCEL")

    def _on_invite(self, request: Request, path: ReplyPath) -> None:
        call_id = request.call_id
        existing = self.calls.get(call_id)
        if existing is not None and request.to.tag is None and existing.branch != request.top_via.branch:
            if existing.final is None:  # a second INVITE while the first is still pending
                path.respond(request, 482, "Loop Detected")
                return
            existing = None  # a new transaction (a retry with credentials): a new call
        if existing is not None:
            if request.to.tag is None:  # a retransmission: answer with what was sent last
                if existing.last:
                    existing.path.send(existing.last)
            elif existing.answered and existing.final == 200:  # re-INVITE: same session
                path.respond(
                    request,
                    200,
                    "OK",
                    headers=[("Contact", self._contact(existing)), ("Content-Type", "application/sdp")],
                )
            else:
                path.respond(request, 481, "Call/Transaction Does Not Exist")
            return
        if request.to.tag is not None:
            path.respond(request, 481, "Call/Transaction Does Not Exist")
            return
        call = Call(call_id, request.top_via.branch, request, path)
        self.calls[call_id] = call
        self._respond(call, 100, "Trying")
        if not self._authorize(call):
            self._finish(call, "CALL_REJECTED")
            return
        try:
            decision = self._begin(call)
        except Exception:  # a model bug ends this call, never the role
            _log.exception("media role failed on call %s", call.call_id)
            self._respond(call, 500, "Internal Server Error")
            self._finish(call, "NORMAL_TEMPORARY_FAILURE")
            return
        if decision.outcome != "routed" and decision.delay <= 0:  # answered now: no task to run
            self._route_error(call, decision)
            return
        call.task = self._spawn(self._run_call(call, decision))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ ACL / digest
    def _authorize(self, call: Call) -> bool:
        """ACL check (with X-AUTH-IP behind an authoritative proxy), then 407/403 for the rest."""
        invite = call.invite
        ip, port = call.path.peer
        auth_ip, auth_port = ip, port
        if self._check(AUTHORITATIVE, ip, port) is not None:
            self.bus.freeswitch(
                "info", "sofia.c", 10411, f"{ip} is a proxy according to the authoritative acl", call.call_id
            )
            x_ip = invite.get("x-auth-ip")
            if x_ip:
                x_port = invite.get("x-auth-port") or ""
                auth_ip, auth_port = x_ip, int(x_port) if x_port.isdigit() else 0
        match = self._check(TRUSTED, auth_ip, auth_port)
        if match is not None:
            self.bus.freeswitch(
                "debug",
                "sofia.c",
                10463,
                f'IP {auth_ip} Approved by acl "{match.list_name}[{match.entry_name}]". Access Granted.',
                call.call_id,
            )
            return True
        if self.release.auth_calls_acl_only:
            self.bus.freeswitch(
                "debug",
                "sofia.c",
                10500,
                f"IP/Port {ip} {port} Rejected by acls and auth-calls-acl-only flag is set, rejecting call",
                call.call_id,
            )
            self._respond(call, 403, "Forbidden")
            return False
        to = invite.to.uri
        target = f"[{to.user or ''}@{to.host}] from ip {ip}"
        credentials = invite.get("proxy-authorization")
        if credentials is None:
            realm = invite.from_.uri.host
            challenge = make_challenge_value(realm, secrets.token_hex(16))
            self.bus.freeswitch(
                "warning",
                "sofia_reg.c",
                1734,
                f"SIP auth challenge (INVITE) on sofia profile '{PROFILE}' for {target}",
                call.call_id,
            )
            self._respond(call, 407, "Proxy Authentication Required", [("Proxy-Authenticate", challenge)])
            return False
        password = self._password_for(credentials)
        if password is not None and verify(credentials, "INVITE", password):
            return True
        self.bus.freeswitch(
            "warning",
            "sofia_reg.c",
            1803,
            f"SIP auth failure (INVITE) on sofia profile '{PROFILE}' for {target}",
            call.call_id,
        )
        self._respond(call, 403, "Forbidden")
        return False

    def _password_for(self, credentials: str) -> str | None:
        """The SIP password of the device whose ``sip.username`` is the credentials' username."""
        try:
            username = parse_challenge(credentials).params.get("username")
        except SipParseError:
            return None
        if not username:
            return None
        for db in self.store.all_dbs():
            if not db.startswith("account/"):
                continue
            for row in self.store.all_docs(db, include_docs=True):
                doc = row.get("doc")
                sip = doc.get("sip") if isinstance(doc, dict) else None
                if isinstance(sip, dict) and sip.get("username") == username and "password" in sip:
                    return str(sip["password"])
        return None

    # ------------------------------------------------------------------ the call
    async def _run_call(self, call: Call, decision: RouteDecision) -> None:
        try:
            await self._play(call, decision)
        except Exception:  # a model bug ends this call, never the role
            _log.exception("media role failed on call %s", call.call_id)
            if call.final is None:
                self._respond(call, 500, "Internal Server Error")
                self._finish(call, "NORMAL_TEMPORARY_FAILURE")

    def _begin(self, call: Call) -> RouteDecision:
        """The channel comes up and the dialplan is asked for (ecallmgr's route request)."""
        self.bus.freeswitch(
            "notice", "switch_channel.c", 1104, f"New Channel {call.channel} [{call.call_id}]", call.call_id
        )
        self._event("CHANNEL_CREATE", call)
        return self.routing.route(call.invite, call.call_id)

    def _route_error(self, call: Call, decision: RouteDecision) -> None:
        if call.final is None and decision.code is not None:
            self._respond(call, decision.code, decision.reason or "")
            cause = "UNALLOCATED_NUMBER" if decision.outcome == "error" else "NO_ROUTE_DESTINATION"
            self._finish(call, cause)

    async def _play(self, call: Call, decision: RouteDecision) -> None:
        invite = call.invite
        if decision.outcome != "routed":
            if decision.delay > 0 and await call.ended_within(decision.delay):
                return
            self._route_error(call, decision)
            return
        self.bus.freeswitch(
            "notice", "mod_kazoo.c", 411, f"{call.channel} {self.node} won call control", call.call_id
        )
        offer: SessionDescription | None = None
        if invite.body:
            try:
                offer = parse_sdp(invite.body)
            except (SipParseError, ValueError):
                offer = None
            if offer is None or not freeswitch_codecs_offered(offer):
                self.bus.freeswitch(
                    "warning", "sofia_glue.c", 1523, "CODEC NEGOTIATION ERROR.  SDP:", call.call_id
                )
                self._respond(call, 488, "Not Acceptable Here")
                self._finish(call, "INCOMPATIBLE_DESTINATION")
                return
        if decision.behaviour == "busy":
            self._respond(call, 486, "Number busy")
            self._finish(call, "USER_BUSY")
            return
        self._respond(call, 180, "Ringing")
        if decision.behaviour == "ring_forever":
            if not await call.ended_within(RING_TIMEOUT) and call.final is None:
                self._respond(call, 480, "Temporarily Unavailable")
                self._finish(call, "NO_ANSWER")
            return
        # the device rings a moment before answering, as a real one does; it also keeps the 180 ahead
        # of the 200 through a multi-process SBC such as Kamailio, which relays replies in parallel
        if await call.ended_within(self.ring_time) or call.final is not None:
            return
        rtp = RtpStream(self.host)
        port = rtp.open()
        call.rtp = rtp
        if offer is not None:
            supported = (
                {"PCMU"}
                if "PCMU" in freeswitch_codecs_offered(offer)
                else set(freeswitch_codecs_offered(offer))
            )
            call.answer_sdp = make_answer(offer, self.host, port, supported) or b""
        else:  # late offer: FreeSWITCH offers in the 200, the caller answers in the ACK
            from harness.sip.sdp import make_offer

            call.answer_sdp = make_offer(self.host, port, ["PCMU"])
        self._respond(
            call,
            200,
            "OK",
            [("Contact", self._contact(call))] + [("Record-Route", v) for v in invite.values("record-route")],
            body=call.answer_sdp,
        )
        call.answered = True
        # an answered call nobody hangs up ends at FreeSWITCH's rtp-timeout (3600 s in Kazoo 4.3)
        asyncio.get_running_loop().call_later(RTP_TIMEOUT, self._time_out, call)
        if decision.behaviour == "no_media":
            call.media_off = True  # dead air: answered, the caller's RTP is taken, not one packet back
            rtp.send = False
        if offer is not None:
            await self._start_rtp(call, invite.body)

    async def _start_rtp(self, call: Call, sdp_body: bytes) -> None:
        if call.rtp is None or call.ended:
            return
        try:
            offer = parse_sdp(sdp_body)
        except (SipParseError, ValueError):
            return
        audio = next((m for m in offer.media if m.media == "audio" and m.port), None)
        if audio is None:
            return
        address = offer.address(audio)
        if address is None or not is_loopback(address):
            return  # never send media off the machine
        await call.rtp.start(address, audio.port)

    def _contact(self, call: Call) -> str:
        try:
            user = call.invite.uri.user or "mod_sofia"
        except SipParseError:
            user = "mod_sofia"
        host, port = self.address
        return f"<sip:{user}@{host}:{port}>"

    def _respond(
        self,
        call: Call,
        code: int,
        reason: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        if call.final is not None:
            return
        try:
            data = render_response(
                call.invite,
                code,
                reason,
                headers=headers or [],
                body=body,
                to_tag=call.to_tag if code > 100 else None,
                content_type="application/sdp" if body else None,
            )
        except (SipParseError, ValueError):
            return
        call.last = data
        if code >= 200:
            call.final = code
        call.path.send(call.last)

    def _time_out(self, call: Call) -> None:
        if not call.ended:
            self._hang_up(call, "MEDIA_TIMEOUT")

    def _hang_up(self, call: Call, cause: str) -> None:
        call.end()
        if call.rtp is not None:
            call.rtp.stop()
        self._finish(call, cause)

    def _finish(self, call: Call, cause: str) -> None:
        call.end()
        rtp = call.rtp
        counts = {}
        if rtp is not None:  # FreeSWITCH's own channel variables for the packet counts
            counts = {
                "variable_rtp_audio_in_packet_count": str(rtp.packets_received),
                "variable_rtp_audio_out_packet_count": str(rtp.packets_sent),
            }
        self._event("CHANNEL_HANGUP_COMPLETE", call, {"Hangup-Cause": cause, **counts})
        call.shed()
        self._lingering.add(call)

    def _forget(self, call: Call) -> None:
        if self.calls.get(call.call_id) is call:
            del self.calls[call.call_id]

    def _event(self, name: str, call: Call, extra: Mapping[str, str] | None = None) -> None:
        if self.events is None or not self.events_wanted():
            return
        invite = call.invite
        try:
            caller = invite.from_.uri.user or ""
            dialed = invite.uri.user or ""
        except SipParseError:
            caller = dialed = ""
        event = {
            "Event-Name": name,
            "Unique-ID": call.call_id,
            "Channel-Call-UUID": call.call_id,
            "Channel-Name": call.channel,
            "Call-Direction": "inbound",
            "Caller-Caller-ID-Number": caller,
            "Caller-Destination-Number": dialed,
            "variable_sip_call_id": call.call_id,
            "variable_sip_received_ip": call.path.peer[0],
            "variable_sip_received_port": str(call.path.peer[1]),
            **(extra or {}),
        }
        try:
            self.events(event)
        except Exception:  # the event socket is a listener, never a reason to fail the call
            _log.exception("publishing %s failed", name)

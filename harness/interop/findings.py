"""Every difference found between our reading of Kazoo (the embedded model, the expectation profiles, the
lab's Kamailio configuration, ../shared/docs/kazoo-behaviour.md) and Kazoo's own Kamailio configuration
running on Debian's Kamailio 5.6.3 (the kazoo-sbc target), with its evidence and how it was settled.

The running configuration is the truth: each finding was settled by changing our side (never a scenario's
expectation to hide it). docs/parity.md renders this list (``python -m harness.interop.parity``); a finding
``seen`` was observed on the running configuration, one ``read`` follows from the configuration's text
and is not on the catalog's path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Evidence = Literal["seen", "read"]
BOTH = ("4.3", "5.x")


@dataclass(frozen=True)
class Finding:
    title: str
    releases: tuple[str, ...]  # the Kazoo releases whose configuration does it ("4.3", "5.x")
    request: str  # what was sent
    kamailio: str  # what Kazoo's configuration did: the answer and its log line(s)
    config: str  # where: the configuration's file:line (pristine tree), or Kamailio's core
    reading: str  # what our reading said (model, profile, lab, kazoo-behaviour.md)
    settled: str  # what was changed, where
    evidence: Evidence = "seen"


FINDINGS: tuple[Finding, ...] = (
    Finding(
        "a second To (or From, Call-ID, CSeq)",
        BOTH,
        "INVITE with two To headers (a_second_to_header_is_dropped; RFC 4475 multi01 has two of each)",
        "silence; `ERROR: <core> [core/parser/msg_parser.c:381]: parse_headers(): duplicate To header "
        "field [<100 bytes from the second To>]`, then `receive_msg(): parsing relevant headers failed` and "
        "`receive_msg(): required headers not found in request` (From :407, Call-ID :364, CSeq :394 the "
        "same), and over TCP the connection closed. Only where the second one comes before the last of "
        "the four: receive_msg() parses no further; a later one passes the core and fails sanity's full "
        "parse (`sanity [sanity.c:326]: check_required_headers(): failed to parse headers`, then the "
        "script's `dropping insane message`)",
        "sanity.cfg:25-28 (4.3) / :24-27 (5.x) `$(hdr(To)[1]) != $null` never runs: 5.6's parser refuses "
        "the message before request_route, or its pv fails (`pv_get_hdr_helper(): error parsing headers`)",
        "the script's `second To header not null - dropping message` (the lab produced it from the raw "
        "bytes in `event_route[core:pre-routing]`)",
        "the model meets a duplicate where Kamailio does and logs its lines (harness/model/sbc.py "
        "_duplicate_required, sbc_lines.py CORE); profile `dropped_second_to` requires `parse_headers(): "
        "duplicate To header field` only; the lab's pre-routing check is gone (its core logs the same)",
    ),
    Finding(
        "missing From, To, Call-ID or CSeq",
        BOTH,
        "INVITE without From / To / Call-ID / CSeq (an_invite_missing_a_mandatory_header_is_dropped)",
        "silence; `ERROR: <core> [core/receive.c:447]: receive_msg(): required headers not found in "
        "request`; no script line",
        "Kamailio 5.6 core (receive.c), before sanity.cfg SANITY_CHECK's sanity_check()",
        "`dropping insane message from <ip>:<port>` (sanity.cfg; the lab ran sanity in pre-routing to "
        "produce it)",
        "the model drops it in its core step with the core's line; profile `dropped_missing_headers` "
        "requires that line only; the lab runs sanity in request_route, as Kazoo does",
    ),
    Finding(
        "SIP/7.0 request line",
        BOTH,
        "`INVITE ... SIP/7.0` (a_bad_sip_version_or_uri_scheme_is_insane[version])",
        "silence, and no line at all at Kazoo's log level (the core takes it for a non-SIP message)",
        "Kamailio 5.6 core",
        "sanity's version check: `dropping insane message` (the model logged it)",
        "outcome `dropped_unlogged` (silence, no channel); the model drops a version other than SIP/2.0 "
        "without a line",
    ),
    Finding(
        "Kamailio's core lines",
        BOTH,
        "garbage bytes, an INVITE without Via, a TCP INVITE over 80,000 bytes",
        "`ERROR: <core> [core/receive.c:376]: receive_msg(): core parsing of SIP message failed "
        "(<ip>:<port>/1)` (the transport as a number: 1 UDP, 2 TCP); `[core/receive.c:439]: receive_msg(): "
        "no via found in request`; `[core/tcp_read.c:335]: tcp_read(): buffer overrun, dropping "
        "([<ip>]:<port> -> [<ip>]:<sbc port>)` (the source address twice)",
        "Kamailio 5.6 core",
        "the same texts as script lines (`<script>:`), the transport as `udp`",
        "the model writes them as core lines (harness/model/sbc_lines.py CORE, LogBus.kamailio_core); the "
        "profile's patterns already matched the text",
    ),
    Finding(
        "TCP without Content-Length (4.3)",
        ("4.3",),
        "TCP INVITE without Content-Length (tcp_without_content_length_closes_the_connection)",
        "connection closed; `ERROR: <core> [core/tcp_read.c:1508]: tcp_read_req(): bad request, state=7, "
        "error=4 buf:` and the buffer",
        "Kamailio 5.6 stream reader (tcp_accept_no_cl off)",
        "`content length not present or unparsable`",
        "the model logs the core line; profile `connection_closed` requires `tcp_read_req(): bad request, "
        "state=7, error=4` only",
    ),
    Finding(
        "TCP without Content-Length (5.x)",
        ("5.x",),
        "the same TCP INVITE without Content-Length",
        "100, 180, 200: the INVITE is taken without its body and relayed (without SDP); its body, up to "
        "the blank line ending the carrier's ACK, is read as the next message: `receive_msg(): core "
        "parsing of SIP message failed (<ip>:<port>/2)`, and the connection is closed",
        "http.cfg:1 `tcp_accept_no_cl=yes` (http.cfg is included by default.cfg unconditionally)",
        "the connection is closed without an answer",
        "release field `sbc_accepts_tcp_without_content_length`; the model's stream framer takes such a "
        "message as one without a body (harness/sip/framing.py); the lab sets tcp_accept_no_cl on 5.x; "
        "profile kazoo-5 `connection_closed`: 200, then that core line",
    ),
    Finding(
        "an untrusted INVITE is challenged by Kamailio (5.x)",
        ("5.x",),
        "INVITE from a source in no ACL, 127.0.0.66 (unlisted_carrier_is_challenged and the other "
        "acl_rejected scenarios)",
        "407 Proxy Authentication Required from Kamailio itself, nothing reaches FreeSWITCH; `INFO: "
        "|<call-id>|authorization.cfg:62 (authorization) challenging INVITE from <user>@<host> "
        "(sip:<user>@<host>) <ip>:<port>`",
        "authorization.cfg is included unconditionally (default.cfg:186); MAIN -> AUTHORIZATION "
        '(default.cfg:261) -> not trusted, not internal, not the SBC itself -> auth_challenge(..., "4") '
        "(authorization.cfg:62-63)",
        "403 from FreeSWITCH (`Rejected by acls and auth-calls-acl-only`); kazoo-behaviour.md: a 407 only "
        '"with Kamailio\'s optional AUTHORIZATION role"',
        "release field `sbc_challenges_untrusted`: the model's SBC challenges (harness/model/sbc.py "
        "_authorization_stop), so does the lab (auth module); profile kazoo-5 `acl_rejected`: 407 with the "
        "challenge line; `acl_rejected@media` keeps FreeSWITCH's 403",
    ),
    Finding(
        "the retry with credentials (5.x)",
        ("5.x",),
        "the same INVITE retried with Proxy-Authorization (wrong_credentials_after_the_challenge)",
        "100, then 403 Forbidden 2.0-2.6 s later: Kamailio asks Kazoo's registrar over AMQP "
        "(kazoo_async_query authn_req) and no Kazoo app answers; `WARNING: |<call-id>|authorization.cfg:124 "
        "(kz_authorization_check_timeout) end - failed 0  [<index>:<label>] querying directory for "
        "authentication credentials for <user>@<host> <ip>:<port>`",
        "authorization.cfg:110 (the query), :124-127 (its timeout: 403); AUTHORIZATION_QUERY_TIMEOUT_MS "
        "2500 (:21), ended on the kazoo module's own timer",
        "403 from FreeSWITCH at once",
        "the model does what the stack does with no Kazoo app answering (said in the model, the profile "
        "and docs): 100, then 403 after 2.5 s with that line; the lab the same (async_ms_sleep); profile "
        "kazoo-5 `auth_failed`. A stack whose registrar answers gets authn_err: 403 at once",
    ),
    Finding(
        "an initial INVITE with a Route header (5.x)",
        ("5.x",),
        "trusted carrier, INVITE with `Route: <sip:127.0.0.1;lr>` (an_initial_invite_with_a_route_header)",
        "relayed: 100, 180, 200; the Route header is removed; `call is not from internal source, "
        "recording route`",
        'default.cfg:605-610 (PREPARE_INITIAL_REQUESTS: not internal -> remove_hf("Route"), record_route)',
        "403 No pre-loaded routes (4.3's default.cfg:609-618, and kazoo-behaviour.md)",
        "release field `sbc_removes_initial_route`; model and lab relay without the Route set; profile "
        "kazoo-5 `preloaded_route`: the call routes, cause none (nothing refused it); the scenario's name "
        'no longer says "is refused"',
    ),
    Finding(
        "the 480's line (5.x)",
        ("5.x",),
        "trusted INVITE, no media server in the dispatcher (no_media_server_reachable_gives_480)",
        "480 All servers busy; `WARNING: |<call-id>|dispatcher-role-5.7.cfg:146 (dispatcher_select_routes) "
        "end - no servers available in primary (1) or backup group (2)`",
        "dispatcher-role-5.7.cfg:148 (146 in the ported copy: the port removes two lines above it)",
        "`no servers available in primary or backup group` (4.3's wording)",
        "the model's and the lab's 5.x line; profile kazoo-5 `all_servers_busy`",
    ),
    Finding(
        "5.x's log format",
        ("5.x",),
        "any request",
        "script lines are ` N(pid) LEVEL: |<call-id>|<file>:<line> (<route>) <text>` (xlog's prefix), "
        "no `<script>:`; `end - ` only on lines that end a request; timers and AMQP events show the faked "
        "message's Call-ID `123`",
        "defs.cfg:134 KZ_LOG_SCRIPT_PREFIX, default.cfg:88-89 (the port's log-prefix-stock-xlog edit)",
        "`end - <text>` with the Call-ID in Kamailio's log_prefix",
        'style "prefixed" in harness/kazoo/logformat.py (writer and parser: Call-ID, file, line); the '
        "model writes each 5.x line at its file, line and route (harness/model/sbc_lines.py, checked "
        "against the ported tree by tests/unit/test_model_sbc_lines.py); the lab sets xlog's prefix",
    ),
    Finding(
        "4.3's antiflood and traffic filter count trusted sources",
        ("4.3",),
        "ANTIFLOOD on, 120 OPTIONS in a burst from the trusted 127.0.0.10",
        "the trusted carrier is rate-limited like anyone: `<call-id>|end|dropping request from ... due to "
        "rate of requests with source 127.0.0.10:<port>`",
        "4.3 default.cfg:301 ANTIFLOOD_LIMIT and :305 FILTER_REQUEST run before :318 CLASSIFY_SOURCE, so "
        "their FLAG_TRUSTED_SOURCE tests are never true; 5.x classifies first (default.cfg:200)",
        "trusted sources are exempt (the model, both releases)",
        "release field `sbc_filters_exempt_trusted` (5.x only): the model's antiflood and traffic filter "
        "count trusted sources on 4.3",
    ),
    Finding(
        "the SBC's own address as a carrier (5.x)",
        ("5.x",),
        "INVITE from 127.0.0.1, the SBC's own address (the_sbc_s_own_address_is_not_a_carrier)",
        "Kamailio authorizes it without a challenge and adds no X-AUTH-IP; FreeSWITCH sees only the proxy: "
        "403, `failed auth from ip 127.0.0.1` (default.cfg:898). Not deterministic: the INVITE carries an "
        "empty `0: ` header, or, when the same worker handled a trusted call before, that call's X-AUTH-IP, "
        "X-AUTH-Token... and it routes as that carrier (seen: 6 of 7 INVITEs 403, one 200 with "
        "`X-AUTH-IP: 127.0.0.10`)",
        "authorization.cfg:43-46 (`src_ip == myself` -> authorized, SETUP_AUTH_ORIGIN not run); the "
        "stale headers come from AUTH_HEADERS' xavp `hf` (authorization.cfg:313-338) on stock 5.6",
        "407 (FreeSWITCH's challenge) through the SBC, as on 4.3",
        "the model authorizes the SBC's own address without X-AUTH headers on 5.x; the scenario says it is "
        "4.3-only (`releases: [kazoo-4.3]`) and why: on the running 5.x configuration its answer depends "
        "on the worker's history. Not hidden: recorded here",
    ),
    Finding(
        "X- headers of a relayed INVITE (5.x)",
        ("5.x",),
        "INVITEs from a trusted carrier and from the SBC's own address, as the media role received them",
        "only the reserved headers are removed (`^(X-AUTH|X-KAZOO|X-FS-|Referred-By)`); X-AUTH-IP, "
        "X-AUTH-PORT (and X-AUTH-Token, X-AUTH-URI-User, X-AUTH-URI-Realm, X-AUTH-From-User) are added "
        "for a trusted source only",
        "defs.cfg:31 KZ_RESERVED_HEADERS; authorization.cfg:253-290 SETUP_AUTH_ORIGIN, SETUP_AUTH_TRUSTED",
        "every X- header removed, X-AUTH-IP/PORT added to every INVITE (4.3's auth.cfg:17-36, 55-61)",
        "release field `sbc_x_auth_for_authorized_only`; model and lab (the token and URI headers are not "
        "modelled: FreeSWITCH's ACL check reads X-AUTH-IP only)",
    ),
    Finding(
        "scanners and Max-Forwards (5.x sanity.cfg)",
        ("5.x",),
        "User-Agent containing QNQ; an SDP with `s=portsip.com`; OPTIONS with Max-Forwards 0",
        "5.x drops QNQ and the portsip SDP (`end - dropping message with 's=portsip.com' string in SDP "
        "from <ip>:<port>`, no answer) and answers the OPTIONS 200 Rawr!!; 4.3 routes the QNQ call (200) "
        "and answers the OPTIONS 483",
        '5.x sanity.cfg:50 (`if (!is_method("OPTIONS"))`), :63 (QNQ), :69-75; 4.3 sanity.cfg:52-66',
        "QNQ and the portsip SDP dropped on both releases, Max-Forwards checked on OPTIONS",
        "release fields `sbc_drops_qnq_and_portsip_sdp`, `sbc_max_forwards_skips_options`; model and lab",
    ),
    Finding(
        "the failure route's branches and lines",
        BOTH,
        "media answers 604, 686, 486, 488, 420 (the number_mapping and malformed scenarios)",
        "4.3 logs `<call-id>|failure|internal reply 604 Nope Nope Nope` and relays the 604; 5.x logs "
        "`604 Nope Nope Nope` then `overriding reply code 604 with 486 Unable to Comply` (default.cfg:915, "
        ":928); 5.x's 4xx line is `<code> <reason>` (4.3: `internal reply <code> <reason>`), its 403 line "
        '`failed auth from ip <ip>` (4.3: `Failed auth from IP`), "ignoring failure after session '
        'progress" is DEBUG; 5.x has no 407 branch (a media 407 is one more 4xx: 486) and leaves 607 alone',
        "4.3 default.cfg:781-849; 5.x default.cfg:851-936",
        "no line for the 604; 5.x's texts as 4.3's; a media 407 relayed and 607 rewritten on both",
        "harness/model/sbc.py rewrite_failure returns the release's lines (harness/model/sbc_lines.py); "
        "release fields `sbc_relays_media_407`, `sbc_relays_607`; the lab's 5.x texts; profile kazoo-5 "
        "`unknown_number` requires the override line",
    ),
    Finding(
        "module and core lines before a drop",
        BOTH,
        "Max-Forwards: garbage; a Request-URI scheme Kamailio does not know",
        "`ERROR: maxfwd [mf_funcs.c:69]: is_maxfwd_present(): unable to parse the max forwards number` "
        "before `too much hops, not enough barley`; on 5.x `ERROR: <core> [core/parser/parse_uri.c:1345]: "
        "_parse_ruri(): bad uri <...>` before `dropping insane message` (CLASSIFY_SOURCE's "
        "is_myself($ou) parses the R-URI before sanity runs)",
        "maxfwd module; 5.x default.cfg:200 CLASSIFY_SOURCE before :202 SANITY_CHECK",
        "the script's line alone",
        "the model writes those lines too",
    ),
    Finding(
        "4.3's AUTHORIZATION_ROLE",
        ("4.3",),
        "the optional role (off in the stock local.cfg)",
        "an initial MESSAGE, NOTIFY, SUBSCRIBE or PUBLISH from a source neither trusted nor registered gets "
        "503 Not Registered (`<call-id>|log|not authorized <from> from <ip>:<port>`); INVITEs are not "
        "touched",
        "4.3 authorization-role.cfg:3-24",
        "Kamailio challenges untrusted INVITEs (harness/kazoo/roles.py, the model's `authorization` switch)",
        "the model's `authorization` switch does what the role does; roles.py says so, and that the role "
        "cannot run here: with it on, 4.3 does not parse on Debian's 5.6 (authorization-role.cfg:18 calls "
        "registered() with four parameters). 5.x has no such role: its authorization.cfg is always on",
        "read",
    ),
    Finding(
        "MESSAGE without the MESSAGE_ROLE",
        BOTH,
        "RFC 4475 mpart01 (a MESSAGE with a Route set) from an untrusted source",
        "4.3: 405 Method Not Allowed (before the Route check); 5.x: 407 (its authorization comes first), "
        "else 405",
        '4.3 default.cfg request route `#!else if (is_method("MESSAGE")) sl_send_reply("405", ...)`; '
        "5.x default.cfg MAIN, the same after AUTHORIZATION",
        "403 No pre-loaded routes (the model and the lab went on to the Route check)",
        "the model and the lab answer MESSAGE 405 where Kazoo's configuration does",
    ),
    Finding(
        "an in-dialog request that cannot be loose-routed (5.x)",
        ("5.x",),
        "RFC 5118 mult-ip-in-header: BYE sip:user@host.example.net with a To tag and no Route, from outside",
        "478 Unresolvable destination: 5.x relays it to its Request-URI and looks `host.example.net` up in "
        "DNS (a capture off loopback caught the SRV and A queries); 4.3 answers 481",
        "5.x default.cfg HANDLE_IN_DIALOG_REQUESTS (the NAT role's handle_ruri_alias path)",
        "481 Call Leg/Transaction Does Not Exist (the model and the lab, both releases)",
        "not settled in the model (no corpus or catalog request should make the harness's SBC resolve "
        "names): the conformance run sends Kazoo's configuration no in-dialog request to a Request-URI off "
        "loopback (harness/interop/corpus.py leaves_loopback_through_kazoo)",
    ),
    Finding(
        "REGISTER",
        BOTH,
        "the RFC 4475/5118 REGISTERs (cparam01, regaut01, ipv6-good, ...)",
        "Kazoo's REGISTRAR role (on by default) takes them: 4.3 never answers (`register|no amqp connection "
        "available for default worker in zone local`), 5.x answers `400 Missing Expires` to those without "
        "Expires (`end - missing expires registering <aor> from IP <ip>:<port>`)",
        "registrar-role.cfg (both releases)",
        "405 from the media role (the model and the lab have no registrar)",
        "not modelled (no scenario registers a device); docs/conformance.md says so under each release",
    ),
    Finding(
        "a UDP datagram whose first byte is 0x00 is STUN, not garbage",
        BOTH,
        "garbage_bytes_are_dropped with the session seed 894743 (case seed 1761455840): 300 random bytes "
        "beginning 0x00 0x85",
        "a STUN Binding Error Response (type 0x0111, `Global Failure`) back to the carrier and "
        "`INFO: stun [kam_stun.c:185]: stun_parse_header(): INFO: stun_parse_header: unsupported type of "
        "STUN message: 85`; no `core parsing of SIP message failed` line (seen on 4.3 in a CI run; 5.x "
        "loads the same module)",
        '4.3 default.cfg:108, 5.x default.cfg:9 `loadmodule "stun.so"`; Kamailio\'s core hands a datagram '
        "with a zero first byte to the STUN module (src/core/udp_server.c:760)",
        "any bytes that are not SIP are garbage: a core parse failure and silence (the model, the lab, the "
        "profile's dropped_garbage); the garbage mutator gave a zero first byte for 1 seed in 256",
        "the garbage mutator never starts with 0x00 (harness/sip/mutators.py, "
        "tests/unit/test_sip_mutators.py); STUN itself is not modelled in the model or the lab (no "
        "scenario sends STUN)",
    ),
    Finding(
        "which sources are trusted",
        BOTH,
        "any request (the address table)",
        "permissions' allow_source_address(1): a source matching any row (ip/mask, port 0 = any) is "
        "trusted; ecallmgr's edge/0 gives one row per allowing `trusted` entry and port, none for a deny",
        "4.3 default.cfg:414, 5.x trusted.cfg (TRUSTED_LOAD)",
        "the model's SBC used FreeSWITCH's ACL semantics (most specific entry wins, deny entries count)",
        "harness/kazoo/acls.py edge_sources/edge_trusts: the model's SBC, the lab (its trusted checks) and "
        "the kazoo-sbc address table use the same rows (no catalog scenario differs: the demo has no deny)",
        "read",
    ),
)


def findings_markdown() -> str:
    """The findings as a Markdown table (docs/parity.md)."""
    rows = [
        "| # | difference | release | request | what Kazoo's configuration did | where | our reading | "
        "settled | evidence |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for number, f in enumerate(FINDINGS, 1):
        cells = [str(number), f.title, ", ".join(f.releases), f.request, f.kamailio, f.config, f.reading,
                 f.settled, f.evidence]  # fmt: skip
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows)

"""The lines the model's SBC role logs, as Kazoo's own Kamailio configuration of each release logs them.

Script lines are the configuration's xlog calls: 4.3 writes ``<callid>|<area>|text``, 5.x puts xlog's
prefix ``|<callid>|<file>:<line> (<route>) `` before the text (harness.kazoo.logformat). For 5.x each line
names the file, line and route of its xlog in the running tree — the pristine tree's numbers, shifted
where the 5.x port (harness/kazoo_sbc/edits_5x.py) adds or removes lines before them; the unit test
tests/unit/test_model_sbc_lines.py checks every one against the ported tree, and every 4.3 text against
4.3's. Core lines are Kamailio 5.6.3's own, which both releases run on (what the running configuration
showed: docs/parity.md).

A text is a ``str.format`` template; ``None`` means the release does not log that line (it has no such
check, or logs it below Kazoo's L_INFO).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.kazoo.logformat import kamailio_core_line
from harness.kazoo.release import KazooRelease

Where = tuple[str, int, str]  # file, line, route (lower case, as xlog's prefix prints it)


@dataclass(frozen=True)
class ScriptLine:
    level: str
    area_43: str
    text_43: str | None
    text_5x: str | None
    where_5x: Where | None = None

    def text(self, release: KazooRelease) -> str | None:
        return self.text_5x if release.kamailio_log_style == "prefixed" else self.text_43


_SANITY = "sanity_check"
_FAULT = "internal_fault"

SCRIPT: dict[str, ScriptLine] = {
    # sanity.cfg route[SANITY_CHECK]
    "insane": ScriptLine(
        "warning", "end", "dropping insane message from {ip}:{port}",
        "end - dropping insane message from {ip}:{port}", ("sanity.cfg", 41, _SANITY),
    ),
    "insane_answered": ScriptLine(
        "warning", "end", "insane message from {ip}:{port}",
        "end - insane message from {ip}:{port}", ("sanity.cfg", 44, _SANITY),
    ),
    "too_many_hops": ScriptLine(
        "warning", "end", "too much hops, not enough barley from {ip}:{port}",
        "end - too much hops, not enough barley from {ip}:{port}", ("sanity.cfg", 52, _SANITY),
    ),
    "scanner": ScriptLine(
        "warning", "end", "dropping message with user-agent {ua} from {ip}:{port}",
        "end - dropping message with user-agent {ua} from {ip}:{port}", ("sanity.cfg", 65, _SANITY),
    ),
    "portsip_sdp": ScriptLine(
        "warning", "end", None,
        "end - dropping message with '{sdp_line}' string in SDP from {ip}:{port}",
        ("sanity.cfg", 72, _SANITY),
    ),
    # the optional roles
    "flood": ScriptLine(
        "warning", "end", "dropping request from {from_uri} due to rate of requests with source {ip}:{port}",
        "end - dropping request from {from_uri} due to rate of requests with source {ip}:{port}",
        ("antiflood-role.cfg", 48, "antiflood_rate_limit"),
    ),
    "flood_allowed": ScriptLine(  # kazoo.antiflood_rate_drop = 0: logged and let through
        "warning", "allowed", "request from {from_uri} exceeded rate of requests with source {ip}:{port}",
        "request from {from_uri} exceeded rate of requests with source {ip}:{port}",
        ("antiflood-role.cfg", 51, "antiflood_rate_limit"),
    ),
    "ip_domain": ScriptLine(
        "warning", "end", "dropping {method} request with IP domain",
        "end - dropping {method} request with IP domain",
        ("traffic-filter-role.cfg", 24, "filter_request_domain"),
    ),
    "acl_permitted": ScriptLine(
        "info", "ACL", "{method} from {ip} is permitted by ACL for {realm}",
        "{method} from {ip} is permitted by ACL for {realm}", ("acl-role.cfg", 46, "acl_check"),
    ),
    "acl_rejected": ScriptLine(
        "info", "ACL", "{method} from {ip} is rejected by ACL for {realm}",
        "{method} from {ip} is rejected by ACL for {realm}", ("acl-role.cfg", 51, "acl_check"),
    ),
    # 4.3's optional AUTHORIZATION_ROLE (authorization-role.cfg): no such role in 5.x
    "not_authorized": ScriptLine("info", "log", "not authorized {from_uri} from {ip}:{port}", None),
    # 5.x authorization.cfg (always on)
    "challenging": ScriptLine(
        "info", "auth", None, "challenging {method} from {auth_user} ({auth_uri}) {ip}:{port}",
        ("authorization.cfg", 62, "authorization"),
    ),
    "auth_query_timeout": ScriptLine(
        "warning", "end", None,
        "end - failed {code} {reason} [{index}:{label}] querying directory for authentication "
        "credentials for {auth_user} {ip}:{port}",
        ("authorization.cfg", 124, "kz_authorization_check_timeout"),
    ),
    # default.cfg route[PREPARE_INITIAL_REQUESTS]
    "update_outside_dialog": ScriptLine(
        "warning", "end", "update outside dialog not allowed",
        "end - update outside dialog not allowed", ("default.cfg", 594, "prepare_initial_requests"),
    ),
    "outside_dialog": ScriptLine(
        "warning", "end", "originating subsequent requests outside dialog not allowed",
        "end - originating subsequent requests outside dialog not allowed",
        ("default.cfg", 600, "prepare_initial_requests"),
    ),
    "route_set": ScriptLine("warning", "end", "dropping initial request with route-set", None),
    "record_route": ScriptLine(
        "info", "log", None, "call is not from internal source, recording route",
        ("default.cfg", 608, "prepare_initial_requests"),
    ),
    # the dispatcher role
    "no_servers": ScriptLine(
        "warning", "end", "no servers available in primary or backup group",
        "end - no servers available in primary ({primary}) or backup group ({backup})",
        ("dispatcher-role-5.7.cfg", 146, "dispatcher_select_routes"),
    ),
    # default.cfg failure_route[INTERNAL_FAULT], branch by branch
    "media_challenged": ScriptLine(
        "info", "log", "media {uri} challenged the invite, creating redirect", None
    ),
    "sending_6xx": ScriptLine(
        "info", "failure", "sending {code} reply as {new_code} {reason}",
        "sending {code} reply as {new_code} {reason}", ("default.cfg", 884, _FAULT),
    ),
    "call_barred": ScriptLine(
        "info", "failure", "ignoring call barred", "ignoring call barred", ("default.cfg", 890, _FAULT)
    ),
    "after_progress": ScriptLine("info", "failure", "ignoring failure after session progress", None),
    "override_480": ScriptLine(
        "info", "failure", "overriding reply code 480 with {code}", "overriding reply code 480 with {code}",
        ("default.cfg", 894, _FAULT),
    ),
    "failed_auth": ScriptLine(
        "warning", "failure", "Failed auth from IP {ip}", "failed auth from ip {ip}",
        ("default.cfg", 898, _FAULT),
    ),
    "auth_reply": ScriptLine(
        "info", "failure", "auth reply {code} {reason}", "auth reply {code} {reason}",
        ("default.cfg", 900, _FAULT),
    ),
    "override_402": ScriptLine(
        "info", "failure", "overriding reply code 402 with 486", "overriding reply code 402 with 486",
        ("default.cfg", 902, _FAULT),
    ),
    "internal_reply": ScriptLine(  # a 4xx/5xx before any progress: another media server, else 486
        "info", "failure", "internal reply {code} {reason}", "{code} {reason}", ("default.cfg", 905, _FAULT)
    ),
    "reply_604": ScriptLine(  # 4.3 has no 604 branch: its last one logs it and relays it
        "info", "failure", "internal reply {code} {reason}", "{code} {reason}", ("default.cfg", 915, _FAULT)
    ),
    "override_604": ScriptLine(
        "info", "failure", None, "overriding reply code 604 with {code} {reason}",
        ("default.cfg", 928, _FAULT),
    ),
    "reply_other": ScriptLine(
        "info", "failure", "internal reply {code} {reason}", "{code} {reason}", ("default.cfg", 934, _FAULT)
    ),
}  # fmt: skip


@dataclass(frozen=True)
class CoreLine:
    level: str
    origin: str  # file:line in Kamailio 5.6.3's source, as it prints it
    function: str
    text: str
    module: str = "core"

    def render(self, **values: Any) -> str:
        """The line without its stderr head (the log bus adds `` 0(<pid>) ``)."""
        return kamailio_core_line(
            self.level, self.origin, self.function, self.text.format(**values), module=self.module
        )


# Kamailio 5.6.3's core and modules, before or beside the script (the same in both releases)
CORE: dict[str, CoreLine] = {
    "core_parse_failed": CoreLine(
        "error", "core/receive.c:376", "receive_msg",
        "core parsing of SIP message failed ({ip}:{port}/{proto})",
    ),
    "no_via": CoreLine("error", "core/receive.c:439", "receive_msg", "no via found in request"),
    "relevant_headers": CoreLine(
        "error", "core/receive.c:386", "receive_msg", "parsing relevant headers failed"
    ),
    "required_headers": CoreLine(
        "error", "core/receive.c:447", "receive_msg", "required headers not found in request"
    ),
    # a second From, To, Call-ID or CSeq: the text of 100 bytes from it follows, line breaks included
    "duplicate_to": CoreLine(
        "error", "core/parser/msg_parser.c:381", "parse_headers", "duplicate To header field [{header}]"
    ),
    "duplicate_from": CoreLine(
        "error", "core/parser/msg_parser.c:407", "parse_headers", "duplicate From header field [{header}]"
    ),
    "duplicate_call-id": CoreLine(
        "error", "core/parser/msg_parser.c:364", "parse_headers", "duplicate Call-ID header field [{header}]"
    ),
    "duplicate_cseq": CoreLine(
        "error", "core/parser/msg_parser.c:394", "parse_headers", "duplicate CSeq header field [{header}]"
    ),
    # a second To after the four required headers passes the core; the script's $(hdr(To)[1]) and then
    # sanity's parse of every header meet it
    "pv_headers": CoreLine(
        "error", "pv_core.c:2002", "pv_get_hdr_helper", "error parsing headers", module="pv"
    ),
    "sanity_headers": CoreLine(
        "error", "sanity.c:326", "check_required_headers", "failed to parse headers", module="sanity"
    ),
    "buffer_overrun": CoreLine(
        "error", "core/tcp_read.c:335", "tcp_read",
        "buffer overrun, dropping ([{ip}]:{port} -> [{ip}]:{local_port})",  # sic: the source IP twice
    ),
    # state 7 = headers read, error 4 = TCP_REQ_BAD_LEN; the buffer follows
    "bad_length": CoreLine(
        "error", "core/tcp_read.c:1508", "tcp_read_req", "bad request, state=7, error=4 buf:"
    ),
    "bad_ruri": CoreLine("error", "core/parser/parse_uri.c:1345", "_parse_ruri", "bad uri <{uri}>"),
    # pike's LM_GEN1(pike_log_level = L_WARN) lines (pike_funcs.c of kamailio/kamailio's master: the
    # BLOCK in pike_check_ipaddr(), the UNBLOCK in refresh_node()); {text} is harness.model.pike's
    "pike_block": CoreLine("warning", "pike_funcs.c:135", "pike_check_ipaddr", "{text}", module="pike"),
    "pike_unblock": CoreLine("warning", "pike_funcs.c:315", "refresh_node", "{text}", module="pike"),
    "bad_max_forwards": CoreLine(
        "error", "mf_funcs.c:69", "is_maxfwd_present", "unable to parse the max forwards number",
        module="maxfwd",
    ),
}  # fmt: skip

# The numbers Kamailio's receive_msg() prints for a transport ("... failed (ip:port/1)")
PROTO_NUMBERS = {"udp": 1, "tcp": 2, "tls": 3}

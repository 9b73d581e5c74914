"""The port of Kazoo's 5.x Kamailio configuration (kazoo-configs-kamailio 5.x, written for 2600Hz's
Kamailio fork) to Debian's stock Kamailio 5.6.3: ``EDITS_5X``, applied in order to a temporary copy of the
configuration directory by :func:`port_5x`, plus what else the tree needs to start (the constants below).
docs/kazoo-sbc-5x-port.md lists every edit with its file and reason, and the evidence for each.

Most edits are mechanical: they say in stock 5.6 syntax what the fork's syntax says (``routes(PREFIX)``
becomes the ``route_if_exists`` calls of the routes with that prefix, ``bflags`` become numbered
defines, ``$knode`` the node name it stands for, ...). These change what the configuration does, because
5.6 has no equivalent or because Debian's kazoo module crashes on them; nothing else does:

- ``redirect-ds_uri``, ``fast-pickup-ds_uri`` (with ``no-uri_pvname``): the fork's dispatcher sets
  ``$var(ds_uri)`` to the matched destination of ``ds_is_from_list``; stock 5.6 has no ``uri_pvname``,
  so the port sets it to the URI that was looked up. A 302 redirect (``X-Redirect-Server``) or a fast
  pickup goes to that URI as the media server wrote it, not to the dispatcher row matched by IP alone.
- ``no-ds_rehash_max``: a fork-only dispatcher parameter (re-hash when the hashed destination is
  down); stock 5.6 moves to the next active destination of the set. Same result while all are up.
- ``no-rollingexpire``: the registrar's ``auth_cache`` expires 7200 s after it was written, not after
  it was last read (stock htable has no ``rollingexpire``).
- ``no-ka_interval-ka_flag``: usrloc pings natted UDP registrations every ``timer_interval`` (5 s)
  instead of every 30 s, and all of them, also those the script leaves without ``FLB_KEEP_ALIVE``
  (Linksys SPA8000, SIPp, IPv6, ``Keep-Alive: false``).
- ``no-trusted-query-timer``, ``no-jwt-keys-query-timer``: the two timers that fill the trusted
  sources and the JWT keys with a synchronous ``kazoo_query``, which segfaults in Debian's kazoo module
  and takes Kamailio down 20-30 s after start. The address table is filled directly instead
  (``permissions.addressReload``); the JWT keys table stays as the database has it.

Log lines only: ``log-prefix-stock-xlog`` writes ``|<Call-ID>|<file>:<line> (<route>) `` where the
fork writes ``|$ki|...``; timers and AMQP events, which set ``$ki`` to a fresh id, show the faked
message's Call-ID ``123`` instead, and ``<file>`` is the full path.

Not ported, and broken on Debian whichever edits are made (docs say which roles and timers): the other
synchronous ``kazoo_query`` calls (ACL and RATE_LIMITER roles; the PRESENCE role's fast pickup on an
INVITE with ``Replaces`` or to a ``*3``/``*5`` park extension) and ``$sqlrows`` on SQLite (the presence
notify timers log errors every second; nodes-role inserts into ``dispatcher`` are not followed by the
automatic reload: call ``dispatcher.reload``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.kazoo_sbc.cfgtree import route_blocks
from harness.kazoo_sbc.edit import Edit, EditError, apply_edits

RELEASE = "5.x"

# ---------------------------------------------------------------- what else 5.x needs to start

# Kamailio arguments besides -f/-P/-Y/-w/-DD -E: 8 MB of private memory (the default) is not enough to
# parse the tree ("could not allocate private memory from pkg pool" at authorization.cfg:367).
KAMAILIO_ARGS_5X: tuple[str, ...] = ("-M", "32")

# default.cfg includes "dispatcher-role-MAJOR.cfg" (MAJOR = 5.6: no such file); the edit
# "dispatcher-role-5.7" includes this one, the only one that defines what this default.cfg calls
# (route DISPATCHER_NEXT_ZONE, kazoo.dispatcher_retry_on_604).
DISPATCHER_FILE_5X = "dispatcher-role-5.7.cfg"

# The answer to OPTIONS (readiness): 200 with KZ_OPTIONS_REPLY_MSG.
OPTIONS_REPLY_5X = (200, "Rawr!!")

# RPCs (kamcmd -s unix:<run dir>/kamailio_ctl ...) after rows are written into the database: the
# dispatcher's own reload after a nodes-role insert uses $sqlrows, which db_sqlite lacks, and the
# address table is loaded by no timer once "no-trusted-query-timer" is applied.
RELOAD_RPCS_5X: tuple[str, ...] = ("dispatcher.reload", "permissions.addressReload")


@dataclass(frozen=True)
class SiteValue:
    """A local.cfg site value as 5.x names it: ``#!define NAME value`` or ``#!substdef "!NAME!value!g"``
    (substdef where the name also appears inside strings of the configuration)."""

    name: str
    directive: str  # "define" | "substdef"
    meaning: str

    def line(self, value: str) -> str:
        if self.directive == "substdef":
            return f'#!substdef "!{self.name}!{value}!g"'
        return f"#!define {self.name} {value}"


# What the harness sets in local.cfg (before the user's own lines). KZ_DB_MODULE stays unset: its
# default "kazoo" selects db_kazoo.cfg, which "db_sqlite-for-db_kazoo" makes load db_sqlite.so (there is
# no db_sqlite.cfg in 5.x, so KZ_DB_MODULE sqlite fails to include).
SITE_VALUES_5X: tuple[SiteValue, ...] = (
    SiteValue(
        "MY_HOSTNAME", "substdef", "node name (kamailio@MY_HOSTNAME), ds_ping_from domain, queue names"
    ),
    SiteValue("MY_IP_ADDRESS", "substdef", "the address written into Path/socket rewrites"),
    SiteValue("MY_LOCAL_IP", "define", "the listeners' address (default $HN(i): the machine's address)"),
    SiteValue("SIP_PORT", "define", "UDP and TCP SIP listener (default 5060)"),
    SiteValue("ALG_PORT", "define", "UDP and TCP 'ALG' listener (default 7000)"),
    SiteValue("SIP_S_PORT", "define", "TLS listener of the TLS role (default 5061)"),
    SiteValue("ALG_S_PORT", "define", "TLS 'ALG' listener of the TLS role (default 7001)"),
    SiteValue("WS_PORT", "define", "WebSocket listener of the WEBSOCKETS role (default 5064)"),
    SiteValue("WSS_PORT", "define", "secure WebSocket listener of the WEBSOCKETS role (default 5065)"),
    SiteValue("PROMETHEUS_PORT", "define", "TCP listener of the prometheus stats (default 9494)"),
    SiteValue("KZ_LOCAL_ROUTE_PORT", "substdef", "tcp:127.0.0.1 listener for local requests (5090; edit)"),
    SiteValue("MY_AMQP_URL", "substdef", "amqp://guest:guest@127.0.0.1:PORT"),
    SiteValue("KAZOO_DATA_DIR", "substdef", "directory of the database"),
    SiteValue("KAZOO_DB_URL", "substdef", "sqlite:////abs/path/kazoo.db (four slashes for an absolute path)"),
    SiteValue("CHILDREN", "define", "UDP worker processes (default 25)"),
    SiteValue("TCP_CHILDREN", "define", "TCP worker processes (default 25)"),
)

# The database (SQLite), from the configuration's own db_scripts: source db_scripts/kazoodb-sql.sh with
# DB_ENGINE=db_kazoo and KAMAILIO_SHARE_DIR holding db_kazoo -> /usr/share/kamailio/db_sqlite (the
# db_kazoo engine is SQLite underneath), write sql_db_pre_setup, sql_all_header, sql_header, every file
# of sql_filelist, sql_all_extra_tables, sql_extra_tables, sql_footer, sql_all_footer into sqlite3 (skip
# sql_db_prepare: it writes the fixed path /tmp/.extra_tables); then, as check-kazoodb-sql.sh does,
# recreate each view of DB_VIEWS_5X and run DB_INITS_5X; then create DB_EXTRA_TABLES_5X.
DB_SCHEMA_SCRIPT_5X = "db_scripts/kazoodb-sql.sh"
DB_ENGINE_5X = "db_kazoo"
DB_VIEWS_5X = "db_scripts/vw_*.sql"
DB_INITS_5X = "db_scripts/db_init_*.sql"
DB_EXTRA_TABLES_5X: tuple[str, ...] = (
    # db_extra_check.sql makes it at every start; the presence role inserts into it
    "create table if not exists tmp_probe as select distinct a.event, a.presentity_uri, cast(2 as integer) "
    "action from presentities a inner join active_watchers b on a.presentity_uri = b.presentity_uri and "
    "a.event = b.event where state in('early', 'confirmed', 'onthephone', 'busy')",
)
# Media servers: rows of the dispatcher table, setid 1 (the dispatcher pings them with OPTIONS every
# 10 s: they must answer). Trusted sources: rows of the permissions address table, grp 1.
DISPATCHER_SETID_5X = 1
TRUSTED_GROUP_5X = 1

# ---------------------------------------------------------------- routes(PREFIX)

# The fork's routes(PREFIX) runs every route block named PREFIX_*. For each prefix the tree calls, the
# routes of the whole tree (every role) with that prefix, in definition order (the fork's order is not
# documented; the configuration does not rely on one: each of these routes checks its own condition).
# An empty tuple: an extension point no route of the tree uses.
ROUTES_5X: dict[str, tuple[str, ...]] = {
    "ANTIFLOOD": ("ANTIFLOOD_RATE_LIMIT", "ANTIFLOOD_AUTH_LIMIT"),
    "AUTHORIZATION_CHECK": ("AUTHORIZATION_CHECK_REGISTERED", "AUTHORIZATION_CHECK_TRUSTED"),
    "AUTH_HEADERS": (),
    "BRANCH_HEADERS_TO_EXTERNAL": ("BRANCH_HEADERS_TO_EXTERNAL_RESERVED",),
    "BRANCH_HEADERS_TO_INTERNAL": ("BRANCH_HEADERS_TO_INTERNAL_CORE_UUID",),
    "CLASSIFY_INTERNALLY_SOURCED": (),
    "CLASSIFY_SOURCE": ("CLASSIFY_SOURCE_DISPATCHER", "CLASSIFY_SOURCE_TRUSTED"),
    "CLASSIFY_TRUSTED_SOURCE": (),
    "CORE_INIT_ROUTE": ("CORE_INIT_ROUTE_AUTH_SETUP",),
    "CORE_PROGRESS_ROUTE": (),
    "CORE_REPLY": (),
    "DISPATCHER_MEDIA_CHECK": (),
    "DISPATCHER_RELOADED": ("DISPATCHER_RELOADED_FAST_PICKUP",),
    "DISPATCHER_ROUTES_SELECTED": (),
    "DISPATCHER_SELECT_OVERRIDE": ("DISPATCHER_SELECT_OVERRIDE_FAST_PICKUP",),
    "DISPATCHER_SELECT_ROUTES": (),
    "EXTERNAL_FAULT": (),
    "EXTERNAL_REPLY": (),
    "EXTERNAL_TO_INTERNAL_RELAY": (),
    "HANDLE_AUTHORIZATION": ("HANDLE_AUTHORIZATION_KAZOO",),
    "HANDLE_EXTERNAL_REFER": (),
    "HANDLE_INTERNAL_REFER": (),
    "HANDLE_PUBLISH": (),
    "HANDLE_REGISTER": ("HANDLE_REGISTER_PUSHER", "HANDLE_REGISTER_PN"),
    "HANDLE_SUBSCRIBE": (),
    "INTERNAL_FAULT": (),
    "INTERNAL_REPLY": (),
    "INTERNAL_TO_EXTERNAL_RELAY": (),
    "KZ_AMQP_BINDING": (
        "KZ_AMQP_BINDING_REGISTRAR_FLUSH",
        "KZ_AMQP_BINDING_REGISTRAR_API",
        "KZ_AMQP_BINDING_REGISTRAR_SYNC",
        "KZ_AMQP_BINDING_PRESENCE",
        "KZ_AMQP_BINDING_PRESENCE_API",
        "KZ_AMQP_BINDING_MESSAGE",
        "KZ_AMQP_BINDING_FRONTIERACL",
        "KZ_AMQP_BINDING_NODES",
        "KZ_AMQP_BINDING_TRUSTED",
        "KZ_AMQP_BINDING_JWT_KEYS",
    ),
    "KZ_AUTHORIZATION_FAILED_AUTH": ("KZ_AUTHORIZATION_FAILED_AUTH_ANTIFLOOD_ROLE",),
    "KZ_AUTHORIZATION_SETUP": ("KZ_AUTHORIZATION_SETUP_RM_CONTACT_METHODS",),
    "KZ_AUTHORIZATION_SUCCESS": ("KZ_AUTHORIZATION_SUCCESS_ANTIFLOOD_ROLE",),
    "KZ_DEFERRED_INIT": ("KZ_DEFERRED_INIT_PRESENCE", "KZ_DEFERRED_INIT_FAST_PICKUP"),
    "LOG_REQUEST": ("LOG_REQUEST_CLASSIFIED_SOURCE",),
    "MEDIA_SERVER_DOWN": ("MEDIA_SERVER_DOWN_DISPATCHER", "MEDIA_SERVER_DOWN_RESET_PUBLISHER"),
    "MEDIA_SERVER_RECONNECTED": ("MEDIA_SERVER_RECONNECTED_RESET_PUBLISHER",),
    "MEDIA_SERVER_RESTART": ("MEDIA_SERVER_RESTART_RESET_PUBLISHER",),
    "MEDIA_SERVER_UP": ("MEDIA_SERVER_UP_DISPATCHER", "MEDIA_SERVER_UP_RESET_PUBLISHER"),
    "NODE_HEARTBEAT_CHECK": ("NODE_HEARTBEAT_CHECK_MEDIA_SERVERS",),
    "ON_REGISTRATION": ("ON_REGISTRATION_PUSHER", "ON_REGISTRATION_PN"),
    "PRESENCE_DIALOG_UPDATE": (),
    "REGISTRAR_REG_FLUSH": ("REGISTRAR_REG_FLUSH_ANTIFLOOD_ROLE",),
    "REGISTRAR_REG_SUCCESS": (),
    "REGISTRAR_SEARCH_AOR_INFO": (),
    "ROUTE_TO_EXTERNAL": (
        "ROUTE_TO_EXTERNAL_DISPATCHER_GROUP",
        "ROUTE_TO_EXTERNAL_DISPATCHER_ROUTE",
        "ROUTE_TO_EXTERNAL_AOR",
        "ROUTE_TO_EXTERNAL_KAZOO_ROUTE",
    ),
    "ROUTE_TO_INTERNAL": ("ROUTE_TO_INTERNAL_DISPATCHER",),
    "WS_ON_BEFORE_HANDSHAKE": (),
    "WS_ON_CLOSE": (),
    "WS_ON_SUCCESSFULL_HANDSHAKE": (),
}

# The routes(PREFIX) statements of the tree: file -> {prefix: how many times}.
ROUTES_CALLS_5X: dict[str, dict[str, int]] = {
    "authorization.cfg": {
        "AUTHORIZATION_CHECK": 1,
        "KZ_AUTHORIZATION_SUCCESS": 1,
        "KZ_AUTHORIZATION_FAILED_AUTH": 1,
        "HANDLE_AUTHORIZATION": 1,
        "AUTH_HEADERS": 2,
        "KZ_AUTHORIZATION_SETUP": 1,
    },
    "default.cfg": {
        "CORE_INIT_ROUTE": 1,
        "CORE_PROGRESS_ROUTE": 1,
        "ANTIFLOOD": 1,
        "LOG_REQUEST": 1,
        "CLASSIFY_INTERNALLY_SOURCED": 1,
        "CLASSIFY_SOURCE": 1,
        "ROUTE_TO_EXTERNAL": 2,
        "HANDLE_EXTERNAL_REFER": 1,
        "HANDLE_INTERNAL_REFER": 1,
        "ROUTE_TO_INTERNAL": 1,
        "BRANCH_HEADERS_TO_EXTERNAL": 1,
        "BRANCH_HEADERS_TO_INTERNAL": 1,
        "INTERNAL_TO_EXTERNAL_RELAY": 1,
        "EXTERNAL_TO_INTERNAL_RELAY": 1,
        "EXTERNAL_REPLY": 1,
        "EXTERNAL_FAULT": 1,
        "INTERNAL_REPLY": 1,
        "INTERNAL_FAULT": 1,
        "KZ_DEFERRED_INIT": 1,
        "CORE_REPLY": 1,
    },
    DISPATCHER_FILE_5X: {
        "DISPATCHER_SELECT_ROUTES": 1,
        "DISPATCHER_SELECT_OVERRIDE": 1,
        "DISPATCHER_ROUTES_SELECTED": 1,
        "DISPATCHER_MEDIA_CHECK": 2,
        "DISPATCHER_RELOADED": 1,
    },
    "kazoo-bindings.cfg": {"KZ_AMQP_BINDING": 1},
    "message-role.cfg": {"ROUTE_TO_EXTERNAL": 1},
    "nodes-role.cfg": {
        "NODE_HEARTBEAT_CHECK": 1,
        "MEDIA_SERVER_UP": 1,
        "MEDIA_SERVER_DOWN": 1,
        "MEDIA_SERVER_RESTART": 1,
        "MEDIA_SERVER_RECONNECTED": 1,
    },
    "presence-role.cfg": {"HANDLE_SUBSCRIBE": 1, "HANDLE_PUBLISH": 1, "PRESENCE_DIALOG_UPDATE": 1},
    "registrar-query.cfg": {"REGISTRAR_SEARCH_AOR_INFO": 1},
    "registrar-role.cfg": {
        "HANDLE_REGISTER": 1,
        "KZ_AUTHORIZATION_FAILED_AUTH": 3,
        "KZ_AUTHORIZATION_SUCCESS": 1,
        "ON_REGISTRATION": 1,
        "REGISTRAR_REG_FLUSH": 1,
        "REGISTRAR_REG_SUCCESS": 1,
    },
    "trusted.cfg": {"CLASSIFY_TRUSTED_SOURCE": 1},
    "websockets-role.cfg": {"WS_ON_BEFORE_HANDSHAKE": 1, "WS_ON_SUCCESSFULL_HANDSHAKE": 1, "WS_ON_CLOSE": 1},
}

# The two routes("...$(rm)...") statements of default.cfg: the method is part of the prefix. The
# routes the tree has of that shape, by the part after the method (KZ_LOCAL_OPTIONS_INTERNAL,
# KZ_LOCAL_NOTIFY_PRESENCE); none is named KZ_(method)_START_ROUTE_*.
LOCAL_REQUEST_SUFFIXES_5X: tuple[str, ...] = ("INTERNAL", "PRESENCE")

_ROUTES_REASON = (
    "stock 5.6 has no routes(PREFIX) (the fork runs every route named PREFIX_*): the same routes, "
    "called by name with route_if_exists (a no-op where the role that defines one is off)"
)
_ROUTES_NONE_REASON = (
    "stock 5.6 has no routes(PREFIX); no route of the tree is named PREFIX_*, so the statement does "
    "nothing (an empty statement keeps the block non-empty)"
)


def _routes_edits() -> list[Edit]:
    edits = []
    for file, calls in ROUTES_CALLS_5X.items():
        for prefix, count in calls.items():
            targets = ROUTES_5X[prefix]
            if targets:
                new = r"\1" + " ".join(f'route_if_exists("{name}");' for name in targets)
                reason = _ROUTES_REASON
            else:
                new = rf"\1;  # routes({prefix}): no route is named {prefix}_*"
                reason = _ROUTES_NONE_REASON
            edits.append(
                Edit(f"routes-{prefix}", reason, file, rf'^([ \t]*)routes\("?{prefix}"?\);$', new, count)
            )
    return edits


def _ki(file: str, count: int) -> Edit:
    return Edit(
        "ki-as-var",
        "stock 5.6 has no $ki (the fork's log id, shown by the xlog prefix): the id goes to a script "
        "variable, and the prefix shows the Call-ID (edit log-prefix-stock-xlog)",
        file,
        r"\$ki = ",
        "$var(ki) = ",
        count,
    )


_KNODE_REASON = (
    "stock 5.6 has no $knode: the node name it stands for, kamailio@MY_HOSTNAME (what this "
    "configuration wrote before the fork had $knode)"
)

# ---------------------------------------------------------------- the edits

EDITS_5X: tuple[Edit, ...] = (
    Edit(
        "import-files-as-index",
        "stock 5.6 has no import_files (a glob include): import_file of one index file per glob, which "
        "port_5x writes with the glob's files in name order (none in the pristine tree: no index, no-op)",
        "kamailio.cfg",
        r'^import_files "(\w+)\.d/\*\.cfg"$',
        r'import_file "import-\1.d.cfg"',
        4,
    ),
    Edit(
        "bflags-as-defines",
        "stock 5.6 has no bflags declaration: the three branch flags as the numbers the declaration gives "
        "them (0, 1, 2), the form setbflag() and usrloc's nat_bflag take",
        "flags.cfg",
        r"^bflags\n    FLB_NATB,\n    FLB_KEEP_ALIVE,\n    FLB_UAC_REDIRECT;$",
        "#!define FLB_NATB 0\n#!define FLB_KEEP_ALIVE 1\n#!define FLB_UAC_REDIRECT 2",
    ),
    Edit(
        "db_sqlite-for-db_kazoo",
        "db_kazoo.so is 2600Hz-only; its engine is SQLite: Debian's db_sqlite.so reads the same database "
        "(db_kazoo's query-trace parameters go with it) and db_queries_kazoo.cfg stays",
        "db_kazoo.cfg",
        r'^loadmodule "db_kazoo\.so"\n(?:modparam\("db_kazoo", .*\n)+',
        'loadmodule "db_sqlite.so"\n',
    ),
    Edit(
        "log-prefix-stock-xlog",
        "stock 5.6 keeps '$$' in a define read by $def() (the fork unescapes it), has no $ki and no "
        "{kz.filename}: the same prefix in 5.6 terms, with the Call-ID ($ci) and the file as Kamailio "
        "names it",
        "defs.cfg",
        r"^#!trydef KZ_LOG_SCRIPT_PREFIX \$\$_s\(\|\$\$ki\|\$\$\(cfg\(file\)\{kz\.filename\}\):"
        r"\$\$cfg\(line\) \(\$\$\(cfg\(route\)\{s\.tolower\}\)\) \)$",
        "#!trydef KZ_LOG_SCRIPT_PREFIX $_s(|$ci|$cfg(file):$cfg(line) ($(cfg(route){s.tolower})) )",
    ),
    Edit(
        "local-route-port-define",
        "default.cfg and the message role hard-code the local-request listener tcp:127.0.0.1:5090, which "
        "collides between instances on one machine: a site value KZ_LOCAL_ROUTE_PORT, 5090 by default",
        "defs.cfg",
        r"^(#!trydef KZ_UDP_RAW_MTU 1500\n)",
        r'\1\n#!ifndef KZ_LOCAL_ROUTE_PORT\n#!substdef "!KZ_LOCAL_ROUTE_PORT!5090!g"\n#!endif\n',
    ),
    Edit(
        "local-route-port",
        "the local-request listener on KZ_LOCAL_ROUTE_PORT (edit local-route-port-define)",
        "default.cfg",
        r"^listen=tcp:127\.0\.0\.1:5090$",
        "listen=tcp:127.0.0.1:KZ_LOCAL_ROUTE_PORT",
    ),
    Edit(
        "local-route-port",
        "the message role sends its local requests to KZ_LOCAL_ROUTE_PORT (edit local-route-port-define)",
        "message-role.cfg",
        r'"sip:127\.0\.0\.1:5090;transport=tcp"',
        '"sip:127.0.0.1:KZ_LOCAL_ROUTE_PORT;transport=tcp"',
    ),
    Edit(
        "dispatcher-role-5.7",
        "MAJOR is 5.6 on Debian and there is no dispatcher-role-5.6.cfg; the 5.7 file is the one that "
        "defines what this default.cfg calls (DISPATCHER_NEXT_ZONE, kazoo.dispatcher_retry_on_604)",
        "default.cfg",
        r'^include_file "dispatcher-role-MAJOR\.cfg"$',
        f'include_file "{DISPATCHER_FILE_5X}"',
    ),
    *_routes_edits(),
    Edit(
        "routes-KZ_START_ROUTE",
        _ROUTES_NONE_REASON.replace("PREFIX_*", "KZ_(method)_START_ROUTE_*"),
        "default.cfg",
        r'^([ \t]*)routes\("KZ_\$\(rm\)_START_ROUTE"\);$',
        r'\1;  # routes("KZ_$(rm)_START_ROUTE"): no route is named KZ_(method)_START_ROUTE_*',
    ),
    Edit(
        "routes-KZ_LOCAL",
        _ROUTES_REASON + "; the method stays a variable: one call per route suffix the tree has",
        "default.cfg",
        r'^([ \t]*)routes\("KZ_LOCAL_\$\(rm\)"\);$',
        r"\1"
        + " ".join(f'route_if_exists("KZ_LOCAL_$(rm)_{suffix}");' for suffix in LOCAL_REQUEST_SUFFIXES_5X),
    ),
    Edit(
        "no-uri_pvname",
        "a fork-only dispatcher parameter (the matched destination's URI into $var(ds_uri)); see "
        "redirect-ds_uri and fast-pickup-ds_uri (a behaviour change)",
        DISPATCHER_FILE_5X,
        r'^modparam\("dispatcher", "uri_pvname", "\$var\(ds_uri\)"\)\n',
        "",
    ),
    Edit(
        "no-ds_rehash_max",
        "a fork-only dispatcher parameter; stock 5.6 takes the next active destination when the hashed "
        "one is down (a behaviour change only while a media server is down)",
        DISPATCHER_FILE_5X,
        r'^modparam\("dispatcher", "ds_rehash_max", KZ_DISPATCHER_REHASH_MAX\)\n',
        "",
    ),
    Edit(
        "redirect-ds_uri",
        "without uri_pvname, $var(ds_uri) is the redirect target as the media server wrote it, not the "
        "dispatcher row matched by IP (a behaviour change)",
        "default.cfg",
        r'^([ \t]*)(if \(ds_is_from_list\(-1, 7, "\$T_rpl\(\$hdr\(X-Redirect-Server\)\)"\)\) \{)$',
        r"\1\2\n\1    $var(ds_uri) = $T_rpl($hdr(X-Redirect-Server));",
    ),
    Edit(
        "fast-pickup-ds_uri",
        "without uri_pvname, $var(ds_uri) is the fast-pickup target as looked up, not the dispatcher row "
        "matched by IP (a behaviour change)",
        "presence-fast-pickup.cfg",
        r"^([ \t]*)\$var\(fast_pickup_redirected_to\) = \$var\(ds_uri\);$",
        r"\1$var(ds_uri) = $vn(presence_redirect_to);\n\1$var(fast_pickup_redirected_to) = $var(ds_uri);",
    ),
    _ki("default.cfg", 1),
    _ki(DISPATCHER_FILE_5X, 3),
    _ki("jwt-keys.cfg", 1),
    _ki("nodes-role.cfg", 3),
    _ki("registrar-role.cfg", 1),
    _ki("trusted.cfg", 2),
    Edit(
        "knode-as-node-name",
        _KNODE_REASON + " (the nodes exchange is a fanout: the routing key is not used for delivery)",
        "nodes-role.cfg",
        r'kazoo_publish\("nodes", "\$knode", ',
        'kazoo_publish("nodes", "kamailio@MY_HOSTNAME", ',
    ),
    Edit(
        "knode-as-node-name",
        _KNODE_REASON,
        "message-role.cfg",
        r"^([ \t]*)(\$var\([Pp]ayload\) = .*)\$\(knode\{kz\.encode\}\)(.*)$",
        r'\1$var(knode) = "kamailio@MY_HOSTNAME";\n\1\2$(var(knode){kz.encode})\3',
        2,
    ),
    Edit(
        "no-rollingexpire",
        "a fork-only htable option: auth_cache entries expire 7200 s after they were written, not after "
        "they were last read (a behaviour change)",
        "registrar-role.cfg",
        r"(auth_cache=>size=16;autoexpire=7200;)rollingexpire=1;",
        r"\1",
    ),
    Edit(
        "nat_bflag-number",
        "stock 5.6 has no $bflag(): the branch flag's number (edit bflags-as-defines)",
        "registrar-role.cfg",
        r'^modparamx\("usrloc", "nat_bflag", \$bflag\(FLB_NATB\)\)$',
        'modparam("usrloc", "nat_bflag", FLB_NATB)',
    ),
    Edit(
        "no-ka_interval-ka_flag",
        "fork-only usrloc parameters: stock 5.6 pings the contacts ka_mode selects every timer_interval "
        "(a behaviour change for registered devices)",
        "registrar-role.cfg",
        r'^modparam\("usrloc", "ka_interval", KZ_REGISTRAR_KEEP_ALIVE_INTERVAL\)\n'
        r'modparamx\("usrloc", "ka_flag", \$bflag\(FLB_KEEP_ALIVE\)\)\n',
        "",
    ),
    Edit(
        "no-trusted-query-timer",
        "the timer's synchronous kazoo_query (trusted.query) segfaults in Debian's kazoo module and takes "
        "Kamailio down 30 s after start: the address table is filled directly (a behaviour change)",
        "trusted.cfg",
        r'^modparam\("rtimer", "exec", "timer=trusted_reload;route=TRUSTED_QUERY"\)\n',
        "",
    ),
    Edit(
        "no-jwt-keys-query-timer",
        "the timer's synchronous kazoo_query (jwt.keys.query) segfaults in Debian's kazoo module and takes "
        "Kamailio down 20 s after start: the JWT keys stay as the database has them (a behaviour change)",
        "jwt-keys.cfg",
        r'^modparam\("rtimer", "exec", "timer=keys_reload;route=JWT_KEYS_QUERY"\)\n',
        "",
    ),
    Edit(
        "no-tls_threads_mode",
        "the TLS role sets tls_threads_mode, a core parameter newer than 5.6 (OpenSSL thread handling; "
        "not what is sent)",
        "tls-role.cfg",
        r"^tls_threads_mode = KZ_TLS_THREADS_MODE\n",
        "",
    ),
    Edit(
        "no-tls-init_mode",
        "the TLS role sets the tls module's init_mode, a parameter newer than 5.6 (OpenSSL initialisation; "
        "not what is sent)",
        "tls-role.cfg",
        r'^modparam\("tls", "init_mode", KZ_TLS_INIT_MODE\)\n',
        "",
    ),
    Edit(
        "acc-flags-numbered",
        "stock 5.6 has no $flag(): the accounting flags declared at fixed numbers (28-30, above the 24 "
        "flags the tree declares without one) and given to acc as those numbers",
        "accounting-role.cfg",
        r"^flags\n    FLAG_ACC,\n    FLAG_ACCMISSED,\n    FLAG_ACCFAILED;$",
        "flags\n    FLAG_ACC : 28,\n    FLAG_ACCMISSED : 29,\n    FLAG_ACCFAILED : 30;",
    ),
    *(
        Edit(
            "acc-flags-numbered",
            "stock 5.6 has no $flag(): the number the declaration above gives the flag",
            "accounting-role.cfg",
            rf'^modparamx\("acc", "{param}", \$flag\({flag}\)\)$',
            f'modparam("acc", "{param}", {number})',
        )
        for param, flag, number in (
            ("log_flag", "FLAG_ACC", 28),
            ("log_missed_flag", "FLAG_ACCMISSED", 29),
            ("failed_transaction_flag", "FLAG_ACCFAILED", 30),
        )
    ),
    Edit(
        "siptrace-flag-numbered",
        "stock 5.6 takes no flag name in modparam: FLAG_SIP_TRACE declared at a fixed number (31, above "
        "the tree's other flags) and given to siptrace as that number",
        "sip_trace-role.cfg",
        r"^flags\n    FLAG_SIP_TRACE;$",
        "flags\n    FLAG_SIP_TRACE : 31;",
    ),
    Edit(
        "siptrace-flag-numbered",
        "stock 5.6 takes no flag name in modparam: the number the declaration gives FLAG_SIP_TRACE",
        "sip_trace-role.cfg",
        r'^modparam\("siptrace", "trace_flag", FLAG_SIP_TRACE\)$',
        'modparam("siptrace", "trace_flag", 31)',
    ),
)

# ---------------------------------------------------------------- the port

# The globs of kamailio.cfg's import_files, and the index file edit import-files-as-index includes
# instead of each.
IMPORT_GLOBS_5X: tuple[str, ...] = ("local.d", "defs.d", "listeners.d", "extras.d")


def import_index_name(directory: str) -> str:
    return f"import-{directory}.cfg"


def write_import_indexes(config_dir: Path) -> list[str]:
    """Write the index of each ``import_files "<dir>/*.cfg"`` glob that matches files, in name order (as a
    glob lists them); the index files written. A glob without files needs none: import_file skips it."""
    written = []
    for directory in IMPORT_GLOBS_5X:
        files = sorted((config_dir / directory).glob("*.cfg"))
        if not files:
            continue
        lines = [f'include_file "{path.resolve()}"' for path in files]
        (config_dir / import_index_name(directory)).write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(import_index_name(directory))
    return written


def unported_routes(config_dir: Path) -> list[str]:
    """Routes of a ported tree that the fork's routes() would run and the port's expansion does not call:
    a route an operator's file added with one of the prefixes (the expansion covers the pristine tree)."""
    expanded = {name for names in ROUTES_5X.values() for name in names}
    local = {f"KZ_LOCAL_{suffix}" for suffix in LOCAL_REQUEST_SUFFIXES_5X}
    missing = []
    for name in route_blocks(config_dir):
        if name in expanded:
            continue
        if any(name.startswith(f"{prefix}_") for prefix in ROUTES_5X):
            missing.append(name)
        parts = name.split("_")
        # KZ_(method)_START_ROUTE_* and KZ_LOCAL_<method>_<suffix> (the method has no underscore)
        if name.startswith("KZ_") and "_".join(parts[2:4]) == "START_ROUTE" and len(parts) > 4:
            missing.append(name)
        if name.startswith("KZ_LOCAL_") and len(parts) > 3 and f"KZ_LOCAL_{'_'.join(parts[3:])}" not in local:
            missing.append(name)
    return missing


def port_5x(config_dir: Path) -> list[str]:
    """Port the temporary copy ``config_dir`` of a 5.x configuration directory (the pristine tree or an
    operator's) to Debian's Kamailio 5.6: apply EDITS_5X, write the import_files indexes; the names
    applied. Raises EditError when an anchor is missing or when the tree has routes the expansion of
    routes() would not call (see unported_routes), so nothing runs half-ported."""
    applied = apply_edits(config_dir, EDITS_5X)
    write_import_indexes(config_dir)
    missing = unported_routes(config_dir)
    if missing:
        raise EditError(
            f"routes {', '.join(missing)} of {config_dir} would run from the fork's routes(PREFIX), which "
            "the 5.x port expands to the pristine tree's routes only (add them to ROUTES_5X)"
        )
    return applied


# ---------------------------------------------------------------- docs

DOCS_BEGIN = (
    "<!-- edits-5x: generated by python -m harness.kazoo_sbc.edits_5x --write FILE; do not edit by hand -->"
)
DOCS_END = "<!-- edits-5x: end -->"


def edits_markdown() -> str:
    """The tables of docs/kazoo-sbc-5x-port.md between DOCS_BEGIN and DOCS_END: the edits (grouped by
    name and reason, in order), then what each routes(PREFIX) became."""
    groups: dict[tuple[str, str], dict[str, int]] = {}
    for edit in EDITS_5X:
        generic = edit.reason in (_ROUTES_REASON, _ROUTES_NONE_REASON)
        files = groups.setdefault(("routes-<PREFIX>" if generic else edit.name, edit.reason), {})
        files[edit.file] = files.get(edit.file, 0) + (edit.count or 1)
    rows = ["| # | edit | file (matches) | reason |", "|---|---|---|---|"]
    for n, ((name, reason), files) in enumerate(groups.items(), 1):
        where = ", ".join(f"{file} ({count})" for file, count in files.items())
        rows.append(f"| {n} | `{name}` | {where} | {reason} |")
    expansion = ["", "| routes(PREFIX) | called from | becomes |", "|---|---|---|"]
    for prefix in sorted(ROUTES_5X):
        called = ", ".join(file for file, calls in ROUTES_CALLS_5X.items() if prefix in calls)
        names = ROUTES_5X[prefix]
        becomes = "; ".join(f'`route_if_exists("{r}")`' for r in names) if names else "`;` (no route has it)"
        expansion.append(f"| `{prefix}` | {called} | {becomes} |")
    local = "; ".join(f'`route_if_exists("KZ_LOCAL_$(rm)_{s}")`' for s in LOCAL_REQUEST_SUFFIXES_5X)
    expansion.append(f'| `"KZ_LOCAL_$(rm)"` | default.cfg | {local} |')
    expansion.append('| `"KZ_$(rm)_START_ROUTE"` | default.cfg | `;` (no route has it) |')
    return "\n".join([DOCS_BEGIN, *rows, *expansion, DOCS_END])


def write_docs(path: Path) -> None:
    """Replace the generated block of ``path`` (DOCS_BEGIN ... DOCS_END) with :func:`edits_markdown`."""
    text = path.read_text(encoding="utf-8")
    begin, end = text.index(DOCS_BEGIN), text.index(DOCS_END) + len(DOCS_END)
    path.write_text(text[:begin] + edits_markdown() + text[end:], encoding="utf-8")


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--write"] and len(sys.argv) == 3:
        write_docs(Path(sys.argv[2]))
    else:
        print(edits_markdown())

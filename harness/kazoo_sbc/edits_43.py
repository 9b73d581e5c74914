"""The mechanical edits that make Kazoo 4.3's Kamailio configuration start on Debian's Kamailio 5.6.

Five, each on a temporary copy, each failing loudly when its anchor is gone (docs/kazoo-sbc.md lists them
with their reasons). None changes what the configuration does to a message: they swap a module 2600Hz
built for the stock one it wrapped, pick the dispatcher file written for the closest Kamailio, drop a
module nothing calls, move a fixed-port local listener to a free port, and re-spell one escape.
"""

from __future__ import annotations

from harness.kazoo_sbc.edit import Edit

# The local-route listener's port: the launcher defines it in local.cfg (a free port per instance).
LOCAL_ROUTE_PORT = "KZ_HARNESS_LOCAL_ROUTE_PORT"

EDITS_43: tuple[Edit, ...] = (
    Edit(
        name="sqlite-instead-of-db_kazoo",
        reason="db_kazoo.so is 2600Hz's own build of Kamailio's SQLite driver and is not packaged; "
        "Debian's db_sqlite.so reads the same SQLite file with the same SQL (db_queries_kazoo.cfg)",
        file="default.cfg",
        old=r'^include_file "db_KAMAILIO_DBMS\.cfg"$',
        new='loadmodule "db_sqlite.so"\ninclude_file "db_queries_kazoo.cfg"',
    ),
    Edit(
        name="dispatcher-file-for-5.6",
        reason="the dispatcher role file is picked by Kamailio's major version and 4.3 ships none for "
        "5.6; dispatcher-role-5.5.cfg is written for the same dispatcher API",
        file="default.cfg",
        old=r'^include_file "dispatcher-role-MAJOR\.cfg"$',
        new='include_file "dispatcher-role-5.5.cfg"',
    ),
    Edit(
        name="no-uac_redirect",
        reason="uac_redirect.so does not load on 5.6 without an accounting module to bind to, and no "
        "route of the configuration calls its functions",
        file="default.cfg",
        old=r'^loadmodule "uac_redirect\.so"$',
        new='# loadmodule "uac_redirect.so"  (kazoo-harness: unused, needs the acc API on 5.6)',
    ),
    Edit(
        name="local-route-listener-on-a-free-port",
        reason="the local-route listener is hard-coded to tcp:127.0.0.1:5090, which another Kamailio "
        "on the same machine may hold; the same listener on a free port (only the tm local requests "
        "of the message and keepalive roles use it, sent to the same port)",
        file="default.cfg",
        old=r"^listen=tcp:127\.0\.0\.1:5090$",
        new=f"listen=tcp:127.0.0.1:{LOCAL_ROUTE_PORT}",
    ),
    Edit(
        name="local-route-port-message-role",
        reason="the message role sends its local requests to the local-route listener moved above",
        file="message-role.cfg",
        old=r'"sip:127\.0\.0\.1:5090;transport=tcp"',
        new=f'"sip:127.0.0.1:{LOCAL_ROUTE_PORT};transport=tcp"',
    ),
    Edit(
        name="local-route-port-keepalive-role",
        reason="the keepalive role sends its local requests to the local-route listener moved above",
        file="keepalive-role.cfg",
        old=r'"sip:127\.0\.0\.1:5090;transport=tcp"',
        new=f'"sip:127.0.0.1:{LOCAL_ROUTE_PORT};transport=tcp"',
    ),
    Edit(
        name="presence-mwi-escape",
        reason="5.6's preprocessor does not take the '$$(kzE' escape in a #!define body; '$(kzE' is what "
        "the define expands to once the escape is undone",
        file="presence-role.cfg",
        old=r"^(#!define MWI_PRESENCE_BODY )\$\$\(kzE",
        new=r"\1$(kzE",
    ),
)

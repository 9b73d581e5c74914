"""Preparing Kazoo's own Kamailio configuration: the 4.3 edits on the pristine tree, local.cfg site values
and roles, the database from db_scripts, and the stack's rows (no Kamailio needed)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from harness.kazoo.acls import AclEntry
from harness.kazoo.profile import load_profile
from harness.kazoo.release import KAZOO_4_3, KAZOO_5
from harness.kazoo.roles import DEFAULT_ROLES
from harness.kazoo_sbc.database import (
    AddressRow,
    build_database,
    database_available,
    insert_dispatcher,
    replace_addresses,
)
from harness.kazoo_sbc.edit import Edit, EditError, apply_edits
from harness.kazoo_sbc.edits_43 import EDITS_43, LOCAL_ROUTE_PORT
from harness.kazoo_sbc.launcher import copy_config
from harness.kazoo_sbc.localcfg import SiteValues, roles_of, set_roles, with_site_values
from harness.kazoo_sbc.releases import Ports, SiteInputs, sbc_release
from harness.kazoo_sbc.stackdata import address_rows, dispatcher_rows, trusted_rows
from harness.model.demo import load_demo

PRISTINE_43 = sbc_release("kazoo-4.3").pristine
PRISTINE_5X = sbc_release("kazoo-5").pristine
needs_tree = pytest.mark.skipif(
    not PRISTINE_43.is_dir(), reason=f"{PRISTINE_43} missing (../shared beside the repository)"
)


@pytest.fixture
def tree43(tmp_path: Path) -> Path:
    copy = tmp_path / "kamailio"
    copy_config(PRISTINE_43, copy)
    return copy


@needs_tree
@pytest.mark.parametrize("edit", EDITS_43, ids=lambda e: e.name)
def test_each_43_edit_matches_the_pristine_tree_exactly(edit: Edit) -> None:
    text = (PRISTINE_43 / edit.file).read_text(encoding="utf-8")
    edited = edit.apply(text)
    assert edited != text
    # only the anchored lines changed: every other line of the file is byte for byte the same
    before, after = text.splitlines(), edited.splitlines()
    changed = [line for line in before if line not in after]
    assert 1 <= len(changed) <= 1, changed


@needs_tree
def test_43_edits_apply_in_order_and_do_what_they_say(tree43: Path) -> None:
    names = apply_edits(tree43, EDITS_43)
    assert names == [edit.name for edit in EDITS_43]
    default = (tree43 / "default.cfg").read_text()
    assert 'loadmodule "db_sqlite.so"\ninclude_file "db_queries_kazoo.cfg"' in default
    assert 'include_file "db_KAMAILIO_DBMS.cfg"' not in default
    assert 'include_file "dispatcher-role-5.5.cfg"' in default and "dispatcher-role-MAJOR" not in default
    assert '\nloadmodule "uac_redirect.so"' not in default
    assert f"listen=tcp:127.0.0.1:{LOCAL_ROUTE_PORT}" in default and "127.0.0.1:5090" not in default
    assert "#!define MWI_PRESENCE_BODY $(kzE{" in (tree43 / "presence-role.cfg").read_text()
    # the pristine tree is untouched
    assert "127.0.0.1:5090" in (PRISTINE_43 / "default.cfg").read_text()


@needs_tree
def test_an_edit_whose_anchor_is_gone_fails_loudly(tree43: Path) -> None:
    apply_edits(tree43, EDITS_43)
    with pytest.raises(EditError, match=r"sqlite-instead-of-db_kazoo.*found 0"):
        apply_edits(tree43, EDITS_43[:1])  # already applied: the anchor is no longer there
    with pytest.raises(EditError, match="no file"):
        apply_edits(tree43, [Edit("x", "why", "nope.cfg", "a", "b")])


def test_roles_are_read_back_from_directives_only() -> None:
    text = "#!trydef DISPATCHER_ROLE\n# # #!trydef ANTIFLOOD_ROLE\n#!define TLS_ROLE\n#!undef TLS_ROLE\n"
    assert roles_of(text) == frozenset({"dispatcher"})
    on = set_roles(text, on=frozenset({"antiflood"}), off=frozenset({"dispatcher"}))
    assert roles_of(on) == frozenset({"antiflood"})
    assert "#!trydef ANTIFLOOD_ROLE" in on.splitlines()  # where Kazoo's commented line was


@needs_tree
def test_stock_43_local_cfg_roles() -> None:
    assert roles_of((PRISTINE_43 / "local.cfg").read_text()) == DEFAULT_ROLES


@needs_tree
def test_site_values_replace_only_the_site_lines() -> None:
    original = (PRISTINE_43 / "local.cfg").read_text()
    site = SiteValues(
        substs={"MY_HOSTNAME": "sbc.test", "UDP_SIP": "udp:127.0.0.1:5999"},
        defines={"CHILDREN": "2"},
        listen=("UDP_SIP",),
    )
    written = with_site_values(original, site)
    assert written.startswith("# kazoo-harness: site values")
    assert '#!substdef "!MY_HOSTNAME!sbc.test!g"' in written and "#!define CHILDREN 2" in written
    active_listens = [line for line in written.splitlines() if line.startswith("listen=")]
    assert active_listens == ["listen=UDP_SIP"]  # the operator's four are commented out in place
    assert '# kazoo-harness (site value set above): #!substdef "!UDP_SIP!udp:MY_IP_ADDRESS:5060!g"' in written
    assert roles_of(written) == roles_of(original)
    # every operator line is still there, in order (commented or not): line numbers can be followed
    assert written.count("\n") == original.count("\n") + site.block().count("\n")
    with pytest.raises(ValueError, match="delimiter"):
        SiteValues({"MY_AMQP_URL": "amqp://a!b"}, {}, ()).block()


def _inputs() -> SiteInputs:
    ports = Ports(sip=5999, alg=7999, local_route=5998, tls=5997, tls_alg=7997, ws=5996, wss=5995,
                  prometheus=9999)  # fmt: skip
    return SiteInputs("sbc.test", "127.0.0.1", ports, "amqp://guest:guest@127.0.0.1:5673",
                      Path("/run/x"), Path("/run/x/kazoo.db"), 2)  # fmt: skip


@pytest.mark.skipif(not PRISTINE_5X.is_dir(), reason=f"{PRISTINE_5X} missing (../shared beside the repo)")
def test_5x_site_values_are_ports_and_addresses_without_listen_lines() -> None:
    """5.x makes its listeners itself (listener-defs.cfg) from MY_LOCAL_IP and the ports; KZ_DB_MODULE
    stays unset even where an operator's local.cfg sets it (5.x has no db_sqlite.cfg)."""
    site = sbc_release(KAZOO_5.name).site(_inputs())
    assert site.listen == ()
    assert site.defines["MY_LOCAL_IP"] == "127.0.0.1" and site.defines["SIP_PORT"] == "5999"
    assert site.defines["PROMETHEUS_PORT"] == "9999" and site.substs["KZ_LOCAL_ROUTE_PORT"] == "5998"
    assert site.substs["KAZOO_DB_URL"] == "sqlite:////run/x/kazoo.db"
    assert "KZ_DB_MODULE" not in site.defines and "KZ_DB_MODULE" not in site.substs
    extra = "#!def KZ_DB_MODULE postgres\nlisten=udp:10.0.0.1:5060\n"
    operator = (PRISTINE_5X / "local.cfg").read_text() + extra
    written = with_site_values(operator, site)
    assert "\n#!def KZ_DB_MODULE postgres" not in written and "\nlisten=" not in written
    assert "# kazoo-harness (site value set above): #!def KZ_DB_MODULE postgres" in written
    assert roles_of(written) == DEFAULT_ROLES


def test_43_site_values_keep_the_stock_listen_names() -> None:
    site = sbc_release(KAZOO_4_3.name).site(_inputs())
    assert site.listen == ("UDP_SIP", "TCP_SIP", "UDP_ALG_SIP", "TCP_ALG_SIP")
    assert site.substs["UDP_SIP"] == "udp:127.0.0.1:5999" and site.defines["KZ_DB_MODULE"] == "sqlite"


@needs_tree
@pytest.mark.skipif(database_available() is not None, reason=str(database_available()))
def test_database_from_the_configs_db_scripts(tmp_path: Path) -> None:
    db = build_database(PRISTINE_43 / "db_scripts", tmp_path / "db" / "kazoo.db")
    rows = dispatcher_rows([("127.0.0.1", 11000)], node="freeswitch@fs1")
    insert_dispatcher(db, rows)
    insert_dispatcher(db, rows)  # the nodes role's insert is "where not exists"
    replace_addresses(db, [AddressRow("127.0.0.10", 32), AddressRow("127.0.1.0", 24, 5070)])
    replace_addresses(db, [AddressRow("127.0.0.10", 32)])  # TRUSTED_LOAD empties the table first
    with sqlite3.connect(db) as connection:
        names = {row[0] for row in connection.execute("select name from sqlite_master")}
        assert {"dispatcher", "address", "location", "presentity", "wdispatcher", "tmp_probe"} <= names
        assert connection.execute("select setid, destination, flags from dispatcher").fetchall() == [
            (1, "sip:127.0.0.1:11000", 8)
        ]
        assert connection.execute("select grp, ip_addr, mask, port from address").fetchall() == [
            (1, "127.0.0.10", 32, 0)
        ]
        zone = connection.execute("select zone from wdispatcher").fetchone()
    assert zone == ("local",)  # the view Kazoo's queries read parses the attrs


def test_address_rows_follow_ecallmgr_edge_acls() -> None:
    entries = [
        AclEntry("carrier", "trusted", "allow", "127.0.0.10/32"),
        AclEntry("ports", "trusted", "allow", "127.0.0.20/32", ports=(5070, 5071)),
        AclEntry("denied", "trusted", "deny", "127.0.0.66/32"),
        AclEntry("kamailio_sbc", "authoritative", "allow", "127.0.0.1/32"),
        AclEntry("net", "trusted", "allow", "127.0.1.0/24"),
    ]
    rows = [(r.ip_addr, r.mask, r.port) for r in address_rows(entries)]
    assert rows == [
        ("127.0.0.10", 32, 0),
        ("127.0.0.20", 32, 5070),
        ("127.0.0.20", 32, 5071),
        ("127.0.1.0", 24, 0),
    ]


def test_demo_trusted_rows_are_the_carriers_the_media_role_trusts() -> None:
    rows = trusted_rows(load_demo(), "ecallmgr@kazoo-model.local")
    addresses = {(r.ip_addr, r.mask, r.port) for r in rows}
    assert ("127.0.0.10", 32, 0) in addresses and ("127.0.1.0", 24, 0) in addresses
    assert ("127.0.0.20", 32, 5070) in addresses and ("127.0.0.40", 32, 0) in addresses  # offnet resource
    assert not any(r.ip_addr in ("127.0.0.66", "127.0.0.1", "127.0.0.30") for r in rows)  # node section


def test_dispatcher_rows_like_the_nodes_role() -> None:
    (row,) = dispatcher_rows([("127.0.0.1", 11000)], node="freeswitch@fs1")
    assert (row.setid, row.destination, row.flags) == (1, "sip:127.0.0.1:11000", 8)
    assert row.attrs.startswith("zone=local;profile=sipinterface_1;duid=") and row.attrs.endswith(
        ";node=freeswitch@fs1"
    )


@needs_tree
def test_the_profile_follows_the_roles_a_configuration_turns_on(tmp_path: Path) -> None:
    from harness.targets.kazoo_sbc import configuration_roles

    profile = load_profile("kazoo-4.3")
    assert configuration_roles(profile, None) == frozenset()  # the stock local.cfg: no optional role
    assert profile.with_roles(frozenset()) is profile
    operator = tmp_path / "etc"
    copy_config(PRISTINE_43, operator)
    local = operator / "local.cfg"
    local.write_text(set_roles(local.read_text(), on=frozenset({"antiflood"})))
    followed = profile.with_roles(configuration_roles(profile, operator))
    assert followed.role_on("antiflood") and not followed.role_on("traffic_filter")
    assert followed.release == profile.release and not profile.role_on("antiflood")

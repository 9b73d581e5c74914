"""Temporary changes to a Kazoo stack — ACL entries, number documents, accounts, callflows — made through
CouchDB, followed by what Kazoo needs to see them (``reloadacl`` over the event socket), and restored
exactly afterwards, also on failure, Ctrl-C and (through the journal) ``kill -9``.

    with Provisioner.for_access(target.stack) as prov:
        prov.acl_entry("127.0.0.77")
        prov.number("+14155550177", state="in_service", account_id=acct, callflow=True)
        ...  # run scenarios
    # every document is back as it was (byte-exact JSON, new revisions aside)

Every change is journaled (harness.kazoo.journal) before it is made; ``restore_journal`` replays a
journal backwards. Python API and pytest fixture (``kazoo_provision``) share this class.
"""

from __future__ import annotations

import copy
import json
import secrets as pysecrets
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from harness.kazoo import numbers as kn
from harness.kazoo.access import StackAccess, esl_api
from harness.kazoo.couch import CouchClient, CouchNotFound
from harness.kazoo.journal import Journal, default_journal_dir

Doc = dict[str, Any]
# Seconds since year 0, as Kazoo's pvt_created/pvt_modified (calendar:datetime_to_gregorian_seconds).
GREGORIAN_OFFSET = 62167219200


class ProvisionError(RuntimeError):
    pass


def gregorian_now() -> int:
    return int(time.time()) + GREGORIAN_OFFSET


def without_rev(doc: Doc | None) -> Doc | None:
    if doc is None:
        return None
    return {k: v for k, v in doc.items() if k != "_rev"}


def canonical(doc: Doc | None) -> str:
    """A document's bytes for comparison, revision aside."""
    return json.dumps(without_rev(doc), sort_keys=True, separators=(",", ":"))


class Provisioner:
    """Journaled, reversible document changes on one stack (see the module docs)."""

    def __init__(
        self,
        client: CouchClient,
        *,
        esl: tuple[str, int, str] | None = None,
        node: str | None = None,
        journal_dir: Path | None = None,
        target_ref: str | None = None,
    ) -> None:
        self.client = client
        self.esl = esl
        self.node = node
        self.journal = Journal.create(
            journal_dir or default_journal_dir(),
            {
                "couch_url": client.url,
                "strip_db_slashes": client.strip_db_slashes,
                "esl": [esl[0], esl[1]] if esl else None,
                "target": target_ref,
            },
        )
        self._acl_changed = False
        self._restored = False

    @classmethod
    def for_access(
        cls, access: StackAccess, *, journal_dir: Path | None = None, target_ref: str | None = None
    ) -> Provisioner:
        """A provisioner on the stack ``access`` reaches (a target checks its own safety rules first:
        harness.targets.Target.provisioner). ``target_ref`` is kept in the journal for `restore`."""
        client = _client(access)
        return cls(client, esl=access.esl, node=access.node, journal_dir=journal_dir, target_ref=target_ref)

    # --- the journaled primitive --------------------------------------------------------------------
    def put(self, db: str, doc: Doc) -> str:
        """Create or replace ``doc`` in ``db`` (journaled); returns the new revision."""
        if not self.client.db_exists(db):
            self.journal.append({"kind": "create_db", "db": db})
            self.client.create_db(db)
        before = self.client.get_doc(db, str(doc["_id"]))
        self.journal.append({"kind": "doc", "db": db, "id": doc["_id"], "before": without_rev(before)})
        body = dict(doc)
        body.pop("_rev", None)
        if before is not None:
            body["_rev"] = before["_rev"]
        return self.client.put_doc(db, body)

    def delete(self, db: str, doc_id: str) -> None:
        before = self.client.get_doc(db, doc_id)
        if before is None:
            return
        self.journal.append({"kind": "doc", "db": db, "id": doc_id, "before": without_rev(before)})
        self.client.delete_doc(db, doc_id, before["_rev"])

    def edit(self, db: str, doc_id: str, change: Callable[[Doc], None]) -> str:
        """Apply ``change`` to a copy of the current document (or a new ``{_id}``) and store it."""
        current = self.client.get_doc(db, doc_id)
        doc = copy.deepcopy(current) if current is not None else {"_id": doc_id}
        change(doc)
        return self.put(db, doc)

    # --- Kazoo-shaped helpers -----------------------------------------------------------------------
    def acl_entry(
        self,
        cidr: str,
        *,
        name: str | None = None,
        list_name: str = "trusted",
        type: str = "allow",
        ports: list[int] | None = None,
        section: str | None = None,
        reload: bool = True,
    ) -> str:
        """Add an ACL entry to system_config/ecallmgr (the node section in effect, else ``default``),
        then ``reloadacl``. Returns the entry name."""
        entry_name = name or f"harness_{pysecrets.token_hex(4)}"
        entry: Doc = {
            "type": type,
            "network-list-name": list_name,
            "cidr": cidr,
            "description": "kazoo-harness",
        }
        if ports:
            entry["ports"] = list(ports)

        def change(doc: Doc) -> None:
            chosen = section or (self.node if self.node and "acls" in doc.get(self.node, {}) else "default")
            doc.setdefault(chosen, {}).setdefault("acls", {})[entry_name] = entry

        self.edit(kn.SYSTEM_CONFIG_DB, "ecallmgr", change)
        self._acl_changed = True
        if reload:
            self.reload_acl()
        return entry_name

    def reload_acl(self) -> str | None:
        """What Kazoo needs after an ACL document change: ``api reloadacl`` over the event socket.
        (A real stack caches system_config: run ``sup kapps_config flush ecallmgr`` first.)"""
        if self.esl is None:
            return None
        return esl_api(self.esl, "reloadacl")[0]

    def account(
        self, account_id: str | None = None, *, name: str = "harness account", enabled: bool = True
    ) -> str:
        account_id = account_id or pysecrets.token_hex(16)
        db = kn.account_db(account_id)
        doc: Doc = {
            "_id": account_id,
            "name": name,
            "pvt_type": "account",
            "pvt_enabled": enabled,
            "pvt_account_id": account_id,
            "pvt_account_db": kn.encode_db(db),
            "pvt_created": gregorian_now(),
        }
        self.put(kn.ACCOUNTS_DB, doc)
        self.put(db, doc)
        return account_id

    def callflow(self, account_id: str, numbers: list[str], *, callflow_id: str | None = None) -> str:
        callflow_id = callflow_id or pysecrets.token_hex(16)
        doc: Doc = {
            "_id": callflow_id,
            "pvt_type": "callflow",
            "name": "harness callflow",
            "numbers": numbers,
            "patterns": [],
            "flow": {"module": "device", "data": {}, "children": {}},
            "pvt_account_id": account_id,
            "pvt_account_db": kn.encode_db(kn.account_db(account_id)),
            "pvt_created": gregorian_now(),
            "pvt_modified": gregorian_now(),
            "pvt_vsn": "1",
        }
        self.put(kn.account_db(account_id), doc)
        return callflow_id

    def number(
        self,
        e164: str,
        *,
        state: str = "in_service",
        account_id: str | None = None,
        callflow: bool = True,
        db: str | None = None,
    ) -> Doc:
        """A number document (``db`` overrides its numbers database, e.g. to stage a wrong-database
        case), optionally a callflow for it in the account. Returns the document stored."""
        if state not in kn.ALL_STATES:
            raise ProvisionError(f"unknown number state {state!r}; one of {', '.join(sorted(kn.ALL_STATES))}")
        number_db = db or kn.numbers_db(e164)
        if number_db is None:
            raise ProvisionError(f"{e164!r} is too short to have a numbers database")
        doc: Doc = {
            "_id": e164,
            "pvt_db_name": kn.encode_db(number_db),
            "pvt_state": state,
            "pvt_ported_in": False,
            "pvt_module_name": "knm_local",
            "pvt_type": "number",
            "pvt_features": {},
            "pvt_created": gregorian_now(),
            "pvt_modified": gregorian_now(),
        }
        if account_id:
            doc["pvt_assigned_to"] = account_id
            doc["pvt_authorizing_account"] = account_id
        self.put(number_db, doc)
        if callflow and account_id:
            self.callflow(account_id, [e164])
        return doc

    # --- teardown -----------------------------------------------------------------------------------
    def restore(self) -> list[str]:
        """Undo every change (newest first), reload the ACL if it changed, and drop the journal."""
        if self._restored:
            return []
        actions = restore_journal(self.journal, self.client, esl=self.esl)
        self._restored = True
        return actions

    def __enter__(self) -> Provisioner:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with _sigint_deferred():  # a second Ctrl-C must not cut the restore short
            self.restore()
        self.client.close()


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while restoring (main thread only); re-deliver SIGINT afterwards."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        caught.append(signum)

    previous = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if signal.SIGINT in caught:
        raise KeyboardInterrupt


def _client(access: StackAccess) -> CouchClient:
    if not access.couch_url:
        raise ProvisionError("the target names no CouchDB ([couch] url): provisioning needs one")
    return CouchClient(
        access.couch_url,
        access.couch_username,
        access.couch_password,
        strip_db_slashes=access.strip_db_slashes,
    )


def restore_journal(
    journal: Journal, client: CouchClient, *, esl: tuple[str, int, str] | None = None
) -> list[str]:
    """Bring every document the journal names back to its recorded state (newest change first, so the
    oldest ``before`` wins), delete databases the run created, ``reloadacl`` when system_config/ecallmgr
    was touched; then remove the journal. Returns what was done, for the report."""
    actions: list[str] = []
    changes = journal.changes()
    acl_touched = False
    for entry in reversed(changes):
        db = str(entry["db"])
        if entry["kind"] == "create_db":
            try:
                client.delete_db(db)
                actions.append(f"deleted database {db}")
            except CouchNotFound:
                pass
            continue
        doc_id = str(entry["id"])
        acl_touched |= db == kn.SYSTEM_CONFIG_DB and doc_id == "ecallmgr"
        actions.append(_restore_doc(client, db, doc_id, entry.get("before")))
    if acl_touched and esl is not None:
        esl_api(esl, "reloadacl")
        actions.append("reloadacl")
    journal.finish()
    return actions


def _restore_doc(client: CouchClient, db: str, doc_id: str, before: Doc | None) -> str:
    try:
        current = client.get_doc(db, doc_id)
    except CouchNotFound:
        current = None
    if before is None:
        if current is None:
            return f"{db}/{doc_id}: absent, as before"
        client.delete_doc(db, doc_id, current["_rev"])
        return f"{db}/{doc_id}: deleted (did not exist before)"
    if current is not None and canonical(current) == canonical(before):
        return f"{db}/{doc_id}: unchanged"
    if not client.db_exists(db):
        client.create_db(db)
    body = dict(before)
    if current is not None:
        body["_rev"] = current["_rev"]
    client.put_doc(db, body)
    return f"{db}/{doc_id}: restored"


@contextmanager
def provisioned_setup(prov: Provisioner, system_config: dict[str, dict[str, Any]]) -> Iterator[Provisioner]:
    """A scenario's ``setup: system_config`` on a real stack: each document's ``default`` section gets
    the given fields through CouchDB (journaled), restored at the end."""
    with prov:
        for doc_id, fields in system_config.items():
            prov.edit(kn.SYSTEM_CONFIG_DB, doc_id, _set_default_fields(fields))
            if doc_id == "ecallmgr":
                prov.reload_acl()
        yield prov


def _set_default_fields(fields: dict[str, Any]) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        doc.setdefault("default", {}).update(fields)

    return change

"""The embedded model's document store: CouchDB-shaped databases of JSON documents with revisions.

In memory and thread-safe: the model runs in its own thread, clients (the HTTP API, tests) in others.
Documents go in and come out as deep copies, so no caller can change stored state by accident. Every
revision is stored as a new object and never changed in place, so the model's own roles read through
:meth:`DocumentStore.reader`, which hands out the stored objects themselves (no copy per lookup).

On disk (``from_dir`` / ``to_dir``) the shape is CouchDB's own naming: one folder per database, named
URL-encoded (``system_config``, ``numbers%2F%2B1415``, ``account%2Fab%2Fcd%2Fef...``), one
``<doc id URL-encoded>.json`` per document.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from harness.model.subscribers import Subscribers

Doc = dict[str, Any]
ChangeCallback = Callable[[str, str], None]

# CouchDB's rule for database names.
_DB_NAME = re.compile(r"^[a-z][a-z0-9_$()+/-]*$")


class StoreError(Exception):
    """Base of the store's errors; ``status`` is the HTTP status CouchDB would answer."""

    status = 500
    error = "unknown_error"


class NotFound(StoreError, LookupError):
    status = 404
    error = "not_found"


class Conflict(StoreError):
    status = 409
    error = "conflict"


class DbExists(StoreError):
    status = 412
    error = "file_exists"


class InvalidDbName(StoreError, ValueError):
    status = 400
    error = "illegal_database_name"


class DocumentLoadError(StoreError, ValueError):
    """A data directory file that is not a JSON object; the message names the file."""

    status = 400
    error = "bad_request"


@dataclass
class _Database:
    docs: dict[str, Doc] = field(default_factory=dict)
    # Revision numbers of deleted documents: a re-created document continues from there, as in CouchDB.
    tombstones: dict[str, int] = field(default_factory=dict)


def _rev_number(rev: str) -> int:
    number, _, _ = rev.partition("-")
    return int(number) if number.isdigit() else 0


def _next_rev(previous: int, body: Doc) -> str:
    digest = hashlib.md5(json.dumps(body, sort_keys=True).encode(), usedforsecurity=False).hexdigest()
    return f"{previous + 1}-{digest}"


def validate_db_name(name: str) -> None:
    if not _DB_NAME.match(name):
        raise InvalidDbName(f"illegal database name {name!r}: must match {_DB_NAME.pattern}")


class DocumentStore:
    """In-memory CouchDB: ``create_db``, ``get``, ``put`` (returns the new ``_rev``), ``delete``,
    ``all_docs``, ``subscribe``. ``put`` of an existing document needs its current ``_rev``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._dbs: dict[str, _Database] = {}
        self._subscribers: Subscribers[ChangeCallback] = Subscribers()

    # --- databases -------------------------------------------------------------------------------
    def all_dbs(self) -> list[str]:
        with self._lock:
            return sorted(self._dbs)

    def has_db(self, name: str) -> bool:
        with self._lock:
            return name in self._dbs

    def create_db(self, name: str) -> None:
        validate_db_name(name)
        with self._lock:
            if name in self._dbs:
                raise DbExists(f"database {name!r} already exists")
            self._dbs[name] = _Database()

    def ensure_db(self, name: str) -> None:
        with self._lock:
            if name not in self._dbs:
                self.create_db(name)

    def delete_db(self, name: str) -> None:
        with self._lock:
            db = self._dbs.pop(name, None)
            if db is None:
                raise NotFound(f"database {name!r} does not exist")
            doc_ids = list(db.docs)
        for doc_id in doc_ids:
            self._notify(name, doc_id)

    def _db(self, name: str) -> _Database:
        db = self._dbs.get(name)
        if db is None:
            raise NotFound(f"database {name!r} does not exist")
        return db

    # --- documents -------------------------------------------------------------------------------
    def get(self, db: str, doc_id: str) -> Doc | None:
        """A deep copy of the document (with ``_id`` and ``_rev``), or None if it or its db is missing."""
        with self._lock:
            database = self._dbs.get(db)
            doc = database.docs.get(doc_id) if database else None
            return copy.deepcopy(doc) if doc is not None else None

    def put(self, db: str, doc: Doc) -> str:
        """Store ``doc`` and return its new ``_rev``. Raises Conflict when the document exists and
        ``doc['_rev']`` is missing or stale, or when ``_rev`` is given for a document that does not exist."""
        doc_id = str(doc.get("_id") or uuid.uuid4().hex)
        given_rev = doc.get("_rev")
        with self._lock:
            database = self._db(db)
            current = database.docs.get(doc_id)
            if current is not None:
                if given_rev != current["_rev"]:
                    raise Conflict(
                        f"document {doc_id!r} in {db!r}: _rev {given_rev!r} is not {current['_rev']!r}"
                    )
                previous = _rev_number(current["_rev"])
            else:
                if given_rev is not None:
                    raise Conflict(f"document {doc_id!r} in {db!r} does not exist; drop _rev {given_rev!r}")
                previous = database.tombstones.pop(doc_id, 0)
            body = {k: copy.deepcopy(v) for k, v in doc.items() if k not in ("_id", "_rev")}
            rev = _next_rev(previous, body)
            database.docs[doc_id] = {"_id": doc_id, "_rev": rev, **body}
        self._notify(db, doc_id)
        return rev

    def load(self, db: str, doc: Doc) -> str:
        """Store ``doc`` keeping the ``_rev`` it carries (assigning ``1-...`` if none): for seeding data."""
        doc_id = str(doc["_id"])
        body = {k: copy.deepcopy(v) for k, v in doc.items() if k not in ("_id", "_rev")}
        rev = str(doc.get("_rev") or _next_rev(0, body))
        with self._lock:
            self._db(db).docs[doc_id] = {"_id": doc_id, "_rev": rev, **body}
        self._notify(db, doc_id)
        return rev

    def delete(self, db: str, doc_id: str, rev: str) -> str:
        """Delete a document at revision ``rev``; returns the tombstone's revision."""
        with self._lock:
            database = self._db(db)
            current = database.docs.get(doc_id)
            if current is None:
                raise NotFound(f"document {doc_id!r} not in {db!r}")
            if rev != current["_rev"]:
                raise Conflict(f"document {doc_id!r} in {db!r}: _rev {rev!r} is not {current['_rev']!r}")
            del database.docs[doc_id]
            number = _rev_number(rev) + 1
            database.tombstones[doc_id] = number
        self._notify(db, doc_id)
        return _next_rev(number - 1, {"_deleted": True})

    def all_docs(self, db: str, include_docs: bool = False) -> list[Doc]:
        """CouchDB ``_all_docs`` rows sorted by id: ``{"id", "key", "value": {"rev"}[, "doc"]}``."""
        with self._lock:
            database = self._db(db)
            rows = []
            for doc_id in sorted(database.docs):
                doc = database.docs[doc_id]
                row: Doc = {"id": doc_id, "key": doc_id, "value": {"rev": doc["_rev"]}}
                if include_docs:
                    row["doc"] = copy.deepcopy(doc)
                rows.append(row)
            return rows

    def reader(self) -> SharedReader:
        """A DocReader over this store without copies, for readers that never change what they get."""
        return SharedReader(self)

    # --- change notification ---------------------------------------------------------------------
    def subscribe(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call ``callback(db, doc_id)`` after every change (from the changing thread, outside the lock).
        Returns a function that unsubscribes."""
        return self._subscribers.add(callback)

    def _notify(self, db: str, doc_id: str) -> None:
        for callback in self._subscribers.snapshot():
            callback(db, doc_id)

    # --- data directories ------------------------------------------------------------------------
    @classmethod
    def from_dir(cls, path: str | Path) -> DocumentStore:
        """Load a data directory in CouchDB's folder shape (see the module docstring)."""
        store = cls()
        store.load_dir(path)
        return store

    def load_dir(self, path: str | Path) -> None:
        root = Path(path)
        if not root.is_dir():
            raise DocumentLoadError(f"{root}: not a directory")
        # Names starting "_" or "." can never be databases (CouchDB names start with a-z): __pycache__ etc.
        db_dirs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))]
        for db_dir in sorted(db_dirs):
            db = unquote(db_dir.name)
            try:
                self.ensure_db(db)
            except InvalidDbName as exc:
                raise DocumentLoadError(f"{db_dir}: {exc}") from exc
            for file in sorted(db_dir.glob("*.json")):
                self.load(db, _read_doc(file))

    def to_dir(self, path: str | Path) -> None:
        """Write every database and document in the ``from_dir`` shape (pretty JSON, keys sorted)."""
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        with self._lock:
            snapshot = {name: copy.deepcopy(db.docs) for name, db in self._dbs.items()}
        for db, docs in snapshot.items():
            db_dir = root / quote(db, safe="")
            db_dir.mkdir(exist_ok=True)
            for doc_id, doc in docs.items():
                text = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
                (db_dir / f"{quote(doc_id, safe='')}.json").write_text(text, encoding="utf-8")


class SharedReader:
    """``get``/``all_docs`` of a :class:`DocumentStore` returning the stored objects, not copies: the
    documents a reader holds are the revisions it read (a ``put`` stores a new object), and the reader
    must not modify them."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    def get(self, db: str, doc_id: str) -> Doc | None:
        store = self._store
        with store._lock:
            database = store._dbs.get(db)
            return database.docs.get(doc_id) if database else None

    def all_docs(self, db: str, include_docs: bool = False) -> list[Doc]:
        store = self._store
        with store._lock:
            docs = store._db(db).docs
            rows: list[Doc] = []
            for doc_id in sorted(docs):
                doc = docs[doc_id]
                row: Doc = {"id": doc_id, "key": doc_id, "value": {"rev": doc["_rev"]}}
                if include_docs:
                    row["doc"] = doc
                rows.append(row)
            return rows

    def all_dbs(self) -> list[str]:
        return self._store.all_dbs()


def _read_doc(file: Path) -> Doc:
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DocumentLoadError(f"{file}: not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise DocumentLoadError(f"{file}: a document must be a JSON object, not {type(doc).__name__}")
    expected_id = unquote(file.name[: -len(".json")])
    doc.setdefault("_id", expected_id)
    if doc["_id"] != expected_id:
        raise DocumentLoadError(f"{file}: _id {doc['_id']!r} does not match the file name ({expected_id!r})")
    return doc

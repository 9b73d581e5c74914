"""A small CouchDB client for a real Kazoo's CouchDB, pouchdb-server and the embedded model alike.

A thin layer over ``requests`` rather than a CouchDB library: the harness needs a handful of calls with
exact control of how database names are encoded (``numbers%2F%2B1415``), and the maintained CouchDB
libraries are either async-only or tied to a vendor SDK.

Database names are passed as Kazoo names them (``numbers/+1415``). pouchdb-server stores ``/``-free names
(``numbers+1415``); ``strip_db_slashes=True`` maps every name that way, on read and write alike.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any
from urllib.parse import quote

import requests

Doc = dict[str, Any]


class CouchError(Exception):
    """A CouchDB error: ``status`` is the HTTP status (0 when the server could not be reached)."""

    def __init__(self, status: int, error: str, reason: str, method: str = "", url: str = "") -> None:
        self.status = status
        self.error = error
        self.reason = reason
        self.method = method
        self.url = url
        where = f" ({method} {url})" if method else ""
        super().__init__(f"CouchDB {status} {error}: {reason}{where}")


class CouchNotFound(CouchError, LookupError):
    """404: a missing database or document (a LookupError, as the store's NotFound)."""


class CouchConflict(CouchError):
    """409: stale or missing ``_rev``."""


def _doc_path(doc_id: str) -> str:
    # Design and local documents keep their literal slash, as CouchDB expects.
    for prefix in ("_design/", "_local/"):
        if doc_id.startswith(prefix):
            return prefix + quote(doc_id[len(prefix) :], safe="")
    return quote(doc_id, safe="")


class CouchClient:
    """``CouchClient("http://127.0.0.1:5984", username, password, timeout=5)``.

    ``get_doc`` answers None for a missing document; every other failure raises ``CouchError``.
    ``get`` / ``all_docs`` make it usable wherever the model's DocumentStore is (number lookups, ACLs)."""

    def __init__(
        self,
        url: str,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 5,
        *,
        strip_db_slashes: bool = False,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.strip_db_slashes = strip_db_slashes
        self._session = requests.Session()
        if username is not None:
            self._session.auth = (username, password or "")
        self._session.headers.update({"Accept": "application/json"})

    # --- plumbing --------------------------------------------------------------------------------
    def db_name(self, db: str) -> str:
        """The name the server stores ``db`` under."""
        return db.replace("/", "") if self.strip_db_slashes else db

    def _db_path(self, db: str) -> str:
        return "/" + quote(self.db_name(db), safe="")

    def _request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        url = self.url + path
        try:
            response = self._session.request(method, url, json=json, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise CouchError(0, "unreachable", str(exc), method, url) from exc
        try:
            body = response.json()
        except ValueError:
            body = {"error": "bad_response", "reason": response.text[:200]}
        if response.status_code >= 400:
            error = body.get("error", "unknown") if isinstance(body, dict) else "unknown"
            reason = body.get("reason", "") if isinstance(body, dict) else str(body)
            kind = {404: CouchNotFound, 409: CouchConflict}.get(response.status_code, CouchError)
            raise kind(response.status_code, str(error), str(reason), method, url)
        return body

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> CouchClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- server and databases --------------------------------------------------------------------
    def server_info(self) -> Doc:
        info: Doc = self._request("GET", "/")
        return info

    def all_dbs(self) -> list[str]:
        """Database names as the server stores them (with ``strip_db_slashes``, without slashes)."""
        names: list[str] = self._request("GET", "/_all_dbs")
        return names

    def db_exists(self, db: str) -> bool:
        try:
            self._request("GET", self._db_path(db))
        except CouchNotFound:
            return False
        return True

    def create_db(self, db: str) -> None:
        self._request("PUT", self._db_path(db))

    def delete_db(self, db: str) -> None:
        self._request("DELETE", self._db_path(db))

    # --- documents -------------------------------------------------------------------------------
    def get_doc(self, db: str, doc_id: str) -> Doc | None:
        """The document, or None when it (or its database) does not exist."""
        try:
            doc: Doc = self._request("GET", f"{self._db_path(db)}/{_doc_path(doc_id)}")
        except CouchNotFound:
            return None
        return doc

    def put_doc(self, db: str, doc: Doc) -> str:
        """Create or update ``doc`` (``_id`` required, ``_rev`` to update); returns the new rev."""
        if not doc.get("_id"):
            raise ValueError("put_doc needs a document with an _id")
        result = self._request("PUT", f"{self._db_path(db)}/{_doc_path(str(doc['_id']))}", json=doc)
        return str(result["rev"])

    def delete_doc(self, db: str, doc_id: str, rev: str) -> str:
        result = self._request("DELETE", f"{self._db_path(db)}/{_doc_path(doc_id)}", params={"rev": rev})
        return str(result["rev"])

    def all_docs(self, db: str, include_docs: bool = False) -> list[Doc]:
        """``_all_docs`` rows (``id``, ``key``, ``value``[, ``doc``]); CouchNotFound for a missing db."""
        params = {"include_docs": "true"} if include_docs else None
        result = self._request("GET", f"{self._db_path(db)}/_all_docs", params=params)
        rows: list[Doc] = result.get("rows", [])
        return rows

    # DocumentStore-compatible reader (harness.kazoo.numbers.DocReader).
    def get(self, db: str, doc_id: str) -> Doc | None:
        return self.get_doc(db, doc_id)

"""A CouchDB-compatible HTTP API over a DocumentStore, on loopback.

Covers what the harness and Kazoo-style tooling use: ``GET /``, ``GET /_all_dbs``, ``PUT|GET|DELETE
/{db}``, ``POST /{db}``, ``GET|PUT|DELETE /{db}/{docid}`` (``_rev`` in the body, ``?rev=`` or
``If-Match``), ``GET /{db}/_all_docs[?include_docs=true]``; CouchDB's status codes and error bodies
(404 ``not_found``, 409 ``conflict``, 412 ``file_exists``). Database names arrive URL-encoded
(``numbers%2F%2B1415``). HTTP/1.1 framing is h11's (sans-I/O); this module only routes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ipaddress
import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import h11

from harness.model.store import DocumentStore, StoreError

JsonBody = Any
MAX_BODY = 64 * 1024 * 1024
WELCOME = {"couchdb": "Welcome", "version": "3.3.3", "vendor": {"name": "kazoo-harness embedded model"}}


@dataclass
class HttpError(Exception):
    status: int
    error: str
    reason: str


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HttpError(400, "bad_request", f"invalid UTF-8 JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise HttpError(400, "bad_request", "Document must be a JSON object")
    return doc


def _is_true(values: list[str] | None) -> bool:
    return bool(values) and values is not None and values[-1] == "true"


class CouchRouter:
    """Maps one request to the store: pure, no sockets (the server and tests call it)."""

    def __init__(self, store: DocumentStore) -> None:
        self.store = store

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, JsonBody]:
        try:
            return self._route(method, target, headers, body)
        except HttpError as exc:
            return exc.status, {"error": exc.error, "reason": exc.reason}
        except StoreError as exc:
            return exc.status, {"error": exc.error, "reason": str(exc)}

    def _route(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, JsonBody]:
        split = urlsplit(target)
        query = parse_qs(split.query)
        # Split before decoding: %2F inside a database name is not a path separator.
        segments = [s for s in split.path.split("/") if s]
        if not segments:
            if method in ("GET", "HEAD"):
                return 200, WELCOME
            raise HttpError(405, "method_not_allowed", "Only GET,HEAD allowed")
        if segments == ["_all_dbs"]:
            return 200, self.store.all_dbs()
        if segments[0].startswith("_"):
            raise HttpError(404, "not_found", f"unsupported endpoint /{segments[0]}")
        db = unquote(segments[0])
        if len(segments) == 1:
            return self._database(method, db, body)
        if segments[1:] == ["_all_docs"] and method in ("GET", "HEAD"):
            return self._all_docs(db, query)
        doc_id = unquote("/".join(segments[1:]))
        return self._document(method, db, doc_id, query, headers, body)

    def _database(self, method: str, db: str, body: bytes) -> tuple[int, JsonBody]:
        if method == "PUT":
            self.store.create_db(db)
            return 201, {"ok": True}
        if method == "DELETE":
            self.store.delete_db(db)
            return 200, {"ok": True}
        if method in ("GET", "HEAD"):
            if not self.store.has_db(db):
                raise HttpError(404, "not_found", "Database does not exist.")
            rows = self.store.all_docs(db)
            return 200, {"db_name": db, "doc_count": len(rows), "doc_del_count": 0}
        if method == "POST":
            doc = _json_body(body)
            doc.setdefault("_id", uuid.uuid4().hex)
            return 201, {"ok": True, "id": doc["_id"], "rev": self._put(db, doc)}
        raise HttpError(405, "method_not_allowed", "Only DELETE,GET,HEAD,POST,PUT allowed")

    def _all_docs(self, db: str, query: dict[str, list[str]]) -> tuple[int, JsonBody]:
        rows = self.store.all_docs(db, include_docs=_is_true(query.get("include_docs")))
        return 200, {"total_rows": len(rows), "offset": 0, "rows": rows}

    def _document(
        self,
        method: str,
        db: str,
        doc_id: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[int, JsonBody]:
        if not self.store.has_db(db):
            raise HttpError(404, "not_found", "Database does not exist.")
        if method in ("GET", "HEAD"):
            doc = self.store.get(db, doc_id)
            if doc is None:
                raise HttpError(404, "not_found", "missing")
            return 200, doc
        rev = (query.get("rev") or [""])[-1] or headers.get("if-match", "").strip('"') or None
        if method == "PUT":
            doc = _json_body(body)
            doc["_id"] = doc_id
            if rev is not None and "_rev" not in doc:
                doc["_rev"] = rev
            return 201, {"ok": True, "id": doc_id, "rev": self._put(db, doc)}
        if method == "DELETE":
            if rev is None:
                raise HttpError(409, "conflict", "Document update conflict.")
            return 200, {"ok": True, "id": doc_id, "rev": self._delete(db, doc_id, rev)}
        raise HttpError(405, "method_not_allowed", "Only DELETE,GET,HEAD,PUT allowed")

    def _put(self, db: str, doc: dict[str, Any]) -> str:
        try:
            return self.store.put(db, doc)
        except StoreError as exc:
            if exc.status == 409:
                raise HttpError(409, "conflict", "Document update conflict.") from exc
            raise

    def _delete(self, db: str, doc_id: str, rev: str) -> str:
        try:
            return self.store.delete(db, doc_id, rev)
        except StoreError as exc:
            if exc.status == 409:
                raise HttpError(409, "conflict", "Document update conflict.") from exc
            if exc.status == 404:
                raise HttpError(404, "not_found", "missing") from exc
            raise


class CouchServer:
    """``CouchServer(store, "127.0.0.1", 0)``; ``await start()`` binds (``.port`` then holds the real
    port), ``await stop()`` closes. With ``username``/``password`` every request but ``GET /`` needs
    HTTP basic auth, as CouchDB's ``require_valid_user``."""

    def __init__(
        self,
        store: DocumentStore,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        username: str | None = None,
        password: str | None = None,
        idle_timeout: float = 60.0,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"CouchServer binds loopback addresses only, not {host}")
        self.router = CouchRouter(store)
        self.host = host
        self.port = port
        self.idle_timeout = idle_timeout
        self._credentials = (username, password) if username is not None else None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self, timeout: float = 5.0) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(self._connections, timeout=timeout)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), timeout)
        self._server = None

    async def __aenter__(self) -> CouchServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _authorized(self, method: str, target: str, headers: dict[str, str]) -> bool:
        if self._credentials is None or (method == "GET" and urlsplit(target).path in ("", "/")):
            return True
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (user, password) == self._credentials

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        conn = h11.Connection(h11.SERVER)
        try:
            while await self._one_exchange(conn, reader, writer):
                conn.start_next_cycle()
        except (h11.ProtocolError, TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass  # a broken or idle client: just drop the connection
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _next_event(self, conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await asyncio.wait_for(reader.read(65536), self.idle_timeout)
            conn.receive_data(data)

    async def _one_exchange(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serve one request; False when the connection should close."""
        event = await self._next_event(conn, reader)
        if not isinstance(event, h11.Request):
            return False
        body = bytearray()
        while True:
            part = await self._next_event(conn, reader)
            if isinstance(part, h11.Data):
                body += part.data
                if len(body) > MAX_BODY:
                    return False
            elif isinstance(part, h11.EndOfMessage):
                break
            else:
                return False
        method = event.method.decode("ascii")
        target = event.target.decode("ascii", "replace")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
        if self._authorized(method, target, headers):
            status, payload = self.router.handle(method, target, headers, bytes(body))
        else:
            status, payload = 401, {"error": "unauthorized", "reason": "Name or password is incorrect."}
        encoded = json.dumps(payload).encode() + b"\n"
        response_headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(encoded))),
            ("Server", "CouchDB/3.3.3 (kazoo-harness model)"),
        ]
        if status == 401:
            response_headers.append(("WWW-Authenticate", 'Basic realm="server"'))
        if isinstance(payload, dict) and isinstance(payload.get("_rev") or payload.get("rev"), str):
            response_headers.append(("ETag", f'"{payload.get("_rev") or payload.get("rev")}"'))
        out = conn.send(h11.Response(status_code=status, headers=response_headers)) or b""
        if method != "HEAD":  # h11 knows a HEAD response carries no body
            out += conn.send(h11.Data(data=encoded)) or b""
        out += conn.send(h11.EndOfMessage()) or b""
        writer.write(out)
        await asyncio.wait_for(writer.drain(), self.idle_timeout)
        return conn.our_state is not h11.MUST_CLOSE

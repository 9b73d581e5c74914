"""CouchClient against the model's CouchServer over real loopback sockets.

The server runs on its own event loop in a background thread (as in the embedded model); the blocking
client runs in the test thread.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from harness.kazoo.acls import AclLists, entries_from_store
from harness.kazoo.couch import CouchClient, CouchConflict, CouchError, CouchNotFound
from harness.kazoo.numbers import lookup_number
from harness.model.couch_server import CouchServer
from harness.model.demo import demo_roles, load_demo
from harness.model.store import DocumentStore

START_TIMEOUT = 5.0


class ServerThread:
    """A CouchServer on its own loop in a daemon thread; ``stop()`` waits for it with a deadline."""

    def __init__(self, store: DocumentStore, **kwargs: Any) -> None:
        self.store = store
        self.kwargs = kwargs
        self.loop = asyncio.new_event_loop()
        self.server: CouchServer | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> CouchServer:
        self._thread.start()
        self.server = CouchServer(self.store, "127.0.0.1", 0, **self.kwargs)
        started: Future[None] = asyncio.run_coroutine_threadsafe(self.server.start(), self.loop)
        started.result(timeout=START_TIMEOUT)
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(timeout=START_TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=START_TIMEOUT)
        assert not self._thread.is_alive()
        self.loop.close()


@pytest.fixture
def served() -> Iterator[tuple[DocumentStore, CouchServer]]:
    store = DocumentStore()
    runner = ServerThread(store)
    server = runner.start()
    try:
        yield store, server
    finally:
        runner.stop()


@pytest.fixture
def client(served: tuple[DocumentStore, CouchServer]) -> Iterator[CouchClient]:
    with CouchClient(served[1].url, timeout=5) as couch:
        yield couch


def test_welcome_and_databases(client: CouchClient, served: tuple[DocumentStore, CouchServer]) -> None:
    assert client.server_info()["couchdb"] == "Welcome"
    client.create_db("numbers/+1415")
    client.create_db("system_config")
    assert client.all_dbs() == ["numbers/+1415", "system_config"]
    assert served[0].all_dbs() == ["numbers/+1415", "system_config"]  # the name travelled encoded
    assert client.db_exists("numbers/+1415") and not client.db_exists("numbers/+1416")
    with pytest.raises(CouchError) as exists:
        client.create_db("system_config")
    assert exists.value.status == 412 and exists.value.error == "file_exists"
    with pytest.raises(CouchError) as bad:
        client.create_db("Bad Name")
    assert bad.value.status == 400
    client.delete_db("system_config")
    with pytest.raises(CouchNotFound):
        client.delete_db("system_config")


def test_documents_revs_and_conflicts(client: CouchClient) -> None:
    client.create_db("numbers/+1415")
    rev1 = client.put_doc("numbers/+1415", {"_id": "+14155550100", "pvt_state": "reserved"})
    doc = client.get_doc("numbers/+1415", "+14155550100")
    assert doc == {"_id": "+14155550100", "_rev": rev1, "pvt_state": "reserved"}
    with pytest.raises(CouchConflict) as conflict:
        client.put_doc("numbers/+1415", {"_id": "+14155550100", "pvt_state": "in_service"})
    assert conflict.value.status == 409 and conflict.value.error == "conflict"
    rev2 = client.put_doc("numbers/+1415", {**doc, "pvt_state": "in_service"})
    assert rev2.startswith("2-")
    with pytest.raises(CouchConflict):
        client.delete_doc("numbers/+1415", "+14155550100", rev1)
    client.delete_doc("numbers/+1415", "+14155550100", rev2)
    assert client.get_doc("numbers/+1415", "+14155550100") is None
    assert client.get_doc("no_such_db", "x") is None
    with pytest.raises(CouchNotFound):
        client.delete_doc("numbers/+1415", "+14155550100", rev2)
    with pytest.raises(ValueError, match="_id"):
        client.put_doc("numbers/+1415", {"x": 1})


def test_all_docs_and_design_ids(client: CouchClient) -> None:
    client.create_db("account/4a/1f/7c2e9b3d4e8fa6c50b1d2e3f4a5b")
    db = "account/4a/1f/7c2e9b3d4e8fa6c50b1d2e3f4a5b"
    client.put_doc(db, {"_id": "cf", "pvt_type": "callflow"})
    client.put_doc(db, {"_id": "_design/callflows", "views": {}})
    rows = client.all_docs(db)
    assert [row["id"] for row in rows] == ["_design/callflows", "cf"]
    assert "doc" not in rows[0]
    with_docs = client.all_docs(db, include_docs=True)
    assert with_docs[1]["doc"]["pvt_type"] == "callflow"
    assert client.get_doc(db, "_design/callflows") is not None
    with pytest.raises(CouchNotFound):
        client.all_docs("missing")


def test_lookups_through_http_match_the_store() -> None:
    """The client is a DocReader: number lookups and ACLs give the same answers over HTTP."""
    store = load_demo()
    runner = ServerThread(store)
    server = runner.start()
    try:
        with CouchClient(server.url) as couch:
            for role, number in demo_roles()["numbers"].items():
                assert lookup_number(couch, number) == lookup_number(store, number), role
            node = demo_roles()["node"]
            assert AclLists.build(entries_from_store(couch, node)) == AclLists.build(
                entries_from_store(store, node)
            )
    finally:
        runner.stop()


def test_strip_db_slashes_maps_names(client: CouchClient, served: tuple[DocumentStore, CouchServer]) -> None:
    pouch_style = CouchClient(served[1].url, strip_db_slashes=True)
    pouch_style.create_db("numbers/+1415")
    assert served[0].all_dbs() == ["numbers+1415"]
    pouch_style.put_doc("numbers/+1415", {"_id": "+14155550100"})
    assert pouch_style.get_doc("numbers/+1415", "+14155550100") is not None
    assert client.get_doc("numbers/+1415", "+14155550100") is None  # unmapped name: not there
    pouch_style.close()


def test_basic_auth() -> None:
    runner = ServerThread(DocumentStore(), username="admin", password="s3cret")
    server = runner.start()
    try:
        with CouchClient(server.url) as anonymous:
            assert anonymous.server_info()["couchdb"] == "Welcome"  # the welcome needs no login
            with pytest.raises(CouchError) as denied:
                anonymous.all_dbs()
            assert denied.value.status == 401 and denied.value.error == "unauthorized"
        with CouchClient(server.url, "admin", "wrong") as wrong, pytest.raises(CouchError):
            wrong.create_db("x")
        with CouchClient(server.url, "admin", "s3cret") as admin:
            admin.create_db("x")
            assert admin.all_dbs() == ["x"]
    finally:
        runner.stop()


def test_raw_http_shapes(served: tuple[DocumentStore, CouchServer]) -> None:
    """Wire details a non-Python CouchDB client relies on, over one keep-alive connection."""
    store, server = served
    store.create_db("numbers/+1415")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)

    def call(method: str, path: str, body: Any = None) -> tuple[int, Any, http.client.HTTPResponse]:
        conn.request(method, path, body=None if body is None else json.dumps(body))
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None, response

    status, created, _ = call("PUT", "/numbers%2F%2B1415/%2B14155550100", {"pvt_state": "in_service"})
    assert status == 201 and created["ok"] is True and created["id"] == "+14155550100"
    status, doc, response = call("GET", "/numbers%2F%2B1415/%2B14155550100")
    assert status == 200 and response.getheader("ETag") == f'"{created["rev"]}"'
    status, body, _ = call("GET", "/numbers%2F%2B1415/%2B14155550199")
    assert (status, body) == (404, {"error": "not_found", "reason": "missing"})
    status, body, _ = call("GET", "/numbers%2F%2B1416/x")
    assert (status, body["error"]) == (404, "not_found")
    status, body, _ = call("PUT", "/numbers%2F%2B1415/%2B14155550100", {"pvt_state": "reserved"})
    assert (status, body) == (409, {"error": "conflict", "reason": "Document update conflict."})
    status, body, _ = call("GET", "/numbers%2F%2B1415/_all_docs?include_docs=true")
    assert status == 200 and body["total_rows"] == 1 and body["rows"][0]["doc"]["pvt_state"] == "in_service"
    status, body, _ = call("POST", "/numbers%2F%2B1415", {"generated": True})
    assert status == 201 and len(body["id"]) == 32
    status, body, _ = call("DELETE", f"/numbers%2F%2B1415/%2B14155550100?rev={doc['_rev']}")
    assert status == 200 and body["ok"] is True
    status, body, _ = call("GET", "/numbers%2F%2B1415")
    assert status == 200 and body["doc_count"] == 1 and body["db_name"] == "numbers/+1415"
    conn.request("PUT", "/numbers%2F%2B1415/bad", body=b"{not json")
    response = conn.getresponse()
    assert response.status == 400 and json.loads(response.read())["error"] == "bad_request"
    conn.close()


def test_auth_header_garbage_is_rejected() -> None:
    runner = ServerThread(DocumentStore(), username="a", password="b")
    server = runner.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        for value in ("Basic !!!", "Bearer x", "Basic " + base64.b64encode(b"a:c").decode()):
            conn.request("GET", "/_all_dbs", headers={"Authorization": value})
            response = conn.getresponse()
            response.read()
            assert response.status == 401, value
        conn.close()
    finally:
        runner.stop()


def test_server_refuses_non_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        CouchServer(DocumentStore(), "0.0.0.0", 0)

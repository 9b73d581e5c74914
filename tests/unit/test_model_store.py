"""DocumentStore: revisions, conflicts, copies, change notification, thread safety, folder round trip."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from harness.model.store import (
    Conflict,
    DbExists,
    DocumentLoadError,
    DocumentStore,
    InvalidDbName,
    NotFound,
)


def _store() -> DocumentStore:
    store = DocumentStore()
    store.create_db("numbers/+1415")
    return store


def test_databases() -> None:
    store = _store()
    store.create_db("accounts")
    assert store.all_dbs() == ["accounts", "numbers/+1415"]
    with pytest.raises(DbExists):
        store.create_db("accounts")
    with pytest.raises(InvalidDbName):
        store.create_db("Numbers")
    store.delete_db("accounts")
    assert store.all_dbs() == ["numbers/+1415"]
    with pytest.raises(NotFound):
        store.delete_db("accounts")


def test_put_assigns_revisions_and_get_returns_copies() -> None:
    store = _store()
    rev1 = store.put("numbers/+1415", {"_id": "+14155550100", "pvt_state": "reserved"})
    assert rev1.startswith("1-") and len(rev1) == 2 + 32
    doc = store.get("numbers/+1415", "+14155550100")
    assert doc == {"_id": "+14155550100", "_rev": rev1, "pvt_state": "reserved"}
    assert doc is not None
    doc["pvt_state"] = "in_service"  # changing the copy changes nothing stored
    assert store.get("numbers/+1415", "+14155550100") == {
        "_id": "+14155550100",
        "_rev": rev1,
        "pvt_state": "reserved",
    }
    rev2 = store.put("numbers/+1415", doc)
    assert rev2.startswith("2-")
    stored = store.get("numbers/+1415", "+14155550100")
    assert stored is not None and stored["pvt_state"] == "in_service"
    assert store.get("numbers/+1415", "missing") is None
    assert store.get("no_such_db", "x") is None


def test_conflicts() -> None:
    store = _store()
    rev1 = store.put("numbers/+1415", {"_id": "n", "a": 1})
    with pytest.raises(Conflict):
        store.put("numbers/+1415", {"_id": "n", "a": 2})  # missing _rev
    rev2 = store.put("numbers/+1415", {"_id": "n", "_rev": rev1, "a": 2})
    with pytest.raises(Conflict):
        store.put("numbers/+1415", {"_id": "n", "_rev": rev1, "a": 3})  # stale _rev
    with pytest.raises(Conflict):
        store.put("numbers/+1415", {"_id": "new", "_rev": "1-abc"})  # _rev for a doc that does not exist
    with pytest.raises(Conflict):
        store.delete("numbers/+1415", "n", rev1)
    with pytest.raises(NotFound):
        store.put("no_such_db", {"_id": "x"})
    store.delete("numbers/+1415", "n", rev2)
    assert store.get("numbers/+1415", "n") is None
    with pytest.raises(NotFound):
        store.delete("numbers/+1415", "n", rev2)
    # Re-created after deletion: the revision number continues past the tombstone, as in CouchDB.
    assert store.put("numbers/+1415", {"_id": "n"}).startswith("4-")


def test_put_without_id_generates_one() -> None:
    store = _store()
    store.put("numbers/+1415", {"x": 1})
    rows = store.all_docs("numbers/+1415")
    assert len(rows) == 1 and len(rows[0]["id"]) == 32


def test_all_docs_rows() -> None:
    store = _store()
    rev_b = store.put("numbers/+1415", {"_id": "b"})
    rev_a = store.put("numbers/+1415", {"_id": "a", "v": 1})
    assert store.all_docs("numbers/+1415") == [
        {"id": "a", "key": "a", "value": {"rev": rev_a}},
        {"id": "b", "key": "b", "value": {"rev": rev_b}},
    ]
    with_docs = store.all_docs("numbers/+1415", include_docs=True)
    assert with_docs[0]["doc"] == {"_id": "a", "_rev": rev_a, "v": 1}
    with pytest.raises(NotFound):
        store.all_docs("missing")


def test_subscribe_and_unsubscribe() -> None:
    store = _store()
    seen: list[tuple[str, str]] = []
    unsubscribe = store.subscribe(lambda db, doc_id: seen.append((db, doc_id)))
    rev = store.put("numbers/+1415", {"_id": "n"})
    store.delete("numbers/+1415", "n", rev)
    store.put("numbers/+1415", {"_id": "m"})
    store.delete_db("numbers/+1415")
    unsubscribe()
    store.create_db("x")
    store.put("x", {"_id": "later"})
    assert seen == [("numbers/+1415", "n")] * 2 + [("numbers/+1415", "m")] * 2


def test_concurrent_updates_do_not_lose_writes() -> None:
    store = _store()
    store.put("numbers/+1415", {"_id": "counter", "n": 0})
    conflicts = 0
    lock = threading.Lock()

    def bump(times: int) -> None:
        nonlocal conflicts
        done = 0
        while done < times:
            doc = store.get("numbers/+1415", "counter")
            assert doc is not None
            doc["n"] += 1
            try:
                store.put("numbers/+1415", doc)
                done += 1
            except Conflict:
                with lock:
                    conflicts += 1

    threads = [threading.Thread(target=bump, args=(200,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    final = store.get("numbers/+1415", "counter")
    assert final is not None and final["n"] == 800
    assert final["_rev"].startswith("801-")


def test_dir_round_trip(tmp_path: Path) -> None:
    store = _store()
    store.create_db("account/3c/8e/2a7f5b9d41e6a0c4f1d2e3b4a5c6")
    store.put("numbers/+1415", {"_id": "+14155550100", "pvt_state": "in_service", "nested": {"é": [1, 2]}})
    store.put("account/3c/8e/2a7f5b9d41e6a0c4f1d2e3b4a5c6", {"_id": "_design/callflows", "views": {}})
    store.to_dir(tmp_path)
    assert (tmp_path / "numbers%2F%2B1415" / "%2B14155550100.json").is_file()
    assert (
        tmp_path / "account%2F3c%2F8e%2F2a7f5b9d41e6a0c4f1d2e3b4a5c6" / "_design%2Fcallflows.json"
    ).is_file()
    loaded = DocumentStore.from_dir(tmp_path)
    assert loaded.all_dbs() == store.all_dbs()
    for db in store.all_dbs():
        assert loaded.all_docs(db, include_docs=True) == store.all_docs(db, include_docs=True)


def test_from_dir_assigns_id_and_rev(tmp_path: Path) -> None:
    (tmp_path / "system_config").mkdir()
    (tmp_path / "system_config" / "ecallmgr.json").write_text(json.dumps({"default": {}}))
    (tmp_path / "__pycache__").mkdir()  # never a database (CouchDB names start with a-z): skipped
    (tmp_path / "__pycache__" / "x.json").write_text("{}")
    store = DocumentStore.from_dir(tmp_path)
    assert store.all_dbs() == ["system_config"]
    doc = store.get("system_config", "ecallmgr")
    assert doc is not None and doc["_id"] == "ecallmgr" and doc["_rev"].startswith("1-")


def test_from_dir_errors_name_the_file(tmp_path: Path) -> None:
    db_dir = tmp_path / "system_config"
    db_dir.mkdir()
    bad = db_dir / "stepswitch.json"
    bad.write_text("{not json")
    with pytest.raises(DocumentLoadError, match=r"stepswitch\.json: not valid JSON"):
        DocumentStore.from_dir(tmp_path)
    bad.write_text("[1, 2]")
    with pytest.raises(DocumentLoadError, match=r"stepswitch\.json: a document must be a JSON object"):
        DocumentStore.from_dir(tmp_path)
    bad.write_text('{"_id": "other"}')
    with pytest.raises(DocumentLoadError, match="does not match the file name"):
        DocumentStore.from_dir(tmp_path)
    with pytest.raises(DocumentLoadError, match="not a directory"):
        DocumentStore.from_dir(tmp_path / "missing")

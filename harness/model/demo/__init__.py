"""The built-in demo data set: CouchDB-shaped folders beside this file, and ``roles.json`` that maps the
catalog's carrier and number roles to addresses and numbers (see docs/demo-data.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.model.store import DocumentStore

DEMO_DIR = Path(__file__).resolve().parent
ROLES_FILE = DEMO_DIR / "roles.json"


def load_demo() -> DocumentStore:
    """A fresh store holding the demo data (each call returns an independent copy)."""
    return DocumentStore.from_dir(DEMO_DIR)


def demo_roles() -> dict[str, Any]:
    """The role map: ``carriers`` {role: {"ip", "port"}}, ``numbers`` {role: "+1..."}, ``accounts``,
    ``node`` and ``sbc_self``."""
    roles: dict[str, Any] = json.loads(ROLES_FILE.read_text(encoding="utf-8"))
    return roles

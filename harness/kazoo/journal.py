"""The provisioning journal: every change to a stack's documents is recorded (with the document as it
was) and fsynced *before* it is made, so an interrupted run — even ``kill -9`` — can be undone by
``kazoo-harness restore``. One JSON object per line; a torn last line (killed mid-write) is ignored.

The journal holds no secrets: credentials come from the target file's environment variables again at
restore time.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JOURNAL_ENV = "KAZOO_HARNESS_JOURNAL_DIR"
SUFFIX = ".journal"


def default_journal_dir() -> Path:
    """``$KAZOO_HARNESS_JOURNAL_DIR``, else ``~/.cache/kazoo-harness/journals``."""
    env = os.environ.get(JOURNAL_ENV)
    if env:
        return Path(env)
    return Path.home() / ".cache" / "kazoo-harness" / "journals"


@dataclass
class Journal:
    path: Path

    @classmethod
    def create(cls, directory: Path, header: dict[str, Any]) -> Journal:
        directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        path = directory / f"{stamp}-{socket.gethostname()}-{os.getpid()}{SUFFIX}"
        journal = cls(path)
        journal.append({"kind": "header", "pid": os.getpid(), "started": time.time(), **header})
        return journal

    def append(self, entry: dict[str, Any]) -> None:
        """Write one entry durably (flush + fsync) before the caller goes on to make the change."""
        line = json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def entries(self) -> list[dict[str, Any]]:
        out = []
        for raw in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(raw))
            except json.JSONDecodeError:
                continue  # torn write: the change it announced was never made
        return out

    @property
    def header(self) -> dict[str, Any]:
        entries = self.entries()
        return entries[0] if entries and entries[0].get("kind") == "header" else {}

    def changes(self) -> list[dict[str, Any]]:
        return [e for e in self.entries() if e.get("kind") != "header"]

    def finish(self) -> None:
        """Everything is restored: the journal is no longer needed."""
        self.path.unlink(missing_ok=True)


def pending_journals(directory: Path) -> Iterator[Journal]:
    if not directory.is_dir():
        return
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        yield Journal(path)

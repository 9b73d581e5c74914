"""A mechanical port of Kazoo's Kamailio configuration to Debian's Kamailio 5.6: one named text substitution,
with its reason, on one file of a temporary copy of the configuration. An edit that changes what the
configuration does to a message is not allowed; docs/kazoo-sbc.md lists every edit with its reason."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class EditError(RuntimeError):
    """An edit whose anchor is not where it expects: the configuration changed, so nothing is applied silently."""


@dataclass(frozen=True)
class Edit:
    name: str  # short identifier, e.g. "sqlite-instead-of-db_kazoo"
    reason: str  # why Debian's Kamailio 5.6 needs it (one sentence: shown in docs and errors)
    file: str  # path relative to the configuration directory
    old: str  # regex (re.MULTILINE) of the text to replace
    new: str  # re.sub replacement template
    count: int = 1  # matches the edit expects; 0 = at least one, every occurrence replaced

    def apply(self, text: str) -> str:
        pattern = re.compile(self.old, re.MULTILINE)
        found = len(pattern.findall(text))
        if found == 0 or (self.count and found != self.count):
            expected = self.count or "at least 1"
            raise EditError(
                f"edit {self.name!r} on {self.file}: expected {expected} match(es) of /{self.old}/, "
                f"found {found} ({self.reason})"
            )
        return pattern.sub(self.new, text)


def apply_edits(config_dir: Path, edits: Sequence[Edit]) -> list[str]:
    """Apply ``edits`` in order to the files under ``config_dir`` (a temporary copy); the names applied."""
    for edit in edits:
        path = config_dir / edit.file
        if not path.is_file():
            raise EditError(f"edit {edit.name!r}: no file {edit.file} in {config_dir} ({edit.reason})")
        path.write_text(edit.apply(path.read_text(encoding="utf-8")), encoding="utf-8")
    return [edit.name for edit in edits]

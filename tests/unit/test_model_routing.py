"""The routing role's fetch ids: version-4 UUIDs as ecallmgr writes them, made without a system call."""

from __future__ import annotations

import uuid

from harness.model.routing import fetch_id


def test_fetch_ids_are_distinct_version_4_uuids_in_the_canonical_form() -> None:
    ids = [fetch_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text  # lower-case hex, dashes at 8-4-4-4-12

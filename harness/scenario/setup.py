"""Scenario `setup`: temporary changes to the target, always undone afterwards.

On the embedded model, `system_config` changes are written to its document store and the previous
documents restored exactly at the end; `media: down` runs the scenario against a second model whose
dispatcher has no live media server. On a real stack `system_config` changes go through CouchDB
provisioning (harness.kazoo.provision): journaled, and restored even after a crash (`kazoo-harness restore`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.scenario.target import Target


class SetupUnsupported(RuntimeError):
    """The target cannot apply this setup (the scenario is skipped with this reason)."""


@contextmanager
def applied(target: Target, setup: dict[str, Any]) -> Iterator[Target]:
    """Apply ``setup`` to ``target`` for the duration of the block; yield the target to use."""
    if not setup:
        yield target
        return
    if target.model is None:
        yield from _provisioned(target, setup)
        return
    with (
        _system_config(target, setup.get("system_config") or {}),
        _media(target, setup.get("media")) as effective,
    ):
        yield effective


def _provisioned(target: Target, setup: dict[str, Any]) -> Iterator[Target]:
    """A real stack: system_config changes through CouchDB provisioning (journaled, restored)."""
    if set(setup) - {"system_config"}:
        raise SetupUnsupported(f"target {target.name!r} cannot apply scenario setup {sorted(setup)}")
    from harness.kazoo.provision import provisioned_setup
    from harness.scenario.safety import UnsafeTarget

    try:
        with provisioned_setup(target, setup["system_config"]):
            yield target
    except UnsafeTarget as exc:
        raise SetupUnsupported(str(exc)) from exc


@contextmanager
def _system_config(target: Target, changes: dict[str, dict[str, Any]]) -> Iterator[None]:
    store = target.model.store
    saved: dict[str, dict[str, Any] | None] = {}
    try:
        for doc_id, fields in changes.items():
            current = store.get("system_config", doc_id)
            saved[doc_id] = copy.deepcopy(current)
            doc: dict[str, Any] = copy.deepcopy(current) if current else {"_id": doc_id}
            doc["default"] = {**(doc.get("default") or {}), **fields}
            store.put("system_config", doc)
        yield
    finally:
        for doc_id, before in saved.items():
            now = store.get("system_config", doc_id)
            if before is None:
                if now is not None:
                    store.delete("system_config", doc_id, now["_rev"])
            else:
                restored = {k: v for k, v in before.items() if k != "_rev"}
                if now is not None:
                    restored["_rev"] = now["_rev"]
                store.put("system_config", restored)


@contextmanager
def _media(target: Target, state: str | None) -> Iterator[Target]:
    if state != "down":
        yield target
        return
    if target.kind == "kazoo-sbc":  # the real configuration: its own dispatcher table loses the media role
        from harness.scenario.kazoo_sbc import media_down

        with media_down(target) as down_target:
            yield down_target
        return
    from harness.model.stack import start_model
    from harness.scenario.embedded import target_for_model

    model = target.model
    config = dataclasses.replace(
        model.config, media_enabled=False, sbc_port=0, media_port=0, esl_port=0, couch_port=0, log_dir=None
    )
    down = start_model(config)
    try:
        roles = {"carriers": {k: {"ip": ip, "port": port} for k, (ip, port) in target.carriers.items()},
                 "numbers": target.numbers}  # fmt: skip
        yield target_for_model(down, target.profile, roles)
    finally:
        down.stop()

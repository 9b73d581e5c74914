"""Scenario `setup`: temporary changes to the target, always undone afterwards.

On the embedded model, `system_config` changes are written to its document store and the previous
documents restored exactly at the end; `media: down` runs the scenario against a second model whose
dispatcher has no live media server, and `kamailio_roles: {antiflood: on}` against a second model that
runs those optional Kamailio roles. On a real stack `system_config` changes go through CouchDB
provisioning (harness.kazoo.provision): journaled, and restored even after a crash (`kazoo-harness restore`);
`kamailio_roles` cannot be switched there, so the scenario runs only where the profile's `roles` say the
stack already has them.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.kazoo.kamailio_roles import check_roles
from harness.scenario.target import Target


class SetupUnsupported(RuntimeError):
    """The target cannot apply this setup (the scenario is skipped with this reason)."""


@contextmanager
def applied(target: Target, setup: dict[str, Any]) -> Iterator[Target]:
    """Apply ``setup`` to ``target`` for the duration of the block; yield the target to use."""
    if not setup:
        yield target
        return
    roles = check_roles(setup.get("kamailio_roles") or {}, "setup.kamailio_roles")
    if target.model is None:
        _require_roles(target, roles)
        yield from _provisioned(target, {k: v for k, v in setup.items() if k != "kamailio_roles"})
        return
    with (
        _system_config(target, setup.get("system_config") or {}),
        _model_variant(target, setup.get("media"), roles) as effective,
    ):
        yield effective


def _require_roles(target: Target, roles: dict[str, bool]) -> None:
    """A stack's Kamailio roles are its configuration: the profile says which it runs."""
    differ = sorted(name for name, on in roles.items() if target.profile.roles.get(name, False) != on)
    if differ:
        wanted = ", ".join(f"{name} {'on' if roles[name] else 'off'}" for name in differ)
        raise SetupUnsupported(
            f"needs the Kamailio role(s) {wanted}; target {target.name!r} runs profile "
            f"{target.profile.name!r}, whose `roles:` do not say so"
        )


def _provisioned(target: Target, setup: dict[str, Any]) -> Iterator[Target]:
    """A real stack: system_config changes through CouchDB provisioning (journaled, restored)."""
    if not setup:
        yield target
        return
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
def _model_variant(target: Target, media: str | None, roles: dict[str, bool]) -> Iterator[Target]:
    """The session's model, or a second one with the media role down and/or other Kamailio roles."""
    model = target.model
    switches = {**model.config.role_switches, **roles}
    media_enabled = media != "down"
    if media_enabled == model.config.media_enabled and switches == model.config.role_switches:
        yield target
        return
    from harness.model.stack import start_model
    from harness.scenario.embedded import target_for_model

    config = dataclasses.replace(
        model.config,
        media_enabled=media_enabled,
        role_switches=switches,
        sbc_port=0,
        media_port=0,
        esl_port=0,
        couch_port=0,
        log_dir=None,
    )
    down = start_model(config)
    try:
        role_map = {"carriers": {k: {"ip": ip, "port": port} for k, (ip, port) in target.carriers.items()},
                    "numbers": target.numbers}  # fmt: skip
        yield target_for_model(down, target.profile, role_map)
    finally:
        down.stop()

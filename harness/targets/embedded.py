"""The `embedded` kind: the Kazoo model started in-process on free loopback ports, as a Target.

Also the pieces the kinds built on the model share (lab, kazoo-sbc): the role map of a data directory,
the model's log files, and the setup that writes the model's document store directly.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from harness.kazoo.access import StackAccess
from harness.kazoo.numbers import SYSTEM_CONFIG_DB
from harness.kazoo.profile import Profile
from harness.model.demo import demo_roles
from harness.model.sbc import ROLE_SWITCHES
from harness.model.stack import ModelConfig, RunningModel, start_model
from harness.targets.target import (
    CarrierAddress,
    LogFactory,
    MediaDown,
    RolesTwin,
    SetupUnsupported,
    Target,
    TargetStartError,
    file_logs,
)

# The embedded model answers non-reconcilable numbers and missing callflows after the route timeout;
# the catalog shrinks it (Kazoo's is ~2.6 s) so the whole catalog runs in seconds. Scenarios that
# assert the delay read it from the target, so they stay true at any value.
CATALOG_ROUTE_TIMEOUT = 0.15
LOG_NAMES = ("freeswitch", "kamailio", "kazoo")  # the model's log files, one per component


def roles_for(data_dir: Path | None) -> dict[str, Any]:
    """The role map: the demo's, or `roles.json` in a user's data directory."""
    if data_dir is not None and (data_dir / "roles.json").is_file():
        loaded: dict[str, Any] = json.loads((data_dir / "roles.json").read_text(encoding="utf-8"))
        return loaded
    return demo_roles()


def carrier_roles(roles: Mapping[str, Any], sbc_ip: str) -> dict[str, CarrierAddress]:
    """Carrier roles of a role map as (ip, port); `sbc_self` is the SBC's own address unless named."""
    carriers = {name: (str(v["ip"]), v.get("port")) for name, v in roles.get("carriers", {}).items()}
    carriers.setdefault("sbc_self", (sbc_ip, None))
    return carriers


def model_logs(log_dir: Path) -> dict[str, LogFactory]:
    return file_logs({name: log_dir / f"{name}.log" for name in LOG_NAMES})


def model_access(model: RunningModel) -> StackAccess:
    return StackAccess(
        couch_url=model.couch_url,
        esl=(model.esl[0], model.esl[1], model.config.esl_password),
        node=model.node,
    )


class ModelSetup:
    """Scenario setup on a target whose documents live in an in-process model: system_config changes go
    straight into its store (restored exactly after); `media: down` opens ``media_down`` instead, and
    `kamailio_roles` opens ``roles_twin`` (the kind's: a model twin, or a refusal naming why)."""

    def __init__(self, model: RunningModel, media_down: MediaDown, roles_twin: RolesTwin) -> None:
        self.model = model
        self._media_down = media_down  # opens the media-less twin of a target
        self._roles_twin = roles_twin  # opens the twin whose SBC runs other optional roles

    @contextmanager
    def system_config(self, target: Target, changes: Mapping[str, Mapping[str, Any]]) -> Iterator[None]:
        store = self.model.store
        saved: dict[str, dict[str, Any] | None] = {}
        try:
            for doc_id, fields in changes.items():
                current = store.get(SYSTEM_CONFIG_DB, doc_id)
                saved[doc_id] = copy.deepcopy(current)
                doc: dict[str, Any] = copy.deepcopy(current) if current else {"_id": doc_id}
                doc["default"] = {**(doc.get("default") or {}), **fields}
                store.put(SYSTEM_CONFIG_DB, doc)
            yield
        finally:
            for doc_id, before in saved.items():
                now = store.get(SYSTEM_CONFIG_DB, doc_id)
                if before is None:
                    if now is not None:
                        store.delete(SYSTEM_CONFIG_DB, doc_id, now["_rev"])
                else:
                    restored = {k: v for k, v in before.items() if k != "_rev"}
                    if now is not None:
                        restored["_rev"] = now["_rev"]
                    store.put(SYSTEM_CONFIG_DB, restored)

    def media_down(self, target: Target) -> AbstractContextManager[Target]:
        return self._media_down(target)

    def kamailio_roles(self, target: Target, roles: Mapping[str, bool]) -> AbstractContextManager[Target]:
        return self._roles_twin(target, roles)


def start_model_for(
    profile: Profile,
    *,
    data_dir: Path | None = None,
    log_dir: Path | None = None,
    route_timeout: float = CATALOG_ROUTE_TIMEOUT,
    media_enabled: bool = True,
) -> RunningModel:
    """A model for ``profile``'s release, playing the optional roles the profile says the stack runs, on
    free loopback ports."""
    on = {name for name, active in profile.roles.items() if active}
    _check_playable(profile.name, on)
    config = ModelConfig(
        release=profile.release,
        data_dir=data_dir,
        log_dir=log_dir,
        sbc_port=0,
        media_port=0,
        esl_port=0,
        couch_port=0,
        route_timeout=route_timeout,
        media_enabled=media_enabled,
        role_switches={name: True for name in on},
    )
    try:
        return start_model(config)
    except (OSError, RuntimeError, TimeoutError) as exc:
        raise TargetStartError(f"the embedded Kazoo model failed to start: {exc}") from exc


def target_for_model(model: RunningModel, profile: Profile, roles: Mapping[str, Any], name: str) -> Target:
    return Target(
        name=name,
        kind="embedded",
        profile=profile,
        sbc=model.sbc,
        media=model.media,
        carriers=carrier_roles(roles, model.sbc[0]),
        numbers=dict(roles.get("numbers", {})),
        logs=model_logs(model.log_dir),
        stack=model_access(model),
        documents=model.store,
        route_timeout=model.config.route_timeout,
        setup=ModelSetup(
            model, _model_without_media(model, profile, roles), _model_with_roles(model, profile, roles)
        ),
        demo_data=model.config.data_dir is None,
    )


@contextmanager
def _model_twin(
    model: RunningModel,
    profile: Profile,
    roles: Mapping[str, Any],
    target: Target,
    label: str,
    **changes: Any,
) -> Iterator[Target]:
    """A second model like ``model`` with ``changes`` to its config, on free ports, as a target with the
    carriers and numbers of ``target``; stopped when the block ends."""
    config = dataclasses.replace(
        model.config, sbc_port=0, media_port=0, esl_port=0, couch_port=0, log_dir=None, **changes
    )
    twin = start_model(config)
    try:
        yield dataclasses.replace(
            target_for_model(twin, profile, roles, f"{target.name} ({label})"),
            carriers=target.carriers,
            numbers=target.numbers,
        )
    finally:
        twin.stop()


def _model_without_media(model: RunningModel, profile: Profile, roles: Mapping[str, Any]) -> MediaDown:
    def twin(target: Target) -> AbstractContextManager[Target]:
        return _model_twin(model, profile, roles, target, "media down", media_enabled=False)

    return twin


def _model_with_roles(model: RunningModel, profile: Profile, roles: Mapping[str, Any]) -> RolesTwin:
    """A twin whose SBC role plays the optional Kamailio roles asked (the others as ``model`` does), its
    profile saying so; ``target`` itself when ``model`` already plays them as asked."""

    @contextmanager
    def twin(target: Target, wanted: Mapping[str, bool]) -> Iterator[Target]:
        current = frozenset(name for name, on in model.config.role_switches.items() if on)
        switched_on = frozenset(name for name, on in wanted.items() if on)
        on = (current | switched_on) - frozenset(wanted).difference(switched_on)
        if on == current:
            yield target
            return
        unplayable = sorted(on - set(ROLE_SWITCHES))
        if unplayable:
            raise SetupUnsupported(f"the embedded model does not play {', '.join(unplayable)}")
        label = "+".join(sorted(on)) or "no optional roles"
        switches = {name: name in on for name in ROLE_SWITCHES}
        with _model_twin(
            model, profile.with_roles(on), roles, target, label, role_switches=switches
        ) as started:
            yield started

    return twin


def _check_playable(profile_name: str, on: frozenset[str] | set[str]) -> None:
    unplayable = sorted(set(on) - set(ROLE_SWITCHES))
    if unplayable:
        raise TargetStartError(
            f"profile {profile_name!r} says the stack runs {', '.join(unplayable)}, which the embedded "
            f"model does not play (it plays {', '.join(ROLE_SWITCHES)})"
        )


@contextmanager
def open_embedded(
    profile: Profile,
    *,
    data_dir: Path | None = None,
    log_dir: Path | None = None,
    route_timeout: float = CATALOG_ROUTE_TIMEOUT,
    name: str = "embedded",
) -> Iterator[Target]:
    """A model on free loopback ports for ``profile``'s release, stopped when the block ends."""
    model = start_model_for(profile, data_dir=data_dir, log_dir=log_dir, route_timeout=route_timeout)
    try:
        yield target_for_model(model, profile, roles_for(data_dir), name)
    finally:
        model.stop()

"""Scenario setup on a stack whose documents are reached through CouchDB: provisioning, journaled and
restored (harness.kazoo.provision), also after a crash (`kazoo-harness restore`); and the rule for a
stack whose Kamailio roles the harness cannot switch (:func:`roles_as_run`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, NoReturn

from harness.kazoo.provision import provisioned_setup
from harness.net.gate import SendRefused
from harness.targets.target import SetupUnsupported, Target

# What the lab's Kamailio configuration (harness/lab/kamailio.cfg.tmpl) and its containers run
LAB_ROLES_REASON = "our lab configuration has no such role (it runs none of Kazoo's optional roles)"


def profile_roles(target: Target) -> frozenset[str]:
    """The optional roles the target's profile says its stack runs."""
    return frozenset(name for name, on in target.profile.roles.items() if on)


@contextmanager
def roles_as_run(
    target: Target, wanted: Mapping[str, bool], running: frozenset[str], why: str
) -> Iterator[Target]:
    """``target`` itself when its SBC already runs the roles as ``wanted`` says (``running``: the
    optional roles it runs), else SetupUnsupported naming them and ``why`` they cannot be switched."""
    differ = sorted(name for name, on in wanted.items() if (name in running) != bool(on))
    if differ:
        asked = ", ".join(f"{name} {'on' if wanted[name] else 'off'}" for name in differ)
        raise SetupUnsupported(f"needs the Kamailio role(s) {asked}; target {target.name!r}: {why}")
    yield target


class ProvisionedSetup:
    """system_config changes through CouchDB provisioning; the media servers are not the harness's, nor
    are the Kamailio roles: ``fixed_roles`` says why they cannot be switched (None: a real stack, which
    runs what its profile's `roles:` say)."""

    def __init__(self, fixed_roles: str | None = None) -> None:
        self.fixed_roles = fixed_roles

    @contextmanager
    def system_config(self, target: Target, changes: Mapping[str, Mapping[str, Any]]) -> Iterator[None]:
        if target.stack.couch_url is None:
            raise SetupUnsupported(
                f"target {target.name!r} names no CouchDB: it cannot change system_config (setup)"
            )
        try:
            provisioner = target.provisioner()
        except SendRefused as exc:
            raise SetupUnsupported(str(exc)) from exc
        with provisioned_setup(provisioner, {k: dict(v) for k, v in changes.items()}):
            yield

    def media_down(self, target: Target) -> NoReturn:
        raise SetupUnsupported(
            f"target {target.name!r} cannot take its media servers down (setup media: down)"
        )

    def kamailio_roles(self, target: Target, roles: Mapping[str, bool]) -> AbstractContextManager[Target]:
        if self.fixed_roles is not None:
            return roles_as_run(target, roles, frozenset(), self.fixed_roles)
        running = profile_roles(target)
        said = ", ".join(sorted(running)) or "none of the optional roles"
        why = (
            f"a stack's roles are its own configuration, and profile {target.profile.name!r} says it runs "
            f"{said} (its `roles:`)"
        )
        return roles_as_run(target, roles, running, why)

"""Scenario `setup`: temporary changes to the target for one scenario, always undone afterwards.

What a change means is the target's (harness.targets: its ``setup``): on the embedded model and the lab
`system_config` goes straight into the model's store and `media: down` opens a twin whose dispatcher has
no live media server; on a real stack `system_config` goes through CouchDB provisioning (journaled,
restored even after a crash by `kazoo-harness restore`). `kamailio_roles: {antiflood: on}` opens a twin
whose SBC runs those optional Kamailio roles where the target can start one (the embedded model, kazoo-sbc);
where it cannot (the lab, docker: our configuration has no such roles; a real stack: its roles are its
configuration) the scenario runs only when the target already runs them as asked, else it is skipped with
the reason.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

from harness.targets.target import Setup, SetupUnsupported, Target


@contextmanager
def applied(target: Target, setup: Mapping[str, Any]) -> Iterator[Target]:
    """Apply ``setup`` to ``target`` for the duration of the block; yield the target to use. The twins
    come first (roles, then media), so that system_config changes the documents the call will meet."""
    if not setup:
        yield target
        return
    if target.setup is None:
        raise SetupUnsupported(f"target {target.name!r} cannot apply scenario setup {sorted(setup)}")
    with ExitStack() as undo:
        effective = target
        roles = setup.get("kamailio_roles")
        if roles:
            effective = undo.enter_context(_setup_of(effective).kamailio_roles(effective, roles))
        if setup.get("media") == "down":
            effective = undo.enter_context(_setup_of(effective).media_down(effective))
        if setup.get("system_config"):
            undo.enter_context(_setup_of(effective).system_config(effective, setup["system_config"]))
        yield effective


def _setup_of(target: Target) -> Setup:
    if target.setup is None:
        raise SetupUnsupported(f"target {target.name!r} cannot apply scenario setup")
    return target.setup

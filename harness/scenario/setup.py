"""Scenario `setup`: temporary changes to the target for one scenario, always undone afterwards.

What a change means is the target's (harness.targets: its ``setup``): on the embedded model and the lab
`system_config` goes straight into the model's store and `media: down` opens a twin whose dispatcher has
no live media server; on a real stack `system_config` goes through CouchDB provisioning (journaled,
restored even after a crash by `kazoo-harness restore`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

from harness.targets.target import SetupUnsupported, Target


@contextmanager
def applied(target: Target, setup: Mapping[str, Any]) -> Iterator[Target]:
    """Apply ``setup`` to ``target`` for the duration of the block; yield the target to use."""
    if not setup:
        yield target
        return
    if target.setup is None:
        raise SetupUnsupported(f"target {target.name!r} cannot apply scenario setup {sorted(setup)}")
    with ExitStack() as undo:
        if setup.get("system_config"):
            undo.enter_context(target.setup.system_config(target, setup["system_config"]))
        effective = target
        if setup.get("media") == "down":
            effective = undo.enter_context(target.setup.media_down(target))
        yield effective

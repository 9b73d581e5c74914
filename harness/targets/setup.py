"""Scenario setup on a stack whose documents are reached through CouchDB: provisioning, journaled and
restored (harness.kazoo.provision), also after a crash (`kazoo-harness restore`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn

from harness.kazoo.provision import provisioned_setup
from harness.net.gate import SendRefused
from harness.targets.target import SetupUnsupported, Target


class ProvisionedSetup:
    """system_config changes through CouchDB provisioning; the media servers are not the harness's."""

    @contextmanager
    def system_config(self, target: Target, changes: Mapping[str, Mapping[str, Any]]) -> Iterator[None]:
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

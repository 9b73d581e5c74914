"""The `lab` kind: a real Kamailio (Debian's packages) configured like Kazoo's SBC, in front of the
embedded model's media and routing roles. Same scenarios, same profile: where Kamailio and the model's
own SBC role disagree, the model (or the behaviour doc) is wrong."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from harness.kazoo.acls import edge_sources, entries_from_store
from harness.kazoo.profile import Profile
from harness.lab.kamailio import KamailioError, LabKamailio, TrustedSource, kamailio_available
from harness.model.stack import RunningModel
from harness.targets.embedded import (
    CATALOG_ROUTE_TIMEOUT,
    ModelSetup,
    carrier_roles,
    roles_for,
    start_model_for,
    target_for_model,
)
from harness.targets.target import Address, Target, TargetStartError, file_logs


def lab_trusted(model: RunningModel) -> list[TrustedSource]:
    """The trusted sources the lab's Kamailio reads, as Kazoo's reads its address table: the rows of the
    model's ACLs (harness.kazoo.acls.edge_sources)."""
    entries = entries_from_store(model.store, model.config.node)
    return [(source.ip, source.mask, source.port) for source in edge_sources(entries)]


@contextmanager
def lab_kamailio(
    profile: Profile, media: Address | None, trusted: Sequence[TrustedSource] = ()
) -> Iterator[LabKamailio]:
    """Our Kamailio configuration for ``profile``'s release in front of ``media`` (None: no media
    server, every call gets 480) with ``trusted`` sources, stopped when the block ends."""
    reason = kamailio_available()
    if reason is not None:
        raise TargetStartError(f"the lab target needs Kamailio: {reason}")
    lab = LabKamailio("127.0.0.1", 0, media=media, style=profile.release, trusted=trusted)
    try:
        lab.start()
    except (KamailioError, OSError) as exc:
        raise TargetStartError(f"the lab Kamailio did not start: {exc}") from exc
    try:
        yield lab
    finally:
        lab.stop()


def _lab_target(model: RunningModel, lab: LabKamailio, profile: Profile, name: str) -> Target:
    embedded = target_for_model(model, profile, roles_for(None), name)
    carriers = dict(embedded.carriers)
    carriers["sbc_self"] = (lab.address[0], None)
    setup = ModelSetup(model, _without_media(model, profile))
    return dataclasses.replace(
        embedded,
        kind="lab",
        sbc=lab.address,
        carriers=carriers,
        logs={**embedded.logs, **file_logs({"kamailio": lab.log_path})},
        setup=setup,
    )


def _without_media(model: RunningModel, profile: Profile):  # type: ignore[no-untyped-def]
    @contextmanager
    def twin(target: Target) -> Iterator[Target]:
        # a second Kamailio whose dispatcher has no media server, in front of the same model
        with lab_kamailio(profile, None, lab_trusted(model)) as down:
            yield dataclasses.replace(
                target,
                name=f"{target.name} (media down)",
                sbc=down.address,
                carriers={**target.carriers, "sbc_self": (down.address[0], None)},
                logs={**target.logs, **file_logs({"kamailio": down.log_path})},
            )

    return twin


@contextmanager
def open_lab(
    profile: Profile, *, route_timeout: float = CATALOG_ROUTE_TIMEOUT, name: str = "lab"
) -> Iterator[Target]:
    model = start_model_for(profile, route_timeout=route_timeout)
    try:
        with lab_kamailio(profile, model.media, lab_trusted(model)) as lab:
            yield _lab_target(model, lab, profile, name)
    finally:
        model.stop()


__all__ = ["carrier_roles", "lab_kamailio", "lab_trusted", "open_lab"]

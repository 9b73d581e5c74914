"""The `lab` kind: a real Kamailio (Debian's packages) configured like Kazoo's SBC, in front of the
embedded model's media and routing roles. Same scenarios, same profile: where Kamailio and the model's
own SBC role disagree, the model (or the behaviour doc) is wrong.

The lab always captures (docs/hep.md): its Kamailio mirrors every SIP message it reads and writes as HEP
(siptrace, ``trace_mode`` 1, before any script check) to a receiver the target owns, the `sbc-capture`
log source, a complete capture.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager

from harness.kazoo.acls import edge_sources, entries_from_store
from harness.kazoo.profile import Profile
from harness.lab.kamailio import HepExport, KamailioError, LabKamailio, TrustedSource, kamailio_available
from harness.model.stack import RunningModel
from harness.progress import step
from harness.targets.capture import loopback_capture
from harness.targets.embedded import (
    CATALOG_ROUTE_TIMEOUT,
    ModelSetup,
    roles_for,
    start_model_for,
    target_for_model,
)
from harness.targets.setup import LAB_ROLES_REASON, roles_as_run
from harness.targets.target import Address, MediaDown, Target, TargetStartError, file_logs


def lab_trusted(model: RunningModel) -> list[TrustedSource]:
    """The trusted sources the lab's Kamailio reads, as Kazoo's reads its address table: the rows of the
    model's ACLs (harness.kazoo.acls.edge_sources)."""
    entries = entries_from_store(model.store, model.config.node)
    return [(source.ip, source.mask, source.port) for source in edge_sources(entries)]


@contextmanager
def lab_kamailio(
    profile: Profile,
    media: Address | None,
    hep: HepExport | None = None,
    trusted: Sequence[TrustedSource] = (),
) -> Iterator[LabKamailio]:
    """Our Kamailio configuration for ``profile``'s release in front of ``media`` (None: no media
    server, every call gets 480) with ``trusted`` sources, mirroring to ``hep`` when given, stopped when
    the block ends."""
    reason = kamailio_available("siptrace" if hep is not None else None)
    if reason is not None:
        raise TargetStartError(f"the lab target needs Kamailio: {reason}")
    lab = LabKamailio("127.0.0.1", 0, media=media, style=profile.release, hep=hep, trusted=trusted)
    behind = "the model's media role" if media is not None else "no media server"
    step(f"starting the lab Kamailio ({profile.release.name}) in front of {behind}")
    try:
        lab.start()
    except (KamailioError, OSError) as exc:
        raise TargetStartError(f"the lab Kamailio did not start: {exc}") from exc
    try:
        yield lab
    finally:
        lab.stop()


def _lab_target(model: RunningModel, lab: LabKamailio, profile: Profile, name: str, hep: HepExport) -> Target:
    embedded = target_for_model(model, profile, roles_for(None), name)
    carriers = dict(embedded.carriers)
    carriers["sbc_self"] = (lab.address[0], None)
    setup = ModelSetup(model, _without_media(model, profile, hep), _lab_roles)
    return dataclasses.replace(
        embedded,
        kind="lab",
        sbc=lab.address,
        carriers=carriers,
        logs={**embedded.logs, **file_logs({"kamailio": lab.log_path})},
        setup=setup,
    )


def _lab_roles(target: Target, roles: Mapping[str, bool]) -> AbstractContextManager[Target]:
    """Our Kamailio configuration has none of the optional roles: a scenario that needs one is skipped
    (a second model's own SBC would answer instead of Kamailio, and test something else)."""
    return roles_as_run(target, roles, frozenset(), LAB_ROLES_REASON)


def _without_media(model: RunningModel, profile: Profile, hep: HepExport) -> MediaDown:
    @contextmanager
    def twin(target: Target) -> Iterator[Target]:
        # a second Kamailio whose dispatcher set is empty (every INVITE: 480), beside the first, in front
        # of the same model, mirroring to the same capture (its own SBC address tells its legs apart)
        with lab_kamailio(profile, None, hep, lab_trusted(model)) as down:
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
    profile: Profile,
    *,
    route_timeout: float = CATALOG_ROUTE_TIMEOUT,
    name: str = "lab",
    hep_transport: str = "udp",
    hep_version: int = 3,
) -> Iterator[Target]:
    """The lab for the block; ``hep_transport`` (udp, tcp) and ``hep_version`` (3, 2, 1) say how its
    Kamailio sends the capture."""
    model = start_model_for(profile, route_timeout=route_timeout)
    try:
        with loopback_capture(complete=True, transport=hep_transport) as capture:
            hep = HepExport(capture.receiver.address(hep_transport), hep_transport, hep_version)
            with lab_kamailio(profile, model.media, hep, lab_trusted(model)) as lab:
                target = _lab_target(model, lab, profile, name, hep)
                yield dataclasses.replace(target, logs={**target.logs, capture.name: capture})
    finally:
        model.stop()

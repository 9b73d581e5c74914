"""The lab target: a real Kamailio (Debian's packages) configured like Kazoo's SBC, in front of the
embedded model's media and routing roles. Same scenarios, same profile: where Kamailio and the model's
own SBC role disagree, the model (or the behaviour doc) is wrong."""

from __future__ import annotations

from harness.kazoo.profiles import Profile
from harness.lab.kamailio import KamailioError, LabKamailio, kamailio_available
from harness.progress import step
from harness.scenario.embedded import CATALOG_ROUTE_TIMEOUT, start_embedded
from harness.scenario.target import Target
from harness.scenario.targets import TargetStartError


def start_lab(profile: Profile, *, route_timeout: float = CATALOG_ROUTE_TIMEOUT) -> Target:
    reason = kamailio_available()
    if reason is not None:
        raise TargetStartError(f"the lab target needs Kamailio: {reason}")
    target = start_embedded(profile, route_timeout=route_timeout)
    model = target.model
    assert model is not None and target.media is not None
    lab = LabKamailio("127.0.0.1", 0, media=target.media, profile=profile.release)
    step(f"starting the lab Kamailio ({profile.release}) in front of the model's media role")
    try:
        lab.start()
    except (KamailioError, OSError) as exc:
        model.stop()
        raise TargetStartError(f"the lab Kamailio did not start: {exc}") from exc

    def close() -> None:
        lab.stop()
        model.stop()

    target.name = "lab"
    target.kind = "lab"
    target.sbc = lab.address
    target.carriers["sbc_self"] = (lab.address[0], None)
    target.log_files = {**target.log_files, "kamailio": lab.log_path}
    target.close = close
    return target

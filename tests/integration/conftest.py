"""Fixtures shared by the tests that drive real SIP software (SIPp, pjsua2) through the stack: one model
per module, and the address calls go to — the model's SBC role, or a real Kamailio (the lab target)
relaying to the model's media role (skipped without Kamailio)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.kazoo.release import KAZOO_4_3
from harness.lab.kamailio import LabKamailio, kamailio_available
from harness.model.stack import ModelConfig, RunningModel, start_model
from harness.net.exchange import Address


@pytest.fixture(scope="module")
def model() -> Iterator[RunningModel]:
    running = start_model(ModelConfig(sbc_port=0, media_port=0, esl_port=0, couch_port=0, route_timeout=0.5))
    yield running
    running.stop()


@pytest.fixture(scope="module", params=["model", "lab"])
def sbc(request: pytest.FixtureRequest, model: RunningModel) -> Iterator[Address]:
    """The model's SBC role, or a real Kamailio (the lab target) relaying to the model's media role."""
    if request.param == "model":
        yield model.sbc
        return
    reason = kamailio_available()
    if reason is not None:
        pytest.skip(reason)
    lab = LabKamailio(media=model.media, style=KAZOO_4_3).start()
    yield lab.address
    lab.stop()

"""RFC 4475 / RFC 5118 corpus against the embedded model's SBC role and the lab Kamailio.

Every corpus file, over UDP and TCP: the model answers an OPTIONS afterwards (never stops serving),
and its answer (or silence, or closed connection) equals Kamailio's: live where Kamailio is installed,
otherwise the answer recorded in docs/conformance.md (generated from a live run).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from harness.interop.conformance import RACES, TRANSPORTS, check_message, recorded_answers
from harness.interop.corpus import CorpusMessage, corpus_dir, load_corpus
from harness.lab.kamailio import kamailio_available

CORPUS = load_corpus() if (corpus_dir() / "README.md").exists() else []
TABLE = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"
KAMAILIO_MISSING = kamailio_available()
CASES = [pytest.param(m, t, id=f"{m.name}-{t}") for m in CORPUS for t in TRANSPORTS]

pytestmark = pytest.mark.skipif(not CORPUS, reason=f"no corpus at {corpus_dir()}")


def _agrees(message: CorpusMessage, transport: str, model: str, kamailio: str) -> bool:
    race = RACES.get((message.name, transport))
    return {model, kamailio} <= race[0] if race else model == kamailio


def test_corpus_is_complete() -> None:
    assert len([m for m in CORPUS if m.set == "rfc4475"]) == 49
    assert len([m for m in CORPUS if m.set == "rfc5118"]) == 12


@pytest.mark.parametrize(("message", "transport"), CASES)
def test_model_keeps_serving_and_matches_recorded_kamailio(message: CorpusMessage, transport: str) -> None:
    answers = asyncio.run(check_message(message, CORPUS.index(message), transport, with_kamailio=False))
    model = answers["model"]
    assert model.serving, f"the model stopped answering OPTIONS after {message.label} over {transport}"
    recorded = recorded_answers(TABLE.read_text(encoding="utf-8")).get((message.name, transport))
    assert recorded is not None, f"{message.label} over {transport} is missing from {TABLE}"
    if recorded == "not sent":
        return  # not sent to Kamailio (it would leave loopback): serving is all there is to compare
    assert _agrees(message, transport, model.summary, recorded), (
        f"{message.label} over {transport}: model {model.cell()} ({model.evidence}), "
        f"Kamailio recorded {recorded}; regenerate docs/conformance.md if Kamailio changed"
    )


@pytest.mark.skipif(KAMAILIO_MISSING is not None, reason=f"Kamailio half: {KAMAILIO_MISSING}")
@pytest.mark.parametrize(("message", "transport"), CASES)
def test_model_answers_as_kamailio_does(message: CorpusMessage, transport: str) -> None:
    answers = asyncio.run(check_message(message, CORPUS.index(message), transport))
    model, kamailio = answers["model"], answers["kamailio"]
    assert model.serving, f"the model stopped answering OPTIONS after {message.label}"
    if kamailio.outcome == "not sent":
        return  # would leave loopback (the note says why): the model's serving is checked above
    assert kamailio.serving, f"Kamailio stopped answering OPTIONS after {message.label}"
    assert _agrees(message, transport, model.summary, kamailio.summary), (
        f"{message.label} over {transport}: model {model.cell()} ({model.evidence}); "
        f"Kamailio {kamailio.cell()} ({kamailio.evidence})"
    )

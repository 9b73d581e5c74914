"""The embedded model never crashes and never stops answering: hypothesis sends mutated INVITEs (byte
flips, splices, truncations, any chain of the harness's mutators) over UDP and TCP to the SBC and the media
role; after every example both still answer an OPTIONS, and nothing was raised inside the model (every
bad message is logged, never raised)."""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_helpers import Invite, UdpPeer, options

from harness.model.stack import ModelConfig, RunningModel, start_model
from harness.sip.mutators import MUTATORS, apply_mutators

LISTED = "127.0.0.10"
ROUTED = "+14155550100"
SPEC_ARGS = {
    "drop-header": ["Via", "CSeq", "To", "From", "Call-ID", "Content-Length", "Max-Forwards"],
    "dup-header": ["Via", "To", "CSeq", "Content-Length"],
    "content-length": ["larger", "smaller", "negative", "missing", "double"],
    "max-forwards": ["0", "garbage", "missing", "300"],
    "require": ["100rel", "timer", "foo"],
    "pad": ["3000", "20000"],
    "truncate": ["10", "200", "400"],
    "garbage": ["50"],
}


class _Errors(logging.Handler):
    """Collects ERROR records from any thread (asyncio logs exceptions nobody handled at ERROR)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def model() -> Iterator[RunningModel]:
    with start_model(
        ModelConfig(sbc_port=0, media_port=0, esl_port=0, couch_port=0, route_timeout=0.2)
    ) as running:
        yield running


@pytest.fixture(scope="module")
def errors() -> Iterator[_Errors]:
    handler = _Errors()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


def _spec(name: str, rng: random.Random) -> str:
    choices = SPEC_ARGS.get(name)
    return f"{name}={rng.choice(choices)}" if choices else name


@st.composite
def mutated_invites(draw: st.DrawFn) -> tuple[bytes, int]:
    seed = draw(st.integers(0, 2**16))
    rng = random.Random(seed)
    names = draw(st.lists(st.sampled_from(sorted(MUTATORS)), max_size=3))
    specs = [_spec(n, rng) for n in names if n not in ("route", "user-agent")]  # keep them in scope
    data = Invite(ROUTED, (LISTED, 5060), ("127.0.0.1", 5060)).render()
    try:
        data = apply_mutators(data, specs, seed=seed)
    except ValueError:
        pass  # a mutator that does not fit this message (e.g. pad smaller than the message)
    raw = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        if not raw:
            break
        pos = draw(st.integers(0, len(raw) - 1))
        raw[pos] = draw(st.sampled_from([0, 10, 13, 32, 58, 59, 60, 62, 255, rng.randrange(256)]))
    return bytes(raw[:60000]), draw(st.integers(0, 1))


def _tcp_send(target: tuple[str, int], data: bytes) -> None:
    with socket.create_connection(target, timeout=2.0) as conn:
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(0.2)
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass  # nothing more within the window: enough, the point is the next OPTIONS


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=mutated_invites())
def test_model_survives_mutated_invites(
    model: RunningModel, errors: _Errors, case: tuple[bytes, int]
) -> None:
    data, over_tcp = case
    with UdpPeer(LISTED) as peer:
        for target in (model.sbc, model.media):
            if over_tcp:
                _tcp_send(target, data)
            else:
                peer.send(data, target)
            peer.barrier(target)  # an OPTIONS after it on the same socket is answered (raises if not)
    assert not errors.records, [r.getMessage() for r in errors.records]


def test_options_helper_builds_a_parseable_ping() -> None:
    assert options((LISTED, 5060), ("127.0.0.1", 5060)).startswith(b"OPTIONS sip:")

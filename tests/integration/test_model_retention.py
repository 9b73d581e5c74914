"""What a finished call leaves behind in the model, and that what is left still answers the call's
retransmissions.

Kamailio and FreeSWITCH keep a finished transaction for about 32 s to answer retransmissions. At the load
the model is meant to take (2,000 rejected calls a second), that is 64,000 calls held at once: what each
holds is what the cyclic garbage collector scans again and again (it was ~15% of the model's CPU when a
held call kept its parsed messages, ~80 objects), and memory grows with it. A finished call keeps what
answering its retransmissions needs, and no parsed message on the SBC's side.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from model_helpers import Invite, UdpPeer

from harness.kazoo.release import release
from harness.model import sbc
from harness.model.stack import ModelConfig, RunningModel, start_model
from harness.sip.message import Response

UNKNOWN = "+14155550199"  # no number document: 604 at once
RINGS_FOREVER = "+14155550121"  # the demo callflow that rings until Kamailio's INVITE timer
LISTED = "127.0.0.10"
DEADLINE = 5.0
# objects the collector tracks per finished call, held for the linger time: measured 5 (the SBC's two
# deadlines, the media role's, its Call and its reply path); 90 when a held call kept its parsed messages
HELD_PER_CALL_MAX = 10


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningModel]:
    config = ModelConfig(
        release=release("kazoo-4.3"),
        log_dir=tmp_path_factory.mktemp("retention"),
        sbc_port=0,
        media_port=0,
        esl_port=0,
        couch_port=0,
    )
    running = start_model(config)
    yield running
    running.stop()


def _ack(invite: Invite, final: Response) -> bytes:
    ip, port = invite.source
    host, tport = invite.target
    return (
        f"ACK sip:{invite.number}@{host}:{tport} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {ip}:{port};branch={invite.branch};rport\r\nMax-Forwards: 70\r\n"
        f"From: <sip:+14155551234@{ip}>;tag={invite.from_tag}\r\nTo: {final.get('to')}\r\n"
        f"Call-ID: {invite.call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def _rejected_call(peer: UdpPeer, model: RunningModel) -> tuple[Invite, Response]:
    invite = Invite(UNKNOWN, peer.address, model.sbc)
    peer.send(invite.render(), model.sbc)
    _, final = peer.final(invite.call_id, DEADLINE)
    assert final is not None and final.code == 604, final
    peer.send(_ack(invite, final), model.sbc)
    return invite, final


def _tracked_objects() -> int:
    """What the collector tracks, without the bounded parse caches (full after ~1,000 calls, a constant)."""
    for cache in [o for o in gc.get_objects() if isinstance(o, functools._lru_cache_wrapper)]:
        cache.cache_clear()
    gc.collect()
    return len(gc.get_objects())


def test_a_finished_call_holds_a_few_objects_while_it_lingers(model: RunningModel) -> None:
    calls = 60
    with UdpPeer(LISTED) as peer:
        for _ in range(10):  # first-call paths (caches, imports) out of the count
            _rejected_call(peer, model)
        peer.barrier(model.sbc)
        before = _tracked_objects()
        for _ in range(calls):
            _rejected_call(peer, model)
        peer.barrier(model.sbc)  # every ACK handled (the SBC reads one socket in order)
        held = (_tracked_objects() - before) / calls
    assert held <= HELD_PER_CALL_MAX, f"{held:.1f} tracked objects held per finished call"


def test_what_a_finished_call_keeps_answers_its_retransmissions(model: RunningModel) -> None:
    with UdpPeer(LISTED) as peer:
        invite, final = _rejected_call(peer, model)
        peer.send(invite.render(), model.sbc)  # the INVITE again: the same final, from the SBC
        seen, again = peer.final(invite.call_id, DEADLINE)
        assert again is not None and again.to_bytes() == final.to_bytes()
        assert seen == [again]  # the final alone: relayed as a new transaction, tm's 100 would come first
        peer.send(_ack(invite, final), model.sbc)  # a second ACK: nothing comes back for it
        cancel = Invite(UNKNOWN, peer.address, model.sbc, method="CANCEL", call_id=invite.call_id,
                        branch=invite.branch, from_tag=invite.from_tag, body=b"")  # fmt: skip
        peer.send(cancel.render(), model.sbc)
        _, answer = peer.final(invite.call_id, DEADLINE)
        assert answer is not None and (answer.code, answer.cseq.method) == (481, "CANCEL")
        assert peer.barrier(model.sbc) == []  # nothing else came back


def test_a_transaction_the_media_role_never_answers_is_forgotten_after_its_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TRANSACTION_MAX (180 s) bounds the SBC's table whatever the media role does; shortened here. While
    the transaction lives, its retransmission gets nothing (tm is relaying it); once forgotten, the same
    INVITE is a new transaction and gets tm's 100 again."""
    monkeypatch.setattr(sbc, "TRANSACTION_MAX", 0.3)
    monkeypatch.setattr(sbc, "TRANSACTION_SWEEP", 0.1)
    config = ModelConfig(
        release=release("kazoo-4.3"), log_dir=tmp_path, sbc_port=0, media_port=0, esl_port=0, couch_port=0
    )
    with start_model(config) as running, UdpPeer(LISTED) as peer:
        invite = Invite(RINGS_FOREVER, peer.address, running.sbc)
        started = time.monotonic()
        peer.send(invite.render(), running.sbc)
        codes = [peer.recv(DEADLINE), peer.recv(DEADLINE)]
        assert [r.code if r else None for r in codes] == [100, 180]
        peer.send(invite.render(), running.sbc)
        assert peer.barrier(running.sbc) == []  # relayed still: nothing for the copy
        again: Response | None = None
        while again is None and time.monotonic() - started < DEADLINE:
            peer.send(invite.render(), running.sbc)
            again = peer.recv(0.1)
        assert again is not None and again.code == 100, "the transaction was never forgotten"
        assert time.monotonic() - started >= 0.3

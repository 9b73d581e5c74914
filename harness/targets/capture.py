"""The stack's own capture points, owned by the target (docs/hep.md): a kind whose stack sends HEP opens a
receiver for it and closes it when the target's block ends, like everything else the kind started.

A HEP capture is one of the target's log sources (``Target.logs``: a ``HepCapture`` is a log-source
factory), so scenarios, the correlator and log patterns see it like any other; ``Target.captures`` lists
them for the checks that read the packets (harness.scenario.capture).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager

from harness.logs.hep_source import HepCapture, HepReceiver
from harness.targets.target import Target, TargetStartError

SBC_CAPTURE = "sbc-capture"  # the HEP source of an SBC a kind starts itself (lab, kazoo-sbc)


@contextmanager
def loopback_capture(
    name: str = SBC_CAPTURE, *, complete: bool, transport: str = "udp"
) -> Iterator[HepCapture]:
    """A receiver listening on a free port of 127.0.0.1 (``udp`` or ``tcp``) for the block: the address
    to configure the stack's capture agent with is ``capture.receiver.address(transport)``."""
    capture = HepCapture(HepReceiver([f"{transport}:127.0.0.1:0"], name), complete=complete)
    try:
        capture.receiver.start()
    except (OSError, RuntimeError) as exc:
        raise TargetStartError(f"the HEP receiver {name} did not start: {exc}") from exc
    try:
        yield capture
    finally:
        capture.close()


@contextmanager
def closing_captures(target: Target) -> Iterator[Target]:
    """The target, its HEP receivers stopped when the block ends (a target file's: each one starts when
    the first scenario enters its source, so a target only read, by diagnose say, binds nothing)."""
    with contextlib.ExitStack() as stack:
        for capture in target.captures:
            stack.callback(capture.close)
        yield target

"""Progress of long work (a target starting, an image building) for whoever shows it.

Long work calls ``step("building kazoo-harness/model: Step 2/4 : RUN apt-get ...")``; a front end (the
`run` command's progress bar, a CI log) listens with ``listening(callback)``. The channel is the standard
logging module: a step is an INFO record of the ``harness.progress`` logger, so plain pytest's log
capture (``--log-cli-level INFO``) and any handler a user configures see the same steps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

LOGGER = logging.getLogger("harness.progress")
LOGGER.setLevel(logging.INFO)


def step(message: str) -> None:
    """Say what long work is doing now (one line, present tense)."""
    LOGGER.info(message)


class _Callback(logging.Handler):
    def __init__(self, callback: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        self.callback(record.getMessage())


@contextmanager
def listening(callback: Callable[[str], None]) -> Iterator[None]:
    """Call ``callback(message)`` for every step while the block runs (in the thread that took it)."""
    handler = _Callback(callback)
    LOGGER.addHandler(handler)
    try:
        yield
    finally:
        LOGGER.removeHandler(handler)


__all__ = ["listening", "step"]

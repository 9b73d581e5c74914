"""Shared test settings. In CI (CI=true) a skipped test under tests/ is a failure: CI installs every
component the tests need (Kamailio, SIPp, tshark...), so a skip there means an install went wrong."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

STRICT = os.environ.get("CI", "").lower() == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every component is installed: {reason}"


def pytest_configure(config: pytest.Config) -> None:
    # Started in the background by a non-interactive shell (`cmd &`, nohup), this process inherits
    # SIGINT ignored, and so would every child it starts: the Ctrl-C tests would then interrupt nothing.
    # Installing Python's handler here makes exec() give the children SIGINT's default back.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        try:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        except ValueError:  # not the main thread: leave it
            pass


pytest_plugins = ["pytester"]

"""Shared test settings. In CI (CI=true) a skipped test under tests/ is a failure: CI installs every
component the tests need (Kamailio, SIPp, tshark...), so a skip there means an install went wrong."""

from __future__ import annotations

import os
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


pytest_plugins = ["pytester"]

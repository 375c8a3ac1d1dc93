"""A pytest plugin: with EVALPIPE_NO_SKIPS=1 (CI sets it) a skipped test, or a skipped module, is a failure.

A broken PyTorch install, a missing extra or a missing browser must turn CI red, not leave it green
with part of the suite quietly skipped.
"""

from __future__ import annotations

import os

import pytest

ENABLED = os.environ.get("EVALPIPE_NO_SKIPS") == "1"


def _fail(report) -> None:
    if ENABLED and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped where every test must run (EVALPIPE_NO_SKIPS=1): {report.longrepr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail(outcome.get_result())

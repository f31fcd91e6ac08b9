"""pytest glue for the core tests (CPython only; the MicroPython runner never imports this).

The tests themselves import nothing from pytest, so they also run under tests/mpy/runner.py.
Here we make sure they test *this* checkout's firmware, and report _support.SkipTest as a skip.
"""

import sys
from pathlib import Path

import pytest

_CORE = Path(__file__).resolve().parent
# Ahead of any installed copy, so an outdated `pip install` cannot shadow the working tree.
for _p in (str(_CORE), str(_CORE.parents[1] / "firmware")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from _support import SkipTest  # noqa: E402  (needs the path above)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # Rewrite the report (rather than calling pytest.skip) so the skip is reported at the
    # test's own file:line, not at this conftest.
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(SkipTest):
        path, lineno, _ = item.location
        reason = str(call.excinfo.value) or "SkipTest"
        report.outcome = "skipped"
        report.longrepr = (path, (lineno or 0) + 1, "Skipped: " + reason)
    return report

"""Run every core test under real MicroPython 1.29 (tests/mpy/run.mjs), from the same pytest run.

pytest runs tests/core directly under CPython; this test runs the very same files through the
WebAssembly MicroPython in Node, so one `pytest` proves both. Without Node (or without
`npm ci --prefix tests/mpy`) it is skipped locally but fails under CI=true.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "tests" / "mpy" / "run.mjs"
WASM_PKG = REPO / "tests" / "mpy" / "node_modules" / "@micropython"
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _missing(reason):
    if IN_CI:
        pytest.fail(reason + " (CI=true: the MicroPython run is required)")
    pytest.skip(reason)


def test_core_tests_pass_under_micropython():
    node = shutil.which("node")
    if node is None:
        _missing("node not found on PATH")
    if not WASM_PKG.is_dir():
        _missing("MicroPython wasm not installed: run `npm ci --prefix tests/mpy`")
    proc = subprocess.run([node, str(RUN)], cwd=REPO, capture_output=True, text=True, timeout=900)
    # Full output goes to captured stdout (shown on failure); the assertion names the failures.
    sys.stdout.write(proc.stdout + proc.stderr)
    lines = proc.stdout.splitlines()
    summary = lines[-1] if lines and SUMMARY.match(lines[-1]) else "no summary line"
    failed = [ln[len("FAILED ") :] for ln in lines if ln.startswith("FAILED ")]
    why = "MicroPython (exit %d): %s" % (proc.returncode, summary)
    why += "; failed: " + (", ".join(failed) or "-")
    why += "; stderr: " + (proc.stderr.strip()[-500:] or "-")
    assert proc.returncode == 0, why
    m = SUMMARY.match(summary)
    assert m and int(m.group(1)) > 0, "no test passed under MicroPython: " + summary

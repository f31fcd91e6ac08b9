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


SHARDS = 2  # node processes side by side: the run is CPU-bound and one is ~10 minutes alone


def _shards():
    """The core test modules in SHARDS groups of about equal size (largest first, greedy)."""
    files = sorted((REPO / "tests" / "core").glob("test_*.py"), key=lambda f: -f.stat().st_size)
    groups = [[] for _ in range(SHARDS)]
    sizes = [0] * SHARDS
    for f in files:
        i = sizes.index(min(sizes))
        groups[i].append(f.stem)
        sizes[i] += f.stat().st_size
    return [g for g in groups if g]


def test_core_tests_pass_under_micropython():
    node = shutil.which("node")
    if node is None:
        _missing("node not found on PATH")
    if not WASM_PKG.is_dir():
        _missing("MicroPython wasm not installed: run `npm ci --prefix tests/mpy`")
    procs = [
        subprocess.Popen([node, str(RUN)] + group, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for group in _shards()
    ]
    passed = 0
    whys = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=1200)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
        # Full output goes to captured stdout (shown on failure); the assertion names the failures.
        sys.stdout.write(out + err)
        lines = out.splitlines()
        summary = lines[-1] if lines and SUMMARY.match(lines[-1]) else "no summary line"
        failed = [ln[len("FAILED ") :] for ln in lines if ln.startswith("FAILED ")]
        m = SUMMARY.match(summary)
        passed += int(m.group(1)) if m else 0
        if proc.returncode != 0 or not m:
            why = "MicroPython (exit %d): %s" % (proc.returncode, summary)
            why += "; failed: " + (", ".join(failed) or "-")
            whys.append(why + "; stderr: " + (err.strip()[-500:] or "-"))
    assert not whys, " | ".join(whys)
    assert passed > 0, "no test passed under MicroPython"

"""The ESP32 shell (firmware/main.py, zongji/shell/) type-checks against MicroPython's own
ESP32 stubs (issue `device`): what it calls on machine, network, socket, asyncio and time must
exist on the board, with those signatures. mypy runs with the stubs' stdlib in place of
CPython's typeshed, from a folder of their own (.stubs/esp32, made by tests/run.sh), so the
host venv's packages cannot hide a call the board lacks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STUBS = REPO / ".stubs" / "esp32"
CONFIG = REPO / ".ci" / "mypy-esp32.ini"
CHECKED = ["main.py", "zongji/shell"]


def test_the_esp32_shell_type_checks_against_the_esp32_stubs():
    if not (STUBS / "machine.pyi").exists():
        if os.environ.get("CI"):
            pytest.fail("no ESP32 stubs in .stubs/esp32: tests/run.sh installs them")
        pytest.skip("no ESP32 stubs in .stubs/esp32: run tests/run.sh once")
    env = dict(os.environ, MYPYPATH=str(STUBS))
    argv = [sys.executable, "-m", "mypy", "--config-file", str(CONFIG), "--custom-typeshed-dir", str(STUBS)]
    res = subprocess.run(argv + CHECKED, cwd=REPO / "firmware", env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "Success" in res.stdout

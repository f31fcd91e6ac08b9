"""Our DTMF detector against real components: SpanDSP's dtmf_tx makes the tones (ctypes), and
SpanDSP's dtmf_rx and multimon-ng hear the same signal as a cross-check."""

import os
import shutil
import subprocess
import sys
from array import array
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "firmware"))

import spandsp  # noqa: E402
from zongji.media import dtmf  # noqa: E402

ALL = "123A456B789C*0#D"


def _missing(reason):
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " (CI=true: the cross-check is required)")
    pytest.skip(reason)


def _ours(samples):
    return "".join(d for d, _ in dtmf.decode(array("h", samples)))


@pytest.mark.parametrize(
    "level,twist,on,off",
    [(-10, 0, 50, 55), (-10, 0, 40, 40), (-3, 0, 40, 40), (-25, 0, 40, 40), (-10, 4, 40, 40), (-10, -8, 40, 40)],
)
# -3 dBm0 is SpanDSP's loudest: at 0 dBm0 a tone pair peaks above int16 and dtmf_tx wraps around.
def test_spandsp_tones_decode_to_the_same_digits(level, twist, on, off):
    spandsp.require()
    x = [0] * 800 + spandsp.dtmf_generate(ALL * 2, level=level, twist=twist, on_ms=on, off_ms=off) + [0] * 800
    assert _ours(x) == ALL * 2


def test_spandsp_rx_agrees_on_its_own_tones():
    spandsp.require()
    x = [0] * 800 + spandsp.dtmf_generate(ALL, level=-10, on_ms=50, off_ms=55) + [0] * 800
    assert spandsp.dtmf_detect(x) == ALL == _ours(x)


def test_multimon_ng_hears_the_same_digits():
    spandsp.require()
    for tool in ("multimon-ng", "sox"):
        if shutil.which(tool) is None:
            _missing(tool + " not installed (Debian: apt-get install " + tool + ")")
    x = array("h", [0] * 2000 + spandsp.dtmf_generate("159#0", level=-6, on_ms=80, off_ms=80) + [0] * 4000)
    sox = [
        "sox",
        "-t",
        "raw",
        "-r",
        "8000",
        "-e",
        "signed",
        "-b",
        "16",
        "-c",
        "1",
        "-",
        "-t",
        "raw",
        "-r",
        "22050",
        "-",
    ]
    wide = subprocess.run(sox, input=x.tobytes(), capture_output=True, check=True, timeout=60).stdout
    mm = subprocess.run(
        ["multimon-ng", "-q", "-a", "DTMF", "-t", "raw", "-"], input=wide, capture_output=True, timeout=60
    )
    heard = "".join(ln.split()[-1] for ln in mm.stdout.decode().splitlines() if ln.startswith("DTMF:"))
    assert heard == "159#0" == _ours(x)

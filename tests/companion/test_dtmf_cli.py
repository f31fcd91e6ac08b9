"""`zongji dtmf decode`: WAV, raw, A-law and µ-law files made with SpanDSP's tones and sox."""

import json
import shutil
import subprocess
import sys
import wave
from array import array
from pathlib import Path

import pytest
from click.testing import CliRunner
from zongji_companion.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import spandsp  # noqa: E402  (tests/spandsp.py)

DIGITS = "5#09"


@pytest.fixture
def tones(tmp_path):
    spandsp.require()
    pcm = array("h", [0] * 4000 + spandsp.dtmf_generate(DIGITS, level=-12, on_ms=60, off_ms=60))
    raw = tmp_path / "t.raw"
    raw.write_bytes(pcm.tobytes())
    with wave.open(str(tmp_path / "t.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm.tobytes())
    return tmp_path


def _run(*args):
    return CliRunner().invoke(main, ["dtmf", "decode"] + [str(a) for a in args])


def test_wav_digits_with_start_times(tones):
    r = _run(tones / "t.wav")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert [ln.split()[1] for ln in lines] == list(DIGITS)
    assert lines[0].startswith("0.49") or lines[0].startswith("0.50"), lines[0]  # 4000 samples of lead


def test_raw_and_json(tones):
    r = _run("--raw", "--json", tones / "t.raw")
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert "".join(d["digit"] for d in got["digits"]) == DIGITS
    assert abs(got["digits"][1]["start"] - 0.62) < 0.01


def _sox():
    if shutil.which("sox") is None:
        pytest.skip("sox not installed")


def test_alaw_and_ulaw(tones):
    _sox()
    for flag, enc in (("--alaw", "a-law"), ("--ulaw", "u-law")):
        out = tones / ("t." + enc)
        cmd = ["sox", "-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1", str(tones / "t.raw")]
        subprocess.run(cmd + ["-t", "raw", "-e", enc, str(out)], check=True)
        r = _run(flag, out)
        assert r.exit_code == 0, r.output
        assert "".join(ln.split()[1] for ln in r.output.splitlines()) == DIGITS


def test_other_rates_say_how_to_convert(tones):
    _sox()
    subprocess.run(["sox", str(tones / "t.wav"), "-r", "16000", str(tones / "t16.wav")], check=True)
    r = _run(tones / "t16.wav")
    assert r.exit_code == 1
    assert "16000 Hz" in r.output and "sox IN.wav -r 8000 -c 1 -b 16 OUT.wav" in r.output


def test_unreadable_and_headerless_files(tmp_path):
    r = _run(tmp_path / "missing.wav")
    assert r.exit_code == 1 and "can't read" in r.output
    (tmp_path / "x.raw").write_bytes(b"\x01\x02" * 100)
    r = _run(tmp_path / "x.raw")
    assert r.exit_code == 1 and "--raw" in r.output
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    assert _run(tmp_path / "bad.wav").exit_code == 1


def test_no_digits_is_exit_0_with_a_note(tmp_path):
    (tmp_path / "quiet.raw").write_bytes(bytes(16000))
    r = _run("--raw", tmp_path / "quiet.raw")
    assert r.exit_code == 0
    assert "no DTMF digits" in r.output
    r = _run("--raw", "--json", tmp_path / "quiet.raw")
    assert json.loads(r.stdout)["digits"] == []


def test_help_teaches_with_an_example():
    r = CliRunner().invoke(main, ["dtmf", "decode", "--help"])
    assert r.exit_code == 0
    assert "zongji dtmf decode call.wav" in r.output and "Exit status" in r.output

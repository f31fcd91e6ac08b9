"""`zongji boards`: the board files with what each needs, and a broken one named by file:line."""

import json
import os
import shutil
import subprocess
import sys

from click.testing import CliRunner
from zongji_companion import boards
from zongji_companion.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def zongji(*args, env=None):
    """The installed command in a process of its own (ZONGJI_BOARDS is read when it starts)."""
    return subprocess.run([sys.executable, "-m", "zongji_companion"] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, **(env or {})))  # fmt: skip


def test_the_listing_says_what_each_board_needs():
    result = run("boards")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()[1:-1]}
    assert set(rows) == set(boards.names()) >= {"esp32-wrover", "esp32-s3-octal", "wt32-eth01", "esp32-devkitc"}
    wrover = rows["esp32-wrover"].split()
    assert wrover[1:6] == ["esp32", "4MB", "0x1000", "yes", "Wi-Fi"]
    assert rows["esp32-wrover"].endswith("stock image ESP32_GENERIC-SPIRAM-20260801-v1.29.0.bin")
    assert rows["esp32-s3-octal"].split()[1:5] == ["esp32s3", "8MB", "0x0", "yes"]
    assert "Ethernet (LAN8720 PHY)" in rows["wt32-eth01"]
    assert "custom image: ESP32_GENERIC + the frozen core (boards/manifest.py)" in rows["wt32-eth01"]
    assert " no " in rows["esp32-devkitc"]  # no PSRAM
    assert result.output.splitlines()[-1].startswith("%d boards in " % len(rows))


def test_json_lists_every_board_with_its_needs():
    got = json.loads(run("boards", "--json").output)
    by = {b["name"]: b for b in got["boards"]}
    assert got["errors"] == []
    assert (by["wt32-eth01"]["frozen"], by["wt32-eth01"]["psram"], by["wt32-eth01"]["network"]) == (True, False, "lan")
    assert by["esp32-s3-octal"]["micropython"] == "ESP32_GENERIC_S3-SPIRAM_OCT-20260801-v1.29.0.bin"


def test_one_board_in_detail():
    result = run("boards", "wt32-eth01")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "esp32, 4MB flash; MicroPython is written at 0x1000" in out
    assert "no: the core must be frozen into the image (boards/manifest.py)" in out
    assert "FROZEN_MANIFEST=boards/manifest.py" in out
    assert "Ethernet (LAN8720 PHY)" in out and "mdc 23, mdio 18" in out
    s3 = run("boards", "esp32-s3-octal").output
    assert "ESP32_GENERIC_S3-SPIRAM_OCT-20260801-v1.29.0.bin from micropython.org/download" in s3
    assert json.loads(run("boards", "esp32-wrover", "--json").output)["board"]["chip"] == "esp32"


def test_an_unknown_board_names_the_known_ones():
    result = run("boards", "esp33")
    assert result.exit_code == 1
    assert "no board 'esp33': the known boards are esp32-devkitc, esp32-s3-octal" in result.output


def test_a_broken_board_file_shows_file_line_after_the_good_ones_and_exits_1(tmp_path):
    shutil.copy(os.path.join(boards.BOARDS_DIR, "esp32-wrover.json"), tmp_path / "esp32-wrover.json")
    text = (tmp_path / "esp32-wrover.json").read_text().replace('"chip": "esp32"', '"chip": "esp8266"')
    (tmp_path / "mine.json").write_text(text.replace('"name": "esp32-wrover"', '"name": "mine"'))
    proc = zongji("boards", env={"ZONGJI_BOARDS": str(tmp_path)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[1].startswith("esp32-wrover ")
    assert "1 board in %s" % tmp_path in proc.stdout
    line = [i for i, t in enumerate(text.splitlines(), 1) if '"chip"' in t][0]
    assert "zongji: %s:%d: chip 'esp8266' is not one of esp32, esp32s3, esp32c3" % (tmp_path / "mine.json", line) in (
        proc.stderr
    )

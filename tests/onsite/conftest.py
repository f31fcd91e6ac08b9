"""On-site tests: flashing with real esptool against tests/onsite/fakerom.py on a pty."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakerom import FakeRom  # noqa: E402


@pytest.fixture
def fake_rom(tmp_path):
    """start(chip="esp32", mode="bootloader", flash_size=4 MB, fill="ff"|"random") -> a started FakeRom
    (rom.port is the pty esptool opens, rom.flash(offset, size) the flash chip); all stopped after."""
    started = []

    def start(chip="esp32", mode="bootloader", flash_size=4 << 20, fill="ff", **kw):
        path = tmp_path / ("flash-%d.bin" % len(started))
        rom = FakeRom(path, chip=chip, flash_size=flash_size, mode=mode, fill=fill, **kw).start()
        started.append(rom)
        return rom

    yield start
    for rom in started:
        rom.stop()

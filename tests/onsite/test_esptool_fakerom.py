"""Real esptool (its Python API through zongji_companion.flasher, and once its own command line)
against the fake ROM loader of tests/onsite/fakerom.py on a pty: chip detection, compressed
writes verified by MD5, read back, erase, with and without the flasher stub; and the
installer's failures (board running its app, held in reset, the wrong chip, no port, an image
too big for the flash), each a FlashError that says what to do and leaves the flash as it was.
"""

import hashlib
import os
import random
import subprocess
import sys

import pytest
from zongji_companion import boards, flasher, ports

KB = 1024


def _image(size=128 * KB, seed=1):
    """Half noise, half zeros: it compresses, so esptool's deflate path carries it."""
    noise = random.Random(seed).randbytes(size // 2)
    return noise[:1].replace(b"\xe9", b"\x00") + noise[1:] + bytes(size - size // 2)


def _steps(calls):
    seen = []
    for step, _done, _total in calls:
        if not seen or seen[-1] != step:
            seen.append(step)
    return seen


@pytest.mark.parametrize(
    "chip,board,name,description",
    [
        ("esp32", "esp32-wrover", "ESP32", "ESP32-D0WD-V3 (revision v3.0)"),
        ("esp32s3", "esp32-s3-octal", "ESP32-S3", "ESP32-S3 (QFN56) (revision v0.2)"),
    ],
)
def test_the_chip_is_detected_as_the_board_says(fake_rom, chip, board, name, description):
    rom = fake_rom(chip=chip, flash_size=8 << 20)
    with flasher.Flasher(rom.port, board, connect_attempts=2) as f:
        info = f.connect()
    assert info["chip"] == chip and info["chip_name"] == name
    assert info["description"] == description
    assert info["mac"] == ":".join("%02x" % b for b in rom.mac)
    assert info["flash_size"] == 8 << 20  # from the flash chip's JEDEC id (RDID)
    assert info["stub"] is True and "MEM_END" in rom.served  # the stub was uploaded
    assert "CHANGE_BAUDRATE" in rom.served and "SPI_SET_PARAMS" in rom.served
    if chip == "esp32s3":
        assert "GET_SECURITY_INFO" in rom.served and "PSRAM" in " ".join(info["features"])


def test_write_compressed_verified_and_read_back_with_the_stub(fake_rom):
    rom = fake_rom(chip="esp32", fill="random")  # an old firmware's worth of bytes
    old = rom.flash()
    image = _image()
    calls = []
    board = boards.load("esp32-wrover")
    info = flasher.flash(rom.port, board, image, progress=lambda *a: calls.append(a), erase=False)
    offset = int(board["flash_offset"], 0)
    assert offset == 0x1000
    assert rom.flash(offset, len(image)) == image  # MicroPython's place on an ESP32
    assert info["md5"] == hashlib.md5(image).hexdigest()
    assert "FLASH_DEFL_DATA" in rom.served and "FLASH_DATA" not in rom.served  # compressed
    end = offset + len(image)
    assert rom.flash(0, offset) == old[:offset]  # the sector before: untouched (erase=False)
    assert rom.flash(end, 0x10000) == old[end : end + 0x10000]  # beyond the written sectors: untouched
    assert _steps(calls) == ["connect", "write", "verify", "reset"]
    writes = [d for s, d, _ in calls if s == "write"]
    assert writes == sorted(writes) and writes[-1] == len(image) and len(writes) > 2
    assert info["reset"] is False  # a pty has no RTS line and the stub can't start the app: press EN
    with flasher.Flasher(rom.port, board) as f:
        assert f.read(offset, len(image)) == image
        assert "READ_FLASH" in rom.served  # the stub's fast read, acknowledged block by block
        assert f.md5(0, offset) == hashlib.md5(old[:offset]).hexdigest()


def test_without_the_stub_the_rom_writes_reads_and_starts_the_app(fake_rom):
    rom = fake_rom(chip="esp32")
    image = _image(64 * KB, seed=2)
    info = flasher.flash(rom.port, "esp32-wrover", image, stub=False, erase=False)
    assert info["stub"] is False and "MEM_BEGIN" not in rom.served
    assert "FLASH_DEFL_DATA" in rom.served  # the ESP32 ROM inflates too
    assert rom.flash(0x1000, len(image)) == image
    assert info["reset"] is True and rom.mode == "app"  # the ROM loader ran the app
    rom.reset("bootloader")
    with flasher.Flasher(rom.port, "esp32-wrover", stub=False) as f:
        f.write(image[: 8 * KB], offset=0x200000, compress=False)
        assert "FLASH_DATA" in rom.served
        assert f.read(0x200000, 8 * KB) == image[: 8 * KB]  # 64 bytes a command
        assert "READ_FLASH_SLOW" in rom.served and "READ_FLASH" not in rom.served


@pytest.mark.parametrize("stub", [True, False])
def test_erase_leaves_the_flash_blank(fake_rom, stub):
    rom = fake_rom(chip="esp32", fill="random", flash_size=1 << 20)
    assert rom.flash().count(0xFF) < rom.flash_size // 2
    calls = []
    with flasher.Flasher(rom.port, "esp32-wrover", stub=stub, progress=lambda *a: calls.append(a)) as f:
        f.connect()
        f.erase()
    assert rom.flash() == b"\xff" * rom.flash_size
    # the stub erases the chip in one command; the ROM has none, esptool erases through FLASH_BEGIN
    assert ("ERASE_FLASH" in rom.served) is stub and ("FLASH_BEGIN" in rom.served) is not stub
    assert ("erase", rom.flash_size, rom.flash_size) in calls


def test_esptool_s_own_command_line_writes_and_verifies(fake_rom, tmp_path):
    rom = fake_rom(chip="esp32s3", fill="random")
    image = _image(96 * KB, seed=3)
    path = tmp_path / "app.bin"
    path.write_bytes(image)
    argv = [sys.executable, "-m", "esptool", "--port", rom.port, "--before", "no-reset", "--after", "no-reset"]
    proc = subprocess.run(argv + ["write-flash", "0x10000", str(path)], capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "ESP32-S3" in out and "Hash of data verified." in out and "Stub flasher running." in out, out
    assert rom.flash(0x10000, len(image)) == image
    # esptool's default reset can't reach a chip through a pty: it warns and goes on
    argv = [sys.executable, "-m", "esptool", "--port", rom.port, "--no-stub", "erase-flash"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert "Chip was NOT reset" in out and "Stub flasher is already running" not in out, out
    assert proc.returncode != 0 and "ROM does not support function erase_flash" in out, out
    assert rom.flash(0x10000, len(image)) == image  # the ROM alone can't erase the chip: nothing changed


def test_a_board_running_its_app_is_told_to_hold_boot(fake_rom):
    rom = fake_rom(chip="esp32", mode="app", fill="random")
    old = rom.flash()
    with pytest.raises(flasher.FlashError) as e:
        flasher.flash(rom.port, "esp32-wrover", _image(), connect_attempts=1)
    assert e.value.kind == "not-bootloader"
    msg = str(e.value)
    assert "not in its bootloader" in msg and "MicroPython" in msg, msg
    assert "hold BOOT (GPIO0), press and release EN" in msg, msg
    assert "Invalid head of packet" in e.value.detail  # esptool's own words, for --verbose
    assert rom.flash() == old


def test_a_board_held_in_reset_gets_no_answer(fake_rom):
    rom = fake_rom(chip="esp32s3", mode="silent")
    with pytest.raises(flasher.FlashError) as e:
        flasher.flash(rom.port, "esp32-s3-octal", _image(), connect_attempts=1)
    assert e.value.kind == "no-answer"
    assert "held in reset" in str(e.value) and "hold BOOT" in str(e.value) and "RST" in str(e.value)
    assert rom.flash() == b"\xff" * rom.flash_size


def test_the_wrong_chip_is_refused_before_anything_is_erased(fake_rom):
    rom = fake_rom(chip="esp32s3", fill="random")
    old = rom.flash()
    with pytest.raises(flasher.FlashError) as e:
        flasher.flash(rom.port, "esp32-wrover", _image())
    assert e.value.kind == "wrong-chip"
    assert str(e.value).startswith("the board on %s is an ESP32-S3 but --board esp32-wrover is an ESP32" % rom.port), (
        str(e.value)
    )
    assert not {"FLASH_BEGIN", "FLASH_DEFL_BEGIN", "ERASE_FLASH", "ERASE_REGION"} & set(rom.served)
    assert rom.flash() == old


def test_an_image_too_big_for_the_flash(fake_rom):
    # the detected flash (256 KB) is smaller than the board file says (4 MB)
    rom = fake_rom(chip="esp32", flash_size=256 * KB, fill="random")
    old = rom.flash()
    with pytest.raises(flasher.FlashError) as e:
        flasher.flash(rom.port, "esp32-wrover", _image(256 * KB))
    assert e.value.kind == "too-small" and "does not fit the flash on" in str(e.value), str(e.value)
    assert "256 KB" in str(e.value)
    assert rom.flash() == old
    # bigger than the board's own flash: refused before the port is opened
    with pytest.raises(flasher.FlashError) as e:
        flasher.flash(rom.port, "esp32-wrover", bytes(4 << 20))
    assert e.value.kind == "too-small" and "4MB flash of --board esp32-wrover" in str(e.value), str(e.value)
    assert rom.served.count("SYNC") == 1  # only the first attempt's connect


def test_no_port_says_plug_it_in_and_names_the_drivers(monkeypatch):
    from serial.tools import list_ports

    monkeypatch.setattr(list_ports, "comports", lambda: [])
    with pytest.raises(flasher.FlashError) as e:
        flasher.flash("auto", "esp32-wrover", _image(4 * KB))
    assert e.value.kind == "port"
    assert "plug it in" in str(e.value) and "CP210x" in str(e.value) and "CH340" in str(e.value)
    with pytest.raises(flasher.FlashError) as e:
        flasher.Flasher("/dev/ttyUSB-nothing-here", "esp32-wrover").connect()
    assert e.value.kind == "port" and "no such port /dev/ttyUSB-nothing-here" in str(e.value)


def test_esptool_s_output_is_captured_not_printed(fake_rom, capsys):
    rom = fake_rom(chip="esp32")
    lines = []
    flasher.flash(rom.port, "esp32-wrover", _image(16 * KB), echo=lines.append, erase=False)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    text = "\n".join(lines)
    assert "Detecting chip type" in text and "Hash of data verified." in text, text


@pytest.mark.skipif(os.name != "posix", reason="ptys")
def test_the_fake_s_pty_has_no_modem_lines(fake_rom):
    # why the flasher connects with --before no-reset on a pty (esptool would warn and go on)
    rom = fake_rom()
    assert flasher._path_has_modem_lines(rom.port) is False
    assert ports.find(rom.port) == rom.port


def test_an_image_for_another_chip_is_refused_before_the_erase(fake_rom, tmp_path):
    from esptool.bin_image import ESP32S3FirmwareImage, ImageSegment

    s3 = ESP32S3FirmwareImage()  # esptool's own image format, chip id 9 (ESP32-S3)
    s3.entrypoint = 0x40370000
    segment = ImageSegment(0x40370000, bytes(4 * KB))
    segment.name = ".iram0.text"
    s3.segments = [segment]
    s3.save(str(tmp_path / "s3.bin"))
    rom = fake_rom(chip="esp32", fill="random")
    old = rom.flash()
    with pytest.raises(flasher.FlashError) as e:
        flasher.flash(rom.port, "esp32-wrover", (tmp_path / "s3.bin").read_bytes())
    assert e.value.kind == "wrong-image"
    assert str(e.value).startswith("the image is for an ESP32-S3, but the board on %s is an ESP32" % rom.port)
    assert rom.flash() == old and "ERASE_FLASH" not in rom.served


def test_auto_finds_the_board_by_its_bridge_and_asks_among_several(fake_rom, monkeypatch):
    from serial.tools import list_ports
    from serial.tools.list_ports_common import ListPortInfo

    rom = fake_rom(chip="esp32")
    bridge = ListPortInfo(rom.port, skip_link_detection=True)
    bridge.vid, bridge.pid, bridge.description = 0x10C4, 0xEA60, "CP2102 USB to UART Bridge Controller"
    plugged = [bridge]
    monkeypatch.setattr(list_ports, "comports", lambda: list(plugged))
    image = _image(32 * KB, seed=4)
    info = flasher.flash("auto", "esp32-wrover", image, erase=False)
    assert info["port"] == rom.port and rom.flash(0x1000, len(image)) == image
    other = ListPortInfo("/dev/ttyACM7", skip_link_detection=True)
    other.vid, other.pid = 0x303A, 0x1001
    plugged.append(other)
    with pytest.raises(flasher.FlashError) as e:
        flasher.flash("auto", "esp32-wrover", image)
    assert e.value.kind == "port" and [p.device for p in e.value.candidates] == sorted([rom.port, "/dev/ttyACM7"])
    assert "2 ports look like an ESP32 board" in str(e.value) and "10c4:ea60" in str(e.value)


def test_a_partition_table_with_its_own_vfs_is_taken_as_it_is(fake_rom):
    # MicroPython makes its filesystem from the end of the last partition to the end of the chip,
    # unless the table names a "vfs" itself (older stock tables do): then that one is used as it
    # is, so it may run to the chip's end, and a factory image's filesystem does not move with
    # the chip's size; one that runs past the chip is still refused before the erase
    import synthimage
    from zongji_companion import fwimage

    table = synthimage.MICROPYTHON_TABLE + (("vfs", 1, 0x81, 0x200000, 0x200000),)
    layout = fwimage.inspect(synthimage.release_image("esp32", table=table), boards.load("esp32-wrover"))
    assert not layout.vfs.auto
    for size in (4 << 20, 8 << 20):
        rom = fake_rom(flash_size=size)
        with flasher.Flasher(rom.port, "esp32-wrover", stub=False) as f:
            f.connect()
            assert f.check_flash(layout) is None and f.check_flash(layout, factory=True) is None
    rom = fake_rom(flash_size=2 << 20)
    with flasher.Flasher(rom.port, "esp32-wrover", stub=False) as f:
        f.connect()
        with pytest.raises(flasher.FlashError) as e:
            f.check_flash(layout)
    assert e.value.kind == "wrong-flash" and "run to 0x400000" in str(e.value)

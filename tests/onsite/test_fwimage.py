"""fwimage.inspect on synthetic release images (tests/onsite/synthimage.py, esptool's own format):
what it reads from a good one, and each refusal, with what it tells the installer to do."""

import os
import subprocess
import sys

import pytest
import synthimage
from zongji_companion import boards, fwimage

WROVER = boards.load("esp32-wrover")
S3 = boards.load("esp32-s3-octal")


def refusal(data, board=WROVER):
    with pytest.raises(fwimage.ImageError) as e:
        fwimage.inspect(data, board)
    return str(e.value)


def test_an_esp32_release_image_is_micropython_for_the_esp32_with_its_partitions():
    info = fwimage.inspect(synthimage.release_image("esp32"), WROVER)
    assert (info.chip, info.chip_name, info.version, info.project) == ("esp32", "ESP32", "v1.29.0", "")
    assert info.base == 0x1000
    assert [(p.name, p.type, p.subtype, p.offset, p.size) for p in info.partitions] == [
        ("nvs", "data", "nvs", 0x9000, 0x6000),
        ("phy_init", "data", "phy", 0xF000, 0x1000),
        ("factory", "app", "factory", 0x10000, 0x1F0000),
    ]
    # no "vfs" in MicroPython's table: it makes one at boot from the last partition's end to the flash's
    assert (info.vfs.name, info.vfs.offset, info.vfs.size, info.vfs.auto) == ("vfs", 0x200000, 0x200000, True)
    assert info.as_dict()["vfs"]["offset"] == 0x200000


def test_an_esp32s3_image_starts_at_0_and_its_filesystem_takes_the_rest_of_8_mb():
    info = fwimage.inspect(synthimage.release_image("esp32s3", flash="8MB"), S3)
    assert (info.chip, info.base, info.vfs.offset, info.vfs.size) == ("esp32s3", 0, 0x200000, 6 << 20)


def test_a_table_with_a_vfs_entry_is_used_as_it_is():
    table = synthimage.MICROPYTHON_TABLE + (("vfs", 1, 0x81, 0x300000, 0x100000),)
    info = fwimage.inspect(synthimage.release_image("esp32", table=table), WROVER)
    assert (info.vfs.offset, info.vfs.size, info.vfs.auto) == (0x300000, 0x100000, False)


def test_an_idf_build_named_micropython_is_accepted_with_its_own_version():
    info = fwimage.inspect(synthimage.release_image("esp32", project="micropython", version="v1.30.0"), WROVER)
    assert info.version == "v1.30.0"


def test_an_esp_idf_app_that_is_not_micropython_is_refused_naming_the_image_to_download():
    msg = refusal(synthimage.release_image("esp32", project="hello_world", banner=""))
    assert msg == (
        "this is an ESP-IDF app 'hello_world', not MicroPython: download "
        "ESP32_GENERIC-SPIRAM-20260801-v1.29.0.bin from micropython.org/download"
    )
    # MicroPython's own builds have no project name; one with neither name nor banner is not it
    assert "ESP-IDF app '(no name)', not MicroPython" in refusal(synthimage.release_image("esp32", banner=""))


def test_an_image_for_another_chip_is_refused():
    assert refusal(synthimage.release_image("esp32s3")).startswith(
        "this image is for the ESP32-S3, the board esp32-wrover is an ESP32: download ESP32_GENERIC-SPIRAM-"
    )
    assert refusal(synthimage.release_image("esp32"), S3).startswith(
        "this image is for the ESP32, the board esp32-s3-octal is an ESP32-S3: download ESP32_GENERIC_S3-SPIRAM_OCT"
    )
    # the bootloader says ESP32 but the app inside is built for the S3
    mixed = bytearray(synthimage.release_image("esp32"))
    app = synthimage.app_image("esp32", image_chip="esp32s3")
    mixed[0xF000:] = app
    assert "the app in this image is for the ESP32-S3" in refusal(bytes(mixed))


def test_damaged_truncated_and_foreign_files_are_refused_with_what_to_do():
    good = synthimage.release_image("esp32")
    assert refusal(synthimage.release_image("esp32", bad_checksum=True)) == (
        "the MicroPython app is damaged (its checksum does not match): download the image again from "
        "micropython.org/download"
    )
    assert "the MicroPython app is truncated" in refusal(good[:-5000])
    assert "ends before the partition table at 0x8000" in refusal(good[:0x5000])
    assert "ends before the app at 0x10000" in refusal(good[:0xF000])
    assert refusal(b"PK\x03\x04" * 100).startswith(
        "this is not an ESP firmware image (it starts with 504b0304; an ESP image starts with 0xe9)"
    )
    assert "the file is 3 bytes" in refusal(b"abc")
    table = bytearray(good)
    table[0x7000 + 40] ^= 1  # inside the first entries: the MD5 entry no longer matches
    assert "the partition table is damaged (its MD5 does not match)" in refusal(bytes(table))


def test_an_image_at_the_wrong_offset_is_refused():
    # the app alone (firmware.bin, for 0x10000) instead of the full .bin
    assert "MicroPython's application alone (what goes at 0x10000)" in refusal(synthimage.app_image("esp32"))
    # a merged image made for 0x0 on an ESP32 whose MicroPython is written at 0x1000
    msg = refusal(b"\xff" * 0x1000 + synthimage.release_image("esp32"))
    assert "laid out to be written at 0x0" in msg and "writes MicroPython at 0x1000" in msg


def test_a_fat_filesystem_image_is_refused():
    table = synthimage.MICROPYTHON_TABLE + (("ffat", 1, 0x81, 0x200000, 0x200000),)
    assert 'FAT partition ("ffat")' in refusal(synthimage.release_image("esp32", table=table))


@pytest.mark.parametrize("chip,name", [("esp32", "ESP32"), ("esp32s3", "ESP32-S3")])
def test_real_esptool_image_info_accepts_the_synthetic_images(tmp_path, chip, name):
    for what, data in (("app", synthimage.app_image(chip)), ("bootloader", synthimage.bootloader_image(chip))):
        path = tmp_path / ("%s.bin" % what)
        path.write_bytes(data)
        proc = subprocess.run([sys.executable, "-m", "esptool", "image-info", str(path)], capture_output=True,
                              text=True, timeout=60, env=dict(os.environ, NO_COLOR="1"))  # fmt: skip
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        assert "Detected image type: %s" % name in out
        assert "Checksum: " in out and "(valid)" in out and "invalid" not in out
        assert ("Application Information" if what == "app" else "Bootloader Information") in out


def test_real_esptool_sees_the_broken_checksum(tmp_path):
    path = tmp_path / "bad.bin"
    path.write_bytes(synthimage.app_image("esp32", bad_checksum=True))
    proc = subprocess.run([sys.executable, "-m", "esptool", "image-info", str(path)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert "invalid - calculated" in proc.stdout + proc.stderr


def test_a_board_without_psram_needs_the_core_frozen_into_its_image():
    devkitc = boards.load("esp32-devkitc")
    msg = refusal(synthimage.release_image("esp32"), devkitc)  # the stock ESP32_GENERIC image
    assert msg.startswith("this is MicroPython without the zongji core frozen in, and esp32-devkitc (no PSRAM) needs")
    assert "make BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/zongji/boards/manifest.py" in msg
    info = fwimage.inspect(synthimage.release_image("esp32", frozen=True), devkitc)
    assert info.frozen_core and not fwimage.inspect(synthimage.release_image("esp32"), WROVER).frozen_core

"""A synthetic MicroPython release image, in esptool's own image format, for the tests.

No MicroPython release image (ESP32_GENERIC-SPIRAM-....bin from micropython.org) can be
downloaded here. This builds one laid out as those are, and it stands in for the release .bin
wherever the pipeline only reads or copies the image (zongji image, fwimage.inspect, flashing
into the fake ROM): nothing here runs on a chip, and the segments hold filler, not code.

    data = release_image("esp32")          what micropython.org's ESP32 .bin holds, written at 0x1000
    data = release_image("esp32s3", flash="8MB")            an ESP32-S3 one, written at 0x0
    data = release_image("esp32", project="hello_world")    an ESP-IDF app that is not MicroPython
    data = release_image("esp32", bad_checksum=True)        one whose app checksum is wrong
    data = release_image("esp32", frozen=True)              a custom build with the core frozen in
    app = app_image("esp32")               the application alone (as firmware.bin at 0x10000)

What is real: the image headers, segments, the XOR checksum and appended SHA-256 are made by
esptool's own ESP32FirmwareImage.save(), so `esptool image-info` reads them as it reads a real
build; the bootloader's first DRAM segment starts with an esp_bootloader_desc_t and the app's
first DROM segment with an esp_app_desc_t (magic 0xABCD5432), as ESP-IDF links them. Like
MicroPython's builds (ports/esp32/boards/sdkconfig.base sets CONFIG_APP_EXCLUDE_PROJECT_NAME_VAR
and CONFIG_APP_EXCLUDE_PROJECT_VER_VAR), the descriptor's project name and version are empty by
default and the app's read-only data holds MicroPython's banner ("MicroPython v1.29.0 on
2026-08-01"). The partition table is the binary form of MicroPython's partitions-4MiBplus.csv
(nvs, phy_init, a 1.94 MiB factory app, no "vfs": MicroPython makes that partition at boot from
the end of the last partition to the end of the flash), with its MD5 entry as ESP-IDF's
gen_esp32part writes it.
"""

import hashlib
import struct

APP_MAGIC = 0xABCD5432
TABLE_OFFSET = 0x8000
APP_OFFSET = 0x10000
# MicroPython's partitions-4MiBplus.csv: (name, type, subtype, offset, size)
MICROPYTHON_TABLE = (
    ("nvs", 1, 0x02, 0x9000, 0x6000),
    ("phy_init", 1, 0x01, 0xF000, 0x1000),
    ("factory", 0, 0x00, 0x10000, 0x1F0000),
)
CHIPS = {
    # chip: (esptool image class name, bootloader offset, DROM, DRAM, IRAM, IROM load addresses)
    "esp32": ("ESP32FirmwareImage", 0x1000, 0x3F400020, 0x3FFB0000, 0x40080000, 0x400D0020),
    "esp32s3": ("ESP32S3FirmwareImage", 0x0, 0x3C000020, 0x3FC88000, 0x40374000, 0x42000020),
}


def _image(chip):
    from esptool import bin_image

    return getattr(bin_image, CHIPS[chip][0])()


def _filler(n, seed):
    out = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    while len(out) < n:
        out += block
        block = hashlib.sha256(block).digest()
    return bytes(out[:n])


def _flash_params(image, flash):
    image.flash_mode = 2  # dio, as MicroPython's images are
    image.flash_size_freq = image.ROM_LOADER.FLASH_SIZES[flash]  # frequency bits 0: 40 MHz


def app_desc(project="", version="", idf="v5.4.2"):
    """ESP-IDF's esp_app_desc_t, 256 bytes (docs: app_image_format, 'Application Description')."""
    return struct.pack(
        "<II8s32s32s16s16s32s32sHHB3s72s",
        APP_MAGIC,
        0,  # secure_version
        b"",
        version.encode(),
        project.encode(),
        b"12:00:00",
        b"Aug  1 2026",
        idf.encode(),
        hashlib.sha256(b"elf " + project.encode()).digest(),
        0,
        99,
        0,
        b"",
        b"",
    )


def app_image(chip="esp32", project="", version="", banner="MicroPython v1.29.0 on 2026-08-01", flash="4MB",
              size=160 * 1024, bad_checksum=False, image_chip=None, frozen=False):  # fmt: skip
    """The application image (what goes into the factory partition) as esptool saves it.
    frozen: as built with boards/manifest.py, its read-only data lists the frozen modules' names
    the way MicroPython's mpy-tool.py writes mp_frozen_names ("zongji/shell/device.py\\0", ...)."""
    from esptool.bin_image import ELFSection

    image = _image(image_chip or chip)
    _, _, drom, dram, iram, irom = CHIPS[image_chip or chip]
    _flash_params(image, flash)
    rodata = app_desc(project, version) + (banner.encode() + b"\0" if banner else b"")
    if frozen:
        rodata += b"asyncio/__init__.py\0zongji/__init__.py\0zongji/shell/device.py\0\0"
    rodata += _filler(max(0, size // 4 - len(rodata)), "rodata" + chip)
    image.segments = [
        ELFSection(b".flash.rodata", drom, rodata, 0),
        ELFSection(b".dram0.data", dram, _filler(8 * 1024, "dram"), 0),
        ELFSection(b".iram0.text", iram, _filler(16 * 1024, "iram"), 0),
        ELFSection(b".flash.text", irom, _filler(size // 2, "text" + chip), 0),
    ]
    image.entrypoint = iram + 0x400
    data = bytearray(image.save(None))
    if bad_checksum:
        # the checksum byte sits just before the 32-byte SHA-256 digest: esptool then reports
        # "invalid - calculated ..." (the digest is left matching the damaged byte, so only the
        # checksum is wrong)
        data[-33] ^= 0x5A
        data[-32:] = hashlib.sha256(bytes(data[:-32])).digest()
    return bytes(data)


def bootloader_image(chip="esp32", flash="4MB"):
    """The 2nd-stage bootloader as ESP-IDF builds it: a DRAM segment that starts with an
    esp_bootloader_desc_t (magic byte 0x50) and an IRAM segment."""
    from esptool.bin_image import ELFSection

    image = _image(chip)
    _flash_params(image, flash)
    desc = struct.pack("<B3sI32s24s16s", 0x50, b"", 1, b"v5.4.2", b"Aug  1 2026 12:00:00", b"")
    ram = {"esp32": (0x3FFF0000, 0x40078000), "esp32s3": (0x3FCE3700, 0x403C8700)}[chip]
    image.segments = [ELFSection(b".dram0.bss", ram[0], desc + _filler(4096, "bl-data"), 0),
                      ELFSection(b".iram_loader.text", ram[1], _filler(12 * 1024, "bl-text"), 0)]  # fmt: skip
    image.entrypoint = ram[1] + 0x80
    return image.save(None)


def partition_table(entries=MICROPYTHON_TABLE):
    """The partition table's binary form: 32-byte entries (magic 0x50AA), an MD5 entry, 0xFF."""
    out = b""
    for name, ptype, subtype, offset, size in entries:
        out += struct.pack("<2sBBII16sI", b"\xaa\x50", ptype, subtype, offset, size, name.encode(), 0)
    out += b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(out).digest()
    return out + b"\xff" * (0xC00 - len(out))


def release_image(chip="esp32", project="", version="", banner="MicroPython v1.29.0 on 2026-08-01",
                  flash="4MB", bad_checksum=False, image_chip=None, table=MICROPYTHON_TABLE, frozen=False):  # fmt: skip
    """The .bin micropython.org offers: bootloader, partition table and app in one file,
    written at the chip's bootloader offset (0x1000 on the ESP32, 0x0 on the ESP32-S3).
    image_chip: build the images for another chip than the layout's (a wrong-chip image)."""
    base = CHIPS[chip][1]
    boot = bootloader_image(image_chip or chip, flash)
    app = app_image(chip, project, version, banner, flash, bad_checksum=bad_checksum, image_chip=image_chip,
                    frozen=frozen)  # fmt: skip
    out = bytearray(b"\xff" * (APP_OFFSET - base))
    out[0 : len(boot)] = boot
    out[TABLE_OFFSET - base : TABLE_OFFSET - base + 0xC00] = partition_table(table)
    return bytes(out) + app

"""Reading a MicroPython release image (the .bin from micropython.org) before anything is erased.

    info = inspect(data, board)     an Image (below), or ImageError saying what is wrong and what to do
    info.chip, info.version         "esp32", "v1.29.0"
    info.vfs                        the Partition MicroPython's littlefs goes in
    data = merge(info, firmware, [(flash offset, bytes), ...])   one file, written at info.base

A release image is what esptool writes at the chip's bootloader offset (the board's
flash_offset: 0x1000 on the ESP32, 0x0 on the ESP32-S3): the 2nd-stage bootloader there, the
partition table at flash 0x8000, and MicroPython's app at its factory partition (0x10000). The
images are read with esptool's own image code (esptool.bin_image.LoadFirmwareImage), the
partition table as ESP-IDF's binary format (32-byte entries, magic 0x50AA, then an MD5 entry).

Which app is MicroPython: ESP-IDF puts an esp_app_desc_t (magic 0xABCD5432) at the start of the
app's first DROM segment. MicroPython's esp32 port builds with CONFIG_APP_EXCLUDE_PROJECT_NAME_VAR
and CONFIG_APP_EXCLUDE_PROJECT_VER_VAR (ports/esp32/boards/sdkconfig.base), so its project name
and version there are empty (an app built as `project(micropython)` without them says
"micropython"); its version is read from the banner in its read-only data ("MicroPython
v1.29.0 on 2026-08-01", py/mpconfig.h MICROPY_BANNER_NAME_AND_VERSION). Any other project name
is another ESP-IDF app. A board with `frozen: true` needs an image with the zongji core frozen
in (boards/manifest.py): its frozen modules' names are in the app (mp_frozen_names,
"zongji/shell/device.py"), which the stock images lack.

The filesystem: MicroPython's tables (ports/esp32/partitions-4MiBplus.csv) have no "vfs" entry;
at boot (ports/esp32/main.c) it makes a "vfs" partition from the end of the last partition to the
end of the flash chip, and mounts littlefs there (modules/_boot.py, flashbdev.py). A table with a
"vfs" entry is used as it is. So the partition's size follows the flash size: the board file's
flash_size must be the module's, or MicroPython sees another size, fails to mount the
filesystem built for the other, and formats it empty.
"""

import re
import struct

TABLE_OFFSET = 0x8000  # where ESP-IDF's partition table is in flash (CONFIG_PARTITION_TABLE_OFFSET)
TABLE_SIZE = 0xC00
ENTRY = struct.Struct("<2sBBII16sI")
APP_DESC = struct.Struct("<II8s32s32s16s16s32s32s")
APP_MAGIC = 0xABCD5432
BANNER = re.compile(rb"MicroPython (v\d+\.\d+[\w.+-]*) on (\d{4}-\d\d-\d\d)")
PROJECT = "micropython"
# a frozen module's name as MicroPython's mpy-tool.py lists it in mp_frozen_names (boards/manifest.py)
FROZEN_NAME = b"zongji/shell/device.py\0"
TYPES = {0: "app", 1: "data"}
SUBTYPES = {
    "app": {0x00: "factory", 0x20: "test", **{0x10 + i: "ota_%d" % i for i in range(16)}},
    "data": {0x00: "ota", 0x01: "phy", 0x02: "nvs", 0x03: "coredump", 0x04: "nvs_keys", 0x05: "efuse",
             0x80: "esphttpd", 0x81: "fat", 0x82: "spiffs", 0x83: "littlefs"},
}  # fmt: skip
CHIP_NAMES = {"esp32": "ESP32", "esp32s3": "ESP32-S3", "esp32c3": "ESP32-C3", "esp32s2": "ESP32-S2"}
DOWNLOAD = "micropython.org/download"


class ImageError(Exception):
    """str(e): what is wrong with the image and what to do."""


class Partition:
    def __init__(self, name, type, subtype, offset, size, auto=False):
        self.name, self.type, self.subtype, self.offset, self.size, self.auto = name, type, subtype, offset, size, auto

    def as_dict(self):
        return {"name": self.name, "type": self.type, "subtype": self.subtype, "offset": self.offset,
                "size": self.size, "auto": self.auto}  # fmt: skip

    def __repr__(self):
        made = ", made at boot" if self.auto else ""
        return "Partition(%s %s/%s at %#x, %d bytes%s)" % (
            self.name,
            self.type,
            self.subtype,
            self.offset,
            self.size,
            made,
        )


class Image:
    """What inspect() found: chip ("esp32"), chip_name ("ESP32"), version ("v1.29.0"), project
    (the app descriptor's, "" on MicroPython's builds), idf ("v5.4.2"), base (the flash address
    the file is written at), size (bytes), end (flash address after it), app (Partition: the app's),
    app_size, partitions [Partition], vfs (Partition), frozen_core (the zongji core is frozen in:
    its module names are in the image, as a build with boards/manifest.py lists them)."""

    def as_dict(self):
        out = {k: getattr(self, k) for k in ("chip", "chip_name", "version", "project", "idf", "base", "size",
                                             "end", "app_size", "flash_size", "frozen_core")}  # fmt: skip
        out["micropython"] = True
        out["partitions"] = [p.as_dict() for p in self.partitions]
        out["app"] = self.app.as_dict()
        out["vfs"] = self.vfs.as_dict()
        return out


def chip_name(chip):
    return CHIP_NAMES.get(chip, chip.upper())


def _image_chip(chip_id):
    from esptool.targets import ROM_LIST

    for rom in ROM_LIST:
        if getattr(rom, "IMAGE_CHIP_ID", None) == chip_id and rom.CHIP_NAME != "ESP8266":
            return rom.CHIP_NAME.lower().replace("-", ""), rom.CHIP_NAME
    return None, "chip id %d" % chip_id


def _offset(text):
    return int(str(text), 0)


def _load(chip, data, what):
    """esptool's parse of one image, its checksum and SHA-256 checked."""
    from esptool.bin_image import LoadFirmwareImage
    from esptool.util import FatalError

    try:
        image = LoadFirmwareImage(chip, bytes(data))
    except (FatalError, struct.error, RuntimeError, ValueError, KeyError) as e:
        text = str(e)
        if "End of file" in text or isinstance(e, struct.error) or "unpack" in text:
            raise ImageError(
                "the %s is truncated (the file ends inside it): the download was cut short; download the image "
                "again from %s" % (what, DOWNLOAD)
            ) from None
        raise ImageError("the %s is not an image esptool can read (%s): download the image again from %s"
                         % (what, text, DOWNLOAD)) from None  # fmt: skip
    if image.checksum != image.calculate_checksum() or (
        image.append_digest and getattr(image, "stored_digest", None) != getattr(image, "calc_digest", None)
    ):
        raise ImageError(
            "the %s is damaged (its %s does not match): download the image again from %s"
            % (what, "checksum" if image.checksum != image.calculate_checksum() else "SHA-256", DOWNLOAD)
        )
    return image


def _app_desc(image):
    """(project, version, idf) from the esp_app_desc_t at the start of the first DROM segment, or None."""
    for seg in image.segments:
        if "DROM" in seg.get_memory_type(image):
            if len(seg.data) < APP_DESC.size:
                return None
            fields = APP_DESC.unpack_from(seg.data)
            if fields[0] != APP_MAGIC:
                return None
            text = [f.split(b"\0")[0].decode("ascii", "replace") for f in fields[3:8]]
            return text[1], text[0], text[4]
    return None


def read_table(raw):
    """[Partition] from a partition table's binary form; ImageError if there is none or it is damaged."""
    import hashlib

    parts = []
    for at in range(0, min(len(raw), TABLE_SIZE) - ENTRY.size + 1, ENTRY.size):
        magic, ptype, subtype, offset, size, label, _flags = ENTRY.unpack_from(raw, at)
        if magic == b"\xeb\xeb":
            if raw[at + 16 : at + 32] != hashlib.md5(raw[:at]).digest():
                raise ImageError("the partition table is damaged (its MD5 does not match): download the image "
                                 "again from %s" % DOWNLOAD)  # fmt: skip
            break
        if magic != b"\xaa\x50":
            break
        tname = TYPES.get(ptype, "%#04x" % ptype)
        sname = SUBTYPES.get(tname, {}).get(subtype, "%#04x" % subtype)
        parts.append(Partition(label.split(b"\0")[0].decode("ascii", "replace"), tname, sname, offset, size))
    if not parts:
        raise ImageError("no partition table")
    return parts


def inspect(data, board):
    """The release image `data` checked against `board` (a boards.load() dict): an Image, or
    ImageError before anything would be erased."""
    from zongji_companion.flashbudget import flash_bytes

    data = bytes(data)
    want = board["chip"]
    base = _offset(board.get("flash_offset", "0x0"))
    flash = flash_bytes(board["flash_size"])
    where = "the board %s is an %s" % (board["name"], chip_name(want))
    if len(data) < 24:
        raise ImageError("the file is %d bytes: not a MicroPython image; download %s from %s"
                         % (len(data), board.get("micropython", "the image"), DOWNLOAD))  # fmt: skip
    if data[0] != 0xE9:
        if base and len(data) > base and data[base] == 0xE9 and data[:base].strip(b"\xff") == b"":
            raise ImageError(
                "this image is laid out to be written at 0x0 (its bootloader is %#x bytes in), but %s writes "
                "MicroPython at %s: use the .bin from %s as it is downloaded (%s)"
                % (base, board["name"], board["flash_offset"], DOWNLOAD, board.get("micropython", "")))  # fmt: skip
        raise ImageError(
            "this is not an ESP firmware image (it starts with %s; an ESP image starts with 0xe9): download %s "
            "from %s" % (data[:4].hex(), board.get("micropython", "the board's MicroPython image"), DOWNLOAD)
        )
    if len(data) < 16 + 8:
        raise ImageError("the image is truncated: download it again from %s" % DOWNLOAD)
    chip, name = _image_chip(data[12])
    if chip != want:
        raise ImageError(
            "this image is for the %s, %s: download %s from %s"
            % (name, where, board.get("micropython", "the %s image" % chip_name(want)), DOWNLOAD)
        )
    table_at = TABLE_OFFSET - base
    if len(data) < table_at + ENTRY.size:
        first = _load(chip, data, "image")
        if _app_desc(first) is not None:
            raise ImageError(_app_alone(board))
        raise ImageError("the image is truncated (%d bytes, it ends before the partition table at %#x): download "
                         "it again from %s" % (len(data), TABLE_OFFSET, DOWNLOAD))  # fmt: skip
    try:
        parts = read_table(data[table_at : table_at + TABLE_SIZE])
    except ImageError as e:
        if str(e) != "no partition table":
            raise
        first = _load(chip, data, "image")
        if _app_desc(first) is not None:
            raise ImageError(_app_alone(board)) from None
        raise ImageError(
            "no partition table at %#x in this image written at %s: it is not a full MicroPython image laid out "
            "for %s; download %s from %s" % (TABLE_OFFSET, board["flash_offset"], board["name"],
                                              board.get("micropython", "its image"), DOWNLOAD)) from None  # fmt: skip
    _load(chip, data, "bootloader")
    apps = [p for p in parts if p.type == "app"]
    if not apps:
        raise ImageError("the partition table has no app partition: this is not a MicroPython image; download %s "
                         "from %s" % (board.get("micropython", "the image"), DOWNLOAD))  # fmt: skip
    app = next((p for p in apps if p.subtype == "factory"), apps[0])
    if len(data) < app.offset - base + 24:
        raise ImageError("the image is truncated (%d bytes, it ends before the app at %#x): download it again "
                         "from %s" % (len(data), app.offset, DOWNLOAD))  # fmt: skip
    app_data = data[app.offset - base : app.offset - base + app.size]
    image = _load(chip, app_data, "MicroPython app")
    if image.chip_id != data[12]:
        other = _image_chip(image.chip_id)[1]
        raise ImageError("the app in this image is for the %s, %s: download %s from %s"
                         % (other, where, board.get("micropython", "its image"), DOWNLOAD))  # fmt: skip
    desc = _app_desc(image)
    if desc is None:
        raise ImageError("the app in this image has no ESP-IDF app description: it is not MicroPython; download "
                         "%s from %s" % (board.get("micropython", "the image"), DOWNLOAD))  # fmt: skip
    project, version, idf = desc
    banner = BANNER.search(app_data)
    if project not in ("", PROJECT) or (project == "" and banner is None):
        raise ImageError(
            "this is an ESP-IDF app %r, not MicroPython: download %s from %s"
            % (project or "(no name)", board.get("micropython", "MicroPython for the board"), DOWNLOAD)
        )
    info = Image()
    info.chip, info.chip_name, info.project, info.idf = chip, chip_name(chip), project, idf
    info.version = version or (banner.group(1).decode() if banner else "")
    info.base, info.size, info.end = base, len(data), base + len(data)
    info.app, info.app_size, info.partitions, info.flash_size = app, _image_end(image), parts, flash
    info.vfs = _vfs(parts, flash, board)
    info.frozen_core = FROZEN_NAME in app_data
    if board.get("frozen") and not info.frozen_core:
        raise ImageError(
            "this is MicroPython without the zongji core frozen in, and %s (no PSRAM) needs it: build the image "
            "as boards/README.md says (make BOARD=%s FROZEN_MANIFEST=/path/to/zongji/boards/manifest.py in "
            "MicroPython's ports/esp32) and give that firmware.bin" % (board["name"], board["image"])
        )
    if info.end > info.vfs.offset:
        raise ImageError("the image (to %#x) runs into the filesystem partition at %#x: it is not the release image "
                         "for %s; download %s from %s" % (info.end, info.vfs.offset, board["name"],
                                                          board.get("micropython", "it"), DOWNLOAD))  # fmt: skip
    return info


def _image_end(image):
    """The app image's length in bytes (its checksum and SHA-256 digest included)."""
    return (getattr(image, "data_length", None) or 0) + (32 if image.append_digest else 0)


def _app_alone(board):
    return (
        "this is MicroPython's application alone (what goes at 0x10000), without the bootloader and partition "
        "table: download the full %s from %s, which is written at %s"
        % (board.get("micropython", ".bin"), DOWNLOAD, board["flash_offset"])  # fmt: skip
    )


def _vfs(parts, flash, board):
    """The filesystem partition: the table's "vfs", else the one MicroPython makes at boot."""
    for p in parts:
        if p.name == "ffat":
            raise ImageError("this image keeps its filesystem in a FAT partition (\"ffat\"), zongji needs "
                             "MicroPython's littlefs \"vfs\": download %s from %s"
                             % (board.get("micropython", "the stock image"), DOWNLOAD))  # fmt: skip
        if p.name == "vfs" and p.type == "data":
            if p.offset + p.size > flash:
                raise ImageError("the image's vfs partition (%#x + %#x) is past the end of %s's %s flash"
                                 % (p.offset, p.size, board["name"], board["flash_size"]))  # fmt: skip
            return p
    end = max(p.offset + p.size for p in parts)
    if end >= flash:
        raise ImageError(
            "the image's partitions fill the %s flash of %s: there is no room for a filesystem; use an image built "
            "for %s flash or a board with more" % (board["flash_size"], board["name"], board["flash_size"])
        )
    return Partition("vfs", "data", "fat", end, flash - end, auto=True)


def merge(info, firmware, parts, output=None):
    """The release image and (flash offset, bytes) parts merged with esptool's merge-bin, as one
    file to write at info.base (the board's flash_offset): bytes, or written to `output`."""
    from esptool.cmds import merge_bin

    pieces = [(info.base, bytes(firmware))] + [(off, bytes(b)) for off, b in parts]
    for off, blob in pieces[1:]:
        if off < info.end:
            raise ImageError("a part at %#x would overwrite the MicroPython image (to %#x)" % (off, info.end))
        if off + len(blob) > info.flash_size:
            raise ImageError("a part at %#x (%d bytes) is past the end of the flash" % (off, len(blob)))
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return merge_bin(pieces, info.chip, output=output, target_offset=info.base)

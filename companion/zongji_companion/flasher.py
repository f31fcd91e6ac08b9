"""Flashing a board with esptool's Python API: connect, check the chip, erase, write, verify.

    with Flasher("auto", board, progress=show) as f:     board: a boards.load() dict or a name
        info = f.connect()          {"chip": "esp32", "chip_name": "ESP32", "description", "mac",
                                     "features", "flash_size" (bytes, detected), "port", "stub"}
        f.erase()                   the whole chip (or erase(offset, size))
        f.write(image)              at the board's flash_offset, verified by esptool's MD5
        f.md5(offset, size), f.read(offset, size)
        f.reset()                   True: the board was reset (RTS); False: press EN/RST
    flash(port, board, image, progress=show)     all of it, for `zongji flash`

progress(step, done, total) is called for each step ("connect", "erase", "write", "verify",
"read", "reset"), at its start (done 0) and end (done == total) and as esptool reports.

Every installer failure is a FlashError whose message says what is wrong and what to do, and
whose kind names it: "port" (none, missing, several: e.candidates), "permission" (the dialout
group), "no-answer" (nothing came back: held in reset, unpowered, the wrong port), "not-
bootloader" (the board answered, but as its app: the BOOT button), "wrong-chip", "too-small"
(the image does not fit the flash), "wrong-image" (an esptool image for another chip),
"board" (a bad board file), "esptool" (anything else, e.g. a write that does not verify).
e.detail holds esptool's own text; esptool's output is captured (Flasher.log), and passed to
`echo` as it comes when given (a --verbose mode), so the CLI prints only its own lines.

Ports without modem-control lines (a pty, some adapters): esptool's reset before connecting
cannot reach the chip (it warns and goes on), so the board must already be in its bootloader;
after flashing, reset() asks the ROM loader to run the app, or returns False (press EN).
"""

import contextlib
import errno
import hashlib
import os
import re
import time

from zongji_companion import ports

CHIP_NAMES = {"esp32": "ESP32", "esp32s3": "ESP32-S3", "esp32c3": "ESP32-C3", "esp32s2": "ESP32-S2"}
ROM_BAUD = 115200
NOT_BOOTLOADER = ("Invalid head of packet", "Wrong boot mode", "Serial data stream stopped",
                  "Packet content transfer stopped", "Invalid SLIP escape")  # fmt: skip
LOG_LINES = 200


class FlashError(Exception):
    def __init__(self, message, kind="esptool", detail="", candidates=()):
        super().__init__(message)
        self.kind = kind
        self.detail = detail
        self.candidates = list(candidates)


def buttons(chip="esp32"):
    """How to put a board of this chip into its bootloader by hand."""
    if chip in ("esp32s3", "esp32c3", "esp32s2"):
        return (
            "hold BOOT (GPIO0; GPIO9 on a C3), press and release RST (EN), then release BOOT; on the "
            "chip's own USB port the board then shows up as a new port (e.g. /dev/ttyACM0)"
        )
    return "hold BOOT (GPIO0), press and release EN (RST), then release BOOT"


def size_bytes(text):
    """ "4MB" -> 4194304, "512KB" -> 524288 (a board file's flash_size, as flashbudget reads it)."""
    from zongji_companion.flashbudget import flash_bytes

    try:
        return flash_bytes(text)
    except ValueError:
        raise FlashError("flash size %r is not like 4MB or 512KB" % (text,), "board") from None


def _offset(text):
    try:
        return int(str(text), 0)
    except ValueError:
        raise FlashError("flash_offset %r is not a number like 0x1000" % (text,), "board") from None


def _load_board(board):
    if isinstance(board, dict) or board is None:
        return board
    from zongji_companion import boards

    try:
        return boards.load(board)
    except boards.BoardError as e:
        raise FlashError(str(e), "board") from None


# ---- esptool's output -------------------------------------------------------------------------


def _capture_class():
    from esp_pylib.logger import EspLogBase

    class Capture(EspLogBase):
        """esptool's logger while we call it: lines kept (and echoed), progress bars forwarded."""

        def __init__(self, echo, lines):
            self.echo = echo
            self.lines = lines
            self.partial = ""
            self.on_progress = None

        def _line(self, text):
            text = text.replace("\\[", "[")
            self.lines.append(text)
            del self.lines[:-LOG_LINES]
            if self.echo:
                self.echo(text)

        def print(self, *args, **kwargs):
            text = self.partial + kwargs.get("sep", " ").join(str(a) for a in args) + kwargs.get("end", "\n")
            *done, self.partial = text.split("\n")
            for line in done:
                self._line(line)

        def err(self, *args, suggestion=None):
            self._line("ERROR: " + " ".join(str(a) for a in args))

        def warn(self, *args, suggestion=None):
            self._line("WARNING: " + " ".join(str(a) for a in args))

        warning = warn
        error = err

        def note(self, *args):
            self._line("NOTE: " + " ".join(str(a) for a in args))

        def hint(self, *args):
            self._line(" ".join(str(a) for a in args))

        def debug(self, *args):
            self._line("".join(str(a) for a in args))

        def set_verbosity(self, mode):
            pass

        def progress_bar(self, cur_iter, total_iters, prefix="", suffix="", bar_length=30):
            if self.on_progress:
                self.on_progress(cur_iter, total_iters)

    return Capture


class Flasher:
    def __init__(self, port="auto", board=None, progress=None, echo=None, stub=True, baud=460800,
                 before="default-reset", connect_attempts=7):  # fmt: skip
        self.port = port
        self.board = _load_board(board)
        self.progress = progress or (lambda step, done, total: None)
        self.stub = stub
        self.baud = baud
        self.before = before
        self.connect_attempts = connect_attempts
        self.log = []  # esptool's lines (the last LOG_LINES)
        self._capture = _capture_class()(echo, self.log)
        self.esp = None
        self.info = None

    # ---- esptool calls ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _esptool(self, step=None, total=0, scale=None):
        """esptool's logger is ours while it runs; its errors become FlashError."""
        import serial
        from esp_pylib.logger import EspLog
        from esptool.util import FatalError

        def on_progress(done, of):
            if scale:
                done, of = done * scale // max(of, 1), scale
            self.progress(step, done, of)

        self._capture.on_progress = on_progress if step else None
        saved = EspLog.instance
        EspLog.instance = self._capture
        try:
            yield
        except (FatalError, serial.SerialException, OSError) as e:
            raise self._error(e) from None
        finally:
            EspLog.instance = saved
            self._capture.on_progress = None

    def _error(self, e):
        from esptool.util import FatalError

        text = str(e)
        detail = "\n".join(self.log[-30:] + [text])
        path = self.esp and self.esp._port.port or self._path
        if "Could not open" in text or not isinstance(e, FatalError) and ports.open_error(path, e):
            msg = ports.open_error(path, e) or ports.open_error(path, _errno_of(text))
            msg = msg or "can't open %s: %s" % (path, text)
            return FlashError(msg, "permission" if "permission" in msg else "port", detail)
        chip = (self.board or {}).get("chip", "esp32")
        if "Failed to connect" in text:
            heard = _listen(path)  # what answers an Enter there, if anything
            if not heard and "No serial data received" in text:
                return FlashError(
                    "no answer from the board on %s: it may be held in reset (EN/RST pressed), not powered, "
                    "or this is not its port. Put it in its bootloader: %s; then try again" % (path, buttons(chip)),
                    "no-answer",
                    detail,
                )
            if heard or any(s in text for s in NOT_BOOTLOADER):
                what = "it answers as a running app does, not as the ROM loader" + (" (%s)" % heard if heard else "")
                return FlashError(
                    "the board on %s is not in its bootloader: %s. Put it in the bootloader: %s; then try again"
                    % (path, what, buttons(chip)),
                    "not-bootloader",
                    detail,
                )
        if "getting no sync reply" in text:
            return FlashError(
                "the board on %s is in its bootloader but its answers do not arrive: check the USB cable "
                "and the bridge's driver (%s)" % (path, ports.DRIVERS),
                "no-answer",
                detail,
            )
        if "MD5 of file does not match" in text or "Write failed" in text or "Digest mismatch" in text:
            return FlashError(
                "the flash on %s does not hold what was written (%s): try again; if it fails twice, another "
                "USB cable or port, or a lower --baud" % (path, text),
                "esptool",
                detail,
            )
        if "Use --force to flash anyway" in text:
            return FlashError("the image is not for this board's chip: %s" % text.split(" Use --force")[0],
                              "wrong-image", detail)  # fmt: skip
        if "will not fit" in text:
            return FlashError("the image does not fit the flash: %s" % text, "too-small", detail)
        return FlashError("esptool on %s: %s" % (path, text), "esptool", detail)

    # ---- the steps --------------------------------------------------------------------------

    def connect(self):
        """Open the port, sync with the ROM loader, detect the chip and check it is the board's."""
        from esptool import cmds

        try:
            self._path = ports.find(self.port)
        except ports.PortError as e:
            kind = "permission" if "permission" in str(e) else "port"
            raise FlashError(str(e), kind, candidates=e.candidates) from None
        self.progress("connect", 0, 1)
        before = self.before
        if before == "default-reset" and not _path_has_modem_lines(self._path):
            before = "no-reset"  # a pty: esptool's reset can't reach the chip (it would warn and go on)
        with self._esptool():
            esp = cmds.connect_esp(port=self._path, chip="auto", initial_baud=ROM_BAUD, before=before,
                                   connect_attempts=self.connect_attempts)  # fmt: skip
        self.esp = esp
        try:
            want = (self.board or {}).get("chip")
            if want and CHIP_NAMES.get(want) != esp.CHIP_NAME:
                raise FlashError(
                    "the board on %s is an %s but --board %s is an %s: name the board file for this board "
                    "(zongji boards lists them)" % (self._path, esp.CHIP_NAME, self.board["name"], CHIP_NAMES[want]),
                    "wrong-chip",
                )
            with self._esptool():
                info = {
                    "port": self._path,
                    "chip": _chip_key(esp.CHIP_NAME),
                    "chip_name": esp.CHIP_NAME,
                    "description": esp.get_chip_description(),
                    "features": list(esp.get_chip_features()),
                    "mac": ":".join("%02x" % b for b in esp.read_mac()),
                    "crystal_mhz": esp.get_crystal_freq(),
                }
                if self.stub:
                    esp = self.esp = cmds.run_stub(esp)
                if self.baud > ROM_BAUD:
                    esp.change_baud(self.baud)
                cmds.attach_flash(esp)
                detected = cmds.detect_flash_size(esp)
                info["flash_size"] = _size_or_none(detected)
                if info["flash_size"]:
                    esp.flash_set_parameters(info["flash_size"])
                info["stub"] = esp.IS_STUB
        except BaseException:
            self.close()
            raise
        self.info = info
        self.progress("connect", 1, 1)
        return info

    def _need(self):
        if self.esp is None:
            self.connect()
        return self.esp

    def erase(self, offset=0, size=None):
        """Erase the whole flash (size None), or size bytes at offset (whole sectors)."""
        from esptool import cmds

        esp = self._need()
        whole = size is None
        if whole:
            size = self.info["flash_size"] or size_bytes((self.board or {}).get("flash_size", "4MB"))
        self.progress("erase", 0, size)
        with self._esptool():
            if whole and esp.IS_STUB:
                cmds.erase_flash(esp)
            else:  # the ROM erases a region through FLASH_BEGIN; it has no erase-all
                cmds.erase_region(esp, offset, size)
        self.progress("erase", size, size)

    def write(self, image, offset=None, compress=True):
        """Write image at offset (the board's flash_offset), verified by MD5; returns the MD5."""
        from esptool import cmds

        image = bytes(image)
        offset = self.check_fits(image, offset)
        esp = self._need()
        self.progress("write", 0, len(image))
        with self._esptool("write", scale=len(image)):
            cmds.write_flash(esp, [(offset, image)], flash_size="keep", compress=compress, no_compress=not compress)
        self.progress("write", len(image), len(image))
        want = hashlib.md5(image).hexdigest()
        self.progress("verify", 0, len(image))
        got = self.md5(offset, len(image))
        if got != want:
            raise FlashError(
                "the flash at %#x does not hold what was written (MD5 %s, wanted %s): try again, with "
                "another USB cable or port if it happens twice" % (offset, got, want),
                "esptool",
            )
        self.progress("verify", len(image), len(image))
        return want

    def check_fits(self, image, offset=None):
        """offset (default: the board's flash_offset) if image fits the board's flash and, once
        connected, the flash detected on the board; FlashError "too-small" if not."""
        if offset is None:
            offset = _offset((self.board or {}).get("flash_offset", "0x0"))
        self._fits(image, offset)
        if self.info:
            self._fits(image, offset, self.info.get("flash_size"), "the flash on %s (detected)" % self._path)
        return offset

    def check_flash(self, layout, factory=False):
        """The flash detected on the board against the image's layout (layout: fwimage.inspect()'s
        Image), before anything is erased. MicroPython makes its filesystem from the end of the
        last partition to the end of the chip it finds, so:

        * the partitions must end before the chip does, or there is no filesystem at all;
        * a factory image's filesystem was built for the board file's flash_size: on a chip of
          another size MicroPython would not find it where it looks, and would format it empty
          at first boot (the site lost).

        FlashError "wrong-flash" for those; a note (str) when the chip's size is not the board
        file's but nothing is lost (a release image: the filesystem just takes what is there);
        None when they agree or the size could not be read. Needs connect()."""
        self._need()
        chip = self.info.get("flash_size")
        said = (self.board or {}).get("flash_size")
        if not chip or not said:
            return None
        want = size_bytes(said)
        name = self.board.get("name")
        vfs = layout.vfs
        fixed = vfs is not None and not vfs.auto  # the table has its own "vfs": used as it is
        end = vfs.offset + vfs.size if fixed else max(p.offset + p.size for p in layout.partitions)
        if end > chip or (end == chip and not fixed):
            raise FlashError(
                "the board on %s has %s of flash, and this image's partitions %s to %#x: MicroPython "
                "would have no room for its filesystem; use the MicroPython image for a %s flash (or a board "
                "with more flash)" % (self._path, _human(chip), "run" if end > chip else "fill it", end,
                                      _human(chip)),
                "wrong-flash",
            )  # fmt: skip
        if chip == want or fixed:  # an explicit vfs is where it is, whatever the chip's size
            return None
        fix = 'name the board file of this board (zongji boards), or set "flash_size": "%s" in boards/%s.json' % (
            _human(chip).replace(" ", ""),
            name,
        )
        if factory:
            raise FlashError(
                "the board on %s has %s of flash, but --board %s says %s and the factory image's filesystem "
                "was built for that: MicroPython would not find it on this chip and would format it empty (the "
                "site lost); make the factory image again with a board file for %s: %s"
                % (self._path, _human(chip), name, said, _human(chip), fix),
                "wrong-flash",
            )  # fmt: skip
        return "the chip has %s of flash, --board %s says %s: MicroPython's filesystem takes what the chip has; %s" % (
            _human(chip),
            name,
            said,
            fix,
        )

    def check_image(self, image, offset=None):
        """FlashError "wrong-image" if an esptool image at the bootloader's offset is for another
        chip (esptool would refuse it only after the erase). Needs connect()."""
        import struct

        from esptool.bin_image import LoadFirmwareImage
        from esptool.targets import ROM_LIST
        from esptool.util import FatalError

        esp = self._need()
        offset = self.check_fits(image, offset)
        if offset != esp.BOOTLOADER_FLASH_OFFSET or image[:1] != b"\xe9":
            return
        try:
            parsed = LoadFirmwareImage(esp.CHIP_NAME, bytes(image))
        except (FatalError, struct.error, RuntimeError, ValueError):
            return  # not an image esptool can read: it does not check it either
        if parsed.chip_id != esp.IMAGE_CHIP_ID:
            other = next((c.CHIP_NAME for c in ROM_LIST if c.IMAGE_CHIP_ID == parsed.chip_id),
                         "chip id %d" % parsed.chip_id)  # fmt: skip
            raise FlashError(
                "the image is for an %s, but the board on %s is an %s: use the MicroPython image for this "
                "board (boards/%s.json names it)" % (other, self._path, esp.CHIP_NAME, (self.board or {}).get("name")),
                "wrong-image",
            )

    def _fits(self, image, offset, flash=None, where=None):
        if flash is None and where is None:
            if not (self.board or {}).get("flash_size"):
                return
            flash = size_bytes(self.board["flash_size"])
            where = "the %s flash of --board %s" % (self.board["flash_size"], self.board["name"])
        if flash and offset + len(image) > flash:
            raise FlashError(
                "the image (%d bytes at %#x, to %#x) does not fit %s (%s): use an image built for this board "
                "(or the board file that matches it)" % (len(image), offset, offset + len(image), where,
                                                          _human(flash)),
                "too-small",
            )  # fmt: skip

    def md5(self, offset, size):
        esp = self._need()
        with self._esptool():
            return esp.flash_md5sum(offset, size)

    def read(self, offset, size):
        from esptool import cmds

        esp = self._need()
        self.progress("read", 0, size)
        with self._esptool("read"):
            data = cmds.read_flash(esp, offset, size, output=None, flash_size="keep")
        self.progress("read", size, size)
        return data

    def reset(self):
        """Start the new firmware: True if the board was reset, False if EN must be pressed."""
        from esptool import cmds

        esp = self.esp
        if esp is None:
            return False
        self.progress("reset", 0, 1)
        with self._esptool():
            if _has_modem_lines(esp._port):
                cmds.reset_chip(esp, "hard-reset")
                done = True
            elif not esp.IS_STUB:
                cmds.reset_chip(esp, "soft-reset")  # the ROM loader runs the app
                done = True
            else:
                done = False  # the stub can't start the app: a reset line or the EN button
        self.progress("reset", 1, 1)
        return done

    def close(self):
        esp, self.esp = self.esp, None
        if esp is not None:
            with contextlib.suppress(Exception):
                esp._port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    _path = None


def flash(port, board, image, progress=None, echo=None, erase=True, **options):
    """Connect, check the chip, erase, write the image at the board's offset, verify, reset.
    Returns the connect() info plus "md5" and "reset" (False: the installer must press EN)."""
    with Flasher(port, board, progress=progress, echo=echo, **options) as f:
        image = bytes(image)
        f.check_fits(image)  # before the port is opened
        info = f.connect()
        f.check_fits(image)  # and in the flash found there, before anything is erased
        f.check_image(image)
        if erase:
            f.erase()
        info["md5"] = f.write(image)
        info["reset"] = f.reset()
        return info


# ---- helpers ----------------------------------------------------------------------------------


def _errno_of(text):
    m = re.search(r"\[Errno (\d+)\]", text)
    return OSError(int(m.group(1)), text) if m else OSError(errno.EIO, text)


def _chip_key(name):
    for key, value in CHIP_NAMES.items():
        if value == name:
            return key
    return name.lower().replace("-", "")


def _size_or_none(text):
    try:
        return size_bytes(text) if text else None
    except FlashError:
        return None


def _human(n):
    return "%d MB" % (n >> 20) if n >= 1 << 20 and not n % (1 << 20) else "%d KB" % (n >> 10)


def _has_modem_lines(port):
    """Whether DTR/RTS can be driven on this port (not on a pty, nor over a TCP socket)."""
    fd = getattr(port, "fd", None)
    if fd is None:
        return not str(getattr(port, "port", "")).startswith(("socket:", "rfc2217:"))
    try:
        import fcntl
        import struct
        import termios

        fcntl.ioctl(fd, termios.TIOCMGET, struct.pack("I", 0))
        return True
    except ImportError:
        return True
    except OSError:
        return False


def _path_has_modem_lines(path):
    if "://" in path:
        return False
    try:
        import fcntl
        import struct
        import termios
    except ImportError:
        return True  # Windows: COM ports have them
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return True  # esptool opens it and says why it can't
    try:
        fcntl.ioctl(fd, termios.TIOCMGET, struct.pack("I", 0))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _listen(path, wait=0.5):
    """What the board says to an Enter ("MicroPython's REPL answers"), or "" (best effort)."""
    try:
        import serial

        with serial.Serial(path, ROM_BAUD, timeout=0.05) as s:
            s.reset_input_buffer()
            s.write(b"\r\n")
            end, got = time.monotonic() + wait, b""
            while time.monotonic() < end and b">>>" not in got:
                got += s.read(256)
    except Exception:  # OSError, serial.SerialException: nothing to add to the message
        return ""
    if b">>>" in got:
        return "MicroPython's REPL answers there"
    text = "".join(chr(b) for b in got if 32 <= b < 127).strip()
    return "it printed %r" % text[-60:] if text else ""

"""Serial ports an ESP32 board may be on: found by the USB bridge's VID:PID, checked before use.

    path = find("auto")            the one ESP32-looking port (PortError for none or several)
    path = find("/dev/ttyUSB0")    an explicit port, checked: it exists, and we may open it
    candidates()                   [ListPortInfo] of the ports that look like an ESP32 board
    describe(p)                    "/dev/ttyUSB0  CP210x (CP2102 USB to UART ...) 10c4:ea60"

ESP32_PORTS is the one table of USB-serial bridges (seriallink's `--device auto` uses it too).
PortError.candidates holds the ports found when there were several, so a CLI can ask which.
"""

import errno
import os
import sys

# (VID, PID): what it is. The bridges on ESP32 dev boards, and the chips' own USB.
ESP32_PORTS = {
    (0x10C4, 0xEA60): "CP210x",  # Silicon Labs CP2102/CP2104: DevKitC, most WROOM/WROVER boards
    (0x10C4, 0xEA70): "CP2105",  # Silicon Labs dual UART (some kits)
    (0x1A86, 0x7523): "CH340",  # WCH CH340G/C/K: cheap boards, WT32-ETH01 programmers
    (0x1A86, 0x5523): "CH341",  # WCH CH341 in serial mode (USB-TTL adapters)
    (0x1A86, 0x55D4): "CH9102",  # WCH CH9102F: newer DevKitC/LOLIN boards
    (0x1A86, 0x55D3): "CH343",  # WCH CH343P: some S3 boards' UART port
    (0x0403, 0x6001): "FTDI FT232R",
    (0x0403, 0x6010): "FTDI FT2232",  # ESP-WROVER-KIT, ESP-Prog (JTAG + UART)
    (0x0403, 0x6014): "FTDI FT232H",
    (0x0403, 0x6015): "FTDI FT231X",
    (0x303A, 0x1001): "ESP32-S3/C3 native USB",  # the chip's USB Serial/JTAG
    (0x303A, 0x0002): "ESP32-S2 native USB",  # the S2's USB-OTG CDC (ROM download mode)
    (0x303A, 0x0009): "ESP32-S3 USB-OTG download",  # the S3's ROM on its USB-OTG port
}

DRIVERS = (
    "Windows and macOS need the bridge's driver: CP210x (Silicon Labs, CP210x USB to UART "
    "Bridge VCP driver) or CH340/CH9102 (WCH CH34x driver); Linux has both built in"
)


class PortError(Exception):
    """What is wrong with the port, and what to do. candidates: the ports found (several)."""

    def __init__(self, message, candidates=()):
        super().__init__(message)
        self.candidates = list(candidates)


def _comports():
    from serial.tools import list_ports

    return list(list_ports.comports())


def candidates():
    """The serial ports whose USB VID:PID is an ESP32 board's bridge, by device name."""
    return sorted((p for p in _comports() if (p.vid, p.pid) in ESP32_PORTS), key=lambda p: p.device)


def vid_pid(p):
    return "%04x:%04x" % (p.vid, p.pid) if p.vid is not None and p.pid is not None else "no USB id"


def describe(p):
    """One line: device, what bridge it is (and the OS's description), VID:PID."""
    name = ESP32_PORTS.get((p.vid, p.pid))
    desc = p.description if p.description and p.description != "n/a" else ""
    what = "%s (%s)" % (name, desc) if name and desc else name or desc or "serial port"
    return "%s  %s  %s" % (p.device, what, vid_pid(p))


def find(port="auto"):
    """The port to use: "auto" finds the one ESP32 board; a path (or URL) is checked."""
    if port in (None, "", "auto"):
        return _auto()
    return check(port)


def _auto():
    found = candidates()
    if len(found) == 1:
        return found[0].device
    if found:
        lines = "\n".join("  " + describe(p) for p in found)
        raise PortError("%d ports look like an ESP32 board; say which with --port:\n%s" % (len(found), lines), found)
    others = [p for p in _comports() if p.vid is not None]
    msg = (
        "no ESP32 board found on USB: plug it in (with a data cable: some are charge-only), "
        "and check that the system sees it (Linux: `ls /dev/ttyUSB* /dev/ttyACM*`). %s. "
        "Or name the port: --port /dev/ttyUSB0" % DRIVERS
    )
    if others:
        msg += "\nother USB serial ports (not a known ESP32 bridge; name one with --port if it is the board):\n"
        msg += "\n".join("  " + describe(p) for p in others)
    raise PortError(msg)


def check(path):
    """path if it can be opened; PortError for a missing port or one we may not open."""
    if "://" in path or not path.startswith("/"):
        return path  # socket://, rfc2217://, COM3: pyserial and the OS tell
    if not os.path.exists(path):
        raise PortError(
            "no such port %s: is the board plugged in? The ports there are: %s"
            % (path, ", ".join(p.device for p in _comports()) or "none")
        )
    if not os.access(path, os.R_OK | os.W_OK):
        raise PortError(permission_message(path))
    return path


def permission_message(path):
    """What to do when we may not open the port: join the group that owns it (dialout)."""
    group = _group_of(path)
    if sys.platform.startswith("linux"):
        if group in (None, "root"):
            group = "dialout"
        return (
            "no permission to open %s: add yourself to the %s group: "
            "sudo usermod -aG %s $USER, then log out and in again (on Arch the group is uucp)" % (path, group, group)
        )
    return "no permission to open %s (owned by group %s): ask for access to serial ports" % (path, group)


def _group_of(path):
    try:
        import grp

        return grp.getgrgid(os.stat(path).st_gid).gr_name
    except (ImportError, KeyError, OSError):
        return None


def open_error(path, exc):
    """A message for an OSError / SerialException raised opening path (None if not a known one)."""
    err = getattr(exc, "errno", None)
    text = str(exc)
    if err == errno.ENOENT or "[Errno 2]" in text:
        return "no such port %s: is the board plugged in?" % path
    if err == errno.EACCES or "[Errno 13]" in text or "Permission denied" in text:
        return permission_message(path)
    if err == errno.EBUSY or "[Errno 16]" in text or "Resource temporarily unavailable" in text:
        return "%s is in use by another program (a serial monitor, mpremote, a second zongji?): close it" % path
    return None

"""The CLI's end of the admin protocol over USB serial (zongji.admin.frames on the REPL UART).

    link = open_serial("/dev/ttyUSB0")      or "auto", or "socket://HOST:PORT" (ser2net, socat)
    status, headers, body = link.exchange("GET", "/status", headers, b"")
    link.sent, link.received                bytes on the wire, both ways
    link.close()

The port is opened raw at 115,200 baud (what a board's REPL UART runs at; USB CDC ignores it),
and a session is opened with HELLO before the first request. Whatever the device prints
between frames (its log lines) is kept in link.log (the last lines). Every failure is a
devicelink.DeviceError saying what to do: no such port, permission (the dialout group), a
device that does not answer frames (the app is not running), a cable pulled mid-transfer.
"""

import errno
import os
import time

from zongji.admin import frames

from zongji_companion.devicelink import DeviceError
from zongji_companion.ports import ESP32_PORTS  # the one table of ESP32 USB-serial bridges

BAUD = 115200
HELLO_S = 3.0  # no HELLO-ACK within this: the app is not running there
RESPONSE_S = 60.0  # a request's answer (a bundle is checked and written on the device)
LOG_LINES = 50


def find_auto():
    """The one ESP32 USB-serial port plugged in; DeviceError for none or several."""
    from serial.tools import list_ports

    found = [p for p in list_ports.comports() if (p.vid, p.pid) in ESP32_PORTS]
    if not found:
        names = ", ".join("%04x:%04x %s" % (v, p, n) for (v, p), n in sorted(ESP32_PORTS.items()))
        raise DeviceError("no ESP32 USB-serial port found (looked for %s): is the board plugged in? "
                          "Or name the port: --device /dev/ttyUSB0" % names)  # fmt: skip
    if len(found) > 1:
        lines = ["  %s  %s (%s)" % (p.device, ESP32_PORTS[(p.vid, p.pid)], p.description) for p in found]
        raise DeviceError("%d ESP32 USB-serial ports; name one with --device:\n%s" % (len(found), "\n".join(lines)))
    return found[0].device


def open_serial(url):
    """A link to the device at a serial port path, "auto" or socket://HOST:PORT."""
    import serial

    path = find_auto() if url == "auto" else url
    try:
        if path.startswith("socket://") or path.startswith("rfc2217://"):
            port = serial.serial_for_url(path, baudrate=BAUD, timeout=0.05)
        else:
            port = serial.Serial(path, BAUD, timeout=0.05, write_timeout=10)
    except serial.SerialException as e:
        raise DeviceError(_open_error(path, e)) from None
    except ValueError as e:
        raise DeviceError("can't open %s: %s" % (path, e)) from None
    return SerialLink(port, path)


def _open_error(path, e):
    err = getattr(e, "errno", None)
    text = str(e)
    if err == errno.ENOENT or "No such file" in text or "could not open port" in text and "[Errno 2]" in text:
        return "no such serial port %s: is the board plugged in? (`ls /dev/ttyUSB* /dev/ttyACM*`)" % path
    if err == errno.EACCES or "Permission denied" in text or "[Errno 13]" in text:
        return ("permission denied on %s: add yourself to the dialout group "
                "(sudo usermod -aG dialout $USER, then log in again)" % path)  # fmt: skip
    if err == errno.EBUSY or "[Errno 16]" in text:
        return "%s is in use by another program (a serial monitor, mpremote?): close it first" % path
    if "Connection refused" in text or "[Errno 111]" in text:
        return "nothing listens at %s (connection refused)" % path
    return "can't open %s: %s" % (path, text)


class SerialLink:
    def __init__(self, port, name):
        self.port = port
        self.name = name
        self.ep = frames.Endpoint(device=False)
        self.sent = 0
        self.received = 0
        self.log = []  # the device's last lines printed between frames
        self._mid = 0
        self._partial = b""
        self._step = None  # called after each write (progress)
        try:
            port.reset_input_buffer()  # what the port held from before: not ours
        except (OSError, AttributeError):
            pass

    # ---- the wire ----------------------------------------------------------------------------

    def _write(self, data):
        import serial

        try:
            self.port.write(data)
        except (serial.SerialException, OSError) as e:
            raise self._lost(e) from None
        self.sent += len(data)

    def _read(self, wait):
        import serial

        port = self.port
        try:
            n = port.in_waiting
            if not n:
                port.timeout = max(0.0, wait)
                first = port.read(1)
                if not first:
                    return b""
                n = port.in_waiting
                data = first + (port.read(n) if n else b"")
            else:
                data = port.read(n)
        except (serial.SerialException, OSError, TypeError) as e:
            raise self._lost(e) from None
        self.received += len(data)
        return data

    def _lost(self, e):
        return DeviceError(
            "the serial link to %s was lost mid-transfer (%s): was the cable pulled? Nothing half-sent "
            "is applied on the device; run the command again" % (self.name, e)
        )

    def _now(self):
        return int(time.monotonic() * 1000)

    def _pump(self, done, timeout_s):
        """Write and read until done() gives a value (returned) or an endpoint event fails it."""
        ep = self.ep
        end = time.monotonic() + timeout_s
        while True:
            now = self._now()
            out = ep.output(now)
            if out:
                self._write(out)
                if self._step is not None:
                    self._step()
            while ep.events:
                kind, value = ep.events.pop(0)
                got = done(kind, value)
                if got is not None:
                    return got
                if kind == "failed":
                    raise DeviceError("the device on %s stopped answering (%s): was the cable pulled, or the "
                                      "app stopped?" % (self.name, value))  # fmt: skip
                if kind == "reset":
                    raise DeviceError("the device on %s restarted during the request (%s); run the command again"
                                      % (self.name, value))  # fmt: skip
            left = end - time.monotonic()
            if left <= 0:
                return None
            due = ep.deadline()
            wait = min(left, 0.05 if due is None else max(0.0, (due - now) / 1000.0))
            data = self._read(wait)
            if data:
                ep.receive(data, self._now())
                self._keep_text()
            due = ep.deadline()
            if due is not None and self._now() >= due:
                ep.timer(self._now())

    def _keep_text(self):
        ep = self.ep
        if not ep.text:
            return
        text = self._partial + bytes(ep.text)
        ep.text = bytearray()
        lines = text.split(b"\n")
        self._partial = lines.pop()[-1000:]
        for line in lines:
            line = line.decode("utf-8", "replace").strip("\r\x00")
            if line:
                self.log.append(line)
        del self.log[:-LOG_LINES]

    # ---- a session, requests ----------------------------------------------------------------

    def _hello(self):
        self.ep.open(frames.repl_safe_session(os.urandom), self._now())
        got = self._pump(lambda kind, value: True if kind == "up" else None, HELLO_S)
        if got:
            return
        self._keep_text()
        pending = self._partial + bytes(self.ep._span)  # text not yet followed by a frame
        seen = " ".join(self.log[-3:] + [pending.decode("utf-8", "replace")]).strip()
        if self.ep.echoed or ">>>" in seen or "raw REPL" in seen:
            why = "the board is at the REPL (it echoes what it is sent)"
        elif seen:
            why = "it prints, but not frames: %r" % seen[-120:]
        else:
            why = "no answer at all"
        raise DeviceError(
            "the zongji app is not answering on %s (%s): is it at the REPL? Reset the board "
            "(mpremote connect %s reset), or look at it with mpremote connect %s resume fs ls"
            % (self.name, why, self.name, self.name)
        )

    def exchange(self, method, path, headers, body, progress=None):
        if not self.ep.up:
            self._hello()
        self._mid += 1
        mid = self._mid
        ep = self.ep
        ep.request(method, path, headers, body, mid, self._now())
        total = len(body)
        shown = [0]

        def step():
            p = ep.progress()
            sent = total if p is None else max(0, total - (p[1] - p[0]))
            if sent != shown[0]:
                shown[0] = sent
                progress(sent, total)

        def done(kind, value):
            return value if kind == "message" and value[0].id == mid else None

        self._step = step if progress is not None and total else None
        try:
            got = self._pump(done, RESPONSE_S)
        finally:
            self._step = None
        if got is None:
            ep.abandon()
            raise DeviceError("no answer from the device on %s within %d s" % (self.name, RESPONSE_S))
        ep.abandon()  # answered before our body was all sent (a refusal): send no more of it
        head, data = got
        if progress is not None and total and shown[0] != total:
            progress(total, total)
        return head.status, dict(head.headers), bytes(data or b"")

    def close(self):
        try:
            self.port.close()
        except Exception:
            pass

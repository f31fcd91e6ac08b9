"""The virtual device's USB serial port: its stdin/stdout on a pty, PATH the port a host opens.

    uart = SerialPty("/tmp/zongji-tty", baud=115200, echo=sys.stdout.buffer.write)
    proc = subprocess.Popen(argv, stdin=uart.device_fd, stdout=uart.device_fd,
                            start_new_session=True, preexec_fn=uart.make_controlling)
    uart.start(); ...; uart.close()

Two ptys and a bridge between their masters, as a board's UART and its USB bridge chip: the
firmware's side (its stdin/stdout, and its controlling terminal) and the host's side, whose
slave PATH links to (what /dev/ttyUSB0 is; pyserial, mpremote and the CLI open it). The bridge
copies both ways at the line rate (baud/10 bytes a second, 8N1; 0 = as fast as it goes), so
benchmarks see a real 115,200-baud link.

termios. A board's UART is raw, but 0x03 raises KeyboardInterrupt while the app runs (the
UART interrupt calls mp_sched_keyboard_interrupt). The unix port turns SIGINT into
KeyboardInterrupt, so the firmware's pty is raw except ISIG, with VINTR = 0x03 and VQUIT and
VSUSP disabled (0x1C and 0x1A must not kill or stop the process): 0x03 from the host stops the
app as on a board, and the REPL that follows (micropython -i) sets the terminal raw itself
while it reads, so mpremote's raw REPL works. IXON is off (0x11/0x13 are data).

The host's side is held open here too, so the bridge never sees a hangup when a host closes
the port; what the device writes while no one reads is dropped once the pty is full, as a
UART with no one listening loses it. Text the device prints between frames (its log lines,
the REPL) is also copied to `echo`, so `zongji device run --serial` shows the console.
"""

import errno
import fcntl
import os
import termios
import threading
import time
import tty


def _device_termios(fd):
    attrs = termios.tcgetattr(fd)
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = attrs
    iflag &= ~(termios.BRKINT | termios.ICRNL | termios.INPCK | termios.ISTRIP | termios.IXON | termios.INLCR)
    iflag &= ~(termios.IGNCR | termios.IXOFF | termios.PARMRK)
    oflag &= ~termios.OPOST
    cflag = (cflag & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
    lflag = termios.ISIG  # no ICANON, ECHO, IEXTEN: raw, but 0x03 is SIGINT
    cc = list(cc)
    cc[termios.VINTR] = 3
    cc[termios.VQUIT] = 0  # _POSIX_VDISABLE
    cc[termios.VSUSP] = 0
    cc[termios.VMIN] = 1
    cc[termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, ispeed, ospeed, cc])


class SerialPty:
    def __init__(self, path, baud=115200, echo=None):
        self.path = path
        self.baud = baud
        self.echo = echo
        self.dev_master, self.device_fd = os.openpty()
        _device_termios(self.device_fd)
        self.host_master, self._host_slave = os.openpty()
        tty.setraw(self._host_slave)
        self.host_name = os.ttyname(self._host_slave)
        fl = fcntl.fcntl(self.host_master, fcntl.F_GETFL)
        fcntl.fcntl(self.host_master, fcntl.F_SETFL, fl | os.O_NONBLOCK)
        if os.path.islink(path):
            os.remove(path)
        elif os.path.exists(path):
            self.close()
            raise OSError(errno.EEXIST, "%s exists and is not a symlink: not replacing it" % path)
        os.symlink(self.host_name, path)
        self._stop = threading.Event()
        self._threads = []
        self.to_device = 0
        self.to_host = 0

    def make_controlling(self):
        """preexec_fn of the firmware (after setsid): its pty becomes its controlling terminal,
        so 0x03 on the line is SIGINT to it."""
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    def start(self):
        self._inside = False  # between a frame's two ENDs (the bridge loses nothing, so they pair)
        self._frame = b""
        for args in ((self.host_master, self.dev_master, False), (self.dev_master, self.host_master, True)):
            t = threading.Thread(target=self._copy, args=args, daemon=True)
            t.start()
            self._threads.append(t)

    def _copy(self, src, dst, from_device):
        rate = self.baud / 10.0
        credit = 0.0
        last = time.monotonic()
        chunk = 4096
        while not self._stop.is_set():
            import select

            try:
                ready, _, _ = select.select([src], [], [], 0.2)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            if rate:
                now = time.monotonic()
                credit = min(credit + (now - last) * rate, max(64.0, rate * 0.005))
                last = now
                if credit < 1:
                    time.sleep((1 - credit) / rate)
                    continue
                n = int(credit)
            else:
                n = chunk
            try:
                data = os.read(src, n)
            except BlockingIOError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.05)  # EIO: no one on that side for now
                continue
            if not data:
                continue
            if rate:
                credit -= len(data)
            if from_device:
                self.to_host += len(data)
                self._echo(data)
                try:
                    os.write(dst, data)
                except BlockingIOError:
                    pass  # no one reads the port: lost, as on a UART
                except OSError:
                    pass
            else:
                self.to_device += len(data)
                view = memoryview(data)
                while view and not self._stop.is_set():
                    try:
                        view = view[os.write(dst, view) :]
                    except OSError:
                        return

    def _echo(self, data):
        """Copy what is outside frames to echo, as soon as it comes."""
        if self.echo is None:
            return
        from zongji.admin.frames import parse

        text = []
        parts = data.split(b"\xc0")
        for i, part in enumerate(parts):
            if i:  # an END
                if self._inside:
                    if self._frame and parse(self._frame) is None:
                        text.append(self._frame)  # not a frame after all: show it
                    self._frame = b""
                    self._inside = False
                else:
                    self._inside = True
            if self._inside:
                self._frame += part
                if len(self._frame) > 1024:
                    text.append(self._frame)
                    self._frame = b""
                    self._inside = False
            elif part:
                text.append(part)
        if text:
            try:
                self.echo(b"".join(text))
            except (OSError, ValueError):
                pass

    def close(self):
        if getattr(self, "_stop", None) is not None:
            self._stop.set()
        for t in getattr(self, "_threads", []):
            t.join(timeout=1)
        for fd in (self.dev_master, self.device_fd, self.host_master, self._host_slave):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            if os.path.islink(self.path) and os.readlink(self.path) == self.host_name:
                os.remove(self.path)
        except OSError:
            pass

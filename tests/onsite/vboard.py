"""A virtual ESP32 board for `zongji flash` end to end: the fake ROM loader (fakerom.py) while
in its bootloader, the real MicroPython unix port once the loader starts the app.

    board = VirtualBoard(tmp_path, chip="esp32", board=spec).start()
    board.port                 the pty an installer's laptop opens (esptool, mpremote, zongji)
    board.fs                   the folder that is the board's filesystem (what the app sees)
    board.boots                how often MicroPython started; board.app_running()
    board.reset("bootloader")  the installer holds BOOT and presses EN; "app" presses EN only
    board.stop()

What is real and what is not. The ROM side is FakeRom: esptool really connects, erases,
writes and verifies into a file standing in for the flash chip. When the loader leaves (the
ROM's FLASH_END, as esptool's soft reset sends; or reset("app")), the board "boots the flash":
it looks at what is at the board's app offset, and

* if the flash holds no app (0xFF: erased) or what is there is not MicroPython (fwimage
  refuses it), the ROM's boot loop is printed ("invalid header") and nothing answers: what a
  board with a bad image does;
* if it is MicroPython, the image's code cannot run here (no Xtensa), so the unix port stands
  in for it: `micropython -i` in board.fs, as a freshly flashed board offers its REPL, or its
  main.py once one was uploaded (vdevice.blank_command: the zongji package is imported from
  board.fs, never from this checkout). The filesystem starts empty, as MicroPython formats an
  erased vfs partition at first boot; if the flash's vfs partition holds a littlefs image (a
  factory image), its files are unpacked into board.fs at that boot, as MicroPython would
  mount them.

The pty is bridged to MicroPython's own terminal (a second pty, set up as the virtual device's
serial port is: raw but 0x03 is SIGINT, zongji_companion/vdevice/serialpty.py), so mpremote's
raw REPL and the serial admin link work as on a board. machine.reset() or Ctrl-D boots it again.
"""

import os
import select
import shutil
import subprocess
import threading

from fakerom import FakeRom
from zongji_companion import vdevice
from zongji_companion.vdevice import serialpty


class VirtualBoard(FakeRom):
    def __init__(self, folder, chip="esp32", board=None, flash_size=4 << 20, mode="bootloader", heap=None):
        folder = str(folder)
        os.makedirs(folder, exist_ok=True)
        self.board = board or {}
        self.fs = os.path.join(folder, "fs")
        self.heap = heap or 8000000
        self.boots = 0
        self.said = []  # why each boot did or did not start MicroPython
        self._proc = None
        self._ready = False
        self._dev_master = self._dev_slave = None
        self._pump = None
        self._unpacked = None  # the vfs partition's bytes last unpacked into fs
        super().__init__(os.path.join(folder, "flash.bin"), chip=chip, flash_size=flash_size, mode=mode)

    # ---- modes ------------------------------------------------------------------------------

    def _enter(self, mode):
        self._halt_app()
        if mode == "app" and getattr(self, "_thread", None) is not None:
            super()._enter("silent")  # the ROM's banner is not MicroPython's: the boot below speaks
            self.mode = "app"
            self._boot()
            return
        super()._enter(mode)

    def _boot(self):
        app = self._app_image()
        if app is None:
            self._send(b"ets Jun  8 2016 00:22:57\r\n\r\nrst:0x10 (RTCWDT_RTC_RESET),boot:0x13 "
                       b"(SPI_FAST_FLASH_BOOT)\r\ninvalid header: 0xffffffff\r\n")  # fmt: skip
            self.mode = "silent"
            return
        self._unpack_vfs()
        self.boots += 1
        self._ready = False
        self._dev_master, self._dev_slave = os.openpty()
        serialpty._device_termios(self._dev_slave)
        argv, env = vdevice.blank_command(self.fs, self.heap)
        slave = self._dev_slave

        def controlling():
            import fcntl
            import termios

            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self._proc = subprocess.Popen(argv, cwd=self.fs, env=env, stdin=slave, stdout=slave, stderr=slave,
                                      start_new_session=True, preexec_fn=controlling)  # fmt: skip
        self._pump = threading.Thread(target=self._from_app, args=(self._proc, self._dev_master), daemon=True)
        self._pump.start()

    def _from_app(self, proc, master):
        """MicroPython's output to the port; when it exits by a reset, boot again."""
        while True:
            try:
                ready, _, _ = select.select([master], [], [], 0.1)
                data = os.read(master, 4096) if ready else b""
            except OSError:
                data = None
            if data:
                self._ready = True  # it speaks: from now on what arrives reaches it
                self._send(data)
                continue
            if proc.poll() is not None and (data is None or not ready):
                break
        code = proc.returncode
        with self._lock:
            if self._proc is not proc:
                return  # stopped on purpose (a reset into the bootloader, stop())
            self._close_app()
            if code in (vdevice.RESET_EXIT, vdevice.WDT_EXIT, 0) and not self._stop.is_set():
                self._boot()  # machine.reset(), the watchdog, Ctrl-D: it boots again
            else:
                self.mode = "silent"
                self.said.append("MicroPython ended with %s" % code)

    def _received(self, data):
        # while the app runs, what arrives goes to MicroPython; else to the ROM, as FakeRom does
        if self._proc is None or self._dev_master is None:
            super()._received(data)
        elif self._ready:  # still booting: a UART nobody reads yet loses what comes
            try:
                os.write(self._dev_master, data)
            except OSError:
                pass

    # ---- what the flash holds ---------------------------------------------------------------

    def _app_image(self):
        """The MicroPython image at the board's offset, as fwimage reads it, or None."""
        from zongji_companion import fwimage

        offset = int(str(self.board.get("flash_offset", "0x1000")), 0)
        head = self.flash(offset, 4)
        if head == b"\xff\xff\xff\xff":
            self.said.append("no app: the flash is erased")
            return None
        try:
            return fwimage.inspect(self._image(offset), self.board)
        except fwimage.ImageError as e:
            self.said.append("not MicroPython: %s" % e)
            return None

    def _image(self, offset):
        """The flash from the bootloader to the end of the last partition its table lists:
        what was written as the image (the vfs partition after it is the filesystem's)."""
        from zongji_companion import fwimage

        try:
            parts = fwimage.read_table(self.flash(fwimage.TABLE_OFFSET, fwimage.TABLE_SIZE))
            end = max(p.offset + p.size for p in parts)
        except (fwimage.ImageError, ValueError):
            end = self.flash_size
        return self.flash(offset, min(end, self.flash_size) - offset)

    def _unpack_vfs(self):
        """What MicroPython finds in its vfs partition at boot: a littlefs image (a factory
        image) is mounted, so its files become the filesystem; anything else (erased) is
        formatted, so the filesystem starts empty. Unchanged since the last boot: as it was,
        with what was uploaded since. vdevice.json is the room the board is in (the Wi-Fi
        networks in reach, its link), not its filesystem: it stays."""
        from zongji_companion import fwimage, lfsimage

        os.makedirs(self.fs, exist_ok=True)
        offset = int(str(self.board.get("flash_offset", "0x1000")), 0)
        vfs = fwimage.inspect(self._image(offset), self.board).vfs
        data = self.flash(vfs.offset, vfs.size)
        if data == self._unpacked:
            return
        self._unpacked = data
        try:
            files = lfsimage.read(data)
        except lfsimage.FsError:
            files = {}
        for name in os.listdir(self.fs):
            if name != "vdevice.json":
                path = os.path.join(self.fs, name)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        for name, blob in files.items():
            path = os.path.join(self.fs, *name.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(blob)

    # ---- the app ----------------------------------------------------------------------------

    def app_running(self):
        return self._proc is not None and self._proc.poll() is None

    def _halt_app(self):
        proc = getattr(self, "_proc", None)
        if proc is None:
            return
        self._proc = None
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        self._close_app()

    def _close_app(self):
        self._proc = None
        for fd in (self._dev_master, self._dev_slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._dev_master = self._dev_slave = None

    def stop(self):
        self._stop.set()
        with self._lock:
            self._halt_app()
        super().stop()

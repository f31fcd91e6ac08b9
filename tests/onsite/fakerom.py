"""A fake ESP32 / ESP32-S3 ROM serial bootloader on a pty, for driving real esptool in tests.

    rom = FakeRom(tmp_path / "flash.bin", chip="esp32", flash_size=4 << 20).start()
    esptool --port rom.port ...           (or zongji_companion.flasher)
    rom.flash(0x1000, 16)                 the flash chip's bytes (the file rom.flash_path)
    rom.reset("app")                      the installer's buttons: "bootloader", "app", "silent"
    rom.served                            the names of the commands answered, in order
    rom.stop()

What it is. A thread serving the master side of a pty (os.openpty, raw); rom.port is the
slave, which esptool opens as it opens /dev/ttyUSB0. The flash chip is a file of flash_size
bytes (initially all 0xFF, or fill="random" for an old firmware's worth of noise). The fake
does not run code: it answers esptool's SLIP command protocol from tables, as the chip would.

Modes (what the board is doing when esptool opens the port):
  bootloader  held in download mode (BOOT held while EN is released): the ROM loader answers.
  app         booted normally: the ROM's boot line, then MicroPython's banner; it never answers
              SYNC. It echoes printable bytes as the REPL's line editor does and answers Enter
              with a prompt, so esptool sees bytes that are not SLIP ("Invalid head of packet").
  silent      held in reset (EN pressed): nothing is sent, whatever arrives is dropped.
rom.reset(mode) is the installer pressing the buttons. DTR/RTS cannot be seen through a pty
(the TIOCM* ioctls fail with ENOTTY on it), so esptool's automatic reset cannot reach the fake:
esptool warns once ("Chip was NOT reset") and carries on with whatever mode the fake is in.

Commands implemented (esptool's names; every other command gets the ROM's "invalid message"
status, or the stub's "not implemented"):
  SYNC (8 answers; value non-zero from the ROM, 0 from the stub, as esptool tells them apart)
  READ_REG, WRITE_REG (with mask; several registers per command) over a register table: the
    chip-detect magic (ESP32), eFuse words (MAC, package, revision, PSRAM), the UART clock
    divider and RTC calibration (crystal frequency), and the SPI controller's user-command
    registers: writing SPI_CMD_USR runs the command on the fake flash chip: RDID (0x9F,
    Winbond-like id, capacity from flash_size), SFDP read (0x5A, a minimal table: "SFDP" and a
    vendor byte), RDSR 0x05/0x35/0x15 (0); others (WREN, reset 0x66/0x99, ...) do nothing.
    Other addresses read 0 or what was last written.
  GET_SECURITY_INFO (ESP32-S3: flags 0, chip id 9; the ESP32 ROM does not know it)
  SPI_ATTACH, SPI_SET_PARAMS (accepted, the size remembered)
  FLASH_BEGIN/FLASH_DATA/FLASH_END and FLASH_DEFL_BEGIN/DATA/END (zlib, streamed): begin
    erases the sectors the write covers, data is checked (length, sequence, checksum) and
    written as NOR flash writes (bits can only be cleared: new = old & data).
  SPI_FLASH_MD5 (the ROM answers 32 hex characters, the stub 16 bytes)
  READ_FLASH_SLOW (ROM: 64 bytes per command)
  CHANGE_BAUDRATE (answered; the UART divider register follows; a pty has no line rate)
  MEM_BEGIN/MEM_DATA/MEM_END: the program is stored, not run. MEM_END with an entry point
    inside what was uploaded is taken to start esptool's flasher stub (an entry elsewhere: the
    chip goes silent, as a crashed one would): the fake answers "OHAI" and serves the stub's
    protocol from then on (2 status bytes instead of the ROM's 4; 16 KB blocks), adding
    ERASE_FLASH, ERASE_REGION and READ_FLASH (blocks of the asked size, each acknowledged by
    esptool, then the MD5). The ROM alone cannot erase a whole chip; esptool's
    erase-region without the stub erases through FLASH_BEGIN, which the fake does too.
Leaving the loader: the ROM's FLASH_END/FLASH_DEFL_END start the app (mode "app"); the
stub's with reboot drops back to the ROM loader (the strapping pins are latched at reset).

Not simulated: timing (erase and write are instant), secure boot/flash encryption (all eFuses
clear), USB re-enumeration, the real reset sequence, baud rates, flash larger than the file.
"""

import hashlib
import os
import random
import select
import struct
import threading
import tty
import zlib

# ---- protocol constants (esptool's command numbers) -------------------------------------------
OPS = {
    0x02: "FLASH_BEGIN",
    0x03: "FLASH_DATA",
    0x04: "FLASH_END",
    0x05: "MEM_BEGIN",
    0x06: "MEM_END",
    0x07: "MEM_DATA",
    0x08: "SYNC",
    0x09: "WRITE_REG",
    0x0A: "READ_REG",
    0x0B: "SPI_SET_PARAMS",
    0x0D: "SPI_ATTACH",
    0x0E: "READ_FLASH_SLOW",
    0x0F: "CHANGE_BAUDRATE",
    0x10: "FLASH_DEFL_BEGIN",
    0x11: "FLASH_DEFL_DATA",
    0x12: "FLASH_DEFL_END",
    0x13: "SPI_FLASH_MD5",
    0x14: "GET_SECURITY_INFO",
    0xD0: "ERASE_FLASH",
    0xD1: "ERASE_REGION",
    0xD2: "READ_FLASH",
}
STUB_ONLY = ("ERASE_FLASH", "ERASE_REGION", "READ_FLASH")
ROM_ONLY = ("READ_FLASH_SLOW",)
SECTOR = 0x1000
SYNC_DATA = b"\x07\x07\x12\x20" + 32 * b"\x55"

# ROM status: (1, error); the stub's errors are one byte 0xC0.. then 0
ROM_BAD_MESSAGE = 0x05
ROM_BAD_RESULT = 0x06
ROM_CHECKSUM = 0x07
ROM_FLASH_WRITE = 0x08
ROM_DEFLATE = 0x0B
STUB_BAD_LENGTH = 0xC0
STUB_CHECKSUM = 0xC1
STUB_SPI = 0xC4
STUB_NOT_FLASHING = 0xC6
STUB_INFLATE = 0xC7
STUB_TOO_MUCH = 0xC9
STUB_NOT_IMPLEMENTED = 0xFF

FLASH_CAPACITY = {256 << 10: 0x12, 512 << 10: 0x13, 1 << 20: 0x14, 2 << 20: 0x15, 4 << 20: 0x16,
                  8 << 20: 0x17, 16 << 20: 0x18, 32 << 20: 0x19}  # fmt: skip
SFDP = b"SFDP\x06\x01\x01\xff" + b"\x00\x06\x01\x10\x30\x00\x00\xff" + b"\xef\x00\x01\x03\x80\x00\x00\xff"


class Chip:
    """The registers and text of one chip kind (enough for esptool's reads)."""

    def __init__(self, kind, mac):
        self.kind = kind
        if kind == "esp32":
            efuse = 0x3FF5A000
            self.spi = dict(base=0x3FF42000, usr=0x1C, usr1=0x20, usr2=0x24, mosi=0x28, miso=0x2C, w0=0x80)
            self.addr_msb = True  # the ESP32's SPI sends the address from the register's MSB
            self.clkdiv = 0x3FF40014
            self.regs = {
                0x40001000: 0x00F01D83,  # chip-detect magic
                efuse + 4: int.from_bytes(mac[2:6], "big"),  # MAC low 4 bytes
                efuse + 8: int.from_bytes(mac[0:2], "big"),  # MAC high 2 bytes (CRC byte 0)
                efuse + 12: (1 << 9) | (1 << 15),  # package D0WD, revision bit 0
                efuse + 16: 100,  # CK8M frequency (ROM crystal calibration)
                efuse + 20: 1 << 20,  # revision bit 1
                0x3FF6607C: 1 << 31,  # APB_CTL_DATE: revision bit 2 -> v3.0
                0x3FF5F06C: 1024 << 7,  # RTC calibration: with CK8M 100 -> 40 MHz
            }
            self.boot_app = "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"
            self.boot_download = "rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\n"
            self.banner = "MicroPython v1.29.0 on 2026-08-01; Generic ESP32 module with ESP32\r\n"
        elif kind == "esp32s3":
            efuse = 0x60007000
            self.spi = dict(base=0x60002000, usr=0x18, usr1=0x1C, usr2=0x20, mosi=0x24, miso=0x28, w0=0x58)
            self.addr_msb = False
            self.clkdiv = 0x60000014
            block1 = efuse + 0x44
            self.regs = {
                block1: int.from_bytes(mac[2:6], "big"),  # MAC low 4 bytes
                block1 + 4: int.from_bytes(mac[0:2], "big"),
                block1 + 12: (2 << 18) | (1 << 24),  # minor revision 2, block version minor 1
                block1 + 16: (1 << 3) | (2 << 7),  # embedded PSRAM 8 MB (AP 1.8 V): an N8R8
                efuse + 0x5C + 16: 1,  # block version major 1
            }
            self.boot_app = "ESP-ROM:esp32s3-20210327\r\nrst:0x1 (POWERON),boot:0x8 (SPI_FAST_FLASH_BOOT)\r\n"
            self.boot_download = "ESP-ROM:esp32s3-20210327\r\nrst:0x1 (POWERON),boot:0x0 (DOWNLOAD(USB/UART0))\r\n"
            self.banner = "MicroPython v1.29.0 on 2026-08-01; Generic ESP32S3 module with ESP32S3\r\n"
        else:
            raise ValueError("chip must be esp32 or esp32s3, not %r" % kind)
        self.regs[self.clkdiv] = 40000000 // 115200  # the ROM's UART divider at 115200 baud

    def security_info(self):
        """GET_SECURITY_INFO's 20 bytes (ESP32-S3 and later), or None (the ESP32 ROM lacks it)."""
        if self.kind == "esp32":
            return None
        return struct.pack("<IB7BII", 0, 0, *([0] * 7), 9, 0)


def _checksum(data):
    state = 0xEF
    for b in data:
        state ^= b
    return state


def slip(frame):
    return b"\xc0" + frame.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


class _Failed(Exception):
    def __init__(self, code):
        self.code = code


class FakeRom:
    def __init__(self, flash_path, chip="esp32", flash_size=4 << 20, mode="bootloader", fill="ff", mac=None):
        if flash_size not in FLASH_CAPACITY:
            raise ValueError("flash_size must be one of %s" % sorted(FLASH_CAPACITY))
        self.flash_path = str(flash_path)
        self.flash_size = flash_size
        self.mac = bytes(mac or (b"\x24\x0a\xc4" if chip == "esp32" else b"\xf4\x12\xfa") + b"\x12\x34\x56")
        self.chip = Chip(chip, self.mac)
        with open(self.flash_path, "wb") as f:
            if fill == "random":
                f.write(random.Random(flash_size).randbytes(flash_size))
            else:
                f.write(b"\xff" * flash_size)
        self._fd = os.open(self.flash_path, os.O_RDWR)
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # pyserial sets it raw too when it opens the port
        os.set_blocking(self.master, False)
        self.port = os.ttyname(self._slave)
        self.served = []
        self.uploaded = {}  # RAM address -> bytes (MEM_DATA), never run
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._enter(mode)

    # ---- the installer's side ---------------------------------------------------------------

    def start(self):
        self._thread = threading.Thread(target=self._serve, name="fakerom", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        for fd in (self.master, self._slave, self._fd):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self):
        return self.start() if self._thread is None else self

    def __exit__(self, *exc):
        self.stop()

    def reset(self, mode="bootloader"):
        """Press EN (with BOOT held for "bootloader"; kept pressed for "silent")."""
        with self._lock:
            self._enter(mode)

    def flash(self, offset=0, size=None):
        """The flash chip's bytes."""
        size = self.flash_size - offset if size is None else size
        return os.pread(self._fd, size, offset)

    # ---- state ------------------------------------------------------------------------------

    def _enter(self, mode):
        if mode not in ("bootloader", "app", "silent"):
            raise ValueError("mode must be bootloader, app or silent")
        self.mode = mode
        self.stub = False
        self.regs = dict(self.chip.regs)
        self._frame = None  # SLIP frame being received (None: between frames)
        self._escape = False
        self._write = None  # (offset, blocks, block size, next seq, inflater or None, bytes left)
        self._mem = None
        self._reading = None  # stub READ_FLASH in progress
        self.spi_params = None
        if mode == "bootloader":
            self._send(self.chip.boot_download.encode() + b"waiting for download\r\n")
        elif mode == "app":
            self._send(self.chip.boot_app.encode() + self.chip.banner.encode())
            self._send(b'Type "help()" for more information.\r\n>>> ')

    # ---- the wire ---------------------------------------------------------------------------

    def _serve(self):
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(self.master, 65536)
            except BlockingIOError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                self._stop.wait(0.05)  # EIO while no one holds the port: impossible, we hold it
                continue
            with self._lock:
                self._received(data)

    def _received(self, data):
        """Bytes from the host, as the chip's UART hands them on (the lock is held)."""
        if self.mode == "bootloader":
            self._slip_in(data)
        elif self.mode == "app":
            self._repl_in(data)

    def _send(self, data):
        """Write to the host; dropped after 5 s if no one reads (a UART has no flow control)."""
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.master, view)
                view = view[n:]
            except BlockingIOError:
                if self._stop.is_set() or not select.select([], [self.master], [], 5.0)[1]:
                    return
            except OSError:
                return

    def _repl_in(self, data):
        out = bytearray()
        for b in data:
            if 32 <= b < 127:
                out.append(b)
            elif b == 0x0D:
                out += b"\r\n>>> "
        if out:
            self._send(bytes(out))

    def _slip_in(self, data):
        for b in data:
            if self._frame is None:
                if b == 0xC0:
                    self._frame = bytearray()
                continue  # bytes between frames: noise, ignored as the ROM does
            if self._escape:
                self._escape = False
                self._frame.append({0xDC: 0xC0, 0xDD: 0xDB}.get(b, b))
            elif b == 0xDB:
                self._escape = True
            elif b == 0xC0:
                frame, self._frame = bytes(self._frame), None
                if frame:
                    self._packet(frame)
                else:
                    self._frame = bytearray()  # c0 c0: an empty frame, the next starts here
            else:
                self._frame.append(b)

    def _packet(self, frame):
        if self._reading is not None:
            self._read_ack(frame)
            return
        if len(frame) < 8 or frame[0] != 0:
            return
        op, size, chk = struct.unpack_from("<BHI", frame, 1)
        data = frame[8:]
        name = OPS.get(op)
        if (
            len(data) != size
            or name is None
            or (name in STUB_ONLY and not self.stub)
            or (name in ROM_ONLY and self.stub)
        ):
            self._reply(op, 0, status=STUB_NOT_IMPLEMENTED if self.stub else ROM_BAD_MESSAGE)
            return
        self.served.append(name)
        try:
            result = getattr(self, "_do_" + name.lower())(data, chk)
        except _Failed as e:
            self._reply(op, 0, status=e.code)
            return
        except struct.error:
            self._reply(op, 0, status=STUB_BAD_LENGTH if self.stub else ROM_BAD_MESSAGE)
            return
        if result is None:
            return  # answered already
        value, body = result
        self._reply(op, value, body)

    def _reply(self, op, value, body=b"", status=0):
        if status:
            tail = bytes([status, 0]) if self.stub else bytes([1, status, 0, 0])
        else:
            tail = b"\x00\x00" if self.stub else b"\x00\x00\x00\x00"
        payload = body + tail
        self._send(slip(struct.pack("<BBHI", 1, op, len(payload), value) + payload))

    def _fail(self, rom_code, stub_code):
        raise _Failed(stub_code if self.stub else rom_code)

    # ---- commands ---------------------------------------------------------------------------

    def _do_sync(self, data, chk):
        if data != SYNC_DATA:
            self._fail(ROM_BAD_MESSAGE, STUB_BAD_LENGTH)
        value = 0 if self.stub else 0x20120707
        for _ in range(8):
            self._reply(0x08, value)

    def _do_read_reg(self, data, chk):
        (addr,) = struct.unpack("<I", data)
        return self.regs.get(addr, 0), b""

    def _do_write_reg(self, data, chk):
        if not data or len(data) % 16:
            self._fail(ROM_BAD_MESSAGE, STUB_BAD_LENGTH)
        for at in range(0, len(data), 16):
            addr, value, mask, _delay = struct.unpack_from("<IIII", data, at)
            self.regs[addr] = (self.regs.get(addr, 0) & ~mask | value & mask) & 0xFFFFFFFF
            spi = self.chip.spi
            if addr == spi["base"] and self.regs[addr] & (1 << 18):
                self._spi_command()
        return 0, b""

    def _spi_command(self):
        """The SPI controller's user command (SPI_CMD_USR): run it on the fake flash chip."""
        spi, regs = self.chip.spi, self.regs
        base = spi["base"]
        usr = regs.get(base + spi["usr"], 0)
        cmd = regs.get(base + spi["usr2"], 0) & 0xFF
        addr = 0
        if usr & (1 << 30):
            addr_len = ((regs.get(base + spi["usr1"], 0) >> 26) & 0x3F) + 1
            raw = regs.get(base + 4, 0)
            addr = raw >> (32 - addr_len) if self.chip.addr_msb else raw
        if cmd == 0x9F:  # RDID: manufacturer, memory type, capacity
            answer = bytes([0xEF, 0x40, FLASH_CAPACITY[self.flash_size]])
        elif cmd == 0x5A:  # SFDP
            answer = SFDP[addr : addr + 4].ljust(4, b"\xff")
        elif cmd in (0x05, 0x35, 0x15):  # status registers
            answer = b"\x00"
        else:
            answer = None
        if answer is not None and usr & (1 << 28):
            bits = regs.get(base + spi["miso"], 0) + 1
            word = int.from_bytes(answer.ljust(4, b"\x00")[:4], "little")
            regs[base + spi["w0"]] = word & ((1 << min(bits, 32)) - 1)
        regs[base] &= ~(1 << 18)  # done

    def _do_get_security_info(self, data, chk):
        info = self.chip.security_info()
        if info is None:
            self._fail(ROM_BAD_MESSAGE, STUB_NOT_IMPLEMENTED)
        return 0, info

    def _do_spi_attach(self, data, chk):
        if len(data) != (4 if self.stub else 8):
            self._fail(ROM_BAD_MESSAGE, STUB_BAD_LENGTH)
        return 0, b""

    def _do_spi_set_params(self, data, chk):
        self.spi_params = struct.unpack("<IIIIII", data)
        return 0, b""

    def _do_change_baudrate(self, data, chk):
        baud, _old = struct.unpack("<II", data)
        if baud:
            self.regs[self.chip.clkdiv] = 40000000 // baud
        return 0, b""

    # flash writes

    def _begin(self, data, deflate):
        long_form = self.stub or self.chip.kind != "esp32"  # ESP32 ROM: no encryption word
        size, blocks, block_size, offset = struct.unpack_from("<IIII", data)
        if len(data) != (20 if long_form else 16):
            self._fail(ROM_BAD_MESSAGE, STUB_BAD_LENGTH)
        if offset + size > self.flash_size:
            self._fail(ROM_FLASH_WRITE, STUB_SPI)
        self._erase(offset, size)
        inflater = zlib.decompressobj() if deflate else None
        self._write = [offset, blocks, block_size, 0, inflater, size]
        return 0, b""

    def _data_block(self, data, chk):
        """(sequence number, block) of a FLASH_DATA / MEM_DATA command, its length and checksum checked."""
        length, seq = struct.unpack_from("<II", data)
        block = data[16:]
        if len(block) != length:
            self._fail(ROM_BAD_MESSAGE, STUB_BAD_LENGTH)
        if _checksum(block) != chk & 0xFF:
            self._fail(ROM_CHECKSUM, STUB_CHECKSUM)
        return seq, block

    def _block(self, data, chk, deflate):
        if self._write is None or (self._write[4] is not None) != deflate:
            self._fail(ROM_BAD_RESULT, STUB_NOT_FLASHING)
        seq, block = self._data_block(data, chk)
        offset, blocks, block_size, want, inflater, _left = self._write
        if seq != want or seq >= blocks:
            self._fail(ROM_BAD_RESULT, STUB_TOO_MUCH)
        if inflater is not None:
            try:
                out = inflater.decompress(block)
            except zlib.error:
                self._fail(ROM_DEFLATE, STUB_INFLATE)
        else:
            out = block
        if offset + len(out) > self.flash_size:
            self._fail(ROM_FLASH_WRITE, STUB_TOO_MUCH)
        self._program(offset, out)
        self._write[0] = offset + len(out)
        self._write[3] = seq + 1
        return 0, b""

    def _end(self, data):
        (stay,) = struct.unpack("<I", data)
        self._write = None
        self._reply(0x12 if self.served[-1] == "FLASH_DEFL_END" else 0x04, 0)
        if not self.stub:
            self._enter("app")  # the ROM leaves the loader: run user code / reboot
        elif not stay:
            self._enter("bootloader")  # the stub reboots: the strapping pins are still latched

    def _do_flash_begin(self, data, chk):
        return self._begin(data, False)

    def _do_flash_defl_begin(self, data, chk):
        return self._begin(data, True)

    def _do_flash_data(self, data, chk):
        return self._block(data, chk, False)

    def _do_flash_defl_data(self, data, chk):
        return self._block(data, chk, True)

    def _do_flash_end(self, data, chk):
        self._end(data)

    def _do_flash_defl_end(self, data, chk):
        self._end(data)

    def _erase(self, offset, size):
        start = offset - offset % SECTOR
        end = min(self.flash_size, -(-(offset + size) // SECTOR) * SECTOR)
        if end > start:
            os.pwrite(self._fd, b"\xff" * (end - start), start)

    def _program(self, offset, data):
        """A NOR flash write: bits can only go from 1 to 0."""
        if not data:
            return
        old = os.pread(self._fd, len(data), offset)
        new = (int.from_bytes(old, "big") & int.from_bytes(data, "big")).to_bytes(len(data), "big")
        os.pwrite(self._fd, new, offset)

    def _do_erase_flash(self, data, chk):
        self._erase(0, self.flash_size)
        return 0, b""

    def _do_erase_region(self, data, chk):
        offset, size = struct.unpack("<II", data)
        if offset % SECTOR or size % SECTOR or offset + size > self.flash_size:
            self._fail(ROM_BAD_MESSAGE, STUB_BAD_LENGTH)
        self._erase(offset, size)
        return 0, b""

    # flash reads

    def _in_flash(self, offset, size):
        if offset + size > self.flash_size:
            self._fail(ROM_FLASH_WRITE, STUB_SPI)

    def _do_spi_flash_md5(self, data, chk):
        offset, size, _, _ = struct.unpack("<IIII", data)
        self._in_flash(offset, size)
        digest = hashlib.md5(self.flash(offset, size))
        return 0, (digest.digest() if self.stub else digest.hexdigest().encode())

    def _do_read_flash_slow(self, data, chk):
        offset, size = struct.unpack("<II", data)
        if size > 64:
            self._fail(ROM_BAD_MESSAGE, STUB_BAD_LENGTH)
        self._in_flash(offset, size)
        return 0, self.flash(offset, size).ljust(64, b"\x00")

    def _do_read_flash(self, data, chk):
        offset, size, block, inflight = struct.unpack("<IIII", data)
        self._in_flash(offset, size)
        if not block or not inflight:
            self._fail(ROM_BAD_MESSAGE, STUB_BAD_LENGTH)
        self._reply(0xD2, 0)
        self._reading = dict(offset=offset, size=size, block=block, inflight=inflight, sent=0, acked=0,
                             md5=hashlib.md5())  # fmt: skip
        self._read_more()

    def _read_more(self):
        r = self._reading
        while r["sent"] < r["size"] and r["sent"] - r["acked"] < r["block"] * r["inflight"]:
            n = min(r["block"], r["size"] - r["sent"])
            chunk = self.flash(r["offset"] + r["sent"], n)
            r["md5"].update(chunk)
            r["sent"] += n
            self._send(slip(chunk))

    def _read_ack(self, frame):
        r = self._reading
        if len(frame) != 4:
            self._reading = None  # not an ack: the read is abandoned, as the stub's would be
            return
        (r["acked"],) = struct.unpack("<I", frame)
        if r["acked"] >= r["size"]:
            self._reading = None
            self._send(slip(r["md5"].digest()))
        else:
            self._read_more()

    # RAM (the stub upload)

    def _do_mem_begin(self, data, chk):
        size, blocks, block_size, offset = struct.unpack("<IIII", data)
        self._mem = [offset, blocks, block_size, 0, bytearray()]
        return 0, b""

    def _do_mem_data(self, data, chk):
        if self._mem is None:
            self._fail(ROM_BAD_RESULT, STUB_NOT_FLASHING)
        seq, block = self._data_block(data, chk)
        if seq != self._mem[3]:
            self._fail(ROM_BAD_RESULT, STUB_TOO_MUCH)
        self._mem[4] += block
        self._mem[3] += 1
        self.uploaded[self._mem[0]] = bytes(self._mem[4])
        return 0, b""

    def _do_mem_end(self, data, chk):
        no_entry, entry = struct.unpack("<II", data)
        self._mem = None
        self._reply(0x06, 0)
        if no_entry:
            return
        if any(start <= entry < start + len(code) for start, code in self.uploaded.items()):
            self.stub = True  # taken to be esptool's flasher stub (not run)
            self._send(slip(b"OHAI"))
        else:
            self.mode = "silent"  # jumped to nothing: a crashed chip says no more

"""The admin protocol on the REPL UART while the app runs (zongji.admin.frames on stdin/stdout).

    await serve(device)     a task of Device.main() (config "admin_serial", default on)

The same UART carries the device's log lines (print) and the REPL; this task reads
sys.stdin.buffer without blocking the loop and writes frames to sys.stdout.buffer in one
write each, so a log line never lands inside a frame. Ctrl-C (0x03) is never inside a frame
(frames.py escapes it), so it still stops the app and leaves the REPL (mpremote's way in).

Reading. A board's stdin can only be read a byte at a time without blocking: read(n) waits
until n bytes came (shared/runtime/sys_stdio_mphal.c loops on mp_hal_stdin_rx_chr), and poll
says only "at least one". So while frames come, each turn takes what is waiting byte by byte
(poll, readinto a 1-byte buffer), up to RX_CHUNK, feeds it to the endpoint and sleeps POLL_MS:
at 115,200 baud about 46 bytes arrive in 4 ms, well inside the board's 259-byte stdin ring.
When nothing is going on the task waits for stdin to become readable (no polling at all).

Heap. Until the first byte arrives nothing of the link exists (frames.py is imported then):
a board without PSRAM that is never synced over USB pays only for this module. If the heap
has no room for the link then, it says so once and stays off. A stdin at end of file (the
unix port run with no terminal) turns it off too.

Each request goes to Admin exactly as the HTTP transport does: precheck() on its head (a
refused request's body is read and dropped, never stored), handle() once it is whole, with
"serial" as the source. A half-received request is never handled (frames.py drops it).
"""

import asyncio
import select
import sys

POLL_MS = 4  # between turns while frames are coming
RX_CHUNK = 512  # bytes read per turn at most
OUT_BUDGET = 256  # bytes written per turn (a board's write blocks while its FIFO drains): 2 frames
SOURCE = "serial"


def _readable(stream):
    from asyncio import core

    yield core._io_queue.queue_read(stream)


class SerialAdmin:
    def __init__(self, device, stdin=None, stdout=None):
        from zongji.admin import frames

        self.device = device
        self.stdin = stdin or sys.stdin.buffer
        self.stdout = stdout or sys.stdout.buffer
        admin = device.admin
        self.ep = frames.Endpoint(device=True, max_body=max(admin.max_bundle_body, admin.max_prompt))
        self._poll = select.poll()
        self._poll.register(self.stdin, select.POLLIN)
        self._b1 = bytearray(1)
        self._buf = bytearray(RX_CHUNK)
        self._answered = None  # id of a request refused from its head
        self.requests = 0
        self.eof = False

    def read(self):
        """What stdin holds now, up to RX_CHUNK bytes, without blocking."""
        n = 0
        buf = self._buf
        b1 = self._b1
        ipoll = self._poll.ipoll
        readinto = self.stdin.readinto
        while n < RX_CHUNK:
            ready = False
            for _obj, ev in ipoll(0):
                ready = ev & select.POLLIN
            if not ready:
                break
            if not readinto(b1):
                self.eof = True  # the unix port: no one on the other end of the pty
                break
            buf[n] = b1[0]
            n += 1
        return bytes(buf[:n]) if n else b""

    def write(self, now):
        data = self.ep.output(now, OUT_BUDGET)
        if data:
            try:
                self.stdout.write(data)
            except OSError:
                pass  # a port with no one listening: the retries (or the CLI's) cover it

    def step(self, data, now):
        """Feed data, act on what the endpoint says, run its timers, write what is due."""
        ep = self.ep
        if data:
            ep.receive(data, now)
        due = ep.deadline()
        if due is not None and now >= due:
            ep.timer(now)
        while ep.events:
            kind, value = ep.events.pop(0)
            if kind == "head":
                self._head(value, now)
            elif kind == "message":
                self._message(value[0], value[1], now)
            elif kind in ("failed", "dropped"):
                self.device.error("admin over serial: %s" % value)
        self.write(now)

    def _head(self, head, now):
        admin = self.device.admin
        refusal = admin.precheck(head.method, head.path, head.headers, head.length, SOURCE, self.device.admin_ms())
        if refusal is not None:
            self.ep.discard()
            self._answered = head.id
            self._respond(refusal, head.id, now)

    def _message(self, head, body, now):
        if body is None or head.id == self._answered:
            self._answered = None
            return
        self.write(now)  # the ACK of the last frame first: handling may take a while
        body = bytes(body)
        self.requests += 1
        resp = self.device.admin.handle(head.method, head.path, head.headers, body, SOURCE, self.device.admin_ms())
        body = None
        self._respond(resp, head.id, self.device.clock.now_ms())

    def _respond(self, resp, mid, now):
        headers = {"content-type": resp.type}
        for k in resp.headers:
            headers[k] = resp.headers[k]
        self.ep.respond(resp.status, headers, resp.body, mid, now)

    async def run(self):
        dev = self.device
        clock = dev.clock
        ep = self.ep
        while not dev._stopping:
            now = clock.now_ms()
            data = self.read()
            try:
                self.step(data, now)
            except MemoryError as e:
                dev._bug("an admin request over serial", e)
                ep.abandon()
            if data or ep.busy() or ep.receiving():
                await asyncio.sleep_ms(POLL_MS)
            elif self.eof:
                self.eof = False
                await asyncio.sleep_ms(200)
            else:
                await _readable(self.stdin)


async def _park(device):
    while not device._stopping:
        await asyncio.sleep_ms(60000)


async def serve(device):
    stdin = sys.stdin.buffer
    await _readable(stdin)  # the first byte: only now does the link take heap
    first = bytearray(1)
    if not stdin.readinto(first):
        await _park(device)  # end of file: no console on this port
        return
    import gc

    link = None
    for _ in range(2):  # once more after a collection: the heap may only be fragmented
        try:
            link = SerialAdmin(device, stdin)
            break
        except MemoryError:
            gc.collect()
    if link is None:
        device.error("no room in the heap for the admin over serial (%d B free): it is off" % gc.mem_free())
        await _park(device)
        return
    link.ep.receive(bytes(first), device.clock.now_ms())
    await link.run()

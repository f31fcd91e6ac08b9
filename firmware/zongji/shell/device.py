"""The ESP32 shell: the switch on a UDP socket under MicroPython's asyncio, over the shared pump.

    device.boot()                   what main.py calls: config, site, network, then run until
                                    Ctrl-C (KeyboardInterrupt), which saves the state and returns

Tasks (one asyncio loop):
  serve       waits until the socket is readable, then feeds each datagram to the pump
  timers      sleeps until pump.deadline or pump.save_at (woken early when a datagram brings
              either forward), then pump.timer() / pump.save()
  housekeeping  every second: feeds the watchdog, polls the network (a new DHCP address
              restarts the switch on it), NTP, the free-heap floor, gc when idle, the LED
  blink       the status LED's pattern (zongji.shell.led)

Memory. gc.threshold makes the collector run before the heap is exhausted, and the housekeeping
collects when no datagram came for a while. Below the free-heap floor (config "heap_floor")
new registrations from phones that are not registered and new calls (an INVITE without a To
tag) are answered 503 with Retry-After, before any transaction exists; registered phones'
refreshes and everything inside a call go on. The hook is the transaction layer's `screen`,
wrapped (shell/lowheap.py): the switch itself has no notion of heap. A MemoryError anywhere in a
datagram's handling is caught, counted and collected; the board never resets for it.

Everything runs on the unix port too (the virtual device): the sockets there take raw sockaddr
bytes, which shell/udp.py hides; machine and network come from small fakes (zongji_companion/vdevice).
Paths are relative to the current directory: "/" on a board, the flash folder on the unix port.
"""

import asyncio
import gc
import json
import os
import socket
import sys

from zongji.media.dtmf import Detector
from zongji.media.hub import MediaHub
from zongji.shell import sitefile
from zongji.shell.clock import Clock
from zongji.shell.console import describe
from zongji.shell.led import Led
from zongji.shell.lowheap import LowHeap
from zongji.shell.net import Net
from zongji.shell.promptfiles import PromptFiles
from zongji.shell.pump import REGISTRATIONS, Pump
from zongji.shell.store import Store
from zongji.shell.udp import Udp, readable
from zongji.switch.switch import Switch

# asyncio loads wait_for_ms (its funcs module) on first use: at boot, while the heap is whole,
# not in the timers task later, where a MemoryError there would stop every SIP timer
wait_for_ms = asyncio.wait_for_ms

CONFIG = "config.json"
SECRETS = "secrets.json"  # {"admin_token": ...}: written by `zongji flash` (vdevice: device run)
STATE = "state"  # registrations.json and cdr.jsonl, under the flash root
BURST = 16  # datagrams served before the other tasks get a turn
HOUSEKEEPING_MS = 1000
SHORT_WAIT_MS = 25  # the timers task sleeps plainly for a deadline this close
IDLE_GC_MS = 5000  # collect when nothing came in for this long (at most this often)
REPL_WDT_MS = 3600000  # the watchdog once stopped: an hour at the REPL
DEFAULTS = {
    "sip_port": 5060,
    "rtp_port": 0,  # the attendant's audio; 0: the SIP port + 2
    "bind": "0.0.0.0",
    "heap_floor": 16384,
    "wdt_ms": 8000,
    "save_interval_s": 10,
    "report_s": 300,  # a status line on the console this often (0: never)
    "admin_port": 80,  # the admin protocol over HTTP (zongji sync --device http://...); 0: off
    "admin_bind": "",  # its address; "" the SIP bind's
    "admin_serial": True,  # the admin protocol on the REPL UART (zongji sync --device /dev/ttyUSB0)
    "limits": {"max_transactions": 64, "max_calls": 8, "max_records": 50},
}


def read_token(path=SECRETS):
    """The admin token, or None (no file, or none in it: sync is off until one is set)."""
    try:
        with open(path) as f:
            token = json.load(f).get("admin_token")
    except (OSError, ValueError, AttributeError):
        return None
    return token if isinstance(token, str) and len(token) >= 16 else None


def first_token(path=SECRETS):
    """A device with no token (a factory image: secrets are never baked in) makes its own at
    first boot and prints it once on the serial console, which only whoever holds the board
    reads (`zongji flash` sets one instead). The token goes into secrets.json, written whole;
    never into the log the admin status returns. None when it can't be stored."""
    from zongji.admin.sign import hexlify

    token = hexlify(os.urandom(16))
    try:
        with open(path) as f:
            secrets = json.load(f)
        if not isinstance(secrets, dict):
            secrets = {}
    except (OSError, ValueError):
        secrets = {}
    secrets["admin_token"] = token
    if not Store(".").write(path, json.dumps(secrets).encode()):
        return None
    print("zongji: first boot: made the admin token %s (in %s): zongji status --device PORT --token %s"
          % (token, path, token))  # fmt: skip
    return token


def read_config(path=CONFIG):
    """The device config with defaults filled; {} keys when the file is missing or damaged."""
    cfg = {}
    try:
        with open(path) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        print("zongji: %s: %s; using defaults" % (path, e))
    for key in DEFAULTS:
        cfg.setdefault(key, DEFAULTS[key])
    limits = dict(DEFAULTS["limits"])
    limits.update(cfg.get("limits") or {})
    cfg["limits"] = limits
    return cfg


class Device:
    def __init__(self, config, site, machine=None, network=None, ntptime=None, out=print):
        self.config = config
        self.site = site
        self.machine = machine
        self.ntptime = ntptime
        self.out = out
        self.clock = Clock()
        board = config.get("board") or {}
        pins = board.get("pins") or {}
        self.led = Led(machine, pins.get("led"))
        self.net = Net(config, network, machine, self.log, self.error) if network is not None else None
        self.wdt = None
        self.udp = None
        self.media = None  # the RTP socket (shell/udp.py), for the attendant's calls
        self.prompts = PromptFiles(".")  # /prompts on a board; the flash folder's on the unix port
        self.sw = None
        self.pump = None
        self.lowheap = None
        self.store = Store(STATE)
        self.files = None  # shell/sitefile.SiteStore: the bundle and prompts (boot sets it)
        self.admin = None  # zongji.admin.protocol.Admin, when the device has a token
        self.errors = []  # the last problems (error()), for the admin status
        self._reboot_at = None
        self.rebooting = False
        self._new_sip = False
        self.fault = None  # why the LED shows "fault", or None
        self.memory_errors = 0
        self.bugs = 0
        self._wake = asyncio.Event()
        self._timer_at = None
        self._last_rx = 0
        self._last_gc = 0
        self._last_report = 0
        self._failed = []
        self._stopping = False
        self._host = None

    def log(self, text):
        """A line on the console: what happens (joined, synced, status reports)."""
        self.out("zongji: " + text)

    def error(self, text):
        """A problem the admin should see: on the console, and the last 10 in `zongji status`
        ("errors"), each with the uptime it happened at."""
        if len(self.errors) >= 10:
            self.errors.pop(0)
        self.errors.append("%ds: %s" % (self.clock.now_ms() // 1000, text))
        self.log(text)

    # ---- the switch --------------------------------------------------------------------------

    def _trunk_addr(self):
        trunk = self.site.trunk or {}
        host = trunk.get("host")
        if not host:
            return None
        port = trunk.get("port") or 5060
        try:
            raw = socket.getaddrinfo(host, port)[0][-1]
        except (OSError, IndexError) as e:
            self.error("can't find the trunk host %s (%s): calls through the trunk will fail" % (host, e))
            return None
        if isinstance(raw, tuple):
            return raw[0], raw[1]
        family, ip, port = socket.sockaddr(raw)
        return socket.inet_ntop(family, ip), port

    def start_switch(self, host, now):
        """A switch advertising host; a running one is saved and replaced (a new address)."""
        if self.pump is not None:
            self.pump.save(now, force=True)
        limits = self.config["limits"]
        hub = MediaHub(host, self._rtp_port(), random_bytes=os.urandom, prompts=self.prompts, detector=Detector)
        sw = Switch(
            self.site,
            host,
            self.config["sip_port"],
            os.urandom(32),
            os.urandom,
            trunk_addr=self._trunk_addr(),
            max_transactions=limits["max_transactions"],
            max_calls=limits["max_calls"],
            media=hub if self.media is not None else None,
        )
        sw.cdr.max_records = limits["max_records"]
        sw.epoch_ms = self.clock.epoch_ms(now)
        pump = Pump(sw, self._send, self._emit, self.store, self._bug, self.log)
        pump.save_interval_ms = self.config["save_interval_s"] * 1000
        if self.media is not None:
            pump.send_media = self._send_media
            pump.send_frames = self._send_frames
        regs, calls = pump.restore(now, self._downtime_ms())
        self.sw, self.pump, self._host = sw, pump, host
        self.lowheap = LowHeap(sw)
        if regs or calls:
            self.log("restored %d registration(s) and %d call record(s) from %s/" % (regs, calls, STATE))
        pump.kick(now)
        self._rearm(now)

    def _downtime_ms(self):
        """How long ago the registrations were written (0 while the clock is unsynced): the
        file's mtime and time.time() share the port's epoch."""
        if not self.clock.synced:
            return 0
        try:
            mtime = os.stat(self.store.path(REGISTRATIONS))[8]
        except OSError:
            return 0
        return max(0, (_port_time() - mtime) * 1000)

    def _send(self, data, addr):
        try:
            self.udp.send(data, addr)
        except OSError:  # no route, unreachable: the pump hears of it once this send is over
            self._failed.append(addr)

    def _rtp_port(self):
        return self.config["rtp_port"] or self.config["sip_port"] + 2

    def _send_media(self, data, addr):
        try:
            self.media.send(data, addr)
        except OSError:
            pass  # RTP is not retried: a lost frame is a 20 ms gap

    def _send_frames(self, frames):
        """A tick's RTP frames in one call from the pump (every stream is on one 20 ms grid)."""
        send = self.media.send
        for data, addr in frames:
            try:
                send(data, addr)
            except OSError:
                pass

    def _bug(self, what, e):
        if isinstance(e, MemoryError):
            self.memory_errors += 1
            gc.collect()
            if self.lowheap is not None:
                self.lowheap.low = True  # until the next housekeeping finds room again
            if self.memory_errors < 4 or self.memory_errors % 100 == 0:
                self.error("out of memory on %s (%d so far): dropped it, going on" % (what, self.memory_errors))
                if self.memory_errors < 2:
                    self._where(e)
            return
        self.bugs += 1
        self.fault = "internal error"
        self.error("internal error on %s: %s: %s (a bug in zongji)" % (what, type(e).__name__, e))
        if self.bugs < 4:
            sys.print_exception(e)

    def _where(self, e):
        """Where an exception came from, on one line (the first MemoryError: which allocation)."""
        try:
            import io

            buf = io.StringIO()
            sys.print_exception(e, buf)
            self.error("  at " + " / ".join(ln.strip() for ln in buf.getvalue().splitlines()[1:]))
        except MemoryError:
            pass

    def _emit(self, event):
        line = describe(event, self.clock.now_ms(), self.site)
        if line is not None:
            self.out(self._stamp() + " " + line)

    def _stamp(self):
        wall = self.clock.wall_s()
        if wall is None or self.site is None:
            return "--:--:--"
        tm = self.site.local_time(wall)
        return "%02d:%02d:%02d" % (tm[3], tm[4], tm[5])

    # ---- the admin protocol --------------------------------------------------------------------

    def apply(self, site):
        """A synced (or rolled back) site goes into service: the running switch takes it (calls
        go on), or, on a device that had none, the switch starts."""
        self.site = site
        self.fault = None
        self.prompts.forget()
        now = self.clock.now_ms()
        if self.sw is not None:
            self.sw.set_site(site, now, trunk_addr=self._trunk_addr())
            self.pump.kick(now)
            self._rearm(now)
        elif self.udp is None and not self._stopping:
            self._start_sip(now)
            self._new_sip = True

    def status_extra(self, now):
        gc.collect()
        net = self.net
        board = self.config.get("board") or {}
        return {
            "uptime_s": self.clock.now_ms() // 1000,
            "board": board.get("name"),
            "heap_free": gc.mem_free(),
            "heap_total": gc.mem_alloc() + gc.mem_free(),
            "network": {
                "ip": net.ip if net is not None else "127.0.0.1",
                "mode": net.mode if net is not None else None,
                "problem": net.problem if net is not None else None,
            },  # fmt: skip
            "clock_synced": self.clock.synced,
            "fault": self.fault,
            "memory_errors": self.memory_errors,
            "flash_writes": self.store.writes,
        }

    def now_ms(self):
        return self.clock.now_ms()

    def admin_ms(self):
        """The admin protocol's clock: wall ms once NTP set it, ms since boot until then (the
        CLI learns it from a "clock" answer and signs with it)."""
        now = self.clock.now_ms()
        return now + self.clock.epoch_ms(now)

    def reboot_soon(self):
        self._reboot_at = self.clock.now_ms() + 300  # the answer goes out first

    def _start_admin(self):
        token = read_token()
        if token is None:
            token = first_token()
            if token is None:
                self.error("no admin token (%s) and none could be made: sync is off" % SECRETS)
                return
        from zongji.admin.protocol import Admin
        from zongji.shell.adminops import AdminOps

        self.admin = Admin(token, AdminOps(self.files, self))
        limits = self.config.get("admin_limits") or {}
        for name in limits:
            setattr(self.admin, name, limits[name])

    def _room_for(self, what, make):
        """make() (an import and what it builds), once more after a collection if the heap
        had no room; if it still has none, the modules the attempt imported are dropped (their
        heap back), it is said once, and None."""
        had = list(sys.modules)
        for _ in range(2):  # the heap may only be fragmented
            try:
                return make()
            except MemoryError:
                for name in list(sys.modules):
                    if name not in had:  # imported by the attempt: off the table and its package
                        del sys.modules[name]
                        parent, _, child = name.rpartition(".")
                        pkg = sys.modules.get(parent)
                        if pkg is not None and child in pkg.__dict__:
                            delattr(pkg, child)
                gc.collect()
        del had
        self.error("no room in the heap for the admin over %s (%d B free): it is off" % (what, gc.mem_free()))
        return None

    async def _park(self):
        while not self._stopping:
            await asyncio.sleep_ms(60000)

    async def serve_admin_http(self):
        def make():
            from zongji.shell.admin_http import make_app

            return make_app(self.admin, self.admin_ms, clock=self.now_ms)

        port = self.config["admin_port"]
        host = self.config["admin_bind"] or self.config["bind"]
        app = self._room_for("http", make)
        if app is None:  # not a MemoryError a second while the task restarts
            await self._park()
            return
        app.server = None
        task = asyncio.create_task(app.start_server(host=host, port=port))
        while app.server is None and not task.done():
            await asyncio.sleep_ms(10)
        if app.server is not None:
            self.out("zongji: admin (sync) on http %s:%d" % (host, port))
        try:
            await task
        except OSError as e:
            self.error("the admin port %s:%d can't be used: %s; sync over the network is off" % (host, port, e))
            await self._park()
        finally:
            if not task.done():
                app.shutdown()
                task.cancel()

    async def serve_admin_serial(self):
        def make():
            from zongji.shell.admin_serial import serve

            return serve

        serve = self._room_for("serial", make)
        if serve is None:
            await self._park()
            return
        await serve(self)

    # ---- the loop ----------------------------------------------------------------------------

    def _rearm(self, now):
        while self._failed:
            self.pump.transport_error(self._failed.pop(0), now)
        due = _earliest(self.pump.deadline, self.pump.save_at)
        if due is not None and (self._timer_at is None or due < self._timer_at):
            self._wake.set()

    def _datagram(self, data, addr, now):
        try:
            self.pump.datagram(data, addr, now)
        except MemoryError as e:  # outside the pump's own guard: sending, the events
            self._bug("a datagram", e)

    async def serve(self):
        await self._serve(self.udp, self._sip_in)

    async def serve_media(self):
        await self._serve(self.media, self._rtp_in)

    def _sip_in(self, data, addr, now):
        self._last_rx = now
        if self.pump is not None:
            self._datagram(data, addr, now)
            self._rearm(now)

    def _rtp_in(self, data, addr, now):
        if self.pump is not None:
            self.pump.rtp(data, addr, now)
            self._rearm(now)

    async def _serve(self, udp, take):
        """Read udp's datagrams into take(data, addr, now), BURST at a time between the tasks."""
        while not self._stopping:
            if udp.sock is None:  # closed while the link is down (tick): open again when it returns
                await asyncio.sleep_ms(100)
                continue
            await readable(udp.sock)
            for _ in range(BURST):
                try:
                    got = udp.recv()
                    if got is None:
                        break
                    take(got[0], got[1], self.clock.now_ms())
                except MemoryError as e:
                    self._bug("a datagram", e)
            await asyncio.sleep_ms(0)

    async def timers(self):
        clock = self.clock
        while not self._stopping:
            now = clock.now_ms()
            pump = self.pump
            due = None if pump is None else _earliest(pump.deadline, pump.save_at)
            self._timer_at = due
            if due is not None and now < due <= now + SHORT_WAIT_MS:
                # the next RTP frame (or a timer as close): a plain sleep. wait_for_ms makes a
                # task and a timeout each time, 50 times a second per caller; a datagram that
                # brings a deadline forward waits at most this long. Then the tick at once,
                # without a turn of the loop in between (one wake, one pass: 50 a second).
                await asyncio.sleep_ms(due - now)
                if pump is not self.pump:
                    continue  # a new switch (a new address) meanwhile
                now = clock.now_ms()
                due = _earliest(pump.deadline, pump.save_at)
                if due is None or due > now:
                    continue
            elif due is None or due > now:
                self._wake.clear()
                wait = 1000 if due is None else min(due - now, 60000)
                try:
                    await wait_for_ms(self._wake.wait(), wait)
                except asyncio.TimeoutError:
                    pass
                continue
            try:
                if pump.deadline is not None and pump.deadline <= now:
                    pump.timer(now)
                if pump.save_at is not None and pump.save_at <= now:
                    pump.save(now)
                self._rearm(now)
            except MemoryError as e:
                self._bug("a timer", e)
                await asyncio.sleep_ms(10)

    async def blink(self):
        while not self._stopping:
            await asyncio.sleep_ms(self.led.step())

    async def housekeeping(self):
        while not self._stopping:
            try:
                self.tick(self.clock.now_ms())
            except MemoryError as e:
                self._bug("housekeeping", e)
            await asyncio.sleep_ms(HOUSEKEEPING_MS)

    def tick(self, now):
        if self.wdt is not None:
            self.wdt.feed()
        if self._reboot_at is not None and now >= self._reboot_at:
            self.log("rebooting (asked by the admin)")
            self.rebooting = True
            self._stopping = True  # main() returns, boot() saves and resets the board
        net = self.net
        changed = net is not None and net.poll(now)
        if net is not None and self.udp is not None:
            self._follow_link(net.ip is not None)
        if self.udp is not None and self.config["bind"] == "0.0.0.0":
            ip = net.ip if net is not None else "127.0.0.1"
            if ip is not None and self.pump is None:  # the first address: start serving
                self.start_switch(ip, now)
                self._banner()
            elif changed and ip is not None and ip != self._host:
                self.log("advertising %s from now on" % ip)
                self.start_switch(ip, now)
        up = net is None or net.ip is not None
        if up and self.clock.ntp_due(now):
            if self.clock.sync(self.ntptime, now):
                if self.sw is not None:
                    self.sw.epoch_ms = self.clock.epoch_ms(now)
                self.log("clock set by NTP")
        self._memory(now)
        self._report(now)
        if self.site is None or self.fault:
            self.led.show("fault")
        elif not up:
            self.led.show("no-network")
        elif self.sw is not None and not self.sw.trunk_up():
            self.led.show("trunk-down")
        else:
            self.led.show("running")

    def _follow_link(self, up):
        """The SIP socket follows the link: closed while it is down (nothing is heard; what is
        sent fails as a transport error, as the provider's and phones' addresses are then
        unreachable), bound again once it is back. Registrations and calls stay in the switch."""
        udp = self.udp
        if not up and udp.sock is not None:
            udp.close()
            self.error("link down: the SIP socket is closed until it returns")
        elif up and udp.sock is None:
            try:
                udp.open()
            except OSError as e:
                self.error("link back, but udp %s:%d can't be used: %s (trying again)" % (udp.bind + (e,)))
                return
            self.log("link back: serving SIP again")
        media = self.media
        if media is not None and (media.sock is None) == up:
            try:
                if up:
                    media.open()
                else:
                    media.close()
            except OSError:
                pass  # tried again at the next tick

    def _memory(self, now):
        idle = now - self._last_rx >= 200
        if idle and now - self._last_gc >= IDLE_GC_MS:
            gc.collect()
            self._last_gc = now
        if self.lowheap is None:
            return
        free = gc.mem_free()
        floor = self.config["heap_floor"]
        if free < floor:
            gc.collect()
            self._last_gc = now
            free = gc.mem_free()
        low = free < floor
        if low != self.lowheap.low:  # once per change, not every second while low
            state = "below" if low else "above"
            (self.error if low else self.log)(
                "free heap %d B, %s the floor of %d B: new registrations and calls %s"
                % (free, state, floor, "get 503" if low else "are served again")
            )
        self.lowheap.low = low

    def _report(self, now):
        """Every report_s: the heap after a collection, the tables and flash writes since boot,
        one line (what a soak watches for drift, and an installer at the console)."""
        every = self.config["report_s"] * 1000
        if not every or self.sw is None or now - self._last_report < every:
            return
        self._last_report = now
        gc.collect()
        self._last_gc = now
        sizes = self.sw.sizes()
        store = self.store
        fields = (gc.mem_free(), gc.mem_alloc() + gc.mem_free(), sizes["registrations"][0])
        fields += (sizes["calls"][0], sizes["transactions"][0], store.writes, store.bytes_written)
        self.log(
            "status: heap %d B free of %d B after collect, %d phones, %d calls, %d transactions, "
            "%d flash writes (%d B) since boot" % fields
        )

    async def main(self):
        """The tasks, restarted if one ever ends (it should not: each catches what it can)."""
        jobs = [self.blink, self.housekeeping]
        if self.admin is not None and self.config["admin_port"]:
            jobs.append(self.serve_admin_http)
        if self.admin is not None and self.config["admin_serial"]:
            jobs.append(self.serve_admin_serial)
        self._new_sip = self.udp is not None
        tasks = [asyncio.create_task(job()) for job in jobs]
        try:
            while not self._stopping:
                if self._new_sip:  # at start, or a first sync started SIP on a blank device
                    self._new_sip = False
                    more = [self.serve, self.timers] + ([self.serve_media] if self.media is not None else [])
                    jobs += more
                    tasks += [asyncio.create_task(job()) for job in more]
                await asyncio.sleep_ms(1000)
                for i, task in enumerate(tasks):
                    if task.done():
                        self.error("task %s ended; restarting it" % jobs[i].__name__)
                        tasks[i] = asyncio.create_task(jobs[i]())
        finally:
            for task in tasks:
                task.cancel()

    # ---- start and stop ----------------------------------------------------------------------

    def start(self):
        now = self.clock.now_ms()
        gc.collect()
        gc.threshold(gc.mem_free() // 4 + gc.mem_alloc())
        if self.machine is not None and hasattr(self.machine, "WDT"):
            self.wdt = self.machine.WDT(timeout=self.config["wdt_ms"])
        if self.net is not None:
            self.net.start(now)
        try:
            self.store.prepare()
        except OSError as e:
            self.error("can't make %s/ for state: %s" % (STATE, e))
        self._start_admin()
        if self.site is None:
            return
        self._start_sip(now)

    def _start_sip(self, now):
        self.udp = Udp(self.config["bind"], self.config["sip_port"])
        try:
            self.media = Udp(self.config["bind"], self._rtp_port())
        except OSError as e:
            self.error("udp %s:%d for the attendant's audio can't be used: %s; menus ring the operator" % (
                self.config["bind"], self._rtp_port(), e))  # fmt: skip
        # the network and NTP first, where they are quick: registrations restored with a set
        # clock age by the time the device was off. With a wildcard bind this (or a later
        # housekeeping) starts the switch once the interface has an address.
        self.tick(now)
        if self.config["bind"] != "0.0.0.0":
            self.start_switch(self.config["bind"], now)
            self._banner()

    def _banner(self):
        name, n = self.site.branch.get("name"), len(self.site.directory)
        where = (name, self._host, self.config["sip_port"], n, self.site.version[:8])
        self.out("zongji: %s listening on udp %s:%d (%d extensions, site version %s...)" % where)
        if self.media is not None:
            self.out("zongji: the attendant's audio on udp %s:%d" % (self._host, self._rtp_port()))
        gc.collect()
        heap = (gc.mem_free(), gc.mem_alloc() + gc.mem_free(), self.config["heap_floor"])
        self.out("zongji: heap %d B free of %d B (new calls get 503 below %d B)" % heap)
        self.out("Ctrl-C stops it.")

    def stop(self):
        """Save, unregister from the provider, close. The watchdog cannot be stopped on an ESP32:
        it is re-armed with the longest timeout (ESP-IDF 5 reconfigures the running one), so
        the REPL that follows a Ctrl-C has an hour before the board resets."""
        self._stopping = True
        if self.wdt is not None:
            try:
                self.wdt = self.machine.WDT(timeout=REPL_WDT_MS)
            except (OSError, ValueError):
                pass
        if self.pump is None:
            return
        now = self.clock.now_ms()
        self.pump.save(now, force=True)
        try:
            self.sw.close(now)  # the provider hears we are gone (Expires: 0), best effort
            for data, addr in self.sw.datagrams_to_send():
                self._send(data, addr)
        except Exception as e:  # best effort only
            self.error("while stopping: %s" % e)
        self.udp.close()
        if self.media is not None:
            self.media.close()


def _port_time():
    import time

    return int(time.time())


def _earliest(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a if a < b else b


def _optional(name):
    try:
        return __import__(name)
    except ImportError:
        return None


def boot(out=print):
    """main.py's entry: returns when stopped (Ctrl-C), with the state saved."""
    config = read_config()
    machine = _optional("machine")
    network = _optional("network")
    device = Device(config, None, machine, network, _optional("ntptime"), out)
    device.led.show("booting")
    device.files = sitefile.SiteStore(".", device.log, apply=device.apply, error=device.error)
    device.files.prompts_changed = device.prompts.forget
    site, status = device.files.load()
    gc.collect()
    device.site = site
    if site is None:
        device.fault = status
    try:
        device.start()
    except OSError as e:
        out("zongji: udp %s:%d can't be used: %s" % (config["bind"], config["sip_port"], e))
        raise SystemExit(2)
    try:
        while True:
            try:
                asyncio.run(device.main())
                break
            except MemoryError:  # out of the loop itself: collect and run it again
                gc.collect()
                device.memory_errors += 1
                device.error("out of memory in the loop; going on")
                asyncio.new_event_loop()
    except KeyboardInterrupt:
        pass
    finally:
        device.stop()
        asyncio.new_event_loop()
    if device.rebooting and machine is not None and hasattr(machine, "reset"):
        machine.reset()
    out("stopped")
    return device

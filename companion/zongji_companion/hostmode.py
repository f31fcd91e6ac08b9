"""Host mode: the device's SIP switch on this computer, over a real UDP socket (asyncio).

    code = serve(site, "127.0.0.1", 5060, ".zongji-state")      what `zongji run` calls

The shell of ARCHITECTURE principle 1, like aioquic's asyncio shell: the core (zongji.switch.switch)
never sees a socket or a clock. This file owns both. Each datagram goes to
sw.receive_datagram(data, addr, now_ms); after every input (a datagram or the timer) the shell
sends what sw.datagrams_to_send() hands back, prints sw.take_events(), and re-arms its one
timer for sw.next_timer(). now_ms is time.monotonic() in ms; sw.epoch_ms turns it into wall
time for the call records.

State lives in a folder: registrations.json (sw.registrar) and cdr.jsonl (sw.cdr), read at
start (a damaged file: a warning, then start empty) and written write-temp + os.replace when
their `dirty` flag is set: at most once a second, and at shutdown. SIGINT / SIGTERM stop it:
flush the state, close the socket, print "stopped", exit 0.

A wildcard bind (0.0.0.0, ::) is never advertised in Via / Record-Route: phones could not
reach it. --advertise names the address; without it we ask the kernel which source address it
would use towards a TEST-NET address (a UDP connect() sends nothing), else loopback.
"""

import asyncio
import errno
import json
import os
import signal
import socket
import sys
import time

from zongji.switch.registrar import LoadError
from zongji.switch.switch import Switch

REGISTRATIONS = "registrations.json"
CDR = "cdr.jsonl"
SAVE_INTERVAL_S = 1.0  # state files are rewritten at most this often
# A PC has room for more than a device: 10 calls/s leave ~1,600 transactions lingering in their
# 32 s absorb timers. "device" is the ESP32's own table sizes (zongji run --limits device).
LIMITS = {"host": {"max_transactions": 8192, "max_calls": 1000}, "device": {"max_transactions": 64, "max_calls": 32}}
_WILDCARDS = ("", "0.0.0.0", "::", "[::]")
_PROBES = (("192.0.2.1", socket.AF_INET), ("2001:db8::1", socket.AF_INET6))  # TEST-NET-1, RFC 3849


class HostModeError(Exception):
    """Host mode cannot start; str(e) says why and what to do."""


def now_ms():
    return int(time.monotonic() * 1000)


def _route_source(target, family):
    """The address the kernel would send from towards `target`, or None. connect() on a UDP
    socket only picks a route: no packet leaves."""
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((target, 9))
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ip in _WILDCARDS else ip


def advertise_address(bind, advertise=None):
    """What the switch puts in Via / Record-Route for a socket bound to `bind`: never a wildcard."""
    if advertise:
        return advertise
    if bind not in _WILDCARDS:
        return bind
    v4, v6 = _PROBES
    for target, family in (v6, v4) if ":" in bind else (v4,):
        ip = _route_source(target, family)
        if ip is not None:
            return ip
    return "::1" if ":" in bind else "127.0.0.1"


def open_socket(host, port, avoid=()):
    """A bound, non-blocking UDP socket; HostModeError (with a port to try) if it cannot be."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            free = next((p for p in range(port + 10, port + 200, 10) if p not in avoid and _free(host, p)), port + 10)
            why = "is in use: pick another with --sip %s" % _hostport(host, free)
        elif e.errno == errno.EADDRNOTAVAIL:
            why = "can't be used: %s is not an address of this computer (try 127.0.0.1, or 0.0.0.0 for all)" % host
        elif e.errno == errno.EACCES:
            why = "needs root (ports below 1024): use e.g. --sip %s" % _hostport(host, 5060)
        else:
            why = "can't be used: %s" % (e.strerror or e)
        raise HostModeError("udp %s %s" % (_hostport(host, port), why)) from None
    sock.setblocking(False)
    return sock


def _free(host, port):
    if port > 65535:
        return False
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _hostport(host, port):
    return "[%s]:%d" % (host, port) if ":" in host and not host.startswith("[") else "%s:%d" % (host, port)


# ---------------------------------------------------------------- the state folder


class StateFiles:
    """registrations.json and cdr.jsonl in one folder, written atomically."""

    def __init__(self, folder, warn):
        self.folder = folder
        self.warn = warn
        self._failing = set()  # files whose last write failed: warn once, not every second

    def path(self, name):
        return os.path.join(self.folder, name)

    def prepare(self):
        try:
            os.makedirs(self.folder, exist_ok=True)
            ignore = self.path(".gitignore")
            if not os.path.exists(ignore):  # a site folder kept in git should not track state
                with open(ignore, "w", encoding="utf-8") as f:
                    f.write("# zongji run state: registrations and call records\n*\n")
        except OSError as e:
            raise HostModeError("can't use %s for state: %s" % (self.folder, e.strerror or e)) from None

    def _read(self, name):
        try:
            with open(self.path(name), "rb") as f:
                return f.read(), os.fstat(f.fileno()).st_mtime
        except FileNotFoundError:
            return None, None
        except OSError as e:
            self.warn("can't read %s: %s; starting without it" % (self.path(name), e.strerror or e))
            return None, None

    def restore(self, sw, now):
        """Load both files into the switch; (registrations, call records) restored."""
        data, mtime = self._read(REGISTRATIONS)
        if data is not None:
            elapsed = max(0, int((time.time() - mtime) * 1000))  # remaining times are as of the write
            try:
                sw.registrar.load(data, now, elapsed)
            except LoadError as e:
                self.warn(
                    "%s: %s; starting with no registrations (phones register again)" % (self.path(REGISTRATIONS), e)
                )
        data, _ = self._read(CDR)
        if data is not None:
            sw.cdr.load(data)
            if sw.cdr.skipped:
                self.warn("%s: skipped %s" % (self.path(CDR), _plural(sw.cdr.skipped, "damaged line")))
        return len(sw.registrar), len(sw.cdr)

    def save(self, sw, now):
        """Write whichever file is dirty; a failed write leaves it dirty for the next try."""
        if sw.registrar.dirty and self._write(REGISTRATIONS, sw.registrar.dump(now)):
            sw.registrar.dirty = False
        if sw.cdr.dirty and self._write(CDR, sw.cdr.dump()):
            sw.cdr.dirty = False

    def _write(self, name, data):
        final = self.path(name)
        tmp = final + ".tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except OSError as e:
            if name not in self._failing:
                self.warn("can't write %s: %s (will retry)" % (final, e.strerror or e))
            self._failing.add(name)
            return False
        self._failing.discard(name)
        return True


# ---------------------------------------------------------------- events, for people and for scripts


def _clean(text):
    # peers choose contact URIs and caller names: no terminal escape sequences in the log
    return "".join(c if c >= " " and c != "\x7f" else "?" for c in str(text))


def _who(site, number):
    ext = site.extension(number) if number else None
    return "%s %s" % (number, ext.name) if ext is not None else number


def describe(event, site, now):
    """One event as a line for people, or None for one the banner already told."""
    kind = event[0]
    if kind == "listening":
        return None
    if kind in ("registered", "unregistered", "expired", "replaced"):
        _, number, contact, (ip, port) = event
        where = " from %s" % _hostport(ip, port) if kind == "registered" else ""
        return _clean("%s %s%s (%s)" % (kind, _who(site, number), where, contact))
    if kind == "banned":
        return "banned %s for %d s" % (_clean(event[1]), max(0, (event[2] - now + 999) // 1000))
    if kind == "call":
        r = event[1]
        text = "call %s -> %s: %s" % (r["from"] or "?", r["to"] or "?", r["outcome"])
        if r["outcome"] == "answered":
            if " -> " in r["route"]:
                text += " by " + _who(site, r["route"].rsplit(" -> ", 1)[1])
            return _clean(text + ", %d s" % r["duration"])
        return _clean(text + (" (%d)" % r["status"] if r["status"] else ""))
    if kind == "trunk":  # ("trunk", state, detail): the detail often starts with the state
        state, detail = event[1], event[2] or ""
        return _clean("trunk " + (detail if detail.startswith(state) else "%s: %s" % (state, detail)))
    return _clean(" ".join(str(x) for x in event))


def as_json(event, now):
    """One event as a JSON-ready dict (`--json-events`)."""
    kind = event[0]
    out = {"event": kind, "time": round(time.time(), 3)}
    if kind in ("registered", "unregistered", "expired", "replaced"):
        out.update(number=event[1], contact=event[2], source=list(event[3]))
    elif kind == "banned":
        out.update(ip=event[1], seconds=max(0, (event[2] - now + 999) // 1000))
    elif kind == "call":
        out.update(event[1])
    elif kind == "listening":
        out.update(host=event[1], port=event[2])
    elif kind == "trunk":
        out.update(state=event[1], detail=event[2])
    else:
        out["detail"] = list(event[1:])
    return out


# ---------------------------------------------------------------- the shell


class Shell(asyncio.DatagramProtocol):
    """Feeds the switch from one UDP socket and one timer; see the module docstring."""

    def __init__(self, sw, state, emit, warn):
        self.sw = sw
        self.state = state
        self.emit = emit  # emit(event, now): print one event
        self.warn = warn
        self.v6 = False
        self.transport = None
        self._timer = None
        self._timer_at = None
        self._save = None
        self._last_save = 0.0
        self.stopping = None  # an asyncio.Event once running: set it to stop

    def connection_made(self, transport):
        self.transport = transport
        self.v6 = transport.get_extra_info("socket").family == socket.AF_INET6

    def datagram_received(self, data, addr):
        ip = addr[0]
        if self.v6 and ip.startswith("::ffff:") and "." in ip:
            ip = ip[7:]  # an IPv4 phone on a dual-stack socket: the core sees plain IPv4
        now = now_ms()
        try:
            self.sw.receive_datagram(data, (ip, addr[1]), now)
        except Exception as e:  # a bug in the core must not take the switchboard down
            self._bug("a datagram from %s" % _hostport(ip, addr[1]), e)
        self._after(now)

    def error_received(self, exc):
        pass  # ICMP port unreachable from a phone that went away: its transactions time out

    def _on_timer(self):
        self._timer = self._timer_at = None
        now = now_ms()
        try:
            self.sw.handle_timer(now)
        except Exception as e:  # as above
            self._bug("a timer", e)
        self._after(now)

    def _bug(self, what, e):
        if os.environ.get("ZONGJI_DEBUG"):
            raise e
        self.warn(
            "internal error on %s: %s: %s (a bug in zongji; ZONGJI_DEBUG=1 shows where)" % (what, type(e).__name__, e)
        )

    def _after(self, now):
        """After every input: send, tell, re-arm the timer, schedule a save."""
        for data, addr in self.sw.datagrams_to_send():
            if self.v6 and ":" not in addr[0]:
                addr = ("::ffff:" + addr[0], addr[1])
            elif addr[0].startswith("["):
                addr = (addr[0].strip("[]"), addr[1])
            self.transport.sendto(data, addr)
        for event in self.sw.take_events():
            self.emit(event, now)
        loop = asyncio.get_running_loop()
        deadline = self.sw.next_timer()
        if deadline != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._timer_at = None
            if deadline is not None:
                self._timer_at = deadline
                self._timer = loop.call_at(loop.time() + max(0, deadline - now) / 1000.0, self._on_timer)
        if self._save is None and (self.sw.registrar.dirty or self.sw.cdr.dirty):
            self._save = loop.call_at(max(loop.time(), self._last_save + SAVE_INTERVAL_S), self._flush)

    def _flush(self):
        self._save = None
        self._last_save = asyncio.get_running_loop().time()
        self.state.save(self.sw, now_ms())

    def close(self):
        for handle in (self._timer, self._save):
            if handle is not None:
                handle.cancel()
        now = now_ms()
        self.state.save(self.sw, now)
        if self.transport is not None:
            self.sw.close(now)  # the provider hears we are gone (Expires: 0), best effort
            for data, addr in self.sw.datagrams_to_send():
                try:
                    self.transport.sendto(data, addr)
                except OSError:
                    pass
            self.transport.close()


async def _serve(shell, sock, ready):
    loop = asyncio.get_running_loop()
    stop = shell.stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - Windows
            pass
    await loop.create_datagram_endpoint(lambda: shell, sock=sock)
    ready()  # only now: a signal from here on stops it cleanly
    shell._after(now_ms())  # the "listening" event, and the timers the switch starts with
    try:
        await stop.wait()
    finally:
        shell.close()


def _resolve(host, port, warn):
    """The trunk's (ip, port): the core resolves no names."""
    try:
        return (socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0], port)
    except (OSError, UnicodeError) as e:
        warn("can't find the trunk host %s (%s): calls through the trunk will fail" % (host, e))
        return None


def serve(site, bind, port, state_dir, advertise=None, json_events=False, out=print, warn=None, hint=None, limits=None):
    """Run the switch for `site` on udp bind:port until SIGINT/SIGTERM. HostModeError if it
    cannot start. hint(server) -> lines printed under the banner (how to register a phone)."""
    warn = warn or (lambda text: print("zongji: warning: " + text, file=sys.stderr, flush=True))
    state = StateFiles(state_dir, warn)
    state.prepare()
    trunk = site.trunk or {}
    trunk_addr = _resolve(trunk["host"], trunk.get("port") or 5060, warn) if trunk.get("host") else None
    sock = open_socket(bind, port, avoid=(trunk.get("port"),))
    port = sock.getsockname()[1]  # port 0: the one the kernel chose
    host = advertise_address(bind, advertise)
    switch_host = "[%s]" % host if ":" in host and not host.startswith("[") else host
    try:
        sw = Switch(
            site, switch_host, port, os.urandom(32), os.urandom, trunk_addr=trunk_addr, **(limits or LIMITS["host"])
        )
    except BaseException:
        sock.close()
        raise
    now = now_ms()
    sw.epoch_ms = int(time.time() * 1000) - now
    registrations, calls = state.restore(sw, now)
    shell = Shell(sw, state, lambda event, at: emit(event, at), warn)

    def say(text):
        try:
            out(text, flush=True)
        except OSError:  # stdout closed (`zongji run | head`): stop as for Ctrl-C, quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            if shell.stopping is not None:
                shell.stopping.set()

    def emit(event, at):
        if json_events:
            say(json.dumps(as_json(event, at), ensure_ascii=False))
        else:
            line = describe(event, site, at)
            if line is not None:
                say(time.strftime("%H:%M:%S ") + line)

    def banner():
        where = _hostport(host, port)
        name, n = site.branch.get("name"), len(site.directory)
        if json_events:
            info = {"event": "started", "site": name, "version": site.version, "bind": bind, "host": host}
            info.update(port=port, extensions=n, state=state_dir, registrations=registrations, calls=calls)
            return say(json.dumps(info, ensure_ascii=False))
        say("zongji: %s listening on udp %s (%d extensions, site version %s…)" % (name, where, n, site.version[:8]))
        if bind in _WILDCARDS:
            say("  bound to every interface (%s); phones are told %s (change with --advertise)" % (bind or "*", host))
        for line in hint(where) if hint else ():
            say("  " + line)
        if registrations or calls:
            what = (_plural(registrations, "registration"), _plural(calls, "call record"), state_dir)
            say("restored %s and %s from %s" % what)
        say("Ctrl-C stops it.")

    try:
        asyncio.run(_serve(shell, sock, banner))
    except KeyboardInterrupt:  # pragma: no cover - where signal handlers are not available
        state.save(sw, now_ms())
    finally:
        sock.close()
    say(json.dumps({"event": "stopped"}) if json_events else "stopped")
    return 0


def _plural(n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")

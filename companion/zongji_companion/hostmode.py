"""Host mode: the device's SIP switch on this computer, over a real UDP socket (asyncio).

    code = serve(site, "127.0.0.1", 5060, ".zongji-state")      what `zongji run` calls

The shell of ARCHITECTURE principle 1, like aioquic's asyncio shell: the core (zongji.switch)
never sees a socket or a clock. What every shell does around the switch (feed a datagram or the
timer, send what comes back, pass events on, re-arm one timer, save what is dirty) is the
shared pump, zongji.shell.pump, and state is written by zongji.shell.store, as on the device.
This file keeps only what is CPython's own: asyncio, signals, the banner, the socket. now_ms is
time.monotonic() in ms; sw.epoch_ms turns it into wall time for the call records. Log lines
(hostlog.py) carry the branch's local time and its offset, the clock `zongji cdr` prints.

State lives in a folder: registrations.json and cdr.jsonl, read at start (a damaged file: a
warning, then start empty) and written atomically when they change, at most once a second,
and at shutdown. SIGINT / SIGTERM stop it: flush the state, close the socket, print "stopped",
exit 0.

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

from zongji.media.dtmf import Detector
from zongji.media.hub import MediaHub
from zongji.shell.promptfiles import PromptFiles
from zongji.shell.pump import REGISTRATIONS, Pump
from zongji.shell.store import Store
from zongji.switch.switch import Switch
from zongji.text import bare_host, bracket_host

from zongji_companion.hostlog import as_json, describe, hostport, stamp

SAVE_INTERVAL_S = 1.0  # state files are rewritten at most this often
# A PC has room for more than a device: 10 calls/s leave ~1,600 transactions lingering in their
# 32 s absorb timers, and a PC serves hundreds of phones that all register at once after a power
# cut, so the guard's budget of stateless answers is larger too. "device" is the ESP32's own
# sizes (zongji run --limits device).
LIMITS = {
    "host": {
        "max_transactions": 8192,
        "max_calls": 1000,
        "max_nonces": 8192,
        # answers without credentials (switch/budget.py); the guess budget stays the device's
        "budget": {"prefix_burst": 1000, "prefix_rate": 200, "burst": 4000, "rate": 1000},
    },
    "device": {"max_transactions": 64, "max_calls": 32, "budget": {}},
}
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
            why = "is in use: pick another with --sip %s" % hostport(host, free)
        elif e.errno == errno.EADDRNOTAVAIL:
            why = "can't be used: %s is not an address of this computer (try 127.0.0.1, or 0.0.0.0 for all)" % host
        elif e.errno == errno.EACCES:
            why = "needs root (ports below 1024): use e.g. --sip %s" % hostport(host, 5060)
        else:
            why = "can't be used: %s" % (e.strerror or e)
        raise HostModeError("udp %s %s" % (hostport(host, port), why)) from None
    sock.setblocking(False)
    return sock


def open_tcp_socket(host, port):
    """A bound, listening TCP socket (the admin's HTTP); HostModeError when it cannot be."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(8)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            why = "is in use: pick another with --admin %s" % hostport(host, port + 1)
        elif e.errno == errno.EACCES:
            why = "needs root (ports below 1024): use e.g. --admin %s" % hostport(host, 8080)
        else:
            why = "can't be used: %s" % (e.strerror or e)
        raise HostModeError("tcp %s %s" % (hostport(host, port), why)) from None
    return sock


def admin_token(state_dir, token=None):
    """(token, where it came from): --token / ZONGJI_TOKEN, else state/admin-token, made once."""
    import secrets

    if token:
        if len(token) < 16:
            raise HostModeError("an admin token needs at least 16 characters")
        return token, "--token"
    path = os.path.join(state_dir, "admin-token")
    try:
        with open(path, encoding="utf-8") as f:
            old = f.read().strip()
        if len(old) >= 16:
            return old, path
    except OSError:
        pass
    token = secrets.token_hex(16)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(token + "\n")
    except OSError as e:
        raise HostModeError("can't write the admin token to %s: %s" % (path, e.strerror or e)) from None
    return token, path


def _free(host, port):
    if port > 65535:
        return False
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


# ---------------------------------------------------------------- the state folder


def prepare_state(folder):
    """The state folder, with a .gitignore so a site kept in git does not track it."""
    try:
        os.makedirs(folder, exist_ok=True)
        ignore = os.path.join(folder, ".gitignore")
        if not os.path.exists(ignore):
            with open(ignore, "w", encoding="utf-8") as f:
                f.write("# zongji run state: registrations and call records\n*\n")
    except OSError as e:
        raise HostModeError("can't use %s for state: %s" % (folder, e.strerror or e)) from None
    return Store(folder)


def _downtime_ms(folder):
    """How long ago the registrations were written: remaining lifetimes are as of the write."""
    try:
        mtime = os.stat(os.path.join(folder, REGISTRATIONS)).st_mtime
    except OSError:
        return 0
    return max(0, int((time.time() - mtime) * 1000))


# ---------------------------------------------------------------- the shell


class Shell(asyncio.DatagramProtocol):
    """asyncio around the shared pump (zongji.shell.pump): one UDP socket, one timer, saves."""

    def __init__(self, pump):
        self.pump = pump
        self.v6 = False
        self.transport = None
        self._timer = None
        self._timer_at = None
        self._save = None
        self._sending = None  # the address sendto() is sending to, for error_received
        self._failed = []  # addresses a send failed to, for the pump once the send is over
        self.stopping = None  # an asyncio.Event once running: set it to stop

    def connection_made(self, transport):
        self.transport = transport
        self.v6 = transport.get_extra_info("socket").family == socket.AF_INET6

    def send(self, data, addr):
        self._sending = addr  # asyncio reports a failed sendto to error_received, at once
        if self.v6 and ":" not in addr[0]:
            addr = ("::ffff:" + addr[0], addr[1])
        elif addr[0].startswith("["):
            addr = (bare_host(addr[0]), addr[1])
        try:
            self.transport.sendto(data, addr)
        finally:
            self._sending = None

    def datagram_received(self, data, addr):
        now = now_ms()
        self.pump.datagram(data, (self._ip(addr[0]), addr[1]), now)
        self._rearm(now)

    def _ip(self, ip):
        if self.v6 and ip.startswith("::ffff:") and "." in ip:
            return ip[7:]  # an IPv4 phone on a dual-stack socket: the core sees plain IPv4
        return ip

    def error_received(self, exc):
        # a send that failed (no route, unreachable): asyncio reports it here during sendto(),
        # so we know where it went, and the transactions sending there end now. An ICMP error
        # reported later names no peer: those transactions time out as usual
        addr = self._sending
        if addr is not None:
            self._failed.append(addr)

    def _report_failures(self, now):
        while self._failed:
            self.pump.transport_error(self._failed.pop(0), now)

    def _on_timer(self):
        self._timer = self._timer_at = None
        now = now_ms()
        self.pump.timer(now)
        self._rearm(now)

    def _rearm(self, now):
        """Re-arm the one timer for the pump's deadline, and a save when one is due."""
        if self._failed:  # outside the pump's own sending: it may send again
            self._report_failures(now)
        loop = asyncio.get_running_loop()
        deadline = self.pump.deadline
        if deadline != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._timer_at = None
            if deadline is not None:
                self._timer_at = deadline
                self._timer = loop.call_at(loop.time() + max(0, deadline - now) / 1000.0, self._on_timer)
        if self._save is None and self.pump.save_at is not None:
            delay = max(0, self.pump.save_at - now) / 1000.0
            self._save = loop.call_at(loop.time() + delay, self._flush)

    def _flush(self):
        self._save = None
        now = now_ms()
        self.pump.save(now)
        self._rearm(now)

    def start(self):
        self.pump.kick(now_ms())  # the "listening" event, and the timers the switch starts with
        self._rearm(now_ms())

    def close(self):
        for handle in (self._timer, self._save):
            if handle is not None:
                handle.cancel()
        now = now_ms()
        self.pump.save(now, force=True)
        if self.transport is not None:
            self.pump.sw.close(now)  # the provider hears we are gone (Expires: 0), best effort
            for data, addr in self.pump.sw.datagrams_to_send():
                try:
                    self.send(data, addr)
                except OSError:
                    pass
            self.transport.close()


class MediaSocket(asyncio.DatagramProtocol):
    """The media port (RTP of the attendant's calls): datagrams in go to the pump."""

    def __init__(self, shell):
        self.shell = shell
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        now = now_ms()
        self.shell.pump.rtp(data, (self.shell._ip(addr[0]), addr[1]), now)
        self.shell._rearm(now)

    def error_received(self, exc):
        pass  # a phone that hung up: its port is closed; RTP is not retried

    def send(self, data, addr):
        if self.transport is not None:
            if self.shell.v6 and ":" not in addr[0]:
                addr = ("::ffff:" + addr[0], addr[1])
            self.transport.sendto(data, addr)


async def _serve(shell, sock, ready, media_sock=None, admin_app=None, admin=None):
    loop = asyncio.get_running_loop()
    stop = shell.stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - Windows
            pass
    await loop.create_datagram_endpoint(lambda: shell, sock=sock)
    if media_sock is not None:
        await loop.create_datagram_endpoint(lambda: shell.media, sock=media_sock)
    server = None
    if admin_app is not None:
        server = asyncio.create_task(admin_app.start_server(host=admin[0], port=admin[1]))
        await asyncio.sleep(0.05)
        if server.done() and server.exception() is not None:
            raise HostModeError("the admin port %s can't be used: %s" % (hostport(*admin), server.exception()))
    ready()  # only now: a signal from here on stops it cleanly
    shell.start()
    try:
        await stop.wait()
    finally:
        shell.close()
        if server is not None:
            admin_app.shutdown()
            server.cancel()


def _resolve(host, port, warn):
    """The trunk's (ip, port): the core resolves no names."""
    try:
        return (socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0], port)
    except (OSError, UnicodeError) as e:
        warn("can't find the trunk host %s (%s): calls through the trunk will fail" % (host, e))
        return None


def open_media_socket(bind, port, sip_port):
    """The media (RTP) socket: `port`, or with None the SIP port + 2 when free, else any."""
    if port is not None:
        return open_socket(bind, port)
    try:
        return open_socket(bind, sip_port + 2) if sip_port and sip_port + 2 <= 65535 else open_socket(bind, 0)
    except HostModeError:
        return open_socket(bind, 0)


def _seed(state_dir, bundle, prompts_dir, say):
    """With --admin, host mode keeps its site as a device does (shell/sitefile.py): the SITE's
    bundle becomes state/site.zjb (the one before kept as previous) and SITE/prompts are copied
    to state/prompts where they differ; syncs then replace them live."""
    from zongji.shell.sitefile import SiteStore

    files = SiteStore(state_dir, say)
    store = files.store
    if store.read("site.zjb") != bundle:
        if not store.write("site.zjb", bundle, keep=True):
            raise HostModeError("can't write %s/site.zjb: %s" % (state_dir, store.error))
    src = os.path.join(prompts_dir, "prompts") if prompts_dir else None
    if src and os.path.isdir(src):
        for name in sorted(os.listdir(src)):
            if name.endswith(".ulaw"):
                with open(os.path.join(src, name), "rb") as f:
                    data = f.read()
                if store.read("prompts/" + name) != data:
                    store.prepare_folder("prompts")
                    store.write("prompts/" + name, data)
    return files


def serve(
    site, bind, port, state_dir, advertise=None, json_events=False, out=print, warn=None, hint=None, limits=None,
    rtp_port=None, prompts_dir=None, admin=None, token=None, bundle=None,
):  # fmt: skip
    """Run the switch for `site` on udp bind:port until SIGINT/SIGTERM. HostModeError if it
    cannot start. hint(server) -> lines printed under the banner (how to register a phone).
    rtp_port: the attendant's media port (None: port + 2 when free); prompts_dir: the folder
    holding prompts/ (zongji prompts build), usually the site folder. admin: (host, port) of
    the admin protocol's HTTP (zongji sync), with `token` (None: state/admin-token) and the
    site's `bundle` bytes (what a sync would send), which it then keeps in state_dir."""
    warn = warn or (lambda text: print("zongji: warning: " + text, file=sys.stderr, flush=True))
    store = prepare_state(state_dir)
    files = None
    if admin is not None:
        token, token_from = admin_token(state_dir, token)
        files = _seed(state_dir, bundle, prompts_dir, lambda text: None)
        files.site, files.status = site, "loaded"
        prompts_dir = state_dir
        sock = open_tcp_socket(*admin)
        sock.close()
    trunk = site.trunk or {}
    trunk_addr = _resolve(trunk["host"], trunk.get("port") or 5060, warn) if trunk.get("host") else None
    sock = open_socket(bind, port, avoid=(trunk.get("port"),))
    port = sock.getsockname()[1]  # port 0: the one the kernel chose
    try:
        media_sock = open_media_socket(bind, rtp_port, port)
    except BaseException:
        sock.close()
        raise
    media_port = media_sock.getsockname()[1]
    host = advertise_address(bind, advertise)
    switch_host = bracket_host(host)
    limits = dict(limits or LIMITS["host"])
    budget = limits.pop("budget", {})
    prompts = PromptFiles(prompts_dir) if prompts_dir else None
    try:
        hub = MediaHub(host, media_port, random_bytes=os.urandom, prompts=prompts, detector=Detector)
        sw = Switch(site, switch_host, port, os.urandom(32), os.urandom, trunk_addr=trunk_addr, media=hub, **limits)
    except BaseException:
        sock.close()
        media_sock.close()
        raise
    for name, value in budget.items():
        setattr(sw.budget, name, value)
    now = now_ms()
    sw.epoch_ms = int(time.time() * 1000) - now

    def bug(what, e):
        if os.environ.get("ZONGJI_DEBUG"):
            raise e
        warn("internal error on %s: %s: %s (a bug in zongji; ZONGJI_DEBUG=1 shows where)" % (what, type(e).__name__, e))

    def state_warning(text):
        warn("%s/%s" % (state_dir, text))

    pump = Pump(sw, lambda data, addr: shell.send(data, addr), lambda ev: emit(ev, now_ms()), store, bug, state_warning)
    pump.save_interval_ms = int(SAVE_INTERVAL_S * 1000)
    registrations, calls = pump.restore(now, _downtime_ms(state_dir))
    shell = Shell(pump)
    shell.media = MediaSocket(shell)
    pump.send_media = shell.media.send

    running = [site]  # the site in service: a sync replaces it
    started = now_ms()

    class _Host:
        sw = None
        errors = []

        now_ms = staticmethod(now_ms)

        @staticmethod
        def status_extra(now):
            return {
                "board": "host mode",
                "pid": os.getpid(),
                "state": state_dir,
                "uptime_s": (now_ms() - started) // 1000,
            }

    host_shell = _Host()
    host_shell.sw = sw

    def apply(new):
        running[0] = new
        trunk = new.trunk or {}
        addr = _resolve(trunk["host"], trunk.get("port") or 5060, warn) if trunk.get("host") else None
        at = now_ms()
        sw.set_site(new, at, trunk_addr=addr)
        if prompts is not None:
            prompts.forget()
        pump.kick(at)
        shell._rearm(at)
        what = (new.branch.get("name"), len(new.directory), new.version[:8])
        say("%s site %s synced: %d extensions, version %s…" % ((stamp(new),) + what))

    admin_app = None
    if files is not None:
        from zongji.admin.protocol import Admin
        from zongji.shell.admin_http import make_app
        from zongji.shell.adminops import AdminOps

        files.apply = apply
        files.prompts_changed = prompts.forget
        files.log = lambda text: None
        admin_core = Admin(token, AdminOps(files, host_shell))
        admin_app = make_app(admin_core, lambda: int(time.time() * 1000))

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
            line = describe(event, running[0], at)
            if line is not None:
                say(stamp(running[0]) + " " + line)

    def banner():
        where = hostport(host, port)
        name, n = site.branch.get("name"), len(site.directory)
        if json_events:
            info = {"event": "started", "site": name, "version": site.version, "bind": bind, "host": host}
            info.update(port=port, rtp_port=media_port, extensions=n, state=state_dir, registrations=registrations)
            info.update(calls=calls)
            return say(json.dumps(info, ensure_ascii=False))
        say("zongji: %s listening on udp %s (%d extensions, site version %s…)" % (name, where, n, site.version[:8]))
        built = prompts is not None and prompts.has("menu." + (site.attendant.get("main_menu") or "main"))
        say("  the attendant's audio on udp %s%s" % (hostport(host, media_port), "" if built else (
            " (no prompts built: callers hear silence; run `zongji prompts build`)")))  # fmt: skip
        if bind in _WILDCARDS:
            say("  bound to every interface (%s); phones are told %s (change with --advertise)" % (bind or "*", host))
        if admin_app is not None:
            url = "http://%s" % hostport(admin[0], admin[1])
            say("  admin (zongji sync / status / pull / cdr): --device %s, token %s" % (url, token_from))
        for line in hint(where) if hint else ():
            say("  " + line)
        if registrations or calls:
            what = (_plural(registrations, "registration"), _plural(calls, "call record"), state_dir)
            say("restored %s and %s from %s" % what)
        say("Ctrl-C stops it.")

    try:
        asyncio.run(_serve(shell, sock, banner, media_sock, admin_app, admin))
    except KeyboardInterrupt:  # pragma: no cover - where signal handlers are not available
        pump.save(now_ms(), force=True)
    finally:
        sock.close()
        media_sock.close()
    say(json.dumps({"event": "stopped"}) if json_events else "stopped")
    return 0


def _plural(n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")

"""`zongji device ...`: the appliance itself. `device run` boots the firmware on the virtual device."""

import os
import signal
import subprocess
import threading
import time

import click

from zongji_companion.cli import ZongjiError, load_site, main, site_folder
from zongji_companion.cli.run import parse_sip, serve_admin_options

DEFAULT_BOARD = "esp32-wrover"
MAX_RESETS = 5  # resets within RESET_WINDOW_S before we give up booting it again
RESET_WINDOW_S = 60
CONSOLE_TAIL = 256  # bytes of the console kept to see the app's last words
STOP_S = 5  # --serial: the app saved and stopped by then; the REPL it leaves is ended


@main.group("device")
def device():
    """The appliance: the firmware that goes on an ESP32.

    \b
    zongji device run SITE     boot the firmware on this computer (the virtual device)
    zongji device blank ...    a board with MicroPython only, for `zongji flash` to fill

    The virtual device is the very firmware a board runs (firmware/main.py and the zongji
    package), on the real MicroPython unix port with the board's heap; only the hardware the
    unix port lacks (the watchdog, pins, the Wi-Fi / Ethernet interface) is faked, by small
    modules in zongji_companion/vdevice. Try the appliance without one.
    """


@device.command("run")
@click.argument("site", type=click.Path())
@click.option(
    "--board",
    default=DEFAULT_BOARD,
    show_default=True,
    metavar="NAME",
    help="Which board to be: its heap, pins and limits (boards/NAME.json; a path to a .json works too).",
)
@click.option(
    "--sip",
    default="127.0.0.1:5060",
    show_default=True,
    metavar="HOST:PORT",
    help="Where phones reach it (UDP). Loopback only makes sense here: the device reports 127.0.0.1 as its address.",
)
@click.option(
    "--flash",
    type=click.Path(file_okay=False),
    help="The folder that stands in for the board's flash: bundle, config.json, state/ "
    "(default: SITE/.zongji-device/BOARD). Registrations and call records survive a restart there.",
)
@click.option("--heap", type=int, metavar="BYTES", help="Override -X heapsize (default: from the board, see below).")
@click.option(
    "--report",
    type=click.IntRange(min=0),
    metavar="SECONDS",
    help="Print a status line (free heap after a collection, phones, calls, flash writes) this often; "
    "0 never (the firmware's default: 300).",
)
@click.option(
    "--save-interval",
    type=click.IntRange(min=1),
    metavar="SECONDS",
    help="Write changed registrations and call records to flash at most this often "
    "(default here 1, so tests see state soon; a board's default is 10).",
)
@serve_admin_options(
    "as the board does on Wi-Fi", "the one in the flash folder's secrets.json, or a new one written there"
)
@click.option(
    "--serial",
    type=click.Path(dir_okay=False),
    metavar="PATH",
    help="Put the device's UART (its console, the REPL and the serial admin link) on a pty and make "
    "PATH a symlink to the port a host opens, as /dev/ttyUSB0 is for a board: "
    "`zongji sync --device PATH`, `mpremote connect PATH`.",
)
@click.option(
    "--baud",
    type=click.IntRange(min=0),
    default=115200,
    show_default=True,
    metavar="N",
    help="With --serial: the line rate of that port (8N1, N/10 bytes a second); 0: unthrottled.",
)
def device_run(site, board, sip, flash, heap, report, save_interval, admin, token, serial, baud):
    """Boot the device firmware for SITE on this computer, until Ctrl-C.

    \b
    zongji device run shanghai                          an ESP32-WROVER on 127.0.0.1:5060
    zongji device run shanghai --board esp32-devkitc --sip 127.0.0.1:5062
    zongji device run shanghai --flash /tmp/flash       keep the flash somewhere else

    What it does: checks SITE and compiles it into the bundle a sync would send, writes it
    with the board's config.json and main.py into the flash folder, and starts
    `micropython -X heapsize=N main.py` there. The firmware boots as on a board: safe-mode
    pin, the bundle (a bad one rolls back to the previous), the network (a fake interface
    with address 127.0.0.1), then the SIP switch on UDP. Register softphones to it as to
    `zongji run`: user = an extension, password = its secret in the staff CSV.

    The heap is the board's heap_bytes times 1.7 (the unix port is 64-bit; the ratio was
    measured against the 32-bit port, see zongji_companion/vdevice). Boards without PSRAM run
    the core frozen in flash; here it is compiled into the heap, so the firmware's measured
    size is added, and the printout says so. machine.reset() or a watchdog that is not fed
    boots the device again, as a board would. Ctrl-C stops it with its state saved.
    """
    from zongji_companion import boards, hostmode, vdevice

    host, port = parse_sip(sip)
    try:
        spec = boards.load(board)
    except boards.BoardError as e:
        raise ZongjiError(str(e)) from None
    _, data = load_site(site)
    flash = flash or os.path.join(site_folder(site), ".zongji-device", spec["name"])
    try:
        sock = hostmode.open_socket(host, port)  # a clear "in use" now, not a traceback later
        sock.close()
        extra = {}
        if report is not None:
            extra["report_s"] = report
        if save_interval is not None:
            extra["save_interval_s"] = save_interval
        if admin:
            admin_host, admin_port = parse_sip(admin, "--admin")
            extra.update(admin_port=admin_port, admin_bind=admin_host)
            sock = hostmode.open_tcp_socket(admin_host, admin_port)  # in use: say so now
            sock.close()
        prompts = os.path.join(site_folder(site), "prompts")
        done = vdevice.prepare(flash, data, spec, port, host, extra, prompts=prompts, token=token)
        if heap is None:
            heap, notes = vdevice.heap_for(spec)
        else:
            notes = ["heap %d B (--heap)" % heap]
        argv, env = vdevice.command(flash, heap)
    except (hostmode.HostModeError, vdevice.VDeviceError) as e:
        raise ZongjiError(str(e)) from None
    _ignore_file(os.path.dirname(os.path.abspath(flash)))
    click.echo("virtual device %s (%s), flash folder %s" % (spec["name"], spec["image"], flash))
    for line in done + notes:
        click.echo("  " + line)
    if admin:
        where = "http://%s:%d" % (admin_host, admin_port)
        click.echo("  admin: --device %s, token in %s" % (where, os.path.join(flash, "secrets.json")))
    uart = _serial_port(serial, baud) if serial else None
    if uart is not None:
        argv = argv[:-1] + ["-i", argv[-1]]  # a stopped app leaves a REPL, as on a board
        click.echo("  serial: %s -> %s at %s; its console is copied here" % (
            serial, uart.host_name, "%d baud" % baud if baud else "full speed"))  # fmt: skip
    try:
        code = _supervise(argv, env, flash, uart)
    finally:
        if uart is not None:
            uart.close()
    raise SystemExit(code)


@device.command("blank")
@click.option("--board", default=DEFAULT_BOARD, show_default=True, metavar="NAME",
              help="Which board to be: its heap (boards/NAME.json; a path to a .json works too).")  # fmt: skip
@click.option(
    "--serial",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="PATH",
    help="Make PATH the board's USB serial port (a symlink to a pty), as /dev/ttyUSB0 is.",
)
@click.option("--flash", type=click.Path(file_okay=False), required=True, metavar="DIR",
              help="The folder that stands in for the board's filesystem (made if missing; kept).")  # fmt: skip
@click.option("--baud", type=click.IntRange(min=0), default=115200, show_default=True, metavar="N",
              help="The port's line rate (8N1); 0: unthrottled.")  # fmt: skip
@click.option("--heap", type=int, metavar="BYTES", help="Override -X heapsize (default: from the board).")
def device_blank(board, serial, flash, baud, heap):
    """A board that holds MicroPython and nothing else, on a serial port: what `zongji flash`
    (or mpremote) puts the app on. Until Ctrl-C.

    \b
    zongji device blank --serial /tmp/ttyZJ0 --flash /tmp/board
    zongji flash --port /tmp/ttyZJ0 --board esp32-wrover --site shanghai --no-image

    It boots as a freshly flashed board does: MicroPython's REPL on the port, its filesystem
    the folder DIR. Whatever is uploaded there is what runs: after a reset (machine.reset(),
    Ctrl-D, `mpremote reset`) it boots main.py from DIR, importing the zongji package from DIR
    too, not from this checkout. Only what the unix port lacks (machine, network) comes from
    zongji_companion/vdevice, as a board has those built in.
    """
    from zongji_companion import boards, vdevice

    try:
        spec = boards.load(board)
    except boards.BoardError as e:
        raise ZongjiError(str(e)) from None
    try:
        os.makedirs(flash, exist_ok=True)
        vdevice.micropython()
        heap = heap or vdevice.heap_for(dict(spec, frozen=False))[0]
    except OSError as e:
        raise ZongjiError("can't use %s as the flash folder: %s" % (flash, e.strerror or e)) from None
    except vdevice.VDeviceError as e:
        raise ZongjiError(str(e)) from None
    state = "holds main.py" if os.path.exists(os.path.join(flash, "main.py")) else "is empty"
    click.echo(
        "blank board %s (MicroPython only), filesystem %s (it %s), heap %d B" % (spec["name"], flash, state, heap)
    )
    uart = _serial_port(serial, baud)
    click.echo("  serial: %s -> %s at %s" % (serial, uart.host_name, "%d baud" % baud if baud else "full speed"))
    try:
        code = _supervise(None, None, flash, uart, boot=lambda: vdevice.blank_command(flash, heap))
    finally:
        uart.close()
    raise SystemExit(code)


def _app_stopped(uart):
    """Did the app's last console line say it stopped (main.py's "stopped", state saved)?"""
    time.sleep(0.2)  # the pty's last bytes reach the copy
    lines = bytes(uart.console_tail).replace(b"\r", b"").split(b"\n")
    return b"stopped" in [ln.strip() for ln in lines[-4:]]


def _serial_port(path, baud):
    import sys

    from zongji_companion.vdevice.serialpty import SerialPty

    out = sys.stdout.buffer
    tail = bytearray()  # the console's last bytes: did the app say "stopped"? (_supervise)

    def echo(data):
        out.write(data)
        out.flush()
        tail.extend(data)
        del tail[:-CONSOLE_TAIL]

    try:
        uart = SerialPty(path, baud, echo=echo)
    except OSError as e:
        raise ZongjiError("can't make the serial port %s: %s" % (path, e.strerror or e)) from None
    uart.console_tail = tail
    uart.start()
    return uart


def _ignore_file(folder):
    """SITE/.zongji-device/ holds no source: keep it out of a site kept in git."""
    if os.path.basename(folder) != ".zongji-device":
        return
    path = os.path.join(folder, ".gitignore")
    if not os.path.exists(path):
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write("# zongji device run: flash folders of virtual devices\n*\n")
        except OSError:
            pass


def _die_with_parent():
    """preexec_fn of the device: on Linux it is killed when `zongji device run` dies, however
    that dies (SIGKILL included), so no orphan board is left holding its port. It runs in a
    session of its own (signals reach it once, through us), which a killed group does not reach."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux: stop it with Ctrl-C
        pass


def _supervise(argv, env, flash, uart=None, boot=None):
    """Run the device; boot it again after a reset or a watchdog, as a board would. SIGINT and
    SIGTERM reach it once, as a KeyboardInterrupt (Ctrl-C at the REPL): it saves and stops.
    `boot()`, when given, says (argv, env) anew at each boot (a blank board that got main.py)."""
    from zongji_companion import vdevice

    stopping = []
    child = []

    def forward(signum, frame):
        stopping.append(signum)
        if child and child[0].poll() is None:
            child[0].send_signal(signal.SIGINT)
            if uart is not None:  # micropython -i: the stopped app leaves a REPL, which would wait on
                proc = child[0]
                timer = threading.Timer(STOP_S, lambda: proc.poll() is None and proc.terminate())
                timer.daemon = True
                timer.start()

    old = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    resets = []
    try:
        while True:
            if boot is not None:
                argv, env = boot()
            if uart is None:
                proc = subprocess.Popen(argv, cwd=flash, env=env, start_new_session=True, preexec_fn=_die_with_parent)
            else:

                def setup():
                    _die_with_parent()
                    uart.make_controlling()

                fd = uart.device_fd
                proc = subprocess.Popen(argv, cwd=flash, env=env, stdin=fd, stdout=fd, start_new_session=True,
                                        preexec_fn=setup)  # fmt: skip
            child[:] = [proc]
            dog = _Watchdog(proc, os.path.join(flash, "vdevice-wdt"))
            dog.start()
            code = proc.wait()
            dog.stop()
            if stopping:
                ended = (0, -signal.SIGINT) + ((-signal.SIGTERM,) if uart is not None else ())
                if code == 1 and uart is not None and _app_stopped(uart):
                    # The unix port's SIGINT longjmps out of its signal handler; now and then
                    # (about 1 stop in 7 here) that leaves it to abort with "FATAL: uncaught
                    # NLR" as `-i` enters the REPL, after the app saved and said "stopped".
                    # The app's stop was clean: say so, and don't report it as a failure.
                    click.echo("zongji: the app stopped and saved; the unix port then aborted entering its REPL")
                    return 0
                return 0 if code in ended else code
            if dog.fired:
                why = "the watchdog was not fed for %.0f s" % dog.fired
            elif code == vdevice.WDT_EXIT:
                why = "the watchdog fired"
            elif code == vdevice.RESET_EXIT:
                why = "machine.reset()"
            elif uart is not None and code == 0:
                why = "Ctrl-D at its REPL (a soft reset)"
            else:
                return code
            now = time.monotonic()
            resets = [t for t in resets if now - t < RESET_WINDOW_S] + [now]
            if len(resets) > MAX_RESETS:
                what = (len(resets), RESET_WINDOW_S)
                click.echo("zongji: the device reset %d times in %d s: not booting it again" % what)
                return 1
            click.echo("zongji: the device reset (%s): booting again" % why)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


class _Watchdog(threading.Thread):
    """Outside the device, as the ESP32's watchdog is: the fake WDT writes each feed to a file;
    no feed within its timeout (+1 s of slack) and the board is reset (killed, then booted)."""

    def __init__(self, proc, path):
        super().__init__(daemon=True)
        self.proc = proc
        self.path = path
        self.fired = None
        self._halt = threading.Event()
        self._since = time.time()
        try:
            os.remove(path)  # a file from the last boot says nothing of this one
        except OSError:
            pass

    def stop(self):
        self._halt.set()

    def run(self):
        while not self._halt.wait(0.25):
            try:
                st = os.stat(self.path)
                with open(self.path, encoding="ascii") as f:
                    timeout_ms = int(f.read().split()[1])
            except (OSError, ValueError, IndexError):
                continue  # no WDT yet (booting) or the file half written
            late = time.time() - max(st.st_mtime, self._since)
            if late > timeout_ms / 1000.0 + 1.0 and self.proc.poll() is None:
                self.fired = late
                what = (late, timeout_ms)
                click.echo("zongji: watchdog: not fed for %.1f s (timeout %d ms): resetting the board" % what)
                self.proc.kill()
                return

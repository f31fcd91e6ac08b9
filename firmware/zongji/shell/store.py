"""State files written so that a power cut never leaves a torn one (ARCHITECTURE principle 5).

    store = Store("/state")                 a folder (made if missing)
    data = store.read("registrations.json") bytes, or None when there is none
    ok = store.write("cdr.jsonl", data)     temp file, flush (and fsync where there is one),
                                            then rename over the old: True, or False on OSError
    store.write("site.zjb", data, keep=True)   the old file is kept as site.prev.zjb first
    ok = store.append("cdr.jsonl", data)    added at the end, flushed: not atomic (see append)
    store.move("site.zjb", "site.swap.zjb")  a rename (OSError as os.rename); a rollback's steps

littlefs (the ESP32's filesystem) and POSIX both rename atomically, so a reader sees the old
file or the new one, never half of either. With keep=True the old version is renamed aside
first: a crash between the two renames leaves only the previous version, which a loader falls
back to (main.py does). MicroPython and CPython alike; no os.path on MicroPython.

The virtual device's fault tests (tests/device/test_faults.py) stop a write at one of its steps:
with ZONGJI_KILL_AT="NAME N STEP" in the environment, the Nth write of NAME since the start
prints "zongji: store: at STEP of NAME" once STEP (one of STEPS) is done and spins there (this
shared module may not import time) until it is killed (SIGKILL), as a power cut would stop it.
A move counts apart from the writes: "site.zjb 1 moved" stops after the first move of site.zjb.
Only where os.getenv exists (the unix port, CPython): a board has none, and pays one false test
per step.
"""

import os

# MicroPython has neither: flush() is all there is, and rename replaces on littlefs and unix
_fsync = getattr(os, "fsync", None)
_replace = getattr(os, "replace", None) or os.rename
STEPS = ("opened", "written", "flushed", "closed", "set-aside", "renamed")  # of write()
APPEND_STEPS = ("opened", "written", "flushed", "closed")  # of append()
MOVE_STEPS = ("moved",)  # of move()
_getenv = getattr(os, "getenv", None)
_kill_at = (_getenv("ZONGJI_KILL_AT") or "").split() if _getenv is not None else []
_counts = {}  # type: dict[str, int]


def previous(name):
    """'site.zjb' -> 'site.prev.zjb': where write(keep=True) puts the old version."""
    dot = name.rfind(".")
    return name + ".prev" if dot <= 0 else name[:dot] + ".prev" + name[dot:]


class Store:
    def __init__(self, folder):
        self.folder = folder.rstrip("/") or "/"
        self.error = None  # the last OSError, for the shell to tell once
        self.writes = 0  # files written since boot, and their bytes: flash wear, in status
        self.bytes_written = 0

    def path(self, name):
        return self.folder + "/" + name if self.folder != "/" else "/" + name

    def prepare(self):
        """Make the folder; OSError when that cannot be done."""
        try:
            os.stat(self.folder)
        except OSError:
            os.mkdir(self.folder)

    def prepare_folder(self, sub):
        """Make the folder sub inside this one; OSError when that cannot be done."""
        try:
            os.stat(self.path(sub))
        except OSError:
            os.mkdir(self.path(sub))

    def read(self, name):
        try:
            with open(self.path(name), "rb") as f:
                return f.read()
        except OSError:
            if not self.exists(name):  # nothing stored yet (ENOENT: its number differs by port)
                return None
            raise

    def exists(self, name):
        try:
            os.stat(self.path(name))
            return True
        except OSError:
            return False

    def append(self, name, data):
        """Add data at the end of name (made if missing): True, or False on OSError. Not
        atomic: a power cut may leave part of it, so only for files whose reader skips a torn
        last line (call records); flushed (and fsynced) before it returns."""
        try:
            self._put(name, self.path(name), "ab", data)
        except OSError as e:
            self.error = e
            return False
        return self._done(data)

    def move(self, name, to):
        """Rename name to `to` (replacing it); OSError as os.rename raises it."""
        _replace(self.path(name), self.path(to))
        if _kill_at:
            key = "move " + name
            _counts[key] = _counts.get(key, 0) + 1
            _stop(name, "moved", key)

    def write(self, name, data, keep=False):
        final = self.path(name)
        tmp = final + ".tmp"
        try:
            self._put(name, tmp, "wb", data)
            if keep and self.exists(name):
                _replace(final, self.path(previous(name)))
                if _kill_at:
                    _stop(name, "set-aside")
            _replace(tmp, final)
            if _kill_at:
                _stop(name, "renamed")
        except OSError as e:
            self.error = e
            return False
        return self._done(data)

    def _put(self, name, path, mode, data):
        """Open path (mode "wb" or "ab"), write, flush, fsync where there is one, close: the
        steps write() and append() share, each a stop for the fault tests (_stop)."""
        if _kill_at:
            _counts[name] = _counts.get(name, 0) + 1
        with open(path, mode) as f:
            if _kill_at:
                _stop(name, "opened")
            f.write(data)
            if _kill_at:
                _stop(name, "written")
            f.flush()
            if _fsync is not None:
                _fsync(f.fileno())
            if _kill_at:
                _stop(name, "flushed")
        if _kill_at:
            _stop(name, "closed")

    def _done(self, data):
        self.error = None
        self.writes += 1
        self.bytes_written += len(data)
        return True


def _stop(name, step, key=None):
    """The fault tests' hook (ZONGJI_KILL_AT): wait here, after step, to be killed."""
    if len(_kill_at) != 3 or _kill_at[0] != name or _kill_at[2] != step:
        return
    if str(_counts.get(key or name)) != _kill_at[1]:
        return
    print("zongji: store: at %s of %s" % (step, name))
    while True:
        pass

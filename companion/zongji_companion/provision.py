"""Putting the app on a board that runs MicroPython, over its USB serial port, with mpremote.

    info = probe(port)                         what the board's MicroPython says it is
    arch = info.arch                           its mpy-cross -march (sys.implementation._mpy)
    upload(port, files, progress)              {device path: bytes} written, each verified
    reset(port)                                machine.reset(): it boots main.py
    status = wait_status(port, token, timeout) the admin protocol answers over the same port

A freshly flashed board offers only MicroPython's REPL, so this goes through mpremote (the
raw REPL; `resume`, so mpremote does not soft-reset a board whose app it has just stopped: the
stopped app leaves the REPL, and the unix port used by the virtual board has no soft reset).
Once the app runs, the admin protocol (zongji.admin, `zongji sync`) is the way in; flash uses
it to wait until `status` answers.

mpremote is run as its command line (`python -m mpremote`), documented and stable, one session
for the whole upload (commands chained with `+`); its "cp" lines give the progress. Each file
is then checked by size and SHA-256 on the board (hashlib there), so a line fault cannot leave
a damaged file unnoticed.
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time

# sys.implementation._mpy bits 10+ -> mpy-cross -march (MicroPython's MP_NATIVE_ARCH_*)
ARCHS = {1: "x86", 2: "x64", 3: "armv6", 4: "armv6m", 5: "armv7m", 6: "armv7em", 7: "armv7emsp", 8: "armv7emdp",
         9: "xtensa", 10: "xtensawin", 11: "rv32imc", 12: "rv64imc"}  # fmt: skip
TIMEOUT_S = 60  # one mpremote step (probe, reset); the upload scales with its bytes
LINE_BPS = 2500  # what mpremote's raw REPL copies at 115,200 baud, about (for the upload's timeout)


class ProvisionError(Exception):
    """str(e): what went wrong and what to do."""


class Info:
    def __init__(self, mpy, platform, version, machine):
        self.mpy = mpy
        self.arch = ARCHS.get(mpy >> 10)
        self.platform = platform
        self.version = version
        self.machine = machine

    def __repr__(self):
        return "Info(%s, %s, %s, %s)" % (self.platform, self.arch, self.version, self.machine)


def _mpremote(port, args, timeout, on_line=None):
    argv = [sys.executable, "-m", "mpremote", "connect", port, "resume"] + args
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    except OSError as e:  # pragma: no cover - this Python has mpremote (a dependency)
        raise ProvisionError("can't run mpremote: %s" % e) from None
    out = []
    timer = threading.Timer(timeout, proc.kill)  # mpremote can wait forever on a silent port
    timer.daemon = True
    timer.start()
    try:
        for line in proc.stdout:
            out.append(line.rstrip("\n"))
            if on_line is not None:
                on_line(out[-1])
        proc.wait()
    finally:
        timer.cancel()
    if timer.finished.is_set() and proc.returncode < 0:
        raise ProvisionError("the board on %s stopped answering mpremote (%d s): unplug it, plug it in "
                             "again and retry" % (port, timeout))  # fmt: skip
    if proc.returncode != 0:
        tail = " ".join(out[-3:])
        if "could not enter raw repl" in tail or "failed to access" in tail or "no device found" in tail:
            raise ProvisionError("no MicroPython REPL on %s (%s): is MicroPython on the board, and no other "
                                 "program (a serial monitor) holding the port?" % (port, tail[-160:]))  # fmt: skip
        raise ProvisionError("mpremote failed on %s: %s" % (port, tail[-300:]))
    return out


def probe(port, timeout=TIMEOUT_S):
    """The board's MicroPython: its .mpy version and arch, platform, version, machine."""
    code = (
        "import sys\ni = sys.implementation\nv = '.'.join(str(n) for n in i.version[:3])\n"
        "print('ZJ', i._mpy, sys.platform, v, '|', getattr(i, '_machine', ''))"
    )
    for line in _mpremote(port, ["exec", code], timeout):
        if line.startswith("ZJ "):
            words = line.split(" ", 4)
            return Info(int(words[1]), words[2], words[3], words[4].lstrip("| "))
    raise ProvisionError("the board on %s did not say what it is: is it MicroPython?" % port)


_MKDIRS = """import os
for d in %r:
    try:
        os.mkdir(d)
    except OSError:
        pass
"""

_CHECK = """import binascii, hashlib, os
bad = []
for name, size, digest in %r:
    try:
        h = hashlib.sha256()
        with open(name, 'rb') as f:
            while True:
                b = f.read(1024)
                if not b:
                    break
                h.update(b)
        if os.stat(name)[6] != size or binascii.hexlify(h.digest()).decode() != digest:
            bad.append(name)
    except OSError:
        bad.append(name)
print('ZJBAD', ' '.join(bad))
"""


def upload(port, files, progress=None):
    """Write {device path: bytes} onto the board (folders made first), then check each file's
    size and SHA-256 there. progress(done_bytes, total_bytes, name). Raises ProvisionError."""
    names = sorted(files)
    dirs = []
    for name in names:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs.append(d)
    total = sum(len(files[n]) for n in names)
    with tempfile.TemporaryDirectory(prefix="zongji-upload-") as tmp:
        args = ["exec", _MKDIRS % (dirs,)]
        for name in names:
            local = os.path.join(tmp, *name.split("/"))
            os.makedirs(os.path.dirname(local), exist_ok=True)
            with open(local, "wb") as f:
                f.write(files[name])
            args += ["+", "fs", "cp", local, ":" + name]
        done = [0]
        by_local = {os.path.join(tmp, *n.split("/")): n for n in names}

        def seen(line):
            # mpremote prints "cp LOCAL :REMOTE" as it starts each file
            if line.startswith("cp ") and progress is not None:
                local = line[3:].rsplit(" :", 1)[0]
                name = by_local.get(local)
                if name is not None:
                    progress(done[0], total, name)
                    done[0] += len(files[name])

        _mpremote(port, args, TIMEOUT_S + total // LINE_BPS, seen)
    if progress is not None:
        progress(total, total, "")
    want = [(n, len(files[n]), hashlib.sha256(files[n]).hexdigest()) for n in names]
    for line in _mpremote(port, ["exec", _CHECK % (want,)], TIMEOUT_S + total // 20000):
        if line.startswith("ZJBAD"):
            bad = line[5:].split()
            if bad:
                raise ProvisionError("%d file(s) arrived damaged on the board (%s): run the same command "
                                     "again" % (len(bad), ", ".join(bad[:5])))  # fmt: skip
            return total
    raise ProvisionError("the board did not confirm the files it got: run the same command again")


def reset(port):
    """machine.reset(): the board boots main.py. The port may drop as it does: that is fine."""
    try:
        _mpremote(port, ["exec", "import machine\nmachine.reset()"], 15)
    except ProvisionError:
        pass


def wait_status(port, token, timeout=60, poll=1.0):
    """The device's status once the admin protocol answers on `port` (its app is up)."""
    from zongji_companion import devicelink

    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            dev = devicelink.connect(port, token)
            try:
                return dev.status()
            finally:
                dev.close()
        except devicelink.DeviceError as e:
            last = e
            time.sleep(poll)
    raise ProvisionError("the board did not answer `status` within %d s after its reset (%s): open its console "
                         "with `mpremote connect %s` to see what it says" % (timeout, last, port))  # fmt: skip

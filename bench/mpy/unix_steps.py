# Run a bench/mpy step script (see steps.mjs) on the MicroPython unix port, the virtual device's
# interpreter: `micropython [-X heapsize=N] bench/mpy/unix_steps.py SCRIPT [--rom=IMAGE]
# [--firmware=DIR] [--data=DIR] [-- ARG ...]`. The script finds its data files in the global DATA
# (DIR, default /data) and its arguments in ARGS.
#
# This port collects inside a running call, so "next call" markers are plain boundaries here;
# a "repeat" part runs while the global `more` is true, after a gc.collect() each time.
# --rom=IMAGE reads a ROMFS image into one bytearray, the first block of the heap and never
# freed, and mounts it at /rom: the core's bytecode then runs in place, off the rest of the
# heap, as frozen code does (the unix port has no ROM: subtract the image's size from any
# heap size measured with it). Prints what the script prints.
import gc
import os
import sys

argv = sys.argv[1:]
own = argv[: argv.index("--")] if "--" in argv else argv
ARGS = argv[argv.index("--") + 1 :] if "--" in argv else []


def _opt(name, default=""):
    for a in own:
        if a.startswith(name + "="):
            return a[len(name) + 1 :]
    return default


_rom = _opt("--rom")
if _rom:
    import vfs

    ROM = bytearray(os.stat(_rom)[6])
    with open(_rom, "rb") as _f:
        _f.readinto(ROM)
    vfs.mount(vfs.VfsRom(ROM), "/rom")
    sys.path.insert(0, "/rom")
else:
    sys.path.insert(0, _opt("--firmware", "firmware"))
DATA = _opt("--data", "/data")
with open([a for a in own if not a.startswith("--")][0]) as _f:
    _parts = _f.read().split("# --- next call ---\n")
_scope = {"ARGS": ARGS, "DATA": DATA, "__name__": "__main__"}
for _part in _parts:
    if not _part.lstrip().startswith("# --- repeat ---"):
        exec(_part, _scope)
        continue
    _scope["more"] = True
    while _scope["more"]:
        gc.collect()
        exec(_part, _scope)

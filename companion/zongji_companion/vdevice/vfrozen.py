# The virtual device's stand-in for a firmware image with the core frozen in (MicroPython).
#
# A no-PSRAM board runs a MicroPython build with firmware/zongji frozen into flash
# (boards/manifest.py): its bytecode runs in place and only the module, function and class
# objects land on the heap. The unix port has no flash to run from, so `zongji device run` builds
# a ROMFS image of the same package (compiled with mpy-cross) and starts this file instead of
# main.py: the image is read into one bytearray, the first block of the heap and never freed,
# mounted at /rom and put first on sys.path; then main.py runs as a board runs it. The image's
# size is added to -X heapsize, so the rest of the heap is the board's. Compiling the sources
# into the heap instead leaves the compiler's garbage between the bytecode it keeps: a heap in
# pieces no board with a frozen core has.
import os
import sys

import vfs

_path = os.getenv("ZONGJI_ROM")
_rom = bytearray(os.stat(_path)[6])
with open(_path, "rb") as _f:
    _f.readinto(_rom)
vfs.mount(vfs.VfsRom(_rom), "/rom")
sys.path.insert(0, "/rom")
del _path, _f
with open("main.py") as _f:
    _main = _f.read()
del _f
exec(_main, {"__name__": "__main__"})

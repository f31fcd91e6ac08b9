# The same live-heap figures on any MicroPython port: the imported core + shell (bytecode), a
# loaded site, and a Switch over it. Prints one JSON line. Used by bench/heap_ratio.py, which
# runs it on the 32-bit WebAssembly port (as the ESP32 is) and on the 64-bit unix port (the
# virtual device), to scale `-X heapsize`. Each "next call" marker is a new runPython call on
# the wasm port (its collector frees nothing inside a running call); on the unix port the
# markers are plain comments.
import gc
import json
import sys

gc.collect()
base = gc.mem_alloc()
# --- next call ---
from zongji.shell import pump, store  # noqa: E402, F401
from zongji.site import bundle  # noqa: E402
from zongji.switch.switch import Switch  # noqa: E402

# --- next call ---
gc.collect()
code = gc.mem_alloc() - base
# --- next call ---
PATHS = ["/data/site.zjb"] + sys.argv[1:]
f = None
for p in PATHS:
    try:
        f = open(p, "rb")
        break
    except OSError:
        pass
site = bundle.load(f)
f.close()
f = None
# --- next call ---
gc.collect()
loaded = gc.mem_alloc() - base - code
# --- next call ---
sw = Switch(site, "127.0.0.1", 5060, b"k" * 16, lambda n: b"r" * n)
# --- next call ---
gc.collect()
switch = gc.mem_alloc() - base - code - loaded
print(json.dumps({"code_bytes": code, "site_bytes": loaded, "switch_bytes": switch, "extensions": len(site.directory)}))

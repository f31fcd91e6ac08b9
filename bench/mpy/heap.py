# Live heap of the core with a loaded site (MicroPython). Prints one JSON line.
# Each "next call" marker starts a new runPython call, so gc.collect() really frees what the
# call before it left behind (see mpy_run.mjs).
import gc
import json

gc.collect()
base = gc.mem_alloc()
# --- next call ---
from zongji.call import attendant, ringplan  # noqa: E402, F401
from zongji.site import bundle, dialplan  # noqa: E402, F401  (what a device imports)

# --- next call ---
gc.collect()
code = gc.mem_alloc() - base
# --- next call ---
f = open("/data/site500.zjb", "rb")
site = bundle.load(f)
f.close()
f = None
# --- next call ---
gc.collect()
loaded = gc.mem_alloc() - base - code
# --- next call ---
a = attendant.Attendant(site, (2026, 11, 25, 10, 30, 2))
a.start(0)
a.key("2", 100)
# --- next call ---
gc.collect()
call = gc.mem_alloc() - base - code - loaded
print(
    json.dumps(
        {
            "extensions": len(site.directory),
            "code_bytes": code,
            "site_bytes": loaded,
            "call_bytes": call,
            "blob_bytes": site.directory.size_bytes(),
        }
    )
)

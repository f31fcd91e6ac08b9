# Load a site bundle as the device does (bundle.load over the open file), for the smallest
# `-X heapsize` that still loads it (bench/heap_peak.py searches it on the unix port). Prints
# "OK <live bytes of the site>" on success; a MemoryError ends it with a traceback.
import gc

from zongji.call import attendant, ringplan  # noqa: F401
from zongji.site import bundle, checks, dialplan, schema  # noqa: F401  (what a load imports)

gc.collect()
base = gc.mem_alloc()
f = open(DATA + "/" + ARGS[0], "rb")  # noqa: F821  (DATA, ARGS: set by the runner)
site = bundle.load(f)
f.close()
f = None
gc.collect()
print("OK", gc.mem_alloc() - base)

# What a device imports to load a site, alone: for the smallest `-X heapsize` that imports it
# (bench/heap_peak.py --frozen), the floor under load_min.py's figure. Prints "OK <live bytes>".
import gc

from zongji.call import attendant, ringplan  # noqa: F401
from zongji.site import bundle, checks, dialplan, schema  # noqa: F401

gc.collect()
print("OK", gc.mem_alloc())

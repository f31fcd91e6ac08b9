# The heap the core itself takes once imported (module objects, functions, classes; with a ROMFS
# core also its qstr pools and raw code, which a frozen core keeps in flash). Prints one JSON
# line: what loading a site imports, and everything a running switch imports.
import gc
import json

gc.collect()
# --- next call ---
base = gc.mem_alloc()
from zongji.call import attendant, ringplan  # noqa: E402, F401
from zongji.site import bundle, checks, dialplan, schema  # noqa: E402, F401

# --- next call ---
gc.collect()
# --- next call ---
site_call = gc.mem_alloc() - base
from zongji.shell import pump, store  # noqa: E402, F401
from zongji.switch.switch import Switch  # noqa: E402, F401

# --- next call ---
gc.collect()
# --- next call ---
print(json.dumps({"site_call": site_call, "all": gc.mem_alloc() - base}))

# The heap while a site bundle loads (MicroPython), step by step: one line of the bundle, then
# one extension of the checks, per interpreter call (bench/mpy/steps.mjs on the wasm port, or
# bench/mpy/unix_steps.py on the unix port). Prints one JSON line (bytes, beyond the core):
#   live_hw   the most live heap between two steps (after a collection)
#   peak      the most of (live before a step + all a step allocates): what a step can need at
#             once, an upper bound of the peak (the wasm port collects only between steps)
#   by_stage  the same two for each stage: "lines" (hash, parse, pack a row), "checks" (one
#             extension), "site" (the last checks and the Site: dial plan, hours, menus)
# A core without bundle.Loader (before the stepped loader) loads in one step, "load()".
# ARGS: the bundle's file name in DATA.
import gc
import json

gc.collect()
# --- next call ---
base = gc.mem_alloc()
from zongji.call import attendant, ringplan  # noqa: E402, F401
from zongji.site import bundle, checks, dialplan, schema  # noqa: E402, F401  (what a load imports)

# --- next call ---
gc.collect()
# --- next call ---
code = gc.mem_alloc() - base
f = open(DATA + "/" + ARGS[0], "rb")  # noqa: F821  (DATA, ARGS: set by the runner)
stepped = hasattr(bundle, "Loader")
lines = bundle._lines(f) if stepped else None
loader = bundle.Loader() if stepped else None
finishing = None
site = None
stats = {"steps": 0, "live_hw": 0, "peak": 0, "step_most": 0, "by_stage": {}}
# --- next call ---
gc.collect()
# --- next call ---
# --- repeat ---
pre = gc.mem_alloc()
if not stepped:
    stage = "load()"
    site = bundle.load(f)
    more = False
elif finishing is None:
    stage = "lines"
    try:
        loader.feed(next(lines))
    except StopIteration:
        finishing = loader.finishing()
else:
    stage = "checks"
    try:
        next(finishing)
    except StopIteration:
        stage = "site"
        site = loader.result
        more = False
post = gc.mem_alloc()
live = pre - base - code
peak = post - base - code
s = stats["by_stage"].setdefault(stage, [0, 0, 0])
s[0] = max(s[0], live)
s[1] = max(s[1], peak)
s[2] += 1
stats["steps"] += 1
stats["live_hw"] = max(stats["live_hw"], live)
stats["peak"] = max(stats["peak"], peak)
stats["step_most"] = max(stats["step_most"], post - pre)
# --- next call ---
f.close()
f = lines = loader = finishing = None
gc.collect()
# --- next call ---
stats["extensions"] = len(site.directory)
stats["code_bytes"] = code
stats["site_bytes"] = gc.mem_alloc() - base - code
stats["by_stage"] = {k: {"live_hw": v[0], "peak": v[1], "steps": v[2]} for k, v in stats["by_stage"].items()}
print(json.dumps(stats))

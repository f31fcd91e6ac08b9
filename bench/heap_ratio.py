"""The virtual device's heap ratio: the same live-heap figures on the 32-bit WebAssembly port
(as the ESP32 is 32-bit) and on the 64-bit unix port that `zongji device run` uses.

    .venv/bin/python bench/heap_ratio.py [--json]

Runs bench/mpy/device_heap.py (the imported core, a loaded site, a Switch) for the example
site and a 500-staff one, and bench/mpy/sip_heap.py (per registered phone, per answered call)
on both ports, and prints each figure with its unix/wasm ratio. The ratio the virtual device
uses (zongji_companion/vdevice/__init__.py HEAP_RATIO) comes from this table. Needs node and
tests/mpy/node_modules (./tests/run.sh installs them).
"""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(REPO, "firmware"), os.path.join(REPO, "companion"), HERE]

import core_bench  # noqa: E402
from zongji_companion import vdevice  # noqa: E402


def wasm(script, *data):
    out = subprocess.run(
        ["node", os.path.join(HERE, "mpy_run.mjs"), os.path.join(HERE, "mpy", script), *data],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def unix(script, *args, path=()):
    env = dict(os.environ, MICROPYPATH=os.pathsep.join([os.path.join(REPO, "firmware"), *path, ".frozen"]))
    out = subprocess.run(
        [vdevice.micropython(), "-X", "heapsize=64000000", os.path.join(HERE, "mpy", script), *args],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, n in (("the example site + 1 (13 staff)", 1), ("a 500-staff site", 500 - 12)):
            folder = os.path.join(tmp, "s%d" % n)
            data, count = core_bench.make_site(folder, n)
            sub = os.path.join(tmp, "d%d" % n)
            os.makedirs(sub)
            path = os.path.join(sub, "site.zjb")  # mpy_run.mjs copies it to /data/site.zjb
            with open(path, "wb") as f:
                f.write(data)
            w, u = wasm("device_heap.py", path), unix("device_heap.py", path)
            rows.append((label, w["site_bytes"], u["site_bytes"]))
            if n == 1:
                rows.append(("the imported core (bytecode)", w["code_bytes"], u["code_bytes"]))
        core_tests = os.path.join(REPO, "tests", "core")
        helpers = [os.path.join(core_tests, name) for name in ("_phones.py", "_sites.py", "_support.py")]
        w, u = wasm("sip_heap.py", *helpers), unix("sip_heap.py", path=[core_tests])
        rows.insert(0, ("per answered call", w["per_call"], u["per_call"]))
        rows.insert(0, ("per registered phone", w["per_phone"], u["per_phone"]))
    if "--json" in sys.argv:
        print(json.dumps([{"what": r[0], "wasm": r[1], "unix": r[2], "ratio": round(r[2] / r[1], 2)} for r in rows]))
        return
    print("%-32s %12s %12s %7s" % ("", "wasm 32-bit", "unix 64-bit", "ratio"))
    for what, a, b in rows:
        print("%-32s %10d B %10d B %7.2f" % (what, a, b, b / a))
    print("HEAP_RATIO in zongji_companion/vdevice: %.1f" % vdevice.HEAP_RATIO)


if __name__ == "__main__":
    main()

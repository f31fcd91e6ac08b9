"""G.711 speed: samples/s of encode and decode, µ-law and A-law, on the real MicroPython unix
port (.venv/bin/micropython: the plain loops and the viper ones of zongji.media.g711), with
SpanDSP (libspandsp2 via ctypes, tests/spandsp.py, on CPython) as the anchor, in one run.

    python bench/g711_bench.py [--frames 2000] [--json]

A round codes --frames 20 ms frames (160 samples, array('h') in, preallocated buffers out) and
decodes them back; each figure is the median of 5 rounds. SpanDSP runs the same frames, one
ctypes call per frame (the call costs more than the coding) and once more as one call over
65,536 samples. The ESP32 estimate scales the unix port by pystone (bench/mpy/pystone.py on the
same micropython in the same run; an ESP32 does ~1,700 pystones/s): ESP32 samples/s = unix
samples/s x 1,700 / unix pystones/s, and one call's share of a core = 2 x 8,000 samples/s
(encode one way, decode the other): 8,000 / ESP32 encode/s + 8,000 / ESP32 decode/s. Pystone is
bytecode; the viper loops are machine code, for which the scaling is a rough guide only.
"""

import argparse
import ctypes
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MICROPYTHON = REPO / ".venv" / "bin" / "micropython"
ESP32_PYSTONES = 1700
ROUNDS = 5

sys.path[:0] = [str(REPO / "tests"), str(REPO / "firmware")]
import spandsp  # noqa: E402

_MPY = """
import sys, time
sys.path.insert(0, %(fw)r)
from array import array
from zongji.media import g711
fast = g711._v
pcm = array("h", [((i * 2731) %% 65536) - 32768 for i in range(160)])
codes, back = bytearray(160), array("h", bytes(320))
out = {}
for path in ("plain", "viper"):
    g711._v = fast if path == "viper" else None
    if path == "viper" and fast is None:
        continue
    for name, law in (("ulaw", g711.PCMU), ("alaw", g711.PCMA)):
        enc, dec = [], []
        for r in range(%(rounds)d):
            t = time.ticks_us()
            for f in range(%(frames)d):
                g711.encode_into(law, codes, pcm)
            t1 = time.ticks_us()
            for f in range(%(frames)d):
                g711.decode_into(law, back, codes)
            t2 = time.ticks_us()
            enc.append(time.ticks_diff(t1, t))
            dec.append(time.ticks_diff(t2, t1))
        enc.sort()
        dec.sort()
        n = 160 * %(frames)d * 1000000
        out[path + " " + name] = (n // enc[len(enc) // 2], n // dec[len(dec) // 2])
print(repr(out).replace("'", '"').replace("(", "[").replace(")", "]"))
"""


def run_mpy(frames):
    src = _MPY % {"fw": str(REPO / "firmware"), "rounds": ROUNDS, "frames": frames}
    proc = subprocess.run([str(MICROPYTHON), "-c", src], capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise SystemExit("micropython failed: " + proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def pystone():
    proc = subprocess.run([str(MICROPYTHON), str(HERE / "mpy" / "pystone.py"), "50000"], capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])["pystones_per_s"]


def run_spandsp(frames):
    lib = spandsp.load()
    if lib is None:
        return {}
    out = {}
    for name, law in (("ulaw", spandsp.G711_ULAW), ("alaw", spandsp.G711_ALAW)):
        st = lib.g711_init(None, law)
        for label, n, calls in (("frames", 160, frames), ("one call", 65536, max(1, frames * 160 // 65536))):
            amp = (ctypes.c_int16 * n)(*[((i * 2731) % 65536) - 32768 for i in range(n)])
            data, back = (ctypes.c_uint8 * n)(), (ctypes.c_int16 * n)()
            enc, dec = [], []
            for _ in range(ROUNDS):
                t = time.perf_counter()
                for _ in range(calls):
                    lib.g711_encode(st, data, amp, n)
                t1 = time.perf_counter()
                for _ in range(calls):
                    lib.g711_decode(st, back, data, n)
                t2 = time.perf_counter()
                enc.append(t1 - t)
                dec.append(t2 - t1)
            total = n * calls
            out["spandsp %s, %s" % (label, name)] = [round(total / statistics.median(enc)),
                                                     round(total / statistics.median(dec))]  # fmt: skip
        lib.g711_release(st)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2000, help="20 ms frames per round (default 2000)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    ps = pystone()
    mpy = run_mpy(args.frames)
    anchor = run_spandsp(args.frames)
    scale = ps / ESP32_PYSTONES
    rows = []
    for key, (enc, dec) in mpy.items():
        e_enc, e_dec = enc / scale, dec / scale
        rows.append({"what": "micropython " + key, "encode_per_s": enc, "decode_per_s": dec,
                     "esp32_encode_per_s": round(e_enc), "esp32_decode_per_s": round(e_dec),
                     "esp32_core_share_per_call": round(8000 / e_enc + 8000 / e_dec, 4)})  # fmt: skip
    for key, (enc, dec) in anchor.items():
        rows.append({"what": key + " (CPython ctypes)", "encode_per_s": enc, "decode_per_s": dec})
    report = {"unix_pystones_per_s": ps, "esp32_pystones_per_s": ESP32_PYSTONES, "frames": args.frames,
              "rounds": ROUNDS, "rows": rows}  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print("pystone on the unix port: %d/s (ESP32 ~%d/s: x%.1f); medians of %d rounds of %d frames"
          % (ps, ESP32_PYSTONES, scale, ROUNDS, args.frames))  # fmt: skip
    head = ("samples/s", "encode", "decode", "ESP32 encode", "ESP32 decode", "ESP32 core/call")
    print("%-40s %13s %13s %13s %13s %15s" % head)
    for r in rows:
        cells = [r["what"], "{:,}".format(r["encode_per_s"]), "{:,}".format(r["decode_per_s"]), "", "", ""]
        if "esp32_encode_per_s" in r:
            cells[3:] = ["{:,}".format(r["esp32_encode_per_s"]), "{:,}".format(r["esp32_decode_per_s"]),
                         "%.1f %%" % (100 * r["esp32_core_share_per_call"])]  # fmt: skip
        print("%-40s %13s %13s %13s %13s %15s" % tuple(cells))


if __name__ == "__main__":
    main()

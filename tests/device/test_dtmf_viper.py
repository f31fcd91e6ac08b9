"""The DTMF detector's @micropython.viper loop on the real MicroPython unix port: the same
digits, start samples and Goertzel integers as the plain loop, whether fed whole or a frame at
a time, and no heap per frame."""

import json
import subprocess
from pathlib import Path

from zongji_companion import vdevice

REPO = Path(__file__).resolve().parents[2]

CODE = """
import sys, gc, json
sys.path.insert(0, %(fw)r)
sys.path.insert(0, %(core)r)
from array import array
from zongji.media import dtmf
import test_media_dtmf as t
out = {"viper": dtmf.VIPER, "same": [], "st": None, "garbage": -1, "framed": []}
for kw in ({}, {"snr": 15, "twist": -8}, {"offset": 0.02}, {"level": -30, "snr": 18}, {"on": 200}):
    pcm, _ = t.tones(t.ALL, **kw)
    out["same"].append(dtmf.decode(pcm, True) == dtmf.decode(pcm, False))
# the harmonic resonators (negative coefficients) and the frequency gate: a pair with a
# column harmonic, a note and its octave
for parts in ([(707, 7000, 0), (1356, 7000, 1), (2712, 3500, 2)], [(684, 7000, 0), (1368, 3500, 1)]):
    pcm = t.notes(parts)
    out["same"].append(dtmf.decode(pcm, True) == dtmf.decode(pcm, False))
# a frame at a time, as the switch feeds it (160 samples: half-blocks of 51 split across
# calls, so the resonators' state is read back between them)
for kw in ({}, {"twist": -8}):
    pcm, _ = t.tones(t.ALL, **kw)
    got = []
    for viper in (True, False):
        d = dtmf.Detector(viper)
        heard = []
        for i in range(0, len(pcm), 160):
            d.feed(pcm[i : i + 160])
            x = d.next_digit()
            while x:
                heard.append(x)
                x = d.next_digit()
        got.append(heard)
    out["framed"].append(got[0] == got[1] == dtmf.decode(pcm, False))
# the raw resonator state after a loud, odd-length feed: the two loops agree bit for bit
noise = array("h", [(i * 7919) %% 65536 - 32768 for i in range(5000)])
a = dtmf.Detector(True)
b = dtmf.Detector(False)
a.feed(noise, 4999)
b.feed(noise, 4999)
out["st"] = all(list(x) == list(y) for x, y in zip((a._st, a._p, a._w, a._adv), (b._st, b._p, b._w, b._adv)))
pcm, _ = t.tones("5")
d = dtmf.Detector(True)
d.feed(pcm, 160)
gc.collect()
m = gc.mem_alloc()
for _ in range(20):
    d.feed(pcm, 160)
out["garbage"] = gc.mem_alloc() - m
# a loud digit held: 700 + 1350 Hz repeat every 160 samples (a 2, +0.4 %% and +1 %%); once it is
# recognised, the windows that keep it (phase advances, frequency gate) allocate nothing
import math
w1 = 2 * math.pi * 700 / 8000
w2 = 2 * math.pi * 1350 / 8000
held = array("h", [int(16000 * math.sin(w1 * i) + 16000 * math.sin(w2 * i + 1)) for i in range(160)])
d = dtmf.Detector(True)
for _ in range(10):
    d.feed(held)
out["held"] = d.next_digit()
gc.collect()
m = gc.mem_alloc()
for _ in range(50):
    d.feed(held)
out["held_garbage"] = gc.mem_alloc() - m
print(json.dumps(out))
"""


def test_viper_loop_matches_plain_on_the_unix_port():
    code = CODE % {"fw": str(REPO / "firmware"), "core": str(REPO / "tests" / "core")}
    argv = [vdevice.micropython(), "-X", "heapsize=8M", "-c", code]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["viper"], "the unix port should compile the viper loop"
    assert all(got["same"]), got
    assert got["framed"] and all(got["framed"]), "frame-by-frame feeding: %r" % got
    assert got["st"], "plain and viper Goertzel states differ"
    assert got["garbage"] == 0, got
    assert got["held"] and got["held"][0] == "2", got
    assert got["held_garbage"] == 0, got

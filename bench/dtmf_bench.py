"""DTMF: our detector, SpanDSP's dtmf_rx (ctypes) and multimon-ng on the same synthesized
signals, in one run (issue 9, Numbers -> DTMF). Prints a table; --json for the raw figures.

    .venv/bin/python bench/dtmf_bench.py [--talkoff-minutes 30] [--json]

Q.24 points: 16 digits, 40 ms tones / 40 ms pauses, one condition changed at a time from
-10 dBm0 per tone, no twist, no offset (twist = high tone - low tone, dB). Talk-off: espeak-ng
speech (voices, speeds, pitches) and two-voice melodic music (random notes 500-1800 Hz,
harmonics, vibrato), half each. Speed: samples/s on .venv/bin/micropython, plain and viper,
scaled to an ESP32 by bench/mpy/pystone.py run on the same interpreter in this run.
"""

import argparse
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
from array import array
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "firmware"))

import spandsp  # noqa: E402
from zongji.media import dtmf  # noqa: E402

ROWS = (697, 770, 852, 941)
COLS = (1209, 1336, 1477, 1633)
ALL = "123A456B789C*0#D"
PEAK0 = 22823  # 0 dBm0 sine peak (3.14 dBm0 = full scale)
ESP32_PYSTONES = 1700
MPY = str(ROOT / ".venv" / "bin" / "micropython")


def tones(digits, on=320, off=320, level=-10.0, twist=0.0, offset=0.0, snr=None, seed=1):
    rng = random.Random(seed)
    ar = PEAK0 * 10 ** (level / 20)
    ac = ar * 10 ** (twist / 20)
    out = [0.0] * 800
    for ch in digits:
        k = ALL.index(ch)
        wr = 2 * math.pi * ROWS[k // 4] * (1 + offset) / 8000
        wc = 2 * math.pi * COLS[k % 4] * (1 + offset) / 8000
        ph = rng.random() * 6.28
        out += [ar * math.sin(wr * n + ph) + ac * math.sin(wc * n) for n in range(on)] + [0.0] * off
    out += [0.0] * 800
    if snr is not None:
        sigma = math.sqrt((ar * ar + ac * ac) / 2 / 10 ** (snr / 10))
        out = [v + rng.gauss(0, sigma) for v in out]
    return array("h", [max(-32768, min(32767, int(round(v)))) for v in out])


def ours(pcm):
    return "".join(d for d, _ in dtmf.decode(pcm))


def span(pcm):
    return spandsp.dtmf_detect(pcm)


def multimon(pcm):
    sox = ["sox", "-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1", "-"]
    wide = subprocess.run(sox + ["-t", "raw", "-r", "22050", "-"], input=pcm.tobytes(), capture_output=True, check=True)
    mm = subprocess.run(["multimon-ng", "-q", "-a", "DTMF", "-t", "raw", "-"], input=wide.stdout, capture_output=True)
    return "".join(ln.split()[-1] for ln in mm.stdout.decode().splitlines() if ln.startswith("DTMF:"))


DETECTORS = (("ours", ours), ("spandsp", span), ("multimon-ng", multimon))


def score(got, want):
    """Correct digits in order (a false or missing digit counts against)."""
    if not want:
        return len(got)
    return sum(1 for a, b in zip(got, want) if a == b) if len(got) == len(want) else _lcs(got, want)


def _lcs(a, b):
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


ACCEPT = [
    ("offset +1.5 %", {"offset": 0.015}),
    ("offset -1.5 %", {"offset": -0.015}),
    ("twist +4 dB", {"twist": 4}),
    ("twist -8 dB", {"twist": -8}),
    ("level 0 dBm0", {"level": 0}),
    ("level -25 dBm0", {"level": -25}),
    ("40 ms / 40 ms", {}),
    ("noise 15 dB SNR", {"snr": 15}),
    ("all at once: -25 dBm0, -1.5 %, -8 dB, 15 dB SNR", {"level": -25, "offset": -0.015, "twist": -8, "snr": 15}),
]
REJECT = [
    ("offset +3.5 %", {"offset": 0.035}),
    ("offset -3.5 %", {"offset": -0.035}),
    ("tones 23 ms", {"on": 184}),
    ("tones 20 ms", {"on": 160}),
    ("level -55 dBm0", {"level": -55}),
]


def accuracy():
    rows = []
    for kind, points in (("accept", ACCEPT), ("reject", REJECT)):
        for name, kw in points:
            pcm = tones(ALL, **kw)
            want = ALL if kind == "accept" else ""
            rows.append({"kind": kind, "point": name, **{n: score(f(pcm), want) for n, f in DETECTORS}})
    return rows


VOICES = ("en", "en-us", "cmn", "de", "fr", "es", "ru", "ja", "hi", "it", "pt", "ar")
TEXT = (
    "Thank you for calling. Sales press one, support press two, the operator press zero. "
    "Our offices are open Monday to Friday from nine in the morning until six in the evening. "
    "Please hold the line, your call is important to us, and somebody will be with you shortly."
)


def speech(seconds, rng):
    out = array("h")
    with tempfile.TemporaryDirectory() as tmp:
        i = 0
        while len(out) < seconds * 8000:
            v = VOICES[i % len(VOICES)] + rng.choice(("", "+m3", "+f2", "+f4", "+m7"))
            wav = Path(tmp) / "s.wav"
            cmd = ["espeak-ng", "-v", v, "-s", str(rng.randint(110, 220)), "-p", str(rng.randint(10, 90))]
            subprocess.run(cmd + ["-w", str(wav), TEXT], check=True, capture_output=True)
            raw = subprocess.run(
                ["sox", str(wav), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed", "-t", "raw", "-", "norm", "-3"],
                check=True,
                capture_output=True,
            ).stdout
            chunk = array("h")
            chunk.frombytes(raw)
            out.extend(chunk)
            i += 1
    return out[: seconds * 8000]


def music(seconds, rng):
    n = seconds * 8000
    out = [0.0] * n
    for _voice in range(2):
        t = 0
        phase = 0.0
        while t < n:
            f = rng.uniform(500, 1800)
            dur = int(rng.uniform(0.12, 0.6) * 8000)
            vib = rng.uniform(4, 7)
            amp = rng.uniform(2000, 6000)
            for k in range(t, min(n, t + dur)):
                inst = f * (1 + 0.006 * math.sin(2 * math.pi * vib * k / 8000))
                phase += 2 * math.pi * inst / 8000
                env = min(1.0, (k - t) / 200.0, (t + dur - k) / 400.0)
                out[k] += env * amp * (math.sin(phase) + 0.5 * math.sin(2 * phase) + 0.25 * math.sin(3 * phase))
            t += dur
    return array("h", [max(-32768, min(32767, int(v))) for v in out])


def talkoff(minutes):
    rng = random.Random(9)
    half = int(minutes * 30)
    res = {}
    for name, pcm in (("speech", speech(half, rng)), ("music", music(half, rng))):
        res[name] = {"seconds": len(pcm) / 8000, **{n: len(f(pcm)) for n, f in DETECTORS}}
    return res


SPEED = """
import sys, time
sys.path.insert(0, %r)
from array import array
from zongji.media import dtmf
pcm = array("h", [((i * 7919) %% 4000) - 2000 for i in range(8000)])
for v in (False, True):
    runs = []
    for r in range(5):
        d = dtmf.Detector(v)
        t = time.ticks_us()
        for k in range(0, 8000, 160):
            d.feed(pcm[k:k + 160])
        runs.append(time.ticks_diff(time.ticks_us(), t))
    runs.sort()
    print("viper" if v else "plain", 8000 * 1000000 // runs[2])
"""


def speed():
    out = subprocess.run([MPY, "-c", SPEED % str(ROOT / "firmware")], capture_output=True, text=True, check=True)
    rates = {ln.split()[0]: int(ln.split()[1]) for ln in out.stdout.split("\n") if ln.strip()}
    ps = subprocess.run([MPY, str(ROOT / "bench" / "mpy" / "pystone.py")], capture_output=True, text=True, check=True)
    pystones = json.loads(ps.stdout.strip().splitlines()[-1])["pystones_per_s"]
    res = {"pystones_per_s": pystones}
    for k, v in rates.items():
        esp = v * ESP32_PYSTONES / pystones
        res[k] = {"samples_per_s": v, "esp32_samples_per_s": round(esp), "esp32_core_per_line": 8000 / esp}
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--talkoff-minutes", type=float, default=30.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    for tool in ("sox", "multimon-ng", "espeak-ng"):
        if shutil.which(tool) is None:
            sys.exit("dtmf_bench: %s not installed" % tool)
    if spandsp.load() is None:
        sys.exit("dtmf_bench: " + spandsp.MISSING)
    res = {"accuracy": accuracy(), "talkoff": talkoff(a.talkoff_minutes), "speed": speed()}
    if a.json:
        print(json.dumps(res, indent=2))
        return
    print("%-48s %6s %8s %12s" % ("Q.24 point (16 digits)", "ours", "spandsp", "multimon-ng"))
    for r in res["accuracy"]:
        tail = "  (digits detected: goal 0)" if r["kind"] == "reject" else ""
        print("%-48s %6s %8s %12s%s" % (r["kind"] + ": " + r["point"], r["ours"], r["spandsp"], r["multimon-ng"], tail))
    for k, r in res["talkoff"].items():
        print(
            "talk-off %-8s %6.0f s: false digits  ours %d  spandsp %d  multimon-ng %d"
            % (k, r["seconds"], r["ours"], r["spandsp"], r["multimon-ng"])
        )
    s = res["speed"]
    print("micropython pystone: %d/s (ESP32 taken as %d/s)" % (s["pystones_per_s"], ESP32_PYSTONES))
    for k in ("plain", "viper"):
        v = s[k]
        print(
            "speed %-5s %9d samples/s on unix -> ESP32 est. %7d samples/s = %5.0f %% of one core per line"
            % (k, v["samples_per_s"], v["esp32_samples_per_s"], 100 * v["esp32_core_per_line"])
        )


if __name__ == "__main__":
    main()

"""The long run of the core's mutation fuzzer (tests/core/fuzz.py): 10^6 inputs on CPython.

    python bench/fuzz_bench.py [--inputs 1000000] [--chunk 50000] [--seed 1] [--json]

Reports inputs per second (median of chunks), resident memory (RSS from /proc/self/statm)
after the warm-up, in the middle and at the end, each after the timers were drained (so what
is left is what leaks), and every invariant failure the fuzzer saw. This machine is shared and
noisy, so the same run also times a fixed pure-Python workload (the anchor) before and after,
and reports inputs/s per anchor-run/s, which moves less than either alone.
"""

import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(REPO, "tests", "core"), os.path.join(REPO, "firmware")]

import fuzz  # noqa: E402


def rss_kb():
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def anchor_once():
    """A fixed pure-Python workload (string building, dict and list work, integer arithmetic,
    like a small pystone): about 0.1 s; -> seconds."""
    t = time.perf_counter()
    d = {}
    acc = 0
    for i in range(60000):
        k = "k%d" % (i % 997)
        d[k] = d.get(k, 0) + i
        acc = (acc * 31 + len(k)) & 0xFFFFFFFF
        if i % 7 == 0:
            s = [k, str(acc)]
            s.sort()
            acc ^= len("".join(s))
    return time.perf_counter() - t


def anchor(n=7):
    return statistics.median(anchor_once() for _ in range(n))


def main(argv):
    inputs, chunk, seed = 1000000, 50000, 1
    as_json = "--json" in argv
    for i, a in enumerate(argv):
        if a == "--inputs":
            inputs = int(argv[i + 1])
        elif a == "--chunk":
            chunk = int(argv[i + 1])
        elif a == "--seed":
            seed = int(argv[i + 1])
    rss = {"process start": rss_kb()}
    anchor_before = anchor()
    started = time.perf_counter()
    f = fuzz.Fuzzer(seed)
    warm = chunk
    f.run(warm)
    f.drain()
    rss["after warm-up + drain"] = rss_kb()
    heap_base = fuzz.heap()
    rates = []
    done = warm
    middle = inputs // 2
    while done < inputs:
        n = min(chunk, inputs - done)
        t = time.perf_counter()
        f.run(n)
        rates.append(n / (time.perf_counter() - t))
        done += n
        if done >= middle and "middle + drain" not in rss:
            f.drain()
            rss["middle + drain"] = rss_kb()
            heap_middle = fuzz.heap()
    sizes = f.drain()
    rss["end + drain"] = rss_kb()
    heap_end = fuzz.heap()
    elapsed = time.perf_counter() - started
    anchor_after = anchor()
    anchor_s = (anchor_before + anchor_after) / 2
    rate = statistics.median(rates)
    out = {
        "command": "python bench/fuzz_bench.py " + " ".join(argv),
        "inputs": f.inputs,
        "seconds": round(elapsed, 1),
        "inputs_per_s_median": round(rate),
        "inputs_per_s_min_max": [round(min(rates)), round(max(rates))],
        "anchor_s": [round(anchor_before, 4), round(anchor_after, 4)],
        "inputs_per_anchor_run": round(rate * anchor_s, 1),
        "rss_kb": rss,
        "gc_objects": {"after warm-up": heap_base, "middle": heap_middle, "end": heap_end},
        "sizes_at_end": {k: list(v) for k, v in sizes.items()},
        "peaks": f.peaks,
        "max_datagrams_per_input": f.max_out,
        "mutated": f.mutated,
        "peer_answers": f.from_peer,
        "failures": f.keys,
        "python": sys.version.split()[0],
    }
    if as_json:
        print(json.dumps(out, indent=1))
    else:
        for k, v in out.items():
            print("%-26s %s" % (k, v))
        for x in f.failures:
            print("\n== %s (input %d, t=%d ms)\n%s" % (x["what"], x["input"], x["now"], x["traceback"] or ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

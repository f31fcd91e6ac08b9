# Dial-plan lookup time vs directory size. Runs under MicroPython and CPython alike.
# Prints one JSON line: {size: median ns per match()}.
import json

try:
    from time import ticks_diff, ticks_us

    def clock_ns():
        return ticks_us() * 1000

    def diff(a, b):
        return ticks_diff(b // 1000, a // 1000) * 1000
except ImportError:
    from time import perf_counter_ns as clock_ns

    def diff(a, b):
        return b - a


from zongji.site import bundle

try:
    ROOT = DATA_DIR  # noqa: F821  (set by the CPython driver)
except NameError:
    ROOT = "/data"

ROUNDS = 9
REPS = 200  # ~100 ms a round on MicroPython: well above its clock's resolution
results = {}
for size in (10, 100, 1000):
    f = open("%s/site%d.zjb" % (ROOT, size), "rb")
    site = bundle.load(f)
    f.close()
    numbers = list(site.directory.numbers())
    # the same 50 dialed strings at every size: 40 hits spread over the directory, 10 misses
    step = max(1, len(numbers) // 40)
    probes = numbers[::step][:40] + ["%d" % (9900 + i) for i in range(10)]
    match = site.dialplan.match
    times = []
    for _ in range(ROUNDS):
        t0 = clock_ns()
        for _ in range(REPS):
            for p in probes:
                match(p)
        times.append(diff(t0, clock_ns()) / (float(REPS) * len(probes)))
    times.sort()
    results[str(size)] = times[ROUNDS // 2]
print(json.dumps(results))

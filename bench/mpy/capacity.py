# How many registered phones and calls in progress a device's heap holds (MicroPython), step by
# step (bench/mpy/steps.mjs or unix_steps.py): a Switch with the device's table sizes
# (hostmode.LIMITS["device"]: 64 transactions, 32 calls) over a loaded site bundle, driven by the
# core tests' scripted phones (tests/core/_phones.py) on a virtual clock. Prints one JSON line.
#
#   1. KEPT phones register, one a step (they stay, to make calls);
#   2. calls between them, one a step, answered and ACKed, until a 503 (or the heap is full);
#   3. with those calls up, more phones register, one a step, until the heap is full.
# Each step records (phones, calls, live, peak, status): live = what the phones and calls hold
# between steps (after a collection), peak = live before the step + all the step allocates (an
# upper bound of what it needs at once), both beyond `core` (the device's own imports), `site`
# (the loaded bundle) and `switch` (an idle Switch). What the bench itself holds (its helper
# modules, the KEPT phone objects) is measured apart and left out; a phone that registered is
# dropped by the bench (only the switch remembers it).
# ARGS: bundle file name (in DATA), stop (bytes: no step once core + site + switch + live passes
# it), KEPT, the most phones.
import gc
import json
import sys

sys.path.insert(0, DATA)  # noqa: F821  (the helpers come as data files)
gc.collect()
# --- next call ---
base = gc.mem_alloc()
from zongji.call import attendant, ringplan  # noqa: E402, F401
from zongji.site import bundle, checks, schema  # noqa: E402, F401  (what a load imports)
from zongji.switch.switch import Switch  # noqa: E402, F401

# --- next call ---
gc.collect()
# --- next call ---
core = gc.mem_alloc() - base
NAME, STOP, KEPT, MOST = ARGS[0], int(ARGS[1]), int(ARGS[2]), int(ARGS[3])  # noqa: F821
f = open(DATA + "/" + NAME, "rb")  # noqa: F821
site = bundle.load(f)
f.close()
f = None
# --- next call ---
gc.collect()
# --- next call ---
site_bytes = gc.mem_alloc() - base - core
import _phones  # noqa: E402

# extensions 3000.. of the capacity bundle (bench/heap_peak.py): their secrets are known
NUMBERS = [n for n in site.directory.numbers() if n.startswith("3")]


def secret(number):
    return "cap-%s-secret" % number


def addr(k):
    return ("10.0.%d.%d" % (k // 250, k % 250 + 2), 5060 + k // len(NUMBERS))


# --- next call ---
gc.collect()
# --- next call ---
mods = gc.mem_alloc() - base - core - site_bytes  # the bench's helper modules
net = _phones.Net(site, max_transactions=64)  # hostmode.LIMITS["device"]
net.sw.proxy.max_calls = 32
net.advance(10)  # the trunk registration starts and fails quietly (nobody at the provider)
net.events = []
net.lost = []
# --- next call ---
gc.collect()
# --- next call ---
switch_bytes = gc.mem_alloc() - base - core - site_bytes - mods  # an idle Switch (and the Net)
kept = [_phones.Phone(net, NUMBERS[k], addr(k), secret(NUMBERS[k])) for k in range(KEPT)]
for p in kept:
    p.auto["INVITE"] = 200
    p.auto["BYE"] = 200
p = None
phase = 1
phones = calls = 0
done = False
where = []
steps = []
# --- next call ---
gc.collect()


def step():
    global phase, phones, calls, done
    status = 0
    if phase in (1, 3):
        k = phones
        if k < KEPT:
            p = kept[k]
        else:
            p = _phones.Phone(net, NUMBERS[k % len(NUMBERS)], addr(k), secret(NUMBERS[k % len(NUMBERS)]))
        net.phones[p.addr] = p
        try:
            status = p.register(expires=3600).status
        except (AssertionError, IndexError):  # no 401 to answer: refused (503) or dropped
            status = p.got[-1].status if p.got else 0
        p.got = []
        if k >= KEPT:
            del net.phones[p.addr]
        p = None
        if status == 200:
            phones += 1
        else:
            done = True  # a phone refused: the end of the run
        net.advance(2000)  # two REGISTER transactions a phone linger 32 s: 32 of 64 in use
        if phase == 1 and phones == KEPT:
            phase = 2
    else:
        a, b = kept[calls], kept[KEPT // 2 + calls]
        try:
            inv = a.invite(b.number)
            ok = a.last(200)
            status = ok.status if ok is not None else a.got[-1].status
            if ok is not None:
                a.ack_2xx(inv, ok)
        except (AssertionError, IndexError):
            status = a.got[-1].status if a.got else 0
        inv = ok = None
        a.got = []
        b.got = []
        if status == 200:
            calls += 1
        net.advance(10000)  # an answered call holds 4 transactions for 32 s
        if status != 200 or calls >= KEPT // 2:
            phase = 3
    return status


# --- next call ---
fixed = gc.mem_alloc() - base  # everything before the first phone; the bench's phones 'kept'
kept_bytes = fixed - core - site_bytes - mods - switch_bytes
# --- next call ---
# --- repeat ---
pre = gc.mem_alloc() - base - fixed
try:
    status = step()
except MemoryError as e:  # what the heap could not give, for the report
    status = "MemoryError"
    where = [e]
    more = False
net.events = []
net.lost = []
post = gc.mem_alloc() - base - fixed
steps.append((phones, calls, pre, post, status))
if done or core + site_bytes + switch_bytes + pre > STOP or phones >= MOST:
    more = False
# --- next call ---
gc.collect()
# --- next call ---
out = {
    "core": core,
    "site": site_bytes,
    "switch": switch_bytes,
    "bench_modules": mods,
    "bench_phones": kept_bytes,
    "kept": KEPT,
    "transactions_left": len(net.sw.tl),
    "calls_up": len(net.sw.proxy.calls),
    "steps": steps,
}
print(json.dumps(out))
if where:
    sys.print_exception(where[0])

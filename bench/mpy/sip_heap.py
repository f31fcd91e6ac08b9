# Live heap per registered phone and per call in progress, in the Switch (MicroPython).
# Per phone is the marginal cost once the bounded tables (digest nonces, event lists) are full.
# Uses the core tests' scripted phones (tests/core/_phones.py) on a virtual clock. Each
# "next call" marker starts a new runPython call so gc.collect() really frees (mpy_run.mjs).
import gc
import json
import sys

sys.path.insert(0, "/data")
from _phones import Net  # noqa: E402
from _sites import STAFF, build  # noqa: E402

WARM = 70  # fills the bounded tables first (the digest replay table keeps 64 nonces)
PHONES = 40  # measured: what each further phone costs
CALLS = 10
# --- next call ---
extra = [[str(3000 + i), "P%d" % i, "", "secret-%04d-xyz" % i, "", "staff", 0, "", ""] for i in range(WARM + PHONES)]
net = Net(build(rows=STAFF + extra), max_transactions=4096)
# 110 phones of one /24 register in the same virtual instant: more first challenges than a
# device answers at once (switch/budget.py); this measures heap, not the answer budget
net.sw.budget.prefix_burst = net.sw.budget.burst = 1000
phones = [net.phone(str(3000 + i), 6000 + i) for i in range(WARM + PHONES)]
net.advance(10)  # the trunk registration starts and fails quietly (nobody at the provider)
# --- next call ---
gc.collect()
empty = gc.mem_alloc()
# --- next call ---
for p in phones[:WARM]:
    p.register()
net.advance(70000)  # every REGISTER transaction over and gone
for p in phones:
    p.got = []
net.events = []
net.lost = []
# --- next call ---
gc.collect()
base = gc.mem_alloc()
warm = base - empty
# --- next call ---
for p in phones[WARM:]:
    p.register()
net.advance(70000)
for p in phones:
    p.got = []
net.events = []
net.lost = []
# --- next call ---
gc.collect()
registered = gc.mem_alloc() - base
# --- next call ---
for i in range(CALLS):
    callee = phones[CALLS + i]
    callee.auto["INVITE"] = 200
    invite = phones[i].invite(callee.number)
    phones[i].ack_2xx(invite, phones[i].last(200))
net.advance(70000)  # the calls stay up; their transactions are done
for p in phones:
    p.got = []
net.events = []
net.lost = []
invite = None
# --- next call ---
gc.collect()
calls = gc.mem_alloc() - base - registered
print(
    json.dumps(
        {
            "phones": PHONES,
            "per_phone": registered // PHONES,
            "first_phones": WARM,
            "first_phones_bytes": warm,
            "calls": len(net.sw.proxy.calls),
            "per_call": calls // CALLS,
            "transactions_left": len(net.sw.tl),
        }
    )
)

# Where a REGISTER's time goes inside the core, on the MicroPython unix port (no sockets):
# the Switch of a 1000-user bundle fed SIPp-shaped REGISTERs in memory, each step timed alone.
#
#   micropython bench/mpy/register_steps.py FIRMWARE_DIR BUNDLE [N]
#
# Prints one JSON line of microseconds per step (medians of 5 rounds of N): parsing the
# REGISTER, the whole unauthenticated REGISTER (parse, screen, 401 built and serialised), the
# whole authenticated one (parse, digest check, binding, 200, the lingering record), and two
# pieces of the digest work alone: the nonce's HMAC (check() recomputes it) and a challenge.
# Users are 3000.. with the bench's secrets, read from a "number;secret" file beside the bundle (BUNDLE + ".users").
#
# Each step is timed twice: wall time (time.ticks_us, the figures above) and, where Linux has
# /proc/self/schedstat, this process's own CPU time (ns, the first field), printed as the same
# keys under "cpu": on a shared machine the wall figures count the time other processes had the
# core, the CPU figures do not. The CPU figures are what to compare between two runs.
import json
import sys
import time

sys.path.insert(0, sys.argv[1])
from zongji.sip.auth import parse_auth, pick_challenge, respond  # noqa: E402
from zongji.sip.parser import parse  # noqa: E402
from zongji.site import bundle  # noqa: E402
from zongji.switch.switch import Switch  # noqa: E402

N = int(sys.argv[3]) if len(sys.argv) > 3 else 200
with open(sys.argv[2], "rb") as f:
    site = bundle.load(f.read())
users = []
with open(sys.argv[2] + ".users") as f:
    for line in f:
        if ";" in line:
            users.append(line.strip().split(";"))
sw = Switch(site, "127.0.0.1", 5060, secret_key=b"k" * 16, max_transactions=8192, max_nonces=8192)
sw.budget.prefix_burst = sw.budget.burst = 10**6
SRC = ("127.0.0.1", 40000)


def register(i, cseq, auth=None):
    user = users[i % len(users)][0]
    lines = [
        "REGISTER sip:127.0.0.1:5060 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-%d-%d;rport" % (i, cseq),
        "Max-Forwards: 70",
        "From: <sip:%s@127.0.0.1:5060>;tag=%dR%d" % (user, 1000, i),
        "To: <sip:%s@127.0.0.1:5060>" % user,
        "Call-ID: %d-1000@127.0.0.1" % i,
        "CSeq: %d REGISTER" % cseq,
        "Contact: <sip:%s@127.0.0.1:40000;transport=UDP>" % user,
    ]
    if auth:
        lines.append("Authorization: " + auth)
    lines += ["Expires: 3600", "User-Agent: SIPp zongji-integration", "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()


def cpu_ns():
    """This process's CPU time in ns (Linux /proc/self/schedstat), or None."""
    try:
        with open("/proc/self/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


cpu = {}  # step -> [us of CPU per request, one a round]
_marks = []


def start():
    _marks.append((cpu_ns(), time.ticks_us()))


def stop(step, count):
    """Wall us per request since the matching start(); the CPU us go to cpu[step]."""
    c0, t0 = _marks.pop()
    wall = time.ticks_diff(time.ticks_us(), t0) / count
    c1 = cpu_ns()
    if c0 is not None and c1 is not None:
        cpu.setdefault(step, []).append((c1 - c0) / 1000.0 / count)
    return wall


def timed(step, fn, items):
    start()
    for x in items:
        fn(x)
    return stop(step, len(items))


clock = [1000]


def feed(data):
    clock[0] += 1
    sw.receive_datagram(data, SRC, clock[0])
    return sw.datagrams_to_send()


def challenge_of(data):
    """The first challenge a SIPp-like phone answers, read from the 401's bytes (not parsed by
    the switch's parser: the phone is another program)."""
    values = []
    for line in data.decode().split("\r\n"):
        if line[:18].lower() == "www-authenticate: ":
            values.append(line[18:])
    return pick_challenge(values)


rounds = {"parse": [], "challenge_request": [], "authenticated_request": [], "nonce_hmac": [], "challenge_only": []}
base = 0
for _ in range(5):
    first = [register(base + i, 1) for i in range(N)]
    rounds["parse"].append(timed("parse", parse, first))
    # as SIPp sends them (register_auth.xml): each phone's REGISTER, the 401, its answer at once
    checks = []
    t_chal = [0, 0]
    t_auth = [0, 0]
    for i, data in enumerate(first):
        c0, w0 = cpu_ns(), time.ticks_us()
        ans = feed(data)[-1][0]
        c1, w1 = cpu_ns(), time.ticks_us()
        user, secret = users[(base + i) % len(users)]
        value = respond(challenge_of(ans), "REGISTER", "sip:127.0.0.1:5060", user, secret, "c%d" % i, 1)
        second = register(base + i, 2, value)
        checks.append(parse_auth(value))
        c2, w2 = cpu_ns(), time.ticks_us()
        out = feed(second)
        c3, w3 = cpu_ns(), time.ticks_us()
        assert out and out[-1][0].startswith(b"SIP/2.0 200"), out
        t_chal[0] += time.ticks_diff(w1, w0)
        t_auth[0] += time.ticks_diff(w3, w2)
        if c0 is not None:
            t_chal[1] += c1 - c0
            t_auth[1] += c3 - c2
    for step, t in (("challenge_request", t_chal), ("authenticated_request", t_auth)):
        rounds[step].append(t[0] / N)
        if t[1]:
            cpu.setdefault(step, []).append(t[1] / 1000.0 / N)
    start()
    for p in checks:
        sw.auth._tag(p["nonce"][:20])  # the nonce's HMAC, what check() recomputes
    rounds["nonce_hmac"].append(stop("nonce_hmac", N))
    rounds["challenge_only"].append(timed("challenge_only", lambda _: sw.auth.challenge(clock[0]), range(N)))
    base += N


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


out = {k: round(median(v), 1) for k, v in rounds.items()}
if cpu:
    out["cpu"] = {k: round(median(v), 1) for k, v in cpu.items()}
print(json.dumps(out))

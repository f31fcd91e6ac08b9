# Where a call's time goes inside the core, on the MicroPython unix port (no sockets): the
# Switch of a 1000-user bundle, a callee (3999) registered, and SIPp-shaped calls fed in memory
# (tests/integration/sipp/uac_call.xml and uas_answer.xml): INVITE, 407, ACK, INVITE with
# credentials, 100, the INVITE on to the callee, 180, 200, ACK, BYE, 200.
#
#   micropython bench/mpy/call_steps.py FIRMWARE_DIR BUNDLE [N]
#
# Prints one JSON line: microseconds of the switch's own work per call (receive_datagram and
# datagrams_to_send only: what the phones do, parse and build, is not counted), the median of
# 5 rounds of N calls, wall ("call") and this process's CPU ("cpu": /proc/self/schedstat), and
# per step (the challenged INVITE, its ACK, the authenticated INVITE, 180, 200, ACK, BYE, its 200).
# Users are 3000.. with the bench's secrets, read from BUNDLE + ".users" (as register_steps.py).
import gc
import json
import sys
import time

sys.path.insert(0, sys.argv[1])
from zongji.sip.auth import pick_challenge, respond  # noqa: E402
from zongji.sip.parser import parse  # noqa: E402
from zongji.site import bundle  # noqa: E402
from zongji.switch.switch import Switch  # noqa: E402

N = int(sys.argv[3]) if len(sys.argv) > 3 else 100
with open(sys.argv[2], "rb") as f:
    site = bundle.load(f.read())
users = []
with open(sys.argv[2] + ".users") as f:
    for line in f:
        if ";" in line:
            users.append(line.strip().split(";"))
secrets = dict(users)
CALLEE = "3999"
sw = Switch(site, "127.0.0.1", 5060, secret_key=b"k" * 16, max_transactions=8192, max_nonces=8192, max_calls=1000)
b = sw.budget
b.prefix_burst, b.prefix_rate, b.burst, b.rate = 10**6, 10**6, 10**6, 10**6
UAC = ("127.0.0.1", 40000)
UAS = ("127.0.0.1", 41000)
SDP = (
    "v=0\r\no=- %d 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
)


def cpu_ns():
    try:
        with open("/proc/self/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


clock = [1000]
allocated = [0]
spent = {}  # step -> [wall us, cpu ns]


def feed(step, data, addr):
    """The switch's work on one datagram, timed: [(bytes, addr)] it sends."""
    clock[0] += 1
    m0 = gc.mem_alloc()
    c0 = cpu_ns()
    t0 = time.ticks_us()
    sw.receive_datagram(data, addr, clock[0])
    out = sw.datagrams_to_send()
    wall = time.ticks_diff(time.ticks_us(), t0)
    c1 = cpu_ns()
    allocated[0] += gc.mem_alloc() - m0  # meaningful with the collector off (the last round)
    s = spent.setdefault(step, [0, 0])
    s[0] += wall
    if c0 is not None and c1 is not None:
        s[1] += c1 - c0
    return out


def text(lines, body=""):
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def register_callee():
    def reg(cseq, auth=None):
        lines = ["REGISTER sip:127.0.0.1:5060 SIP/2.0",
                 "Via: SIP/2.0/UDP 127.0.0.1:41000;branch=z9hG4bK-callee-%d;rport" % cseq,
                 "Max-Forwards: 70", "From: <sip:3999@127.0.0.1:5060>;tag=callee", "To: <sip:3999@127.0.0.1:5060>",
                 "Call-ID: callee@127.0.0.1", "CSeq: %d REGISTER" % cseq,
                 "Contact: <sip:3999@127.0.0.1:41000;transport=UDP>"]  # fmt: skip
        if auth:
            lines.append("Authorization: " + auth)
        return text(lines + ["Expires: 3600", "Content-Length: 0"])

    out = feed("register", reg(1), UAS)
    chal = pick_challenge(parse(out[-1][0]).get_all("www-authenticate"))
    value = respond(chal, "REGISTER", "sip:127.0.0.1:5060", CALLEE, secrets[CALLEE], "c", 1)
    out = feed("register", reg(2, value), UAS)
    assert out[-1][0].startswith(b"SIP/2.0 200"), out


def invite(user, n, cseq, auth=None):
    body = SDP % n
    lines = ["INVITE sip:3999@127.0.0.1:5060 SIP/2.0",
             "Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-%d-%d;rport" % (n, cseq), "Max-Forwards: 70",
             "From: <sip:%s@127.0.0.1:5060>;tag=%dU%d" % (user, 1000, n), "To: <sip:3999@127.0.0.1:5060>",
             "Call-ID: %d-call@127.0.0.1" % n, "CSeq: %d INVITE" % cseq,
             "Contact: <sip:%s@127.0.0.1:40000;transport=UDP>" % user]  # fmt: skip
    if auth:
        lines.append("Proxy-Authorization: " + auth)
    lines += ["Allow: INVITE, ACK, CANCEL, BYE, OPTIONS", "User-Agent: SIPp zongji-integration",
              "Content-Type: application/sdp", "Content-Length: %d" % len(body)]  # fmt: skip
    return text(lines, body)


def answer(req, status, tag, n):
    # the callee's response: Vias, Record-Route, From, To;tag, Call-ID, CSeq as uas_answer.xml
    lines = ["SIP/2.0 %d %s" % (status, "OK" if status == 200 else "Ringing")]
    lines += ["Via: " + v for v in req.get_all("via")]
    lines += ["Record-Route: " + v for v in req.get_all("record-route")]
    to = req.get("to")
    if status != 200 or req.method != "BYE":
        to = to + ";tag=" + tag
    lines += ["From: " + req.get("from"), "To: " + to, "Call-ID: " + req.get("call-id"), "CSeq: " + req.get("cseq")]
    body = ""
    if req.method == "INVITE":
        lines.append("Contact: <sip:127.0.0.1:41000;transport=UDP>")
        if status == 200:
            body = SDP % n
            lines += ["Allow: INVITE, ACK, CANCEL, BYE, OPTIONS", "Content-Type: application/sdp"]
    lines.append("Content-Length: %d" % len(body))
    return text(lines, body)


def pick(out, addr, start):
    for data, a in out:
        if a == addr and data.startswith(start):
            return parse(data)
    raise AssertionError("no %r to %r in %r" % (start, addr, out))


def call(n):
    user = users[n % (len(users) - 1)][0]
    first = invite(user, n, 1)
    chal = pick(feed("invite_407", first, UAC), UAC, b"SIP/2.0 407")
    ack = text(["ACK sip:3999@127.0.0.1:5060 SIP/2.0", "Via: " + chal.get("via"), "Max-Forwards: 70",
                "From: " + chal.get("from"), "To: " + chal.get("to"), "Call-ID: " + chal.get("call-id"),
                "CSeq: 1 ACK", "Content-Length: 0"])  # fmt: skip
    feed("ack_407", ack, UAC)
    value = respond(pick_challenge(chal.get_all("proxy-authenticate")), "INVITE", "sip:3999@127.0.0.1:5060", user,
                    secrets[user], "c%d" % n, 1)  # fmt: skip
    out = feed("invite", invite(user, n, 2, value), UAC)
    fwd = pick(out, UAS, b"INVITE ")
    tag = "%dS" % n
    feed("180", answer(fwd, 180, tag, n), UAS)
    ok = pick(feed("200", answer(fwd, 200, tag, n), UAS), UAC, b"SIP/2.0 200")
    routes = ok.get_all("record-route")[::-1]
    target = str(ok.contacts()[0].uri)
    common = ["Max-Forwards: 70", "From: " + ok.get("from"), "To: " + ok.get("to"), "Call-ID: " + ok.get("call-id")]
    rr = ["Route: " + r for r in routes]
    via = "Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-%s-%d;rport"
    ack = ["ACK %s SIP/2.0" % target, via % ("ack", n)] + rr + common + ["CSeq: 2 ACK", "Content-Length: 0"]
    feed("ack", text(ack), UAC)
    bye = ["BYE %s SIP/2.0" % target, via % ("bye", n)] + rr + common + ["CSeq: 3 BYE", "Content-Length: 0"]
    out = feed("bye", text(bye), UAC)
    bye = pick(out, UAS, b"BYE ")
    done = feed("bye_200", answer(bye, 200, tag, n), UAS)
    pick(done, UAC, b"SIP/2.0 200")


register_callee()
for i in range(20):  # warm up: first-time costs (imports, tables) out of the figures
    call(i)
rounds = []
steps = {}
n = 20
for _ in range(5):
    spent.clear()
    for _i in range(N):
        call(n)
        n += 1
    rounds.append((sum(s[0] for s in spent.values()) / N, sum(s[1] for s in spent.values()) / 1000.0 / N))
    for k, s in spent.items():
        steps.setdefault(k, []).append(s[1] / 1000.0 / N if s[1] else s[0] / N)


# bytes the switch allocates per call (one more round of N with the collector off): the same in
# every run, unlike a time; what the phones parse and build is not counted
gc.collect()
gc.disable()
allocated[0] = 0
for _i in range(N):
    call(n)
    n += 1
alloc = allocated[0] // N
gc.enable()


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


out = {"call": round(median([r[0] for r in rounds]), 1), "cpu": {"call": round(median([r[1] for r in rounds]), 1)}}
out["alloc_bytes"] = alloc
out["steps_cpu"] = {k: round(median(v), 1) for k, v in steps.items()}
print(json.dumps(out))

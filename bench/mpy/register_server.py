# The core on the real MicroPython unix port, on a UDP socket: what bench/register_bench.py
# drives with SIPp to measure the switch's cost per REGISTER and per call on MicroPython.
#
#   micropython -X heapsize=8m bench/mpy/register_server.py FIRMWARE_DIR BUNDLE PORT LIMITS [SECONDS]
#
# LIMITS: "device" (64 transactions, 8 calls: the device shell's defaults) or "host" (8192
# transactions, 1000 calls, 8192 nonces, larger answer budget: host mode's). IPv4 loopback only.
# It serves until SECONDS pass (default 600) or a datagram "quit" comes, then prints one JSON
# line of counters. Only what a shell must do is here: socket, clock, the shared pump; no
# flash store (the device writes registrations at most every 10 s, which this leaves out).
import json
import os
import select
import socket
import sys
import time

sys.path.insert(0, sys.argv[1])
from zongji.shell.pump import Pump  # noqa: E402
from zongji.site import bundle  # noqa: E402
from zongji.switch.switch import Switch  # noqa: E402

path, port, limits = sys.argv[2], int(sys.argv[3]), sys.argv[4]
seconds = int(sys.argv[5]) if len(sys.argv) > 5 else 600
with open(path, "rb") as f:
    site = bundle.load(f.read())
if limits == "host":
    kw = {"max_transactions": 8192, "max_calls": 1000, "max_nonces": 8192}
else:
    kw = {"max_transactions": 64, "max_calls": 8}
T0 = time.time_ns()


def now_ms():
    return (time.time_ns() - T0) // 1000000


sw = Switch(site, "127.0.0.1", port, secret_key=os.urandom(16), random_bytes=os.urandom, **kw)
if limits == "host":
    b = sw.budget
    b.prefix_burst, b.prefix_rate, b.burst, b.rate = 1000, 200, 4000, 1000
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
_addrs = {}


def to_sockaddr(addr):
    a = _addrs.get(addr)
    if a is None:
        a = _addrs[addr] = socket.getaddrinfo(addr[0], addr[1])[0][-1]
    return a


def from_sockaddr(raw):
    return ("%d.%d.%d.%d" % (raw[4], raw[5], raw[6], raw[7]), (raw[2] << 8) | raw[3])


counts = {"datagrams": 0, "events": 0}


def send(data, addr):
    try:
        sock.sendto(data, to_sockaddr(addr))
    except OSError:
        pump.transport_error(addr, now_ms())


def emit(ev):
    counts["events"] += 1


pump = Pump(sw, send, emit)
poll = select.poll()
poll.register(sock, select.POLLIN)
pump.kick(now_ms())
print("listening", port, flush=True) if hasattr(print, "flush") else print("listening", port)
end = now_ms() + seconds * 1000
while True:
    now = now_ms()
    if now >= end:
        break
    d = pump.deadline
    if d is not None and d <= now:
        pump.timer(now)
        continue
    wait = end - now if d is None else min(d, end) - now
    if not poll.poll(max(0, wait)):
        continue
    data, raw = sock.recvfrom(4096)
    if data == b"quit":
        break
    counts["datagrams"] += 1
    pump.datagram(data, from_sockaddr(raw), now_ms())
sizes = sw.sizes()
counts["transactions"] = sizes["transactions"][0]
counts["lingering"] = sw.tl.lingering()
counts["registrations"] = len(sw.registrar)
counts["counters"] = sw.counters
print(json.dumps(counts))

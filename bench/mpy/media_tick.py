# Where a media tick's time goes, on this MicroPython port (run by bench/media_bench.py --tick):
#
#     micropython media_tick.py SITE.zjb TRUNK_PORT FIRST_PORT N [SECONDS] [TICKS]   (cwd: scratch)
#
# The real device shell (zongji.shell.device.Device: its pump, switch, media hub, sockets and
# asyncio tasks) on 127.0.0.1, with this script as the provider in the same process: it answers
# the device's REGISTER with 200, places N calls to the main number's DID (the attendant answers
# and plays the main menu to each) and ACKs them. Each caller's RTP lands in a bound socket
# nobody reads (the kernel drops it once full; sendto still succeeds).
#
# 1. In situ: the device's own tasks for SECONDS, this process's CPU over them from
#    /proc/self/stat (user, system) and /proc/self/schedstat (ns, exact), with the pump's
#    timer() wrapped and timed (ticks_us): what is the pump's and what the loop around it.
# 2. Alone, TICKS turns each on a virtual clock 20 ms apart (medians, µs): one media tick of the
#    pump with real sendto, the same with sends dropped, the switch's media_to_send, media_due,
#    next_timer (the SIP timers' deadline, which a media tick does not recompute), one sendto,
#    and one turn of asyncio's scheduler (a sleep_ms(0)).
#
# Prints one JSON line.
import asyncio
import gc
import json
import socket
import sys
import time

from zongji.shell import device as devmod
from zongji.site import bundle

DID = "02155550100"
ticks_us = time.ticks_us
ticks_diff = time.ticks_diff


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


def _cpu():
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    with open("/proc/self/schedstat") as f:
        ns = int(f.read().split()[0])
    return int(fields[11]), int(fields[12]), ns


def _headers(data):
    head = data.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    out = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        out.setdefault(k.strip().lower(), []).append(v.strip())
    return head[0], out


class Provider:
    def __init__(self, port, device_port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
        self.sock.setblocking(False)
        self.port = port
        self.dev = socket.getaddrinfo("127.0.0.1", device_port)[0][-1]
        self.device_port = device_port
        self.ok = {}  # call-id -> (first line, headers)
        self.n = 0

    def poll(self):
        while True:
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            first, h = _headers(data)
            if first.startswith("REGISTER") or first.startswith("OPTIONS") or first.startswith("BYE"):
                self._reply(h, addr)
            elif first.startswith("SIP/2.0 200") and "INVITE" in h.get("cseq", [""])[0]:
                self.ok[h["call-id"][0]] = h

    def _reply(self, h, addr):
        lines = ["SIP/2.0 200 OK"] + ["Via: " + v for v in h.get("via", [])]
        for k in ("from", "to", "call-id", "cseq"):
            for v in h.get(k, []):
                tag = ";tag=prov" if k == "to" and "tag=" not in v else ""
                lines.append("%s: %s%s" % (k[0].upper() + k[1:], v, tag))
        lines.append("Content-Length: 0")
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), addr)

    def invite(self, media_port):
        self.n += 1
        n = self.n
        body = (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            "a=fmtp:101 0-15\r\na=ptime:20\r\n" % media_port
        )
        call_id = "tick-%d@127.0.0.1" % n
        lines = [
            "INVITE sip:%s@127.0.0.1:%d SIP/2.0" % (DID, self.device_port),
            "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKtk%d;rport" % (self.port, n),
            "Max-Forwards: 70",
            "From: <sip:1390000%04d@127.0.0.1>;tag=c%d" % (n, n),
            "To: <sip:%s@127.0.0.1>" % DID,
            "Call-ID: " + call_id,
            "CSeq: 1 INVITE",
            "Contact: <sip:caller@127.0.0.1:%d>" % self.port,
            "Content-Type: application/sdp",
            "Content-Length: %d" % len(body),
        ]
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n" + body).encode(), self.dev)
        return call_id

    def ack(self, call_id, h):
        n = int(call_id.split("-")[1].split("@")[0])
        contact = h["contact"][0].split("<", 1)[1].split(">", 1)[0]
        lines = [
            "ACK %s SIP/2.0" % contact,
            "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKta%d;rport" % (self.port, n),
            "Max-Forwards: 70",
            "From: <sip:1390000%04d@127.0.0.1>;tag=c%d" % (n, n),
            "To: " + h["to"][0],
            "Call-ID: " + call_id,
            "CSeq: 1 ACK",
        ]
        lines += ["Route: " + r for r in h.get("record-route", [])]
        lines.append("Content-Length: 0")
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), self.dev)


_next_port = [0]


def _free_port():
    """A bound socket on 127.0.0.1 and its port: the unix port has no getsockname, so ports are
    tried upwards from the one the command line gave."""
    while True:
        _next_port[0] += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(socket.getaddrinfo("127.0.0.1", _next_port[0])[0][-1])
        except OSError:
            s.close()
            continue
        return s, _next_port[0]


async def _setup(dev, prov, n):
    sinks = []
    for _ in range(n):
        s, port = _free_port()
        sinks.append(s)
        call_id = prov.invite(port)
        for _ in range(500):
            await asyncio.sleep_ms(10)
            prov.poll()
            if call_id in prov.ok:
                break
        if call_id not in prov.ok:
            raise SystemExit("no 200 for " + call_id)
        prov.ack(call_id, prov.ok[call_id])
    return sinks


async def _provider_task(prov):
    while True:
        prov.poll()
        await asyncio.sleep_ms(200)


def in_situ(dev, prov, n, seconds):
    pump = dev.pump
    spent = [0, 0]
    inner = pump.timer

    def timed(now_ms):
        t = ticks_us()
        inner(now_ms)
        spent[0] += ticks_diff(ticks_us(), t)
        spent[1] += 1

    pump.timer = timed
    result = {}

    async def main():
        tasks = [asyncio.create_task(j()) for j in (dev.blink, dev.housekeeping, dev.serve, dev.timers)]
        if dev.media is not None:
            tasks.append(asyncio.create_task(dev.serve_media()))
        tasks.append(asyncio.create_task(_provider_task(prov)))
        result["sinks"] = await _setup(dev, prov, n)
        await asyncio.sleep_ms(1000)  # the greetings start
        u0, s0, ns0 = _cpu()
        spent[0] = spent[1] = 0
        t0 = time.ticks_ms()
        await asyncio.sleep_ms(seconds * 1000)
        u1, s1, ns1 = _cpu()
        wall = ticks_diff(time.ticks_ms(), t0) / 1000.0
        result["wall_s"] = wall
        result["user_ticks"] = u1 - u0
        result["system_ticks"] = s1 - s0
        result["cpu_us_per_s"] = (ns1 - ns0) / 1000.0 / wall
        result["pump_timer_us_per_s"] = spent[0] / wall
        result["pump_timer_calls_per_s"] = spent[1] / wall
        for t in tasks:
            t.cancel()

    asyncio.run(main())
    pump.timer = inner
    return result


def alone(dev, n, ticks):
    pump, sw = dev.pump, dev.sw
    now = [dev.clock.now_ms() + 1000]

    def run(fn):
        xs = []
        for _ in range(ticks):
            now[0] += 20
            t = ticks_us()
            fn(now[0])
            xs.append(ticks_diff(ticks_us(), t))
        return _median(xs)

    out = {}
    # SIP timers held off: on the virtual clock the menus would time out and the calls end
    # (the pump runs them only when its _sip_at comes, and recomputes that only after SIP),
    # and so are the attendant's own, which media ticks bring into the deadline (sw.agent_due)
    pump._sip_at = now[0] + 10**9
    sw.agent_due = lambda: None
    gc.collect()
    out["pump_media_tick_us"] = run(pump.timer)
    real = pump.send_media
    pump.send_media = lambda data, addr: None
    out["pump_media_tick_nosend_us"] = run(pump.timer)
    pump.send_media = real
    out["switch_media_to_send_us"] = run(sw.media_to_send)
    out["switch_media_due_us"] = run(lambda now: sw.media_due())
    out["switch_sip_pending_us"] = run(lambda now: sw.sip_pending())
    out["switch_next_timer_us"] = run(lambda now: sw.next_timer())
    out["legs_after"] = len([1 for leg in sw.agent.media.open if sw.agent.media._active(leg)])
    frames = sw.media_to_send(now[0] + 20) or [(b"\x80" * 172, ("127.0.0.1", 9))]
    data, addr = frames[0]
    out["udp_send_us"] = run(lambda now: dev.media.send(data, addr))
    out["clock_now_ms_us"] = run(lambda now: dev.clock.now_ms())
    gc.collect()
    before = gc.mem_alloc()
    pump.timer(now[0] + 20)
    out["pump_media_tick_alloc_B"] = gc.mem_alloc() - before
    return out


class _Virtual:
    """The device's clock and its short sleeps, virtual: each frame's wait is one turn of the
    scheduler (a sleep_ms(0)) and the clock steps to the deadline. The timers task then runs
    its ticks back to back with hot caches, through the real asyncio loop and the real pump."""

    def __init__(self, real, start):
        self.real = real
        self.ms = start
        self.sleeps = 0

    def now_ms(self):
        return self.ms

    def __getattr__(self, name):
        return getattr(self.real, name)


def hot_loop(dev, seconds):
    """µs per tick of the device's timers task on the virtual clock (the real loop and tasks)."""
    real_asyncio = devmod.asyncio
    real_clock = dev.clock
    # on from where alone() left the streams' grid (its virtual clock ran ahead of the real)
    v = _Virtual(real_clock, max(real_clock.now_ms(), dev.sw.media_due() or 0))
    real_sleep = real_asyncio.sleep_ms

    class Shim:
        def __getattr__(self, name):
            return getattr(real_asyncio, name)

        def sleep_ms(self, ms):
            if ms <= devmod.SHORT_WAIT_MS:
                v.ms += ms
                v.sleeps += 1
                return real_sleep(0)
            return real_sleep(ms)

    dev.pump._sip_at = v.ms + 10**9  # SIP timers held off (the menus would time out)
    dev.pump.deadline = v.ms
    devmod.asyncio = Shim()
    dev.clock = v
    out = {}

    async def main():
        task = asyncio.create_task(dev.timers())
        await real_sleep(100)
        walls, cpus, total = [], [], 0
        for _ in range(seconds * 5):  # windows of 200 ms, the median: other processes share the cores
            u0, s0, ns0 = _cpu()
            ms0, t0 = v.ms, ticks_us()
            await real_sleep(200)
            u1, s1, ns1 = _cpu()
            ticks = (v.ms - ms0) / 20.0
            if ticks:
                walls.append(ticks_diff(ticks_us(), t0) / ticks)
                cpus.append((ns1 - ns0) / 1000.0 / ticks)
            total += ticks
        out["hot_tick_us"] = _median(walls)
        out["hot_tick_cpu_us"] = _median(cpus)
        out["hot_ticks"] = total
        task.cancel()
        await real_sleep(0)

    try:
        asyncio.run(main())
    finally:
        devmod.asyncio = real_asyncio
        dev.clock = real_clock
    return out


def scheduler(ticks):
    xs = []

    async def spin():
        t = ticks_us()
        for _ in range(ticks):
            await asyncio.sleep_ms(0)
            u = ticks_us()
            xs.append(ticks_diff(u, t))
            t = u

    asyncio.run(spin())
    return _median(xs)


def main(argv):
    path, trunk_port, n = argv[1], int(argv[2]), int(argv[4])
    _next_port[0] = int(argv[3]) - 1
    seconds = int(argv[5]) if len(argv) > 5 else 5
    ticks = int(argv[6]) if len(argv) > 6 else 1000
    with open(path, "rb") as f:
        site = bundle.load(f)
    s, sip_port = _free_port()
    s.close()
    s, rtp_port = _free_port()
    s.close()
    config = devmod.read_config("no-such-config.json")
    config.update(bind="127.0.0.1", sip_port=sip_port, rtp_port=rtp_port, report_s=0)
    config["limits"] = {"max_transactions": 512, "max_calls": 32, "max_records": 500}  # esp32-wrover
    prov = Provider(trunk_port, sip_port)
    dev = devmod.Device(config, site, out=lambda text: None)
    dev.start()
    out = {"callers": n}
    out.update(in_situ(dev, prov, n, seconds))
    out.pop("sinks", None)
    out["legs"] = len(dev.sw.agent.calls)
    out.update(alone(dev, n, ticks))
    out.update(hot_loop(dev, 2))
    out["asyncio_turn_us"] = scheduler(ticks)
    print(json.dumps(out))


main(sys.argv)

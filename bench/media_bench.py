"""Media on the virtual device (issue 9, Numbers -> Media): RTP send jitter with 1 and with 4
callers in the menus, heap per caller, and the ESP32 estimate of concurrent menu callers.

    python bench/media_bench.py [--seconds 10] [--callers 1,4] [--board esp32-wrover] [--lwip-us 100]
                                [--tick] [--json]

Starts `zongji device run SITE --board BOARD --report 1` (the real firmware on the real
MicroPython unix port, the board's heap) on loopback with the example site, its hours always
open. This script is the provider: it owns the site's [trunk] port, answers the device's
REGISTER with 200, and places N calls to the main number's DID (02155550100), each with its own
RTP socket and an SDP offer of PCMU + telephone-event. The attendant answers each and plays the
main menu (silence frames where no prompt was built: the pacing is the same). For --seconds the
script records the arrival time of every RTP packet per call (time.monotonic_ns, on loopback:
the device's send jitter plus this script's scheduling, an upper bound) and reports the
inter-packet interval p50 / p99 / max in ms over all calls, and packets per call.

--tick also runs bench/mpy/media_tick.py with 0 and each N callers: the device shell in one
MicroPython process with the provider, its CPU exact (/proc/self/schedstat) and the pump's share
of it (ticks_us), and micro-benches (medians) of one media tick and its parts.

Heap per caller: the device's status line (`status: heap N B free ... after collect`, every 1 s)
before the calls and while they are up, (free before - free during) / N, median over the lines.
CPU: the micropython process's own CPU time over the calls' seconds, less the same idle, split
(/proc/PID/stat) into user time (the interpreter: bytecode and the C it calls) and system time
(the kernel: sendto, recvfrom, poll, the sleeps), and its voluntary context switches (one per
sleep: wakes of the loop). The ESP32 estimate per caller: user time times the pystone ratio
(this port's pystone 1.2 in the same run, bench/mpy/pystone.py, over the ESP32's ~1,700/s), plus
--lwip-us (default LWIP_US, an assumption) per RTP packet sent, for the kernel's part: on a
board that is lwIP in C, which the pystone ratio does not describe. The callers that fit in 70 %
of a core follow; the old all-by-pystone figure is printed too. Only 127.0.0.1 is used; every
wait is bounded.
"""

import json
import os
import re
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
import sipharness as sh  # noqa: E402

ESP32_PYSTONES = 1700
# An assumption, not a measurement: what one RTP send costs an ESP32 outside the interpreter
# (lwip_sendto, the tcpip thread's mailbox, the Wi-Fi/Ethernet driver), in µs at 240 MHz.
LWIP_US = 100
DID = "02155550100"


def _sdp(port):
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            "a=fmtp:101 0-15\r\na=ptime:20\r\n" % port)  # fmt: skip


class Provider:
    """The trunk's far end, by hand: 200 to every REGISTER, INVITEs to the DID."""

    def __init__(self, port, device):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.port = port
        self.device = device
        self.n = 0

    def _headers(self, data):
        head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")
        out = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            out.setdefault(k.strip().lower(), []).append(v.strip())
        return head[0], out

    def pump(self, until, want=None):
        """Answer REGISTERs until `until` (monotonic s) or a response matching want(first, h)."""
        while time.monotonic() < until:
            r, _, _ = select.select([self.sock], [], [], max(0.0, min(0.1, until - time.monotonic())))
            if not r:
                continue
            data, addr = self.sock.recvfrom(65535)
            first, h = self._headers(data)
            if first.startswith("REGISTER") or first.startswith("OPTIONS"):
                self._reply(h, addr, "200 OK")
            elif first.startswith("BYE"):
                self._reply(h, addr, "200 OK")
            elif want is not None and want(first, h):
                return first, h, data
        return None

    def _reply(self, h, addr, status):
        lines = ["SIP/2.0 " + status] + ["Via: " + v for v in h.get("via", [])]
        for k in ("from", "to", "call-id", "cseq"):
            for v in h.get(k, []):
                lines.append("%s: %s" % (k.title(), v + (";tag=prov" if k == "to" and "tag=" not in v else "")))
        lines.append("Content-Length: 0")
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), addr)

    def call(self, media_port):
        self.n += 1
        call_id = "media-%d@127.0.0.1" % self.n
        body = _sdp(media_port)
        lines = [
            "INVITE sip:%s@127.0.0.1:%d SIP/2.0" % (DID, self.device),
            "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKmb%d;rport" % (self.port, self.n),
            "Max-Forwards: 70",
            "From: <sip:1390000%04d@127.0.0.1>;tag=c%d" % (self.n, self.n),
            "To: <sip:%s@127.0.0.1>" % DID,
            "Call-ID: " + call_id,
            "CSeq: 1 INVITE",
            "Contact: <sip:caller@127.0.0.1:%d>" % self.port,
            "Content-Type: application/sdp",
            "Content-Length: %d" % len(body),
        ]
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n" + body).encode(), ("127.0.0.1", self.device))
        got = self.pump(
            time.monotonic() + 10, lambda f, h: f.startswith("SIP/2.0 200") and h.get("call-id") == [call_id]
        )
        if got is None:
            raise SystemExit("call %d: no 200 from the device's attendant" % self.n)
        first, h, data = got
        contact = re.search(r"<([^>]+)>", h["contact"][0]).group(1)
        routes = h.get("record-route", [])
        ack = (
            [
                "ACK %s SIP/2.0" % contact,
                "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKack%d;rport" % (self.port, self.n),
                "Max-Forwards: 70",
                "From: <sip:1390000%04d@127.0.0.1>;tag=c%d" % (self.n, self.n),
                "To: " + h["to"][0],
                "Call-ID: " + call_id,
                "CSeq: 1 ACK",
            ]
            + ["Route: " + r for r in routes]
            + ["Content-Length: 0"]
        )
        self.sock.sendto(("\r\n".join(ack) + "\r\n\r\n").encode(), ("127.0.0.1", self.device))
        return call_id, contact, h["to"][0], routes


def _cpu_s(pid):
    """(user s, system s, voluntary context switches, CPU s) of pid and its children so far: user
    is the interpreter (bytecode, and the C it calls), system the kernel (sendto, recvfrom, poll,
    the sleeps), both sampled at clock ticks (10 ms: a split, not exact); a voluntary switch is
    one sleep of the process, so one wake of its loop; CPU from /proc/PID/schedstat, exact (ns)."""
    user = system = wakes = ns = 0
    for p in [pid] + _children(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
            with open("/proc/%d/schedstat" % p) as f:
                ns += int(f.read().split()[0])
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        wakes += int(line.split()[1])
        except OSError:
            pass
    tck = float(os.sysconf("SC_CLK_TCK"))
    return user / tck, system / tck, wakes, ns / 1e9


def _rates(pid, before, t0):
    """Shares of a core (user, system, all) and wakes per second since before = _cpu_s() at t0."""
    now, dt = _cpu_s(pid), time.monotonic() - t0
    return tuple((now[i] - before[i]) / dt for i in range(4))


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        return []
    return kids + [k for c in kids for k in _children(c)]


def _heap(dev, since):
    lines = dev.lines()[since:]
    return [int(m.group(1)) for m in (re.search(r"status: heap (\d+) B free", ln) for ln in lines) if m]


def pystone():
    out = subprocess.run([str(REPO / ".venv" / "bin" / "micropython"), str(HERE / "mpy" / "pystone.py"), "20000"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])["pystones_per_s"]


def _site(path):
    """The example site, its hours always open, its trunk on a free port."""
    site = sh.Site.create(path, trunk_port=sh.free_udp_port())
    text = site.toml.read_text(encoding="utf-8")
    head, sep, rest = text.partition("\n[hours]\n")
    body, nxt, tail = rest.partition("\n[")
    site.toml.write_text(head + sep + 'open = ["mon-sun 00:00-24:00"]\nclosed = "menu:closed"\n' + nxt + tail)
    site.check()
    return site


def tick(n, seconds, board, work):
    """bench/mpy/media_tick.py with n callers: where a media tick's time goes (its JSON)."""
    site = _site(work / ("tick-site-%d" % n))
    out = subprocess.run(sh.zongji_argv("bundle", site.path, "-o", work / ("tick-%d.zjb" % n)),
                         capture_output=True, text=True, timeout=120, env=sh.zongji_env())  # fmt: skip
    if out.returncode:
        raise SystemExit("zongji bundle failed: " + out.stderr)
    with open(REPO / "boards" / (board + ".json")) as f:
        heap = int(json.load(f)["heap_bytes"] * 1.7)  # vdevice.HEAP_RATIO: the 64-bit port's objects
    scratch = work / ("tick-%d" % n)
    scratch.mkdir()
    vdev = REPO / "companion" / "zongji_companion" / "vdevice"
    env = dict(os.environ, MICROPYPATH=os.pathsep.join((str(REPO / "firmware"), str(vdev), ".frozen")))
    mpy = str(REPO / ".venv" / "bin" / "micropython")
    argv = [mpy, "-X", "heapsize=%d" % heap, str(HERE / "mpy" / "media_tick.py"),
            str(work / ("tick-%d.zjb" % n)), str(site.trunk()["port"]), str(sh.free_udp_port() + 7), str(n),
            str(seconds), "1000"]  # fmt: skip
    out = subprocess.run(argv, cwd=scratch, env=env, capture_output=True, text=True, timeout=seconds + 120)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SystemExit("media_tick.py failed: " + (out.stderr or out.stdout)[-800:]) from None


def run(n, seconds, board, work):
    site = _site(work / ("site-%d" % n))
    port = sh.free_udp_port()
    prov = Provider(site.trunk()["port"], port)
    argv = sh.zongji_argv("device", "run", site.path, "--board", board, "--sip", "127.0.0.1:%d" % port,
                          "--flash", work / ("flash-%d" % n), "--report", "1")  # fmt: skip
    dev = sh.Proc("device-%d" % n, argv, work, env=sh.zongji_env())
    try:
        dev.wait_for(sh.HostMode.LISTENING, 90)
        prov.pump(time.monotonic() + 3)
        mark = len(dev.lines())
        cpu0, t0 = _cpu_s(dev.p.pid), time.monotonic()
        prov.pump(time.monotonic() + 3)
        idle = _rates(dev.p.pid, cpu0, t0)
        idle_heap = _heap(dev, mark)
        socks = []
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            prov.call(s.getsockname()[1])
        prov.pump(time.monotonic() + 1)  # settle: the greetings start
        mark = len(dev.lines())
        arrivals = {s: [] for s in socks}
        cpu0, t0 = _cpu_s(dev.p.pid), time.monotonic()
        end = t0 + seconds
        while time.monotonic() < end:
            r, _, _ = select.select(socks + [prov.sock], [], [], 0.05)
            now = time.monotonic_ns()
            for s in r:
                if s is prov.sock:
                    prov.pump(time.monotonic())  # answer what the device sends (REGISTER)
                    continue
                s.recvfrom(2048)
                arrivals[s].append(now)
        busy = _rates(dev.p.pid, cpu0, t0)
        during = _heap(dev, mark)
        gaps = []
        for s in socks:
            a = arrivals[s]
            gaps += [(a[i + 1] - a[i]) / 1e6 for i in range(len(a) - 1)]
        gaps.sort()
        pct = lambda q: round(gaps[min(len(gaps) - 1, int(q * len(gaps)))], 2) if gaps else None  # noqa: E731
        per_caller_heap = None
        if idle_heap and during:
            per_caller_heap = int((statistics.median(idle_heap) - statistics.median(during)) / n)
        return {
            "callers": n,
            "packets_per_call": [len(arrivals[s]) for s in socks],
            "interval_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": round(gaps[-1], 2) if gaps else None},
            "heap_per_caller_B": per_caller_heap,
            "cpu_core_share": round(busy[3] - idle[3], 4),
            "user_core_share": round(busy[0] - idle[0], 4),
            "system_core_share": round(busy[1] - idle[1], 4),
            "idle_cpu_core_share": round(idle[3], 4),
            "user_fraction": round(busy[0] / (busy[0] + busy[1]), 3) if busy[0] + busy[1] else None,
            "wakes_per_s": round(busy[2], 1),
            "idle_wakes_per_s": round(idle[2], 1),
            "packets_per_s": round(sum(len(arrivals[s]) for s in socks) / float(seconds), 1),
        }
    finally:
        dev.stop()
        prov.sock.close()


def _r(x):
    return None if x is None else round(x, 1)


def main(argv):
    seconds, callers, board, as_json, lwip_us, ticks = 10, (1, 4), "esp32-wrover", False, LWIP_US, False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--seconds":
            seconds = int(argv[i + 1])
            i += 1
        elif a == "--callers":
            callers = tuple(int(x) for x in argv[i + 1].split(","))
            i += 1
        elif a == "--board":
            board = argv[i + 1]
            i += 1
        elif a == "--json":
            as_json = True
        elif a == "--tick":
            ticks = True
        elif a == "--lwip-us":
            lwip_us = float(argv[i + 1])
            i += 1
        else:
            raise SystemExit(__doc__)
        i += 1
    ps = pystone()
    scale = ps / float(ESP32_PYSTONES)
    results = []
    with tempfile.TemporaryDirectory(prefix="zongji-media-bench-") as tmp:
        for n in callers:
            r = run(n, seconds, board, Path(tmp))
            # the ESP32: the interpreter's share by the pystone ratio; the kernel's share does
            # not scale so (lwIP in C there), it is counted as lwip_us per packet sent instead
            # the kernel's part of the exact CPU by the sampled user/system split of the window
            per_user = r["cpu_core_share"] * (r["user_fraction"] or 1.0) / n
            per_net = r["packets_per_s"] / n * lwip_us / 1e6
            per = per_user * scale + per_net
            r["esp32_user_share_per_caller"] = round(per_user * scale, 4)
            r["esp32_net_share_per_caller"] = round(per_net, 4)
            r["esp32_core_share_per_caller"] = round(per, 4)
            r["esp32_callers_at_70pct"] = int(0.7 / per) if per > 0 else None
            r["esp32_share_per_caller_all_by_pystone"] = round(r["cpu_core_share"] / n * scale, 4)
            results.append(r)
            if not as_json:
                print("%d caller(s): interval p50 %s ms, p99 %s ms, max %s ms; packets/call %s; heap/caller %s B; "
                      "cpu %.2f %% of a core over idle (user %.2f %%, system %.2f %%; idle %.2f %%); "
                      "wakes %.0f/s (idle %.0f/s); ESP32 %.1f %% per caller (interpreter %.1f %% + lwIP %.2f %%) "
                      "-> %s callers at 70 %% (all by pystone: %.1f %%)" % (
                          n, r["interval_ms"]["p50"], r["interval_ms"]["p99"], r["interval_ms"]["max"],
                          r["packets_per_call"], r["heap_per_caller_B"], 100 * r["cpu_core_share"],
                          100 * r["user_core_share"], 100 * r["system_core_share"],
                          100 * r["idle_cpu_core_share"], r["wakes_per_s"], r["idle_wakes_per_s"],
                          100 * per, 100 * per_user * scale, 100 * per_net, r["esp32_callers_at_70pct"],
                          100 * r["esp32_share_per_caller_all_by_pystone"]), flush=True)  # fmt: skip
        if ticks:
            hot = {}
            for n in (0,) + callers:
                t = tick(n, min(seconds, 10), board, Path(tmp))
                results.append({"tick": t})
                if n and t.get("hot_tick_us") is not None:  # None: the calls ended before it ran
                    hot[n] = (t["hot_tick_us"], t["udp_send_us"])
                if not as_json:
                    per_s = t["cpu_us_per_s"]
                    print("media_tick %d caller(s), in situ: %.0f µs of CPU a second (%.0f µs per 20 ms tick; "
                          "user/system ticks %d/%d), of which pump.timer %.0f µs a second (%.0f calls); hot loop "
                          "(the real timers task, virtual clock): %s µs per tick; alone (medians, µs): pump media "
                          "tick %s (sends dropped %s), media_to_send %s, media_due %s, next_timer %s, one sendto "
                          "%s, asyncio turn %s, heap per tick %s B" % (
                              n, per_s, per_s / 50, t["user_ticks"], t["system_ticks"], t["pump_timer_us_per_s"],
                              t["pump_timer_calls_per_s"], _r(t.get("hot_tick_us")), t["pump_media_tick_us"],
                              t["pump_media_tick_nosend_us"], t["switch_media_to_send_us"], t["switch_media_due_us"],
                              t["switch_next_timer_us"], t["udp_send_us"], t["asyncio_turn_us"],
                              t["pump_media_tick_alloc_B"]), flush=True)  # fmt: skip
            if len(hot) > 1:
                lo, hi = min(hot), max(hot)
                # the interpreter's µs per tick: the hot tick less its sendto calls (kernel and
                # wrapper, counted as lwIP instead); a fixed part per wake plus one per caller
                interp = {n: hot[n][0] - n * hot[n][1] for n in hot}
                slope = max(0.0, (interp[hi] - interp[lo]) / (hi - lo))
                fixed = interp[lo] - lo * slope
                share = lambda us: us * scale * 50 / 1e6  # noqa: E731
                per_caller = share(slope) + 50 * lwip_us / 1e6
                fit = int((0.7 - share(fixed)) / per_caller) if per_caller > 0 else None
                hot_model = {"fixed_us": round(fixed, 1), "per_caller_us": round(slope, 1),
                             "esp32_fixed_share": round(share(fixed), 4),
                             "esp32_share_per_caller": round(per_caller, 4), "esp32_callers_at_70pct": fit}  # fmt: skip
                results.append({"hot_model": hot_model})
                if not as_json:
                    print("hot model: %.1f µs per tick + %.1f µs per caller (the interpreter, sendto taken out) -> "
                          "ESP32 %.1f %% fixed + %.1f %% per caller (with lwIP %g µs a packet) -> %s callers at "
                          "70 %%" % (fixed, slope, 100 * share(fixed), 100 * per_caller, lwip_us, fit))  # fmt: skip
    out = {"seconds": seconds, "board": board, "unix_pystones_per_s": ps, "scale": round(scale, 1),
           "lwip_us_per_packet": lwip_us, "runs": results}  # fmt: skip
    if as_json:
        print(json.dumps(out))
    else:
        print("pystone %d/s on the unix port: ESP32 scale x%.1f" % (ps, scale))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

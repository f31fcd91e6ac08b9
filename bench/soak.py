"""Soak (issue 8, Numbers -> Soak): 10,000 calls through the virtual device, 0 failed, and the
free heap after gc.collect() flat from start to end.

    python bench/soak.py [--calls 10000] [--rate 10] [--report 5] [--board esp32-wrover] [--json]

Starts `zongji device run SITE --board esp32-wrover --report 5` (the real firmware on the real
MicroPython unix port, the board's heap and tables) on loopback with a site of 100 generated
extensions (3000-3099, digest MD5: SIPp answers MD5 only). A SIPp UAS (tests/integration/sipp/
uas_answer.xml) registers as 3099 and answers every call; 20 callers (3000-3019) register from
the UAC's own port (register_auth.xml), so the device knows that source and neither the answer
budget nor the guard's credential budget holds it back (what phones on a LAN would be); then
SIPp places --calls calls at --rate a second (uac_call.xml: INVITE, 407, ACK, INVITE with
credentials, 180, 200, ACK, BYE, 200; no pause), callers in turn. A call fails if either SIPp
end counts it failed, or the device's call record says other than "answered".

The heap: every status line the device prints (`zongji: status: heap N B free ... after
collect`, every --report s) is put against the number of calls the device had recorded by then
(its "call A -> B: answered" lines before it). Reported: first / last / min / max free heap over
the run (from the last status line before the first call to the last one before the device
stops), and the drift: a least-squares line of free heap over calls, in B per 1,000 calls. The
same again from 64 s of calls on ("steady"): answered calls' transactions linger 32 s
(RFC 6026, Timers L/M/J) up to the table's cap, so the heap falls from the idle figure to a
working level in the first half minute; that fall is load, not a leak. "steady" also gives the
floor (min) of its first and last tenth, as the heap saws between collections of records. Bounded:
SIPp's -timeout is the run's expected length + 120 s; every wait has a limit. Needs sipp (Debian
sip-tester).
"""

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO / "tests" / "integration"), str(REPO / "firmware"), str(REPO / "companion")]

import sipharness as sh  # noqa: E402

FIRST = 3000
USERS = 100
CALLERS = 20
CALLEE = str(FIRST + USERS - 1)
STATUS = re.compile(r"status: heap (\d+) B free of (\d+) B after collect, (\d+) phones, (\d+) calls, (\d+) transact")
WARM_S = 64  # twice the 32 s for which answered calls' transactions linger (Timers L, M, J)
CALL = re.compile(r"\bcall (\S+) -> (\S+): (\S+)")


def fit(xs, ys):
    """Least-squares slope of ys over xs (0 if xs do not vary)."""
    return fit_se(xs, ys)[0]


def fit_se(xs, ys):
    """(slope, its standard error) of a least-squares line of ys over xs."""
    n = len(xs)
    if n < 2:
        return 0.0, None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if not sxx:
        return 0.0, None
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    if n < 3:
        return b, None
    rss = sum((y - my - b * (x - mx)) ** 2 for x, y in zip(xs, ys))
    return b, (rss / (n - 2) / sxx) ** 0.5


def steady(points, warm):
    """The same figures from `warm` calls on (the lingering records filled), with the floor
    (min) of the first and the last tenth of those calls."""
    pts = [p for p in points if p[0] >= warm]
    if len(pts) < 2:
        return None
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    span = xs[-1] - xs[0]
    b, se = fit_se(xs, ys)
    head = [y for x, y in zip(xs, ys) if x <= xs[0] + span / 10]
    tail = [y for x, y in zip(xs, ys) if x >= xs[-1] - span / 10]
    return {
        "from_call": xs[0],
        "status_lines": len(pts),
        "first": ys[0],
        "last": ys[-1],
        "min": min(ys),
        "max": max(ys),
        "mean": round(sum(ys) / len(ys)),
        "drift_b_per_1000_calls": round(1000 * b, 1),
        "drift_se_b_per_1000_calls": round(1000 * se, 1) if se is not None else None,
        "min_first_tenth": min(head),
        "min_last_tenth": min(tail),
    }


def heap_series(lines):
    """[(calls recorded so far, free heap B, transactions, calls up)] per status line, and the
    device's call outcomes {outcome: count}."""
    series, outcomes, done = [], {}, 0
    for line in lines:
        m = CALL.search(line)
        if m and "zongji:" not in line:
            outcomes[m.group(3).rstrip(",:")] = outcomes.get(m.group(3).rstrip(",:"), 0) + 1
            done += 1
            continue
        m = STATUS.search(line)
        if m:
            series.append((done, int(m.group(1)), int(m.group(5)), int(m.group(4))))
    return series, outcomes


def run(calls, rate, report_s, board, log):
    work = Path(tempfile.mkdtemp(prefix="zongji-soak-"))
    site = sh.Site.create(work / "site", trunk_port=sh.free_udp_port())
    site.set_digest(["MD5"])  # SIPp answers only the first challenge, and only MD5
    site.add_extensions(FIRST, USERS, cls="staff", prefix="soak")
    site.check()
    secrets = site.secrets()
    callers = [(str(n), secrets[str(n)]) for n in range(FIRST, FIRST + CALLERS)]
    callers_csv = sh.write_injection(work / "callers.csv", callers)
    callee_csv = sh.write_injection(work / "callee.csv", [(CALLEE, secrets[CALLEE])])
    port = sh.free_udp_port()
    addr = (sh.LOOPBACK, port)
    argv = sh.zongji_argv("device", "run", site.path, "--board", board, "--sip", "%s:%d" % addr,
                          "--flash", work / "flash", "--report", report_s)  # fmt: skip
    dev = sh.Proc("device", argv, work, env=sh.zongji_env())
    uas = None
    report = {"board": board, "calls": calls, "rate": rate, "report_s": report_s, "work": str(work)}
    try:
        dev.wait_for(sh.VirtualDevice.LISTENING, 90)
        uas_port, uac_port = sh.free_udp_port(), sh.free_udp_port()
        res = sh.sipp("register_auth.xml", addr, work, "callee", calls=1, inf=callee_csv, local_port=uas_port,
                      behaviors="all,-bye")  # fmt: skip
        assert res.returncode == 0 and res.successful == 1, res.explain()
        # the callers from the UAC's port, 4 a second: within the answer budget (40, then 10/s)
        res = sh.sipp("register_auth.xml", addr, work, "callers", calls=CALLERS, rate=4, inf=callers_csv,
                      local_port=uac_port, behaviors="all,-bye", timeout_s=60)  # fmt: skip
        assert res.returncode == 0 and res.successful == CALLERS, res.explain()
        dev.wait_count(r"registered ", CALLERS + 1, 30)
        seconds = calls / float(rate)
        limit = max(50, int(rate * 5))
        uas = sh.SippServer.start("uas_answer.xml", work, "uas", calls, uas_port, timeout_s=int(seconds) + 180,
                                  recv_timeout_ms=10000, limit=limit)  # fmt: skip
        log("soak: %d calls at %d/s (~%.0f s) on %s, device log %s" % (calls, rate, seconds, board, dev.log_path))
        t = time.monotonic()
        res = sh.sipp("uac_call.xml", addr, work, "uac", calls=calls, rate=rate, inf=callers_csv, service=CALLEE,
                      local_port=uac_port, duration_ms=0, timeout_s=int(seconds) + 120, recv_timeout_ms=5000,
                      limit=limit, extra=["-rp", "1000"])  # fmt: skip
        wall = time.monotonic() - t
        answered = uas.finish(30)
        uas = None
        # the last calls' records and one more status line
        dev.wait_count(STATUS.pattern, len(dev.matches(STATUS.pattern)) + 2, 4 * int(report_s) + 30)
        series, outcomes = heap_series(dev.lines())
        report.update({
            "wall_s": round(wall, 1),
            "uac": {"successful": res.successful, "failed": res.failed, "retransmissions": res.retransmissions,
                    "timeouts": res.timeouts, "returncode": res.returncode},
            "uas": {"successful": answered.successful, "failed": answered.failed},
            "device_outcomes": outcomes,
        })  # fmt: skip
    finally:
        if uas is not None:
            uas.stop()
        dev.stop(grace=15)
    answered_dev = outcomes.get("answered", 0)
    failed = max(calls - res.successful, res.failed, calls - answered.successful, calls - answered_dev)
    report["failed"] = failed
    # from the first status line after the first call to the last one
    run_points = [p for p in series if p[0] > 0]
    if series and run_points and series.index(run_points[0]) > 0:
        run_points.insert(0, series[series.index(run_points[0]) - 1])  # the last before any call
    xs, ys = [p[0] for p in run_points], [p[1] for p in run_points]
    warm = int(rate * WARM_S)
    report["heap"] = {
        "status_lines": len(run_points),
        "idle_before": series[0][1] if series else None,
        "first": ys[0] if ys else None,
        "last": ys[-1] if ys else None,
        "min": min(ys) if ys else None,
        "max": max(ys) if ys else None,
        "drift_b_per_1000_calls": round(1000 * fit(xs, ys), 1),
        "last_minus_first": ys[-1] - ys[0] if ys else None,
        "steady": steady(run_points, warm),
        "max_transactions_seen": max((p[2] for p in series), default=None),
        "max_calls_up_seen": max((p[3] for p in series), default=None),
    }
    report["series"] = run_points
    return report


def main(argv):
    calls, rate, report_s, board, as_json = 10000, 10, 5, "esp32-wrover", False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--calls", "--rate", "--report", "--board"):
            v = argv[i + 1]
            if a == "--calls":
                calls = int(v)
            elif a == "--rate":
                rate = int(v)
            elif a == "--report":
                report_s = int(v)
            else:
                board = v
            i += 1
        elif a == "--json":
            as_json = True
        else:
            raise SystemExit(__doc__)
        i += 1

    def log(text):
        print(text, file=sys.stderr if as_json else sys.stdout, flush=True)

    r = run(calls, rate, report_s, board, log)
    if as_json:
        print(json.dumps(r, indent=2))
        return 1 if r["failed"] else 0
    h = r["heap"]
    log("%d calls at %d/s in %.1f s: %d failed (UAC %s, UAS %s, device %s)" % (
        calls, rate, r["wall_s"], r["failed"], r["uac"], r["uas"], r["device_outcomes"]))  # fmt: skip
    log("free heap after collect (%d status lines): first %d, last %d, min %d, max %d B; drift %.1f B per 1,000 "
        "calls (last - first %d B)" % (h["status_lines"], h["first"], h["last"], h["min"], h["max"],
                                       h["drift_b_per_1000_calls"], h["last_minus_first"]))  # fmt: skip
    st = h["steady"]
    if st:
        log("from call %d on (%d status lines): first %d, last %d, min %d, max %d, mean %d B; drift %.1f B per "
            "1,000 calls (standard error %s); floor of the first tenth %d, of the last %d B" % (
                st["from_call"], st["status_lines"], st["first"], st["last"], st["min"], st["max"], st["mean"],
                st["drift_b_per_1000_calls"], st["drift_se_b_per_1000_calls"], st["min_first_tenth"],
                st["min_last_tenth"]))  # fmt: skip
    return 1 if r["failed"] else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))

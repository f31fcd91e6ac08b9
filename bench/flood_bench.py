"""Flood benchmark: host mode under a 500/s unauthenticated flood, while registered phones call.

    .venv/bin/python bench/flood_bench.py [--seconds 30 | --minutes 10] [--rate 500]
                                          [--only one,rotating] [--limits host,device]
                                          [--write bench/FLOOD_RESULTS.md] [--json]

For each of 4 runs (a flood from one address, and from 200 rotating addresses in 127.66.0.0/16;
each with host mode's own tables and with `--limits device`, the ESP32's) it starts a fresh
`zongji run` on loopback, its [trunk] pointing at a fake provider (tests/integration/attack.py:
REGISTER -> 200, everything else counted), registers two scripted phones (202 and 203, real
digest auth) and then:

  1. anchor: the phones call each other for --anchor seconds with no flood (same run, same
     process: the reference for the latency ratio);
  2. flood: --rate unauthenticated requests a second (REGISTER, OPTIONS and INVITE in turn,
     to existing and random extensions, each a new Call-ID), sent at that fixed rate whatever
     the switch answers, for --seconds (or --minutes), while the phones keep calling.

The phones call every second (host tables) or every 3 s (device tables: an answered call
keeps four transactions for 32 s each, so 64 transactions cannot carry a call a second even
with no flood; --period overrides). Every 4th call the caller also registers again.

Reported per run: the phones' success rate (calls and registrations) and call-setup latency
(INVITE -> 407 -> INVITE -> 2xx, median and p95) during the flood and in the anchor, with
the ratio; the resident memory (VmRSS of the host-mode process, /proc/PID/status) at the
start, middle and end of the flood; what the flood got back; and what reached the provider
(must be 0). Only loopback addresses are used.
"""

import argparse
import datetime
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

from attack import (  # noqa: E402
    FakeProvider,
    Phone,
    PhoneLoop,
    Swarm,
    addresses,
    pace,
    rss_kb,
    success_rate,
    token,
    unauth_request,
)
from sipharness import HostMode, Site, free_udp_port  # noqa: E402

KNOWN = [str(n) for n in range(200, 212)]
METHODS = ("REGISTER", "OPTIONS", "INVITE")


def run_one(workdir, sources, limits, seconds, rate, anchor_s, period):
    """One host mode, anchor then flood: a dict of figures."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    prov = FakeProvider(free_udp_port(), workdir)
    hm = None
    closers = [prov.stop]
    try:
        site = Site.create(workdir / "site", trunk_port=prov.port)
        hm = HostMode.start(
            site, free_udp_port(), workdir / "state", workdir, limits=None if limits == "host" else limits
        )
        closers.append(hm.stop)
        hm.wait_for(r"\btrunk registered\b", 15)
        a = Phone("202", site.secret("202"), "127.0.10.203", hm.addr)
        b = Phone("203", site.secret("203"), "127.0.10.204", hm.addr)
        closers += [a.close, b.close]
        for p in (a, b):
            out = p.register()
            if not out.ok:
                raise RuntimeError("phone %s could not register: %s" % (p.number, out))
        loop = PhoneLoop(a, b, period=period).start()
        closers.append(loop.stop)
        time.sleep(anchor_s)
        loop.mark("flood")

        swarm = Swarm(addresses(sources), hm.addr)
        closers.append(swarm.close)
        rss = {"start": rss_kb(hm.pid)}
        samples = [rss["start"]]
        t0 = time.monotonic()
        count = int(seconds * rate)

        def send(i):
            method = METHODS[i % len(METHODS)]
            user = KNOWN[i % len(KNOWN)] if i % 2 else "%d" % (5000 + i % 4000)
            src = i % sources
            swarm.send(
                src, unauth_request(method, user, swarm.addrs[src], hm.addr, i, call_id="f%d-%s" % (i, token(3)))
            )
            if i % rate == 0:  # once a second
                samples.append(rss_kb(hm.pid))
                if "middle" not in rss and time.monotonic() - t0 >= seconds / 2.0:
                    rss["middle"] = samples[-1]

        sent, took = pace(count, rate, send, max_seconds=seconds * 1.5 + 5)
        rss["end"] = rss_kb(hm.pid)
        loop.mark("after")
        time.sleep(2.0)
        loop.stop()
        anchor = loop.summary(until="flood")
        during = loop.summary(since="flood", until="after")
        after = loop.summary(since="after")
        return {
            "sources": sources,
            "limits": limits,
            "seconds": round(took, 1),
            "rate": rate,
            "sent": sent,
            "answered": swarm.received,
            "answers": dict(sorted(swarm.status_lines.items(), key=lambda kv: -kv[1])),
            "period": period,
            "anchor": _figures(anchor),
            "during": _figures(during),
            "after": _figures(after),
            "ratio": (during["median_ms"] / anchor["median_ms"])
            if during["median_ms"] and anchor["median_ms"]
            else None,
            "rss_kb": {
                "start": rss["start"],
                "middle": rss.get("middle"),
                "end": rss["end"],
                "max": max([v for v in samples if v] or [0]),
            },
            "provider": len(prov.reached()) + len(prov.responses()),
            "problems": hm.problems(),
            "exited": None if hm.running() else "exit %s; last output: %s" % (hm.p.returncode, hm.tail(15)),
        }
    finally:
        for close in reversed(closers):
            try:
                close()
            except Exception as e:  # noqa: BLE001 - clean up the rest anyway
                print("cleanup: %s" % e, file=sys.stderr)


def _figures(s):
    return {
        "calls": s["calls"],
        "calls_ok": s["calls_ok"],
        "registers": s["registers"],
        "registers_ok": s["registers_ok"],
        "success": round(success_rate(s), 1),
        "median_ms": None if s["median_ms"] is None else round(s["median_ms"], 1),
        "p95_ms": None if s["p95_ms"] is None else round(s["p95_ms"], 1),
        "failures": sorted(set(s["failures"]))[:5],
    }


def _ms(v):
    return "-" if v is None else "%.1f" % v


def table(results):
    lines = [
        "| flood | tables | sent / answered | phone success (calls, regs) | setup median / p95 ms | "
        "anchor median ms (success) | ratio | RSS start / middle / end MB | at provider |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        d, a = r["during"], r["anchor"]
        rss = r["rss_kb"]
        lines.append(
            "| %s | %s | %d / %d in %.0f s | **%.1f %%** (%d/%d, %d/%d) | %s / %s | %s (%.0f %%) | %s "
            "| %s / %s / %s | %d |"
            % (
                "1 address" if r["sources"] == 1 else "%d addresses" % r["sources"],
                r["limits"],
                r["sent"],
                r["answered"],
                r["seconds"],
                d["success"],
                d["calls_ok"],
                d["calls"],
                d["registers_ok"],
                d["registers"],
                _ms(d["median_ms"]),
                _ms(d["p95_ms"]),
                _ms(a["median_ms"]),
                a["success"],
                "x%.1f" % r["ratio"] if r["ratio"] else "-",
                *("%.1f" % (v / 1024.0) if v else "-" for v in (rss["start"], rss["middle"], rss["end"])),
                r["provider"],
            )
        )
    return "\n".join(lines)


def details(results):
    out = []
    for r in results:
        what = "%s, %s tables" % ("1 address" if r["sources"] == 1 else "%d addresses" % r["sources"], r["limits"])
        out.append("* %s: answers to the flood %s" % (what, json.dumps(r["answers"], ensure_ascii=False)))
        if r["during"]["failures"]:
            out.append("  phone failures during the flood: %s" % "; ".join(r["during"]["failures"]))
        if r["after"]["calls"] + r["after"]["registers"] and r["after"]["success"] < 100:
            out.append(
                "  2 s after the flood: %.0f %% (%s)" % (r["after"]["success"], "; ".join(r["after"]["failures"]))
            )
        if r["anchor"]["success"] < 100:
            out.append("  anchor (no flood) failures: %s" % "; ".join(r["anchor"]["failures"]))
        if r["exited"]:
            out.append("  HOST MODE EXITED during the run: %s" % r["exited"])
        if r["problems"]:
            out.append("  host mode reported: %s" % "; ".join(r["problems"][:3]))
    return "\n".join(out)


def git_head():
    try:
        import subprocess

        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "firmware", "companion"],
            capture_output=True,
            text=True,
        )
        return rev.stdout.strip() + (" + uncommitted changes in firmware/companion" if dirty.stdout.strip() else "")
    except OSError:
        return "?"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="flood length per run (default 30)")
    ap.add_argument("--minutes", type=float, help="flood length per run in minutes (10 for the memory figure)")
    ap.add_argument("--rate", type=int, default=500, help="flood requests a second (default 500)")
    ap.add_argument("--anchor", type=float, default=10.0, help="seconds of calls with no flood first (default 10)")
    ap.add_argument("--only", default="one,rotating", help="one, rotating or both (default both)")
    ap.add_argument("--rotating", type=int, default=200, help="addresses of the rotating flood (default 200)")
    ap.add_argument("--limits", default="host,device", help="host, device or both (default both)")
    ap.add_argument("--period", type=float, help="seconds between the phones' calls (default 1; 3 with device)")
    ap.add_argument("--write", metavar="FILE", help="write the figures (markdown) to FILE")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--keep", metavar="DIR", help="folder for the runs' logs (default: a new temporary one, kept)")
    args = ap.parse_args(argv)
    seconds = args.minutes * 60.0 if args.minutes else args.seconds
    kinds = [k.strip() for k in args.only.split(",") if k.strip()]
    limits = [k.strip() for k in args.limits.split(",") if k.strip()]
    command = "bench/flood_bench.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))

    results = []
    tmp = args.keep or tempfile.mkdtemp(prefix="flood-bench-")
    print("logs in %s" % tmp, file=sys.stderr)
    for lim in limits:
        for kind in kinds:
            sources = 1 if kind == "one" else args.rotating
            period = args.period or (3.0 if lim == "device" else 1.0)
            print(
                "flood %s/s from %s, %s tables, %.0f s (phones every %.0f s) ..."
                % (args.rate, "1 address" if sources == 1 else "%d addresses" % sources, lim, seconds, period),
                file=sys.stderr,
                flush=True,
            )
            wd = os.path.join(tmp, "%s-%s" % (kind, lim))
            r = run_one(wd, sources, lim, seconds, args.rate, args.anchor, period)
            results.append(r)
            print("  " + table([r]).splitlines()[-1], file=sys.stderr, flush=True)

    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    text = "\n".join(
        [
            "## SIP switch under an unauthenticated flood (issue 6)",
            "",
            "Command: `.venv/bin/python %s` (%s, %d cores, code at %s)"
            % (command.strip(), datetime.date.today().isoformat(), os.cpu_count() or 0, git_head()),
            "",
            "A %d/s flood of unauthenticated REGISTER, OPTIONS and INVITE (new Call-ID each, half to "
            "existing extensions) for %.0f s per run, while phones 202 and 203 (digest auth) call each other; "
            "the anchor is the same phones' calls in the same run before the flood (%.0f s). Latency is call "
            "setup (INVITE, 407, INVITE, 2xx). RSS is the host-mode process (VmRSS)."
            % (args.rate, seconds, args.anchor),
            "",
            table(results),
            "",
            details(results),
            "",
        ]
    )
    print(text)
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")
    med = [r["during"]["success"] for r in results]
    return 0 if med and statistics.mean(med) == 100.0 and all(r["provider"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

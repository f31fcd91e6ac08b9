"""Sync over USB serial: a full sync of a 1000-staff site on the virtual device, on a link
throttled to 115,200 baud, against `mpremote cp` of the same bundle on the same link.

    python bench/sync_bench.py [--staff 1000] [--baud 115200] [--json]
    python bench/sync_bench.py --http [--staff 1000] [--runs 5] [--json]

Starts `zongji device run SITE --serial TTY --baud N` (the real firmware on the unix port, its
UART on a pty behind a bridge that passes N/10 bytes a second each way), then:
  * sync: devicelink.Device over seriallink (status for the base version, then PUT /bundle,
    deflate-compressed, as `zongji sync` sends it), timed end to end; the device's new version
    is checked. Its rate is the body's bytes over the time, as a share of the line rate.
  * mpremote cp: stops the app with Ctrl-C (as mpremote does), then `mpremote connect TTY
    resume cp site.zjb :bench.zjb` of the bundle (uncompressed, as the device stores it),
    timed; its rate is the file's bytes over the time.
Both also give the bundle's own bytes per second (what the admin waits for).

With --http: `zongji device run SITE --admin 127.0.0.1:PORT` (the firmware's microdot app on
the unix port, on loopback), a first `zongji sync --yes` of the 1000-staff folder (the whole
bundle, deflated), then --runs times one staff entry's name changed and `zongji sync --yes`
again (the CLI in this process, as an admin runs it; timed end to end, from the command to its
answer, bytes sent and received counted on its HTTP link): medians. The anchor, in the same run
and on the same link: `zongji status` (one signed request and its answer, the least any command
costs), its median over as many runs.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(REPO, "firmware"), os.path.join(REPO, "companion")]

from core_bench import make_site  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"


def free_port():
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _boot_device(tmp, more, ready):
    """`zongji device run` of a fresh example site with `more` arguments, once its log says `ready`."""
    from click.testing import CliRunner
    from zongji_companion.cli import main as cli

    site = os.path.join(tmp, "small")
    res = CliRunner().invoke(cli, ["init", site])
    assert res.exit_code == 0, res.output
    argv = [sys.executable, "-m", "zongji_companion", "device", "run", site, "--sip", "127.0.0.1:%d" % free_port()]
    argv += ["--flash", os.path.join(tmp, "flash"), "--token", TOKEN] + more
    log = open(os.path.join(tmp, "device.log"), "w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        with open(os.path.join(tmp, "device.log"), encoding="utf-8", errors="replace") as f:
            if ready in f.read():
                return proc
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the virtual device did not start:\n" + open(os.path.join(tmp, "device.log")).read())


def start_device(tmp, baud):
    tty = os.path.join(tmp, "tty")
    return _boot_device(tmp, ["--serial", tty, "--baud", str(baud)], "listening on udp"), tty


def full_sync(tty, data):
    from zongji_companion import devicelink

    t0 = time.monotonic()
    dev = devicelink.connect(tty, TOKEN)
    base = dev.status()["version"]
    answer = dev.put_bundle(data, base)
    t = time.monotonic() - t0
    version = dev.status()["version"]
    link = dev.link
    dev.close()
    return {
        "seconds": t,
        "body": len(zlib.compress(data, 9)),
        "sent": link.sent,
        "received": link.received,
        "retransmits": link.ep.retransmits,
        "applied": version == answer.get("version", version),
        "version": version,
    }


def one_entry(tty, site, tmp):
    """`zongji sync SITE --device TTY --yes` (the CLI caches what the device runs), then one
    staff entry's name changed and synced again: that second sync timed, its bytes counted."""
    from click.testing import CliRunner
    from zongji_companion import seriallink
    from zongji_companion.cli import main as cli

    links = []
    opener = seriallink.open_serial

    def counted(url):
        links.append(opener(url))
        return links[-1]

    seriallink.open_serial = counted
    env = {"ZONGJI_CACHE": os.path.join(tmp, "cache")}
    argv = ["sync", site, "--device", tty, "--token", TOKEN, "--yes"]
    try:
        first = CliRunner().invoke(cli, argv, env=env)
        if first.exit_code != 0:
            raise SystemExit("zongji sync failed: %s" % first.output)
        runs = []
        for k in range(2):  # the first may fetch the device's bundle (once per version)
            _rename(os.path.join(site, "staff.csv"), k)
            t0 = time.monotonic()
            res = CliRunner().invoke(cli, argv, env=env)
            runs.append((time.monotonic() - t0, links[-1].sent, links[-1].received, res))
            if res.exit_code != 0:
                raise SystemExit("zongji sync (one entry) failed: %s" % res.output)
    finally:
        seriallink.open_serial = opener
    return [{"seconds": t, "sent": a, "received": b, "output": r.output.strip()} for t, a, b, r in runs]


def _rename(csv_path, k):
    """One staff entry's name changed (the last row's, another character each time)."""
    with open(csv_path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    row = lines[-2].split(",")
    row[1] = row[1] + "新旧"[k]
    lines[-2] = ",".join(row)
    with open(csv_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def start_http_device(tmp):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return _boot_device(tmp, ["--admin", "127.0.0.1:%d" % port], "admin (sync) on http"), "http://127.0.0.1:%d" % port


def http_runs(url, site, tmp, runs):
    """The first full sync, then `runs` one-entry syncs and `runs` statuses, over HTTP."""
    from click.testing import CliRunner
    from zongji_companion import devicelink
    from zongji_companion.cli import main as cli

    links = []
    plain = devicelink.HttpLink

    class Counted(plain):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            links.append(self)

    devicelink.HttpLink = Counted
    env = {"ZONGJI_CACHE": os.path.join(tmp, "cache")}
    sync = ["sync", site, "--device", url, "--token", TOKEN, "--yes"]

    def timed(argv):
        t0 = time.monotonic()
        res = CliRunner().invoke(cli, argv, env=env)
        t = time.monotonic() - t0
        if res.exit_code != 0:
            raise SystemExit("zongji %s failed: %s" % (argv[0], res.output))
        return {"seconds": t, "sent": links[-1].sent, "received": links[-1].received, "output": res.output.strip()}

    try:
        first = timed(sync)
        ones, statuses = [], []
        for k in range(runs):
            _rename(os.path.join(site, "staff.csv"), k % 2)
            ones.append(timed(sync))
            statuses.append(timed(["status", "--device", url, "--token", TOKEN]))
    finally:
        devicelink.HttpLink = plain
    return first, ones, statuses


def _median(values):
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def main_http(argv, staff):
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 5
    with tempfile.TemporaryDirectory(prefix="zongji-sync-bench-") as tmp:
        data, n = make_site(os.path.join(tmp, "big"), staff - 12)
        proc, url = start_http_device(tmp)
        try:
            first, ones, statuses = http_runs(url, os.path.join(tmp, "big"), tmp, runs)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    one = {k: _median([r[k] for r in ones]) for k in ("seconds", "sent", "received")}
    st = {k: _median([r[k] for r in statuses]) for k in ("seconds", "sent", "received")}
    report = {"staff": n, "bundle": len(data), "runs": runs, "first": first, "one_entry": ones,
              "status": statuses, "median": {"one_entry": one, "status": st,
                                             "ratio": one["seconds"] / st["seconds"]}}  # fmt: skip
    if "--json" in argv:
        print(json.dumps(report, indent=1, ensure_ascii=False))
        return
    print("a %d-staff site, bundle %d B, over HTTP on loopback (the virtual device's microdot app)" % (n, len(data)))
    print("  first `zongji sync --yes` (the whole bundle): %.2f s end to end, %d B sent, %d B received"
          % (first["seconds"], first["sent"], first["received"]))  # fmt: skip
    print("  one entry changed, `zongji sync --yes`, median of %d: %.3f s end to end, %d B sent, %d B received"
          % (runs, one["seconds"], one["sent"], one["received"]))  # fmt: skip
    print("    each: " + ", ".join("%.3f s / %d B" % (r["seconds"], r["sent"]) for r in ones))
    print("  anchor, `zongji status`, median of %d: %.3f s, %d B sent, %d B received"
          % (runs, st["seconds"], st["sent"], st["received"]))  # fmt: skip
    print("  one-entry sync / status: %.1fx" % report["median"]["ratio"])
    print("    " + ones[-1]["output"].replace("\n", "\n    "))


def mpremote_cp(tty, path):
    mp = os.path.join(os.path.dirname(sys.executable), "mpremote")
    # the app stops at the first Ctrl-C mpremote sends; time the copy alone, on a REPL
    subprocess.run([mp, "connect", tty, "resume", "exec", "pass"], capture_output=True, timeout=60)
    t0 = time.monotonic()
    proc = subprocess.run([mp, "connect", tty, "resume", "cp", path, ":bench.zjb"], capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    t = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit("mpremote cp failed: %s %s" % (proc.stdout, proc.stderr))
    return {"seconds": t, "bytes": os.path.getsize(path)}


def main():
    argv = sys.argv[1:]
    staff = int(argv[argv.index("--staff") + 1]) if "--staff" in argv else 1000
    baud = int(argv[argv.index("--baud") + 1]) if "--baud" in argv else 115200
    line = baud / 10.0
    if "--http" in argv:
        return main_http(argv, staff)
    with tempfile.TemporaryDirectory(prefix="zongji-sync-bench-") as tmp:
        data, n = make_site(os.path.join(tmp, "big"), staff - 12)
        path = os.path.join(tmp, "site.zjb")
        with open(path, "wb") as f:
            f.write(data)
        proc, tty = start_device(tmp, baud)
        try:
            sync = full_sync(tty, data)
            one = one_entry(tty, os.path.join(tmp, "big"), tmp) if "--no-one" not in argv else None
            cp = mpremote_cp(tty, path)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    report = {
        "staff": n,
        "baud": baud,
        "bundle": len(data),
        "sync": dict(sync, line_share=sync["body"] / sync["seconds"] / line, bundle_rate=len(data) / sync["seconds"]),
        "one_entry": one,
        "mpremote_cp": dict(cp, line_share=cp["bytes"] / cp["seconds"] / line, bundle_rate=len(data) / cp["seconds"]),
    }
    if "--json" in argv:
        print(json.dumps(report, indent=1))
        return
    s, c = report["sync"], report["mpremote_cp"]
    print(
        "a %d-staff site, bundle %d B (%d B deflated), link %d baud (%.0f B/s)" % (n, len(data), s["body"], baud, line)
    )
    print("  sync over serial: %.2f s end to end (status, PUT /bundle, applied: %s), %d B sent, %d B received, "
          "%d frames resent" % (s["seconds"], s["applied"], s["sent"], s["received"], s["retransmits"]))  # fmt: skip
    print(
        "    body at %.0f %% of line rate; the bundle's own bytes at %.0f B/s"
        % (100 * s["line_share"], s["bundle_rate"])
    )
    print("  mpremote cp of site.zjb: %.2f s, %.0f %% of line rate (%.0f B/s)" % (
        c["seconds"], 100 * c["line_share"], c["bundle_rate"]))  # fmt: skip
    print("  sync / mpremote cp, bundle delivered per second: %.1fx" % (s["bundle_rate"] / c["bundle_rate"]))
    for i, one in enumerate(report["one_entry"] or ()):
        print("  one entry changed (%s), `zongji sync --yes` over serial: %.2f s end to end, %d B sent, %d B received"
              % ("first" if i == 0 else "again", one["seconds"], one["sent"], one["received"]))  # fmt: skip
        print("    " + one["output"].replace("\n", "\n    "))


if __name__ == "__main__":
    main()

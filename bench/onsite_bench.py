"""Issue 11's figures: a blank (fake) board to `status` answering, the app's sizes, and the
free heap after boot on each board.

    .venv/bin/python bench/onsite_bench.py [--runs N] [--samples N] [--heap-only]

Each run makes a fresh virtual board (tests/onsite/vboard.py: the fake ROM loader, then the
real MicroPython unix port once the loader starts the app) and times `zongji flash --board
esp32-wrover --firmware SYNTHETIC.bin --site EXAMPLE` from the command to its end (status has
answered over the port). The pty is unthrottled: a real board's 115,200 baud link would add the
transfer time (the upload dominates). The anchor, in the same run, is one `zongji status` over
the same port, the shortest exchange the flashed board answers. Sizes: the compiled app for
the board's arch (appfiles) and the data partition `zongji image` builds (lfsimage.used_bytes).

Free heap after boot: for each board file, `zongji device run EXAMPLE --board NAME --admin ...`
(the firmware on the real unix port at the board's -X heapsize: heap_bytes x HEAP_RATIO for
64-bit objects, plus the bytecode a frozen board keeps in flash), then `zongji status --json`
over its HTTP admin (the device collects before it answers), --samples times a second apart
once it answers; the median. On the board that is free / HEAP_RATIO (the raise for bytecode is
used by the bytecode). The budget check, from docs/architecture.md: what is free must hold the
board's floor (below it new calls get 503), a binding per staff member of the site at <= 300 B
and the board's max_calls at <= 2 KB each.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "onsite"))


def zongji(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "zongji_companion"] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit("zongji %s failed:\n%s" % (args[0], proc.stderr))
    return proc.stdout


def _free_port(kind):
    import socket

    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _watch(argv, name, samples, cwd=None, env=None):
    """Run argv (a virtual device) until it printed samples + 1 status lines (`report_s` 1: free
    heap after a collection), then SIGINT: {"free": [B], "total": B, "admin": what it said}."""
    import signal
    import threading

    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd, env=env,
                            start_new_session=True)  # fmt: skip
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    frees, total, end = [], None, time.monotonic() + 120
    try:
        while len(frees) < samples + 1 and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.5)
            frees, total = [], None
            for line in list(lines):
                if "status: heap " in line:
                    words = line.split("status: heap ")[1].split()
                    frees.append(int(words[0]))
                    total = int(words[4])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(5)
    if len(frees) < samples + 1:
        raise SystemExit(
            "%s: the virtual device gave %d status lines in 120 s:\n%s" % (name, len(frees), "".join(lines[-20:]))
        )
    said = "".join(lines)
    if "admin (sync) on http" in said:
        admin = "http up"
    elif "MemoryError" in said or "no room in the heap" in said:
        admin = "does not fit"
    else:
        admin = "not started"
    floor = [ln.strip() for ln in lines if "the floor of" in ln]  # what its low-heap guard said last
    return {"free": frees[1 : samples + 1], "total": total, "admin": admin, "floor": floor[-1] if floor else None}


def boot_heap(tmp, site, name, samples):
    """`zongji device run` (the unix port from PyPI; a frozen board's core as a ROMFS image)."""
    import socket

    flash = os.path.join(tmp, "flash-" + name)
    argv = [sys.executable, "-m", "zongji_companion", "device", "run", site, "--board", name, "--sip",
            "127.0.0.1:%d" % _free_port(socket.SOCK_DGRAM), "--flash", flash, "--admin",
            "127.0.0.1:%d" % _free_port(socket.SOCK_STREAM), "--token", "onsite-bench-token-%s" % name,
            "--report", "1"]  # fmt: skip
    return _watch(argv, name, samples), flash


def frozen_heap(binary, flash, spec, samples):
    """The same flash folder booted by a unix port built with the core frozen in (BINARY), as a
    no-PSRAM board runs it: main.py, the board's heap x HEAP_RATIO plus this port's fakes of its
    built-in machine and network, nothing for bytecode."""
    from zongji_companion import vdevice

    fakes, _ = vdevice.code_bytes()
    heap = int(spec["heap_bytes"] * vdevice.HEAP_RATIO) + fakes
    env = dict(os.environ, MICROPYPATH=vdevice.frozen_micropypath())
    got = _watch([binary, "-X", "heapsize=%d" % heap, "main.py"], spec["name"], samples, cwd=flash, env=env)
    got["heap"] = heap
    return got


def heaps(tmp, site, samples, frozen=None):
    from zongji_companion import boards, vdevice

    staff = json.loads(zongji("check", site, "--json")).get("counts", {}).get("extensions")
    rows = []
    for name in boards.names():
        spec = boards.load(name)
        heap, _notes = vdevice.heap_for(spec)
        got, flash = boot_heap(tmp, site, name, samples)
        rows.append((name + (" (ROMFS)" if spec.get("frozen") else ""), spec, heap, got))
        if frozen and spec.get("frozen"):
            got = frozen_heap(frozen, flash, spec, samples)
            rows.append((name + " (frozen)", spec, got["heap"], got))
    print("free heap after boot, example site (%s extensions), median of %d status lines, HEAP_RATIO %.1f:"
          % (staff, samples, vdevice.HEAP_RATIO))  # fmt: skip
    for name, spec, heap, got in rows:
        free = statistics.median(got["free"])
        on_board = free / vdevice.HEAP_RATIO
        calls = spec["limits"]["max_calls"]
        need = spec["heap_floor"] + (staff or 0) * 300 + calls * 2048
        print("  %-23s -X heapsize %8d: free %8d of %8d; on the board ~%7d of heap_bytes %7d (%3.0f%%); budget "
              "floor %d + %s x 300 + %d calls x 2048 = %d: %s; admin: %s%s"
              % (name, heap, free, got["total"], on_board, spec["heap_bytes"], 100.0 * on_board / spec["heap_bytes"],
                 spec["heap_floor"], staff, calls, need, "met" if on_board >= need else "NOT met", got["admin"],
                 "\n      last said: %s" % got["floor"] if got["floor"] else ""))  # fmt: skip


def main():
    import socket

    import synthimage
    from vboard import VirtualBoard
    from zongji_companion import boards

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--samples", type=int, default=5, help="statuses per board for the free heap")
    ap.add_argument("--heap-only", action="store_true", help="only the free heap after boot on each board")
    ap.add_argument("--frozen", metavar="BINARY", help="a unix port built with the core frozen in (BENCHMARKS.md "
                    "says how): the no-PSRAM boards booted on it too, the faithful figure")  # fmt: skip
    args = ap.parse_args()
    spec = boards.load("esp32-wrover")
    with tempfile.TemporaryDirectory(prefix="onsite-bench-") as tmp:
        site = os.path.join(tmp, "site")
        zongji("init", site)
        heaps(tmp, site, args.samples, args.frozen)
        if args.heap_only:
            return
        image = os.path.join(tmp, "micropython.bin")
        with open(image, "wb") as f:
            f.write(synthimage.release_image("esp32"))
        flashes, statuses = [], []
        for i in range(args.runs):
            board = VirtualBoard(os.path.join(tmp, "board%d" % i), chip="esp32", board=spec).start()
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.bind(("127.0.0.1", 0))
                    sip = s.getsockname()[1]
                t = time.monotonic()
                report = json.loads(zongji("flash", "--board", "esp32-wrover", "--firmware", image, "--site", site,
                                           "--port", board.port, "--sip-port", sip, "--sip-bind", "127.0.0.1",
                                           "--admin-port", "0", "--json", cwd=tmp))  # fmt: skip
                flashes.append(time.monotonic() - t)
                t = time.monotonic()
                zongji("status", "--device", board.port, "--token", report["token"], "--json", cwd=tmp)
                statuses.append(time.monotonic() - t)
            finally:
                board.stop()
        factory = os.path.join(tmp, "factory.bin")
        out = json.loads(zongji("image", "--board", "esp32-wrover", "--firmware", image, "--site", site, "-o", factory,
                                "--json"))  # fmt: skip
    f, s = statistics.median(flashes), statistics.median(statuses)
    print("blank (fake) board to status answering, zongji flash, median of %d: %.1f s (runs: %s)"
          % (len(flashes), f, ", ".join("%.1f" % x for x in flashes)))  # fmt: skip
    print("anchor, one zongji status over the same port, median: %.2f s; flash / status: %.0fx" % (s, f / s))
    app = out["app"]
    print("compiled app for esp32-wrover (xtensawin): %d B of .mpy, %d files, %d B in all"
          % (app["mpy_bytes"], app["files"], app["total_bytes"]))  # fmt: skip
    part = out["partition"]
    print("factory image data partition: %d B used of %d B at %#x" % (part["used"], part["size"], part["offset"]))


if __name__ == "__main__":
    main()

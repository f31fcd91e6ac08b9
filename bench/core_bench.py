"""Core benchmarks: MicroPython heap with a 500-entry site, and dial-plan lookup vs size.

    python bench/core_bench.py [--json]

Builds the example branch (`zongji init`) with a generated staff CSV of N people (Chinese
names, pinyin keys from the real companion), compiles it with the real bundler, then:
  * heap: loads the 500-entry bundle in MicroPython 1.29 (WebAssembly port) and reports the
    live heap (gc.mem_alloc after gc.collect) taken by the loaded site, the imported core,
    and one call in a menu;
  * SIP: the live heap the Switch keeps per registered phone and per answered call, with the
    core tests' scripted phones on a virtual clock (bench/mpy/sip_heap.py);
  * lookup: median time of DialPlan.match over 10 / 100 / 1000 entries, on MicroPython and
    CPython, each as a ratio to its own 10-entry time measured in the same run (the anchor).
Needs node and tests/mpy/node_modules (./tests/run.sh installs them).
"""

import csv
import json
import os
import random
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(REPO, "firmware"), os.path.join(REPO, "companion")]

from click.testing import CliRunner  # noqa: E402
from zongji.site import bundle  # noqa: E402
from zongji_companion import sitefiles  # noqa: E402
from zongji_companion.cli import main as cli  # noqa: E402

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉力宁鹏斌婷雪琳晨阳宇浩然子轩欣怡梓涵"


def make_site(root, n, first=3000, seed=1):
    """The example branch with n generated staff numbered from `first` (4 digits)."""
    res = CliRunner().invoke(cli, ["init", root, "--force"])
    assert res.exit_code == 0, res.output
    rnd = random.Random(seed)
    spacing = max(1, 1000 // n) if n <= 1000 else 1
    with open(os.path.join(root, "staff.csv"), "a", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        for i in range(n):
            name = rnd.choice(SURNAMES) + "".join(rnd.choice(GIVEN) for _ in range(rnd.choice((1, 2))))
            secret = "".join(rnd.choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(16))
            mobile = "139%08d" % rnd.randrange(10**8) if i % 5 == 0 else ""
            w.writerow(_row(f.name, str(first + i * spacing), name, secret, mobile))
    loaded, problems = sitefiles.check_site(root)
    errors = [p for p in loaded.report(problems) if p["level"] == "error"]
    assert not errors, errors[:3]
    return bundle.encode(loaded.site, loaded.extensions), len(loaded.extensions)


def bare_site(n):
    """A minimal valid site with exactly n extensions, 3000.. (4 digits, spread over 3000-3999)."""
    from zongji.site import schema

    raw = {
        "branch": {"name": "bench", "country": "CN", "timezone": "Asia/Shanghai", "tz": [[0, 28800]]},
        "operator": {"target": "3000"},
        "menus": {"main": {"prompt": "hello", "options": {"0": "operator"}}},
    }
    site, problems = schema.normalize(raw)
    assert not problems, problems
    spacing = 1000 // n
    exts = [
        {"number": str(3000 + i * spacing), "name": "N%d" % i, "secret": "bench-secret-%04d" % i, "class": "internal"}
        for i in range(n)
    ]
    return bundle.encode(site, exts)


def _row(csv_path, number, name, secret, mobile):
    with open(csv_path, encoding="utf-8-sig") as f:
        header = next(csv.reader(f))
    values = {
        "number": number,
        "name": name,
        "department": "Sales 销售",
        "secret": secret,
        "mobile": mobile,
        "class": "staff",
        "follow_me": "",
        "pin": "",
    }
    return [values.get(col.strip().lower(), "") for col in header]


def mpy(script, *data):
    out = subprocess.run(
        ["node", os.path.join(HERE, "mpy_run.mjs"), os.path.join(HERE, "mpy", script), *data],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise SystemExit("MicroPython run failed:\n" + out.stdout + out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    as_json = "--json" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        # heap: the example branch (its 12 staff, menus, groups) grown to 500 people
        data, count = make_site(os.path.join(tmp, "s500"), 500 - 12)
        assert count == 500, count
        files[500] = os.path.join(tmp, "site500.zjb")
        with open(files[500], "wb") as f:
            f.write(data)
        # lookup: a bare site of exactly N people, so only the directory size changes
        for size in (10, 100, 1000):
            files[size] = os.path.join(tmp, "site%d.zjb" % size)
            with open(files[size], "wb") as f:
                f.write(bare_site(size))
        heap = mpy("heap.py", files[500])
        heap["bundle_bytes"] = os.path.getsize(files[500])
        mp = mpy("lookup.py", files[10], files[100], files[1000])
        core_tests = os.path.join(REPO, "tests", "core")
        helpers = [os.path.join(core_tests, name) for name in ("_phones.py", "_sites.py", "_support.py")]
        sip = mpy("sip_heap.py", *helpers)
        scope = {"DATA_DIR": tmp, "__name__": "bench"}
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(open(os.path.join(HERE, "mpy", "lookup.py")).read(), scope)
        cp = json.loads(buf.getvalue().strip().splitlines()[-1])
    report = {"heap": heap, "sip_heap": sip, "lookup_ns": {"micropython": mp, "cpython": cp}}
    if as_json:
        print(json.dumps(report, indent=2))
        return
    kb = 1024.0
    print("MicroPython 1.29 heap, example menus + %d extensions (budget: site <= 40 KB):" % heap["extensions"])
    print("  loaded site (directory, dial plan, menus): %6.1f KB" % (heap["site_bytes"] / kb))
    print(
        "  core modules imported (bytecode on heap):  %6.1f KB  (frozen into flash on a device)"
        % (heap["code_bytes"] / kb)
    )
    print("  one call waiting in a menu:                %6.2f KB" % (heap["call_bytes"] / kb))
    print("  bundle file on flash:                      %6.1f KB" % (heap["bundle_bytes"] / kb))
    print("MicroPython 1.29 heap of the SIP switch (budgets: <= 300 B a phone, <= 2 KB a call):")
    print("  per registered phone (%d more phones):     %6d B" % (sip["phones"], sip["per_phone"]))
    print(
        "  (the first %d phones, bounded tables included: %.1f KB)"
        % (sip["first_phones"], sip["first_phones_bytes"] / kb)
    )
    print("  per answered call in progress (%d calls):  %6d B" % (sip["calls"], sip["per_call"]))
    print("DialPlan.match, median ns per lookup (ratio to the 10-entry anchor, same run):")
    for impl in ("micropython", "cpython"):
        r = report["lookup_ns"][impl]
        base = r["10"]
        print(
            "  %-11s " % impl
            + "   ".join("%4s entries: %8.0f ns (x%.2f)" % (s, r[s], r[s] / base) for s in ("10", "100", "1000"))
        )


if __name__ == "__main__":
    main()

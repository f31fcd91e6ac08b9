"""`zongji simulate` says what the running switch does (issue `shape`: one call decision).

For the example branch, open and closed, and for a 500-staff branch: every extension, ring
group, menu number and DID, incomplete, unknown and emergency numbers, and outside numbers of
every kind, dialed by a caller of each class. `zongji simulate --batch --json` says what should
happen; `zongji run` is then called over SIP on loopback, every phone registered and the provider
up, and must do exactly that: ring the same phones and provider numbers first, or answer the same
final status with the same reason.
"""

import json
import re

import pytest
from agreement import Board
from sipharness import HostMode, Site, free_udp_port, run, zongji_argv, zongji_env

# outside numbers of every kind the Chinese plan knows, with the example's outside prefix 0
OUTSIDE = [
    "013800138000",
    "001012345678",
    "002155550100",
    "062345678",
    "000442079460000",
    "016812345678",
    "095555",
    "0110",
    "0",
]
SPECIAL = ["110", "119", "2", "99", "999", "8", "800", "0000"]


def _hours(site, always):
    text = site.toml.read_text(encoding="utf-8")
    head, sep, rest = text.partition("\n[hours]\n")
    assert sep
    body, nxt, tail = rest.partition("\n[")
    if always == "open":
        new = 'open = ["mon-sun 00:00-24:00"]\nclosed = "menu:closed"\n'
    else:
        new = 'open = ["mon-fri 09:00-18:00"]\nholidays = ["2020-01-01..2099-12-31"]\nclosed = "menu:closed"\n'
    site.toml.write_text(head + sep + new + nxt + tail, encoding="utf-8")


def _simulate(site, lines, workdir):
    batch = workdir / "calls.txt"
    batch.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = run(zongji_argv("simulate", site.path, "--batch", batch), timeout=300, env=zongji_env())
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    out = [json.loads(line) for line in res.stdout.splitlines()]
    assert [o["input"] for o in out] == lines
    return out


def _expected(out):
    d = out["decision"]
    if d["action"] == "attend":
        return ("attendant answers",)
    if d["action"] == "ring":
        first = d["plan"][0]["legs"]
        return ("ring", {n for k, n in first if k == "desk"}, {n for k, n in first if k == "trunk"})
    return ("answers", d["status"], d["reason"])


def _actual(seen):
    if seen.attendant:
        return ("attendant answers",)
    if seen.status is not None:
        return ("answers", seen.status, seen.reason)
    return ("ring", seen.rang, seen.trunk)


def _agree(started, workdir, tmp_path, hours, extra=0, every_class=True):
    provider_port = free_udp_port()
    site = Site.create(tmp_path / ("site-%s-%d" % (hours, extra)), trunk_port=provider_port)
    _hours(site, hours)
    if extra:
        site.add_extensions(3000, extra)
    site.check()
    rows = site.rows()
    secrets = site.secrets()
    port = free_udp_port()
    board = Board(("127.0.0.1", port))
    board.provider(provider_port)
    hm = started.add(HostMode.start(site, port, workdir / "state", workdir))
    try:
        for number, secret in secrets.items():
            board.phone(number, secret)
        board.register_all()
        hm.wait_for(r"trunk registered", 15)
        classes = {}
        for r in rows:
            if r["number"] in secrets:
                classes.setdefault(r.get("class") or "", r["number"])
        callers = sorted(classes.values()) if every_class else [classes["staff"]]
        numbers = [r["number"] for r in rows] + ["600", "601"] + SPECIAL + OUTSIDE
        cases = [("from=%s dial=%s" % (c, n), c, n) for c in callers for n in numbers]
        if extra:  # and each class once more on what is not an extension
            cases += [("from=%s dial=%s" % (c, n), c, n) for c in sorted(classes.values()) for n in SPECIAL + OUTSIDE]
        dids = re.findall(r'"(\d+)" = "', site.toml.read_text(encoding="utf-8").split("did = {", 1)[1].split("}")[0])
        inbound = [("call=%s" % d, None, d) for d in dids + ["02155559999"]]
        lines = [c[0] for c in cases + inbound]
        said = dict(zip(lines, _simulate(site, lines, workdir)))
        wrong = []
        kinds = set()
        attended = 0
        for line, caller, number in cases + inbound:
            seen = board.call(caller, number) if caller else board.inbound(number)
            want = _expected(said[line])
            got = _actual(seen)
            target = said[line]["target"]
            if target and target[0] == "external":
                kinds.add(target[2])
            attended += want == ("attendant answers",)
            if want != got:
                wrong.append("%s: simulate %r, switch %r" % (line, want, got))
        assert not wrong, "%d of %d disagree:\n%s" % (len(wrong), len(lines), "\n".join(wrong[:40]))
        assert attended, "no call reached the attendant"
        assert not hm.problems(), hm.problems()
        return kinds, len(lines)
    finally:
        board.close()


@pytest.mark.parametrize("hours", ["open", "closed"])
def test_simulate_says_what_the_switch_does_on_the_example_branch(started, workdir, tmp_path, hours):
    kinds, n = _agree(started, workdir, tmp_path, hours)
    assert {"local", "mobile", "national", "international"} <= kinds, kinds
    assert n > 80


def test_simulate_says_what_the_switch_does_with_500_staff(started, workdir, tmp_path):
    _kinds, n = _agree(started, workdir, tmp_path, "open", extra=500, every_class=False)
    assert n > 500

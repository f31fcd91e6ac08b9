"""Flash writes per hour on the virtual device (issue 8, Numbers -> Flash writes): 64 phones
refreshing every 60 s and 200 calls an hour, against the real firmware on the MicroPython unix
port.

    python bench/flash_writes.py [--seconds 600] [--expires 120] [--empty-cdr] [--json]

Grows the example site (`zongji init`) to 64+ extensions with bench/core_bench.make_site and
starts `zongji device run SITE --board esp32-wrover --report 10 --save-interval 10` (10 s: the
device's default save interval) on loopback. 64 plain-UDP digest phones (tests/device/_vdev.Phone,
one per extension, each from its own port) register with Expires --expires (120: a phone that
refreshes at half its lifetime) and refresh every 60 s; phone i first registers at i x 60/64 s,
so the first minute is the ramp and the load is the steady one after it. (All at once does not
work: the first REGISTER of an unknown source is answered from the stateless answer budget,
switch/budget.py, 40 for a /24 at once and 10 a second more, so the 41st phone got no 401; the
guard's credential budget, 20 then 2/s, is not the limit here, as 127.0.0.1 is a "good" address
after its first success. Registered phones are never held back.) Calls go at 200 an hour
between two phones in turn (INVITE, 407, INVITE with credentials, 200, ACK, BYE, 200; no hold
time: only the call record is written).

The call-record file holds up to the board's max_records (500 on esp32-wrover), and a fresh
device's file grows for 2.5 h at 200 calls an hour. A shell that rewrites it whole at each write
(as at d913e5b) pays for how full it is. So, unless
--empty-cdr, the bench first boots the device once, makes one call, and fills the call records
with max_records copies of it before the measured boot: the steady state of a device that has
run a few hours. The run is compressed in length only, not in rate: W and B (flash writes and
bytes since boot, from the device's status lines) are taken at the first status line 70 s after
the ramp began and at the end, and scaled to an hour; the files written are told apart by
watching the flash folder (a rewrite is a temp file renamed over the old: a new inode; an
append grows the same one).

Wear: an estimate, with its assumptions in the output: the littlefs partition of a 4 MB
ESP32 on MicroPython's stock image (partitions-4MiB.csv: vfs, 0x200000 at 0x200000, 2 MB),
4 KB erase blocks, 100,000 erase cycles each (the usual NOR flash figure), littlefs spreading
erases over every block the other files (bundle, main.py, config) leave free (dynamic wear
levelling), a rewrite of a file costing the blocks its bytes fill plus one (the metadata pair
update), an append the blocks of what it adds plus two (the file's last block copied, the
metadata); copy-on-write and metadata compaction can double that, so the years are given also
at 2x.
"""

import json
import os
import queue
import re
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(REPO, "tests", "device")]

from _vdev import Phone, VDevice, free_port, secret_of  # noqa: E402
from core_bench import make_site  # noqa: E402
from zongji.sip.message import make_response  # noqa: E402

BOARD = "esp32-wrover"
PHONES = 64
REFRESH_S = 60
CALLS_PER_HOUR = 200
SAVE_S = 10
REPORT_S = 10
WARM_S = 70  # the ramp (60 s) and one status line more
FS_BYTES = 0x200000  # the vfs partition of MicroPython's partitions-4MiB.csv (ESP32_GENERIC*)
BLOCK = 4096
CYCLES = 100_000
STATUS = re.compile(r"(\d+) phones, (\d+) calls.*?(\d+) flash writes \((\d+) B\)")
FILES = ("registrations.json", "cdr.jsonl")


def status(dev, timeout=3 * REPORT_S):
    """The next status line printed from now on (the lines queued before it are read first, so
    an old one is not taken for it) -> (its time, W, B, phones)."""
    while True:
        try:
            line = dev._q.get_nowait()
        except queue.Empty:
            break
        if line is not None:
            dev.lines.append(line)
    m = STATUS.search(dev.wait_for("zongji: status:", timeout))
    return time.monotonic(), int(m.group(3)), int(m.group(4)), int(m.group(1))


def call(a, b):
    invite = a.invite(b.number)
    rung = b.recv("INVITE")
    b.answer(rung)
    answered = a.recv(lambda s: s == 200)
    routes = list(reversed(answered.get_all("record-route")))
    target, tag = answered.contacts()[0].uri, answered.to_addr().tag
    call_id = invite.get("call-id")

    def in_dialog(method):
        req = a.request(method, target, b.number, call_id, [("Route", r) for r in routes], to_tag=tag)
        if method == "ACK":
            req.set("cseq", "%d ACK" % invite.cseq()[0])
        return req

    a.send(in_dialog("ACK"))
    b.recv("ACK")
    a.send(in_dialog("BYE"))
    bye = b.recv("BYE")
    b.send(make_response(bye, 200))
    return a.final().status == 200


def register(p, expires, tries=3):
    """-> True when a 200 came; a REGISTER without an answer is tried again 2 s later."""
    for _ in range(tries):
        try:
            return p.register(expires=expires).status == 200
        except AssertionError:
            time.sleep(2)
    return False


class Watch:
    """Counts the writes of the state files by watching the folder: a write of the whole file is a
    temp file renamed over the old (a new inode), an append the same inode grown (mtime and
    size). Keeps the bytes each put on flash (the file's size, or what an append added)."""

    def __init__(self, folder):
        self.folder = folder
        self.seen = {}
        self.writes = {name: [0, 0] for name in FILES}  # rewrites, appends
        self.bytes = {name: [0, 0] for name in FILES}
        self.size = dict.fromkeys(FILES, 0)

    def poll(self):
        for name in FILES:
            try:
                st = os.stat(os.path.join(self.folder, name))
            except OSError:
                continue
            key = (st.st_ino, st.st_size, st.st_mtime_ns)
            old = self.seen.get(name)
            if old is not None and old != key:
                if old[0] != st.st_ino or st.st_size < old[1]:
                    self.writes[name][0] += 1
                    self.bytes[name][0] += st.st_size
                else:
                    self.writes[name][1] += 1
                    self.bytes[name][1] += st.st_size - old[1]
            self.seen[name] = key
            self.size[name] = st.st_size

    def snapshot(self):
        copy = {name: list(v) for name, v in self.writes.items()}
        return copy, {name: list(v) for name, v in self.bytes.items()}, dict(self.size)


def max_records():
    with open(os.path.join(REPO, "boards", BOARD + ".json")) as f:
        return json.load(f)["limits"]["max_records"]


def fill_cdr(site, flash, numbers):
    """Boot once, make one call, stop; then the call records hold max_records copies of it."""
    port = free_port()
    dev = VDevice.run(site, port, flash, BOARD, "--save-interval", "1")
    phones = []
    try:
        dev.listening()
        phones = [Phone(n, secret_of(site, n), ("127.0.0.1", port)) for n in numbers[:2]]
        for p in phones:
            assert register(p, 60)
        assert call(*phones)
        dev.wait_for("call %s -> %s" % (numbers[0], numbers[1]))
        time.sleep(2)
    finally:
        for p in phones:
            p.close()
        dev.stop()
    path = os.path.join(flash, "state", "cdr.jsonl")
    with open(path) as f:
        line = f.read().splitlines()[-1]
    n = max_records()
    with open(path, "w") as f:
        f.write((line + "\n") * n)
    os.remove(os.path.join(flash, "state", "registrations.json"))
    return n, len(line) + 1


def run(seconds, expires, full_cdr, log):
    tmp = tempfile.mkdtemp(prefix="zongji-flash-")
    site, flash = os.path.join(tmp, "site"), os.path.join(tmp, "flash")
    _, n_ext = make_site(site, PHONES)
    from zongji_companion import sitefiles

    numbers = [e["number"] for e in sitefiles.load(site).extensions][-PHONES:]
    prefill = fill_cdr(site, flash, numbers) if full_cdr else None
    if prefill:
        log("call records filled: %d of %d B" % prefill)
    port = free_port()
    dev = VDevice.run(site, port, flash, BOARD, "--report", REPORT_S, "--save-interval", SAVE_S)
    watch = Watch(os.path.join(flash, "state"))
    phones = []
    try:
        dev.listening()
        server = ("127.0.0.1", port)
        phones = [Phone(n, secret_of(site, n), server) for n in numbers]
        start = time.monotonic()
        due = [start + REFRESH_S * i / PHONES for i in range(PHONES)]  # the first: the ramp
        call_gap = 3600.0 / CALLS_PER_HOUR
        next_call = start + WARM_S + call_gap / 2
        calls = answered = refreshes = failed = 0
        first = None
        end = start + WARM_S + seconds
        log("ramp 60 s, then %d s measured (expires %d, refresh %d s, a call every %.0f s)" % (
            seconds, expires, REFRESH_S, call_gap))  # fmt: skip
        while True:
            now = time.monotonic()
            watch.poll()
            if first is None and now >= start + WARM_S:
                first = status(dev)
                files0 = watch.snapshot()
                refreshes0, failed0 = refreshes, failed
            if now >= end:
                break
            for i, p in enumerate(phones):
                if due[i] <= now:
                    due[i] += REFRESH_S
                    refreshes += 1
                    failed += not register(p, expires)
            if next_call <= now:
                next_call += call_gap
                calls += 1
                try:
                    answered += call(phones[calls % PHONES], phones[(calls + 1) % PHONES])
                except AssertionError as e:
                    log("call %d failed: %s" % (calls, e))
            time.sleep(0.05)
        last = status(dev)
        watch.poll()
        files1 = watch.snapshot()
    finally:
        for p in phones:
            p.close()
        dev.stop()
    (t0, w0, b0, ph0), (t1, w1, b1, ph1) = first, last
    span = t1 - t0
    writes, nbytes = w1 - w0, b1 - b0
    per_h, bytes_h = writes * 3600 / span, nbytes * 3600 / span
    per_file = {}
    erases_h = 0.0
    for name in FILES:
        rw, ap = (files1[0][name][k] - files0[0][name][k] for k in (0, 1))
        rb, ab = (files1[1][name][k] - files0[1][name][k] for k in (0, 1))
        per_file[name] = {
            "rewrites": rw,
            "appends": ap,
            "writes_per_hour": round((rw + ap) * 3600 / span, 1),
            "bytes_per_hour": round((rb + ab) * 3600 / span),
            "size_b": files1[2][name],
        }
        # a rewrite: the blocks its bytes fill plus one (the metadata pair); an append: the
        # blocks of what it adds plus two (the file's last block copied, the metadata pair)
        if rw:
            erases_h += rw * 3600 / span * (-(-(rb // rw) // BLOCK) + 1)
        if ap:
            erases_h += ap * 3600 / span * (-(-(ab // ap) // BLOCK) + 2)
    static = 0  # blocks the files that do not change hold (bundle, main.py, config.json ...)
    for name in os.listdir(flash):
        path = os.path.join(flash, name)
        if os.path.isfile(path):
            static += -(-os.path.getsize(path) // BLOCK)
    blocks = FS_BYTES // BLOCK - static
    years = blocks * CYCLES / erases_h / (24 * 365) if erases_h else None
    return {
        "board": BOARD,
        "save_interval_s": SAVE_S,
        "extensions": n_ext,
        "phones": PHONES,
        "phones_seen": [ph0, ph1],
        "expires_s": expires,
        "refresh_s": REFRESH_S,
        "calls_per_hour": CALLS_PER_HOUR,
        "cdr_prefilled": {"records": prefill[0], "bytes": prefill[0] * prefill[1]} if prefill else None,
        "run_s": round(span, 1),
        "refreshes": refreshes - refreshes0,
        "refresh_failures": failed - failed0,
        "ramp_failures": failed0,
        "calls": calls,
        "calls_answered": answered,
        "writes": writes,
        "bytes": nbytes,
        "writes_per_hour": round(per_h, 1),
        "bytes_per_hour": round(bytes_h),
        "files": per_file,
        "wear_estimate": {
            "assumed_fs_bytes": FS_BYTES,
            "blocks_free": blocks,
            "blocks_static": static,
            "cycles_per_block": CYCLES,
            "block_erases_per_hour": round(erases_h, 1),
            "years": round(years, 1) if years else None,
            "years_at_2x": round(years / 2, 1) if years else None,
        },
    }


def main(argv):
    seconds, expires, full_cdr, as_json = 600, 120, True, False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--seconds":
            seconds = float(argv[i + 1])
            i += 1
        elif a == "--expires":
            expires = int(argv[i + 1])
            i += 1
        elif a == "--empty-cdr":
            full_cdr = False
        elif a == "--json":
            as_json = True
        else:
            raise SystemExit(__doc__)
        i += 1

    def log(text):
        print(text, file=sys.stderr if as_json else sys.stdout, flush=True)

    r = run(seconds, expires, full_cdr, log)
    if as_json:
        print(json.dumps(r, indent=2))
        return
    w = r["wear_estimate"]
    log("%d phones (expires %d s, refresh %d s), %d calls/h, save interval %d s, %s" % (
        r["phones"], r["expires_s"], r["refresh_s"], r["calls_per_hour"], SAVE_S, r["board"]))  # fmt: skip
    log("measured %.0f s: %d writes, %d B; %d refreshes (%d failed), %d calls (%d answered)" % (
        r["run_s"], r["writes"], r["bytes"], r["refreshes"], r["refresh_failures"], r["calls"],
        r["calls_answered"]))  # fmt: skip
    log("flash writes per hour: %.0f (%d B/h)" % (r["writes_per_hour"], r["bytes_per_hour"]))
    for name, f in r["files"].items():
        log("  %s: %.0f writes/h (%d rewrites, %d appends measured), %d B/h, %d B now" % (
            name, f["writes_per_hour"], f["rewrites"], f["appends"], f["bytes_per_hour"], f["size_b"]))  # fmt: skip
    log("wear: %.0f block erases/h over %d blocks of %d cycles: %s years (%s at 2x)" % (
        w["block_erases_per_hour"], w["blocks_free"], w["cycles_per_block"], w["years"], w["years_at_2x"]))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])

"""Faults on the virtual device (issue 8, part 5): what a branch would notice when the power goes
at the wrong moment, the network drops, or a stranger floods the switch.

A kill at every step of a flash write: firmware/zongji/shell/store.py, given ZONGJI_KILL_AT
("NAME N STEP") in its environment, prints "zongji: store: at STEP of NAME" once STEP of the Nth
write of NAME is done and waits; the test then SIGKILLs the device (a power cut at that point),
boots it again on the same flash folder and checks what is there.

The network drops: vdevice.json {"link": "down"} in the flash folder makes the fake interface
(zongji_companion/vdevice/network.py) report no link; the shell closes its SIP socket until
the link returns. The trunk points at a small provider on loopback (_Provider) that grants 10 s,
so a refresh falls inside the drop.

The flood: SIPp (tests/integration/sipp/flood_invite.xml) sends 5,000 INVITEs without
credentials at 500/s from 127.0.0.1, the phones' own address, while 201 calls 202 once a
second; the status line (--report 1) gives the free heap after a collection, vdevice-wdt the
watchdog's feeds. SIPp is required under CI=true (sipharness.tool).
"""

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from _vdev import SDP, WAIT, VDevice
from zongji.shell.store import APPEND_STEPS, STEPS
from zongji.sip.auth import pick_challenge, respond
from zongji.sip.message import Request, make_response
from zongji.sip.parser import parse
from zongji_companion import vdevice

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration"))

PLAIN = [s for s in STEPS if s != "set-aside"]  # a write without keep=True has no set-aside


@pytest.fixture
def boots():
    """boot(flash, kill_at=None) -> VDevice: micropython main.py in a prepared flash folder (as
    after a reset), optionally with ZONGJI_KILL_AT; all killed at the end, none may log a bug."""
    started = []

    def boot(flash, kill_at=None, argv=None):
        cmd, env = vdevice.command(str(flash), 8000000)
        env.pop("ZONGJI_KILL_AT", None)
        if kill_at:
            env["ZONGJI_KILL_AT"] = kill_at
        dev = VDevice(argv or cmd, cwd=str(flash), env=env)
        started.append(dev)
        return dev

    yield boot
    bugs = []
    for dev in started:
        dev.kill()
        bugs += [ln for ln in dev.rest() if "internal error" in ln or "Traceback" in ln]
    assert not bugs, "the device logged a bug:\n%s" % "\n".join(bugs)


def _port(flash):
    return json.loads((flash / "config.json").read_text())["sip_port"]


def _restored(dev):
    """(registrations, call records) the booting device says it restored."""
    line = dev.wait_for("listening on udp")
    regs = calls = 0
    for ln in dev.lines:
        if "restored " in ln:
            words = ln.split("restored ", 1)[1].split()
            regs, calls = int(words[0]), int(words[3])
    return regs, calls, line


def _killed_at(dev, name, step):
    """Wait until the device stops at step of writing name, then pull the plug."""
    dev.wait_for("store: at %s of %s" % (step, name), timeout=WAIT)
    os.killpg(dev.proc.pid, signal.SIGKILL)
    dev.proc.wait(timeout=WAIT)


def _numbers(flash):
    rows = json.loads((flash / "state" / "registrations.json").read_text(encoding="utf-8"))["bindings"]
    return sorted(row[0] for row in rows)


def test_a_kill_at_every_step_of_writing_registrations_leaves_the_old_or_the_new(
    site, tmp_path, devices, phones, boots
):
    flash = tmp_path / "flash"
    dev = devices(site, flash)
    server = ("127.0.0.1", dev.port)
    lily = phones("201", server)
    assert lily.register().status == 200
    assert dev.stop() == 0
    saved = flash / "state" / "registrations.json"
    state = ["201"]  # what the switch has on flash
    for i, step in enumerate(PLAIN):
        before = saved.read_bytes()
        dev = boots(flash, kill_at="registrations.json 1 %s" % step)
        regs, _, _ = _restored(dev)
        assert regs == len(state), (step, dev.lines)
        number = "20%d" % (i + 2)
        assert phones(number, server).register().status == 200  # it answers before it writes
        _killed_at(dev, "registrations.json", step)
        if step == "renamed":  # the new file is in place: the new state
            state = sorted(state + [number])
            assert _numbers(flash) == state
        else:  # the old file untouched, byte for byte: the old state
            assert saved.read_bytes() == before, step
            assert _numbers(flash) == state
    dev = boots(flash)
    assert _restored(dev)[0] == len(state) == 2
    # the restored phones are reachable: 201 rings when 209 calls it, with no new REGISTER
    caller = phones("209", server)
    assert caller.register().status == 200
    caller.invite("201")
    assert lily.recv("INVITE").from_addr().uri.user == "209"
    assert dev.stop() == 0


def _records(flash):
    lines = (flash / "state" / "cdr.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_a_kill_at_every_step_of_writing_call_records_leaves_the_old_or_the_new(site, tmp_path, devices, phones, boots):
    # a new call record is appended to the file (rewriting them all per call wears flash out):
    # a kill before its bytes are written leaves the old file, after it the old file and one
    # whole new line; never a torn record
    flash = tmp_path / "flash"
    dev = devices(site, flash)
    server = ("127.0.0.1", dev.port)
    lily = phones("201", server)
    assert lily.register().status == 200
    lily.invite("203")  # no phone there: refused 480, and recorded
    assert lily.final().status == 480
    assert dev.stop() == 0
    saved = flash / "state" / "cdr.jsonl"
    count = 1
    for i, step in enumerate(APPEND_STEPS):
        before = saved.read_bytes()
        assert len(_records(flash)) == count
        dev = boots(flash, kill_at="cdr.jsonl 1 %s" % step)
        assert _restored(dev)[:2] == (1, count), (step, dev.lines)
        lily.invite("20%d" % (i + 4))
        assert lily.final().status == 480
        _killed_at(dev, "cdr.jsonl", step)
        after = saved.read_bytes()
        if step == "opened":
            assert after == before, step
        else:  # the line reached the file: the old records, byte for byte, and the new one
            count += 1
            assert after.startswith(before) and after[len(before) :].count(b"\n") == 1, step
            assert [r["to"] for r in _records(flash)][-1] == "20%d" % (i + 4)
        assert len(_records(flash)) == count  # whole lines only: never a torn record
    dev = boots(flash)
    assert _restored(dev)[:2] == (1, count)
    assert dev.stop() == 0


def test_a_call_record_torn_by_a_power_cut_costs_that_record_and_the_file_is_written_clean(
    site, tmp_path, devices, phones, boots
):
    # a power cut in the middle of an append on flash leaves part of a line: at boot it is
    # skipped and said, and the next save writes the file whole (an append would glue the next
    # record to the torn one)
    flash = tmp_path / "flash"
    dev = devices(site, flash)
    server = ("127.0.0.1", dev.port)
    lily = phones("201", server)
    assert lily.register().status == 200
    for number in ("203", "204"):
        lily.invite(number)
        assert lily.final().status == 480
    assert dev.stop() == 0
    saved = flash / "state" / "cdr.jsonl"
    saved.write_bytes(saved.read_bytes()[:-25])  # the second record torn
    dev = boots(flash)
    assert _restored(dev)[:2] == (1, 1)
    assert "skipped 1 damaged line" in "\n".join(dev.lines)
    lily.invite("205")
    assert lily.final().status == 480
    assert dev.stop() == 0
    text = saved.read_bytes()
    assert text.endswith(b"\n") and [r["to"] for r in _records(flash)] == ["203", "205"]


def _site_of(line):
    """'(12 extensions, site version 1a2b3c4d...)' of a listening line: which bundle runs."""
    return line.split("site version ", 1)[1].split("...")[0]


def test_a_kill_at_every_step_of_writing_the_site_bundle_leaves_the_old_or_the_new_site(site, tmp_path, devices, boots):
    # the write a sync makes on the device: the firmware's Store.write(keep=True), on its
    # MicroPython, in its flash folder (the sync endpoint itself is the `sync` issue's)
    from zongji_companion.cli import load_site

    flash = tmp_path / "flash"
    dev = devices(site, flash)
    assert dev.stop() == 0
    old = (flash / "site.zjb").read_bytes()
    old_version = _site_of(dev.lines[[i for i, ln in enumerate(dev.lines) if "listening" in ln][0]])
    toml = site / "site.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("Shanghai", "Suzhou", 1), encoding="utf-8")
    _, new = load_site(str(site))
    assert new != old
    (flash / "incoming.zjb").write_bytes(new)
    writer = (
        "from zongji.shell.store import Store\n"
        "with open('incoming.zjb', 'rb') as f:\n"
        "    data = f.read()\n"
        "print('wrote', Store('.').write('site.zjb', data, keep=True))\n"
    )
    micropython = vdevice.micropython()
    for step in STEPS:
        sync = boots(flash, kill_at="site.zjb 1 %s" % step, argv=[micropython, "-c", writer])
        _killed_at(sync, "site.zjb", step)
        dev = boots(flash)
        line = dev.listening()
        running = _site_of(line)
        if step == "renamed":
            assert "Suzhou" in line, (step, dev.lines)
            assert (flash / "site.zjb").read_bytes() == new
            assert (flash / "site.prev.zjb").read_bytes() == old  # kept for rollback
        else:
            assert running == old_version and "Shanghai" in line, (step, dev.lines)
            assert (flash / "site.zjb").read_bytes() == old
        if step == "set-aside":  # only the previous bundle was left: it was rolled back to
            assert any("rolled back" in ln for ln in dev.lines), dev.lines
        assert dev.stop() == 0


# ---- the calls of a phone that retransmits, as every SIP phone over UDP does (Timer A/E)


def _until_answer(phone, send, want, timeout=WAIT):
    """send(); the first message passing want (a status test or a method), resending at 0.5 s,
    doubling to 4 s, until timeout. None when nothing came."""
    end = time.monotonic() + timeout
    interval = 0.5
    while time.monotonic() < end:
        send()
        try:
            return phone.recv(want, timeout=min(interval, max(0.05, end - time.monotonic())))
        except AssertionError:
            interval = min(interval * 2, 4)
    return None


def _call(caller, callee, timeout=30, hang_up=True):
    """caller calls callee, callee answers, caller hangs up: True when all of it went through.
    With hang_up=False: once answered, a function that hangs up later (True when the BYE got
    through), or None when the call did not go through."""
    number = callee.number
    uri = "sip:%s@%s:%d" % ((number,) + tuple(caller.server))
    call_id = "call-%s-%s-%d-%d@127.0.0.1" % (caller.number, number, caller.addr[1], caller.cseq)
    ct = [("Content-Type", "application/sdp")]
    first = caller.request("INVITE", uri, number, call_id, ct, body=SDP)
    challenge = _until_answer(caller, lambda: caller.send(first), lambda s: s >= 200, timeout)
    if challenge is None or challenge.status != 407:
        return False if hang_up else None
    caller.ack_failure(first, challenge)
    chal = pick_challenge(challenge.get_all("proxy-authenticate"))
    auth = respond(chal, "INVITE", uri, caller.number, caller.secret, "ab", caller.cseq)
    invite = caller.request("INVITE", uri, number, call_id, ct + [("Proxy-Authorization", auth)], body=SDP)
    rung = _until_answer(callee, lambda: caller.send(invite), "INVITE", timeout)
    if rung is None:
        return False if hang_up else None
    answered = _until_answer(caller, lambda: callee.answer(rung), lambda s: s == 200, timeout)
    if answered is None:
        return False if hang_up else None
    routes = list(reversed(answered.get_all("record-route")))
    target, tag = answered.contacts()[0].uri, answered.to_addr().tag

    def in_dialog(method):
        req = caller.request(method, target, number, call_id, [("Route", r) for r in routes], to_tag=tag)
        if method == "ACK":
            req.set("cseq", "%d ACK" % invite.cseq()[0])
        return req

    caller.send(in_dialog("ACK"))

    def bye():
        req = in_dialog("BYE")
        end = time.monotonic() + timeout
        interval = 0.5
        while time.monotonic() < end:  # BYE until its 200; the callee answers every copy it gets
            caller.send(req)
            try:
                got = callee.recv("BYE", timeout=interval)
                callee.send(make_response(got, 200))
                if caller.recv(lambda s: s >= 200, timeout=interval).status == 200:
                    return True
            except AssertionError:
                interval = min(interval * 2, 4)
        return False

    return bye() if hang_up else bye


def _status(line):
    """{free, total, phones, calls, transactions} of a status line."""
    words = line.split("status: heap ", 1)[1].replace(",", "").split()
    return {
        "free": int(words[0]),
        "total": int(words[4]),
        "phones": int(words[8]),
        "calls": int(words[10]),
        "tx": int(words[12]),
    }


def _drain(dev):
    """Take every line printed so far into dev.lines."""
    while True:
        try:
            line = dev._q.get_nowait()
        except queue.Empty:
            return
        if line is None:
            dev._q.put(None)
            return
        dev.lines.append(line)


def _stat(csv, key):
    """The last value of a column of a SIPp statistics file."""
    rows = [r.split(";") for r in csv.read_text().splitlines() if r.strip()]
    return int(rows[-1][rows[0].index(key)])


def _feeds(flash):
    try:
        return int((flash / "vdevice-wdt").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return -1


def test_an_unauthenticated_invite_flood_does_not_stop_a_registered_phone_calling(site, tmp_path, devices, phones):
    from sipharness import free_udp_port, sipp_argv

    flash = tmp_path / "flash"
    dev = devices(site, flash, more=("--report", "1"))
    server = ("127.0.0.1", dev.port)
    lily, ming = phones("201", server), phones("202", server)
    assert lily.register().status == 200 and ming.register().status == 200
    before = _status(dev.wait_for("status: heap"))
    while before["phones"] < 2:  # a status line printed before the second registration
        before = _status(dev.wait_for("status: heap"))
    feeds = _feeds(flash)
    work = tmp_path / "sipp"
    work.mkdir()
    rate, seconds = 500, 10
    argv = sipp_argv("flood_invite.xml", server, work, "flood", calls=rate * seconds, rate=rate, service="202",
                     behaviors="none", timeout_s=seconds + 20, local_port=free_udp_port())  # fmt: skip
    argv = [str(a) for a in argv]
    cut = argv.index("-auth_uri")  # no credentials to name a uri in
    del argv[cut : cut + 2]
    flood = subprocess.Popen(argv, cwd=str(work), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        started = time.monotonic()
        mark = len(dev.lines)
        results = []
        for i in range(10):  # a call a second through the flood
            while time.monotonic() < started + i:
                time.sleep(0.05)
            results.append(_call(lily, ming))
        during = time.monotonic() - started
        _, err = flood.communicate(timeout=seconds + 40)
    finally:
        if flood.poll() is None:
            flood.kill()
    assert flood.returncode == 0, err
    elapsed = time.monotonic() - started
    fed = _feeds(flash) - feeds
    _drain(dev)
    statuses = [_status(ln) for ln in dev.lines[mark:] if "status: heap" in ln]
    heap = [st["free"] for st in statuses]
    dev.wait_for("status: heap")
    after = _status(dev.wait_for("status: heap"))  # settled: a second or two after the flood
    answered = _stat(work / "flood_stats.csv", "DeadCallMsgs(C)")  # the 407s it got, after its INVITE
    print(
        "flood: %d INVITEs in %.1f s, %d answered (407); %d of %d calls went through in %.1f s"
        % (rate * seconds, elapsed, answered, sum(results), len(results), during)
    )
    print(
        "free heap after collect: before %d, during min %d max %d (%d status lines), after %d; "
        "the watchdog fed %d times in %.1f s"
        % (before["free"], min(heap), max(heap), len(heap), after["free"], fed, elapsed)
    )
    print("transactions at most %d" % max(st["tx"] for st in statuses))
    assert sum(results) >= 9, results  # the phone's calls went through (all of them, as a rule)
    assert 0 < answered < rate * seconds // 10  # the flood got its small share of 407s, no more
    # bounded: a flood that left 50 B per INVITE would take 250 KB (the calls' own lingering
    # transactions and records take some 80 KB); no answer needed a retransmission state
    assert len(heap) >= seconds // 2 and before["free"] - min(heap + [after["free"]]) < 250000, heap
    assert max(st["tx"] for st in statuses) <= 48
    # the watchdog: fed (once a second when the machine is quiet) and never fired: a feed more
    # than 8 s after the last one ends the device with "not fed" (vdevice/machine.py)
    assert fed >= elapsed // 2, (fed, elapsed)
    assert dev.proc.poll() is None and not any("not fed" in ln for ln in dev.lines)
    assert dev.stop() == 0


# ---- the network drops and returns


class _Provider:
    """A SIP provider on loopback that grants every REGISTER for `grant` seconds (no password
    checked) and notes when each came: enough to watch the trunk's registration."""

    def __init__(self, grant=10):
        self.grant = grant
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.registers = []  # time.monotonic() of each REGISTER
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            try:
                req = parse(data)
            except Exception:
                continue
            if not isinstance(req, Request):
                continue
            if req.method == "REGISTER":
                self.registers.append(time.monotonic())
                resp = make_response(req, 200, to_tag="prov", headers=[("Expires", self.grant)])
                for c in req.get_all("contact"):
                    resp.add("contact", "%s;expires=%d" % (c.split(";")[0], self.grant))
            else:
                resp = make_response(req, 200 if req.method == "OPTIONS" else 405, to_tag="prov")
            if req.method != "ACK":
                self.sock.sendto(resp.to_bytes(), addr)

    def close(self):
        self._stop = True
        self._thread.join(timeout=WAIT)
        self.sock.close()


def _unreachable(phone, timeout=1.0):
    """True when an OPTIONS from phone gets no answer (the device's socket is closed)."""
    server = phone.server
    req = phone.request("OPTIONS", "sip:%s:%d" % server, "ping", "ping-%d@127.0.0.1" % phone.cseq)
    try:
        phone.send(req)
        phone.recv(lambda s: True, timeout=timeout)
    except (AssertionError, ConnectionRefusedError):  # nothing, or ICMP port unreachable
        return True
    return False


def test_the_network_drops_and_returns_and_registrations_and_the_trunk_recover(site, tmp_path, devices, phones):
    provider = _Provider(grant=10)  # the trunk refreshes every 5 s (half the grant)
    try:
        toml = site / "site.toml"
        text = toml.read_text(encoding="utf-8")
        assert "port = 5070" in text
        toml.write_text(text.replace("port = 5070", "port = %d" % provider.port, 1), encoding="utf-8")
        flash = tmp_path / "flash"
        dev = devices(site, flash)
        server = ("127.0.0.1", dev.port)
        dev.wait_for("trunk registered")
        lily, ming = phones("201", server), phones("202", server)
        assert lily.register().status == 200 and ming.register().status == 200
        assert _call(lily, ming)
        hang_up = _call(lily, ming, hang_up=False)  # a call in progress across the drop
        assert hang_up is not None

        # the link drops (vdevice.json: the fake interface says isconnected() False)
        (flash / "vdevice.json").write_text(json.dumps({"link": "down"}))
        dev.wait_for("link down")
        assert _unreachable(lily)  # the device hears nothing while the link is down
        # the trunk's next refresh cannot be sent: it says so and retries on its own
        dev.wait_for("trunk retrying", timeout=20)
        down_until = time.monotonic()

        (flash / "vdevice.json").write_text(json.dumps({"link": "up"}))
        dev.wait_for("link back")
        line = dev.wait_for("trunk registered", timeout=30)  # the retry goes through
        assert [t for t in provider.registers if t > down_until], provider.registers
        assert "registered at 127.0.0.1:%d" % provider.port in line
        assert hang_up()  # the call that was up through the drop ends normally: its BYE goes through
        line = dev.wait_for("call 201 -> 202")  # its record: up through the drop, for seconds
        assert "answered by 202" in line and int(line.rsplit(", ", 1)[1].split()[0]) >= 5, line
        # the phones registered before the drop are still known: they call, and are called,
        # without registering again
        assert _call(lily, ming) and _call(ming, lily)
        assert dev.stop() == 0
    finally:
        provider.close()

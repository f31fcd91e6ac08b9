"""Faults on the virtual device (issue 8, part 5): what a branch would notice when the power goes
at the wrong moment, the network drops, or a stranger floods the switch.

A kill at every step of a flash write: firmware/zongji/shell/store.py, given ZONGJI_KILL_AT
("NAME N STEP") in its environment, prints "zongji: store: at STEP of NAME" once STEP of the Nth
write of NAME is done and waits; the test then SIGKILLs the device (a power cut at that point),
boots it again on the same flash folder and checks what is there.
"""

import json
import os
import signal

import pytest
from _vdev import WAIT, VDevice
from zongji.shell.store import STEPS
from zongji_companion import vdevice

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
    for i, step in enumerate(PLAIN):
        before = saved.read_bytes()
        assert len(_records(flash)) == count
        dev = boots(flash, kill_at="cdr.jsonl 1 %s" % step)
        assert _restored(dev)[:2] == (1, count), (step, dev.lines)
        lily.invite("20%d" % (i + 4))
        assert lily.final().status == 480
        _killed_at(dev, "cdr.jsonl", step)
        if step == "renamed":
            count += 1
            assert [r["to"] for r in _records(flash)][-1] == "20%d" % (i + 4)
        else:
            assert saved.read_bytes() == before, step
        assert len(_records(flash)) == count  # whole lines only: never a torn record
    dev = boots(flash)
    assert _restored(dev)[:2] == (1, 2)
    assert dev.stop() == 0


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

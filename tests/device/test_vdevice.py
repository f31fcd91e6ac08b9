"""`zongji device run` on the example site: the firmware itself, on the real MicroPython unix
port, serving SIP on loopback to plain-UDP phones with digest auth."""

import json
import os
import signal
import subprocess
import time

import pytest
from _vdev import WAIT, free_port
from click.testing import CliRunner
from zongji.sip.message import make_response
from zongji_companion.cli import main


def _server(dev):
    return ("127.0.0.1", dev.port)


def _until(check, timeout=WAIT):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_a_phone_registers_with_digest(site, tmp_path, devices, phones):
    dev = devices(site, tmp_path / "flash")
    assert "listening on udp 127.0.0.1:%d" % dev.port in dev.lines[-1]
    lily = phones("201", _server(dev))
    ok = lily.register()
    assert ok.status == 200, ok
    assert ok.contacts()[0].uri.port == lily.addr[1]
    line = dev.wait_for("registered 201")
    assert "registered 201 Lily 王丽 from 127.0.0.1:%d" % lily.addr[1] in line


def test_wrong_password_and_unauthenticated_calls_are_refused(site, tmp_path, devices, phones):
    dev = devices(site, tmp_path / "flash")
    server = _server(dev)
    lily = phones("201", server)
    assert lily.register(secret="not-the-secret").status == 401  # challenged again, not bound
    # an INVITE with no credentials is challenged, never forwarded
    stranger = phones("202", server)
    uri = "sip:201@127.0.0.1:%d" % dev.port
    invite = stranger.request("INVITE", uri, "201", "call-x@127.0.0.1")
    stranger.send(invite)
    assert stranger.final().status == 407
    # a registered caller to an extension that has no phone registered: refused, and recorded
    assert lily.register().status == 200
    lily.invite("203")
    assert lily.final().status == 480
    line = dev.wait_for("call 201 -> 203")
    assert "(480)" in line


def test_two_registered_phones_call_each_other(site, tmp_path, devices, phones):
    dev = devices(site, tmp_path / "flash")
    server = _server(dev)
    lily, ming = phones("201", server), phones("202", server)
    assert lily.register().status == 200
    assert ming.register().status == 200
    invite = lily.invite("202")
    rung = ming.recv("INVITE")
    assert rung.from_addr().uri.user == "201"
    assert (rung.vias()[0].host, rung.vias()[0].port) == server  # the device's own address
    ming.answer(rung)
    answered = lily.recv(lambda s: s == 200)
    routes = list(reversed(answered.get_all("record-route")))
    target, tag = answered.contacts()[0].uri, answered.to_addr().tag
    call_id = invite.get("call-id")

    def in_dialog(method):
        req = lily.request(method, target, "202", call_id, [("Route", r) for r in routes], to_tag=tag)
        if method == "ACK":
            req.set("cseq", "%d ACK" % invite.cseq()[0])
        return req

    lily.send(in_dialog("ACK"))
    ming.recv("ACK")
    lily.send(in_dialog("BYE"))
    bye = ming.recv("BYE")
    ming.send(make_response(bye, 200))
    assert lily.final().status == 200
    assert "call 201 -> 202: answered by 202" in dev.wait_for("call 201 -> 202")
    assert dev.stop() == 0
    # the call record is on flash, in wall-clock seconds (the fake NTP set the clock), and
    # `zongji cdr` reads the device's state as it reads host mode's
    res = CliRunner().invoke(main, ["cdr", str(site), "--state", str(tmp_path / "flash" / "state"), "--json"])
    assert res.exit_code == 0, res.output
    (record,) = json.loads(res.output)["records"]
    assert (record["from"], record["to"], record["outcome"], record["status"]) == ("201", "202", "answered", 200)
    assert abs(record["start"] - time.time()) < 120


def test_state_is_written_to_flash_and_restored_after_a_restart(site, tmp_path, devices, phones):
    flash = tmp_path / "flash"
    dev = devices(site, flash)
    lily = phones("201", _server(dev))
    assert lily.register().status == 200
    saved = flash / "state" / "registrations.json"
    assert _until(saved.exists), "registrations.json not written within %d s" % WAIT  # not only at exit
    assert dev.stop() == 0
    rows = json.loads(saved.read_text(encoding="utf-8"))["bindings"]
    assert [row[:2] for row in rows] == [["201", lily.contact]]
    assert not (flash / "state" / "registrations.json.tmp").exists()

    again = devices(site, flash, port=dev.port, wait=False)
    assert "restored 1 registration(s)" in again.wait_for("restored")
    again.listening()
    # 202 calls 201 without 201 registering again: the restored binding rings its socket
    ming = phones("202", _server(again))
    assert ming.register().status == 200
    ming.invite("201")
    assert lily.recv("INVITE").from_addr().uri.user == "202"
    assert again.stop(signal.SIGTERM) == 0  # SIGTERM stops it as cleanly


def test_the_status_line_reports_heap_phones_calls_and_flash_writes(site, tmp_path, devices, phones):
    dev = devices(site, tmp_path / "flash", more=("--report", "1", "--save-interval", "1"))
    first = dev.wait_for("status: heap")
    assert " 0 phones, 0 calls" in first, first
    lily = phones("201", _server(dev))
    assert lily.register().status == 200
    dev.wait_for("registered 201")

    def counts():
        line = dev.wait_for("status: heap")
        words = line.split("status: heap ", 1)[1].split()
        free, total = int(words[0]), int(words[4])
        phones_n = int(line.split(" phones")[0].rsplit(" ", 1)[1])
        writes = int(line.split(" flash writes")[0].rsplit(" ", 1)[1])
        return free, total, phones_n, writes

    free, total, n, writes = counts()
    while n == 0 or writes == 0:  # the registration is saved within save_interval_s
        free, total, n, writes = counts()
    assert n == 1 and 0 < free < total
    _, _, _, later = counts()
    _, _, _, later = counts()
    assert later == writes  # nothing changed: nothing more written


def test_the_watchdog_is_fed_by_the_loop(site, tmp_path, devices):
    flash = tmp_path / "flash"
    devices(site, flash)
    status = flash / "vdevice-wdt"

    def feeds():
        try:
            return int(status.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return -1

    assert _until(lambda: feeds() >= 1)
    first = feeds()
    assert _until(lambda: feeds() >= first + 2, timeout=5), "fed %d then %d" % (first, feeds())
    assert int(status.read_text().split()[1]) == 8000  # config wdt_ms


def test_a_bad_bundle_rolls_back_to_the_previous_one(site, tmp_path, devices):
    flash = tmp_path / "flash"
    dev = devices(site, flash)
    assert dev.stop() == 0
    good = (flash / "site.zjb").read_bytes()
    (flash / "site.prev.zjb").write_bytes(good)
    (flash / "site.zjb").write_bytes(good.replace(b"Shanghai", b"Shangxai"))  # the hash no longer matches
    again = devices.boot(flash)
    assert "site.zjb does not load" in again.wait_for("does not load")
    assert "rolled back" in again.wait_for("rolled back")
    assert "Shanghai" in again.listening()
    assert (flash / "site.zjb").read_bytes() == good
    assert (flash / "site.bad.zjb").exists() and not (flash / "site.prev.zjb").exists()
    assert again.stop() == 0


def test_below_the_heap_floor_new_registrations_get_503(site, tmp_path, devices, phones):
    flash = tmp_path / "flash"
    dev = devices(site, flash)
    assert dev.stop() == 0
    cfg = json.loads((flash / "config.json").read_text())
    cfg["heap_floor"] = 10**12  # never reached: the device is always "low"
    cfg["sip_port"] = port = free_port()
    (flash / "config.json").write_text(json.dumps(cfg))
    again = devices.boot(flash)
    again.listening()
    assert "below the floor" in again.wait_for("free heap")
    lily = phones("201", ("127.0.0.1", port))
    uri = "sip:127.0.0.1:%d" % port
    lily.send(lily.request("REGISTER", uri, "201", "reg-low@127.0.0.1", [("Expires", 600)]))
    refused = lily.final()
    assert refused.status == 503 and refused.get("retry-after") == "30"
    assert again.stop() == 0


def test_safe_mode_button_held_at_boot_skips_the_app(site, tmp_path, devices):
    flash = tmp_path / "flash"
    dev = devices(site, flash)
    assert dev.stop() == 0
    (flash / "vdevice.json").write_text(json.dumps({"pins": {"0": 0}}))  # BOOT (GPIO 0) held low
    again = devices.boot(flash)
    assert "safe mode" in again.wait_for("safe mode")
    assert again.proc.wait(timeout=WAIT) == 0
    assert not any("listening" in ln for ln in again.rest())


def test_a_frozen_board_gets_the_bytecode_added_and_says_so(site, tmp_path, devices, phones):
    dev = devices(site, tmp_path / "flash", board="esp32-devkitc")
    text = "\n".join(dev.lines)
    assert "x 1.7" in text and "for the firmware's bytecode" in text and "frozen" in text
    phone = phones("201", _server(dev))
    for attempt in range(3):
        # the no-PSRAM board's heap is tight: a datagram it has no room for is dropped (said and
        # counted, by design), and a phone that hears nothing sends its REGISTER again
        try:
            got = phone.register()
            break
        except AssertionError:
            assert attempt < 2, "\n".join(dev.rest())
    assert got.status == 200


def test_an_admin_the_heap_has_no_room_for_is_said_once_and_the_device_goes_on(site, tmp_path, devices):
    # the no-PSRAM board at its heap, with sync over the network asked for: the admin either
    # starts or is said to be off once; no MemoryError escapes a task (the timers' least of all;
    # one on a datagram is caught, counted and said, as designed), and the tasks go on running
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        admin = s.getsockname()[1]
    dev = devices(site, tmp_path / "flash", board="esp32-devkitc",
                  more=("--admin", "127.0.0.1:%d" % admin, "--report", "1"))  # fmt: skip
    for _ in range(3):  # the housekeeping task's reports: seconds of the tasks running
        dev.wait_for("status: heap")
    assert dev.stop() == 0
    text = "\n".join(dev.rest())
    said = text.count("no room in the heap for the admin over http")
    assert said == 1 or "admin (sync) on http" in text, text
    assert "Task exception" not in text and "restarting it" not in text, text


def test_a_bundle_too_big_for_the_heap_rolls_back_to_the_one_that_fits(site, tmp_path, devices):
    # 9,000 staff: a bundle the no-PSRAM board's heap cannot load; the example's site was
    # running before it, and runs after it
    from zongji_companion import boards, vdevice
    from zongji_companion.cli import load_site

    flash = tmp_path / "flash"
    dev = devices(site, flash, board="esp32-devkitc")
    assert dev.stop() == 0
    small = (flash / "site.zjb").read_bytes()
    with open(site / "staff.csv", "a", encoding="utf-8", newline="") as f:
        for n in range(30000, 39000):
            f.write("%d,Load Tester %d,Load,load-%d-secret,,staff,,\n" % (n, n, n))
    _, big = load_site(str(site))
    assert len(big) > 500000
    (flash / "site.prev.zjb").write_bytes(small)
    (flash / "site.zjb").write_bytes(big)
    heap, _ = vdevice.heap_for(boards.load("esp32-devkitc"))
    again = devices.boot(flash, heap)
    assert "too big for this board's heap" in again.wait_for("does not load")
    assert "rolled back" in again.wait_for("rolled back")
    assert "(12 extensions" in again.listening()
    assert (flash / "site.zjb").read_bytes() == small and (flash / "site.bad.zjb").read_bytes() == big
    assert again.stop() == 0


def test_a_killed_zongji_device_run_leaves_no_device_behind(site, tmp_path, devices):
    # the device runs in a session of its own; a SIGKILLed supervisor must not orphan it
    dev = devices(site, tmp_path / "flash")
    children = subprocess.run(["pgrep", "-P", str(dev.proc.pid)], capture_output=True, text=True).stdout.split()
    assert children, "no device process under zongji device run"
    os.kill(dev.proc.pid, signal.SIGKILL)
    dev.proc.wait(timeout=WAIT)
    assert _until(lambda: not any(_running(pid) for pid in children))


def _running(pid):
    try:
        with open("/proc/%s/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie is gone
    except OSError:
        return False


def test_a_datagram_larger_than_one_frame_is_dropped_as_a_board_drops_it(site, tmp_path, devices, phones):
    # the ESP32's lwIP reassembles no IP fragments: a SIP datagram over one frame (1,500 B)
    # never reaches a board, so the virtual device drops it too, and goes on serving
    dev = devices(site, tmp_path / "flash")
    lily = phones("201", _server(dev))
    uri = "sip:127.0.0.1:%d" % dev.port

    def register(call_id, pad):
        req = lily.request("REGISTER", uri, "201", call_id, [("Expires", 600)])
        req.add("x-pad", "p" * 10)
        size = len(req.to_bytes())
        req.set("x-pad", "p" * (10 + pad - size))
        assert len(req.to_bytes()) == pad
        lily.send(req)

    register("big@127.0.0.1", 1501)
    with pytest.raises(AssertionError, match="no"):
        lily.recv(timeout=2)
    register("frame@127.0.0.1", 1500)
    assert lily.final().status == 401  # just one frame: answered
    assert lily.register().status == 200

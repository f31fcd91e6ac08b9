"""Faults during a real `zongji sync` and `zongji rollback` (issue 10, part 5), on the virtual
device (`zongji device run --admin`: the firmware's microdot app on the MicroPython unix port)
and, where the same code serves it, host mode.

Power lost at every write step of a sync's store update: the device is booted with
ZONGJI_KILL_AT (firmware/zongji/shell/store.py) in a copy of one prepared flash folder, the real
CLI syncs an edited site to it (a subprocess), and the device is SIGKILLed when it says it
reached the step: of writing the prompt file the sync sends first, of writing site.zjb (its
temp file, the set-aside of the running one, the rename), or of the three moves of a rollback.
Booted again on the same folder it runs the old site or the new one, whole (its version in
`zongji status`), the files on flash agree with it, the CLI said the device went away, and the
next sync (or rollback) goes through.

The device gone between two of a sync's requests (a relay in front of it, the device killed
before the Nth connection): the CLI fails with exit 1 and says it can't reach the device; after
the reboot the device runs the old site, or the new one when the bundle was put before it went.

Also: a sync during 8 answered calls, which all go on (an INFO in each is answered through the
switch, each BYE gets its 200, the records say answered); a bundle too big for the device's
limits (Admin.max_bundle_body, max_bundle, lowered in config.json as a small board does) and a
bundle that does not validate are refused with a message naming the limit or the fault, and
change nothing on flash."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from _vdev import WAIT, Phone, secret_of
from click.testing import CliRunner
from test_faults import _killed_at, boots  # noqa: F401 - the fixture, shared
from test_sync_http import _call, _edit_site, _in_dialog, _tcp_port, target  # noqa: F401 - the fixture
from zongji.shell.store import MOVE_STEPS, STEPS
from zongji.sip.message import make_response
from zongji.site import bundle as site_bundle
from zongji_companion import devicelink, vdevice
from zongji_companion.cli import load_site, main

PLAIN = [s for s in STEPS if s != "set-aside"]  # a prompt is written without keep=True
PROMPT = "menu.main"
PROMPT_FILE = "prompts/%s.ulaw" % PROMPT
PROMPT_BYTES = bytes(range(256)) * 16  # 4 KB of μ-law: what `zongji prompts build` would leave


def _version(data):
    return site_bundle.load(data).version


def _cli(*args):
    res = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return res.exit_code, res.output


class _Flash:
    """A prepared flash folder (after `zongji device run --admin`, stopped) and what a sync of
    the edited site would put there."""

    def __init__(self, folder, url, token, site):
        self.folder, self.url, self.token, self.site = folder, url, token, site
        self.old = (folder / "site.zjb").read_bytes()
        self.old_version = _version(self.old)

    def edit(self):
        _edit_site(self.site)
        (self.site / "prompts").mkdir(exist_ok=True)
        (self.site / "prompts" / (PROMPT + ".ulaw")).write_bytes(PROMPT_BYTES)
        self.new = load_site(str(self.site))[1]
        self.new_version = _version(self.new)
        assert self.new_version != self.old_version

    def copy(self, name):
        dst = self.folder.parent / name
        shutil.copytree(self.folder, dst)
        return dst

    def status(self):
        code, out = _cli("status", "--json", "--device", self.url, "--token", self.token)
        assert code == 0, out
        return json.loads(out)

    def cli(self, *args):
        """The real CLI in its own process (the device dies under it), not waited for."""
        argv = [sys.executable, "-m", "zongji_companion"] + [str(a) for a in args]
        argv += ["--device", self.url, "--token", self.token]
        env = dict(os.environ, PYTHONIOENCODING="utf-8")
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


@pytest.fixture
def flash(site, tmp_path, devices, monkeypatch):
    monkeypatch.setenv("ZONGJI_CACHE", str(tmp_path / "cache"))  # the CLI's and its subprocesses'
    admin = _tcp_port()
    folder = tmp_path / "flash"
    dev = devices(site, folder, more=("--admin", "127.0.0.1:%d" % admin))
    dev.wait_for("admin (sync) on http")
    assert dev.stop() == 0
    return _Flash(folder, "http://127.0.0.1:%d" % admin, vdevice.token_of(str(folder)), site)


def _up(dev):
    dev.wait_for("listening on udp")
    dev.wait_for("admin (sync) on http")
    return dev


def _cut(dev, proc, name, step):
    """The device stops at step of name: pull its plug; the CLI under it fails, and says so."""
    _killed_at(dev, name, step)
    out, _ = proc.communicate(timeout=WAIT + 10)
    assert proc.returncode == 1, out
    assert "zongji: can't reach the device at" in out and "is it on, on this network" in out, out
    return out


def _on_flash(f, folder, running):
    """The files on flash agree with the running version: site.zjb is that bundle, byte for
    byte, and site.prev.zjb (when there) the other one; no rollback half done."""
    other = f.new if running == f.old_version else f.old
    here = f.old if running == f.old_version else f.new
    assert (folder / "site.zjb").read_bytes() == here
    prev = folder / "site.prev.zjb"
    if prev.exists():
        assert prev.read_bytes() == other
    assert not (folder / "site.swap.zjb").exists()


KILLS = [(PROMPT_FILE, s) for s in PLAIN] + [("site.zjb", s) for s in STEPS]


def test_power_lost_at_every_write_step_of_a_sync_leaves_the_old_or_the_new_site(flash, boots):  # noqa: F811
    f = flash
    f.edit()
    for i, (name, step) in enumerate(KILLS):
        folder = f.copy("kill-%d" % i)
        dev = _up(boots(folder, kill_at="%s 1 %s" % (name, step)))
        proc = f.cli("sync", f.site, "--yes")
        out = _cut(dev, proc, name, step)
        assert "synced" not in out

        dev = _up(boots(folder))
        st = f.status()
        running = st["version"]
        new = name == "site.zjb" and step == "renamed"  # the new bundle is in place
        assert running == (f.new_version if new else f.old_version), (name, step, st)
        _on_flash(f, folder, running)
        assert st["extensions"] == (13 if new else 12)
        if name == "site.zjb" and step == "set-aside":  # only site.prev.zjb was left: back to it
            assert st["site_status"].startswith("rolled back"), st
            # status's errors are the problems, with the uptime they happened at; not every line
            assert any(e.endswith("(the bad one is site.bad.zjb)") and e.split("s: ")[0].isdigit()
                       for e in st["errors"]), st["errors"]  # fmt: skip
        else:
            assert st["errors"] == [], st["errors"]  # a boot that went well has none (it joined, set its clock)
        prompt = folder / PROMPT_FILE
        if name == PROMPT_FILE and step != "renamed":
            assert not prompt.exists()  # the new prompt file is not there, nor half of it
        else:
            assert prompt.read_bytes() == PROMPT_BYTES  # whole
        assert st["prompts"] == (1 if prompt.exists() else 0)

        # nothing is wedged: the next sync goes through and the new site runs
        code, out = _cli("sync", f.site, "--device", f.url, "--token", f.token, "--yes")
        assert code == 0 and ("synced" in out or "nothing to send" in out), out
        assert f.status()["version"] == f.new_version
        assert dev.stop() == 0


def test_power_lost_at_every_step_of_a_rollback_leaves_one_site_or_the_other(flash, boots):  # noqa: F811
    f = flash
    f.edit()
    dev = _up(boots(f.folder))
    code, out = _cli("sync", f.site, "--device", f.url, "--token", f.token, "--yes")
    assert code == 0, out
    assert dev.stop() == 0
    moves = [("site.zjb", MOVE_STEPS[0]), ("site.prev.zjb", MOVE_STEPS[0]), ("site.swap.zjb", MOVE_STEPS[0])]
    for i, (name, step) in enumerate(moves):
        folder = f.copy("rollback-%d" % i)
        dev = _up(boots(folder, kill_at="%s 1 %s" % (name, step)))
        _cut(dev, f.cli("rollback"), name, step)
        dev = _up(boots(folder))
        st = f.status()
        # the first move is undone at boot; after the second the swap is finished at boot
        want = f.new_version if i == 0 else f.old_version
        assert st["version"] == want, (name, st)
        _on_flash(f, folder, want)
        other = f.old_version if want == f.new_version else f.new_version
        assert st["previous"] == other  # the pair is whole: it can go back again
        code, out = _cli("rollback", "--device", f.url, "--token", f.token)
        assert code == 0 and other[:12] in out, out
        assert f.status()["version"] == other
        assert dev.stop() == 0


# ---- a sync during 8 calls in progress


@pytest.fixture
def sixteen(site):
    """Five more staff (290 is the edit's): 16 extensions with phones, 8 callers and 8 callees."""
    csv = site / "staff.csv"
    rows = "".join("29%d,Extra %d,Sales 销售,Zq8Lm3Xv7Pw2Rk%d%d,,staff,,\n" % (i, i, i, i) for i in range(1, 6))
    csv.write_text(csv.read_text(encoding="utf-8-sig") + rows, encoding="utf-8")
    return [str(n) for n in range(200, 210)] + ["211"] + ["29%d" % i for i in range(1, 6)]


def test_a_sync_during_8_calls_in_progress_lets_all_8_go_on(sixteen, target, site):  # noqa: F811
    phones = {n: Phone(n, secret_of(site, n), target.sip) for n in sixteen}
    try:
        for p in phones.values():
            assert p.register().status == 200, p.number
        pairs = list(zip(sixteen[:8], sixteen[8:]))
        before = target.status()
        calls = []
        for a, b in pairs:
            invite, ok, _ = _call(phones[a], phones[b])
            _in_dialog(phones[a], "ACK", invite, ok)
            phones[b].recv("ACK")
            calls.append((a, b, invite, ok))
        assert target.status()["calls"] == 8

        _edit_site(site)
        code, out = _cli("sync", site, "--device", target.url, "--token", target.token, "--yes")
        assert code == 0 and "synced: the device runs" in out, out
        after = target.status()
        assert after["version"] != before["version"] and after["extensions"] == 18
        assert after["calls"] == 8  # none dropped by the new site

        for a, b, invite, ok in calls:  # an in-dialog request each way through the switch
            _in_dialog(phones[a], "INFO", invite, ok)
            info = phones[b].recv("INFO")
            phones[b].send(make_response(info, 200))
            assert phones[a].recv(lambda s: s >= 200).status == 200, (a, b)
        for a, b, invite, ok in calls:
            _in_dialog(phones[a], "BYE", invite, ok)
            bye = phones[b].recv("BYE")
            phones[b].send(make_response(bye, 200))
            assert phones[a].final().status == 200, (a, b)
        assert target.status()["calls"] == 0
        code, out = target.cli("cdr", "--json")
        records = json.loads(out)["records"]
        got = sorted((r["from"], r["to"], r["outcome"]) for r in records[-8:])
        assert got == sorted((a, b, "answered") for a, b in pairs)
    finally:
        for p in phones.values():
            p.close()


# ---- bundles the device refuses


def _limits(folder, **limits):
    cfg = json.loads((folder / "config.json").read_text())
    cfg["admin_limits"] = limits
    (folder / "config.json").write_text(json.dumps(cfg))


def _state(folder):
    """The bundles and prompt files on flash, by name."""
    files = [p for p in folder.iterdir() if p.name.endswith(".zjb")]
    if (folder / "prompts").exists():
        files += list((folder / "prompts").iterdir())
    return {p.name: p.read_bytes() for p in files}


def test_a_bundle_too_big_for_the_device_is_refused_naming_the_limit_and_nothing_changes(flash, boots):  # noqa: F811
    f = flash
    csv = f.site / "staff.csv"
    rows = "".join("%d,Person %d,Sales 销售,%s,,staff,,\n" % (3000 + i, i, os.urandom(8).hex()) for i in range(300))
    csv.write_text(csv.read_text(encoding="utf-8-sig") + rows, encoding="utf-8")
    new = load_site(str(f.site))[1]
    for limits, says in (
        ({"max_bundle_body": 4096}, "at most 4096"),  # the body as sent: refused unread
        ({"max_bundle": len(f.old) + 1000}, "%d" % (len(f.old) + 1000)),  # once inflated
    ):
        _limits(f.folder, **limits)
        before = _state(f.folder)
        dev = _up(boots(f.folder))
        code, out = _cli("sync", f.site, "--device", f.url, "--token", f.token, "--yes")
        print("%s: %s" % (limits, out.strip().splitlines()[-1]))
        assert code == 1, out
        assert "zongji: " in out and says in out and "synced" not in out, out
        assert "more than this device takes" in out and "a board with PSRAM" in out, out  # what to do
        st = f.status()
        assert st["version"] == f.old_version and st["previous"] is None
        assert _state(f.folder) == before and not (f.folder / "site.zjb.tmp").exists()
        assert dev.stop() == 0
    assert len(new) > 4096


def test_a_signed_bundle_that_does_not_validate_is_refused_and_nothing_changes(flash, boots):  # noqa: F811
    # test_sync_http sends bytes that are no bundle at all; here a real bundle, altered after
    # it was made (a staff name changed, the version line left as it was)
    f = flash
    dev = _up(boots(f.folder))
    before = _state(f.folder)
    assert "王小明".encode() in f.old
    bad = f.old.replace("王小明".encode(), "王大明".encode(), 1)
    link = devicelink.connect(f.url, f.token)
    with pytest.raises(devicelink.DeviceError) as e:
        link.put_bundle(bad, base=f.old_version)
    assert e.value.code == "invalid" and e.value.status == 422, e.value
    assert "refused" in str(e.value)
    st = f.status()
    assert st["version"] == f.old_version and st["previous"] is None
    assert _state(f.folder) == before
    assert dev.stop() == 0


# ---- the device gone between two of a sync's requests


class _Relay:
    """A TCP relay on loopback between the CLI and the device's admin port, one connection at a
    time (the CLI opens one per request); before relaying the cut-th connection it calls
    cut() (the test pulls the device's plug there), then relays to what is left: nothing."""

    def __init__(self, to, cut_at, cut):
        import socket
        import threading

        self.to, self.cut_at, self.cut = to, cut_at, cut
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.seen = []  # the request lines relayed, in order
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        import select
        import socket

        n = 0
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                continue
            n += 1
            if n == self.cut_at:
                self.cut()
            try:
                up = socket.create_connection(self.to, timeout=2)
            except OSError:
                client.close()  # the CLI sees its connection dropped, as with a dead device
                continue
            first = True
            with client, up:
                pair = {client: up, up: client}
                done = False
                while not done:
                    ready, _, _ = select.select(list(pair), [], [], WAIT)
                    if not ready:
                        break
                    for s in ready:
                        try:
                            data = s.recv(65536)
                        except OSError:
                            data = b""
                        if not data:
                            done = True
                            break
                        if s is client and first:
                            self.seen.append(data.split(b"\r\n", 1)[0].decode("latin-1"))
                            first = False
                        pair[s].sendall(data)

    def close(self):
        self._stop = True
        self._thread.join(timeout=WAIT)
        self.sock.close()


def test_the_device_gone_between_two_requests_of_a_sync_fails_it_cleanly(flash, boots):  # noqa: F811
    # the sync's requests: GET /status, GET /bundle (to compare), GET /prompts, PUT /prompts/ID,
    # PUT /bundle, GET /status (to verify); the device is killed before each of the last five
    import signal

    f = flash
    f.edit()
    host, port = f.url[7:].split(":")
    for cut_at in range(2, 7):
        folder = f.copy("gone-%d" % cut_at)
        dev = _up(boots(folder))

        def cut(dev=dev):
            os.killpg(dev.proc.pid, signal.SIGKILL)
            dev.proc.wait(timeout=WAIT)

        relay = _Relay((host, int(port)), cut_at, cut)
        try:
            argv = [sys.executable, "-m", "zongji_companion", "sync", f.site, "--yes", "--device", relay.url,
                    "--token", f.token]  # fmt: skip
            cache = str(folder.parent / ("cache-%d" % cut_at))  # empty: the CLI fetches the bundle
            env = dict(os.environ, PYTHONIOENCODING="utf-8", ZONGJI_CACHE=cache)
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        finally:
            relay.close()
        out = proc.stdout + proc.stderr
        print("cut before request %d: %s" % (cut_at, " | ".join(out.strip().splitlines()[-3:])))
        assert proc.returncode == 1, out
        last = out.strip().splitlines()[-1]  # on a line of its own, after the bar when it ran
        assert last.startswith("zongji: can't reach the device at %s" % relay.url), out
        assert ("sending" in out) == (cut_at >= 4), out  # the bar starts once the diff is known
        assert "synced" not in out and "Traceback" not in out, out
        assert len(relay.seen) == cut_at - 1, relay.seen
        dev = _up(boots(folder))
        st = f.status()
        applied = cut_at == 6  # the bundle was put before the device went: the new site
        assert st["version"] == (f.new_version if applied else f.old_version), (cut_at, relay.seen, st)
        _on_flash(f, folder, st["version"])
        assert dev.stop() == 0
    print("requests of a sync: %s" % ", ".join(relay.seen))

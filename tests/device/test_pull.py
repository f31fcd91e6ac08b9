"""`zongji pull --device URL -o DIR` against host mode and the virtual device (the `target`
fixture of test_sync_http): the backup holds the device's bundle byte for byte, its prompt files
and call records, and a site folder rebuilt from the bundle that checks clean, bundles to the
same version, and can be edited and synced back — what an admin who lost their PC folder does."""

import hashlib
import json
import math
import os
import wave

from _vdev import Phone, secret_of
from test_sync_http import _call, _cli, _in_dialog, target  # noqa: F401 - target is a fixture
from zongji.media import g711
from zongji.sip.message import make_response
from zongji_companion import siterebuild

_ = target


def _tone_ulaw(hz, seconds=0.5):
    return bytes(
        g711.linear_to_ulaw(int(8000 * math.sin(2 * math.pi * hz * i / 8000))) for i in range(int(8000 * seconds))
    )


def _wav(path, seconds=0.3):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * int(8000 * seconds))


def _with_sounds(site):
    """A hold music recording and two built prompt files, as `zongji prompts build` leaves them."""
    toml = site / "site.toml"
    text = toml.read_text(encoding="utf-8")
    text = text.replace('# [sounds]\n# ringback = "sounds/ringback.wav"\n# hold = "sounds/hold.mp3"',
                        '[sounds]\nhold = "sounds/hold.wav"')  # fmt: skip
    assert 'hold = "sounds/hold.wav"' in text
    toml.write_text(text, encoding="utf-8")
    _wav(str(site / "sounds" / "hold.wav"))
    (site / "prompts").mkdir(exist_ok=True)
    prompts = {"menu.main": _tone_ulaw(440), "sound.hold": _tone_ulaw(1000, 1.0)}
    for stem, data in prompts.items():
        (site / "prompts" / (stem + ".ulaw")).write_bytes(data)
    return prompts


def test_pull_backs_up_the_device_and_rebuilds_a_site_that_syncs_back(target, site, tmp_path):  # noqa: F811
    prompts = _with_sounds(site)
    code, out = target.cli("sync", site, "--yes")
    assert code == 0, out
    lily = Phone("201", secret_of(site, "201"), target.sip)
    ming = Phone("202", secret_of(site, "202"), target.sip)
    assert lily.register().status == 200 and ming.register().status == 200
    invite, ok, _ = _call(lily, ming)
    _in_dialog(lily, "ACK", invite, ok)
    _in_dialog(lily, "BYE", invite, ok)
    ming.send(make_response(ming.recv("BYE"), 200))
    assert lily.final().status == 200
    status = target.status()

    out_dir = tmp_path / "pulled"
    code, out = target.cli("pull", "-o", out_dir, "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["version"] == status["version"] and report["rebuilds_same_version"] is True
    assert report["prompts"] == 2 and report["records"] >= 1 and report["staff"] == 12
    # the backup: the bundle as stored, every prompt file, the call records
    backup = out_dir / "backup"
    bundle = (backup / "site.zjb").read_bytes()
    assert hashlib.sha256(bundle.split(b"\n", 1)[1]).hexdigest() == status["version"]
    for stem, data in prompts.items():
        assert (out_dir / "prompts" / (stem + ".ulaw")).read_bytes() == data
    code, out = _cli("cdr", "--state", backup, "--json")
    assert code == 0, out
    assert [(r["from"], r["to"], r["outcome"]) for r in json.loads(out)["records"]][-1] == ("201", "202", "answered")
    # the hold recording, lost with the PC folder, is written back from the device's prompt
    with wave.open(str(out_dir / "sounds" / "hold.wav")) as w:
        assert w.getframerate() == 8000 and w.getnframes() == len(prompts["sound.hold"])

    # the rebuilt folder is a site like any other: it checks, bundles to the same version ...
    code, out = _cli("check", out_dir)
    assert code == 0, out
    csv_text = (out_dir / "staff.csv").read_text(encoding="utf-8")
    assert secret_of(site, "201") not in csv_text  # the device never had the passwords
    assert "ha1:" in csv_text and "hash:" in csv_text  # 201 has a PIN
    code, out = _cli("bundle", out_dir, "-o", tmp_path / "again.zjb")
    assert code == 0, out
    assert (tmp_path / "again.zjb").read_bytes() == bundle
    # ... the phones' passwords still work against it, and the PIN is the same PIN ...
    # (proven by the sync below leaving the bundle's rows as they were)
    # ... and an edit of it syncs back as one changed line
    csv = out_dir / "staff.csv"
    csv.write_text(csv.read_text(encoding="utf-8").replace(",王小明,", ",王大明,"), encoding="utf-8")
    code, out = target.cli("sync", out_dir, "--yes", "--json")
    assert code == 0, out
    sent = json.loads(out)
    assert sent["prompts"]["send"] == [] and sent["prompts"]["remove"] == []  # the device has them all
    after = target.status()
    assert after["version"] != status["version"] and after["extensions"] == 12
    assert Phone("201", secret_of(site, "201"), target.sip).register().status == 200  # same password
    for p in (lily, ming):
        p.close()


def test_pull_refuses_to_overwrite_a_site_and_writes_nothing_on_failure(target, site, tmp_path):  # noqa: F811
    out_dir = tmp_path / "mine"
    out_dir.mkdir()
    (out_dir / "site.toml").write_text("# my own work\n", encoding="utf-8")
    code, out = target.cli("pull", "-o", out_dir)
    assert code == 1 and "already holds site.toml" in out and "--force" in out
    assert (out_dir / "site.toml").read_text(encoding="utf-8") == "# my own work\n"
    assert sorted(os.listdir(out_dir)) == ["site.toml"]
    # a wrong token: refused before anything is written
    code, out = target.cli("pull", "-o", tmp_path / "other", token="wrong-token-0123456789")
    assert code == 1 and "refused the admin token" in out
    assert not (tmp_path / "other").exists()
    code, out = target.cli("pull", "-o", out_dir, "--force")
    assert code == 0, out
    assert "rebuilt by `zongji pull`" in (out_dir / "site.toml").read_text(encoding="utf-8")


def test_the_rebuilt_toml_reads_back_as_the_site_it_was_made_from():
    import tomllib

    site = {
        "branch": {"name": 'A "quoted" name\\ 上海', "tz": [[0, 28800]], "timezone": "Asia/Shanghai"},
        "menus": {
            "main menu": {
                "options": {"1": "600", "*": "repeat", "#": "hangup"},
                "timeout": 5,
                "prompt": "line one\nline two\ttab",
            }
        },  # fmt: skip
        "trunk": {"did": {"02155550100": "menu:main"}, "register": False, "port": 5060},
        "dialout": {"classes": {"internal": {"allow": [], "pin": []}}},
        "sounds": {},
    }
    back = tomllib.loads(siterebuild.site_toml(site))
    assert "tz" not in back["branch"]
    site["branch"].pop("tz")
    assert back == site
    assert '"1" = "600"' in siterebuild.site_toml(site)  # the keys read as keys pressed


class _HostileOps:
    """A device that lies (a stolen or tampered board answering with the right token): what it
    names becomes paths on the admin's PC, so pull must check every one before writing."""

    def __init__(self, bundle, prompts=None):
        self._bundle, self._prompts = bundle, prompts or {}

    def version(self):
        return hashlib.sha256(self._bundle).hexdigest()

    def bundle(self):
        return self._bundle

    def prompts(self):
        return {stem: hashlib.sha256(body).hexdigest() for stem, body in self._prompts.items()}

    def prompt(self, stem):
        return self._prompts.get(stem)

    def cdr(self, since):
        return []

    def status(self, now_ms):
        return {"version": self.version(), "site": "hostile"}


def _serve_hostile(ops, token):
    """The real admin HTTP app (zongji/shell/admin_http.py, microdot) over `ops`, on loopback."""
    import asyncio
    import socket
    import threading
    import time

    from zongji.admin.protocol import Admin
    from zongji.shell.admin_http import make_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = make_app(Admin(token, ops), lambda: int(time.time() * 1000))
    loop = asyncio.new_event_loop()

    def run():
        loop.run_until_complete(app.start_server("127.0.0.1", port))
        left = asyncio.all_tasks(loop)  # the app's connection reaper
        for task in left:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)

    def stop():
        loop.call_soon_threadsafe(app.shutdown)
        thread.join(10)

    return "http://127.0.0.1:%d" % port, stop


def test_pull_from_a_hostile_device_writes_nothing_outside_or_at_all(site, tmp_path):
    from zongji.site import bundle as site_bundle
    from zongji_companion import sitefiles

    token = "a-hostile-boards-token-0123456789"
    loaded, _ = sitefiles.check_site(str(site))
    good = site_bundle.encode(loaded.site, loaded.extensions)
    cases = []
    for name in ("../../outside.csv", "/etc/cron.d/zongji", "C:\\Windows\\staff.csv"):
        loaded.site["staff"] = dict(loaded.site.get("staff") or {}, file=name)
        cases.append((site_bundle.encode(loaded.site, loaded.extensions), {}, "the staff file"))
    for stem in ("../../../outside", ".hidden", "a/b"):
        cases.append((good, {stem: b"\xff" * 160}, "a prompt named"))
    for bundle, prompts, said in cases:
        url, stop = _serve_hostile(_HostileOps(bundle, prompts), token)
        out = tmp_path / "pulled"
        try:
            code, text = _cli("pull", "--device", url, "--token", token, "-o", out)
        finally:
            stop()
        assert code == 1 and said in text and "nothing was written" in text, text
        assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))
    assert not (tmp_path.parent / "outside.csv").exists() and not (tmp_path / "outside.csv").exists()
    assert not list(tmp_path.parent.glob("outside*"))

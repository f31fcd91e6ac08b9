"""`zongji sync / status / cdr / rollback --device http://...` against host mode (`zongji run
--admin`) and the virtual device (`zongji device run --admin`: the firmware's microdot app on
the real MicroPython unix port), on loopback. A sync is applied live: a call in progress goes
on, a new extension registers at once; bad requests leave the device as it was."""

import http.client
import json
import socket
import sys
import time

import pytest
from _vdev import Phone, VDevice, free_port, secret_of
from click.testing import CliRunner
from zongji.admin import sign
from zongji.sip.message import make_response
from zongji_companion import devicelink, vdevice
from zongji_companion.cli import main


def _tcp_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args, env=None):
    res = CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)
    return res.exit_code, res.output


class _Target:
    """A running switch with its admin URL, token and SIP address."""

    def __init__(self, proc, url, token, sip):
        self.proc, self.url, self.token, self.sip = proc, url, token, sip

    def cli(self, *args, token=None):
        return _cli(*args, "--device", self.url, "--token", token or self.token)

    def status(self):
        code, out = self.cli("status", "--json")
        assert code == 0, out
        return json.loads(out)


@pytest.fixture(params=["host", "vdevice"])
def target(request, site, tmp_path, devices, monkeypatch):
    monkeypatch.setenv("ZONGJI_CACHE", str(tmp_path / "cache"))
    port, admin = free_port(), _tcp_port()
    url = "http://127.0.0.1:%d" % admin
    if request.param == "host":
        argv = [sys.executable, "-m", "zongji_companion", "run", site, "--sip", "127.0.0.1:%d" % port]
        proc = VDevice(argv + ["--admin", "127.0.0.1:%d" % admin])

        def done():
            proc.kill()
            bugs = [ln for ln in proc.rest() if "internal error" in ln or "Traceback" in ln]
            assert not bugs, "host mode logged a bug:\n%s" % "\n".join(bugs)

        request.addfinalizer(done)
        proc.wait_for("listening on udp")
        proc.wait_for("admin (zongji sync")
        token = (site / ".zongji-state" / "admin-token").read_text().strip()
    else:
        flash = tmp_path / "flash"
        proc = devices(site, flash, port=port, more=("--admin", "127.0.0.1:%d" % admin))
        proc.wait_for("admin (sync) on http")
        token = vdevice.token_of(str(flash))
    return _Target(proc, url, token, ("127.0.0.1", port))


def _edit_site(site):
    """Rename 202, add 290 (a desk phone): what an admin changes in the staff CSV."""
    csv = site / "staff.csv"
    text = csv.read_text(encoding="utf-8-sig")
    assert "\n202,王小明," in text
    text = text.replace("\n202,王小明,", "\n202,王大明,")
    text += "290,New Person,Sales 销售,Abcdefgh12345678,,staff,,\n"
    csv.write_text(text, encoding="utf-8")


def _call(a, b):
    """a calls b, b answers: (the INVITE, the 200, b's view of the INVITE)."""
    invite = a.invite(b.number)
    rung = b.recv("INVITE")
    b.answer(rung)
    ok = a.recv(lambda s: s == 200)
    return invite, ok, rung


def _in_dialog(phone, method, invite, ok):
    routes = list(reversed(ok.get_all("record-route")))
    req = phone.request(method, ok.contacts()[0].uri, invite.to_addr().uri.user, invite.get("call-id"),
                        [("Route", r) for r in routes], to_tag=ok.to_addr().tag)  # fmt: skip
    if method == "ACK":
        req.set("cseq", "%d ACK" % invite.cseq()[0])
    phone.send(req)


def test_sync_applies_live_and_status_and_cdr_follow(target, site):
    before = target.status()
    assert before["extensions"] == 12 and before["site_status"] == "loaded"
    lily = Phone("201", secret_of(site, "201"), target.sip)
    ming = Phone("202", secret_of(site, "202"), target.sip)
    assert lily.register().status == 200 and ming.register().status == 200
    invite, ok, _ = _call(lily, ming)
    _in_dialog(lily, "ACK", invite, ok)
    ming.recv("ACK")

    _edit_site(site)
    code, out = _cli("sync", site, "--device", target.url, "--token", target.token, "--dry-run")
    assert code == 0, out
    assert "+ 290 New Person" in out and "~ 202 王大明: keys, name" in out and "dry run" in out
    assert target.status()["version"] == before["version"]  # a dry run sends nothing
    code, out = _cli("sync", site, "--device", target.url, "--token", target.token, "--yes")
    assert code == 0, out
    assert "synced: the device runs" in out
    after = target.status()
    assert after["version"] != before["version"] and after["previous"] == before["version"]
    assert after["extensions"] == 13 and after["last_sync"]["how"] == "synced"
    assert {p["number"] for p in after["registered"]} == {"201", "202"}
    assert {p["user_agent"] for p in after["registered"]} == {lily.agent, ming.agent}
    code, out = target.cli("status")
    assert code == 0 and lily.agent in out and "127.0.0.1:%d" % lily.addr[1] in out, out

    # the call made before the sync goes on to its end
    _in_dialog(lily, "BYE", invite, ok)
    bye = ming.recv("BYE")
    ming.send(make_response(bye, 200))
    assert lily.final().status == 200
    # the new extension is there at once, no restart
    new = Phone("290", "Abcdefgh12345678", target.sip)
    assert new.register().status == 200
    # and the call's record comes back over the admin protocol
    code, out = target.cli("cdr", "--json")
    assert code == 0, out
    records = json.loads(out)["records"]
    assert [(r["from"], r["to"], r["outcome"]) for r in records][-1] == ("201", "202", "answered")
    code, out = target.cli("cdr", "--csv")
    assert out.splitlines()[0].startswith("start,answer,end") and ",201,202,answered," in out
    # a second sync of the same folder has nothing to do
    code, out = _cli("sync", site, "--device", target.url, "--token", target.token, "--yes")
    assert code == 0 and "nothing to send" in out
    # rollback goes back, and forward again
    code, out = target.cli("rollback")
    assert code == 0 and before["version"][:12] in out, out
    assert target.status()["version"] == before["version"]
    assert Phone("290", "Abcdefgh12345678", target.sip).register().status == 401  # gone again
    code, out = target.cli("rollback")
    assert target.status()["version"] == after["version"]
    for p in (lily, ming, new):
        p.close()


def test_wrong_token_and_bad_requests_change_nothing(target, site):
    before = target.status()
    code, out = target.cli("status", token="wrong-token-0123456789")
    assert code == 1 and "refused the admin token" in out
    _edit_site(site)
    code, out = _cli("sync", site, "--device", target.url, "--token", "wrong-token-0123456789", "--yes")
    assert code == 1
    # by hand: unsigned, oversize, a replay, a body that is not a bundle
    host, port = target.url[7:].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("PUT", "/bundle?base=none", body=b"x" * 100)
    resp = conn.getresponse()
    assert resp.status == 401 and json.loads(resp.read())["error"] == "unauthenticated"
    conn.close()
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("PUT", "/bundle?base=none")
    conn.putheader("Content-Length", str(10**7))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413
    conn.close()
    dev = devicelink.connect(target.url, target.token)
    status = dev.status()
    with pytest.raises(devicelink.DeviceError) as e:
        dev.json("PUT", "/bundle?base=%s" % status["version"], b"not a bundle\n")
    assert e.value.code == "invalid"
    with pytest.raises(devicelink.DeviceError) as e:
        dev.put_bundle(b"whatever", base="0" * 64)
    assert e.value.code == "conflict" and e.value.data["device_version"] == before["version"]
    nonce = "ab" * 16
    headers = sign.sign_request(target.token, "POST", "/rollback", b"", int(time.time() * 1000), nonce)
    first = dev.link.exchange("POST", "/rollback", headers, b"")
    again = dev.link.exchange("POST", "/rollback", headers, b"")
    assert json.loads(again[2])["error"] == "replayed" or json.loads(first[2])["error"] == "clock"
    after = target.status()
    assert after["version"] == before["version"] and after["previous"] is None

"""The admin protocol (zongji.admin): signatures, replays, the clock window, failure budgets,
limits and the operations, over the real SiteStore in a folder of its own. Runs under CPython
and MicroPython alike; the transports (HTTP, serial) are tested through real sockets and ptys
in tests/device/test_sync_http.py and tests/device/test_serial_admin.py."""

import json
import os

from _support import IS_MICROPYTHON, REPO, read_bytes
from zongji.admin import protocol, sign
from zongji.admin.protocol import MAX_NONCES, WINDOW_MS, Admin
from zongji.shell.adminops import AdminOps
from zongji.shell.sitefile import PREV, SITE, SiteStore

TOKEN = "k" * 32
FOLDER = "zongji-admin-test"
_counter = [0]


def _fixture(name="bundle_fixture.zjb"):
    return read_bytes(REPO + "/tests/core/data/" + name)


def _nonce():
    _counter[0] += 1
    return "%032x" % _counter[0]


def _fresh_folder():
    base = "/tmp"
    try:
        os.stat(base)
    except OSError:
        base = os.getcwd()
    root = base + "/" + FOLDER
    _rmtree(root)
    os.mkdir(root)
    return root


def _rmtree(path):
    try:
        names = os.listdir(path)
    except OSError:
        return
    for n in names:
        p = path + "/" + n
        try:
            os.remove(p)
        except OSError:
            _rmtree(p)
    os.rmdir(path)


class _Shell:
    """What a shell gives AdminOps: no switch running here (the switch is tested elsewhere)."""

    sw = None
    errors = ()

    def __init__(self):
        self.applied = []
        self.reboots = 0

    def reboot_soon(self):
        self.reboots += 1


def _admin(bundle=True):
    shell = _Shell()
    files = SiteStore(_fresh_folder(), log=lambda text: None, apply=shell.applied.append)
    if bundle:
        with open(files.path(SITE), "wb") as f:
            f.write(_fixture())
        files.load()
    return Admin(TOKEN, AdminOps(files, shell)), files, shell


def _call(admin, method, path, body=b"", now=1000000, t=None, token=TOKEN, source="10.0.0.9", nonce=None):
    nonce = nonce or _nonce()
    headers = sign.sign_request(token, method, path, body, now if t is None else t, nonce)
    resp = admin.handle(method, path, headers, body, source, now)
    return resp, nonce


def _zlib(data):
    try:
        import zlib

        return zlib.compress(data)
    except ImportError:  # MicroPython: deflate may compress (a port option); tests skip then
        import io

        import deflate

        buf = io.BytesIO()
        f = deflate.DeflateIO(buf, deflate.ZLIB)
        f.write(data)
        f.close()
        return buf.getvalue()


# ---- HMAC ---------------------------------------------------------------------------------


def test_hmac_sha256_matches_rfc4231():
    # RFC 4231 test cases 1, 2 and 6 (a key longer than the block)
    assert sign.hexlify(sign.hmac_sha256(b"\x0b" * 20, b"Hi There")) == (
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    )
    assert sign.hexlify(sign.hmac_sha256(b"Jefe", b"what do ya want for nothing?")) == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
    assert sign.hexlify(sign.hmac_sha256(b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First")) == (
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    )


# ---- authentication -----------------------------------------------------------------------


def test_a_signed_status_is_answered_and_the_answer_is_signed():
    admin, files, _ = _admin()
    resp, nonce = _call(admin, "GET", "/status")
    assert resp.status == 200
    data = resp.json()
    assert data["version"] == files.site.version and data["extensions"] == len(files.site.directory)
    assert resp.headers["x-zongji-auth"] == sign.response_signature(TOKEN, nonce, 200, resp.body)
    assert resp.headers["x-zongji-auth"] != sign.response_signature("x" * 32, nonce, 200, resp.body)


def test_unsigned_wrong_token_and_tampered_requests_are_refused_and_remember_nothing():
    admin, files, _ = _admin()
    before = files.store.read(SITE)
    resp = admin.handle("GET", "/status", {}, b"", "10.0.0.9", 1000000)
    assert resp.status == 401 and resp.json()["error"] == "unauthenticated"
    resp, _ = _call(admin, "GET", "/status", token="w" * 32)
    assert resp.status == 401 and "token" in resp.json()["message"]
    # signed for one body, sent with another; signed for one path, sent to another
    h = sign.sign_request(TOKEN, "PUT", "/bundle?base=none", b"a", 1000000, _nonce())
    assert admin.handle("PUT", "/bundle?base=none", h, b"b", "10.0.0.9", 1000000).status == 401
    h = sign.sign_request(TOKEN, "GET", "/status", b"", 1000000, _nonce())
    assert admin.handle("POST", "/rollback", h, b"", "10.0.0.9", 1000000).status == 401
    assert "x-zongji-auth" not in resp.headers  # a stranger gets no signed answer
    assert len(admin._nonces) == 0  # nothing kept for any of them
    assert files.store.read(SITE) == before


def test_a_replayed_request_is_refused():
    admin, _, _ = _admin()
    nonce = _nonce()
    h = sign.sign_request(TOKEN, "POST", "/reboot", b"", 1000000, nonce)
    assert admin.handle("POST", "/reboot", dict(h), b"", "10.0.0.9", 1000000).status == 200
    again = admin.handle("POST", "/reboot", dict(h), b"", "10.0.0.9", 1000500)
    assert again.status == 401 and again.json()["error"] == "replayed"
    assert admin.backend.shell.reboots == 1


def test_a_request_outside_the_window_gets_the_device_time_and_can_sign_again():
    admin, _, _ = _admin()
    resp, _ = _call(admin, "GET", "/status", now=5000, t=5000 + WINDOW_MS + 1)
    assert resp.status == 401 and resp.json()["error"] == "clock"
    assert resp.json()["device_time"] == 5000
    resp, _ = _call(admin, "GET", "/status", now=5000, t=resp.json()["device_time"])
    assert resp.status == 200
    # a stale request replayed after its nonce was forgotten is refused by the window
    nonce = _nonce()
    h = sign.sign_request(TOKEN, "GET", "/status", b"", 10000, nonce)
    assert admin.handle("GET", "/status", dict(h), b"", "10.0.0.9", 10000).status == 200
    late = admin.handle("GET", "/status", dict(h), b"", "10.0.0.9", 10000 + WINDOW_MS + 2)
    assert late.status == 401 and late.json()["error"] == "clock"


def test_failures_lock_out_their_source_only_for_a_while():
    admin, _, _ = _admin()
    for _ in range(5):
        resp, _ = _call(admin, "GET", "/status", token="w" * 32, source="10.0.0.66")
        assert resp.status == 401
    resp, _ = _call(admin, "GET", "/status", source="10.0.0.66")
    assert resp.status == 429 and resp.headers["retry-after"]
    resp, _ = _call(admin, "GET", "/status", source="10.0.0.9")  # the admin's own PC
    assert resp.status == 200
    resp, _ = _call(admin, "GET", "/status", source="10.0.0.66", now=1000000 + 3000)
    assert resp.status == 200


def test_failures_from_many_sources_are_bounded():
    admin, _, _ = _admin()
    for i in range(200):
        _call(admin, "GET", "/status", token="w" * 32, source="10.1.%d.%d" % (i // 250, i % 250))
    assert len(admin.failures) <= admin.failures.max_sources
    resp, _ = _call(admin, "GET", "/status", source="10.0.0.9")
    assert resp.status == 429  # the overall budget is spent too: everyone waits a little
    resp, _ = _call(admin, "GET", "/status", source="10.0.0.9", now=1000000 + 11000)
    assert resp.status == 200


def test_the_replay_table_is_bounded():
    admin, _, _ = _admin()
    for i in range(MAX_NONCES):
        assert _call(admin, "GET", "/status", now=1000000 + i)[0].status == 200
    resp, _ = _call(admin, "GET", "/status", now=1000000 + MAX_NONCES)
    assert resp.status == 503 and resp.json()["error"] == "busy"
    resp, _ = _call(admin, "GET", "/status", now=1000000 + WINDOW_MS + MAX_NONCES + 1)
    assert resp.status == 200  # the old ones left the window


def test_limits_are_checked_before_the_body_is_read():
    admin, _, _ = _admin()
    h = sign.sign_request(TOKEN, "GET", "/status", b"", 1000000, _nonce())
    refused = admin.precheck("PUT", "/bundle?base=none", h, admin.max_bundle_body + 1, "10.0.0.9", 1000000)
    assert refused.status == 413
    assert admin.precheck("GET", "/status", h, admin.max_small + 1, "10.0.0.9", 1000000).status == 413
    assert admin.precheck("GET", "/status", h, 0, "10.0.0.9", 1000000) is None
    assert (
        admin.precheck(
            "GET",
            "/status",
            {"x-zongji-time": "x", "x-zongji-nonce": "0" * 16, "x-zongji-auth": "0" * 64},
            0,
            "1.2.3.4",
            1000000,
        ).status
        == 400
    )


# ---- the operations -----------------------------------------------------------------------


def test_put_bundle_stores_applies_and_keeps_the_previous():
    admin, files, shell = _admin()
    old = files.site.version
    new = _fixture("bundle_fixture_b.zjb")
    resp, _ = _call(admin, "PUT", "/bundle?base=%s&deflate=1" % old, _zlib(new))
    assert resp.status == 200, resp.body
    data = resp.json()
    assert data["previous"] == old and data["version"] == files.site.version != old
    assert files.store.read(SITE) == new and files.store.read(PREV) == _fixture()
    assert [s.version for s in shell.applied] == [data["version"]]
    assert files.site.extension("206").name == "Chen Jing"
    status = _call(admin, "GET", "/status")[0].json()
    assert status["version"] == data["version"] and status["previous"] == old
    assert status["last_sync"]["how"] == "synced"
    got = _call(admin, "GET", "/bundle")[0]
    assert got.status == 200 and got.body == new
    packed = _call(admin, "GET", "/bundle?deflate=1")[0]  # what pull and sync ask for
    assert packed.status == 200
    if packed.type == "application/zlib":  # a MicroPython built without deflate compression sends it as is
        assert len(packed.body) < len(new) and protocol.inflate(packed.body, len(new)) == new
    else:
        assert packed.body == new and IS_MICROPYTHON


def test_put_bundle_from_a_stale_base_is_a_conflict_naming_both():
    admin, files, shell = _admin()
    running = files.site.version
    resp, _ = _call(admin, "PUT", "/bundle?base=%s" % ("0" * 64), _fixture("bundle_fixture_b.zjb"))
    assert resp.status == 409
    assert resp.json()["device_version"] == running and resp.json()["base"] == "0" * 64
    assert files.store.read(SITE) == _fixture() and shell.applied == []


def test_a_bundle_that_does_not_validate_leaves_everything_as_it_was():
    admin, files, shell = _admin()
    running = files.site.version
    bad = _fixture("bundle_fixture_b.zjb").replace(b"Chen Jing", b"Chen Ling")  # its hash fails
    resp, _ = _call(admin, "PUT", "/bundle?base=" + running, bad)
    assert resp.status == 422 and "refused" in resp.json()["message"]
    resp, _ = _call(admin, "PUT", "/bundle?base=%s&deflate=1" % running, b"not zlib at all")
    assert resp.status == 400
    assert files.store.read(SITE) == _fixture() and files.store.read(PREV) is None
    assert files.site.version == running and shell.applied == []


def test_a_deflate_bomb_stops_at_the_limit():
    admin, files, _ = _admin()
    admin.max_bundle = 4096
    resp, _ = _call(admin, "PUT", "/bundle?base=%s&deflate=1" % files.site.version, _zlib(b"x" * 100000))
    assert resp.status == 413
    assert files.store.read(SITE) == _fixture()


def test_rollback_goes_back_and_forward_again():
    admin, files, shell = _admin()
    a = files.site.version
    resp, _ = _call(admin, "POST", "/rollback")
    assert resp.status == 404  # nothing to roll back to yet
    resp, _ = _call(admin, "PUT", "/bundle?base=" + a, _fixture("bundle_fixture_b.zjb"))
    b = resp.json()["version"]
    resp, _ = _call(admin, "POST", "/rollback")
    assert resp.status == 200 and resp.json()["version"] == a and files.site.version == a
    assert files.store.read(SITE) == _fixture()
    resp, _ = _call(admin, "POST", "/rollback")
    assert resp.json()["version"] == b and files.site.extension("206") is not None
    assert [s.version for s in shell.applied] == [b, a, b]
    # and the next boot loads what the last rollback left
    again = SiteStore(files.root, log=lambda t: None)
    assert again.load()[0].version == b


def test_a_first_sync_to_a_blank_device():
    admin, files, shell = _admin(bundle=False)
    assert _call(admin, "GET", "/bundle")[0].status == 404
    status = _call(admin, "GET", "/status")[0].json()
    assert status["version"] is None and status["site_status"] == "no site"
    resp, _ = _call(admin, "PUT", "/bundle?base=none", _fixture())
    assert resp.status == 200 and resp.json()["previous"] is None
    assert files.site is not None and len(shell.applied) == 1


def test_prompts_by_hash():
    admin, files, _ = _admin()
    audio = bytes(range(256)) * 8
    h = sign.body_hash(audio)
    resp, _ = _call(admin, "PUT", "/prompts/menu.main?sha256=" + "0" * 64, audio)
    assert resp.status == 422  # damaged on the way: not stored
    assert _call(admin, "GET", "/prompts")[0].json()["prompts"] == {}
    resp, _ = _call(admin, "PUT", "/prompts/menu.main?sha256=" + h, audio)
    assert resp.status == 200
    assert _call(admin, "GET", "/prompts")[0].json()["prompts"] == {"menu.main": h}
    with open(files.path("prompts/menu.main.ulaw"), "rb") as f:
        assert f.read() == audio
    got = _call(admin, "GET", "/prompts/menu.main")[0]
    assert got.status == 200 and got.body == audio  # what `zongji pull` backs up
    assert _call(admin, "GET", "/prompts/menu.other")[0].status == 404
    for bad in ("../site.zjb", "..", "a/b"):
        assert _call(admin, "GET", "/prompts/" + bad)[0].status in (400, 404), bad  # no way out of prompts/
    # a fresh store hashes what is on flash
    assert SiteStore(files.root, log=lambda t: None).prompts() == {"menu.main": h}
    for bad in ("../site.zjb", ".hidden", "a/b"):
        resp, _ = _call(admin, "PUT", "/prompts/%s?sha256=%s" % (bad, h), audio)
        assert resp.status in (400, 404, 413), bad
    assert sorted(os.listdir(files.root)) == ["prompts", "site.zjb"]  # nothing written beside
    assert _call(admin, "DELETE", "/prompts/menu.main")[0].status == 200
    assert _call(admin, "DELETE", "/prompts/menu.main")[0].status == 404
    assert _call(admin, "GET", "/prompts")[0].json()["prompts"] == {}


def test_unknown_paths_and_methods():
    admin, _, _ = _admin()
    assert _call(admin, "GET", "/nothing")[0].status == 404
    resp, _ = _call(admin, "DELETE", "/status")
    assert resp.status == 405 and json.loads(resp.body)["error"] == "method"
    assert _call(admin, "GET", "/cdr?since=x")[0].status == 400
    assert _call(admin, "GET", "/cdr")[0].json() == {"records": [], "count": 0}


def test_a_delta_sync_sends_only_the_changed_lines():
    admin, files, shell = _admin()
    old, new = _fixture(), _fixture("bundle_fixture_b.zjb")
    kept = _fixture("bundle_fixture_b.delta")  # MicroPython has no difflib: CPython's, kept
    if _is_mpy():
        body = kept
    else:
        from zongji.admin.delta import make

        body = make(old, new)
        assert body == kept, "regenerate tests/core/data/bundle_fixture_b.delta (make_fixture.py)"
    assert len(body) < len(new) // 2
    resp, _ = _call(admin, "PUT", "/bundle?base=%s&delta=1" % files.site.version, body)
    assert resp.status == 200, resp.body
    assert files.store.read(SITE) == new and files.site.extension("206").name == "Chen Jing"


def test_a_delta_that_does_not_fit_is_refused():
    admin, files, shell = _admin()
    v = files.site.version
    for bad in (b"nonsense", b"zongji-delta-1\n=0 9999\n", b"zongji-delta-1\n+5\nx\n", b"zongji-delta-1\n=0 2\n"):
        resp, _ = _call(admin, "PUT", "/bundle?base=%s&delta=1" % v, bad)
        assert resp.status == 422, (bad, resp.body)
    assert files.store.read(SITE) == _fixture() and shell.applied == []


def _is_mpy():
    import sys

    return sys.implementation.name == "micropython"

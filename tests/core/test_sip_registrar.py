"""zongji.switch.registrar: REGISTER with digest auth, bindings (RFC 3261 section 10.3), expiry,
events, persistence, and what a prober (svwar) can and cannot learn."""

import json

from _sites import STAFF, build, raw_site
from _support import IS_MICROPYTHON, SkipTest, counter_random, raises
from zongji.sip.auth import parse_challenge, pick_challenge, respond
from zongji.sip.digest import Authenticator
from zongji.sip.message import make_request
from zongji.sip.parser import parse
from zongji.switch.guard import Guard
from zongji.switch.registrar import Registrar
from zongji.switch.registrations import LoadError

T0 = 5000000  # an arbitrary "now" in ms (a whole second: expiry is kept in seconds)
DESK = ("192.168.1.21", 5060)
SOFT = ("192.168.1.80", 51234)
NONE = object()  # "no Contact header" (a query)


def _registrar(guard=None, site=None):
    site = site or build()
    auth = Authenticator(site.realm, b"0123456789abcdef", random_bytes=counter_random(), algorithms=site.digest)
    return Registrar(site, auth, guard, random_bytes=counter_random())


class Phone:
    """A phone registering one extension: builds REGISTERs, answers the 401 with digest."""

    def __init__(self, number, password, addr=DESK, user=None, call_id=None, contact=None):
        self.number = number
        self.password = password
        self.user = user or number
        self.addr = addr
        self.call_id = call_id or "reg%s-%d@%s" % (number, addr[1], addr[0])
        self.contact = contact or "<sip:%s@%s:%d>" % (number, addr[0], addr[1])
        self.cseq = 0
        self.challenge = None
        self.nc = 0

    def request(self, contact=None, expires=None, headers=()):
        self.cseq += 1
        extra = []
        if expires is not None:
            extra.append(("Expires", expires))
        if self.challenge is not None:
            self.nc += 1
            value = respond(self.challenge, "REGISTER", "sip:zongji", self.user, self.password, "c0ffee", self.nc)
            extra.append(("Authorization", value))
        extra.extend(headers)
        if contact is None:
            contact = self.contact
        req = make_request(
            "REGISTER",
            "sip:zongji",
            "<sip:%s@zongji>;tag=t%s" % (self.number, self.addr[1]),
            "<sip:%s@zongji>" % self.number,
            self.call_id,
            self.cseq,
            via="SIP/2.0/UDP %s:%d;branch=z9hG4bK%d" % (self.addr[0], self.addr[1], self.cseq),
            contact=None if contact is NONE else contact,
            headers=extra,
        )
        return parse(req.to_bytes())  # through the wire format, as the shell would

    def register(self, reg, now, contact=None, expires=None, headers=()):
        """Send one REGISTER; on a 401 answer the challenge once. The final response."""
        resp = reg.handle(self.request(contact, expires, headers), self.addr, now)
        if resp.status == 401:
            self.challenge = pick_challenge(resp.get_all("www-authenticate"))
            self.nc = 0
            resp = reg.handle(self.request(contact, expires, headers), self.addr, now)
        return resp


def _desk(**kw):
    return Phone("201", "s3cret-201-x", DESK, **kw)


def _soft(**kw):
    return Phone("201", "s3cret-201-x", SOFT, **kw)


def _contacts(resp):
    return [v for v in resp.get_all("contact")]


# ---- authentication ------------------------------------------------------------------------


def _sha256_site():
    return build(raw_site(staff={"default_class": "internal", "digest": ["SHA-256", "MD5"]}))


def test_register_is_challenged_then_bound():
    reg = _registrar(site=_sha256_site())
    phone = _desk()
    first = reg.handle(phone.request(), DESK, T0)
    assert first.status == 401
    algs = [parse_challenge(v)["algorithm"] for v in first.get_all("www-authenticate")]
    assert algs == ["SHA-256", "MD5"]
    assert ";tag=" in first.get("to")
    assert reg.contacts("201", T0) == [] and not reg.dirty

    resp = phone.register(reg, T0)
    assert resp.status == 200
    assert _contacts(resp) == ["<sip:201@192.168.1.21:5060>;expires=3600"]
    assert reg.contacts("201", T0 + 1000) == [("sip:201@192.168.1.21:5060", DESK, T0 + 3600000)]
    assert reg.take_events() == [("registered", "201", "sip:201@192.168.1.21:5060", DESK)]
    assert reg.dirty
    assert len(reg) == 1


def _probe(reg, user, password, to_user, now):
    """A svwar/svcrack-style attempt: fetch a challenge, answer it for `user`, get the verdict."""
    phone = Phone(to_user, password, ("192.168.1.66", 5060), user=user, call_id="probe@x")
    resp = phone.register(reg, now)
    return resp


def _shape(resp):
    challenges = []
    for value in resp.get_all("www-authenticate"):
        params = parse_challenge(value)
        assert len(params.pop("nonce")) == 52
        challenges.append(sorted(params.items()))
    names = [name for name, _ in resp.headers]
    return resp.status, resp.reason, names, challenges, len(resp.to_bytes())


def test_wrong_password_unknown_user_and_mobile_only_look_the_same():
    reg = _registrar()
    bare = reg.handle(Phone("299", "x", ("192.168.1.66", 5060), call_id="probe@x").request(), DESK, T0)
    wrong = _probe(reg, "201", "not-the-password", "201", T0)
    unknown = _probe(reg, "299", "whatever-it-is", "299", T0)
    mobile = _probe(reg, "205", "", "205", T0)  # 205 has a mobile and no secret
    mobile2 = _probe(reg, "205", "guess", "205", T0)
    assert wrong.status == 401
    assert _shape(wrong) == _shape(unknown) == _shape(mobile) == _shape(mobile2) == _shape(bare)
    assert "stale" not in wrong.get("www-authenticate")
    assert reg.contacts("205", T0) == [] and reg.take_events() == []


def test_username_must_be_the_extension_registered():
    reg = _registrar()
    # 202's own good password, registering 201
    resp = Phone("201", "s3cret-202-x", user="202").register(reg, T0)
    assert (resp.status, resp.reason) == (403, "Username Does Not Match To")
    assert reg.contacts("201", T0) == []


def test_stale_nonce_gets_a_stale_challenge_and_the_phone_retries():
    reg = _registrar()
    phone = _desk()
    assert phone.register(reg, T0).status == 200
    later = T0 + 600000  # past the authenticator's 300 s nonce lifetime
    resp = reg.handle(phone.request(), DESK, later)
    assert resp.status == 401
    assert all("stale=true" in v for v in resp.get_all("www-authenticate"))
    assert phone.register(reg, later).status == 200


def test_malformed_credentials_are_400():
    reg = _registrar()
    phone = _desk()
    resp = reg.handle(phone.request(headers=[("Authorization", "Digest username")]), DESK, T0)
    assert resp.status == 400
    resp = reg.handle(phone.request(headers=[("Authorization", 'Digest username="201"')]), DESK, T0)
    assert resp.status == 400


def test_failures_feed_the_guard():
    guard = Guard()
    reg = _registrar(guard)
    for _ in range(9):
        assert _probe(reg, "201", "guess", "201", T0).status == 401
    assert guard.user_allowed("192.168.1.66", "201", T0)
    _probe(reg, "201", "guess", "201", T0)
    # ten wrong passwords lock that user at that address, and only that user
    assert not guard.user_allowed("192.168.1.66", "201", T0)
    assert guard.allowed("192.168.1.66", T0) and guard.user_allowed("192.168.1.66", "202", T0)
    assert guard.take_events()[-1][:3] == ("locked", "192.168.1.66", "201")
    assert guard.allowed(DESK[0], T0)  # a 401 without credentials is no failure
    assert _desk().register(reg, T0).status == 200


def test_non_register_is_the_callers_mistake():
    reg = _registrar()
    req = make_request("OPTIONS", "sip:zongji", "<sip:201@zongji>;tag=1", "<sip:zongji>", "c@x", 1, via=None)
    assert isinstance(raises(ValueError, reg.handle, req, DESK, T0), ValueError)


# ---- bindings ------------------------------------------------------------------------------


def test_refresh_moves_expiry_without_dirtying():
    reg = _registrar()
    phone = _desk()
    phone.register(reg, T0)
    reg.take_events()
    reg.dirty = False
    resp = phone.register(reg, T0 + 1800000)
    assert resp.status == 200
    assert _contacts(resp) == ["<sip:201@192.168.1.21:5060>;expires=3600"]
    assert reg.contacts("201", T0 + 1800000)[0][2] == T0 + 5400000
    assert not reg.dirty
    assert reg.take_events() == []


def test_expiry_drops_the_binding():
    reg = _registrar()
    _desk().register(reg, T0, expires=60)
    reg.take_events()
    reg.dirty = False
    assert reg.next_timer() == T0 + 60000
    reg.handle_timer(T0 + 59999)
    assert len(reg.contacts("201", T0 + 59999)) == 1 and not reg.dirty
    assert reg.contacts("201", T0 + 60000) == []  # gone for queries even before the timer
    reg.handle_timer(T0 + 60000)
    assert reg.take_events() == [("expired", "201", "sip:201@192.168.1.21:5060", DESK)]
    assert reg.dirty and len(reg) == 0
    assert reg.next_timer() is None


def test_desk_phone_and_softphone_both_ring():
    reg = _registrar()
    _desk().register(reg, T0)
    resp = _soft(contact="<sip:201@192.168.1.80:51234;transport=udp>").register(reg, T0 + 5000, expires=600)
    assert _contacts(resp) == [
        "<sip:201@192.168.1.21:5060>;expires=3595",
        "<sip:201@192.168.1.80:51234;transport=udp>;expires=600",
    ]
    got = reg.contacts("201", T0 + 5000)
    assert [c[1] for c in got] == [DESK, SOFT]
    assert reg.next_timer() == T0 + 605000


def test_expires_zero_removes_one_contact():
    reg = _registrar()
    desk = _desk()
    desk.register(reg, T0)
    _soft().register(reg, T0)
    reg.take_events()
    resp = desk.register(reg, T0 + 1000, expires=0)
    assert _contacts(resp) == ["<sip:201@192.168.1.80:51234>;expires=3599"]
    assert reg.take_events() == [("unregistered", "201", "sip:201@192.168.1.21:5060", DESK)]


def test_contact_expires_param_beats_the_header():
    reg = _registrar()
    resp = _desk().register(reg, T0, contact="<sip:201@192.168.1.21:5060>;expires=120", expires=3600)
    assert _contacts(resp) == ["<sip:201@192.168.1.21:5060>;expires=120"]


def test_star_with_expires_zero_removes_everything():
    reg = _registrar()
    desk = _desk()
    desk.register(reg, T0)
    _soft().register(reg, T0)
    reg.take_events()
    assert desk.register(reg, T0, contact="*").status == 400  # '*' needs Expires: 0
    assert len(reg.contacts("201", T0)) == 2
    resp = desk.register(reg, T0 + 1000, contact="*", expires=0)
    assert resp.status == 200 and _contacts(resp) == []
    assert [e[0] for e in reg.take_events()] == ["unregistered", "unregistered"]
    assert reg.contacts("201", T0 + 1000) == [] and reg.next_timer() is not None
    reg.handle_timer(reg.next_timer())  # a stale lower bound is harmless
    assert reg.next_timer() is None


def test_too_brief_is_423_and_too_long_is_shortened():
    reg = _registrar()
    phone = _desk()
    resp = phone.register(reg, T0, expires=30)
    assert (resp.status, resp.get("min-expires")) == (423, "60")
    resp = phone.register(reg, T0, contact="<sip:201@192.168.1.21:5060>;expires=59")
    assert resp.status == 423
    assert reg.contacts("201", T0) == [] and not reg.dirty
    resp = phone.register(reg, T0, expires=86400)
    assert _contacts(resp) == ["<sip:201@192.168.1.21:5060>;expires=3600"]


def test_old_cseq_on_the_same_call_id_is_refused_and_changes_nothing():
    reg = _registrar()
    phone = _desk()
    phone.register(reg, T0)
    phone.cseq = 0  # replays an older request of the same registration (the nonce is fresh)
    resp = phone.register(reg, T0 + 1000, expires=0)
    assert resp.status == 500
    assert len(reg.contacts("201", T0 + 1000)) == 1
    assert phone.register(reg, T0 + 1000, contact="*", expires=0).status == 500
    rebooted = _desk(call_id="after-reboot@phone")  # a new Call-ID starts over at CSeq 1
    assert rebooted.register(reg, T0 + 2000, expires=0).status == 200
    assert reg.contacts("201", T0 + 2000) == []


def test_the_same_contact_twice_in_one_request_is_not_a_cseq_error():
    reg = _registrar()
    uri = "<sip:201@192.168.1.21:5060>"
    resp = _desk().register(reg, T0, contact=uri + ";expires=300, " + uri + ";expires=600")
    assert _contacts(resp) == [uri + ";expires=600"]


def test_a_sixth_contact_replaces_the_one_closest_to_expiry():
    reg = _registrar()
    for i in range(5):
        addr = ("192.168.1.%d" % (100 + i), 5060)
        Phone("202", "s3cret-202-x", addr).register(reg, T0 + i * 1000)
    reg.take_events()
    addr = ("192.168.1.200", 5060)
    resp = Phone("202", "s3cret-202-x", addr).register(reg, T0 + 9000)
    assert len(_contacts(resp)) == Registrar.max_contacts
    assert reg.take_events() == [
        ("replaced", "202", "sip:202@192.168.1.100:5060", ("192.168.1.100", 5060)),
        ("registered", "202", "sip:202@192.168.1.200:5060", addr),
    ]


def test_nat_keeps_the_contact_and_the_source_address():
    reg = _registrar()
    behind = Phone("203", "s3cret-203-x", ("203.0.113.7", 40000), contact="<sip:203@10.0.0.5:5060>")
    behind.register(reg, T0)
    assert reg.contacts("203", T0) == [("sip:203@10.0.0.5:5060", ("203.0.113.7", 40000), T0 + 3600000)]
    reg.take_events()
    reg.dirty = False
    behind.addr = ("203.0.113.7", 40011)  # the NAT mapping changed: a new place to send to
    behind.register(reg, T0 + 60000)
    assert reg.contacts("203", T0 + 60000)[0][1] == ("203.0.113.7", 40011)
    assert reg.take_events() == [("registered", "203", "sip:203@10.0.0.5:5060", ("203.0.113.7", 40011))]
    assert reg.dirty


def test_a_register_without_contact_lists_the_bindings():
    reg = _registrar()
    _desk().register(reg, T0)
    reg.dirty = False
    resp = _soft().register(reg, T0 + 10000, contact=NONE)
    assert _contacts(resp) == ["<sip:201@192.168.1.21:5060>;expires=3590"]
    assert not reg.dirty


def test_contact_host_case_does_not_make_a_second_binding():
    reg = _registrar()
    phone = _desk(contact="<sip:201@Desk-201.Example.COM>")
    phone.register(reg, T0)
    phone.contact = "<sip:201@desk-201.example.com>"
    resp = phone.register(reg, T0 + 1000)
    assert _contacts(resp) == ["<sip:201@desk-201.example.com>;expires=3600"]


def test_bad_contacts_are_400():
    reg = _registrar()
    resp = _desk().register(reg, T0, contact="<tel:+8613800138001>")
    assert resp.status == 400
    long = "<sip:201@192.168.1.21:5060;x=%s>" % ("a" * 300)
    assert _desk().register(reg, T0, contact=long).status == 400
    assert reg.contacts("201", T0) == []


def test_a_raw_register_from_the_wire():
    reg = _registrar()
    head = (
        "REGISTER sip:192.168.1.2 SIP/2.0\r\n"
        "v: SIP/2.0/UDP 192.168.1.30:5062;branch=z9hG4bK-77;rport\r\n"
        "f: <sip:204@192.168.1.2>;tag=9a8b\r\n"
        "t: <sip:204@192.168.1.2>\r\n"
        "i: 4f6e-reg@192.168.1.30\r\n"
        "CSeq: %d REGISTER\r\n"
        "m: <sip:204@192.168.1.30:5062;line=x7>;expires=1800\r\n"
    )
    addr = ("192.168.1.30", 5062)
    first = reg.handle(parse((head % 1 + "l: 0\r\n\r\n").encode()), addr, T0)
    challenge = pick_challenge(first.get_all("www-authenticate"))
    auth = respond(challenge, "REGISTER", "sip:192.168.1.2", "204", "s3cret-204-x", "abc", 1)
    second = (head % 2 + "Authorization: " + auth + "\r\nl: 0\r\n\r\n").encode()
    resp = reg.handle(parse(second), addr, T0)
    assert resp.status == 200
    assert resp.get("call-id") == "4f6e-reg@192.168.1.30"
    assert _contacts(resp) == ["<sip:204@192.168.1.30:5062;line=x7>;expires=1800"]
    assert b"Date:" not in resp.to_bytes()


def test_set_site_drops_extensions_that_lost_their_phone():
    reg = _registrar()
    _desk().register(reg, T0)
    Phone("202", "s3cret-202-x", SOFT).register(reg, T0)
    reg.take_events()
    rows = [r if r[0] != "201" else r[:3] + [""] + r[4:] for r in STAFF]  # 201 becomes mobile only
    reg.set_site(build(rows=rows))
    assert reg.contacts("201", T0) == [] and len(reg.contacts("202", T0)) == 1
    assert reg.take_events() == [("unregistered", "201", "sip:201@192.168.1.21:5060", DESK)]


def test_unknown_numbers_have_no_contacts():
    reg = _registrar()
    assert reg.contacts("999", T0) == [] and reg.contacts("abc", T0) == [] and reg.contacts("", T0) == []


# ---- persistence ---------------------------------------------------------------------------


def test_dump_and_load_keep_the_remaining_lifetimes():
    reg = _registrar()
    _desk().register(reg, T0)
    _soft().register(reg, T0, expires=600)
    data = reg.dump(T0 + 100000)
    assert isinstance(data, bytes) and b" " not in data
    doc = json.loads(data)
    assert doc["kind"] == "zongji-registrations" and len(doc["bindings"]) == 2

    after = _registrar()  # a reboot: the clock starts again near zero
    after.load(data, 2000, elapsed_ms=30000)
    assert after.contacts("201", 2000) == [
        ("sip:201@192.168.1.21:5060", DESK, 2000 + (3600 - 100 - 30) * 1000),
        ("sip:201@192.168.1.80:51234", SOFT, 2000 + (600 - 100 - 30) * 1000),
    ]
    assert not after.dirty and after.take_events() == []
    assert after.next_timer() == 2000 + 470000
    assert after.dump(2000 + 100000) == reg.dump(T0 + 100000 + 130000)


def test_load_then_refresh_is_not_a_cseq_error():
    reg = _registrar()
    phone = _desk()
    phone.register(reg, T0)
    data = reg.dump(T0)
    phone.register(reg, T0 + 1000)  # refreshes are not written: the file's CSeq lags
    after = _registrar()
    after.load(data, 0)
    phone.challenge = None
    assert phone.register(after, 1000).status == 200


def test_load_drops_what_no_longer_applies():
    reg = _registrar()
    rows = [
        ["201", "sip:201@192.168.1.21", "192.168.1.21", 5060, 300, 1, 1],
        ["299", "sip:299@192.168.1.22", "192.168.1.22", 5060, 300, 1, 1],  # no such extension
        ["205", "sip:205@192.168.1.23", "192.168.1.23", 5060, 300, 1, 1],  # mobile only
        ["202", "sip:202@192.168.1.24", "192.168.1.24", 5060, 20, 1, 1],  # ran out while down
        ["203", "sip:203@192.168.1.25", "192.168.1.25", 5060, 99999, 1, 1],  # clamped
    ]
    data = json.dumps({"format": 1, "kind": "zongji-registrations", "bindings": rows}).encode()
    reg.load(data, T0, elapsed_ms=60000)
    assert [c[0] for c in reg.contacts("201", T0)] == ["sip:201@192.168.1.21"]
    assert reg.contacts("202", T0) == [] and reg.contacts("205", T0) == []
    assert reg.contacts("203", T0)[0][2] == T0 + 3600000
    assert reg.dirty  # the file should be rewritten without them


def test_garbage_files_raise_load_error_and_leave_no_bindings():
    good = [["201", "sip:201@192.168.1.21", "192.168.1.21", 5060, 300, 1, 1]]

    def doc(rows=good, **kw):
        d = {"format": 1, "kind": "zongji-registrations", "bindings": rows}
        d.update(kw)
        return json.dumps(d).encode()

    bad = [
        b"",
        b"\xff\xfe",
        b"not json",
        b"[]",
        b"{}",
        doc(kind="zongji-bundle"),
        doc(format=2),
        doc(rows={}),
        doc(rows=[[1, 2]]),
        doc(rows=["201"]),
        doc(rows=[["201", "sip:201@x", "x", 5060, 300, 1]]),
        doc(rows=[["x01", "sip:201@x", "x", 5060, 300, 1, 1]]),
        doc(rows=[["201", "sip:201@x", "x", 70000, 300, 1, 1]]),
        doc(rows=[["201", "sip:201@x", "x", 5060, True, 1, 1]]),
        doc(rows=[["201", "sip:201@x", "x", 5060, 300, -1, 1]]),
        doc(rows=[["201", "sip:201@x", "", 5060, 300, 1, 1]]),
        doc(rows=[["201", "tel:201", "x", 5060, 300, 1, 1]]),
        doc(rows=[["201", "sip:201@bad host", "x", 5060, 300, 1, 1]]),
        doc(rows=good + good),
        "text, not bytes",
    ]
    for data in bad:
        reg = _registrar()
        reg.load(doc(), T0)
        assert len(reg) == 1
        e = raises(LoadError, reg.load, data, T0)
        assert str(e).startswith("registrations: "), str(e)
        assert len(reg) == 0 and reg.next_timer() is None and not reg.dirty, data
    assert isinstance(LoadError("x"), ValueError)


class Disk:
    """What a shell does with the registrar's file: write when dirty or due, read at boot."""

    def __init__(self):
        self.data = None
        self.at = None
        self.writes = 0

    def save(self, reg, now, force=False):
        due = reg.save_due()
        if reg.dirty or (due is not None and (force or now >= due)):
            self.data, self.at = reg.dump(now), now
            self.writes += 1
            reg.saved(now)

    def boot(self, now):
        """A restart at `now`: a new registrar loads the file, knowing its age."""
        after = _registrar()
        after.load(self.data, now, elapsed_ms=now - self.at)
        return after


def test_a_refreshing_phone_stays_reachable_across_a_restart_with_few_writes():
    # phones refresh every `every` s with lifetime `expires`, for 12 minutes; a restart can come
    # at any moment, and the restored binding must last until the phone's next refresh
    for expires, every in ((120, 60), (120, 10), (600, 60), (3600, 60), (90, 80)):
        reg = _registrar()
        disk = Disk()
        phone = _desk()
        now = T0
        while now < T0 + 12 * 60000:
            assert phone.register(reg, now, expires=expires).status == 200
            disk.save(reg, now)
            nxt = now + every * 1000
            for crash in range(now, nxt, 5000):  # power cut at `crash`, back at once
                after = disk.boot(crash)
                assert after.contacts("201", nxt), (expires, every, crash - T0)
            now = nxt
        # about two writes a lifetime, however often the phone refreshes (the first is its
        # registration); an hour's binding refreshed each minute is written once in 12 min
        assert 1 <= disk.writes <= 2 * 720 // expires + 1, (expires, every, disk.writes)


def test_the_issue_case_restores_the_phone_after_twelve_minutes():
    # 60 s refreshes of a 120 s binding, then Ctrl-C and a restart a few seconds later
    reg = _registrar()
    disk = Disk()
    phone = _desk()
    for minute in range(13):
        phone.register(reg, T0 + minute * 60000, expires=120)
        disk.save(reg, T0 + minute * 60000)
    disk.save(reg, T0 + 12 * 60000 + 20000, force=True)  # shutdown 20 s after the last refresh
    after = disk.boot(T0 + 12 * 60000 + 23000)
    assert [c[0] for c in after.contacts("201", T0 + 12 * 60000 + 23000)] == ["sip:201@192.168.1.21:5060"]
    assert len(after) == 1 and not after.dirty and after.save_due() is None


def test_save_due_says_when_and_a_failed_write_is_tried_again():
    reg = _registrar()
    phone = _desk()
    phone.register(reg, T0, expires=600)
    assert reg.dirty
    reg.saved(T0)  # as if written
    assert not reg.dirty and reg.save_due() is None
    phone.register(reg, T0 + 10000, expires=600)  # a refresh: nothing to write yet
    assert not reg.dirty
    due = reg.save_due()
    # written at T0 for T0+600 s; now E = T0+610 s: due once W - now < (E - now)/2 + 5
    assert due == T0 + (2 * 600 - 610 - 10) * 1000
    reg.dump(due)  # the write fails: saved() is not called, so it stays due
    assert reg.save_due() == due
    reg.dump(due)
    reg.saved(due)
    assert reg.save_due() is None and not reg.dirty


# ---- memory --------------------------------------------------------------------------------


def test_memory_per_registered_phone():
    if not IS_MICROPYTHON:
        raise SkipTest("gc.mem_alloc is MicroPython only")
    import gc

    from zongji.site.directory import code

    n = 50
    reg = _registrar()
    reg._sec(T0)
    keys = [code(str(300 + i)) for i in range(n)]
    numbers = [str(300 + i) for i in range(n)]
    empty = []
    gc.collect()
    before = gc.mem_alloc()
    for i in range(n):
        # what handle() keeps of one REGISTER: the contact text and source ip (made here, so
        # they are counted), a binding tuple, the extension's list, a dict slot, plus the event
        # (until the shell drains it) and the garbage of the dict growing (not collected
        # during a call on this port): an upper bound
        uri = "sip:%s@192.168.1.%d:5060;transport=udp" % (numbers[i], 100 + i)
        ip = "192.168.1.%d" % (100 + i)
        reg._commit(keys[i], numbers[i], empty, [(uri, ip, 5060, 3600, 123456789, 1, 0)])
    used = gc.mem_alloc() - before
    assert len(reg) == n
    assert used // n <= 300, used // n


def test_the_status_shows_each_phones_user_agent_and_forgets_it_with_the_binding():
    reg = _registrar()
    assert reg.agent("201") == "" and reg.agent("nonsense") == ""
    phone = _desk()
    phone.register(reg, T0, expires=60, headers=[("User-Agent", "Yealink SIP-T46U 108.86.0.45")])
    assert reg.agent("201") == "Yealink SIP-T46U 108.86.0.45"
    long = "X" * 500  # a phone cannot make the switch keep more than max_agent characters
    phone.register(reg, T0 + 1000, expires=60, headers=[("User-Agent", long)])
    assert reg.agent("201") == "X" * reg.max_agent
    reg.handle_timer(T0 + 61000)
    assert reg.contacts("201", T0 + 61000) == [] and reg.agent("201") == ""


def test_many_distinct_user_agents_are_kept_once_each_up_to_a_bound():
    reg = _registrar()
    for i in range(reg.max_agents + 4):
        reg._agent(i + 1, "Phone %d" % i)
    assert len(reg._uas) == reg.max_agents  # the shared table stops growing
    assert reg._ua[reg.max_agents + 4] == "Phone %d" % (reg.max_agents + 3)  # still shown

"""The trunk as a client of the SIP provider: registration with digest auth, refresh, backoff
while the provider is down, a wrong password that must not become a REGISTER storm, 503 with
Retry-After, unregister; ClientAuth answering a 407 to an INVITE; is_from_trunk.

A TrunkRegistration and its TransactionLayer are wired to a fake provider (Net) with its own
TransactionLayer and a real digest.Authenticator checking the credentials, on a virtual clock.
"""

from _support import IS_MICROPYTHON, SkipTest
from zongji.sip.auth import ha1, parse_auth
from zongji.sip.digest import OK, STALE, Authenticator
from zongji.sip.message import make_request, make_response, view_memo
from zongji.sip.parser import parse
from zongji.sip.transaction import NewRequest, Timeout, TransactionLayer
from zongji.switch.trunk import ClientAuth, TrunkRegistration, is_from_trunk

PROVIDER = ("198.51.100.7", 5060)
LOCAL = ("192.0.2.10", 5060)
REALM = "voip.example.net"
TRUNK = {"host": "198.51.100.7", "port": 5060, "username": "0755123", "password": "s3cret", "register": True}
MINUTE = 60000


def zeros(n):
    return bytes(n)  # no jitter: waits come out exact


class Lcg:
    """Deterministic random_bytes for tests that want jitter."""

    def __init__(self, seed):
        self.x = seed

    def __call__(self, n):
        out = bytearray(n)
        for i in range(n):
            self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
            out[i] = (self.x >> 16) & 0xFF
        return bytes(out)


class Provider:
    """The provider's registrar. mode: "up", "down" (hears and says nothing), "busy" (503 with
    Retry-After), "forbidden" (403)."""

    def __init__(self, password="s3cret", nonce_ttl_ms=300000, granted=600, algorithms=("SHA-256", "MD5")):
        self.layer = TransactionLayer("198.51.100.7:5060", seed=7)
        self.digest = Authenticator(REALM, b"provider-key", nonce_ttl_ms, Lcg(3), algorithms)
        self.password = password
        self.granted = granted
        self.mode = "up"
        self.retry_after = 120
        self.min_expires = 0
        self.binding = None  # (contact uri text, expires at ms)
        self.log = []  # (ms, request, status) for every new REGISTER transaction

    def _lookup(self, user, algorithm):  # a provider that keeps passwords: HA1 made on demand
        return ha1(algorithm, user, REALM, self.password) if user == TRUNK["username"] else None

    def answer(self, ev, now):
        req = ev.request
        status, headers = self._decide(req, now)
        self.log.append((now, req, status))
        self.layer.respond(ev.tx, make_response(req, status, to_tag="prov", headers=headers), now)

    def _challenge(self, now, stale=False):
        return 401, [("WWW-Authenticate", v) for v in self.digest.challenge(now, stale)]

    def _decide(self, req, now):
        if self.mode == "busy":
            return 503, [("Retry-After", "%d (maintenance)" % self.retry_after)]
        if self.mode == "forbidden":
            return 403, []
        value = req.get("authorization")
        if value is None:
            return self._challenge(now)
        verdict = self.digest.check(req.method, parse_auth(value), self._lookup, now)
        if verdict != OK:
            return self._challenge(now, verdict == STALE)
        expires = req.expires(3600)
        if self.min_expires and 0 < expires < self.min_expires:
            return 423, [("Min-Expires", self.min_expires)]
        contact = req.contacts()[0]
        if expires == 0:
            self.binding = None
            return 200, []
        granted = min(expires, self.granted)
        self.binding = (str(contact.uri), now + 1000 * granted)
        return 200, [
            ("Contact", "<sip:someone-else@203.0.113.9>;expires=3000"),
            ("Contact", "<%s>;expires=%d" % (contact.uri, granted)),
        ]


class Net:
    """A TrunkRegistration + TransactionLayer and a Provider joined by an in-memory wire."""

    def __init__(self, provider=None, random_bytes=zeros, cfg=None):
        self.now = 1000
        self.provider = provider or Provider()
        self.layer = TransactionLayer("192.0.2.10:5060", seed=1)
        self.trunk = TrunkRegistration(cfg or TRUNK, self.layer, "192.0.2.10", 5060, random_bytes)
        self.events = []  # (ms, state, detail)
        self.sent = []  # (ms, Request): every REGISTER datagram, retransmissions included
        self.waits = []  # ms from each timeout to the next try the trunk armed

    def start(self):
        self.trunk.start(self.now)
        self.flush()

    def flush(self):
        moved = True
        while moved:
            moved = False
            for data, addr in self.layer.datagrams_to_send():
                assert addr == PROVIDER, addr
                moved = True
                self.sent.append((self.now, parse(data)))
                if self.provider.mode != "down":
                    for ev in self.provider.layer.receive(data, LOCAL, self.now):
                        if isinstance(ev, NewRequest):
                            self.provider.answer(ev, self.now)
            for data, addr in self.provider.layer.datagrams_to_send():
                assert addr == LOCAL, addr
                moved = True
                self._feed(self.layer.receive(data, PROVIDER, self.now))
        for _, state, detail in self.trunk.take_events():
            self.events.append((self.now, state, detail))

    def _feed(self, events):
        for ev in events:
            if self.trunk.on_event(ev, self.now) and isinstance(ev, Timeout):
                self.waits.append(self.trunk.next_timer() - self.now)

    def run(self, until):
        self.flush()
        while True:
            due = [t for t in (self.layer.next_timer(), self.provider.layer.next_timer(), self.trunk.next_timer()) if t]
            if not due or min(due) > until:
                break
            self.now = max(self.now, min(due))
            self._feed(self.layer.handle_timer(self.now))
            self.provider.layer.handle_timer(self.now)
            self.trunk.handle_timer(self.now)
            self.flush()
        self.now = until

    def registers(self, start=0, end=None):
        """New REGISTER transactions (retransmissions left out) sent in [start, end)."""
        seen = []
        out = []
        for t, req in self.sent:
            key = req.via().branch
            if key not in seen and t >= start and (end is None or t < end):
                out.append((t, req))
            seen.append(key)
        return out

    def states(self):
        return [state for _, state, _ in self.events]


def test_registers_with_digest_auth():
    net = Net()
    net.start()
    assert net.trunk.state == "registered"
    assert net.states() == ["registering", "registered"]
    first, second = [req for _, req in net.registers()]
    assert str(first.uri) == "sip:198.51.100.7"
    assert first.get("authorization") is None
    assert second.get("authorization") is not None
    assert "algorithm=SHA-256" in second.get("authorization")
    assert str(first.to_addr().uri) == "sip:0755123@198.51.100.7"
    assert str(first.from_addr().uri) == "sip:0755123@198.51.100.7"
    assert first.from_addr().tag
    assert str(first.contacts()[0].uri) == "sip:0755123@192.0.2.10:5060"
    assert first.get("expires") == "600"
    assert first.call_id() == second.call_id()
    assert (first.cseq(), second.cseq()) == ((1, "REGISTER"), (2, "REGISTER"))
    assert net.provider.binding[0] == "sip:0755123@192.0.2.10:5060"
    assert net.trunk.tx is None


def test_registers_with_md5_only_provider():
    net = Net(Provider(algorithms=("MD5",)))
    net.start()
    assert net.trunk.state == "registered"
    assert "algorithm=MD5" in net.registers()[-1][1].get("authorization")


def test_refreshes_at_half_expiry_without_a_new_challenge():
    net = Net(Provider(nonce_ttl_ms=3600000))
    net.start()
    t0 = net.now
    assert net.trunk.next_timer() == t0 + 300000
    net.run(t0 + 60 * MINUTE)
    regs = net.registers(t0 + 1)
    assert [t - t0 for t, _ in regs] == [300000 * i for i in range(1, 13)]
    assert [s for _, _, s in net.provider.log[2:]] == [200] * 12  # the cached nonce was good
    cseqs = [req.cseq()[0] for _, req in net.registers()]
    assert cseqs == list(range(1, len(cseqs) + 1))
    assert len(set(req.call_id() for _, req in net.registers())) == 1
    assert "nc=00000002" in regs[0][1].get("authorization")
    assert net.trunk.state == "registered" and net.states() == ["registering", "registered"]


def test_refresh_answers_a_stale_nonce_and_stays_registered():
    net = Net(Provider(nonce_ttl_ms=60000))
    net.start()
    t0 = net.now
    net.run(t0 + 60 * MINUTE)
    statuses = [s for _, _, s in net.provider.log[2:]]
    assert statuses == [401, 200] * 12
    assert net.trunk.state == "registered" and net.states() == ["registering", "registered"]
    assert net.provider.binding[1] > net.now


def test_provider_down_backs_off_exponentially_then_recovers():
    net = Net()
    net.start()
    net.provider.mode = "down"
    net.run(net.now + 35 * MINUTE)
    assert net.trunk.state == "retrying"
    assert net.states() == ["registering", "registered", "retrying"]
    assert "no answer" in net.events[-1][2]
    assert net.waits[:9] == [5000, 10000, 20000, 40000, 80000, 160000, 300000, 300000, 300000]
    # each try is one transaction retransmitted until Timer F, not a flood
    assert len(net.registers()) <= 2 + 1 + len(net.waits)
    net.provider.mode = "up"
    net.run(net.now + 6 * MINUTE)
    assert net.trunk.state == "registered"
    assert net.states()[-1] == "registered"
    assert net.provider.binding is not None
    # recovered: the backoff starts over at 5 s
    net.provider.mode = "down"
    net.waits = []
    net.run(net.now + 6 * MINUTE)
    assert net.waits[0] == 5000


def test_backoff_jitter_stays_within_a_quarter_below_the_step():
    net = Net(random_bytes=Lcg(11))
    net.start()
    net.provider.mode = "down"
    net.run(net.now + 40 * MINUTE)
    steps = [5000, 10000, 20000, 40000, 80000, 160000, 300000, 300000]
    waits = net.waits[: len(steps)]
    assert len(waits) == len(steps)
    for wait, step in zip(waits, steps):
        assert step * 3 // 4 <= wait <= step, (wait, step)
    assert len(set(w * 1000 // s for w, s in zip(waits, steps))) > 1  # really jittered


def test_transport_error_retries():
    net = Net()
    net.provider.mode = "down"
    net.start()
    for ev in net.layer.transport_error(PROVIDER, net.now):
        assert net.trunk.on_event(ev, net.now)
    net.flush()
    assert net.trunk.state == "retrying"
    assert "transport error" in net.trunk.detail
    assert net.trunk.next_timer() == net.now + 5000


def test_wrong_password_is_rejected_without_a_tight_loop():
    net = Net(Provider(password="other"))
    net.start()
    assert net.trunk.state == "rejected"
    assert net.states() == ["registering", "rejected"]
    assert "wrong username or password" in net.trunk.detail
    assert net.trunk.next_timer() - net.now >= 10 * MINUTE
    net.run(net.now + 10 * MINUTE)
    assert len(net.sent) == 2  # one challenge round, no retransmissions, nothing else
    net.run(net.now + 120 * MINUTE)
    assert len(net.registers()) <= 2 * 5  # two per 30 minutes at most
    assert net.trunk.state == "rejected" and net.states() == ["registering", "rejected"]
    net.provider.password = "s3cret"  # the admin fixed it at the provider
    net.run(net.now + 31 * MINUTE)
    assert net.trunk.state == "registered"


def test_forbidden_is_rejected():
    net = Net()
    net.provider.mode = "forbidden"
    net.start()
    assert net.trunk.state == "rejected"
    assert net.trunk.detail.startswith("403 Forbidden")
    assert net.trunk.next_timer() - net.now >= 10 * MINUTE


def test_503_retry_after_is_honoured():
    net = Net()
    net.provider.mode = "busy"
    net.start()
    t0 = net.now
    assert net.trunk.state == "retrying"
    assert "503" in net.trunk.detail
    assert net.trunk.next_timer() == t0 + 120000
    net.run(t0 + 119999)
    assert len(net.registers()) == 1
    net.provider.mode = "up"
    net.run(t0 + 120000)
    assert [t for t, _ in net.registers()][1] == t0 + 120000
    assert net.trunk.state == "registered"


def test_423_asks_the_minimum_expiry():
    provider = Provider(granted=3600)
    provider.min_expires = 900
    net = Net(provider)
    net.start()
    assert net.trunk.state == "registered"
    assert [req.get("expires") for _, req in net.registers()] == ["600", "600", "900"]
    assert net.trunk.next_timer() == net.now + 450000


def test_unregister_sends_expires_zero():
    net = Net()
    net.start()
    assert net.trunk.unregister(net.now)
    net.flush()
    last = net.registers()[-1][1]
    assert last.get("expires") == "0"
    assert str(last.contacts()[0].uri) == "sip:0755123@192.0.2.10:5060"
    assert last.get("authorization") is not None  # cached credentials: no extra round trip
    assert last.call_id() == net.registers()[0][1].call_id()
    assert last.cseq()[0] == 3
    assert net.provider.binding is None
    assert net.trunk.state == "idle"
    assert net.events[-1][1:] == ("idle", "unregistered")
    assert net.trunk.next_timer() is None
    net.run(net.now + 60 * MINUTE)
    assert len(net.registers()) == 3


def test_unregister_after_rejection_sends_nothing():
    net = Net(Provider(password="other"))
    net.start()
    assert not net.trunk.unregister(net.now)
    net.flush()
    assert len(net.sent) == 2
    assert net.trunk.state == "idle" and net.trunk.next_timer() is None


def test_registration_switched_off():
    cfg = dict(TRUNK)
    cfg["register"] = False
    net = Net(cfg=cfg)
    net.start()
    assert net.sent == [] and net.trunk.state == "idle"
    assert "register = false" in net.trunk.detail


def _answer(trunk, status, now, headers=()):
    resp = make_response(trunk._req, status, to_tag="x", headers=headers)
    trunk.on_response(trunk.tx, resp, now)


def test_grant_from_expires_header_and_refresh_floor():
    trunk = TrunkRegistration(TRUNK, TransactionLayer("192.0.2.10:5060", seed=1), "192.0.2.10", 5060, zeros)
    trunk.start(0)
    _answer(trunk, 200, 0, [("Expires", "120")])
    assert trunk.state == "registered" and trunk.next_timer() == 60000
    trunk.handle_timer(60000)
    _answer(trunk, 200, 60000, [("Expires", "4")])
    assert trunk.next_timer() == 60000 + 5000  # min_refresh_s
    trunk.handle_timer(65000)
    _answer(trunk, 200, 65000)  # no grant anywhere: what we asked
    assert trunk.next_timer() == 65000 + 300000
    assert trunk.expires_at == 65000 + 600000


def test_owns_only_its_register():
    layer = TransactionLayer("192.0.2.10:5060", seed=1)
    trunk = TrunkRegistration(TRUNK, layer, "192.0.2.10", 5060, zeros)
    trunk.start(0)
    other = layer.send_request(
        make_request("OPTIONS", "sip:198.51.100.7", "<sip:a@b>;tag=1", "<sip:a@b>", "c1", 1), PROVIDER, 0
    )
    assert trunk.owns(trunk.tx) and not trunk.owns(other) and not trunk.owns(None)
    trunk.on_response(other, make_response(other.request, 200, to_tag="x"), 0)
    assert trunk.state == "registering"


def test_ipv6_and_port_in_uris():
    cfg = dict(TRUNK)
    cfg["host"] = "2001:db8::7"
    cfg["port"] = 5080
    layer = TransactionLayer("[2001:db8::10]:5062", seed=1)
    trunk = TrunkRegistration(cfg, layer, "2001:db8::10", 5062, zeros)
    trunk.start(0)
    req = parse(layer.datagrams_to_send()[0][0])
    assert str(req.uri) == "sip:[2001:db8::7]:5080"
    assert str(req.to_addr().uri) == "sip:0755123@[2001:db8::7]"
    assert str(req.contacts()[0].uri) == "sip:0755123@[2001:db8::10]:5062"
    assert trunk.addr == ("2001:db8::7", 5080)


def _invite():
    return make_request(
        "INVITE",
        "sip:13800138000@198.51.100.7",
        "<sip:0755123@198.51.100.7>;tag=abc",
        "<sip:13800138000@198.51.100.7>",
        "call1@192.0.2.10",
        1,
        via="SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinv1;rport",
        contact="<sip:0755123@192.0.2.10:5060>",
        body=b"v=0\r\n",
        content_type="application/sdp",
    )


def test_client_auth_answers_a_407_to_an_invite():
    proxy = Authenticator(REALM, b"k", 300000, Lcg(5))
    auth = ClientAuth("0755123", "s3cret", Lcg(9))
    invite = _invite()
    resp = make_response(invite, 407, to_tag="t", headers=[("Proxy-Authenticate", v) for v in proxy.challenge(0)])
    again = auth.retry(invite, resp)
    assert again is not None
    assert again.cseq() == (2, "INVITE")
    assert again.call_id() == "call1@192.0.2.10"
    assert again.from_addr().tag == "abc"
    assert again.via() is None
    assert again.body == b"v=0\r\n" and again.content_type() == "application/sdp"
    assert again.get("authorization") is None
    params = parse_auth(again.get("proxy-authorization"))
    assert params["uri"] == "sip:13800138000@198.51.100.7"

    def lookup(user, algorithm):
        return ha1(algorithm, user, REALM, "s3cret") if user == "0755123" else None

    assert proxy.check("INVITE", params, lookup, 0) == OK
    # refused again although the credentials answered its fresh nonce: a wrong password
    resp2 = make_response(again, 407, to_tag="t", headers=[("Proxy-Authenticate", v) for v in proxy.challenge(0)])
    assert auth.retry(again, resp2) is None
    assert "wrong username or password" in auth.reason
    # but a stale nonce is answered again
    resp3 = make_response(again, 407, to_tag="t", headers=[("Proxy-Authenticate", v) for v in proxy.challenge(0, True)])
    assert auth.retry(again, resp3) is not None


def test_client_auth_refuses_what_it_cannot_answer():
    auth = ClientAuth("u", "p")
    invite = _invite()
    resp = make_response(
        invite, 401, to_tag="t", headers=[("WWW-Authenticate", 'Digest realm="r", nonce="n", algorithm=SHA-512-256')]
    )
    assert auth.retry(invite, resp) is None
    assert "no challenge" in auth.reason
    assert auth.retry(invite, make_response(invite, 486)) is None


def test_is_from_trunk():
    assert is_from_trunk(("198.51.100.7", 5060), TRUNK)
    assert not is_from_trunk(("198.51.100.7", 5061), TRUNK)
    assert not is_from_trunk(("198.51.100.8", 5060), TRUNK)
    assert not is_from_trunk(("198.51.100.7", 5060), None)
    named = {"host": "sip.example.net", "username": "u", "password": "p"}  # port defaults to 5060
    assert not is_from_trunk(("198.51.100.7", 5060), named)
    assert is_from_trunk(("198.51.100.7", 5060), named, "198.51.100.7")
    assert is_from_trunk(("198.51.100.9", 5060), named, ["198.51.100.7", "198.51.100.9"])
    v6 = {"host": "[2001:DB8::7]", "port": 5060, "username": "u", "password": "p"}
    assert is_from_trunk(("2001:db8::7", 5060), v6)


def test_memory_stays_flat_while_registered_for_hours():
    # CPython's tracemalloc measures what stays allocated; the wasm MicroPython port does not
    # collect garbage during a call, so gc.mem_alloc there counts garbage too
    if IS_MICROPYTHON:
        raise SkipTest("tracemalloc is CPython only")
    import gc
    import tracemalloc

    net = Net(Provider(nonce_ttl_ms=10**9))
    net.start()

    def settle(until):
        net.run(until)
        net.sent = []
        net.events = []
        net.provider.log = []
        gc.collect()  # parsed messages and transactions hold cycles
        return tracemalloc.get_traced_memory()[0]

    # the parser's view memo (sip/message.py) is off here: a bounded cache emptied when full
    # leaves CPython's free lists fuller as it refills (more traced bytes, no live object);
    # test_sip_message holds the memo to its size
    size = view_memo(0)
    tracemalloc.start()
    try:
        first = settle(net.now + 60 * MINUTE)
        later = settle(net.now + 240 * MINUTE)
    finally:
        tracemalloc.stop()
        view_memo(size)
    assert net.trunk.state == "registered"
    assert later - first < 2048, (first, later)

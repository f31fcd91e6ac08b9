"""The SIP side of the appliance in one sans-IO object: what the device and host mode run.

    sw = Switch(site, "192.168.1.10", 5060, secret_key=os.urandom(16), random_bytes=os.urandom)
    sw.receive_datagram(data, addr, now_ms)
    for data, addr in sw.datagrams_to_send(): sock.sendto(data, addr)
    deadline = sw.next_timer(); sw.handle_timer(now_ms)
    for event in sw.take_events(): ...

Every datagram passes the failed-auth guard first (a banned source is dropped unread), then
the transaction layer, then goes by method: REGISTER to the registrar, INVITE (after digest
authentication with 407) to the proxy, CANCEL/ACK/in-dialog requests to the proxy's routing,
OPTIONS answered here. Requests for extensions the switch does not know get the same answers
as for ones it does (401/407 before anything else), so nothing can be enumerated. No
Server/User-Agent header is sent: a version string only helps attackers.
"""

from zongji.call.cdr import CdrLog
from zongji.sip.digest import BAD, OK, STALE, Authenticator, parse_auth
from zongji.sip.message import make_response
from zongji.sip.transaction import (
    AckReceived,
    NewRequest,
    ResponseReceived,
    StrayResponse,
    Timeout,
    TransactionLayer,
    TransportError,
)
from zongji.sip.uri import ParseError, parse_uri
from zongji.switch.gateway import Gateway, TrunkBranch
from zongji.switch.guard import Guard
from zongji.switch.proxy import Branch, Proxy, strip_top_via
from zongji.switch.registrar import Registrar
from zongji.switch.trunk import TrunkRegistration, is_from_trunk

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE"
_IN_DIALOG = ("BYE", "INFO", "UPDATE", "INVITE", "ACK")
_PASSED_ON = ("INVITE", "ACK", "BYE", "INFO", "UPDATE", "CANCEL")  # everything else we answer

MAX_EVENTS = 128


class Switch:
    def __init__(
        self, site, host, port, secret_key=None, random_bytes=None, max_transactions=64, trunk_addr=None, max_calls=None
    ):
        if host in ("", "0.0.0.0", "::", "[::]"):
            raise ValueError("the switch must advertise an address phones can reach, not %r" % host)
        self.site = site
        self.host = host
        self.port = port
        self.me = "%s:%d" % (host, port)
        self.tl = TransactionLayer(self.me, random_bytes=random_bytes)
        self.tl.max_transactions = max_transactions
        self.tl.symmetric = True  # answer where the request came from: phones behind NAT
        self.guard = Guard()
        self.auth = Authenticator(site.realm, secret_key, random_bytes=random_bytes, algorithms=site.digest)
        self.registrar = Registrar(site, self.auth, self.guard, random_bytes)
        self.proxy = Proxy(self)
        if max_calls is not None:
            self.proxy.max_calls = max_calls
        self.cdr = CdrLog()
        self.gateway = None  # trunk calls (B2BUA), when the site has a trunk
        self.trunk_reg = None
        trunk = site.trunk
        if trunk:
            # the core resolves no names: a shell passes trunk_addr for a host name
            self.trunk_addr = trunk_addr or (trunk["host"], trunk.get("port") or 5060)
            self.gateway = Gateway(self, trunk, self.trunk_addr, random_bytes)
            if trunk.get("register", True):
                self.trunk_reg = TrunkRegistration(trunk, self.tl, host, port, random_bytes)
                self.trunk_reg.addr = self.trunk_addr
        self._started = False
        self.epoch_ms = 0
        self._events = [("listening", host, port)]
        self._record_route = "<sip:%s;lr>" % self.me

    def set_site(self, site):
        """A new site (a sync): registrations of extensions that remain stay, calls carry on."""
        self.site = site
        self.registrar.set_site(site)

    # ---- shell interface ------------------------------------------------------------------

    def _start(self, now_ms):
        # the first event from the shell starts what runs on its own (the trunk registration)
        self._started = True
        if self.trunk_reg is not None:
            self.trunk_reg.start(now_ms)

    def receive_datagram(self, data, addr, now_ms):
        if not self._started:
            self._start(now_ms)
        if not self.guard.allowed(addr[0], now_ms):
            return
        for ev in self.tl.receive(data, addr, now_ms):
            self._dispatch(ev, now_ms)
        self._collect()

    def datagrams_to_send(self):
        return self.tl.datagrams_to_send()

    def next_timer(self):
        if not self._started:
            return 0  # due at once: handle_timer() starts the trunk registration
        best = None
        trunk = self.trunk_reg.next_timer() if self.trunk_reg is not None else None
        for t in (self.tl.next_timer(), self.registrar.next_timer(), self.proxy.next_timer(), trunk):
            if t is not None and (best is None or t < best):
                best = t
        return best

    def handle_timer(self, now_ms):
        if not self._started:
            self._start(now_ms)
        for ev in self.tl.handle_timer(now_ms):
            self._dispatch(ev, now_ms)
        self.registrar.handle_timer(now_ms)
        self.proxy.handle_timer(now_ms)
        if self.trunk_reg is not None:
            self.trunk_reg.handle_timer(now_ms)
        self._collect()

    def close(self, now_ms):
        """Shutting down: unregister from the provider (the shell sends what this queues,
        best effort, before it closes the socket)."""
        if self.trunk_reg is not None and self._started:
            self.trunk_reg.unregister(now_ms)
        self._collect()

    def sizes(self):
        """How full each table is: {name: (entries, cap)}, for status, tests and the fuzzer.
        A cap of None is bounded by another table (the gateway's calls by the proxy's)."""
        return {
            "transactions": (len(self.tl), self.tl.max_transactions),
            "calls": (len(self.proxy.calls), self.proxy.max_calls),
            "trunk_calls": (len(self.gateway.calls) if self.gateway is not None else 0, None),
            "registrations": (len(self.registrar), None),
            "guard": (len(self.guard), self.guard.max_sources),
            "events": (len(self._events), MAX_EVENTS),
            "records": (len(self.cdr), getattr(self.cdr, "max_records", None)),
        }

    def take_events(self):
        out = self._events
        self._events = []
        return out

    def _collect(self):
        self._events.extend(self.registrar.take_events())
        self._events.extend(self.guard.take_events())
        if self.trunk_reg is not None:
            self._events.extend(self.trunk_reg.take_events())
        if len(self._events) > MAX_EVENTS:  # a shell that never drains must not eat the heap
            del self._events[: len(self._events) - MAX_EVENTS]

    # ---- dispatch ---------------------------------------------------------------------------

    def _dispatch(self, ev, now):
        if isinstance(ev, NewRequest):
            self._request(ev.tx, ev.request, ev.addr, ev.cancels, now)
        elif isinstance(ev, AckReceived):
            if ev.tx is None:
                self.proxy.in_dialog(None, ev.request, ev.addr, now)
        elif self.trunk_reg is not None and hasattr(ev, "tx") and ev.tx is not None and self.trunk_reg.owns(ev.tx):
            self.trunk_reg.on_event(ev, now)
        elif isinstance(ev, ResponseReceived):
            tu = ev.tx.tu
            if isinstance(tu, TrunkBranch):
                self.gateway.response(tu, ev.response, now)
            elif isinstance(tu, Branch):
                self.proxy.response(tu, ev.response, now)
            elif isinstance(tu, tuple) and tu[0] == "relay":
                self.proxy.relay_response(tu[1], ev.response, now)
        elif isinstance(ev, StrayResponse):
            self._stray(ev.response)
        elif isinstance(ev, (Timeout, TransportError)):
            tu = ev.tx.tu
            if isinstance(tu, (Branch, TrunkBranch)):
                self.proxy.branch_failed(tu, now)
            elif isinstance(tu, tuple) and tu[0] == "relay":
                self.reply(tu[1], 408, now)

    def _request(self, tx, req, addr, cancels, now):
        method = req.method
        if method == "CANCEL":
            return self.proxy.cancel(tx, req, cancels, now)
        problem = self._check(req)
        if problem is not None:
            return self.reply(tx, problem[0], now, problem[1])
        to = req.to_addr()
        if to is not None and to.tag and method in _IN_DIALOG:
            if self.gateway is not None and self._from_trunk(addr) and self.gateway.provider_request(tx, req, now):
                return
            return self.proxy.in_dialog(tx, req, addr, now)
        if method == "REGISTER":
            return self.tl.respond(tx, self.registrar.handle(req, addr, now), now)
        if method == "OPTIONS":
            return self.reply(tx, 200, now, (("Allow", ALLOW), ("Accept", "application/sdp")))
        if method == "INVITE":
            return self._invite(tx, req, addr, now)
        if method in _IN_DIALOG:
            return self.reply(tx, 481, now)
        return self.reply(tx, 405, now, (("Allow", ALLOW),))

    def _check(self, req):
        """RFC 3261 8.2.1-8.2.2 and 16.3: what we must refuse before looking further."""
        if not req.uri.is_sip:
            return 416, None
        # Proxy-Require is ours to honour; Require is end to end (16.3): only for requests we
        # answer ourselves, never for the INVITEs and in-dialog requests we pass on (a phone's
        # "Require: 100rel" is for the phone it calls)
        unsupported = req.get_all("proxy-require")
        if req.method not in _PASSED_ON:
            unsupported = unsupported + req.get_all("require")
        if unsupported and req.method not in ("ACK", "CANCEL"):
            return 420, (("Unsupported", ", ".join(unsupported)),)
        mf = req.max_forwards()
        if mf is not None and mf <= 0 and req.method not in ("REGISTER", "OPTIONS"):
            return 483, None
        return None

    def _from_trunk(self, addr):
        return self.gateway is not None and is_from_trunk(addr, self.site.trunk, self.trunk_addr[0])

    def _inbound(self, tx, req, now):
        """A call from the provider: its DID picks the target; outside callers reach only
        what the site lets them (never the outside-line prefix: no toll fraud by hairpin)."""
        did = req.uri.user or ""
        text = (self.site.trunk.get("did") or {}).get(did)
        target = self.site.resolve(text) if text is not None else None
        if target is None or target[0] not in ("ext", "group"):
            # a menu, or no DID entry: the spoken attendant is not on the line yet, so the
            # operator takes the call
            target = self.site.operator()
        if target is None:
            return self.reply(tx, 480, now)
        self.proxy.inbound(tx, req, target, did, now)

    def _invite(self, tx, req, addr, now):
        if self._from_trunk(addr):
            return self._inbound(tx, req, now)
        header = req.get("proxy-authorization")
        if header is None or header.lstrip()[:7].lower() != "digest ":  # another scheme: none
            return self._challenge(tx, now, False)
        try:
            params = parse_auth(header)
        except ValueError:
            return self.reply(tx, 400, now, reason="Bad Proxy-Authorization")
        verdict = self.auth.check("INVITE", params, self._secret, now)
        if verdict == STALE:
            return self._challenge(tx, now, True)
        if verdict == BAD:
            return self.reply(tx, 400, now, reason="Bad Proxy-Authorization")
        if verdict != OK:
            self.guard.failed(addr[0], now)
            return self._challenge(tx, now, False)
        user = params.get("username")
        caller = self.site.extension(user)
        sender = req.from_addr()
        if caller is None or sender is None or sender.uri.user != user:
            self.guard.failed(addr[0], now)
            return self.reply(tx, 403, now, reason="From Does Not Match Credentials")
        self.guard.succeeded(addr[0])
        self.proxy.invite(tx, req, caller, now)

    def _secret(self, user, algorithm):
        # the caller's HA1 for the INVITE's digest (the site keeps no secrets: site/directory.py)
        return self.site.directory.ha1(user, algorithm)

    def _challenge(self, tx, now, stale):
        values = self.auth.challenge(now, stale)
        self.reply(tx, 407, now, [("Proxy-Authenticate", v) for v in values])

    def _stray(self, resp):
        """A 2xx for an INVITE whose client transaction is gone: forward it by its Via (16.7)."""
        vias = resp.vias()
        if len(vias) < 2 or vias[0].sent_by != self.me or resp.status // 100 != 2:
            return
        nxt = vias[1]
        self.tl.send_stateless(strip_top_via(resp), (nxt.received or nxt.host, nxt.rport or nxt.port or 5060))

    # ---- helpers for the proxy --------------------------------------------------------------

    def reply(self, tx, status, now, headers=None, reason=None):
        resp = make_response(tx.request, status, reason, to_tag=self.tag(), headers=headers)
        self.tl.respond(tx, resp, now)

    def tag(self):
        return self.tl.branch.token()

    def parse_uri(self, text):
        return parse_uri(text)

    def prepare_forward(self, req, record_route):
        """16.6: decrement Max-Forwards, Record-Route if asked, add our Via."""
        mf = req.max_forwards()
        req.set("max-forwards", (70 if mf is None else mf) - 1)
        if record_route:
            req.add("record-route", self._record_route, first=True)
        req.add("via", "SIP/2.0/UDP %s;branch=%s;rport" % (self.me, self.tl.branch()), first=True)

    def is_me(self, route):
        try:
            uri = parse_uri(route.strip().lstrip("<").split(">")[0])
        except ParseError:
            return False
        return uri.host == self.host and (uri.port or 5060) == self.port

    def next_hop(self, route, uri):
        """(host, port) to send an in-dialog request to: the next Route, else the Request-URI."""
        if route is not None:
            try:
                uri = parse_uri(route.strip().lstrip("<").split(">")[0])
            except ParseError:
                return None
        if not uri.is_sip or not uri.host:
            return None
        return (uri.host.strip("[]"), uri.port or 5060)

    def record(self, call, now, status):
        """A call is over: keep its record and tell the shell."""
        epoch = self.epoch_ms

        def wall(ms):
            return None if ms is None else (epoch + ms) // 1000

        if call.answer_ms is not None:
            outcome = "answered"
        elif status == 487:
            outcome = "cancelled"
        elif status == 486 or status == 600:
            outcome = "busy"
        elif status in (403, 404, 484):
            outcome = "refused"
        elif status in (480, 408):
            outcome = "no-answer"
        else:
            outcome = "failed"
        record = {
            "start": wall(call.start_ms),
            "answer": wall(call.answer_ms),
            "end": wall(now),
            "from": call.caller,
            "to": call.target[1],
            "route": call.route + (" -> %s" % call.answered_by if call.answered_by else ""),
            "outcome": outcome,
            "status": status,
            "duration": (now - call.answer_ms) // 1000 if call.answer_ms is not None else 0,
        }
        self.cdr.add(record)
        self._events.append(("call", record))

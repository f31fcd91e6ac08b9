"""The SIP side of the appliance in one sans-IO object: what the device and host mode run.

    sw = Switch(site, "192.168.1.10", 5060, secret_key=os.urandom(16), random_bytes=os.urandom)
    sw.receive_datagram(data, addr, now_ms)
    for data, addr in sw.datagrams_to_send(): sock.sendto(data, addr)
    deadline = sw.next_timer(); sw.handle_timer(now_ms)
    sw.transport_error(addr, now_ms)      the shell could not send there (ICMP unreachable)
    for event in sw.take_events(): ...    zongji.switch.events: kind, as_dict()

What a request costs. Every datagram passes the failed-auth guard first (a banned address is
dropped unread, unless a phone is registered from that very ip:port). A new request is then
screened before any transaction exists (TransactionLayer.screen): OPTIONS, challenges (401 for
REGISTER, 407 for INVITE), wrong credentials, in-dialog requests from no party of a dialog,
CANCELs of nothing and malformed requests are all answered statelessly, once, and the switch
keeps nothing, as Kamailio's `sl` replies do. Those answers are rate-limited per address prefix
by AnswerBudget (switch/budget.py), credentials checks by the guard's guess budget, except a
registered phone's for its own extension. Only an authenticated phone, the provider and a
dialog's own parties get a transaction; calls have shares of the lines (Proxy.shares), refused
before any transaction too, and a call from the provider refused before anything rang is
answered statelessly (refuse): its address can be forged. Unauthenticated floods cannot lock
phones out. One request draws one answer: nothing the switch sends to an unverified address
is retransmitted.

Then by method: REGISTER to the registrar, INVITE to the proxy (the call decision decides where
it goes), CANCEL, ACK and in-dialog requests to the dialogs (zongji.switch.dialog), which pass
them on between the two parties of a call only. Requests for extensions the switch does not
know get the same answers as for ones it does, so nothing can be enumerated. No Server or
User-Agent header is sent: a version string only helps attackers.
"""

from binascii import hexlify
from hashlib import sha256

from zongji.call.cdr import CdrLog
from zongji.sip.auth import parse_auth, uri_matches
from zongji.sip.digest import BAD, OK, STALE, Authenticator
from zongji.sip.message import make_response
from zongji.sip.transaction import AckReceived, NewRequest, ResponseReceived, StrayResponse, TransactionLayer
from zongji.sip.txevents import Timeout, TransportError
from zongji.sip.uri import parse_uri
from zongji.switch import events
from zongji.switch.agent import AGENT, Agent
from zongji.switch.budget import AnswerBudget
from zongji.switch.dialog import Dialogs, same_addr
from zongji.switch.gateway import Gateway
from zongji.switch.guard import Guard
from zongji.switch.proxy import Proxy
from zongji.switch.registrar import Registrar
from zongji.switch.trunk import REJECTED, RETRYING, TrunkRegistration, is_from_trunk

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE, REFER"
_IN_DIALOG = ("BYE", "INFO", "UPDATE", "INVITE", "ACK", "REFER", "NOTIFY", "MESSAGE", "PRACK")
_PASSED_ON = ("INVITE", "ACK", "BYE", "INFO", "UPDATE", "CANCEL", "REFER", "NOTIFY", "MESSAGE", "PRACK")

MAX_EVENTS = 128
MAX_BODY = 8192  # bytes of body (SDP) in a request we act on; larger: 413


class Switch:
    def __init__(
        self,
        site,
        host,
        port,
        secret_key=None,
        random_bytes=None,
        max_transactions=64,
        trunk_addr=None,
        max_calls=None,
        max_nonces=None,
        media=None,
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
        self.tl.screen = self._screen
        self.tl.may_answer = self._may_answer  # a malformed request's 400 is a stateless answer too
        self.guard = Guard()
        self._tag_key = b"tag" + (secret_key or (random_bytes(16) if random_bytes else b"zongji"))
        self.budget = AnswerBudget()  # answers to requests without credentials
        self._secret_key = secret_key
        self._random = random_bytes
        self._max_nonces = max_nonces
        self.auth = self._authenticator(site)
        self.registrar = Registrar(site, self.auth, self.guard, random_bytes)
        self.proxy = Proxy(self)
        if max_calls is not None:
            self.proxy.max_calls = max_calls
        self.dialogs = Dialogs(self)
        self.cdr = CdrLog()
        self.counters = {}  # what was dropped or refused, by why: for status and tests
        self.gateway = None  # trunk calls (B2BUA), when the site has a trunk
        self.trunk_reg = None
        self._new_trunk = None  # (trunk, trunk_addr) a sync brought, until the trunk's calls end
        self._trunk(site.trunk, trunk_addr)
        # the attendant: the switch's own user agent, when the shell carries media (RTP)
        self.agent = Agent(self, media, random_bytes) if media is not None else None
        self._started = False
        self.epoch_ms = 0  # wall time = epoch_ms + now_ms; 0 until the shell knows the time
        self._events = [events.Listening(host, port)]
        self._record_route = "<sip:%s;lr>" % self.me
        self._screened = None  # (request, verdict) the screen already authenticated

    def _authenticator(self, site):
        auth = Authenticator(site.realm, self._secret_key, random_bytes=self._random, algorithms=site.digest)
        if self._max_nonces:
            auth.track(self._max_nonces)
        return auth

    def _trunk(self, trunk, trunk_addr):
        self.gateway = self.trunk_reg = None
        if trunk:
            # the core resolves no names: a shell passes trunk_addr for a host name
            self.trunk_addr = trunk_addr or (trunk["host"], trunk.get("port") or 5060)
            self.gateway = Gateway(self, trunk, self.trunk_addr, self._random)
            if trunk.get("register", True):
                self.trunk_reg = TrunkRegistration(trunk, self.tl, self.host, self.port, self._random)
                self.trunk_reg.addr = self.trunk_addr

    def set_site(self, site, now_ms=None, trunk_addr=None):
        """A new site (a sync) from now on: calls in progress carry on as they were, new ones
        follow the new site. Registrations of extensions that keep a phone stay; a new realm or
        digest makes new nonces (phones answer the next challenge with it). A changed [trunk]
        takes over once no call runs through the old one (the provider hears us unregister,
        then register anew); trunk_addr is the shell's resolved address for its host."""
        old = self.site
        self.site = site
        auth = None
        if site.realm != old.realm or site.digest != old.digest:
            auth = self.auth = self._authenticator(site)
        self.registrar.set_site(site, auth)
        if site.trunk != old.trunk:
            self._new_trunk = (site.trunk, trunk_addr)
            self._swap_trunk(now_ms)

    def _swap_trunk(self, now_ms):
        if self.gateway is not None and self.gateway.calls:
            return  # later: handle_timer tries again
        trunk, addr = self._new_trunk
        self._new_trunk = None
        if self.trunk_reg is not None and self._started and now_ms is not None:
            self.trunk_reg.unregister(now_ms)
        self._trunk(trunk, addr)
        if self.trunk_reg is not None and self._started and now_ms is not None:
            self.trunk_reg.start(now_ms)

    # ---- shell interface ------------------------------------------------------------------

    def _start(self, now_ms):
        # the first event from the shell starts what runs on its own (the trunk registration)
        self._started = True
        if self.trunk_reg is not None:
            self.trunk_reg.start(now_ms)

    def receive_datagram(self, data, addr, now_ms):
        if not self._started:
            self._start(now_ms)
        if not self.guard.allowed(addr[0], now_ms) and not self.registrar.has_source(addr):
            self.count("datagram from a banned address")
            return
        for ev in self.tl.receive(data, addr, now_ms):
            self._dispatch(ev, now_ms)
        self._inner(now_ms)
        self._collect()

    def _inner(self, now_ms):
        """Hand the agent what the switch queued for it, and take in what it answers, until
        neither has anything more for the other (bounded: a bug must not spin the loop)."""
        agent = self.agent
        if agent is None:
            return
        tl = self.tl
        if not tl._out and not agent.tl._out and not agent._out:
            return  # the usual case for a media tick: nothing for either side
        for _ in range(32):
            mine = [d for d, a in tl._out if a is AGENT or a == AGENT]
            if mine:
                tl._out = [(d, a) for d, a in tl._out if not (a is AGENT or a == AGENT)]
                for data in mine:
                    agent.receive(data, now_ms)
            back = agent.datagrams()
            if not back and not mine:
                return
            for data in back:
                for ev in tl.receive(data, AGENT, now_ms):
                    self._dispatch(ev, now_ms)
        self.count("agent loop cut short")

    def receive_rtp(self, data, addr, now_ms):
        """An RTP datagram on the media port (the attendant's calls; relayed calls)."""
        if self.agent is not None:
            self.agent.media.receive(data, addr, now_ms)
            self._inner(now_ms)

    def sip_pending(self):
        """Has a media step left SIP to send or events to take (the attendant hung up, put a
        caller through)? The shell then does a full turn; else only the media deadline moved."""
        return bool(self.tl._out or self._events)

    def agent_due(self):
        """ms of the attendant's next timer (a menu's reply timeout starts when its prompt ends,
        which only a media step sees), or None: the shell's media ticks keep it in the deadline."""
        return self.agent.next_timer() if self.agent is not None else None

    def media_due(self):
        """ms when the next RTP frame is due, or None: the shell paces frames against it."""
        return self.agent.media.due() if self.agent is not None else None

    def media_to_send(self, now_ms):
        """[(bytes, addr)] of RTP due by now_ms (frames of prompts, ringback, relayed audio)."""
        if self.agent is None:
            return []
        out = self.agent.media.frames(now_ms)
        self._inner(now_ms)
        return out

    def datagrams_to_send(self):
        return self.tl.datagrams_to_send()

    def next_timer(self):
        if not self._started:
            return 0  # due at once: handle_timer() starts the trunk registration
        if self._new_trunk is not None and not (self.gateway is not None and self.gateway.calls):
            return 0  # a synced trunk waits for nothing more: take it over now
        best = None
        trunk = self.trunk_reg.next_timer() if self.trunk_reg is not None else None
        agent = self.agent.next_timer() if self.agent is not None else None
        for t in (self.tl.next_timer(), self.registrar.next_timer(), self.proxy.next_timer(), trunk, agent):
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
        if self.agent is not None:
            self.agent.handle_timer(now_ms)
        if self._new_trunk is not None:
            self._swap_trunk(now_ms)
        self._inner(now_ms)
        self._collect()

    def transport_error(self, addr, now_ms):
        """The shell could not send to addr (ICMP port unreachable, no route): every transaction
        sending there ends at once, as if its timer had run out (RFC 3261 17.1.1.2, 17.1.2.2)."""
        for ev in self.tl.transport_error(addr, now_ms):
            self._dispatch(ev, now_ms)
        self._inner(now_ms)
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
            "lingering": (self.tl.lingering(), self.tl.lingering_cap()),
            "calls": (len(self.proxy.calls), self.proxy.max_calls),
            "trunk_calls": (len(self.gateway.calls) if self.gateway is not None else 0, None),
            "relays": (len(self.proxy.relays), self.tl.max_transactions),
            "registrations": (len(self.registrar), None),
            "guard": (len(self.guard), self.guard.max_sources),
            "budget": (len(self.budget), self.budget.max_prefixes),
            "events": (len(self._events), MAX_EVENTS),
            "records": (len(self.cdr), self.cdr.max_records),
        }

    def take_events(self):
        out = self._events
        self._events = []
        return out

    def _collect(self):
        for source in (self.registrar, self.guard, self.trunk_reg):
            if source is not None:
                for t in source.take_events():
                    self._events.append(events.from_tuple(t))
        if len(self._events) > MAX_EVENTS:  # a shell that never drains must not eat the heap
            del self._events[: len(self._events) - MAX_EVENTS]

    def count(self, why):
        self.counters[why] = self.counters.get(why, 0) + 1

    def alert(self, text):
        self._events.append(events.Alert(text))

    # ---- dispatch ---------------------------------------------------------------------------

    def _dispatch(self, ev, now):
        if isinstance(ev, NewRequest):
            self._request(ev.tx, ev.request, ev.addr, ev.cancels, now)
        elif isinstance(ev, AckReceived):
            # the ACK for a 2xx: on a new branch (tx None), or on the INVITE's own branch as
            # RFC 2543 phones send it (the accepted server transaction hands it up): either way
            # it goes on to the callee
            self._ack(ev.request, ev.addr, now)
        elif isinstance(ev, StrayResponse):
            self.dialogs.stray(ev.response, ev.addr)
        elif hasattr(ev, "tx") and ev.tx is not None and ev.tx.tu is not None:
            tu = ev.tx.tu  # a client transaction's user: a call's leg, a relay, the trunk
            if isinstance(ev, ResponseReceived):
                tu.on_response(ev.tx, ev.response, now)
            elif isinstance(ev, (Timeout, TransportError)) and hasattr(tu, "on_timeout"):
                # a server transaction's user (a Call, for CANCELs) has no use for its timeouts
                tu.on_timeout(ev.tx, now, getattr(ev, "timer", None))

    def _ack(self, req, addr, now):
        # the ACK for a 2xx: the provider's for a call it answered ends at the gateway
        if self._from_trunk(addr) and self.gateway.provider_leg(req) is not None:
            return
        to = req.to_addr()
        if to is not None and to.tag == self.stateless_tag(req):
            return  # the ACK for a stateless 407 (or 4xx) we sent: it ends here
        self.dialogs.in_dialog(None, req, addr, now)

    def _screen(self, req, addr, cancels, now):
        """Before any transaction: None (go on, statefully), a Response to send statelessly, or
        False to drop. See the module docstring."""
        self._screened = None
        method = req.method
        if addr is AGENT or addr == AGENT:
            return None  # the switch's own user agent: trusted, it never came off the network
        problem = self._check(req)
        if problem is not None:
            return self._stateless(req, addr, now, problem[0], problem[1], problem[2])
        to = req.to_addr()
        trunk = self._from_trunk(addr)
        if to is not None and to.tag and method in _IN_DIALOG:
            if trunk and self.gateway.provider_leg(req) is not None:
                return None
            if self.dialogs.party(req, addr) is not None:
                return None
            self.count("in-dialog request from no party of a dialog")
            return self._stateless(req, addr, now, 481)
        if method == "CANCEL":
            if cancels is not None and same_addr(addr, cancels.addr):
                return None
            if cancels is not None:  # the branch is known, the sender is not the caller
                self.count("cancel from another address than its invite")
            return self._stateless(req, addr, now, 481)
        if method == "OPTIONS":
            return self._stateless(req, addr, now, 200, None, (("Allow", ALLOW), ("Accept", "application/sdp")))
        if method == "REGISTER":
            if trunk:  # a phone never sits at the provider's address: a spoofed source
                self.count("register from the provider's address")
                return False
            if not self._may_verify(req, "authorization", addr, now):
                return False
            resp = self.registrar.handle(req, addr, now)
            if resp.status < 300:
                if len(self.tl) >= self.tl.max_transactions:
                    return resp  # bound already: say so (once) rather than 503 a done deed
                self._screened = (req, resp)  # bound: a transaction absorbs retransmissions
                return None
            return self._stateless(req, addr, now, resp=resp, charged=_has_digest(req, "authorization"))
        if method == "INVITE":
            if trunk:  # the provider: known by its address, answered statefully
                return self._room_for_call(req, addr, None, now)
            return self._authenticate_invite(req, addr, now)
        if method in _IN_DIALOG:
            return self._stateless(req, addr, now, 481)
        return self._stateless(req, addr, now, 405, None, (("Allow", ALLOW),))

    def _stateless(self, req, addr, now, status=None, reason=None, headers=None, resp=None, charged=False):
        """A response with no transaction, or False (drop) when the guard says this source has had
        its share of answers. Registered phones are never held back. `charged`: the answer to a
        failed guess, which the guard already counted (Guard.failed)."""
        if not charged and not self.registrar.has_source(addr) and not self.budget.may_answer(addr[0], now):
            self.count("answer withheld: rate limit")
            return False
        if resp is None:
            resp = make_response(req, status, reason, to_tag=self.stateless_tag(req), headers=headers)
        return resp

    def _may_answer(self, addr, now):
        if self.registrar.has_source(addr) or self.budget.may_answer(addr[0], now):
            return True
        self.count("answer withheld: rate limit")
        return False

    def stateless_tag(self, req):
        """The To tag of a stateless answer to req: the same for its retransmissions (which get
        the same answer), unguessable by others, and recognisable in the ACK that a non-2xx
        answer to an INVITE draws (17.1.1.3), so that ACK is no stranger's request."""
        frm = req.from_addr()
        via = req.via()
        text = "%s|%s|%s" % (req.call_id(), frm.tag if frm is not None else "", via.branch if via is not None else "")
        return hexlify(sha256(self._tag_key + text.encode()).digest()[:6]).decode()

    def _may_verify(self, req, header, addr, now):
        """Check these credentials at all? Not for a user locked at this address, nor while the
        address's prefix (or everyone) has had its share of failed guesses: the request is then
        dropped unread, so a right guess looks like a wrong one. A phone passes for its own
        extension only, from the very ip:port it registered from: a registered softphone gets
        no free guesses at its colleagues' passwords."""
        if not _has_digest(req, header):
            return True
        user = _username(req, header, self.site.realm)
        if self.registrar.registered_at(addr, user):
            return True
        if self.guard.user_allowed(addr[0], user, now) and self.guard.may_challenge(addr[0], now):
            return True
        self.count("credentials not checked: locked or rate limit")
        return False

    def _authenticate_invite(self, req, addr, now):
        header = req.get("proxy-authorization")
        if not _has_digest(req, "proxy-authorization"):  # another scheme: none
            return self._challenge(req, addr, now, False)
        if not self._may_verify(req, "proxy-authorization", addr, now):
            return False
        try:
            params = parse_auth(header)
        except ValueError:
            return self._stateless(req, addr, now, 400, "Bad Proxy-Authorization")
        if not uri_matches(params, req.uri):
            self.guard.failed(addr[0], params.get("username"), now, "credentials for another request")
            return self._stateless(req, addr, now, 400, "Credentials For Another Request-URI", charged=True)
        verdict = self.auth.check("INVITE", params, self._secret, now)
        if verdict == STALE:
            return self._challenge(req, addr, now, True)
        if verdict == BAD:
            return self._stateless(req, addr, now, 400, "Bad Proxy-Authorization")
        user = params.get("username")
        if verdict != OK:
            self.guard.failed(addr[0], user, now, "wrong password or unknown user")
            return self._challenge(req, addr, now, False, charged=True)
        caller = self.site.extension(user)
        sender = req.from_addr()
        if caller is None or sender is None or sender.uri.user != user:
            self.guard.failed(addr[0], user, now, "from does not match credentials")
            return self._stateless(req, addr, now, 403, "From Does Not Match Credentials", charged=True)
        self.guard.succeeded(addr[0], user)
        answer = self._room_for_call(req, addr, caller.number, now)
        if answer is None:
            self._screened = (req, caller)
        return answer

    def _room_for_call(self, req, addr, number, now):
        """None when a new call may take a line, else a stateless 503: a caller over its share
        (Proxy.over_share) gets no transaction, so a flood of them, or of INVITEs spoofed from
        the provider's address, draws one answer each and no retransmissions."""
        if req.call_id() in self.proxy.calls:
            return None  # a merged request: the proxy answers 482
        why = self.proxy.over_share(addr, number)
        if why is None:
            return None
        self.count(why)
        return self._stateless(req, addr, now, 503, None, (("Retry-After", 30),), charged=number is not None)

    def _challenge(self, req, addr, now, stale, charged=False):
        values = self.auth.challenge(now, stale)
        return self._stateless(req, addr, now, 407, None, [("Proxy-Authenticate", v) for v in values], charged=charged)

    def _request(self, tx, req, addr, cancels, now):
        screened = self._screened
        self._screened = None
        method = req.method
        if method == "CANCEL":
            return self.proxy.cancel(tx, req, cancels, now)
        to = req.to_addr()
        if to is not None and to.tag and method in _IN_DIALOG:
            if self._from_trunk(addr) and self.gateway.provider_request(tx, req, now):
                return
            return self.dialogs.in_dialog(tx, req, addr, now)
        if method == "INVITE" and self._from_trunk(addr):
            return self.proxy.inbound(tx, req, addr, now)
        if addr is AGENT or addr == AGENT:
            if method == "INVITE":
                return self.proxy.placed(tx, req, now)
            return self.reply(tx, 405, now)
        if screened is None or screened[0] is not req:
            return self.reply(tx, 500, now, reason="Not Screened")  # a bug: every path is above
        if method == "REGISTER":
            return self.tl.respond(tx, screened[1], now)
        self.proxy.invite(tx, req, screened[1], addr, now)

    def _check(self, req):
        """RFC 3261 8.2.1-8.2.2 and 16.3: (status, reason, headers) we must answer first, or None."""
        if not req.uri.is_sip:
            return 416, None, None
        # Proxy-Require is ours to honour; Require is end to end (16.3): only for requests we
        # answer ourselves, never for the INVITEs and in-dialog requests we pass on (a phone's
        # "Require: 100rel" is for the phone it calls)
        unsupported = req.get_all("proxy-require")
        if req.method not in _PASSED_ON:
            unsupported = unsupported + req.get_all("require")
        if unsupported and req.method not in ("ACK", "CANCEL"):
            return 420, None, (("Unsupported", ", ".join(unsupported)),)
        mf = req.max_forwards()
        if mf is not None and mf <= 0 and req.method not in ("REGISTER", "OPTIONS"):
            return 483, None, None
        if len(req.body) > MAX_BODY:  # a call keeps its INVITE while it rings: bound what it keeps
            return 413, None, None
        return None

    def is_trunk(self, addr):
        """Is addr the provider's (ip, port)?"""
        return self._from_trunk(addr)

    def _from_trunk(self, addr):
        return self.gateway is not None and is_from_trunk(addr, self.site.trunk, self.trunk_addr[0])

    def trunk_up(self):
        """Can calls go out now? Not while the registration is failing (retrying, rejected):
        callers then hear 503 at once instead of waiting out Timer B. Without a registration
        to watch, or while the first one is on its way, assume so."""
        return self.trunk_reg is None or self.trunk_reg.state not in (RETRYING, REJECTED)

    def _secret(self, user, algorithm):
        # the caller's HA1 for the INVITE's digest (the site keeps no secrets: site/directory.py)
        return self.site.directory.ha1(user, algorithm)

    # ---- helpers for the proxy, the gateway and the dialogs -----------------------------------

    def reply(self, tx, status, now, headers=None, reason=None):
        resp = make_response(tx.request, status, reason, to_tag=self.tag(), headers=headers)
        self.tl.respond(tx, resp, now)

    def refuse(self, tx, status, now, headers=None, reason=None):
        """A final failure on server tx before anything rang. Toward the provider's address
        it is sent once, statelessly, and the transaction ends: a UDP source cannot be
        verified, so INVITEs spoofed from the provider must neither hold the table for 32 s
        each nor be reflected ten times at it. A retransmitted INVITE is refused again; its
        ACK ends at the switch (stateless_tag). Phones, authenticated, get a transaction."""
        if not self._from_trunk(tx.addr):
            return self.reply(tx, status, now, headers, reason)
        req = tx.request
        resp = make_response(req, status, reason, to_tag=self.stateless_tag(req), headers=headers)
        self.tl.send_stateless(resp, tx.addr)
        self.tl.abandon(tx)

    def tag(self):
        return self.tl.branch.token()

    def parse_uri(self, text):
        return parse_uri(text)

    def local_time(self, now):
        """The branch's wall-clock time at now_ms, or None while the shell has not set the clock."""
        if not self.epoch_ms:
            return None
        return self.site.local_time((self.epoch_ms + now) // 1000)

    def prepare_forward(self, req, record_route):
        """16.6: decrement Max-Forwards, Record-Route if asked, add our Via."""
        mf = req.max_forwards()
        req.set("max-forwards", (70 if mf is None else mf) - 1)
        if record_route:
            req.add("record-route", self._record_route, first=True)
        req.add("via", "SIP/2.0/UDP %s;branch=%s;rport" % (self.me, self.tl.branch()), first=True)

    def record(self, call, now, status, reason=None):
        """A call is over: keep its record and tell the shell. An anchored call is recorded
        once, by the agent's call to the target (what it rang, who answered), from the
        caller's start (proxy.Call.bridged, front)."""
        if call.bridged:
            return
        epoch = self.epoch_ms

        def wall(ms):
            return None if ms is None else (epoch + ms) // 1000

        life = call.life
        if life.answered:
            outcome = "answered"
        elif call.refused:
            outcome = "refused"
        elif status == 487:
            outcome = "cancelled"
        elif status in (486, 600, 603):
            outcome = "busy"
        elif status in (480, 408) and call.rang:
            outcome = "no-answer"
        else:
            outcome = "failed"
        winner = call.winner
        front = call.front
        record = {
            "start": wall(front.life.start_ms if front is not None else life.start_ms),
            "answer": wall(life.answer_ms),
            "end": wall(now),
            "from": call.caller,
            "to": call.target[1] or call.dialed,
            "route": call.route + (" -> %s" % winner if winner else ""),
            "outcome": outcome,
            "status": status,
            "reason": reason or "",
            "duration": (now - life.answer_ms) // 1000 if life.answered else 0,
            "by": winner or "",
        }
        self.cdr.add(record)
        self._events.append(events.CallEnded(record))


def _has_digest(req, header):
    for value in req.get_all(header):
        if value.lstrip()[:7].lower() == "digest ":
            return True
    return False


def _username(req, header, realm):
    """The user name whose password will be checked, chosen and read exactly as the check does
    (parse_auth, escapes undone), so a lock cannot be dodged by spelling the name otherwise or
    by a decoy header: the proxy checks the first Proxy-Authorization; the registrar the first
    Digest Authorization that parses, or the one for our realm."""
    if header == "proxy-authorization":
        values = req.get_all(header)[:1]
    else:
        values = [v for v in req.get_all(header) if v.lstrip()[:7].lower() == "digest "]
    chosen = None
    for value in values:
        try:
            params = parse_auth(value)
        except ValueError:
            continue
        if chosen is None:
            chosen = params
        if params.get("realm") == realm:
            chosen = params
            break
    return (chosen or {}).get("username") or ""

"""The appliance as a client of its SIP provider, the [trunk] of site.toml: registration
(RFC 3261 section 10.2), digest answers to 401/407 (ClientAuth, which outbound INVITEs through
the trunk reuse), and telling the provider's requests from the LAN's (is_from_trunk).

    reg = TrunkRegistration(site["trunk"], layer, "192.0.2.10", 5060, os.urandom)
    reg.addr = (resolved_ip, port)           # the shell resolves a host name (see below)
    reg.start(now_ms)
    if reg.owns(ev.tx): reg.on_event(ev, now_ms)   # ResponseReceived, Timeout, TransportError
    reg.next_timer() / reg.handle_timer(now_ms)
    reg.take_events()                        # [("trunk", state, detail), ...]
    reg.unregister(now_ms)                   # clean shutdown: Expires: 0

Theory of operation
-------------------
One REGISTER is in flight at a time, in a client transaction of the Switch's TransactionLayer.
All of them carry one Call-ID and From tag, with CSeq going up by one (section 10.2.4); the
Request-URI is sip:<host> (with :port when not 5060), To and From sip:<username>@<host>, the
Contact sip:<username>@<local_host>:<local_port>, and Expires asks `asked_expires` seconds.

    idle         not started, registration switched off ([trunk] register = false), or after
                 unregister().
    registering  the first REGISTER since start() is out (with its digest round trip).
    registered   a 2xx came. The grant is our Contact's expires parameter in the 2xx, else its
                 Expires header, else what we asked; the refresh goes at half of it
                 (section 10.2.4 leaves the margin to us), with cached credentials, so a
                 provider that still honours the nonce answers 200 at once.
    retrying     the provider is down or failing: Timer F ran out (no answer), the shell
                 reported a transport error, or a 3xx-6xx other than those below. The next try
                 waits 5 s, 10 s, 20 s ... capped at 5 min, each cut by up to a quarter at
                 random so a fleet does not come back in step; a Retry-After in the answer
                 (503 and others, section 20.33) sets the wait instead, at most an hour.
    rejected     the provider refuses us: our credentials, computed from the challenge it had
                 just sent, drew another non-stale 401/407 (wrong user name or password), or
                 403 / 404 / 603 (no such account, barred), or no challenge we can answer.
                 Retrying cannot help until the admin fixes site.toml, so the next try is
                 `rejected_backoff_s` (30 min) away: a wrong password never turns into a
                 REGISTER storm, nor into a ban at the provider.

A retry keeps its state (retrying stays retrying until a 2xx); take_events() reports each state
change once. 401/407 get at most `max_auth_tries` digest answers per attempt; a stale=true
challenge, or a new nonce after cached credentials (nc above 1), is answered again. 423 is
answered by asking its Min-Expires (section 10.2.8), up to `max_expires`.

Host names: the core resolves nothing. The shell looks the [trunk] host up and sets `reg.addr`
to (ip, port), and passes the same ip to is_from_trunk() as `resolved`; an address written as
an IP needs nothing. Memory: one parsed request while a REGISTER is in flight, at most two
cached challenges, a bounded event list.
"""

from zongji.sip.auth import parse_auth, pick_challenge, respond
from zongji.sip.headers import MAX_CSEQ
from zongji.sip.message import Request, make_request
from zongji.sip.transaction import BranchGenerator, ResponseReceived, Timeout, TransactionError
from zongji.sip.uri import URI, ParseError, to_uint
from zongji.text import bare_host, bracket_host

TRANSPORT = "transport error sending to the provider"

IDLE = "idle"
REGISTERING = "registering"
REGISTERED = "registered"
RETRYING = "retrying"
REJECTED = "rejected"

# status -> (challenge header, credentials header), RFC 3261 sections 22.2 and 22.3
_AUTH = {401: ("www-authenticate", "authorization"), 407: ("proxy-authenticate", "proxy-authorization")}


def is_from_trunk(addr, trunk_cfg, resolved=None):
    """True when a request from addr = (ip, port) came from the provider of `trunk_cfg` (the
    [trunk] dict, or None): the source port is [trunk] port and the source ip is the configured
    host. Nothing is resolved here: when host is a name, the shell passes its address(es) as
    `resolved` (an ip string, or a list of them), which then replace the configured text."""
    if not trunk_cfg or not addr:
        return False
    if addr[1] != (trunk_cfg.get("port") or 5060):
        return False
    if resolved is None:
        resolved = trunk_cfg.get("host") or ""
    src = bare_host(addr[0])
    for host in resolved if isinstance(resolved, (list, tuple)) else (resolved,):
        if bare_host(host) == src:
            return True
    return False


def _retry_after(resp):
    # 'Retry-After: 120 (maintenance);duration=60' -> 120; -1 when absent or malformed
    value = resp.get("retry-after") or ""
    return to_uint(value.split(";", 1)[0].split("(", 1)[0].strip(" \t"))


class ClientAuth:
    """Digest credentials for the requests we send to the provider (RFC 3261 section 22.2-22.3,
    answered by digest.respond: MD5 or SHA-256, qop=auth, the first usable challenge first).

    The last challenge seen is cached per header (401 -> Authorization, 407 ->
    Proxy-Authorization) with its nonce count, and authorize() answers it in later requests, so
    a refresh needs no extra round trip while the nonce is good. For an outbound INVITE through
    the trunk answered 401/407:

        again = trunk.auth.retry(invite, resp)   # None: give up, trunk.auth.reason says why
        if again is not None: layer.send_request(again, addr, now_ms)

    `again` is the INVITE with the same Call-ID, From (tag), To, Route and body, CSeq one
    higher, no Via (the layer adds one with a new branch) and the credentials; the transaction
    already ACKed the 401/407 (section 17.1.1.3). Keep the new CSeq for the dialog."""

    def __init__(self, username, password, random_bytes=None):
        self.username = username
        self.password = password
        self.reason = ""  # why learn() / retry() said no (lowercase, for the log)
        self._tokens = BranchGenerator(random_bytes)
        self._cached = {}  # credentials header key -> [challenge params, nonce count]

    def forget(self):
        self._cached = {}

    def learn(self, request, resp):
        """Take in the 401/407 `resp` to `request` (which we sent). True when sending the
        request again with authorize() can help; False when it cannot: no challenge we can
        answer, or our credentials answered the nonce it had just sent (nc 1) or the very nonce
        it sends now, and it refused them without saying stale (a wrong password)."""
        names = _AUTH.get(resp.status)
        if names is None:
            self.reason = "%d is not a challenge" % resp.status
            return False
        ask, key = names
        params = pick_challenge(resp.get_all(ask))
        if params is None:
            self._cached.pop(key, None)
            self.reason = "no challenge we can answer (%d)" % resp.status
            return False
        sent = request.get(key)
        if sent is not None and params.get("stale", "").lower() != "true":
            try:
                old = parse_auth(sent)
            except ValueError:
                old = {}
            nc = old.get("nc")
            if nc is None:  # RFC 2069 style: first use of a nonce is what we counted ourselves
                entry = self._cached.get(key)
                fresh = entry is not None and entry[0].get("nonce") == old.get("nonce") and entry[1] <= 1
            else:
                fresh = nc == "00000001"
            if fresh or old.get("nonce") == params["nonce"]:
                self._cached.pop(key, None)
                self.reason = "wrong username or password (%d)" % resp.status
                return False
        self._cached[key] = [params, 0]
        return True

    def authorize(self, request):
        """Add credentials answering every cached challenge, over the request's method and
        Request-URI. True when something was added."""
        added = False
        for key in ("authorization", "proxy-authorization"):
            entry = self._cached.get(key)
            if entry is None:
                continue
            entry[1] += 1
            user, cnonce = self.username, self._tokens.token()
            try:
                value = respond(entry[0], request.method, str(request.uri), user, self.password, cnonce, entry[1])
            except ValueError as e:  # a control character in the password, nc exhausted
                self.reason = str(e)
                del self._cached[key]
                continue
            request.set(key, value)
            added = True
        return added

    def retry(self, request, resp):
        """The request to send after the 401/407 `resp` (see the class docstring), or None."""
        if not self.learn(request, resp):
            return None
        cseq = request.cseq()
        again = Request(request.method, request.uri, list(request.headers), request.body)
        again.remove("via")
        again.set("cseq", "%d %s" % (cseq[0] + 1, cseq[1]))
        self.authorize(again)
        return again


class TrunkRegistration:
    """Keeps the appliance registered at the provider (see the module docstring). The class
    attributes are the knobs, in seconds; set them on an instance or a subclass."""

    asked_expires = 600  # the registration we ask for
    max_expires = 86400  # a longer grant is refreshed as if it were this; the 423 limit too
    min_refresh_s = 5  # never refresh sooner than this, whatever the provider grants
    backoff_min_s = 5  # first wait after a failure; doubles per failure ...
    backoff_max_s = 300  # ... up to this
    rejected_backoff_s = 1800  # wait after the provider refused our credentials or account
    max_retry_after_s = 3600  # a longer Retry-After is cut to this
    max_auth_tries = 3  # digest answers per attempt
    max_events = 16  # undrained events kept, oldest dropped first
    user_agent = "zongji"

    def __init__(self, trunk_cfg, transactions, local_host, local_port, random_bytes=None):
        self.transactions = transactions
        self.host = trunk_cfg["host"]
        port = trunk_cfg.get("port") or 5060
        self.username = trunk_cfg["username"]
        self.enabled = trunk_cfg.get("register", True)
        self.addr = (self.host, port)  # where REGISTERs go: the shell may set a resolved ip
        self.auth = ClientAuth(self.username, trunk_cfg["password"], random_bytes)
        self.state = IDLE
        self.detail = ""
        self.tx = None  # the REGISTER transaction in flight
        self.expires_at = None  # ms: when the grant of the last 2xx runs out
        self._tokens = BranchGenerator(random_bytes)
        self.call_id = "%s@%s" % (self._tokens.token(), bracket_host(local_host))
        self._tag = self._tokens.token()
        self._uri = URI("sip", None, bracket_host(self.host), None if port == 5060 else port)
        self._aor = "<%s>" % URI("sip", self.username, bracket_host(self.host))
        self._contact = "<%s>" % URI("sip", self.username, bracket_host(local_host), local_port)
        self._contact_key = (self.username, bare_host(local_host), local_port)
        self._req = None  # our request in flight (the transaction drops its copy on the answer)
        self._cseq = 0
        self._asking = self.asked_expires
        self._timer = None
        self._failures = 0
        self._tries = 0
        self._closing = False
        self._events = []

    # -- the Switch's side -----------------------------------------------------------------

    def start(self, now_ms):
        """Send the first REGISTER (nothing when [trunk] register = false)."""
        if not self.enabled:
            self._set(IDLE, "registration is off ([trunk] register = false)")
            return
        if self.tx is not None or self.state in (REGISTERED, RETRYING, REJECTED):
            return
        self._closing = False
        self._set(REGISTERING, "registering at %s:%d" % self.addr)
        self._attempt(now_ms)

    def unregister(self, now_ms):
        """Remove our binding at the provider (Expires: 0, section 10.2.2): for a clean
        shutdown, then pump datagrams until `tx` is None or a second or two passed. The state
        becomes idle on the answer (or its timeout). False when there was nothing to remove."""
        if self.tx is not None:
            self.transactions.abandon(self.tx)
            self.tx = None
        self._timer = None
        if self.state in (IDLE, REJECTED):
            self._set(IDLE, "stopped")
            return False
        self._closing = True
        self._tries = 0
        self._send(now_ms, 0)
        return True

    def owns(self, tx):
        return tx is not None and tx is self.tx

    def on_event(self, ev, now_ms):
        """Feed a transaction event for a transaction we own: ResponseReceived, Timeout or
        TransportError. False when it was not ours."""
        if not self.owns(ev.tx):
            return False
        if isinstance(ev, ResponseReceived):
            self.on_response(ev.tx, ev.response, now_ms)
        elif isinstance(ev, Timeout):
            self.on_timeout(ev.tx, now_ms, ev.timer)
        else:
            self.on_timeout(ev.tx, now_ms, TRANSPORT)
        return True

    def on_response(self, tx, resp, now_ms):
        if not self.owns(tx) or resp.status < 200:
            return
        req = self._req
        self.tx = self._req = None
        status = resp.status
        if status < 300:
            if self._closing:
                self._closing = False
                self._set(IDLE, "unregistered")
                return
            self._registered(resp, now_ms)
        elif status in _AUTH:
            if self._tries >= self.max_auth_tries:
                self._reject(now_ms, "provider keeps challenging (%d)" % status)
            elif self.auth.learn(req, resp):
                self._tries += 1
                self._send(now_ms, 0 if self._closing else self._asking)
            else:
                self._reject(now_ms, self.auth.reason)
        elif status == 423 and not self._closing:
            low = to_uint(resp.get("min-expires") or "")
            if self._asking < low <= self.max_expires:
                self._asking = low
                self._send(now_ms, low)
            else:
                self._fail(now_ms, "423 without a usable min-expires", resp)
        elif status in (403, 404, 603):
            self._reject(now_ms, "%d %s" % (status, resp.reason))
        else:
            self._fail(now_ms, "%d %s" % (status, resp.reason), resp)

    def on_timeout(self, tx, now_ms, why=None):
        """The REGISTER got no final answer: `why` is the switch's timer name ("F", "B") for a
        timeout, None for a transport error; or already words (handle() passes TRANSPORT)."""
        if self.owns(tx):
            if why is None:
                why = TRANSPORT
            elif len(why) <= 6:  # a timer's name: "F", "B", "cancel"
                why = "no answer from the provider (Timer %s ran out)" % why
            self.tx = self._req = None
            self._fail(now_ms, why)

    def next_timer(self):
        """ms of the next refresh or retry, or None."""
        return self._timer

    def handle_timer(self, now_ms):
        if self._timer is None or now_ms < self._timer:
            return
        self._timer = None
        if self.tx is None:
            self._attempt(now_ms)

    def take_events(self):
        events = self._events
        self._events = []
        return events

    # -- inside --------------------------------------------------------------------------------

    def _set(self, state, detail):
        self.detail = detail
        if state != self.state:
            self.state = state
            if len(self._events) >= self.max_events:
                self._events.pop(0)
            self._events.append(("trunk", state, detail))

    def _attempt(self, now_ms):
        self._tries = 0
        self._send(now_ms, self._asking)

    def _send(self, now_ms, expires):
        self._cseq += 1
        if self._cseq > MAX_CSEQ:  # 2**31 REGISTERs: start a new Call-ID (section 10.2.4)
            self.call_id = "%s@%s" % (self._tokens.token(), self.call_id.split("@", 1)[-1])
            self._cseq = 1
        req = make_request(
            "REGISTER",
            self._uri,
            self._aor + ";tag=" + self._tag,
            self._aor,
            self.call_id,
            self._cseq,
            contact=self._contact,
            headers=(("Expires", expires), ("User-Agent", self.user_agent)),
        )
        self.auth.authorize(req)
        try:
            self.tx = self.transactions.send_request(req, self.addr, now_ms)
            self.tx.tu = self  # the layer's events for it come to on_response / on_timeout
        except TransactionError as e:
            self.tx = None
            self._fail(now_ms, str(e))
            return
        self._req = req

    def _granted(self, resp):
        # our Contact's expires param, else the only contact's, else Expires, else what we asked
        try:
            contacts = resp.contacts()
        except ParseError:
            contacts = []
        mine = None
        for c in contacts:
            u = c.uri
            if not c.is_star and u.is_sip and (u.user, bare_host(u.host), u.port or 5060) == self._contact_key:
                mine = c
                break
        if mine is None and len(contacts) == 1 and not contacts[0].is_star:
            mine = contacts[0]
        seconds = mine.param_int("expires") if mine is not None else None
        if seconds is None:
            seconds = resp.expires(self._asking)
        return seconds

    def _registered(self, resp, now_ms):
        granted = self._granted(resp)
        if granted == 0:
            self._fail(now_ms, "provider kept no binding (expires 0)")
            return
        self._failures = 0
        self.expires_at = now_ms + 1000 * granted
        self._timer = now_ms + max(500 * min(granted, self.max_expires), 1000 * self.min_refresh_s)
        self._set(REGISTERED, "registered at %s:%d for %d s" % (self.addr[0], self.addr[1], granted))

    def _jitter(self, ms):
        # cut by up to a quarter: 16 random bits from the token source (os.urandom or counter)
        return ms - ms * int(self._tokens.token()[:4], 16) // 262144

    def _fail(self, now_ms, detail, resp=None):
        if self._closing:
            self._closing = False
            self._set(IDLE, "unregister failed: " + detail)
            return
        wait = _retry_after(resp) if resp is not None else -1
        if wait > 0:
            wait_ms = 1000 * min(wait, self.max_retry_after_s)
        else:
            wait_ms = self._jitter(1000 * min(self.backoff_min_s << min(self._failures, 16), self.backoff_max_s))
        self._failures += 1
        self._timer = now_ms + wait_ms
        self._set(RETRYING, "%s; next try in %d s" % (detail, wait_ms // 1000))

    def _reject(self, now_ms, detail):
        if self._closing:
            self._fail(now_ms, detail)
            return
        wait_ms = self._jitter(1000 * self.rejected_backoff_s)
        self._timer = now_ms + wait_ms
        self._set(REJECTED, "%s; next try in %d s" % (detail, wait_ms // 1000))

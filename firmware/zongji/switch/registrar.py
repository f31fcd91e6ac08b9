"""SIP registrar (RFC 3261 section 10.3): parsed REGISTER requests -> responses, and the table
of where each extension's phones are.

    reg = Registrar(site, Authenticator(site.realm, algorithms=site.digest), guard=Guard())
    resp = reg.handle(request, (ip, port), now_ms)    a REGISTER -> the Response to send
    reg.contacts("201", now_ms)     [(contact uri, (ip, port), expires_at_ms), ...] live bindings
    reg.next_timer() / reg.handle_timer(now_ms)       expiry (ms, or None when nothing registered)
    reg.take_events()               [(kind, number, contact uri, (ip, port)), ...] for the log
    reg.dirty / reg.save_due()      persistence: write reg.dump(now_ms) when dirty, or when the
    reg.saved(now_ms)                 save_due() ms has come; then call saved()
    reg.load(data, now_ms)          at boot; registrations.LoadError on garbage, no bindings left

Theory of operation
-------------------
handle() walks section 10.3. Steps 1-2 (our domain? Require?) are the transaction user's: any
domain is ours (phones register to an IP address) and it answers 420 before calling here.
  3. Authentication comes first. No Authorization -> 401 with the challenges (SHA-256, MD5).
     An unknown user, a wrong password, an extension without a secret (mobile only) and a
     nonce we did not issue are all FAIL in digest.Authenticator.check and get the very same
     401: svwar and svcrack see one answer whatever the user name. STALE (right password, old
     nonce) -> 401 stale=true. Malformed credentials -> 400, decided before any user lookup.
     FAIL, BAD and a 403 count against the source in the Guard; OK tells it so (guard.py).
  4. The user name must be the To URI's user, the extension being registered, else 403;
     checked after the password, so only its holder learns of it.
  5. The address of record is that extension, known to exist since its password matched.
  6. Contact '*' removes every binding, and only with Expires: 0 (else 400).
  7. A contact's lifetime is its expires parameter, else the Expires header, else
     default_expires; non-zero below min_expires -> 423 with Min-Expires, above max_expires
     shortened. A contact bound with the request's Call-ID needs a higher CSeq than stored,
     else 500. Nothing changes unless every contact passes.
  8. 200 lists the extension's bindings with their remaining `expires`; no Date (no clock).

Bindings: at most max_contacts per extension (desk phone, softphone ...); one more replaces the
binding closest to expiry. A binding is a tuple (contact uri, source ip, source port, expiry,
Call-ID hash, CSeq, expiry as last written). Send to the source address, which behind NAT differs from the Contact's
host:port, with the Contact URI as Request-URI: both are kept. Expiry counts seconds from the
first now_ms and the Call-ID is a 30-bit hash, so the numbers are small ints with no heap of
their own: a phone costs ~200 bytes (uri and ip strings, the tuple, a share of list and dict),
measured on MicroPython by test_sip_registrar against the 300-byte budget.

Persistence (dump, load, the lazy write rule) is the Persisted base class's, in
switch/registrations.py, with the layout of a binding.

Events (take_events, at most max_events, oldest dropped first): "registered" (a new contact,
or one from a new source address), "unregistered" (by its phone, or set_site found the
extension has no phone now), "expired", "replaced" (pushed out by a newer one).
"""

from binascii import hexlify
from hashlib import sha256

from zongji.compat import urandom
from zongji.sip.auth import parse_auth, uri_matches
from zongji.sip.digest import BAD, OK, STALE
from zongji.sip.message import make_response
from zongji.sip.uri import ParseError
from zongji.site.directory import code
from zongji.switch.registrations import CID, CSEQ, EXP, HOST, PORT, SAVED, URI, Persisted, find
from zongji.text import is_digits


def _cid_hash(call_id):
    # stable across runs and interpreters (hash() is salted on CPython), and a small int
    return int.from_bytes(sha256(call_id.encode()).digest()[:4], "big") >> 2


def _uri_text(uri):
    """The contact key: the URI as written back, host lower-cased (hosts ignore case)."""
    host = uri.host.lower()
    if host != uri.host:
        uri = uri.copy()
        uri.host = host
    return str(uri)


def _pair(flat, port, number):
    """Where `number` sits in a flat [port, number, ...] list of _src right after `port`, or
    -1. Numbers (str) sit at odd places, ports (int) at even ones, and a str never equals an
    int, so list.index finds each pair of this extension at C speed (an extension has few),
    where a loop over every pair of a shared address (a NAT, SIPp's 999) cost a millisecond."""
    i = 0
    for _ in range(flat.count(number)):
        i = flat.index(number, i)
        if flat[i - 1] == port:
            return i
        i += 1
    return -1


class Registrar(Persisted):
    """The binding table of one site, fed parsed REGISTER requests. See the module docstring."""

    default_expires = 3600  # seconds, when neither the Contact nor the request says
    min_expires = 60  # shorter non-zero requests get 423 Interval Too Brief
    max_expires = 3600  # longer requests are shortened to this
    max_contacts = 5  # bindings per extension; a new one replaces the one closest to expiry
    max_uri = 255  # characters in a contact URI (bounds the memory a binding takes)
    max_events = 64  # undrained events kept
    max_agent = 64  # characters of a phone's User-Agent kept for the status
    max_agents = 16  # distinct User-Agent texts shared between extensions (a site has a few models)

    def __init__(self, site, authenticator, guard=None, random_bytes=None):
        self.site = site
        self.auth = authenticator
        self.guard = guard
        self.dirty = False
        self._b = {}  # directory.code(number) -> [binding tuple, ...] in order of arrival
        self._src = {}  # source ip -> [port, number, ...]: one pair per binding (_reindex)
        self._base = None  # now_ms // 1000 when first seen: stored times count from here
        self._next = None  # earliest expiry (a lower bound), or None with no bindings
        self._due = None  # earliest lazy write (a lower bound, seconds), or None
        self._events = []
        self._ua = {}  # directory.code(number) -> the User-Agent of its last REGISTER (status only)
        self._uas = {}  # each distinct text once, so 60 phones of one model hold one string
        random_bytes = random_bytes or urandom
        self._seed = random_bytes(8) if random_bytes else b"zongji"

    # -- REGISTER --

    def handle(self, request, addr, now_ms):
        """A parsed REGISTER from addr = (ip, port) -> the Response to send back."""
        if request.method != "REGISTER":
            raise ValueError("the registrar takes REGISTER requests, not " + request.method)
        try:
            return self._handle(request, addr, now_ms)
        except ParseError:  # parse() checked these headers; a request built in code may not be
            return self._reply(request, 400)

    def _handle(self, request, addr, now_ms):
        verdict, user = self._authenticate(request, now_ms)
        ip = addr[0]
        if verdict is None or verdict == STALE:
            return self._challenge(request, now_ms, verdict == STALE)
        if verdict == OK:
            to = request.to_addr().uri
            if to.is_sip and to.user == user:
                if self.guard is not None:
                    self.guard.succeeded(ip, user)
                return self._update(request, user, addr, now_ms)
        if self.guard is not None:
            why = ("not the extension registered" if verdict == OK else "bad credentials" if verdict == BAD
                   else "wrong password or unknown user")  # fmt: skip
            self.guard.failed(ip, user, now_ms, why)
        if verdict == OK:
            return self._reply(request, 403, "Username Does Not Match To")
        if verdict == BAD:
            return self._reply(request, 400, "Bad Authorization")
        return self._challenge(request, now_ms)  # FAIL: exactly as for no credentials

    def _authenticate(self, request, now_ms):
        """(verdict, user name) for the request's credentials; (None, None) without any."""
        # credentials in a scheme we don't speak are no credentials: challenge (RFC 4475 regaut01)
        values = [v for v in request.get_all("authorization") if v.lstrip()[:7].lower() == "digest "]
        if not values:
            return None, None
        chosen = None
        for value in values:  # one per realm the phone knows: take ours, else the first
            try:
                params = parse_auth(value)
            except ValueError:
                continue
            if chosen is None:
                chosen = params
            if params.get("realm") == self.auth.realm:
                chosen = params
                break
        if chosen is None or not uri_matches(chosen, request.uri):
            return BAD, chosen and chosen.get("username")
        return self.auth.check("REGISTER", chosen, self.site.directory.ha1, now_ms), chosen.get("username")

    def _tag(self, request):
        # stable for one request (a retransmission gets the same tag), unpredictable otherwise
        text = "%s %s" % (request.get("call-id", ""), request.get("cseq", ""))
        return hexlify(sha256(self._seed + text.encode()).digest()[:6]).decode()

    def _reply(self, request, status, reason=None, headers=None):
        return make_response(request, status, reason, to_tag=self._tag(request), headers=headers)

    def _challenge(self, request, now_ms, stale=False):
        values = self.auth.challenge(now_ms, stale)
        return self._reply(request, 401, None, [("WWW-Authenticate", v) for v in values])

    def _update(self, request, number, addr, now_ms):
        now = self._sec(now_ms)
        key = code(number)
        self._purge(key, now)
        old = self._b.get(key) or []
        new = old
        contacts = request.contacts()
        if contacts:
            cid = _cid_hash(request.call_id())
            cseq = request.cseq()[0]
            replaced = ()
            if contacts[0].is_star:
                if request.expires() != 0:
                    return self._reply(request, 400, "Contact * Needs Expires: 0")
                for b in old:
                    if b[CID] == cid and cseq <= b[CSEQ]:
                        return self._reply(request, 500, "CSeq Out Of Order")
                new = []
            else:
                merged = self._merge(request, old, addr, now, cid, cseq)
                if not isinstance(merged, tuple):
                    return merged  # an error response
                new, replaced = merged
            self._commit(key, number, old, new, replaced)
            if new:
                self._agent(key, request.get("user-agent"))
        lines = [("Contact", "<%s>;expires=%d" % (b[URI], b[EXP] - now)) for b in new]
        return self._reply(request, 200, None, lines)

    def _merge(self, request, old, addr, now, cid, cseq):
        """(the bindings after this request, the ones it pushed out), or the error Response."""
        header = request.expires(self.default_expires)
        wanted = []
        for contact in request.contacts():
            if not contact.uri.is_sip:
                return self._reply(request, 400, "Contact Must Be A SIP URI")
            secs = contact.param_int("expires", header)
            if 0 < secs < self.min_expires:
                return self._reply(request, 423, None, [("Min-Expires", self.min_expires)])
            text = _uri_text(contact.uri)
            if len(text) > self.max_uri:
                return self._reply(request, 400, "Contact URI Too Long")
            wanted.append((text, min(secs, self.max_expires)))
        new = list(old)
        touched = []
        for text, secs in wanted:
            i = find(new, text)
            if i >= 0 and text not in touched:  # the same contact twice in one request is fine
                if new[i][CID] == cid and cseq <= new[i][CSEQ]:
                    return self._reply(request, 500, "CSeq Out Of Order")
            touched.append(text)
            b = (text, addr[0], addr[1], now + secs, cid, cseq, new[i][SAVED] if i >= 0 else 0)
            if i < 0:
                if secs:
                    new.append(b)
            elif secs:
                new[i] = b
            else:
                del new[i]
        replaced = []
        while len(new) > self.max_contacts:
            victim = -1
            for i in range(len(new)):
                if new[i][URI] not in touched and (victim < 0 or new[i][EXP] < new[victim][EXP]):
                    victim = i
            replaced.append(new.pop(max(victim, 0)))  # all touched (too many contacts): the first
        return new, replaced

    def _commit(self, key, number, old, new, replaced=()):
        for b in old:
            if find(new, b[URI]) < 0:
                self._event("replaced" if b in replaced else "unregistered", number, b)
        for b in new:
            i = find(old, b[URI])
            if i < 0 or old[i][HOST] != b[HOST] or old[i][PORT] != b[PORT]:
                self._event("registered", number, b)
        self._reindex(number, old, new)
        if new:
            self._b[key] = new
            for b in new:
                if self._next is None or b[EXP] < self._next:
                    self._next = b[EXP]
                t = self._due_at(b)
                if t is not None and (self._due is None or t < self._due):
                    self._due = t
        else:
            self._b.pop(key, None)
            self._ua.pop(key, None)

    def _agent(self, key, text):
        text = (text or "")[: self.max_agent]
        shared = self._uas.get(text)
        if shared is None:
            if len(self._uas) < self.max_agents:
                self._uas[text] = text
            shared = text
        self._ua[key] = shared

    def agent(self, number):
        """The User-Agent the extension's phone last registered with ("" when unknown: not
        registered, or registered before a reboot and not refreshed since)."""
        return self._ua.get(code(number), "") if is_digits(number) and len(number) < 10 else ""

    # -- events --

    def _event(self, kind, number, b):
        self.dirty = True
        if len(self._events) >= self.max_events:
            self._events.pop(0)
        self._events.append((kind, number, b[URI], (b[HOST], b[PORT])))

    def take_events(self):
        """The events since the last call, oldest first (see the module docstring)."""
        events = self._events
        self._events = []
        return events

    # -- queries and expiry --

    def contacts(self, number, now_ms):
        """Live bindings of an extension: [(contact uri text, (ip, port), expires_at_ms), ...],
        oldest first. Send to (ip, port), with the contact URI as the Request-URI."""
        bindings = self._b.get(code(number)) if is_digits(number) and len(number) < 10 else None
        if not bindings:
            return []
        now = self._sec(now_ms)
        return [(b[URI], (b[HOST], b[PORT]), self._ms(b[EXP])) for b in bindings if b[EXP] > now]

    def __len__(self):
        """Bindings held (expired ones count until handle_timer removes them)."""
        return sum([len(v) for v in self._b.values()])

    def next_timer(self):
        """When handle_timer should run next (ms, same clock as now_ms), or None."""
        return None if self._next is None else self._ms(self._next)

    def has_source(self, addr):
        """True when a live binding was made from exactly this (ip, port): the switch lets a
        registered phone through even when its address is banned or rate-limited."""
        flat = self._src.get(addr[0])
        # ports (int) sit at even places, numbers (str) at odd ones, and an int never equals a
        # str: `in` finds the port at C speed, nothing allocated per datagram
        return flat is not None and addr[1] in flat

    def registered_at(self, addr, number):
        """Is extension `number` registered from exactly this (ip, port)? Only then may that
        source skip the guess budget for its credentials: a phone vouches for itself, not for
        guesses at its colleagues' passwords."""
        flat = self._src.get(addr[0])
        if flat is None or not isinstance(number, str):
            return False
        return _pair(flat, addr[1], number) >= 0

    def _reindex(self, number, old, new):
        """Keep _src in step when an extension's bindings go from `old` to `new`. _src maps a
        source ip (the binding's own string) to a flat [port, number, port, number, ...], one
        pair a binding: ~40 bytes a phone on the device, and a lookup per datagram with no scan
        of the table."""
        src = self._src
        for b in old:
            flat = src.get(b[HOST])
            if flat is None:
                continue
            i = _pair(flat, b[PORT], number)
            if i >= 0:
                del flat[i - 1 : i + 1]
            if not flat:
                del src[b[HOST]]
        for b in new:
            flat = src.get(b[HOST])
            if flat is None:
                src[b[HOST]] = [b[PORT], number]
            else:
                flat.append(b[PORT])
                flat.append(number)

    def handle_timer(self, now_ms):
        """Drop expired bindings ("expired" events, dirty)."""
        now = self._sec(now_ms)
        if self._next is None or now < self._next:
            return
        for key in list(self._b):
            self._purge(key, now)
        self._next = self._earliest()

    def _purge(self, key, now):
        bindings = self._b.get(key) or ()
        live = [b for b in bindings if b[EXP] > now]
        if len(live) < len(bindings):
            number = str(key)[1:]
            self._reindex(number, bindings, live)
            for b in bindings:
                if b[EXP] <= now:
                    self._event("expired", number, b)
            if live:
                self._b[key] = live
            else:
                del self._b[key]
                self._ua.pop(key, None)

    def set_site(self, site, authenticator=None):
        """A new site took effect: drop the bindings of extensions that no longer have a phone."""
        self.site = site
        if authenticator is not None:
            self.auth = authenticator
        for key in list(self._b):
            number = str(key)[1:]
            ext = site.directory.get(number)
            if ext is None or not ext.has_phone():
                gone = self._b.pop(key)
                self._ua.pop(key, None)
                self._reindex(number, gone, ())
                for b in gone:
                    self._event("unregistered", number, b)

"""SIP registrar (RFC 3261 section 10.3): parsed REGISTER requests -> responses, and the table
of where each extension's phones are.

    reg = Registrar(site, Authenticator(site.realm, algorithms=site.digest), guard=Guard())
    resp = reg.handle(request, (ip, port), now_ms)    a REGISTER -> the Response to send
    reg.contacts("201", now_ms)     [(contact uri, (ip, port), expires_at_ms), ...] live bindings
    reg.next_timer() / reg.handle_timer(now_ms)       expiry (ms, or None when nothing registered)
    reg.take_events()               [(kind, number, contact uri, (ip, port)), ...] for the log
    reg.dirty / reg.save_due()      persistence: write reg.dump(now_ms) when dirty, or when the
    reg.saved(now_ms)                 save_due() ms has come; then call saved()
    reg.load(data, now_ms)          at boot; LoadError on garbage, leaving no bindings

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

Persistence (flash wears out): `dirty` is set when the set of bindings changes (a new contact,
one seen from a new source address, a removal, an expiry, a replacement): write soon. A refresh
that only moves an expiry (and the stored CSeq / Call-ID) forward does not set it; such changes
are written lazily. Each binding remembers the expiry the file holds for it (W, as of the last
dump), beside its real one (E). A write is due when, for some live binding refreshed since,

    W - now < (E - now) / 2 + save_slack        (seconds; save_slack = 5)

that is, when the file no longer covers half of what the binding has left. Why this is enough:
a phone refreshing every I seconds with lifetime L (I < L) that was not found due just after a
refresh has W >= now + L/2 + slack, past its next refresh if I <= L/2; if I > L/2 every refresh
of it is due, so W = E. Either way a restart at any moment restores the binding until the phone
next refreshes, with at least save_slack to spare. And writes stay few: a dump brings every W up
to date, so one binding causes at most a write each L/2 - save_slack seconds, about two a
lifetime, whatever its refresh rate (a 60 s refresh of an hour's binding: a write each 30 min,
not each minute); many phones' writes fall together.

The shell (zongji.shell.pump): when reg.dirty, or once now_ms >= reg.save_due() (ms, or None
while the file holds every binding exactly): data = reg.dump(now_ms), write a temp file, flush,
close, os.rename over the real one, then reg.saved(now_ms) (which clears `dirty`); a failed
write calls nothing, so it is tried again. At shutdown, write if dirty or save_due() is not
None. At boot: reg.load(data, now_ms, elapsed_ms); on LoadError log it and start empty (phones
register again within their refresh interval). The file holds remaining lifetimes, so pass
`elapsed_ms` if the shell knows the downtime (host mode: the file's age), else a binding can
outlive its phone by the downtime. The stored CSeq only ever lags the phone's, so a reload
never fails its next REGISTER.

Events (take_events, at most max_events, oldest dropped first): "registered" (a new contact,
or one from a new source address), "unregistered" (by its phone, or set_site found the
extension has no phone now), "expired", "replaced" (pushed out by a newer one).
"""

import json
from binascii import hexlify
from hashlib import sha256

from zongji.sip.digest import BAD, OK, STALE, parse_auth
from zongji.sip.message import make_response
from zongji.sip.uri import ParseError, parse_uri
from zongji.site.directory import code
from zongji.site.targets import is_digits
from zongji.switch.seconds import Seconds

try:
    from os import urandom as _urandom
except ImportError:  # pragma: no cover  (MicroPython ports without os.urandom)
    _urandom = None

KIND = "zongji-registrations"
FORMAT = 1

# fields of a binding tuple
_URI = 0
_HOST = 1
_PORT = 2
_EXP = 3  # seconds since self._base
_CID = 4  # 30-bit hash of the Call-ID
_CSEQ = 5
_SAVED = 6  # the expiry the file holds (as of the last dump), 0 before any


class LoadError(ValueError):
    """A registrations file that cannot be used; str(e) says why."""


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


def _find(bindings, text):
    for i in range(len(bindings)):
        if bindings[i][_URI] == text:
            return i
    return -1


def _is_int(x, low, high):
    return isinstance(x, int) and not isinstance(x, bool) and low <= x <= high


class Registrar(Seconds):
    """The binding table of one site, fed parsed REGISTER requests. See the module docstring."""

    default_expires = 3600  # seconds, when neither the Contact nor the request says
    min_expires = 60  # shorter non-zero requests get 423 Interval Too Brief
    max_expires = 3600  # longer requests are shortened to this
    max_contacts = 5  # bindings per extension; a new one replaces the one closest to expiry
    max_uri = 255  # characters in a contact URI (bounds the memory a binding takes)
    max_events = 64  # undrained events kept
    save_slack = 5  # seconds of margin in the lazy write rule (module docstring)

    def __init__(self, site, authenticator, guard=None, random_bytes=None):
        self.site = site
        self.auth = authenticator
        self.guard = guard
        self.dirty = False
        self._b = {}  # directory.code(number) -> [binding tuple, ...] in order of arrival
        self._base = None  # now_ms // 1000 when first seen: stored times count from here
        self._next = None  # earliest expiry (a lower bound), or None with no bindings
        self._due = None  # earliest lazy write (a lower bound, seconds), or None
        self._events = []
        random_bytes = random_bytes or _urandom
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
        if chosen is None:
            return BAD, None
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
                    if b[_CID] == cid and cseq <= b[_CSEQ]:
                        return self._reply(request, 500, "CSeq Out Of Order")
                new = []
            else:
                merged = self._merge(request, old, addr, now, cid, cseq)
                if not isinstance(merged, tuple):
                    return merged  # an error response
                new, replaced = merged
            self._commit(key, number, old, new, replaced)
        lines = [("Contact", "<%s>;expires=%d" % (b[_URI], b[_EXP] - now)) for b in new]
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
            i = _find(new, text)
            if i >= 0 and text not in touched:  # the same contact twice in one request is fine
                if new[i][_CID] == cid and cseq <= new[i][_CSEQ]:
                    return self._reply(request, 500, "CSeq Out Of Order")
            touched.append(text)
            b = (text, addr[0], addr[1], now + secs, cid, cseq, new[i][_SAVED] if i >= 0 else 0)
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
                if new[i][_URI] not in touched and (victim < 0 or new[i][_EXP] < new[victim][_EXP]):
                    victim = i
            replaced.append(new.pop(max(victim, 0)))  # all touched (too many contacts): the first
        return new, replaced

    def _commit(self, key, number, old, new, replaced=()):
        for b in old:
            if _find(new, b[_URI]) < 0:
                self._event("replaced" if b in replaced else "unregistered", number, b)
        for b in new:
            i = _find(old, b[_URI])
            if i < 0 or old[i][_HOST] != b[_HOST] or old[i][_PORT] != b[_PORT]:
                self._event("registered", number, b)
        if new:
            self._b[key] = new
            for b in new:
                if self._next is None or b[_EXP] < self._next:
                    self._next = b[_EXP]
                t = self._due_at(b)
                if t is not None and (self._due is None or t < self._due):
                    self._due = t
        else:
            self._b.pop(key, None)

    def _due_at(self, b):
        """When binding b makes a write due (seconds), or None while the file holds it exactly."""
        if b[_SAVED] >= b[_EXP]:
            return None
        return 2 * b[_SAVED] - b[_EXP] - 2 * self.save_slack

    def _earliest(self):
        nxt = None
        for bindings in self._b.values():
            for b in bindings:
                if nxt is None or b[_EXP] < nxt:
                    nxt = b[_EXP]
        return nxt

    # -- events --

    def _event(self, kind, number, b):
        self.dirty = True
        if len(self._events) >= self.max_events:
            self._events.pop(0)
        self._events.append((kind, number, b[_URI], (b[_HOST], b[_PORT])))

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
        return [(b[_URI], (b[_HOST], b[_PORT]), self._ms(b[_EXP])) for b in bindings if b[_EXP] > now]

    def __len__(self):
        """Bindings held (expired ones count until handle_timer removes them)."""
        return sum([len(v) for v in self._b.values()])

    def next_timer(self):
        """When handle_timer should run next (ms, same clock as now_ms), or None."""
        return None if self._next is None else self._ms(self._next)

    def has_source(self, addr):
        """True when a live binding was made from exactly this (ip, port): the switch lets a
        registered phone through even when its address is banned or rate-limited."""
        ip, port = addr[0], addr[1]
        for bindings in self._b.values():
            for b in bindings:
                if b[_PORT] == port and b[_HOST] == ip:
                    return True
        return False

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
        live = [b for b in bindings if b[_EXP] > now]
        if len(live) < len(bindings):
            for b in bindings:
                if b[_EXP] <= now:
                    self._event("expired", str(key)[1:], b)
            if live:
                self._b[key] = live
            else:
                del self._b[key]

    def set_site(self, site, authenticator=None):
        """A new site took effect: drop the bindings of extensions that no longer have a phone."""
        self.site = site
        if authenticator is not None:
            self.auth = authenticator
        for key in list(self._b):
            number = str(key)[1:]
            ext = site.directory.get(number)
            if ext is None or not ext.has_phone():
                for b in self._b.pop(key):
                    self._event("unregistered", number, b)

    # -- persistence --

    def save_due(self):
        """When (ms, same clock as now_ms) refreshed bindings make a write due, by the rule in
        the module docstring; None while the file holds every binding's expiry. Apart from
        `dirty`: that one means write now."""
        return None if self._due is None else self._ms(self._due)

    def saved(self, now_ms):
        """What dump() returned is safely written: the file now holds every binding as it is."""
        for key in self._b:
            bindings = self._b[key]
            for i in range(len(bindings)):
                b = bindings[i]
                if b[_SAVED] != b[_EXP]:
                    bindings[i] = b[:_SAVED] + (b[_EXP],)
        self._due = None
        self.dirty = False

    def dump(self, now_ms):
        """The live bindings as compact JSON bytes, lifetimes as seconds left. Changes nothing:
        the shell calls saved() once the file is safely renamed into place."""
        now = self._sec(now_ms)
        rows = []
        for key in sorted(self._b):
            number = str(key)[1:]
            for b in self._b[key]:
                if b[_EXP] > now:
                    rows.append([number, b[_URI], b[_HOST], b[_PORT], b[_EXP] - now, b[_CID], b[_CSEQ]])
        doc = {"format": FORMAT, "kind": KIND, "bindings": rows}
        return json.dumps(doc, separators=(",", ":")).encode()

    def load(self, data, now_ms, elapsed_ms=0):
        """Replace the bindings with those dump() wrote, each `elapsed_ms` shorter (time the
        device was down, if the shell knows it). Bindings of extensions that no longer have a
        phone, or with no time left, are dropped (and `dirty` set, so the file is rewritten).
        Raises LoadError on anything that is not such a file; the table is then empty."""
        self._b = {}
        self._next = None
        self._due = None
        self.dirty = False
        now = self._sec(now_ms)
        table = {}
        dropped = False
        for n, row in enumerate(_rows(data)):
            if not isinstance(row, list) or len(row) != 7:
                raise LoadError("registrations: binding %d is not a list of 7 values" % n)
            number, text, host, port, left, cid, cseq = row
            if not (
                isinstance(number, str)
                and is_digits(number)
                and len(number) < 10
                and isinstance(text, str)
                and 0 < len(text) <= self.max_uri
                and isinstance(host, str)
                and 0 < len(host) <= 64
                and _is_int(port, 0, 65535)
                and _is_int(left, 1, 0xFFFFFFFF)
                and _is_int(cid, 0, 0x3FFFFFFF)
                and _is_int(cseq, 0, 0x7FFFFFFF)
            ):
                raise LoadError("registrations: binding %d has a bad value" % n)
            try:
                ok = parse_uri(text).is_sip
            except ParseError:
                ok = False
            if not ok:
                raise LoadError("registrations: binding %d has a bad contact uri" % n)
            bindings = table.setdefault(code(number), [])
            if _find(bindings, text) >= 0:
                raise LoadError("registrations: binding %d repeats a contact" % n)
            ext = self.site.directory.get(number)
            left = min(left - elapsed_ms // 1000, self.max_expires)
            if ext is None or not ext.has_phone() or left <= 0 or len(bindings) >= self.max_contacts:
                dropped = True
            else:
                bindings.append((text, host, port, now + left, cid, cseq, now + left))
        self._b = {key: table[key] for key in table if table[key]}
        self._next = self._earliest()
        self.dirty = dropped


def _rows(data):
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise LoadError("registrations: expected bytes, got " + type(data).__name__)
    try:
        doc = json.loads(data.decode())
    except (ValueError, UnicodeError):  # MicroPython's json raises ValueError too
        raise LoadError("registrations: not json")
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise LoadError("registrations: not a zongji registrations file")
    if doc.get("format") != FORMAT:
        raise LoadError("registrations: format %r is not %d" % (doc.get("format"), FORMAT))
    rows = doc.get("bindings")
    if not isinstance(rows, list):
        raise LoadError("registrations: no bindings list")
    return rows

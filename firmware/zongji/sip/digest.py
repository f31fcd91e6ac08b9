"""SIP digest authentication, the server side: RFC 2617 (MD5) and RFC 8760 / RFC 7616 (SHA-256).

This module owns what a registrar or proxy does with credentials: stateless nonces, the
verdicts, the replay table. Parsing the header values, HA1 and the client's answer are
sip/auth.py's (parse_auth, parse_challenge, pick_challenge, respond, ha1).

    auth = Authenticator(realm, secret_key)
    values = auth.challenge(now_ms)         header values for a 401/407: SHA-256 first, MD5 second
    code = auth.check(method, params, lookup, now_ms)   OK STALE FAIL or BAD; auth.reason: why
           params from auth.parse_auth; lookup(username, algorithm) -> HA1 hex, or None

The server never needs a password: RFC 7616 section 3.4.2 computes the response from
HA1 = H(username ":" realm ":" password), so the switch keeps only HA1 per algorithm (computed on
the host when the site bundle is built; site/directory.py). An HA1 is as good as the password
in this realm (it answers any challenge of it), though it does not show the password; a weak
password can still be guessed from it offline.

Theory of operation (server side)
---------------------------------
Nonces are issued without memory. A nonce is 52 hex digits:

    TTTTTTTTTTTT SSSSSSSS GGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGG
    issue time   salt     tag = HMAC-SHA256(secret_key, realm ":" time salt), first 16 bytes

so `check` can tell a nonce we issued (tag matches) from a forged one, and its age from the
time field, without having stored it. RFC 2617 section 3.2.1 says a server may build nonces
this way. The salt keeps two nonces issued in the same millisecond apart.

Verdicts, in the order `check` reaches them:

    BAD    the credentials are malformed or ask for what we do not do (MD5-sess, auth-int,
           userhash, SHA-256 without qop): the caller answers 400
    FAIL   wrong realm, a nonce we did not issue, an unknown user or a wrong password: the
           caller answers 401/407 with a fresh `challenge(now_ms)`. An unknown user walks the
           same path as a wrong password (a dummy HA1 is hashed) and gets the same reason,
           so neither the answer nor its timing tells a prober which user names exist.
    STALE  the password was right but the nonce is too old, or its nonce count did not go up
           (a replay), or it fell out of the replay table: answer with
           `challenge(now_ms, stale=True)` and the phone retries without asking its user
           (RFC 2617 section 3.2.1: stale only when the digest itself was valid).
    OK     authenticated; the nonce count is recorded.

Replay protection (RFC 2617 section 3.2.2, nonce-count): with qop=auth every reuse of a nonce
must carry a higher `nc`. The last nc is kept per nonce in a table of at most `max_nonces`
entries, filled in order of first use, the oldest evicted. A nonce not in the table is only
accepted if it was issued after every nonce ever evicted (`_floor`, kept to the millisecond),
so an evicted nonce can never come back. RFC 2069 style responses (MD5, no qop) have no nc, so
their nonce is single use.

What the table size bounds is not a rate. A nonce is first used one round trip after it was
issued; by then the table has evicted only nonces first used `max_nonces` uses ago, whose issue
times lie further back than that round trip unless more than `max_nonces` nonces are first used
within it. So 64 entries take 64 authentications per round trip (thousands a second on a LAN),
and only nonces kept unused for longer than the table's turnover (a phone that reuses its nonce
at the next refresh while others authenticated in between) come back STALE, which costs that
phone one more round trip, never a failure. (The floor used to count in 1,024 ms units: a table
of 64 then answered STALE above ~62 first uses a second.) Kamailio's auth module keeps its
replay state the same way, apart from the nonce, and makes it optional.

Memory: the table keys are 30-bit ints cut from the tag, the values counts capped below 2**30
(a higher nc is answered STALE), and issue times are kept in ms since a base that moves up
every 2**29 ms (6 days), so all are small ints on MicroPython and no entry allocates: a full
table is a ~600 B dict plus two 64-slot lists (~600 B), about 1.3 KB (gc.mem_alloc on the
32-bit wasm port; a test holds it under 3 KB).

Reboots: the table lives in RAM. Give each boot a fresh `secret_key` (the default draws one from
`random_bytes`), or nonces issued before a reboot would be valid again with an empty table.
"""

from binascii import hexlify
from hashlib import sha256

from zongji.compat import const, urandom
from zongji.sip.auth import HASHES, ha1, quote, request_digest

OK = "ok"
STALE = "stale"
FAIL = "fail"
BAD = "bad"

_M = 0xFFFFFFFF
_TIME_MASK = 0xFFFFFFFFFFFF  # 48 bits of milliseconds in a nonce: 8,900 years
_NONCE_LEN = const(52)  # 12 time + 8 salt + 32 tag hex digits
_NC_MAX = const(0x3FFFFFFF)  # highest nc tracked: keeps table values small ints (no heap)
_ONCE = _NC_MAX  # the "last nc" of a no-qop nonce: nothing can follow it
_HEX = "0123456789abcdefABCDEF"


# ---- HMAC-SHA256 (RFC 2104): MicroPython has no hmac module ---------------------------------


def _hmac_pads(key):
    if len(key) > 64:
        key = sha256(key).digest()
    key = key + bytes(64 - len(key))
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def _hmac(ipad, opad, msg):
    return sha256(opad + sha256(ipad + msg).digest()).digest()


def hmac_sha256(key, msg):
    """HMAC-SHA256 of bytes `msg` under bytes `key` (RFC 2104), as 32 raw bytes."""
    ipad, opad = _hmac_pads(key)
    return _hmac(ipad, opad, msg)


# ---- helpers ---------------------------------------------------------------------------------


def _is_hex(s):
    return not s.strip(_HEX)


_EQ_KEY = urandom(16) if urandom is not None else b"zongji-equal"


def _equal(a, b):
    """A string compare whose time tells nothing of where a and b differ: what is compared
    are hashes of them under a key drawn at boot (the double-HMAC idea), C-level and 5x faster
    on MicroPython than a constant-time loop over the characters."""
    if len(a) != len(b):
        return False
    return sha256(_EQ_KEY + a.encode()).digest() == sha256(_EQ_KEY + b.encode()).digest()


def from_passwords(password_lookup, realm):
    """An HA1 lookup for Authenticator.check from a password lookup (username -> password or
    None): for a server that does hold passwords, such as a test's stand-in provider."""

    def lookup(username, algorithm):
        password = password_lookup(username)
        return ha1(algorithm, username, realm, password) if password else None

    return lookup


# ---- server side -----------------------------------------------------------------------------


class Authenticator:
    """Digest challenges and checks for one realm, with stateless nonces (see module docstring).

    `secret_key` (bytes) signs nonces; None draws 32 bytes from `random_bytes`. `random_bytes(n)`
    salts nonces; None means `os.urandom`, or, on a port without it, a counter (nonces stay
    unique and unforgeable, only guessable in advance). `algorithms` are offered in order.
    """

    max_nonces = 64  # replay-table entries (~1.3 KB when full); read by __init__
    allow_no_qop = True  # accept RFC 2069 answers (MD5, no qop) from old phones

    def __init__(self, realm, secret_key=None, nonce_ttl_ms=300000, random_bytes=None, algorithms=("SHA-256", "MD5")):
        if random_bytes is None:
            random_bytes = urandom
        if secret_key is None:
            if random_bytes is None:
                raise ValueError("no os.urandom on this port: pass secret_key")
            secret_key = random_bytes(32)
        if isinstance(secret_key, str):
            secret_key = secret_key.encode()
        names = []
        for alg in algorithms:
            if alg.upper() not in HASHES:
                raise ValueError("algorithm %s is not supported" % alg)
            names.append(alg.upper())
        if not names:
            raise ValueError("no algorithms to offer")
        self.realm = realm
        self.nonce_ttl_ms = nonce_ttl_ms
        self.algorithms = tuple(names)
        self.reason = ""  # why the last check() returned what it did (lowercase, for logs)
        self._random = random_bytes
        self._counter = 0
        self._ipad, self._opad = _hmac_pads(secret_key)
        self._seen = {}  # nonce id -> last nc
        self._ring = [None] * self.max_nonces  # nonce ids, in order of first use
        self._ring_t = [0] * self.max_nonces  # their issue times, ms after _base
        self._pos = 0
        self._base = None  # ms; issue times are kept relative to it, so they stay small ints
        self._floor = None  # latest issue time (ms after _base) of any evicted nonce

    def track(self, max_nonces):
        """Keep up to max_nonces nonces in the replay table (before first use). Host mode keeps
        thousands: hundreds of phones registering in the same second each draw a nonce, and a
        nonce evicted in the second it was issued makes the rest of that second's stale."""
        self.max_nonces = max_nonces
        self._seen = {}
        self._ring = [None] * max_nonces
        self._ring_t = [0] * max_nonces
        self._pos = 0

    # -- nonces --

    def _tag(self, stamp):
        mac = _hmac(self._ipad, self._opad, (self.realm + ":" + stamp).encode())
        return hexlify(mac[:16]).decode()

    def _new_nonce(self, now_ms):
        if self._random is not None:
            salt = hexlify(self._random(4)).decode()
        else:
            self._counter = (self._counter + 1) & _M
            salt = "%08x" % self._counter
        stamp = "%012x" % (now_ms & _TIME_MASK) + salt
        return stamp + self._tag(stamp)

    def _nonce_time(self, nonce):
        """Issue time of a nonce we made, or None for anything else."""
        if len(nonce) != _NONCE_LEN or not _is_hex(nonce):
            return None
        if not _equal(self._tag(nonce[:20]), nonce[20:]):
            return None
        return int(nonce[:12], 16)

    def challenge(self, now_ms, stale=False):
        """WWW-Authenticate / Proxy-Authenticate values, one per algorithm, one fresh nonce."""
        nonce = self._new_nonce(now_ms)
        tail = ', qop="auth"' + (", stale=true" if stale else "")
        head = "Digest realm=" + quote(self.realm) + ', nonce="' + nonce + '", algorithm='
        return [head + alg + tail for alg in self.algorithms]

    # -- checking --

    def _done(self, code, reason):
        self.reason = reason
        return code

    def check(self, method, params, ha1_lookup, now_ms):
        """Verify credentials (a dict from parse_auth) for a request with this method.

        `ha1_lookup(username, algorithm)` returns ha1(algorithm, username, realm, password) as
        lowercase hex, or None (or "") for no such user; `algorithm` is "MD5" or "SHA-256", one
        of self.algorithms. Returns OK, STALE, FAIL or BAD and sets `self.reason`.
        """
        for name in ("username", "realm", "nonce", "uri", "response"):
            if name not in params:
                return self._done(BAD, "missing %s parameter" % name)
        sent = params.get("algorithm", "MD5")
        alg = sent.upper()
        if alg not in self.algorithms:
            return self._done(BAD, "algorithm %s is not supported" % sent)
        h, size = HASHES[alg]
        qop = params.get("qop")
        nc_text = cnonce = ""
        if qop is None:
            if alg != "MD5" or not self.allow_no_qop:
                return self._done(BAD, "qop=auth is required")
            nc = _ONCE
        elif qop.lower() != "auth":
            return self._done(BAD, "qop %s is not supported" % qop)
        else:
            nc_text = params.get("nc", "")
            cnonce = params.get("cnonce")
            if len(nc_text) != 8 or not _is_hex(nc_text):
                return self._done(BAD, "nc must be 8 hex digits")
            if cnonce is None:
                return self._done(BAD, "missing cnonce parameter")
            nc = int(nc_text, 16)
            if nc == 0:
                return self._done(BAD, "nc must start at 00000001")
        if params.get("userhash", "false").lower() != "false":
            return self._done(BAD, "userhash is not supported")
        answer = params["response"].lower()
        if len(answer) != size or not _is_hex(answer):
            return self._done(BAD, "response must be %d hex digits" % size)

        if params["realm"] != self.realm:
            return self._done(FAIL, "wrong realm")
        nonce = params["nonce"]
        issued = self._nonce_time(nonce)
        if issued is None:
            return self._done(FAIL, "unknown nonce")
        username = params["username"]
        a1 = ha1_lookup(username, alg)
        known = bool(a1)
        if not known:
            a1 = "0" * size  # same hashing work as a real user: no timing oracle
        expected = request_digest(h, a1, method, params["uri"], nonce, nc_text, cnonce, qop)
        if not _equal(expected, answer) or not known:
            return self._done(FAIL, "wrong credentials")

        age = (now_ms & _TIME_MASK) - issued
        if age < 0 or age > self.nonce_ttl_ms:
            return self._done(STALE, "nonce expired")
        nid = int(nonce[20:28], 16) >> 2  # 30 bits of the tag: a small int on every port
        last = self._seen.get(nid)
        if nc > _NC_MAX:  # 2**30 requests on one nonce: start a new one instead
            return self._done(STALE, "nonce count too high")
        if last is None:
            t = self._relative(issued)
            if self._floor is not None and t <= self._floor:
                return self._done(STALE, "nonce no longer tracked")
            self._remember(nid, t, nc)
        elif nc <= last:
            return self._done(STALE, "nonce count replayed")
        else:
            self._seen[nid] = nc
        return self._done(OK, "")

    def _relative(self, issued):
        # ms after _base; the base moves up every 2**29 ms so the values stay small ints on a
        # 32-bit port (entries older than the nonce lifetime may go negative: still ordered)
        base = self._base
        if base is None:
            base = self._base = issued
        elif issued - base >= 0x20000000:
            shift = issued - base - self.nonce_ttl_ms - 1
            self._base = base = base + shift
            t = self._ring_t
            for i in range(len(t)):
                t[i] = max(t[i] - shift, -0x20000000)
            if self._floor is not None:
                self._floor = max(self._floor - shift, -0x20000000)
        return issued - base

    def _remember(self, nid, issued_ms, nc):
        i = self._pos
        old = self._ring[i]
        if old is not None:
            del self._seen[old]
            if self._floor is None or self._ring_t[i] > self._floor:
                self._floor = self._ring_t[i]
        self._ring[i] = nid
        self._ring_t[i] = issued_ms
        self._seen[nid] = nc
        self._pos = (i + 1) % len(self._ring)

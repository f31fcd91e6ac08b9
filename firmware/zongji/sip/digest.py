"""SIP digest authentication: RFC 2617 (MD5) and RFC 8760 / RFC 7616 (SHA-256), qop=auth.

Works on header *values* (strings), so it does not depend on the message parser:

    params = parse_auth(value)              Authorization / Proxy-Authorization -> dict
    params = parse_challenge(value)         WWW-Authenticate / Proxy-Authenticate -> dict
    auth = Authenticator(realm, secret_key)
    values = auth.challenge(now_ms)         header values for a 401/407: SHA-256 first, MD5 second
    code = auth.check(method, params, lookup, now_ms)   OK STALE FAIL or BAD; auth.reason: why
           lookup(username, algorithm) -> HA1 hex, or None for no such user
    value = respond(params, method, uri, username, password, cnonce, nc)   the client side
    ha1(algorithm, username, realm, password)   H(username:realm:password), what a server stores

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
entries (first-used first evicted). A nonce not in the table is only accepted if it was issued
after every nonce ever evicted (`_floor`), so an evicted nonce can never come back. RFC 2069
style responses (MD5, no qop) have no nc, so their nonce is single use. Memory: the table keys
are 30-bit ints cut from the tag, the values counts capped below 2**30 (a higher nc is answered
STALE), so both are small ints on MicroPython and no entry allocates: a full table is a ~600 B
dict plus two 64-slot lists (~600 B), about 1.3 KB (gc.mem_alloc on the 32-bit wasm port; a
test holds it under 3 KB).

Reboots: the table lives in RAM. Give each boot a fresh `secret_key` (the default draws one from
`random_bytes`), or nonces issued before a reboot would be valid again with an empty table.
"""

from binascii import hexlify
from hashlib import sha256

from zongji.sip.md5 import md5_hex

OK = "ok"
STALE = "stale"
FAIL = "fail"
BAD = "bad"

MAX_HEADER = 2048  # characters in one header value; longer values are refused
MAX_PARAMS = 24  # parameters in one header value

_M = 0xFFFFFFFF
_TIME_MASK = 0xFFFFFFFFFFFF  # 48 bits of milliseconds in a nonce: 8,900 years
_NONCE_LEN = 52  # 12 time + 8 salt + 32 tag hex digits
_NC_MAX = 0x3FFFFFFF  # highest nc tracked: keeps table values small ints (no heap)
_ONCE = _NC_MAX  # the "last nc" of a no-qop nonce: nothing can follow it
_HEX = "0123456789abcdefABCDEF"
_TOKEN_PUNCT = "-.!%*_+`'~"
_WS = " \t\r\n"


def _sha256_hex(text):
    return hexlify(sha256(text.encode()).digest()).decode()


# algorithm name (upper case) -> (hash of a str as lowercase hex, hex digits in a response)
_HASHES = {"MD5": (md5_hex, 32), "SHA-256": (_sha256_hex, 64)}


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
    for c in s:
        if c not in _HEX:
            return False
    return True


def _equal(a, b):
    """Constant-time string compare (the time depends on the length only)."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= ord(a[i]) ^ ord(b[i])
    return diff == 0


def _is_token_char(c):
    return "a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9" or c in _TOKEN_PUNCT


def _quote(s):
    for c in s:
        if (c < " " and c != "\t") or c == "\x7f":
            raise ValueError("control character in %r" % s)
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _algorithm(name):
    """(hash, response length, is -sess) for an algorithm name, or None if unsupported."""
    name = name.upper()
    sess = name.endswith("-SESS")
    if sess:
        name = name[:-5]
    entry = _HASHES.get(name)
    return None if entry is None else (entry[0], entry[1], sess)


def ha1(algorithm, username, realm, password):
    """HA1 = H(username ":" realm ":" password) as lowercase hex, for "MD5" or "SHA-256" (RFC
    7616 section 3.4.2; Kamailio's `ha1` column is the MD5 one). Raises ValueError for another
    algorithm."""
    entry = _HASHES.get(algorithm.upper())
    if entry is None:
        raise ValueError("algorithm %s is not supported" % algorithm)
    return entry[0](username + ":" + realm + ":" + password)


def from_passwords(password_lookup, realm):
    """An HA1 lookup for Authenticator.check from a password lookup (username -> password or
    None): for a server that does hold passwords, such as a test's stand-in provider."""

    def lookup(username, algorithm):
        password = password_lookup(username)
        return ha1(algorithm, username, realm, password) if password else None

    return lookup


def _response(h, a1, method, uri, nonce, nc, cnonce, qop):
    """The request-digest of RFC 2617 section 3.2.2.1 (and RFC 2069 when qop is None), from HA1."""
    ha2 = h(method + ":" + uri)
    if qop is None:
        return h(a1 + ":" + nonce + ":" + ha2)
    return h(a1 + ":" + nonce + ":" + nc + ":" + cnonce + ":" + qop + ":" + ha2)


# ---- parsing ---------------------------------------------------------------------------------


def _skip_ws(s, i):
    n = len(s)
    while i < n and s[i] in _WS:
        i += 1
    return i


def _token_end(s, i):
    n = len(s)
    while i < n and _is_token_char(s[i]):
        i += 1
    return i


def _quoted(s, i):
    """Read the quoted-string opening at s[i]; return (unescaped text, index after it)."""
    out = []
    n = len(s)
    i += 1
    while i < n:
        c = s[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            i += 1
            if i == n:
                break
            c = s[i]
        if (c < " " and c != "\t") or c == "\x7f":
            raise ValueError("control character in a quoted string")
        out.append(c)
        i += 1
    raise ValueError("unterminated quoted string")


def _parse(value, what):
    if not isinstance(value, str):
        raise ValueError("%s is not text" % what)
    if len(value) > MAX_HEADER:
        raise ValueError("%s is longer than %d characters" % (what, MAX_HEADER))
    n = len(value)
    i = _skip_ws(value, 0)
    j = _token_end(value, i)
    scheme = value[i:j]
    if not scheme:
        raise ValueError("%s has no scheme" % what)
    if scheme.lower() != "digest":
        raise ValueError("%s uses scheme %s, only Digest is supported" % (what, scheme))
    i = _skip_ws(value, j)
    if i == j and i < n:
        raise ValueError("expected a space after Digest in %s" % what)
    if i == n:
        raise ValueError("%s has no parameters" % what)
    params = {}
    while i < n:
        j = _token_end(value, i)
        name = value[i:j].lower()
        if not name:
            raise ValueError("expected a parameter name at column %d of %s" % (i, what))
        i = _skip_ws(value, j)
        if i == n or value[i] != "=":
            raise ValueError("expected '=' after %s in %s" % (name, what))
        i = _skip_ws(value, i + 1)
        if i < n and value[i] == '"':
            text, i = _quoted(value, i)
        else:
            j = i
            while j < n and value[j] not in _WS and value[j] not in ',"=':
                if value[j] < " " or value[j] == "\x7f":
                    raise ValueError("control character in %s" % name)
                j += 1
            text = value[i:j]
            if not text:
                raise ValueError("parameter %s has no value" % name)
            i = j
        if name in params:
            raise ValueError("duplicate parameter %s in %s" % (name, what))
        if len(params) == MAX_PARAMS:
            raise ValueError("more than %d parameters in %s" % (MAX_PARAMS, what))
        params[name] = text
        i = _skip_ws(value, i)
        if i < n and value[i] != ",":
            raise ValueError("expected ',' after parameter %s in %s" % (name, what))
        while i < n and value[i] == ",":  # empty list elements are allowed (RFC 7230 7)
            i = _skip_ws(value, i + 1)
    return params


def parse_auth(value):
    """Parameters of a `Digest ...` Authorization / Proxy-Authorization value, as a dict.

    Names are lower-cased, quoted strings unescaped; values are otherwise as sent. Raises
    ValueError with a lowercase message on anything malformed (the caller answers 400).
    """
    return _parse(value, "authorization")


def parse_challenge(value):
    """Parameters of one `Digest ...` WWW-Authenticate / Proxy-Authenticate value, as a dict.

    Raises ValueError as parse_auth does; a non-Digest scheme is an error too.
    """
    return _parse(value, "challenge")


def _qops(params):
    return [q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()]


def _usable(params):
    """Why respond() cannot answer this challenge, or None if it can."""
    if "realm" not in params or "nonce" not in params:
        return "challenge has no realm or nonce"
    alg = params.get("algorithm", "MD5")
    if _algorithm(alg) is None:
        return "algorithm %s is not supported" % alg
    qops = _qops(params)
    if qops and "auth" not in qops:
        return "qop %s is not supported" % params["qop"]
    return None


def pick_challenge(values):
    """The first usable challenge among header values, parsed, or None (RFC 8760 section 2.4:
    a client uses the first challenge whose algorithm it supports). Garbage values are skipped.
    """
    for value in values:
        try:
            params = parse_challenge(value)
        except ValueError:
            continue
        if _usable(params) is None:
            return params
    return None


# ---- client side -----------------------------------------------------------------------------


def respond(challenge, method, uri, username, password, cnonce, nc):
    """The Authorization value answering `challenge` (a dict from parse_challenge).

    `nc` is this nonce's use count (an int from 1); `cnonce` a fresh random string. Uses qop=auth
    when offered, else the RFC 2069 form. Raises ValueError if the challenge cannot be answered
    (algorithm, qop) or a value cannot be sent.
    """
    why = _usable(challenge)
    if why is not None:
        raise ValueError(why)
    alg = challenge.get("algorithm", "MD5")
    h, _, sess = _algorithm(alg)
    qop = "auth" if _qops(challenge) else None
    nc_text = ""
    if qop is not None:
        if not 1 <= nc <= _M:
            raise ValueError("nc must be between 1 and 0xffffffff")
        if not cnonce:
            raise ValueError("cnonce is required with qop=auth")
        nc_text = "%08x" % nc
    elif sess:
        raise ValueError("algorithm %s needs qop" % alg)
    realm = challenge["realm"]
    nonce = challenge["nonce"]
    a1 = h(username + ":" + realm + ":" + password)
    if sess:
        a1 = h(a1 + ":" + nonce + ":" + cnonce)
    digest = _response(h, a1, method, uri, nonce, nc_text, cnonce, qop)
    parts = [
        "Digest username=" + _quote(username),
        "realm=" + _quote(realm),
        "nonce=" + _quote(nonce),
        "uri=" + _quote(uri),
        'response="%s"' % digest,
        "algorithm=" + alg,
    ]
    if qop is not None:
        parts.append("cnonce=" + _quote(cnonce))
        parts.append("qop=auth")
        parts.append("nc=" + nc_text)
    if "opaque" in challenge:
        parts.append("opaque=" + _quote(challenge["opaque"]))
    return ", ".join(parts)


# ---- server side -----------------------------------------------------------------------------


def _default_random():
    try:
        from os import urandom
    except ImportError:  # pragma: no cover  (MicroPython ports without os.urandom)
        return None
    return urandom


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
            random_bytes = _default_random()
        if secret_key is None:
            if random_bytes is None:
                raise ValueError("no os.urandom on this port: pass secret_key")
            secret_key = random_bytes(32)
        if isinstance(secret_key, str):
            secret_key = secret_key.encode()
        names = []
        for alg in algorithms:
            if alg.upper() not in _HASHES:
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
        self._ring_t = [0] * self.max_nonces  # their issue times, in units of 1024 ms
        self._pos = 0
        self._floor = -1  # latest issue time (1024 ms units) of any evicted nonce

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
        head = "Digest realm=" + _quote(self.realm) + ', nonce="' + nonce + '", algorithm='
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
        h, size = _HASHES[alg]
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
        expected = _response(h, a1, method, params["uri"], nonce, nc_text, cnonce, qop)
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
            if (issued >> 10) <= self._floor:
                return self._done(STALE, "nonce no longer tracked")
            self._remember(nid, issued >> 10, nc)
        elif nc <= last:
            return self._done(STALE, "nonce count replayed")
        else:
            self._seen[nid] = nc
        return self._done(OK, "")

    def _remember(self, nid, issued_units, nc):
        i = self._pos
        old = self._ring[i]
        if old is not None:
            del self._seen[old]
            if self._ring_t[i] > self._floor:
                self._floor = self._ring_t[i]
        self._ring[i] = nid
        self._ring_t[i] = issued_units
        self._seen[nid] = nc
        self._pos = (i + 1) % len(self._ring)

"""SIP digest credentials, the part both sides share and the client side (RFC 2617, RFC 7616).

This module owns the Digest header grammar and the hashes: parsing Authorization and
WWW-Authenticate values, HA1, the request-digest, and answering a challenge. The server side
(stateless nonces, verdicts, the replay table) is sip/digest.py's Authenticator.

    params = parse_auth(value)              Authorization / Proxy-Authorization -> dict
    params = parse_challenge(value)         WWW-Authenticate / Proxy-Authenticate -> dict
    params = pick_challenge(values)         the first challenge we can answer, or None
    value = respond(params, method, uri, username, password, cnonce, nc)   the client side
    ha1(algorithm, username, realm, password)   H(username:realm:password), what a server stores

Works on header *values* (strings), so it does not depend on the message parser.
"""

from binascii import hexlify
from hashlib import sha256

from zongji.sip.md5 import md5_hex
from zongji.sip.uri import ALNUM, TOKEN, ParseError, parse_uri
from zongji.text import is_token_char

MAX_HEADER = 2048  # characters in one header value; longer values are refused
MAX_PARAMS = 24  # parameters in one header value

_M = 0xFFFFFFFF
_WS = " \t\r\n"
# what a quoted string may hold without a closer look: printable ASCII (and tab), the usual first
_PLAIN = ALNUM + " -._:@/=,;+*%!~'()[]?&$#^`{}|<>\t"


def _sha256_hex(text):
    return hexlify(sha256(text.encode()).digest()).decode()


# algorithm name (upper case) -> (hash of a str as lowercase hex, hex digits in a response)
HASHES = {"MD5": (md5_hex, 32), "SHA-256": (_sha256_hex, 64)}


def _algorithm(name):
    """(hash, response length, is -sess) for an algorithm name, or None if unsupported."""
    name = name.upper()
    sess = name.endswith("-SESS")
    if sess:
        name = name[:-5]
    entry = HASHES.get(name)
    return None if entry is None else (entry[0], entry[1], sess)


def ha1(algorithm, username, realm, password):
    """HA1 = H(username ":" realm ":" password) as lowercase hex, for "MD5" or "SHA-256" (RFC
    7616 section 3.4.2; Kamailio's `ha1` column is the MD5 one). Raises ValueError for another
    algorithm."""
    entry = HASHES.get(algorithm.upper())
    if entry is None:
        raise ValueError("algorithm %s is not supported" % algorithm)
    return entry[0](username + ":" + realm + ":" + password)


def request_digest(h, a1, method, uri, nonce, nc, cnonce, qop):
    """The request-digest of RFC 2617 section 3.2.2.1 (and RFC 2069 when qop is None), from HA1."""
    ha2 = h(method + ":" + uri)
    if qop is None:
        return h(a1 + ":" + nonce + ":" + ha2)
    return h(a1 + ":" + nonce + ":" + nc + ":" + cnonce + ":" + qop + ":" + ha2)


def quote(s):
    if s.strip(_PLAIN):  # beyond plain printable ASCII (a quote, a backslash, UTF-8 ...): look closer
        for c in s:
            if (c < " " and c != "\t") or c == "\x7f":
                raise ValueError("control character in %r" % s)
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---- parsing ---------------------------------------------------------------------------------


def _skip_ws(s, i):
    n = len(s)
    while i < n and s[i] in _WS:
        i += 1
    return i


def _token_end(s, i):
    n = len(s)
    while i < n and is_token_char(s[i]):
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


def _fast(value):
    """The parameters of a plainly written value, `Digest a="x", b=y` (no backslash, one space
    after each comma, printable ASCII, tokens unquoted), read with str.find and slices; None
    for anything else, which the exact scanner (_parse) then reads. Whatever it accepts
    _parse reads the same way (tests/core/test_sip_fastpaths.py compares them)."""
    if "\\" in value or len(value) > MAX_HEADER:
        return None
    s = value.strip(_WS)
    if s[:7].lower() != "digest ":
        return None
    params = {}
    i = 7
    n = len(s)
    while i < n:
        eq = s.find("=", i)
        if eq < 0:
            return None
        name = s[i:eq]
        if not name or name.strip(TOKEN):
            return None
        if s[eq + 1 : eq + 2] == '"':
            q = s.find('"', eq + 2)
            if q < 0:
                return None
            text = s[eq + 2 : q]
            if text.strip(_PLAIN):
                return None
            i = q + 1
        else:
            i = s.find(",", eq)
            if i < 0:
                i = n
            text = s[eq + 1 : i]
            if not text or text.strip(TOKEN):
                return None
        name = name.lower()
        if name in params or len(params) == MAX_PARAMS:
            return None
        params[name] = text
        if i == n:
            break
        if s[i] != ",":
            return None
        i += 2 if s[i + 1 : i + 2] == " " else 1
        if s[i : i + 1] in (" ", "\t", ","):
            return None
    return params


_last = [None, None]  # the last Authorization value parse_auth read, and its parameters


def parse_auth(value):
    """Parameters of a `Digest ...` Authorization / Proxy-Authorization value, as a dict.

    Names are lower-cased, quoted strings unescaped; values are otherwise as sent. Raises
    ValueError with a lowercase message on anything malformed (the caller answers 400).
    The switch reads a request's credentials twice (the guard's user name, then the check):
    the second read of the same value is a copy of the first.
    """
    if value is _last[0] or (isinstance(value, str) and value == _last[0]):
        return dict(_last[1])
    params = _fast(value) if isinstance(value, str) else None
    if params is None:
        params = _parse(value, "authorization")
    _last[0] = value
    _last[1] = params
    return dict(params)


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
    digest = request_digest(h, a1, method, uri, nonce, nc_text, cnonce, qop)
    parts = [
        "Digest username=" + quote(username),
        "realm=" + quote(realm),
        "nonce=" + quote(nonce),
        "uri=" + quote(uri),
        'response="%s"' % digest,
        "algorithm=" + alg,
    ]
    if qop is not None:
        parts.append("cnonce=" + quote(cnonce))
        parts.append("qop=auth")
        parts.append("nc=" + nc_text)
    if "opaque" in challenge:
        parts.append("opaque=" + quote(challenge["opaque"]))
    return ", ".join(parts)


def uri_matches(params, request_uri):
    """Do credentials `params` (parse_auth) name this request's Request-URI (RFC 2617 3.2.2.5)?
    Compared as SIP URIs (scheme, user, host in any case, port), so a phone that writes the
    URI otherwise still passes, while credentials made for one request cannot be replayed on
    another. A digest uri with no user part but our host and port (sip:HOST:PORT, what SIPp and
    some phones send by default) passes too: it names this server, and the nonce count stops
    a replay of the very same credentials."""
    text = params.get("uri") or ""
    if text == str(request_uri):
        return True
    try:
        u = parse_uri(text)
    except ParseError:
        return False
    r = request_uri
    if u.opaque is not None or r.opaque is not None:
        return False
    same_port = (u.port or 5060) == (r.port or 5060)
    same_user = u.user == r.user or u.user is None
    return u.scheme == r.scheme and same_user and u.host.lower() == r.host.lower() and same_port

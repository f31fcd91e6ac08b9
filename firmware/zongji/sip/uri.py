"""SIP URIs (RFC 3261 section 19.1) and the lexical pieces every SIP parser here shares:
tokens, %-escapes, quoted strings, parameter lists. Also ParseError, the one error a peer causes.

    uri = parse_uri("sip:alice@example.com;transport=tcp")   -> URI
    str(uri)                                                 -> the text again

A sip/sips URI is taken apart (user, password, host, port, params, headers) with %-escapes
decoded, and str(uri) writes it back with the escapes the grammar needs. Any other scheme (tel,
http, the torture tests' inventions) is kept whole as `opaque`, so the application can answer
416 Unsupported URI Scheme instead of the parser guessing.

Hand parsers, no `re`: MicroPython's is a subset, and these run on an ESP32. Each parser raises
ParseError with a short lowercase reason; the message layer adds where it was ("bad to header:").
"""

from zongji.text import TOKEN_CHARS, is_alnum


class ParseError(Exception):
    """The peer sent something that is not SIP we can read.

    `status` is the code to answer a request with (400, or 505 for an unsupported version).
    `request` is the request as far as it parsed, to build that answer from, or None: the
    message was a response (drop it) or too broken to answer. str(e) says what was wrong.
    """

    def __init__(self, message, status=400, request=None):
        super().__init__(message)
        self.status = status
        self.request = request


# Character classes of RFC 3261 section 25.1, beyond letters and digits.
_MARK = "-_.!~*'()"
_USER = _MARK + "&=+$,;?/"
_PASSWORD = _MARK + "&=+$,"
_PARAM = _MARK + "[]/:&+$"
_HEADER = _MARK + "[]/?:+$"
_HOST = "-._"  # '_' is not in the grammar, but real hosts have it; harmless to accept
_SCHEME = "+-."
_HEX = "0123456789abcdefABCDEF"
DIGITS = "0123456789"
# letters and digits, the most frequent first (str.strip looks each character up in order)
ALNUM = "eaoitnsrlcdupmhgbfywkvxzjq0123456789EAOITNSRLCDUPMHGBFYWKVXZJQ"
TOKEN = ALNUM + TOKEN_CHARS
# the same classes with the letters and digits, for one C-level test of a whole run (text.only)
_USER_OK = ALNUM + _USER
_PASSWORD_OK = ALNUM + _PASSWORD
_PARAM_OK = ALNUM + _PARAM
_HEADER_OK = ALNUM + _HEADER
_HOST_OK = ALNUM + _HOST
_SCHEME_OK = ALNUM + _SCHEME
_IPV6_OK = _HEX + ":."
_FULL = {_USER: _USER_OK, _PASSWORD: _PASSWORD_OK, _PARAM: _PARAM_OK, _HEADER: _HEADER_OK}


def to_uint(s):
    """Plain ASCII digits -> int, else -1. CPython's int() also takes '+', '_', spaces and
    non-ASCII digits; the grammar does not. Longer than 12 digits comes back as 10**12, which
    is over every limit SIP has, without building a huge number."""
    if not s or s.strip(DIGITS):
        return -1
    s = s.lstrip("0")
    if len(s) > 12:
        return 10**12
    return int(s) if s else 0


def _check(s, extra, what, utf8=False):
    # every char: letter/digit, in `extra`, or a %XX escape (raw UTF-8 only if utf8)
    if not s.strip(_FULL[extra]):
        return  # the usual case, in one C-level pass; escapes and UTF-8 take the loop below
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "%":
            if i + 2 >= n or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                raise ParseError("bad escape in " + what)
            i += 3
            continue
        if not (is_alnum(c) or c in extra or (utf8 and c >= "\x80")):
            raise ParseError("bad character in " + what)
        i += 1


def unescape(s):
    """%XX -> the bytes, read as UTF-8. Call only on text _check() passed."""
    if "%" not in s:
        return s
    b = s.encode()
    out = bytearray()
    i = 0
    n = len(b)
    while i < n:
        if b[i] == 37 and i + 2 < n:  # '%'
            out.append(int(b[i + 1 : i + 3].decode(), 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    try:
        return bytes(out).decode()
    except UnicodeError:
        raise ParseError("escaped bytes are not utf-8")


def escape(s, extra):
    """Percent-encode what `extra` (and letters/digits) does not allow; '%' itself included."""
    full = _FULL.get(extra)
    if full is not None and not s.strip(full):
        return s
    for c in s:
        if not (is_alnum(c) or c in extra):
            break
    else:
        return s
    out = []
    for c in s:
        if is_alnum(c) or c in extra:
            out.append(c)
        else:
            for byte in c.encode():
                out.append("%%%02X" % byte)
    return "".join(out)


def quoted_end(s, i):
    """s[i] is '"': the index just past the closing quote (backslash escapes honoured)."""
    j = i + 1
    n = len(s)
    while j < n:
        c = s[j]
        if c == "\\":
            j += 2
        elif c == '"':
            return j + 1
        else:
            j += 1
    raise ParseError("unterminated quoted string")


def split_outside(s, sep):
    """Split on `sep` where it is not inside a quoted string or <...>."""
    if '"' not in s and "<" not in s:
        return s.split(sep)
    out = []
    start = 0
    i = 0
    n = len(s)
    angle = False
    while i < n:
        c = s[i]
        if c == '"':
            i = quoted_end(s, i)
            continue
        if c == "<":
            angle = True
        elif c == ">":
            angle = False
        elif c == sep and not angle:
            out.append(s[start:i])
            start = i + 1
        i += 1
    out.append(s[start:])
    return out


class Params:
    """Ordered name[=value] parameters; names are looked up case-insensitively (RFC 3261
    section 7.3.1). A flag parameter (`;lr`) has the value None. Works like a small dict."""

    def __init__(self, items=None):
        self._items = []
        self._keys = []  # the names lower-cased, in step with _items: a lookup is list.index
        if items:
            for name, value in items.items() if hasattr(items, "items") else items:
                self[name] = value

    def _find(self, name):
        keys = self._keys
        if name in keys:  # asked for in lower case, as the code does: no new string
            return keys.index(name)
        name = name.lower()
        return keys.index(name) if name in keys else -1

    def get(self, name, default=None):
        i = self._find(name)
        return default if i < 0 else self._items[i][1]

    def __getitem__(self, name):
        i = self._find(name)
        if i < 0:
            raise KeyError(name)
        return self._items[i][1]

    def __setitem__(self, name, value):
        i = self._find(name)
        if i < 0:
            self._items.append((name, value))
            self._keys.append(name.lower())
        else:
            self._items[i] = (self._items[i][0], value)

    def __delitem__(self, name):
        i = self._find(name)
        if i < 0:
            raise KeyError(name)
        del self._items[i]
        del self._keys[i]

    def __contains__(self, name):
        return self._find(name) >= 0

    def __len__(self):
        return len(self._items)

    def __iter__(self):
        return iter([name for name, _ in self._items])

    def items(self):
        return list(self._items)

    def copy(self):
        return Params(self._items)

    def __eq__(self, other):
        if not isinstance(other, Params) or len(other) != len(self):
            return False
        for name, value in self._items:
            if name not in other or other[name] != value:
                return False
        return True

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return "Params(%r)" % (self._items,)

    def to_str(self, extra=None):
        """';a=1;lr' -- escaped with `extra` for URI params, as stored for header params."""
        out = []
        for name, value in self._items:
            if extra is not None:
                name = escape(name, extra)
                value = None if value is None else escape(value, extra)
            out.append(";" + name if value is None else ";%s=%s" % (name, value))
        return "".join(out)


def parse_hostport(s):
    """'host', 'host:5060', '[2001:db8::1]:5060' -> (host, port or None)."""
    port = None
    if s.startswith("["):
        end = s.find("]")
        if end < 3:
            raise ParseError("bad ipv6 reference")
        host = s[: end + 1]
        if host[1:-1].strip(_IPV6_OK):
            raise ParseError("bad ipv6 reference")
        rest = s[end + 1 :]
        if rest:
            if rest[0] != ":":
                raise ParseError("bad host")
            port = rest[1:]
    else:
        colon = s.find(":")
        host = s if colon < 0 else s[:colon]
        if colon >= 0:
            port = s[colon + 1 :]
        if not host:
            raise ParseError("empty host")
        if host.strip(_HOST_OK):
            raise ParseError("bad host")
    if port is not None:
        port = to_uint(port) if len(port) <= 5 else -1
        if port < 0 or port > 65535:
            raise ParseError("bad port")
    return host, port


class URI:
    """A parsed URI. sip/sips: scheme, user, password, host, port, params, headers (decoded
    text; params/headers are Params). Other schemes: scheme and `opaque`, the text after ':'."""

    def __init__(
        self, scheme="sip", user=None, host="", port=None, params=None, headers=None, password=None, opaque=None
    ):
        self.scheme = scheme.lower()
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.params = params if params is not None else Params()
        self.headers = headers if headers is not None else Params()
        self.opaque = opaque

    @property
    def is_sip(self):
        return self.opaque is None and (self.scheme == "sip" or self.scheme == "sips")

    def __str__(self):
        if self.opaque is not None:
            return self.scheme + ":" + self.opaque
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(escape(self.user, _USER))
            if self.password is not None:
                out.append(":" + escape(self.password, _PASSWORD))
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(":%d" % self.port)
        out.append(self.params.to_str(_PARAM))
        if len(self.headers):
            hs = ["%s=%s" % (escape(n, _HEADER), escape(v or "", _HEADER)) for n, v in self.headers.items()]
            out.append("?" + "&".join(hs))
        return "".join(out)

    def __repr__(self):
        return "URI(%r)" % str(self)

    def __eq__(self, other):
        # Field by field, host case-insensitive; RFC 3261 section 19.1.4's looser rules
        # (ignoring unknown params present on one side only) are the caller's business.
        if not isinstance(other, URI):
            return False
        return (
            self.scheme == other.scheme
            and self.opaque == other.opaque
            and self.user == other.user
            and self.password == other.password
            and self.host.lower() == other.host.lower()
            and self.port == other.port
            and self.params == other.params
            and self.headers == other.headers
        )

    def __ne__(self, other):
        return not self.__eq__(other)

    def copy(self):
        return URI(
            self.scheme,
            self.user,
            self.host,
            self.port,
            self.params.copy(),
            self.headers.copy(),
            self.password,
            self.opaque,
        )

    def aor(self):
        """The address-of-record key: 'sip:user@host', host lower-cased, no port/params."""
        if self.opaque is not None:
            return str(self)
        user = "" if self.user is None else escape(self.user, _USER) + "@"
        return "%s:%s%s" % (self.scheme, user, self.host.lower())


def parse_uri(text):
    """Text of one URI (no <>, no surrounding space) -> URI, or ParseError."""
    if text[:4] == "sip:":  # the usual scheme, spelled as usual
        colon = 3
        low = "sip"
    else:
        colon = text.find(":")
        if colon < 1:
            raise ParseError("no scheme")
        scheme = text[:colon]
        if not ("a" <= scheme[0].lower() <= "z") or scheme.strip(_SCHEME_OK):
            raise ParseError("bad scheme")
        low = scheme.lower()
    rest = text[colon + 1 :]
    if low != "sip" and low != "sips":
        if not rest:
            raise ParseError("empty " + low + " uri")
        for c in rest:
            if c <= " " or c == "\x7f" or c in '<>"':
                raise ParseError("bad character in uri")
        return URI(low, opaque=rest)
    user = password = None
    at = rest.find("@")
    if at >= 0:
        userinfo = rest[:at]
        rest = rest[at + 1 :]
        c = userinfo.find(":")
        if c >= 0:
            password = userinfo[c + 1 :]
            userinfo = userinfo[:c]
            _check(password, _PASSWORD, "password")
            password = unescape(password)
        if not userinfo:
            raise ParseError("empty user")
        _check(userinfo, _USER, "user", True)
        user = unescape(userinfo)
    headers = Params()
    q = rest.find("?")
    if q >= 0:
        for piece in rest[q + 1 :].split("&"):
            eq = piece.find("=")
            if eq < 1:
                raise ParseError("bad uri header")
            name, value = piece[:eq], piece[eq + 1 :]
            _check(name, _HEADER, "uri header")
            _check(value, _HEADER, "uri header")
            headers[unescape(name)] = unescape(value)
        rest = rest[:q]
    params = Params()
    semi = rest.find(";")
    if semi >= 0:
        for piece in rest[semi + 1 :].split(";"):
            eq = piece.find("=")
            name = piece if eq < 0 else piece[:eq]
            value = None if eq < 0 else piece[eq + 1 :]
            if not name:
                raise ParseError("empty uri parameter")
            _check(name, _PARAM, "uri parameter")
            if value is not None:
                _check(value, _PARAM, "uri parameter")
                value = unescape(value)
            params[unescape(name)] = value
        rest = rest[:semi]
    host, port = parse_hostport(rest)
    return URI(low, user, host, port, params, headers, password)

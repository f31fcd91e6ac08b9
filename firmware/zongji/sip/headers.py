"""Typed SIP header values: name-addr / addr-spec (To, From, Contact, Route; RFC 3261 section
20.10), header parameters, Via (section 20.42), CSeq (section 20.16) and the Date check.

    addr = parse_address('"Alice" <sip:alice@example.com>;tag=1')   -> Address
    via = parse_via("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport")   -> Via
    num, method = parse_cseq("101 INVITE")

Each takes one value, already unfolded and split from its list by the message layer, and
raises ParseError with a short lowercase reason. Parameter values stay as sent (a quoted
string keeps its quotes), so str() writes back what came in.
"""

from zongji.sip.uri import (
    ALNUM,
    TOKEN,
    Params,
    ParseError,
    parse_hostport,
    parse_uri,
    quoted_end,
    split_outside,
    to_uint,
)
from zongji.text import TOKEN_CHARS, is_alnum, is_token

BRANCH_MAGIC = "z9hG4bK"  # RFC 3261 section 8.1.1.7: branches of RFC 3261 elements start so
MAX_CSEQ = 0x7FFFFFFF  # section 8.1.1.5: the sequence number is below 2**31
_GEN_VALUE = TOKEN + "[]:"  # gen-value = token / host / quoted-string; a host adds '[', ']' and ':'
_HOST_CHARS = ALNUM + "-._:[]"  # maddr and received (letters, digits and these)


def unquote(s):
    """'"a \\"b\\""' -> 'a "b"' (s is one whole quoted string)."""
    s = s[1:-1]
    if "\\" not in s:
        return s
    out = []
    i = 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            i += 1
        out.append(s[i])
        i += 1
    return "".join(out)


def quote(s):
    out = ['"']
    for c in s:
        if c == '"' or c == "\\" or (c < " " and c != "\t") or c == "\x7f":
            if c == "\r" or c == "\n":
                continue  # a quoted-pair cannot carry CR or LF
            out.append("\\")
        out.append(c)
    out.append('"')
    return "".join(out)


def parse_params(s):
    """'' or ' ; tag = 1;lr' -> Params. LWS around ';' and '=' is allowed (RFC 3261 section
    25.1: SEMI and EQUAL carry SWS)."""
    params = Params()
    s = s.strip(" \t")
    if not s:
        return params
    if s[0] != ";":
        raise ParseError("unexpected text before parameters")
    for piece in split_outside(s[1:], ";"):
        eq = piece.find("=")
        name = (piece if eq < 0 else piece[:eq]).strip(" \t")
        if not is_token(name):
            raise ParseError("bad parameter name" if name else "empty parameter")
        value = None
        if eq >= 0:
            value = piece[eq + 1 :].strip(" \t")
            if not value:
                raise ParseError("empty parameter value")
            if value[0] == '"':
                if quoted_end(value, 0) != len(value):
                    raise ParseError("bad parameter value")
            elif value.strip(_GEN_VALUE):
                raise ParseError("bad parameter value")
        params[name] = value
    return params


class Address:
    """name-addr / addr-spec: display name (decoded, or None), uri (URI), params (header
    parameters: tag, expires, q ...). Contact's '*' is an Address whose uri is '*'."""

    def __init__(self, uri, display=None, params=None):
        self.uri = uri
        self.display = display
        self.params = params if params is not None else Params()

    @property
    def tag(self):
        return self.params.get("tag")

    @property
    def is_star(self):
        return self.uri == "*"

    def param_int(self, name, default=None, limit=0xFFFFFFFF):
        """An integer parameter such as expires, capped at `limit`; `default` when absent or
        malformed (RFC 3261 section 10.3 lets a registrar treat a bad expires as absent)."""
        value = to_uint(self.params.get(name) or "")
        return default if value < 0 else min(value, limit)

    def __str__(self):
        if self.is_star:
            return "*"
        display = quote(self.display) + " " if self.display else ""
        return "%s<%s>%s" % (display, self.uri, self.params.to_str())

    def __repr__(self):
        return "Address(%r)" % str(self)

    def __eq__(self, other):
        return (
            isinstance(other, Address)
            and self.uri == other.uri
            and self.display == other.display
            and self.params == other.params
        )

    def __ne__(self, other):
        return not self.__eq__(other)


def _in_angles(s, display):
    end = s.find(">")
    if end < 0:
        raise ParseError("unterminated <uri>")
    if s[1:2] in " \t" or s[end - 1] in " \t":
        raise ParseError("no spaces allowed inside <uri>")  # RFC 4475 badaspec
    return Address(parse_uri(s[1:end]), display, parse_params(s[end + 1 :]))


def parse_address(text, star=False):
    """One name-addr or addr-spec with its parameters -> Address. `star` allows Contact's '*'."""
    s = text.strip(" \t")
    if not s:
        raise ParseError("empty address")
    if star and s == "*":
        return Address("*")
    if s[0] == '"':
        end = quoted_end(s, 0)
        rest = s[end:].lstrip(" \t")
        if not rest.startswith("<"):
            raise ParseError("expected <uri> after the display name")
        return _in_angles(rest, unquote(s[:end]))
    lt = s.find("<")
    if lt >= 0:
        words = s[:lt].split()
        for word in words:
            if not word.strip(TOKEN):
                continue
            for c in word:
                # tokens; raw UTF-8 too, which the grammar only allows quoted but phones
                # send (王小明 <sip:...>); refusing the whole call over it helps no one
                if not (is_alnum(c) or c in TOKEN_CHARS or c >= "\x80"):
                    raise ParseError("bad display name: it needs quotes")
        return _in_angles(s[lt:], " ".join(words) or None)
    # addr-spec: everything after the first ';' is header parameters (RFC 3261 section 20)
    semi = s.find(";")
    spec = (s if semi < 0 else s[:semi]).rstrip(" \t")
    if "?" in spec or "," in spec or " " in spec or "\t" in spec:
        for c in spec:
            if c in "?, \t":
                raise ParseError("a uri with %r must be enclosed in <>" % c)
    return Address(parse_uri(spec), None, parse_params(s[semi:] if semi >= 0 else ""))


class Via:
    """One Via value: protocol ('SIP/2.0'), transport (upper case), host, port (int or None),
    params (branch, received, rport, maddr, ttl ...). To add received/rport on receipt, change
    params and write str(via) back with Message.set_all("via", ...)."""

    def __init__(self, transport, host, port=None, params=None, protocol="SIP/2.0"):
        self.protocol = protocol
        self.transport = transport.upper()
        self.host = host
        self.port = port
        self.params = params if params is not None else Params()

    @property
    def branch(self):
        return self.params.get("branch")

    @property
    def received(self):
        return self.params.get("received")

    @property
    def maddr(self):
        return self.params.get("maddr")

    @property
    def ttl(self):
        value = self.params.get("ttl")
        return None if value is None else to_uint(value)

    @property
    def rport(self):
        """The rport value as an int; None when absent or a bare flag (see wants_rport)."""
        value = self.params.get("rport")
        return None if value is None else to_uint(value)

    @property
    def wants_rport(self):
        """RFC 3581: the client asked us to fill in the port we saw it send from."""
        return "rport" in self.params and self.params["rport"] is None

    @property
    def sent_by(self):
        return self.host if self.port is None else "%s:%d" % (self.host, self.port)

    def copy(self):
        """A Via to change (a parsed one is shared: sip/message.py's view memo)."""
        return Via(self.transport, self.host, self.port, self.params.copy(), self.protocol)

    def __str__(self):
        return "%s/%s %s%s" % (self.protocol, self.transport, self.sent_by, self.params.to_str())

    def __repr__(self):
        return "Via(%r)" % str(self)


def parse_via(text):
    """One via-parm: 'SIP / 2.0 / UDP host:port ;branch=...' (LWS allowed around '/')."""
    semi = text.find(";")
    head = text if semi < 0 else text[:semi]
    parts = head.split("/")
    if len(parts) != 3:
        raise ParseError("bad sent-protocol")
    name = parts[0].strip(" \t")
    version = parts[1].strip(" \t")
    rest = parts[2].strip(" \t")
    split = rest.split(None, 1)
    if len(split) != 2:
        raise ParseError("missing sent-by")
    transport, sent_by = split
    if name.upper() != "SIP" or not is_token(version) or not is_token(transport):
        raise ParseError("bad sent-protocol")
    host, port = parse_hostport(sent_by.strip(" \t"))
    params = parse_params(text[semi:] if semi >= 0 else "")
    via = Via(transport, host, port, params, "SIP/" + version)
    for key, limit in (("ttl", 255), ("rport", 65535)):
        value = params.get(key)
        if value is not None and not (0 <= to_uint(value) <= limit):
            raise ParseError("bad " + key)
    branch = params.get("branch", "")
    if branch is None or (branch and not is_token(branch)):
        raise ParseError("bad branch")
    for key in ("received", "maddr"):
        value = params.get(key, "")
        if value is None or (value and not _is_host(value)):
            raise ParseError("bad " + key)
    return via


def _is_host(s):
    # maddr is a host; received an IPv4 or IPv6 address, the latter without brackets
    return not s.strip(_HOST_CHARS)


def parse_cseq(text):
    """'101 INVITE' -> (101, 'INVITE')."""
    parts = text.split()
    if len(parts) != 2:
        raise ParseError("expected a number and a method")
    num = to_uint(parts[0])
    if num < 0:
        raise ParseError("bad number")
    if num > MAX_CSEQ:
        raise ParseError("number too large")
    if not is_token(parts[1]):
        raise ParseError("bad method")
    return num, parts[1]


_WKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def check_date(text):
    """RFC 3261 section 20.17: RFC 1123 dates, always in GMT ('Sat, 13 Nov 2010 23:29:00 GMT')."""
    p = text.split()
    ok = (
        len(p) == 6
        and p[0][-1:] == ","
        and p[0][:-1] in _WKDAYS
        and 1 <= len(p[1]) <= 2
        and 1 <= to_uint(p[1]) <= 31
        and p[2] in _MONTHS
        and len(p[3]) == 4
        and to_uint(p[3]) >= 0
        and p[5] == "GMT"
    )
    t = p[4].split(":") if ok else ()
    if not (
        len(t) == 3
        and all(len(x) == 2 and to_uint(x) >= 0 for x in t)
        and to_uint(t[0]) < 24
        and to_uint(t[1]) < 60
        and to_uint(t[2]) < 61
    ):
        raise ParseError("expected an rfc 1123 date in gmt")

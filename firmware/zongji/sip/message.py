"""SIP messages (RFC 3261 section 7): Request / Response, their headers, and -> bytes.

This module owns the message objects, the header tables (compact forms, spelling, which
headers are lists) and the builders; reading a datagram is sip/parser.py's.

    msg = parse(datagram)                  sip/parser.py: Request or Response, or ParseError
    msg.get("v"), msg.get_all("Contact")   header values: any case, compact forms too
    msg.vias(), msg.to_addr(), msg.cseq()  typed views, parsed once and cached
    msg.to_bytes()                         CRLF line ends, Content-Length recomputed
    make_response(req, 486)                RFC 3261 section 8.2.6: Vias, From, To+tag, Call-ID, CSeq
    make_request("OPTIONS", uri, ...)      a new request with the mandatory headers

Theory of operation
-------------------
parse() reads one UDP datagram (section 18.3). Headers are kept as a list of (key, value) in
arrival order: key is the lower-case full name (compact forms expanded, section 7.3.3), value
the text with continuation lines joined by one space (section 7.3.1). A header whose grammar
is a comma list (Via, Contact, Allow ...) becomes one entry per element, commas inside quotes
or <> left alone; other headers are never split (Date, WWW-Authenticate and unknown headers
have commas of their own). to_bytes() writes the list back, so parse -> to_bytes -> parse
gives the same headers; only Content-Length is recomputed.
"""

from zongji.sip.headers import parse_address, parse_cseq, parse_via
from zongji.sip.uri import ParseError, parse_uri, split_outside, to_uint

# RFC 3261 section 7.3.3, plus the compact forms later RFCs registered
_COMPACT = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}
# names not spelled by capitalising each '-' part
_SPELLING = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
    "rack": "RAck",
    "rseq": "RSeq",
}
# headers whose grammar is a comma list: kept as one entry per element
_LIST = {
    "via",
    "contact",
    "route",
    "record-route",
    "path",
    "service-route",
    "allow",
    "supported",
    "require",
    "proxy-require",
    "unsupported",
    "accept",
    "accept-encoding",
    "accept-language",
    "content-encoding",
    "allow-events",
    "in-reply-to",
    "alert-info",
    "call-info",
    "error-info",
    "warning",
    "accept-contact",
    "reject-contact",
    "p-asserted-identity",
    "p-preferred-identity",
    "history-info",
    "reason",
}
# lists parsed on receipt: an empty element is an error there, so it is kept to fail; they
# are also written one element per line (some phones read only the first of a line)
_CHECKED = ("via", "contact", "route", "record-route")

_REASONS = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}
_CLASS_REASONS = ("", "Provisional", "Success", "Redirection", "Client Error", "Server Error", "Global Failure")


def reason_phrase(status):
    """The usual reason phrase for a status code ('Busy Here' for 486)."""
    return _REASONS.get(status) or _CLASS_REASONS[min(max(status // 100, 0), 6)]


def header_key(name):
    """'Via', 'v', 'VIA' -> 'via': how headers are stored and looked up."""
    key = name.lower()
    return _COMPACT.get(key, key) if len(key) == 1 else key


# the keys the code asks for by their own spelling (get("call-id")): a dict lookup instead of
# header_key's call and new string. Its strings are literals: the dict is all it costs the heap.
_KEYS = {}
for _key in ("via", "from", "to", "call-id", "cseq", "contact", "max-forwards", "content-length", "content-type",
             "expires", "authorization", "proxy-authorization", "route", "record-route", "require",
             "proxy-require", "date", "timestamp", "supported", "allow", "event", "subject"):  # fmt: skip
    _KEYS[_key] = _key


_NAMES = {}  # header_name's results for the keys it has seen, at most _NAMES_MAX of them
_NAMES_MAX = 24


def header_name(key):
    """'call-id' -> 'Call-ID', 'x-custom' -> 'X-Custom': how headers are written."""
    name = _SPELLING.get(key) or _NAMES.get(key)
    if name is None:
        name = "-".join([part[:1].upper() + part[1:] for part in key.split("-")])
        if len(_NAMES) < _NAMES_MAX:
            _NAMES[key] = name
    return name


def header_values(key, value):
    # one header line's value -> the stored entries (split when the grammar is a list)
    if key not in _LIST or "," not in value:
        return [value]
    parts = [part.strip(" \t") for part in split_outside(value, ",")]
    if key not in _CHECKED:
        parts = [part for part in parts if part] or [""]
    return parts


# The view memo: header text -> its parsed view, for the headers that recur across a dialog's
# messages and a phone's REGISTERs (From, To, Contact, Route, Record-Route, Via: a call's
# nine messages carry the same From; the answer to a 401 repeats its REGISTER's From, To and
# Contact). A value seen before is not parsed again: the message gets the very view parsed
# the first time. Views are read-only (the Message docstring): code that changes one copies it
# first (transaction.py's _stamp). Each dict holds at most _memo_size[0] values and is emptied
# when full, so the memo is a bounded cache that anyone's traffic may fill and no one's can
# grow; a value that fails to parse is never kept. view_memo(n) sets the size (0: off).
_ADDRESSES = {}  # From, To, Route, Record-Route values -> Address
_CONTACTS = {}  # Contact values -> Address (a '*' too)
_VIAS = {}  # Via values -> Via
_URIS = {}  # Request-URIs -> URI (sip/parser.py)
_MEMOS = {"from": _ADDRESSES, "to": _ADDRESSES, "route": _ADDRESSES, "record-route": _ADDRESSES,
          "contact": _CONTACTS, "via": _VIAS, "uri": _URIS}  # fmt: skip
_memo_size = [32]


_MEMO_KEYS = tuple(_MEMOS.items())


def view_memo(size=None):
    """Empty the memo; keep up to `size` parsed values per kind from now on (addresses,
    contacts, Vias, Request-URIs; 0 turns it off; None keeps the size). -> the size before."""
    old = _memo_size[0]
    if size is not None:
        _memo_size[0] = size
    size = _memo_size[0]
    for memo in (_ADDRESSES, _CONTACTS, _VIAS, _URIS):
        memo.clear()
    _MEMOS.clear()
    if size > 0:
        _MEMOS.update(_MEMO_KEYS)
    return old


class Message:
    """What requests and responses share: headers (a list of (key, value), keys as
    header_key() makes them) and body (bytes).

    Change headers with add / set / set_all / remove, not by editing `headers` or the typed
    views: those are parsed copies, each cached until its header next changes through these methods."""

    def __init__(self, headers=None, body=b""):
        self.headers = []
        self.body = body
        self._cache = {}
        for name, value in headers or ():
            self.add(name, value)

    # -- raw header access ------------------------------------------------------------------

    def get(self, name, default=None):
        """The first value of a header, or default."""
        key = _KEYS.get(name) or header_key(name)
        for k, v in self.headers:
            if k == key:
                return v
        return default

    def get_all(self, name):
        """Every value of a header, list elements separately, in order."""
        key = _KEYS.get(name) or header_key(name)
        return [v for k, v in self.headers if k == key]

    def _entries(self, key, value):
        value = str(value)
        if "\r" in value or "\n" in value:
            raise ValueError("header value contains a line break: " + repr(value))
        return [(key, v) for v in header_values(key, value)]

    def add(self, name, value, first=False):
        """Append a header; with first=True put it above the others of its name (a new Via,
        a Record-Route)."""
        key = header_key(name)
        entries = self._entries(key, value)
        at = len(self.headers)
        if first:
            at = 0
            for i in range(len(self.headers)):
                if self.headers[i][0] == key:
                    at = i
                    break
        self.headers[at:at] = entries
        self._cache.pop(key, None)  # the typed views are per header: the others stay

    def set_all(self, name, values):
        """Replace every value of a header with `values`, where the first one was."""
        key = header_key(name)
        kept = []
        at = -1
        for entry in self.headers:
            if entry[0] == key:
                if at < 0:
                    at = len(kept)
            else:
                kept.append(entry)
        entries = []
        for value in values:
            entries.extend(self._entries(key, value))
        at = len(kept) if at < 0 else at
        kept[at:at] = entries
        self.headers = kept
        self._cache.pop(key, None)

    def set_views(self, name, values, views):
        """set_all(name, values) where `views` are those values already parsed (views[i] is
        what values[i] parses to; a new view must not be changed after): they are kept, for
        this message and the memo, instead of being parsed again."""
        self.set_all(name, values)
        key = header_key(name)
        self._cache[key] = views
        memo = _MEMOS.get(key)
        if memo is not None:
            for i in range(len(values)):
                if len(memo) >= _memo_size[0]:
                    memo.clear()
                memo[values[i]] = views[i]

    def set(self, name, value):
        """Replace a header with one value (None removes it)."""
        self.set_all(name, () if value is None else (value,))

    def remove(self, name):
        self.set_all(name, ())

    # -- typed views -------------------------------------------------------------------------

    def _parsed(self, key, parse):
        got = self._cache.get(key)
        if got is None:
            got = []
            memo = _MEMOS.get(key)
            for value in self.get_all(key):
                view = None if memo is None else memo.get(value)
                if view is None:
                    try:
                        view = parse(value)
                    except ParseError as e:
                        raise ParseError("bad %s header: %s" % (key, e))
                    if memo is not None:
                        if len(memo) >= _memo_size[0]:
                            memo.clear()
                        memo[value] = view
                got.append(view)
            self._cache[key] = got
        return got

    def vias(self):
        return self._parsed("via", parse_via)

    def via(self):
        """The top Via (the one a response goes back along), or None."""
        vias = self.vias()
        return vias[0] if vias else None

    def from_addr(self):
        got = self._parsed("from", parse_address)
        return got[0] if got else None

    def to_addr(self):
        got = self._parsed("to", parse_address)
        return got[0] if got else None

    def contacts(self):
        """Contact addresses; [star] for the REGISTER 'Contact: *' (Address.is_star)."""
        got = self._parsed("contact", _contact)
        if len(got) > 1 and any(a.is_star for a in got):
            raise ParseError("bad contact header: '*' must stand alone")
        return got

    def routes(self):
        return self._parsed("route", parse_address)

    def record_routes(self):
        return self._parsed("record-route", parse_address)

    def cseq(self):
        """(number, method), or None without a CSeq."""
        got = self._parsed("cseq", parse_cseq)
        return got[0] if got else None

    def call_id(self):
        value = self.get("call-id")
        if value is not None and (not value or len(value.split()) != 1):
            raise ParseError("bad call-id header")
        return value

    def max_forwards(self):
        """0-255, or None when absent."""
        value = self.get("max-forwards")
        if value is None:
            return None
        hops = to_uint(value)
        if not 0 <= hops <= 255:
            raise ParseError("bad max-forwards header: expected 0-255")
        return hops

    def expires(self, default=None):
        """The Expires header in seconds, capped at 2**32-1; `default` when absent or
        malformed (RFC 3261 section 20.19 treats malformed as the default)."""
        seconds = to_uint(self.get("expires") or "")
        return default if seconds < 0 else min(seconds, 0xFFFFFFFF)

    def content_type(self):
        """'application/sdp' (lower case, parameters dropped), or None."""
        value = self.get("content-type")
        return value.split(";", 1)[0].strip(" \t").lower() if value else None

    # -- serialising -------------------------------------------------------------------------

    def to_bytes(self):
        body = self.body
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            body = bytes(body)
        lines = [self.start_line()]
        prev = None
        wrote_length = False
        for key, value in self.headers:
            if key == "content-length":
                if wrote_length:
                    continue
                wrote_length = True
                value = str(len(body))
            elif key == prev and value and key in _LIST and key not in _CHECKED:
                lines[-1] += ", " + value  # Allow: INVITE, ACK ... on one line
                continue
            lines.append(header_name(key) + ": " + value)
            prev = key
        if not wrote_length:
            lines.append("Content-Length: %d" % len(body))
        lines.append("\r\n")
        return "\r\n".join(lines).encode() + body


def _contact(value):
    return parse_address(value, star=True)


class Request(Message):
    """method (str), uri (URI; the raw text only in a ParseError's partial request)."""

    def __init__(self, method, uri, headers=None, body=b""):
        super().__init__(headers, body)
        self.method = method
        self.uri = parse_uri(uri) if isinstance(uri, str) else uri

    def start_line(self):
        return "%s %s SIP/2.0" % (self.method, self.uri)

    def __repr__(self):
        return "<Request %s %s>" % (self.method, self.uri)


class Response(Message):
    """status (int 100-699), reason (str, may be empty)."""

    def __init__(self, status, reason=None, headers=None, body=b""):
        super().__init__(headers, body)
        self.status = status
        self.reason = reason_phrase(status) if reason is None else reason

    def start_line(self):
        return "SIP/2.0 %d %s" % (self.status, self.reason)

    def __repr__(self):
        return "<Response %d %s>" % (self.status, self.reason)


def _has_tag(to):
    if "tag" not in to.lower():
        return False  # no tag parameter without the letters of its name: nothing to parse
    try:
        return parse_address(to).tag is not None
    except ParseError:  # a partial request from a ParseError: look for the text instead
        return ";tag=" in to.replace(" ", "").lower()


def make_response(request, status, reason=None, to_tag=None, headers=None, body=b""):
    """A response to `request` (RFC 3261 section 8.2.6): its Vias in order, From, To (with
    `to_tag` added unless To has a tag or this is a 100), Call-ID, CSeq, and for a 100 its
    Timestamp. `headers` are (name, value) pairs added after those. Works on the partial
    request of a ParseError too, copying whichever of these it has."""
    resp = Response(status, reason, body=body)
    for value in request.get_all("via"):
        resp.headers.append(("via", value))
    for key in ("from", "to", "call-id", "cseq"):
        value = request.get(key)
        if value is None:
            continue
        if key == "to" and to_tag and status > 100 and not _has_tag(value):
            value = "%s;tag=%s" % (value, to_tag)
        resp.headers.append((key, value))
    if status == 100 and request.get("timestamp") is not None:
        resp.headers.append(("timestamp", request.get("timestamp")))  # section 8.2.6.1
    for name, value in headers or ():
        resp.add(name, value)
    return resp


def make_request(
    method,
    uri,
    from_addr,
    to_addr,
    call_id,
    cseq,
    via=None,
    contact=None,
    max_forwards=70,
    headers=None,
    body=b"",
    content_type=None,
):
    """A new request (RFC 3261 section 8.1.1). uri: URI or text; from_addr, to_addr,
    contact: Address or text; via: a Via or text, or a list of them (top first); cseq: the
    number. `headers` are (name, value) pairs added after the mandatory ones."""
    req = Request(method, uri, body=body)
    for value in via if isinstance(via, (list, tuple)) else (via,) if via else ():
        req.add("via", value)
    req.add("max-forwards", max_forwards)
    req.add("from", from_addr)
    req.add("to", to_addr)
    req.add("call-id", call_id)
    req.add("cseq", "%d %s" % (cseq, method))
    if contact is not None:
        req.add("contact", contact)
    for name, value in headers or ():
        req.add(name, value)
    if content_type is not None:
        req.add("content-type", content_type)
    return req

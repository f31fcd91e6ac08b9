"""SIP message parsing (RFC 3261 sections 7 and 18.3): one UDP datagram -> Request / Response.

    msg = parse(datagram)    Request or Response (sip/message.py); ParseError on anything else

This module owns the reading of a datagram and what is refused on the way; the message
objects, header tables and builders are sip/message.py's. Headers are stored as message.py
keys them: lower-case full names, compact forms expanded, list headers one entry per element.

What parse() refuses, with the RFC 4475 message that needs the check:
  - a start line that is not three parts joined by single spaces (lwsruri, lwsstart, trws),
    a Request-URI in <> or with ?headers (ltgtruri, escruri), a version other than SIP/2.0
    (badvers: 505), a status code outside 100-699 (bigcode)
  - Via, From, To, Call-ID or CSeq missing (insuf), or From, To, Call-ID, CSeq,
    Max-Forwards, Content-Length or Content-Type repeated (multi01, mcl01)
  - a Via, From, To, Contact, Route or Record-Route that does not parse (badinv01, quotbal,
    baddn, badaspec, regbadct); a CSeq number of 2**31 or more, or a CSeq method that is not
    the request's (scalar02, scalarlg, mismatch01, mismatch02); Max-Forwards over 255; a Date
    not in GMT (baddate)
  - a Content-Length that is negative or more than the datagram holds (ncl, clerr). The body
    is cut to Content-Length (dblreq); without one it is the rest of the datagram.
The application answers the rest (416 for an unknown scheme, 420 for Require, 415, 483 ...)
from the accessors. A ParseError for a request carries the request as far as it parsed, so
the caller can answer make_response(err.request, err.status); for a response it is dropped.
"""

from zongji.sip.headers import check_date
from zongji.sip.message import (
    _COMPACT,
    _LIST,
    _MEMOS,
    Request,
    Response,
    _memo_size,
    header_key,
    header_values,
)
from zongji.sip.uri import ParseError, parse_uri, to_uint
from zongji.text import is_token

_SINGLE = ("from", "to", "call-id", "cseq", "max-forwards", "content-length", "content-type")
_REQUIRED = ("via", "from", "to", "call-id", "cseq")


def parse(data):
    """One datagram (bytes) -> Request or Response. Raises ParseError and nothing else."""
    if not isinstance(data, bytes):
        if not isinstance(data, (bytearray, memoryview)):
            raise TypeError("parse() takes bytes, not " + type(data).__name__)
        data = bytes(data)
    try:
        return _parse(data)
    except (IndexError, KeyError, ValueError, UnicodeError) as e:  # pragma: no cover
        # A bug here, not the peer's fault; still, bad input must never end the receive
        # loop. The fuzz tests fail on this message.
        raise ParseError("internal error: " + type(e).__name__)


def _parse(data):
    start = 0
    while data[start : start + 2] == b"\r\n":  # section 7.5: ignore CRLFs before a message
        start += 2
    if start >= len(data):
        raise ParseError("empty message")
    end = data.find(b"\r\n\r\n", start)
    body_at = end + 4
    if end < 0:
        if not data.endswith(b"\r\n"):
            raise ParseError("truncated message: no empty line after the headers")
        end = body_at = len(data) - 2  # the empty line alone is missing: tolerate it
    try:
        head = data[start:end].decode()
    except UnicodeError:
        raise ParseError("headers are not utf-8")
    lines = head.split("\r\n")
    status = 400
    if lines[0][:4].upper() == "SIP/":
        msg = _status_line(lines[0])
        err = None
    else:
        msg, err, status = _request_line(lines[0])
    if "\n " in head or "\n\t" in head or head.count("\r") != len(lines) - 1 or head.count("\n") != len(lines) - 1:
        headers, bad_header = _read_headers(lines)  # folded lines, or a CR or LF alone
    else:
        headers, bad_header = _plain_headers(lines)
    msg.headers = headers
    request = msg if isinstance(msg, Request) else None
    err = err or bad_header
    if err:
        raise ParseError(err, status, request)
    try:
        _check(msg, request)
        length = msg.get("content-length")
        size = len(data) - body_at
        if length is not None:
            wanted = to_uint(length)
            if wanted < 0:
                raise ParseError("bad content-length header")
            if wanted > size:
                raise ParseError(
                    "bad content-length header: %d is more than the %d body bytes received" % (wanted, size)
                )
            size = wanted
        msg.body = data[body_at : body_at + size]
    except ParseError as e:
        e.request = request
        raise
    return msg


def _status_line(line):
    parts = line.split(" ", 2)
    if parts[0].upper() != "SIP/2.0":
        raise ParseError("unsupported sip version in status line")
    code = to_uint(parts[1]) if len(parts) > 1 and len(parts[1]) == 3 else -1
    if not 100 <= code <= 699:
        raise ParseError("bad status code")
    return Response(code, parts[2] if len(parts) > 2 else "")


def _request_line(line):
    # -> (request, error or None, status). The request exists even when the line is bad, so
    # the caller can still be answered 400 from its headers.
    sp = line.find(" ")
    if sp <= 0:
        raise ParseError("bad start line")
    req = Request(line[:sp], None)
    req.uri = line[sp + 1 :]
    parts = line.split(" ")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        return req, "bad request line: expected method, uri and version separated by single spaces", 400
    version = parts[2].upper()
    if version != "SIP/2.0":
        digits = version[4:].split(".")
        if version[:4] == "SIP/" and len(digits) == 2 and min(to_uint(d) for d in digits) >= 0:
            return req, "unsupported sip version " + parts[2], 505
        return req, "bad sip version", 400
    if not is_token(req.method):
        return req, "bad method", 400
    req.uri = parts[1]
    if parts[1][0] == "<":
        return req, "bad request-uri: it must not be enclosed in <>", 400
    memo = _MEMOS.get("uri")
    uri = None if memo is None else memo.get(parts[1])
    if uri is None:
        try:
            uri = parse_uri(parts[1])
        except ParseError as e:
            return req, "bad request-uri: %s" % e, 400
        if memo is not None:
            if len(memo) >= _memo_size[0]:
                memo.clear()
            memo[parts[1]] = uri
    if len(uri.headers):
        return req, "bad request-uri: headers are not allowed in a request-uri", 400
    req.uri = uri
    return req, None, 400


def _read_headers(lines):
    # -> (headers, first error or None); a bad line is skipped so the rest still parse
    headers = []
    err = None
    line = None
    for i in range(1, len(lines) + 1):
        nxt = lines[i] if i < len(lines) else None
        if nxt and (nxt[0] == " " or nxt[0] == "\t"):
            if line is None:
                err = err or "bad header folding: continuation line without a header"
            else:
                line = line.rstrip(" \t") + " " + nxt.strip(" \t")
            continue
        if line is not None:
            bad = _header_line(headers, line)
            err = err or bad
        line = nxt
    return headers, err


# header names as phones spell them -> their keys (literals: no heap on a frozen build). A name
# found here is a token already: the line skips the token test, lower() and the compact forms.
_SPELLED = {"Via": "via", "via": "via", "From": "from", "from": "from", "To": "to", "to": "to",
    "Call-ID": "call-id", "call-id": "call-id", "CSeq": "cseq", "cseq": "cseq", "Contact": "contact",
    "contact": "contact", "Max-Forwards": "max-forwards", "max-forwards": "max-forwards",
    "Content-Length": "content-length", "content-length": "content-length", "Content-Type": "content-type",
    "content-type": "content-type", "Expires": "expires", "expires": "expires", "Authorization": "authorization",
    "authorization": "authorization", "Proxy-Authorization": "proxy-authorization",
    "proxy-authorization": "proxy-authorization", "Route": "route", "route": "route",
    "Record-Route": "record-route", "record-route": "record-route", "User-Agent": "user-agent",
    "user-agent": "user-agent", "Allow": "allow", "allow": "allow", "Supported": "supported",
    "supported": "supported", "WWW-Authenticate": "www-authenticate", "www-authenticate": "www-authenticate",
    "Proxy-Authenticate": "proxy-authenticate", "proxy-authenticate": "proxy-authenticate", "Server": "server",
    "server": "server", "Allow-Events": "allow-events", "allow-events": "allow-events", "Date": "date",
    "date": "date", "Accept": "accept", "accept": "accept", "Require": "require", "require": "require",
    "Proxy-Require": "proxy-require", "proxy-require": "proxy-require", "Min-Expires": "min-expires",
    "min-expires": "min-expires", "Retry-After": "retry-after", "retry-after": "retry-after",
    "Session-Expires": "session-expires", "session-expires": "session-expires", "Call-Id": "call-id",
    "Cseq": "cseq", "v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
    "c": "content-type", "k": "supported"}  # fmt: skip


def _plain_headers(lines):
    # _read_headers for the usual head, with no folded line and no CR or LF but the line ends:
    # the same entries and the same first error, with less work a line
    headers = []
    err = None
    spelled = _SPELLED
    for i in range(1, len(lines)):
        line = lines[i]
        colon = line.find(":")
        key = spelled.get(line[:colon]) if colon > 0 else None
        if key is None:
            name = line[:colon]
            if name[-1:] == " " or name[-1:] == "\t":
                name = name.rstrip(" \t")
            if colon < 0 or not is_token(name):
                err = err or "bad header line"
                continue
            key = name.lower()
            if len(key) == 1:
                key = _COMPACT.get(key, key)
        value = line[colon + 1 :].strip(" \t")
        if key in _LIST and "," in value:
            try:
                for v in header_values(key, value):
                    headers.append((key, v))
            except ParseError as e:
                err = err or "bad %s header: %s" % (key, e)
        else:
            headers.append((key, value))
    return headers, err


def _header_line(headers, line):
    if "\r" in line or "\n" in line:
        return "bad line ending in the headers"
    colon = line.find(":")
    name = line[:colon].rstrip(" \t")
    if colon < 0 or not is_token(name):
        return "bad header line"
    key = header_key(name)
    try:
        headers.extend([(key, v) for v in header_values(key, line[colon + 1 :].strip(" \t"))])
    except ParseError as e:
        return "bad %s header: %s" % (key, e)
    return None


def _check(msg, request):
    keys = [entry[0] for entry in msg.headers]
    for key in _SINGLE:
        if keys.count(key) > 1:  # the first repeated one in header order is the one named
            seen = []
            for key in keys:
                if key in _SINGLE:
                    if key in seen:
                        raise ParseError("duplicate %s header" % key)
                    seen.append(key)
    for key in _REQUIRED:
        if key not in keys:
            raise ParseError("missing %s header" % key)
    msg.vias()
    msg.from_addr()
    msg.to_addr()
    msg.call_id()
    method = msg.cseq()[1]
    if request is not None and method != request.method:
        raise ParseError("bad cseq header: method %s does not match the request's" % method)
    msg.max_forwards()
    msg.contacts()
    msg.routes()
    msg.record_routes()
    date = msg.get("date") if "date" in keys else None
    if date is not None:
        try:
            check_date(date)
        except ParseError as e:
            raise ParseError("bad date header: %s" % e)

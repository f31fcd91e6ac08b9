"""A switchboard's worth of scripted SIP endpoints on loopback, for the agreement test.

    board = Board(switch_addr)
    board.phone("201", secret)          a phone socket on 127.0.0.1; board.register_all()
    board.provider(port)                the trunk's far end at the site's [trunk] port
    seen = board.call("201", "600")     one call from 201 to 600 -> Seen
    seen = board.inbound("02155550100") one call from the provider to a DID -> Seen

A call goes out with real digest authentication (407, ACK, INVITE with credentials), each phone
and the provider answer every INVITE with 180 Ringing, and once the caller hears ringing the
caller CANCELs: Seen then holds whom the switch rang first (the numbers whose phones got the
INVITE, and the numbers the provider was asked for) or the final status and reason it answered.
A call the attendant answers (200 from the switch's own user agent, Contact sip:attendant@) is
ACKed and hung up at once: Seen.attendant says so.
The SIP here is written by hand, independent of the core's own message code. Every wait is
bounded; only 127.0.0.1 is used.
"""

import hashlib
import re
import selectors
import socket
import time

LOOPBACK = "127.0.0.1"
SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def _md5(text):
    return hashlib.md5(text.encode()).hexdigest()


def _parse(data):
    text = data.decode("utf-8", "replace")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return lines[0], headers, body


def _get(headers, name):
    for n, v in headers:
        if n == name:
            return v
    return None


class Message:
    def __init__(self, data, addr):
        self.first, self.headers, self.body = _parse(data)
        self.addr = addr
        parts = self.first.split(" ", 2)
        self.is_response = parts[0] == "SIP/2.0"
        self.status = int(parts[1]) if self.is_response else 0
        self.reason = parts[2] if self.is_response and len(parts) > 2 else ""
        self.method = parts[0] if not self.is_response else (_get(self.headers, "cseq") or " ").split()[-1]
        self.uri = parts[1] if not self.is_response else ""

    def get(self, name):
        return _get(self.headers, name)

    def all(self, name):
        return [v for n, v in self.headers if n == name]


class Seen:
    def __init__(self):
        self.rang = set()  # extension numbers whose phones got the INVITE
        self.trunk = set()  # numbers the provider was asked to ring
        self.status = None  # the final status the caller got, when refused
        self.reason = None
        self.ringing = False
        self.attendant = False  # the switch's attendant answered

    def __repr__(self):
        return "Seen(rang=%s trunk=%s status=%s %s)" % (sorted(self.rang), sorted(self.trunk), self.status, self.reason)


class Endpoint:
    """One socket that answers INVITE 180, CANCEL 200 + 487, BYE/OPTIONS 200, REGISTER 200."""

    def __init__(self, board, number, secret, port=0):
        self.board = board
        self.number = number
        self.secret = secret
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, port))
        self.sock.setblocking(False)
        self.addr = self.sock.getsockname()
        self.inbox = []  # responses for our own requests
        self.invites = {}  # Call-ID -> the INVITE we were sent (to answer its CANCEL)
        self.seq = 0

    def send(self, text, addr=None):
        self.sock.sendto(text.encode(), addr or self.board.switch)

    def on(self, data, addr):
        m = Message(data, addr)
        if m.is_response:
            self.inbox.append(m)
            return
        self.board.seen_request(self, m)
        if m.method == "INVITE":
            self.invites[m.get("call-id")] = m
            self.reply(m, 180, "Ringing", tag="r" + self.number)
        elif m.method == "CANCEL":
            self.reply(m, 200, "OK")
            inv = self.invites.pop(m.get("call-id"), None)
            if inv is not None:
                self.reply(inv, 487, "Request Terminated", tag="r" + self.number)
        elif m.method in ("BYE", "OPTIONS", "REGISTER", "NOTIFY"):
            self.reply(m, 200, "OK")

    def reply(self, m, status, reason, tag=None):
        lines = ["SIP/2.0 %d %s" % (status, reason)]
        for name in ("via", "from", "to", "call-id", "cseq"):
            for v in m.all(name):
                if name == "to" and tag and ";tag=" not in v:
                    v += ";tag=" + tag
                lines.append("%s: %s" % (name.title(), v))
        lines.append("Contact: <sip:%s@%s:%d>" % (self.number, LOOPBACK, self.addr[1]))
        lines.append("Content-Length: 0")
        self.send("\r\n".join(lines) + "\r\n\r\n", m.addr)

    def branch(self):
        self.seq += 1
        return "z9hG4bK%s%d%d" % (self.number, self.seq, int(time.monotonic() * 1000) % 100000)

    def request(self, method, uri, to, call_id, cseq, branch, from_tag, extra=(), body=""):
        lines = [
            "%s %s SIP/2.0" % (method, uri),
            "Via: SIP/2.0/UDP %s:%d;branch=%s;rport" % (LOOPBACK, self.addr[1], branch),
            "Max-Forwards: 70",
            "From: <sip:%s@%s>;tag=%s" % (self.number, self.board.domain, from_tag),
            "To: %s" % to,
            "Call-ID: %s" % call_id,
            "CSeq: %d %s" % (cseq, method),
            "Contact: <sip:%s@%s:%d>" % (self.number, LOOPBACK, self.addr[1]),
        ]
        lines += list(extra)
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append("Content-Length: %d" % len(body.encode()))
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def take(self, want, call_id=None, timeout=5.0):
        """The first response (to call_id) in the inbox that want(m) accepts, pumping the board
        meanwhile. Responses to earlier calls (retransmissions) are dropped."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if call_id is not None:
                self.inbox = [m for m in self.inbox if m.get("call-id") == call_id]
            for m in self.inbox:
                if want(m):
                    self.inbox.remove(m)
                    return m
            self.board.pump(0.05)
        return None

    def authorize(self, challenge, method, uri, header):
        params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
        ha1 = _md5("%s:%s:%s" % (self.number, params["realm"], self.secret))
        ha2 = _md5("%s:%s" % (method, uri))
        cnonce = "c0ffee%d" % self.seq
        resp = _md5("%s:%s:00000001:%s:auth:%s" % (ha1, params["nonce"], cnonce, ha2))
        return (
            '%s: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", '
            'algorithm=MD5, qop=auth, nc=00000001, cnonce="%s"'
            % (header, self.number, params["realm"], params["nonce"], uri, resp, cnonce)
        )

    def register(self):
        uri = "sip:%s" % self.board.domain
        to = "<sip:%s@%s>" % (self.number, self.board.domain)
        call_id = "reg-%s-%d" % (self.number, self.addr[1])
        extra = ["Expires: 3600"]
        self.send(self.request("REGISTER", uri, to, call_id, 1, self.branch(), "rt", extra))
        first = self.take(lambda m: m.method == "REGISTER" and m.status >= 200, call_id)
        assert first is not None and first.status == 401, "no 401 for %s's REGISTER: %r" % (self.number, first)
        ok = first
        for cseq in (2, 3, 4):  # a stale=true 401 asks again with a fresh nonce (RFC 7616 3.3)
            auth = self.authorize(ok.get("www-authenticate"), "REGISTER", uri, "Authorization")
            self.send(self.request("REGISTER", uri, to, call_id, cseq, self.branch(), "rt", extra + [auth]))
            ok = self.take(lambda m: m.method == "REGISTER" and m.status >= 200, call_id)
            if ok is None or ok.status != 401 or "stale=true" not in (ok.get("www-authenticate") or "").lower():
                break
        assert ok is not None and ok.status == 200, "%s did not register: %r" % (self.number, ok and ok.first)


class Board:
    def __init__(self, switch):
        self.switch = switch
        self.domain = "%s:%d" % switch
        self.sel = selectors.DefaultSelector()
        self.phones = {}
        self.trunk = None
        self._seen = None
        self._calls = 0

    def _add(self, ep):
        self.sel.register(ep.sock, selectors.EVENT_READ, ep)
        return ep

    def phone(self, number, secret):
        self.phones[number] = self._add(Endpoint(self, number, secret))
        return self.phones[number]

    def provider(self, port):
        self.trunk = self._add(Endpoint(self, "provider", "", port))
        return self.trunk

    def close(self):
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        self.sel.close()

    def pump(self, timeout):
        for key, _ in self.sel.select(timeout):
            ep = key.data
            while True:
                try:
                    data, addr = ep.sock.recvfrom(65535)
                except BlockingIOError:
                    break
                ep.on(data, addr)

    def settle(self, quiet=0.05, limit=2.0):
        """Pump until nothing arrives for `quiet` seconds (at most `limit`)."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            if not self.sel.select(quiet):
                return
            self.pump(0)

    def seen_request(self, ep, m):
        if self._seen is None or m.method != "INVITE":
            return
        if ep is self.trunk:
            self._seen.trunk.add(m.uri.split(":", 1)[1].split("@", 1)[0])
        else:
            self._seen.rang.add(ep.number)

    def register_all(self):
        for p in self.phones.values():
            p.register()

    def call(self, caller, dialed):
        """Extension `caller` dials `dialed`: whom the switch rings first, or what it answers."""
        ep = self.phones[caller]
        uri = "sip:%s@%s" % (dialed, self.domain)
        to = "<%s>" % uri
        self._calls += 1
        call_id = "agree-%d-%s" % (self._calls, caller)
        self._seen = Seen()
        branch = ep.branch()
        ep.send(ep.request("INVITE", uri, to, call_id, 1, branch, "f%d" % self._calls, body=SDP))
        first = ep.take(lambda m: m.method == "INVITE" and m.status >= 200, call_id)
        assert first is not None and first.status == 407, "no 407 for %s -> %s: %r" % (
            caller,
            dialed,
            first and first.first,
        )
        ep.send(self._ack(ep, uri, first, call_id, 1, branch))
        auth = ep.authorize(first.get("proxy-authenticate"), "INVITE", uri, "Proxy-Authorization")
        branch = ep.branch()
        ep.send(ep.request("INVITE", uri, to, call_id, 2, branch, "f%d" % self._calls, [auth], SDP))
        return self._finish(ep, uri, to, call_id, 2, branch, "f%d" % self._calls)

    def inbound(self, did, caller="13912345678"):
        """The provider calls one of the branch's numbers."""
        ep = self.trunk
        uri = "sip:%s@%s" % (did, self.domain)
        to = "<%s>" % uri
        self._calls += 1
        call_id = "agree-in-%d" % self._calls
        self._seen = Seen()
        branch = ep.branch()
        saved, ep.number = ep.number, caller
        try:
            ep.send(ep.request("INVITE", uri, to, call_id, 1, branch, "p%d" % self._calls, body=SDP))
            return self._finish(ep, uri, to, call_id, 1, branch, "p%d" % self._calls)
        finally:
            ep.number = saved

    def _finish(self, ep, uri, to, call_id, cseq, branch, from_tag):
        seen = self._seen
        m = ep.take(lambda m: m.method == "INVITE" and (m.status in (180, 183) or m.status >= 200), call_id)
        if m is None:
            self._seen = None
            raise AssertionError("no answer for %s" % uri)
        if m.status >= 300:
            seen.status, seen.reason = m.status, m.reason
            ep.send(self._ack(ep, uri, m, call_id, cseq, branch))
        elif m.status >= 200:
            seen.status, seen.reason = m.status, m.reason
            seen.attendant = "sip:attendant@" in (m.get("contact") or "")
            self._hang_up(ep, m, call_id, cseq)
        else:
            seen.ringing = True
            self.settle(0.02, 0.5)  # the stage's other legs were sent in the same breath
            cancel = ep.request("CANCEL", uri, to, call_id, cseq, branch, from_tag)
            ep.send(cancel)
            final = ep.take(lambda m: m.method == "INVITE" and m.status >= 300, call_id)
            if final is not None:
                ep.send(self._ack(ep, uri, final, call_id, cseq, branch))
        self._seen = None
        self.settle(0.01, 0.5)
        return seen

    def _hang_up(self, ep, ok, call_id, cseq):
        """ACK a 2xx and BYE it: along its Record-Route (reversed, for the caller), to its Contact."""
        target = re.search(r"<([^>]+)>", ok.get("contact") or "")
        routes = list(reversed(ok.all("record-route")))
        target = target.group(1) if target else "sip:%s" % self.domain
        frm = ok.get("from")
        for method, n in (("ACK", cseq), ("BYE", cseq + 1)):
            lines = [
                "%s %s SIP/2.0" % (method, target),
                "Via: SIP/2.0/UDP %s:%d;branch=%s;rport" % (LOOPBACK, ep.addr[1], ep.branch()),
                "Max-Forwards: 70",
                "From: %s" % frm,
                "To: %s" % ok.get("to"),
                "Call-ID: %s" % call_id,
                "CSeq: %d %s" % (n, method),
            ]
            lines += ["Route: %s" % r for r in routes]
            lines.append("Content-Length: 0")
            ep.send("\r\n".join(lines) + "\r\n\r\n")
        ep.take(lambda m: m.method == "BYE" and m.status >= 200, call_id, timeout=2.0)

    def _ack(self, ep, uri, resp, call_id, cseq, branch):
        # the ACK for a non-2xx final response: same branch, the response's To (17.1.1.3)
        lines = [
            "ACK %s SIP/2.0" % uri,
            "Via: SIP/2.0/UDP %s:%d;branch=%s;rport" % (LOOPBACK, ep.addr[1], branch),
            "Max-Forwards: 70",
            "From: %s" % resp.get("from"),
            "To: %s" % resp.get("to"),
            "Call-ID: %s" % call_id,
            "CSeq: %d ACK" % cseq,
            "Content-Length: 0",
        ]
        return "\r\n".join(lines) + "\r\n\r\n"

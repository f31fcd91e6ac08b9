"""Attack tooling for test_adversarial.py and bench/flood_bench.py: raw UDP sockets on loopback.

Everything is written from RFC 3261 / RFC 2617 here (no SIP library), so the switch is judged by
an independent implementation. Every socket is bound to an address in 127.0.0.0/8 (Linux
accepts any 127.x.y.z), every wait has a deadline, every thread is a daemon stopped by close().

    prov = FakeProvider(port, logdir)        the [trunk]: REGISTER -> 200, counts everything else
    phone = Phone("202", secret, "127.0.10.202", switch_addr)
    phone.register(); out = phone.call("203")     Outcome(ok, ms, detail), out.dialog
    loop = PhoneLoop(a, b); loop.start(); ...; loop.stop(); loop.summary()
    swarm = Swarm(["127.66.0.%d" % i for i in range(1, 201)], switch_addr)
    pace(9000, 1400, lambda i: swarm.send(i % 200, msg(i)))

Names used by the tests: the switch is always on 127.0.0.1, phones on 127.0.10.x, attackers on
127.66.x.y, strangers on 127.0.99.x, victims of reflection on 127.0.77.x.
"""

import hashlib
import os
import random
import re
import select
import socket
import statistics
import threading
import time

T1 = 0.5  # RFC 3261 timer T1, seconds
T2 = 4.0

_COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "s": "subject",
    "o": "event",
    "r": "refer-to",
    "e": "content-encoding",
}

SDP = (
    "v=0\r\n"
    "o=- 1 1 IN IP4 {ip}\r\n"
    "s=-\r\n"
    "c=IN IP4 {ip}\r\n"
    "t=0 0\r\n"
    "m=audio {port} RTP/AVP 0\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
)


def token(n=8):
    return "%0*x" % (n * 2, random.getrandbits(n * 8))


def branch():
    return "z9hG4bK-" + token(6)


# ---------------------------------------------------------------- messages


def split_commas(value):
    """'<a>, <b;x="1,2">' -> ['<a>', '<b;x="1,2">']: commas outside <> and quotes."""
    out, depth, quoted, cur = [], 0, False, []
    for c in value:
        if c == '"':
            quoted = not quoted
        elif not quoted and c == "<":
            depth += 1
        elif not quoted and c == ">":
            depth -= 1
        elif c == "," and not quoted and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(c)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def tag_of(value):
    """The tag parameter of a From/To value, or None."""
    if value is None:
        return None
    tail = value.rsplit(">", 1)[1] if "<" in value else value
    m = re.search(r";\s*tag=([^;\s]+)", tail)
    return m.group(1) if m else None


def uri_of(value):
    """The URI of a name-addr (<...>) or addr-spec value."""
    value = value.strip()
    if "<" in value:
        return value.split("<", 1)[1].split(">", 1)[0]
    return value.split(";", 1)[0]


def hostport_of(uri):
    """('127.0.10.3', 40000) from sip:203@127.0.10.3:40000;transport=udp."""
    m = re.match(r"sips?:(?:[^@]*@)?([^:;>]+)(?::(\d+))?", uri)
    if not m:
        return None
    return (m.group(1), int(m.group(2) or 5060))


class Msg:
    """A parsed SIP message: .status/.reason (responses) or .method/.uri (requests), .headers
    as (lower-case full name, value) in order, .body (bytes), .src and .at (arrival)."""

    def __init__(self, raw, src=None, at=None):
        self.raw = raw
        self.src = src
        self.at = at if at is not None else time.monotonic()
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        self.start = lines[0]
        self.headers = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:
                name, value = self.headers[-1]
                self.headers[-1] = (name, value + " " + line.strip())
                continue
            name, _, value = line.partition(":")
            name = name.strip().lower()
            self.headers.append((_COMPACT.get(name, name), value.strip()))
        self.status = self.reason = self.method = self.uri = None
        if self.start.startswith("SIP/2.0 "):
            parts = self.start.split(" ", 2)
            self.status = int(parts[1]) if parts[1].isdigit() else 0
            self.reason = parts[2] if len(parts) > 2 else ""
        else:
            parts = self.start.split(" ")
            self.method = parts[0]
            self.uri = parts[1] if len(parts) > 1 else ""

    @property
    def is_response(self):
        return self.status is not None

    def get(self, name):
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def lines(self, name):
        """Every header line's value for `name`, as sent (not split at commas)."""
        return [v for n, v in self.headers if n == name]

    def all(self, name):
        """Every value of `name`, comma-joined lines split."""
        out = []
        for v in self.lines(name):
            out += split_commas(v)
        return out

    def cseq(self):
        v = (self.get("cseq") or "0 ?").split()
        return (int(v[0]) if v[0].isdigit() else 0, v[1] if len(v) > 1 else "?")

    def call_id(self):
        return self.get("call-id")

    def top_branch(self):
        vias = self.all("via")
        m = re.search(r";\s*branch=([^;\s,]+)", vias[0]) if vias else None
        return m.group(1) if m else None

    def status_line(self):
        return "%d %s" % (self.status, self.reason) if self.is_response else self.start


def request(method, uri, via, headers, body=b""):
    """Bytes of a request: via = (host, port, branch); headers = [(name, value), ...] after it."""
    if isinstance(body, str):
        body = body.encode()
    lines = ["%s %s SIP/2.0" % (method, uri), "Via: SIP/2.0/UDP %s:%d;branch=%s;rport" % via]
    lines += ["%s: %s" % (n, v) for n, v in headers]
    lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def response_to(req, status, reason, to_tag=None, headers=(), body=b""):
    """Bytes of a response to the parsed request `req` (RFC 3261 8.2.6)."""
    if isinstance(body, str):
        body = body.encode()
    lines = ["SIP/2.0 %d %s" % (status, reason)]
    lines += ["Via: " + v for v in req.lines("via")]
    lines.append("From: " + (req.get("from") or ""))
    to = req.get("to") or ""
    if to_tag and tag_of(to) is None and status > 100:
        to += ";tag=" + to_tag
    lines.append("To: " + to)
    lines.append("Call-ID: " + (req.call_id() or ""))
    lines.append("CSeq: " + (req.get("cseq") or ""))
    lines += ["%s: %s" % (n, v) for n, v in headers]
    lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# ---------------------------------------------------------------- digest (RFC 2617, RFC 8760)

_HASH = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def parse_challenge(value):
    """'Digest realm="r", nonce="n", qop="auth"' -> {'realm': 'r', ...}; None if not Digest."""
    if not value or value.strip()[:7].lower() != "digest ":
        return None
    out = {}
    for m in re.finditer(r'([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]+)', value.strip()[7:]):
        v = m.group(2)
        out[m.group(1).lower()] = v[1:-1] if v[:1] == '"' else v
    return out


def pick_challenge(resp):
    """The MD5 (else the first usable) challenge of a 401/407, as a dict, or None."""
    name = "www-authenticate" if resp.status == 401 else "proxy-authenticate"
    found = [c for c in (parse_challenge(v) for v in resp.lines(name)) if c and "nonce" in c]
    for c in found:
        if c.get("algorithm", "MD5").upper() == "MD5":
            return c
    for c in found:
        if c.get("algorithm", "MD5").upper() in _HASH:
            return c
    return None


def credentials(ch, method, uri, user, password, nc=1, cnonce=None):
    """The Authorization / Proxy-Authorization value answering challenge `ch`."""
    alg = ch.get("algorithm", "MD5")
    h = _HASH[alg.upper()]

    def hx(s):
        return h(s.encode()).hexdigest()

    realm, nonce = ch.get("realm", ""), ch["nonce"]
    cnonce = cnonce or token(8)
    ha1 = hx("%s:%s:%s" % (user, realm, password))
    ha2 = hx("%s:%s" % (method, uri))
    qops = [q.strip() for q in ch.get("qop", "").split(",") if q.strip()]
    parts = ['username="%s"' % user, 'realm="%s"' % realm, 'nonce="%s"' % nonce, 'uri="%s"' % uri]
    if "auth" in qops:
        ncs = "%08x" % nc
        resp = hx("%s:%s:%s:%s:auth:%s" % (ha1, nonce, ncs, cnonce, ha2))
        parts += ['response="%s"' % resp, "algorithm=%s" % alg, "qop=auth", "nc=%s" % ncs, 'cnonce="%s"' % cnonce]
    else:
        parts += ['response="%s"' % hx("%s:%s:%s" % (ha1, nonce, ha2)), "algorithm=%s" % alg]
    if "opaque" in ch:
        parts.append('opaque="%s"' % ch["opaque"])
    return "Digest " + ", ".join(parts)


# ---------------------------------------------------------------- one socket


class Endpoint:
    """A UDP socket on (ip, port) with a reader thread. Responses are kept by the branch of
    their top Via; requests go to on_request(msg) (and are kept in .requests)."""

    def __init__(self, ip, port=0, on_request=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((ip, port))
        self.sock.settimeout(0.2)
        self.addr = self.sock.getsockname()
        self.ip, self.port = self.addr
        self.on_request = on_request
        self.requests = []
        self.responses = []
        self.datagrams = 0
        self._by_branch = {}
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._read, name="ep-%s:%d" % self.addr, daemon=True)
        self._thread.start()

    def _read(self):
        while not self._closed:
            try:
                data, src = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data.strip():
                continue  # keep-alive CRLF
            self.datagrams += 1
            try:
                msg = Msg(data, src)
            except Exception:  # noqa: BLE001 - a peer's garbage must not kill the reader
                continue
            if msg.is_response:
                with self._cond:
                    self.responses.append(msg)
                    self._by_branch.setdefault(msg.top_branch(), []).append(msg)
                    self._cond.notify_all()
            else:
                with self._cond:
                    self.requests.append(msg)
                    self._cond.notify_all()
                if self.on_request is not None:
                    try:
                        self.on_request(msg)
                    except OSError:
                        pass

    def send(self, data, dest):
        self.sock.sendto(data, tuple(dest))

    def for_branch(self, br):
        with self._cond:
            return list(self._by_branch.get(br, ()))

    def wait(self, predicate, timeout):
        """Wait until predicate() (called under the lock) is true; its last value."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                v = predicate()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    return v
                self._cond.wait(min(left, 0.1))

    def transact(self, data, dest, br, invite=False, timeout=5.0):
        """Send a request, retransmit it like a UAC (T1 doubling to T2; an INVITE stops at a
        provisional), until a final answer or `timeout`. (final Msg or None, all answers)."""
        start = time.monotonic()
        deadline = start + timeout
        interval = T1
        next_send = start
        provisional = False
        while True:
            now = time.monotonic()
            if now >= deadline:
                return None, self.for_branch(br)
            if now >= next_send and not provisional:
                self.send(data, dest)
                next_send = now + interval
                interval = min(interval * 2, T2 if not invite else 64 * T1)

            def got():
                answers = self._by_branch.get(br, ())
                final = [m for m in answers if m.status >= 200]
                return (final[0] if final else None), any(100 <= m.status < 200 for m in answers)

            with self._cond:
                final, prov = got()
                if final is None:
                    until = deadline if provisional or (invite and prov) else min(next_send, deadline)
                    self._cond.wait(max(0.001, until - time.monotonic()))
                    final, prov = got()
            provisional = provisional or (invite and prov)
            if final is not None:
                return final, self.for_branch(br)

    def close(self):
        self._closed = True
        try:
            self.sock.close()
        except OSError:
            pass
        self._thread.join(2)


# ---------------------------------------------------------------- a phone


class Outcome:
    def __init__(self, ok, ms, detail, dialog=None):
        self.ok = ok
        self.ms = ms
        self.detail = detail
        self.dialog = dialog

    def __repr__(self):
        return "Outcome(%s, %.1f ms, %s)" % (self.ok, self.ms or 0, self.detail)


class Dialog:
    """What the caller knows of a call it set up (and a stranger could learn)."""

    def __init__(self, call_id, local_uri, local_tag, remote_uri, remote_tag, target, routes, cseq):
        self.call_id = call_id
        self.local_uri = local_uri
        self.local_tag = local_tag
        self.remote_uri = remote_uri
        self.remote_tag = remote_tag
        self.target = target  # the callee's Contact URI
        self.routes = routes  # the route set, in order
        self.cseq = cseq


class Phone:
    """A scripted SIP phone on its own socket: registers with digest auth, calls (407, ACK,
    INVITE with credentials, 2xx, ACK, BYE), and answers calls to it (180 + 200 with SDP,
    copying Record-Route) and any in-dialog request (200). `received` holds every request
    that reached it."""

    def __init__(self, number, secret, ip, switch, port=0):
        self.number = number
        self.secret = secret
        self.switch = tuple(switch)
        self.domain = "%s:%d" % self.switch
        self.ep = Endpoint(ip, port, on_request=self._answer)
        self.ip, self.port = self.ep.addr
        self.contact = "<sip:%s@%s:%d>" % (number, self.ip, self.port)
        self.reg_call_id = "reg-%s-%s@%s" % (number, token(4), self.ip)
        self.reg_tag = token(4)
        self.reg_cseq = 0
        self._answered = {}  # INVITE branch -> the bytes we answered (for its retransmissions)
        self._lock = threading.Lock()

    @property
    def received(self):
        return self.ep.requests

    def close(self):
        self.ep.close()

    # -- UAC ----------------------------------------------------------------------------------

    def _headers(self, to, from_tag, call_id, cseq, method, extra=()):
        return [
            ("Max-Forwards", "70"),
            ("From", "<sip:%s@%s>;tag=%s" % (self.number, self.domain, from_tag)),
            ("To", to),
            ("Call-ID", call_id),
            ("CSeq", "%d %s" % (cseq, method)),
        ] + list(extra)

    def register(self, expires=3600, timeout=5.0):
        """REGISTER -> 401 -> REGISTER with credentials -> 200."""
        t0 = time.monotonic()
        uri = "sip:%s" % self.domain
        to = "<sip:%s@%s>" % (self.number, self.domain)
        auth = None
        for _attempt in range(2):
            self.reg_cseq += 1
            br = branch()
            extra = [("Contact", self.contact), ("Expires", str(expires))]
            if auth:
                extra.append(("Authorization", auth))
            data = request(
                "REGISTER",
                uri,
                (self.ip, self.port, br),
                self._headers(to, self.reg_tag, self.reg_call_id, self.reg_cseq, "REGISTER", extra),
            )
            final, _ = self.ep.transact(data, self.switch, br, timeout=max(0.1, t0 + timeout - time.monotonic()))
            if final is None:
                return Outcome(False, None, "REGISTER: no final answer in %.1f s" % timeout)
            if final.status == 200:
                return Outcome(True, (time.monotonic() - t0) * 1000, "200")
            if final.status == 401 and auth is None:
                ch = pick_challenge(final)
                if ch is None:
                    return Outcome(False, None, "401 without a usable challenge")
                auth = credentials(ch, "REGISTER", uri, self.number, self.secret)
                continue
            return Outcome(False, None, "REGISTER: %s" % final.status_line())
        return Outcome(False, None, "REGISTER: a second 401 after our credentials")

    def call(self, target, hangup=True, timeout=5.0, hold_s=0.0):
        """Call `target` (a number) through the switch; ok when 2xx + ACK (+ BYE 200 when
        hangup). ms: first INVITE to the 2xx."""
        t0 = time.monotonic()
        ruri = "sip:%s@%s" % (target, self.domain)
        to = "<%s>" % ruri
        call_id = "call-%s-%s@%s" % (self.number, token(6), self.ip)
        ftag = token(4)
        cseq = 1
        body = SDP.format(ip=self.ip, port=self.port + 1)
        auth = None
        for _attempt in range(2):
            br = branch()
            extra = [("Contact", self.contact), ("Content-Type", "application/sdp")]
            if auth:
                extra.append(("Proxy-Authorization", auth))
            data = request(
                "INVITE", ruri, (self.ip, self.port, br), self._headers(to, ftag, call_id, cseq, "INVITE", extra), body
            )
            left = max(0.1, t0 + timeout - time.monotonic())
            final, _ = self.ep.transact(data, self.switch, br, invite=True, timeout=left)
            if final is None:
                return Outcome(False, None, "INVITE: no final answer in %.1f s" % timeout)
            if final.status >= 300:  # ACK it, same branch (17.1.1.3)
                ack = request("ACK", ruri, (self.ip, self.port, br), self._ack_headers(final, ftag, call_id, cseq))
                self.ep.send(ack, self.switch)
            if final.status == 407 and auth is None:
                ch = pick_challenge(final)
                if ch is None:
                    return Outcome(False, None, "407 without a usable challenge")
                auth = credentials(ch, "INVITE", ruri, self.number, self.secret)
                cseq += 1
                continue
            if final.status >= 300:
                return Outcome(False, None, "INVITE: %s" % final.status_line())
            break
        else:
            return Outcome(False, None, "INVITE: a second 407 after our credentials")
        ms = (time.monotonic() - t0) * 1000
        routes = list(reversed(final.all("record-route")))
        contacts = final.all("contact")
        if not contacts:
            return Outcome(False, ms, "2xx without Contact")
        dialog = Dialog(
            call_id,
            "<sip:%s@%s>;tag=%s" % (self.number, self.domain, ftag),
            ftag,
            final.get("to"),
            tag_of(final.get("to")),
            uri_of(contacts[0]),
            routes,
            cseq,
        )
        self.send_ack(dialog)
        if not hangup:
            return Outcome(True, ms, "answered", dialog)
        if hold_s:
            time.sleep(hold_s)
        bye = self.in_dialog(dialog, "BYE", timeout=max(0.5, t0 + timeout - time.monotonic()))
        if bye is None or bye.status != 200:
            return Outcome(False, ms, "BYE: %s" % (bye.status_line() if bye else "no answer"), dialog)
        return Outcome(True, ms, "answered, hung up", dialog)

    def _ack_headers(self, final, ftag, call_id, cseq):
        return [
            ("Max-Forwards", "70"),
            ("From", "<sip:%s@%s>;tag=%s" % (self.number, self.domain, ftag)),
            ("To", final.get("to")),
            ("Call-ID", call_id),
            ("CSeq", "%d ACK" % cseq),
        ]

    def _dialog_request(self, dialog, method, cseq, br, ruri=None, routes=None, extra=(), body=b""):
        ruri = ruri or dialog.target
        routes = dialog.routes if routes is None else routes
        headers = [
            ("Max-Forwards", "70"),
            ("From", dialog.local_uri),
            ("To", dialog.remote_uri),
            ("Call-ID", dialog.call_id),
            ("CSeq", "%d %s" % (cseq, method)),
        ]
        headers += [("Route", r) for r in routes]
        headers += list(extra)
        return request(method, ruri, (self.ip, self.port, br), headers, body)

    def send_ack(self, dialog):
        br = branch()
        data = self._dialog_request(dialog, "ACK", dialog.cseq, br)
        dest = hostport_of(uri_of(dialog.routes[0])) if dialog.routes else hostport_of(dialog.target)
        self.ep.send(data, dest)

    def in_dialog(self, dialog, method, timeout=3.0):
        """A proper in-dialog request (BYE ...) along the route set -> final answer or None."""
        dialog.cseq += 1
        br = branch()
        data = self._dialog_request(dialog, method, dialog.cseq, br)
        dest = hostport_of(uri_of(dialog.routes[0])) if dialog.routes else hostport_of(dialog.target)
        final, _ = self.ep.transact(data, dest, br, invite=(method == "INVITE"), timeout=timeout)
        return final

    # -- UAS ----------------------------------------------------------------------------------

    def _answer(self, req):
        src = req.src
        m = req.method
        if m == "ACK":
            return
        br = req.top_branch()
        with self._lock:
            done = self._answered.get((br, m))
        if done is not None:  # a retransmission: the same answers again
            for data in done:
                self.ep.send(data, src)
            return
        out = []
        if m == "INVITE" and tag_of(req.get("to")) is None:
            tag = token(4)
            rr = [("Record-Route", v) for v in req.lines("record-route")]
            out.append(response_to(req, 180, "Ringing", tag, rr))
            sdp = SDP.format(ip=self.ip, port=self.port + 1)
            hdrs = rr + [("Contact", self.contact), ("Content-Type", "application/sdp")]
            out.append(response_to(req, 200, "OK", tag, hdrs, sdp))
        elif m == "CANCEL":
            out.append(response_to(req, 200, "OK", token(4)))
        else:  # in-dialog INVITE, BYE, INFO, UPDATE, OPTIONS, REFER ...: all fine by us
            out.append(response_to(req, 200, "OK", token(4), [("Contact", self.contact)]))
        with self._lock:
            self._answered[(br, m)] = out
            if len(self._answered) > 4096:
                self._answered.clear()
        for data in out:
            self.ep.send(data, src)


# ---------------------------------------------------------------- phones at work during an attack


def percentile(values, q):
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q / 100.0 * (len(s) - 1)))))
    return s[k]


class PhoneLoop:
    """Two registered phones calling each other in turn, one call every `period` s (the BYE
    comes from the caller, so each phone's address carries half the load), and the caller
    registering again every `register_every`-th call, in a thread, until stop(). Each result
    is (t, kind, Outcome)."""

    def __init__(self, a, b, period=1.0, register_every=4, timeout=5.0):
        self.phones = (a, b)
        self.period = period
        self.register_every = register_every
        self.timeout = timeout
        self.results = []
        self._stop = threading.Event()
        self._thread = None
        self._marks = {}

    def start(self):
        self._thread = threading.Thread(target=self._run, name="phone-loop", daemon=True)
        self._thread.start()
        return self

    def mark(self, name):
        """Remember where the results are now (summary(since=name))."""
        self._marks[name] = len(self.results)

    def _run(self):
        i = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            caller, callee = self.phones[i % 2], self.phones[(i + 1) % 2]
            if self.register_every and i % self.register_every == 0:
                self.results.append((time.monotonic(), "register", caller.register(timeout=self.timeout)))
            self.results.append((time.monotonic(), "call", caller.call(callee.number, timeout=self.timeout)))
            i += 1
            next_at += self.period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self, timeout=15.0):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def summary(self, since=None, until=None):
        lo = self._marks.get(since, 0) if since else 0
        hi = self._marks.get(until, len(self.results)) if until else len(self.results)
        rows = self.results[lo:hi]
        calls = [o for _, k, o in rows if k == "call"]
        regs = [o for _, k, o in rows if k == "register"]
        lat = [o.ms for o in calls if o.ok and o.ms is not None]
        return {
            "calls": len(calls),
            "calls_ok": sum(1 for o in calls if o.ok),
            "registers": len(regs),
            "registers_ok": sum(1 for o in regs if o.ok),
            "median_ms": statistics.median(lat) if lat else None,
            "p95_ms": percentile(lat, 95),
            "failures": [o.detail for o in calls + regs if not o.ok],
        }


def describe(s):
    """One line for a PhoneLoop summary."""
    med = "%.1f" % s["median_ms"] if s["median_ms"] is not None else "-"
    p95 = "%.1f" % s["p95_ms"] if s["p95_ms"] is not None else "-"
    text = "calls %d/%d ok, registrations %d/%d ok, call setup median %s ms, p95 %s ms" % (
        s["calls_ok"],
        s["calls"],
        s["registers_ok"],
        s["registers"],
        med,
        p95,
    )
    if s["failures"]:
        text += "; failures: %s" % "; ".join(sorted(set(s["failures"])))[:600]
    return text


def success_rate(s):
    total = s["calls"] + s["registers"]
    return 100.0 * (s["calls_ok"] + s["registers_ok"]) / total if total else 0.0


# ---------------------------------------------------------------- the provider


class FakeProvider:
    """The [trunk]'s provider on 127.0.0.1:port. REGISTER -> 200 (so the trunk is up), INVITE ->
    100 and then 486 (invite="486") or nothing more (invite="100"), ACK -> nothing, anything
    else -> 200. Every request that is not a REGISTER is kept in reached(), every response that
    arrives (a reflected one) in responses(). Looks like a harness Proc (stop, name, tail) so
    the `started` fixture stops it and prints its log when a test fails."""

    def __init__(self, port, logdir, invite="486"):
        self.name = "fake-provider-%d" % port
        self.port = port
        self.addr = ("127.0.0.1", port)
        self.invite = invite
        self.log_path = os.path.join(str(logdir), self.name + ".log")
        self._log = []
        self._lock = threading.Lock()
        self.ep = Endpoint("127.0.0.1", port, on_request=self._answer)

    def _note(self, text):
        with self._lock:
            self._log.append("%.3f %s" % (time.monotonic(), text))

    def _answer(self, req):
        self._note("%s %s from %s:%d (CSeq %s)" % (req.method, req.uri, req.src[0], req.src[1], req.get("cseq")))
        if req.method == "REGISTER":
            contact = req.get("contact") or ""
            hdrs = [("Contact", contact + ";expires=3600")] if contact else []
            self.ep.send(response_to(req, 200, "OK", token(4), hdrs + [("Expires", "3600")]), req.src)
        elif req.method == "INVITE":
            self.ep.send(response_to(req, 100, "Trying"), req.src)
            if self.invite == "486":
                self.ep.send(response_to(req, 486, "Busy Here", token(4)), req.src)
        elif req.method != "ACK":
            self.ep.send(response_to(req, 200, "OK", token(4)), req.src)

    def registers(self):
        return [m for m in self.ep.requests if m.method == "REGISTER"]

    def reached(self):
        """Every request but REGISTER that arrived, as parsed messages."""
        return [m for m in self.ep.requests if m.method != "REGISTER"]

    def responses(self):
        return list(self.ep.responses)

    def evidence(self, since=0):
        """Lines for an assertion message: what reached the provider (requests from index
        `since` of reached(), and every response)."""
        out = ["%s from %s:%d CSeq %s" % (m.start, m.src[0], m.src[1], m.get("cseq")) for m in self.reached()[since:]]
        out += ["response %s from %s:%d" % (m.start, m.src[0], m.src[1]) for m in self.responses()]
        return out

    def tail(self, n=40):
        with self._lock:
            return "\n".join(self._log[-n:])

    def stop(self, sig=None):
        self.ep.close()
        with self._lock, open(self.log_path, "w", encoding="utf-8") as f:
            f.write("\n".join(self._log) + "\n")


# ---------------------------------------------------------------- many source addresses


def addresses(count, prefix=(127, 66)):
    """`count` distinct loopback addresses 127.66.0.1, 127.66.0.2 ... (skipping .0 and .255)."""
    out = []
    n = 0
    while len(out) < count:
        n += 1
        c, d = divmod(n, 256)
        if d in (0, 255):
            continue
        out.append("%d.%d.%d.%d" % (prefix[0], prefix[1], c, d))
    return out


_STATUS = re.compile(rb"^SIP/2\.0 (\d{3}) ([^\r\n]*)")
_CALLID = re.compile(rb"\r\n(?:Call-ID|i)\s*:\s*([^\r\n]+)", re.I)
_CSEQ = re.compile(rb"\r\nCSeq\s*:\s*(\d+)\s+([A-Za-z]+)", re.I)


class Swarm:
    """UDP sockets on many loopback addresses, one epoll reader thread for them all. Every
    answer is counted by status line and by (Call-ID, CSeq number); on_response(i, data, msg)
    is called in the reader thread when set (msg parsed only then)."""

    def __init__(self, ips, dest, on_response=None):
        self.ips = list(ips)
        self.dest = tuple(dest)
        self.socks = []
        self.on_response = on_response
        self.answers = {}  # (call-id, cseq) -> [status line, ...]
        self.status_lines = {}  # status line -> count
        self.received = 0
        self.received_bytes = 0
        self.sent = 0
        self.sent_bytes = 0
        self._lock = threading.Lock()
        self._ep = select.epoll()
        self._fd = {}
        try:
            for i, ip in enumerate(self.ips):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
                s.bind((ip, 0))
                s.setblocking(False)
                self.socks.append(s)
                self._fd[s.fileno()] = i
                self._ep.register(s.fileno(), select.EPOLLIN)
        except BaseException:
            self.close()
            raise
        self.addrs = [s.getsockname() for s in self.socks]
        self._closed = False
        self._thread = threading.Thread(target=self._read, name="swarm", daemon=True)
        self._thread.start()

    def _read(self):
        while not self._closed:
            try:
                events = self._ep.poll(0.2)
            except (OSError, ValueError):
                return
            for fd, _ in events:
                i = self._fd.get(fd)
                if i is None:
                    continue
                s = self.socks[i]
                while True:
                    try:
                        data = s.recv(65535)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    self._count(i, data)

    def _count(self, i, data):
        m = _STATUS.match(data)
        if not m:
            return
        line = "%s %s" % (m.group(1).decode(), m.group(2).decode("utf-8", "replace"))
        cid = _CALLID.search(data)
        cseq = _CSEQ.search(data)
        key = (cid.group(1).strip().decode("utf-8", "replace") if cid else None, int(cseq.group(1)) if cseq else None)
        with self._lock:
            self.received += 1
            self.received_bytes += len(data)
            self.status_lines[line] = self.status_lines.get(line, 0) + 1
            self.answers.setdefault(key, []).append(line)
        if self.on_response is not None:
            try:
                self.on_response(i, data, Msg(data, self.addrs[i]))
            except OSError:
                pass

    def send(self, i, data, dest=None):
        try:
            self.socks[i].sendto(data, dest or self.dest)
        except (BlockingIOError, InterruptedError):
            return False
        with self._lock:
            self.sent += 1
            self.sent_bytes += len(data)
        return True

    def answers_for(self, key):
        with self._lock:
            return list(self.answers.get(key, ()))

    def close(self):
        self._closed = True
        t = getattr(self, "_thread", None)
        if t is not None:
            t.join(2)
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        try:
            self._ep.close()
        except OSError:
            pass


def pace(count, rate, send, max_seconds=None, answered=None, window=256, stall=0.1):
    """Call send(i) for i in range(count) at up to `rate` per second (in small bursts), stopping
    at max_seconds (default: twice the planned time + 4 s). Returns (sent, seconds).

    With answered() (how many answers came so far) the flood goes as fast as the target takes
    it: at most `window` requests beyond those answered, as long as answers keep coming (any
    within `stall` s); a target that stops answering gets the full `rate`. Faster than the
    target reads would only overflow its socket buffer: the kernel, not the switch, would
    drop the excess, and the switch would see a smaller attack than the one sent."""
    t0 = time.monotonic()
    limit = t0 + (max_seconds if max_seconds is not None else 2.0 * count / rate + 4.0)
    burst = max(1, int(rate / 100))  # ~100 bursts a second
    seen, seen_at = 0, t0
    i = 0
    while i < count:
        now = time.monotonic()
        if now >= limit:
            break
        due = min(count, int((now - t0) * rate) + burst)
        if answered is not None:
            got = answered()
            if got != seen:
                seen, seen_at = got, now
            if now - seen_at < stall or i < window:
                due = min(due, got + window)
        while i < due:
            send(i)
            i += 1
        time.sleep(burst / rate / 2)
    return i, time.monotonic() - t0


def rss_kb(pid):
    """VmRSS of a process in kB, from /proc/PID/status (None when gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# ---------------------------------------------------------------- attack messages


def unauth_request(method, user, src, switch, n, call_id=None):
    """An unauthenticated REGISTER / OPTIONS / INVITE for `user` from src=(ip, port), the n-th
    of a flood: a fresh Call-ID (or `call_id`), tag and branch, as svwar sends them."""
    domain = "%s:%d" % tuple(switch)
    ruri = "sip:%s" % domain if method == "REGISTER" else "sip:%s@%s" % (user, domain)
    headers = [
        ("Max-Forwards", "70"),
        ("From", "<sip:%s@%s>;tag=%x" % (user, domain, n)),
        ("To", "<sip:%s@%s>" % (user, domain)),
        ("Call-ID", call_id or "flood-%d-%s" % (n, token(3))),
        ("CSeq", "1 %s" % method),
    ]
    if method in ("REGISTER", "INVITE"):
        headers.append(("Contact", "<sip:%s@%s:%d>" % (user, src[0], src[1])))
    return request(method, ruri, (src[0], src[1], branch()), headers)

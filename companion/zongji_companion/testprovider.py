"""A tiny SIP provider on this computer, for trying outside calls with `zongji run`: a test tool.

It stands where a real provider would, at the address the site's [trunk] names (the example's
127.0.0.1:5070), and does just enough for the switch to place calls through it:

* REGISTER: 200, granting what was asked (any account: no password is checked);
* INVITE: 100 Trying and 180 Ringing at once, then after `ring_s` a 200 OK whose SDP is the
  caller's own offer sent back (no audio flows: there is nobody at the other end);
* ACK: nothing; BYE: 200, the call ends; CANCEL: 200 and 487 for a call still ringing;
* OPTIONS, and INFO / UPDATE inside a call: 200; any other request: 405.

A retransmitted request gets the answer it got before; there are no timers of its own beyond
the ring delay, so a lost 200 is not resent. `Provider` is sans-IO (datagram in, datagrams
out, log lines for the person watching); `serve` gives it a UDP socket until Ctrl-C. The SIP
messages are read and written by the core's own `zongji.sip.message` and `zongji.sip.parser`.
"""

import os
import select
import socket
import time

from zongji.sip import message
from zongji.sip.parser import parse
from zongji.sip.uri import ParseError

RING_S = 2.0
MAX_CALLS = 256  # the oldest ended calls are forgotten past this


class _Call:
    def __init__(self, invite, addr, tag, number):
        self.invite = invite
        self.addr = addr
        self.tag = tag
        self.number = number
        self.state = "ringing"  # ringing -> answered -> ended, or ringing -> cancelled
        self.final = None  # bytes of the final response, resent on a retransmitted INVITE
        self.answer_at = None


class Provider:
    """The test provider's logic: `datagram(data, addr, now)` and `due(now)` return what to send."""

    def __init__(self, host, port, ring_s=RING_S, log=print):
        self.host = host
        self.port = port
        self.ring_s = ring_s
        self.log = log
        self.calls = {}  # Call-ID -> _Call
        self.registered = {}  # (user, contact) -> expires, to print each binding once
        self._n = 0

    def _tag(self):
        self._n += 1
        return "tp%d%s" % (self._n, os.urandom(3).hex())

    def _reply(self, req, status, tag=None, headers=None, body=b""):
        return message.make_response(req, status, to_tag=tag, headers=headers, body=body).to_bytes()

    def datagram(self, data, addr, now):
        """What to send back for one datagram: a list of (bytes, addr)."""
        try:
            msg = parse(data)
        except ParseError as e:
            req = getattr(e, "request", None)
            if req is not None and req.method != "ACK" and req.get("via") is not None:
                return [(self._reply(req, e.status or 400), addr)]
            return []
        if not isinstance(msg, message.Request):
            return []  # we send no requests, so a response is nobody's
        method = msg.method
        if method == "REGISTER":
            return [(self._register(msg, addr), addr)]
        if method == "INVITE":
            return self._invite(msg, addr, now)
        if method == "ACK":
            return []
        call = self.calls.get(msg.call_id())
        if method == "BYE":
            if call is None:
                return [(self._reply(msg, 481), addr)]
            if call.state != "ended":
                self.log("call to %s ended by the switch (BYE)" % call.number)
            call.state = "ended"
            return [(self._reply(msg, 200), addr)]
        if method == "CANCEL":
            if call is None:
                return [(self._reply(msg, 481), addr)]
            out = [(self._reply(msg, 200, tag=call.tag), addr)]
            if call.state == "ringing":
                call.state = "cancelled"
                call.final = self._reply(call.invite, 487, tag=call.tag)
                out.append((call.final, call.addr))
                self.log("call to %s cancelled before the answer" % call.number)
            return out
        if method == "OPTIONS" or (method in ("INFO", "UPDATE") and call is not None):
            return [(self._reply(msg, 200), addr)]
        return [(self._reply(msg, 405, headers=[("Allow", "REGISTER, INVITE, ACK, BYE, CANCEL, OPTIONS")]), addr)]

    def _register(self, req, addr):
        contacts = req.contacts()
        expires = req.expires(3600)
        user = req.to_addr().uri.user or "?"
        headers = []
        for c in contacts:
            if c.is_star:
                continue
            grant = c.params.get("expires")
            grant = expires if grant is None else grant
            headers.append(("Contact", "<%s>;expires=%s" % (c.uri, grant)))
            key = (user, str(c.uri))
            if int(grant or 0) == 0:
                if self.registered.pop(key, None) is not None:
                    self.log("account %s unregistered" % user)
            elif key not in self.registered:
                self.log("account %s registered from %s:%d (any password is accepted)" % (user, addr[0], addr[1]))
                self.registered[key] = grant
        return self._reply(req, 200, tag=self._tag(), headers=headers)

    def _invite(self, req, addr, now):
        call = self.calls.get(req.call_id())
        if call is not None:  # a retransmission, or a re-INVITE inside the call
            if req.to_addr().tag is None:
                return [(call.final or self._reply(req, 180, tag=call.tag), addr)]
            return [(self._reply(req, 200, headers=self._contact(call), body=req.body), addr)]
        number = req.uri.user or str(req.uri)
        caller = req.from_addr().uri.user or "?"
        call = _Call(req, addr, self._tag(), number)
        call.answer_at = now + self.ring_s
        self._remember(req.call_id(), call)
        self.log("call to %s from %s: ringing, answering in %g s" % (number, caller, self.ring_s))
        return [(self._reply(req, 100), addr), (self._reply(req, 180, tag=call.tag), addr)] + self.due(now)

    def _contact(self, call):
        return [("Contact", "<sip:%s@%s:%d>" % (call.number, self.host, self.port))]

    def _remember(self, call_id, call):
        if len(self.calls) >= MAX_CALLS:
            for cid in list(self.calls):
                if self.calls[cid].state in ("ended", "cancelled"):
                    del self.calls[cid]
                    break
            else:
                del self.calls[next(iter(self.calls))]
        self.calls[call_id] = call

    def due(self, now):
        """The 200 OKs whose ring time is over: a list of (bytes, addr)."""
        out = []
        for call in self.calls.values():
            if call.state == "ringing" and call.answer_at is not None and now >= call.answer_at:
                call.state = "answered"
                sdp = call.invite.body
                headers = self._contact(call)
                if sdp:
                    headers.append(("Content-Type", call.invite.get("content-type") or "application/sdp"))
                call.final = self._reply(call.invite, 200, tag=call.tag, headers=headers, body=sdp)
                out.append((call.final, call.addr))
                self.log("call to %s answered (its SDP echoed; no audio flows)" % call.number)
        return out

    def next_due(self):
        times = [c.answer_at for c in self.calls.values() if c.state == "ringing" and c.answer_at is not None]
        return min(times) if times else None


def serve(host, port, ring_s=RING_S, log=print):
    """Run a Provider on UDP host:port until KeyboardInterrupt. Raises OSError if it can't bind."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
        port = sock.getsockname()[1]
        provider = Provider(host, port, ring_s, log)
        log("test provider listening on %s:%d (UDP); Ctrl-C stops" % (host, port))
        while True:
            now = time.monotonic()
            nxt = provider.next_due()
            wait = None if nxt is None else max(0.0, nxt - now)
            readable, _, _ = select.select([sock], [], [], wait)
            out = []
            if readable:
                try:
                    data, addr = sock.recvfrom(65535)
                except OSError:  # an ICMP error from an earlier send: nothing to read
                    continue
                out = provider.datagram(data, addr[:2], time.monotonic())
            out += provider.due(time.monotonic())
            for data, addr in out:
                try:
                    sock.sendto(data, addr)
                except OSError as e:
                    log("can't send to %s:%d: %s" % (addr[0], addr[1], e.strerror))
    finally:
        sock.close()

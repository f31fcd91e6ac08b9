"""Scripted SIP phones wired to a Switch in memory, on a virtual clock (no sockets, no sleeps).

net = Net(build())                  # a Switch on 10.0.0.1:5060 for the test site
a = net.phone("201", 5061)          # extension 201 at 10.0.0.2:5061, its secret from the site
a.register()                        # REGISTER, answer the 401, expect 200
a.send(a.invite("202"))             # send a request; net.run() delivers everything
a.last("INVITE") / a.got            # what the phone received, parsed, in order
"""

import _sites
from _support import counter_random
from zongji.sip.auth import pick_challenge, respond
from zongji.sip.message import Request, make_request, make_response
from zongji.sip.parser import parse
from zongji.sip.uri import ParseError
from zongji.switch.switch import Switch

SWITCH = ("10.0.0.1", 5060)


class Unparsable:
    """A datagram our own parser refuses, e.g. a 400 that echoes the broken Via it answers."""

    def __init__(self, data):
        first = data.split(b"\r\n", 1)[0].split(b" ")
        self.status = int(first[1]) if first[0] == b"SIP/2.0" and first[1:] and first[1].isdigit() else 0
        self.data = data


def _parse(data):
    try:
        return parse(data)
    except ParseError:
        return Unparsable(data)


class Net:
    def __init__(self, site, max_transactions=256):
        self.now = 1000
        self.sw = Switch(
            site,
            SWITCH[0],
            SWITCH[1],
            secret_key=b"test-key-0123456",
            random_bytes=counter_random(),
            max_transactions=max_transactions,
        )
        self.site = site
        self.phones = {}
        self.events = []
        self.lost = []  # datagrams to addresses no phone has

    def phone(self, number, port, secret=None):
        ext = self.site.extension(number)
        p = Phone(
            self,
            number,
            ("10.0.0.%d" % (len(self.phones) + 2), port),
            secret if secret is not None else (_sites.secret(number) if ext else "x"),
        )
        self.phones[p.addr] = p
        return p

    def deliver(self, data, addr):
        self.sw.receive_datagram(data, addr, self.now)
        self.run()

    def run(self):
        """Carry datagrams until nothing moves; phones may answer automatically."""
        for _ in range(1000):
            out = self.sw.datagrams_to_send()
            if not out:
                break
            for data, addr in out:
                p = self.phones.get((addr[0], addr[1]))
                if p is None:
                    self.lost.append((data, addr))
                else:
                    p.receive(_parse(data))
        self.events.extend(self.sw.take_events())

    def advance(self, ms):
        """Let virtual time pass, firing the switch's timers on the way."""
        end = self.now + ms
        for _ in range(100000):
            t = self.sw.next_timer()
            if t is None or t > end:
                break
            self.now = max(self.now, t)
            self.sw.handle_timer(self.now)
            self.run()
            # a timer that fires without moving on would spin a real shell at 100 % CPU
            assert self.sw.next_timer() is None or self.sw.next_timer() > self.now or t < self.now, "timer livelock"
        self.now = end


class Phone:
    def __init__(self, net, number, addr, secret):
        self.net = net
        self.number = number
        self.addr = addr
        self.secret = secret
        self.got = []
        self.cseq = 1
        self.calls = 0
        self.auto = {}  # method -> status to answer incoming requests with automatically

    @property
    def contact(self):
        return "<sip:%s@%s:%d>" % (self.number, self.addr[0], self.addr[1])

    def receive(self, msg):
        self.got.append(msg)
        if isinstance(msg, Request) and msg.method in self.auto and msg.method != "ACK":
            status = self.auto[msg.method]
            resp = make_response(msg, status, to_tag="callee%s" % self.number)
            if status == 200 and msg.method == "INVITE":
                resp.add("contact", self.contact)
                for rr in msg.get_all("record-route"):
                    resp.add("record-route", rr)
                resp.body = b"v=0\r\n"
                resp.add("content-type", "application/sdp")
            self.send(resp)

    def send(self, msg):
        self.net.deliver(msg.to_bytes(), self.addr)

    def last(self, what):
        """The newest request with method `what`, or response with status `what`."""
        for msg in reversed(self.got):
            if isinstance(what, str) and isinstance(msg, Request) and msg.method == what:
                return msg
            if isinstance(what, int) and not isinstance(msg, Request) and msg.status == what:
                return msg
        return None

    def statuses(self):
        return [m.status for m in self.got if not isinstance(m, Request)]

    def _request(self, method, to_number, call_id, headers=(), body=b""):
        self.cseq += 1
        uri = "sip:%s@%s:%d" % (to_number, SWITCH[0], SWITCH[1])
        via = "SIP/2.0/UDP %s:%d;branch=z9hG4bK%s%d%d;rport" % (
            self.addr[0],
            self.addr[1],
            self.number,
            self.cseq,
            self.net.now,
        )
        return make_request(
            method,
            uri,
            "<sip:%s@%s>;tag=t%s" % (self.number, SWITCH[0], self.number),
            "<sip:%s@%s>" % (to_number, SWITCH[0]),
            call_id,
            self.cseq,
            via=via,
            contact=self.contact,
            headers=list(headers),
            body=body,
        )

    def register(self, expires=3600):
        # one Call-ID per device, as phones keep it: a desk phone and a softphone differ
        req = self._request("REGISTER", self.number, "reg-%s-%d" % (self.number, self.addr[1]), [("Expires", expires)])
        self.send(req)
        challenge = self.got[-1]
        assert challenge.status == 401, challenge
        self.send(self.answer(req, challenge, "WWW-Authenticate", "Authorization"))
        return self.got[-1]

    def answer(self, req, challenge, ask, give, password=None):
        """Resend `req` (new CSeq, new branch) with credentials for `challenge`."""
        chal = pick_challenge(challenge.get_all(ask))
        again = Request(req.method, req.uri)
        again.headers = list(req.headers)
        again.body = req.body
        self.cseq += 1
        again.set("cseq", "%d %s" % (self.cseq, req.method))
        again.set(
            "via", "SIP/2.0/UDP %s:%d;branch=z9hG4bKa%s%d;rport" % (self.addr[0], self.addr[1], self.number, self.cseq)
        )
        value = respond(
            chal,
            req.method,
            str(req.uri),
            self.number,
            self.secret if password is None else password,
            "cn%d" % self.cseq,
            1,
        )
        again.set(give, value)
        return again

    def invite(self, to_number, password=None):
        """An authenticated INVITE as phones send it: first unauthenticated, then after 407."""
        self.calls += 1
        req = self._request(
            "INVITE",
            to_number,
            "call-%s-%d" % (self.number, self.calls),
            body=b"v=0\r\no=- 1 1 IN IP4 %s\r\n" % self.addr[0].encode(),
        )
        req.add("content-type", "application/sdp")
        self.send(req)
        challenge = self.got[-1]
        assert challenge.status == 407, challenge
        self.send(ack_for_failure(req, challenge))
        auth = self.answer(req, challenge, "Proxy-Authenticate", "Proxy-Authorization", password)
        self.send(auth)
        return auth

    def ack_2xx(self, invite, ok):
        """The ACK for a 2xx: a new transaction along the Record-Route set (reversed for UAC)."""
        routes = list(reversed(ok.get_all("record-route")))
        target = ok.contacts()[0].uri
        ack = make_request(
            "ACK",
            target,
            invite.get("from"),
            ok.get("to"),
            invite.call_id(),
            invite.cseq()[0],
            via="SIP/2.0/UDP %s:%d;branch=z9hG4bKack%s%d" % (self.addr[0], self.addr[1], self.number, self.net.now),
        )
        for r in routes:
            ack.add("route", r)
        self.send(ack)
        return ack

    def bye(self, dialog_req, ok, uac=True):
        """BYE inside the dialog of INVITE `dialog_req` answered by `ok`."""
        self.cseq += 1
        if uac:
            routes = list(reversed(ok.get_all("record-route")))
            target = ok.contacts()[0].uri
            frm, to = dialog_req.get("from"), ok.get("to")
        else:  # the callee hangs up: routes in received order, to the caller's Contact
            routes = dialog_req.get_all("record-route")
            target = dialog_req.contacts()[0].uri
            frm, to = ok.get("to"), dialog_req.get("from")
        bye = make_request(
            "BYE",
            target,
            frm,
            to,
            dialog_req.call_id(),
            self.cseq,
            via="SIP/2.0/UDP %s:%d;branch=z9hG4bKbye%s%d" % (self.addr[0], self.addr[1], self.number, self.cseq),
        )
        for r in routes:
            bye.add("route", r)
        self.send(bye)
        return bye


def ack_for_failure(invite, resp):
    """The ACK for a non-2xx final response: same branch as the INVITE (17.1.1.3)."""
    ack = make_request(
        "ACK",
        invite.uri,
        invite.get("from"),
        resp.get("to"),
        invite.call_id(),
        invite.cseq()[0],
        via=invite.get_all("via")[0],
    )
    return ack


def registered(site, *numbers):
    """A Net for `site` with a phone per number (ports 5061, 5062 ...), each registered."""
    net = Net(site)
    phones = []
    for i, n in enumerate(numbers):
        p = net.phone(n, 5061 + i)
        assert p.register().status == 200
        phones.append(p)
    return net, phones

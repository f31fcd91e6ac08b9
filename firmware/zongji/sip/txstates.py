"""The four SIP transaction state machines over UDP (RFC 3261 section 17, as RFC 6026 fixed it).
TransactionLayer (transaction.py) owns matching, the send queue and the clock; this module owns
what one transaction does; txevents.py holds what they tell the transaction user (TU).

Theory of operation
-------------------
A transaction is one request and the responses to it (section 17). Over UDP the client side
retransmits the request until a response arrives; the server side absorbs retransmitted requests
by resending its latest response. Both linger after the final response long enough to soak up
stragglers, then end and are forgotten.

INVITE client (17.1.1.2, figure 5; RFC 6026 section 8.4)
  calling     the INVITE went out. Timer A retransmits it (T1, doubling each time); Timer B
              (64*T1) gives up and tells the TU.
  proceeding  a 1xx stopped A and B. No timer: the final response may take minutes. The TU
              bounds the wait by sending CANCEL (section 9.1): 64*T1 after that the transaction
              times out (timer "cancel").
  completed   a 300-699 came: the transaction ACKs it itself (17.1.1.3) and ACKs each
              retransmission of it again, until Timer D (32 s): from here on the layer's
              compact record (transaction.py, "Lingering") does that, not this object.
  accepted    a 2xx came and went to the TU, which sends its own ACK (13.2.2.4). Further 2xx
              (retransmissions, forks) go to the TU too, until Timer M (64*T1). RFC 3261 ended
              the transaction at the 2xx, so those looked stray; RFC 6026 keeps it.
non-INVITE client (17.1.2.2, figure 6)
  trying      Timer E retransmits (T1, doubling, capped at T2); Timer F (64*T1) gives up.
  proceeding  a 1xx came: E retransmits every T2 until F.
  completed   a final response came; retransmissions of it are absorbed until Timer K (T4),
              by the layer's compact record.
INVITE server (17.2.1, figure 7; RFC 6026 section 7.1)
  proceeding  the TU has the INVITE. 100 Trying goes out after trying_delay (200 ms) unless the
              TU answered first; a retransmitted INVITE gets the latest provisional again.
  completed   a 300-699 went out. It is resent on Timer G (T1, doubling, capped at T2) and for
              each retransmitted INVITE, until the ACK comes or Timer H (64*T1) fires and the
              TU is told.
  confirmed   the ACK came; later ACKs are absorbed until Timer I (T4).
  accepted    a 2xx went out. The TU retransmits it itself (13.3.1.4) through respond();
              retransmitted INVITEs are absorbed and ACKs go to the TU, until Timer L (64*T1).
              The ACK for a 2xx normally carries a new branch and so matches no transaction at
              all: the layer hands it to the TU as AckReceived with tx None.
non-INVITE server (17.2.2, figure 8)
  trying      the TU has the request; retransmissions are dropped until it answers.
  proceeding  a 1xx went out; a retransmission gets it again.
  completed   a final response went out; a retransmission gets it again, until Timer J (64*T1),
              from the layer's compact record: the transaction itself has left the tables.
In calling, proceeding, trying and completed a transport error reported by the shell ends the
transaction and the TU is told (17.1.1.2, 17.1.2.2, 17.2.4).

The tables below say which input moves which state where; the code beside them says what is
sent and which timers are armed. An input a state does not list is absorbed when the peer sent
it and refused (respond() returns False) when the TU did. Each transaction has two timer slots:
a retransmit timer (A, E, G, or the 100 Trying delay) and an ending timer (B, D, F, H, I, J, K,
L, M, "cancel"); deadlines are absolute milliseconds on the caller's clock. Arming one pushes
it on the layer's timer heap. A transaction handed to a compact record stays in completed
state for the TU that holds it (it refuses a second response) and never reaches terminated:
the J, K and D rows below are what the record does.
"""

from zongji.sip.message import Request, make_response
from zongji.sip.txevents import Absorbed, AckReceived, ResponseReceived, Timeout, TransportError
from zongji.sip.uri import ParseError

CALLING = "calling"
TRYING = "trying"
PROCEEDING = "proceeding"
COMPLETED = "completed"
CONFIRMED = "confirmed"
ACCEPTED = "accepted"
TERMINATED = "terminated"

# machine -> state -> input -> next state. Inputs: "1xx", "2xx", "300-699" (a response the
# client received, or the server's TU sent); "request" (a retransmission), "ack"; a timer's
# name; "error" (transport). Terminated has no row: nothing moves it.
INVITE_CLIENT = {
    CALLING: {
        "A": CALLING,
        "B": TERMINATED,
        "1xx": PROCEEDING,
        "2xx": ACCEPTED,
        "300-699": COMPLETED,
        "error": TERMINATED,
    },
    PROCEEDING: {
        "1xx": PROCEEDING,
        "2xx": ACCEPTED,
        "300-699": COMPLETED,
        "cancel": TERMINATED,
        "error": TERMINATED,
    },
    COMPLETED: {"300-699": COMPLETED, "D": TERMINATED, "error": TERMINATED},
    ACCEPTED: {"2xx": ACCEPTED, "M": TERMINATED},
}
NON_INVITE_CLIENT = {
    TRYING: {
        "E": TRYING,
        "F": TERMINATED,
        "1xx": PROCEEDING,
        "2xx": COMPLETED,
        "300-699": COMPLETED,
        "error": TERMINATED,
    },
    PROCEEDING: {
        "E": PROCEEDING,
        "F": TERMINATED,
        "1xx": PROCEEDING,
        "2xx": COMPLETED,
        "300-699": COMPLETED,
        "error": TERMINATED,
    },
    COMPLETED: {"K": TERMINATED},
}
INVITE_SERVER = {
    PROCEEDING: {
        "request": PROCEEDING,
        "100": PROCEEDING,
        "1xx": PROCEEDING,
        "2xx": ACCEPTED,
        "300-699": COMPLETED,
        "error": TERMINATED,
    },
    COMPLETED: {"request": COMPLETED, "ack": CONFIRMED, "G": COMPLETED, "H": TERMINATED, "error": TERMINATED},
    CONFIRMED: {"I": TERMINATED},
    ACCEPTED: {"2xx": ACCEPTED, "ack": ACCEPTED, "L": TERMINATED},
}
NON_INVITE_SERVER = {
    TRYING: {"1xx": PROCEEDING, "2xx": COMPLETED, "300-699": COMPLETED, "error": TERMINATED},
    PROCEEDING: {"request": PROCEEDING, "1xx": PROCEEDING, "2xx": COMPLETED, "300-699": COMPLETED, "error": TERMINATED},
    COMPLETED: {"request": COMPLETED, "J": TERMINATED, "error": TERMINATED},
}
_NONE = {}


def _status_input(status):
    return "1xx" if status < 200 else "2xx" if status < 300 else "300-699"


# -- transactions -----------------------------------------------------------------------------


class Transaction:
    """One transaction. The TU reads `method`, `state`, `addr` (where the request went, or
    where responses go) and `request`, and may keep its own data in `tu`; the rest is the
    layer's. Once the final response is through, a transaction only lingers to absorb
    retransmissions: it then drops `request` (None) and keeps just the bytes it may resend, as
    a parsed message costs kilobytes on the device. Keep your own reference if you need it."""

    def __init__(self, layer, table, key, request, addr, seq):
        self.layer = layer
        self.table = table
        self.state = CALLING if table is INVITE_CLIENT else PROCEEDING if table is INVITE_SERVER else TRYING
        self.key = key
        self.request = request
        self.method = request.method
        self.addr = addr
        self.tu = None
        self.seq = seq  # creation order: timers due together fire in this order
        self._wire = None  # client: the request; server: the latest response (bytes)
        self._retx = self._retx_at = None
        self._interval = 0
        self._end = self._end_at = None

    def __repr__(self):
        return "<%s %s %s>" % (type(self).__name__, self.method, self.state)

    @property
    def is_invite(self):
        return self.table is INVITE_CLIENT or self.table is INVITE_SERVER

    def _go(self, inp):
        nxt = self.table.get(self.state, _NONE).get(inp)
        if nxt is not None:
            self.state = nxt
            if nxt == TERMINATED:
                self._retx_at = self._end_at = None
                self.layer._remove(self)
        return nxt

    def _send(self, data):
        self.layer._out.append((data, self.addr))

    def _arm_retx(self, name, ms, now):
        self._retx = name
        self._interval = ms = max(ms, 1)  # T1 = 0 must not spin handle_timer()
        self._retx_at = at = now + ms
        self.layer._schedule(self, at)

    def _arm_end(self, name, ms, now):
        self._end = name
        self._end_at = at = now + ms
        self.layer._schedule(self, at)

    def deadline(self):
        """The next timer's deadline (ms) or None."""
        r = self._retx_at
        e = self._end_at
        if r is None:
            return e
        return r if e is None or r < e else e

    def _fire(self, now):
        # run the timer that is due first (the ending one on a tie: it makes retransmitting moot)
        if self._end_at is not None and (self._retx_at is None or self._end_at <= self._retx_at):
            name = self._end
            self._end_at = None
        else:
            name = self._retx
            self._retx_at = None
        return self._on_timer(name, now)

    def _fail(self):
        return TransportError(self) if self._go("error") == TERMINATED else None


class ClientTransaction(Transaction):
    def _start(self, now):
        T1 = self.layer.T1
        self._wire = self.request.to_bytes()
        self._send(self._wire)
        if self.table is INVITE_CLIENT:
            self._arm_retx("A", T1, now)
            self._arm_end("B", 64 * T1, now)
        else:
            self._arm_retx("E", T1, now)
            self._arm_end("F", 64 * T1, now)

    def _on_response(self, resp, now):
        old = self.state
        new = self._go(_status_input(resp.status))
        if new is None:
            return Absorbed(self, resp)
        if old == COMPLETED:  # INVITE: the 300-699 again, so our ACK was lost: ACK again
            self._send(self._wire)
            return Absorbed(self, resp)
        if new == PROCEEDING:
            if old == CALLING:
                self._retx_at = self._end_at = None  # stop A and B
        elif new == COMPLETED:
            self._retx_at = None
            self._end_at = None
            if self.table is INVITE_CLIENT:
                ack = ack_for(self.request, resp).to_bytes()  # resent for each 300-699
                self._send(ack)
                self.layer._keep(self, self.layer.timer_d, ack, now)  # until Timer D
            else:
                self.layer._keep(self, self.layer.T4, None, now)  # until Timer K
            self._wire = self.request = None
        elif new == ACCEPTED and old != ACCEPTED:
            self._retx_at = self._end_at = None
            self._wire = self.request = None
            self.layer._keep(self, 64 * self.layer.T1, None, now, True)  # until Timer M
        return ResponseReceived(self, resp)

    def _on_timer(self, name, now):
        new = self._go(name)
        if new == TERMINATED:
            return Timeout(self, name) if name in ("B", "F", "cancel") else None
        if new is None:  # pragma: no cover - a timer the state no longer has
            return None
        self._send(self._wire)
        if name == "A":
            self._arm_retx("A", 2 * self._interval, now)
        elif self.state == TRYING:
            self._arm_retx("E", min(2 * self._interval, self.layer.T2), now)
        else:
            self._arm_retx("E", self.layer.T2, now)
        return None

    def _cancelled(self, now):
        # section 9.1: no final response 64*T1 after our CANCEL -> give the INVITE up
        if self.state == PROCEEDING:
            self._arm_end("cancel", 64 * self.layer.T1, now)


class ServerTransaction(Transaction):
    to_tag = None  # the To tag of our final response: RFC 2543 ACKs are matched by it
    _gone_at = None  # accepted and handed to a record: when Timer L would have ended it

    def _start(self, now):
        if self.table is INVITE_SERVER:
            delay = self.layer.trying_delay
            if delay == 0:
                self._trying()
            elif delay is not None:
                self._arm_retx("100", delay, now)

    def _trying(self):
        self._retx_at = None
        self._wire = make_response(self.request, 100).to_bytes()
        self._send(self._wire)

    def _on_request(self, req, addr, now):
        old = self.state
        if req.method == "ACK":
            new = self._go("ack")
            if new == CONFIRMED and old == COMPLETED:
                self._retx_at = self._wire = None  # stop G; I replaces H
                self._arm_end("I", self.layer.T4, now)
            elif new == ACCEPTED:
                return AckReceived(req, addr, self)
            return Absorbed(self, req)
        if self._go("request") is not None:
            if self._wire is None:
                self._trying()  # an INVITE again before our 100 went: send it now
            else:
                self._send(self._wire)
        return Absorbed(self, req)

    def _respond(self, resp, now):
        if self._gone_at is not None and now >= self._gone_at:  # accepted, and Timer L is over
            self.state = TERMINATED
            return False
        old = self.state
        new = self._go(_status_input(resp.status))
        if new is None:
            return False
        self._wire = resp.to_bytes()
        self._send(self._wire)
        if self._retx == "100":
            self._retx_at = None
        if resp.status >= 200 and self.table is INVITE_SERVER:
            self.to_tag = _to_tag(resp)
        if new == ACCEPTED:
            self._wire = None  # the TU, not the transaction, resends a 2xx
        if resp.status >= 200:
            self.request = None
        if new == COMPLETED and old != COMPLETED:
            T1 = self.layer.T1
            if self.table is INVITE_SERVER:
                self._arm_retx("G", T1, now)
                self._arm_end("H", 64 * T1, now)
            else:  # until Timer J the layer's compact record resends it
                self.layer._keep(self, 64 * T1, self._wire, now)
                self._wire = None
        elif new == ACCEPTED and old != ACCEPTED:
            T1 = self.layer.T1
            if self.key[0]:  # an RFC 3261 branch: until Timer L the layer's record absorbs
                self._gone_at = now + 64 * T1
                self._retx_at = self._end_at = None
                self.layer._keep(self, 64 * T1, None, now, True)
            else:  # RFC 2543 matching (by To tag) stays with the transaction
                self._arm_end("L", 64 * T1, now)
        return True

    def _on_timer(self, name, now):
        new = self._go(name)
        if name == "100":
            self._trying()
        elif name == "G":
            self._send(self._wire)
            self._arm_retx("G", min(2 * self._interval, self.layer.T2), now)
        elif new == TERMINATED and name == "H":
            return Timeout(self, "H")
        return None


def _to_tag(resp):
    try:
        to = resp.to_addr()
    except ParseError:
        return None
    return to.tag if to is not None else None


def derived_request(request, method, to):
    """A request that shares the transaction of `request` (RFC 3261 sections 9.1 and 17.1.1.3):
    same Request-URI, top Via only, From, Call-ID, CSeq number and Route; To as given."""
    headers = [("via", request.get("via")), ("max-forwards", "70"), ("from", request.get("from")), ("to", to)]
    headers.append(("call-id", request.get("call-id")))
    headers.append(("cseq", "%d %s" % (request.cseq()[0], method)))
    for route in request.get_all("route"):
        headers.append(("route", route))
    return Request(method, request.uri, headers)


def ack_for(invite, resp):
    """The ACK the INVITE client transaction sends for a 300-699 (section 17.1.1.3)."""
    return derived_request(invite, "ACK", resp.get("to"))

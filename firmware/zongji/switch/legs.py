"""A call's legs and relayed requests: the transaction users of the switch's client transactions.

The transaction layer hands each client transaction's events to the object in `tx.tu`:

    tu.on_response(tx, resp, now_ms)     a response (1xx, 2xx, or a final failure)
    tu.on_timeout(tx, now_ms, why)       Timer B/F, the CANCEL timeout, or a transport error

Three kinds sit there: a Leg (one contact of a phone rung for a call, or our call out through
the trunk, gateway.TrunkLeg), a Relay (an in-dialog request passed on to the other party) and
the trunk registration. Nobody inspects types to route an event.

Timer C (RFC 3261 16.6 step 11, 16.8). An INVITE client transaction in proceeding has no timer
of its own: a callee, or a provider, that answers only 100 Trying would hold it, and its call,
for good. Every INVITE leg and relayed re-INVITE carries `timer_c`, restarted by each
provisional response. When it fires a leg that heard anything is CANCELled, and 64*T1 later
the transaction ends on its own ("cancel" timeout); a relayed re-INVITE is answered 408.
"""

from zongji.call import state
from zongji.sip.message import Response
from zongji.sip.transaction import CALLING, PROCEEDING, TransactionError, make_cancel

TIMER_C_MS = 181000  # "greater than 3 minutes" (16.6 step 11)


class Leg:
    """One forked branch of a Call: a phone's contact (the proxy's), or gateway.TrunkLeg."""

    trunk = False

    def __init__(self, owner, call, number, now):
        self.owner = owner  # the Proxy or the Gateway: it acts on what the leg hears
        self.call = call
        self.number = number  # the extension (or outside number) rung, for the call record
        self.request = None
        self.addr = None
        self.tx = None
        self.life = state.Lifecycle(now)
        self.heard = False  # any response, 100 included: a CANCEL may now go (9.1)
        self.final = None  # the final status, once there is one (487 once CANCELled)
        self.cancel_pending = False  # CANCEL asked for before the callee said anything
        self.cancel_sent = False
        self.won = False  # this leg answered first: its 2xx retransmissions go to the caller
        self.timer_c = now + TIMER_C_MS
        self.early = None  # dialog.Dialog of the early dialog its 1xx with a To tag set up

    # -- the transaction user interface --

    def on_response(self, tx, resp, now):
        if tx is self.tx:
            self.owner.leg_response(self, resp, now)

    def on_timeout(self, tx, now, why=None):
        if tx is self.tx:
            self.owner.leg_failed(self, now)

    # -- for the owner --

    def provisional(self, now, status=180):
        """A 1xx: note it (CANCEL is allowed from now), restart Timer C (101-199 only, 16.7
        step 2: a callee sending 100 Trying for ever must not hold the call); True when it was
        the leg's first sign of life and a CANCEL was waiting for it."""
        self.heard = True
        if status > 100:
            self.timer_c = now + TIMER_C_MS
        return self.cancel_pending

    def send_cancel(self, sw, now):
        """CANCEL this leg (9.1): at once when it answered anything, else once it does. The
        INVITE transaction then ends by the callee's 487 or 64*T1 later on its own. Whether
        to send is the transaction's business, not `final`'s: a leg the call already gave up
        (a BYE from the provider before the answer, Timer C) still has its INVITE out, and
        only a CANCEL ends an INVITE in proceeding."""
        tx = self.tx
        if tx is None or self.cancel_sent:
            return
        if tx.state != CALLING and tx.state != PROCEEDING:
            return  # it had its final answer: nothing to cancel
        if not self.heard or tx.state != PROCEEDING:  # 9.1: only once it said something
            self.cancel_pending = True
            return
        self.cancel_pending = False
        self.cancel_sent = True
        if self.final is None:
            self.final = 487
        self.timer_c = None
        self.life.go(state.CANCEL, now)
        try:
            sw.tl.send_request(make_cancel(self.request), self.addr, now)
        except TransactionError:
            # no room for the CANCEL: give the INVITE up rather than hold it in proceeding for
            # good (the callee's own timers end its side)
            sw.count("cancel not sent: transaction table full")
            sw.tl.abandon(self.tx)

    def timer_c_fired(self, sw, now):
        """Timer C: CANCEL what heard anything; what heard nothing waits for Timer B."""
        self.timer_c = None
        if self.final is None and self.heard:
            self.send_cancel(sw, now)
            self.owner.leg_failed(self, now, 408)


class Relay:
    """An in-dialog request passed on to the other party: its responses go back to the sender."""

    def __init__(self, sw, server_tx, method, now, call=None):
        self.sw = sw
        self.server_tx = server_tx
        self.tx = None
        self.final = False  # the sender has its final answer
        self.passed_2xx = False  # and it was a 2xx: retransmissions of it are passed on too
        self.timer_c = now + TIMER_C_MS if method == "INVITE" else None
        self.call = call  # its call counts the requests in flight (call.relaying)
        if call is not None:
            call.relaying += 1

    def _over(self):
        self.final = True
        if self.call is not None:
            self.call.relaying -= 1
            self.call = None

    def on_response(self, tx, resp, now):
        if self.final:
            if self.passed_2xx and 200 <= resp.status < 300:
                # a 2xx retransmission (the callee has not had its ACK): forwarded statelessly
                # (16.7 step 10, RFC 6026), or the sender never ACKs and the callee hangs up
                self.sw.tl.send_stateless(strip_top_via(resp), self.server_tx.addr)
            return  # after our own 408 (Timer C), the callee's late answer has nowhere to go
        if resp.status >= 200:
            self.timer_c = None
            self.passed_2xx = resp.status < 300
            self._over()
        elif resp.status == 100:
            return  # hop by hop: neither passed on (16.7 step 3) nor a reason to wait longer
        elif self.timer_c is not None:
            self.timer_c = now + TIMER_C_MS
        self.sw.tl.respond(self.server_tx, strip_top_via(resp), now)

    def on_timeout(self, tx, now, why=None):
        self.timer_c = None
        self._give_up(now)

    def timer_c_fired(self, sw, now):
        """A re-INVITE answered only 1xx for 3 minutes: CANCEL it and answer its sender 408."""
        self.timer_c = None
        if self.final:
            return
        req = self.tx.request if self.tx is not None else None
        if req is not None:
            try:
                sw.tl.send_request(make_cancel(req), self.tx.addr, now)
            except TransactionError:
                sw.count("cancel not sent: transaction table full")
                sw.tl.abandon(self.tx)
        self._give_up(now)

    def _give_up(self, now):
        if not self.final:
            self._over()
            self.sw.reply(self.server_tx, 408, now)


def strip_top_via(resp):
    """A copy of resp without our Via on top (16.7 step 3), to pass back toward the sender."""
    out = Response(resp.status, resp.reason, body=resp.body)
    out.headers = list(resp.headers)
    for i in range(len(out.headers)):
        if out.headers[i][0] == "via":
            del out.headers[i]
            break
    return out

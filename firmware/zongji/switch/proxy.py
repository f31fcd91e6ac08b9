"""Calls between phones: a transaction-stateful forking proxy (RFC 3261 section 16).

An INVITE from an authenticated phone is routed by the dial plan and the caller's class of
service, then rung by the target's ring plan (zongji.call.ringplan): each stage forks the INVITE to
every registered contact of its legs in parallel, for the stage's seconds, then CANCELs what
still rings and starts the next stage (in-order groups, follow-me). The first 2xx wins and
every other branch is CANCELled (16.7 step 10); when all stages fail the caller gets the best
failure (16.7 step 6: 486 over 480 over the rest).

The proxy Record-Routes (16.6 step 4), so BYE, re-INVITE (hold/resume) and the ACK for a 2xx
come back through it; it forwards them by loose routing (16.4, 16.12) only for dialogs it
set up, so nobody can relay through the switch. SDP passes untouched: media flows phone to
phone. Every call leaves a record in the switch's CDR log.

Trunk legs (a colleague's mobile) go out through the trunk gateway when the switch has one;
without it they are skipped, as an unregistered desk phone is.
"""

from zongji.call import ringplan
from zongji.sip.message import Request, Response, make_response
from zongji.sip.transaction import TransactionError, make_cancel
from zongji.site import dialplan

MAX_CALLS = 32  # calls being set up or in progress; the device's budget is 2 KB each
MAX_RING_MS = 120000  # a last stage without its own time rings this long
MAX_CALL_MS = 4 * 3600 * 1000  # an answered call we never saw end is forgotten after this
SETTLED_MS = 40000  # after 64*T1 the INVITE server transaction is gone: drop our reference
_PREFERENCE = (486, 600, 603, 480, 404, 408)  # 16.7 step 6, as phones understand it


def clone(req):
    """A copy of a request whose headers can be changed without touching the original."""
    out = Request(req.method, req.uri.copy() if hasattr(req.uri, "copy") else req.uri)
    out.headers = list(req.headers)
    out.body = req.body
    return out


class Branch:
    def __init__(self, call, number, request, addr):
        self.call = call
        self.number = number  # the extension rung, for the call record
        self.request = request
        self.addr = addr
        self.tx = None
        self.provisional = False
        self.final = None  # status once answered
        self.cancel_pending = False


class Call:
    def __init__(self, server_tx, invite, caller, target, plan, now):
        self.server_tx = server_tx
        self.invite = invite
        self.caller = caller
        self.target = target
        self.plan = plan
        self.stage = -1
        self.stage_end = None
        self.branches = []
        self.best = None  # the best failure response so far
        self.answered_by = None
        self.done = False  # the caller has its final response
        self.start_ms = now
        self.answer_ms = None
        self.call_id = invite.call_id()
        self.route = ""
        self.bridge = None  # the trunk branch that answered: in-dialog requests go to the gateway
        self.back = None  # bridged calls: (phone's contact, To, From, Call-ID) to hang it up


class Proxy:
    max_calls = MAX_CALLS  # host mode raises it (Switch(max_calls=...))

    def __init__(self, switch):
        self.sw = switch
        self.calls = {}  # Call-ID -> Call, while ringing and while the dialog lasts

    # ---- initial INVITE ----------------------------------------------------------------------

    def invite(self, tx, req, caller, now):
        """Route an authenticated INVITE from extension `caller` (an Extension)."""
        sw = self.sw
        if self._full(tx, now):
            return
        number = req.uri.user or ""
        status, target = sw.site.dialplan.match(number)
        call = Call(tx, req, caller.number, target or ("number", number), [], now)
        call.route = _describe(call.target)
        refuse = None
        if status == dialplan.NEED_MORE:
            refuse = (484, None)
        elif status == dialplan.NO_MATCH:
            refuse = (404, None)
        else:
            verdict = sw.site.dialplan.authorize(caller.cls or sw.site.default_class, target)
            if verdict == dialplan.NEED_PIN:
                refuse = (403, "PIN Required")
            elif verdict != dialplan.OK:
                refuse = (403, "Not Allowed By Class Of Service")
            elif target[0] == "menu":
                refuse = (480, "Menus Answer Outside Calls Only")
        if refuse is not None:
            call.done = True
            sw.reply(tx, refuse[0], now, reason=refuse[1])
            sw.record(call, now, refuse[0])
            return
        self._start(call, target, now)

    def inbound(self, tx, req, target, did, now):
        """A call from the provider to one of our numbers (already mapped from its DID)."""
        sender = req.from_addr()
        caller = (sender.uri.user if sender is not None and sender.uri.is_sip else None) or "anonymous"
        if self._full(tx, now):
            return
        call = Call(tx, req, caller[:32], target, [], now)
        call.route = "did %s -> %s" % (did, _describe(target))
        self._start(call, target, now)

    def _full(self, tx, now):
        """Over max_calls: 503 with Retry-After, and True."""
        if len(self.calls) < self.max_calls:
            return False
        self.sw.reply(tx, 503, now, (("Retry-After", 30),))
        return True

    def _start(self, call, target, now):
        call.plan = ringplan.ring_plan(self.sw.site, target)
        call.server_tx.tu = call
        self.calls[call.call_id] = call
        self._next_stage(call, now)

    def _next_stage(self, call, now):
        """Start ringing the next stage that has anyone to ring; answer the caller when none has."""
        while True:
            call.stage += 1
            if call.stage >= len(call.plan):
                self._fail(call, now)
                return
            legs, seconds = call.plan[call.stage]
            started = 0
            for leg in legs:
                started += self._ring_leg(call, leg, now)
            if started:
                last = call.stage == len(call.plan) - 1
                call.stage_end = now + (seconds * 1000 if seconds and not last else MAX_RING_MS)
                return

    def _ring_leg(self, call, leg, now):
        sw = self.sw
        if leg[0] == "trunk":
            return sw.gateway.ring(call, leg[1], now) if sw.gateway is not None else 0
        count = 0
        for uri, addr, _expires in sw.registrar.contacts(leg[1], now):
            req = clone(call.invite)
            req.uri = sw.parse_uri(uri)
            sw.prepare_forward(req, record_route=True)
            req.remove("proxy-authorization")
            branch = Branch(call, leg[1], req, addr)
            try:
                branch.tx = sw.tl.send_request(req, addr, now)
            except TransactionError:
                continue
            branch.tx.tu = branch
            call.branches.append(branch)
            count += 1
        return count

    # ---- responses from the branches ---------------------------------------------------------

    def response(self, branch, resp, now):
        call = branch.call
        status = resp.status
        if status == 100:
            return
        if status < 200:
            branch.provisional = True
            if branch.cancel_pending:
                self._cancel_branch(branch, now)
            elif not call.done:
                self._relay(call, resp, now, branch)
            return
        branch.final = status
        if status < 300:
            if call.answered_by is None:
                call.answered_by = branch.number
                call.answer_ms = now
                call.done = True
                if getattr(branch, "b2bua", False):
                    call.bridge = branch
                for other in call.branches:
                    if other is not branch:
                        self._cancel_branch(other, now)
                self._relay(call, resp, now, branch)
                self._settle(call)
                return
            self._relay(call, resp, now, branch)  # retransmissions and other forks' 2xx too (16.7)
            return
        if call.done:
            return
        if call.best is None or _rank(status) < _rank(call.best.status):
            call.best = resp
        if self._stage_over(call):  # everyone in this stage said no: don't wait for its timer
            self._next_stage(call, now)

    def _stage_over(self, call):
        for b in call.branches:
            if b.final is None and not b.cancel_pending:
                return False
        return True

    def _settle(self, call):
        """Answered: keep only what the dialog needs. The parsed INVITE and the forwarded
        copies cost kilobytes; the device's budget is 2 KB a call. (Branches still being
        CANCELled live on in their transactions.)"""
        if call.bridge is not None:  # the gateway hangs up the phone's side with these
            inv = call.invite
            contacts = inv.contacts()
            call.back = (str(contacts[0].uri) if contacts else None, inv.get("to"), inv.get("from"), inv.call_id())
        call.invite = None
        call.plan = None
        call.best = None
        call.branches = []

    def branch_failed(self, branch, now):
        """Timer B / transport error on a branch: it counts as 408."""
        branch.final = 408
        call = branch.call
        if not call.done and self._stage_over(call):
            self._next_stage(call, now)

    def _relay(self, call, resp, now, branch):
        if call.server_tx is None:  # a 2xx retransmission long after the answer: the ACK went
            return
        # a gateway branch hands us a response already made for the caller
        out = resp if getattr(branch, "b2bua", False) else strip_top_via(resp)
        self.sw.tl.respond(call.server_tx, out, now)

    def _fail(self, call, now):
        if call.done:
            return
        call.done = True
        best = call.best
        if best is not None:
            out = make_response(call.invite, best.status, best.reason, to_tag=self.sw.tag())
        else:
            out = make_response(call.invite, 480, to_tag=self.sw.tag())
        self.sw.tl.respond(call.server_tx, out, now)
        self._end(call, now, out.status)

    # ---- timers ------------------------------------------------------------------------------

    def next_timer(self):
        best = None
        for call in self.calls.values():
            t = call.stage_end if not call.done else None
            if call.answer_ms is not None:
                t = call.answer_ms + (SETTLED_MS if call.server_tx is not None else MAX_CALL_MS)
            if t is not None and (best is None or t < best):
                best = t
        return best

    def handle_timer(self, now):
        for call in list(self.calls.values()):
            if call.answer_ms is not None:
                if now - call.answer_ms >= MAX_CALL_MS:
                    self._end(call, now, 200, hangup=True)  # a BYE we never saw: free the slot
                elif now - call.answer_ms >= SETTLED_MS:
                    call.server_tx = None  # past its accepted state: let the transaction go
                continue
            if call.done or call.stage_end is None or call.stage_end > now:
                continue
            call.stage_end = None
            for b in call.branches:
                self._cancel_branch(b, now)
            self._next_stage(call, now)

    def _cancel_branch(self, branch, now):
        if getattr(branch, "b2bua", False):
            return self.sw.gateway.cancel(branch, now)
        if branch.final is not None or branch.tx is None:
            return
        if not branch.provisional:  # 9.1: CANCEL only once the callee said something
            branch.cancel_pending = True
            return
        branch.cancel_pending = False
        branch.final = 487
        try:
            tx = self.sw.tl.send_request(make_cancel(branch.request), branch.addr, now)
            tx.tu = None
        except TransactionError:
            pass

    # ---- CANCEL, ACK and in-dialog requests --------------------------------------------------

    def cancel(self, tx, req, invite_tx, now):
        sw = self.sw
        call = invite_tx.tu if invite_tx is not None else None
        if not isinstance(call, Call):
            return sw.reply(tx, 481, now)
        sw.reply(tx, 200, now)
        if call.done:
            return
        call.done = True
        for b in call.branches:
            self._cancel_branch(b, now)
        sw.tl.respond(call.server_tx, make_response(call.invite, 487, to_tag=sw.tag()), now)
        self._end(call, now, 487)

    def in_dialog(self, tx, req, addr, now):
        """A request with a To tag (tx is None for the ACK of a 2xx): loose-route it on."""
        sw = self.sw
        call = self.calls.get(req.call_id())
        routes = req.get_all("route")
        if routes and sw.is_me(routes[0]):
            routes = routes[1:]
        if call is None or call.answered_by is None:
            if tx is not None:
                sw.reply(tx, 481, now)
            return
        if call.bridge is not None:
            return sw.gateway.caller_request(call, tx, req, now)
        out = clone(req)
        out.set_all("route", routes)
        next_hop = sw.next_hop(routes[0] if routes else None, out.uri)
        if next_hop is None:
            if tx is not None:
                sw.reply(tx, 404, now)
            return
        sw.prepare_forward(out, record_route=False)
        if tx is None:  # the ACK for a 2xx: forwarded statelessly (16.11)
            sw.tl.send_stateless(out, next_hop)
            return
        try:
            ctx = sw.tl.send_request(out, next_hop, now)
        except TransactionError:
            return sw.reply(tx, 503, now)
        ctx.tu = ("relay", tx)
        if req.method == "BYE":
            self._end(call, now, 200, hangup=True)

    def relay_response(self, server_tx, resp, now):
        self.sw.tl.respond(server_tx, strip_top_via(resp), now)

    def end(self, call, now):
        """A bridged call was hung up (by the gateway's side of things)."""
        self._end(call, now, 200, hangup=True)

    def _end(self, call, now, status, hangup=False):
        """The call is over for the records: failed, cancelled, or hung up after an answer."""
        if hangup or call.answered_by is None:
            self.calls.pop(call.call_id, None)
            self.sw.record(call, now, status)


def _rank(status):
    try:
        return _PREFERENCE.index(status)
    except ValueError:
        return len(_PREFERENCE) + status


def strip_top_via(resp):
    """A copy of resp without our Via on top (16.7 step 3)."""
    out = Response(resp.status, resp.reason, body=resp.body)
    out.headers = list(resp.headers)
    for i in range(len(out.headers)):
        if out.headers[i][0] == "via":
            del out.headers[i]
            break
    return out


def _describe(target):
    return "%s %s" % (target[0], target[1])

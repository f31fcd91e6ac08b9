"""Calls: a transaction-stateful forking proxy for phones (RFC 3261 section 16).

An INVITE from an authenticated phone, or from the provider, is decided by the core's call
decision (zongji.call.decision: the dial plan, the class of service, the ring plan); this file
carries the decision out. Each stage of the ring plan forks the INVITE to every registered
contact of its legs in parallel, for the stage's seconds, then CANCELs what still rings and
starts the next stage (in-order groups, follow-me). The first 2xx wins and every other leg is
CANCELled (16.7 step 10); a leg that answers after the winner is hung up by the switch, so a
call has one dialog. When every stage fails the caller gets the best failure (16.7 step 6:
486 over 480 over the rest), and 503 when only the provider could have taken it and it is down.

A call and each leg follow the lifecycle table of zongji.call.state. The proxy Record-Routes
(16.6 step 4), so in-dialog requests come back through it; zongji.switch.dialog passes them on
between the dialog's two parties only. SDP passes untouched: media flows phone to phone. Every
call leaves a record in the switch's CDR log, with the decision's status and reason.

Trunk legs (a colleague's mobile, an outside number) go out through the gateway (a B2BUA).
"""

from zongji.call import decision, state
from zongji.sip.message import Request, make_response
from zongji.sip.transaction import TransactionError
from zongji.switch.agent import AGENT, ANCHOR_RESERVE
from zongji.switch.legs import Leg, strip_top_via

MAX_CALLS = 32  # calls being set up or in progress; the device's budget is 2 KB each
MAX_RING_MS = 120000  # a last stage without its own time rings this long
MAX_CALL_MS = 4 * 3600 * 1000  # an answered call we never saw end is forgotten after this
SETTLED_MS = 40000  # after 64*T1 the INVITE server transaction is gone: drop our reference
_PREFERENCE = (486, 600, 603, 480, 404, 408)  # 16.7 step 6, as phones understand it

PROVIDER_DOWN = "the provider is unavailable"


def clone(req):
    """A copy of a request whose headers can be changed without touching the original."""
    out = Request(req.method, req.uri.copy() if hasattr(req.uri, "copy") else req.uri)
    out.headers = list(req.headers)
    out.body = req.body
    return out


class Call:
    """One call, from the caller's INVITE to its end; see zongji.call.state for `life`."""

    def __init__(self, server_tx, invite, caller, addr, d, dialed, now):
        self.server_tx = server_tx
        self.invite = invite  # until answered: the dialog keeps what it needs
        self.caller = caller  # an extension, or the outside caller's user part
        self.caller_addr = addr  # where the INVITE came from: the dialog's caller side
        self.decision = d  # until answered: the dialog keeps what it needs
        self.note = d.note
        self.refused = d.action != decision.RING
        self.target = d.target or ("number", dialed)
        self.plan = d.plan
        self.dialed = dialed
        self.stage = -1
        self.stage_end = None
        self.legs = []
        self.best = None  # the best failure response so far
        self.winner = None  # the number that answered
        self.rang = False  # some leg was started
        self.skipped_trunk = False  # a trunk leg was left out: the provider was down
        self.life = state.Lifecycle(now)
        self.call_id = invite.call_id()
        self.route = "%s %s" % (self.target[0], self.target[1])
        self.dialog = None  # dialog.Dialog once answered
        self.bridge = None  # the gateway's TrunkLeg that answered: in-dialog goes through it
        self.inbound = False  # from the provider (an outside caller)
        self.relaying = 0  # in-dialog requests passed on and not yet answered (legs.Relay)
        # an anchored call is two calls (the caller's to the agent, the agent's to the target)
        # and one record: the second's, carrying the first's route and start (Switch.record)
        self.bridged = False  # this is the first, and the agent placed the second
        self.front = None  # this is the second: the first


class Proxy:
    max_calls = MAX_CALLS  # host mode raises it (Switch(max_calls=...))

    def __init__(self, switch):
        self.sw = switch
        self.calls = {}  # Call-ID -> Call, while ringing and while the dialog lasts
        self.relays = []  # dialog's Relay objects with a Timer C running

    # ---- the first INVITE --------------------------------------------------------------------

    def invite(self, tx, req, caller, addr, now):
        """An INVITE from extension `caller` (an authenticated Extension)."""
        if self._full(tx, now, addr, caller.number):
            return
        number = req.uri.user or ""
        d = decision.decide(self.sw.site, number, caller)
        self._begin(Call(tx, req, caller.number, addr, d, number, now), now)

    def inbound(self, tx, req, addr, now):
        """An INVITE from the provider to one of our numbers (its Request-URI user, the DID)."""
        if self._full(tx, now, addr):
            return
        did = req.uri.user or ""
        d = decision.decide_inbound(self.sw.site, did, self.sw.local_time(now))
        sender = req.from_addr()
        caller = (sender.uri.user if sender is not None and sender.uri.is_sip else None) or "anonymous"
        call = Call(tx, req, caller[:32], addr, d, did, now)
        call.inbound = True
        call.route = "did %s -> %s" % (did, call.route)
        self._begin(call, now)

    def placed(self, tx, req, now):
        """An INVITE from the switch's own user agent (agent.AGENT): the attendant putting a
        caller through to the target it chose, as the agent's `placing` says (never a header)."""
        agent = self.sw.agent
        got = agent.placing.get(req.call_id() or "") if agent is not None else None
        if got is None:
            self.sw.count("agent invite for no transfer")
            return self.sw.reply(tx, 403, now)
        target, caller, by = got
        inside = caller and caller.isdigit() and not by.what.get("inbound")  # an extension: left out of its groups
        d = decision.transfer(self.sw.site, target, caller if inside else None)
        call = Call(tx, req, caller, tx.addr, d, target[1] or "", now)
        first = self.calls.get(by.call_id)
        # an outside caller's second call counts in the provider's share of the lines (spoofed
        # INVITEs, anchored, cannot take staff's quarter with the calls the agent places)
        call.inbound = first is not None and first.inbound
        call.route = "attendant -> %s" % call.route
        if by.bridge is not None and first is not None:  # an anchored call's ringing: one record
            first.bridged = True
            call.front = first
            call.route = first.route
        self._begin(call, now)

    def shares(self):
        """(per extension, per ip, for the provider): how many of max_calls each may hold.
        One phone or one stolen password cannot take every line; nor can one address with
        several accounts; and outside callers (or INVITEs spoofed from the provider's address,
        which UDP cannot tell apart) leave a quarter of the lines for calls among staff."""
        cap = self.max_calls
        quarter = max(1, cap // 4)
        return max(4, quarter), max(4, cap // 2), max(1, cap - quarter)

    def over_share(self, addr, number=None):
        """Why a new call from extension `number` at addr (None: from the provider) would be
        refused (max_calls, or a share: shares()), or None when it may go ahead."""
        if len(self.calls) >= self.max_calls:
            return "call refused: every line is busy"
        per_number, per_ip, trunk = self.shares()
        mine = same_ip = 0
        for call in self.calls.values():
            if number is None:
                mine += call.inbound
            elif call.caller == number and not call.inbound:
                mine += 1
            elif call.caller_addr[0] == addr[0] and not call.inbound:
                same_ip += 1
        if number is None:
            return None if mine < trunk else "call refused: the provider has its share"
        if mine < per_number and mine + same_ip < per_ip:
            return None
        return "call refused: the caller has its share"

    def _full(self, tx, now, addr, number=None):
        """Over max_calls or a share (over_share): 503 with Retry-After, and True. The switch
        asks over_share() before any transaction exists and answers statelessly; this is for
        calls that raced past it."""
        why = self.over_share(addr, number)
        if why is None:
            return False
        self.sw.count(why)
        self.sw.refuse(tx, 503, now, (("Retry-After", 30),))
        return True

    def _begin(self, call, now):
        d = call.decision
        if call.call_id in self.calls:
            # a second INVITE for a call we have, by another branch: a merged request (RFC 3261
            # 8.2.2.2), a fork looping back, or a replay; it must not orphan the first
            self.sw.count("merged request refused")
            self.sw.refuse(call.server_tx, 482, now, reason="Merged Request")
            return
        if d.action == decision.ATTEND:
            agent = self.sw.agent
            if agent is None:  # a switch without media: what the decision says to do instead
                d = call.decision = d.stand_in
                call.note = d.note
                call.refused = d.action != decision.RING
                call.target = d.target or call.target
                call.plan = d.plan
            elif d.pin and not self.sw.guard.user_allowed(call.caller_addr[0], "pin:" + call.caller, now):
                # wrong PINs locked this extension here (the guard's lock, doubling): no new tries
                self.sw.count("pin call refused: locked after wrong PINs")
                d = call.decision = decision.Decision(
                    decision.REFUSE, d.target, 403, "PIN Locked", "wrong PINs: locked"
                )
                call.refused = True
            elif not agent.room():
                self.sw.count("call refused: every attendant line is busy")
                d = call.decision = decision.Decision(
                    decision.REFUSE, d.target, 486, "Attendant Busy", "every attendant line is busy"
                )
                call.refused = True
            else:
                agent.expect(call.call_id, {
                    "entry": d.entry, "pin": (d.pin, call.caller) if d.pin else None, "caller": call.caller,
                    "inbound": call.inbound, "addr": call.caller_addr,
                    "tm": self.sw.local_time(now) if d.entry is not None and d.entry.startswith("menu:") else None,
                })  # fmt: skip
                call.plan = [([("agent", None)], None)]
        elif d.action == decision.RING and self._anchored(call):
            # an outside caller while the site has [sounds], or staff calling out while it has
            # hold music: the agent takes the call, plays ringback as early media and rings
            # the plan itself, so a call on hold hears the music, across the trunk too
            self.sw.agent.expect(call.call_id, {
                "bridge": d.target, "caller": call.caller, "inbound": call.inbound, "addr": call.caller_addr,
            })  # fmt: skip
            call.plan = [([("agent", None)], None)]
            call.route = "%s via the attendant" % call.route
        if d.action == decision.REFUSE:
            call.life.go(state.FAIL, now)
            self.sw.refuse(call.server_tx, d.status, now, reason=d.reason)
            self.sw.record(call, now, d.status, d.note)
            return
        call.server_tx.tu = call  # a CANCEL finds its call through the INVITE's transaction
        self.calls[call.call_id] = call
        self._next_stage(call, now)

    def _anchored(self, call):
        """Whether a call goes through the switch's user agent: an outside caller's while the
        site has a ringback or hold sound built; a staff call out over the trunk while it has
        hold music (never an emergency call); the INVITE offers SDP, and an attendant line is
        free beyond the ANCHOR_RESERVE kept for menu callers (when none is, the call is
        proxied as without [sounds]: it rings, with no music)."""
        agent = self.sw.agent
        if agent is None or call.caller_addr == AGENT:
            return False  # the agent's own calls (its transfers and bridges) are never anchored
        if not decision.anchored(call.inbound, call.target, agent.has_ringback(), agent.holds()):
            return False
        ctype = (call.invite.get("content-type") or "").split(";", 1)[0].strip().lower()
        if not call.invite.body or ctype != "application/sdp":
            return False
        if not agent.room(ANCHOR_RESERVE):
            self.sw.count("call not anchored: the attendant lines for anchoring are busy")
            return False
        return True

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
                call.rang = True
                last = call.stage == len(call.plan) - 1
                call.stage_end = now + (seconds * 1000 if seconds and not last else MAX_RING_MS)
                return

    def _ring_leg(self, call, leg, now):
        sw = self.sw
        if leg[0] == "agent":
            return self._ring_agent(call, now)
        if leg[0] == "trunk":
            if sw.gateway is None:
                return 0
            if not sw.trunk_up():
                call.skipped_trunk = True
                return 0
            return sw.gateway.ring(call, leg[1], now)
        count = 0
        for uri, addr, _expires in sw.registrar.contacts(leg[1], now):
            if sw.is_trunk(addr):  # never a phone (the registrar refuses it): no call out that way
                continue
            req = clone(call.invite)
            req.uri = sw.parse_uri(uri)
            sw.prepare_forward(req, record_route=True)
            req.remove("proxy-authorization")
            branch = Leg(self, call, leg[1], now)
            branch.request = req
            branch.addr = addr
            try:
                branch.tx = sw.tl.send_request(req, addr, now)
            except TransactionError:
                sw.count("leg not rung: transaction table full")
                continue
            branch.tx.tu = branch
            call.legs.append(branch)
            count += 1
        return count

    def _ring_agent(self, call, now):
        """The attendant's leg: the INVITE goes to the switch's own user agent."""
        sw = self.sw
        req = clone(call.invite)
        req.uri = sw.parse_uri("sip:attendant@%s" % sw.me)
        sw.prepare_forward(req, record_route=True)
        req.remove("proxy-authorization")
        branch = Leg(self, call, "attendant", now)
        branch.request = req
        branch.addr = AGENT
        try:
            branch.tx = sw.tl.send_request(req, AGENT, now)
        except TransactionError:
            sw.agent.forget(call.call_id)
            sw.count("attendant not rung: transaction table full")
            return 0
        branch.tx.tu = branch
        call.legs.append(branch)
        return 1

    # ---- what the legs hear --------------------------------------------------------------------

    def leg_response(self, leg, resp, now):
        """A response on leg (a phone's, or the gateway's translated for the caller)."""
        call = leg.call
        status = resp.status
        if status < 200:
            if leg.provisional(now, status):  # the CANCEL that waited for this
                leg.send_cancel(self.sw, now)
            elif status > 100 and call.life.live and leg.final is None:
                leg.life.go(state.PROVISIONAL, now)
                call.life.go(state.PROVISIONAL, now)
                if not leg.trunk and leg.early is None:
                    to = resp.to_addr()
                    if to is not None and to.tag:  # an early dialog: PRACK, UPDATE may follow
                        leg.early = self.sw.dialogs.make(call, leg, resp)
                self._relay(call, resp, now, leg)
            return
        if status < 300:
            leg.life.go(state.ANSWER, now)
            if call.life.live:
                leg.final = status
                self._answer(call, leg, resp, now)
            elif leg.won:
                self._relay(call, resp, now, leg)  # a retransmission: the caller's ACK got lost
            else:
                leg.final = status
                leg.owner.hang_up_extra(leg, resp, now)
            return
        leg.life.go(state.FAIL, now)
        if leg.final is None:
            leg.final = status
        if not call.life.live:
            return
        if call.best is None or _rank(status) < _rank(call.best.status):
            call.best = resp
        if self._stage_over(call):  # everyone in this stage said no: don't wait for its timer
            self._next_stage(call, now)

    def leg_failed(self, leg, now, status=408):
        """Timer B, Timer C, the CANCEL timeout or a transport error on a leg: it counts as 408."""
        leg.life.go(state.TIMEOUT, now)
        if leg.final is None:
            leg.final = status
        call = leg.call
        if call.life.live and self._stage_over(call):
            self._next_stage(call, now)

    def hang_up_extra(self, leg, resp, now):
        """A second phone answered after the winner (a fork race): ACK and BYE it ourselves, so
        the caller keeps one dialog and the late phone does not stay off-hook."""
        self.sw.dialogs.hang_up_answer(leg.request, resp, leg.addr, now)

    def _answer(self, call, leg, resp, now):
        call.winner = leg.number
        leg.won = True
        call.life.go(state.ANSWER, now)
        if leg.trunk:
            call.bridge = leg
        for other in call.legs:
            if other is not leg:
                other.send_cancel(self.sw, now)
        self._relay(call, resp, now, leg)
        call.dialog = self.sw.dialogs.make(call, leg, resp)
        # keep only what the dialog needs: the parsed INVITE and the forked copies cost
        # kilobytes; the device's budget is 2 KB a call (legs being CANCELled live on in
        # their transactions)
        call.invite = None
        call.decision = None
        call.plan = None
        call.best = None
        call.legs = [leg] if leg.trunk else []

    def _stage_over(self, call):
        for leg in call.legs:
            if leg.final is None and not leg.cancel_pending:
                return False
        return True

    def _relay(self, call, resp, now, leg):
        if call.server_tx is None:  # a 2xx retransmission long after the answer: the ACK went
            return
        # a gateway leg hands us a response already made for the caller
        out = resp if leg.trunk else strip_top_via(resp)
        self.sw.tl.respond(call.server_tx, out, now)

    def resend(self, call, resp, now):
        """Our 2xx to the caller once more (the gateway's, while no ACK has come)."""
        if call.server_tx is not None:
            self.sw.tl.respond(call.server_tx, resp, now)

    def _fail(self, call, now):
        if not call.life.live:
            return
        call.life.go(state.FAIL, now)
        best = call.best
        reason = None
        if best is not None:  # what the phones said (Busy Here, Decline): the record says so too
            status, phrase = best.status, best.reason
            reason = "%d %s" % (status, phrase) if phrase else "%d" % status
        elif call.skipped_trunk:
            status, phrase, reason = 503, "Provider Unavailable", PROVIDER_DOWN
            if call.target[0] == "emergency":
                self.sw.alert("EMERGENCY call %s from %s could not go out: %s" % (call.target[1], call.caller, reason))
        elif call.rang:
            status, phrase = 480, None
        else:
            status, phrase, reason = 480, "Not Registered", "no phone is registered for %s" % call.dialed
        if call.rang:
            out = make_response(call.invite, status, phrase, to_tag=self.sw.tag())
            self.sw.tl.respond(call.server_tx, out, now)
        else:  # nothing rang: a quick refusal (Switch.refuse)
            self.sw.refuse(call.server_tx, status, now, reason=phrase)
        self._end(call, now, status, reason)

    # ---- timers --------------------------------------------------------------------------------

    def next_timer(self):
        best = None
        for call in self.calls.values():
            for t in _deadlines(call):
                if t is not None and (best is None or t < best):
                    best = t
        for relay in self.relays:
            t = relay.timer_c
            if t is not None and (best is None or t < best):
                best = t
        return best

    def handle_timer(self, now):
        for call in list(self.calls.values()):
            life = call.life
            if life.answered:
                if call.bridge is not None:
                    self.sw.gateway.ack_timer(call, now)  # its 2xx again, or no ACK: hung up
                    if call.call_id not in self.calls:
                        continue
                if now - life.answer_ms >= MAX_CALL_MS:
                    life.go(state.TIMEOUT, now)
                    self._end(call, now, 200, "the longest call we keep: no BYE seen")
                elif now - life.answer_ms >= SETTLED_MS:
                    call.server_tx = None  # past its accepted state: let the transaction go
                continue
            for leg in list(call.legs):
                if leg.timer_c is not None and leg.timer_c <= now:
                    leg.timer_c_fired(self.sw, now)
            if call.life.live and call.stage_end is not None and call.stage_end <= now:
                call.stage_end = None
                for leg in call.legs:
                    leg.send_cancel(self.sw, now)
                self._next_stage(call, now)
        for relay in list(self.relays):
            if relay.timer_c is None:
                self.relays.remove(relay)
            elif relay.timer_c <= now:
                self.relays.remove(relay)
                relay.timer_c_fired(self.sw, now)

    # ---- CANCEL and the end ----------------------------------------------------------------------

    def cancel(self, tx, req, invite_tx, now):
        sw = self.sw
        call = invite_tx.tu if invite_tx is not None else None
        if not isinstance(call, Call):
            return sw.reply(tx, 481, now)
        sw.reply(tx, 200, now)
        if not call.life.live:
            return
        call.life.go(state.CANCEL, now)
        for leg in call.legs:
            leg.send_cancel(sw, now)
        sw.tl.respond(call.server_tx, make_response(call.invite, 487, to_tag=sw.tag()), now)
        self._end(call, now, 487, "the caller hung up while it rang")

    def hung_up(self, call, now, by):
        """A BYE from one of the dialog's parties: the call is over."""
        call.life.go(state.HANGUP, now)
        self._end(call, now, 200, "hung up by %s" % by)

    def _end(self, call, now, status, reason=None):
        """The call is over for the records: failed, cancelled, or hung up after an answer."""
        self.calls.pop(call.call_id, None)
        if self.sw.agent is not None:
            self.sw.agent.forget(call.call_id)
        for leg in call.legs:  # nothing the call rang outlives it (a no-op for legs done)
            if not leg.won:
                leg.send_cancel(self.sw, now)
        self.sw.record(call, now, status, reason or call.note)
        if self.sw.gateway is not None:
            self.sw.gateway.forget(call)


def _deadlines(call):
    life = call.life
    if life.answered:
        yield life.answer_ms + (SETTLED_MS if call.server_tx is not None else MAX_CALL_MS)
        if call.bridge is not None:
            yield call.bridge.owner.ack_deadline(call)
        return
    if not life.live:
        return
    yield call.stage_end
    for leg in call.legs:
        yield leg.timer_c


def _rank(status):
    try:
        return _PREFERENCE.index(status)
    except ValueError:
        return len(_PREFERENCE) + status

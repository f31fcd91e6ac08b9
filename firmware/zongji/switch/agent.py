"""The switch's own user agent: the attendant answering calls and putting callers through.

A call the decision hands to the attendant (ATTEND: the main number, a menu's short number, a
PIN prompt) is rung like any other call, but its one leg is this agent. The proxy sends the
INVITE to the pseudo-address AGENT; the switch hands what it queues for AGENT to receive() in
the same step, and feeds what the agent sends back into its own receive path as coming from
AGENT. No datagram from the network can carry that source (a socket's addresses are numeric),
so the switch trusts the agent's requests as it trusts an authenticated phone's, and nothing
else gets that trust.

So the proxy, the dialogs, the guards and the call records see one more phone. The caller's
call is answered by the agent (its record says "attendant"); BYE, INFO (DTMF), re-INVITE (hold)
reach it by the dialog rules; when the caller picks a target the agent places a second call,
from AGENT, through the same proxy (ring plans, follow-me, trunk legs, records), and relays
the media between the two once it is answered. The INVITE of that second call names its target
only through `placing` (Call-ID -> what the attendant chose), never through a header the caller
could have written.

    agent = Agent(switch, media)          media: zongji.media.session.Media (RTP of every call)
    agent.expect(call_id, what)           the proxy: the INVITE for this call is for you
    agent.receive(data, now)              a datagram the switch sent to AGENT
    agent.datagrams()                     [(bytes)] for the switch, from AGENT
    agent.next_timer() / handle_timer(now)

The same agent anchors calls (what["bridge"]: an outside caller's while the site has [sounds]
built, a staff call out while it has hold music): 183 with its SDP and the ringback as early
media, the target rung by a second call, whose answer or failure becomes the caller's; a side
that holds hears nothing from the other, which hears the hold music. And when it has put two
of the branch's own phones through, it moves their media phone to phone (RFC 3725: a re-INVITE
to each with the other's address, `_go_direct`), back to the hub when either re-INVITEs.

What the agent owes a caller as a UAS (RFC 3261 13.3.1.4): its 2xx again at T1, doubling to T2,
until the ACK; no ACK in 64*T1 and the call is hung up. Each call holds one Attendant (the menus
of call/attendant.py), one media session, and while a transfer rings or talks, one outgoing leg.
"""

from zongji.call.attendant import Attendant
from zongji.call.prompts import HOLD, RINGBACK, parts
from zongji.sip.message import make_request, make_response
from zongji.sip.transaction import (
    AckReceived,
    NewRequest,
    ResponseReceived,
    TransactionError,
    TransactionLayer,
    make_cancel,
)
from zongji.sip.txevents import Timeout
from zongji.sip.uri import ParseError

AGENT = ("attendant.invalid", 0)  # where the switch sends what is for the agent
SWITCH = ("switch.invalid", 0)  # where the agent sends everything: the switch
T1, T2 = 500, 4000
ACK_WAIT = 64 * T1
MAX_CALLS = 8  # callers in the menus at once; each costs a media session and an Attendant
ANCHOR_RESERVE = 2  # lines anchored outside calls leave to the menus (INVITEs that claim to be
# the provider's cannot take every attendant line)
SETTLE_MS = 300  # after the "connecting" phrase: ringback starts while the target rings

_ANSWERED, _TALKING, _ENDED, _EARLY = 1, 2, 3, 4


class _Out:
    """The call the agent places for a caller (a transfer), from INVITE to BYE."""

    def __init__(self, call_id, invite, target):
        self.call_id = call_id
        self.invite = invite
        self.target = target
        self.tx = None
        self.heard = False  # a provisional came: a CANCEL may go (9.1)
        self.answered = False
        self.cancelled = False
        self.to = None  # To of the 2xx (the callee's tag): the dialog's remote side
        self.remote = None  # the callee's remote target (its Contact), behind the switch
        self.route = []
        self.cseq = 1
        self.media = None


class AgentCall:
    """One caller talking to the attendant."""

    def __init__(self, call_id, invite, tag, what):
        self.call_id = call_id
        self.what = what
        self.bridge = what.get("bridge")  # the target of an anchored call (no attendant)
        self.invite = None  # an anchored call's INVITE and its server transaction, until answered
        self.tx = None
        self.answer = None  # our SDP answer, in the 183 and again in the 200
        self.tag = tag
        self.ours = "%s;tag=%s" % (invite.get("to"), tag)  # our side (To of the INVITE)
        self.theirs = invite.get("from")
        self.remote = _contact(invite)
        self.route = invite.get_all("record-route")  # a UAS keeps them in order (12.1.1)
        self.cseq = 1000
        self.caller = what.get("caller") or "anonymous"
        self.state = _ANSWERED
        self.ok = None  # our 2xx bytes' Response, until the ACK
        self.ok_next = None
        self.ok_every = T1
        self.ok_until = None
        self.media = None
        self.att = None
        self.out = None
        self.playing = False
        self.direct = False  # the two phones send their media to each other (RFC 3725)
        self.moving = None  # a re-INVITE of ours in flight: (kind, request, plan)
        self.acked = None  # CSeq of our last re-INVITE to the caller whose 2xx we ACKed
        self.after_play = None  # what to do when the queued prompts are done: ("hangup",) ...


class Agent:
    max_calls = MAX_CALLS
    direct_media = True  # move media phone to phone once two of our phones are put through

    def __init__(self, switch, media, random_bytes=None):
        self.sw = switch
        self.media = media
        self.tl = TransactionLayer("%s:%d" % AGENT, random_bytes=random_bytes)
        self.tl.symmetric = True
        self.tl.trying_delay = None  # we answer at once: no 100 of our own
        self.calls = {}  # Call-ID of the caller's call -> AgentCall
        self.outs = {}  # Call-ID of a transfer leg -> AgentCall
        self._expected = {}  # Call-ID -> what the proxy rings us for
        self.placing = {}  # Call-ID of our INVITE -> (target, caller number, caller's AgentCall)
        self.ending = {}  # Call-ID of a transfer leg given up before its final answer -> _Out
        # (its CANCEL waits for a provisional, 9.1; a 2xx that crossed it gets ACK and BYE)
        self._out = []
        self._now = 0
        media.agent = self

    # ---- the switch's side ---------------------------------------------------------------------

    def has_ringback(self):
        """Whether the site's ringback file is built (a sound that only exists in site.toml
        would play as silence: decision.anchored counts only built ones)."""
        return self.media.has_prompt(RINGBACK)

    def holds(self):
        """Whether the site's hold music is built (staff calls out are anchored for it)."""
        return self.media.has_prompt(HOLD)

    def room(self, reserve=0):
        """A line free for one more call, leaving `reserve` lines free for others."""
        return len(self.calls) + len(self._expected) < self.max_calls - reserve

    def expect(self, call_id, what):
        """The proxy is about to ring us for call_id: `what` is {"entry": target text or None,
        "tm": local time, "pin": (target, number) or None, "caller": number, "inbound": bool}."""
        self._expected[call_id] = what

    def forget(self, call_id):
        self._expected.pop(call_id, None)

    def receive(self, data, now):
        self._now = now
        for ev in self.tl.receive(data, SWITCH, now):
            self._dispatch(ev, now)

    def datagrams(self):
        out = [d for d, _ in self.tl.datagrams_to_send()]
        if self._out:
            out = out + self._out
            self._out = []
        return out

    def next_timer(self):
        best = self.tl.next_timer()
        for c in self.calls.values():
            # the menu's reply timeout runs from the end of its greeting (prompt_done), not
            # while it still plays: a 10 s greeting with a 5 s timeout must not time out
            wait = c.att.deadline if c.att is not None and not c.playing else None
            for t in (c.ok_next, c.ok_until, wait):
                if t is not None and (best is None or t < best):
                    best = t
        return best

    def handle_timer(self, now):
        self._now = now
        for ev in self.tl.handle_timer(now):
            self._dispatch(ev, now)
        for c in list(self.calls.values()):
            if c.ok_until is not None and now >= c.ok_until:
                self.sw.count("attendant call hung up: the caller never ACKed")
                c.ok_next = c.ok_until = None
                self._bye(c, now)
                continue
            if c.ok_next is not None and c.ok_next <= now:
                self._send(c.ok)
                c.ok_every = min(c.ok_every * 2, T2)
                c.ok_next = now + c.ok_every
            if c.att is not None and not c.playing and c.att.deadline is not None and c.att.deadline <= now:
                self._act(c, c.att.timer(now), now)

    # ---- media's side ----------------------------------------------------------------------------

    def key(self, call, k, now):
        """A DTMF key from the caller of `call` (media or INFO)."""
        if call.state == _ENDED or call.att is None:
            return
        if call.out is not None or call.after_play is not None or call.att.done:
            return  # being put through, or the goodbye is playing: keys change nothing now
        if call.playing:
            self.media.stop(call.media)  # a key cuts the prompt short, as callers expect
            call.playing = False
        self._act(call, call.att.key(k, now), now)

    def played(self, call, now):
        """Everything queued on call's media has been played."""
        call.playing = False
        after = call.after_play
        call.after_play = None
        if after is not None:
            if after[0] == "hangup":
                self._bye(call, now)
            return
        if call.att is not None and call.out is None:
            self._act(call, call.att.prompt_done(now), now)

    # ---- events from our transaction layer ------------------------------------------------------

    def _dispatch(self, ev, now):
        if isinstance(ev, NewRequest):
            self._request(ev.tx, ev.request, now)
        elif isinstance(ev, AckReceived):
            self._ack(ev.request, now)
        elif isinstance(ev, ResponseReceived):
            self._response(ev.tx, ev.response, now)
        elif isinstance(ev, Timeout):
            call_id = ev.tx.request.call_id() if ev.tx is not None else None
            gone = self.ending.get(call_id)
            if gone is not None and ev.tx.request is gone.invite:
                del self.ending[call_id]
                return
            c = self.calls.get(call_id) or self.outs.get(call_id)
            if c is not None and c.moving is not None and ev.tx.request is c.moving[1]:
                # our re-INVITE got no answer: as refused (the other side may have moved: back)
                kind = c.moving[0]
                c.moving = None
                self.sw.count("media stays relayed: a re-INVITE timed out")
                if kind == "to_a":
                    self._revert_a(c, now)
                return
            c = self.outs.get(call_id)
            if c is not None and ev.tx.request.method == "INVITE" and c.out is not None and not c.out.answered:
                self._out_failed(c, c.out, 408, now)

    def _reply(self, tx, req, status, tag=None, headers=None, body=b""):
        resp = make_response(req, status, to_tag=tag or self.sw.tag(), headers=headers, body=body)
        self.tl.respond(tx, resp, self._now)

    def _request(self, tx, req, now):
        method = req.method
        call_id = req.call_id()
        to = req.to_addr()
        if to is not None and to.tag:
            return self._in_dialog(tx, req, to.tag, now)
        if method == "CANCEL":
            c = self.calls.get(call_id)
            if c is None or c.state != _EARLY:
                return self._reply(tx, req, 481)  # the attendant answers at once: nothing rings
            self._reply(tx, req, 200)
            self.tl.respond(c.tx, make_response(c.invite, 487, to_tag=c.tag), now)
            self._end(c, now, "the caller gave up")
            return
        if method != "INVITE":
            return self._reply(tx, req, 405, headers=(("Allow", "INVITE, ACK, BYE, CANCEL, INFO"),))
        what = self._expected.pop(call_id, None)
        if what is None or call_id in self.calls:
            return self._reply(tx, req, 481)  # not the proxy's: cannot happen
        tag = self.sw.tag()
        try:
            session, answer = self.media.answer(req.body, req.get("content-type"))
        except ValueError as e:
            self.sw.count("attendant call refused: %s" % e)
            return self._reply(tx, req, 488, tag)
        c = AgentCall(call_id, req, tag, what)
        c.media = session
        session.owner = c
        if c.bridge is not None:
            return self._anchor(c, tx, req, answer, now)
        c.att = Attendant(self.sw.site, what.get("tm"), what.get("entry"), pin=what.get("pin"))
        self.calls[call_id] = c
        ok = make_response(req, 200, to_tag=tag, headers=self._sdp_headers(), body=answer)
        c.ok = ok
        c.ok_next = now + T1
        c.ok_until = now + ACK_WAIT
        self.tl.respond(tx, ok, now)

    def _anchor(self, c, tx, req, answer, now):
        """An anchored call (an outside caller's, while the site has [sounds]): early media at
        once (183 with our SDP), the branch's ringback, and the target rung by a second call;
        its answer is the caller's 200, its failure the caller's final response."""
        c.state = _EARLY
        c.invite = req
        c.tx = tx
        c.answer = answer
        self.calls[c.call_id] = c
        self.tl.respond(tx, make_response(req, 183, to_tag=c.tag, headers=self._sdp_headers(), body=answer), now)
        self._place(c, c.bridge, now, settle=0)

    def _sdp_headers(self):
        return (("Contact", "<sip:attendant@%s>" % self.sw.me), ("Content-Type", "application/sdp"))

    def _ack(self, req, now):
        c = self.calls.get(req.call_id())
        if c is not None and c.ok_next is not None:
            c.ok_next = c.ok_until = None
            c.ok = None
            if c.att is not None:
                self._act(c, c.att.start(now), now)

    def _in_dialog(self, tx, req, tag, now):
        method = req.method
        c = self.calls.get(req.call_id())
        if c is not None and c.tag == tag:
            if method == "BYE":
                self._reply(tx, req, 200)
                self._end(c, now, "the caller hung up")
            elif method == "INFO":
                key = self.media.info_key(req.get("content-type"), req.body)
                self._reply(tx, req, 200 if key is not None or not req.body else 415)
                if key is not None:
                    self.key(c, key, now)
            elif method == "INVITE" or (method == "UPDATE" and req.body):
                # hold, resume, a new address: answer from our session. An UPDATE's offer
                # (RFC 3311) may come before our final answer too: that is what it is for.
                if method == "INVITE" and c.state == _EARLY:  # before our final answer (14.2)
                    return self._reply(tx, req, 500, headers=(("Retry-After", 1),))
                if c.moving is not None:  # a re-INVITE of ours is in flight (glare, 14.2)
                    return self._reply(tx, req, 491)
                try:
                    answer = self.media.reanswer(c.media, req.body, req.get("content-type"))
                except ValueError:
                    return self._reply(tx, req, 488)
                self._reply(tx, req, 200, headers=self._sdp_headers(), body=answer)
                if c.state == _EARLY:  # the INVITE's 200 will carry this session, not the first
                    c.answer = answer
                if c.direct:  # the caller's media comes back to us: so must the target's
                    self._reanchor(c, "b", now)
                self._held(c)
            else:
                self._reply(tx, req, 200 if method in ("UPDATE", "NOTIFY", "OPTIONS") else 405)
            return
        c = self.outs.get(req.call_id())
        if c is not None and c.out is not None and method == "BYE":
            self._reply(tx, req, 200)
            c.out.answered = False  # their side is gone: no BYE back
            self._end(c, now, "the callee hung up")
            return
        if c is not None and c.out is not None and (method == "INVITE" or (method == "UPDATE" and req.body)):
            if c.moving is not None:  # a re-INVITE of ours is in flight (glare, 14.2)
                return self._reply(tx, req, 491)
            try:
                answer = self.media.reanswer(c.out.media, req.body, req.get("content-type"))
            except ValueError:
                return self._reply(tx, req, 488)
            self._reply(tx, req, 200, headers=(("Content-Type", "application/sdp"),), body=answer)
            if c.direct:
                self._reanchor(c, "a", now)
            return self._held(c)
        if c is not None and c.out is not None:
            return self._reply(tx, req, 200 if method in ("INFO", "UPDATE", "NOTIFY") else 405)
        self._reply(tx, req, 481)

    def _held(self, c):
        """After a re-INVITE on either side of a call put through: a side that no longer sends
        to us (its offer was sendonly or inactive: it put the call on hold) is not relayed to,
        and the other side hears the branch's hold music ([sounds] hold) or silence; when both
        send again, the two are relayed as before."""
        out = c.out
        if c.state != _TALKING or out is None or not out.answered:
            return
        a, b = c.media, out.media
        if a.plan is None or b.plan is None:
            return
        hold_a = not a.plan.send  # a put b on hold
        hold_b = not b.plan.send
        if not hold_a and not hold_b:
            if a.relay is not b:
                self.media.relay(a, b)
            return
        self.media.unrelay(a, b)
        music = HOLD if self.media.has_prompt(HOLD) else None
        self.media.loop(b, music if hold_a else None)
        self.media.loop(a, music if hold_b else None)
        self.sw.count("call on hold")

    # ---- media phone to phone (RFC 3725 third-party call control) ----------------------------------

    def _go_direct(self, c, now):
        """Two of the branch's own phones are put through: re-INVITE the caller with the
        target's media address (same codec), then the target with the caller's, and stop
        relaying. Calls over the trunk, from outside, or while the site has hold music (which
        needs the media here) stay relayed; so does any call where a step is refused."""
        out = c.out
        if not self.direct_media or c.direct or c.moving is not None or c.state != _TALKING or c.ok is not None:
            return
        if out is None or not out.answered or c.what.get("inbound") or self.media.has_prompt(HOLD):
            return
        placed = self.sw.proxy.calls.get(out.call_id)
        if placed is None or placed.bridge is not None:
            return  # answered over the trunk: the provider's media stays with us
        a, b = c.media.plan, out.media.plan
        if a is None or b is None or not (a.send and a.recv and b.send and b.recv):
            return
        req = self._in_dialog_request(c, None, "INVITE", c.media.sdp.offer_at(b.addr, a), now)
        if req is not None:
            c.moving = ("to_b", req, None)

    def _moved_a(self, c, resp, now):
        """A response in the caller's dialog: to our re-INVITE (or our BYE: nothing to do)."""
        m = c.moving
        cseq = resp.cseq()
        if cseq is None or cseq[1] != "INVITE" or resp.status < 200:
            return
        if m is None or cseq[0] != m[1].cseq()[0]:
            if resp.status < 300 and cseq[0] == c.acked:  # its retransmission: our ACK was lost
                self._ack_in(c.remote, c.ours, c.theirs, c.call_id, cseq[0], c.route)
            return
        if resp.status >= 300:  # refused: the session is as it was (RFC 3261 14.1)
            c.moving = None
            self.sw.count("media stays relayed: the caller refused the re-INVITE")
            return
        self._ack_in(c.remote, c.ours, c.theirs, c.call_id, cseq[0], c.route)
        c.acked = cseq[0]
        c.moving = None
        if m[0] != "to_b":
            self._accept_quietly(c.media, resp)  # our own address again (a revert)
            return
        out = c.out
        try:
            plan = c.media.sdp.accept(resp.body)
        except ValueError:
            plan = None
        if out is None or c.state != _TALKING or plan is None or not plan.send:
            return self._revert_a(c, now)
        req = self._in_dialog_request(c, out, "INVITE", out.media.sdp.offer_at(plan.addr, out.media.plan), now)
        if req is None:
            return self._revert_a(c, now)
        c.moving = ("to_a", req, plan)

    def _moved_b(self, c, resp, number, now):
        """A response to our re-INVITE in the target's dialog."""
        m = c.moving
        out = c.out
        if resp.status < 200:
            return
        if resp.status >= 300:
            c.moving = None
            if m[0] == "to_a":  # the target refused: bring the caller back to us
                self.sw.count("media stays relayed: the target refused the re-INVITE")
                self._revert_a(c, now)
            return
        self._ack_in(out.remote, out.invite.get("from"), out.to, out.call_id, number, out.route)
        c.moving = None
        if m[0] != "to_a":
            self._accept_quietly(out.media, resp)
            return
        try:
            out.media.sdp.accept(resp.body)
        except ValueError:
            self._revert_a(c, now)
            self._reanchor_out(c, now)
            return
        c.direct = True
        self.media.direct(c.media, out.media, True)
        self.sw.count("media direct phone to phone")

    def _reanchor(self, c, other, now):
        """A re-INVITE came from one side while direct: its media is ours again (our answer);
        the other side is re-INVITEd back to us, and the two are relayed."""
        c.direct = False
        self.media.direct(c.media, c.out.media, False)
        if other == "b":
            self._reanchor_out(c, now)
        else:
            self._revert_a(c, now)

    def _reanchor_out(self, c, now):
        req = self._in_dialog_request(c, c.out, "INVITE", c.out.media.sdp.offer(), now)
        if req is not None:
            c.moving = ("back", req, None)

    def _revert_a(self, c, now):
        req = self._in_dialog_request(c, None, "INVITE", c.media.sdp.offer(), now)
        if req is not None:
            c.moving = ("back", req, None)

    def _accept_quietly(self, leg, resp):
        """The answer to a re-INVITE bringing a peer's media back to us: where it now listens."""
        try:
            self.media.accept(leg, resp.body, resp.get("content-type"))
        except ValueError:
            self.sw.count("re-INVITE answer unusable")

    def _in_dialog_request(self, c, out, method, body, now):
        """A request of ours in the caller's dialog (out None) or the target's."""
        if out is None:
            c.cseq += 1
            target, frm, to, call_id, cseq, route = c.remote, c.ours, c.theirs, c.call_id, c.cseq, c.route
        else:
            out.cseq += 1
            target, frm, to, call_id, cseq = out.remote, out.invite.get("from"), out.to, out.call_id, out.cseq
            route = out.route
        req = make_request(
            method, target, frm, to, call_id, cseq, headers=[("Route", r) for r in route],
            contact="<sip:attendant@%s>" % self.sw.me, body=body, content_type="application/sdp",
        )  # fmt: skip
        try:
            self.tl.send_request(req, SWITCH, now)
        except TransactionError:
            self.sw.count("re-INVITE not sent: transaction table full")
            return None
        return req

    def _ack_in(self, target, frm, to, call_id, cseq, route):
        ack = make_request("ACK", target, frm, to, call_id, cseq, headers=[("Route", r) for r in route])
        ack.add("via", "SIP/2.0/UDP %s:%d;branch=%s" % (AGENT[0], AGENT[1], self.tl.branch()), first=True)
        self._out.append(ack.to_bytes())

    # ---- what the attendant decides --------------------------------------------------------------

    def _act(self, c, actions, now):
        for a in actions:
            if c.state == _ENDED:
                return
            kind = a[0]
            if kind == "play":
                ids = parts(self.sw.site, a[1], a[4] if len(a) > 4 else (), self.media.has_prompt)
                self.media.play(c.media, ids)
                c.playing = True
            elif kind == "transfer":
                self._place(c, a[1], now)
            elif kind == "pin_failed":
                addr = c.what.get("addr")
                if addr is not None:
                    # the guard counts wrong PINs like wrong passwords: per extension, per address,
                    # so a caller cannot try PINs call after call
                    if self.sw.guard.failed(addr[0], "pin:" + a[1], now, "wrong PIN") is not None:
                        self._act(c, c.att.pin_locked(now), now)
                        return
            elif kind == "hangup":
                if c.playing:
                    c.after_play = ("hangup",)
                else:
                    self._bye(c, now)
            # "menu": only for traces

    def _place(self, c, target, now, settle=SETTLE_MS):
        """Put the caller through to target: a second call, from AGENT, through the proxy."""
        sw = self.sw
        call_id = "%s@attendant" % sw.tag()
        number = target[1] if target[1] is not None else target[0]
        try:
            session, offer = self.media.offer(c.media)
        except ValueError:
            self.sw.count("transfer not placed: no media")
            return self._transfer_failed(c, now)
        frm = _from_caller(c.theirs)
        req = make_request(
            "INVITE",
            "sip:%s@%s" % (number, sw.me),
            "%s;tag=%s" % (frm, sw.tag()),
            "<sip:%s@%s>" % (number, sw.me),
            call_id,
            1,
            contact="<sip:attendant@%s>" % sw.me,
            body=offer,
            content_type="application/sdp",
        )
        out = _Out(call_id, req, target)
        out.media = session
        session.owner = c
        self.placing[call_id] = (target, c.caller, c)
        try:
            out.tx = self.tl.send_request(req, SWITCH, now)
        except TransactionError:
            self.placing.pop(call_id, None)
            self.media.close(session)
            sw.count("transfer not placed: transaction table full")
            return self._transfer_failed(c, now)
        c.out = out
        self.outs[call_id] = c
        if self.media.has_prompt(RINGBACK) and (c.att is not None or c.what.get("inbound")):
            self.media.loop(c.media, RINGBACK)  # the branch's own, after "connecting you to ..."
        else:
            self.media.ringback(c.media, True, now + settle)

    def _response(self, tx, resp, now):
        call_id = resp.call_id()
        mine = self.calls.get(call_id)
        if mine is not None:  # in the caller's dialog: our re-INVITE's answer, or our BYE's
            return self._moved_a(mine, resp, now)
        gone = self.ending.get(call_id)
        if gone is not None:
            return self._given_up(gone, resp, now)
        c = self.outs.get(call_id)
        if c is None or c.out is None or c.out.call_id != call_id:
            return
        out = c.out
        cseq = resp.cseq()
        if cseq is None or cseq[1] != "INVITE":
            return  # our CANCEL's or BYE's answer
        if c.moving is not None and cseq[0] == c.moving[1].cseq()[0]:
            return self._moved_b(c, resp, cseq[0], now)
        status = resp.status
        if status < 200:
            out.heard = True
            if out.cancelled:
                self._cancel(out, now)
            elif status > 100 and resp.body and c.state in (_EARLY, _ANSWERED) and c.media.relay is None:
                self._early_media(c, out, resp, now)
            return
        if status >= 300:
            return self._out_failed(c, out, status, now)
        # 2xx: ACK it end to end (13.2.2.4), even the one we no longer want
        out.to = resp.get("to")
        out.remote = _contact(resp) or str(out.invite.uri)
        if out.answered:  # a retransmission of a 2xx (the INVITE's, or a re-INVITE's): ACK again
            return self._ack_in(out.remote, out.invite.get("from"), out.to, out.call_id, cseq[0], out.route)
        out.route = list(reversed(resp.get_all("record-route")))  # a UAC's route set (12.1.2)
        self._send_ack(out)
        out.answered = True
        if c.state == _ENDED or out.cancelled:
            self._bye_out(out, now)
            self.outs.pop(call_id, None)
            return
        try:
            self.media.accept(out.media, resp.body, resp.get("content-type"))
        except ValueError:
            self.sw.count("transfer hung up: the callee's SDP is unusable")
            self._bye_out(out, now)
            self.outs.pop(call_id, None)
            self.placing.pop(call_id, None)
            self.media.close(out.media)
            c.out = None
            return self._transfer_failed(c, now)
        self.media.relay(c.media, out.media)  # ends our prompts, ringback and loop on both legs
        was_early = c.state == _EARLY
        if c.state == _EARLY:  # an anchored call: the target answered, so now the caller is
            ok = make_response(c.invite, 200, to_tag=c.tag, headers=self._sdp_headers(), body=c.answer)
            self.tl.respond(c.tx, ok, now)
            c.ok = ok
            c.ok_next = now + T1
            c.ok_until = now + ACK_WAIT
            c.invite = c.tx = None
        c.state = _TALKING
        if was_early:
            self._held(c)  # a hold the caller took by UPDATE while it rang: the music now
        else:
            self._go_direct(c, now)

    def _early_media(self, c, out, resp, now):
        """A 18x with SDP from the far end (the provider's announcements, its ringing): the
        caller hears that instead of our ringback, relayed."""
        try:
            self.media.accept(out.media, resp.body, resp.get("content-type"))
        except ValueError:
            return  # unusable: our ringback goes on
        self.media.relay(c.media, out.media)  # ends our prompts, ringback and loop on both legs

    def _given_up(self, out, resp, now):
        """A response for a transfer leg whose caller is gone: the CANCEL that waited for a
        provisional goes now; a 2xx that crossed it is ACKed and hung up (15: BYE, not silence)."""
        cseq = resp.cseq()
        if cseq is None or cseq[1] != "INVITE":
            return
        if resp.status < 200:
            out.heard = True
            return self._cancel(out, now)
        del self.ending[out.call_id]
        if resp.status < 300:
            out.to = resp.get("to")
            out.remote = _contact(resp) or str(out.invite.uri)
            out.route = list(reversed(resp.get_all("record-route")))
            self._send_ack(out)
            self._bye_out(out, now)

    def _out_failed(self, c, out, status, now):
        """The call we placed ended without an answer (a final failure, or no response at all)."""
        self.outs.pop(out.call_id, None)
        self.placing.pop(out.call_id, None)
        self.media.close(out.media)
        c.out = None
        if c.state != _ENDED and not out.cancelled:
            self._transfer_failed(c, now, status)

    def _transfer_failed(self, c, now, status=408):
        if c.state == _ENDED:
            return
        self.media.ringback(c.media, False, now)
        self.media.loop(c.media, None)
        if c.att is not None:
            return self._act(c, c.att.transfer_failed(now), now)
        if c.state == _EARLY:  # an anchored call: the caller gets the target's answer
            # a redirect is not passed on: the target was the switch's choice, not the caller's
            status = status if status >= 400 else 480
            self.tl.respond(c.tx, make_response(c.invite, status, to_tag=c.tag), now)
            self._end(c, now, "nobody answered")

    # ---- the end ------------------------------------------------------------------------------

    def _end(self, c, now, why):
        """The call is over for the caller's side (their BYE came, or ours was sent)."""
        if c.state == _ENDED:
            return
        if c.tx is not None:  # an anchored call still ringing: its INVITE gets its answer
            self.tl.respond(c.tx, make_response(c.invite, 487, to_tag=c.tag), now)
            c.tx = c.invite = None
        c.state = _ENDED
        self.calls.pop(c.call_id, None)
        out = c.out
        if out is not None:
            if out.answered:
                self._bye_out(out, now)
            elif out.tx is not None:
                out.cancelled = True
                self._cancel(out, now)
                self.ending[out.call_id] = out  # until its final answer (or Timer B)
            self.outs.pop(out.call_id, None)
            self.placing.pop(out.call_id, None)
            self.media.close(out.media)
            c.out = None
        self.media.close(c.media)
        c.att = None
        if why == "the callee hung up":
            self._bye(c, now, ended=True)

    def _bye(self, c, now, ended=False):
        """Hang the caller up: BYE in the caller's dialog (its Record-Route leads through the switch)."""
        if not ended:
            self._end(c, now, "the attendant hung up")
        c.cseq += 1
        req = make_request(
            "BYE", c.remote, c.ours, c.theirs, c.call_id, c.cseq, headers=[("Route", r) for r in c.route]
        )
        try:
            self.tl.send_request(req, SWITCH, now)
        except TransactionError:
            self.sw.count("bye not sent: transaction table full")

    def _bye_out(self, out, now):
        out.cseq += 1
        req = make_request(
            "BYE", out.remote, out.invite.get("from"), out.to, out.call_id, out.cseq,
            headers=[("Route", r) for r in out.route],
        )  # fmt: skip
        try:
            self.tl.send_request(req, SWITCH, now)
        except TransactionError:
            self.sw.count("bye not sent: transaction table full")

    def _cancel(self, out, now):
        if not out.heard or out.tx is None:
            return  # 9.1: not before a provisional; the final answer then gets our BYE or nothing
        try:
            self.tl.send_request(make_cancel(out.invite), SWITCH, now)
        except TransactionError:
            self.sw.count("cancel not sent: transaction table full")
        out.tx = None

    def _send_ack(self, out):
        self._ack_in(out.remote, out.invite.get("from"), out.to, out.call_id, 1, out.route)

    def _send(self, msg):
        self._out.append(msg.to_bytes())


def _contact(msg):
    try:
        contacts = msg.contacts()
    except ParseError:
        return None
    if not contacts or contacts[0].is_star:
        return None
    return str(contacts[0].uri)


def _from_caller(value):
    """The From of our INVITE to the target: the caller's name and number, without their tag."""
    semi = value.find(">")
    return value[: semi + 1] if semi >= 0 else value.split(";")[0]

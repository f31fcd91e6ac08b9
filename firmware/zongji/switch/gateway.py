"""The trunk gateway: calls out through the SIP provider, as a back-to-back user agent.

A call to a colleague's mobile or an outside number cannot simply be proxied to the provider:
the provider challenges us with 401/407 for the account in [trunk], expects its own From and
a CSeq that grows with each answer, and knows nothing of the phone. So the proxy hands a trunk
leg of a ring plan to `ring()`, and the gateway places a call of its own to the provider
(sip:NUMBER@provider, From the trunk account, the phone's SDP as its offer), answering
challenges with the trunk's ClientAuth. Toward the phone it is one more leg of the call
(legs.Leg): provisional and final answers come back as responses to the phone's INVITE, with
our Contact so the phone's ACK and BYE reach us, and the provider's SDP so media still flows
end to end.

Once answered, the two dialogs are bridged: a BYE on either side ends both. Toward the caller
the gateway is the UAS, so it does what a UAS core does with its 2xx (RFC 3261 13.3.1.4): it
sends it again at T1, doubling to T2, until the caller's ACK comes, and when none has come in
64*T1 it hangs both sides up. A lost 200 no longer leaves a phone ringing while the far end
talks, and a forged INVITE from the provider's address (UDP cannot tell, and its sender never
sees our To tag to ACK with) costs the branch at most 32 s of an answered call out. Re-INVITEs across
the bridge (hold) are refused with 488 for now; the call stays up. The provider's in-dialog
requests are accepted only for a call it answered, with its own tags; a BYE before the answer
(which RFC 3261 section 15 does not allow a callee) ends that leg: it is CANCELled.

Every leg leaves `calls` when its call ends, whatever ended it (answered and hung up, failed,
CANCELled, timed out), so the table is bounded by the proxy's calls. Calls *from* the provider
need no gateway: the proxy rings the DID's target like a phone's call.
"""

from zongji.call import state
from zongji.sip.message import make_request, make_response
from zongji.sip.transaction import TransactionError
from zongji.sip.uri import ParseError
from zongji.switch.legs import Leg
from zongji.switch.trunk import ClientAuth

MAX_AUTH = 2  # digest answers per call before we give up on the provider
T1, T2 = 500, 4000  # ms: the 2xx toward the caller is sent again at T1, doubling to T2 ...
ACK_WAIT = 64 * T1  # ... until its ACK comes, or this long after the answer: both hung up


class TrunkLeg(Leg):
    """A leg of a proxy Call that is really a call of ours to the provider."""

    trunk = True

    def __init__(self, gateway, call, number, now):
        Leg.__init__(self, gateway, call, number, now)
        self.tag = None  # our To tag toward the phone
        self.auth_tries = 0
        self.dialog = None  # (remote target uri, route set, To with the provider's tag)
        self.cseq = 1
        self.back = None  # (To, From) of the phone's INVITE: to hang the phone up
        self.ok = None  # our 2xx to the caller, until the caller ACKs it
        self.ok_next = None  # when it is sent again (None: ACKed, or never answered)
        self.ok_every = T1
        self.ok_until = None  # no ACK by then: both sides hung up


class Gateway:
    def __init__(self, switch, trunk_cfg, addr, random_bytes=None):
        self.sw = switch
        self.cfg = trunk_cfg
        self.addr = addr  # (ip, port) of the provider, resolved by the shell
        self.auth = ClientAuth(trunk_cfg["username"], trunk_cfg["password"], random_bytes)
        port = trunk_cfg.get("port") or 5060
        self.domain = trunk_cfg["host"] + ("" if port == 5060 else ":%d" % port)
        self.calls = {}  # the provider leg's Call-ID -> TrunkLeg, while its call lasts

    # ---- out: ringing a number through the provider --------------------------------------------

    def ring(self, call, number, now):
        sw = self.sw
        leg = TrunkLeg(self, call, number, now)
        leg.tag = sw.tag()
        leg.back = (call.invite.get("to"), call.invite.get("from"))
        call_id = "%s@%s" % (sw.tag(), sw.host)
        req = make_request(
            "INVITE",
            "sip:%s@%s" % (number, self.domain),
            "<sip:%s@%s>;tag=%s" % (self.cfg["username"], self.domain, sw.tag()),
            "<sip:%s@%s>" % (number, self.domain),
            call_id,
            1,
            contact="<sip:%s@%s>" % (self.cfg["username"], sw.me),
            body=call.invite.body,
            content_type=call.invite.get("content-type"),
        )
        # a B2BUA still carries the hop count on: a DID whose target forwards back to the branch
        # must hit 483 somewhere, not loop until every line is taken
        mf = call.invite.max_forwards()
        req.set("max-forwards", 70 if mf is None else max(0, min(70, mf - 1)))
        if not self._send(leg, req, now):
            return 0
        self.calls[call_id] = leg
        call.legs.append(leg)
        return 1

    def _send(self, leg, req, now):
        try:
            tx = self.sw.tl.send_request(req, self.addr, now)
        except TransactionError:
            self.sw.count("trunk leg not rung: transaction table full")
            return False
        tx.tu = leg
        leg.request = req
        leg.addr = self.addr
        leg.tx = tx
        leg.heard = False  # a new transaction (the digest retry): CANCEL waits for its own 1xx
        leg.cseq = req.cseq()[0]
        return True

    def leg_response(self, leg, resp, now):
        """A response from the provider to our INVITE (legs.Leg.on_response sends it here)."""
        call = leg.call
        status = resp.status
        if status in (401, 407) and leg.auth_tries < MAX_AUTH and leg.final is None and call.life.live:
            leg.auth_tries += 1
            again = self.auth.retry(leg.request, resp)
            if again is not None and self._send(leg, again, now):
                return
            status = 503  # the provider refuses our account: the caller hears "unavailable"
        if 200 <= status < 300:
            self._ack(leg, resp)
            route = list(reversed(resp.get_all("record-route")))
            contacts = resp.contacts()
            target = contacts[0].uri if contacts and contacts[0].uri != "*" else leg.request.uri  # *: no target
            dialog = (target, route, resp.get("to"))
            if leg.dialog is not None:
                # a retransmitted 200 is ACKed again, nothing else; a 200 with another To tag
                # is a second dialog (the provider forked): ACKed, and hung up at once (13.2.2.4)
                if _tag(dialog[2]) != _tag(leg.dialog[2]):
                    self.sw.count("second answer from the provider hung up")
                    self._send_bye(leg, dialog, now)
                return
            leg.dialog = dialog
            if not call.life.live:  # someone else answered first, or the caller gave up
                leg.final = status
                self._bye(leg, now)
                return
        if status == 100 or not call.life.live:
            if status >= 200 and leg.final is None:
                leg.final = status
            return self.sw.proxy.leg_response(leg, resp, now) if status < 200 else None
        out = make_response(call.invite, status, resp.reason, to_tag=leg.tag, body=resp.body)
        if resp.body and resp.get("content-type"):
            out.add("content-type", resp.get("content-type"))
        if status < 300:
            out.add("contact", "<sip:%s>" % self.sw.me)
        self.sw.proxy.leg_response(leg, out, now)
        if status < 300 and call.bridge is leg and leg.ok is None:
            leg.ok = out
            leg.ok_next = now + T1
            leg.ok_until = now + ACK_WAIT

    # ---- the caller's ACK (we are the UAS toward the caller) -----------------------------------

    def ack_deadline(self, call):
        """When the gateway next needs the timer for `call`: its 2xx sent again, or given up."""
        leg = call.bridge
        return None if leg is None or leg.ok_next is None else min(leg.ok_next, leg.ok_until)

    def ack_timer(self, call, now):
        leg = call.bridge
        if leg is None or leg.ok_next is None:
            return
        if now >= leg.ok_until:
            leg.ok = leg.ok_next = None
            self.sw.count("answered call hung up: the caller never ACKed")
            self._bye(leg, now)
            self._bye_caller(call, leg, now)
            self.sw.proxy.hung_up(call, now, "the switch: the caller never acknowledged the answer")
            return
        if now >= leg.ok_next:
            self.sw.proxy.resend(call, leg.ok, now)
            leg.ok_every = min(leg.ok_every * 2, T2)
            leg.ok_next = now + leg.ok_every

    def leg_failed(self, leg, now, status=408):
        self.sw.proxy.leg_failed(leg, now, status)

    def hang_up_extra(self, leg, resp, now):
        self._bye(leg, now)

    def _ack(self, leg, resp):
        contacts = resp.contacts()
        target = contacts[0].uri if contacts and contacts[0].uri != "*" else leg.request.uri  # *: no target
        ack = make_request("ACK", target, leg.request.get("from"), resp.get("to"), leg.request.call_id(), leg.cseq)
        for r in reversed(resp.get_all("record-route")):
            ack.add("route", r)
        self.sw.prepare_forward(ack, record_route=False)
        self.sw.tl.send_stateless(ack, self.addr)

    def forget(self, call):
        """The call is over: its legs leave the table (those still being CANCELled live on in
        their transactions, which hang up any late answer)."""
        for leg in call.legs:
            if leg.trunk and leg.request is not None:
                self.calls.pop(leg.request.call_id(), None)

    # ---- the bridge ----------------------------------------------------------------------------

    def caller_request(self, call, tx, req, now):
        """An in-dialog request from the phone (a party of the call) answered through the trunk."""
        leg = call.bridge
        if tx is None:  # the phone's ACK for our 200: ends here
            if req.method == "ACK":
                leg.ok = leg.ok_next = None
            return
        if req.method == "BYE":
            self.sw.reply(tx, 200, now)
            self._bye(leg, now)
            self.sw.proxy.hung_up(call, now, "the caller")
        else:
            self.sw.reply(tx, 488, now, reason="Not Supported Across The Trunk")

    def provider_leg(self, req):
        """The leg an in-dialog request from the provider's address belongs to, or None: one of
        our calls out, with our From tag as its To tag and, once answered, its own tag as From."""
        leg = self.calls.get(req.call_id())
        if leg is None:
            return None
        frm = req.from_addr()
        to = req.to_addr()
        ours = leg.request.from_addr()
        if frm is None or to is None or ours is None or to.tag != ours.tag:
            return None
        if leg.dialog is not None:
            theirs = _tag(leg.dialog[2])
            if frm.tag != theirs:
                return None
        return leg

    def provider_request(self, tx, req, now):
        """An in-dialog request from the provider; False when it is none of our calls."""
        leg = self.provider_leg(req)
        if leg is None:
            return False
        call = leg.call
        if req.method == "ACK":
            return True
        if req.method != "BYE":
            self.sw.reply(tx, 488, now, reason="Not Supported Across The Trunk")
            return True
        self.sw.reply(tx, 200, now)
        if leg.dialog is None or call.bridge is not leg:
            # before the answer (not the callee's to send, 15): end this leg only
            leg.send_cancel(self.sw, now)
            self.sw.proxy.leg_failed(leg, now, 480)
            return True
        self.calls.pop(req.call_id(), None)
        self._bye_caller(call, leg, now)
        self.sw.proxy.hung_up(call, now, "the provider")
        return True

    def _bye(self, leg, now):
        """Hang up our call to the provider."""
        self.calls.pop(leg.request.call_id(), None)
        if leg.dialog is None:
            return
        leg.life.go(state.HANGUP, now)
        self._send_bye(leg, leg.dialog, now)

    def _send_bye(self, leg, dialog, now):
        target, route, to = dialog
        leg.cseq += 1
        bye = make_request("BYE", target, leg.request.get("from"), to, leg.request.call_id(), leg.cseq)
        for r in route:
            bye.add("route", r)
        self.auth.authorize(bye)
        try:
            self.sw.tl.send_request(bye, self.addr, now)
        except TransactionError:
            self.sw.count("bye not sent: transaction table full")

    def _bye_caller(self, call, leg, now):
        """The provider hung up: hang up the phone's side of the bridge."""
        d = call.dialog
        to, frm = leg.back
        try:
            uri = self.sw.parse_uri(d.targets[0])
        except ParseError:
            return
        bye = make_request("BYE", uri, "%s;tag=%s" % (to, leg.tag), frm, call.call_id, 1)
        self.sw.prepare_forward(bye, record_route=False)
        try:
            self.sw.tl.send_request(bye, d.addrs[0], now)
        except TransactionError:
            self.sw.count("bye not sent: transaction table full")


def _tag(header):
    # ';tag=' of a To/From header text
    i = header.find(";tag=") if header else -1
    if i < 0:
        return None
    return header[i + 5 :].split(";", 1)[0].strip()

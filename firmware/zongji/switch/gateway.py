"""The trunk gateway: calls out through the SIP provider, as a back-to-back user agent.

A call to a colleague's mobile or an outside number cannot simply be proxied to the provider:
the provider challenges us with 401/407 for the account in [trunk], expects its own From and
a CSeq that grows with each answer, and knows nothing of the phone. So the proxy hands a trunk
leg of a ring plan to `ring()`, and the gateway places a call of its own to the provider
(sip:NUMBER@provider, From the trunk account, the phone's SDP as its offer), answering
challenges with the trunk's ClientAuth. Toward the phone it looks like one more forked branch:
provisional and final answers come back as responses to the phone's INVITE, with our Contact
so the phone's ACK and BYE reach us, and the provider's SDP so media still flows end to end.

Once answered, the two dialogs are bridged: a BYE on either side ends both. Re-INVITEs across
the bridge (hold) are refused with 488 for now; the call stays up.

Calls *from* the provider need no gateway: the switch proxies them to the DID's target like a
phone's call (see Switch._invite), which is also how they reach a follow-me mobile again.
"""

from zongji.sip.message import make_request, make_response
from zongji.sip.transaction import TransactionError, make_cancel
from zongji.switch.trunk import ClientAuth

MAX_AUTH = 2  # digest answers per call before we give up on the provider


class TrunkBranch:
    """A forked branch of a proxy Call that is really a call of ours to the provider."""

    b2bua = True

    def __init__(self, call, number):
        self.call = call
        self.number = number
        self.request = None  # our INVITE to the provider (the latest, with credentials)
        self.addr = None
        self.tx = None
        self.provisional = False
        self.final = None
        self.cancel_pending = False
        self.tag = None  # our To tag toward the phone
        self.auth_tries = 0
        self.dialog = None  # (remote target uri, route set, To with the provider's tag)
        self.cseq = 1


class Gateway:
    def __init__(self, switch, trunk_cfg, addr, random_bytes=None):
        self.sw = switch
        self.cfg = trunk_cfg
        self.addr = addr  # (ip, port) of the provider, resolved by the shell
        self.auth = ClientAuth(trunk_cfg["username"], trunk_cfg["password"], random_bytes)
        port = trunk_cfg.get("port") or 5060
        self.domain = trunk_cfg["host"] + ("" if port == 5060 else ":%d" % port)
        self.calls = {}  # the provider leg's Call-ID -> TrunkBranch, while it lasts

    # ---- out: ringing a number through the provider --------------------------------------------

    def ring(self, call, number, now):
        sw = self.sw
        branch = TrunkBranch(call, number)
        branch.tag = sw.tag()
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
        if not self._send(branch, req, now):
            return 0
        self.calls[call_id] = branch
        call.branches.append(branch)
        return 1

    def _send(self, branch, req, now):
        try:
            tx = self.sw.tl.send_request(req, self.addr, now)
        except TransactionError:
            return False
        tx.tu = branch
        branch.request = req
        branch.addr = self.addr
        branch.tx = tx
        branch.cseq = req.cseq()[0]
        return True

    def response(self, branch, resp, now):
        """A response from the provider to our INVITE."""
        call = branch.call
        proxy = self.sw.proxy
        status = resp.status
        if status in (401, 407) and branch.auth_tries < MAX_AUTH and branch.final is None:
            branch.auth_tries += 1
            again = self.auth.retry(branch.request, resp)
            if again is not None and self._send(branch, again, now):
                return
            status = 503  # the provider refuses our account: the caller hears "unavailable"
        if status == 100:
            return
        if 200 <= status < 300:
            self._ack(branch, resp)
            if branch.dialog is not None:
                return  # a retransmitted 200: ACKed again, nothing else
            route = list(reversed(resp.get_all("record-route")))
            contacts = resp.contacts()
            target = contacts[0].uri if contacts else branch.request.uri
            branch.dialog = (target, route, resp.get("to"))
            if call.done:  # someone else answered first, or the caller gave up: hang this up
                self._bye(branch, now)
                return
        out = make_response(call.invite, status, resp.reason, to_tag=branch.tag, body=resp.body)
        if resp.body and resp.get("content-type"):
            out.add("content-type", resp.get("content-type"))
        if status < 300:
            out.add("contact", "<sip:%s>" % self.sw.me)
        proxy.response(branch, out, now)

    def _ack(self, branch, resp):
        contacts = resp.contacts()
        target = contacts[0].uri if contacts else branch.request.uri
        ack = make_request(
            "ACK", target, branch.request.get("from"), resp.get("to"), branch.request.call_id(), branch.cseq
        )
        for r in reversed(resp.get_all("record-route")):
            ack.add("route", r)
        self.sw.prepare_forward(ack, record_route=False)
        self.sw.tl.send_stateless(ack, self.addr)

    def cancel(self, branch, now):
        if branch.final is not None or branch.tx is None:
            return
        if not branch.provisional:
            branch.cancel_pending = True
            return
        branch.cancel_pending = False
        branch.final = 487
        try:
            self.sw.tl.send_request(make_cancel(branch.request), self.addr, now).tu = None
        except TransactionError:
            pass

    # ---- the bridge ----------------------------------------------------------------------------

    def caller_request(self, call, tx, req, now):
        """An in-dialog request from the phone on a call answered through the trunk."""
        branch = call.bridge
        if tx is None:  # the phone's ACK for our 200: ends here
            return
        if req.method == "BYE":
            self.sw.reply(tx, 200, now)
            self._bye(branch, now)
            self.sw.proxy.end(call, now)
        else:
            self.sw.reply(tx, 488, now, reason="Not Supported Across The Trunk")

    def provider_request(self, tx, req, now):
        """An in-dialog request from the provider; False when it is none of our calls."""
        branch = self.calls.get(req.call_id())
        if branch is None:
            return False
        call = branch.call
        if req.method == "BYE":
            self.sw.reply(tx, 200, now)
            self.calls.pop(req.call_id(), None)
            self._bye_caller(call, branch, now)
            self.sw.proxy.end(call, now)
        else:
            self.sw.reply(tx, 488, now, reason="Not Supported Across The Trunk")
        return True

    def _bye(self, branch, now):
        """Hang up our call to the provider."""
        self.calls.pop(branch.request.call_id(), None)
        if branch.dialog is None:
            return
        target, route, to = branch.dialog
        branch.cseq += 1
        bye = make_request("BYE", target, branch.request.get("from"), to, branch.request.call_id(), branch.cseq)
        for r in route:
            bye.add("route", r)
        self.auth.authorize(bye)
        try:
            self.sw.tl.send_request(bye, self.addr, now).tu = None
        except TransactionError:
            pass

    def _bye_caller(self, call, branch, now):
        """The provider hung up: hang up the phone's side of the bridge."""
        contact, to, frm, call_id = call.back
        if not contact:
            return
        uri = self.sw.parse_uri(contact)
        bye = make_request("BYE", uri, "%s;tag=%s" % (to, branch.tag), frm, call_id, 1)
        self.sw.prepare_forward(bye, record_route=False)
        addr = self.sw.next_hop(None, uri)
        if addr is None:
            return
        try:
            self.sw.tl.send_request(bye, addr, now).tu = None
        except TransactionError:
            pass

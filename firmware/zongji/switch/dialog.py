"""In-dialog requests and stray responses: passed on between a dialog's two parties, only.

A call the switch set up keeps, once answered, a Dialog: for each side its tag, the address
the call was set up with (where the caller's INVITE came from; where the answering phone was
rung) and its remote target (its Contact). Then, for BYE, re-INVITE (hold), UPDATE, INFO
(DTMF), REFER, ACK and any other request carrying a To tag:

  - it is accepted only from one of the two parties: its From and To tags name the two sides
    of this dialog, one way round or the other, and it comes from that side's address. Anyone
    else, including someone who knows the Call-ID and both tags, gets 481, as for a dialog that
    does not exist, and it costs the switch no state (the switch answers it statelessly).
  - it goes only to the other party: to the address fixed at the answer, with the Request-URI
    set to that party's remote target and no Route left. A dialog never changes where it
    leads, so a re-INVITE whose Request-URI names the provider and an international number
    reaches the colleague's phone, never the provider (RFC 3261 16.12 loose routing serves a
    proxy whose route set it chose itself: here the route set beyond the switch is empty,
    since both parties are adjacent).
  - calls bridged through the trunk (gateway) pass the phone's side to the gateway.

Before the answer, each phone that sent a 1xx with a To tag has an early dialog with the
caller (Leg.early), held to the same rules: a PRACK for a reliable 183 (RFC 3262) or an UPDATE
goes between the caller and that phone only, and ends with the call's INVITE.

A response that matches no transaction (RFC 3261 16.7 on a 2xx that outlived the INVITE's
client transaction) goes on only when it is a 2xx to an INVITE from the answering party of a
dialog the switch set up, and then only to that dialog's caller. Everything else is dropped:
the switch reflects nothing to an address a response names.
"""

from zongji.sip.message import make_request
from zongji.sip.transaction import TransactionError
from zongji.sip.uri import ParseError
from zongji.switch.legs import Relay, strip_top_via
from zongji.switch.proxy import clone
from zongji.text import bare_host

CALLER = 0
CALLEE = 1
MAX_IN_FLIGHT = 4  # in-dialog requests of one call passed on and not yet answered


class Dialog:
    """Both sides of an answered call: tags, the addresses fixed at the answer, remote targets."""

    def __init__(self, caller_tag, caller_addr, caller_target, callee_tag, callee_addr, callee_target):
        self.tags = (caller_tag, callee_tag)
        self.addrs = (caller_addr, callee_addr)
        self.targets = (caller_target, callee_target)


def same_addr(a, b):
    return a is not None and b is not None and a[1] == b[1] and bare_host(a[0]) == bare_host(b[0])


def _side(d, from_tag, to_tag, addr):
    """CALLER or CALLEE when the tags name dialog d's sides, one way round or the other, and
    the request comes from that side's address; else None."""
    caller_tag, callee_tag = d.tags
    if from_tag == caller_tag and to_tag == callee_tag and same_addr(addr, d.addrs[CALLER]):
        return CALLER
    if from_tag == callee_tag and to_tag == caller_tag and same_addr(addr, d.addrs[CALLEE]):
        return CALLEE
    return None


def _first_contact(msg, fallback):
    try:
        contacts = msg.contacts()
    except ParseError:
        contacts = []
    uri = contacts[0].uri if contacts else "*"
    return str(uri) if uri != "*" else str(fallback)  # Contact: * names no target


class Dialogs:
    def __init__(self, switch):
        self.sw = switch

    def make(self, call, leg, resp):
        inv = call.invite
        frm = inv.from_addr()
        to = resp.to_addr()
        return Dialog(
            frm.tag if frm is not None else None,
            call.caller_addr,
            _first_contact(inv, frm.uri if frm is not None else inv.uri),
            to.tag if to is not None else None,
            leg.addr,
            _first_contact(resp, leg.request.uri),
        )

    def party(self, req, addr):
        """(call, side, dialog) when req comes from one of the two parties of a call's dialog,
        else None. Before the answer, the dialogs are the early ones of the legs still ringing
        (a 1xx with a To tag: PRACK for a reliable 183, UPDATE), each between the caller and
        the one phone that sent it."""
        call = self.sw.proxy.calls.get(req.call_id())
        if call is None:
            return None
        frm = req.from_addr()
        to = req.to_addr()
        if frm is None or to is None:
            return None
        if call.dialog is not None:
            side = _side(call.dialog, frm.tag, to.tag, addr)
            return None if side is None else (call, side, call.dialog)
        if not call.life.live:
            return None
        for leg in call.legs:
            d = leg.early
            if d is not None and leg.final is None:
                side = _side(d, frm.tag, to.tag, addr)
                if side is not None:
                    return call, side, d
        return None

    def in_dialog(self, tx, req, addr, now):
        """Pass an in-dialog request on (tx is None for the ACK of a 2xx)."""
        sw = self.sw
        found = self.party(req, addr)
        if found is None:
            sw.count("in-dialog request from no party of a dialog")
            if tx is not None:
                sw.reply(tx, 481, now)
            return
        call, side, d = found
        if call.bridge is not None:
            if side == CALLER:
                return sw.gateway.caller_request(call, tx, req, now)
            if tx is not None:  # the provider's side is the gateway's: it came in by another way
                sw.reply(tx, 481, now)
            return
        other = CALLEE if side == CALLER else CALLER
        if (req.method == "REFER" or req.get("refer-to") is not None) and sw.is_trunk(d.addrs[other]):
            # a transfer the provider would place on the branch's account, unchecked by any
            # class of service: the switch does not pass one on to the provider
            sw.count("transfer toward the provider refused")
            if tx is not None:
                sw.reply(tx, 403, now, reason="No Transfer Through The Trunk")
            return
        out = self._toward(req, d.targets[other])
        if out is None:
            if tx is not None:
                sw.reply(tx, 400, now, reason="Bad Remote Target")
            return
        dest = d.addrs[other]
        if tx is None:  # the ACK for a 2xx: forwarded statelessly (16.11)
            sw.tl.send_stateless(out, dest)
            return
        if call.relaying >= MAX_IN_FLIGHT:
            # a party flooding the other with INFO or re-INVITEs it does not answer would hold
            # a transaction each for 32 s: a dialog gets a few at once, the table stays for all
            sw.count("in-dialog request refused: too many in flight")
            return sw.reply(tx, 503, now, (("Retry-After", 1),))
        relay = Relay(sw, tx, req.method, now, call)
        try:
            relay.tx = sw.tl.send_request(out, dest, now)
        except TransactionError:
            relay._over()  # never in flight
            sw.count("in-dialog request not passed on: transaction table full")
            return sw.reply(tx, 503, now, (("Retry-After", 5),))
        relay.tx.tu = relay
        if relay.timer_c is not None:
            sw.proxy.relays.append(relay)
        if req.method == "BYE" and d is call.dialog:  # an early dialog's BYE: the INVITE ends it
            sw.proxy.hung_up(call, now, "the caller" if side == CALLER else "the callee")

    def _toward(self, req, target):
        """A copy of req for the other party: its remote target, no Route, our Via (16.6)."""
        try:
            uri = self.sw.parse_uri(target)
        except ParseError:
            return None
        out = clone(req)
        out.uri = uri
        out.set_all("route", [])
        self.sw.prepare_forward(out, record_route=False)
        return out

    def stray(self, resp, addr):
        """A response no transaction matched: see the module docstring."""
        sw = self.sw
        vias = resp.vias()
        cseq = resp.cseq()
        call = sw.proxy.calls.get(resp.call_id() or "")
        d = call.dialog if call is not None and call.bridge is None else None
        to = resp.to_addr()
        if (
            d is None
            or len(vias) < 2
            or vias[0].sent_by != sw.me
            or resp.status // 100 != 2
            or cseq is None
            or cseq[1] != "INVITE"
            or to is None
            or to.tag != d.tags[CALLEE]
            or not same_addr(addr, d.addrs[CALLEE])
        ):
            sw.count("stray response dropped")
            return
        sw.tl.send_stateless(strip_top_via(resp), d.addrs[CALLER])

    def hang_up_answer(self, request, resp, addr, now):
        """ACK a 2xx we do not want (a fork that answered second) and BYE it (RFC 3261 13.2.2.4, 15)."""
        sw = self.sw
        target = _first_contact(resp, request.uri)
        try:
            uri = sw.parse_uri(target)
        except ParseError:
            return
        cseq = request.cseq()[0]
        for method, n in (("ACK", cseq), ("BYE", cseq + 1)):
            msg = make_request(method, uri, request.get("from"), resp.get("to"), request.call_id(), n)
            sw.prepare_forward(msg, record_route=False)
            if method == "ACK":
                sw.tl.send_stateless(msg, addr)
                continue
            try:
                sw.tl.send_request(msg, addr, now)
            except TransactionError:
                sw.count("bye not sent: transaction table full")

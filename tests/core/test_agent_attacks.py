"""Attacks on the switch's own user agent and its media hub: anchored outside calls (spoofed
provider INVITEs, CANCEL and BYE at every moment), hold, and media moved phone to phone (RFC
3725: glare, retransmitted answers, a side leaving mid-move). Each test asserts what a user or
the operator would notice: a phone left ringing, a line never freed, media lost or sent to a
stranger, a call placed out."""

from _phones import SWITCH, ack_for_failure
from test_agent import (
    MEDIA_PORT,
    PROVIDER_MEDIA,
    _anchored_call,
    _answer,
    _answer_reinvite,
    _frames_to,
    _in_early_dialog,
    _ok_of,
    _outside_call,
    _put_through,
    _reinvite_from_callee,
    _sounds_net,
    answer_sdp,
    call,
    sdp,
    setup,
)
from zongji.media import rtp
from zongji.sip.message import Request, make_request, make_response


def _idle(net):
    """Nothing of any call is left: the agent's, the hub's, the proxy's."""
    agent = net.sw.agent
    left = {
        "agent.calls": agent.calls,
        "agent.outs": agent.outs,
        "agent.placing": agent.placing,
        "agent._expected": agent._expected,
        "hub.open": net.hub.open,
        "hub.legs": net.hub.legs,
        "proxy.calls": net.sw.proxy.calls,
    }
    return {k: v for k, v in left.items() if v}


def _requests(phone, method, call_id=None):
    return [m for m in phone.got if isinstance(m, Request) and m.method == method and call_id in (None, m.call_id())]


def _cancel_of(inv):
    return make_request("CANCEL", inv.uri, inv.get("from"), inv.get("to"), inv.call_id(), 1, via=inv.get("via"))


# ---- anchored outside calls -----------------------------------------------------------------------


def test_a_cancel_before_the_desk_said_anything_still_stops_it_ringing():
    """The outside caller gives up before the desk's first provisional (the switch's own 100
    comes 200 ms late): the agent may not CANCEL yet (RFC 3261 9.1), but must once it hears
    one, or the desk rings on for a caller long gone."""
    net, desk, prov = _sounds_net()
    inv = _outside_call(net, prov)  # desk does not answer at all yet
    assert desk.last("INVITE") is not None
    prov.send(_cancel_of(inv))
    assert prov.last(487) is not None
    net.advance(1000)
    desk.send(make_response(desk.last("INVITE"), 180, to_tag="d"))  # the desk, slow, rings now
    net.advance(100)
    assert desk.last("CANCEL") is not None
    desk.send(make_response(desk.last("CANCEL"), 200))
    desk.send(make_response(desk.last("INVITE"), 487, to_tag="d"))
    net.advance(40000)
    assert not _idle(net), _idle(net)


def test_a_desk_answering_with_unusable_sdp_fails_the_call_and_leaks_nothing():
    net, desk, prov = _sounds_net()
    desk.auto["INVITE"] = 180
    inv = _outside_call(net, prov)
    rung = desk.last("INVITE")
    resp = make_response(rung, 200, to_tag="t201")
    resp.add("contact", desk.contact)
    for rr in rung.get_all("record-route"):
        resp.add("record-route", rr)
    resp.body = b"v=0\r\n"  # no media line
    resp.add("content-type", "application/sdp")
    desk.send(resp)
    net.advance(40)
    assert desk.last("BYE") is not None  # the desk is not left off-hook to nobody
    finals = [m for m in prov.got if not isinstance(m, Request) and m.status >= 300 and m.call_id() == inv.call_id()]
    assert finals and prov.last(200) is None
    prov.send(ack_for_failure(inv, finals[-1]))
    desk.send(make_response(desk.last("BYE"), 200))
    net.advance(40000)
    assert not _idle(net), _idle(net)


def test_every_ending_of_an_anchored_call_leaks_nothing():
    # the provider hangs up while talking
    net, desk, prov = _sounds_net()
    inv, rung, ok = _anchored_call(net, desk, prov)
    prov.bye(inv, ok)
    assert desk.last("BYE") is not None
    net.advance(40000)
    assert not _idle(net), _idle(net)
    # the desk hangs up while talking
    net, desk, prov = _sounds_net()
    inv, rung, ok = _anchored_call(net, desk, prov)
    desk.bye(rung, _ok_of(desk, rung), uac=False)
    bye = prov.last("BYE")
    assert bye is not None
    prov.send(make_response(bye, 200))
    net.advance(40000)
    assert not _idle(net), _idle(net)
    # the provider never ACKs our 200: both sides are hung up
    net, desk, prov = _sounds_net()
    desk.auto["INVITE"] = 180
    _outside_call(net, prov)
    _answer(desk, desk.last("INVITE"))
    net.advance(40000)
    assert desk.last("BYE") is not None
    net.advance(40000)
    assert not _idle(net), _idle(net)
    # the desk refuses
    net, desk, prov = _sounds_net()
    desk.auto["INVITE"] = 603
    prov.auto["INVITE"] = 603
    _outside_call(net, prov)
    net.advance(40000)
    assert not _idle(net), _idle(net)


def test_a_spoofed_from_of_the_target_extension_still_rings_it():
    """An outside caller claiming to be 201 (its From) is not an extension: the desk rings."""
    net, desk, prov = _sounds_net()
    desk.auto["INVITE"] = 180
    inv = make_request(
        "INVITE", "sip:02155550199@%s:%d" % SWITCH, "<sip:201@127.0.0.1>;tag=pp", "<sip:02155550199@%s>" % SWITCH[0],
        "spoof-from", 1, via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKspoof", contact="<sip:201@127.0.0.1:5070>",
        body=sdp(PROVIDER_MEDIA[0], PROVIDER_MEDIA[1]), content_type="application/sdp",
    )  # fmt: skip
    prov.send(inv)
    assert desk.last("INVITE") is not None


def test_keys_from_an_anchored_outside_caller_dial_nothing():
    """No menu listens on an anchored call: an outside caller's keys cannot dial out."""
    net, desk, prov = _sounds_net()
    desk.auto["INVITE"] = 180
    inv = _outside_call(net, prov)
    early = prov.last(183)
    seq = 1
    for k in "900441234567890#":
        prov.cseq += 1
        info = make_request(
            "INFO", early.contacts()[0].uri, inv.get("from"), early.get("to"), inv.call_id(), 10 + seq,
            via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKinfo%d" % seq,
            body=("Signal=%s\r\nDuration=160\r\n" % k).encode(), content_type="application/dtmf-relay",
        )  # fmt: skip
        for r in reversed(early.get_all("record-route")):
            info.add("route", r)
        prov.send(info)
        seq += 1
    net.advance(2000)
    outs = [m for m in _requests(prov, "INVITE") if m.uri.user != "13800138001"]
    assert outs == []  # only 201's own follow-me may ever go out


def test_a_spoofed_provider_flood_leaves_staff_a_quarter_of_the_lines():
    """INVITEs from the provider's address (UDP cannot prove it) take at most the provider's
    share of the lines, the agent's second calls for anchored ones included: staff can still
    call each other."""
    net, desk, prov = _sounds_net()
    desk.auto["INVITE"] = 180
    cap = net.sw.proxy.max_calls
    for i in range(cap + 8):
        _outside_call(net, prov, call_id="flood-%d" % i, media=(PROVIDER_MEDIA[0], 7002 + 2 * i))
    quarter = max(1, cap // 4)
    assert len(net.sw.proxy.calls) <= cap - quarter


def test_an_outside_sdp_naming_another_calls_media_address_steals_nothing():
    """A spoofed outside call whose SDP points at the media address of a call in progress must
    not take that call's media over (the hub maps peers by address), nor play its ringback
    into it."""
    net, desk, prov = _sounds_net()
    inv, rung, ok = _anchored_call(net, desk, prov)
    victim = (desk.addr[0], 5000)  # the desk's media, relayed to the provider's caller
    evil = make_request(
        "INVITE", "sip:02155550199@%s:%d" % SWITCH, "<sip:666@127.0.0.1>;tag=evil", "<sip:02155550199@%s>" % SWITCH[0],
        "evil", 1, via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKevil", contact="<sip:666@127.0.0.1:5070>",
        body=sdp(victim[0], victim[1]), content_type="application/sdp",
    )  # fmt: skip
    desk.auto["INVITE"] = 180
    prov.send(evil)
    net.advance(200)
    before = len(net.rtp.get(PROVIDER_MEDIA, []))
    net.send_rtp(rtp.build(0, 77, 16000, 0xBEEF, b"\x44" * 160), victim)
    assert _frames_to(net, PROVIDER_MEDIA, before) == [b"\x44" * 160]  # the call still carries the desk's voice
    # and nothing of the spoofed call's (its ringback) went to the desk's media port
    assert not [p for p in net.rtp.get(victim, []) if p.ssrc != 0xCAFE and bytes(p.payload)[:1] == b"\x55"]


def test_a_reinvite_on_a_ringing_anchored_call_changes_nothing():
    """A re-INVITE in the early dialog (RFC 3261 14.2: not before the INVITE's final answer)
    is refused and does not move the caller's media elsewhere."""
    net, desk, prov = _sounds_net()
    desk.auto["INVITE"] = 180
    inv = _outside_call(net, prov)
    _in_early_dialog(prov, inv, "INVITE", "reearly", sdp("10.9.9.9", 9999))
    got = [m for m in prov.got if not isinstance(m, Request) and m.cseq() == (2, "INVITE")]
    assert got and got[-1].status >= 400
    net.advance(200)
    assert not net.rtp.get(("10.9.9.9", 9999))


# ---- media phone to phone (RFC 3725) --------------------------------------------------------------


def _direct(net, caller, target):
    rung = _put_through(net, caller, target)
    _answer_reinvite(caller, 4000)
    net.advance(40)
    _answer_reinvite(target, 5000)
    net.advance(40)
    assert net.sw.counters.get("media direct phone to phone") == 1
    return rung


def _reinvite_from_caller(caller, invite, ok, body):
    caller.cseq += 1
    req = make_request(
        "INVITE", ok.contacts()[0].uri, invite.get("from"), ok.get("to"), invite.call_id(), caller.cseq,
        via="SIP/2.0/UDP %s:%d;branch=z9hG4bKcre%d" % (caller.addr[0], caller.addr[1], caller.cseq),
        contact=caller.contact, body=body, content_type="application/sdp",
    )  # fmt: skip
    for r in reversed(ok.get_all("record-route")):
        req.add("route", r)
    caller.send(req)
    return [m for m in caller.got if not isinstance(m, Request) and m.cseq() == (caller.cseq, "INVITE")]


def _menu_call(net, caller, target):
    """caller in the menus, put through to target (answered): (invite, ok of the attendant)."""
    target.auto["INVITE"] = 180
    invite, ok = call(net, caller, "800")
    net.advance(200)
    from test_agent import Keypad

    Keypad(net, (caller.addr[0], 4000)).press("1")
    net.advance(400)
    _answer(target, target.last("INVITE"))
    net.advance(40)
    return invite, ok


def test_reinvite_glare_in_the_callers_dialog_is_answered_491():
    """Our re-INVITE (moving the caller's media to the target) and the caller's own cross:
    RFC 3261 14.2, the caller gets 491 and retries later; the media does not go direct on a
    half-agreed session."""
    net, phones = setup("202", "201")
    caller, target = phones
    invite, ok = _menu_call(net, caller, target)
    ours = caller.last("INVITE")
    assert ours is not None and answer_sdp(ours) == (target.addr[0], 5000)
    got = _reinvite_from_caller(caller, invite, ok, sdp(caller.addr[0], 4000) + b"a=sendonly\r\n")
    assert got and got[-1].status == 491


def test_a_caller_reinvite_while_the_target_is_being_moved_keeps_the_media_flowing():
    """The caller re-INVITEs (a new port) while our re-INVITE to the target is in flight: the
    target must not end up sending to the caller's old address while the caller sends to us."""
    net, phones = setup("202", "201")
    caller, target = phones
    invite, ok = _menu_call(net, caller, target)
    _answer_reinvite(caller, 4000)
    net.advance(40)
    to_a = target.last("INVITE")
    assert answer_sdp(to_a) == (caller.addr[0], 4000)
    got = _reinvite_from_caller(caller, invite, ok, sdp(caller.addr[0], 4002))
    assert got and got[-1].status in (200, 491)
    _answer_reinvite(target, 5000)
    net.advance(40)
    if got[-1].status == 200:  # the caller now sends to us from 4002: it must reach the target
        before = len(net.rtp.get((target.addr[0], 5000), []))
        net.send_rtp(rtp.build(0, 60, 9600, 0xCAFE, b"\x33" * 160), (caller.addr[0], 4002))
        assert len(net.rtp.get((target.addr[0], 5000), [])) == before + 1


def test_a_hangup_mid_move_leaks_nothing():
    for who in ("caller", "target"):
        net, phones = setup("202", "201")
        caller, target = phones
        invite, ok = _menu_call(net, caller, target)
        _answer_reinvite(caller, 4000)
        net.advance(40)
        rung = [m for m in _requests(target, "INVITE")][0]
        if who == "caller":
            caller.bye(invite, ok)
            bye = target.last("BYE")
        else:
            target.bye(rung, _ok_of(target, rung), uac=False)
            bye = caller.last("BYE")
        assert bye is not None
        (target if who == "caller" else caller).send(make_response(bye, 200))
        _answer_reinvite(target, 5000) if who == "caller" else None
        net.advance(40000)
        assert not _idle(net), (who, _idle(net))


def test_the_callers_new_port_after_a_revert_is_where_its_media_goes():
    """Media direct, then the target holds: the caller is re-INVITEd back to us and answers
    from a new port; the switch sends and listens there, not at the old one."""
    net, phones = setup("202", "201")
    caller, target = phones
    rung = _direct(net, caller, target)
    held = _reinvite_from_callee(target, rung, _ok_of(target, rung), "sendonly")
    assert held.status == 200 and answer_sdp(held) == (SWITCH[0], MEDIA_PORT)
    back = caller.last("INVITE")
    assert answer_sdp(back) == (SWITCH[0], MEDIA_PORT)
    _answer_reinvite(caller, 4002)
    net.advance(40)
    resumed = _reinvite_from_callee(target, rung, _ok_of(target, rung), "sendrecv")
    assert resumed.status == 200
    net.advance(40)
    before = len(net.rtp.get((target.addr[0], 5000), []))
    net.send_rtp(rtp.build(0, 70, 11200, 0xCAFE, b"\x33" * 160), (caller.addr[0], 4002))
    assert len(net.rtp.get((target.addr[0], 5000), [])) == before + 1


# ---- staff calls out, anchored for the hold music --------------------------------------------------


def _staff_out(net, desk, number, call_id):
    desk.calls += 1
    req = desk._request("INVITE", number, call_id, body=sdp(desk.addr[0], 4000))
    req.add("content-type", "application/sdp")
    desk.send(req)
    desk.send(ack_for_failure(req, desk.got[-1]))
    auth = desk.answer(req, desk.got[-1], "Proxy-Authenticate", "Proxy-Authorization")
    desk.send(auth)
    net.advance(100)
    return auth


def test_an_emergency_call_is_never_anchored():
    """110 goes to the provider with the phone's own SDP: nothing of the agent's in its path."""
    net, desk, prov = _sounds_net()
    prov.auto["INVITE"] = 180
    _staff_out(net, desk, "110", "sos")
    out = prov.last("INVITE")
    assert out is not None and out.uri.user == "110"
    assert answer_sdp(out) == (desk.addr[0], 4000)
    assert not net.sw.agent.calls and desk.last(183) is None


def test_a_staff_caller_giving_up_an_anchored_call_out_cancels_the_provider_and_leaks_nothing():
    net, desk, prov = _sounds_net()
    prov.auto["INVITE"] = 180
    auth = _staff_out(net, desk, "013800138000", "out-cancel")
    out = prov.last("INVITE")
    assert out is not None and answer_sdp(out) == (SWITCH[0], MEDIA_PORT)
    desk.send(make_request("CANCEL", auth.uri, auth.get("from"), auth.get("to"), auth.call_id(), auth.cseq()[0],
                           via=auth.get("via")))  # fmt: skip
    net.advance(100)
    assert desk.last(487) is not None
    cancel = prov.last("CANCEL")
    assert cancel is not None and cancel.call_id() == out.call_id()
    prov.send(make_response(cancel, 200))
    prov.send(make_response(out, 487, to_tag="far"))
    net.advance(40000)
    assert not _idle(net), _idle(net)


def test_an_update_on_a_ringing_anchored_call_is_answered_and_moves_the_ringback():
    # an UPDATE's offer gets its answer (RFC 3311: in the early dialog too), and the ringback
    # follows the new address: the UPDATE is in the provider's dialog (its Call-ID and our 183's
    # tag), which nobody off the path can know; a stranger's is 481 (test_agent_attacks' others)
    net, desk, prov = _sounds_net()
    desk.auto["INVITE"] = 180
    inv = _outside_call(net, prov)
    net.advance(200)
    before = len(_frames_to(net, PROVIDER_MEDIA))
    assert before >= 5  # the ringback goes to the caller
    _in_early_dialog(prov, inv, "UPDATE", "upd", sdp("10.9.9.9", 9999))
    ok = prov.last(200)
    assert ok is not None and ok.cseq()[1] == "UPDATE" and b"m=audio" in ok.body, ok
    assert ok.get("content-type") == "application/sdp"
    net.advance(400)
    assert len(net.rtp.get(("10.9.9.9", 9999), [])) >= 15  # the ringback, at the new address
    assert len(_frames_to(net, PROVIDER_MEDIA)) == before  # nothing more to the old one

"""The switch end to end, in memory: phones register, call by short number, groups ring."""

import _sites
from _phones import SWITCH, Net, ack_for_failure, registered
from _sites import build
from zongji.sip.message import make_request, make_response


def setup(*numbers):
    return registered(build(), *numbers)


def test_register_and_options():
    net, (a,) = setup("201")
    assert [e.kind for e in net.events if e.kind == "registered"] == ["registered"]
    req = a._request("OPTIONS", "201", "opt-1")
    a.send(req)
    assert a.got[-1].status == 200 and "INVITE" in a.got[-1].get_all("allow")
    assert a.got[-1].get("server") is None and a.got[-1].get("user-agent") is None


def test_call_by_short_number_rings_answers_and_hangs_up():
    net, (a, b) = setup("201", "202")
    b.auto["INVITE"] = 200
    invite = a.invite("202")
    forwarded = b.last("INVITE")
    assert forwarded is not None, b.got
    assert forwarded.get_all("record-route") == ["<sip:%s:%d;lr>" % SWITCH]
    assert forwarded.get("proxy-authorization") is None  # our credentials stay with us
    assert forwarded.body == invite.body  # SDP passes through: media goes phone to phone
    ok = a.last(200)
    assert ok is not None and ok.cseq()[1] == "INVITE"
    assert len(ok.get_all("via")) == 1  # our Via is stripped on the way back
    assert ok.body == b"v=0\r\n"
    a.ack_2xx(invite, ok)
    assert b.last("ACK") is not None
    b.auto["BYE"] = 200
    a.bye(invite, ok)
    assert b.last("BYE") is not None
    assert a.last(200).cseq()[1] == "BYE"
    calls = [e.record for e in net.events if e.kind == "call"]
    assert len(calls) == 1
    assert calls[0]["outcome"] == "answered" and calls[0]["from"] == "201" and calls[0]["to"] == "202"
    assert calls[0]["route"] == "ext 202 -> 202"


def test_invite_needs_authentication_and_wrong_password_is_like_unknown_user():
    net, (a,) = setup("201")
    stranger = net.phone("299", 5070, secret="guess")  # no such extension
    wrong = net.phone("202", 5071, secret="wrong-password")
    for p in (stranger, wrong):
        req = p._request("INVITE", "201", "x-%s" % p.number)
        p.send(req)
        first = p.got[-1]
        p.send(ack_for_failure(req, first))
        p.send(p.answer(req, first, "Proxy-Authenticate", "Proxy-Authorization"))
        again = p.got[-1]
        assert first.status == 407 and again.status == 407
        assert sorted(k for k, v in again.headers) == sorted(k for k, v in first.headers)
    assert a.last("INVITE") is None  # nothing reached the callee


def test_from_must_match_the_credentials():
    net, (a, b) = setup("201", "202")
    req = a._request("INVITE", "202", "spoof")
    req.set("from", "<sip:203@%s>;tag=spoof" % SWITCH[0])  # claims to be 203, authenticates as 201
    a.send(req)
    a.send(ack_for_failure(req, a.got[-1]))
    a.send(a.answer(req, a.got[-1], "Proxy-Authenticate", "Proxy-Authorization"))
    assert a.got[-1].status == 403
    assert b.last("INVITE") is None


def test_unknown_number_and_unregistered_target():
    net, (a,) = setup("201")
    a.invite("299")
    assert a.got[-1].status == 404
    a.invite("20")
    assert a.got[-1].status == 484
    a.invite("202")  # exists but has no phone registered
    assert a.got[-1].status == 480


def test_class_of_service_refuses_outside_calls_without_touching_the_trunk():
    net, (a,) = setup("210")  # class internal
    a.invite("013800138000")
    assert a.got[-1].status == 403
    assert not [d for d, addr in net.lost if d.startswith(b"INVITE")]  # nothing went to the trunk
    calls = [e.record for e in net.events if e.kind == "call"]
    assert calls[-1]["outcome"] == "refused" and calls[-1]["status"] == 403


def test_callee_busy():
    net, (a, b) = setup("201", "202")
    b.auto["INVITE"] = 486
    a.invite("202")
    assert a.got[-1].status == 486


def test_ring_all_group_forks_and_first_answer_wins():
    net, (a, s1, s2) = setup("203", "201", "202")
    s1.auto["INVITE"] = 180
    s2.auto["INVITE"] = 180
    a.invite("600")
    inv1, inv2 = s1.last("INVITE"), s2.last("INVITE")
    assert inv1 is not None and inv2 is not None
    assert 180 in a.statuses()
    ok = make_response(inv2, 200, to_tag="s2")
    ok.add("contact", s2.contact)
    s2.send(ok)
    assert a.last(200) is not None
    cancel = s1.last("CANCEL")
    assert cancel is not None  # the other phone stops ringing


def test_in_order_group_moves_on_after_member_timeout():
    net, (a, m1, m2) = setup("201", "203", "204")
    m1.auto["INVITE"] = 180
    m2.auto["INVITE"] = 180
    a.invite("601")  # in-order, 10 s per member
    assert m1.last("INVITE") is not None and m2.last("INVITE") is None
    net.advance(10000)
    assert m1.last("CANCEL") is not None
    assert m2.last("INVITE") is not None


def test_in_order_group_moves_on_at_once_when_a_member_is_busy():
    net, (a, m1, m2) = setup("201", "203", "204")
    m1.auto["INVITE"] = 486
    m2.auto["INVITE"] = 180
    a.invite("601")
    assert m2.last("INVITE") is not None


def test_caller_cancels_while_it_rings():
    net, (a, b) = setup("201", "202")
    b.auto["INVITE"] = 180
    invite = a.invite("202")
    from zongji.sip.transaction import make_cancel

    a.send(make_cancel(invite))
    assert 487 in a.statuses()
    assert b.last("CANCEL") is not None
    calls = [e.record for e in net.events if e.kind == "call"]
    assert calls[-1]["outcome"] == "cancelled"


def test_in_dialog_request_for_unknown_dialog_is_refused():
    net, (a, b) = setup("201", "202")
    bye = a._request("BYE", "202", "never-existed")
    bye.set("to", "<sip:202@%s>;tag=abc" % SWITCH[0])
    a.send(bye)
    assert a.got[-1].status == 481
    assert b.last("BYE") is None  # the switch is no open relay


def test_require_and_max_forwards_and_scheme():
    net, (a,) = setup("201")
    req = a._request("INVITE", "202", "req-1")
    req.add("proxy-require", "nosuchextension")  # asks something of us, the proxy
    a.send(req)
    assert a.got[-1].status == 420 and a.got[-1].get("unsupported") == "nosuchextension"
    req = a._request("OPTIONS", "202", "req-2")  # a request we answer ourselves
    req.add("require", "nosuchextension")
    a.send(req)
    assert a.got[-1].status == 420
    req = a._request("INVITE", "202", "mf-1")
    req.set("max-forwards", 0)
    a.send(req)
    assert a.got[-1].status == 483


def test_unknown_method_gets_405_with_allow():
    net, (a,) = setup("201")
    a.send(a._request("SUBSCRIBE", "202", "sub-1"))
    assert a.got[-1].status == 405 and "REGISTER" in a.got[-1].get_all("allow")


def test_a_mistyped_password_locks_that_extension_at_that_address_only():
    from _phones import Phone

    net, (a,) = setup("201")
    ip = "10.0.0.77"
    typo = Phone(net, "202", (ip, 5090), "typo")  # a softphone with a mistyped password
    net.phones[typo.addr] = typo
    for _ in range(12):
        req = typo._request("REGISTER", "202", "crack")
        typo.send(req)
        typo.send(typo.answer(req, typo.got[-1], "WWW-Authenticate", "Authorization"))
    locks = [e for e in net.events if e.kind == "locked"]
    assert [(e.ip, e.number) for e in locks] == [(ip, "202")] and "wrong password" in locks[0].reason
    assert not any(e.kind == "banned" for e in net.events)
    before = len(typo.got)
    req = typo._request("REGISTER", "202", "crack")
    typo.send(req)
    typo.send(typo.answer(req, typo.got[-1], "WWW-Authenticate", "Authorization"))
    assert len(typo.got) == before + 1  # the challenge, then nothing: its guesses go unanswered
    # another phone behind the same address (a NAT, a PC with two softphones) still registers
    other = Phone(net, "203", (ip, 5091), _sites.secret("203"))
    net.phones[other.addr] = other
    assert other.register().status == 200
    # and the phone registered elsewhere is untouched
    assert a.register().status == 200


def test_guessing_many_extensions_bans_the_address():
    from _phones import Phone

    net, (a,) = setup("201")
    ip = "10.0.0.78"
    for n, number in enumerate(("200", "202", "203", "204", "210")):
        p = Phone(net, number, (ip, 5100 + n), "guess")
        net.phones[p.addr] = p
        req = p._request("REGISTER", number, "enum")
        p.send(req)
        p.send(p.answer(req, p.got[-1], "WWW-Authenticate", "Authorization"))
    banned = [e for e in net.events if e.kind == "banned"]
    assert [e.ip for e in banned] == [ip] and "users failed" in banned[0].reason
    before = len(p.got)
    p.send(p._request("OPTIONS", "202", "after-ban"))
    assert len(p.got) == before  # dropped unread
    assert a.register().status == 200


# ---- the trunk ---------------------------------------------------------------------------------

TRUNK = ("127.0.0.1", 5070)  # the test site's provider


def provider(net, answer=200):
    """A phone standing in for the SIP provider at the trunk's address."""
    from _phones import Phone

    p = Phone(net, "provider", TRUNK, "trunkpass")
    net.phones[TRUNK] = p
    p.auto["REGISTER"] = 200
    if answer:
        p.auto["INVITE"] = answer
    return p


def test_switch_registers_to_the_provider():
    net = Net(build())
    prov = provider(net)
    net.advance(10)
    reg = prov.last("REGISTER")
    assert reg is not None and reg.get("to").startswith("<sip:branch@127.0.0.1")
    assert ("trunk", "registered") in [(e.kind, getattr(e, "state", None)) for e in net.events]


def test_a_provider_that_never_answers_is_told_in_words():
    net = Net(build())  # nobody at the trunk's address: the REGISTER runs into Timer F
    net.advance(40000)
    details = [e.detail for e in net.events if e.kind == "trunk" and e.state == "retrying"]
    assert details, [(e.kind, getattr(e, "state", None)) for e in net.events]
    assert details[0].startswith("no answer from the provider (Timer F ran out); next try in"), details[0]


def test_outbound_call_through_the_trunk_is_bridged():
    net, (a,) = setup("203")  # class manager: may dial mobiles
    prov = provider(net)
    invite = a.invite("013800138000")
    out = prov.last("INVITE")
    assert out is not None and str(out.uri).startswith("sip:13800138000@127.0.0.1")
    assert out.get("from").startswith("<sip:branch@")  # the trunk account, not the phone
    assert out.body == invite.body  # the phone's SDP offer goes to the provider
    ok = a.last(200)
    assert ok is not None and ok.contacts()[0].uri.host == "10.0.0.1"  # the phone talks to us
    assert prov.last("ACK") is not None  # we ACKed the provider's 200
    a.ack_2xx(invite, ok)
    prov.auto["BYE"] = 200
    a.bye(invite, ok)
    assert prov.last("BYE") is not None
    calls = [e.record for e in net.events if e.kind == "call"]
    assert calls[-1]["outcome"] == "answered" and calls[-1]["to"] == "13800138000"


def test_provider_challenge_is_answered_with_the_trunk_account():
    net, (a,) = setup("203")
    prov = provider(net, answer=None)
    a.invite("013800138000")
    first = prov.last("INVITE")
    from zongji.sip import digest
    from zongji.sip.auth import parse_auth

    auth = digest.Authenticator("provider", b"k" * 16, random_bytes=lambda n: b"r" * n)
    resp = make_response(first, 407, to_tag="p1")
    for v in auth.challenge(net.now):
        resp.add("proxy-authenticate", v)
    prov.send(resp)
    again = prov.last("INVITE")
    assert again is not first and again.get("proxy-authorization") is not None
    params = parse_auth(again.get("proxy-authorization"))
    lookup = digest.from_passwords({"branch": "trunkpass"}.get, "provider")
    assert auth.check("INVITE", params, lookup, net.now) == digest.OK


def test_follow_me_rings_the_desk_then_the_mobile_over_the_trunk():
    net, (caller, desk) = setup("203", "201")  # 201 has follow_me 20 s and a mobile
    prov = provider(net, answer=180)
    desk.auto["INVITE"] = 180
    caller.invite("201")
    assert desk.last("INVITE") is not None and prov.last("INVITE") is None
    net.advance(20000)
    assert desk.last("CANCEL") is not None
    assert str(prov.last("INVITE").uri).startswith("sip:13800138001@")


def test_inbound_did_rings_its_target_without_phone_auth():
    net, (b,) = setup("201")
    prov = provider(net)
    b.auto["INVITE"] = 180
    from zongji.sip.message import make_request

    inv = make_request(
        "INVITE",
        "sip:02155550199@10.0.0.1:5060",
        "<sip:13912345678@127.0.0.1>;tag=pp",
        "<sip:02155550199@10.0.0.1>",
        "in-1",
        1,
        via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKin1",
        contact="<sip:13912345678@127.0.0.1:5070>",
    )
    prov.send(inv)
    assert b.last("INVITE") is not None  # DID 02155550199 -> 201
    assert 180 in prov.statuses()


def test_inbound_call_cannot_hairpin_to_an_outside_number():
    net, (b,) = setup("200")  # the operator
    prov = provider(net, answer=None)
    b.auto["INVITE"] = 180
    from zongji.sip.message import make_request

    inv = make_request(
        "INVITE",
        "sip:000441234567@10.0.0.1:5060",
        "<sip:fraud@127.0.0.1>;tag=pp",
        "<sip:000441234567@10.0.0.1>",
        "in-2",
        1,
        via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKin2",
        contact="<sip:fraud@127.0.0.1:5070>",
    )
    prov.send(inv)
    assert b.last("INVITE") is not None  # an unknown DID goes to the operator ...
    assert [m for m in prov.got if getattr(m, "method", "") == "INVITE"] == []  # ... never back out


def test_digest_order_follows_the_site():
    from _sites import raw_site

    net = Net(build())
    p = net.phone("201", 5061)
    p.send(p._request("REGISTER", "201", "r1"))
    offered = [v.split("algorithm=")[1].split(",")[0] for v in p.got[-1].get_all("www-authenticate")]
    assert offered == ["MD5"]  # all that baresip 1.0 can bear to see
    raw = raw_site()
    raw["staff"]["digest"] = ["SHA-256", "MD5"]
    net = Net(build(raw))
    p = net.phone("201", 5061)
    p.send(p._request("REGISTER", "201", "r2"))
    offered = [v.split("algorithm=")[1].split(",")[0] for v in p.got[-1].get_all("www-authenticate")]
    assert offered == ["SHA-256", "MD5"]
    assert p.register().status == 200  # and an RFC 8760 client registers with SHA-256


def test_re_invite_for_hold_and_resume_passes_through():
    net, (a, b) = setup("201", "202")
    b.auto["INVITE"] = 200
    invite = a.invite("202")
    ok = a.last(200)
    a.ack_2xx(invite, ok)
    for direction in (b"a=sendonly", b"a=sendrecv"):  # hold, then resume
        a.cseq += 1
        reinv = make_request(
            "INVITE",
            ok.contacts()[0].uri,
            invite.get("from"),
            ok.get("to"),
            invite.call_id(),
            a.cseq,
            via="SIP/2.0/UDP %s:%d;branch=z9hG4bKre%d" % (a.addr[0], a.addr[1], a.cseq),
            contact=a.contact,
            body=b"v=0\r\n" + direction + b"\r\n",
            content_type="application/sdp",
        )
        for r in reversed(ok.get_all("record-route")):
            reinv.add("route", r)
        before = len(b.got)
        a.send(reinv)
        got = [m for m in b.got[before:] if getattr(m, "method", "") == "INVITE"]
        assert len(got) == 1 and direction in got[0].body  # the callee sees the new SDP
        assert a.got[-1].status == 200 and a.got[-1].cseq()[0] == a.cseq
    net.advance(70000)
    assert len(net.sw.tl) == 0  # nothing stuck after the dialog's transactions


def test_close_unregisters_from_the_provider():
    net = Net(build())
    prov = provider(net)
    net.advance(10)
    net.sw.close(net.now)
    net.run()
    last = prov.last("REGISTER")
    assert last.get("expires") == "0" or "expires=0" in last.get("contact")


def test_provider_hangs_up_a_bridged_call():
    net, (a,) = setup("203")
    prov = provider(net)
    invite = a.invite("013800138000")
    ok = a.last(200)
    a.ack_2xx(invite, ok)
    a.auto["BYE"] = 200
    theirs = prov.last("INVITE")  # the gateway's INVITE, which the provider answered
    bye = make_request(
        "BYE",
        theirs.contacts()[0].uri,
        theirs.get("to") + ";tag=calleeprovider",  # the provider's side of that dialog
        theirs.get("from"),
        theirs.call_id(),
        2,
        via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKpbye",
    )
    prov.send(bye)
    assert prov.last(200).cseq()[1] == "BYE"  # the switch answers the provider
    their_bye = a.last("BYE")
    assert their_bye is not None and their_bye.call_id() == invite.call_id()  # and hangs up the phone
    assert their_bye.get("from").endswith(ok.to_addr().tag)  # in the phone's dialog, with our tag
    calls = [e.record for e in net.events if e.kind == "call"]
    assert calls[-1]["outcome"] == "answered"
    net.advance(70000)
    assert net.sw.proxy.calls == {} and net.sw.gateway.calls == {}


def test_calls_over_the_limit_get_503_with_retry_after():
    net, (a, b, c) = setup("201", "202", "203")
    net.sw.proxy.max_calls = 1
    b.auto["INVITE"] = 180
    a.invite("202")  # rings: holds the only slot
    c.invite("202")
    assert c.got[-1].status == 503 and c.got[-1].get("retry-after") == "30"


def test_require_on_an_invite_is_for_the_callee_not_the_proxy():
    net, (a, b) = setup("201", "202")
    b.auto["INVITE"] = 180
    req = a._request("INVITE", "202", "rel-1")
    req.add("require", "100rel")
    a.send(req)
    assert a.got[-1].status == 407  # challenged like any INVITE, not refused with 420
    from _phones import ack_for_failure

    a.send(ack_for_failure(req, a.got[-1]))
    a.send(a.answer(req, a.got[-1], "Proxy-Authenticate", "Proxy-Authorization"))
    assert b.last("INVITE").get("require") == "100rel"  # passed on end to end (RFC 3261 16.3)


def test_desk_phone_and_softphone_of_one_extension_ring_together():
    net, (a, desk, soft) = setup("201", "202", "202")
    desk.auto["INVITE"] = 180
    soft.auto["INVITE"] = 180
    a.invite("202")
    assert desk.last("INVITE") is not None and soft.last("INVITE") is not None  # a parallel fork
    ok = make_response(soft.last("INVITE"), 200, to_tag="soft")
    ok.add("contact", soft.contact)
    soft.send(ok)
    assert a.last(200) is not None
    assert desk.last("CANCEL") is not None  # the desk phone stops ringing


def test_a_reinvites_2xx_retransmissions_are_passed_on():
    """RFC 3261 16.7 step 10 (RFC 6026): the callee retransmits the 2xx of a re-INVITE until
    its ACK comes; the proxy forwards each one, or a lost ACK hangs the call up after 32 s."""
    net, (a, b) = setup("201", "202")
    b.auto["INVITE"] = 200
    invite = a.invite("202")
    ok = a.last(200)
    a.ack_2xx(invite, ok)
    del b.auto["INVITE"]
    a.cseq += 1
    re = make_request(
        "INVITE", ok.contacts()[0].uri, invite.get("from"), ok.get("to"), invite.call_id(), a.cseq,
        via="SIP/2.0/UDP %s:%d;branch=z9hG4bKre-hold" % a.addr, contact=a.contact, body=b"v=0\r\n",
        content_type="application/sdp",
    )  # fmt: skip
    for r in reversed(ok.get_all("record-route")):
        re.add("route", r)
    a.send(re)
    got = b.last("INVITE")
    assert got is not None and got.cseq()[0] == a.cseq
    answer = make_response(got, 200, to_tag=ok.to_addr().tag)
    answer.add("contact", b.contact)
    for _ in range(3):  # the 2xx, then two retransmissions (the ACK was lost)
        b.send(answer)
        net.advance(500)
    oks = [m for m in a.got if not hasattr(m, "method") and m.status == 200 and m.cseq() == (a.cseq, "INVITE")]
    assert len(oks) == 3

"""The switch under attack, in memory: toll fraud in dialogs, strays, stateless answers, Timer C,
the trunk gateway's table, and calls the provider ends early (issue `harden`)."""

import _sites
from _phones import SWITCH, Net, Phone, ack_for_failure, registered
from _sites import build
from zongji.sip.message import make_request, make_response
from zongji.switch import proxy as proxy_module
from zongji.switch.budget import AnswerBudget

TRUNK = ("127.0.0.1", 5070)


def setup(*numbers):
    return registered(build(), *numbers)


def provider(net, answer=200):
    p = Phone(net, "provider", TRUNK, "trunkpass")
    net.phones[TRUNK] = p
    p.auto["REGISTER"] = 200
    if answer:
        p.auto["INVITE"] = answer
    return p


def answered_call(net, a, b):
    b.auto["INVITE"] = 200
    invite = a.invite(b.number)
    ok = a.last(200)
    a.ack_2xx(invite, ok)
    return invite, ok


def in_dialog(sender, method, invite, ok, uri=None, frm=None, to=None, call_id=None):
    sender.cseq += 1
    req = make_request(
        method,
        uri or ok.contacts()[0].uri,
        frm or invite.get("from"),
        to or ok.get("to"),
        call_id or invite.call_id(),
        sender.cseq,
        via="SIP/2.0/UDP %s:%d;branch=z9hG4bKdlg%s%d" % (sender.addr[0], sender.addr[1], method, sender.cseq),
        contact=sender.contact,
    )
    for r in reversed(ok.get_all("record-route")):
        req.add("route", r)
    if method == "INVITE":
        req.body = b"v=0\r\n"
        req.add("content-type", "application/sdp")
    sender.send(req)
    return req


def test_a_party_cannot_steer_a_dialog_to_the_provider():
    net, (a, b) = setup("210", "202")  # 210: class internal, may not dial out at all
    prov = provider(net)
    net.advance(10)  # the trunk registers
    invite, ok = answered_call(net, a, b)
    before = len(prov.got)
    for method in ("INVITE", "UPDATE", "INFO", "REFER", "BYE"):
        in_dialog(a, method, invite, ok, uri="sip:00442079460000@%s:%d" % TRUNK)
    # nothing reached the provider; every request went to the colleague's phone
    assert [m for m in prov.got[before:] if getattr(m, "method", "") != "REGISTER"] == []
    got = [m.method for m in b.got if getattr(m, "method", None) in ("INVITE", "UPDATE", "INFO", "REFER", "BYE")]
    assert got[-5:] == ["INVITE", "UPDATE", "INFO", "REFER", "BYE"]
    assert str(b.last("INFO").uri).startswith("sip:202@")  # the dialog's own remote target
    assert [m for m, _ in net.lost if not m.startswith(b"REGISTER")] == []


def test_a_stranger_who_knows_the_call_id_gets_481_and_ends_nothing():
    net, (a, b) = setup("201", "202")
    prov = provider(net)
    net.advance(10)
    invite, ok = answered_call(net, a, b)
    mallory = net.phone("203", 5099, secret="none")  # another address, never registered
    txs = len(net.sw.tl)
    for method in ("INVITE", "UPDATE", "INFO", "REFER", "BYE"):
        in_dialog(mallory, method, invite, ok, uri="sip:00442079460000@%s:%d" % TRUNK)
        assert mallory.got[-1].status == 481
    assert len(net.sw.tl) == txs  # answered statelessly: no state for a stranger
    assert [m for m in prov.got if getattr(m, "method", "") not in ("REGISTER",)] == []
    assert [e for e in net.events if e.kind == "call"] == []  # the stranger's BYE ended nothing
    assert len(net.sw.proxy.calls) == 1
    in_dialog(a, "BYE", invite, ok)  # the caller's own BYE does
    assert [e.record["outcome"] for e in net.events if e.kind == "call"] == ["answered"]


def test_a_stray_2xx_is_not_reflected():
    net, (a,) = setup("201")
    victim = net.phone("204", 5098, secret="x")
    resp = make_response(
        make_request(
            "INVITE",
            "sip:204@10.0.0.9",
            "<sip:204@x>;tag=v",
            "<sip:x@y>",
            "stray-1",
            1,
            via="SIP/2.0/UDP %s:%d;branch=z9hG4bKstray" % SWITCH,
        ),
        200,
        to_tag="s1",
    )
    resp.add("via", "SIP/2.0/UDP %s:%d;branch=z9hG4bKvictim" % victim.addr)
    a.send(resp)
    assert victim.got == [] and net.sw.counters.get("stray response dropped") == 1


def test_unauthenticated_requests_keep_no_state_and_draw_one_answer_each():
    net = Net(build())
    attacker = net.phone("202", 5097, secret="x")
    net.deliver(b"", ("10.0.0.250", 9))  # start the switch: its own trunk REGISTER is one transaction
    own = len(net.sw.tl)
    for i in range(15):
        attacker.send(attacker._request("OPTIONS", "202", "o-%d" % i))
        attacker.send(attacker._request("REGISTER", "202", "r-%d" % i))
    inv = attacker._request("INVITE", "201", "i-1", body=b"v=0\r\n")
    attacker.send(inv)
    assert len(net.sw.tl) == own and len(net.sw.proxy.calls) == 0
    answers = len(attacker.got)
    assert answers == 31 and attacker.got[-1].status == 407
    net.advance(40000)  # an unacknowledged 407 is never retransmitted: no amplification
    assert len(attacker.got) == answers


def test_a_flood_gets_its_share_of_answers_and_phones_keep_working():
    net, (a, b) = setup("201", "202")
    flood = net.phone("203", 5096, secret="x")
    kept = len(net.sw.tl)
    for i in range(500):  # one address, as fast as it likes, no time passing
        flood.send(flood._request("OPTIONS", "203", "f-%d" % i))
    share = net.sw.budget.prefix_burst  # less the two challenges the phones' REGISTERs drew
    assert len(flood.got) == share - 2 and net.sw.counters["answer withheld: rate limit"] == 500 - (share - 2)
    assert len(net.sw.tl) == kept  # nothing of the flood is kept
    b.auto["INVITE"] = 200
    a.invite("202")  # registered phones are never held back
    assert a.last(200) is not None and a.register().status == 200


def test_a_second_invite_with_the_same_call_id_is_a_merged_request():
    net, (a, b) = setup("201", "202")
    b.auto["INVITE"] = 180
    first = a.invite("202")
    a.calls -= 1  # the next invite() reuses the Call-ID, with a new branch: RFC 3261 8.2.2.2
    again = a.invite("202")
    assert again.call_id() == first.call_id()
    assert a.got[-1].status == 482 and len(net.sw.proxy.calls) == 1


def test_a_call_whose_callee_only_says_trying_ends_with_the_last_stage():
    net, (a, b) = setup("201", "202")
    b.auto["INVITE"] = 100
    a.invite("202")
    net.advance(121000)  # the last stage rings at most 120 s
    assert b.last("CANCEL") is not None  # 100 Trying is enough to CANCEL (RFC 3261 9.1)
    net.advance(40000)
    assert len(net.sw.proxy.calls) == 0 and a.got[-1].status >= 400
    net.advance(80000)  # every transaction's own timers (Timer H for the unacknowledged 4xx)
    assert len(net.sw.tl) == 0


def test_timer_c_cancels_a_leg_that_only_says_trying_when_the_stage_is_longer():
    saved = proxy_module.MAX_RING_MS
    proxy_module.MAX_RING_MS = 600000  # a stage longer than Timer C
    try:
        net, (a, b) = setup("201", "202")
        b.auto["INVITE"] = 100
        a.invite("202")
        net.advance(180000)
        assert b.last("CANCEL") is None
        net.advance(2000)  # Timer C: 181 s without a 101-199
        assert b.last("CANCEL") is not None
    finally:
        proxy_module.MAX_RING_MS = saved
    net.advance(40000)
    assert len(net.sw.proxy.calls) == 0 and a.got[-1].status >= 400
    net.advance(40000)
    assert len(net.sw.tl) == 0


def test_timer_c_answers_a_re_invite_that_only_rings():
    net, (a, b) = setup("201", "202")
    invite, ok = answered_call(net, a, b)
    b.auto["INVITE"] = 180
    in_dialog(a, "INVITE", invite, ok)
    net.advance(185000)
    assert a.got[-1].status == 408 and b.last("CANCEL") is not None
    net.advance(40000)
    assert len(net.sw.proxy.relays) == 0


def test_outbound_calls_leave_the_gateway_table_however_they_end():
    net, (a,) = setup("203")  # class manager: may dial mobiles
    prov = provider(net, answer=None)
    net.advance(10)
    for answer in (486, 180, 100):
        prov.auto["INVITE"] = answer
        a.invite("013800138000")
        if answer != 486:
            net.advance(200000)  # rings out, or only trying: Timer C
    net.advance(100000)
    assert net.sw.sizes()["trunk_calls"][0] == 0 and len(net.sw.proxy.calls) == 0
    net.advance(100000)
    assert len(net.sw.tl) == 0


def provider_bye_before_answer(prov, theirs, branch):
    """The provider's BYE for our INVITE `theirs` before it answered (not its to send, 15)."""
    bye = make_request(
        "BYE",
        theirs.contacts()[0].uri,
        theirs.get("to") + ";tag=early",
        theirs.get("from"),
        theirs.call_id(),
        2,
        via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK" + branch,
    )
    prov.send(bye)


def test_a_provider_bye_before_the_answer_ends_that_leg_without_a_crash():
    net, (a,) = setup("203")
    prov = provider(net, answer=180)
    net.advance(10)
    a.invite("013800138000")
    theirs = prov.last("INVITE")
    provider_bye_before_answer(prov, theirs, "earlybye")
    assert prov.got[-2].status == 200 or prov.last(200) is not None
    assert prov.last("CANCEL") is not None  # the leg is CANCELled
    assert a.got[-1].status >= 400 and len(net.sw.proxy.calls) == 0  # the caller is told at once


def test_a_ring_group_never_rings_the_callers_own_phone():
    net, (a, b, c) = setup("201", "202", "210")
    for p in (a, b, c):
        p.auto["INVITE"] = 180
    a.invite("600")  # 201 is in sales (600)
    assert b.last("INVITE") is not None and c.last("INVITE") is not None
    assert a.last("INVITE") is None


def test_provider_down_fails_fast_with_503_and_an_alert_for_emergencies():
    net, (a,) = setup("203")
    net.advance(40000)  # no provider answers: the registration is retrying
    assert not net.sw.trunk_up()
    a.invite("013800138000")
    assert a.got[-1].status == 503
    a.invite("110")
    assert a.got[-1].status == 503
    alerts = [e.text for e in net.events if e.kind == "alert"]
    assert len(alerts) == 1 and "EMERGENCY" in alerts[0] and "110" in alerts[0]
    records = [e.record for e in net.events if e.kind == "call"]
    assert [r["reason"] for r in records] == ["the provider is unavailable"] * 2
    assert [r["outcome"] for r in records] == ["failed", "failed"]


def test_records_carry_the_decisions_reason():
    net, (a,) = setup("210")  # internal only
    a.invite("013800138000")
    assert a.got[-1].status == 403 and a.got[-1].reason == "Not Allowed"
    a.invite("205")  # mobile-only colleague with no trunk up yet: rings over the trunk
    record = [e.record for e in net.events if e.kind == "call"][0]
    assert record["outcome"] == "refused" and "may not dial mobile numbers" in record["reason"]


def test_a_transport_error_ends_the_leg_at_once():
    net, (a, b) = setup("201", "202")  # 202's phone went away: it never answers
    a.invite("202")
    assert b.last("INVITE") is not None and a.last(480) is None
    net.sw.transport_error(b.addr, net.now)  # the shell's sendto failed (host unreachable)
    net.run()
    assert a.got[-1].status == 480 and len(net.sw.proxy.calls) == 0  # no 32 s wait for Timer B


def test_a_lock_cannot_be_dodged_by_spelling_the_user_name_otherwise():
    net, (a,) = setup("201")
    ip = "10.0.0.79"
    guesser = Phone(net, "202", (ip, 5110), "wrong")
    net.phones[guesser.addr] = guesser
    for _ in range(10):
        req = guesser._request("REGISTER", "202", "g")
        guesser.send(req)
        guesser.send(guesser.answer(req, guesser.got[-1], "WWW-Authenticate", "Authorization"))
    assert any(e.kind == "locked" for e in net.events)
    guesser.secret = _sites.secret("202")  # now the right password, the name escaped: 20\2
    req = guesser._request("REGISTER", "202", "g")
    guesser.send(req)
    auth = guesser.answer(req, guesser.got[-1], "WWW-Authenticate", "Authorization")
    auth.set("authorization", auth.get("authorization").replace('username="202"', 'username="20\\2"'))
    before = len(guesser.got)
    guesser.send(auth)
    assert len(guesser.got) == before  # dropped unchecked, as a wrong guess would be
    decoy = guesser.answer(req, guesser.got[-1], "WWW-Authenticate", "Authorization")
    decoy.headers.insert(0, ("authorization", "Basic Zm9vOmJhcg=="))
    guesser.send(decoy)
    assert len(guesser.got) == before


def test_no_transfer_through_the_trunk_in_a_call_from_the_provider():
    net, (b,) = setup("201")
    prov = provider(net, answer=None)
    net.advance(10)
    b.auto["INVITE"] = 200
    inv = make_request(
        "INVITE",
        "sip:02155550199@10.0.0.1:5060",
        "<sip:13912345678@127.0.0.1>;tag=pp",
        "<sip:02155550199@10.0.0.1>",
        "in-refer",
        1,
        via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKinrefer",
        contact="<sip:13912345678@127.0.0.1:5070>",
    )
    prov.send(inv)
    ring = b.last("INVITE")
    assert prov.last(200) is not None
    ok = prov.last(200)
    before = len(prov.got)
    refer = make_request(
        "REFER",
        "sip:13912345678@127.0.0.1:5070",
        ok.get("to"),
        ring.get("from"),
        "in-refer",
        5,
        via="SIP/2.0/UDP %s:%d;branch=z9hG4bKrefer1" % b.addr,
        headers=[("Refer-To", "<sip:00442079460000@127.0.0.1:5070>")],
    )
    for r in ring.get_all("record-route"):
        refer.add("route", r)
    b.send(refer)
    assert b.got[-1].status == 403
    assert [m for m in prov.got[before:] if getattr(m, "method", "") == "REFER"] == []


def test_a_star_contact_in_the_providers_answer_is_no_crash():
    net, (a,) = setup("203")
    prov = provider(net, answer=None)
    net.advance(10)
    a.invite("013800138000")
    theirs = prov.last("INVITE")
    ok = make_response(theirs, 200, to_tag="star")
    ok.add("contact", "*")
    prov.send(ok)  # must not raise out of receive_datagram
    assert a.last(200) is not None or a.got[-1].status >= 200


def test_100_trying_for_ever_does_not_hold_a_re_invite():
    net, (a, b) = setup("201", "202")
    invite, ok = answered_call(net, a, b)
    b.auto["INVITE"] = 100
    in_dialog(a, "INVITE", invite, ok)
    for _ in range(6):  # a 100 every 150 s, for 15 minutes
        net.advance(150000)
        last = b.last("INVITE")
        b.send(make_response(last, 100))
    assert a.last(408) is not None and len(net.sw.proxy.relays) == 0
    assert 100 not in [m.status for m in a.got if not hasattr(m, "method")][-3:]  # 100 is hop by hop


def _guess(phone, number, password):
    """REGISTER for `number` from phone's address with `password`: what came back, or None."""
    req = phone._request("REGISTER", number, "guess-%d" % phone.addr[1])
    req.set("to", "<sip:%s@%s>" % (number, SWITCH[0]))
    phone.send(req)
    challenge = phone.got[-1]
    saved_number, phone.number = phone.number, number
    try:
        auth = phone.answer(req, challenge, "WWW-Authenticate", "Authorization", password)
    finally:
        phone.number = saved_number
    before = len(phone.got)
    phone.send(auth)
    return phone.got[-1] if len(phone.got) > before else None


def test_a_registered_phone_gets_no_free_guesses_at_a_colleagues_password():
    net, (a,) = setup("201")
    answers = [_guess(a, "202", "guess%d" % i) for i in range(40)]
    answered = [r for r in answers if r is not None]
    assert len(answered) <= net.sw.guard.max_failures  # then 202 is locked at this address
    assert any(e.kind == "locked" for e in net.events)
    assert _guess(a, "202", _sites.secret("202")) is None  # even the right one: unread
    # 201 itself still refreshes from there, locked colleague or not
    assert a.register().status == 200


def test_a_register_from_the_providers_address_binds_nothing():
    net, _ = setup()
    prov = provider(net)
    net.advance(10)
    spoof = Phone(net, "201", TRUNK, _sites.secret("201"))
    req = spoof._request("REGISTER", "201", "spoof")
    before = len(prov.got)
    spoof.send(req)  # a phone's credentials, sent with the provider's source address
    assert net.sw.registrar.contacts("201", net.now) == []
    assert not net.sw.registrar.has_source(TRUNK)
    assert len(prov.got) == before  # not even a challenge reflected at the provider
    assert net.sw.counters["register from the provider's address"] == 1


def test_one_extension_holds_at_most_its_share_of_the_lines():
    net, (a, b, c) = setup("201", "202", "203")
    net.sw.proxy.max_calls = 8
    b.auto["INVITE"] = 180
    for _ in range(5):
        a.invite("202")
    assert a.statuses().count(503) == 1  # 4 calls ring; the fifth is refused
    assert net.sw.counters["call refused: the caller has its share"] == 1
    c.invite("202")  # a colleague still gets a line
    assert c.got[-1].status != 503 and len(net.sw.proxy.calls) == 5
    net.advance(10000)  # the 503 was stateless: not retransmitted though never ACKed
    assert a.statuses().count(503) == 1


def _outside_call(prov, n):
    inv = make_request(
        "INVITE",
        "sip:02155550199@10.0.0.1:5060",
        "<sip:1391234%04d@127.0.0.1>;tag=out%d" % (n, n),
        "<sip:02155550199@10.0.0.1>",
        "outside-%d" % n,
        1,
        via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKout%d" % n,
        contact="<sip:1391234%04d@127.0.0.1:5070>" % n,
    )
    prov.send(inv)


def test_calls_from_the_provider_leave_staff_a_quarter_of_the_lines():
    net, (a, b) = setup("201", "202")
    net.sw.proxy.max_calls = 8
    prov = provider(net, answer=None)
    net.advance(10)
    a.auto["INVITE"] = b.auto["INVITE"] = 180
    for n in range(8):  # outside callers (or INVITEs spoofed from the provider's address)
        _outside_call(prov, n)
    assert prov.statuses().count(503) == 2 and len(net.sw.proxy.calls) == 6
    assert net.sw.counters["call refused: the provider has its share"] == 2
    net.advance(10000)  # answered statelessly: no transaction retransmits the 503s
    assert prov.statuses().count(503) == 2
    a.invite("202")
    assert a.got[-1].status == 180 and len(net.sw.proxy.calls) == 7


def test_a_busy_callees_answer_is_the_records_reason():
    net, (a, b) = setup("201", "202")
    b.auto["INVITE"] = 486
    a.invite("202")
    record = [e.record for e in net.events if e.kind == "call"][-1]
    assert record["outcome"] == "busy" and record["reason"] == "486 Busy Here"


def test_a_second_answer_from_the_provider_is_hung_up():
    net, (a,) = setup("203")
    prov = provider(net, answer=None)
    net.advance(10)
    a.invite("013800138000")
    theirs = prov.last("INVITE")
    for tag in ("first", "first", "forked"):  # the answer, its retransmission, another dialog
        ok = make_response(theirs, 200, to_tag=tag)
        ok.add("contact", "<sip:13800138000@127.0.0.1:5070>")
        prov.send(ok)
    acks = [m.get("to") for m in prov.got if getattr(m, "method", "") == "ACK"]
    byes = [m.get("to") for m in prov.got if getattr(m, "method", "") == "BYE"]
    assert len(acks) == 3 and len(byes) == 1 and byes[0].endswith("tag=forked")
    assert len(net.sw.proxy.calls) == 1  # the first answer's call goes on


def test_credentials_for_one_request_uri_do_not_pass_on_another():
    net, (a,) = setup("203")  # 203 may dial mobiles, not abroad
    prov = provider(net)
    net.advance(10)
    req = a._request("INVITE", "202", "uri-swap")
    a.send(req)
    auth = a.answer(req, a.got[-1], "Proxy-Authenticate", "Proxy-Authorization")  # made for 202
    auth.uri = net.sw.parse_uri("sip:013800138000@10.0.0.1:5060")
    before = len(prov.got)
    a.send(auth)
    assert a.got[-1].status == 400 and a.got[-1].reason == "Credentials For Another Request-URI"
    assert len(prov.got) == before
    reg = a._request("REGISTER", "203", "reg-uri-swap")
    a.send(reg)
    again = a.answer(reg, a.got[-1], "WWW-Authenticate", "Authorization")
    again.uri = net.sw.parse_uri("sip:other.example.com")
    a.send(again)
    assert a.got[-1].status == 400
    # written otherwise but the same URI (host case, default port): accepted
    reg = a._request("REGISTER", "203", "reg-uri-case")
    reg.uri = net.sw.parse_uri("sip:203@10.0.0.1")  # the digest is made over this text
    a.send(reg)
    ok = a.answer(reg, a.got[-1], "WWW-Authenticate", "Authorization")
    ok.uri = net.sw.parse_uri("sip:203@10.0.0.1:5060")
    a.send(ok)
    assert a.got[-1].status == 200
    # the server's own URI with no user (SIPp's default digest uri): names us, so it passes
    reg = a._request("REGISTER", "203", "reg-uri-server")
    reg.uri = net.sw.parse_uri("sip:10.0.0.1:5060")
    a.send(reg)
    ok = a.answer(reg, a.got[-1], "WWW-Authenticate", "Authorization")
    ok.uri = net.sw.parse_uri("sip:203@10.0.0.1:5060")
    a.send(ok)
    assert a.got[-1].status == 200


def test_a_stateless_answer_keeps_its_tag_and_its_ack_is_no_strangers_request():
    net, (a, b) = setup("201", "202")
    req = a._request("INVITE", "202", "tags")
    a.send(req)
    a.send(req)  # a retransmission: the same answer, the same To tag
    first, second = a.got[-2], a.got[-1]
    assert first.status == second.status == 407 and first.to_addr().tag == second.to_addr().tag
    other = a._request("INVITE", "202", "tags-2")
    a.send(other)
    assert a.got[-1].to_addr().tag != first.to_addr().tag
    a.send(ack_for_failure(req, first))
    assert net.sw.counters.get("in-dialog request from no party of a dialog") is None
    stray = ack_for_failure(req, first)
    stray.set("to", stray.get("to").split(";tag=")[0] + ";tag=guessed")
    a.send(stray)
    assert net.sw.counters["in-dialog request from no party of a dialog"] == 1


def test_a_prack_in_an_early_dialog_reaches_the_ringing_phone_and_nobody_else():
    net, (a, b) = setup("201", "202")
    invite = a.invite("202")
    ring = b.last("INVITE")
    early = make_response(ring, 183, to_tag="early202")
    early.add("contact", b.contact)
    early.add("require", "100rel")
    early.add("rseq", "1")
    for rr in ring.get_all("record-route"):
        early.add("record-route", rr)
    b.send(early)
    got = a.last(183)
    assert got is not None and got.to_addr().tag == "early202"
    stranger = Phone(net, "201", ("10.0.0.66", 5061), "x")
    net.phones[stranger.addr] = stranger
    in_dialog(stranger, "PRACK", invite, got)
    assert stranger.got[-1].status == 481 and b.last("PRACK") is None
    b.auto["PRACK"] = 200
    in_dialog(a, "PRACK", invite, got)
    prack = b.last("PRACK")
    assert prack is not None and str(prack.uri) == "sip:202@%s:%d" % b.addr  # its Contact, from its 183
    assert a.last(200) is not None and a.last(200).cseq()[1] == "PRACK"
    assert len(net.sw.proxy.calls) == 1  # still ringing


def test_rotating_over_more_prefixes_than_the_budget_holds_earns_no_fresh_bursts():
    budget = AnswerBudget()
    budget.burst = budget.rate = 10**6  # only the per-prefix buckets count here
    first = sum(budget.may_answer("10.1.%d.1" % p, 1000) for p in range(16) for _ in range(100))
    assert first == 16 * budget.prefix_burst  # every prefix had its burst
    more = sum(budget.may_answer("10.2.%d.1" % p, 1000) for p in range(64) for _ in range(100))
    assert more <= 64  # one token each for the newcomers, no table reset
    assert len(budget) <= budget.max_prefixes


def test_a_leg_the_provider_ended_before_any_answer_is_cancelled_once_it_rings():
    # found by the 10^6-input fuzz run: such a leg's INVITE stayed in proceeding for good
    net, (a,) = setup("203")
    prov = provider(net, answer=None)
    net.advance(10)
    a.invite("013800138000")
    theirs = prov.last("INVITE")  # not answered yet: the INVITE is still calling
    provider_bye_before_answer(prov, theirs, "callingbye")
    assert prov.last("CANCEL") is None  # 9.1: not before the INVITE heard anything
    ring = make_response(theirs, 180, to_tag="early")
    prov.send(ring)
    assert prov.last("CANCEL") is not None
    net.advance(40000)  # the CANCEL's 64*T1: the INVITE transaction ends
    assert len(net.sw.tl) == 0 and net.sw.sizes()["trunk_calls"][0] == 0


def test_a_flood_of_garbage_gets_its_share_of_400s_and_no_more():
    net, (a,) = setup("201")
    flood = Phone(net, "x", ("10.0.0.90", 5099), "x")
    net.phones[flood.addr] = flood
    bad = b"INVITE sip:202@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.90:5099;branch=z9hG4bKbad\r\nCSeq: x\r\n\r\n"
    for _ in range(500):
        net.deliver(bad, flood.addr)
    share = net.sw.budget.prefix_burst - 1  # less the challenge 201's REGISTER drew
    assert 0 < len(flood.got) <= share and all(m.status == 400 for m in flood.got)
    assert net.sw.counters["answer withheld: rate limit"] >= 500 - share
    for _ in range(3):  # the registered phone's own garbage is still answered, for its debugging
        net.deliver(bad.replace(b"10.0.0.90:5099", b"10.0.0.2:5061"), a.addr)
    assert [m.status for m in a.got[-3:]] == [400, 400, 400]


def test_a_party_cannot_fill_the_table_with_requests_the_other_never_answers():
    net, (a, b) = setup("201", "202")
    invite, ok = answered_call(net, a, b)
    b.auto = {}  # 202's phone answers nothing more
    for _ in range(20):
        in_dialog(a, "INFO", invite, ok)
    infos = [m for m in b.got if getattr(m, "method", "") == "INFO"]
    assert len(infos) == 4 and a.statuses().count(503) == 16
    assert net.sw.counters["in-dialog request refused: too many in flight"] == 16
    net.advance(40000)  # Timer F ends the four: the dialog may pass requests on again
    b.auto["INFO"] = 200
    in_dialog(a, "INFO", invite, ok)
    assert a.got[-1].status == 200


def _from_provider(prov, did, n, max_forwards=70):
    inv = make_request(
        "INVITE",
        "sip:%s@10.0.0.1:5060" % did,
        "<sip:1391234%04d@127.0.0.1>;tag=sp%d" % (n, n),
        "<sip:%s@10.0.0.1>" % did,
        "spoofed-%d" % n,
        1,
        via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKsp%d" % n,
        contact="<sip:1391234%04d@127.0.0.1:5070>" % n,
    )
    inv.set("max-forwards", max_forwards)
    prov.send(inv)
    return inv


def test_quick_refusals_toward_the_provider_hold_no_transaction_and_are_not_repeated():
    # INVITEs "from the provider" (a forged source on UDP) for calls refused at once: the
    # operator is not registered. Each draws one answer and holds nothing.
    net, _ = setup()
    prov = provider(net, answer=None)
    net.advance(10)
    for n in range(70):
        _from_provider(prov, "02155550100", n)
    finals = [m for m in prov.got if getattr(m, "status", 0) >= 400]
    assert len(finals) == 70 and len(net.sw.tl) <= 1  # (the trunk's own REGISTER may linger)
    net.advance(10000)
    assert len([m for m in prov.got if getattr(m, "status", 0) >= 400]) == 70  # no retransmission
    ack = ack_for_failure(_from_provider(prov, "02155550100", 99), prov.got[-1])
    prov.send(ack)  # the real provider's ACK ends at the switch
    assert "in-dialog request from no party of a dialog" not in net.sw.counters


def test_a_cancel_from_another_address_cancels_nothing():
    net, (a, b) = setup("201", "202")
    b.auto["INVITE"] = 180
    invite = a.invite("202")
    thief = Phone(net, "201", ("10.0.0.77", 5061), "x")
    net.phones[thief.addr] = thief
    cancel = make_request(
        "CANCEL",
        str(invite.uri),
        invite.get("from"),
        invite.get("to"),
        invite.call_id(),
        invite.cseq()[0],
        via=invite.get_all("via")[0],  # the caller's own branch and sent-by
    )
    thief.send(cancel)
    assert thief.got[-1].status == 481 and b.last("CANCEL") is None and len(net.sw.proxy.calls) == 1
    assert net.sw.counters["cancel from another address than its invite"] == 1
    a.send(cancel)  # from the caller itself: it works
    assert b.last("CANCEL") is not None and a.last(487) is not None


def test_the_hop_count_crosses_the_gateway():
    net, _ = setup()  # 201 not registered: its follow-me rings its mobile through the provider
    prov = provider(net, answer=None)
    net.advance(10)
    _from_provider(prov, "02155550199", 1, max_forwards=3)
    out = [m for m in prov.got if getattr(m, "method", "") == "INVITE"]
    assert len(out) == 1 and out[0].max_forwards() == 2  # not reset to 70: a loop meets 483


def test_a_huge_body_is_refused_before_a_call_keeps_it():
    net, (a, b) = setup("201", "202")
    req = a._request("INVITE", "202", "huge", body=b"v=0\r\n" + b"a=x\r\n" * 3000)
    a.send(req)
    assert a.got[-1].status == 413 and len(net.sw.proxy.calls) == 0


def test_a_register_with_the_table_full_is_answered_as_it_was_done():
    net, (a,) = setup("201")
    net.sw.tl.max_transactions = len(net.sw.tl)  # every slot taken
    assert a.register().status == 200  # bound, and told so (not 503 for a binding made)


def test_a_password_check_does_the_same_work_for_an_unknown_extension():
    # timing must not tell which extensions exist: a miss decodes a record as a hit does
    site = build()
    d = site.directory
    decoded = []
    real = d._record

    def counting(offset):
        decoded.append(offset)
        return real(offset)

    d._record = counting
    assert d.ha1("201", "MD5") is not None and len(decoded) == 1
    assert d.ha1("299", "MD5") is None and len(decoded) == 2  # unknown: a decoy record
    assert d.ha1("205", "MD5") is None and len(decoded) == 3  # mobile only, no phone


def test_an_ack_for_the_2xx_on_the_invites_own_branch_reaches_the_callee():
    # RFC 2543 phones send the ACK for a 2xx with the INVITE's branch: it matches the accepted
    # INVITE server transaction, and must still go on to the phone that answered
    net, (a, b) = setup("201", "202")
    b.auto["INVITE"] = 200
    invite = a.invite("202")
    ok = a.last(200)
    ack = make_request(
        "ACK",
        ok.contacts()[0].uri,
        invite.get("from"),
        ok.get("to"),
        invite.call_id(),
        invite.cseq()[0],
        via=invite.get_all("via")[0],  # the INVITE's own branch
    )
    for r in reversed(ok.get_all("record-route")):
        ack.add("route", r)
    a.send(ack)
    assert b.last("ACK") is not None


def _forged_did_call(net, prov):
    """An INVITE from the provider's address (spoofable over UDP) to DID 02155550199: 201, who
    follows me to a mobile, so the switch calls out over the trunk, which answers."""
    inv = make_request(
        "INVITE",
        "sip:02155550199@10.0.0.1:5060",
        "<sip:13912345678@127.0.0.1>;tag=forged",
        "<sip:02155550199@10.0.0.1>",
        "forged-1",
        1,
        via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKforged1",
        contact="<sip:13912345678@127.0.0.1:5070>",
    )
    inv.body = b"v=0\r\n"
    inv.add("content-type", "application/sdp")
    prov.send(inv)
    net.run()
    out = [m for m in prov.got if getattr(m, "method", None) == "INVITE"]
    assert [str(m.uri) for m in out] == ["sip:13800138001@127.0.0.1:5070"]  # the mobile, answered
    return inv, out[0]


def _answers_to(prov, call_id):
    return [m for m in prov.got if getattr(m, "status", 0) == 200 and m.call_id() == call_id]


def test_an_answer_the_caller_never_acks_is_sent_again_then_both_sides_hung_up():
    # a blind forger at the provider's address never sees our To tag, so never ACKs: the switch
    # is the UAS toward it and does what RFC 3261 13.3.1.4 says: the 200 again at T1 doubling
    # to T2, then after 64*T1 a BYE to both sides, so the mobile call it placed costs <= 32 s
    net = setup()[0]
    prov = provider(net)
    inv, out = _forged_did_call(net, prov)
    first = len(_answers_to(prov, "forged-1"))
    assert first == 1
    times = []
    for _ in range(40):
        net.advance(1000)
        if len(_answers_to(prov, "forged-1")) > first + len(times):
            times.append(net.now)
    sent_again = len(_answers_to(prov, "forged-1")) - first
    assert 6 <= sent_again <= 10, sent_again  # 0.5, 1.5, 3.5, 7.5, 11.5, ... 31.5 s
    byes = [m for m in prov.got if getattr(m, "method", None) == "BYE"]
    assert {m.call_id() for m in byes} == {out.call_id(), "forged-1"}  # the mobile's leg and the caller
    records = [e.record for e in net.events if e.kind == "call"]
    assert len(records) == 1
    assert records[0]["outcome"] == "answered" and "never acknowledged" in records[0]["reason"]
    assert net.sw.proxy.calls == {} and net.sw.gateway.calls == {}
    assert net.sw.counters["answered call hung up: the caller never ACKed"] == 1


def test_an_acked_answer_across_the_trunk_is_not_sent_again_and_the_call_stays_up():
    net = setup()[0]
    prov = provider(net)
    inv, out = _forged_did_call(net, prov)  # here a genuine provider call: its ACK comes
    answers = _answers_to(prov, "forged-1")
    assert len(answers) == 1
    prov.ack_2xx(inv, answers[0])
    net.advance(60000)
    assert len(_answers_to(prov, "forged-1")) == 1
    assert not [m for m in prov.got if getattr(m, "method", None) == "BYE"]
    assert list(net.sw.proxy.calls) == ["forged-1"]


def test_a_phone_whose_200_from_the_trunk_was_lost_gets_it_again():
    net, (a,) = setup("203")
    provider(net)
    invite = a.invite("013800138000")
    ok = a.last(200)
    net.advance(600)  # no ACK yet (it, or the 200, was lost): the 200 comes again
    again = [m for m in a.got if getattr(m, "status", 0) == 200 and m.call_id() == invite.call_id()]
    assert len(again) == 2 and again[1].to_bytes() == ok.to_bytes()
    a.ack_2xx(invite, ok)
    net.advance(40000)
    again = [m for m in a.got if getattr(m, "status", 0) == 200 and m.call_id() == invite.call_id()]
    assert len(again) == 2 and a.last("BYE") is None

"""The switch at the device's own limits (64 transactions): what a burst of registrations costs.

After a power cut every phone of a branch registers again within seconds. A completed
REGISTER holds no transaction slot (the layer keeps a compact record of its final response
for Timer J), so 64 phones coming back within 10 s all get 200, none 503, and a
retransmitted REGISTER is answered again from the record, not registered twice. (Before,
each REGISTER held a slot for 32 s: the device took about 2 a second.)
"""

import _sites
from _phones import Net
from _support import IS_MICROPYTHON

DEVICE_TRANSACTIONS = 64


def _site(n):
    rows = list(_sites.STAFF)
    for i in range(n):
        rows.append(["%d" % (3000 + i), "Phone %d" % i, "Sales", "pw-%d-x" % i, "", "staff", 0, "", ""])
    return _sites.build(rows=rows)


def _register_all(net, phones, spread_ms):
    statuses = []
    for p in phones:
        net.advance(spread_ms // len(phones))
        statuses.append(_try_register(p))
    return statuses


def _try_register(p):
    # one REGISTER and its answer to the challenge; None when the switch dropped it unanswered
    before = len(p.got)
    try:
        return p.register().status
    except AssertionError:
        return p.got[-1].status if len(p.got) > before else None


def test_64_phones_back_after_a_power_cut_within_10_s_all_registered_none_503():
    n = 64
    site = _site(n)
    net = Net(site, max_transactions=DEVICE_TRANSACTIONS)
    phones = [net.phone("%d" % (3000 + i), 5061 + i) for i in range(n)]
    assert _register_all(net, phones, 40000) == [200] * n
    saved = net.sw.registrar.dump(net.now)  # what the device keeps on flash
    # the power cut: a new switch (empty RAM: transactions, guard, nonces) on the saved file,
    # and every phone registering again within 10 s
    after = Net(site, max_transactions=DEVICE_TRANSACTIONS)
    after.now = net.now + 60000
    after.sw.registrar.load(saved, after.now, 60000)
    for p in phones:
        p.net = after
        after.phones[p.addr] = p
        p.got = []
    assert _register_all(after, phones, 10000) == [200] * n
    assert not [m for p in phones for m in p.got if getattr(m, "status", 0) == 503]
    sw = after.sw
    assert len(sw.tl) <= 2  # the trunk's registration at most: the phones hold no slot
    assert sw.tl.lingering() == n  # each one's 200 kept for Timer J
    after.advance(33000)
    assert sw.tl.lingering() <= 1  # only the trunk's (Timer K) may still be there


def test_64_phones_on_a_cold_start_none_503():
    # no saved registrations: the guard's credential budget for unknown sources (switch/guard.py)
    # paces the phones of one /24, which drop and retry; no one is ever refused for want of a
    # transaction slot
    n = 64
    net = Net(_site(n), max_transactions=DEVICE_TRANSACTIONS)
    phones = [net.phone("%d" % (3000 + i), 5061 + i) for i in range(n)]
    first = _register_all(net, phones, 10000)
    assert 503 not in first and first.count(200) >= 20
    for _ in range(6):  # the rest retry every 5 s
        waiting = [p for p, st in zip(phones, first) if st != 200]
        if not waiting:
            break
        net.advance(5000)
        for p in waiting:
            first[phones.index(p)] = _try_register(p)
    assert first == [200] * n
    assert not [m for p in phones for m in p.got if getattr(m, "status", 0) == 503]


def test_a_retransmitted_register_gets_the_same_200_and_is_not_processed_twice():
    net = Net(_site(1), max_transactions=DEVICE_TRANSACTIONS)
    p = net.phone("3000", 5061)
    assert p.register().status == 200
    # the phone did not hear the 200: it sends the same REGISTER (same branch) again
    wire = [m for m in p.got if getattr(m, "status", 0) == 200][-1]
    req = _last_sent_register(net, p)
    events_before = len(net.events)
    net.advance(1000)
    p.send(req)
    again = p.got[-1]
    assert again.status == 200 and again.to_bytes() == wire.to_bytes()
    assert len(net.events) == events_before  # no second "registered", nothing re-run
    # after Timer J it is a new request: the nonce count was used, so the answer is a challenge
    net.advance(33000)
    p.send(req)
    assert p.got[-1].status == 401


def test_200_registrations_a_second_past_timer_j_at_device_limits_never_503():
    # 20 phones refreshing as fast as they can: 200 REGISTER/s, each 200 held for 32 s
    n = 20
    net = Net(_site(n), max_transactions=DEVICE_TRANSACTIONS)
    net.sw.tl.max_lingering = 8000
    phones = [net.phone("%d" % (3000 + i), 5061 + i) for i in range(n)]
    for second in range(8 if IS_MICROPYTHON else 40):
        for p in phones:
            for _ in range(10):
                assert p.register().status == 200
            net.advance(50)
        if IS_MICROPYTHON:
            net.advance(4000)  # past Timer J sooner, with fewer requests
    assert not [m for p in phones for m in p.got if getattr(m, "status", 0) == 503]
    assert len(net.sw.tl) <= 2


def _last_sent_register(net, phone):
    # rebuild the authenticated REGISTER the phone sent last, byte for byte, from the switch's
    # point of view: Phone.register() keeps no copy, so ask it to answer the same challenge
    challenge = [m for m in phone.got if getattr(m, "status", 0) == 401][-1]
    # the phone's answer() bumps cseq and branch from its counter: step it back to resend
    phone.cseq -= 2
    req = phone._request("REGISTER", phone.number, "reg-%s-%d" % (phone.number, phone.addr[1]), [("Expires", 3600)])
    return phone.answer(req, challenge, "WWW-Authenticate", "Authorization")


def test_answered_calls_hold_no_slot_two_a_second_at_device_limits():
    # an INVITE answered 2xx lingers 32 s on both sides (Timers L and M): as records, not
    # transactions, so 64 slots take more than the one call a second they took before
    net = Net(_site(8), max_transactions=DEVICE_TRANSACTIONS)
    net.sw.proxy.max_calls = 8
    phones = [net.phone("%d" % (3000 + i), 5061 + i) for i in range(8)]
    for p in phones:
        assert p.register().status == 200
        net.advance(100)
    callees = phones[4:]
    for b in callees:
        b.auto["INVITE"] = 200
        b.auto["BYE"] = 200
    answered = 0
    seconds = 20 if IS_MICROPYTHON else 60
    for i in range(2 * seconds):
        a, b = phones[i % 4], callees[i % 4]
        invite = a.invite(b.number)
        ok = a.last(200)
        assert ok is not None and ok.cseq()[1] == "INVITE", [m.status for m in a.got if hasattr(m, "status")]
        a.ack_2xx(invite, ok)
        a.bye(invite, ok)
        assert a.last(200).cseq()[1] == "BYE"
        answered += 1
        a.got = []
        net.advance(500)
    assert answered == 2 * seconds
    assert len(net.sw.tl) <= 2 and net.sw.tl.lingering() <= DEVICE_TRANSACTIONS
    assert [e.record["outcome"] for e in net.events if e.kind == "call"] == ["answered"] * answered

"""A sync applied live (Switch.set_site): calls in progress go on, new calls follow the new
site, phones of extensions that remain stay registered, and a changed trunk takes over once
its calls are over. In memory, over the scripted phones of _phones.py."""

from _phones import Net, registered
from _sites import STAFF, build, raw_site

TRUNK = ("127.0.0.1", 5070)


def _edited(**site):
    rows = [r for r in STAFF if r[0] != "202"]  # 202 leaves
    rows.append(["206", "Chen Jing", "Sales", "s3cret-206-x", "", "staff", 0, "", "24336 5464"])
    return build(raw_site(**site), rows)


def _provider(net):
    from _phones import Phone

    p = Phone(net, "provider", TRUNK, "trunkpass")
    net.phones[TRUNK] = p
    p.auto["REGISTER"] = 200
    return p


def test_a_call_in_progress_goes_on_and_new_calls_use_the_new_site():
    net, (a, b) = registered(build(), "201", "202")
    b.auto["INVITE"] = 200
    invite = a.invite("202")
    ok = a.last(200)
    a.ack_2xx(invite, ok)
    new = _edited()
    net.sw.set_site(new, net.now)
    net.site = new
    # 202 is gone from the site: its phone is unregistered, but the call it is in goes on
    b.auto["BYE"] = 200
    a.bye(invite, ok)
    assert b.last("BYE") is not None and a.last(200).cseq()[1] == "BYE"
    assert "unregistered" in [e.kind for e in net.events]
    # new calls see the new directory: 202 is unknown now, 206 exists (no phone yet)
    a.invite("202")
    assert a.got[-1].status == 404
    a.invite("206")
    assert a.got[-1].status == 480
    c = net.phone("206", 5070 + 9)
    assert c.register().status == 200
    c.auto["INVITE"] = 180
    a.invite("206")
    assert c.last("INVITE") is not None


def test_a_new_realm_makes_phones_authenticate_with_it():
    net, (a,) = registered(build(), "201")
    raw = raw_site()
    raw["staff"] = dict(raw.get("staff") or {}, realm="new.example")
    new = build(raw)
    net.sw.set_site(new, net.now)
    net.site = new
    reply = a.register()
    assert reply.status == 200
    assert 'realm="new.example"' in a.last(401).get("www-authenticate")


def test_a_changed_trunk_takes_over_after_the_calls_through_the_old_one():
    net = Net(build())
    old = _provider(net)
    net.advance(10)
    assert old.last("REGISTER") is not None
    a = net.phone("201", 5061)
    assert a.register().status == 200
    old.auto["INVITE"] = 200
    invite = a.invite("013800138000")
    ok = a.last(200)
    a.ack_2xx(invite, ok)
    raw = raw_site()
    raw["trunk"] = dict(raw["trunk"], username="branch2")
    net.sw.set_site(build(raw), net.now)
    net.advance(1000)
    assert net.sw.gateway.calls and net.sw.trunk_reg.username == "branch"  # the old one while it runs
    old.auto["BYE"] = 200
    a.bye(invite, ok)
    net.advance(1000)
    assert net.sw.trunk_reg.username == "branch2"
    regs = [r for r in old.got if getattr(r, "method", None) == "REGISTER"]
    assert regs[-1].get("to").startswith("<sip:branch2@")
    assert any("expires: 0" in r.to_bytes().decode().lower() or r.get("expires") == "0" for r in regs)

"""SIPp against host mode and the virtual device (the `switchboard` fixture): registration
with digest auth at scale, and calls by short number.

    50 extensions (3000-3049) REGISTER with digest auth, users from an injection CSV: 0 failed
    wrong passwords: every REGISTER fails (a fresh 401, not a 200) and nobody is registered
    200 calls 3000.. -> 3049 by short number at 10 calls/s, 3049 a registered SIPp UAS: 0 failed

The scenarios are in sipp/; test_peers.py checks them against Kamailio without the switch.
SIPp 3.6.1 answers Digest MD5 only, and only the first WWW-Authenticate/Proxy-Authenticate
header it gets: these tests need the switch to list an MD5 challenge first.
"""

from sipharness import sipp, write_injection

LOAD_FIRST = 3000
LOAD_COUNT = 50


def _load_site(example_site):
    users = example_site.add_extensions(LOAD_FIRST, LOAD_COUNT, cls="staff")
    example_site.check()
    return users


def test_50_users_register_with_digest_auth(example_site, switchboard, workdir):
    users = _load_site(example_site)
    hm = switchboard(example_site)
    inf = write_injection(workdir / "users.csv", sorted(users.items()))
    res = sipp("register_auth.xml", hm.addr, workdir, "register50", calls=LOAD_COUNT, rate=10, inf=inf,
               behaviors="all,-bye", timeout_s=40)  # fmt: skip
    assert res.returncode == 0, res.explain()
    assert res.successful == LOAD_COUNT and res.failed == 0, res.explain()
    hm.wait_count(r"(?:^|\s)registered 30\d\d\b", LOAD_COUNT, 10)
    assert sorted(set(hm.registered())) == sorted(users), hm.tail()
    assert hm.problems() == [], hm.problems()


def test_wrong_passwords_do_not_register(example_site, switchboard, workdir):
    users = _load_site(example_site)
    hm = switchboard(example_site)
    # four users, below the guard's enumeration threshold (failures for 5 users from one address
    # ban it): each must get its own 401
    wrong = [(number, secret + "-wrong") for number, secret in sorted(users.items())[:4]]
    inf = write_injection(workdir / "wrong.csv", wrong)
    res = sipp("register_auth.xml", hm.addr, workdir, "register_wrong", calls=len(wrong), rate=10, inf=inf,
               behaviors="all,-bye", recv_timeout_ms=4000, timeout_s=30)  # fmt: skip
    assert res.returncode == 1, res.explain()  # 1: some calls failed (255 would be SIPp itself failing)
    assert res.failed == len(wrong) and res.successful == 0, res.explain()
    # refused with a new challenge, as for an unknown user: not silence, not 403
    assert res.unexpected == len(wrong), res.explain()
    assert "SIP/2.0 401 " in res.errors, res.explain()
    assert hm.registered() == [], hm.tail()
    assert hm.bans() == [], hm.tail()
    assert hm.problems() == [], hm.problems()


def test_200_calls_by_short_number_at_10_per_second(example_site, switchboard, sipp_server, free_udp_port, workdir):
    users = _load_site(example_site)
    hm = switchboard(example_site)
    target = str(LOAD_FIRST + LOAD_COUNT - 1)  # 3049 answers; 3000-3039 call it
    callers = [(n, users[n]) for n in sorted(users) if n != target][:40]
    calls = 200

    # The UAS registers from the port it will answer on: the switch sends calls to the
    # address the REGISTER came from.
    uas_port = free_udp_port()
    reg = write_injection(workdir / "target.csv", [(target, users[target])])
    res = sipp("register_auth.xml", hm.addr, workdir, "register_target", calls=1, inf=reg, local_port=uas_port,
               behaviors="all,-bye")  # fmt: skip
    assert res.returncode == 0 and res.successful == 1, res.explain()
    hm.wait_for(r"(?:^|\s)registered %s\b" % target, 5)

    uas = sipp_server("uas_answer.xml", "uas", calls, uas_port, timeout_s=90, recv_timeout_ms=15000)
    inf = write_injection(workdir / "callers.csv", callers)
    res = sipp("uac_call.xml", hm.addr, workdir, "uac200", calls=calls, rate=10, inf=inf, service=target,
               duration_ms=1000, timeout_s=75, recv_timeout_ms=15000)  # fmt: skip
    answered = uas.finish(20)
    assert res.returncode == 0, res.explain()
    assert res.successful == calls and res.failed == 0, res.explain()
    assert answered.successful == calls and answered.failed == 0, answered.explain()

    # one call record per call, each answered by the target
    records = hm.wait_count(r"(?:^|\s)call 30\d\d -> %s: answered\b" % target, calls, 10)
    assert len(records) == calls, hm.tail()
    assert hm.problems() == [], hm.problems()

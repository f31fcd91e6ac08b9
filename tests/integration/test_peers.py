"""The test peers checked against each other, without zongji: if these fail, the scenario files,
the provider config or the baresip setup are wrong, not the switch.

* SIPp register_auth.xml / uac_call.xml / uac_forbidden.xml against Kamailio (provider.cfg),
  which challenges REGISTER (401) and INVITE (407) like the switch does, relaying calls to a
  SIPp running uas_answer.xml.
* Two headless baresip instances calling each other directly, RTP counted both ways.
"""

import re
import time

from sipharness import LOOPBACK, sipp, write_injection

PROVIDER_USER = "provider-user"
PROVIDER_PASSWORD = "provider-secret-1"


def test_sipp_scenarios_through_kamailio(provider, sipp_server, free_udp_port, workdir):
    far_end = free_udp_port()
    prov = provider(free_udp_port(), PROVIDER_USER, PROVIDER_PASSWORD, far_end)

    # register_auth.xml: a right and a wrong password
    good = write_injection(workdir / "good.csv", [(PROVIDER_USER, PROVIDER_PASSWORD)])
    res = sipp("register_auth.xml", prov.addr, workdir, "reg_good", calls=1, inf=good, behaviors="all,-bye")
    assert res.returncode == 0 and res.successful == 1, res.explain()
    prov.wait_count(r"PROVIDER REGISTER ok", 1, 5)
    assert [u for u, _ in prov.registrations()] == [PROVIDER_USER], prov.tail()

    bad = write_injection(workdir / "bad.csv", [(PROVIDER_USER, "wrong")])
    res = sipp("register_auth.xml", prov.addr, workdir, "reg_bad", calls=1, inf=bad, behaviors="all,-bye",
               recv_timeout_ms=3000)  # fmt: skip
    assert res.returncode == 1 and res.failed == 1 and res.unexpected == 1, res.explain()
    assert "401" in res.errors, res.explain()
    prov.wait_count(r"PROVIDER REGISTER auth failed", 1, 5)
    assert len(prov.registrations()) == 1, prov.tail()

    # uac_call.xml -> Kamailio (407, relay) -> uas_answer.xml
    calls = 10
    uas = sipp_server("uas_answer.xml", "far_end", calls, far_end, timeout_s=40)
    callers = write_injection(workdir / "callers.csv", [(PROVIDER_USER, PROVIDER_PASSWORD)])
    res = sipp("uac_call.xml", prov.addr, workdir, "uac", calls=calls, rate=10, inf=callers,
               service="13800138000", duration_ms=300, trace_msg=True)  # fmt: skip
    assert res.returncode == 0 and res.successful == calls and res.failed == 0, res.explain()
    far = uas.finish(20)
    assert far.returncode == 0 and far.successful == calls, far.explain()
    prov.wait_count(r"PROVIDER in-dialog BYE", calls, 5)
    assert prov.invites() == [("13800138000", PROVIDER_USER)] * calls, prov.tail()
    # ACK and BYE came back along the Record-Route, with the 200's To tag
    assert len(prov.matches(r"PROVIDER in-dialog ACK")) == calls, prov.tail()
    messages = (workdir / "uac_messages.log").read_text(errors="replace")
    bye = re.search(r"^BYE .*?\n\n", messages, re.S | re.M).group(0)
    ok_tag = re.search(r"SIP/2\.0 200 OK\r?\n.*?^To:.*?tag=(\S+)", messages, re.S | re.M).group(1)
    assert "tag=" + ok_tag.split(";")[0] in bye, bye

    # uac_forbidden.xml: Kamailio answers 403 to an authenticated user it does not know
    other = write_injection(workdir / "other.csv", [("somebody", PROVIDER_PASSWORD)])
    res = sipp("uac_forbidden.xml", prov.addr, workdir, "forbidden", calls=1, inf=other, service="13800138000")
    assert res.returncode == 0 and res.successful == 1, res.explain()
    assert len(prov.invites()) == calls, prov.tail()


def test_baresip_to_baresip_direct(baresip, free_udp_port):
    port_a = free_udp_port(span=2, tcp=True)
    port_b = free_udp_port(span=2, tcp=True)
    a = baresip("a", "201", "", (LOOPBACK, port_a), port_a, register=False)
    b = baresip("b", "202", "", (LOOPBACK, port_b), port_b, register=False)
    a.dial("202", (LOOPBACK, port_b))
    a.wait_for(a.ESTABLISHED, 10)
    b.wait_for(b.ESTABLISHED, 10)
    a.wait_for(a.RTP_IN, 10)
    b.wait_for(b.RTP_IN, 10)
    time.sleep(2)  # two seconds of tone each way: ~100 packets at 20 ms
    a.hangup()
    a.wait_for(a.PACKETS, 10)
    b.wait_for(b.CLOSED_BY_PEER, 10)
    b.wait_for(b.PACKETS, 10)
    tx_a, rx_a = a.packets()
    tx_b, rx_b = b.packets()
    assert min(tx_a, rx_a, tx_b, rx_b) > 0, (a.packets(), b.packets())

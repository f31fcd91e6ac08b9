"""The trunk against a real provider, from host mode and the virtual device (`switchboard`):
Kamailio (kamailio/provider.cfg) on loopback, with a SIPp
UAS behind it as the called mobile.

* The appliance registers to the provider with the [trunk] account: the provider sees an
  authenticated REGISTER from the switch's own address, and the switch says "trunk registered".
* 202 (class staff: local, mobile, national) dials 0 13800138000: the call reaches the
  provider as 13800138000 (the outside prefix 0 taken off), authenticated with the trunk
  account (the provider challenges INVITEs with 407), is answered by the far end, hung up.
* 209 (no class: the site's default_class "internal", no outside calls) dials the same number:
  403 from the switch after 209 authenticated, and not one INVITE reaches the provider.

The site's trunk is moved from the template's 127.0.0.1:5070 to a free port, so that parallel
runs and other SIP software on this machine do not meet.
"""

import time

from sipharness import sipp, write_injection

MOBILE = "13800138000"
DIALED = "0" + MOBILE  # [dialplan] outside_prefix = "0" in the example site


def test_trunk_registers_and_dial_out_follows_classes(
    example_site, switchboard, provider, sipp_server, free_udp_port, workdir
):
    trunk = example_site.trunk()
    assert example_site.row("202")["class"] == "staff"
    assert example_site.row("209")["class"] == ""  # -> [staff] default_class = "internal"
    far_end = free_udp_port()
    prov = provider(trunk["port"], trunk["username"], trunk["password"], far_end)

    hm = switchboard(example_site)
    prov.wait_count(r"PROVIDER REGISTER ok", 1, 15)
    user, source = prov.registrations()[0]
    assert user == trunk["username"], prov.tail()
    assert source == "%s:%d" % hm.addr, "the switch registered from %s, not its SIP port %d" % (source, hm.port)
    hm.wait_for(r"\btrunk registered\b", 10)

    # forbidden first: nothing may reach the provider
    caller = write_injection(workdir / "209.csv", [("209", example_site.secret("209"))])
    res = sipp("uac_forbidden.xml", hm.addr, workdir, "forbidden209", calls=1, inf=caller, service=DIALED,
               recv_timeout_ms=8000)  # fmt: skip
    assert res.returncode == 0 and res.successful == 1, res.explain()
    time.sleep(1.0)  # a stray INVITE would be at the provider by now
    assert prov.received_invites() == [], prov.tail()

    # permitted: through the provider to the far end and back
    uas = sipp_server("uas_answer.xml", "mobile", 1, far_end, timeout_s=40)
    caller = write_injection(workdir / "202.csv", [("202", example_site.secret("202"))])
    res = sipp("uac_call.xml", hm.addr, workdir, "dialout202", calls=1, inf=caller, service=DIALED,
               duration_ms=1000, recv_timeout_ms=15000)  # fmt: skip
    answered = uas.finish(15)
    assert res.returncode == 0 and res.successful == 1, res.explain()
    assert answered.successful == 1, answered.explain()
    assert prov.invites() == [(MOBILE, trunk["username"])], prov.tail()
    prov.wait_count(r"PROVIDER in-dialog BYE", 1, 5)

    hm.wait_for(r"(?:^|\s)call 202 -> \S*%s: answered\b" % MOBILE, 10)
    assert hm.problems() == [], hm.problems()

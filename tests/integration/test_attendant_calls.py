"""The attendant answers, against host mode and the virtual device (the `switchboard` fixture):
SIPp calls the main menu's short number, is answered by the switch's own user agent, and plays
one of SIPp's own RFC 4733 captures (Debian's sip-tester ships /usr/share/sip-tester/
dtmf_2833_*.pcap). The key puts the caller through: a SIPp UAS registered as the menu option's
target gets the INVITE and answers, and the call record says so."""

import os
import time
from pathlib import Path

import pytest
from sipharness import sipp, write_injection

CAPTURES = Path("/usr/share/sip-tester")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _capture(digit):
    path = CAPTURES / ("dtmf_2833_%s.pcap" % digit)
    if not path.exists():
        if IN_CI:
            pytest.fail("%s missing: install sip-tester (CI=true: this test must run)" % path)
        pytest.skip("%s missing: apt install sip-tester" % path)
    return path


def _always_open(site):
    text = site.toml.read_text(encoding="utf-8")
    head, sep, rest = text.partition("\n[hours]\n")
    body, nxt, tail = rest.partition("\n[")
    site.toml.write_text(head + sep + 'open = ["mon-sun 00:00-24:00"]\nclosed = "menu:closed"\n' + nxt + tail)


def _register_uas(hm, number, secret, uas_port, workdir):
    reg = write_injection(workdir / ("reg-%s.csv" % number), [(number, secret)])
    res = sipp("register_auth.xml", hm.addr, workdir, "register_%s" % number, calls=1, inf=reg, local_port=uas_port,
               behaviors="all,-bye")  # fmt: skip
    assert res.returncode == 0 and res.successful == 1, res.explain()
    hm.wait_for(r"(?:^|\s)registered %s\b" % number, 5)


def test_a_2833_key_on_the_main_menu_reaches_its_target(example_site, switchboard, sipp_server, free_udp_port, workdir):
    pcap = _capture("1")  # option 1 of the example's main menu: ring group 600 (201, 202, 203)
    _always_open(example_site)
    example_site.check()
    secrets = example_site.secrets()
    hm = switchboard(example_site)
    uas_port = free_udp_port()
    _register_uas(hm, "201", secrets["201"], uas_port, workdir)
    uas = sipp_server("uas_answer.xml", "uas", 1, uas_port, timeout_s=40, recv_timeout_ms=20000)
    inf = write_injection(workdir / "caller.csv", [("202", secrets["202"])])
    res = sipp("uac_menu.xml", hm.addr, workdir, "menu", calls=1, inf=inf, service="800", duration_ms=4000,
               timeout_s=30, recv_timeout_ms=15000, extra=("-key", "pcap", str(pcap)))  # fmt: skip
    answered = uas.finish(20)
    assert res.returncode == 0 and res.successful == 1, res.explain()
    assert answered.successful == 1, answered.explain()  # 201 got the INVITE the key asked for
    hm.wait_for(r"call 202 -> 600\b.*answered", 10)
    assert hm.problems() == [], hm.problems()


def test_a_wrong_key_reaches_nobody(example_site, switchboard, sipp_server, free_udp_port, workdir):
    pcap = _capture("7")  # not an option of the main menu: the retry prompt, then the menu again
    _always_open(example_site)
    example_site.check()
    secrets = example_site.secrets()
    hm = switchboard(example_site)
    uas_port = free_udp_port()
    _register_uas(hm, "201", secrets["201"], uas_port, workdir)
    uas = sipp_server("uas_answer.xml", "uas", 1, uas_port, timeout_s=15, recv_timeout_ms=8000)
    inf = write_injection(workdir / "caller.csv", [("202", secrets["202"])])
    res = sipp("uac_menu.xml", hm.addr, workdir, "menu_wrong", calls=1, inf=inf, service="800", duration_ms=3000,
               timeout_s=30, recv_timeout_ms=15000, extra=("-key", "pcap", str(pcap)))  # fmt: skip
    answered = uas.finish(5)
    assert res.returncode == 0 and res.successful == 1, res.explain()  # the attendant kept the call
    assert answered.successful == 0, answered.explain()  # and put it through to nobody
    assert hm.problems() == [], hm.problems()


def test_a_baresip_caller_presses_a_key_and_talks_to_the_target(example_site, switchboard, baresip):
    """baresip 202 calls the main menu, types 1 (RFC 4733 from its keypad), and is put through
    to group 600, where baresip 201 answers by itself; RTP then flows both ways through the
    switch's media relay: each phone receives packets, and 201 hears only what 202 sends."""
    from sipharness import Baresip

    _always_open(example_site)
    example_site.check()
    hm = switchboard(example_site)
    target = baresip("201", "201", example_site.secret("201"), hm.addr)
    caller = baresip("202", "202", example_site.secret("202"), hm.addr)
    for phone in (target, caller):
        phone.wait_for(Baresip.REGISTERED, 10)
    hm.wait_for(r"(?:^|\s)registered 201\b", 5)
    hm.wait_for(r"(?:^|\s)registered 202\b", 5)
    caller.dial("800")
    caller.wait_for(Baresip.ESTABLISHED, 15)  # the attendant answered
    caller.wait_for(Baresip.RTP_IN, 10)  # and plays to it
    time.sleep(1)
    caller.send("1")  # a key, as a user types it during the call: baresip sends telephone-events
    target.wait_for(Baresip.ESTABLISHED, 15)  # group 600 rang 201, which answered
    target.wait_for(Baresip.RTP_IN, 10)  # the caller's audio reaches it, relayed
    time.sleep(3)
    caller.hangup()
    caller.wait_for(Baresip.PACKETS, 10)
    target.wait_for(Baresip.CLOSED_BY_PEER, 15)  # the caller's BYE ended the target's call too
    target.wait_for(Baresip.PACKETS, 10)
    tx_c, rx_c = caller.packets()
    tx_t, rx_t = target.packets()
    assert tx_t > 50 and rx_t > 50, "target tx/rx %d/%d: the relay did not carry 3 s both ways" % (tx_t, rx_t)
    assert rx_c > rx_t, "caller rx %d: the attendant's frames and then the target's" % rx_c
    hm.wait_for(r"call 202 -> 600\b.*answered", 10)
    assert hm.problems() == [], hm.problems()

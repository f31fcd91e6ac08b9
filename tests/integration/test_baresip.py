"""baresip against host mode and the virtual device (the `switchboard` fixture): two softphones
register as 201 and 202, 201 dials 202 by its short
number, 202 answers by itself, RTP flows both ways, 201 hangs up, both see the call end and the
switch prints the call record.

baresip 1.0.0 (Debian 12) runs headless: commands on stdin, a sine tone as microphone, no
player; its RTP statistics, printed when a call ends, count the packets each way.
It computes Digest MD5 only, and gives up ("Register: Function not implemented") when a 401 or
407 carries any challenge it cannot compute, whatever the order: this test needs the switch to
offer it MD5 alone.
"""

import time

from sipharness import Baresip

HOLD_S = 3  # seconds the call stays up: ~150 RTP packets each way at 20 ms


def test_two_softphones_call_and_hang_up(example_site, switchboard, baresip):
    hm = switchboard(example_site)
    a = baresip("201", "201", example_site.secret("201"), hm.addr)
    b = baresip("202", "202", example_site.secret("202"), hm.addr)
    for phone in (a, b):
        m = phone.wait_for(Baresip.REGISTERED + "|" + Baresip.REGISTER_FAILED, 10)
        if m.group(0).startswith("Register"):
            why = m.string
            if "Function not implemented" in why:
                why += (
                    " (baresip 1.0.0 answers only Digest MD5 and gives up when a 401/407 carries"
                    " any other challenge, e.g. SHA-256, in whatever order)"
                )
            raise AssertionError("%s did not register: %s" % (phone.name, why))
    hm.wait_for(r"(?:^|\s)registered 201\b", 5)
    hm.wait_for(r"(?:^|\s)registered 202\b", 5)

    a.dial("202")
    a.wait_for(Baresip.ESTABLISHED, 15)
    b.wait_for(Baresip.ESTABLISHED, 5)
    a.wait_for(Baresip.RTP_IN, 10)
    b.wait_for(Baresip.RTP_IN, 10)
    time.sleep(HOLD_S)

    a.hangup()
    a.wait_for(Baresip.PACKETS, 10)  # the caller's call is gone
    b.wait_for(Baresip.CLOSED_BY_PEER, 10)  # the callee got the BYE
    b.wait_for(Baresip.PACKETS, 10)
    tx_a, rx_a = a.packets()
    tx_b, rx_b = b.packets()
    assert rx_a > 0 and rx_b > 0, "RTP did not arrive both ways: 201 tx/rx %d/%d, 202 tx/rx %d/%d" % (
        tx_a,
        rx_a,
        tx_b,
        rx_b,
    )
    assert tx_a > 0 and tx_b > 0

    record = hm.wait_for(r"(?:^|\s)call 201 -> 202: answered\b", 10)
    assert "202" in record.string
    assert hm.problems() == [], hm.problems()

    # both leave cleanly: /quit unregisters, and the switch says so
    a.quit()
    b.quit()
    hm.wait_count(r"(?:^|\s)unregistered 20[12]\b", 2, 10)

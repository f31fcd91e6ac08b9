"""The shell's pump with the attendant (CPython, the same Pump the device runs): a menu's reply
timeout starts when its greeting ends, which only a media step sees; the pump's deadline must
bring it in time, not at whatever SIP timer comes next."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "core"))

import _sites  # noqa: E402
import test_agent as t  # noqa: E402
from zongji.shell.pump import Pump  # noqa: E402

LONG = b"\x11" * 160 * 2000  # a 40 s greeting: by its end the call's SIP timers are quiet


def test_a_menus_reply_timeout_fires_on_time_under_the_pump():
    raw = _sites.raw_site()
    del raw["trunk"]  # no provider to register with: nothing else keeps SIP timers running
    net = t.MediaNet(_sites.build(raw), t.Prompts({"menu.main": LONG}))
    caller = net.phone("202", 5061)
    assert caller.register().status == 200
    t.call(net, caller, "800")  # answered and ACKed: the greeting starts
    first = []
    pump = Pump(net.sw, lambda data, addr: net.deliver(data, addr), lambda ev: None, None)
    pump.send_media = lambda data, addr: first.append(net.now) if bytes(data)[12:14] == b"\x11\x11" else None
    pump.timer(net.now)
    start = net.now
    while net.now < start + 60000:  # the shell's loop: sleep to the deadline, take the turn
        net.now = max(net.now + 1, pump.deadline)
        pump.timer(net.now)
    # the greeting's frames, then the 5 s reply timeout of the main menu, then the greeting again
    gaps = [b - a for a, b in zip(first, first[1:]) if b - a > 100]
    assert gaps, "the greeting played once: the reply timeout never fired"
    assert 5000 <= gaps[0] <= 5100, gaps

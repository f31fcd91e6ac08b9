"""The budget of stateless answers: how many requests without credentials the switch answers.

    budget = AnswerBudget()
    if budget.may_answer(ip, now_ms): send the challenge / OPTIONS answer / rejection
    else: drop it

A request without credentials (a first REGISTER or INVITE, OPTIONS, an in-dialog request from
nobody's dialog) is answered statelessly and costs the switch no state; what it still costs is
a little CPU and a datagram out. Those answers come from token buckets, one per address prefix
(/24 for IPv4, /64 for IPv6: guard.prefix) and one overall, so a flood from one address, or
from a block of them, gets its share and no more, and the switch answers the rest. The buckets
are roomier than the guard's guess budget (Guard.may_verify): a challenge gives nothing away,
and every phone of an office needs one when it boots. Registered phones never ask: the switch
answers them whatever the buckets hold. Host mode makes the buckets larger (a PC serves more).

The prefix table holds at most max_prefixes buckets (a few hundred bytes). When it is full, a
new prefix takes the place of full buckets, or else of the fullest one and starts with a single
token (guard.make_room): rotating over more prefixes than the table holds earns no fresh bursts.
"""

from zongji.switch.guard import make_room, prefix
from zongji.switch.seconds import Seconds


class AnswerBudget(Seconds):
    prefix_burst = 40  # answers a prefix may have at once ...
    prefix_rate = 10  # ... and more a second
    burst = 100  # answers overall at once ...
    rate = 20  # ... and more a second
    max_prefixes = 16

    def __init__(self):
        self._base = None
        self._p = {}  # prefix -> [tokens, second]
        self._all = None

    def may_answer(self, ip, now_ms):
        """True (a token taken): answer. False: drop the request silently."""
        now = self._sec(now_ms)
        p = prefix(ip)
        b = self._p.get(p)
        if b is None:
            b = self._p[p] = [make_room(self._p, self.prefix_burst, self.prefix_rate, self.max_prefixes, now), now]
        every = self._all
        if every is None:
            every = self._all = [self.burst, now]
        b[0] = min(self.prefix_burst, b[0] + (now - b[1]) * self.prefix_rate)
        b[1] = now
        every[0] = min(self.burst, every[0] + (now - every[1]) * self.rate)
        every[1] = now
        if b[0] < 1 or every[0] < 1:
            return False
        b[0] -= 1
        every[0] -= 1
        return True

    def __len__(self):
        return len(self._p)

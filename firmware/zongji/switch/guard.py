"""Failed-authentication limiting per source IP: password guessers are cut off.

    guard = Guard()
    if not guard.allowed(ip, now_ms): drop the datagram     the shell, before parsing anything
    guard.failed(ip, now_ms)          a wrong password, unknown user, bad credentials (True: banned)
    guard.succeeded(ip)               a good password
    guard.take_events()               [("banned", ip, until_ms), ...] for the log
    guard.bans(now_ms), guard.unban(ip)                     status and the admin's way out

Theory of operation
-------------------
Each source counts its failures in a fixed window of window_ms starting at its first failure.
The max_failures-th failure inside one window bans the source for ban_ms; every further ban
doubles that, up to max_ban_ms. The doubling is forgotten once a source has stayed clean for
max_ban_ms after its last ban ended. While banned, the shell drops the source's datagrams
without a word: no 401 to compute, no hint the guesses stopped counting. A success does not
lift a ban. It clears the failure count once per window (a user who fixed a typo starts
afresh), and only once, so interleaving a known good password with guesses buys at most
2 * max_failures - 1 guesses per window.

Only failures make an entry; allowed() never does, so datagrams from spoofed addresses cost
nothing. The table holds at most max_sources entries. When it is full, entries with nothing
left to remember go first, then the one whose window started longest ago, then (all banned)
the ban that ends soonest: a flood of single failures from many addresses cannot grow memory
nor push out a ban while unbanned entries remain. An entry is an IP string key and a 5-tuple
of small ints (times in seconds since the first now_ms): about 96 bytes (the ip string ~48, the
tuple 32, a dict slot ~16), 12 KB for a full table of IPv4 sources; test_sip_guard holds the
allocation of filling one, garbage included, under 16 KB on MicroPython.

What SIPVicious svcrack meets. svcrack guesses one extension's password from a word list: a
REGISTER, our 401 challenge, a REGISTER with the digest of the next word, our 401 again. The
registrar gives it one answer for every failure (the same 401 for a wrong password and an
unknown user), and each failure is counted here. After 10 guesses in 60 s the source is
banned and its requests go unanswered, so svcrack sees only timeouts, not verdicts. A
200-word list is 20 rounds of 10 with 19 bans between them: 300, 600, 1200 ... s, doubling
until the 24 h cap at the 10th, 1,017,300 s in all. The list that takes seconds unguarded
takes about 11.8 days, every ban is logged ("banned", ip, until) for the admin to see, and
pausing does not reset the doubling unless the source stays clean for 24 h after a ban.
test_sip_guard replays exactly this and checks the figures.
"""

from zongji.switch.seconds import Seconds

# entry tuple fields
_START = 0  # window start, seconds since self._base
_COUNT = 1  # failures in the window
_UNTIL = 2  # ban end (seconds), 0 when never banned
_OFFENCES = 3  # bans so far (the next lasts ban_ms << offences)
_FORGIVEN = 4  # 1 when a success already cleared this window's count


class Guard(Seconds):
    """Failure counts and bans per source IP. Limits are class attributes (change them on the
    class or an instance before use)."""

    max_failures = 10  # failures within window_ms that ban a source
    window_ms = 60000
    ban_ms = 300000  # the first ban; each further one doubles
    max_ban_ms = 86400000  # cap on one ban, and how long a clean source keeps its record
    max_sources = 128  # table entries; the least useful is evicted when full
    max_events = 32  # undrained events kept; the oldest go first

    def __init__(self):
        self._t = {}  # ip -> entry tuple
        self._base = None
        self._events = []

    def allowed(self, ip, now_ms):
        """False while `ip` is banned: drop what it sent, silently."""
        e = self._t.get(ip)
        return e is None or e[_UNTIL] <= self._sec(now_ms)

    def failed(self, ip, now_ms):
        """Count one failed authentication from `ip`. Returns True if it is (now) banned."""
        now = self._sec(now_ms)
        e = self._t.get(ip)
        if e is None:
            if len(self._t) >= self.max_sources:
                self._evict(now)
            start, count, until, offences, forgiven = now, 0, 0, 0, 0
        else:
            start, count, until, offences, forgiven = e
        if until > now:
            return True  # already banned; the shell should not have passed it on
        if now - start >= self.window_ms // 1000:
            start, count, forgiven = now, 0, 0
        if until and now - until >= self.max_ban_ms // 1000:
            offences = 0  # clean for long enough: start the doubling over
        count += 1
        banned = count >= self.max_failures
        if banned:
            until = now + min(self.ban_ms << min(offences, 20), self.max_ban_ms) // 1000
            offences = min(offences + 1, 20)
            start, count = now, 0
            if len(self._events) >= self.max_events:
                self._events.pop(0)
            self._events.append(("banned", ip, self._ms(until)))
        self._t[ip] = (start, count, until, offences, forgiven)
        return banned

    def succeeded(self, ip):
        """A good password from `ip`: clears its failure count, once per window. Bans stay."""
        e = self._t.get(ip)
        if e is not None and e[_COUNT] and not e[_FORGIVEN]:
            self._t[ip] = (e[_START], 0, e[_UNTIL], e[_OFFENCES], 1)

    def _stale(self, e, now):
        # nothing left to remember: window over, no ban running, no ban history worth keeping
        return (
            now - e[_START] >= self.window_ms // 1000
            and e[_UNTIL] <= now
            and (e[_UNTIL] == 0 or now - e[_UNTIL] >= self.max_ban_ms // 1000)
        )

    def _evict(self, now):
        stale = []
        oldest = soonest = None
        for ip, e in self._t.items():
            if self._stale(e, now):
                stale.append(ip)
            elif e[_UNTIL] <= now:
                if oldest is None or e[_START] < self._t[oldest][_START]:
                    oldest = ip
            elif soonest is None or e[_UNTIL] < self._t[soonest][_UNTIL]:
                soonest = ip
        for ip in stale:
            del self._t[ip]
        if not stale:
            del self._t[oldest if oldest is not None else soonest]

    def bans(self, now_ms):
        """[(ip, until_ms), ...] of the sources banned now."""
        now = self._sec(now_ms)
        return [(ip, self._ms(e[_UNTIL])) for ip, e in self._t.items() if e[_UNTIL] > now]

    def unban(self, ip):
        """Forget everything about `ip` (the admin knows it is a misconfigured phone)."""
        self._t.pop(ip, None)

    def __len__(self):
        return len(self._t)

    def take_events(self):
        """The events since the last call, oldest first."""
        events = self._events
        self._events = []
        return events

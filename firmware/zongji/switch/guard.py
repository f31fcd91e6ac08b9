"""Failed-authentication limiting: a mistyped password locks one user, guessers are cut off.

    guard = Guard()
    guard.allowed(ip, now_ms)             False while the address is banned: drop, unread
    guard.user_allowed(ip, user, now_ms)  False while that user is locked there (or it is banned)
    guard.may_challenge(ip, now_ms)       False: drop credentials unchecked (guesses' budget)
    guard.failed(ip, user, now_ms, reason)   one failed authentication -> None, "locked", "banned"
    guard.succeeded(ip, user)             a good password
    guard.take_events()   [("banned", ip, until_ms, reason), ("locked", ip, user, until_ms, reason)]
    guard.bans(now_ms), guard.locks(now_ms), guard.unban(ip), guard.sizes(), len(guard)

Theory of operation
-------------------
Three defences, from narrow to wide. Every table has a cap, and only failures, successes and
answers make entries; allowed() and user_allowed() never do, so a spoofed flood costs nothing.

1. A user at an address. Failures are counted per (address, user) in a fixed window of
window_ms from the first one. The max_failures-th locks that user at that address for lock_ms;
every further lock doubles, up to max_ban_ms, and the doubling is forgotten after max_ban_ms
clean. A softphone with a typo sending 11 REGISTERs in a second locks only itself: the other
phones behind that NAT register as before. A success does not lift a lock. It clears the
count once per window (the user fixed the typo), and only once, so a known password
interleaved with guesses buys at most 2 * max_failures - 1 guesses a window. The switch asks
user_allowed() before it checks a password; failures while locked change nothing.

2. An address. Its entry counts every failure in its own window, and remembers the hashes of
the users that failed (a success takes its user off). Failures for max_users different users
(enumeration), or max_address_failures failures whatever the users (a flood), ban the address
for ban_ms, doubling as locks do; allowed() is then False and the switch drops what it sends
without a word. A failure that names no user (the old call failed(ip, now_ms)) cannot be
pinned on one: max_failures of them ban the address.

Eviction does not forgive. An entry is worth, from least: nothing (window over, no ban to
remember: swept first), its failures in the window (plus a weight per failing user), a ban
history (the doubling), a running lock or ban (the one ending soonest least). A newcomer takes
the place of the least worth entry only if that is worth no more than the newcomer: one-off
failures push out one-off failures, never a near-ban entry nor a ban. A failure that finds no
room is not forgotten either: it empties its prefix's challenge bucket (3.).

3. Everyone. Checking credentials, and answering the verdict, costs one token from the
request's prefix bucket (/24 for IPv4, /64 for IPv6; prefix_burst tokens, prefix_rate more a
second) and one from the overall bucket (overall_burst, overall_rate a second): the switch asks
may_challenge() before it checks a password, and with no token drops the request unchecked, so
a right guess looks like a wrong one. An address that authenticated before (succeeded) is not
held back; its guesses still meet the locks and the ban. The switch does not ask for a source
with a registered phone at that ip:port, so registered phones keep working whatever the
buckets hold. (Requests without credentials are the answer budget's: switch/budget.py.) When
the prefix table is full, full buckets (nothing to remember) go first, else the fullest, and
the newcomer starts with one token, not a burst. So rotating buys at most the overall rate:
overall_burst + overall_rate * seconds answers, 310 in the 50 s that 5,000 guesses take at
6,000 a minute, 120 within one /24. test_sip_guard replays the rotation that once got 5,000
of 5,000 guesses answered (10.0.x.y, 9 guesses each): 118 are answered over 129 or 256
sources (one /24), 145 over 1,000 (four /24s), 305 over 1,000 in a /24 each, while a
registered phone keeps registering.

Sizes. Times are whole seconds since the first now_ms (Seconds): small ints, no heap. Entries
are lists updated in place, so a repeated failure allocates only its lookup key. An address
entry is the ip string and 8 ints (~110 B with its dict slot), a user entry a key "ip user"
(the name cut to 32 characters) and 5 ints (~90 B), a prefix a short string and 2 ints, a good
address its string and an int. Filling every table (48 + 48 + 16 + 16) allocates 15,184 B on
MicroPython, garbage included: test_sip_guard holds it under 16 KB (device heap ~110 KB).

What SIPVicious svcrack meets. svcrack guesses one extension's password from a word list, a
REGISTER and a digest per word. The registrar gives one answer for every failure (the same 401
for a wrong password and an unknown user). After 10 guesses in 60 s that user is locked at
that address and its requests go unanswered, so svcrack sees only timeouts. A 200-word list
is 20 rounds of 10 with 19 locks between them: 300, 600, 1200 ... s, doubling until the 24 h
cap at the 10th, 1,017,300 s in all, about 11.8 days; each lock is logged with the user and
the reason (leaving out the buckets, which slow it further: 2 guesses a second after 20).
svwar, guessing extensions, is banned at its 5th user.
"""

from zongji.compat import const
from zongji.switch.seconds import Seconds

# entry fields, addresses and (address, user) entries alike: lists, updated in place
_START = const(0)  # window start, seconds since self._base
_COUNT = const(1)  # failures in the window
_UNTIL = const(2)  # ban or lock end (seconds), 0 when never
_OFFENCES = const(3)  # bans or locks so far (the next lasts base << offences)
_FORGIVEN = const(4)  # user entries: 1 when a success already cleared this window's count
_USERS = const(4)  # address entries: max_users - 1 slots for the failing users' hashes (0: free)

_MAX_USER = const(32)  # characters of a user name kept, in keys and events
_BIG = const(1 << 27)


def prefix(ip):
    """The block `ip` shares its challenge bucket with: "a.b.c" (/24) or 4 hex groups (/64)."""
    if "%" in ip:
        ip = ip[: ip.find("%")]
    dot = ip.rfind(".")
    if dot >= 0:  # IPv4, also mapped into IPv6 (::ffff:192.0.2.1)
        return ip[ip.rfind(":") + 1 : dot]
    if "::" in ip:
        head, tail = ip.split("::", 1)
        head = head.split(":") if head else []
        tail = tail.split(":") if tail else []
        groups = head + ["0"] * (8 - len(head) - len(tail)) + tail
    else:
        groups = ip.split(":")
    try:
        return ":".join(["%x" % int(g or "0", 16) for g in groups[:4]])
    except ValueError:
        return ip


def _cut(user):
    if not user:
        return ""
    return user if len(user) <= _MAX_USER else user[:_MAX_USER]


class Guard(Seconds):
    """Locks per (address, user), bans per address, challenge buckets per prefix and overall.
    Limits are class attributes (change them on the class or an instance before use)."""

    window_ms = 60000
    max_failures = 10  # failures for one user from one address within window_ms: locked
    lock_ms = 300000  # the first lock; each further one doubles
    max_users = 5  # users failing from one address within window_ms: banned (enumeration)
    max_address_failures = 30  # failures from one address within window_ms: banned (a flood)
    ban_ms = 300000  # the first ban; each further one doubles
    max_ban_ms = 86400000  # cap on one lock or ban, and how long a clean record is kept
    max_addresses = 48  # address entries
    max_users_table = 48  # (address, user) entries
    max_prefixes = 16  # challenge buckets
    max_good = 16  # addresses that authenticated, exempt from the overall bucket
    prefix_burst = 20  # challenges a prefix may have at once
    prefix_rate = 2  # and more a second
    overall_burst = 60
    overall_rate = 5
    max_events = 32  # undrained events kept; the oldest go first

    def __init__(self):
        self._a = {}  # ip -> address entry
        self._u = {}  # "ip user" -> user entry
        self._p = {}  # prefix -> [tokens, second]
        self._good = {}  # ip -> sequence number of its last success
        self._seq = 0
        self._all = None  # [tokens, second] of the overall bucket
        self._base = None
        self._events = []

    @property
    def max_sources(self):
        """All caps together: len(guard) never exceeds it."""
        return self.max_addresses + self.max_users_table + self.max_prefixes + self.max_good

    # ---- questions: cheap, no entry ---------------------------------------------------------

    def allowed(self, ip, now_ms):
        """False while `ip` is banned: drop what it sent, silently."""
        e = self._a.get(ip)
        return e is None or e[_UNTIL] <= self._sec(now_ms)

    def user_allowed(self, ip, user, now_ms):
        """False while `user` is locked at `ip`, or `ip` is banned."""
        if not self.allowed(ip, now_ms):
            return False
        e = self._u.get("%s %s" % (ip, _cut(user))) if self._u else None
        return e is None or e[_UNTIL] <= self._sec(now_ms)

    def may_challenge(self, ip, now_ms):
        """May the switch check credentials from `ip` now (and answer the verdict)? True takes
        a token. False: drop the request unchecked, so a right guess looks like a wrong one. An
        address that authenticated before is not held back (its guesses still meet the locks
        and the address ban): the phones of an office behind one NAT boot without waiting."""
        if ip in self._good:
            return True
        now = self._sec(now_ms)
        p = prefix(ip)
        b = self._p.get(p)
        if b is not None:
            b[0] = min(self.prefix_burst, b[0] + (now - b[1]) * self.prefix_rate)
            b[1] = now
            if b[0] < 1:
                return False
        every = self._all
        if every is None:
            every = self._all = [self.overall_burst, now]
        every[0] = min(self.overall_burst, every[0] + (now - every[1]) * self.overall_rate)
        every[1] = now
        if every[0] < 1:
            return False
        every[0] -= 1
        if b is None:
            b = self._p[p] = [self._room_for_prefix(now), now]
        b[0] -= 1
        return True

    # ---- what happened ----------------------------------------------------------------------

    def failed(self, ip, user, now_ms=None, reason=""):
        """Count one failed authentication from `user` at `ip` (user None or "" when the
        request named none). -> None, "locked" (that user now is) or "banned" (the address).
        The old form failed(ip, now_ms) is an anonymous failure."""
        if now_ms is None:
            user, now_ms = None, user
        now = self._sec(now_ms)
        a = self._a.get(ip)
        if a is not None and a[_UNTIL] > now:
            return "banned"
        user = _cut(user)
        key = "%s %s" % (ip, user)
        u = self._u.get(key)
        if u is not None and u[_UNTIL] > now:
            return "locked"
        verdict = None
        new = u is None
        if new:
            u = [now, 0, 0, 0, 0]
        self._tick(u, now)
        u[_COUNT] += 1
        anonymous_ban = not user and u[_COUNT] >= self.max_failures
        if anonymous_ban:
            u[_START], u[_COUNT] = now, 0  # the address carries it
        elif u[_COUNT] >= self.max_failures:
            self._punish(u, now, self.lock_ms)
            self._event(("locked", ip, user, self._ms(u[_UNTIL]), reason))
            verdict = "locked"
        if new and not self._put(self._u, self.max_users_table, key, u, now, False):
            self._drain(ip, now)
        if self._address(ip, a, user, now, reason, anonymous_ban):
            verdict = "banned"
        return verdict

    def _address(self, ip, a, user, now, reason, force):
        # count the failure against the address; True if it bans it now
        new = a is None
        if new:
            a = [0] * (_USERS + self.max_users - 1)
            a[_START] = now
        self._tick(a, now)
        a[_COUNT] += 1
        users = self._users(a)
        if user:
            h = (hash(user) & 0xFFFFFF) or 1
            if self._slot(a, h) < 0:
                users += 1
                if users < self.max_users:
                    a[_USERS + users - 1] = h
        why = None
        if force:
            why = "%d failures without a user, last: %s" % (self.max_failures, reason)
        elif users >= self.max_users:
            why = "%d users failed, last: %s" % (users, reason)
        elif a[_COUNT] >= self.max_address_failures:
            why = "%d failures, last: %s" % (a[_COUNT], reason)
        if why is not None:
            self._punish(a, now, self.ban_ms)
            self._event(("banned", ip, self._ms(a[_UNTIL]), why))
        if new and not self._put(self._a, self.max_addresses, ip, a, now, True):
            self._drain(ip, now)
        return why is not None

    def succeeded(self, ip, user=None):
        """A good password from `user` at `ip`: clears that user's count there once per window
        and takes it off the address's failing users. Locks and bans stay."""
        user = _cut(user)
        e = self._u.get("%s %s" % (ip, user)) if self._u else None
        if e is not None and e[_COUNT] and not e[_FORGIVEN]:
            e[_COUNT], e[_FORGIVEN] = 0, 1
        a = self._a.get(ip)
        if a is not None and user:
            i = self._slot(a, (hash(user) & 0xFFFFFF) or 1)
            if i >= 0:
                a[i:] = a[i + 1 :] + [0]
        self._seq += 1
        if ip not in self._good and len(self._good) >= self.max_good:
            oldest = None
            for g in self._good:
                if oldest is None or self._good[g] < self._good[oldest]:
                    oldest = g
            del self._good[oldest]
        self._good[ip] = self._seq

    # ---- the tables -------------------------------------------------------------------------

    def _tick(self, e, now):
        # a new window once the last one is over; a fresh doubling after max_ban_ms clean
        if now - e[_START] >= self.window_ms // 1000:
            e[_START] = now
            for i in range(_COUNT, len(e)):
                if i != _UNTIL and i != _OFFENCES:
                    e[i] = 0
        if e[_UNTIL] and now - e[_UNTIL] >= self.max_ban_ms // 1000:
            e[_OFFENCES] = 0

    def _punish(self, e, now, base_ms):
        e[_UNTIL] = now + min(base_ms << e[_OFFENCES], self.max_ban_ms) // 1000
        e[_OFFENCES] = min(e[_OFFENCES] + 1, 20)
        e[_START] = now
        for i in range(_COUNT, len(e)):
            if i != _UNTIL and i != _OFFENCES:
                e[i] = 0

    def _slot(self, a, h):
        for i in range(_USERS, len(a)):
            if a[i] == h:
                return i
        return -1

    def _users(self, a):
        n = 0
        for i in range(_USERS, len(a)):
            if a[i]:
                n += 1
        return n

    def _worth(self, e, now, address):
        until = e[_UNTIL]
        if until > now:  # running: the one ending soonest is worth least
            return 2 * _BIG + min(until - now, _BIG - 1)
        if until and now - until < self.max_ban_ms // 1000:  # the doubling to remember
            return _BIG + e[_OFFENCES]
        if now - e[_START] < self.window_ms // 1000:
            if address:
                return e[_COUNT] + self._users(e) * (self.max_address_failures // self.max_users)
            return e[_COUNT]
        return 0  # nothing left to remember

    def _put(self, table, cap, key, entry, now, address):
        # store a new entry unless the table is full of entries worth more; True when stored
        if len(table) >= cap:
            worth = self._worth(entry, now, address)
            stale = None
            least = least_worth = None
            for k in table:  # not items(): on MicroPython each item would be a new tuple
                e = table[k]
                w = self._worth(e, now, address)
                if w == 0:
                    stale = [k] if stale is None else stale + [k]
                elif least is None or w < least_worth or (w == least_worth and e[_START] < table[least][_START]):
                    least, least_worth = k, w
            if stale is not None:
                for k in stale:
                    del table[k]
            elif least_worth > worth:
                return False  # eviction does not forgive
            else:
                del table[least]
        table[key] = entry
        return True

    def _drain(self, ip, now):
        # a failure the tables had no room for: its prefix gets no answers until refilled
        p = prefix(ip)
        b = self._p.get(p)
        if b is None:
            self._room_for_prefix(now)
            self._p[p] = [0, now]
        else:
            b[0], b[1] = 0, now

    def _room_for_prefix(self, now):
        return make_room(self._p, self.prefix_burst, self.prefix_rate, self.max_prefixes, now)

    def _event(self, ev):
        if len(self._events) >= self.max_events:
            self._events.pop(0)
        self._events.append(ev)

    # ---- status and the admin ---------------------------------------------------------------

    def bans(self, now_ms):
        """[(ip, until_ms), ...] of the addresses banned now."""
        now = self._sec(now_ms)
        return [(ip, self._ms(e[_UNTIL])) for ip, e in self._a.items() if e[_UNTIL] > now]

    def locks(self, now_ms):
        """[(ip, user, until_ms), ...] of the users locked now."""
        now = self._sec(now_ms)
        out = []
        for key, e in self._u.items():
            if e[_UNTIL] > now:
                ip, user = key.split(" ", 1)
                out.append((ip, user, self._ms(e[_UNTIL])))
        return out

    def unban(self, ip):
        """Forget everything about `ip` (the admin knows it is a misconfigured phone)."""
        self._a.pop(ip, None)
        for key in [k for k in self._u if k.startswith(ip + " ")]:
            del self._u[key]

    def sizes(self):
        """{table: (entries, cap)}."""
        return {
            "addresses": (len(self._a), self.max_addresses),
            "users": (len(self._u), self.max_users_table),
            "prefixes": (len(self._p), self.max_prefixes),
            "good": (len(self._good), self.max_good),
        }

    def __len__(self):
        return len(self._a) + len(self._u) + len(self._p) + len(self._good)

    def take_events(self):
        """The events since the last call, oldest first."""
        events = self._events
        self._events = []
        return events


def make_room(table, burst, rate, cap, now):
    """Room in a table of token buckets (prefix -> [tokens, second]) for one more: the tokens
    the new bucket starts with. Full buckets have nothing to remember and go first; when none
    is full, the fullest goes and the new one starts with a single token, so rotating over more
    prefixes than the table holds earns no fresh bursts (AnswerBudget and the guess budget)."""
    if len(table) < cap:
        return burst
    fullest = None
    most = -1
    full = None
    for p in table:
        b = table[p]
        tokens = min(burst, b[0] + (now - b[1]) * rate)
        if tokens >= burst:
            full = [p] if full is None else full + [p]
        elif tokens > most:
            fullest, most = p, tokens
    if full is not None:
        for p in full:
            del table[p]
        return burst
    del table[fullest]
    return 1

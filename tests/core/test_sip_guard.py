"""zongji.switch.guard: locks per (address, user), bans per address, challenge buckets, svcrack."""

from _support import IS_MICROPYTHON, SkipTest
from zongji.switch.guard import Guard, prefix

T0 = 7000000  # an arbitrary "now" in ms
IP = "192.168.1.66"
WRONG = "wrong password"


def _fail(guard, ip, user, now, times, reason=WRONG):
    verdict = None
    for _ in range(times):
        verdict = guard.failed(ip, user, now, reason)
    return verdict


def _open():
    # a guard whose buckets never run dry: tests of the tables alone
    guard = Guard()
    guard.prefix_burst = guard.overall_burst = 1 << 20
    guard.prefix_rate = guard.overall_rate = 1 << 20
    return guard


def _ip(i):
    return "10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255)


# ---- one user at one address ----------------------------------------------------------------


def test_asking_makes_no_entry():
    guard = Guard()
    assert guard.allowed(IP, T0)
    assert guard.user_allowed(IP, "201", T0)
    assert len(guard) == 0  # spoofed floods cost nothing
    guard.succeeded("10.9.9.9", "201")  # a success makes only a small good-address entry
    assert guard.sizes()["addresses"] == (0, Guard.max_addresses)


def test_a_mistyped_password_locks_that_user_only():
    # a softphone with a typo sends 11 REGISTERs in a second from behind an office NAT
    guard = Guard()
    verdicts = []
    for i in range(11):
        now = T0 + i * 90
        if guard.allowed(IP, now) and guard.user_allowed(IP, "201", now) and guard.may_challenge(IP, now):
            verdicts.append(guard.failed(IP, "201", now, WRONG))
    assert verdicts == [None] * 9 + ["locked"]  # the 11th is dropped unread
    # locks run in whole seconds, from the second of the 10th failure
    assert guard.take_events() == [("locked", IP, "201", T0 + 300000, WRONG)]
    assert not guard.user_allowed(IP, "201", T0 + 2000)
    # every other phone behind that address is served as before
    assert guard.allowed(IP, T0 + 2000)
    assert guard.user_allowed(IP, "202", T0 + 2000)
    assert guard.may_challenge(IP, T0 + 2000)
    guard.succeeded(IP, "202")
    assert guard.bans(T0 + 2000) == []
    assert guard.locks(T0 + 2000) == [(IP, "201", T0 + 300000)]
    assert guard.user_allowed("192.168.1.67", "201", T0 + 2000)  # only at that address
    assert not guard.user_allowed(IP, "201", T0 + 299999)
    assert guard.user_allowed(IP, "201", T0 + 300000)


def test_failures_spread_over_windows_never_lock():
    # a phone with a wrong password that retries every 30 s fails twice a minute, for hours
    guard = Guard()
    for i in range(240):
        assert guard.failed(IP, "201", T0 + i * 30000, WRONG) is None
    assert guard.user_allowed(IP, "201", T0 + 240 * 30000)
    assert guard.take_events() == []


def test_failures_while_locked_change_nothing():
    guard = Guard()
    _fail(guard, IP, "201", T0, 10)
    guard.take_events()
    assert _fail(guard, IP, "201", T0 + 1000, 50) == "locked"
    assert guard.take_events() == []
    assert guard.allowed(IP, T0 + 1000)  # 60 failures, but for one user: no flood ban
    assert guard.user_allowed(IP, "201", T0 + 300000)


def test_repeat_locks_double_up_to_the_cap():
    guard = Guard()
    now = T0
    lengths = []
    for _ in range(12):
        assert _fail(guard, IP, "201", now, 10) == "locked"
        until = guard.take_events()[0][3]
        lengths.append((until - now) // 1000)
        now = until
    assert lengths == [300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 76800, 86400, 86400, 86400]
    assert guard.allowed(IP, now)  # 120 failures of one user never ban the address


def test_doubling_is_forgotten_after_a_clean_day():
    guard = Guard()
    _fail(guard, IP, "201", T0, 10)
    _fail(guard, IP, "201", T0 + 300000, 10)  # right after the first lock: the second is 600 s
    assert guard.take_events()[1][3] == T0 + 900000
    later = T0 + 900000 + 86400000
    _fail(guard, IP, "201", later, 10)
    assert guard.take_events() == [("locked", IP, "201", later + 300000, WRONG)]


def test_success_does_not_lift_a_lock():
    guard = Guard()
    _fail(guard, IP, "201", T0, 10)
    guard.succeeded(IP, "201")
    assert not guard.user_allowed(IP, "201", T0 + 1000)


def test_success_forgives_once_per_window():
    guard = Guard()
    _fail(guard, IP, "201", T0, 9)
    guard.succeeded(IP, "201")  # the user fixed a typo: a clean slate
    assert _fail(guard, IP, "201", T0 + 1000, 9) is None
    guard.succeeded(IP, "201")  # but only once: a known password cannot launder guesses
    assert guard.failed(IP, "201", T0 + 2000, WRONG) == "locked"  # 19 guesses, at most 2 * 10 - 1


def test_forgiveness_comes_back_with_a_new_window():
    guard = Guard()
    _fail(guard, IP, "201", T0, 9)
    guard.succeeded(IP, "201")
    _fail(guard, IP, "201", T0 + 61000, 9)
    guard.succeeded(IP, "201")
    assert _fail(guard, IP, "201", T0 + 62000, 9) is None


def test_an_absurd_user_name_is_cut():
    guard = Guard()
    name = "A" * 5000
    assert _fail(guard, IP, name, T0, 10) == "locked"
    event = guard.take_events()[0]
    assert event[2] == "A" * 32
    assert not guard.user_allowed(IP, name, T0)
    assert guard.user_allowed(IP, "A", T0)


# ---- an address -------------------------------------------------------------------------------


def test_enumeration_across_five_users_bans_the_address():
    guard = Guard()
    for user in ("100", "101", "102", "103"):
        assert guard.failed(IP, user, T0, "unknown user") is None
    assert guard.allowed(IP, T0)
    assert guard.failed(IP, "104", T0 + 59000, "unknown user") == "banned"
    assert guard.take_events() == [("banned", IP, T0 + 359000, "5 users failed, last: unknown user")]
    assert not guard.allowed(IP, T0 + 60000)
    assert not guard.user_allowed(IP, "201", T0 + 60000)
    assert guard.failed(IP, "105", T0 + 60000, "unknown user") == "banned"
    assert guard.allowed("192.168.1.67", T0 + 60000)  # only that address
    assert guard.bans(T0 + 60000) == [(IP, T0 + 359000)]
    assert guard.allowed(IP, T0 + 359000)


def test_users_failing_in_different_windows_are_no_enumeration():
    guard = Guard()
    for i in range(20):
        assert guard.failed(IP, str(100 + i), T0 + i * 20000, "unknown user") is None
    assert guard.allowed(IP, T0 + 400000)


def test_a_nat_whose_phones_each_mistype_once_is_not_banned():
    # a success takes its user off the address's failing users
    guard = Guard()
    for i in range(8):
        user = str(201 + i)
        assert guard.failed(IP, user, T0 + i * 1000, WRONG) is None
        guard.succeeded(IP, user)
    assert guard.allowed(IP, T0 + 9000)
    assert guard.take_events() == []


def test_a_flood_of_failures_bans_the_address():
    guard = Guard()
    # four users, 7 or 8 failures each: none is locked, none is a fifth user
    verdicts = [guard.failed(IP, str(201 + i % 4), T0 + i * 10, WRONG) for i in range(29)]
    assert verdicts == [None] * 29
    assert guard.failed(IP, "202", T0 + 500, WRONG) == "banned"
    assert guard.take_events() == [("banned", IP, T0 + 300000, "30 failures, last: wrong password")]


def test_anonymous_failures_ban_the_address_the_old_way():
    # failed(ip, now_ms) and succeeded(ip), the calls of a switch that does not name users yet
    guard = Guard()
    for _ in range(9):
        assert not guard.failed(IP, T0)
    assert guard.allowed(IP, T0)
    assert guard.failed(IP, T0 + 1000) == "banned"
    assert not guard.allowed(IP, T0 + 1000)
    events = guard.take_events()
    assert events == [("banned", IP, T0 + 301000, "10 failures without a user, last: ")]
    assert events[0][:3] == ("banned", IP, T0 + 301000)  # what today's log line reads
    guard.succeeded(IP)
    assert not guard.allowed(IP, T0 + 2000)


def test_repeat_bans_double():
    guard = Guard()
    now = T0
    lengths = []
    for _ in range(3):
        for i in range(5):
            guard.failed(IP, str(100 + i), now, "unknown user")
        until = guard.take_events()[0][2]
        lengths.append((until - now) // 1000)
        now = until
    assert lengths == [300, 600, 1200]


def test_unban_forgets_the_address_and_its_users():
    guard = Guard()
    _fail(guard, IP, "201", T0, 10)
    for i in range(5):
        guard.failed(IP, str(100 + i), T0, "unknown user")
    guard.unban(IP)
    assert guard.allowed(IP, T0 + 1000)
    assert guard.user_allowed(IP, "201", T0 + 1000)
    assert guard.bans(T0 + 1000) == [] and guard.locks(T0 + 1000) == []
    guard.unban("10.9.9.9")  # unknown: no error


def test_events_are_bounded():
    guard = Guard()
    for i in range(Guard.max_events + 5):
        _fail(guard, "10.0.1.%d" % i, "201", T0, 10)
    events = guard.take_events()
    assert len(events) == Guard.max_events
    assert events[-1][1] == "10.0.1.%d" % (Guard.max_events + 4)
    assert guard.take_events() == []


# ---- the tables: bounded, and eviction does not forgive -------------------------------------


def test_near_ban_entries_outlive_one_off_failures():
    guard = _open()
    _fail(guard, IP, "201", T0, 9)  # one guess short of a lock
    for i in range(4):
        guard.failed("192.168.7.7", str(100 + i), T0, "unknown user")  # one user short of a ban
    for i in range(2000):
        guard.failed(_ip(i), "201", T0 + 1000 + i, WRONG)
    sizes = guard.sizes()
    for name in sizes:
        assert sizes[name][0] <= sizes[name][1], sizes
    assert guard.failed(IP, "201", T0 + 5000, WRONG) == "locked"
    assert guard.failed("192.168.7.7", "104", T0 + 5000, "unknown user") == "banned"


def test_a_table_full_of_near_locks_keeps_them_all():
    # the rotation that beat the old table: sources come back after more others than it holds
    guard = _open()
    guard.max_addresses = guard.max_users_table = 8
    for i in range(8):
        _fail(guard, "10.0.0.%d" % i, "201", T0, 9)
    for i in range(8, 200):
        _fail(guard, "10.0.0.%d" % i, "201", T0 + 1000, 9)  # no room: not entered
    for i in range(8):
        assert guard.failed("10.0.0.%d" % i, "201", T0 + 2000, WRONG) == "locked"


def test_a_ban_outlives_a_flood_from_many_addresses():
    guard = _open()
    for i in range(5):
        guard.failed(IP, str(100 + i), T0, "unknown user")
    for i in range(2000):
        _fail(guard, _ip(i), "201", T0 + 1000 + i, 2)
    assert len(guard) <= guard.max_sources
    assert not guard.allowed(IP, T0 + 5000)


def test_failures_the_table_cannot_hold_silence_their_prefix():
    guard = Guard()
    guard.max_addresses = guard.max_users_table = 4
    for i in range(4):
        _fail(guard, "10.0.0.%d" % i, "201", T0, 2)  # four entries worth more than a newcomer
    assert guard.may_challenge("10.1.1.1", T0)
    guard.failed("10.1.1.1", "201", T0, WRONG)  # no room: not forgotten, its /24 pays
    assert not guard.may_challenge("10.1.1.2", T0)
    assert guard.may_challenge("10.2.2.2", T0)
    assert guard.may_challenge("10.1.1.2", T0 + 1000)  # refilled at prefix_rate


def test_a_full_table_of_bans_drops_the_one_ending_soonest():
    guard = _open()
    guard.max_addresses = 3
    for i in range(3):
        _fail(guard, "10.0.0.%d" % i, None, T0 + i * 1000, 10)
    _fail(guard, "10.0.0.9", None, T0 + 5000, 10)
    assert guard.sizes()["addresses"] == (3, 3)
    assert guard.allowed("10.0.0.0", T0 + 6000)  # its ban ended soonest: forgotten
    assert not guard.allowed("10.0.0.1", T0 + 6000)
    assert not guard.allowed("10.0.0.9", T0 + 6000)


def test_stale_entries_make_room_first():
    guard = _open()
    guard.max_addresses = guard.max_users_table = 4
    for i in range(4):
        _fail(guard, "10.0.0.%d" % i, "201", T0, 3)
    guard.failed("10.0.0.9", "201", T0 + 61000, WRONG)  # all four windows are over: all go
    assert guard.sizes()["addresses"] == (1, 4)
    assert guard.sizes()["users"] == (1, 4)


# ---- the global defence ----------------------------------------------------------------------


def test_prefixes():
    assert prefix("192.0.2.17") == "192.0.2"
    assert prefix("2001:db8:0:1:2:3:4:5") == "2001:db8:0:1"
    assert prefix("2001:0DB8::1") == "2001:db8:0:0"
    assert prefix("2001:db8:0:1::1%eth0") == "2001:db8:0:1"
    assert prefix("::1") == "0:0:0:0"
    assert prefix("::ffff:192.0.2.17") == "192.0.2"


def test_challenges_per_prefix_are_rate_limited():
    guard = Guard()
    answered = [guard.may_challenge("198.51.100.%d" % (i % 200), T0) for i in range(100)]
    assert answered.count(True) == Guard.prefix_burst
    assert guard.may_challenge("198.51.101.1", T0)  # the next /24 has its own
    assert guard.may_challenge("198.51.100.1", T0 + 1000)
    assert guard.may_challenge("198.51.100.1", T0 + 1000)
    assert not guard.may_challenge("198.51.100.1", T0 + 1000)  # prefix_rate a second
    assert guard.may_challenge("2001:db8:1:2::9", T0)
    assert len(guard) == 3  # three buckets, no entry per address


def test_rotating_over_prefixes_buys_only_the_overall_rate():
    guard = Guard()
    answered = 0
    for i in range(10000):  # 10,000 sources, each in a /24 of its own, at 200 a second
        if guard.may_challenge("10.%d.%d.1" % (i >> 8, i & 255), T0 + i * 5):
            answered += 1
    assert answered <= Guard.overall_burst + Guard.overall_rate * 50, answered
    assert guard.sizes()["prefixes"] == (Guard.max_prefixes, Guard.max_prefixes)


def test_addresses_that_authenticated_skip_the_overall_bucket():
    guard = Guard()
    guard.succeeded("192.168.1.20", "201")
    for i in range(200):
        guard.may_challenge("10.%d.0.1" % i, T0)
    assert not guard.may_challenge("172.16.0.1", T0)  # the overall bucket is empty
    assert guard.may_challenge("192.168.1.20", T0)  # the phone that authenticated is answered


def _rotation(addresses, users=("201",), per=9, guesses=5000, spread=False):
    # cycle over `addresses` sources at `per` guesses each, 6,000 guesses a minute; a
    # registered phone (the switch skips allowed/may_challenge for it) and a phone that
    # authenticated before re-register throughout. -> guesses answered
    guard = Guard()
    phone, laptop = "192.168.1.20", "192.168.1.21"
    guard.succeeded(laptop, "202")
    answered = 0
    for i in range(guesses):
        now = T0 + i * 10
        k = (i // per) % addresses
        ip = "10.%d.%d.1" % (k >> 8, k & 255) if spread else "10.0.%d.%d" % (k >> 8, k & 255)
        user = users[(i // per // addresses) % len(users)]
        if guard.allowed(ip, now) and guard.user_allowed(ip, user, now) and guard.may_challenge(ip, now):
            guard.failed(ip, user, now, WRONG)
            answered += 1
        if i % 100 == 0:
            assert guard.user_allowed(phone, "201", now)
            guard.succeeded(phone, "201")
            assert guard.allowed(laptop, now) and guard.may_challenge(laptop, now)
            guard.succeeded(laptop, "202")
    sizes = guard.sizes()
    for name in sizes:
        assert sizes[name][0] <= sizes[name][1], sizes
    return answered


def test_rotating_addresses_is_cut_off():
    # the attack that once got 5,000 of 5,000 guesses answered with no ban: 129, 256 or 1,000
    # sources (10.0.x.y, so 1, 1 or 4 prefixes), 9 guesses each, 6,000 guesses a minute (50 s)
    per_prefix = 120  # prefix_burst + prefix_rate * 50 s
    overall = 310  # overall_burst + overall_rate * 50 s: what rotation over prefixes buys
    extensions = [str(200 + i) for i in range(40)]
    for n in (129, 256, 1000):
        bound = min(per_prefix * ((n - 1) // 256 + 1), overall)
        assert _rotation(n) <= bound, n  # svcrack on one extension
        assert _rotation(n, users=extensions) <= bound, n  # or on forty
        assert _rotation(n, spread=True) <= overall, n  # each source in a /24 of its own


def test_svcrack_with_200_words_needs_days():
    # The module docstring's figures: one guess every 100 ms whenever the guard lets it in.
    guard = _open()
    now = T0
    guesses = 0
    while guesses < 200:
        if guard.allowed(IP, now) and guard.user_allowed(IP, "201", now):
            guard.failed(IP, "201", now, WRONG)
            guesses += 1
            now += 100
        else:
            now = guard.locks(now)[0][2]
    locks = guard.take_events()
    assert len(locks) == 20  # the 200th guess earns a 20th lock
    assert all(e[0] == "locked" for e in locks)
    waited = (now - T0) // 1000
    assert 1017300 <= waited < 1017300 + 60, waited  # about 11.8 days


def test_svwar_is_banned_at_its_fifth_extension():
    guard = Guard()
    now = T0
    probed = 0
    for ext in range(100, 1000):
        if not guard.allowed(IP, now):
            break
        if guard.may_challenge(IP, now):
            guard.failed(IP, str(ext), now, "unknown user")
            probed += 1
        now += 50
    assert probed == 5
    assert guard.take_events()[0][0] == "banned"


def test_time_counts_from_any_clock():
    # epoch milliseconds work as well as an uptime counter
    guard = Guard()
    big = 1767225600000
    _fail(guard, IP, "201", big, 10)
    assert guard.take_events() == [("locked", IP, "201", big + 300000, WRONG)]
    assert guard.user_allowed(IP, "201", big + 300000)


def test_full_tables_memory():
    if not IS_MICROPYTHON:
        raise SkipTest("gc.mem_alloc is MicroPython only")
    import gc

    guard = Guard()
    guard.failed("10.0.0.0", "200", T0, WRONG)  # the first entries set the clock base, the dicts
    guard.succeeded("10.0.0.0", "200")
    guard.may_challenge("10.9.0.1", T0)  # not 10.0.0.0: an address that authenticated makes no bucket
    gc.collect()
    before = gc.mem_alloc()
    for i in range(Guard.max_addresses - 1):  # an address and a user entry each
        guard.failed("192.168.%d.%d" % (i >> 4, i), "201", T0, WRONG)  # the ip strings count
    for i in range(Guard.max_prefixes - 1):
        guard.may_challenge("172.16.%d.1" % i, T0)
    for i in range(Guard.max_good - 1):
        guard.succeeded("172.17.0.%d" % i, "201")
    used = gc.mem_alloc() - before
    sizes = guard.sizes()
    for name in sizes:
        assert sizes[name][0] == sizes[name][1], sizes
    # an upper bound: garbage (the formatting above, the dicts' old tables) is not collected
    # during a call on this port. What stays is ~110 B an address (the ip string 32, a list of
    # 8 ints 48, a dict slot), ~90 B a user entry, ~80 B a prefix, ~50 B a good address.
    print("guard, all tables full: %d bytes" % used)
    assert used < 16000, used

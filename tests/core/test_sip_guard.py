"""zongji.switch.guard: failed-auth limiting per source IP, bans, a bounded table, svcrack."""

from _support import IS_MICROPYTHON, SkipTest
from zongji.switch.guard import Guard

T0 = 7000000  # an arbitrary "now" in ms
IP = "192.168.1.66"


def _fail(guard, ip, now, times):
    banned = False
    for _ in range(times):
        banned = guard.failed(ip, now)
    return banned


def test_unknown_source_is_allowed():
    guard = Guard()
    assert guard.allowed(IP, T0)
    assert len(guard) == 0  # asking makes no entry: spoofed floods cost nothing


def test_ten_failures_in_a_minute_ban_for_five_minutes():
    guard = Guard()
    assert not _fail(guard, IP, T0, 9)
    assert guard.allowed(IP, T0 + 1000)
    assert guard.take_events() == []
    assert guard.failed(IP, T0 + 59000)
    assert guard.take_events() == [("banned", IP, T0 + 59000 + 300000)]
    assert not guard.allowed(IP, T0 + 59000)
    assert not guard.allowed(IP, T0 + 358999)
    assert guard.allowed(IP, T0 + 359000)
    assert guard.allowed("192.168.1.67", T0 + 60000)  # only that source
    assert guard.bans(T0 + 60000) == [(IP, T0 + 359000)]


def test_failures_spread_over_windows_never_ban():
    # a phone with a wrong password that retries every 30 s fails twice a minute, for hours
    guard = Guard()
    for i in range(240):
        assert not guard.failed(IP, T0 + i * 30000)
    assert guard.allowed(IP, T0 + 240 * 30000)
    assert guard.take_events() == []


def test_failures_while_banned_do_not_extend_the_ban():
    guard = Guard()
    _fail(guard, IP, T0, 10)
    guard.take_events()
    assert _fail(guard, IP, T0 + 1000, 50)
    assert guard.take_events() == []
    assert guard.allowed(IP, T0 + 300000)


def test_repeat_offences_double_the_ban_up_to_the_cap():
    guard = Guard()
    now = T0
    lengths = []
    for _ in range(12):
        assert _fail(guard, IP, now, 10)
        until = guard.take_events()[0][2]
        lengths.append((until - now) // 1000)
        now = until
    assert lengths == [300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 76800, 86400, 86400, 86400]


def test_doubling_is_forgotten_after_a_clean_day():
    guard = Guard()
    _fail(guard, IP, T0, 10)
    _fail(guard, IP, T0 + 300000, 10)  # right after the first ban: the second is 600 s
    assert guard.take_events()[1][2] == T0 + 900000
    later = T0 + 900000 + 86400000
    _fail(guard, IP, later, 10)
    assert guard.take_events() == [("banned", IP, later + 300000)]


def test_success_does_not_lift_a_ban():
    guard = Guard()
    _fail(guard, IP, T0, 10)
    guard.succeeded(IP)
    assert not guard.allowed(IP, T0 + 1000)


def test_success_forgives_once_per_window():
    guard = Guard()
    _fail(guard, IP, T0, 9)
    guard.succeeded(IP)  # the user fixed a typo: a clean slate
    assert not _fail(guard, IP, T0 + 1000, 9)
    guard.succeeded(IP)  # but only once: a known password cannot launder guesses
    assert guard.failed(IP, T0 + 2000)  # 19 guesses in the window, at most 2 * 10 - 1
    guard.succeeded("10.0.0.1")  # a stranger's success makes no entry
    assert len(guard) == 1


def test_forgiveness_comes_back_with_a_new_window():
    guard = Guard()
    _fail(guard, IP, T0, 9)
    guard.succeeded(IP)
    _fail(guard, IP, T0 + 61000, 9)
    guard.succeeded(IP)
    assert not _fail(guard, IP, T0 + 62000, 9)


def test_a_flood_from_many_addresses_cannot_grow_the_table_or_push_out_a_ban():
    guard = Guard()
    _fail(guard, IP, T0, 10)
    for i in range(2000):
        guard.failed("10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255), T0 + 1000 + i)
    assert len(guard) == Guard.max_sources
    assert not guard.allowed(IP, T0 + 5000)


def test_a_full_table_of_bans_drops_the_one_ending_soonest():
    guard = Guard()
    guard.max_sources = 3
    for i in range(3):
        _fail(guard, "10.0.0.%d" % i, T0 + i * 1000, 10)
    _fail(guard, "10.0.0.9", T0 + 5000, 10)
    assert len(guard) == 3
    assert guard.allowed("10.0.0.0", T0 + 6000)  # its ban ended soonest: forgotten
    assert not guard.allowed("10.0.0.1", T0 + 6000)
    assert not guard.allowed("10.0.0.9", T0 + 6000)


def test_stale_entries_make_room_first():
    guard = Guard()
    guard.max_sources = 4
    for i in range(4):
        guard.failed("10.0.0.%d" % i, T0)
    guard.failed("10.0.0.9", T0 + 61000)  # all four windows are over: all four go
    assert len(guard) == 1


def test_unban_forgets_the_source():
    guard = Guard()
    _fail(guard, IP, T0, 10)
    guard.unban(IP)
    assert guard.allowed(IP, T0 + 1000)
    assert guard.bans(T0 + 1000) == []
    guard.unban("10.9.9.9")  # unknown: no error


def test_events_are_bounded():
    guard = Guard()
    for i in range(Guard.max_events + 5):
        _fail(guard, "10.0.1.%d" % i, T0, 10)
    events = guard.take_events()
    assert len(events) == Guard.max_events
    assert events[-1][1] == "10.0.1.%d" % (Guard.max_events + 4)
    assert guard.take_events() == []


def test_svcrack_with_200_words_needs_days():
    # The module docstring's figures: one guess every 100 ms whenever the guard lets it in.
    guard = Guard()
    now = T0
    guesses = 0
    while guesses < 200:
        if guard.allowed(IP, now):
            guard.failed(IP, now)
            guesses += 1
            now += 100
        else:
            now = guard.bans(now)[0][1]
    bans = guard.take_events()
    assert len(bans) == 20  # the 200th guess earns a 20th ban
    waited = (now - T0) // 1000
    assert 1017300 <= waited < 1017300 + 60, waited  # about 11.8 days


def test_time_counts_from_any_clock():
    # epoch milliseconds work as well as an uptime counter
    guard = Guard()
    big = 1767225600000
    _fail(guard, IP, big, 10)
    assert guard.take_events() == [("banned", IP, big + 300000)]
    assert guard.allowed(IP, big + 300000)


def test_full_table_memory():
    if not IS_MICROPYTHON:
        raise SkipTest("gc.mem_alloc is MicroPython only")
    import gc

    guard = Guard()
    guard.failed("10.0.0.0", T0)  # the first entry sets the clock base and the dict
    gc.collect()
    before = gc.mem_alloc()
    for i in range(Guard.max_sources - 1):
        guard.failed("192.168.%d.%d" % (i >> 4, i), T0 + i)  # the ip strings are counted
    used = gc.mem_alloc() - before
    # an upper bound: garbage (the formatting above, the dict's old tables) is not collected
    # during a call on this port. What stays is ~96 B an entry: the ip string (~48 B), a
    # 5-tuple of small ints (32 B) and a dict slot (~16 B).
    assert used < 16000, used

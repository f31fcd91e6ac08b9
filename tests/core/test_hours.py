from _support import raises
from zongji.site import hours
from zongji.site.hours import Hours, civil_from_days, days_from_civil, local_time, parse_days, parse_open

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
WEEKDAYS = 0b0011111


def message(fn, *args):
    return str(raises(ValueError, fn, *args))


# ---- calendar ------------------------------------------------------------------------------


def test_days_from_civil_known_dates():
    # reference values from CPython's date.toordinal() - 719163
    assert days_from_civil(1970, 1, 1) == 0
    assert days_from_civil(1969, 12, 31) == -1
    assert days_from_civil(2000, 2, 29) == 11016
    assert days_from_civil(2026, 10, 1) == 20727
    assert days_from_civil(2045, 12, 31) == 27758
    assert days_from_civil(2100, 3, 1) == 47541
    assert days_from_civil(1600, 3, 1) == -135080
    assert days_from_civil(1, 1, 1) == -719162


def test_civil_from_days_round_trips():
    for z in (-719162, -135080, -1, 0, 11016, 20727, 27758, 47541):
        assert days_from_civil(*civil_from_days(z)) == z
    day = days_from_civil(2023, 12, 25)
    prev = civil_from_days(day - 1)
    for z in range(day, day + 1200):  # across the 2024 leap day and three new years
        y, m, d = civil_from_days(z)
        assert days_from_civil(y, m, d) == z
        if d == 1:
            assert prev[2] == hours.month_days(prev[0], prev[1])
        else:
            assert (y, m, d - 1) == prev
        prev = (y, m, d)


def test_weekdays_and_month_lengths():
    assert hours.weekday(0) == THU  # 1970-01-01
    assert hours.weekday(days_from_civil(2026, 11, 25)) == WED
    assert hours.weekday(days_from_civil(2045, 12, 31)) == SUN
    assert hours.month_days(2024, 2) == 29
    assert hours.month_days(2100, 2) == 28
    assert hours.month_days(2000, 2) == 29
    assert hours.month_days(2026, 12) == 31
    assert hours.month_days(2026, 4) == 30


# ---- parse_open ----------------------------------------------------------------------------


def test_parse_open_forms():
    assert parse_open("mon-fri 09:00-12:00,13:30-18:00") == [(WEEKDAYS, 540, 720), (WEEKDAYS, 810, 1080)]
    assert parse_open("sat 09:00-12:00") == [(1 << SAT, 540, 720)]
    assert parse_open("sun,sat 10:00-11:00") == [((1 << SAT) | (1 << SUN), 600, 660)]
    assert parse_open("mon-sun 00:00-24:00") == [(0b1111111, 0, 1440)]
    fri_mon = (1 << FRI) | (1 << SAT) | (1 << SUN) | (1 << MON)
    assert parse_open("fri-mon 10:00-11:00") == [(fri_mon, 600, 660)]
    # forgiving where it is unambiguous: case, spaces after commas, a one-digit hour, full names
    assert parse_open("Mon-Fri 9:00-12:00, 13:00-18:00") == [(WEEKDAYS, 540, 720), (WEEKDAYS, 780, 1080)]
    assert parse_open("saturday 09:00-12:00") == [(1 << SAT, 540, 720)]


def test_parse_open_errors_say_what_and_how():
    e = message(parse_open, "mon 9:7-10:00")
    assert e == "bad time '9:7' in 'mon 9:7-10:00': write HH:MM, 24-hour, e.g. 09:00-18:00"
    e = message(parse_open, "mon 09:00-08:00")
    assert e.startswith("end 08:00 is before start 09:00")
    e = message(parse_open, "mnday 09:00-10:00")
    assert e == "unknown day 'mnday': use mon tue wed thu fri sat sun"
    assert "mnday" in message(parse_open, "mnday 9-5")
    assert "unknown day 'fry'" in message(parse_open, "mon-fry 09:00-10:00")
    assert "no times" in message(parse_open, "mon-fri")
    assert "no days" in message(parse_open, "09:00-18:00")
    assert "empty" in message(parse_open, "")
    assert "25:00" in message(parse_open, "mon 09:00-25:00")
    assert "bad time '9'" in message(parse_open, "mon 9-17")
    assert "09:60" in message(parse_open, "mon 09:60-10:00")
    assert "same as start" in message(parse_open, "mon 09:00-09:00")
    assert "24:00" in message(parse_open, "mon 24:00-24:00")
    assert "start-end" in message(parse_open, "mon 09:00")
    assert "start-end" in message(parse_open, "mon 09:00-")
    assert "days must come first" in message(parse_open, "mon tue 09:00-10:00")
    assert "9am" in message(parse_open, "mon 9am-5pm")
    for spec in ("mon 09:00-08:00", "mon 9:7-10:00", "mon-fri", "xyz 09:00-10:00"):
        e = message(parse_open, spec)
        assert e[0].islower(), e  # messages start lowercase (they follow "file:line: ")


# ---- parse_days ----------------------------------------------------------------------------


def test_parse_days():
    assert parse_days("2026-10-01") == (20727, 20727)
    assert parse_days("2026-10-01..2026-10-07") == (20727, 20733)
    assert parse_days(" 2024-02-29 ") == (days_from_civil(2024, 2, 29),) * 2
    assert parse_days("2026-12-31..2027-01-02")[1] - parse_days("2026-12-31")[0] == 2


def test_parse_days_rejects_impossible_dates():
    e = message(parse_days, "2026-02-30")
    assert "2026-02-30" in e and "february 2026 has 28 days" in e
    assert "february 2025 has 28 days" in message(parse_days, "2025-02-29")
    assert "april 2026 has 30 days" in message(parse_days, "2026-04-31")
    assert "month" in message(parse_days, "2026-13-01")
    assert "YYYY-MM-DD" in message(parse_days, "2026/10/01")
    assert "YYYY-MM-DD" in message(parse_days, "2026-1-1")
    assert "YYYY-MM-DD" in message(parse_days, "")
    assert "ends before it starts" in message(parse_days, "2026-10-07..2026-10-01")
    assert "2026-10-32" in message(parse_days, "2026-10-01..2026-10-32")


# ---- Hours -----------------------------------------------------------------------------------

BRANCH = {
    "open": ["mon-fri 09:00-12:00,13:30-18:00", "sat 09:00-12:00"],
    "holidays": ["2026-10-01..2026-10-07", "2026-12-25"],
    "workdays": ["2026-09-27", "2026-10-10"],
    "closed": "menu:closed",
}


def at(y, mo, d, h, mi):
    day = days_from_civil(y, mo, d)
    return (y, mo, d, h, mi, hours.weekday(day))


def test_lunch_break_and_edges():
    h = Hours(BRANCH)
    assert h.closed == "menu:closed"
    assert not h.is_open(at(2026, 11, 25, 8, 59))
    assert h.is_open(at(2026, 11, 25, 9, 0))
    assert h.is_open(at(2026, 11, 25, 11, 59))
    assert not h.is_open(at(2026, 11, 25, 12, 0))  # end is exclusive
    assert not h.is_open(at(2026, 11, 25, 13, 29))
    assert h.is_open(at(2026, 11, 25, 13, 30))
    assert not h.is_open(at(2026, 11, 25, 18, 0))
    assert h.is_open(at(2026, 11, 28, 10, 0))  # Saturday morning
    assert not h.is_open(at(2026, 11, 28, 14, 0))
    assert not h.is_open(at(2026, 11, 29, 10, 0))  # Sunday


def test_holidays_close_the_whole_day():
    h = Hours(BRANCH)
    assert not h.is_open(at(2026, 10, 1, 10, 0))  # Thursday, National Day
    assert not h.is_open(at(2026, 10, 7, 10, 0))  # last day of the range
    assert h.is_open(at(2026, 10, 8, 10, 0))
    assert not h.is_open(at(2026, 12, 25, 10, 0))


def test_workdays_open_with_mondays_hours():
    h = Hours(BRANCH)
    sun = at(2026, 9, 27, 15, 0)
    assert sun[5] == SUN and h.is_open(sun)  # make-up day: Monday's afternoon hours
    assert not h.is_open(at(2026, 9, 27, 12, 30))  # ... and Monday's lunch break
    sat = at(2026, 10, 10, 15, 0)
    assert sat[5] == SAT and h.is_open(sat)  # a normal Saturday would be closed at 15:00
    # a make-up day inside a holiday range still opens
    h2 = Hours(
        {
            "open": ["mon 09:00-17:00"],
            "holidays": ["2026-10-01..2026-10-11"],
            "workdays": ["2026-10-10"],
            "closed": "hangup",
        }
    )
    assert h2.is_open(at(2026, 10, 10, 10, 0))
    assert not h2.is_open(at(2026, 10, 5, 10, 0))  # a Monday, but a holiday


def test_always_open_and_wrapping_days():
    h = Hours({"open": ["mon-sun 00:00-24:00"], "closed": "hangup"})
    assert h.is_open(at(2026, 1, 1, 0, 0)) and h.is_open(at(2026, 1, 4, 23, 59))
    h = Hours({"open": ["fri-mon 10:00-11:00"], "closed": "hangup"})
    opened = [d for d in range(7) if h.is_open((2026, 1, 1, 10, 30, d))]
    assert opened == [MON, FRI, SAT, SUN]


def test_bad_spec_raises_when_building():
    raises(ValueError, Hours, {"open": ["mon 9-5"], "closed": "hangup"})
    raises(ValueError, Hours, {"open": [], "holidays": ["2026-02-30"], "closed": "hangup"})


# ---- local time --------------------------------------------------------------------------------
# Tables from zongji_companion.tzcompile.compile_tz(zone, 2026, 2026); expected wall-clock
# times from CPython's zoneinfo at the same instants.

NEW_YORK = [[1767243600, -18000], [1772953200, -14400], [1793512800, -18000]]
SHANGHAI = [[1767196800, 28800]]


def test_local_time_shanghai():
    assert local_time(1767196799, SHANGHAI) == (2025, 12, 31, 23, 59, WED)
    assert local_time(1767196800, SHANGHAI) == (2026, 1, 1, 0, 0, THU)
    assert local_time(1709222400, SHANGHAI) == (2024, 3, 1, 0, 0, FRI)  # before the table
    assert local_time(1582934400, SHANGHAI) == (2020, 2, 29, 8, 0, SAT)


def test_local_time_new_york_across_dst():
    # spring forward: 01:59:59 EST is followed by 03:00 EDT
    assert local_time(1772953199, NEW_YORK) == (2026, 3, 8, 1, 59, SUN)
    assert local_time(1772953200, NEW_YORK) == (2026, 3, 8, 3, 0, SUN)
    # fall back: 01:59:59 EDT is followed by 01:00 EST, the hour repeats
    assert local_time(1793512799, NEW_YORK) == (2026, 11, 1, 1, 59, SUN)
    assert local_time(1793512800, NEW_YORK) == (2026, 11, 1, 1, 0, SUN)
    assert local_time(1793516399, NEW_YORK) == (2026, 11, 1, 1, 59, SUN)
    assert local_time(1793516400, NEW_YORK) == (2026, 11, 1, 2, 0, SUN)
    # before the first entry its offset applies
    assert local_time(1767225600, NEW_YORK) == (2025, 12, 31, 19, 0, WED)


def test_local_time_edges():
    assert local_time(0, []) == (1970, 1, 1, 0, 0, THU)  # no table: UTC
    assert local_time(1772953200.9, NEW_YORK) == (2026, 3, 8, 3, 0, SUN)  # float seconds
    assert hours.utc_offset(1772953199, NEW_YORK) == -18000
    assert hours.utc_offset(1772953200, NEW_YORK) == -14400
    assert hours.utc_offset(4102444800, NEW_YORK) == -18000  # after the table: last entry

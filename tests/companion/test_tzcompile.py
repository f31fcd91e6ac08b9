"""compile_tz + zongji.site.hours.local_time must agree with zoneinfo everywhere in 2020-2045."""

import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from zongji.site.hours import local_time
from zongji_companion.tzcompile import compile_tz

ZONES = [
    "Asia/Shanghai",  # no DST
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",  # southern hemisphere: DST spans the new year
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Asia/Kolkata",  # +05:30
    "America/St_Johns",  # -03:30 with DST
    "Pacific/Chatham",  # +12:45 / +13:45
    "Africa/Casablanca",  # DST suspended every Ramadan
    "America/Sao_Paulo",  # DST abolished in 2019
    "Asia/Tehran",  # DST abolished in 2022
    "UTC",
]

START = int(datetime(2020, 1, 1, tzinfo=UTC).timestamp())
END = int(datetime(2046, 1, 1, tzinfo=UTC).timestamp())


def expected(t, zone):
    d = datetime.fromtimestamp(t, zone)
    return (d.year, d.month, d.day, d.hour, d.minute, d.weekday())


@pytest.mark.parametrize("name", ZONES)
def test_matches_zoneinfo_at_random_instants(name):
    table = compile_tz(name)
    zone = ZoneInfo(name)
    rng = random.Random(name)
    for _ in range(3000):
        t = rng.randrange(START, END)
        assert local_time(t, table) == expected(t, zone), (name, t)


@pytest.mark.parametrize("name", ZONES)
def test_matches_zoneinfo_at_every_transition(name):
    table = compile_tz(name)
    zone = ZoneInfo(name)
    for start, offset in table[1:]:
        for t in (start - 1, start, start + 1, start + 3599, start + 3600):
            assert local_time(t, table) == expected(t, zone), (name, t)
        before = datetime.fromtimestamp(start - 1, zone).utcoffset().total_seconds()
        assert before != offset  # every entry is a real change
        assert datetime.fromtimestamp(start, zone).utcoffset().total_seconds() == offset


def test_table_shape():
    shanghai = compile_tz("Asia/Shanghai")
    assert shanghai == [[1577808000, 28800]]  # 2020-01-01 00:00 local, +08:00, no changes
    ny = compile_tz("America/New_York")
    assert len(ny) == 1 + 2 * 26  # two changes a year, 2020-2045
    assert ny[0] == [1577854800, -18000]
    assert [1772953200, -14400] in ny  # 2026-03-08 07:00Z: EDT begins
    starts = [s for s, _ in ny]
    assert starts == sorted(starts)
    assert all(isinstance(s, int) and isinstance(o, int) for s, o in ny)
    assert compile_tz("America/New_York", 2026, 2026) == [
        [1767243600, -18000],
        [1772953200, -14400],
        [1793512800, -18000],
    ]


@pytest.mark.parametrize(
    "bad, hint",
    [
        ("Asia/Shangai", "did you mean 'Asia/Shanghai'?"),
        ("asia/shanghai", "did you mean 'Asia/Shanghai'?"),
        ("Mars/Olympus_Mons", "use an IANA name such as Asia/Shanghai"),
        ("", "use an IANA name"),
        ("../../etc/passwd", "unknown time zone"),
        (None, "unknown time zone"),
    ],
)
def test_unknown_zone_gets_a_hint(bad, hint):
    with pytest.raises(ValueError) as e:
        compile_tz(bad)
    assert hint in str(e.value)
    assert str(e.value).startswith("unknown time zone")


def test_bad_year_range():
    with pytest.raises(ValueError):
        compile_tz("UTC", 2030, 2020)

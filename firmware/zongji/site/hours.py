"""Opening hours, holidays and local time, without the `time` module.

Owns the `[hours]` rules (`parse_open`, `parse_days`, `Hours.is_open`) and the conversion of
a UTC instant to the branch's wall-clock time (`local_time`), using a table of UTC offsets the
companion compiles from the IANA zone database (see zongji_companion.tzcompile). Dates are
counted as days since 1970-01-01 in the proleptic Gregorian calendar (days_from_civil /
civil_from_days, after Howard Hinnant's well-known algorithms), so no date library is needed.

A wall-clock time is `tm = (year, month, mday, hour, minute, weekday)`, weekday 0 = Monday.
"""

from zongji.text import is_digits

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
MIN_YEAR = 1970
MAX_YEAR = 2199

OPEN_FORM = "e.g. 'mon-fri 09:00-12:00,13:30-18:00'"
TIME_FORM = "write HH:MM, 24-hour, e.g. 09:00-18:00"
DATE_FORM = "write YYYY-MM-DD, e.g. 2026-10-01, or a range 2026-10-01..2026-10-07"


# ---- calendar -----------------------------------------------------------------------------


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of the Gregorian date y-m-d (negative before 1970)."""
    if m <= 2:
        y -= 1
    era = y // 400  # floor division: right for negative years too
    yoe = y - era * 400  # year of era, 0..399
    doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1  # day of the year starting 1 March
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy  # day of era, 0..146096
    return era * 146097 + doe - 719468  # 719468: days from 0000-03-01 to 1970-01-01


def civil_from_days(z):
    """The (year, month, day) that is z days after 1970-01-01."""
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153  # month starting from March = 0
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (yoe + era * 400 + (1 if m <= 2 else 0), m, d)


def weekday(days):
    """0 = Monday for a day number (1970-01-01 was a Thursday)."""
    return (days + 3) % 7


def month_days(y, m):
    if m == 12:
        return 31
    return days_from_civil(y, m + 1, 1) - days_from_civil(y, m, 1)


# ---- [hours] open ---------------------------------------------------------------------------


def _day(name):
    if name in DAYS:
        return DAYS.index(name)
    if name in _FULL:
        return _FULL.index(name)
    raise ValueError("unknown day '%s': use %s" % (name, " ".join(DAYS)))


def _days_mask(text, spec):
    mask = 0
    for item in text.split(","):
        if not item:
            raise ValueError("empty day in '%s': separate days with commas, e.g. 'sat,sun'" % spec)
        dash = item.find("-")
        if dash < 0:
            mask |= 1 << _day(item)
            continue
        first = _day(item[:dash])
        last = _day(item[dash + 1 :])
        d = first
        while True:  # ranges may wrap past Sunday: fri-mon
            mask |= 1 << d
            if d == last:
                break
            d = (d + 1) % 7
    return mask


def _minute(text, spec):
    colon = text.find(":")
    h = text[:colon]
    m = text[colon + 1 :]
    if colon < 1 or len(h) > 2 or len(m) != 2 or not is_digits(h) or not is_digits(m):
        raise ValueError("bad time '%s' in '%s': %s" % (text, spec, TIME_FORM))
    hour = int(h)
    minute = int(m)
    if hour > 24 or minute > 59 or (hour == 24 and minute):
        raise ValueError(
            "bad time '%s' in '%s': hours run 00-24, minutes 00-59 (24:00 is "
            "midnight at the end of the day)" % (text, spec)
        )
    return hour * 60 + minute


def _hhmm(minute):
    return "%02d:%02d" % (minute // 60, minute % 60)


def parse_open(spec):
    """'mon-fri 09:00-12:00,13:30-18:00' -> [(weekday_mask, start_min, end_min), ...].

    Bit d of the mask is weekday d (0 = Monday). Day ranges may wrap ('fri-mon'); times are
    24-hour, end after start, 24:00 allowed as an end. Raises ValueError saying what is wrong.
    """
    words = spec.lower().split() if isinstance(spec, str) else []
    if not words:
        raise ValueError("empty opening hours: write days then times, %s" % OPEN_FORM)
    if len(words) == 1:
        if words[0][:1].isdigit():
            raise ValueError("no days in '%s': start with the days, %s" % (spec, OPEN_FORM))
        _days_mask(words[0], spec)  # a bad day name is the more useful message
        raise ValueError("no times in '%s': write the days, a space, then times, %s" % (spec, OPEN_FORM))
    mask = _days_mask(words[0], spec)
    ranges = []
    for item in ",".join(words[1:]).split(","):
        if not item:
            continue  # "09:00-12:00, 13:00-18:00"
        dash = item.find("-")
        if dash <= 0 or dash == len(item) - 1 or item.find("-", dash + 1) >= 0:
            if item[:1].isalpha():
                raise ValueError("days must come first, as one word, in '%s': %s" % (spec, OPEN_FORM))
            raise ValueError("bad time range '%s' in '%s': write start-end, e.g. 09:00-18:00" % (item, spec))
        start = _minute(item[:dash], spec)
        end = _minute(item[dash + 1 :], spec)
        if start == 1440:
            raise ValueError("bad time range '%s' in '%s': a range can't start at 24:00, use 00:00" % (item, spec))
        if end < start:
            raise ValueError(
                "end %s is before start %s in '%s': a range can't run past "
                "midnight, split it, e.g. 'fri 22:00-24:00' and 'sat 00:00-06:00'" % (_hhmm(end), _hhmm(start), spec)
            )
        if end == start:
            raise ValueError("end %s is the same as start in '%s': the range would be empty" % (_hhmm(end), spec))
        ranges.append((mask, start, end))
    if not ranges:
        raise ValueError("no times in '%s': %s" % (spec, OPEN_FORM))
    return ranges


# ---- [hours] holidays / workdays ------------------------------------------------------------


def _date(text, spec):
    parts = text.split("-")
    if (
        len(parts) != 3
        or len(parts[0]) != 4
        or len(parts[1]) != 2
        or len(parts[2]) != 2
        or not (is_digits(parts[0]) and is_digits(parts[1]) and is_digits(parts[2]))
    ):
        where = "" if text == spec else " in '%s'" % spec
        raise ValueError("bad date '%s'%s: %s" % (text, where, DATE_FORM))
    y = int(parts[0])
    m = int(parts[1])
    d = int(parts[2])
    if not MIN_YEAR <= y <= MAX_YEAR:
        raise ValueError("bad date '%s': the year must be %d to %d" % (text, MIN_YEAR, MAX_YEAR))
    if not 1 <= m <= 12:
        raise ValueError("bad date '%s': the month must be 01 to 12" % text)
    n = month_days(y, m)
    if not 1 <= d <= n:
        raise ValueError("bad date '%s': %s %d has %d days" % (text, _MONTHS[m - 1], y, n))
    return days_from_civil(y, m, d)


def parse_days(spec):
    """'2026-10-01' or '2026-10-01..2026-10-07' -> (first_day, last_day), both inclusive, as
    days since 1970-01-01. Raises ValueError for malformed or impossible dates."""
    text = spec.strip() if isinstance(spec, str) else ""
    if not text:
        raise ValueError("empty date: %s" % DATE_FORM)
    dots = text.find("..")
    if dots < 0:
        day = _date(text, text)
        return (day, day)
    first = _date(text[:dots].strip(), text)
    last = _date(text[dots + 2 :].strip(), text)
    if last < first:
        raise ValueError("range '%s' ends before it starts: write the earlier date first" % text)
    return (first, last)


def _within(day, spans):
    for first, last in spans:
        if first <= day <= last:
            return True
    return False


class Hours:
    """The normalised `[hours]` table, ready to answer "open now?".

    Holidays close the whole day. Workdays (China's make-up working days, 调休) open with
    Monday's hours whatever day they fall on; a date listed as both is a workday, so a
    make-up day inside a holiday range still opens. `closed` is kept as data: the caller
    routes by it.
    """

    def __init__(self, spec):
        self.closed = spec.get("closed")
        self.ranges = []
        for text in spec.get("open") or ():
            self.ranges.extend(parse_open(text))
        self.holidays = [parse_days(t) for t in spec.get("holidays") or ()]
        self.workdays = [parse_days(t) for t in spec.get("workdays") or ()]

    def is_open(self, tm):
        """Open at wall-clock time tm = (year, month, mday, hour, minute, weekday)?"""
        wd = tm[5]
        if self.holidays or self.workdays:
            day = days_from_civil(tm[0], tm[1], tm[2])
            if _within(day, self.workdays):
                wd = 0
            elif _within(day, self.holidays):
                return False
        bit = 1 << wd
        minute = tm[3] * 60 + tm[4]
        for mask, start, end in self.ranges:
            if mask & bit and start <= minute < end:
                return True
        return False


# ---- time zones -----------------------------------------------------------------------------


def utc_offset(utc_s, tz_table):
    """Seconds east of UTC at instant utc_s: the last [start, offset] entry with
    start <= utc_s (a binary search: the table has ~55 entries for 26 years of DST).
    Before the first entry the first offset applies; an empty table means UTC."""
    lo = 0
    hi = len(tz_table)
    while lo < hi:
        mid = (lo + hi) // 2
        if tz_table[mid][0] <= utc_s:
            lo = mid + 1
        else:
            hi = mid
    if lo:
        return tz_table[lo - 1][1]
    return tz_table[0][1] if tz_table else 0


def local_time(utc_s, tz_table):
    """tm = (year, month, mday, hour, minute, weekday) at UTC instant utc_s (seconds since
    1970-01-01T00:00Z) in the zone described by tz_table = [[utc_start_s, offset_s], ...]."""
    s = int(utc_s // 1) + utc_offset(utc_s, tz_table)
    days = s // 86400
    rem = s - days * 86400
    y, m, d = civil_from_days(days)
    return (y, m, d, rem // 3600, rem % 3600 // 60, weekday(days))

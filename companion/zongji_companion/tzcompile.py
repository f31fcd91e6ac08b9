"""Compile an IANA time zone into the small offset table the device uses (CPython only).

The device has no zone database: `zongji.site.hours.local_time` takes `[[utc_start_s, offset_s],
...]`, sorted, one entry per UTC-offset change. This module builds that table from the host's
`zoneinfo` for a span of years (2020-2045 by default: ~55 entries for a zone with daylight
saving, one for Asia/Shanghai). Offsets are sampled every few hours and each change is pinned
to the second by bisection, so the result does not depend on zoneinfo's internals.
"""

import difflib
import zoneinfo
from datetime import UTC, datetime

FIRST_YEAR = 2020
LAST_YEAR = 2045
_STEP = 6 * 3600  # offset changes in the database are months apart; 6 h cannot hide a pair


def _zone(name):
    if isinstance(name, str) and name.strip():
        try:
            return zoneinfo.ZoneInfo(name)
        except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
            pass
        hint = _closest(name.strip())
        if hint:
            raise ValueError("unknown time zone '%s': did you mean '%s'?" % (name, hint))
    raise ValueError(
        "unknown time zone '%s': use an IANA name such as Asia/Shanghai, Europe/London or America/New_York" % name
    )


def _closest(name):
    names = zoneinfo.available_timezones()
    for n in names:  # asia/shanghai -> Asia/Shanghai
        if n.lower() == name.lower():
            return n
    close = difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.6)
    return close[0] if close else None


def _offset(zone, t):
    return int(datetime.fromtimestamp(t, zone).utcoffset().total_seconds())


def compile_tz(name, first_year=FIRST_YEAR, last_year=LAST_YEAR):
    """[[utc_start_s, offset_s], ...] for zone `name` from local midnight starting
    `first_year` to the end of `last_year`: the first entry is the offset in force at the
    start, then one entry per change. Raises ValueError (with a hint) for an unknown zone."""
    if last_year < first_year:
        raise ValueError("last_year %d is before first_year %d" % (last_year, first_year))
    zone = _zone(name)
    start = int(datetime(first_year, 1, 1, tzinfo=zone).timestamp())
    end = int(datetime(last_year + 1, 1, 1, tzinfo=UTC).timestamp()) + 86400
    current = _offset(zone, start)
    table = [[start, current]]
    t = start
    while t < end:
        nxt = min(t + _STEP, end)
        off = _offset(zone, nxt)
        if off != current:
            lo, hi = t, nxt  # offset(lo) == current, offset(hi) != current
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset(zone, mid) == current:
                    lo = mid
                else:
                    hi = mid
            current = _offset(zone, hi)
            table.append([hi, current])
            t = hi
            continue
        t = nxt
    return table

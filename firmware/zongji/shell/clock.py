"""The device's clocks: a monotonic now_ms for the core, and wall time once NTP has set it.

    clock = Clock()                     time.ticks_ms, whose period the port reports
    now = clock.now_ms()                ms since boot; never goes back, also across the wrap
    clock.sync(ntptime, now)            try NTP: True when the RTC is now set
    clock.epoch_ms(now)                 wall ms - now_ms, for Switch.epoch_ms; 0 until synced
    clock.ntp_due(now)                  time to try (again)? retries back off while it fails

ticks_ms() wraps: at 2**30 ms (12.4 days) on the ESP32, at 2**62 on the 64-bit unix port.
now_ms adds the step since the last reading modulo that period, so it only moves forward as
long as it is read at least once a period (the device reads it many times a second).
Clock(ticks, period) takes any ticks source, which is how the wrap is tested.

Wall time. Until NTP answers, the RTC holds whatever it held at boot (2000-01-01 on a fresh
ESP32), so the switch is told epoch_ms = 0: its call records then count seconds since boot
(start < 10**9, before 2001), which is how a record says its wall time was unsynced. After
the first sync, epoch_ms is the RTC's unix ms minus now_ms; NTP is asked again every day.
"""

import time

_TICKS = getattr(time, "ticks_ms", None)  # CPython has no ticks: pass one to Clock
# ticks_ms wraps at a port's own period (2**30 on the ESP32): ticks_add(0, -1) is its last value
_PERIOD = time.ticks_add(0, -1) + 1 if _TICKS is not None else 1 << 30  # type: ignore[type-var]

EPOCH_2000 = 946684800  # unix seconds of 2000-01-01, the epoch of some ports' time.time()
RETRY_MS = 30000  # the first NTP retry; doubled while it fails, up to RETRY_MAX_MS
RETRY_MAX_MS = 3600000
RESYNC_MS = 86400000  # once synced, again every day (the RTC drifts)


def _epoch_offset():
    """Seconds to add to time.time() for unix time: 0 where the port counts from 1970."""
    try:
        return EPOCH_2000 if time.gmtime(0)[0] == 2000 else 0
    except (AttributeError, OverflowError):  # pragma: no cover
        return 0


class Clock:
    def __init__(self, ticks=None, period=None, wall_s=None):
        self._ticks = ticks or _TICKS
        self.period = period or _PERIOD
        self._wall_s = wall_s or _unix_s
        self._last = self._ticks()
        self._ms = 0
        self.synced = False
        self._epoch = 0
        self._next_ntp = 0
        self._retry = RETRY_MS

    def now_ms(self):
        t = self._ticks()
        self._ms += (t - self._last) % self.period  # a step across the wrap is still forward
        self._last = t
        return self._ms

    def epoch_ms(self, now):
        return self._epoch if self.synced else 0

    def wall_s(self):
        """Unix seconds now, or None while unsynced."""
        return self._wall_s() if self.synced else None

    def ntp_due(self, now):
        return now >= self._next_ntp

    def sync(self, ntp, now):
        """Ask NTP (the ntptime module, or None where there is none) to set the RTC."""
        ok = False
        if ntp is not None:
            try:
                ntp.settime()
                ok = True
            except Exception:  # OSError (no answer), OverflowError, IndexError: try later
                ok = False
        if ok:
            self.synced = True
            self._epoch = self._wall_s() * 1000 - now
            self._retry = RETRY_MS
            self._next_ntp = now + RESYNC_MS
        else:
            self._next_ntp = now + self._retry
            self._retry = min(self._retry * 2, RETRY_MAX_MS)
        return ok


_OFFSET = _epoch_offset()


def _unix_s():
    return int(time.time()) + _OFFSET

"""Whole seconds counted from the first time a table saw the clock.

Tables that keep many deadlines (registrations, bans) store them as seconds since their own
base: small ints, which cost MicroPython no heap, where millisecond counts past 2**30 would
each be an object of their own.
"""


class Seconds:
    _base = None

    def _sec(self, now_ms):
        s = now_ms // 1000
        if self._base is None:
            self._base = s
        return s - self._base

    def _ms(self, sec):
        return (sec + self._base) * 1000

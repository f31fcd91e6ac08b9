"""What MicroPython has and CPython lacks (or a port may lack): the one place that bridges it.

This module owns two shims and imports nothing from zongji:

    const(x)    micropython.const on MicroPython (integer constants folded at compile time,
                private `_NAME = const(...)` ones cost no RAM); x itself on CPython.
                Integers only: strings and tuples stay plain.
    urandom     os.urandom, or None on a port without it (callers then fall back on a counter
                or ask the shell for random bytes).
"""

try:
    from micropython import const
except ImportError:  # pragma: no cover  (CPython)

    def const(x):
        return x


try:
    from os import urandom
except ImportError:  # pragma: no cover  (MicroPython ports without os.urandom)
    urandom = None

"""zongji.compat: const() and the one os.urandom fallback (CPython and MicroPython)."""

from zongji import compat
from zongji.compat import const


def test_const_gives_the_integer_back():
    assert const(7) == 7 and const(1 << 27) == 1 << 27


def test_urandom_is_os_urandom_or_none():
    try:
        from os import urandom
    except ImportError:  # pragma: no cover  (a port without it)
        assert compat.urandom is None
        return
    assert compat.urandom is urandom
    assert len(compat.urandom(8)) == 8


def test_device_tables_use_the_fallback():
    from zongji.sip import digest
    from zongji.switch import registrar

    assert registrar.urandom is compat.urandom and digest.urandom is compat.urandom

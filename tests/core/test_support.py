"""The test harness itself: shared testdata is reachable from both interpreters."""

import gc
import os

from _support import IS_MICROPYTHON, REPO, TESTDATA, SkipTest, raises, read_bytes, read_text


def test_rfc4475_torture_messages_are_visible():
    names = [n for n in os.listdir(TESTDATA + "/rfc4475") if n.endswith(".dat")]
    assert len(names) == 49, names
    assert read_bytes(TESTDATA + "/rfc4475/wsinv.dat").startswith(b"INVITE ")


def test_repo_paths_point_at_the_checkout():
    assert "__version__" in read_text(REPO + "/firmware/zongji/__init__.py")


def test_raises_returns_the_exception_and_fails_when_nothing_is_raised():
    e = raises(ValueError, int, "x")
    assert isinstance(e, ValueError)
    assert isinstance(raises(AssertionError, raises, ValueError, int, "1"), AssertionError)


def test_heap_is_measurable():
    # Under MicroPython, gc.mem_alloc() is how tests check memory budgets.
    if not IS_MICROPYTHON:
        raise SkipTest("gc.mem_alloc is MicroPython only")
    gc.collect()
    before = gc.mem_alloc()
    keep = bytearray(10000)
    assert gc.mem_alloc() - before >= 10000
    del keep

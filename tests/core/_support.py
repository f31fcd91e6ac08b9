"""Helpers for core tests that run unchanged under CPython (pytest) and MicroPython (tests/mpy).

Only what both interpreters have: no os.path, no pathlib, no pytest. Paths are built with plain
string operations from this file's own location, so the layout is the same on the host
(<repo>/tests/core, <repo>/tests/data) and inside the MicroPython runner's filesystem
(/repo/tests/core, /repo/tests/data).
"""

import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"


def _parent(path):
    # "/a/b/c" -> "/a/b"; "/a" -> "" (so parent + "/x" is "/x", not "//x")
    return path.rstrip("/").rsplit("/", 1)[0]


def _here():
    path = __file__.replace("\\", "/")  # Windows hosts; harmless elsewhere
    if not path.startswith("/") and ":" not in path:
        import os  # relative __file__ (sys.path entry "" ) -> make it absolute

        path = os.getcwd().rstrip("/") + "/" + path
    return _parent(path)


REPO = _parent(_parent(_here()))  # <repo>/tests/core -> <repo>
TESTDATA = REPO + "/tests/data"  # test data lives in the repo: a clone alone passes


class SkipTest(Exception):
    """Raise to skip a test (or, at import time, a whole module).

    tests/mpy/runner.py counts it as skipped; tests/core/conftest.py turns it into pytest.skip.
    Typical use: `if IS_MICROPYTHON: raise SkipTest("needs sort_keys")`.
    """


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def read_text(path):
    # Decode ourselves instead of text mode: CPython would translate newlines and use the
    # locale's encoding, MicroPython does neither; this way both return the same string.
    return read_bytes(path).decode("utf-8")


def raises(exc_type, fn, *args, **kwargs):
    """Call fn and return the exc_type it raised; fail if it returned normally.

    A different exception propagates unchanged, so its own traceback is shown.
    """
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        return e
    raise AssertionError("%s not raised by %r" % (getattr(exc_type, "__name__", exc_type), fn))


def counter_random():
    """A deterministic stand-in for os.urandom (the WebAssembly port has none): each call
    gives different bytes, the same ones in every run."""
    state = [0]

    def random_bytes(n):
        state[0] += 1
        return bytes([(state[0] * 31 + i) & 0xFF for i in range(n)])

    return random_bytes

"""SpanDSP (Debian libspandsp2, no headers needed) through ctypes: the anchor that tests and
benches compare our DSP against. CPython only. One loader, then thin wrappers per feature.

    lib = spandsp.load()            the ctypes.CDLL, or None when the library is not installed
    lib = spandsp.require()         the same, or pytest.skip (locally) / pytest.fail (CI=true)
    spandsp.MISSING                 why load() returned None ("" once it loaded)

    G.711 (SpanDSP's g711.h: G711_ALAW = 0, G711_ULAW = 1):
    spandsp.g711_encode(law, samples) -> bytes      samples: ints in -32768..32767
    spandsp.g711_decode(law, data)    -> list[int]
    spandsp.g711_transcode(law, data) -> bytes      ALAW: A-law in, u-law out; ULAW: the reverse

Further features (dtmf_rx, dtmf_tx, ...) belong here too: declare each function's restype and
argtypes in a `_declare_*` step called from load(), so pointers are not cut to 32 bits.
"""

import ctypes
import ctypes.util
import os

G711_ALAW = 0
G711_ULAW = 1

NAMES = ("libspandsp.so.2", "/usr/lib/x86_64-linux-gnu/libspandsp.so.2", "libspandsp.so")
MISSING = "not loaded yet"
_lib = None


def _declare_g711(lib):
    p, i = ctypes.c_void_p, ctypes.c_int
    lib.g711_init.restype, lib.g711_init.argtypes = p, [p, i]
    lib.g711_release.restype, lib.g711_release.argtypes = i, [p]
    lib.g711_encode.restype, lib.g711_encode.argtypes = i, [p, p, p, i]
    lib.g711_decode.restype, lib.g711_decode.argtypes = i, [p, p, p, i]
    lib.g711_transcode.restype, lib.g711_transcode.argtypes = i, [p, p, p, i]


def load():
    """The library with its functions declared, or None (MISSING says why). Loaded once."""
    global _lib, MISSING
    if _lib is None:
        found = ctypes.util.find_library("spandsp")
        for name in ((found,) if found else ()) + NAMES:
            try:
                lib = ctypes.CDLL(name)
            except OSError as e:
                MISSING = "libspandsp not loadable (%s): install Debian's libspandsp2" % e
                continue
            _declare_g711(lib)
            _lib, MISSING = lib, ""
            break
    return _lib


def require():
    """For pytest tests: the library, else skip; under CI=true a missing library fails the test."""
    import pytest

    lib = load()
    if lib is None:
        if os.environ.get("CI") == "true":
            pytest.fail(MISSING + " (CI=true: the SpanDSP comparison is required)")
        pytest.skip(MISSING)
    return lib


def _g711(lib, law, fn, out, inp, n):
    state = lib.g711_init(None, law)
    if not state:
        raise RuntimeError("g711_init(NULL, %d) failed" % law)
    try:
        got = fn(state, out, inp, n)
    finally:
        lib.g711_release(state)
    if got != n:
        raise RuntimeError("spandsp returned %d of %d" % (got, n))


def g711_encode(law, samples):
    lib = load()
    n = len(samples)
    out, inp = (ctypes.c_uint8 * n)(), (ctypes.c_int16 * n)(*samples)
    _g711(lib, law, lib.g711_encode, out, inp, n)
    return bytes(out)


def g711_decode(law, data):
    lib = load()
    n = len(data)
    out, inp = (ctypes.c_int16 * n)(), (ctypes.c_uint8 * n).from_buffer_copy(bytes(data))
    _g711(lib, law, lib.g711_decode, out, inp, n)
    return list(out)


def g711_transcode(law, data):
    lib = load()
    n = len(data)
    out, inp = (ctypes.c_uint8 * n)(), (ctypes.c_uint8 * n).from_buffer_copy(bytes(data))
    _g711(lib, law, lib.g711_transcode, out, inp, n)
    return bytes(out)

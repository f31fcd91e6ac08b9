"""SpanDSP (Debian libspandsp2, no headers needed) through ctypes: the anchor that tests and
benches compare our DSP against. CPython only. One loader, then thin wrappers per feature.

    lib = spandsp.load()            the ctypes.CDLL, or None when the library is not installed
    lib = spandsp.require()         the same, or pytest.skip (locally) / pytest.fail (CI=true)
    spandsp.MISSING                 why load() returned None ("" once it loaded)

    G.711 (SpanDSP's g711.h: G711_ALAW = 0, G711_ULAW = 1):
    spandsp.g711_encode(law, samples) -> bytes      samples: ints in -32768..32767
    spandsp.g711_decode(law, data)    -> list[int]
    spandsp.g711_transcode(law, data) -> bytes      ALAW: A-law in, u-law out; ULAW: the reverse

    DTMF (SpanDSP's dtmf.h; twist = high tone level - low tone level, in dB, as ours):
    spandsp.dtmf_generate(digits, level=-10, twist=0, on_ms=50, off_ms=55) -> list[int]
    spandsp.dtmf_detect(samples, chunk=160) -> str       the digits dtmf_rx reports

Further features belong here too: declare each function's restype and
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
            _declare_dtmf(lib)
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


# ---------------------------------------------------------------- DTMF (dtmf_tx, dtmf_rx)
# Signatures from SpanDSP 0.0.6's dtmf.h. dtmf_tx_init takes (s) in 0.0.6 and (s, callback,
# user_data) later: we pass all three (the extra NULLs are harmless in the x86-64 ABI).


def _declare_dtmf(lib):
    p, i = ctypes.c_void_p, ctypes.c_int
    lib.dtmf_tx_init.restype, lib.dtmf_tx_init.argtypes = p, [p, p, p]
    lib.dtmf_tx_put.restype, lib.dtmf_tx_put.argtypes = i, [p, ctypes.c_char_p, i]
    lib.dtmf_tx_set_level.restype, lib.dtmf_tx_set_level.argtypes = None, [p, i, i]
    lib.dtmf_tx_set_timing.restype, lib.dtmf_tx_set_timing.argtypes = None, [p, i, i]
    lib.dtmf_tx.restype, lib.dtmf_tx.argtypes = i, [p, p, i]
    lib.dtmf_tx_free.restype, lib.dtmf_tx_free.argtypes = i, [p]
    lib.dtmf_rx_init.restype, lib.dtmf_rx_init.argtypes = p, [p, p, p]
    lib.dtmf_rx_parms.restype, lib.dtmf_rx_parms.argtypes = None, [p, i, i, i, i]
    lib.dtmf_rx.restype, lib.dtmf_rx.argtypes = i, [p, p, i]
    lib.dtmf_rx_get.restype, lib.dtmf_rx_get.argtypes = ctypes.c_size_t, [p, p, i]
    lib.dtmf_rx_free.restype, lib.dtmf_rx_free.argtypes = i, [p]


def dtmf_generate(digits, level=-10, twist=0, on_ms=50, off_ms=55):
    """SpanDSP's tones for `digits` (level: the low tone in dBm0), each followed by its pause."""
    lib = load()
    s = lib.dtmf_tx_init(None, None, None)
    if not s:
        raise RuntimeError("dtmf_tx_init failed")
    out = []
    try:
        lib.dtmf_tx_set_level(s, level, twist)
        lib.dtmf_tx_set_timing(s, on_ms, off_ms)
        todo = digits.encode("ascii")
        buf = (ctypes.c_int16 * 800)()
        while True:
            if todo:  # the queue holds 128 digits: put them in as it drains
                k = min(len(todo), 64)
                if lib.dtmf_tx_put(s, todo[:k], k) == 0:
                    todo = todo[k:]
            n = lib.dtmf_tx(s, buf, len(buf))
            if n <= 0 and not todo:
                break
            out.extend(buf[:n])
    finally:
        lib.dtmf_tx_free(s)
    return out


def dtmf_detect(samples, chunk=160):
    """The digits SpanDSP's dtmf_rx (default settings) reports for 8 kHz int16 `samples`."""
    lib = load()
    s = lib.dtmf_rx_init(None, None, None)
    if not s:
        raise RuntimeError("dtmf_rx_init failed")
    got = []
    digits = ctypes.create_string_buffer(129)
    try:
        data = (ctypes.c_int16 * len(samples))(*samples)
        base = ctypes.addressof(data)
        for i in range(0, len(samples), chunk):
            n = min(chunk, len(samples) - i)
            lib.dtmf_rx(s, base + 2 * i, n)
            k = lib.dtmf_rx_get(s, digits, 128)
            if k:
                got.append(digits.raw[:k].decode("ascii"))
    finally:
        lib.dtmf_rx_free(s)
    return "".join(got)

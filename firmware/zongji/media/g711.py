"""G.711 (ITU-T G.711, 11/88): µ-law (PCMU) and A-law (PCMA) between 16-bit linear PCM and 8-bit
codes, bit-exact with SpanDSP's g711.h on all 65,536 inputs and 256 codes (tests/integration).
No I/O: frames are buffers the caller owns; the `_into` calls make no garbage.

    PCMU, PCMA                         the law, named by its RTP payload type (RFC 3551)
    linear_to_ulaw(x), ulaw_to_linear(c), linear_to_alaw(x), alaw_to_linear(c)     one sample
    ulaw_to_alaw(c), alaw_to_ulaw(c)   transcoding one code, G.711's own tables (see below)
    n = encode_into(law, dst, src, n=-1)    PCM -> codes: dst a bytearray of >= n bytes
    n = decode_into(law, dst, src, n=-1)    codes -> PCM: dst an array('h') of >= n, or a
                                            bytearray of >= 2n bytes (little-endian)
    n = transcode_into(law, dst, src, n=-1) codes of `law` -> codes of the other law
    encode(law, src) -> bytearray, decode(law, src) -> array('h')    allocating versions

PCM is an array('h'), or bytes / bytearray / memoryview holding little-endian int16 (a
memoryview counts as bytes: pass `n` to code part of an array). n defaults to all of src.

The rules: µ-law biases the magnitude |x| + 132 (33 on the ITU's 14-bit scale, x4 here); A-law
takes x, or -x - 1 below zero (13-bit scale, x8 here). The segment is the position of the top
bit above bit 7 (0..7, larger magnitudes saturate), the 4 bits under it are the step; µ-law
inverts all bits, A-law toggles the even ones (0x55) and sets bit 7 for x >= 0. Transcoding
follows G.711 tables 3 and 4 (as SpanDSP's g711_transcode): built at import from decode and
re-encode, then the levels where the tables round the other way (see _U2A below).

Heap (tables built at import): _SEG 256 B (segment by magnitude >> 7, shared by both laws),
_UDEC and _ADEC array('h') 512 B each, _U2A and _A2U 256 B each: ~1.8 KB in all. The hot
loops use @micropython.viper (g711_viper.py) where the port has a native emitter (ESP32,
unix), with output identical to the plain loops here (tests/core/test_media_g711.py).
"""

from array import array

from zongji.compat import const

PCMU = const(0)
PCMA = const(8)
_ULAW_BIAS = const(132)
_CLIP = const(32767)

_SEG = bytearray(256)
for _i in range(2, 256):
    _SEG[_i] = _SEG[_i >> 1] + 1


def _ulaw_value(c):
    c = ~c & 0xFF
    t = (((c & 15) << 3) + _ULAW_BIAS) << ((c >> 4) & 7)
    return _ULAW_BIAS - t if c & 0x80 else t - _ULAW_BIAS


def _alaw_value(c):
    c ^= 0x55
    s = (c >> 4) & 7
    v = ((c & 15) << 4) + 8 if s == 0 else (((c & 15) << 4) + 0x108) << (s - 1)
    return v if c & 0x80 else -v


_UDEC = array("h", [_ulaw_value(_i) for _i in range(256)])
_ADEC = array("h", [_alaw_value(_i) for _i in range(256)])


def linear_to_ulaw(x):
    if x < 0:
        m, mask = _ULAW_BIAS - x, 0x7F
    else:
        m, mask = _ULAW_BIAS + x, 0xFF
    if m > _CLIP:
        m = _CLIP
    s = _SEG[m >> 7]
    return ((s << 4) | ((m >> (s + 3)) & 15)) ^ mask


def linear_to_alaw(x):
    if x < 0:
        m, mask = -1 - x, 0x55
    else:
        m, mask = x, 0xD5
    if m > _CLIP:
        m = _CLIP
    s = _SEG[m >> 7]
    # segments 0 and 1 both step by 16: their code is m >> 4 itself (0..31)
    return (((s << 4) | ((m >> (s + 3)) & 15)) if s > 1 else m >> 4) ^ mask


def ulaw_to_linear(c):
    return _UDEC[c]


def alaw_to_linear(c):
    return _ADEC[c]


# G.711 tables 3 and 4 against decode-then-re-encode: they agree but for segment 5 (magnitude
# levels 80..95 of both laws), where each law's levels sit on the other's decision values and
# re-encoding rounds up a step; the tables map those levels one to one (µ-law level 80 still
# goes to A-law 79), and round µ-law levels 48, 49 and 64 down. Levels keep their sign, which
# re-encoding loses for small negative µ-law levels (A-law's x < 0 side starts at -1).
_U2A = bytearray(linear_to_alaw(_UDEC[_i]) for _i in range(256))
_A2U = bytearray(linear_to_ulaw(_ADEC[_i]) for _i in range(256))
for _um, _am in ((0xFF, 0xD5), (0x7F, 0x55)):  # the code masks of x >= 0, then x < 0
    for _i in range(80, 96):
        _A2U[_i ^ _am] = _i ^ _um
        if _i > 80:
            _U2A[_i ^ _um] = _i ^ _am
    for _i in range(16):  # µ-law segment 0 pairs up into A-law's (sign kept: -0 stays -0)
        _U2A[_i ^ _um] = (_i >> 1) ^ _am
    for _i in (48, 45), (49, 47), (64, 63):
        _U2A[_i[0] ^ _um] = _i[1] ^ _am
del _i, _um, _am


def ulaw_to_alaw(c):
    return _U2A[c]


def alaw_to_ulaw(c):
    return _A2U[c]


try:
    from zongji.media import g711_viper as _v
except (ImportError, SyntaxError):  # pragma: no cover  (CPython; a port without viper)
    _v = None
VIPER = _v is not None


def _is_bytes(b):
    return not isinstance(b, array)


def _count(src, n, per):
    have = len(src) // per
    if n < 0:
        return have
    if n > have:
        raise ValueError("src holds %d, not %d" % (have, n))
    return n


def _room(dst, n, per):
    if len(dst) < n * per:
        raise ValueError("dst too short for %d samples" % n)


def encode_into(law, dst, src, n=-1):
    """PCM `src` -> n codes of `law` into dst[0:n]; returns n."""
    wide = _is_bytes(src)
    n = _count(src, n, 2 if wide else 1)
    _room(dst, n, 1)
    if law == PCMU:
        if _v is not None:
            _v.encode_ulaw(dst, src, n, _SEG)
        elif wide:
            _enc_ulaw_bytes(dst, src, n)
        else:
            for i in range(n):
                dst[i] = linear_to_ulaw(src[i])
    elif law == PCMA:
        if _v is not None:
            _v.encode_alaw(dst, src, n, _SEG)
        elif wide:
            _enc_alaw_bytes(dst, src, n)
        else:
            for i in range(n):
                dst[i] = linear_to_alaw(src[i])
    else:
        raise ValueError("no such law: %r" % (law,))
    return n


def _enc_ulaw_bytes(dst, src, n):
    for i in range(n):
        x = src[2 * i] | (src[2 * i + 1] << 8)
        dst[i] = linear_to_ulaw(x - 0x10000 if x & 0x8000 else x)


def _enc_alaw_bytes(dst, src, n):
    for i in range(n):
        x = src[2 * i] | (src[2 * i + 1] << 8)
        dst[i] = linear_to_alaw(x - 0x10000 if x & 0x8000 else x)


def decode_into(law, dst, src, n=-1):
    """n codes of `law` from src -> PCM into dst; returns n."""
    table = _UDEC if law == PCMU else _ADEC if law == PCMA else None
    if table is None:
        raise ValueError("no such law: %r" % (law,))
    n = _count(src, n, 1)
    wide = _is_bytes(dst)
    _room(dst, n, 2 if wide else 1)
    if _v is not None:
        _v.decode(dst, src, n, table)
    elif wide:
        for i in range(n):
            v = table[src[i]]
            dst[2 * i] = v & 0xFF
            dst[2 * i + 1] = (v >> 8) & 0xFF
    else:
        for i in range(n):
            dst[i] = table[src[i]]
    return n


def transcode_into(law, dst, src, n=-1):
    """n codes of `law` from src -> the same sounds in the other law into dst; returns n."""
    table = _U2A if law == PCMU else _A2U if law == PCMA else None
    if table is None:
        raise ValueError("no such law: %r" % (law,))
    n = _count(src, n, 1)
    _room(dst, n, 1)
    if _v is not None:
        _v.transcode(dst, src, n, table)
    else:
        for i in range(n):
            dst[i] = table[src[i]]
    return n


def encode(law, src):
    dst = bytearray(len(src) // (2 if _is_bytes(src) else 1))
    encode_into(law, dst, src)
    return dst


def decode(law, src):
    dst = array("h", bytes(2 * len(src)))
    decode_into(law, dst, src)
    return dst

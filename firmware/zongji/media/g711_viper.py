"""The native loops of g711.py (@micropython.viper), for ports with a native emitter (ESP32,
unix). g711.py imports this module when it can: CPython raises ImportError at the first line,
a port without an emitter (the WebAssembly one) SyntaxError on compiling it. Each loop must give
exactly what g711.py's plain one gives (tests/core/test_media_g711.py checks every input).

Pointers carry no bounds: g711.py checks every length before it calls in here. PCM goes through
ptr16 whether it is an array('h') or little-endian bytes (both ports are little-endian), read
unsigned, so the sign is bit 15.
"""

# ruff: noqa: F821  (ptr8, ptr16 and micropython.viper are the viper compiler's own names)
import micropython


@micropython.viper
def encode_ulaw(dst: ptr8, src: ptr16, n: int, seg: ptr8):
    for i in range(n):
        x = src[i]
        if x & 0x8000:
            m = 0x10084 - x  # 132 + |x|
            mask = 0x7F
        else:
            m = 132 + x
            mask = 0xFF
        if m > 32767:
            m = 32767
        s = seg[m >> 7]
        dst[i] = ((s << 4) | ((m >> (s + 3)) & 15)) ^ mask


@micropython.viper
def encode_alaw(dst: ptr8, src: ptr16, n: int, seg: ptr8):
    for i in range(n):
        x = src[i]
        if x & 0x8000:
            m = 0xFFFF - x  # -x - 1
            mask = 0x55
        else:
            m = x
            mask = 0xD5
        s = seg[m >> 7]
        if s > 1:
            dst[i] = ((s << 4) | ((m >> (s + 3)) & 15)) ^ mask
        else:
            dst[i] = (m >> 4) ^ mask


@micropython.viper
def decode(dst: ptr16, src: ptr8, n: int, table: ptr16):
    for i in range(n):
        dst[i] = table[src[i]]


@micropython.viper
def transcode(dst: ptr8, src: ptr8, n: int, table: ptr8):
    for i in range(n):
        dst[i] = table[src[i]]

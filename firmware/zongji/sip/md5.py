"""MD5 (RFC 1321) for SIP digest authentication, on every port.

SIP phones still answer digest challenges with MD5, but MicroPython's `hashlib` has no `md5`
on some ports (the WebAssembly one we test on, small builds). `md5()` uses `hashlib.md5` when
the port has it and falls back to `_md5_pure`, a short RFC 1321 implementation. MD5 is weak;
it is here because RFC 2617 peers need it, not for anything new.

The pure path works on Python ints masked to 32 bits: MicroPython ints grow past 31 bits into
heap bignums, so it is slow (a few ms per 64-byte block on an ESP32 and garbage on every step)
but it only ever hashes short digest strings. Its constant table is built on first use, so a
port with `hashlib.md5` never pays for it.
"""

import struct
from binascii import hexlify

try:
    from hashlib import md5 as _lib_md5

    _lib_md5(b"")  # FIPS-mode CPython builds have the name but refuse to hash
except (ImportError, ValueError, AttributeError):  # pragma: no cover
    _lib_md5 = None

_M = 0xFFFFFFFF

# K[i] = floor(abs(sin(i + 1)) * 2**32), RFC 1321 section 3.4. Written out rather than computed:
# ESP32 MicroPython floats are single precision.
_K_HEX = (
    "d76aa478 e8c7b756 242070db c1bdceee f57c0faf 4787c62a a8304613 fd469501"
    " 698098d8 8b44f7af ffff5bb1 895cd7be 6b901122 fd987193 a679438e 49b40821"
    " f61e2562 c040b340 265e5a51 e9b6c7aa d62f105d 02441453 d8a1e681 e7d3fbc8"
    " 21e1cde6 c33707d6 f4d50d87 455a14ed a9e3e905 fcefa3f8 676f02d9 8d2a4c8a"
    " fffa3942 8771f681 6d9d6122 fde5380c a4beea44 4bdecfa9 f6bb4b60 bebfbc70"
    " 289b7ec6 eaa127fa d4ef3085 04881d05 d9d4d039 e6db99e5 1fa27cf8 c4ac5665"
    " f4292244 432aff97 ab9423a7 fc93a039 655b59c3 8f0ccc92 ffeff47d 85845dd1"
    " 6fa87e4f fe2ce6e0 a3014314 4e0811a1 f7537e82 bd3af235 2ad7d2bb eb86d391"
)
# Left-rotation amounts, four per round (RFC 1321 section 3.4).
_S = (7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21)
_K = None


def _md5_pure(data):
    """MD5 digest of `data` in pure Python (RFC 1321); public only for tests."""
    global _K
    if _K is None:
        _K = tuple(int(w, 16) for w in _K_HEX.split())
    n = len(data)
    bits = n * 8
    # Pad: 0x80, zeros up to 56 mod 64, then the bit length as a 64-bit little-endian int.
    msg = bytes(data) + b"\x80" + bytes((55 - n) % 64) + struct.pack("<II", bits & _M, (bits >> 32) & _M)
    a0, b0, c0, d0 = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for off in range(0, len(msg), 64):
        x = struct.unpack_from("<16I", msg, off)
        a, b, c, d = a0, b0, c0, d0
        for i in range(64):
            r = i >> 4
            if r == 0:
                f = (b & c) | ((b ^ _M) & d)
                g = i
            elif r == 1:
                f = (d & b) | ((d ^ _M) & c)
                g = (5 * i + 1) & 15
            elif r == 2:
                f = b ^ c ^ d
                g = (3 * i + 5) & 15
            else:
                f = c ^ (b | (d ^ _M))
                g = (7 * i) & 15
            f = (f + a + _K[i] + x[g]) & _M
            s = _S[(r << 2) | (i & 3)]
            a, d, c = d, c, b
            b = (b + ((f << s) | (f >> (32 - s)))) & _M
        a0 = (a0 + a) & _M
        b0 = (b0 + b) & _M
        c0 = (c0 + c) & _M
        d0 = (d0 + d) & _M
    return struct.pack("<IIII", a0, b0, c0, d0)


def md5(data):
    """The 16-byte MD5 digest of `data` (bytes; a str is UTF-8 encoded)."""
    if isinstance(data, str):
        data = data.encode()
    if _lib_md5 is not None:
        return _lib_md5(data).digest()
    return _md5_pure(data)


def md5_hex(data):
    """The MD5 digest of `data` as 32 lowercase hex digits."""
    return hexlify(md5(data)).decode()

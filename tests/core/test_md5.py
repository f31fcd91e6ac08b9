"""zongji.sip.md5: hashlib when the port has MD5, else the pure RFC 1321 path; both must agree."""

from _support import IS_MICROPYTHON, SkipTest
from zongji.sip import md5 as md5mod
from zongji.sip.md5 import _md5_pure, md5, md5_hex

# RFC 1321 appendix A.5
RFC1321 = (
    (b"", "d41d8cd98f00b204e9800998ecf8427e"),
    (b"a", "0cc175b9c0f1b6a831c399e269772661"),
    (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
    (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
    (b"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
    (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
    (b"1234567890" * 8, "57edf4a22be3c955ac49da2e2107b67a"),
)


def _hex(b):
    return "".join("%02x" % x for x in b)


def test_rfc1321_vectors_pure_python():
    for data, want in RFC1321:
        assert _hex(_md5_pure(data)) == want, data


def test_rfc1321_vectors_public_api():
    for data, want in RFC1321:
        assert md5_hex(data) == want, data
        assert _hex(md5(data)) == want
        assert len(md5(data)) == 16


def test_str_is_hashed_as_utf8():
    assert md5_hex("abc") == "900150983cd24fb0d6963f7d28e17f72"
    assert md5_hex("总机") == md5_hex("总机".encode())


def test_padding_boundaries_match_hashlib():
    # 55/56 and 63/64 bytes are where the length field spills into a second block.
    try:
        from hashlib import md5 as lib_md5
    except ImportError:
        raise SkipTest("this port's hashlib has no md5 to compare with")
    for n in (0, 1, 54, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 200, 1000):
        data = bytes((i * 7 + n) & 0xFF for i in range(n))
        assert _md5_pure(data) == lib_md5(data).digest(), n


def test_constant_table_is_sine_derived():
    if IS_MICROPYTHON:  # ports differ in float precision
        raise SkipTest("needs double-precision math.sin")
    import math

    want = tuple(int(abs(math.sin(i + 1)) * 2**32) & 0xFFFFFFFF for i in range(64))
    assert tuple(int(w, 16) for w in md5mod._K_HEX.split()) == want


def test_accepts_bytearray():
    data = b"message digest"
    assert _md5_pure(bytearray(data)) == _md5_pure(data)
    assert md5(bytearray(data)) == md5(data)

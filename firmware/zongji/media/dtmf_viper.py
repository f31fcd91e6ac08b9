"""The DTMF detector's inner loop with @micropython.viper: the same integers as dtmf._run_plain.

Imported by dtmf.py only where it compiles (MicroPython ports with a native emitter: ESP32,
unix); CPython and the WebAssembly port fail the import and use the plain loop.

Viper ints are machine words, 32 bits on the ESP32, so (c * s) >> 14 is taken in two parts,
c * (s >> 14) + ((c * (s & 0x3FFF)) >> 14), which is the same integer (floor division by 2^14
splits exactly, for either sign of c) and keeps every product under 2^30 for |s| < 2^22.
Samples and coefficients come through ptr16, which reads unsigned: the sign is put back by
hand (the four harmonics' coefficients are the negative ones). So for the resonator state read
back through ptr32 between calls (a half-block split over two frames): a 64-bit port (unix)
reads it zero-extended, and x - ((x & 2^31) << 1) restores the sign there while changing
nothing on a 32-bit one, where the shift drops the bit.
"""

import micropython


@micropython.viper
def run(st: ptr32, coef: ptr16, pcm: ptr16, i: int, n: int):  # noqa: F821  (viper types)
    c0 = int(coef[0])
    c1 = int(coef[1])
    c2 = int(coef[2])
    c3 = int(coef[3])
    c4 = int(coef[4])
    c5 = int(coef[5])
    c6 = int(coef[6])
    c7 = int(coef[7])
    c8 = int(coef[8])
    c9 = int(coef[9])
    c10 = int(coef[10])
    c11 = int(coef[11])
    c8 -= 65536  # ptr16 loads are unsigned: the harmonics' 2 cos w is negative
    c9 -= 65536
    c10 -= 65536
    c11 -= 65536
    m = 1  # ptr32 loads are unsigned on a 64-bit port: put the sign back with m = 2^31
    m <<= 31  # (computed, not a literal: 1 << 31 folds to an object on a 32-bit port)
    a0 = st[0]
    a0 -= (a0 & m) << 1
    b0 = st[1]
    b0 -= (b0 & m) << 1
    a1 = st[2]
    a1 -= (a1 & m) << 1
    b1 = st[3]
    b1 -= (b1 & m) << 1
    a2 = st[4]
    a2 -= (a2 & m) << 1
    b2 = st[5]
    b2 -= (b2 & m) << 1
    a3 = st[6]
    a3 -= (a3 & m) << 1
    b3 = st[7]
    b3 -= (b3 & m) << 1
    a4 = st[8]
    a4 -= (a4 & m) << 1
    b4 = st[9]
    b4 -= (b4 & m) << 1
    a5 = st[10]
    a5 -= (a5 & m) << 1
    b5 = st[11]
    b5 -= (b5 & m) << 1
    a6 = st[12]
    a6 -= (a6 & m) << 1
    b6 = st[13]
    b6 -= (b6 & m) << 1
    a7 = st[14]
    a7 -= (a7 & m) << 1
    b7 = st[15]
    b7 -= (b7 & m) << 1
    a8 = st[16]
    a8 -= (a8 & m) << 1
    b8 = st[17]
    b8 -= (b8 & m) << 1
    a9 = st[18]
    a9 -= (a9 & m) << 1
    b9 = st[19]
    b9 -= (b9 & m) << 1
    a10 = st[20]
    a10 -= (a10 & m) << 1
    b10 = st[21]
    b10 -= (b10 & m) << 1
    a11 = st[22]
    a11 -= (a11 & m) << 1
    b11 = st[23]
    b11 -= (b11 & m) << 1
    e = st[24]
    j = i
    end = i + n
    while j < end:
        x = int(pcm[j])
        if x > 32767:
            x -= 65536
        j += 1
        e += (x * x) >> 7
        t = x - b0 + c0 * (a0 >> 14) + ((c0 * (a0 & 0x3FFF)) >> 14)
        b0 = a0
        a0 = t
        t = x - b1 + c1 * (a1 >> 14) + ((c1 * (a1 & 0x3FFF)) >> 14)
        b1 = a1
        a1 = t
        t = x - b2 + c2 * (a2 >> 14) + ((c2 * (a2 & 0x3FFF)) >> 14)
        b2 = a2
        a2 = t
        t = x - b3 + c3 * (a3 >> 14) + ((c3 * (a3 & 0x3FFF)) >> 14)
        b3 = a3
        a3 = t
        t = x - b4 + c4 * (a4 >> 14) + ((c4 * (a4 & 0x3FFF)) >> 14)
        b4 = a4
        a4 = t
        t = x - b5 + c5 * (a5 >> 14) + ((c5 * (a5 & 0x3FFF)) >> 14)
        b5 = a5
        a5 = t
        t = x - b6 + c6 * (a6 >> 14) + ((c6 * (a6 & 0x3FFF)) >> 14)
        b6 = a6
        a6 = t
        t = x - b7 + c7 * (a7 >> 14) + ((c7 * (a7 & 0x3FFF)) >> 14)
        b7 = a7
        a7 = t
        t = x - b8 + c8 * (a8 >> 14) + ((c8 * (a8 & 0x3FFF)) >> 14)
        b8 = a8
        a8 = t
        t = x - b9 + c9 * (a9 >> 14) + ((c9 * (a9 & 0x3FFF)) >> 14)
        b9 = a9
        a9 = t
        t = x - b10 + c10 * (a10 >> 14) + ((c10 * (a10 & 0x3FFF)) >> 14)
        b10 = a10
        a10 = t
        t = x - b11 + c11 * (a11 >> 14) + ((c11 * (a11 & 0x3FFF)) >> 14)
        b11 = a11
        a11 = t
    st[0] = a0
    st[1] = b0
    st[2] = a1
    st[3] = b1
    st[4] = a2
    st[5] = b2
    st[6] = a3
    st[7] = b3
    st[8] = a4
    st[9] = b4
    st[10] = a5
    st[11] = b5
    st[12] = a6
    st[13] = b6
    st[14] = a7
    st[15] = b7
    st[16] = a8
    st[17] = b8
    st[18] = a9
    st[19] = b9
    st[20] = a10
    st[21] = b10
    st[22] = a11
    st[23] = b11
    st[24] = e

"""In-band DTMF: a Goertzel detector on 8 kHz signed 16-bit linear audio, in integers (no I/O).

    d = Detector(viper=True)     one per line; viper=False forces the plain path
    d.feed(pcm, n=-1) -> int     audio in any chunk size: array('h'), or bytes / bytearray /
                                 memoryview of little-endian int16; returns how many digits
                                 were newly recognised (0 almost always)
    d.next_digit() -> (digit, start) or None    digit is one of "0123456789*#ABCD", start the
                                 sample index (from the first sample fed) where its tone began
    d.reset()                    forget everything (a new call on the line)
    decode(pcm) -> [(digit, start), ...]        a whole recording at once (tests, the CLI)

Theory of operation. Each of the 8 DTMF frequencies has a Goertzel resonator, run over
half-blocks of M = 51 samples (the inner loop: plain below, @micropython.viper in
dtmf_viper.py, the same integers). At the end of a half-block the resonator gives a complex
value y per tone; two consecutive halves combine exactly into the DFT of a 102-sample window
(Y = y_prev + e^(-j w M) * y_cur), so the detector sees 102-sample windows (78 Hz bins, as
SpanDSP's) every 51 samples. A window holds a digit when, for the strongest row and column:
both are above -40 dBm0 per tone; each is 8 dB above the other tones of its group; the twist
is within -10..+6 dB; and the two tones carry at least _RATIO of the window's total energy
(76 %: this rejects speech, music and off-frequency tones: a tone 3.5 % off loses 2..10 dB in its
bin, one 1.5 % off at most 1.5 dB). A digit is recognised after 4 consecutive windows agree
(38 ms: two whole blocks and the halves around them) and their tone powers stay within 2.5 dB
of each other, which rejects tones of 23 ms or less whatever their alignment. It is reported
once; it ends after 2 windows without it (a pause of ~13 ms or more).

Sign convention: twist = level of the high (column) tone - level of the low (row) tone, in
dB. +4 dB means the high tone is 4 dB louder ("reverse twist"), -8 dB 8 dB quieter ("normal
twist", what a long line does). Levels: 0 dBm0 is a sine of peak 22,823 (3.14 dBm0 is full
scale, as in G.711 and SpanDSP).

Integer ranges hold on a 32-bit port (ESP32: viper ints are 32 bits, small ints 31): the
resonator keeps |s| < 2^22 for 51 samples of any 16-bit input, and its product with the
coefficient (Q15 cos w) is taken in two parts so it never needs more than 30 bits; the window
arithmetic works on s >> 7. State per line: 768 bytes of heap on 64-bit unix MicroPython
(gc.mem_alloc() around Detector(): four int32 arrays of 180 bytes in all, the instance, the
digit queue), less on the 32-bit ESP32; no allocation per frame (tests/device/
test_dtmf_viper.py checks it; the sample counter becomes a long integer after 37 hours).
"""

from array import array

from zongji.compat import const

DIGITS = "123A456B789C*0#D"  # row * 4 + column
_M = const(51)  # half-block; windows are 2 * _M = 102 samples
_N = const(102)
_PMIN = const(2067)  # -40 dBm0 in a window: A^2 N^2 / 2^18 with A = 22823 * 10^(-40/20)
_RATIO = const(78)  # (row + column power) >= 78/102 of a pure dual tone's share of the energy
_RUN = const(4)  # windows that must agree
_END = const(2)  # windows without the digit that end it
_LEAD = const(16)  # the first agreeing window begins 0..35 samples before the tone, ~16 on average

# Per tone (697, 770, 852, 941, 1209, 1336, 1477, 1633 Hz): cos w in Q15 (the resonator's
# 2 cos w in Q14), then cos w, sin w, cos wM, sin wM in Q14 for the window arithmetic.
_COEF = array("H", (27980, 26956, 25701, 24219, 19073, 16325, 13085, 9315))
_TRIG = array(
    "h",
    (
        (13990, 8528, -15358, 5707)
        + (13478, 9315, 13764, -8887)
        + (12851, 10163, -14890, 6836)
        + (12109, 11036, 16384, -116)
        + (9536, 13323, -4336, -15800)
        + (8162, 14206, -16291, -1747)
        + (6542, 15021, -14148, 8262)
        + (4657, 15708, -13854, 8746)
    ),
)

try:
    from zongji.media import dtmf_viper as _v
except (ImportError, SyntaxError):  # pragma: no cover  (CPython; a port without viper)
    _v = None
VIPER = _v is not None


def _run_plain(st, coef, pcm, i, n, words):
    # The reference inner loop: n samples from index i. st holds s1, s2 per tone, then the
    # energy sum (x*x >> 7, at most 2^23 a sample). `words` says pcm is an array of int16.
    # One name per line: MicroPython builds a tuple for unpacking more than 3 at once.
    c0 = coef[0]
    c1 = coef[1]
    c2 = coef[2]
    c3 = coef[3]
    c4 = coef[4]
    c5 = coef[5]
    c6 = coef[6]
    c7 = coef[7]
    a0 = st[0]
    b0 = st[1]
    a1 = st[2]
    b1 = st[3]
    a2 = st[4]
    b2 = st[5]
    a3 = st[6]
    b3 = st[7]
    a4 = st[8]
    b4 = st[9]
    a5 = st[10]
    b5 = st[11]
    a6 = st[12]
    b6 = st[13]
    a7 = st[14]
    b7 = st[15]
    e = st[16]
    j = i
    end = i + n
    while j < end:
        if words:
            x = pcm[j]
        else:
            x = pcm[2 * j] | (pcm[2 * j + 1] << 8)
            if x > 32767:
                x -= 65536
        j += 1
        e += (x * x) >> 7
        a0, b0 = x - b0 + ((c0 * a0) >> 14), a0
        a1, b1 = x - b1 + ((c1 * a1) >> 14), a1
        a2, b2 = x - b2 + ((c2 * a2) >> 14), a2
        a3, b3 = x - b3 + ((c3 * a3) >> 14), a3
        a4, b4 = x - b4 + ((c4 * a4) >> 14), a4
        a5, b5 = x - b5 + ((c5 * a5) >> 14), a5
        a6, b6 = x - b6 + ((c6 * a6) >> 14), a6
        a7, b7 = x - b7 + ((c7 * a7) >> 14), a7
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
    st[16] = e


class Detector:
    """One line's DTMF detector. Feed it audio; take digits with next_digit()."""

    def __init__(self, viper=True):
        self._viper = bool(viper) and VIPER
        self._st = array("i", bytes(4 * 17))  # resonators s1, s2 x 8, energy
        self._y = array("i", bytes(4 * 16))  # the previous half-block's y (re, im) x 8
        self._p = array("i", bytes(4 * 8))  # the window's power per tone
        self._hist = array("i", bytes(4 * _RUN))  # the last windows' tone power
        self._out = []
        self.reset()

    def reset(self):
        for a in (self._st, self._y, self._p, self._hist):
            for k in range(len(a)):
                a[k] = 0
        del self._out[:]
        self._pos = 0  # samples into the current half-block
        self._t = 0  # sample index where the current half-block began
        self._eprev = -1  # the previous half-block's energy; -1: none yet
        self._cand = -1  # digit the recent windows agree on (-1 none)
        self._count = 0  # how many windows in a row
        self._since = 0  # where the first of them began
        self._cur = -1  # digit being held (reported, not yet ended)
        self._ref = 0  # its tone power when recognised
        self._miss = 0
        self._h = 0  # next slot in _hist

    def feed(self, pcm, n=-1):
        words = isinstance(pcm, array)
        have = len(pcm) if words else len(pcm) >> 1
        if n < 0 or n > have:
            n = have
        before = len(self._out)
        st = self._st
        i = 0
        while i < n:
            take = _M - self._pos
            if take > n - i:
                take = n - i
            if self._viper:
                _v.run(st, _COEF, pcm, i, take)
            else:
                _run_plain(st, _COEF, pcm, i, take, words)
            i += take
            self._pos += take
            if self._pos == _M:
                self._half()
                self._pos = 0
                self._t += _M
        return len(self._out) - before

    def next_digit(self):
        return self._out.pop(0) if self._out else None

    def _half(self):
        # The end of a half-block: its y per tone, the window (previous half + this one).
        st = self._st
        y = self._y
        p = self._p
        trig = _TRIG
        window = self._eprev >= 0
        for k in range(8):
            a = st[2 * k] >> 7
            b = st[2 * k + 1] >> 7
            q = 4 * k
            yr = a - ((trig[q] * b) >> 14)
            yi = (trig[q + 1] * b) >> 14
            if window:
                cr, sr = trig[q + 2], trig[q + 3]
                wr = y[2 * k] + ((cr * yr) >> 14) + ((sr * yi) >> 14)
                wi = y[2 * k + 1] + ((cr * yi) >> 14) - ((sr * yr) >> 14)
                wr >>= 1
                wi >>= 1
                p[k] = wr * wr + wi * wi
            y[2 * k] = yr
            y[2 * k + 1] = yi
            st[2 * k] = 0
            st[2 * k + 1] = 0
        e = st[16]
        st[16] = 0
        if window:
            self._window(self._eprev + e, self._t - _M)
        self._eprev = e

    def _window(self, energy, start):
        p = self._p
        r = 0
        for k in (1, 2, 3):
            if p[k] > p[r]:
                r = k
        c = 4
        for k in (5, 6, 7):
            if p[k] > p[c]:
                c = k
        pr, pc = p[r], p[c]
        digit = -1
        if pr >= _PMIN and pc >= _PMIN and pc <= pr * 4 and pc >= pr >> 4:
            ok = (pr + pc) >= (energy >> 10) * _RATIO
            for k in range(8):
                if k != r and k != c and p[k] * 4 > (pr if k < 4 else pc):
                    ok = False
            if ok:
                digit = r * 4 + c - 4
        self._hist[self._h] = pr + pc
        self._h = (self._h + 1) % _RUN
        if digit >= 0 and digit == self._cand:
            self._count += 1
        else:
            self._cand = digit
            self._count = 1 if digit >= 0 else 0
            self._since = start
        if self._cur >= 0:
            held = self._cur
            if r * 4 + c - 4 == held and pr + pc >= self._ref >> 2:
                self._miss = 0
            else:
                self._miss += 1
                if self._miss >= _END or (digit >= 0 and digit != held):
                    self._cur = -1
        if self._cur < 0 and self._count >= _RUN and self._steady():
            self._cur = self._cand
            self._miss = 0
            self._out.append((DIGITS[self._cand], self._since + _LEAD))

    def _steady(self):
        # The last _RUN windows' tone power (row + column) within 2.5 dB (9/16) of their
        # maximum: a window the tone covers only in part has less (f^2 for a fraction f).
        # The sum, not each tone: a strong row tone's leakage beats in a weak column bin.
        hist = self._hist
        lo = hi = hist[0]
        for k in range(1, _RUN):
            v = hist[k]
            lo = v if v < lo else lo
            hi = v if v > hi else hi
        self._ref = hi
        return lo >= (hi >> 4) * 9


def decode(pcm, viper=True):
    """All digits in a recording, as (digit, start sample) pairs."""
    d = Detector(viper)
    d.feed(pcm)
    out = []
    got = d.next_digit()
    while got is not None:
        out.append(got)
        got = d.next_digit()
    return out

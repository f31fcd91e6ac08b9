"""In-band DTMF: a Goertzel detector on 8 kHz signed 16-bit linear audio, in integers (no I/O).

    d = Detector(viper=True)     one per line; viper=False forces the plain path
    d.feed(pcm, n=-1) -> int     audio in any chunk size: array('h'), or bytes / bytearray /
                                 memoryview of little-endian int16; returns how many digits
                                 were newly recognised (0 almost always)
    d.next_digit() -> (digit, start) or None    digit is one of "0123456789*#ABCD", start the
                                 sample index (from the first sample fed) where its tone began
    d.reset()                    forget everything (a new call on the line)
    decode(pcm) -> [(digit, start), ...]        a whole recording at once (tests, the CLI)

Theory of operation. Twelve Goertzel resonators, one per DTMF frequency and one per column
tone's second harmonic (2418, 2672, 2954, 3266 Hz), run over half-blocks of M = 51 samples (the
inner loop: plain below, @micropython.viper in dtmf_viper.py, the same integers). At the end of
a half-block the resonator gives a complex value y per frequency; two consecutive halves
combine exactly into the DFT of a 102-sample window (Y = y_prev + e^(-j w M) * y_cur), so the
detector sees 102-sample windows (78 Hz bins, as SpanDSP's) every 51 samples. A window holds a
digit when, for the strongest row and column: both are above -40 dBm0 per tone; each is 6 dB
above the other tones of its group; the twist is within -12..+6 dB; the two tones carry at
least _RATIO of the window's total energy (78/102 of a pure pair's share: this rejects speech,
music and off-frequency tones: a tone 3.5 % off loses 2..10 dB in its bin, one 1.5 % off at
most 1.5 dB); and the column tone's second harmonic is at least 10 dB below it (an instrument's
or a voice's tones have harmonics, a DTMF generator's must not: Q.23 wants its distortion 20 dB
down; worked out only for a window that passes the rest). A digit is recognised after 4
consecutive windows agree (38 ms: two whole blocks and the halves around them), their tone
powers stay within 2.5 dB of each other, which rejects tones of 23 ms or less whatever their
alignment, and both tones are within 2 % of their frequency. That frequency gate needs no more
resonators: a tone df Hz off advances its phase by 2 pi df M / 8000 from one window to the next
beyond what its bin's own frequency gives, so W_this * conj(W_last * e^(j w M)), summed over
the run's windows (weighted by their power), has that angle; the gate takes |angle| <=
atan(_TAN) (2 % of the tone's frequency; estimates are within 0.1 % at 15 dB SNR). It is what
rejects one note and its octave as a 2, 6 or C: 684 Hz sits in 697's bin and 1368 Hz in 1336's,
but 1368 is 2.4 % off. (The rows' second harmonics would need longer windows: 2 x 697 = 1394 Hz
is less than a bin from 1336.) A digit is reported once; it ends after 2 windows without it (a
pause of ~13 ms or more).

Sign convention: twist = level of the high (column) tone - level of the low (row) tone, in
dB. +4 dB means the high tone is 4 dB louder ("reverse twist"), -8 dB 8 dB quieter ("normal
twist", what a long line does). Levels: 0 dBm0 is a sine of peak 22,823 (3.14 dBm0 is full
scale, as in G.711 and SpanDSP).

Integer ranges hold on a 32-bit port (ESP32: viper ints are 32 bits, small ints 31): the
resonator keeps |s| < 2^22 for 51 samples of any 16-bit input (|s| <= 51 * 2^15 / |sin w|, and
|sin w| > 0.52 for all twelve), and its product with the coefficient (2 cos w in Q14, negative
for the harmonics) is taken in two parts so it never needs more than 30 bits; the window
arithmetic works on s >> 7, so |W| <= 102 * 2^15 / 2^8 = 13056, a power or a phase-advance
product is under 2^28 and their sum over the 4 windows of a run under 2^30. State per line:
1216 bytes of heap on 64-bit unix MicroPython (gc.mem_alloc() around Detector(): six int32
arrays of 468 bytes in all, the instance, the digit queue), less on the 32-bit ESP32; no
allocation per frame (tests/device/test_dtmf_viper.py checks it; the sample counter becomes a
long integer after 37 hours).
"""

from array import array

from zongji.compat import const

DIGITS = "123A456B789C*0#D"  # row * 4 + column
_M = const(51)  # half-block; windows are 2 * _M = 102 samples
_N = const(102)
_PMIN = const(2067)  # -40 dBm0 in a window: A^2 N^2 / 2^18 with A = 22823 * 10^(-40/20)
_RATIO = const(78)  # (row + column power) >= 78/102 of a pure dual tone's share of the energy
_H2 = const(10)  # a column tone's second harmonic must be 10 dB (1/10) below it
_RUN = const(4)  # windows that must agree
_END = const(2)  # windows without the digit that end it
_LEAD = const(16)  # the first agreeing window begins 0..35 samples before the tone, ~16 on average

# Per resonator: the 8 tones (697, 770, 852, 941, 1209, 1336, 1477, 1633 Hz), then the columns'
# second harmonics (2418, 2672, 2954, 3266 Hz). 2 cos w in Q14 (signed), then cos w, sin w,
# cos wM, sin wM in Q14 for the window arithmetic.
_COEF = array("h", (27980, 26956, 25701, 24219, 19073, 16325, 13085, 9315, -10565, -16503, -22318, -27472))
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
        + (-5283, 15509, -14089, 8362)
        + (-8251, 14155, 16012, 3474)
        + (-11159, 11996, 8050, -14270)
        + (-13736, 8931, 7046, -14792)
    ),
)
# Per tone: tan of the phase a tone 2 % off its frequency gains in one hop of M samples
# (2 pi 0.02 f M / 8000), in Q10: the frequency gate's limit.
_TAN = array("H", (640, 726, 832, 961, 1490, 1872, 2509, 3810))

try:
    from zongji.media import dtmf_viper as _v
except (ImportError, SyntaxError):  # pragma: no cover  (CPython; a port without viper)
    _v = None
VIPER = _v is not None


def _run_plain(st, coef, pcm, i, n, words):
    # The reference inner loop: n samples from index i. st holds s1, s2 per resonator, then the
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
    c8 = coef[8]
    c9 = coef[9]
    c10 = coef[10]
    c11 = coef[11]
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
    a8 = st[16]
    b8 = st[17]
    a9 = st[18]
    b9 = st[19]
    a10 = st[20]
    b10 = st[21]
    a11 = st[22]
    b11 = st[23]
    e = st[24]
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
        a8, b8 = x - b8 + ((c8 * a8) >> 14), a8
        a9, b9 = x - b9 + ((c9 * a9) >> 14), a9
        a10, b10 = x - b10 + ((c10 * a10) >> 14), a10
        a11, b11 = x - b11 + ((c11 * a11) >> 14), a11
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


class Detector:
    """One line's DTMF detector. Feed it audio; take digits with next_digit()."""

    def __init__(self, viper=True):
        self._viper = bool(viper) and VIPER
        self._st = array("i", bytes(4 * 25))  # resonators s1, s2 x 12, energy
        self._y = array("i", bytes(4 * 32))  # y (re, im): the tones' last half, the harmonics' last two
        self._p = array("i", bytes(4 * 8))  # the window's power per tone
        self._w = array("i", bytes(4 * 32))  # two windows' W (re, im) x 8 tones: this one, the last
        self._hist = array("i", bytes(4 * _RUN))  # the last windows' tone power
        self._adv = array("i", bytes(4 * 4 * _RUN))  # and their row, column phase advance (re, im)
        self._out = []
        self.reset()

    def reset(self):
        for a in (self._st, self._y, self._p, self._w, self._hist, self._adv):
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
        self._h = 0  # next slot in _hist, _adv
        self._wb = 0  # where this window's W starts in _w (0 or 16; the last one's is the other)
        self._hb = 16  # where this half's harmonic y start in _y (16 or 24; the last half's: the other)

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
        w = self._w
        wb = self._wb
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
                w[wb + 2 * k] = wr
                w[wb + 2 * k + 1] = wi
            y[2 * k] = yr
            y[2 * k + 1] = yi
            st[2 * k] = 0
            st[2 * k + 1] = 0
        # The harmonics: only y, kept for two halves; their window power is worked out only
        # for a window that holds a digit otherwise (_harmonic).
        i = self._hb
        for k in range(8, 12):
            a = st[2 * k] >> 7
            b = st[2 * k + 1] >> 7
            y[i] = a - ((trig[4 * k] * b) >> 14)
            y[i + 1] = (trig[4 * k + 1] * b) >> 14
            i += 2
            st[2 * k] = 0
            st[2 * k + 1] = 0
        e = st[24]
        st[24] = 0
        if window:
            self._window(self._eprev + e, self._t - _M)
        self._eprev = e
        self._hb = 40 - self._hb

    def _harmonic(self, c):
        # The window power of column c's second harmonic (resonator c + 4), as _half's for a tone.
        y = self._y
        i = self._hb + 2 * (c - 4)
        j = 40 - self._hb + 2 * (c - 4)
        q = 4 * (c + 4)
        cr, sr = _TRIG[q + 2], _TRIG[q + 3]
        wr = (y[j] + ((cr * y[i]) >> 14) + ((sr * y[i + 1]) >> 14)) >> 1
        wi = (y[j + 1] + ((cr * y[i + 1]) >> 14) - ((sr * y[i]) >> 14)) >> 1
        return wr * wr + wi * wi

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
            if ok and self._harmonic(c) > pc // _H2:
                ok = False  # the column tone's second harmonic: music, speech
            if ok:
                digit = r * 4 + c - 4
                self._advance(r, 4 * self._h)
                self._advance(c, 4 * self._h + 2)
        self._hist[self._h] = pr + pc
        self._h = (self._h + 1) % _RUN
        self._wb = 16 - self._wb
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
        if self._cur < 0 and self._count >= _RUN and self._steady() and self._on(r, 0) and self._on(c, 2):
            self._cur = self._cand
            self._miss = 0
            self._out.append((DIGITS[self._cand], self._since + _LEAD))

    def _advance(self, k, slot):
        # Tone k's phase advance from the last window to this one, less the advance its
        # nominal frequency gives (w M): W_this * conj(W_last * e^(j w M)). Its angle is
        # 2 pi df M / 8000 for a tone df Hz off; its length the tone power (< 2^28).
        w = self._w
        i = self._wb + 2 * k
        j = 16 - self._wb + 2 * k
        q = 4 * k
        cm, sm = _TRIG[q + 2], _TRIG[q + 3]
        vr = (w[j] * cm - w[j + 1] * sm) >> 14
        vi = (w[j] * sm + w[j + 1] * cm) >> 14
        self._adv[slot] = w[i] * vr + w[i + 1] * vi
        self._adv[slot + 1] = w[i + 1] * vr - w[i] * vi

    def _on(self, k, off):
        # The frequency gate: tone k (the run's row, off 0, or column, off 2) within 2 % of its
        # frequency, from the phase advance summed over the run's windows (each weighted by its
        # power, so a window the tone only begins in counts little): angle within +-atan(_TAN).
        adv = self._adv
        re = 0
        im = 0
        for h in range(_RUN):
            re += adv[4 * h + off]
            im += adv[4 * h + off + 1]
        if re <= 0:
            return False
        if im < 0:
            im = -im
        while re > 32767 or im > 32767:
            re >>= 1
            im >>= 1
        return im << 10 <= _TAN[k] * re

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

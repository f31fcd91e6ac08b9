"""The in-band DTMF detector (zongji.media.dtmf) on tones synthesised here: the ITU-T Q.24
accept and reject points, de-bouncing, chunking, and the plain path against the viper one."""

import math
from array import array

from _support import SkipTest
from zongji.media import dtmf

ROWS = (697, 770, 852, 941)
COLS = (1209, 1336, 1477, 1633)
ALL = "123A456B789C*0#D"
PEAK_0DBM0 = 22823


class _Rng:
    # A small LCG, the same numbers on CPython and MicroPython.
    def __init__(self, seed):
        self.x = seed

    def gauss(self):
        t = 0
        for _ in range(12):
            self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
            t += self.x
        return t / 2147483648.0 - 6.0


def tones(digits, on=320, off=320, level=-10, twist=0, offset=0.0, snr=None, lead=400):
    """Each digit `on` samples after `off` (`lead` first); level per low tone, twist = high - low."""
    amp_r = PEAK_0DBM0 * 10 ** (level / 20)
    amp_c = amp_r * 10 ** (twist / 20)
    out = []
    starts = []
    for ch in digits:
        out.extend([0.0] * (off if out else lead))
        starts.append(len(out))
        k = ALL.index(ch)
        wr = 2 * math.pi * ROWS[k // 4] * (1 + offset) / 8000
        wc = 2 * math.pi * COLS[k % 4] * (1 + offset) / 8000
        out.extend([amp_r * math.sin(wr * n) + amp_c * math.sin(wc * n + 1) for n in range(on)])
    out.extend([0.0] * lead)
    if snr is not None:
        sigma = math.sqrt((amp_r * amp_r + amp_c * amp_c) / 2 / 10 ** (snr / 10))
        rng = _Rng(7)
        out = [v + sigma * rng.gauss() for v in out]
    pcm = array("h", [max(-32768, min(32767, int(round(v)))) for v in out])
    return pcm, starts


def _digits(pcm, viper=False):
    return "".join(d for d, _ in dtmf.decode(pcm, viper))


def test_every_digit_with_its_start():
    pcm, starts = tones(ALL, on=400, off=400)
    got = dtmf.decode(pcm, False)
    assert "".join(d for d, _ in got) == ALL
    for (d, start), want in zip(got, starts):
        assert abs(start - want) <= 40, (d, start, want)


def test_a_long_key_press_is_one_digit():
    pcm, _ = tones("5", on=8000)
    assert _digits(pcm) == "5"


def test_sequence_with_short_pauses_q24():
    pcm, _ = tones("0123456789", on=320, off=320)
    assert _digits(pcm) == "0123456789"


def test_frequency_offset_accept_1_5_percent():
    for off in (0.015, -0.015):
        pcm, _ = tones(ALL, offset=off)
        assert _digits(pcm) == ALL, off


def test_frequency_offset_reject_3_5_percent():
    for off in (0.035, -0.035):
        pcm, _ = tones(ALL, offset=off)
        assert _digits(pcm) == "", off


def test_twist_accept_plus_4_to_minus_8_db():
    for tw in (4, -8):
        pcm, _ = tones(ALL, twist=tw)
        assert _digits(pcm) == ALL, tw


def test_levels_accept_0_to_minus_25_reject_minus_55():
    for lv in (0, -25):
        pcm, _ = tones(ALL, level=lv)
        assert _digits(pcm) == ALL, lv
    pcm, _ = tones(ALL, level=-55)
    assert _digits(pcm) == ""


def test_white_noise_at_15_db_snr():
    pcm, _ = tones(ALL, snr=15)
    assert _digits(pcm) == ALL


def test_tones_of_23_ms_or_less_rejected():
    for on in (184, 160, 80):
        pcm, _ = tones(ALL, on=on)
        assert _digits(pcm) == "", on


def test_silence_and_noise_give_nothing():
    assert _digits(array("h", bytes(16000))) == ""
    rng = _Rng(3)
    assert _digits(array("h", [int(3000 * rng.gauss()) for _ in range(16000)])) == ""


def test_chunk_size_does_not_matter():
    pcm, _ = tones("159#", snr=20)
    want = dtmf.decode(pcm, False)
    for size in (1, 80, 160, 1000):
        d = dtmf.Detector(False)
        got = []
        for i in range(0, len(pcm), size):
            d.feed(pcm[i : i + size])
            g = d.next_digit()
            while g is not None:
                got.append(g)
                g = d.next_digit()
        assert got == want, size


def test_bytes_input_same_as_array():
    pcm, _ = tones("42", snr=20)
    data = bytearray()
    for v in pcm:
        data.append(v & 0xFF)
        data.append((v >> 8) & 0xFF)
    assert dtmf.decode(data, False) == dtmf.decode(pcm, False)


def test_reset_forgets_heard_digits():
    pcm, _ = tones("7")
    d = dtmf.Detector(False)
    assert d.feed(pcm) == 1
    d.reset()
    assert d.next_digit() is None
    d.feed(pcm)
    assert d.next_digit()[0] == "7"


def test_viper_path_gives_the_same_digits():
    if not dtmf.VIPER:
        raise SkipTest("no viper on this interpreter (CPython, or a port without native code)")
    for kw in ({}, {"snr": 15, "twist": -8}, {"offset": 0.02}, {"level": -30, "snr": 18}):
        pcm, _ = tones(ALL, **kw)
        assert dtmf.decode(pcm, True) == dtmf.decode(pcm, False), kw


def test_coefficients_match_the_frequencies():
    for k, f in enumerate(ROWS + COLS + tuple(2 * c for c in COLS)):
        w = 2 * math.pi * f / 8000
        assert dtmf._COEF[k] == round(2 * math.cos(w) * 16384)
        want = (math.cos(w), math.sin(w), math.cos(w * 51), math.sin(w * 51))
        for j in range(4):
            assert dtmf._TRIG[4 * k + j] == round(want[j] * 16384)
    for k, f in enumerate(ROWS + COLS):
        assert dtmf._TAN[k] == round(math.tan(2 * math.pi * 0.02 * f * 51 / 8000) * 1024)


def notes(parts, n=2400, lead=400):
    """Sines (frequency Hz, amplitude, phase) summed for n samples, `lead` of silence around."""
    out = [0.0] * lead
    for i in range(n):
        out.append(sum(a * math.sin(2 * math.pi * f * i / 8000 + ph) for f, a, ph in parts))
    out.extend([0.0] * lead)
    return array("h", [max(-32768, min(32767, int(round(v)))) for v in out])


A10 = PEAK_0DBM0 * 10 ** (-10 / 20)  # -10 dBm0


def test_a_column_tone_with_a_second_harmonic_is_music_not_dtmf():
    # Every pair 1 % off, as a detuned instrument plays it: a digit when the tones are pure,
    # none when the column tone has a second harmonic 6 dB down (the energy ratio alone
    # let these through: the harmonic holds only 11 % of the energy).
    for k, ch in enumerate(ALL):
        fr, fc = ROWS[k // 4] * 1.01, COLS[k % 4] * 1.01
        pure = [(fr, A10, 0), (fc, A10, 1)]
        assert _digits(notes(pure)) == ch, ch
        assert _digits(notes(pure + [(2 * fc, A10 * 0.5, 2)])) == "", ch


def test_a_note_and_its_octave_is_not_digit_2():
    # 684 Hz is in 697's bin and its octave, 1368 Hz, in 1336's (the bins are 78 Hz wide), but
    # 1368 Hz is 2.4 % off 1336: the frequency gate (2 %, from the phase advance between
    # windows) refuses it. A real 2 with the row tone as far off (-1.9 %) is a digit.
    for f, h in ((684, 0.5), (686, 0.5), (683, 0.7)):
        assert _digits(notes([(f, A10, 0), (2 * f, A10 * h, 1)])) == "", f
    assert _digits(notes([(684, A10, 0), (1336, A10 * 0.5, 1)])) == "2"


def test_frequency_gate_between_accept_and_reject():
    # Q.24 leaves 1.5..3.5 % to the detector; ours accepts up to 2 % of the tone's frequency.
    for off in (0.025, -0.025):
        pcm, _ = tones(ALL, offset=off)
        assert _digits(pcm) == "", off
    for off in (0.017, -0.017):
        pcm, _ = tones("0123456789*#", on=480, offset=off)
        assert _digits(pcm) == "0123456789*#", off

"""G.711 (zongji.media.g711) against a reference written here from the standard's segment rule
in plain arithmetic, on every code and every linear input (both interpreters); the viper loops
against the plain ones. SpanDSP's own tables: tests/integration/test_g711_spandsp.py."""

from array import array

from _support import IS_MICROPYTHON, REPO, SkipTest
from zongji.media import g711


def ref_ulaw(x):
    """G.711 µ-law on a 16-bit scale: magnitude + 132, segment = the first of 8 that holds it."""
    code = 0x80 if x >= 0 else 0
    mag = (x if x >= 0 else -x) + 132
    if mag > 32767:
        mag = 32767
    seg = 0
    while seg < 7 and mag >= 256 * 2**seg:
        seg += 1
    step = mag // 2 ** (seg + 3) - 16
    return code + 127 - (seg * 16 + step)  # every bit but the sign inverted


def ref_alaw(x):
    """G.711 A-law on a 16-bit scale: x, or -x - 1 below 0; segments 0 and 1 step by 16."""
    code = 0x80 if x >= 0 else 0
    mag = x if x >= 0 else -x - 1
    if mag > 32767:
        mag = 32767
    if mag < 256:
        seg, step = 0, mag // 16
    else:
        seg = 1
        while seg < 7 and mag >= 256 * 2**seg:
            seg += 1
        step = mag // 2 ** (seg + 3) - 16
    return (code + seg * 16 + step) ^ 0x55


def test_every_linear_input_encodes_as_the_reference():
    for x in range(-32768, 32768):  # all of them: under a second in wasm too
        assert g711.linear_to_ulaw(x) == ref_ulaw(x), x
        assert g711.linear_to_alaw(x) == ref_alaw(x), x


def test_out_of_range_inputs_saturate():
    assert g711.linear_to_ulaw(40000) == g711.linear_to_ulaw(32767) == 0x80
    assert g711.linear_to_ulaw(-40000) == g711.linear_to_ulaw(-32768) == 0x00
    assert g711.linear_to_alaw(40000) == 0xAA and g711.linear_to_alaw(-40000) == 0x2A


def test_every_code_round_trips():
    for c in range(256):
        u = g711.ulaw_to_linear(c)
        a = g711.alaw_to_linear(c)
        # 0x7F is µ-law's negative zero: it decodes to 0, which encodes as the positive 0xFF
        assert g711.linear_to_ulaw(u) == (0xFF if c == 0x7F else c), c
        assert g711.linear_to_alaw(a) == c, c
        assert ref_ulaw(u) == g711.linear_to_ulaw(u) and ref_alaw(a) == c


def test_decoded_levels_are_the_standards():
    assert g711.ulaw_to_linear(0xFF) == 0 and g711.ulaw_to_linear(0x7F) == 0
    assert g711.ulaw_to_linear(0x80) == 32124 and g711.ulaw_to_linear(0x00) == -32124
    assert g711.alaw_to_linear(0xD5) == 8 and g711.alaw_to_linear(0x55) == -8
    assert g711.alaw_to_linear(0xAA) == 32256 and g711.alaw_to_linear(0x2A) == -32256
    # levels grow with the magnitude code, each law symmetric about 0
    for c in range(128):
        assert g711.ulaw_to_linear(c) == -g711.ulaw_to_linear(c | 0x80)
        assert g711.alaw_to_linear(c) == -g711.alaw_to_linear(c | 0x80)


def test_silence_codes():
    assert g711.linear_to_ulaw(0) == 0xFF and g711.linear_to_ulaw(-1) == 0x7F
    assert g711.linear_to_alaw(0) == 0xD5 and g711.linear_to_alaw(-1) == 0x55


def _level(code, law):
    return 127 - (code & 0x7F) if law == 0 else (code ^ 0x55) & 0x7F


def test_transcoding_keeps_sign_and_order():
    for c in range(256):
        assert g711.alaw_to_ulaw(c) & 0x80 == c & 0x80
        assert g711.ulaw_to_alaw(c) & 0x80 == c & 0x80
    for i in range(1, 128):  # a larger magnitude never maps to a smaller one
        assert _level(g711.alaw_to_ulaw(i ^ 0xD5), 0) >= _level(g711.alaw_to_ulaw((i - 1) ^ 0xD5), 0)
        assert _level(g711.ulaw_to_alaw(i ^ 0xFF), 8) >= _level(g711.ulaw_to_alaw((i - 1) ^ 0xFF), 8)
    # silence maps to silence of the same sign; A-law's smallest level (8) is µ-law's 0xFE (8)
    assert g711.ulaw_to_alaw(0x7F) == 0x55 and g711.ulaw_to_alaw(0xFF) == 0xD5 and g711.alaw_to_ulaw(0xD5) == 0xFE


def _frame():
    return array("h", [(i * 409 - 32768) if i % 3 else -(i * 97) for i in range(160)])


def test_frames_encode_into_preallocated_buffers():
    pcm = _frame()
    le = bytearray(320)
    for i in range(160):
        le[2 * i] = pcm[i] & 0xFF
        le[2 * i + 1] = (pcm[i] >> 8) & 0xFF
    for law, enc in ((g711.PCMU, g711.linear_to_ulaw), (g711.PCMA, g711.linear_to_alaw)):
        dst = bytearray(200)
        assert g711.encode_into(law, dst, pcm) == 160
        assert bytes(dst[:160]) == bytes([enc(x) for x in pcm]) and dst[160:] == bytearray(40)
        dst2 = bytearray(160)
        assert g711.encode_into(law, dst2, le) == 160 and dst2 == dst[:160]
        assert g711.encode_into(law, dst2, memoryview(le), 80) == 80
        assert g711.encode(law, pcm) == dst[:160]


def test_frames_decode_into_preallocated_buffers():
    codes = bytes(range(96, 256))
    for law, dec in ((g711.PCMU, g711.ulaw_to_linear), (g711.PCMA, g711.alaw_to_linear)):
        pcm = array("h", bytes(320))
        assert g711.decode_into(law, pcm, codes) == 160
        assert list(pcm) == [dec(c) for c in codes]
        le = bytearray(320)
        assert g711.decode_into(law, le, codes) == 160
        assert bytes(le) == bytes(pcm)  # little-endian hosts and ESP32 alike
        assert list(g711.decode(law, codes)) == list(pcm)
        out = bytearray(160)
        assert g711.transcode_into(law, out, codes) == 160
        to = g711.ulaw_to_alaw if law == g711.PCMU else g711.alaw_to_ulaw
        assert bytes(out) == bytes([to(c) for c in codes])


def test_a_frame_makes_no_garbage():
    if not IS_MICROPYTHON:
        raise SkipTest("gc.mem_alloc is MicroPython's")
    import gc

    pcm, codes, back = _frame(), bytearray(160), array("h", bytes(320))
    for law in (g711.PCMU, g711.PCMA):
        g711.encode_into(law, codes, pcm)
        gc.collect()
        before = gc.mem_alloc()
        g711.encode_into(law, codes, pcm)
        g711.decode_into(law, back, codes)
        assert gc.mem_alloc() - before == 0


def test_short_buffers_and_unknown_laws_are_refused():
    for call in (
        lambda: g711.encode_into(g711.PCMU, bytearray(159), _frame()),
        lambda: g711.encode_into(g711.PCMU, bytearray(160), _frame(), 161),
        lambda: g711.decode_into(g711.PCMA, bytearray(319), bytes(160)),
        lambda: g711.decode_into(g711.PCMA, array("h", bytes(2)), bytes(2)),
        lambda: g711.encode_into(3, bytearray(160), _frame()),
        lambda: g711.transcode_into(3, bytearray(160), bytes(160)),
    ):
        try:
            call()
        except ValueError:
            continue
        raise AssertionError("accepted")


_VIPER_CHECK = """
import sys
sys.path.insert(0, %r)
from array import array
from zongji.media import g711, g711_viper
assert g711.VIPER
pcm = array("h", range(-32768, 32768))
for law, enc in ((g711.PCMU, g711.linear_to_ulaw), (g711.PCMA, g711.linear_to_alaw)):
    fast = bytearray(65536)
    g711.encode_into(law, fast, pcm)
    for i in range(65536):
        assert fast[i] == enc(pcm[i]), (law, pcm[i])
    codes = bytes(range(256))
    out = array("h", bytes(512))
    g711.decode_into(law, out, codes)
    tc = bytearray(256)
    g711.transcode_into(law, tc, codes)
    dec = g711.ulaw_to_linear if law == g711.PCMU else g711.alaw_to_linear
    to = g711.ulaw_to_alaw if law == g711.PCMU else g711.alaw_to_ulaw
    for c in range(256):
        assert out[c] == dec(c) and tc[c] == to(c)
print("viper same")
"""


def test_viper_path_gives_the_plain_paths_output():
    if g711.VIPER:  # a port with a native emitter runs this file itself
        exec(_VIPER_CHECK % (REPO + "/firmware"))
        return
    if IS_MICROPYTHON:
        raise SkipTest("this port has no native emitter (viper)")
    import os
    import subprocess

    mpy = REPO + "/.venv/bin/micropython"
    if not os.path.exists(mpy):
        if os.environ.get("CI") == "true":
            raise AssertionError("no .venv/bin/micropython (CI=true: the viper check is required)")
        raise SkipTest("no .venv/bin/micropython")
    proc = subprocess.run([mpy, "-c", _VIPER_CHECK % (REPO + "/firmware")], capture_output=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == b"viper same", proc.stdout + proc.stderr

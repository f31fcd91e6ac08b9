"""zongji.media.g711 bit-exact with SpanDSP (Debian libspandsp2, via ctypes: tests/spandsp.py):
all 65,536 linear inputs encoded and all 256 codes decoded and transcoded, both laws, through
the frame calls the device uses. CPython only; skipped without the library, failed under CI."""

import sys
from array import array
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
for _p in (str(REPO / "tests"), str(REPO / "firmware")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import spandsp  # noqa: E402
from zongji.media import g711  # noqa: E402

LAWS = [(g711.PCMU, spandsp.G711_ULAW), (g711.PCMA, spandsp.G711_ALAW)]
IDS = ["ulaw", "alaw"]
ALL = list(range(-32768, 32768))
CODES = bytes(range(256))


@pytest.fixture(autouse=True)
def _lib():
    spandsp.require()


@pytest.mark.parametrize("law,theirs", LAWS, ids=IDS)
def test_every_linear_input_encodes_as_spandsp(law, theirs):
    ours = bytearray(len(ALL))
    g711.encode_into(law, ours, array("h", ALL))
    want = spandsp.g711_encode(theirs, ALL)
    diff = [x for x, a, b in zip(ALL, ours, want) if a != b]
    assert not diff, "%d inputs differ, first %r" % (len(diff), diff[:8])
    one = g711.linear_to_ulaw if law == g711.PCMU else g711.linear_to_alaw
    assert bytes(one(x) for x in ALL) == want


@pytest.mark.parametrize("law,theirs", LAWS, ids=IDS)
def test_every_code_decodes_as_spandsp(law, theirs):
    assert list(g711.decode(law, CODES)) == spandsp.g711_decode(theirs, CODES)


@pytest.mark.parametrize("law,theirs", LAWS, ids=IDS)
def test_every_code_transcodes_as_spandsp(law, theirs):
    # g711_transcode with an A-law state turns A-law into µ-law, with a µ-law state the reverse
    ours = bytearray(256)
    g711.transcode_into(law, ours, CODES)
    want = spandsp.g711_transcode(spandsp.G711_ALAW if law == g711.PCMA else spandsp.G711_ULAW, CODES)
    assert bytes(ours) == want

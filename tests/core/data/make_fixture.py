"""Regenerate bundle_fixture.zjb (the MicroPython tests load it; CPython checks it is current)."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), os.path.join(HERE, "..", "..", "..", "firmware")]

from _sites import ext_dicts, raw_site  # noqa: E402
from zongji.site import bundle, schema  # noqa: E402

site, _ = schema.normalize(raw_site())
with open(os.path.join(HERE, "bundle_fixture.zjb"), "wb") as f:
    f.write(bundle.encode(site, ext_dicts()))

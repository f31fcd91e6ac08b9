"""Regenerate bundle_fixture.zjb and bundle_fixture_b.zjb (the MicroPython tests load them;
CPython checks they are current). The second is the first with one staff row changed (204's
name) and one added (206): what a sync of a small edit sends."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), os.path.join(HERE, "..", "..", "..", "firmware")]

from _sites import STAFF, ext_dicts, raw_site  # noqa: E402
from zongji.site import bundle, schema  # noqa: E402

EDITED = [r if r[0] != "204" else [r[0], "John Smythe"] + r[2:] for r in STAFF]
EDITED.append(["206", "Chen Jing", "Sales", "s3cret-206-x", "", "staff", 0, "", "24336 5464"])


def make(rows=None):
    site, _ = schema.normalize(raw_site())
    return bundle.encode(site, ext_dicts(rows))


if __name__ == "__main__":
    from zongji.admin import delta

    for name, rows in (("bundle_fixture.zjb", None), ("bundle_fixture_b.zjb", EDITED)):
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(make(rows))
    with open(os.path.join(HERE, "bundle_fixture_b.delta"), "wb") as f:
        f.write(delta.make(make(), make(EDITED)))

"""The device's boot path (firmware/main.py) in MicroPython's own filesystem.

Runs only under MicroPython: main.py works on absolute paths (/site.zjb) that on the test
port live in the interpreter's private in-memory filesystem.
"""

import os

from _support import IS_MICROPYTHON, REPO, SkipTest, read_bytes, read_text

SITE = "/site.zjb"
PREV = "/site.prev.zjb"
BAD = "/site.bad.zjb"


def _need_micropython():
    if not IS_MICROPYTHON:
        raise SkipTest("main.py boots in MicroPython's own filesystem")


def _good():
    return read_bytes(REPO + "/tests/core/data/bundle_fixture.zjb")


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def _clean():
    for p in (SITE, PREV, BAD):
        try:
            os.remove(p)
        except OSError:
            pass


def _boot():
    _need_micropython()
    ns = {"__name__": "main"}
    exec(read_text(REPO + "/firmware/main.py"), ns)  # runs main() as the device would
    return ns


def test_boot_loads_the_site():
    _need_micropython()
    _clean()
    _write(SITE, _good())
    site = _boot()["load_site"]()
    assert site is not None and len(site.directory) == 7
    _clean()


def test_boot_without_a_site_waits_for_a_sync():
    _need_micropython()
    _clean()
    assert _boot()["load_site"]() is None


def test_a_damaged_site_is_rolled_back_to_the_previous_one():
    _need_micropython()
    _clean()
    good = _good()
    _write(SITE, good.replace("王小明".encode(), "王大明".encode()))  # hash no longer matches
    _write(PREV, good)
    ns = _boot()  # main() already rolled back at boot
    exists = ns["_exists"]  # main.py's own
    assert not exists(PREV) and exists(BAD)
    assert read_bytes(SITE) == good
    site = ns["load_site"]()
    assert site.extension("201").name == "王小明"
    _clean()

"""The device's boot path: the site bundle loaded with rollback (zongji/shell/sitefile.py).

Runs under CPython and MicroPython alike, in a folder of its own made the current directory:
the device works on paths relative to it ("/" on a board, the flash folder on the virtual
device). The whole boot (main.py over the real unix port) is tests/device/test_vdevice.py.
"""

import os

from _support import REPO, read_bytes
from zongji.shell import sitefile

FOLDER = "zongji-boot-test"


def _good():
    return read_bytes(REPO + "/tests/core/data/bundle_fixture.zjb")


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


class _InFolder:
    """cd into a fresh FOLDER (no os.path, no tempfile on MicroPython), and back."""

    def __enter__(self):
        self.back = os.getcwd()
        base = "/tmp" if _isdir("/tmp") else self.back
        os.chdir(base)
        if _isdir(FOLDER):
            for name in os.listdir(FOLDER):
                os.remove(FOLDER + "/" + name)
        else:
            os.mkdir(FOLDER)
        os.chdir(FOLDER)
        return self

    def __exit__(self, *exc):
        for name in os.listdir("."):
            os.remove(name)
        os.chdir(self.back)
        return False


def _isdir(path):
    try:
        return os.stat(path)[0] & 0x4000 != 0
    except OSError:
        return False


def _quiet(text):
    pass


def test_boot_loads_the_site():
    with _InFolder():
        _write(sitefile.SITE, _good())
        site, status = sitefile.load_site(_quiet)
        assert site is not None and len(site.directory) == 7
        assert status == "loaded"


def test_boot_without_a_site_waits_for_a_sync():
    with _InFolder():
        said = []
        site, status = sitefile.load_site(said.append)
        assert site is None and status == "no site"
        assert "zongji sync" in said[0]


def test_a_damaged_site_is_rolled_back_to_the_previous_one():
    with _InFolder():
        good = _good()
        _write(sitefile.SITE, good.replace("王小明".encode(), "王大明".encode()))  # hash no longer matches
        _write(sitefile.PREV, good)
        site, status = sitefile.load_site(_quiet)
        assert status.startswith("rolled back")
        assert site.extension("201").name == "王小明"
        assert not sitefile.exists(sitefile.PREV) and sitefile.exists(sitefile.BAD)
        assert read_bytes(sitefile.SITE) == good
        site, status = sitefile.load_site(_quiet)  # the next boot loads the restored one
        assert status == "loaded"


def test_a_damaged_site_without_a_previous_one_is_no_site():
    with _InFolder():
        _write(sitefile.SITE, b"not a bundle\n")
        site, status = sitefile.load_site(_quiet)
        assert site is None and "no previous" in status

"""The virtual device's tests: the firmware on the real MicroPython unix port, on loopback."""

import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _vdev import Phone, VDevice, free_port, secret_of  # noqa: E402
from zongji_companion import vdevice  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(config, items):
    try:
        vdevice.micropython()
    except vdevice.VDeviceError as e:
        if IN_CI:
            return  # the tests fail, loudly, under CI
        skip = pytest.mark.skip(reason=str(e))
        for item in items:
            if "tests/device" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture
def site(tmp_path):
    """`zongji init` in tmp_path/site."""
    from click.testing import CliRunner
    from zongji_companion.cli import main

    folder = tmp_path / "site"
    res = CliRunner().invoke(main, ["init", str(folder)])
    assert res.exit_code == 0, res.output
    return folder


@pytest.fixture
def devices():
    """start(site, flash=None, board=..., port=None, more=(cli args)) -> VDevice (listening); all killed at the end."""
    started = []

    def start(site, flash, board="esp32-wrover", port=None, wait=True, more=()):
        dev = VDevice.run(site, port or free_port(), flash, board, *more)
        started.append(dev)
        if wait:
            dev.listening()
        return dev

    def boot(flash, heap=8000000):
        dev = VDevice.boot(flash, heap)
        started.append(dev)
        return dev

    start.boot = boot
    yield start
    bugs = []
    for dev in started:
        dev.kill()
        bugs += [ln for ln in dev.rest() if "internal error" in ln or "Traceback" in ln]
    assert not bugs, "the device logged a bug:\n%s" % "\n".join(bugs)


@pytest.fixture
def phones(site):
    made = []

    def make(number, server):
        p = Phone(number, secret_of(site, number), server)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


@pytest.fixture
def micropython():
    return vdevice.micropython()


@pytest.fixture
def mpy_env():
    return dict(os.environ, MICROPYPATH=vdevice.micropypath())


def copy_flash(src, dst):
    shutil.copytree(src, dst)

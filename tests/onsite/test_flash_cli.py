"""`zongji flash` end to end against a virtual board (vboard.py): real esptool into the fake ROM,
then real mpremote into the real MicroPython unix port that stands in for the image once the
loader starts it, then the app it uploaded answering `status` over the same pty and phones over
SIP. The MicroPython image is synthetic (synthimage.py: no release .bin can be downloaded here).

What an installer would notice: one command, five progress lines, the switchboard answering at
the end; and each failure they meet refused with what to do, before anything is erased."""

import json
import os
import socket
import stat
import subprocess
import sys

import pytest
import synthimage
from vboard import VirtualBoard
from zongji_companion import boards

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "device"))
from _vdev import Phone, secret_of  # noqa: E402

TIMEOUT = 180  # one whole flash is ~15 s here; bounded so nothing hangs


def _free(kind=socket.SOCK_DGRAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _zongji(*args, cwd=None):
    # in a folder of the test's: without --site, flash keeps the token in ./zongji-tokens
    proc = subprocess.run([sys.executable, "-m", "zongji_companion"] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=TIMEOUT, cwd=cwd or _HOME[0])  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


_HOME = [None]


@pytest.fixture(autouse=True)
def _home(tmp_path):
    _HOME[0] = str(tmp_path)
    yield
    _HOME[0] = None


@pytest.fixture
def site(tmp_path):
    code, out, err = _zongji("init", tmp_path / "site")
    assert code == 0, err
    return tmp_path / "site"


@pytest.fixture
def board(tmp_path):
    made = []

    def make(chip="esp32", name="esp32-wrover", mode="bootloader", flash_size=4 << 20):
        spec = boards.load(name)
        b = VirtualBoard(tmp_path / ("board%d" % len(made)), chip=chip, board=spec, mode=mode,
                         flash_size=flash_size).start()  # fmt: skip
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "ESP32_GENERIC-SPIRAM-v1.29.0.bin"
    path.write_bytes(synthimage.release_image("esp32"))
    return path


def _flash(b, *args):
    sip = _free()
    code, out, err = _zongji("flash", "--board", "esp32-wrover", "--port", b.port, "--sip-port", sip,
                             "--sip-bind", "127.0.0.1", "--admin-port", "0", *args)  # fmt: skip
    return code, out, err, sip


def test_flash_turns_a_blank_board_into_the_switchboard_and_updates_it(board, image, site):
    b = board()
    code, out, err, sip = _flash(b, "--firmware", image, "--site", site, "--json")
    assert code == 0, err
    report = json.loads(out)
    for n in range(1, 6):
        assert "[%d/5]" % n in err  # a progress line per step
    assert report["chip"] == "esp32" and report["site"] == "Shanghai Office 上海办事处"
    # MicroPython at the board's offset, as esptool wrote and verified it
    data = image.read_bytes()
    assert b.flash(0x1000, len(data)) == data
    # the app on the board's filesystem, compiled for the arch the board reported; no sources
    names = [os.path.relpath(os.path.join(r, n), b.fs) for r, _, ns in os.walk(b.fs) for n in ns]
    assert "zongji/shell/device.mpy" in names and not [n for n in names if n.startswith("zongji") and n.endswith(".py")]
    assert b.boots >= 2 and b.app_running()  # the REPL, then the uploaded main.py
    # the token: printed once (--json), kept where only its owner reads it
    token_file = report["token_file"]
    assert open(token_file).read().strip() == report["token"]
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert json.loads(open(os.path.join(b.fs, "secrets.json")).read())["admin_token"] == report["token"]
    # what the branch bought it for: a phone registers with its password, over SIP
    phone = Phone("201", secret_of(site, "201"), ("127.0.0.1", sip))
    try:
        assert phone.register().status == 200
    finally:
        phone.close()
    code, out, err = _zongji("status", "--device", b.port, "--token-file", token_file, "--json")
    assert code == 0 and json.loads(out)["version"] == report["version"], err

    # the board already runs it: --no-image puts a changed site on it (the running app is stopped
    # by mpremote's Ctrl-C, as on a board, and boots again with it)
    csv = site / "staff.csv"
    csv.write_text(csv.read_text(encoding="utf-8-sig") + "290,New Person,Sales,Abcdefgh12345678,,staff,,\n",
                   encoding="utf-8")  # fmt: skip
    code, out, err, _ = _flash(b, "--no-image", "--site", site, "--json", "--token", report["token"])
    assert code == 0, err
    again = json.loads(out)
    assert again["version"] != report["version"] and "erase" not in err


def test_what_would_brick_or_mislead_is_refused_before_anything_is_erased(board, image, tmp_path):
    b = board()
    before = b.flash(0, 0x10000)
    idf = tmp_path / "hello_world.bin"
    idf.write_bytes(synthimage.release_image("esp32", project="hello_world"))
    code, out, err, _ = _flash(b, "--firmware", idf)
    assert code == 1 and "ESP-IDF" in err and "nothing was erased" in err, err
    s3 = tmp_path / "s3.bin"
    s3.write_bytes(synthimage.release_image("esp32s3"))
    code, out, err, _ = _flash(b, "--firmware", s3)
    assert code == 1 and "ESP32-S3" in err and "nothing was erased" in err, err
    assert b.flash(0, 0x10000) == before and "FLASH_BEGIN" not in b.served

    wrong = board(chip="esp32s3")  # an S3 on the desk, the WROVER's board file named
    code, out, err, _ = _flash(wrong, "--firmware", image)
    assert code == 1 and "is an ESP32-S3" in err and "esp32-wrover" in err, err
    assert "FLASH_BEGIN" not in wrong.served and "ERASE_FLASH" not in wrong.served

    running = board(mode="app")  # not held in its bootloader
    code, out, err, _ = _flash(running, "--firmware", image)
    assert code == 1 and "not in its bootloader" in err and "BOOT" in err, err

    code, out, err, _ = _flash(b, "--firmware", image, "--port", tmp_path / "ttyUSB9")
    assert code == 1 and "no such port" in err.lower(), err
    code, out, err, _ = _flash(b)
    assert code == 1 and "--firmware" in err and "--no-image" in err


def test_wifi_that_does_not_join_says_why_and_the_right_one_answers_over_the_network(board, image, site):
    b = board()
    os.makedirs(b.fs, exist_ok=True)
    with open(os.path.join(b.fs, "vdevice.json"), "w") as f:  # the networks in reach of the board
        json.dump({"wifi": {"Office": "right-password"}}, f)
    code, out, err, _ = _flash(b, "--firmware", image, "--site", site, "--wifi", "Office",
                               "--wifi-password", "wrong-password")  # fmt: skip
    assert code == 1 and "wrong password" in err and "Office" in err, err
    admin = _free(socket.SOCK_STREAM)
    sip = _free()
    code, out, err = _zongji("flash", "--board", "esp32-wrover", "--port", b.port, "--no-image", "--site", site,
                             "--wifi", "Office", "--wifi-password", "right-password", "--sip-port", sip,
                             "--sip-bind", "127.0.0.1", "--admin-port", admin, "--json")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["network"]["url"] == "http://127.0.0.1:%d" % admin
    code, out, err = _zongji("status", "--device", report["network"]["url"], "--token", report["token"])
    assert code == 0 and "Shanghai" in out, err


def _x64_board(tmp_path):
    # `zongji image` compiles for the board file's arch; a virtual board runs the unix port's
    # (x64), as `zongji flash` learns from it: a board file saying so stands in for the WROVER's
    spec = json.loads(open(boards.path_of("esp32-wrover")).read())
    spec.update(name="esp32-wrover-x64", mpy_arch="x64")
    x64 = tmp_path / "esp32-wrover-x64.json"
    x64.write_text(json.dumps(spec))
    return x64


def test_a_factory_image_boots_with_its_site_and_gets_this_boards_own_token(board, image, site, tmp_path):
    x64 = _x64_board(tmp_path)
    factory = tmp_path / "factory.bin"
    code, out, err = _zongji("image", "--board", x64, "--firmware", image, "--site", site, "-o", factory)
    assert code == 0, err
    b = board()
    code, out, err, _ = _flash(b, "--firmware", factory, "--json", "--board", x64)
    assert code == 0, err
    report = json.loads(out)
    assert report["site"] == "Shanghai Office 上海办事处" and report["files"] == 2  # config + secrets only
    assert report["token_file"].startswith("zongji-tokens") and (tmp_path / report["token_file"]).exists()
    # the site came from the image's littlefs partition, as MicroPython mounts it
    assert open(os.path.join(b.fs, "site.zjb"), "rb").read().startswith(b'{"count":12')
    code, out, err, _ = _flash(b, "--firmware", factory, "--site", site, "--board", x64)
    assert code == 1 and "factory image" in err
    # one made for the real board's arch is refused before it is written over this one
    real = tmp_path / "factory-xtensawin.bin"
    code, out, err = _zongji("image", "--board", "esp32-wrover", "--firmware", image, "--site", site, "-o", real)
    assert code == 0, err
    code, out, err, _ = _flash(b, "--firmware", real, "--board", x64)
    assert code == 1 and "compiled for xtensawin" in err and "nothing was erased" in err, err


def test_a_flash_chip_of_another_size_than_the_board_file_is_caught_before_the_erase(board, image, site, tmp_path):
    # a 2 MB module sold as the 4 MB board: MicroPython's app partition alone fills it to 2 MB
    small = board(flash_size=2 << 20)
    before = small.flash(0, 0x10000)
    code, out, err, _ = _flash(small, "--firmware", image)
    assert code == 1 and "has 2 MB of flash" in err and "no room for its filesystem" in err, err
    assert "nothing was erased" in err and "FLASH_BEGIN" not in small.served and small.flash(0, 0x10000) == before

    # a factory image's filesystem is laid out for the board file's 4 MB: on an 8 MB chip
    # MicroPython would look for it elsewhere and format it empty, so it is refused
    x64 = _x64_board(tmp_path)
    factory = tmp_path / "factory.bin"
    code, out, err = _zongji("image", "--board", x64, "--firmware", image, "--site", site, "-o", factory)
    assert code == 0, err
    big = board(flash_size=8 << 20)
    code, out, err, _ = _flash(big, "--firmware", factory, "--board", x64)
    assert code == 1 and "has 8 MB of flash" in err and "format it empty" in err and '"8MB"' in err, err
    assert "FLASH_BEGIN" not in big.served and "nothing was erased" in err

    # the release image on it is fine (the filesystem takes the whole chip): said, and flashed
    code, out, err, _ = _flash(big, "--firmware", image, "--json")
    assert code == 0, err
    assert "the chip has 8 MB of flash, --board esp32-wrover says 4MB" in err
    assert big.flash(0x1000, len(image.read_bytes())) == image.read_bytes()


def test_device_blank_is_a_board_with_micropython_only_that_flash_no_image_fills(site, tmp_path):
    port = tmp_path / "ttyBLANK"
    proc = subprocess.Popen([sys.executable, "-m", "zongji_companion", "device", "blank", "--serial", str(port),
                             "--flash", str(tmp_path / "fs"), "--baud", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    try:
        assert "blank board esp32-wrover" in proc.stdout.readline()
        proc.stdout.readline()  # the serial line
        sip = _free()
        code, out, err = _zongji("flash", "--board", "esp32-wrover", "--port", port, "--no-image", "--site", site,
                                 "--sip-port", sip, "--sip-bind", "127.0.0.1", "--admin-port", "0",
                                 "--json")  # fmt: skip
        assert code == 0, err
        assert json.loads(out)["site"] == "Shanghai Office 上海办事处"
        assert (tmp_path / "fs" / "zongji" / "shell" / "device.mpy").exists()
    finally:
        os.killpg(proc.pid, 2)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def test_flash_sh_makes_its_own_environment_once_and_flashes_through_zongji_flash(board, image, tmp_path):
    """An installer with Python but nothing installed: ./flash.sh makes the venv, installs zongji
    (from PyPI, as they would), and is `zongji flash` from then on, its exit codes included."""
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "flash.sh")
    venv = tmp_path / "venv"
    env = dict(os.environ, ZONGJI_VENV=str(venv), PYTHON=sys.executable)
    env.pop("VIRTUAL_ENV", None)

    def run(*args, **more):
        proc = subprocess.run([script] + [str(a) for a in args], capture_output=True, text=True, timeout=TIMEOUT,
                              cwd=str(tmp_path), env=dict(env, **more))  # fmt: skip
        return proc.returncode, proc.stdout, proc.stderr

    code, out, err = run("--help")
    assert code == 0 and "Usage: zongji flash" in out and "Turn a board into" in out, err
    assert "making a Python environment" in err and (venv / "bin" / "zongji").exists()
    code, out, err = run("--board", "nope", "--no-image")  # installed once: straight to zongji
    assert code == 1 and "installing" not in err and "no board 'nope'" in err and "esp32-wrover" in err, err
    code, out, err = run("--bogus")
    assert code == 2 and "No such option" in err
    code, out, err = run("--help", PYTHON=str(tmp_path / "python9"), ZONGJI_VENV=str(tmp_path / "none"))
    assert code == 1 and "install Python 3.11 or newer" in err and not (tmp_path / "none").exists()

    b = board()
    sip = _free()
    code, out, err = run("--board", "esp32-wrover", "--port", b.port, "--firmware", image, "--sip-port", sip,
                         "--sip-bind", "127.0.0.1", "--admin-port", "0", "--json")  # fmt: skip
    assert code == 0 and "[5/5]" in err, err
    assert json.loads(out)["chip"] == "esp32" and b.app_running()
    assert b.flash(0x1000, len(image.read_bytes())) == image.read_bytes()

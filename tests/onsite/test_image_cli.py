"""`zongji image` through the CLI on the example site (zongji init), with a synthetic release image
(tests/onsite/synthimage.py) standing in for micropython.org's .bin: the file it writes holds the
image unchanged at the start and a littlefs partition at the vfs offset that littlefs-python and
the real MicroPython unix port (its own vfs.VfsLfs2) both read back; real esptool accepts the app
inside it."""

import hashlib
import json
import os
import subprocess
import sys

import pytest
import synthimage
from click.testing import CliRunner
from zongji_companion import appfiles, lfsimage
from zongji_companion.cli import main
from zongji_companion.vdevice import FIRMWARE, micropython


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("image") / "site"
    result = run("init", folder)
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture(scope="module")
def bundle(site, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "site.zjb"
    result = run("bundle", site, "-o", out)
    assert result.exit_code == 0, result.output
    return out.read_bytes()


@pytest.fixture(scope="module")
def wrover(site, tmp_path_factory):
    """(firmware bytes, factory bytes, --json result) of the example site on the WROVER."""
    tmp = tmp_path_factory.mktemp("wrover")
    fw = synthimage.release_image("esp32")
    (tmp / "fw.bin").write_bytes(fw)
    result = run("image", "--board", "esp32-wrover", "--firmware", tmp / "fw.bin", "--site", site,
                 "-o", tmp / "factory.bin", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    return fw, (tmp / "factory.bin").read_bytes(), json.loads(result.stdout)


def partition(factory, base=0x1000, offset=0x200000, size=0x200000):
    return factory[offset - base : offset - base + size]


def test_the_factory_file_holds_micropython_unchanged_then_the_partition_to_the_end_of_flash(wrover):
    fw, factory, result = wrover
    assert factory[: len(fw)] == fw
    assert len(factory) == (4 << 20) - 0x1000  # written at 0x1000, to the end of the 4 MB flash
    assert set(factory[len(fw) : 0x200000 - 0x1000]) == {0xFF}
    assert result["write_at"] == 0x1000
    assert result["esptool"].startswith("esptool --chip esp32 write-flash 0x1000 ")
    assert result["sha256"] == hashlib.sha256(factory).hexdigest()
    assert result["partition"]["offset"] == 0x200000 and result["partition"]["size"] == 0x200000


def test_the_partition_reads_back_file_by_file_as_the_firmware_reads_them(wrover, bundle):
    _fw, factory, result = wrover
    files = lfsimage.read(partition(factory))
    with open(os.path.join(FIRMWARE, "main.py"), "rb") as f:
        assert files["main.py"] == f.read()
    assert files["site.zjb"] == bundle
    assert {"lib/microdot/__init__.mpy", "lib/microdot/microdot.mpy", "lib/microdot/helpers.mpy"} <= set(files)
    mpy = {p: b for p, b in files.items() if p.startswith("zongji/")}
    assert "zongji/shell/device.mpy" in mpy and "zongji/__init__.mpy" in mpy
    assert all(p.endswith(".mpy") for p in mpy)
    # .mpy header: 'M', version 6, then the native arch in the top bits: 10 is xtensawin
    assert {(b[:2], b[2] >> 2) for b in mpy.values() if b[2] >> 2} == {(b"M\x06", 10)}
    assert sum(len(b) for b in mpy.values()) == result["app"]["mpy_bytes"] > 100_000
    cfg = json.loads(files["config.json"])
    assert (cfg["sip_port"], cfg["bind"], cfg["board"]["name"]) == (5060, "0.0.0.0", "esp32-wrover")
    assert json.loads(files["board.json"])["name"] == "esp32-wrover"
    # no secrets: no token file, no Wi-Fi network or password (zongji flash adds them per device)
    assert "secrets.json" not in files and "wifi" not in cfg
    assert b"vdevice-password" not in factory
    assert result["partition"]["used"] == lfsimage.used_bytes(partition(factory)) > result["app"]["total_bytes"]
    # the fit check's count of the app (whole blocks, a metadata pair per folder) and the bundle
    # is not less than what littlefs really used
    assert result["fit"]["app"] + result["fit"]["bundle"] // 3 >= result["partition"]["used"]


def test_real_esptool_accepts_the_app_at_its_offset_in_the_factory_file(wrover, tmp_path):
    _fw, factory, _ = wrover
    (tmp_path / "app.bin").write_bytes(factory[0x10000 - 0x1000 : 0x200000 - 0x1000].rstrip(b"\xff"))
    proc = subprocess.run([sys.executable, "-m", "esptool", "image-info", str(tmp_path / "app.bin")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Detected image type: ESP32" in out and "Application Information" in out and "invalid" not in out


MOUNT = """
import os, sys, vfs, hashlib, binascii
class Partition:
    # a block device as MicroPython's docs describe one: blocks of 4096 bytes in a bytearray
    def __init__(self, path):
        self.data = bytearray(os.stat(path)[6])
        with open(path, "rb") as f:
            f.readinto(self.data)
    def readblocks(self, n, buf, off=0):
        at = n * 4096 + off
        buf[:] = self.data[at:at + len(buf)]
    def writeblocks(self, n, buf, off=None):
        at = n * 4096 + (off or 0)
        self.data[at:at + len(buf)] = buf
    def ioctl(self, op, arg):
        if op == 4:
            return len(self.data) // 4096
        if op == 5:
            return 4096
        if op == 6:
            return 0
vfs.mount(vfs.VfsLfs2(Partition(sys.argv[1])), "/flash")
print(sorted(os.listdir("/flash")))
for name in sys.argv[2:]:
    with open("/flash/" + name, "rb") as f:
        data = f.read()
    print(name, len(data), binascii.hexlify(hashlib.sha256(data).digest()).decode())
"""


def test_the_micropython_unix_port_mounts_the_partition_and_reads_the_files_back(wrover, tmp_path):
    _fw, factory, _ = wrover
    part = partition(factory)
    (tmp_path / "vfs.bin").write_bytes(part)
    (tmp_path / "mount.py").write_text(MOUNT)
    names = ["main.py", "site.zjb", "config.json", "zongji/shell/device.mpy"]
    proc = subprocess.run([micropython(), "-X", "heapsize=16M", str(tmp_path / "mount.py"), str(tmp_path / "vfs.bin")]
                          + names, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    ours = lfsimage.read(part)
    top = sorted(set(p.split("/")[0] for p in ours))
    assert lines[0] == repr(top).replace('"', "'")
    for name, line in zip(names, lines[1:]):
        assert line == "%s %d %s" % (name, len(ours[name]), hashlib.sha256(ours[name]).hexdigest())


def test_an_s3_image_is_written_at_0_with_an_8_mb_partition_table(site, tmp_path):
    (tmp_path / "fw.bin").write_bytes(synthimage.release_image("esp32s3", flash="8MB"))
    result = run("image", "--board", "esp32-s3-octal", "--firmware", tmp_path / "fw.bin", "--site", site,
                 "-o", tmp_path / "f.bin")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "esptool --chip esp32s3 write-flash 0x0 " in result.output
    factory = (tmp_path / "f.bin").read_bytes()
    assert len(factory) == 8 << 20
    assert "site.zjb" in lfsimage.read(factory[0x200000:])


def test_a_frozen_core_board_gets_no_zongji_files(site, tmp_path):
    (tmp_path / "fw.bin").write_bytes(synthimage.release_image("esp32", frozen=True))
    result = run("image", "--board", "wt32-eth01", "--firmware", tmp_path / "fw.bin", "--site", site,
                 "-o", tmp_path / "f.bin")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "no zongji/*.mpy: wt32-eth01 runs the core frozen into its image" in result.output
    files = lfsimage.read(partition((tmp_path / "f.bin").read_bytes()))
    assert not [p for p in files if p.startswith("zongji/")] and "main.py" in files and "site.zjb" in files
    assert json.loads(files["config.json"])["lan"]["phy"] == "LAN8720"


def test_progress_lines_and_the_esptool_command(wrover, site, tmp_path):
    (tmp_path / "fw.bin").write_bytes(wrover[0])
    result = run("image", "--board", "esp32-wrover", "--firmware", tmp_path / "fw.bin", "--site", site,
                 "-o", tmp_path / "f.bin")  # fmt: skip
    assert result.exit_code == 0, result.output
    for step in ("checking", "MicroPython v1.29.0 for the ESP32", "compiling the app", "building the littlefs",
                 "merging", "verifying: reading the partition back file by file"):  # fmt: skip
        assert step in result.output
    assert "esptool --chip esp32 write-flash 0x1000 %s" % (tmp_path / "f.bin") in result.output
    assert (tmp_path / "f.bin").read_bytes() == wrover[1]  # the same inputs make the same file


def test_an_image_that_is_not_micropython_is_refused_and_nothing_is_written(site, tmp_path):
    (tmp_path / "hello.bin").write_bytes(synthimage.release_image("esp32", project="hello_world", banner=""))
    result = run("image", "--board", "esp32-wrover", "--firmware", tmp_path / "hello.bin", "--site", site,
                 "-o", tmp_path / "f.bin")  # fmt: skip
    assert result.exit_code == 1
    assert "this is an ESP-IDF app 'hello_world', not MicroPython: download ESP32_GENERIC-SPIRAM-" in result.output
    assert not (tmp_path / "f.bin").exists()


def test_a_site_that_does_not_fit_the_partition_is_refused(site, tmp_path):
    (tmp_path / "fw.bin").write_bytes(synthimage.release_image("esp32"))
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "greeting.ulaw").write_bytes(b"\x7f" * (1200 * 1024))  # 150 s of 8 kHz audio, kept twice
    result = run("image", "--board", "esp32-wrover", "--firmware", tmp_path / "fw.bin", "--site", site,
                 "--prompts", prompts, "-o", tmp_path / "f.bin")  # fmt: skip
    assert result.exit_code == 1
    assert "the site does not fit the esp32-wrover's filesystem partition (2.00 MB at 0x200000)" in result.output
    assert "nothing written" in result.output
    assert not (tmp_path / "f.bin").exists()


def test_the_compiled_core_is_cached_by_source_mpy_cross_and_arch(tmp_path, monkeypatch):
    monkeypatch.setenv("ZONGJI_CACHE", str(tmp_path))
    first = appfiles.compiled_core("xtensawin")
    made = sorted(os.listdir(tmp_path))
    assert appfiles.compiled_core("xtensawin") == first and sorted(os.listdir(tmp_path)) == made
    x64 = appfiles.compiled_core("x64")
    assert set(x64) == set(first) and x64 != first and len(os.listdir(tmp_path)) == len(made) + 1


def test_the_printed_esptool_command_writes_it_into_a_fake_board(wrover, fake_rom, tmp_path):
    """Real esptool (its own command line, as printed) into tests/onsite/fakerom.py's flash chip."""
    fw, factory, result = wrover
    (tmp_path / "factory.bin").write_bytes(factory)
    rom = fake_rom(chip="esp32", flash_size=4 << 20)
    printed = result["esptool"].split()
    assert printed[:5] == ["esptool", "--chip", "esp32", "write-flash", "0x1000"]
    argv = [sys.executable, "-m", "esptool", "--chip", "esp32", "--port", rom.port, "--before", "no-reset",
            "--after", "no-reset", "write-flash", "0x1000", str(tmp_path / "factory.bin")]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Hash of data verified." in out, out
    assert rom.flash(0x1000, len(fw)) == fw
    files = lfsimage.read(rom.flash(0x200000, 0x200000))
    assert files == lfsimage.read(partition(factory)) and "site.zjb" in files

"""The admin protocol over USB serial, end to end: the real firmware on the virtual device with
its UART on a pty (`zongji device run --serial PATH`), the CLI's Device over seriallink.

Faults go through a small bridge between the CLI and PATH (FaultLine): line noise, dropped and
duplicated bytes, and a cable pulled mid-sync (the CLI's pty closed). After each, the device
runs the old or the new site, and its site.zjb is that one. Then the recovery path: Ctrl-C stops
the app, and real `mpremote connect PATH resume fs ls` lists the flash, while the CLI says the
app is not running.
"""

import json
import os
import subprocess
import sys
import threading
import time
import tty

import pytest
from _vdev import LOOPBACK  # noqa: F401  (the device's helpers, conftest puts them on the path)
from zongji_companion import devicelink

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "bench"))

TOKEN = "serial-test-token-0123456789"


def _bundle(tmp_path, n, seed):
    from core_bench import make_site

    data, _ = make_site(str(tmp_path / ("site%d-%d" % (n, seed))), n, seed=seed)
    return data


class FaultLine:
    """A pty for the CLI, bridged to the device's port through fault functions (bytes -> bytes)."""

    def __init__(self, device_path, to_device=None, to_host=None):
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self.dev = os.open(device_path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.dev)
        self.cut = threading.Event()
        self.to_device_bytes = 0
        for src, dst, fault in ((self.master, self.dev, to_device), (self.dev, self.master, to_host)):
            threading.Thread(target=self._copy, args=(src, dst, fault), daemon=True).start()

    def _copy(self, src, dst, fault):
        import select

        while not self.cut.is_set():
            try:
                ready, _, _ = select.select([src], [], [], 0.1)
                if not ready:
                    continue
                data = os.read(src, 4096)
            except OSError:
                return
            if src == self.master:
                self.to_device_bytes += len(data)
            if fault is not None:
                data = fault(data, self)
            if self.cut.is_set():
                return
            try:
                os.write(dst, data)
            except OSError:
                return

    def pull(self):
        """The cable pulled: the CLI's side of the line goes away."""
        self.cut.set()
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def close(self):
        if not self.cut.is_set():
            self.pull()
        time.sleep(0.2)
        try:
            os.close(self.dev)
        except OSError:
            pass


def _rng(seed):
    import random

    return random.Random(seed)


def noise(seed, every):
    r = _rng(seed)

    def fault(data, line):
        b = bytearray(data)
        for i in range(len(b)):
            if r.randrange(every) == 0:
                b[i] = r.choice([x for x in range(256) if x != 3])  # 0x03 would stop the app, as on a board
        return bytes(b)

    return fault


def drops(seed, every):
    r = _rng(seed)
    return lambda data, line: bytes(x for x in data if r.randrange(every))


def dups(seed, every):
    r = _rng(seed)

    def fault(data, line):
        out = bytearray()
        for x in data:
            out.append(x)
            if r.randrange(every) == 0:
                out.append(x)
        return bytes(out)

    return fault


@pytest.fixture
def serial_device(site, devices, tmp_path):
    port = str(tmp_path / "ttyZJ0")
    flash = tmp_path / "flash"
    dev = devices(site, flash, more=("--serial", port, "--baud", "0", "--token", TOKEN))
    dev.serial = port
    dev.flash = flash
    return dev


def _flash_bundle(dev):
    with open(os.path.join(dev.flash, "site.zjb"), "rb") as f:
        return f.read()


def _connect(url):
    return devicelink.connect(url, TOKEN)


def test_status_and_put_bundle_over_serial(serial_device, tmp_path):
    d = _connect(serial_device.serial)
    try:
        st = d.status()
        assert st["extensions"] == 12 and st["version"]
        new = _bundle(tmp_path, 200, 1)
        seen = []
        answer = d.put_bundle(new, st["version"], progress=lambda a, b: seen.append((a, b)))
        st2 = d.status()
        assert st2["version"] != st["version"] and st2["extensions"] == 212, answer
        assert _flash_bundle(serial_device) == new
        assert seen and seen[-1][0] == seen[-1][1]
        assert d.bundle() == new
        assert d.link.sent > 0 and d.link.received > 0
    finally:
        d.close()


@pytest.mark.parametrize(
    "faults",
    [
        {"to_device": noise(1, 600), "to_host": noise(2, 600)},
        {"to_device": drops(3, 500), "to_host": drops(4, 500)},
        {"to_device": dups(5, 500), "to_host": dups(6, 500)},
    ],
    ids=["noise", "dropped", "duplicated"],
)
def test_faulty_line_sync_completes(serial_device, tmp_path, faults):
    line = FaultLine(serial_device.serial, **faults)
    try:
        d = _connect(line.path)
        base = d.status()["version"]
        new = _bundle(tmp_path, 150, 2)
        d.put_bundle(new, base)
        assert d.status()["version"] != base
        assert _flash_bundle(serial_device) == new
        assert d.link.ep.retransmits + d.link.ep.bad > 0  # the faults did happen
        d.close()
    finally:
        line.close()


def test_cable_pulled_mid_sync_applies_nothing_partial(serial_device, tmp_path):
    old = _flash_bundle(serial_device)
    new = _bundle(tmp_path, 400, 3)

    def cut_midway(data, line):
        if line.to_device_bytes > 8000:
            threading.Thread(target=line.pull).start()
            return b""
        return data

    line = FaultLine(serial_device.serial, to_device=cut_midway)
    d = _connect(line.path)
    base = d.status()["version"]
    with pytest.raises(devicelink.DeviceError) as e:
        d.put_bundle(new, base)
    assert "cable" in str(e.value) or "stopped answering" in str(e.value), str(e.value)
    d.close()
    line.close()
    # plugged in again: the device runs the old site, whole
    d = _connect(serial_device.serial)
    try:
        assert d.status()["version"] == base
        assert _flash_bundle(serial_device) == old
        d.put_bundle(new, base)  # and the next sync goes through
        assert _flash_bundle(serial_device) == new
    finally:
        d.close()


def test_errors_are_clear(tmp_path):
    with pytest.raises(devicelink.DeviceError) as e:
        devicelink.open_link(str(tmp_path / "ttyNOPE"))
    assert "no such serial port" in str(e.value)
    noperm = tmp_path / "ttyNOPERM"
    noperm.write_text("")
    os.chmod(noperm, 0)
    if os.geteuid() != 0:  # root opens anything
        with pytest.raises(devicelink.DeviceError) as e:
            devicelink.open_link(str(noperm))
        assert "dialout" in str(e.value)


def test_ctrl_c_stops_the_app_then_mpremote_works(serial_device):
    port = serial_device.serial
    d = _connect(port)
    assert d.status()["extensions"] == 12  # the app answers frames
    d.close()
    fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
    os.write(fd, b"\x03")  # Ctrl-C on the line, as a terminal sends it
    os.close(fd)
    serial_device.wait_for("stopped")  # KeyboardInterrupt: the state saved, the REPL follows
    with pytest.raises(devicelink.DeviceError) as e:
        _connect(port).status()
    assert "not answering" in str(e.value) and "REPL" in str(e.value), str(e.value)
    mp = os.path.join(os.path.dirname(sys.executable), "mpremote")
    proc = subprocess.run([mp, "connect", port, "resume", "fs", "ls"], capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr + "\ndevice:\n" + "\n".join(serial_device.rest())
    assert proc.returncode == 0, out
    assert "site.zjb" in proc.stdout and "config.json" in proc.stdout, out


def test_auto_picks_the_one_esp32_port_and_lists_several(monkeypatch):
    from serial.tools import list_ports
    from zongji_companion import seriallink

    class Port:
        def __init__(self, device, vid, pid):
            self.device, self.vid, self.pid, self.description = device, vid, pid, "a port"

    ports = [Port("/dev/ttyS0", None, None), Port("/dev/ttyUSB0", 0x10C4, 0xEA60)]
    monkeypatch.setattr(list_ports, "comports", lambda: ports)
    assert seriallink.find_auto() == "/dev/ttyUSB0"
    ports.append(Port("/dev/ttyACM0", 0x303A, 0x1001))
    with pytest.raises(devicelink.DeviceError) as e:
        seriallink.find_auto()
    assert "/dev/ttyUSB0" in str(e.value) and "/dev/ttyACM0" in str(e.value)
    ports[:] = []
    with pytest.raises(devicelink.DeviceError) as e:
        seriallink.find_auto()
    assert "no ESP32 USB-serial port" in str(e.value)


def test_stopping_the_virtual_device_ends_the_repl_it_leaves(serial_device):
    # micropython -i: Ctrl-C stops the app and a REPL follows; `zongji device run` still exits
    assert serial_device.stop() == 0


def test_the_cli_commands_work_over_the_serial_link(serial_device, site, tmp_path, monkeypatch):
    # what an admin types with the board on USB: sync, status, pull, cdr, rollback
    from click.testing import CliRunner
    from zongji_companion.cli import main

    monkeypatch.setenv("ZONGJI_CACHE", str(tmp_path / "cache"))

    def cli(*args):
        res = CliRunner().invoke(main, [str(a) for a in args] + ["--device", serial_device.serial, "--token", TOKEN])
        return res.exit_code, res.output

    code, out = cli("status", "--json")
    assert code == 0, out
    before = json.loads(out)["version"]
    csv = site / "staff.csv"
    csv.write_text(csv.read_text(encoding="utf-8-sig") + "290,New Person,Sales,Abcdefgh12345678,,staff,,\n",
                   encoding="utf-8")  # fmt: skip
    code, out = cli("sync", site, "--yes")
    assert code == 0 and "synced" in out, out
    code, out = cli("status")
    assert code == 0 and "(13 extensions)" in out, out
    code, out = cli("pull", "-o", tmp_path / "pulled", "--json")
    assert code == 0, out
    pulled = json.loads(out)
    assert pulled["staff"] == 13 and pulled["rebuilds_same_version"] is True
    assert (tmp_path / "pulled" / "backup" / "site.zjb").read_bytes() == _flash_bundle(serial_device)
    code, out = cli("cdr", "--json")
    assert code == 0 and json.loads(out)["records"] == [], out
    code, out = cli("rollback")
    assert code == 0, out
    code, out = cli("status", "--json")
    assert json.loads(out)["version"] == before


def test_a_board_behind_a_tcp_serial_bridge_answers_at_socket_urls(serial_device, site, tmp_path):
    # `--device socket://HOST:PORT`: the board's USB serial shared over the network, as ser2net
    # or socat do it; here Debian's socat bridges a loopback port to the virtual device's pty
    import socket
    import subprocess
    import time

    from click.testing import CliRunner
    from zongji_companion.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # one connection at a time holds the pty (-t 0: a closed one lets go at once); no probe
    # connection before the CLI's, whose forked child would read the board's answers
    bridge = subprocess.Popen(["socat", "-d", "-d", "-t", "0", "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork" % port,
                               "FILE:%s,rawer" % serial_device.serial], stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        end = time.monotonic() + 10
        while "listening on" not in bridge.stderr.readline():
            assert time.monotonic() < end and bridge.poll() is None, "socat did not listen"
        url = "socket://127.0.0.1:%d" % port

        def cli(*args):
            res = CliRunner().invoke(main, [str(a) for a in args] + ["--device", url, "--token", TOKEN])
            return res.exit_code, res.output

        code, out = cli("status", "--json")
        assert code == 0 and json.loads(out)["extensions"] == 12, out
        csv = site / "staff.csv"
        csv.write_text(csv.read_text(encoding="utf-8-sig") + "291,Bridged Person,Sales,Abcdefgh12345678,,staff,,\n",
                       encoding="utf-8")  # fmt: skip
        code, out = cli("sync", site, "--yes")
        assert code == 0 and "synced" in out, out
        assert b"Bridged Person" in _flash_bundle(serial_device)
    finally:
        bridge.terminate()
        bridge.wait(timeout=10)

"""Port detection (zongji_companion.ports) with faked serial.tools.list_ports entries, and the
checks of a named port: missing, no permission (the dialout group)."""

import os

import pytest
from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo
from zongji_companion import flasher, ports, seriallink


def _port(device, vid=None, pid=None, description="n/a"):
    p = ListPortInfo(device, skip_link_detection=True)
    p.vid, p.pid, p.description = vid, pid, description
    return p


@pytest.fixture
def plugged(monkeypatch):
    found = [_port("/dev/ttyS0")]  # a mainboard UART: no USB id, never a candidate
    monkeypatch.setattr(list_ports, "comports", lambda: list(found))
    return found


def test_auto_finds_the_one_board(plugged):
    plugged.append(_port("/dev/ttyUSB0", 0x10C4, 0xEA60, "CP2102 USB to UART Bridge Controller"))
    assert ports.find("auto") == "/dev/ttyUSB0"
    assert ports.find(None) == "/dev/ttyUSB0"


@pytest.mark.parametrize(
    "vid,pid",
    [(0x1A86, 0x7523), (0x1A86, 0x55D4), (0x0403, 0x6001), (0x0403, 0x6010), (0x0403, 0x6014), (0x0403, 0x6015),
     (0x303A, 0x1001), (0x303A, 0x0002)],
)  # fmt: skip
def test_every_known_bridge_is_found(plugged, vid, pid):
    plugged.append(_port("/dev/ttyACM0", vid, pid))
    assert ports.find("auto") == "/dev/ttyACM0"


def test_several_boards_are_listed_to_choose_from(plugged):
    plugged.append(_port("/dev/ttyUSB1", 0x1A86, 0x7523, "USB Serial"))
    plugged.append(_port("/dev/ttyACM0", 0x303A, 0x1001, "USB JTAG/serial debug unit"))
    with pytest.raises(ports.PortError) as e:
        ports.find("auto")
    msg = str(e.value)
    assert msg.startswith("2 ports look like an ESP32 board; say which with --port"), msg
    assert "/dev/ttyACM0  ESP32-S3/C3 native USB (USB JTAG/serial debug unit)  303a:1001" in msg, msg
    assert "/dev/ttyUSB1  CH340 (USB Serial)  1a86:7523" in msg, msg
    assert [p.device for p in e.value.candidates] == ["/dev/ttyACM0", "/dev/ttyUSB1"]


def test_no_board_says_plug_it_in_and_which_drivers(plugged):
    plugged.append(_port("/dev/ttyUSB3", 0x067B, 0x2303, "PL2303 Serial Port"))
    with pytest.raises(ports.PortError) as e:
        ports.find("auto")
    msg = str(e.value)
    assert "no ESP32 board found on USB: plug it in" in msg, msg
    assert "CP210x" in msg and "CH340/CH9102" in msg, msg
    assert "/dev/ttyUSB3  PL2303 Serial Port  067b:2303" in msg  # what else is there, to name with --port
    assert "/dev/ttyS0" not in msg


def test_seriallink_s_auto_uses_the_same_table(plugged):
    plugged.append(_port("/dev/ttyUSB0", 0x1A86, 0x55D3))  # a CH343: only in ports.ESP32_PORTS
    assert seriallink.ESP32_PORTS is ports.ESP32_PORTS
    assert seriallink.find_auto() == "/dev/ttyUSB0"


def test_a_named_port_is_checked(plugged, tmp_path):
    with pytest.raises(ports.PortError) as e:
        ports.find("/dev/ttyUSB9")
    assert "no such port /dev/ttyUSB9: is the board plugged in? The ports there are: /dev/ttyS0" in str(e.value)
    there = tmp_path / "ttyFAKE"
    there.write_bytes(b"")
    assert ports.find(str(there)) == str(there)
    assert ports.find("socket://127.0.0.1:4000") == "socket://127.0.0.1:4000"  # pyserial's, unchecked


@pytest.mark.skipif(os.geteuid() == 0, reason="root opens any file: chmod 000 can't be tested as root")
def test_a_port_we_may_not_open_names_the_group(tmp_path):
    there = tmp_path / "ttyUSB0"
    there.write_bytes(b"")
    there.chmod(0)
    with pytest.raises(ports.PortError) as e:
        ports.find(str(there))
    assert "no permission to open %s" % there in str(e.value) and "sudo usermod -aG" in str(e.value)
    with pytest.raises(flasher.FlashError) as e:
        flasher.Flasher(str(there), "esp32-wrover").connect()
    assert e.value.kind == "permission" and "usermod" in str(e.value)


def test_the_permission_message(tmp_path):
    # root bypasses file permissions, so the message is also checked on its own
    path = str(tmp_path / "ttyUSB0")  # no such file: no group to read, so the usual one is named
    msg = ports.permission_message(path)
    assert msg.startswith("no permission to open %s: add yourself to the dialout group" % path), msg
    assert "sudo usermod -aG dialout $USER, then log out and in again" in msg and "uucp" in msg
    assert ports.open_error(path, PermissionError(13, "Permission denied")) == msg
    assert "in use by another program" in ports.open_error(path, OSError(16, "busy"))

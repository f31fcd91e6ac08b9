"""A device that has no admin token (a factory image: secrets are never baked into one) makes
its own at first boot, prints it once on its console, and keeps it: the admin protocol is on
from the start, with a token nobody else's device shares."""

import json
import socket

from click.testing import CliRunner
from zongji_companion.cli import main


def _tcp_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(url, token):
    res = CliRunner().invoke(main, ["status", "--json", "--device", url, "--token", token])
    return res.exit_code, res.output


def test_a_device_without_a_token_makes_one_at_first_boot_and_keeps_it(site, tmp_path, devices):
    admin = _tcp_port()
    flash = tmp_path / "flash"
    dev = devices(site, flash, more=("--admin", "127.0.0.1:%d" % admin))
    assert dev.stop() == 0
    (flash / "secrets.json").unlink()  # as a factory image leaves it
    url = "http://127.0.0.1:%d" % admin

    first = devices.boot(flash)
    line = first.wait_for("first boot: made the admin token")
    token = line.split("admin token ", 1)[1].split()[0]
    assert len(token) == 32 and json.loads((flash / "secrets.json").read_text())["admin_token"] == token
    first.wait_for("admin (sync) on http")
    code, out = _status(url, token)
    assert code == 0, out
    assert token not in out  # never in what the admin status returns (its log lines)
    assert first.stop() == 0

    again = devices.boot(flash)
    again.wait_for("admin (sync) on http")
    assert not any("first boot" in ln for ln in again.lines)  # made once
    assert _status(url, token)[0] == 0
    assert json.loads((flash / "secrets.json").read_text())["admin_token"] == token

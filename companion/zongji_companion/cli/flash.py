"""`zongji flash`: a blank ESP32 to the branch's switchboard in one command.

The steps, each a progress line: find the port; check the chip and the image (esptool, the
image's app descriptor: refused before anything is erased); erase and write MicroPython,
verified; upload the app (mpremote, into what the board's MicroPython offers first: its REPL);
reset and wait until `status` answers over the same port, and over the network with --wifi.
The modules: zongji_companion.ports, flasher (esptool), fwimage, appfiles, provision.
"""

import json
import os
import secrets
import sys
import time

import click

from zongji_companion.cli import ZongjiError, load_site, main, site_folder

STEPS = 5
REPL_WAIT_S = 30  # after the reset, MicroPython's REPL answers within this
STATUS_WAIT_S = 60  # after the app's reset, `status` answers within this
WIFI_WAIT_S = 45  # the board joins Wi-Fi (or says why not) within this


class _Steps:
    def __init__(self, quiet):
        self.quiet = quiet
        self.n = 0
        self.t0 = time.monotonic()

    def step(self, text):
        self.n += 1
        if not self.quiet:
            click.echo("[%d/%d] %s" % (self.n, STEPS, text), err=True)

    def say(self, text):
        if not self.quiet:
            click.echo("      " + text, err=True)


def _esptool_progress(steps):
    shown = {}

    def progress(step, done, total):
        if steps.quiet or step not in ("erase", "write", "verify") or not total:
            return
        pct = done * 100 // total
        if pct >= shown.get(step, -25) + 25 or done == total:
            shown[step] = pct
            click.echo("      %s %3d%%" % (step, pct), err=True)

    return progress


def _choose(candidates):
    """Several boards plugged in: ask which (a terminal), else say how to name one."""
    from zongji_companion import ports

    listing = "\n".join("  %d. %s" % (i + 1, ports.describe(p)) for i, p in enumerate(candidates))
    if not sys.stdin.isatty():
        raise ZongjiError("several boards are plugged in:\n%s\nname one with --port PATH" % listing)
    click.echo("several boards are plugged in:\n" + listing, err=True)
    i = click.prompt("which one", type=click.IntRange(1, len(candidates)), err=True)
    return candidates[i - 1].device


@main.command("flash")
@click.option("--board", "board_name", required=True, metavar="NAME",
              help="The board file (zongji boards lists them).")  # fmt: skip
@click.option("--firmware", type=click.Path(dir_okay=False, exists=True), metavar="MICROPYTHON.bin",
              help="The MicroPython release image for the board (micropython.org/download; the board "
                   "file names it), or a factory image from `zongji image`.")  # fmt: skip
@click.option("--no-image", is_flag=True, help="The board already runs MicroPython: only upload the app.")
@click.option("--port", default="auto", show_default=True, metavar="auto|PATH",
              help="The board's serial port; auto finds it by its USB bridge (CP210x, CH340/CH9102, "
                   "FTDI, S3 USB).")  # fmt: skip
@click.option("--site", type=click.Path(), metavar="SITE", help="A site folder to check, bundle and install.")
@click.option("--wifi", "ssid", metavar="SSID", help="The Wi-Fi network the board joins.")
@click.option("--wifi-password", metavar="TEXT", envvar="ZONGJI_WIFI_PASSWORD",
              help="Its password (also ZONGJI_WIFI_PASSWORD).")  # fmt: skip
@click.option("--token", metavar="TEXT", envvar="ZONGJI_TOKEN",
              help="The device's admin token (16+ characters). Default: a new random one, printed.")  # fmt: skip
@click.option("--admin-port", type=click.IntRange(0, 65535), default=80, show_default=True,
              help="The TCP port the board serves the admin protocol on (0: serial only).")  # fmt: skip
@click.option("--sip-port", type=click.IntRange(1, 65535), default=5060, show_default=True,
              help="The UDP port phones register to.")  # fmt: skip
@click.option("--sip-bind", default="0.0.0.0", show_default=True, metavar="ADDR",
              help="The address the board listens on (all of its own by default).")  # fmt: skip
@click.option("--verbose", "-v", is_flag=True, help="Show esptool's and mpremote's own output too.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def flash_cmd(board_name, firmware, no_image, port, site, ssid, wifi_password, token, admin_port, sip_port,
              sip_bind, verbose, as_json):  # fmt: skip
    """Turn a board into the branch's switchboard: MicroPython, the app, the site, its secrets.

    \b
    zongji flash --board esp32-wrover --firmware ESP32_GENERIC-SPIRAM-v1.29.0.bin --site shanghai
    zongji flash --board esp32-wrover --firmware ... --site shanghai --wifi Office --wifi-password ...
    zongji flash --board esp32-wrover --no-image --site shanghai      MicroPython is already on it

    \b
    1. finds the port (--port auto: the one ESP32 USB bridge plugged in; several: asks)
    2. checks the chip is the board's and the image is MicroPython for that chip, before
       anything is erased (esptool; the image's app descriptor)
    3. erases the flash and writes the image at the board's offset, verified by esptool
    4. uploads the app compiled with mpy-cross for the board, microdot, the board's config,
       the site bundle and prompts, and the secrets (admin token, Wi-Fi), via MicroPython's REPL
    5. resets the board and waits until `zongji status` answers over the port, and over Wi-Fi
       when --wifi is given (a Wi-Fi that does not join says why: wrong password, no such network)

    The board must be in its bootloader for steps 2-3 if its USB bridge cannot reset it (a
    few can't): hold BOOT, press and release EN, release BOOT. The admin token is printed
    once and kept in SITE/.zongji-state/tokens/ (or ./zongji-tokens/): `zongji sync` needs it.
    Exit code 1 with what to do when a step fails.
    """
    from zongji_companion import boards, flasher, ports, provision

    steps = _Steps(False)  # progress goes to stderr, so --json output stays clean
    try:
        board = boards.load(board_name)
    except boards.BoardError as e:
        raise ZongjiError(str(e)) from None
    if not no_image and not firmware:
        raise ZongjiError("which MicroPython image? --firmware FILE (the board file names %s; download it from "
                          "micropython.org/download), or --no-image if the board already runs MicroPython"
                          % board["micropython"])  # fmt: skip
    if token is not None and len(token.strip()) < 16:
        raise ZongjiError("an admin token needs at least 16 characters (leave --token out for a random one)")
    if wifi_password and not ssid:
        raise ZongjiError("--wifi-password without --wifi: name the network too")
    bundle = prompts = None
    if site:
        _, bundle = load_site(site)  # checks it: errors stop here, before the board is touched
        prompts = os.path.join(site_folder(site), "prompts")
        prompts = prompts if os.path.isdir(prompts) else None  # none built: `zongji check` says so
    image = factory = None
    if firmware:
        with open(firmware, "rb") as f:
            image = f.read()
        layout, factory = _check_image(image, board, firmware)
        if factory is not None:
            _same_arch(factory, board["mpy_arch"], firmware)  # before anything is erased
        if factory is not None and site:
            raise ZongjiError("%s is a factory image: it carries its own site; leave --site out (or flash the "
                              "MicroPython image with --site)" % firmware)  # fmt: skip

    # 1. the port
    steps.step("port")
    try:
        path = ports.find(port)
    except ports.PortError as e:
        if not e.candidates:
            raise ZongjiError(str(e)) from None
        path = _choose(e.candidates)
    steps.say(path)
    report = {"port": path, "board": board["name"]}

    # 2-3. chip, image, erase, write
    if image is not None:
        steps.step("chip and image")
        stub = flasher._path_has_modem_lines(path)  # no reset lines (a pty): the ROM starts the app
        echo = (lambda text: click.echo(text, err=True)) if verbose else None
        erasing = False
        try:
            with flasher.Flasher(path, board, progress=_esptool_progress(steps), echo=echo, stub=stub) as f:
                info = f.connect()
                f.check_fits(image)  # in the flash found there
                f.check_image(image)  # an image for this chip
                size_note = f.check_flash(layout, factory is not None)  # room for the filesystem, as built
                steps.say("%s, MAC %s, %s flash" % (info["description"], info["mac"],
                                                     flasher._human(info["flash_size"] or 0)))  # fmt: skip
                if size_note:
                    steps.say(size_note)
                steps.step("erase and write %s (%s)" % (os.path.basename(firmware), flasher._human(len(image))))
                erasing = True
                f.erase()
                report["md5"] = f.write(image)
                reset = f.reset()
        except flasher.FlashError as e:
            untouched = "" if erasing else "; nothing was erased"
            raise ZongjiError(str(e) + untouched + ("\n" + e.detail if verbose and e.detail else "")) from None
        report.update(chip=info["chip"], mac=info["mac"])
        if not reset:
            click.echo("      press and release EN (RST) on the board now, to start MicroPython", err=True)
    else:
        steps.step("MicroPython already on the board (--no-image)")
        steps.n += 1

    # 4. the app
    steps.step("upload the app")
    info = _wait_repl(path, board)
    steps.say("MicroPython %s (%s, .mpy arch %s)" % (info.version, info.machine or info.platform, info.arch))
    token = token.strip() if token else secrets.token_hex(16)
    if factory is not None:  # the app and site came with the image: only this board's own settings
        _same_arch(factory, info.arch, firmware)
        cfg = json.loads(factory["config.json"])
        cfg.update(admin_port=admin_port, sip_port=sip_port, bind=sip_bind)
        if ssid:
            cfg["wifi"] = {"ssid": ssid, "password": wifi_password or ""}
        files, notes = (
            {"config.json": json.dumps(cfg, indent=1, sort_keys=True).encode() + b"\n"},
            ["a factory image: its app and site are on the board already; adding this board's settings"],
        )
    else:
        files, notes = _app(board, info, bundle, prompts, ssid, wifi_password, admin_port, sip_port, sip_bind)
    files["secrets.json"] = json.dumps({"admin_token": token}).encode() + b"\n"
    for note in notes:
        steps.say(note)
    total = sum(len(v) for v in files.values())
    shown = [-1]

    def uploaded(done, of, name):
        pct = done * 100 // max(of, 1)
        if pct >= shown[0] + 10 or done == of:
            shown[0] = pct
            steps.say("upload %3d%% %s" % (pct, name))

    try:
        provision.upload(path, files, uploaded)
    except provision.ProvisionError as e:
        raise ZongjiError(str(e)) from None
    report.update(files=len(files), app_bytes=total)

    # 5. reset, wait
    steps.step("reset and wait for status")
    provision.reset(path)
    try:
        status = provision.wait_status(path, token, STATUS_WAIT_S)
    except provision.ProvisionError as e:
        raise ZongjiError(str(e)) from None
    steps.say("status answers over %s: %s, version %s" % (path, status.get("site") or "no site yet",
                                                           (status.get("version") or "none")[:12]))  # fmt: skip
    report.update(version=status.get("version"), site=status.get("site"), seconds=round(time.monotonic() - steps.t0, 1))
    if ssid:
        report["network"] = _wait_wifi(path, token, ssid, admin_port, steps)
    saved = _save_token(site, report.get("mac") or path, token)
    report["token_file"] = saved
    if as_json:
        report["token"] = token
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    what = status.get("site") or "no site yet (zongji sync SITE --device ...)"
    click.echo("flashed %s on %s in %.0f s: %s" % (board["name"], path, report["seconds"], what))
    click.echo("  admin token %s (kept in %s)" % (token, saved))
    where = report.get("network", {}).get("url") or path
    click.echo("  next: zongji status --device %s --token-file %s" % (where, saved))


def _check_image(image, board, name):
    """Refuse what is not MicroPython for this board. A factory image (`zongji image`: the
    release image, then a filesystem in the vfs partition to the end of the flash) gives
    (fwimage.Image, its files {path: bytes}); a release image (fwimage.Image, None)."""
    from zongji_companion import fwimage, lfsimage

    head = image
    try:
        base = int(str(board.get("flash_offset", "0x0")), 0)
        table = image[fwimage.TABLE_OFFSET - base : fwimage.TABLE_OFFSET - base + fwimage.TABLE_SIZE]
        end = max(p.offset + p.size for p in fwimage.read_table(table)) - base
        if 0 < end < len(image):
            head = image[:end]  # what follows the partitions would be a factory image's filesystem
    except (fwimage.ImageError, ValueError, IndexError):
        pass  # inspect() below says what is wrong with it
    try:
        info = fwimage.inspect(head, board)
    except fwimage.ImageError as e:
        raise ZongjiError("%s: %s; nothing was erased" % (name, e)) from None
    if len(head) == len(image):
        return info, None
    start = info.vfs.offset - info.base
    try:
        files = lfsimage.read(image[start : start + info.vfs.size])
    except lfsimage.FsError as e:
        raise ZongjiError("%s: MicroPython, then %d bytes that are not a filesystem for %s (%s): use the release "
                          "image, or a factory image made by `zongji image --board %s`; nothing was erased"
                          % (name, len(image) - len(head), board["name"], e, board["name"])) from None  # fmt: skip
    if "main.py" not in files or "config.json" not in files:
        raise ZongjiError("%s: its filesystem holds no zongji app (no main.py/config.json): make it with `zongji "
                          "image`; nothing was erased" % name)  # fmt: skip
    return info, files


def _same_arch(files, runs, name):
    """A factory image's native code (.mpy with viper) must be for the arch the board runs
    (`runs`: the board file's mpy_arch before flashing, what the board reports after)."""
    from zongji_companion import provision

    for path, data in sorted(files.items()):
        arch = provision.ARCHS.get(data[2] >> 2) if path.endswith(".mpy") and len(data) > 2 else None
        if arch and runs and arch != runs:
            raise ZongjiError("%s holds the app compiled for %s (%s), but the board runs %s: make the factory "
                              "image with the board file of this board; nothing was erased"
                              % (name, arch, path, runs))  # fmt: skip


def _wait_repl(path, board):
    """MicroPython's REPL on the port after the reset (the board boots in about a second)."""
    from zongji_companion import provision

    end = time.monotonic() + REPL_WAIT_S
    while True:
        try:
            return provision.probe(path, timeout=10)
        except provision.ProvisionError as e:
            if time.monotonic() > end:
                raise ZongjiError("no MicroPython on %s after the reset (%s): press EN (RST) and run the same "
                                  "command with --no-image" % (path, e)) from None  # fmt: skip
            time.sleep(1)


def _app(board, info, bundle, prompts, ssid, wifi_password, admin_port, sip_port, sip_bind):
    """The files for the board's filesystem, compiled for the arch the board reports."""
    from zongji_companion import appfiles

    notes = []
    spec = dict(board)
    if info.arch and info.arch != board["mpy_arch"]:
        notes.append("the board reports .mpy arch %s, its file says %s: compiling for %s" % (
            info.arch, board["mpy_arch"], info.arch))  # fmt: skip
        spec["mpy_arch"] = info.arch
    extra = {"admin_port": admin_port, "sip_port": sip_port, "bind": sip_bind}
    if ssid:
        extra["wifi"] = {"ssid": ssid, "password": wifi_password or ""}
    try:
        app = appfiles.app_files(spec, bundle=bundle, prompts=prompts, config_extra=extra)
    except appfiles.AppError as e:
        raise ZongjiError(str(e)) from None
    return dict(app), notes + list(app.notes)


def _wait_wifi(path, token, ssid, admin_port, steps):
    """The board on Wi-Fi: its address and the admin port answering there, or why not."""
    from zongji_companion import devicelink

    end = time.monotonic() + WIFI_WAIT_S
    net = {}
    while time.monotonic() < end:
        dev = devicelink.connect(path, token)
        try:
            net = dev.status().get("network") or {}
        except devicelink.DeviceError:
            net = {}
        finally:
            dev.close()
        if net.get("problem"):
            raise ZongjiError("the board did not join Wi-Fi %r: %s, as the board reports it. Run the same command "
                              "with the right --wifi / --wifi-password" % (ssid, net["problem"]))  # fmt: skip
        if net.get("ip") and net.get("mode") == "wifi":
            break
        time.sleep(1)
    else:
        raise ZongjiError("the board has not joined Wi-Fi %r within %d s (it says nothing more): is the network in "
                          "reach of the board?" % (ssid, WIFI_WAIT_S))  # fmt: skip
    out = {"ip": net["ip"], "mode": "wifi"}
    if admin_port:
        url = "http://%s:%d" % (net["ip"], admin_port) if admin_port != 80 else "http://%s" % net["ip"]
        end = time.monotonic() + 15
        while True:
            try:
                dev = devicelink.connect(url, token)
                try:
                    dev.status()
                finally:
                    dev.close()
                break
            except devicelink.DeviceError as e:
                if time.monotonic() > end:
                    raise ZongjiError("the board joined Wi-Fi (%s) but its admin port does not answer at %s: %s"
                                      % (net["ip"], url, e)) from None  # fmt: skip
                time.sleep(1)
        out["url"] = url
        steps.say("status answers over Wi-Fi at %s" % url)
    return out


def _save_token(site, who, token):
    """The token, kept for `--token-file`: only its owner may read it."""
    folder = os.path.join(site_folder(site), ".zongji-state", "tokens") if site else "zongji-tokens"
    name = "".join(c if c.isalnum() else "-" for c in str(who)).strip("-") + ".token"
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return path

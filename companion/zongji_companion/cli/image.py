"""`zongji image`: one flashable file, MicroPython plus a filesystem holding the app and a site."""

import hashlib
import json
import os

import click

from zongji_companion.cli import ZongjiError, load_site, main, plural, site_folder, write_whole


def progress(as_json, text):
    click.echo(text, err=as_json)


def fit_partition(board, info, app, bundle, prompt_files):
    """flashbudget's estimate for the site, measured against the image's own vfs partition and
    with the app's files counted: (fit dict, message or None when it fits)."""
    from zongji_companion import appfiles, flashbudget

    site_paths = set(["site.zjb"] + [n for n, _ in prompt_files])
    own = [(p, len(b)) for p, b in app.files.items() if p not in site_paths]  # the app as it is built
    own.append(("secrets.json", appfiles.CONFIG_BYTES))  # added per device by `zongji flash`
    fit = flashbudget.estimate(board, len(bundle), prompt_files, app_files=own)
    app_bytes = fit["app"]
    fit["partition"] = info.vfs.size
    fit["usable"] = int(info.vfs.size * (1 - flashbudget.SPARE))
    fit["over"] = max(0, fit["total"] - fit["usable"])
    if not fit["over"]:
        return fit, None
    return fit, (
        "the site does not fit the %s's filesystem partition (%s at %#x), %s over: the app takes %s, %s; make the "
        "menu recordings or greetings shorter, or use a board with more flash; nothing written"
        % (
            board["name"],
            flashbudget.size(info.vfs.size),
            info.vfs.offset,
            flashbudget.size(fit["over"]),
            flashbudget.size(app_bytes),
            flashbudget.describe(fit),
        )  # fmt: skip
    )


def build_factory(board, firmware, app, progress_line=None):
    """(merged bytes, info, partition bytes): the release image `firmware` checked for `board`,
    a littlefs partition of app.files at its vfs partition, merged with esptool's merge-bin into
    one file written at the board's flash_offset (info.base), and read back file by file.
    Raises fwimage.ImageError / lfsimage.FsError / ValueError (the read-back differs)."""
    from zongji_companion import fwimage, lfsimage

    say = progress_line or (lambda text: None)
    info = fwimage.inspect(firmware, board)
    say("building the littlefs partition: %s, %d KB at %#x" % (plural(len(app.files), "file"), info.vfs.size // 1024,
                                                               info.vfs.offset))  # fmt: skip
    part = lfsimage.build(app.files, info.vfs.size)
    say("merging MicroPython %s and the partition (esptool merge-bin)" % info.version)
    merged = fwimage.merge(info, firmware, [(info.vfs.offset, part)])
    say("verifying: reading the partition back file by file")
    verify(merged, info, firmware, app.files)
    return merged, info, part


def verify(merged, info, firmware, files):
    """ValueError unless `merged` (written at info.base) holds `firmware` at its start and a
    littlefs partition at info.vfs whose files are exactly `files`."""
    from zongji_companion import lfsimage

    if merged[: len(firmware)] != bytes(firmware):
        raise ValueError("the merged file does not start with the MicroPython image")
    at = info.vfs.offset - info.base
    try:
        back = lfsimage.read(merged[at : at + info.vfs.size])
    except lfsimage.FsError as e:
        raise ValueError(str(e)) from None
    wrong = sorted(p for p in set(back) | set(files) if back.get(p) != files.get(p))
    if wrong:
        raise ValueError("the partition read back differs in %s: %s" % (plural(len(wrong), "file"),
                                                                       ", ".join(wrong[:5])))  # fmt: skip


@main.command("image")
@click.option("--board", required=True, help="The board (a boards/ name, `zongji boards` lists them, or a .json path).")
@click.option("--firmware", required=True, type=click.Path(dir_okay=False),
              help="The MicroPython release .bin for the board, as downloaded from micropython.org.")  # fmt: skip
@click.option("--site", required=True, type=click.Path(), help="The site folder (zongji init makes one).")
@click.option("--prompts", type=click.Path(file_okay=False),
              help="The prompt files (.ulaw) to include (default: SITE/prompts when it exists).")  # fmt: skip
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The file to write.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (progress goes to stderr).")
def image_cmd(board, firmware, site, prompts, output, as_json):
    """Make one flashable file for many devices alike: MicroPython and its filesystem with the app and a site.

    \b
    The file holds:
      the MicroPython release image (checked: the board's chip, MicroPython, not damaged;
      for a board without PSRAM, a custom image with the core frozen in)
      a littlefs partition at the image's filesystem ("vfs") partition, as MicroPython
      formats it: main.py, the core (the zongji package) compiled with mpy-cross for the board (none on a
      board whose image has it frozen in), microdot, config.json, board.json, the site bundle
      and the prompt files

    It is written at the board's flash offset, as the release image is:

        esptool --chip esp32 write-flash 0x1000 factory.bin

    (the command for the board is printed). No secrets are in it: each device makes its own
    admin token at first boot and prints it once on the serial console, or gets one when a
    board is flashed on its own (the flash command, which also sets Wi-Fi). The partition is
    read back file by file from the written file before it is kept. The filesystem partition
    goes to the end of the flash, so the board file's flash_size must be the module's.
    """
    from zongji_companion import appfiles, boards, fwimage, lfsimage

    try:
        spec = boards.load(board)
    except boards.BoardError as e:
        raise ZongjiError(str(e)) from None
    try:
        with open(firmware, "rb") as f:
            fw = f.read()
    except OSError as e:
        raise ZongjiError("can't read %s: %s" % (firmware, e.strerror or e)) from None
    say = lambda text: progress(as_json, text)  # noqa: E731
    say("checking %s for %s" % (firmware, spec["name"]))
    try:
        info = fwimage.inspect(fw, spec)
    except fwimage.ImageError as e:
        raise ZongjiError("%s: %s; nothing written" % (firmware, e)) from None
    say("  MicroPython %s for the %s, %d bytes at %#x; filesystem partition %d KB at %#x%s" % (
        info.version, info.chip_name, info.size, info.base, info.vfs.size // 1024, info.vfs.offset,
        " (MicroPython makes it at boot)" if info.vfs.auto else ""))  # fmt: skip
    say("loading the site %s" % site)
    _runtime, bundle = load_site(site)
    root = site_folder(site)
    if prompts is None and os.path.isdir(os.path.join(root, "prompts")):
        prompts = os.path.join(root, "prompts")
    say("compiling the app for %s (mpy-cross -march=%s)" % (spec["name"], spec["mpy_arch"]))
    try:
        app = appfiles.app_files(spec, bundle, prompts)
    except appfiles.AppError as e:
        raise ZongjiError(str(e)) from None
    for note in app.notes:
        say("  " + note)
    prompt_files = [(p, len(b)) for p, b in sorted(app.files.items()) if p.startswith("prompts/")]
    fit, over = fit_partition(spec, info, app, bundle, prompt_files)
    if over:
        raise ZongjiError(over)
    try:
        merged, info, part = build_factory(spec, fw, app, say)
    except lfsimage.FsError as e:
        raise ZongjiError("the filesystem partition: %s; nothing written" % e) from None
    except ValueError as e:
        raise ZongjiError("the built image does not verify (%s); nothing written: this is a bug" % e) from None
    write_whole(output, merged)
    command = "esptool --chip %s write-flash %#x %s" % (spec["chip"], info.base, output)
    result = {
        "output": output,
        "bytes": len(merged),
        "sha256": hashlib.sha256(merged).hexdigest(),
        "board": spec["name"],
        "chip": info.chip,
        "micropython": info.version,
        "write_at": info.base,
        "esptool": command,
        "app": app.sizes(),
        "partition": {
            "offset": info.vfs.offset,
            "size": info.vfs.size,
            "used": lfsimage.used_bytes(part),
            "auto": info.vfs.auto,
        },  # fmt: skip
        "fit": fit,
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(
        "wrote %s: %d bytes (sha256 %s), MicroPython %s + %s (app %d KB, of it .mpy %d KB) in a %d KB partition "
        "at %#x, %d KB used" % (output, len(merged), result["sha256"][:16], info.version,
                                plural(len(app.files), "file"), -(-app.total_bytes // 1024), -(-app.mpy_bytes // 1024),
                                info.vfs.size // 1024, info.vfs.offset,
                                result["partition"]["used"] // 1024))  # fmt: skip
    click.echo("write it at %#x (the board's flash offset), with the board in its bootloader:" % info.base)
    click.echo("  " + command)

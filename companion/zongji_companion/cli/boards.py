"""`zongji boards`: the board files, what each needs, every one checked."""

import json
import os

import click

from zongji_companion.cli import ZongjiError, main, plural


def needs(board):
    """What a board needs, in a dict for --json and the listing."""
    net = "Ethernet (%s PHY)" % board["lan"]["phy"] if board["network"] == "lan" and board.get("lan") else "Wi-Fi"
    return {
        "name": board["name"],
        "description": board["description"],
        "chip": board["chip"],
        "flash_size": board["flash_size"],
        "flash_offset": board["flash_offset"],
        "image": board["image"],
        "micropython": board["micropython"],
        "frozen": board["frozen"],
        "psram": board["psram"],
        "network": board["network"],
        "network_text": net,
        "mpy_arch": board["mpy_arch"],
        "heap_bytes": board["heap_bytes"],
    }


def _image_text(n):
    if n["frozen"]:
        return "custom image: %s + the frozen core (boards/manifest.py)" % n["image"]
    return "stock image %s" % n["micropython"]


@main.command("boards")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the boards as JSON.")
def boards_cmd(name, as_json):
    """The board files (boards/*.json, or the folder ZONGJI_BOARDS names) and what each needs.

    For each: the chip, flash size and where MicroPython is written, the MicroPython image to
    download from micropython.org (or, for a board without PSRAM, that the core must be frozen
    into a custom image: boards/manifest.py), PSRAM, and the network (Wi-Fi, or Ethernet and its
    PHY). Every board file is checked; a broken one is shown as file:line: what is wrong, and
    the command then exits 1 after listing the good ones. `zongji boards NAME` shows one board.
    """
    from zongji_companion import boards

    if name:
        try:
            board = boards.load(name)
        except boards.BoardError as e:
            raise ZongjiError(str(e)) from None
        _one(board, as_json)
        return
    good, bad = [], []
    for n in boards.names():
        try:
            good.append(needs(boards.load(n)))
        except boards.BoardError as e:
            bad.append((n, str(e)))
    if as_json:
        click.echo(json.dumps({"folder": boards.BOARDS_DIR, "boards": good,
                               "errors": [{"board": n, "error": e} for n, e in bad]}, indent=2))  # fmt: skip
    else:
        if not good and not bad:
            raise ZongjiError("no board files in %s (set ZONGJI_BOARDS to the boards/ folder)" % boards.BOARDS_DIR)
        width = max([len(n["name"]) for n in good] or [5])
        click.echo("%-*s  %-8s  %-5s  %-6s  %-5s  %-22s  %s" % (width, "board", "chip", "flash", "offset", "PSRAM",
                                                               "network", "MicroPython"))  # fmt: skip
        for n in good:
            click.echo("%-*s  %-8s  %-5s  %-6s  %-5s  %-22s  %s" % (
                width, n["name"], n["chip"], n["flash_size"], n["flash_offset"], "yes" if n["psram"] else "no",
                n["network_text"], _image_text(n)))  # fmt: skip
        click.echo("%s in %s; `zongji boards NAME` for one" % (plural(len(good), "board"), boards.BOARDS_DIR))
    if bad:
        for _n, e in bad:
            click.echo("zongji: %s" % e, err=True)
        raise click.exceptions.Exit(1)


def _one(board, as_json):
    n = needs(board)
    if as_json:
        click.echo(json.dumps(dict(n, board=board), indent=2))
        return
    from zongji_companion import boards

    lines = [
        ("board", "%s (%s)" % (n["name"], boards.path_of(n["name"]) if os.sep not in n["name"] else n["name"])),
        ("", n["description"]),
        ("chip", "%s, %s flash; MicroPython is written at %s" % (n["chip"], n["flash_size"], n["flash_offset"])),
        ("image", _image_text(n)),
        ("download", "%s from micropython.org/download (%s)" % (n["micropython"], n["image"]))
        if not n["frozen"]
        else (
            "build",
            "MicroPython's %s with FROZEN_MANIFEST=boards/manifest.py (boards/README.md); the release it is "
            "based on: %s" % (n["image"], n["micropython"]),
        ),
        ("PSRAM", "yes" if n["psram"] else "no: the core must be frozen into the image (boards/manifest.py)"),
        ("network", n["network_text"]),
        ("heap", "%d bytes with the network up (the budgets', docs/architecture.md)" % n["heap_bytes"]),
        ("mpy-cross", "-march=%s" % n["mpy_arch"]),
    ]
    if board["network"] == "lan":
        lan = board["lan"]
        lines.append(("Ethernet", ", ".join("%s %s" % (k, lan[k]) for k in sorted(lan) if k != "phy")))
    for role, pin in sorted(board["pins"].items()):
        lines.append((role, "GPIO %d" % pin["pin"]))
    lines.append(("flash it", "zongji flash --board %s --firmware %s --site SITE" % (n["name"], n["micropython"])))
    for key, text in lines:
        click.echo("%-10s %s" % (key, text))

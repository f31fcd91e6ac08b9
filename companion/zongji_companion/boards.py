"""Board files (boards/*.json): found by name, checked with file:line messages.

    names()                    the known boards, sorted
    board = load("esp32-wrover")   a dict (BoardError naming file:line: what is wrong)
    board = load("path/to/my-board.json")

The keys are documented in boards/README.md. A board's pins go into the device's config.json
(zongji device run, and later zongji flash), so the firmware needs no board table of its own.
"""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
BOARDS_DIR = os.environ.get("ZONGJI_BOARDS") or os.path.join(os.path.dirname(os.path.dirname(HERE)), "boards")

CHIPS = ("esp32", "esp32s3", "esp32c3")
NETWORKS = ("wifi", "lan")
PHYS = ("LAN8720", "IP101", "RTL8201", "DP83848", "KSZ8041", "KSZ8081")
REQUIRED = {
    "name": str,
    "description": str,
    "chip": str,
    "flash_offset": str,
    "flash_size": str,
    "image": str,
    "micropython": str,
    "frozen": bool,
    "psram": bool,
    "mpy_arch": str,
    "heap_bytes": int,
    "network": str,
    "pins": dict,
    "lines": list,
}
OPTIONAL = {"lan": dict, "limits": dict, "heap_floor": int}
LIMITS = ("max_transactions", "max_calls", "max_records")


class BoardError(Exception):
    """str(e): 'file:line: what is wrong' lines."""


def names():
    try:
        return sorted(f[:-5] for f in os.listdir(BOARDS_DIR) if f.endswith(".json"))
    except OSError:
        return []


def path_of(name):
    if name.endswith(".json") or os.sep in name:
        return name
    return os.path.join(BOARDS_DIR, name + ".json")


def load(name):
    path = path_of(name)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        known = ", ".join(names()) or "none found in %s" % BOARDS_DIR
        raise BoardError("no board %r: the known boards are %s" % (name, known)) from None
    except OSError as e:
        raise BoardError("%s: can't read it: %s" % (path, e.strerror or e)) from None
    try:
        board = json.loads(text)
    except ValueError as e:
        raise BoardError("%s:%d: not JSON: %s" % (path, getattr(e, "lineno", 1), getattr(e, "msg", e))) from None
    problems = check(board)
    if problems:
        raise BoardError("\n".join("%s:%d: %s" % (path, _line(text, key), msg) for key, msg in problems))
    return board


def _line(text, key):
    """The line of the first `"key":` in the file (1 when there is none): good enough to point at."""
    if key:
        at = text.find('"%s"' % key)
        if at >= 0:
            return text.count("\n", 0, at) + 1
    return 1


def check(board):
    """[(key, message)] for a board dict; [] when it is fine."""
    if not isinstance(board, dict):
        return [(None, "a board file is one JSON object")]
    out = []
    for key, kind in REQUIRED.items():
        if key not in board:
            out.append((None, "missing %r (see boards/README.md)" % key))
        elif not _is(board[key], kind):
            out.append((key, "%r must be %s" % (key, _kind(kind))))
    for key, kind in OPTIONAL.items():
        if key in board and not _is(board[key], kind):
            out.append((key, "%r must be %s" % (key, _kind(kind))))
    for key in board:
        if key not in REQUIRED and key not in OPTIONAL:
            out.append((key, "unknown key %r (known: %s)" % (key, ", ".join(sorted(REQUIRED) + sorted(OPTIONAL)))))
    if out:
        return out
    if board["chip"] not in CHIPS:
        out.append(("chip", "chip %r is not one of %s" % (board["chip"], ", ".join(CHIPS))))
    if board["heap_bytes"] < 32768:
        out.append(("heap_bytes", "heap_bytes %d is too small for MicroPython with a network" % board["heap_bytes"]))
    if board["network"] not in NETWORKS:
        out.append(("network", "network must be one of %s" % ", ".join(NETWORKS)))
    if board["network"] == "lan" and "lan" not in board:
        out.append(("network", 'network "lan" needs a "lan" object: the PHY and its pins'))
    if not board["psram"] and not board["frozen"]:
        out.append(("frozen", "a board without PSRAM needs the core frozen (frozen: true, boards/manifest.py)"))
    out += _pins(board["pins"])
    if "lan" in board:
        out += _lan(board["lan"])
    for key, value in (board.get("limits") or {}).items():
        if key not in LIMITS:
            out.append((key, "unknown limit %r (known: %s)" % (key, ", ".join(LIMITS))))
        elif not _is(value, int) or value < 1:
            out.append((key, "%s must be a positive whole number" % key))
    return out


def _pins(pins):
    out = []
    for role in ("led", "safe_mode"):
        spec = pins.get(role)
        if spec is None:
            continue
        if not isinstance(spec, dict) or not _is(spec.get("pin"), int) or not 0 <= spec["pin"] <= 48:
            out.append((role, '%s must be {"pin": GPIO number 0-48, ...}' % role))
            continue
        if spec.get("active", 0) not in (0, 1):
            out.append((role, "%s active must be 0 (low) or 1 (high)" % role))
        if role == "led" and spec.get("kind", "gpio") not in ("gpio", "neopixel"):
            out.append((role, 'led kind must be "gpio" or "neopixel"'))
        if role == "safe_mode" and spec.get("pull") not in (None, "up", "down"):
            out.append((role, 'safe_mode pull must be "up", "down" or absent'))
    for role in pins:
        if role not in ("led", "safe_mode"):
            out.append((role, "unknown pin role %r (known: led, safe_mode)" % role))
    return out


def _lan(lan):
    out = []
    if lan.get("phy") not in PHYS:
        out.append(("phy", "lan phy must be one of %s" % ", ".join(PHYS)))
    for key in ("mdc", "mdio"):
        if not _is(lan.get(key), int):
            out.append(("lan", "lan needs %r: its GPIO number" % key))
    for key in ("power", "ref_clk", "phy_addr"):
        if key in lan and lan[key] is not None and not _is(lan[key], int):
            out.append((key, "lan %s must be a GPIO number" % key))
    if lan.get("ref_clk_mode", "in") not in ("in", "out"):
        out.append(("ref_clk_mode", 'lan ref_clk_mode must be "in" or "out"'))
    return out


def _is(value, kind):
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _kind(kind):
    return {str: "text", int: "a whole number", bool: "true or false", dict: "an object", list: "a list"}[kind]

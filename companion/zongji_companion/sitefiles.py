"""Reading a site folder: `site.toml` + the staff CSV, with every problem at a file and line.

`load(path)` parses both files into plain data (`Loaded`); `check_site(path)` then runs the
core's own validators (`zongji.site.schema.normalize`, `zongji.site.checks.check`) plus the checks only
the host can make (does a prompt's audio file exist?). Nothing here raises on bad input: a
problem is `(level, path, message)` as in docs/internals.md, and `Loaded.locate(path)` turns
its path into `(file, line)`. Two path shapes are added here for file-level trouble:
`(FILE, "staff.csv", line)` names a line directly; `("staff", row, column)` with an int `row`
is a CSV data row (0-based, header excluded).

This module owns reading both files' bytes safely (size limits, UTF-8) and what ties the steps
together; `tomllines` finds keys' lines and words TOML errors, `staffcsv` turns the CSV's rows
into extensions. Their public names are re-exported here.

Limits are module constants so an installer with an unusual site can raise them.
"""

import codecs
import os
import stat
import tomllib

from zongji.site import schema

from zongji_companion import staffcsv
from zongji_companion.staffcsv import COLUMNS, FIELDS, FREEPBX_EXTRA, FREEPBX_MARK, REQUIRED_COLUMNS
from zongji_companion.tomllines import Absurd, key_lines, toml_error

__all__ = [
    "COLUMNS",
    "FIELDS",
    "FILE",
    "FREEPBX_EXTRA",
    "FREEPBX_MARK",
    "MAX_CSV_BYTES",
    "MAX_CSV_ROWS",
    "MAX_TOML_BYTES",
    "REQUIRED_COLUMNS",
    "SITE_TOML",
    "UTF8_HINT",
    "Loaded",
    "audio_problems",
    "check_site",
    "key_lines",
    "load",
]

MAX_TOML_BYTES = 1024 * 1024
MAX_CSV_BYTES = 5 * 1024 * 1024
MAX_CSV_ROWS = 20000
SITE_TOML = "site.toml"
FILE = "@"  # first element of a path that names (FILE, filename, line) directly
UTF8_HINT = "save it as UTF-8 (in Excel: Save As → CSV UTF-8)"


class Loaded:
    """What `load` read: raw TOML dict, extension dicts, problems, and where each key lives."""

    def __init__(self, root, toml_name=SITE_TOML):
        self.root = root
        self.toml_name = toml_name
        self.csv_name = "staff.csv"
        self.site_raw = {}
        self.site = None  # the normalised site, once check_site has run
        self.extensions = []
        self.problems = []
        self.fatal = False  # a file could not be read: later checks would only add noise
        self.freepbx = False
        self._toml_lines = {}
        self._row_lines = []
        self._header_line = 1

    def add(self, level, path, message):
        self.problems.append((level, tuple(path), message))

    def add_at(self, level, name, line, message):
        """A problem at a line of the named file (the `FILE` path shape)."""
        self.add(level, (FILE, name, line), message)

    def locate(self, path):
        """`(filename, line)` for a problem path; unknown paths fall back to their parent."""
        path = tuple(path)
        if path and path[0] == FILE:
            return path[1], path[2]
        if len(path) >= 2 and path[0] == "staff" and isinstance(path[1], int):
            row = path[1]
            if 0 <= row < len(self._row_lines):
                return self.csv_name, self._row_lines[row]
            return self.csv_name, self._header_line
        while path:
            if path in self._toml_lines:
                return self.toml_name, self._toml_lines[path]
            path = path[:-1]
        return self.toml_name, 1

    def report(self, problems=None):
        """Problems as dicts (file, line, level, message), sorted by file then line."""
        out = []
        for level, path, message in self.problems if problems is None else problems:
            name, line = self.locate(path)
            out.append({"file": name, "line": line, "level": level, "message": message})
        out.sort(key=lambda p: (p["file"], p["line"]))
        return out


# ---------------------------------------------------------------- reading bytes safely


def _read_limited(loaded, full, name, limit_name, what, missing_path):
    """The bytes of a file, or None after recording why not. Size is checked before reading."""
    limit = globals()[limit_name]  # looked up now, so a changed limit takes effect
    try:
        st = os.stat(full)
    except FileNotFoundError:
        loaded.add(
            "error",
            missing_path,
            "%s '%s' not found in the site folder %s: create it, or fix [staff] file" % (what, name, loaded.root),
        )
        return None
    except OSError as e:
        loaded.add("error", missing_path, "can't read %s '%s': %s" % (what, name, e.strerror))
        return None
    if stat.S_ISDIR(st.st_mode):
        loaded.add("error", missing_path, "%s '%s' is a folder, not a file" % (what, name))
        return None
    if not stat.S_ISREG(st.st_mode):  # a FIFO, a terminal, /dev/stdin: reading would wait forever
        loaded.add(
            "error",
            missing_path,
            "%s '%s' is not a regular file (%s): zongji reads only files; save it as a file in the "
            "site folder" % (what, name, _kind(st.st_mode)),
        )
        return None
    if st.st_size > limit:
        loaded.add(
            "error",
            (FILE, name, 1),
            "%s is too big: %s, more than the %s zongji reads "
            "(sitefiles.%s); is this the right file?" % (name, _size(st.st_size), _size(limit), limit_name),
        )
        return None
    try:
        with open(full, "rb") as f:
            data = f.read(limit + 1)  # bounded even if the file grows or is a device
    except OSError as e:
        loaded.add("error", missing_path, "can't read %s '%s': %s" % (what, name, e.strerror))
        return None
    if len(data) > limit:
        loaded.add(
            "error",
            (FILE, name, 1),
            "%s is too big: more than the %s zongji reads" % (name, _size(limit)),
        )
        return None
    return data


def _kind(mode):
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a terminal or device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"


def _size(n):
    if n >= 1024 * 1024:
        return "%.1f MB" % (n / 1048576.0)
    return "%d KB" % max(1, n // 1024)


def _decode(loaded, data, name):
    """UTF-8 text (a BOM is dropped), or None after naming the first bad byte's line."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        loaded.add(
            "error",
            (FILE, name, 1),
            '%s is UTF-16 (Excel\'s "Unicode Text"), not UTF-8: %s' % (name, UTF8_HINT),
        )
        return None
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as e:
        pos = e.start + skip
        line = data.count(b"\n", 0, pos) + 1
        col = pos - (data.rfind(b"\n", 0, pos) + 1) + 1
        guess = ""
        try:
            data.decode("gb18030")
            guess = " It looks like GBK/GB18030 (Chinese Windows)."
        except UnicodeDecodeError:
            pass
        loaded.add(
            "error",
            (FILE, name, line),
            "not UTF-8: byte 0x%02X at byte offset %d (line %d, "
            "byte %d of the line) is not valid UTF-8.%s %s" % (data[pos], pos, line, col, guess, UTF8_HINT),
        )
        return None


# ---------------------------------------------------------------- the site folder


def load(path):
    """Read a site folder (or its .toml file) into a `Loaded`. Never raises on bad input."""
    path = os.fspath(path)
    if os.path.isdir(path) or not path.endswith(".toml"):
        root, toml_name = path, SITE_TOML
    else:
        root, toml_name = os.path.dirname(path) or ".", os.path.basename(path)
    loaded = Loaded(root, toml_name)
    if not os.path.exists(path):
        loaded.add(
            "error",
            (FILE, toml_name, 1),
            "no such site folder or file: %s (run `zongji init %s` to create an example site)" % (path, path),
        )
        loaded.fatal = True
        return loaded
    full = os.path.join(root, toml_name)
    if not os.path.exists(full):
        loaded.add(
            "error",
            (FILE, toml_name, 1),
            "no %s in %s: is this a site folder? (`zongji init DIR` writes an example)" % (toml_name, root),
        )
        loaded.fatal = True
        return loaded
    data = _read_limited(loaded, full, toml_name, "MAX_TOML_BYTES", "site file", (FILE, toml_name, 1))
    text = _decode(loaded, data, toml_name) if data is not None else None
    if text is None:
        loaded.fatal = True
        return loaded
    try:  # first: it refuses absurd lines and keys that would make tomllib take minutes
        lines = key_lines(text)
    except Absurd as e:
        loaded.add_at("error", toml_name, e.line, e.message)
        loaded.fatal = True
        return loaded
    try:
        loaded.site_raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        loaded.add_at("error", toml_name, *toml_error(text, e))
        loaded.fatal = True
        return loaded
    except RecursionError:
        loaded.add(
            "error",
            (FILE, toml_name, 1),
            "%s nests lists or tables too deeply to read: a site needs at most a few levels" % toml_name,
        )
        loaded.fatal = True
        return loaded
    loaded._toml_lines = lines
    staff = loaded.site_raw.get("staff")
    csv_name = staff.get("file", "staff.csv") if isinstance(staff, dict) else "staff.csv"
    if not isinstance(csv_name, str) or not csv_name.strip():
        loaded.add(
            "error",
            ("staff", "file"),
            '[staff] file must be the staff CSV\'s name in quotes, e.g. file = "staff.csv"',
        )
        loaded.fatal = True
        return loaded
    bad = [ch for ch in csv_name if ord(ch) < 32 or ord(ch) == 127]
    if bad:
        loaded.add(
            "error",
            ("staff", "file"),
            "[staff] file contains a control character (%s, often pasted by accident): no file is "
            'named that way; retype the name, e.g. file = "staff.csv"' % ("NUL" if bad[0] == "\0" else repr(bad[0])),
        )
        loaded.fatal = True
        return loaded
    loaded.csv_name = csv_name
    _read_staff(loaded, os.path.join(root, csv_name))
    return loaded


def _read_staff(loaded, full):
    name = loaded.csv_name
    data = _read_limited(loaded, full, name, "MAX_CSV_BYTES", "staff file", ("staff", "file"))
    text = _decode(loaded, data, name) if data is not None else None
    if text is None:
        loaded.fatal = True
        return
    staffcsv.read_staff(loaded, text, MAX_CSV_ROWS)  # looked up now, so a changed limit takes effect


# ---------------------------------------------------------------- the whole check


def check_site(path):
    """Load, compile the time zone, normalise, run the core's checks and the file checks.

    Returns `(loaded, problems)`; stops after file-level fatal errors (unreadable TOML/CSV).
    """
    loaded = load(path)
    problems = list(loaded.problems)
    if loaded.fatal:
        return loaded, problems
    raw = loaded.site_raw
    branch = raw.get("branch")
    if isinstance(branch, dict) and isinstance(branch.get("timezone"), str):
        try:
            from zongji_companion.tzcompile import compile_tz

            branch["tz"] = compile_tz(branch["timezone"])
        except ImportError:  # pragma: no cover - a broken install, not a bad site
            problems.append(
                (
                    "error",
                    ("branch", "timezone"),
                    "can't compile time zones: this install lacks zongji_companion.tzcompile; reinstall zongji",
                )
            )
        except ValueError as e:
            problems.append(
                (
                    "error",
                    ("branch", "timezone"),
                    str(e) or "unknown time zone '%s': use an IANA name such as Asia/Shanghai" % branch["timezone"],
                )
            )
    from zongji.site import checks

    site, found = schema.normalize(raw)
    loaded.site = site
    problems += found
    problems += [_name_the_first(loaded, site, p) for p in checks.check(site, loaded.extensions)]
    problems += audio_problems(loaded, site)
    return loaded, problems


def _name_the_first(loaded, site, problem):
    """A duplicate short number also says where the first use is: 'staff.csv:3'."""
    level, path, message = problem
    if "is already used by" not in message or not path:
        return problem
    number = None
    if len(path) == 3 and path[0] == "staff" and isinstance(path[1], int):
        number = loaded.extensions[path[1]].get("number")
    elif path[0] == "groups" and len(path) == 2:
        number = path[1]
    elif path[0] == "menus" and len(path) == 3:
        number = ((site.get("menus") or {}).get(path[1]) or {}).get("number")
    if not number:
        return problem
    first = None
    for i, ext in enumerate(loaded.extensions):  # the short-number space takes rows first
        if ext.get("number") == number and ("staff", i, "number") != tuple(path):
            first = ("staff", i, "number")
            break
    if first is None and number in (site.get("groups") or {}):
        first = ("groups", number)
    if first is None:
        for name, menu in (site.get("menus") or {}).items():
            if menu.get("number") == number and ("menus", name, "number") != tuple(path):
                first = ("menus", name, "number")
                break
    if first is None:
        return problem
    where, line = loaded.locate(first)
    return (level, path, "%s, on %s:%d" % (message, where, line))


def audio_problems(loaded, site):
    """A menu's `audio`, and each [sounds] recording, must be a file, relative to the site folder."""
    out = []
    menus = site.get("menus") or {}
    for name in menus:
        audio = menus[name].get("audio")
        if not isinstance(audio, str) or not audio:
            continue
        if not os.path.isfile(os.path.join(loaded.root, audio)):
            out.append(
                (
                    "error",
                    ("menus", name, "audio"),
                    "audio file '%s' of menu '%s' not found next "
                    'to %s: add the file, fix the path, or use prompt = "..." instead'
                    % (audio, name, loaded.toml_name),
                )
            )
    sounds = site.get("sounds") or {}
    for key in sorted(sounds):
        path = sounds[key]
        if isinstance(path, str) and path and not os.path.isfile(os.path.join(loaded.root, path)):
            out.append(
                (
                    "error",
                    ("sounds", key),
                    "[sounds] %s: recording '%s' not found next to %s: add the file (WAV or MP3), "
                    "fix the path, or remove the line" % (key, path, loaded.toml_name),
                )
            )
    return out

"""Reading a site folder: `site.toml` + the staff CSV, with every problem at a file and line.

`load(path)` parses both files into plain data (`Loaded`); `check_site(path)` then runs the
core's own validators (`zongji.schema.normalize`, `zongji.checks.check`) plus the checks only
the host can make (does a prompt's audio file exist?). Nothing here raises on bad input: a
problem is `(level, path, message)` as in docs/internals.md, and `Loaded.locate(path)` turns
its path into `(file, line)`. Two path shapes are added here for file-level trouble:
`(FILE, "staff.csv", line)` names a line directly; `("staff", row, column)` with an int `row`
is a CSV data row (0-based, header excluded).

Limits are module constants so an installer with an unusual site can raise them.
"""

import codecs
import csv
import io
import os
import re
import tomllib

from zongji import schema

MAX_TOML_BYTES = 1024 * 1024
MAX_CSV_BYTES = 5 * 1024 * 1024
MAX_CSV_ROWS = 20000
SITE_TOML = "site.toml"
FILE = "@"  # first element of a path that names (FILE, filename, line) directly
UTF8_HINT = "save it as UTF-8 (in Excel: Save As → CSV UTF-8)"

# canonical column -> accepted spellings (compared after _norm: case, '_'/'-' and spaces folded)
COLUMNS = {
    "number": ("number", "extension", "ext", "short number"),
    "name": ("name", "display name", "full name"),
    "department": ("department", "dept"),
    "secret": ("secret", "password", "sip secret"),
    "mobile": ("mobile", "cell", "mobile phone"),
    "class": ("class", "cos", "class of service"),
    "follow_me": ("follow_me", "ring_time"),
    "pin": ("pin",),
}
FIELDS = ("number", "name", "department", "secret", "mobile", "class", "follow_me", "pin", "keys")
REQUIRED_COLUMNS = ("number", "name")
# A FreePBX Bulk Handler extensions export has these (and ~80 more we ignore). Its `password`
# is the user-manager password, not the SIP one, so in that layout only `secret` is the secret.
FREEPBX_MARK = ("extension", "name", "secret", "tech")
FREEPBX_EXTRA = {
    "findmefollow_grplist": "_grplist",
    "findmefollow_grptime": "_grptime",
    "findmefollow_enabled": "_fm_enabled",
}


def _norm(header):
    return " ".join(header.strip().lower().replace("_", " ").replace("-", " ").split())


_ALIAS = {_norm(a): col for col in COLUMNS for a in COLUMNS[col]}


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
        self._toml_text = ""

    def add(self, level, path, message):
        self.problems.append((level, tuple(path), message))

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
    if os.path.isdir(full):
        loaded.add("error", missing_path, "%s '%s' is a folder, not a file" % (what, name))
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


# ---------------------------------------------------------------- site.toml

_TOML_HINTS = (
    (
        "Invalid value",
        'this value is not valid TOML: text needs quotes (name = "Sales"), '
        'lists need brackets (["a", "b"]), true/false are lowercase',
    ),
    (
        "Expected '=' after a key",
        "expected '=' after the key: write key = value (keys with spaces or dots need quotes: \"my key\" = 1)",
    ),
    (
        "Invalid initial character for a key",
        "this is not a key: keys use letters, digits, '_' and '-'; put any other key in quotes",
    ),
    ("Unterminated string", 'a string has no closing quote on this line: add the "'),
    (
        "Unclosed array",
        "a list is not closed: check for a missing ',' between items or a missing ']'",
    ),
    (
        "Unclosed inline table",
        "an inline table { ... } is not closed: it must end with '}' on the same line, items separated by ','",
    ),
    (
        "Expected newline or end of document",
        "one key = value per line: something follows the value (a missing quote, or a second key on the same line?)",
    ),
    ("Expected ']' at the end of a table", "a table header needs its closing ']': [menus.main]"),
    ("Cannot declare", "this table is declared twice: merge the two [..] sections into one"),
    ("Cannot overwrite a value", "this key is set twice: keep one of them"),
    (
        "Unescaped '\\'",
        "a backslash inside \"...\" starts an escape: write \\\\ or use single quotes ('C:\\prompts')",
    ),
    ("Cannot mutate", "this key or table is already defined above: set it in one place only"),
    (
        "Illegal character",
        "a control character (often a pasted tab or invisible character) is not allowed here: retype the line",
    ),
    (
        "Invalid date",
        'this looks like a date but is not a valid one: dates in zongji are strings, write "2026-10-01" in quotes',
    ),
)


def _toml_error(loaded, err):
    text = str(err)
    m = re.search(r"\(at line (\d+), column (\d+)\)", text)
    if m:
        line, where = int(m.group(1)), " (column %s)" % m.group(2)
    else:
        line, where = max(1, len(loaded._toml_text.splitlines())), " (at the end of the file)"
    raw = re.sub(r"\s*\(at [^)]*\)$", "", text)
    human = "%s: %s" % (raw[:1].lower() + raw[1:], "fix the TOML syntax here")
    if raw.startswith("Illegal character '\\n'"):
        raw = "Unterminated string"  # a newline inside "..." means the closing quote is missing
    lines = loaded._toml_text.splitlines()
    if m and line <= len(lines) and int(m.group(2)) > len(lines[line - 1]) and "{" in lines[line - 1]:
        raw = "Unclosed inline table"  # an inline table broken over two lines
    for start, hint in _TOML_HINTS:
        if raw.startswith(start):
            human = hint
            break
    loaded.add("error", (FILE, loaded.toml_name, line), human + where)


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
    loaded._toml_text = text
    try:
        loaded.site_raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        _toml_error(loaded, e)
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
    loaded._toml_lines = key_lines(text)
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
    loaded.csv_name = csv_name
    _read_staff(loaded, os.path.join(root, csv_name))
    return loaded


# ---------------------------------------------------------------- where keys are in the TOML text

_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def key_lines(text):
    """Map every key path of a TOML document to the line it is written on (1-based).

    Table headers, dotted keys, keys inside inline tables and each element of an array
    (`("hours", "open", 2)`) are mapped; a path also maps its prefixes to their first line.
    Meant for text tomllib accepted; on anything else it keeps what it mapped so far.
    """
    scan = _Scan(text)
    try:
        scan.document()
    except (IndexError, ValueError, RecursionError, tomllib.TOMLDecodeError):
        pass
    return scan.lines


class _Scan:
    def __init__(self, text):
        self.t = text
        self.i = 0
        self.line = 1
        self.lines = {}
        self.arrays = {}

    def peek(self, k=0):
        j = self.i + k
        return self.t[j] if j < len(self.t) else ""

    def advance(self, n=1):
        self.line += self.t.count("\n", self.i, self.i + n)
        self.i = min(len(self.t), self.i + n)

    def skip(self, newlines):
        while True:
            c = self.peek()
            if c and (c in " \t\r" or (newlines and c == "\n")):
                self.advance()
            elif c == "#":
                j = self.t.find("\n", self.i)
                self.i = len(self.t) if j < 0 else j  # stops before the newline: line unchanged
            else:
                return

    def record(self, path):
        for k in range(1, len(path) + 1):
            self.lines.setdefault(path[:k], self.line)

    def document(self):
        table = ()
        while True:
            self.skip(True)
            start = self.i
            c = self.peek()
            if not c:
                return
            if c == "[":
                many = self.peek(1) == "["  # [[array of tables]]
                self.advance(2 if many else 1)
                table = self.key()
                self.skip(False)
                self.advance(2 if many else 1)
                if many:
                    n = self.arrays.get(table, -1) + 1
                    self.arrays[table] = n
                    table = table + (n,)
                self.record(table)
            else:
                self.keyval(table)
            if self.i == start:
                self.advance()

    def keyval(self, table):
        key = self.key()
        self.record(table + key)
        self.skip(False)
        if self.peek() == "=":
            self.advance()
        self.skip(False)
        self.value(table + key)

    def key(self):
        parts = []
        while True:
            self.skip(False)
            c = self.peek()
            if c in ('"', "'"):
                begin = self.i
                self.string()
                raw = self.t[begin : self.i]
                parts.append(tomllib.loads("k = " + raw)["k"] if c == '"' else raw[1:-1])
            else:
                j = self.i
                while j < len(self.t) and self.t[j] in _BARE:
                    j += 1
                parts.append(self.t[self.i : j])
                self.advance(j - self.i)
            self.skip(False)
            if self.peek() != ".":
                return tuple(parts)
            self.advance()

    def string(self):
        q = self.peek()
        t = self.t
        if t.startswith(q * 3, self.i):
            j = self.i + 3
            while j < len(t):
                if q == '"' and t[j] == "\\":
                    j += 2
                elif t.startswith(q * 3, j):
                    j += 3
                    while j < len(t) and t[j] == q:  # up to two quotes may end the content
                        j += 1
                    break
                else:
                    j += 1
        else:
            j = self.i + 1
            while j < len(t) and t[j] != q and t[j] != "\n":
                j += 2 if (q == '"' and t[j] == "\\") else 1
            j += 1
        self.advance(j - self.i)

    def value(self, path):
        c = self.peek()
        if c in ('"', "'"):
            self.string()
        elif c == "[":
            self.advance()
            n = 0
            while True:
                self.skip(True)
                start = self.i
                if self.peek() in ("]", ""):
                    self.advance()
                    return
                self.record(path + (n,))
                self.value(path + (n,))
                self.skip(True)
                if self.peek() == ",":
                    self.advance()
                    n += 1
                if self.i == start:
                    self.advance()
        elif c == "{":
            self.advance()
            while True:
                self.skip(False)
                start = self.i
                if self.peek() in ("}", "", "\n"):
                    self.advance()
                    return
                self.keyval(path)
                self.skip(False)
                if self.peek() == ",":
                    self.advance()
                if self.i == start:
                    self.advance()
        else:
            j = self.i
            while j < len(self.t) and self.t[j] not in ",]}\n#":
                j += 1
            self.advance(j - self.i)


# ---------------------------------------------------------------- the staff CSV


def _delimiter(text):
    """',' unless the header line clearly uses ';' (Excel in DE/FR) or tabs."""
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


def _read_staff(loaded, full):
    name = loaded.csv_name
    data = _read_limited(loaded, full, name, "MAX_CSV_BYTES", "staff file", ("staff", "file"))
    text = _decode(loaded, data, name) if data is not None else None
    if text is None:
        loaded.fatal = True
        return
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    header = None
    prev = 0
    try:
        for row in reader:
            start, prev = prev + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                loaded._header_line = start
                header = _header(loaded, row, start)
                if header is None:
                    loaded.fatal = True
                    return
                continue
            if len(loaded.extensions) >= MAX_CSV_ROWS:
                loaded.add(
                    "error",
                    (FILE, name, start),
                    "%s has more than %d rows, the most zongji "
                    "reads (sitefiles.MAX_CSV_ROWS): is this the right file?" % (name, MAX_CSV_ROWS),
                )
                loaded.fatal = True
                return
            _row(loaded, header, row, start)
    except csv.Error as e:
        loaded.add(
            "error",
            (FILE, name, prev + 1),
            'this line can\'t be read as CSV (%s): check its quotes, a quote inside a cell is written twice ("")' % e,
        )
        loaded.fatal = True
        return
    if header is None:
        loaded.add(
            "error",
            (FILE, name, 1),
            "%s is empty: it needs a header row (number,name,...) and one row per extension" % name,
        )
        loaded.fatal = True


def _header(loaded, row, line):
    """Column index -> field name, or None if a required column is missing."""
    cols = [_norm(h) for h in row]
    name = loaded.csv_name
    loaded.freepbx = all(_norm(m) in cols for m in FREEPBX_MARK)
    fp = {_norm(k): v for k, v in FREEPBX_EXTRA.items()}
    mapping = {}
    seen = {}
    for j, col in enumerate(cols):
        if not col:
            continue
        if loaded.freepbx:
            field = None if col == "password" else _ALIAS.get(col) or fp.get(col)
            if field is None:
                continue  # the export's other ~80 columns mean nothing here
        else:
            field = _ALIAS.get(col)
        if field is None:
            hint = schema.suggest(col, list(_ALIAS))
            loaded.add(
                "warning",
                (FILE, name, line),
                "unknown column '%s' is ignored%s"
                % (
                    row[j].strip(),
                    ": did you mean '%s'?" % hint if hint else " (known columns: %s)" % ", ".join(COLUMNS),
                ),
            )
            continue
        if field in seen:
            loaded.add(
                "error",
                (FILE, name, line),
                "columns '%s' and '%s' both give the %s: keep one" % (row[seen[field]].strip(), row[j].strip(), field),
            )
            continue
        seen[field] = j
        mapping[j] = field
    missing = [f for f in REQUIRED_COLUMNS if f not in seen]
    for f in missing:
        loaded.add(
            "error",
            (FILE, name, line),
            "the header row has no '%s' column (also accepted: %s); "
            "the first row of %s must name the columns, e.g. number,name,department,secret"
            % (f, ", ".join(repr(a) for a in COLUMNS[f][1:]) or "-", name),
        )
    return None if missing else (mapping, len(row))


def _row(loaded, header, row, line):
    i = len(loaded.extensions)
    loaded._row_lines.append(line)
    mapping, width = header
    values = {}
    for j, field in mapping.items():
        values[field] = row[j].strip() if j < len(row) else ""
    if any(cell.strip() for cell in row[width:]):
        loaded.add(
            "warning",
            ("staff", i),
            "this row has more cells than the header has columns; the "
            'extra cells are ignored (a comma inside a cell needs "quotes")',
        )
    if loaded.freepbx:
        _freepbx_row(values)
    ext = {f: values.get(f, "") for f in FIELDS}
    follow = ext["follow_me"]
    ext["follow_me"] = 0
    if follow:
        if follow.isascii() and follow.isdigit():
            ext["follow_me"] = int(follow)
        else:
            loaded.add(
                "error",
                ("staff", i, "follow_me"),
                "follow_me '%s' of extension %s must be whole "
                "seconds the desk phone rings before the mobile, e.g. 20 (0 = never)" % (follow, ext["number"]),
            )
    ext["keys"] = _keys(ext["name"])
    loaded.extensions.append(ext)


def _freepbx_row(values):
    """Follow-me from the export: the list's external entry (ends in '#') is the mobile."""
    mobile = ""
    for entry in values.pop("_grplist", "").split("-"):
        entry = entry.strip()
        if entry.endswith("#") and len(entry) > 1:
            mobile = entry[:-1]
            break
    if mobile and not values.get("mobile"):
        values["mobile"] = mobile
    enabled = values.pop("_fm_enabled", "yes").lower() not in ("", "no", "0", "false")
    grptime = values.pop("_grptime", "")
    # follow-me rings the desk phone first: a virtual extension (no secret) is mobile-only
    has_desk = bool(values.get("secret"))
    if not values.get("follow_me") and enabled and mobile and has_desk and grptime.isdigit():
        values["follow_me"] = grptime


def _keys(name):
    try:
        from zongji_companion import namekeys  # pypinyin is slow to import: only when needed
    except ImportError:  # pragma: no cover - the module lands separately
        return ""
    try:
        return namekeys.name_keys(name)
    except ValueError:
        return ""


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
    from zongji import checks

    site, found = schema.normalize(raw)
    loaded.site = site
    problems += found
    problems += checks.check(site, loaded.extensions)
    problems += audio_problems(loaded, site)
    return loaded, problems


def audio_problems(loaded, site):
    """A menu's `audio` must be a file, relative to the site folder."""
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
    return out

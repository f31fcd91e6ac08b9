"""Where things are in a TOML text: key paths to line numbers, and tomllib's errors in plain words.

`key_lines(text)` maps each key path of a document (table headers, dotted keys, inline tables,
array elements) to the line it is written on, so a problem about a key can name its line.
`toml_error(text, err)` turns a `tomllib.TOMLDecodeError` into `(line, message)` with a hint an
installer can act on. Both work on text only: `sitefiles` reads the file and records problems.

`key_lines` also refuses absurd text (`Absurd`: a line over `MAX_LINE` characters, a key of more
than `MAX_KEY_PARTS` dotted parts or `MAX_KEY_CHARS` characters) before anything quadratic can
happen: tomllib takes 52 s over one 40,000-part key. `sitefiles` runs it before tomllib.
"""

import re
import tomllib

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


def toml_error(text, err):
    """`(line, message)` for a tomllib error in `text`: where it is and how to fix it."""
    said = str(err)
    m = re.search(r"\(at line (\d+), column (\d+)\)", said)
    if m:
        line, where = int(m.group(1)), " (column %s)" % m.group(2)
    else:
        line, where = max(1, len(text.splitlines())), " (at the end of the file)"
    raw = re.sub(r"\s*\(at [^)]*\)$", "", said)
    human = "%s: %s" % (raw[:1].lower() + raw[1:], "fix the TOML syntax here")
    if raw.startswith("Illegal character '\\n'"):
        raw = "Unterminated string"  # a newline inside "..." means the closing quote is missing
    lines = text.splitlines()
    if m and line <= len(lines) and int(m.group(2)) > len(lines[line - 1]) and "{" in lines[line - 1]:
        raw = "Unclosed inline table"  # an inline table broken over two lines
    for start, hint in _TOML_HINTS:
        if raw.startswith(start):
            human = hint
            break
    return line, human + where


MAX_LINE = 4096  # characters; the longest line of a real site is a menu prompt of a few hundred
MAX_KEY_PARTS = 16  # a.b.c: a site's deepest key has 5 (dialout.classes.NAME.allow + an index)
MAX_KEY_CHARS = 256


class Absurd(Exception):
    """Text no site would hold, refused before parsing: `.line` (1-based) and `.message`."""

    def __init__(self, line, message):
        Exception.__init__(self, message)
        self.line = line
        self.message = message


def long_line(text):
    """`(line, message)` for the first line longer than MAX_LINE characters, else None."""
    start = 0
    n = 1
    end = len(text)
    while start < end:
        j = text.find("\n", start)
        if j < 0:
            j = end
        if j - start > MAX_LINE:
            return n, (
                "this line is %d characters long, more than the %d zongji reads (tomllines.MAX_LINE): "
                'is this the right file? Split a long prompt over several lines with a """...""" string'
                % (j - start, MAX_LINE)
            )
        start = j + 1
        n += 1
    return None


_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def key_lines(text):
    """Map every key path of a TOML document to the line it is written on (1-based).

    Table headers, dotted keys, keys inside inline tables and each element of an array
    (`("hours", "open", 2)`) are mapped; a path also maps its prefixes to their first line.
    Safe on any text: on what tomllib would refuse it keeps what it mapped so far. Raises
    `Absurd` for a line or key no site holds (see MAX_LINE, MAX_KEY_PARTS, MAX_KEY_CHARS),
    so it can run before tomllib and keep both linear.
    """
    found = long_line(text)
    if found:
        raise Absurd(*found)
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
            more = self.peek() == "."
            if len(parts) + more > MAX_KEY_PARTS or sum(len(p) for p in parts) > MAX_KEY_CHARS:
                raise Absurd(
                    self.line,
                    "this key has more than %d dotted parts or %d characters (%s...): no site key is "
                    "that long; is this the right file?" % (MAX_KEY_PARTS, MAX_KEY_CHARS, ".".join(parts[:3])[:40]),
                )
            if not more:
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

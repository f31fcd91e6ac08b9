"""The staff directory, packed for a small heap.

500 extensions as 500 dicts of strings would cost ~100 KB of MicroPython heap. Instead every
extension is one record in a single bytearray (fields split by 0x1f, records ended by 0x1e)
and an index maps a number *code* to the record's offset. A code is the integer of "1" +
digits, so "0201" and "201" stay distinct and every code of up to six digits is a small int
(no heap object of its own). Looking a number up costs one dict probe, whatever the size.
"""

from zongji.site.targets import is_digits

FIELDS = ("number", "name", "department", "secret", "mobile", "class", "follow_me", "pin", "keys")

_RS = 0x1E


def code(digits):
    """'201' -> 1201: the dict key for a digit string (int keys cost no heap)."""
    return int("1" + digits)


class Extension:
    """One decoded directory record (made on demand, dropped after use)."""

    def __init__(self, values):
        (self.number, self.name, self.department, self.secret, self.mobile, self.cls, follow, self.pin, self.keys) = (
            values
        )
        self.follow_me = int(follow) if follow else 0

    def has_phone(self):
        return bool(self.secret)

    def get(self, field, default=None):
        """Dict-style access by CSV field name, so checks run on records as on dicts."""
        if field == "class":
            return self.cls
        return getattr(self, field, default)

    def __repr__(self):
        return "Extension(%s %s)" % (self.number, self.name)


# Fields most rows share (a handful of departments and dial-out classes): stored once in a
# table, the record holds the table index. Saves ~15 bytes a row.
_INTERNED = (2, 5)


class Directory:
    def __init__(self):
        self._blob = bytearray()  # frozen to exact-size bytes by freeze(): no growth slack
        self._index = {}
        self._table = []  # interned strings
        self._ids = {}  # interned string -> index, dropped by freeze()

    def __len__(self):
        return len(self._index)

    def add(self, row):
        """Append one row (a sequence in FIELDS order). Raises ValueError on a bad row."""
        if len(row) != len(FIELDS):
            raise ValueError("extension row needs %d fields, got %d" % (len(FIELDS), len(row)))
        if self._ids is None:
            raise ValueError("the directory is frozen")
        parts = []
        for i, v in enumerate(row):
            s = str(v) if v else ""  # follow_me 0 is stored as nothing
            if "\x1e" in s or "\x1f" in s:
                raise ValueError("control character in extension field")
            if i in _INTERNED:
                idx = self._ids.get(s)
                if idx is None:
                    idx = self._ids[s] = len(self._table)
                    self._table.append(s)
                s = str(idx)
            parts.append(s)
        if not is_digits(parts[0]) or len(parts[0]) > 9:
            raise ValueError("extension number %r is not 1-9 digits" % parts[0])
        key = code(parts[0])
        if key in self._index:
            raise ValueError("duplicate extension %s" % parts[0])
        self._index[key] = len(self._blob)
        self._blob.extend("\x1f".join(parts).encode())
        self._blob.append(_RS)

    def freeze(self):
        """Done adding: trade the growable buffer for an exact-size bytes object."""
        if self._ids is not None:
            self._blob = bytes(self._blob)
            self._ids = None
        return self

    def _record(self, offset, end):
        values = bytes(self._blob[offset:end]).decode().split("\x1f")
        for i in _INTERNED:
            values[i] = self._table[int(values[i])]
        return Extension(values)

    def get(self, number):
        """The Extension for a number, or None."""
        offset = self._index.get(code(number)) if is_digits(number) and len(number) < 10 else None
        if offset is None:
            return None
        return self._record(offset, self._blob.find(b"\x1e", offset))

    def has(self, number):
        return is_digits(number) and len(number) < 10 and code(number) in self._index

    def numbers(self):
        for key in self._index:
            yield str(key)[1:]

    def records(self):
        """Every Extension, in insertion order (walks the blob once)."""
        offset = 0
        n = len(self._blob)
        while offset < n:
            end = self._blob.find(b"\x1e", offset)
            yield self._record(offset, end)
            offset = end + 1

    def view(self):
        """A re-iterable view of every record, for checks that walk the list twice."""
        return _View(self)

    def size_bytes(self):
        return len(self._blob)


class _View:
    def __init__(self, directory):
        self._d = directory

    def __iter__(self):
        return self._d.records()

    def __len__(self):
        return len(self._d)

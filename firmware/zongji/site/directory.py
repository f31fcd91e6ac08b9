"""The staff directory, packed for a small heap.

500 extensions as 500 dicts of strings would cost ~100 KB of MicroPython heap. Instead every
extension is one record in a single bytes object and an index maps a number *code* to the
record's offset. A code is the integer of "1" + digits, so "0201" and "201" stay distinct and
every code of up to six digits is a small int (no heap object of its own). Looking a number up
costs one dict probe, whatever the size.

A record is a binary head, then text fields split by 0x1f, ended by 0x1e:

    flags    1 byte: 1 = a desk phone (HA1 digests follow), 2 = a PIN (its hash follows)
    HA1s     the raw digests of the directory's algorithms, in order (16 bytes MD5, 32 SHA-256)
    PIN      PIN_BYTES of pin_hash(realm, number, pin)
    text     number, name, department, mobile, class, follow_me, keys

The head has a known length, so the 0x1e searched for after it is never a digest byte.

The heap it needs comes in few, small pieces, so a directory loads into a fragmented heap (a
sync while calls go on) as well as into a fresh one. The records live in chunks of up to CHUNK
bytes, each allocated once and filled in place, a record never split between two (an offset is
chunk * CHUNK + position); the index is SHARDS dicts picked by code % SHARDS. Given the row
count and their size (a bundle's header has both), the index and the chunks are allocated
before the first row, in one run. No block bigger than a
chunk or a shard is ever asked for, nothing is copied to grow (a growing bytearray is copied at
each realloc), a rehash moves one shard, and no small object per record outlives the line it
came from. 1000 extensions take 13 chunks and ~60 entries a shard. No
secret and no PIN is held in the clear: HA1 = H(number:realm:secret) is what digest checks
need (RFC 7616 section 3.4.2), computed on the host when the bundle is built. Only the
algorithms the site offers are kept: MD5 alone costs 16 bytes a phone (about what a 16-character
secret cost), SHA-256 adds 32.
"""

from binascii import hexlify, unhexlify
from hashlib import sha256

from zongji.compat import const
from zongji.text import is_digits

# A bundle row (and Directory.add's argument): HA1s and the PIN hash as lowercase hex, "" for none.
FIELDS = ("number", "name", "department", "ha1_md5", "ha1_sha256", "mobile", "class", "follow_me", "pin_hash", "keys")
# A row as the staff CSV gives it (the host side): secrets and PINs in the clear.
STAFF_FIELDS = ("number", "name", "department", "secret", "mobile", "class", "follow_me", "pin", "keys")
# digest algorithm -> (its column in FIELDS, raw digest bytes)
HA1_COLUMNS = {"MD5": (3, 16), "SHA-256": (4, 32)}
PIN_BYTES = 8  # 64 bits of SHA-256: a PIN has far fewer, so more would not make it harder to find

_PHONE = const(1)
_PIN = const(2)
_TEXT = (0, 1, 2, 5, 6, 7, 9)  # FIELDS kept as text, in record order
_INTERNED = (2, 4)  # department and class, as positions in the text part
_RS = const(0x1E)
CHUNK = const(4096)  # bytes of records per chunk, at most (a longer record takes one of its own)
SHARDS = const(17)  # index dicts; prime, so numbers in steps of 2, 5, 10 or 100 spread evenly


def code(digits):
    """'201' -> 1201: the dict key for a digit string (int keys cost no heap)."""
    return int("1" + digits)


def pin_hash(realm, number, pin):
    """The PIN_BYTES stored for an extension's PIN: SHA-256 salted with realm and number, so
    equal PINs of two extensions or two branches hash apart. A 4-8 digit PIN is quickly found
    from its hash by trying them all: the bundle stays secret (docs/site-format.md)."""
    return sha256(("zongji-pin:%s:%s:%s" % (realm, number, pin)).encode()).digest()[:PIN_BYTES]


def _equal(a, b):
    """Constant-time compare of two byte strings of the same length."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0


def _unhex(text, size, what, number):
    if len(text) != 2 * size:
        raise ValueError("%s of extension %s must be %d hex digits" % (what, number, 2 * size))
    try:
        return unhexlify(text)
    except ValueError:
        raise ValueError("%s of extension %s is not hex" % (what, number))


class Extension:
    """One decoded directory record (made on demand, dropped after use)."""

    def __init__(self, values, ha1, pin):
        (self.number, self.name, self.department, self.mobile, self.cls, follow, self.keys) = values
        self.follow_me = int(follow) if follow else 0
        self.ha1 = ha1  # the HA1 digests of the directory's algorithms, b"" without a desk phone
        self.pin_hash = pin  # pin_hash(...) of its PIN, b"" without one

    def has_phone(self):
        return bool(self.ha1)

    def has_pin(self):
        return bool(self.pin_hash)

    def get(self, field, default=None):
        """Dict-style access by CSV field name, so checks run on records as on dicts. There is
        no "secret" or "pin" here: a record holds their hashes ("ha1", "pin_hash")."""
        if field == "class":
            return self.cls
        return getattr(self, field, default)

    def __repr__(self):
        return "Extension(%s %s)" % (self.number, self.name)


def _presized(n):
    """A dict whose table already holds n entries, without them: MicroPython keeps a dict's
    table when keys are deleted, and small ints deleted last-first leave every slot empty (not
    "deleted"), so lookups stay short. Made before the rows come, the table is one block low in
    the heap instead of a rehash every few rows scattered among the rows' garbage."""
    d = {}
    for i in range(n):
        d[i] = None
    for i in range(n - 1, -1, -1):
        del d[i]
    return d


class Directory:
    def __init__(self, algorithms=("MD5",), expected=0, size=0):
        """expected: how many rows will come, size: their bytes here (a bundle's header says
        both), so the index is sized and the chunks allocated before any row: in one run low
        in the heap, not each among the garbage of the rows before it."""
        # a shard gets expected / SHARDS rows, give or take a few: room for about 2 sigma more
        per_shard = expected // SHARDS + expected // (8 * SHARDS) + 6 if expected else 0
        self._index = [_presized(per_shard) for _ in range(SHARDS)]  # code -> offset, by code % SHARDS
        self._chunks = []  # records: bytearray(CHUNK) each, allocated once and filled in place
        self._used = []  # bytes of records in each chunk
        self._spare = []  # chunks allocated ahead, for `size` bytes and a little slack
        size += size // 32 if size else 0
        while size > 0:
            self._spare.append(bytearray(min(CHUNK, size)))
            size -= CHUNK
        self._count = 0
        self._table = []  # interned strings
        self._ids = {}  # interned string -> index, dropped by freeze()
        # the HA1s kept: the site's digest algorithms (unknown names are left to checks.py)
        self.algorithms = tuple([a for a in algorithms if a in HA1_COLUMNS])
        self._width = sum([HA1_COLUMNS[a][1] for a in self.algorithms])

    def __len__(self):
        return self._count

    def add(self, row):
        """Append one row (a sequence in FIELDS order). Raises ValueError on a bad row."""
        if len(row) != len(FIELDS):
            raise ValueError("extension row needs %d fields, got %d" % (len(FIELDS), len(row)))
        if self._ids is None:
            raise ValueError("the directory is frozen")
        number = str(row[0]) if row[0] else ""
        if not is_digits(number) or len(number) > 9:
            raise ValueError("extension number %r is not 1-9 digits" % number)
        key = code(number)
        shard = self._index[key % SHARDS]
        if key in shard:
            raise ValueError("duplicate extension %s" % number)
        head = bytearray(1)
        if row[3] or row[4]:
            for a in self.algorithms:
                column, size = HA1_COLUMNS[a]
                if not row[column]:
                    raise ValueError("extension %s has a phone but no %s" % (number, FIELDS[column]))
                head.extend(_unhex(row[column], size, FIELDS[column], number))
            if self.algorithms:
                head[0] |= _PHONE
        if row[8]:
            head.extend(_unhex(row[8], PIN_BYTES, "pin_hash", number))
            head[0] |= _PIN
        parts = []
        for i in _TEXT:
            v = row[i]
            s = str(v) if v else ""  # follow_me 0 is stored as nothing
            if "\x1e" in s or "\x1f" in s:
                raise ValueError("control character in extension field")
            parts.append(s)
        for i in _INTERNED:
            s = parts[i]
            idx = self._ids.get(s)
            if idx is None:
                idx = self._ids[s] = len(self._table)
                self._table.append(s)
            parts[i] = str(idx)
        head.extend("\x1f".join(parts).encode())
        head.append(_RS)
        n = len(head)
        chunks = self._chunks
        used = self._used
        if not chunks or used[-1] + n > len(chunks[-1]):
            # a new chunk: one allocation for the next ~70 records, not a small object each
            # (records scattered among the garbage of parsing would fragment the heap); the first
            # of a directory with no size given are small, doubling up to CHUNK
            spare = self._spare
            while spare and len(spare[0]) < n:
                spare.pop(0)
            if n > CHUNK:
                chunks.append(bytes(head))
            else:
                chunks.append(spare.pop(0) if spare else bytearray(max(n, min(CHUNK, 512 << len(chunks)))))
            used.append(n if n > CHUNK else 0)
            if n > CHUNK:  # a record longer than a chunk has one of its own
                shard[key] = (len(chunks) - 1) * CHUNK
                self._count += 1
                return
        at = used[-1]
        chunks[-1][at : at + n] = head
        used[-1] = at + n
        shard[key] = (len(chunks) - 1) * CHUNK + at
        self._count += 1

    def freeze(self):
        """Done adding: trim the last chunk and drop the interning table's index."""
        if self._ids is not None:
            if self._chunks and self._used[-1] < len(self._chunks[-1]):
                self._chunks[-1] = bytes(self._chunks[-1][: self._used[-1]])
            self._spare = []
            self._ids = None
        return self

    def _record(self, offset):
        """(Extension, offset of the next record) for the record at offset."""
        c = offset // CHUNK
        blob = self._chunks[c]
        base = c * CHUNK
        offset -= base
        flags = blob[offset]
        p = offset + 1
        ha1 = pin = b""
        if flags & _PHONE:
            ha1 = bytes(blob[p : p + self._width])
            p += self._width
        if flags & _PIN:
            pin = bytes(blob[p : p + PIN_BYTES])
            p += PIN_BYTES
        end = blob.find(b"\x1e", p)
        values = bytes(blob[p:end]).decode().split("\x1f")
        for i in _INTERNED:
            values[i] = self._table[int(values[i])]
        end += 1
        return Extension(values, ha1, pin), base + (end if end < self._used[c] else CHUNK)

    def get(self, number):
        """The Extension for a number, or None."""
        offset = None
        if is_digits(number) and len(number) < 10:
            key = code(number)
            offset = self._index[key % SHARDS].get(key)
        if offset is None:
            return None
        return self._record(offset)[0]

    def has(self, number):
        if not is_digits(number) or len(number) > 9:
            return False
        key = code(number)
        return key in self._index[key % SHARDS]

    def ha1(self, number, algorithm):
        """The HA1 of an extension's desk phone for a digest algorithm ("MD5", "SHA-256") as
        lowercase hex, or None (no such extension, no phone, an algorithm not kept): the
        lookup digest.Authenticator.check asks."""
        ext = self.get(number)
        decoy = ext is None
        if decoy:
            # the same work with the first record: a miss must take as long as a hit, or the
            # time of a 401 tells which extensions exist (digest.check equalises the hashing)
            if not (self._chunks and self._used[0]):
                return None
            ext = self._record(0)[0]
        if not ext.ha1 or algorithm not in self.algorithms:
            return None
        start = 0
        for a in self.algorithms:
            size = HA1_COLUMNS[a][1]
            if a == algorithm:
                value = hexlify(ext.ha1[start : start + size]).decode()
                return None if decoy else value
            start += size
        return None  # pragma: no cover  (algorithm is in self.algorithms)

    def check_pin(self, number, pin, realm):
        """Is `pin` the PIN of extension `number` (the attendant's PIN prompt)? False when the
        extension has no PIN."""
        ext = self.get(number)
        if ext is None or not ext.pin_hash or not pin:
            return False
        return _equal(pin_hash(realm, number, pin), ext.pin_hash)

    def _texts(self):
        """(chunk, start, end) of each record's text fields (after its flags and hashes), in
        insertion order: the one walk numbers() and name_keys() slice what they need from."""
        width = self._width
        for c in range(len(self._chunks)):
            blob = self._chunks[c]
            p = 0
            n = self._used[c]
            while p < n:
                flags = blob[p]
                p += 1 + (width if flags & _PHONE else 0) + (PIN_BYTES if flags & _PIN else 0)
                end = blob.find(b"\x1e", p)
                yield blob, p, end
                p = end + 1

    def numbers(self):
        """Every extension number, in insertion order (reads only the number of each record)."""
        for blob, p, _end in self._texts():
            yield bytes(blob[p : blob.find(b"\x1f", p)]).decode()

    def name_keys(self):
        """(number, keys) of every extension, in insertion order, for names.search: decodes
        only those two fields of each record, one record at a time (a list of all of them would
        hold ~60 B an extension while a caller spells a name)."""
        for blob, p, end in self._texts():
            sep = blob.find(b"\x1f", p)
            keys = blob.rfind(b"\x1f", p, end) + 1
            yield bytes(blob[p:sep]).decode(), bytes(blob[keys:end]).decode()

    def codes(self):
        """Every extension's code (see code()), in no particular order: small ints, so walking
        them allocates nothing."""
        for shard in self._index:
            for key in shard:
                yield key

    def records(self):
        """Every Extension, in insertion order (walks the chunks once)."""
        end = len(self._chunks) * CHUNK
        offset = 0
        while offset < end:
            ext, offset = self._record(offset)
            yield ext

    def view(self):
        """A re-iterable view of every record, for checks that walk the list twice."""
        return _View(self)

    def size_bytes(self):
        """Bytes of records (the chunks' lengths; the index is not counted)."""
        return sum(self._used)


class _View:
    def __init__(self, directory):
        self.directory = directory  # checks.check looks numbers up in it instead of copying them

    def __iter__(self):
        return self.directory.records()

    def __len__(self):
        return len(self.directory)

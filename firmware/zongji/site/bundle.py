"""The device bundle: a compiled site in canonical JSON lines, versioned by SHA-256.

    line 1   {"count":N,"directory_bytes":B,"format":2,"kind":"zongji-bundle","sha256":HEX,"site":NAME}
    line 2   the normalised site dict (sorted keys, compact separators, UTF-8)
    line 3+  one extension per line: a JSON array in directory.FIELDS order

An extension row holds no SIP secret and no PIN: stored_row() replaces the secret with its
digest HA1s (MD5 and SHA-256, H(number:realm:secret)) and the PIN with directory.pin_hash(),
using the site's realm. Format 1 held both in the clear; it is refused with a hint to rebuild.
The site line still holds [trunk] password: the provider's realm is not known in advance, so
only the password can answer its challenges.

`directory_bytes` is what the rows take packed in a Directory, so the device allocates it before
the first row (a hint: a bundle without it, or with a wrong one, loads all the same).
`sha256` covers every byte after the header line, so the version names the content and two
builds of the same site are byte-identical. The loader streams: it hashes and parses one
line at a time and packs extensions straight into the compact Directory, so the device never
holds the whole file or 500 parsed rows at once. It re-runs the same schema and checks the
CLI ran; any error, a wrong hash or a short file raises BundleError and nothing is applied.

What loading costs the heap, at its peak, is the site being built and one line: the checks
look extension numbers up in the Directory's own index and keep errors only (checks.check
with a Directory view), and the Directory grows in small chunks and shards. Loader takes the
lines one at a time, so a shell can load between other work (and a bench can measure each
step); load() is Loader over a whole stream. BENCHMARKS.md, "device: heap peak", has the
figures. Why the device re-runs the checks at all when the companion ran them: the sha256
stops a damaged bundle and the admin token a stranger's, but only the rules stop a bundle the
rules of this core refuse (another companion's, a hand-made one); it costs time, not heap.
"""

import hashlib
import json

from zongji.site.directory import FIELDS, HA1_COLUMNS, Directory, pin_hash
from zongji.site.model import Site, digest_of, realm_of

FORMAT = 2  # 1: secrets and PINs in the clear; 2: HA1s and PIN hashes
KIND = "zongji-bundle"
MAX_LINE = 16384  # one extension row, or the site line; longer lines are refused
BLOCK = 512  # bytes read from a stream at a time


class BundleError(Exception):
    pass


def __getattr__(name):
    # checks and schema are imported when a load first needs them, not with this module: a
    # device drops them again once its site is loaded (zongji.site.release_loader)
    if name == "checks":
        from zongji.site import checks

        return checks
    if name == "schema":
        from zongji.site import schema

        return schema
    raise AttributeError(name)


def _hex(digest):
    return "".join("%02x" % b for b in digest)


def _canonical(value):
    # CPython only (MicroPython's json has no sort_keys): bundles are built on the host.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def stored_row(ext, realm, algorithms=None):
    """A staff row (a dict by directory.STAFF_FIELDS names: secret and PIN in the clear) -> the
    row the bundle and the Directory hold (directory.FIELDS: HA1s, PIN hash). Host side: the
    device never sees the secret. Only the HA1s of `algorithms` (the site's [staff] digest;
    None: all) are filled: the others would only cost flash (a SHA-256 HA1 is 64 characters)."""
    from zongji.sip.auth import ha1  # host only: the device loads HA1s, never makes them
    from zongji.site.staffchecks import HA1_PREFIX, PIN_PREFIX, stored_pin, stored_secret

    number = str(ext.get("number") or "")
    secret = ext.get("secret") or ""
    pin = ext.get("pin") or ""
    if pin.startswith(PIN_PREFIX):  # as `zongji pull` writes it back: the hash itself
        made = {"pin_hash": stored_pin(pin) or ""}
    else:
        made = {"pin_hash": _hex(pin_hash(realm, number, pin)) if pin else ""}
    given = stored_secret(secret) if secret.startswith(HA1_PREFIX) else None
    for alg in HA1_COLUMNS:
        wanted = secret and (algorithms is None or alg in algorithms)
        if given is not None:
            value = given[0] if alg == "MD5" else given[1]
        else:
            value = ha1(alg, number, realm, secret) if wanted else ""
        made[FIELDS[HA1_COLUMNS[alg][0]]] = value if wanted else ""
    row = []
    for f in FIELDS:
        v = made[f] if f in made else ext.get(f)
        row.append(int(v or 0) if f == "follow_me" else ("" if v is None else str(v)))
    return row


def encode(site, extensions):
    """Build bundle bytes from a normalised site and staff dicts (host side)."""
    body = [_canonical(site)]
    realm = realm_of(site)
    algorithms = digest_of(site)
    for ext in extensions:
        body.append(_canonical(stored_row(ext, realm, algorithms)))
    data = b"\n".join(body) + b"\n"
    packed = Directory(algorithms)
    for line in body[1:]:
        packed.add(json.loads(line))
    header = {
        "count": len(extensions),
        "directory_bytes": packed.size_bytes(),
        "format": FORMAT,
        "kind": KIND,
        "sha256": _hex(hashlib.sha256(data).digest()),
        "site": (site.get("branch") or {}).get("name") or "",
    }
    return _canonical(header) + b"\n" + data


def _lines(source):
    """Byte lines from bytes, or from a stream with read (a file on the device). A stream is
    read in BLOCK-byte pieces: readline(MAX_LINE + 1) would ask the heap for MAX_LINE bytes in
    one piece for every line, the largest block of the whole load. A line longer than MAX_LINE
    is cut just past it (so _json_line refuses it) and the rest of the stream is not read."""
    if isinstance(source, (bytes, bytearray)):
        start = 0
        n = len(source)
        while start < n:
            end = source.find(b"\n", start)
            end = n if end < 0 else end + 1
            yield bytes(source[start:end])
            start = end
        return
    pieces = []  # the line so far, when it spans blocks
    size = 0
    while True:
        block = source.read(BLOCK)
        if not block:
            break
        start = 0
        n = len(block)
        while start < n:
            end = block.find(b"\n", start)
            if end < 0:
                pieces.append(block[start:])
                size += n - start
                if size > MAX_LINE:
                    yield b"".join(pieces)
                    return
                break
            line = block[start : end + 1]
            if pieces:
                pieces.append(line)
                line = b"".join(pieces)
                pieces = []
                size = 0
            yield line
            start = end + 1
    if pieces:
        yield b"".join(pieces)


def _json_line(line, what):
    if len(line) > MAX_LINE:
        raise BundleError("%s is longer than %d bytes" % (what, MAX_LINE))
    try:
        return json.loads(line.decode())
    except (ValueError, UnicodeError):
        raise BundleError("%s is not valid UTF-8 JSON" % what)


def read_header(line):
    header = _json_line(line, "bundle header")
    if not isinstance(header, dict) or header.get("kind") != KIND:
        raise BundleError("not a zongji bundle")
    if header.get("format") == 1:
        raise BundleError(
            "bundle format 1 (SIP secrets in the clear) is no longer read: re-run `zongji bundle` "
            "to rebuild site.zjb in format %d" % FORMAT
        )
    if header.get("format") != FORMAT:
        raise BundleError(
            "bundle format %r is not supported (this core reads format %d): re-run `zongji bundle` "
            "with the zongji version of this device" % (header.get("format"), FORMAT)
        )
    sha = header.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64:
        raise BundleError("bundle header has no sha256")
    if not isinstance(header.get("count"), int):
        raise BundleError("bundle header has no count")
    return header


def _row(value, lineno):
    if not isinstance(value, list) or len(value) != len(FIELDS):
        raise BundleError("line %d: an extension row must be a list of %d fields" % (lineno, len(FIELDS)))
    for i in range(len(FIELDS)):
        want = int if FIELDS[i] == "follow_me" else str
        if not isinstance(value[i], want) or isinstance(value[i], bool):
            raise BundleError("line %d: field %s has the wrong type" % (lineno, FIELDS[i]))
    return value


class Loader:
    """A bundle, one line at a time: feed(line) for each line as read (bytes, with or without
    its newline), then finish() -> Site. Raises BundleError; nothing is applied before finish()
    returns. Holds the site dict, the Directory being built and the line in hand."""

    def __init__(self):
        self.header = None
        self.site = None
        self.directory = None
        self.lineno = 0
        self.result = None
        self._hash = hashlib.sha256()

    def feed(self, line):
        self.lineno += 1
        if self.header is None:
            self.header = read_header(line)
            return
        self._hash.update(line)
        if self.site is None:
            from zongji.site import schema

            site, problems = schema.normalize(_json_line(line, "site line"))
            _raise_errors(problems)
            self.site = site
            size = self.header.get("directory_bytes")
            size = size if isinstance(size, int) and 0 <= size <= 64 * self.header["count"] + 4096 else 0
            self.directory = Directory(digest_of(site), expected=self.header["count"], size=size)
            return
        what = "line %d" % self.lineno
        try:
            self.directory.add(_row(_json_line(line, what), self.lineno))
        except ValueError as e:
            raise BundleError("%s: %s" % (what, e))

    def finish(self):
        from zongji.site import checks

        directory = self._verified()
        # errors only, and the extension numbers looked up in the directory: nobody reads
        # warnings here, and a copy of every number would cost more heap than the directory
        _raise_errors(checks.check(self.site, directory.view(), warnings=False))
        return Site(self.site, directory=directory, version=self.header["sha256"])

    def finishing(self):
        """finish() in steps: a generator that yields after each extension the checks read,
        then leaves the Site in self.result. For a shell that loads a sync between calls, and
        for bench/mpy/load_peak.py, which measures the heap at every step."""
        from zongji.site import checks

        directory = self._verified()
        problems = checks.ErrorsOnly()
        for _ in checks.check_steps(self.site, directory.view(), problems, False):
            yield
        _raise_errors(problems.items)
        self.result = Site(self.site, directory=directory, version=self.header["sha256"])

    def _verified(self):
        if self.header is None:
            raise BundleError("the bundle is empty")
        if self.site is None:
            raise BundleError("the bundle ends after its header")
        if _hex(self._hash.digest()) != self.header["sha256"]:
            raise BundleError("bundle content does not match its sha256: it was damaged or altered")
        directory = self.directory.freeze()
        if len(directory) != self.header["count"]:
            raise BundleError("bundle holds %d extensions, header says %d" % (len(directory), self.header["count"]))
        return directory


def load(source):
    """Verify and load a bundle (bytes or a readable stream) -> Site. Raises BundleError."""
    loader = Loader()
    for line in _lines(source):
        loader.feed(line)
    return loader.finish()


def _raise_errors(problems):
    for level, path, message in problems:
        if level == "error":
            where = ".".join([str(p) for p in path])
            raise BundleError("%s%s" % (where + ": " if where else "", message))

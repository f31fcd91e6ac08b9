"""The device bundle: a compiled site in canonical JSON lines, versioned by SHA-256.

    line 1   {"count":N,"format":2,"kind":"zongji-bundle","sha256":HEX,"site":NAME}
    line 2   the normalised site dict (sorted keys, compact separators, UTF-8)
    line 3+  one extension per line: a JSON array in directory.FIELDS order

An extension row holds no SIP secret and no PIN: stored_row() replaces the secret with its
digest HA1s (MD5 and SHA-256, H(number:realm:secret)) and the PIN with directory.pin_hash(),
using the site's realm. Format 1 held both in the clear; it is refused with a hint to rebuild.
The site line still holds [trunk] password: the provider's realm is not known in advance, so
only the password can answer its challenges.

`sha256` covers every byte after the header line, so the version names the content and two
builds of the same site are byte-identical. The loader streams: it hashes and parses one
line at a time and packs extensions straight into the compact Directory, so the device never
holds the whole file or 500 parsed rows at once. It re-runs the same schema and checks the
CLI ran; any error, a wrong hash or a short file raises BundleError and nothing is applied.
"""

import hashlib
import json

from zongji.site import checks, schema
from zongji.site.directory import FIELDS, HA1_COLUMNS, Directory, pin_hash
from zongji.site.model import Site, digest_of, realm_of

FORMAT = 2  # 1: secrets and PINs in the clear; 2: HA1s and PIN hashes
KIND = "zongji-bundle"
MAX_LINE = 16384  # one extension row, or the site line; longer lines are refused


class BundleError(Exception):
    pass


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

    number = str(ext.get("number") or "")
    secret = ext.get("secret") or ""
    pin = ext.get("pin") or ""
    made = {"pin_hash": _hex(pin_hash(realm, number, pin)) if pin else ""}
    for alg in HA1_COLUMNS:
        wanted = secret and (algorithms is None or alg in algorithms)
        made[FIELDS[HA1_COLUMNS[alg][0]]] = ha1(alg, number, realm, secret) if wanted else ""
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
    header = {
        "count": len(extensions),
        "format": FORMAT,
        "kind": KIND,
        "sha256": _hex(hashlib.sha256(data).digest()),
        "site": (site.get("branch") or {}).get("name") or "",
    }
    return _canonical(header) + b"\n" + data


def _lines(source):
    """Byte lines from bytes, or from a stream with readline (a file on the device)."""
    if isinstance(source, (bytes, bytearray)):
        start = 0
        n = len(source)
        while start < n:
            end = source.find(b"\n", start)
            end = n if end < 0 else end + 1
            yield bytes(source[start:end])
            start = end
        return
    while True:
        line = source.readline(MAX_LINE + 1)
        if not line:
            return
        yield line


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


def load(source):
    """Verify and load a bundle (bytes or a readable stream) -> Site. Raises BundleError."""
    lines = _lines(source)
    header = read_header(_next(lines, "the bundle is empty"))
    h = hashlib.sha256()
    site_line = _next(lines, "the bundle ends after its header")
    h.update(site_line)
    raw = _json_line(site_line, "site line")
    site, problems = schema.normalize(raw)
    _raise_errors(problems)
    directory = Directory(digest_of(site))
    lineno = 2
    for line in lines:
        lineno += 1
        h.update(line)
        try:
            directory.add(_row(_json_line(line, "line %d" % lineno), lineno))
        except ValueError as e:
            raise BundleError("line %d: %s" % (lineno, e))
    if _hex(h.digest()) != header["sha256"]:
        raise BundleError("bundle content does not match its sha256: it was damaged or altered")
    if len(directory) != header["count"]:
        raise BundleError("bundle holds %d extensions, header says %d" % (len(directory), header["count"]))
    _raise_errors(checks.check(site, directory.view(), warnings=False))  # nobody reads them here
    return Site(site, directory=directory, version=header["sha256"])


def _next(lines, message):
    try:
        return next(lines)
    except StopIteration:
        raise BundleError(message)


def _raise_errors(problems):
    for level, path, message in problems:
        if level == "error":
            where = ".".join([str(p) for p in path])
            raise BundleError("%s%s" % (where + ": " if where else "", message))

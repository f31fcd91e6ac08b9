"""A bundle sent as the lines that changed: a one-extension edit of a 1000-staff site is a few
hundred bytes on the wire instead of the whole compressed bundle.

    delta = make(old, new)          host side (difflib): bytes
    new = apply(old, delta)         the device: rebuilds the new bundle from the one it runs

A bundle is lines (site/bundle.py: a header, the site, one line per extension). A delta is

    zongji-delta-1 \\n
    =START COUNT \\n              copy COUNT lines of the old bundle from line START (0-based)
    +COUNT \\n LINE \\n ...        COUNT new lines, as they are

in the order of the new bundle. apply() checks every range against the old bundle and raises
ValueError for anything it cannot follow; what it rebuilds is then checked like any bundle
(its header's SHA-256 covers every line after it), so a wrong delta, or one made against
another base, is refused and changes nothing. PUT /bundle?delta=1 carries it (admin.protocol).
"""

MAGIC = b"zongji-delta-1"


def make(old, new):
    """The delta turning bundle bytes old into new (CPython: difflib)."""
    import difflib

    a = old.split(b"\n")
    b = new.split(b"\n")
    out = [MAGIC]
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(b"=%d %d" % (i1, i2 - i1))
        elif j2 > j1:  # replace or insert: the new lines; a delete is what is not copied
            out.append(b"+%d" % (j2 - j1))
            out.extend(b[j1:j2])
    return b"\n".join(out) + b"\n"


def apply(old, delta):
    """The new bundle from old bytes and a delta; ValueError when the delta does not fit."""
    a = old.split(b"\n")
    lines = delta.split(b"\n")
    if not lines or lines[0] != MAGIC:
        raise ValueError("not a bundle delta")
    if lines[-1] == b"":
        lines.pop()
    out = []
    i = 1
    n = len(lines)
    while i < n:
        op = lines[i]
        i += 1
        if op[:1] == b"=":
            parts = op[1:].split(b" ")
            if len(parts) != 2:
                raise ValueError("a copy needs START COUNT: %r" % op[:40])
            start, count = int(parts[0]), int(parts[1])
            if start < 0 or count < 0 or start + count > len(a):
                raise ValueError("the delta copies lines the running bundle does not have")
            out.extend(a[start : start + count])
        elif op[:1] == b"+":
            count = int(op[1:])
            if count < 0 or i + count > n:
                raise ValueError("the delta ends inside its new lines")
            out.extend(lines[i : i + count])
            i += count
        else:
            raise ValueError("a delta line is =START COUNT or +COUNT, not %r" % op[:40])
    return b"\n".join(out)

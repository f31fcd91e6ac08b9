"""The registrar's file: bindings as they are written to flash and read back at boot.

This module owns the layout of a binding tuple (the field indexes below), the file format
(dump, load, LoadError) and when a write is due (save_due, saved: the lazy write rule). The
Registrar (switch/registrar.py) builds on Persisted and owns the REGISTER side.

Persistence (flash wears out): `dirty` is set when the set of bindings changes (a new contact,
one seen from a new source address, a removal, an expiry, a replacement): write soon. A refresh
that only moves an expiry (and the stored CSeq / Call-ID) forward does not set it; such changes
are written lazily. Each binding remembers the expiry the file holds for it (W, as of the last
dump), beside its real one (E). A write is due when, for some live binding refreshed since,

    W - now < (E - now) / 2 + save_slack        (seconds; save_slack = 5)

that is, when the file no longer covers half of what the binding has left. Why this is enough:
a phone refreshing every I seconds with lifetime L (I < L) that was not found due just after a
refresh has W >= now + L/2 + slack, past its next refresh if I <= L/2; if I > L/2 every refresh
of it is due, so W = E. Either way a restart at any moment restores the binding until the phone
next refreshes, with at least save_slack to spare. And writes stay few: a dump brings every W up
to date, so one binding causes at most a write each L/2 - save_slack seconds, about two a
lifetime, whatever its refresh rate (a 60 s refresh of an hour's binding: a write each 30 min,
not each minute); many phones' writes fall together.

The shell (zongji.shell.pump): when reg.dirty, or once now_ms >= reg.save_due() (ms, or None
while the file holds every binding exactly): data = reg.dump(now_ms), write a temp file, flush,
close, os.rename over the real one, then reg.saved(now_ms) (which clears `dirty`); a failed
write calls nothing, so it is tried again. At shutdown, write if dirty or save_due() is not
None. At boot: reg.load(data, now_ms, elapsed_ms); on LoadError log it and start empty (phones
register again within their refresh interval). The file holds remaining lifetimes, so pass
`elapsed_ms` if the shell knows the downtime (host mode: the file's age), else a binding can
outlive its phone by the downtime. The stored CSeq only ever lags the phone's, so a reload
never fails its next REGISTER.
"""

import json

from zongji.compat import const
from zongji.sip.uri import ParseError, parse_uri
from zongji.site.directory import code
from zongji.switch.seconds import Seconds
from zongji.text import is_digits

KIND = "zongji-registrations"
FORMAT = 1

# fields of a binding tuple
URI = const(0)
HOST = const(1)
PORT = const(2)
EXP = const(3)  # seconds since self._base
CID = const(4)  # 30-bit hash of the Call-ID
CSEQ = const(5)
SAVED = const(6)  # the expiry the file holds (as of the last dump), 0 before any


class LoadError(ValueError):
    """A registrations file that cannot be used; str(e) says why."""


def find(bindings, text):
    """The index of the binding with contact `text` in a list of bindings, or -1."""
    for i in range(len(bindings)):
        if bindings[i][URI] == text:
            return i
    return -1


def _is_int(x, low, high):
    return isinstance(x, int) and not isinstance(x, bool) and low <= x <= high


class Persisted(Seconds):
    """The bindings table as saved: `_b` (directory.code(number) -> [binding, ...]), `dirty` and
    the lazy write rule. Registrar subclasses it; it sets site, max_uri, max_expires and
    max_contacts, and keeps _next and _due as this class does."""

    save_slack = 5  # seconds of margin in the lazy write rule (module docstring)

    def _earliest(self):
        nxt = None
        for bindings in self._b.values():
            for b in bindings:
                if nxt is None or b[EXP] < nxt:
                    nxt = b[EXP]
        return nxt

    def _due_at(self, b):
        """When binding b makes a write due (seconds), or None while the file holds it exactly."""
        if b[SAVED] >= b[EXP]:
            return None
        return 2 * b[SAVED] - b[EXP] - 2 * self.save_slack

    def save_due(self):
        """When (ms, same clock as now_ms) refreshed bindings make a write due, by the rule in
        the module docstring; None while the file holds every binding's expiry. Apart from
        `dirty`: that one means write now."""
        return None if self._due is None else self._ms(self._due)

    def saved(self, now_ms):
        """What dump() returned is safely written: the file now holds every binding as it is."""
        for key in self._b:
            bindings = self._b[key]
            for i in range(len(bindings)):
                b = bindings[i]
                if b[SAVED] != b[EXP]:
                    bindings[i] = b[:SAVED] + (b[EXP],)
        self._due = None
        self.dirty = False

    def dump(self, now_ms):
        """The live bindings as compact JSON bytes, lifetimes as seconds left. Changes nothing:
        the shell calls saved() once the file is safely renamed into place."""
        now = self._sec(now_ms)
        rows = []
        for key in sorted(self._b):
            number = str(key)[1:]
            for b in self._b[key]:
                if b[EXP] > now:
                    rows.append([number, b[URI], b[HOST], b[PORT], b[EXP] - now, b[CID], b[CSEQ]])
        doc = {"format": FORMAT, "kind": KIND, "bindings": rows}
        return json.dumps(doc, separators=(",", ":")).encode()

    def load(self, data, now_ms, elapsed_ms=0):
        """Replace the bindings with those dump() wrote, each `elapsed_ms` shorter (time the
        device was down, if the shell knows it). Bindings of extensions that no longer have a
        phone, or with no time left, are dropped (and `dirty` set, so the file is rewritten).
        Raises LoadError on anything that is not such a file; the table is then empty."""
        self._b = {}
        self._src = {}
        self._next = None
        self._due = None
        self.dirty = False
        now = self._sec(now_ms)
        table = {}
        dropped = False
        for n, row in enumerate(_rows(data)):
            if not isinstance(row, list) or len(row) != 7:
                raise LoadError("registrations: binding %d is not a list of 7 values" % n)
            number, text, host, port, left, cid, cseq = row
            if not (
                isinstance(number, str)
                and is_digits(number)
                and len(number) < 10
                and isinstance(text, str)
                and 0 < len(text) <= self.max_uri
                and isinstance(host, str)
                and 0 < len(host) <= 64
                and _is_int(port, 0, 65535)
                and _is_int(left, 1, 0xFFFFFFFF)
                and _is_int(cid, 0, 0x3FFFFFFF)
                and _is_int(cseq, 0, 0x7FFFFFFF)
            ):
                raise LoadError("registrations: binding %d has a bad value" % n)
            try:
                ok = parse_uri(text).is_sip
            except ParseError:
                ok = False
            if not ok:
                raise LoadError("registrations: binding %d has a bad contact uri" % n)
            bindings = table.setdefault(code(number), [])
            if find(bindings, text) >= 0:
                raise LoadError("registrations: binding %d repeats a contact" % n)
            ext = self.site.directory.get(number)
            left = min(left - elapsed_ms // 1000, self.max_expires)
            if ext is None or not ext.has_phone() or left <= 0 or len(bindings) >= self.max_contacts:
                dropped = True
            else:
                bindings.append((text, host, port, now + left, cid, cseq, now + left))
        self._b = {key: table[key] for key in table if table[key]}
        self._src = {}
        for key in self._b:
            self._reindex(str(key)[1:], (), self._b[key])
        self._next = self._earliest()
        self.dirty = dropped


def _rows(data):
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise LoadError("registrations: expected bytes, got " + type(data).__name__)
    try:
        doc = json.loads(data.decode())
    except (ValueError, UnicodeError):  # MicroPython's json raises ValueError too
        raise LoadError("registrations: not json")
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise LoadError("registrations: not a zongji registrations file")
    if doc.get("format") != FORMAT:
        raise LoadError("registrations: format %r is not %d" % (doc.get("format"), FORMAT))
    rows = doc.get("bindings")
    if not isinstance(rows, list):
        raise LoadError("registrations: no bindings list")
    return rows

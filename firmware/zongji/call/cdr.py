"""Call detail records: the newest calls in a bounded ring, saved as JSON lines.

    log = CdrLog(max_records=500)
    log.add({"start": 1764060000, "answer": 1764060005, "end": 1764060040, "from": "201",
             "to": "600", "route": "group 600 -> 202", "outcome": "answered", "status": 200})
    log.records(since=None)      [record dict, ...] oldest first
    log.dirty / log.dump()       persistence: write the bytes when dirty, then log.saved()
    log.unsaved / log.tail()     or append only the newest records (log.rewrite: not enough)
    log.load(data)               at boot; damaged lines are skipped and counted (log.skipped)

A record is a dict with exactly these keys (add() fills the optional ones):

    start     int, unix seconds (UTC) when the call came in                        required
    answer    int unix seconds when it was answered, or None                      default None
    end       int unix seconds when it ended, start <= end                        default start
    from      str, who called: an extension, an outside number, a SIP user          default ""
    to        str, what was dialled: a short number, a DID, an outside number       default ""
    route     str, how the switch routed it, e.g. "group 600 -> 202"                default ""
              (None for any of these three means "", an int number becomes its digits)
    outcome   one of OUTCOMES:                                                       required
              answered   someone picked up
              busy       every phone tried answered busy (486/600)
              no-answer  nobody picked up before the ring timeout
              cancelled  the caller hung up before anyone answered
              failed     the route broke: no phone registered, a trunk or network error
              refused    the switch would not place it: unknown number, class of service
    status    int, the final SIP status the caller got (200, 486, 487 ...), 0 if none  default 0
    reason    str, why, in the call decision's words ("class 'staff' may not dial     default ""
              international numbers", "the provider is unavailable")
    duration  int seconds talked: end - answer, 0 when not answered                 computed
    by        str, the extension or number that answered, "" when none              default ""

Times are whole seconds (floats are truncated), answer lies within [start, end]. Text is cut
to max_text characters (route: max_route), so a caller-supplied From cannot grow memory.
add() raises ValueError for a record the switch got wrong (a missing or unknown key, a wrong
type, an outcome not in OUTCOMES, times out of order): that is a bug, not peer input.

Storage. Each record is kept as its finished JSON line (bytes, keys in the order above),
so dump() is one join and records() decodes on demand. A typical call's line is ~155 bytes;
kept as a bytes object it costs ~180 bytes on MicroPython (16-byte blocks), and adding one
allocates ~550 bytes, garbage included (test_cdr). The default 500 records are ~90 KB: fine
on a PC, too much for an ESP32 without PSRAM, whose shell passes a smaller max_records.

Persistence. dump() is the records as JSON lines, oldest first, one object per line, each
line standing on its own: a line torn by a power cut (or any garbage) costs that line only.
load() skips such lines, counts them in `skipped`, and keeps the newest max_records of the
rest. `dirty` is set by add() (and by a load that skipped or dropped lines, so the file is
rewritten clean); the shell clears it with saved() once the records are safely on flash.

Appending. Rewriting every record for each new call wears flash out: 500 records are ~100 KB,
200 calls an hour 20 MB an hour. So the shell appends tail() (the `unsaved` newest lines) to
the file instead, and rewrites it whole (dump(), atomically) only when `rewrite` says it must
(a load found damaged lines, or more lines than it keeps) or the file has grown to twice
max_records. A torn append costs its own lines, as a torn line does (load() skips them, and
then asks for a rewrite).
"""

import json

KEYS = ("start", "answer", "end", "from", "to", "route", "outcome", "status", "reason", "duration", "by")
OUTCOMES = ("answered", "busy", "no-answer", "cancelled", "failed", "refused")

_TEXT = ("from", "to", "route", "reason", "by")
_OPTIONAL = ("reason", "by")  # left out of a line when empty
_MAX_TIME = 0xFFFFFFFFFF  # 40 bits of seconds: far beyond any real clock, catches ms by mistake


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _seconds(record, key, default):
    x = record.get(key, default)
    if isinstance(x, float):
        x = int(x)
    if not _is_int(x) or not 0 <= x <= _MAX_TIME:
        raise ValueError("cdr: %s must be unix seconds, not %r" % (key, x))
    return x


def _quote(text):
    # json.dumps of a str: CPython escapes non-ASCII (\uXXXX), MicroPython writes UTF-8;
    # both read back the same.
    return json.dumps(text)


class CdrLog:
    """The newest `max_records` call records. See the module docstring."""

    max_records = 500  # records kept; the oldest goes first
    max_text = 64  # characters kept of from / to
    max_route = 96  # characters kept of route

    def __init__(self, max_records=None):
        if max_records is not None:
            if not _is_int(max_records) or max_records < 1:
                raise ValueError("cdr: max_records must be a positive int")
            self.max_records = max_records
        self._ring = []  # encoded lines; once full, _head is the oldest
        self._head = 0
        self.dirty = False
        self.unsaved = 0  # the newest records not on flash yet (tail())
        self.rewrite = False  # the file must be written whole (dump()), not appended to
        self.file_lines = 0  # lines the file holds (load(), and the shell's appends)
        self.skipped = 0  # lines the last load() could not use

    # -- records in --

    def normalise(self, record):
        """The record with every key of KEYS, checked and cut to size; ValueError if wrong."""
        if not isinstance(record, dict):
            raise ValueError("cdr: a record is a dict, not " + type(record).__name__)
        for key in record:
            if key not in KEYS:
                raise ValueError("cdr: unknown key %r" % (key,))
        if "start" not in record or "outcome" not in record:
            raise ValueError("cdr: a record needs start and outcome")
        start = _seconds(record, "start", 0)
        end = _seconds(record, "end", start)
        answer = record.get("answer")
        if answer is not None:
            answer = _seconds(record, "answer", None)
        if end < start or (answer is not None and not start <= answer <= end):
            raise ValueError("cdr: times out of order: start %d answer %r end %d" % (start, answer, end))
        out = {"start": start, "answer": answer, "end": end}
        for key in _TEXT:
            text = record.get(key)
            if text is None:
                text = ""
            elif _is_int(text) and key != "route":
                text = str(text)
            if not isinstance(text, str):
                raise ValueError("cdr: %s must be text, not %r" % (key, text))
            limit = self.max_route if key in ("route", "reason") else self.max_text
            out[key] = text[:limit] if len(text) > limit else text
        outcome = record["outcome"]
        if outcome not in OUTCOMES:
            raise ValueError("cdr: outcome %r is not one of %s" % (outcome, ", ".join(OUTCOMES)))
        out["outcome"] = outcome
        status = record.get("status", 0)
        if not _is_int(status) or not (status == 0 or 100 <= status <= 699):
            raise ValueError("cdr: status must be a SIP status (100-699) or 0, not %r" % (status,))
        out["status"] = status
        talked = end - answer if answer is not None else 0
        duration = record.get("duration", talked)
        if isinstance(duration, float):
            duration = int(duration)
        if not _is_int(duration) or not 0 <= duration <= end - start:
            raise ValueError("cdr: duration must be 0 to end - start seconds, not %r" % (duration,))
        out["duration"] = duration
        return out

    def _encode(self, r):
        # by hand, in KEYS order: MicroPython's json.dumps has no sort_keys. An empty reason is
        # left out: most answered calls have none, and the line stays short; so is an empty "by"
        reason = ',"reason":%s' % _quote(r["reason"]) if r["reason"] else ""
        by = ',"by":%s' % _quote(r["by"]) if r["by"] else ""
        return (
            '{"start":%d,"answer":%s,"end":%d,"from":%s,"to":%s,"route":%s,"outcome":"%s","status":%d%s,'
            '"duration":%d%s}\n'
            % (
                r["start"],
                "null" if r["answer"] is None else "%d" % r["answer"],
                r["end"],
                _quote(r["from"]),
                _quote(r["to"]),
                _quote(r["route"]),
                r["outcome"],
                r["status"],
                reason,
                r["duration"],
                by,
            )
        ).encode()

    def _push(self, line):
        """Store an encoded line; True if the oldest record made room for it."""
        if len(self._ring) < self.max_records:
            self._ring.append(line)
            return False
        self._ring[self._head] = line
        self._head = (self._head + 1) % len(self._ring)
        return True

    def add(self, record):
        """Keep a finished call (see the module docstring); returns the normalised record."""
        r = self.normalise(record)
        self._push(self._encode(r))
        self.dirty = True
        self.unsaved += 1
        if self.unsaved > len(self._ring):  # the unsaved ones overran the ring: write it whole
            self.unsaved = len(self._ring)
            self.rewrite = True
        return r

    # -- records out --

    def __len__(self):
        return len(self._ring)

    def _lines(self):
        ring = self._ring
        for i in range(len(ring)):
            yield ring[(self._head + i) % len(ring)]

    def records(self, since=None):
        """The records, oldest first, as dicts; with `since` (unix seconds) only the calls
        that started then or later."""
        out = []
        for line in self._lines():
            r = json.loads(line)
            for key in _OPTIONAL:  # left out when empty (see _encode)
                if key not in r:
                    r[key] = ""
            if since is None or r["start"] >= since:
                out.append(r)
        return out

    def dump(self):
        """Every record as JSON lines, oldest first. Does not clear `dirty`: the shell does
        that once the file is safely renamed into place (saved(whole=True))."""
        return b"".join(list(self._lines()))

    def must_rewrite(self):
        """Must the next save write the file whole (dump()) rather than append tail()?"""
        return self.rewrite or self.file_lines + self.unsaved > 2 * self.max_records

    def tail(self):
        """The `unsaved` newest records as JSON lines, oldest first: what to append."""
        ring = self._ring
        n = len(ring)
        return b"".join([ring[(self._head + i) % n] for i in range(n - self.unsaved, n)])

    def saved(self, whole=False):
        """The shell wrote dump() (whole) or appended tail(): nothing is pending."""
        self.file_lines = len(self._ring) if whole else self.file_lines + self.unsaved
        self.dirty = self.rewrite = False
        self.unsaved = 0

    def load(self, data):
        """Replace the records with those in `data` (what dump() wrote). Lines that are not a
        valid record are skipped and counted in `skipped`; only the newest max_records are
        kept. Returns how many records were loaded."""
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, bytes):
            raise ValueError("cdr: load takes bytes, not " + type(data).__name__)
        self._ring = []
        self._head = 0
        self.skipped = 0
        self.unsaved = 0
        dropped = False
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                r = json.loads(line.decode())
                r = self.normalise(r)
            except (ValueError, UnicodeError, TypeError, KeyError):  # json errors are ValueError
                self.skipped += 1
                continue
            if self._push(self._encode(r)):
                dropped = True
        self.dirty = self.rewrite = bool(self.skipped) or dropped or (bool(data) and not data.endswith(b"\n"))
        self.file_lines = len(self._ring)
        return len(self._ring)

"""DTMF out of band: RFC 4733 telephone-events (received and sent over RTP) and SIP INFO bodies.
The in-band tone detector is media/dtmf.py's; this module owns the event payload, reporting each
key press once, sending a press, and reading INFO bodies. Digits are one-character strings from
"0123456789*#ABCD" (event codes 0-15, RFC 4733 3.2).

    ev = decode(payload)                (event, end, volume, duration); EventError if malformed
    n = encode(buf, event, end, volume, duration)        4 bytes into buf

    rx = EventReceiver()
    digit = rx.receive(pkt.ts, pkt.payload)    "5" once per press, else None
    tx = EventSender(rtp_sender, pt=101)
    tx.send("5#")                       queue digits; then at each frame due:
    pkt = tx.frame(now_ms)              the packet to send instead of audio, or None (send audio)

    digit, duration_ms = parse_info(content_type, body)   INFO; EventError(reason, status)

Rules, with their sections of RFC 4733:
  - Payload (2.3): event 8 bits, E (end) bit, R bit ignored, volume 6 bits, duration 16 bits
    in timestamp units since the event began. Several blocks may follow one another (2.5.1.5):
    each starts where the previous one's duration ends.
  - One press, one report (2.5.2): an event is named by its RTP timestamp (its start, the same
    in every packet of it) and code. The first packet seen of it reports the press, be it the
    start (marker), an update or, when those were lost, an end packet; the rest of it, the
    three end packets (2.5.1.4) and late reordered ones, report nothing. The same digit with a
    new timestamp is a new press. A long event carried on in a new segment (2.5.1.3: the new
    timestamp is the old one plus its duration, the old one never ended) is the same press.
  - Sending (2.5.1): the first packet has the marker and the timestamp of the frame it starts
    in; one update per frame (20 ms, within the 50 ms of 2.5.1.2), duration growing by a
    frame; the end packet is sent three times, each with its own sequence number and the same
    timestamp and duration. Presses are at most 8 s long, so the 16-bit duration never
    wraps and needs no segments.
  - SIP INFO (not an RFC: the de facto bodies): application/dtmf-relay lines `Signal=5` and
    `Duration=160` (ms; keys in any case, spaces around '=' allowed), application/dtmf a
    bare `5`. Signals are a digit, * # A-D, or their event codes 10-15; anything else, a
    second Signal, or a body over max_info_body bytes is refused.
"""

DIGITS = "0123456789*#ABCD"
_M32 = 0xFFFFFFFF
max_info_body = 256
MAX_PRESS_MS = 8000  # 64,000 samples: under the 16-bit duration's 65,535


class EventError(ValueError):
    """A telephone-event payload or INFO body we refuse. `status` is the SIP answer for an
    INFO request (400 bad body, 415 content type not ours)."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def digit_of(event):
    """Event code -> digit, or None for codes that are not DTMF (16 flash, tones, ...)."""
    return DIGITS[event] if 0 <= event < 16 else None


def event_of(digit):
    """Digit (a-d in any case) -> event code; ValueError for anything else."""
    i = DIGITS.find(digit.upper()) if isinstance(digit, str) and len(digit) == 1 else -1
    if i < 0:
        raise ValueError("not a dtmf digit: %r" % (digit,))
    return i


def decode(payload, at=0):
    """The 4-byte block at `at` -> (event, end, volume, duration)."""
    if len(payload) < at + 4:
        raise EventError("telephone-event payload shorter than 4 bytes")
    b1 = payload[at + 1]
    return payload[at], bool(b1 & 0x80), b1 & 0x3F, (payload[at + 2] << 8) | payload[at + 3]


def encode(buf, event, end, volume, duration, at=0):
    """One block into buf[at:at+4]; returns 4. volume 0-63 (-dBm0), duration 0-65535."""
    buf[at] = event & 0xFF
    buf[at + 1] = (0x80 if end else 0) | (volume & 0x3F)
    buf[at + 2] = (duration >> 8) & 0xFF
    buf[at + 3] = duration & 0xFF
    return 4


class EventReceiver:
    """Key presses from one stream's telephone-event packets. `history` events are remembered
    (enough for the redundant and reordered packets of the last few presses). Counters:
    presses, malformed, other (events that are not digits, reported as nothing)."""

    def __init__(self, history=4):
        self.history = history
        self._recent = []  # [ts, event, ended, duration], oldest first
        self.presses = self.malformed = self.other = 0
        self.last_duration = 0  # samples, of the event last updated

    def receive(self, ts, payload):
        """One packet's timestamp and payload -> the digit of a new press, or None. With
        several blocks in one packet, the last new digit is returned (see receive_all)."""
        found = self.receive_all(ts, payload)
        return found[-1] if found else None

    def receive_all(self, ts, payload):
        """Like receive, but a list of every new digit the packet starts (usually 0 or 1)."""
        found = []
        n = len(payload)
        if n < 4 or n % 4:
            self.malformed += 1
            return found
        at = 0
        while at < n:
            event, end, _volume, duration = decode(payload, at)
            digit = self._event(ts, event, end, duration)
            if digit is not None:
                found.append(digit)
            ts = (ts + duration) & _M32
            at += 4
        return found

    def _event(self, ts, event, end, duration):
        recent = self._recent
        for r in recent:
            if r[0] == ts and r[1] == event:
                if duration > r[3]:
                    r[3] = duration
                r[2] = r[2] or end
                self.last_duration = r[3]
                return None
        if recent:
            last = recent[-1]
            if last[1] == event and not last[2] and ((last[0] + last[3]) & _M32) == ts:
                last[0] = ts  # the next segment of a long event (2.5.1.3)
                last[2] = end
                last[3] = duration
                return None
        recent.append([ts, event, end, duration])
        if len(recent) > self.history:
            recent.pop(0)
        self.last_duration = duration
        digit = digit_of(event)
        if digit is None:
            self.other += 1
            return None
        self.presses += 1
        return digit


class EventSender:
    """Presses sent on `rtp` (an rtp.RtpSender: the events share its SSRC, sequence numbers
    and clock) with payload type `pt`. duration_ms and gap_ms: each press's length and the
    audio between presses. At most max_queue digits wait."""

    max_queue = 32

    def __init__(self, rtp, pt=101, volume=10, duration_ms=100, gap_ms=60):
        self.rtp = rtp
        self.pt = pt
        self.volume = volume
        self.duration_ms = duration_ms
        self.gap_ms = gap_ms
        self._queue = []
        self._ts = 0
        self._dur = 0  # samples so far of the press on air
        self._target = 0
        self._event = None  # code of the press on air
        self._ends = 0  # end packets still to send
        self._gap = 0  # frames of audio still owed before the next press
        self._buf = bytearray(4)

    def send(self, digits, duration_ms=None):
        """Queue each digit of `digits` (a string); ValueError for an unknown one or when the
        queue is full. duration_ms: this press's length (default duration_ms, at most 8 s)."""
        ms = self.duration_ms if duration_ms is None else duration_ms
        if not 0 < ms <= MAX_PRESS_MS:
            raise ValueError("press duration %r ms out of range" % (ms,))
        codes = [event_of(d) for d in digits]
        if len(self._queue) + len(codes) > self.max_queue:
            raise ValueError("dtmf queue full")
        for c in codes:
            self._queue.append((c, ms))
        return len(codes)

    def busy(self):
        """True while a press is on air, owed its gap, or queued."""
        return bool(self._queue) or self._event is not None or self._gap > 0

    def frame(self, now_ms):
        """At a frame due: the telephone-event packet to send (a memoryview from the RTP
        sender), or None when the shell should send audio instead."""
        rtp = self.rtp
        if self._event is None:
            if self._gap > 0:
                self._gap -= 1
                return None
            if not self._queue:
                return None
            self._event, ms = self._queue.pop(0)
            rtp.catch_up(now_ms)
            self._ts = rtp.ts  # the event starts at the frame it is sent in
            self._dur = rtp.samples
            self._target = ms * rtp.samples // rtp.frame_ms
            self._ends = 3
            return self._packet(now_ms, True, self._dur >= self._target)
        if self._dur < self._target:
            self._dur += rtp.samples
            return self._packet(now_ms, False, self._dur >= self._target)
        return self._packet(now_ms, False, True)

    def _packet(self, now_ms, marker, end):
        encode(self._buf, self._event, end, self.volume, self._dur)
        pkt = self.rtp.packet(self._buf, now_ms, pt=self.pt, ts=self._ts, marker=marker)
        if end:
            self._ends -= 1
            if self._ends == 0:
                self._event = None
                self._gap = (self.gap_ms + self.rtp.frame_ms - 1) // self.rtp.frame_ms
        return pkt


def _signal(value):
    v = value.strip()
    if v.isdigit() and len(v) <= 2:
        n = int(v)
        if n < 16:
            return DIGITS[n]
        raise EventError("signal %s is not a dtmf event" % v)
    if len(v) == 1 and v.upper() in DIGITS:
        return v.upper()
    raise EventError("signal %r is not a dtmf digit" % v)


def parse_info(content_type, body):
    """A SIP INFO's Content-Type (str; parameters allowed) and body (bytes or str) ->
    (digit, duration_ms or None)."""
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype not in ("application/dtmf-relay", "application/dtmf"):
        raise EventError("content type %r is not dtmf" % ctype, 415)
    if len(body) > max_info_body:
        raise EventError("dtmf body over %d bytes" % max_info_body)
    if not isinstance(body, str):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeError:
            raise EventError("dtmf body is not text")
    if ctype == "application/dtmf":
        if not body.strip():
            raise EventError("empty dtmf body")
        return _signal(body), None
    digit = duration = None
    for line in body.replace("\r", "\n").split("\n"):
        if not line.strip():
            continue
        key, eq, value = line.partition("=")
        if not eq:
            raise EventError("dtmf-relay line without '=': %r" % line.strip())
        key = key.strip().lower()
        if key == "signal":
            if digit is not None:
                raise EventError("second Signal in dtmf-relay body")
            digit = _signal(value)
        elif key == "duration":
            v = value.strip()
            if not v.isdigit() or len(v) > 6:
                raise EventError("bad Duration %r" % v)
            duration = int(v)
    if digit is None:
        raise EventError("dtmf-relay body without Signal")
    return digit, duration

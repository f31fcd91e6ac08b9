"""The admin protocol on the REPL UART while the app runs: frames, retries, messages (sans-IO).

    ep = Endpoint(device=False)            the CLI's end (device=True: the board's)
    ep.open(session, now_ms)               CLI: HELLO (repl_safe_session(os.urandom)), HELLO-ACK back
    ep.request(method, path, headers, body, mid, now_ms)   the device: ep.respond(status, headers,
                                           body, mid, now_ms) (mid: the request's id)
    ep.receive(data, now_ms)               bytes read from the wire (anything: log text, noise)
    data = ep.output(now_ms)               bytes to write now (b"" when there are none)
    ep.timer(now_ms) at ep.deadline()      retransmissions, give-ups, stale halves discarded
    kind, value = ep.events.pop(0)         "up", "head", "message", "sent", "failed", "reset",
                                           "dropped"  (see Endpoint)

One module on the board and in the CLI, so the two ends cannot disagree. The same bytes
carry the device's log lines (print) and the frames: a decoder skips whatever is outside a
frame. Nothing here reads a clock or a port.

Frames. SLIP-style (RFC 1055): END (0xC0) before and after; inside, ESC (0xDB) ESC_END
(0xDC) stands for 0xC0, ESC ESC_ESC (0xDD) for 0xDB and ESC ESC_INT (0xDE) for 0x03, so Ctrl-C
(0x03, which raises KeyboardInterrupt on a board's REPL UART) never appears inside a frame
and stays the way to stop the app and reach the raw REPL (the recovery path). Log lines are
UTF-8, which never holds 0xC0, so a span between two ENDs that is not a good frame is text
(or noise) and is set aside (Endpoint.text). Unescaped, a frame is

    kind (1)  seq (1)  length (2, big-endian)  payload (length)  CRC-32 of the above (4)

kind: DATA (| FIRST | LAST, a message's fragments), ACK and NAK (seq = the next one wanted,
cumulative), HELLO / HELLO-ACK (a session: both ends start at seq 0, and any half-received
message is dropped), RST (the device knows no session: it restarted). Frames the device sends
have bit 0x80 set, so an end that hears its own frames (a REPL echoing what it is typed)
knows it (Endpoint.echoed).

Reliability: go-back-N. The sender keeps at most `window` frames unacknowledged and resends
all of them after RTO_MS without an ACK (doubling up to RTO_MAX_MS), or at once on a NAK
(the receiver saw a gap); after RETRIES timeouts in a row the message fails ("failed"). The
receiver takes only the next frame in order: a duplicate is ACKed again and dropped, a frame
after a gap is dropped and NAKed (once per gap), a corrupt one is dropped unseen.

Messages. A request is "METHOD PATH LENGTH ID\\n", header lines "name: value\\n", a blank
line, then LENGTH bytes of body; a response is "STATUS LENGTH ID\\n" and the same (ID: the
request's, so a late answer is never taken for the next one). The head comes first, so the
device can refuse a request before its body arrives (Admin.precheck, then discard()), and
knows the body's size: it is filled into one bytearray (no joins). A message is handed on only
whole; a new FIRST, a HELLO or IDLE_MS without a frame discards a half ("dropped").

Sizes, and why. On an ESP32 the REPL UART's interrupt puts received bytes into stdin_ringbuf,
260 bytes (ports/esp32/mphalport.c, `stdin_ringbuf_array[260]`: 259 usable), and drops what
does not fit (ports/esp32/uart.c, uart_irq_handler: no flow control); the app can only take
bytes out of it one at a time (sys.stdin.buffer.read(n) blocks until n have come, and poll
tells only "at least one"). USB-serial-JTAG (C3, S3) and TinyUSB CDC (S2, S3) feed the same
ring but only as it has room (usb_serial_jtag.c reads ringbuf_free() bytes), so there the USB
link holds the sender back instead. So a board may have at most 259 bytes in flight toward it
that it has not read: frames of at most MAX_WIRE = 128 bytes on the wire (escapes and ENDs
included; 118 payload bytes before escaping, about 90 % of the wire), and a window of
DEVICE_WINDOW = 2 toward the device (256 bytes). Two frames keep a 115,200-baud line busy as
long as the ACK for the first (10 bytes, 0.9 ms) is back within the second's 11 ms: the
device's task reads every few ms while frames are coming. The device tells its window and
frame size in its HELLO-ACK, so a board with USB backpressure may offer more. Toward the CLI
(a PC has large buffers) the window is HOST_WINDOW = 4 frames; they stay small too, since a
board's write blocks the VM while the UART's 128-byte FIFO drains.
"""

from binascii import crc32

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD
ESC_INT = 0xDE
INTERRUPT = 0x03  # Ctrl-C
_END = b"\xc0"

DATA = 0x10
FIRST = 0x01
LAST = 0x02
ACK = 0x20
NAK = 0x30
HELLO = 0x40
HELLO_ACK = 0x50
RST = 0x60
FROM_DEVICE = 0x80
VERSION = 1

MAX_WIRE = 128  # a frame's bytes on the wire, at most (ENDs and escapes included)
OVERHEAD = 10  # 2 ENDs, kind, seq, length (2), CRC (4)
DEVICE_WINDOW = 2  # frames in flight toward the board (its 259-byte stdin ring)
HOST_WINDOW = 4  # frames in flight toward the CLI
RTO_MS = 250  # a frame unacknowledged this long is sent again (then 2x, up to RTO_MAX_MS)
RTO_MAX_MS = 1000
RETRIES = 8  # timeouts in a row before a message (or a HELLO) fails: about 6.75 s
IDLE_MS = 20000  # a half-received message with no frame this long is dropped
MAX_HEAD = 2048  # a message's first line and headers, at most
MAX_SPAN = 2 * MAX_WIRE  # bytes between two ENDs beyond this are not a frame
MAX_TEXT = 4096  # text set aside for the CLI to show (older text is dropped)


def escape(data):
    """Frame bytes -> wire bytes without 0xC0 or 0x03 (0xDB first: it starts the others)."""
    if b"\xdb" in data:
        data = data.replace(b"\xdb", b"\xdb\xdd")
    if b"\xc0" in data:
        data = data.replace(b"\xc0", b"\xdb\xdc")
    if b"\x03" in data:
        data = data.replace(b"\x03", b"\xdb\xde")
    return data


def unescape(data):
    """The inverse of escape(); 0xDB ESC_ESC last, so the 0xDB it makes starts nothing."""
    if b"\xdb" not in data:
        return data
    return data.replace(b"\xdb\xdc", b"\xc0").replace(b"\xdb\xde", b"\x03").replace(b"\xdb\xdd", b"\xdb")


def frame(kind, seq, payload=b""):
    """One frame's wire bytes, ENDs included."""
    n = len(payload)
    body = bytes((kind, seq, n >> 8, n & 255)) + payload
    c = crc32(body) & 0xFFFFFFFF
    body += bytes((c >> 24, (c >> 16) & 255, (c >> 8) & 255, c & 255))
    return _END + escape(body) + _END


def parse(span):
    """(kind, seq, payload) of a span between two ENDs, or None if it is not a good frame."""
    if len(span) < 8:
        return None
    body = unescape(span)
    n = len(body) - 8
    if n < 0 or (body[2] << 8 | body[3]) != n:
        return None
    c = crc32(body[:-4]) & 0xFFFFFFFF
    if body[-4:] != bytes((c >> 24, (c >> 16) & 255, (c >> 8) & 255, c & 255)):
        return None
    return body[0], body[1], body[4:-4]


def encode_head(first, headers):
    """A message's head: its first line and header lines, as bytes."""
    parts = [first, "\n"]
    for name in headers:
        value = str(headers[name])
        if "\n" in name or "\n" in value or ":" in name:
            raise ValueError("a header that cannot be framed: %r" % name)
        parts.append("%s: %s\n" % (name.lower(), value))
    parts.append("\n")
    return "".join(parts).encode()


_SAFE = b"abcdefghijkmnpqrstuvwxyz23456789"


def repl_safe_session(random_bytes):
    """A session id (32 bytes) whose HELLO frame is harmless if a REPL reads it as typing (the
    app is stopped): '#' and printable ASCII, a printable CRC, no control byte but the length's
    zeros, so it never holds Ctrl-A/B/D/E (raw REPL, soft reset, paste) or Enter. At most a
    comment-like line of junk is left at the prompt. random_bytes: os.urandom."""
    while True:
        s = b"#" + bytes(_SAFE[b % 32] for b in random_bytes(31))
        wire = frame(HELLO, 0, s)
        ok = True
        for b in wire:
            if not (b == 0 or b == END or 0x20 <= b < 0x7F):
                ok = False
                break
        if ok:
            return s


class Head:
    """A message's head: a request's method and path, or a response's status; headers (lower-
    case names), the body's length and the message id."""

    def __init__(self, method, path, status, headers, length, mid):
        self.method = method
        self.path = path
        self.status = status
        self.headers = headers
        self.length = length
        self.id = mid


def decode_head(data, request):
    """Head from its bytes (without the blank line), or None if malformed."""
    try:
        lines = bytes(data).decode().split("\n")
    except UnicodeError:
        return None
    first = lines[0].split(" ")
    try:
        if request:
            if len(first) != 4 or not first[0] or not first[1].startswith("/"):
                return None
            method, path, status = first[0], first[1], None
        else:
            if len(first) != 3:
                return None
            method, path, status = None, None, int(first[0])
        length, mid = int(first[-2]), int(first[-1])
    except ValueError:
        return None
    if length < 0:
        return None
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            return None
        headers[name.strip().lower()] = value.strip()
    return Head(method, path, status, headers, length, mid)


class _Out:
    """A message being sent: its head and body read out in pieces (the body is not copied)."""

    def __init__(self, head, body):
        self.head = head
        self.body = body
        self.pos = 0
        self.size = len(head) + len(body)
        self.started = False
        self.mid = None

    def take(self, n):
        h = len(self.head)
        pos = self.pos
        if pos >= h:
            piece = bytes(self.body[pos - h : pos - h + n])
        elif pos + n <= h:
            piece = self.head[pos : pos + n]
        else:
            piece = self.head[pos:] + bytes(self.body[: pos + n - h])
        self.pos += len(piece)
        return piece


class _In:
    """A message being received: the head until its blank line, then the body in place."""

    def __init__(self, request, max_body):
        self.request = request
        self.max_body = max_body
        self.head = b""
        self.info = None  # Head, once read
        self.body = None
        self.got = 0
        self.skip = False  # refused, or too large: the rest is read and dropped

    def add(self, data):
        """None to go on, "head" when the head was just completed, or a why-string: broken."""
        if self.info is None:
            self.head += data
            end = self.head.find(b"\n\n")
            if end < 0:
                return "a head over %d bytes" % MAX_HEAD if len(self.head) > MAX_HEAD else None
            rest = self.head[end + 2 :]
            self.info = decode_head(self.head[:end], self.request)
            self.head = b""
            if self.info is None:
                return "a malformed head"
            if self.info.length > self.max_body:
                self.skip = True
            else:
                self.body = bytearray(self.info.length)
            why = self._body(rest)
            return why or "head"
        return self._body(data)

    def _body(self, data):
        n = len(data)
        if not n:
            return None
        if self.got + n > self.info.length:
            return "more body than its length"
        if not self.skip:
            self.body[self.got : self.got + n] = data
        self.got += n
        return None


class Endpoint:
    """One end of the link. Events (self.events, in order; the caller pops them):

    ("up", session)         the CLI: the device answered HELLO; the device: a CLI said HELLO
    ("head", Head)          a message's head is in (its body follows): the device may refuse
                            it at once (respond, then discard())
    ("message", (Head, body))   a whole message (body: bytes-like; None if it was discarded)
    ("sent", id)            every frame of our message was acknowledged
    ("failed", why)         our message (or HELLO) got no acknowledgement: the link is down
    ("reset", why)          the CLI: the device lost the session (it restarted)
    ("dropped", why)        a half-received message was discarded
    """

    def __init__(self, device, max_body=1 << 20, window=None, max_wire=MAX_WIRE, keep_text=None):
        self.device = device
        self.max_body = max_body
        self.rx_window = DEVICE_WINDOW if device else HOST_WINDOW  # what we accept
        self.window = window or (HOST_WINDOW if device else DEVICE_WINDOW)  # what we send
        self.max_wire = max_wire
        self.keep_text = (not device) if keep_text is None else keep_text
        self.events = []
        self.text = bytearray()  # bytes outside frames (the device's log lines, noise)
        self.session = None
        self.up = False
        self._hello_at = None
        self._hello_tries = 0
        self._span = bytearray()
        self._junk = False  # the current span outgrew a frame
        self._ctl = []  # control frames to write (ACK, NAK, HELLO...)
        self._rst_at = None
        self._reset_seq()
        # counters (status, tests, benchmarks)
        self.frames_in = 0
        self.frames_out = 0
        self.bad = 0  # spans that were not a good frame
        self.echoed = 0  # our own frames heard back
        self.duplicates = 0
        self.retransmits = 0
        self.dropped = 0

    def _reset_seq(self):
        self._tx_next = 0
        self._unacked = []  # [seq, wire bytes]
        self._sent_at = None  # when the oldest unacked was (re)sent
        self._rto = RTO_MS
        self._tries = 0
        self._out = None  # _Out being sent
        self._queue = []  # (_Out, id) waiting
        self._rx_next = 0
        self._rx = None
        self._rx_at = None
        self._nak_sent = False
        self._ack_due = False

    # ---- the caller's side ------------------------------------------------------------------

    def open(self, session, now_ms):
        """The CLI: start a session (session: 4 to 32 random bytes, repl_safe_session()); "up"
        once the device answers."""
        self.session = bytes(session)
        self.up = False
        self._drop_rx("a new session")
        self._reset_seq()
        self._hello_tries = 0
        self._send_hello(now_ms)

    def request(self, method, path, headers, body, mid, now_ms):
        first = "%s %s %d %d" % (method, path, len(body), mid)
        self._send(encode_head(first, headers), body, mid, now_ms)

    def respond(self, status, headers, body, mid, now_ms):
        first = "%d %d %d" % (status, len(body), mid)
        self._send(encode_head(first, headers), body, mid, now_ms)

    def _send(self, head, body, mid, now_ms):
        self._queue.append((_Out(head, body), mid))

    def abandon(self):
        """Stop sending what is left of our message (its answer came already); what is in flight
        is still acknowledged, and the next message's FIRST tells the other end."""
        self._out = None
        self._queue = []

    def discard(self):
        """The message being received is refused: the rest of its body is read and dropped."""
        if self._rx is not None:
            self._rx.skip = True
            self._rx.body = None

    def busy(self):
        """Is anything of ours not yet acknowledged (or not yet sent)?"""
        return bool(self._unacked or self._out is not None or self._queue)

    def progress(self):
        """(bytes handed to frames, size) of the message being sent, or None."""
        out = self._out
        return None if out is None else (out.pos, out.size)

    def receiving(self):
        return self._rx is not None

    def deadline(self):
        """When timer() should run next (None: nothing is pending)."""
        due = None
        for t in (
            self._sent_at + self._rto if self._unacked and self._sent_at is not None else None,
            self._hello_at,
            self._rx_at + IDLE_MS if self._rx is not None else None,
        ):
            if t is not None and (due is None or t < due):
                due = t
        return due

    def timer(self, now_ms):
        if self._hello_at is not None and now_ms >= self._hello_at:
            if self._hello_tries >= RETRIES:
                self._hello_at = None
                self.events.append(("failed", "no answer to HELLO"))
            else:
                self._send_hello(now_ms)
        if self._unacked and self._sent_at is not None and now_ms >= self._sent_at + self._rto:
            if self._tries >= RETRIES:
                self._give_up("no acknowledgement after %d tries" % (self._tries + 1))
            else:
                self._tries += 1
                self._rto = min(self._rto * 2, RTO_MAX_MS)
                self._resend(now_ms)
        if self._rx is not None and now_ms >= self._rx_at + IDLE_MS:
            self._drop_rx("no frame for %d s" % (IDLE_MS // 1000))

    def output(self, now_ms, budget=None):
        """Wire bytes to write now: control frames, then data frames as the window allows
        (budget: about this many bytes at most, always at least one frame)."""
        if self._ack_due:
            self._ack_due = False
            self._ctl.append(frame(self._kind(ACK), self._rx_next))
        parts = self._ctl
        self._ctl = []
        size = 0
        for p in parts:
            size += len(p)
        if self.up or self.device:
            while len(self._unacked) < self.window and (budget is None or size < budget or not parts):
                wire = self._next_frame()
                if wire is None:
                    break
                if self._sent_at is None or len(self._unacked) == 1:
                    self._sent_at = now_ms
                parts.append(wire)
                size += len(wire)
        if not parts:
            return b""
        self.frames_out += len(parts)
        return b"".join(parts)

    def _next_frame(self):
        out = self._out
        if out is None or out.pos >= out.size:
            if out is not None:
                self._out = None
            if not self._queue or (not self.device and not self.up):
                return None
            out, mid = self._queue.pop(0)
            self._out = out
            out.mid = mid
        kind = DATA | (0 if out.started else FIRST)
        out.started = True
        n = min(self.max_wire - OVERHEAD, out.size - out.pos)
        start = out.pos
        while True:
            piece = out.take(n)
            last = LAST if out.pos >= out.size else 0
            wire = frame(self._kind(kind | last), self._tx_next, piece)
            if len(wire) <= self.max_wire or n <= 1:
                break
            n -= max(1, (len(wire) - self.max_wire + 1) // 2) if n > 8 else 1
            out.pos = start
        self._unacked.append([self._tx_next, wire, out.mid if last else None])
        self._tx_next = (self._tx_next + 1) & 255
        if last:
            self._out = None
        return wire

    # ---- the wire ---------------------------------------------------------------------------

    def receive(self, data, now_ms):
        """Bytes from the wire, any amount, cut anywhere."""
        if not isinstance(data, bytes):
            data = bytes(data)
        i = 0
        n = len(data)
        while i < n:
            j = data.find(_END, i)
            if j < 0:
                self._more(data[i:])
                break
            if j > i:
                self._more(data[i:j])
            span = self._span
            if span and not self._junk:
                got = parse(bytes(span))
                if got is None:
                    self.bad += 1
                    self._text(span)
                else:
                    self._frame(got[0], got[1], got[2], now_ms)
            elif span:
                self._text(span)
            self._span = bytearray()
            self._junk = False
            i = j + 1

    def _more(self, piece):
        if self._junk:
            self._text(piece)
            return
        span = self._span
        span.extend(piece)
        if len(span) > MAX_SPAN:  # not a frame: text, or noise
            self._junk = True
            self._text(span)
            self._span = bytearray()

    def _text(self, data):
        if not self.keep_text:
            return
        self.text.extend(data)
        if len(self.text) > MAX_TEXT:
            self.text = self.text[-MAX_TEXT:]

    def _kind(self, kind):
        return kind | FROM_DEVICE if self.device else kind

    def _frame(self, kind, seq, payload, now_ms):
        if bool(kind & FROM_DEVICE) == self.device:
            self.echoed += 1
            return
        self.frames_in += 1
        kind &= 0x7F
        base = kind & 0xF0
        if base == HELLO and self.device:
            self._hello(seq, payload, now_ms)
        elif base == HELLO_ACK and not self.device:
            self._hello_ack(payload)
        elif base == RST and not self.device:
            if self.up:
                self.up = False
                self._reset_seq()
                self.events.append(("reset", "the device lost the session (did it restart?)"))
        elif not self.device and not self.up:
            return  # frames of an older session, before the device answered our HELLO
        elif self.device and self.session is None:
            if self._rst_at is None or now_ms - self._rst_at >= RTO_MS:  # once a while, not per frame
                self._rst_at = now_ms
                self._ctl.append(frame(self._kind(RST), 0))
        elif base == ACK or base == NAK:
            self._acked(seq, now_ms)
            if base == NAK and self._unacked:
                self._resend(now_ms)
        elif base == DATA:
            self._data(kind, seq, payload, now_ms)

    def _hello(self, seq, payload, now_ms):
        session = bytes(payload)
        if not 4 <= len(session) <= 32:
            return
        if session != self.session:
            self._drop_rx("a new session")
            self._reset_seq()
            self.session = session
            self.up = True
            self.events.append(("up", session))
        info = bytes((VERSION, self.rx_window, self.max_wire >> 8, self.max_wire & 255))
        self._ctl.append(frame(self._kind(HELLO_ACK), seq, session + info))

    def _hello_ack(self, payload):
        n = len(self.session or b"")
        if self.up or self._hello_at is None or bytes(payload[:n]) != self.session or len(payload) < n + 4:
            return
        self._hello_at = None
        self.window = max(1, min(self.window, payload[n + 1]))
        self.max_wire = max(32, min(self.max_wire, payload[n + 2] << 8 | payload[n + 3]))
        self.up = True
        self.events.append(("up", self.session))

    def _send_hello(self, now_ms):
        self._hello_tries += 1
        self._hello_at = now_ms + min(RTO_MS << (self._hello_tries - 1), RTO_MAX_MS)
        self._ctl.append(frame(self._kind(HELLO), 0, self.session))

    def _acked(self, seq, now_ms):
        """The other end wants seq next: every frame before it arrived."""
        unacked = self._unacked
        k = 0
        while k < len(unacked) and 0 < ((seq - unacked[k][0]) & 255) <= len(unacked):
            if unacked[k][2] is not None:
                self.events.append(("sent", unacked[k][2]))
            k += 1
        if k:
            del unacked[:k]
            self._sent_at = now_ms if unacked else None
            self._tries = 0
            self._rto = RTO_MS

    def _resend(self, now_ms):
        for item in self._unacked:
            self._ctl.append(item[1])
            self.retransmits += 1
        self._sent_at = now_ms

    def _give_up(self, why):
        self._unacked = []
        self._sent_at = None
        self._out = None
        self._queue = []
        self._tries = 0
        self._rto = RTO_MS
        self.up = self.device and self.up  # the CLI opens again; the device waits for a HELLO
        self.events.append(("failed", why))

    def _data(self, kind, seq, payload, now_ms):
        if seq != self._rx_next:
            behind = (self._rx_next - seq) & 255
            if 0 < behind < 128:
                self.duplicates += 1
                self._ack_due = True  # our ACK was lost: say it again
            elif not self._nak_sent:
                self._nak_sent = True
                self._ctl.append(frame(self._kind(NAK), self._rx_next))
            return
        self._rx_next = (seq + 1) & 255
        self._nak_sent = False
        self._ack_due = True
        if kind & FIRST:
            self._drop_rx("a new message began")
            self._rx = _In(self.device, self.max_body)
        rx = self._rx
        if rx is None:
            return  # the rest of a message already dropped
        self._rx_at = now_ms
        why = rx.add(payload)
        if why == "head":
            self.events.append(("head", rx.info))
        elif why is not None:
            self._drop_rx(why)
            return
        if kind & LAST:
            self._rx = None
            if rx.info is None or rx.got != rx.info.length:
                self.dropped += 1
                self.events.append(("dropped", "a message shorter than its head says"))
                return
            self.events.append(("message", (rx.info, None if rx.skip else rx.body)))

    def _drop_rx(self, why):
        if self._rx is not None:
            self._rx = None
            self.dropped += 1
            self.events.append(("dropped", why))

"""The serial admin link's frames (zongji.admin.frames): escaping, CRC, the window, retries,
duplicates, gaps, sessions and whole messages only. Two endpoints on a simulated wire with a
virtual clock; faults are done to the bytes between them. Runs under CPython and MicroPython
(the transport itself, over a pty and the virtual device, is tests/companion/test_seriallink.py)."""

from zongji.admin import frames
from zongji.admin.frames import MAX_WIRE, Endpoint, escape, frame, parse, unescape

SESSION = b"\x01\x02\x03\x04"


class Rand:
    """A small deterministic generator (the same on both interpreters)."""

    def __init__(self, seed):
        self.x = seed or 1

    def next(self):
        x = self.x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.x = x
        return x

    def below(self, n):
        return self.next() % n

    def bytes(self, n):
        return bytes(self.below(256) for _ in range(n))


class Wire:
    """A CLI endpoint and a device endpoint; bytes move between them in chunks, through an
    optional fault function per direction; time is virtual."""

    def __init__(self, to_device=None, to_host=None, chunk=37):
        self.host = Endpoint(device=False)
        self.dev = Endpoint(device=True)
        self.now = 0
        self.to_device = to_device
        self.to_host = to_host
        self.chunk = chunk
        self.on_wire = 0

    def step(self):
        moved = False
        for src, dst, fault in ((self.host, self.dev, self.to_device), (self.dev, self.host, self.to_host)):
            data = src.output(self.now)
            if data:
                moved = True
                self.on_wire += len(data)
                assert b"\x03" not in data[data.find(b"\xc0") :] or fault is not None
                if fault is not None:
                    data = fault(data)
                for i in range(0, len(data), self.chunk):
                    dst.receive(data[i : i + self.chunk], self.now)
        return moved

    def run(self, until, limit_ms=120000):
        """Step (and advance the clock to the next deadline when idle) until until() is true."""
        end = self.now + limit_ms
        while not until():
            if self.step():
                self.now += 1
                continue
            due = [t for t in (self.host.deadline(), self.dev.deadline()) if t is not None]
            if not due or self.now >= end:
                return False
            self.now = max(self.now + 1, min(due))
            self.host.timer(self.now)
            self.dev.timer(self.now)
        return True

    def events(self, ep, kind):
        return [v for k, v in ep.events if k == kind]


def _up(w):
    w.host.open(SESSION, w.now)
    assert w.run(lambda: w.host.up and w.dev.up)
    w.host.events[:] = []
    w.dev.events[:] = []


def _messages(ep):
    return [v for k, v in ep.events if k == "message"]


def _exchange(w, body, resp=b"ok"):
    """A request with body from the CLI, answered by the device; the answer (Head, body)."""
    w.host.request("PUT", "/bundle?base=x", {"x-a": "1"}, body, 7, w.now)
    assert w.run(lambda: _messages(w.dev)), "the device never got the request"
    head, got = _messages(w.dev)[0]
    assert (head.method, head.path, head.headers, head.id) == ("PUT", "/bundle?base=x", {"x-a": "1"}, 7)
    assert bytes(got) == body
    w.dev.events[:] = []
    w.dev.respond(200, {"content-type": "application/json"}, resp, head.id, w.now)
    assert w.run(lambda: _messages(w.host)), "the CLI never got the answer"
    answer = _messages(w.host)[0]
    w.host.events[:] = []
    return answer


# ---- escaping and frames ---------------------------------------------------------------------


def test_escape_round_trip_and_no_ctrl_c_or_end_inside():
    r = Rand(7)
    samples = [b"", b"\xc0", b"\xdb", b"\x03", b"\xdb\xdc", b"\xdb\xdd\xdc", b"\xc0\xdb\x03" * 50, r.bytes(3000)]
    for data in samples:
        wire = escape(data)
        assert b"\xc0" not in wire and b"\x03" not in wire
        assert unescape(wire) == data


def test_frame_parse_round_trip_and_crc():
    payload = bytes(range(256))[:100]
    wire = frame(frames.DATA | frames.FIRST, 200, payload)
    assert wire[0] == 0xC0 and wire[-1] == 0xC0
    assert b"\xc0" not in wire[1:-1] and b"\x03" not in wire
    assert parse(wire[1:-1]) == (frames.DATA | frames.FIRST, 200, payload)
    for i in range(1, len(wire) - 1):  # any one byte changed: refused
        bad = bytearray(wire)
        bad[i] ^= 0x40
        assert parse(bytes(bad[1:-1])) is None
    assert parse(b"") is None and parse(b"short") is None


def test_frames_stay_within_max_wire_even_for_escape_heavy_bodies():
    for body in (b"\xc0" * 2000, b"\x03\xdb" * 700, Rand(3).bytes(5000)):
        ep = Endpoint(device=True, window=200)
        ep.respond(200, {}, body, 1, 0)
        out = ep.output(0)
        spans = [s for s in out.split(b"\xc0") if s]
        assert spans and all(len(s) + 2 <= MAX_WIRE for s in spans), max(len(s) for s in spans)
        assert b"\x03" not in out


def test_a_board_window_fits_its_stdin_ring():
    # ports/esp32/mphalport.c: stdin_ringbuf_array[260], one slot kept free
    assert frames.DEVICE_WINDOW * MAX_WIRE <= 259


# ---- exchanges -------------------------------------------------------------------------------


def test_session_then_request_and_response():
    w = Wire()
    _up(w)
    body = Rand(1).bytes(3000)
    head, got = _exchange(w, body, b'{"ok": true}')
    assert (head.status, head.id, bytes(got)) == (200, 7, b'{"ok": true}')
    assert head.headers == {"content-type": "application/json"}
    assert w.host.retransmits == 0 and w.dev.retransmits == 0 and w.host.bad == 0


def test_empty_body_and_many_messages_in_a_row():
    w = Wire()
    _up(w)
    for i in range(40):  # sequence numbers wrap past 255
        head, got = _exchange(w, b"x" * (i * 13))
        assert head.status == 200


def test_window_is_respected():
    w = Wire()
    _up(w)
    w.host.request("PUT", "/p", {}, b"z" * 5000, 1, w.now)
    out = w.host.output(w.now)
    assert len([s for s in out.split(b"\xc0") if s]) == frames.DEVICE_WINDOW
    assert w.host.output(w.now) == b""  # nothing more until an ACK


def test_log_text_between_frames_is_skipped_and_kept():
    w = Wire(to_host=lambda d: b"zongji: a log line\r\n" + d + "再见 \xe2\x9c\x93\n".encode())
    _up(w)
    head, got = _exchange(w, b"abc")
    assert head.status == 200 and bytes(got) == b"ok"
    assert b"zongji: a log line" in w.host.text and "再见".encode() in w.host.text


def test_device_with_no_session_asks_for_one():
    w = Wire()
    _up(w)
    w.dev = Endpoint(device=True)  # the board restarted
    w.host.request("GET", "/status", {}, b"", 1, w.now)
    assert w.run(lambda: w.events(w.host, "reset"))
    assert not w.host.up


def test_no_answer_to_hello_fails():
    w = Wire(to_device=lambda d: b"")  # nothing arrives
    w.host.open(SESSION, 0)
    assert w.run(lambda: w.events(w.host, "failed"))
    assert w.events(w.host, "failed") == ["no answer to HELLO"]


def test_hello_is_harmless_typed_at_a_repl():
    r = Rand(9)
    for _ in range(20):
        session = frames.repl_safe_session(r.bytes)
        wire = frame(frames.HELLO, 0, session)
        assert session[:1] == b"#" and len(session) == 32
        assert all(b in (0, 0xC0) or 0x20 <= b < 0x7F for b in wire), wire
    w = Wire()
    w.host.open(session, 0)
    assert w.run(lambda: w.host.up and w.dev.up)


def test_own_frames_heard_back_are_counted_not_taken():
    host = Endpoint(device=False)
    host.open(SESSION, 0)
    host.receive(host.output(0), 0)  # a REPL echoing what it is typed
    assert host.echoed == 1 and not host.up


# ---- faults ----------------------------------------------------------------------------------


def _noisy(seed, every):
    r = Rand(seed)

    def fault(data):
        data = bytearray(data)
        for i in range(len(data)):
            if r.below(every) == 0:
                data[i] = r.below(256)
        return bytes(data)

    return fault


def _dropping(seed, every):
    r = Rand(seed)
    return lambda data: bytes(b for b in data if r.below(every))


def _duplicating(seed, every):
    r = Rand(seed)

    def fault(data):
        out = bytearray()
        for b in data:
            out.append(b)
            if r.below(every) == 0:
                out.append(b)
        return bytes(out)

    return fault


def _chunk_repeating(seed, every):
    r = Rand(seed)
    return lambda data: data + data if r.below(every) == 0 else data


def test_line_noise_both_ways():
    w = Wire(to_device=_noisy(11, 400), to_host=_noisy(12, 400))
    _up(w)
    body = Rand(2).bytes(6000)
    head, got = _exchange(w, body, b"r" * 900)
    assert bytes(got) == b"r" * 900
    assert w.dev.bad + w.host.bad > 0 and w.host.retransmits > 0


def test_dropped_bytes_both_ways():
    w = Wire(to_device=_dropping(21, 300), to_host=_dropping(22, 300))
    _up(w)
    head, got = _exchange(w, Rand(4).bytes(5000), b"q" * 700)
    assert bytes(got) == b"q" * 700 and w.host.retransmits > 0


def test_duplicated_bytes_and_frames():
    w = Wire(to_device=_duplicating(31, 300), to_host=_chunk_repeating(32, 3))
    _up(w)
    head, got = _exchange(w, Rand(5).bytes(5000), b"d" * 1500)
    assert bytes(got) == b"d" * 1500
    assert w.host.duplicates > 0


def test_wire_cut_mid_message_nothing_is_handed_on():
    sent = [0]

    def cut(data):
        sent[0] += len(data)
        return data if sent[0] < 2000 else b""

    w = Wire(to_device=cut)
    _up(w)
    w.host.request("PUT", "/bundle", {}, Rand(6).bytes(8000), 1, w.now)
    assert w.run(lambda: w.events(w.host, "failed"))
    assert w.dev.receiving() and not _messages(w.dev)
    assert w.run(lambda: w.events(w.dev, "dropped"))  # IDLE_MS later, the half is gone
    assert not w.dev.receiving() and not _messages(w.dev)


def test_a_new_hello_discards_a_half_received_message():
    w = Wire()
    _up(w)
    w.host.request("PUT", "/bundle", {}, b"y" * 4000, 1, w.now)
    for _ in range(3):
        w.step()
    assert w.dev.receiving()
    w.host.open(b"\x09\x08\x07\x06", w.now)  # the CLI started over
    assert w.run(lambda: w.host.up)
    assert w.events(w.dev, "dropped") == ["a new session"] and not _messages(w.dev)
    head, got = _exchange(w, b"fresh")
    assert head.status == 200


def test_refused_head_body_is_dropped_unstored():
    w = Wire()
    w.dev.max_body = 1000
    _up(w)
    w.host.request("PUT", "/bundle", {}, b"b" * 3000, 3, w.now)
    assert w.run(lambda: w.events(w.dev, "head"))
    head = w.events(w.dev, "head")[0]
    assert head.length == 3000
    w.dev.discard()
    w.dev.respond(413, {}, b"too large", head.id, w.now)
    assert w.run(lambda: _messages(w.host))
    w.host.abandon()
    assert _messages(w.host)[0][0].status == 413
    w.host.events[:] = []
    w.dev.events[:] = []
    head, got = _exchange(w, b"small")  # the link goes on
    assert head.status == 200


def test_malformed_head_is_dropped():
    w = Wire()
    _up(w)
    w.host._send(b"NOT A HEAD\n\n", b"", 1, w.now)
    assert w.run(lambda: w.events(w.dev, "dropped"))
    assert not _messages(w.dev)

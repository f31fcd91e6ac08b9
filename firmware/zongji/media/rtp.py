"""RTP for 8 kHz G.711 calls (RFC 3550, RFC 3551 profile): the packet header, a paced sender and
a receiver that accepts one stream from one peer. No sockets and no clock: the shell passes
`now_ms` (a monotonic millisecond count) and sends or hands in the datagrams.

    pkt = parse(data)                      RtpPacket; RtpError(reason) if malformed
    n = write_header(buf, marker, pt, seq, ts, ssrc)     12 bytes into buf, returns 12

    tx = RtpSender(pt=0, random_bytes=os.urandom); tx.start(now_ms)
    every time now_ms >= tx.next_due():
        sock.sendto(tx.packet(payload, now_ms), peer)       (or tx.silence(now_ms): no packet)

    rx = RtpReceiver(peer=("192.0.2.7", 4000), pts=(0, 101), event_pt=101)
    pkt = rx.receive(data, addr, now_ms)   RtpPacket (reused) or None, dropped and counted

Rules, with their sections:
  - Header (RFC 3550 5.1): version 2; the CSRC list (CC x 4 bytes) and a header extension
    (5.3.1: 4 bytes + length x 4) are skipped; padding (P bit) is removed, its count being the
    last octet, which may not exceed what follows the header. Anything else is malformed.
  - Sender (5.1, RFC 3551 4.1 and 4.5): random SSRC, initial sequence number and timestamp;
    the timestamp is the sampling clock, so it advances 160 per 20 ms frame whether or not a
    packet goes out (silence, hold, a stalled shell); the marker is set on the first packet
    of a talkspurt, i.e. the first packet and the first after frames were not sent.
  - Receiver, who may send to us: only the negotiated peer address (ip, port); an RTP
    injection from anywhere else is dropped before it is even parsed.
  - Receiver, which stream (8.2): it locks onto the first SSRC it hears from the peer. Another
    SSRC from the same address is dropped and counted; it takes over only after
    `relock_after` packets of it in a row (in sequence) while the locked source has been
    silent `relock_silence_ms` (a phone that restarts its stream, e.g. after a re-INVITE or
    hold), so a forged stream cannot cut into a live one. relock() forgets the lock at once
    (the switch calls it when a new SDP answer changes the peer's media).
  - Sequence numbers (A.1): extended with a wrap count; a jump of more than MAX_DROPOUT is
    only believed when the next packet follows it (the source restarted); duplicates are
    dropped, late (reordered) packets are passed on and counted. Loss is expected minus
    received (A.3).
  - Interarrival jitter (6.4.1, A.8): J += (|D| - J) / 16, from the arrival times the shell
    passes, in timestamp units; telephone-event packets (their timestamp is the event's
    start, RFC 4733 2.3.4) are left out.
"""

from zongji.compat import const, urandom

_M16 = const(0xFFFF)
_M32 = 0xFFFFFFFF
_HEADER = const(12)
MAX_DROPOUT = 3000  # RFC 3550 A.1
MAX_MISORDER = 100
_WINDOW = const(30)  # recent sequence numbers remembered for duplicates (a small int on MicroPython)
_WMASK = const(0x3FFFFFFF)


class RtpError(ValueError):
    """A datagram that is not an RTP packet we accept; str(e) says why (lowercase)."""


class RtpPacket:
    """One parsed packet. `payload` is a memoryview into the datagram (padding removed), valid
    as long as the datagram is; the receiver reuses one RtpPacket for every packet."""

    def __init__(self):
        self.marker = False
        self.pt = 0
        self.seq = 0
        self.ts = 0
        self.ssrc = 0
        self.payload = b""

    def __repr__(self):
        return "<RtpPacket pt=%d seq=%d ts=%d ssrc=%08x m=%d len=%d>" % (
            self.pt, self.seq, self.ts, self.ssrc, self.marker, len(self.payload))  # fmt: skip


def parse(data, into=None):
    """A datagram (bytes, bytearray or memoryview) -> RtpPacket (`into`, when given, is filled
    in and returned instead of a new one). Raises RtpError and nothing else."""
    n = len(data)
    if n < _HEADER:
        raise RtpError("shorter than the 12-byte rtp header")
    b0 = data[0]
    if b0 >> 6 != 2:
        raise RtpError("rtp version %d, not 2" % (b0 >> 6))
    start = _HEADER + (b0 & 0x0F) * 4
    if b0 & 0x10:  # header extension: profile word + length in 32-bit words
        if start + 4 > n:
            raise RtpError("header extension cut short")
        start += 4 + ((data[start + 2] << 8) | data[start + 3]) * 4
    if start > n:
        raise RtpError("csrc list or header extension longer than the packet")
    end = n
    if b0 & 0x20:
        pad = data[n - 1]
        if pad == 0 or pad > n - start:
            raise RtpError("bad padding count %d" % pad)
        end = n - pad
    p = into if into is not None else RtpPacket()
    b1 = data[1]
    p.marker = bool(b1 & 0x80)
    p.pt = b1 & 0x7F
    p.seq = (data[2] << 8) | data[3]
    p.ts = (data[4] << 24) | (data[5] << 16) | (data[6] << 8) | data[7]
    p.ssrc = (data[8] << 24) | (data[9] << 16) | (data[10] << 8) | data[11]
    p.payload = memoryview(data)[start:end]
    return p


def write_header(buf, marker, pt, seq, ts, ssrc):
    """The fixed 12-byte header (no CSRC, extension or padding) into buf[0:12]; returns 12."""
    buf[0] = 0x80
    buf[1] = (0x80 if marker else 0) | (pt & 0x7F)
    buf[2] = (seq >> 8) & 0xFF
    buf[3] = seq & 0xFF
    buf[4] = (ts >> 24) & 0xFF
    buf[5] = (ts >> 16) & 0xFF
    buf[6] = (ts >> 8) & 0xFF
    buf[7] = ts & 0xFF
    buf[8] = (ssrc >> 24) & 0xFF
    buf[9] = (ssrc >> 16) & 0xFF
    buf[10] = (ssrc >> 8) & 0xFF
    buf[11] = ssrc & 0xFF
    return _HEADER


def build(pt, seq, ts, ssrc, payload, marker=False):
    """A whole packet as bytes (tests, one-off packets; the sender writes into its buffer)."""
    buf = bytearray(_HEADER + len(payload))
    write_header(buf, marker, pt, seq, ts, ssrc)
    buf[_HEADER:] = payload
    return bytes(buf)


def random32(random_bytes=None):
    """32 random bits from random_bytes(n) (default os.urandom). Without either: ValueError,
    the shell must pass a source (SSRCs must differ between calls and devices, 8.1)."""
    rb = random_bytes if random_bytes is not None else urandom
    if rb is None:  # pragma: no cover  (ports without os.urandom)
        raise ValueError("no os.urandom on this port: pass random_bytes")
    r = rb(4)
    return (r[0] << 24) | (r[1] << 16) | (r[2] << 8) | r[3]


class RtpSender:
    """One outgoing stream: `pt` (0 PCMU, 8 PCMA), `samples` per frame (160 = 20 ms at 8 kHz),
    `rate` Hz. `late_ms`: a frame this far behind its deadline is not sent late; the frames
    the shell missed count as silence (their timestamps pass, the next packet has the marker).

    payload is a memoryview of the sender's own buffer, `samples` bytes: encode G.711 straight
    into it and pass it to packet(), and nothing is copied or allocated per frame."""

    late_ms = 100

    def __init__(self, pt=0, random_bytes=None, samples=160, rate=8000, ssrc=None):
        self.pt = pt
        self.samples = samples
        self.frame_ms = samples * 1000 // rate
        self.ssrc = random32(random_bytes) if ssrc is None else ssrc & _M32
        r = random32(random_bytes)
        self.seq = r & _M16  # the next packet's sequence number
        self.ts = random32(random_bytes)  # the timestamp of the frame due next
        self.sent = 0
        self.octets = 0  # payload octets sent (RTCP SR counts, 6.4.1)
        self._due = None
        self._talkspurt = True  # marker on the next audio packet
        self._buf = bytearray(_HEADER + samples)
        self._mv = memoryview(self._buf)
        self.payload = self._mv[_HEADER:]

    def start(self, now_ms):
        """The first frame is due now."""
        self._due = now_ms
        self._talkspurt = True

    def next_due(self):
        """The monotonic ms at which the next frame is due (None before start())."""
        return self._due

    def catch_up(self, now_ms):
        """Bring the clock to now_ms: frames more than late_ms overdue pass as silence. packet()
        and silence() call it; call it yourself before reading `ts` for a frame about to go."""
        if self._due is None:
            self._due = now_ms
        behind = now_ms - self._due
        if behind >= self.late_ms:  # missed frames: their time has passed, unsent
            n = behind // self.frame_ms
            self._due += n * self.frame_ms
            self.ts = (self.ts + n * self.samples) & _M32
            self._talkspurt = True

    def silence(self, now_ms):
        """The frame due is not sent (hold, silence): its timestamp passes, the next audio
        packet starts a talkspurt."""
        self.catch_up(now_ms)
        self._due += self.frame_ms
        self.ts = (self.ts + self.samples) & _M32
        self._talkspurt = True

    def packet(self, payload, now_ms, pt=None, ts=None, marker=None):
        """The packet for the frame due: a memoryview of the sender's buffer, valid until the
        next call. Advances the clock by one frame. pt, ts and marker override the audio
        defaults for telephone-events (RFC 4733: the event's own timestamp and marker)."""
        self.catch_up(now_ms)
        n = len(payload)
        if payload is not self.payload:
            if n > len(self._buf) - _HEADER:
                self._buf.extend(bytearray(n - len(self._buf) + _HEADER))
                self._mv = memoryview(self._buf)
                self.payload = self._mv[_HEADER : _HEADER + self.samples]
            self._mv[_HEADER : _HEADER + n] = payload
        if pt is None:
            pt = self.pt
            if marker is None:
                marker = self._talkspurt
            self._talkspurt = False
        write_header(self._buf, marker, pt, self.seq, self.ts if ts is None else ts, self.ssrc)
        self.seq = (self.seq + 1) & _M16
        self.ts = (self.ts + self.samples) & _M32
        self._due += self.frame_ms
        self.sent += 1
        self.octets += n
        return self._mv[: _HEADER + n]


class RtpReceiver:
    """The one stream we take from `peer` (ip, port). pts: the payload types negotiated (None:
    any); event_pt: the telephone-event type, kept out of the jitter estimate. rate: the RTP
    clock, Hz. Counters (ints) are attributes; last_drop says why the last packet was dropped.

    receive() returns the receiver's RtpPacket (reused: read it before the next call) for a
    packet to play, or None for one dropped: malformed, wrong address, wrong payload type,
    another SSRC, a duplicate, or a sequence jump not yet confirmed."""

    relock_after = 8
    relock_silence_ms = 200

    def __init__(self, peer=None, pts=None, event_pt=None, rate=8000):
        self.peer = peer
        self.pts = pts
        self.event_pt = event_pt
        self.rate = rate
        self.packet = RtpPacket()
        self.malformed = self.wrong_addr = self.wrong_pt = self.wrong_ssrc = 0
        self.duplicates = self.reordered = self.jumps = self.relocks = 0
        self.last_drop = None
        self.relock()

    def relock(self):
        """Forget the stream: the next packet from the peer sets SSRC and sequence anew."""
        self.ssrc = None
        self._cand = None  # [ssrc, next seq, packets in a row]
        self._last_ms = None
        self._reset_seq()

    def set_peer(self, peer):
        """A new negotiated address (SDP answer, re-INVITE); the stream is re-learnt."""
        if peer != self.peer:
            self.peer = peer
            self.relock()

    def _reset_seq(self):
        self.received = 0
        self.base = None  # extended sequence number of the first packet
        self.max_ext = None  # highest extended sequence number seen
        self._seen = 0  # bit i: max_ext - i was received
        self._bad_seq = None
        self._jitter16 = 0  # jitter x 16 (A.8's fixed point)
        self._transit = None

    def lost(self):
        """Packets expected and not received (A.3; late arrivals make it smaller)."""
        if self.base is None:
            return 0
        return self.max_ext - self.base + 1 - self.received

    def expected(self):
        return 0 if self.base is None else self.max_ext - self.base + 1

    def jitter(self):
        """Interarrival jitter in timestamp units (what an RTCP report carries)."""
        return self._jitter16 >> 4

    def jitter_ms(self):
        return self._jitter16 * 1000 / (16 * self.rate)

    def _drop(self, why):
        self.last_drop = why
        return None

    def receive(self, data, addr, now_ms):
        if self.peer is None or addr != self.peer:
            self.wrong_addr += 1
            return self._drop("not from the negotiated peer")
        try:
            p = parse(data, self.packet)
        except RtpError as e:
            self.malformed += 1
            return self._drop(str(e))
        if self.pts is not None and p.pt not in self.pts:
            self.wrong_pt += 1
            return self._drop("payload type %d not negotiated" % p.pt)
        if p.ssrc != self.ssrc:
            if self.ssrc is not None and not self._take_over(p, now_ms):
                self.wrong_ssrc += 1
                return self._drop("ssrc %08x is not the stream's" % p.ssrc)
            self._lock(p.ssrc)
        self._last_ms = now_ms
        self._cand = None
        if not self._sequence(p.seq):
            return None
        if p.pt != self.event_pt:
            self._arrival(p.ts, now_ms)
        return p

    def _lock(self, ssrc):
        if self.ssrc is not None:
            self.relocks += 1
        self.ssrc = ssrc
        self._reset_seq()

    def _take_over(self, p, now_ms):
        c = self._cand
        if c is None or c[0] != p.ssrc or c[1] != p.seq:
            c = self._cand = [p.ssrc, p.seq, 0]
        c[1] = (p.seq + 1) & _M16
        c[2] += 1
        quiet = self._last_ms is None or now_ms - self._last_ms >= self.relock_silence_ms
        return c[2] >= self.relock_after and quiet

    def _sequence(self, seq):
        if self.max_ext is None:
            self.base = self.max_ext = seq
            self._seen = 1
            self.received = 1
            return True
        top = self.max_ext
        delta = (seq - top) & _M16
        if delta == 0:
            self.duplicates += 1
            return self._drop("duplicate")
        if delta < MAX_DROPOUT:  # ahead, maybe with a gap
            self._seen = (((self._seen & (_WMASK >> delta)) << delta) | 1) if delta < _WINDOW else 1
            self.max_ext = top + delta
            self.received += 1
            self._bad_seq = None
            return True
        back = 0x10000 - delta
        if back <= MAX_MISORDER:  # late
            if back < _WINDOW:
                bit = 1 << back
                if self._seen & bit:
                    self.duplicates += 1
                    return self._drop("duplicate")
                self._seen |= bit
            if top - back < self.base:
                self.base = top - back
            self.received += 1
            self.reordered += 1
            return True
        if seq == self._bad_seq:  # two in a row after a jump: the source restarted (A.1)
            self._reset_seq()
            self.jumps += 1
            return self._sequence(seq)
        self._bad_seq = (seq + 1) & _M16
        return self._drop("sequence jump to %d" % seq)

    def _arrival(self, ts, now_ms):
        arrival = now_ms * self.rate // 1000
        transit = (arrival - ts) & _M32
        if self._transit is not None:
            d = (transit - self._transit) & _M32
            if d & 0x80000000:
                d = 0x100000000 - d
            self._jitter16 += d - ((self._jitter16 + 8) >> 4)
        self._transit = transit

"""Every RTP stream the appliance terminates, on its one media port: the attendant's side of a call.

The switch's user agent (switch/agent.py) opens one stream (a Leg) per call leg it answers or
places; this module turns SDP into streams, plays prompts and ringback into them, hears DTMF in
them, and relays two of them to each other once the attendant has put a caller through. No
sockets, no clock: the shell hands in datagrams and the time, and sends what comes out.

    hub = MediaHub("192.0.2.5", 40000, random_bytes=os.urandom, prompts=store, detector=None)
    leg, body = hub.answer(offer_body, content_type)    ValueError (sdp.SdpError: .status)
    leg, body = hub.offer(like_leg)          a call we place, same codec as like_leg
    hub.accept(leg, answer_body, content_type)
    hub.play(leg, ids); hub.stop(leg); hub.ringback(leg, on, at_ms); hub.close(leg)
    hub.loop(leg, pid)                       pid played over and over once the queue is done
                                             (the branch's ringback, music on hold); None: off
    hub.relay(a, b); hub.unrelay(a, b)       put through / apart again (one side on hold)
    hub.direct(a, b, on)                     the two peers send to each other now (RFC 3725):
                                             the legs stay, silent, and drop what still comes
    hub.receive(data, addr, now_ms)          an RTP datagram on the media port
    hub.due() -> ms or None; hub.frames(now_ms) -> [(bytes, addr)]   frames due, relayed packets

`prompts` is the shell's: prompts.open(id) -> a file-like object with readinto(), or None when
that prompt was never built (then it is skipped: a missing file costs a moment of silence, not
the call); prompts.has(id). Prompt files are raw 8 kHz u-law (zongji prompts build); a PCMA
call gets them transcoded a frame at a time.

Who may send to a leg: only the address its SDP named (media/rtp.py: no RTP injection); a
datagram from any other address is dropped unparsed and costs nothing. Keys arrive as RFC 4733
telephone-events when negotiated, else as tones in the audio (detector: media/dtmf.py's
Detector class, or None; one is made per leg whose SDP has no telephone-event), or as SIP
INFO (info_key). The hub tells its `agent` agent.key(owner, digit, now) and
agent.played(owner, now) when a leg's queue of prompts has run out.

While the attendant holds a caller, a frame goes out every 20 ms: the prompt, the ringback tone,
or silence (phones and NATs expect a steady stream). Relayed legs send nothing of their own:
each packet from one peer goes to the other unchanged (the placed call offered the caller's own
codec and telephone-event type, so payload types agree).
"""

from zongji.media import g711, sdp
from zongji.media.events import EventError, EventReceiver, parse_info
from zongji.media.rtp import RtpReceiver, RtpSender

FRAME = 160  # samples (and G.711 bytes) per 20 ms frame
FRAME_MS = 20
_SILENCE = {g711.PCMU: b"\xff" * FRAME, g711.PCMA: b"\xd5" * FRAME}
RING_ON_MS, RING_CYCLE_MS = 1000, 5000  # 450 Hz, 1 s on 4 s off: the ringback of GB/T 15279
MISSING_MS = 200  # a prompt that was never built: this much silence instead


def _ring_frame():
    """One 20 ms frame of a 450 Hz tone at about -10 dBm0, u-law: 450 Hz is 9 whole periods in
    160 samples, so the same frame repeats without a click."""
    # a sine by the recurrence s[n] = 2cos(w) s[n-1] - s[n-2], in integers (Q14)
    c = 15704  # 2cos(2 pi 450 / 8000) in Q13: 1.9170 * 8192
    amp = 7000
    a, b = 0, int(amp * 0.3473)  # sin(w) * amp: the second sample
    pcm = bytearray(2 * FRAME)
    for i in range(FRAME):
        v = max(-32767, min(32767, a))
        pcm[2 * i] = v & 0xFF
        pcm[2 * i + 1] = (v >> 8) & 0xFF
        a, b = b, (c * b >> 13) - a
    out = bytearray(FRAME)
    g711.encode_into(g711.PCMU, out, pcm)
    return bytes(out)


class Leg:
    """One RTP stream: its SDP session, the Plan agreed, sender, receiver, what it plays."""

    def __init__(self, hub, session):
        self.hub = hub
        self.sdp = session
        self.plan = None
        self.owner = None  # the agent's call this stream belongs to
        self.tx = None
        self.rx = RtpReceiver()
        self.events = EventReceiver()
        self.detector = None
        self.queue = []  # prompt ids still to play
        self.file = None
        self.gap = 0  # frames of silence standing in for a missing prompt
        self.ring_from = None  # ringback: ms it started (None: off)
        self.loop = None  # a prompt id played over and over after the queue (ringback file, hold)
        self.relay = None  # the other Leg, once the two are put through
        self.direct = False  # its peer's media goes to the other peer, not to us (RFC 3725)
        self.closed = False
        self._frame = bytearray(FRAME)
        self._mv = memoryview(self._frame)

    def law(self):
        return g711.PCMA if self.plan is not None and self.plan.pt == 8 else g711.PCMU

    def _set(self, plan, now=None):
        hub = self.hub
        other = hub.legs.get(plan.addr) if plan.addr is not None else None
        if other is not None and other is not self:
            # another call's peer is there: an SDP naming it (a spoofed INVITE, say) must not
            # take that call's media over, nor play into it
            hub.count("sdp refused: its media address is another call's")
            raise sdp.SdpError("media address in use by another call", 488)
        old = self.plan.addr if self.plan is not None else None
        self.plan = plan
        if old is not None and hub.legs.get(old) is self:
            del hub.legs[old]
        if plan.addr is not None:
            hub.legs[plan.addr] = self
        self.rx.set_peer(plan.addr)
        self.rx.pts = plan.recv_pts
        self.rx.event_pt = plan.te_pt
        if self.tx is None:
            self.tx = RtpSender(plan.pt, hub.random_bytes)
        self.tx.pt = plan.pt
        if plan.te_pt is None and hub.detector is not None and self.detector is None:
            self.detector = hub.detector()
            self._pcm = bytearray(2 * FRAME)


class MediaHub:
    def __init__(self, host, port, random_bytes=None, prompts=None, detector=None):
        self.detector = detector
        self.host = host
        self.port = port
        self.random_bytes = random_bytes
        self.prompts = prompts
        self.agent = None
        self.legs = {}  # peer (ip, port) -> Leg
        self.open = []  # every Leg not closed
        self.counters = {}
        self._out = []
        self._ring = _ring_frame()
        self._ring_a = None  # the same frame in A-law, made when a PCMA call first needs it

    def count(self, why):
        self.counters[why] = self.counters.get(why, 0) + 1

    # ---- SDP ------------------------------------------------------------------------------------

    def _session(self):
        return sdp.Session(self.host, self.port, random_bytes=self.random_bytes)

    def answer(self, body, content_type=None):
        _sdp_type(content_type, body)
        leg = Leg(self, self._session())
        answer, plan = leg.sdp.answer(body)
        leg._set(plan)
        self.open.append(leg)
        return leg, answer

    def reanswer(self, leg, body, content_type=None):
        """A re-INVITE on leg (hold, resume, a new address): our answer from the same session."""
        if not body:
            return leg.sdp.last  # an offerless re-INVITE: our last SDP again (RFC 3261 14.2)
        _sdp_type(content_type, body)
        answer, plan = leg.sdp.answer(body)
        leg._set(plan)
        return answer

    def offer(self, like):
        """A leg for a call we place, offering only `like`'s codec and telephone-event type, so
        that relayed packets mean the same on both sides."""
        s = self._session()
        if like is not None and like.plan is not None:
            s.codecs = (like.plan.pt,)
            s.te_pt = like.plan.te_pt
        leg = Leg(self, s)
        body = s.offer()
        self.open.append(leg)
        return leg, body

    def accept(self, leg, body, content_type=None):
        _sdp_type(content_type, body)
        leg._set(leg.sdp.accept(body))

    # ---- what a leg plays -----------------------------------------------------------------------

    def has_prompt(self, pid):
        return self.prompts is not None and self.prompts.has(pid)

    def play(self, leg, ids):
        leg.queue.extend(ids)
        self._start(leg)

    def stop(self, leg):
        """Cut the prompts short (a key was pressed); a loop goes on after them."""
        del leg.queue[:]
        self._close_file(leg)
        leg.gap = 0

    def ringback(self, leg, on, at_ms):
        leg.ring_from = at_ms if on else None
        if on:
            self._start(leg)

    def loop(self, leg, pid):
        """Play prompt pid over and over once the queued prompts are done (None: stop). A pid
        that was never built is not looped: silence instead, counted once."""
        if pid is not None and not self.has_prompt(pid):
            self.count("prompt missing: " + pid)
            pid = None
        if pid is None and leg.loop is not None and leg.file is not None and not leg.queue:
            self._close_file(leg)  # the loop's file was playing: cut it
        leg.loop = pid

    def relay(self, a, b):
        """Put a and b through: what each peer sends goes to the other; neither plays more."""
        for leg in (a, b):
            self.stop(leg)
            leg.ring_from = None
            leg.loop = None
            leg.rx.relock()  # the caller's keypad stream ends; its voice may come with another SSRC
        a.relay, b.relay = b, a

    def direct(self, a, b, on):
        """a's and b's peers were re-INVITEd to send to each other (on), or back to us (off:
        relayed again)."""
        a.direct = b.direct = on
        if on:
            self.unrelay(a, b)
        else:
            self.relay(a, b)

    def unrelay(self, a, b):
        """Stop relaying between a and b (one of them went on hold): each leg is the hub's
        again, and sends what it is given (hold music), or silence."""
        if a.relay is b:
            a.relay = None
        if b.relay is a:
            b.relay = None

    def close(self, leg):
        if leg is None or leg.closed:
            return
        leg.closed = True
        leg.loop = None
        self.stop(leg)
        if leg.plan is not None and self.legs.get(leg.plan.addr) is leg:
            del self.legs[leg.plan.addr]
        if leg in self.open:
            self.open.remove(leg)
        other = leg.relay
        leg.relay = None
        if other is not None:
            other.relay = None
        leg.owner = None

    def _start(self, leg):
        pass  # a leg's sender starts at its first frames() call, on the shared 20 ms grid

    def _close_file(self, leg):
        f = leg.file
        leg.file = None
        if f is not None and hasattr(f, "close"):
            f.close()

    # ---- in -------------------------------------------------------------------------------------

    def info_key(self, content_type, body):
        """The digit of a SIP INFO's DTMF body, or None when it carries none we read."""
        try:
            return parse_info(content_type, body)[0]
        except EventError:
            return None

    def receive(self, data, addr, now):
        leg = self.legs.get(addr)
        if leg is None:
            self.count("rtp from no call's peer")
            return
        if leg.direct:
            self.count("rtp after media went direct")  # the last packets in flight: dropped
            return
        pkt = leg.rx.receive(data, addr, now)
        if pkt is None:
            self.count("rtp dropped: " + (leg.rx.last_drop or "?"))
            return
        other = leg.relay
        if other is not None:
            if other.plan is not None and other.plan.send:
                self._out.append((bytes(data), other.plan.addr))
            return
        if leg.plan.te_pt is not None and pkt.pt == leg.plan.te_pt:
            digit = leg.events.receive(pkt.ts, pkt.payload)
            if digit is not None:
                self._key(leg, digit, now)
            return
        det = leg.detector
        n = len(pkt.payload)
        if det is not None and n <= FRAME:
            g711.decode_into(leg.law(), leg._pcm, pkt.payload)
            if det.feed(leg._pcm, n):
                got = det.next_digit()
                while got is not None:
                    self._key(leg, got[0], now)
                    got = det.next_digit()

    def _key(self, leg, digit, now):
        if self.agent is not None and leg.owner is not None:
            self.agent.key(leg.owner, digit, now)

    # ---- out ------------------------------------------------------------------------------------

    def _active(self, leg):
        # a leg sends while it is the attendant's: never once relayed, nor to a peer on hold
        return (
            leg.tx is not None and leg.relay is None and not leg.direct and leg.plan is not None and leg.plan.send
            and not leg.closed
        )  # fmt: skip

    def due(self):
        if self._out:
            return 0
        best = None
        for leg in self.open:
            if self._active(leg):
                t = leg.tx.next_due()
                if t is not None and (best is None or t < best):
                    best = t
        return best

    def frames(self, now):
        out = self._out
        self._out = []
        done = []
        for leg in self.open:
            if not self._active(leg):
                continue
            tx = leg.tx
            if tx.next_due() is None:
                tx.start(now - now % FRAME_MS)  # every stream on one 20 ms grid: one wake serves all
            n = 0
            while tx.next_due() <= now and n < 3:  # a late shell catches up a few frames, no more
                payload, ended = self._payload(leg, now)
                out.append((bytes(tx.packet(payload, now)), leg.plan.addr))
                if ended:
                    done.append(leg)
                n += 1
        for leg in done:
            if self.agent is not None and leg.owner is not None:
                self.agent.played(leg.owner, now)
        return out

    def _payload(self, leg, now):
        """(the frame to send, True when it was the last of the queued prompts)."""
        law = leg.law()
        if leg.gap:
            leg.gap -= 1
            return _SILENCE[law], not leg.gap and not leg.queue and leg.file is None and leg.loop is None
        if leg.loop is not None and leg.file is None and not leg.queue:
            leg.file = self.prompts.open(leg.loop) if self.prompts is not None else None
            if leg.file is None:
                self.count("prompt missing: " + leg.loop)
                leg.loop = None
        if leg.file is not None or leg.queue:
            buf = leg._frame
            got = 0
            reopened = 0
            while got < FRAME:
                if leg.file is None:
                    if not leg.queue:
                        break
                    pid = leg.queue.pop(0)
                    leg.file = self.prompts.open(pid) if self.prompts is not None else None
                    if leg.file is None:
                        self.count("prompt missing: " + pid)
                        leg.gap = MISSING_MS // 20
                        break
                n = leg.file.readinto(leg._mv[got:])
                if not n:
                    self._close_file(leg)
                    if leg.loop is not None and not leg.queue and got:
                        break  # the loop starts again with the next frame (this one ends padded)
                    if leg.loop is not None and not leg.queue:
                        reopened += 1
                        leg.file = self.prompts.open(leg.loop) if reopened < 2 else None
                        if leg.file is None:
                            leg.loop = None  # gone, or empty: it cannot fill a frame
                    continue
                got += n
            if got:
                for i in range(got, FRAME):
                    buf[i] = 0xFF
                if law == g711.PCMA:
                    g711.transcode_into(g711.PCMU, buf, bytes(buf))
                last = leg.file is None and not leg.queue and not leg.gap and leg.loop is None
                return leg._mv, last
            if leg.gap:
                return self._payload(leg, now)
            return _SILENCE[law], leg.loop is None
        if leg.ring_from is not None and now >= leg.ring_from and (now - leg.ring_from) % RING_CYCLE_MS < RING_ON_MS:
            if law == g711.PCMA:
                if self._ring_a is None:
                    buf = bytearray(FRAME)
                    g711.transcode_into(g711.PCMU, buf, self._ring)
                    self._ring_a = bytes(buf)
                return self._ring_a, False
            return self._ring, False
        return _SILENCE[law], False


def _sdp_type(content_type, body):
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if not body or ctype != "application/sdp":
        raise sdp.SdpError("no sdp offer" if not body else "body is %s, not application/sdp" % ctype, 488)

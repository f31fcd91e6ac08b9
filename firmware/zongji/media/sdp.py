"""SDP for G.711 audio calls: parse and serialise (RFC 4566), offer/answer (RFC 3264), hold.

    sdp = parse(body)          Sdp; SdpError(reason, status) on anything we cannot read
    body = sdp.to_bytes()

    s = Session("192.0.2.5", 40000, random_bytes=os.urandom)    one per call leg
    body, plan = s.answer(offer_body)          a phone's offer -> our answer and the Plan
    body = s.offer()  ...  plan = s.accept(answer_body)         a call we originate
    body = s.offer("sendonly")                 put the peer on hold; s.offer() resumes

A Plan says what the shell does with media: send `pt` (and telephone-events `te_pt`) to
`addr` when `send`, expect `recv_pts` from it when `recv`.

Rules, with their sections:
  - Lines are `<letter>=<value>` (RFC 4566 5), CRLF or bare LF; v=0 first; o= required;
    c= at session level or in every live m= (5.7), `IN IP4 <dotted quad>` or `IN IP6`;
    multicast (a TTL suffix) and host names are refused (488: we cannot resolve in the core).
    m=<media> <port> <proto> <fmt>...; for RTP/AVP the formats are payload types 0-127.
    a=rtpmap, a=fmtp, a=ptime and the direction attributes (6) at session or media level,
    the media level winning. At most max_bytes, max_lines, max_media and max_fmts.
  - Codecs: PCMU (0) and PCMA (8), by rtpmap name when there is one, else by static type
    (RFC 3551 6); 8000 Hz, one channel. telephone-event/8000 (RFC 4733 7.1.1) whose fmtp
    covers events 0-11 (no fmtp means 0-15, RFC 4733 2.4.1).
  - Answering (RFC 3264 6): one m= per offered m=, same order; the first audio stream with a
    codec we support gets our port, with the first of the offerer's codecs we support (its
    order, 6.1) and telephone-event under the offerer's payload type; every other stream is
    rejected with port 0 (6). No usable audio at all: SdpError 488.
  - Direction (RFC 3264 6.1, 8.4): the answer reverses the offer's (sendonly -> recvonly,
    recvonly -> sendonly, inactive -> inactive) and is narrowed by ours; c=0.0.0.0 (the old
    hold of RFC 2543) means send nothing to that side.
  - o= (RFC 4566 5.2, RFC 3264 8): one session id per Session; the version goes up by one
    with every offer or answer we build (`last` keeps the last body, for resending as is).
"""

from zongji.media.rtp import random32

max_bytes = 4096
max_lines = 128
max_media = 8
max_fmts = 32

SUPPORTED = {0: "PCMU", 8: "PCMA"}
_STATIC = {0: "PCMU", 3: "GSM", 4: "G723", 8: "PCMA", 9: "G722", 13: "CN", 18: "G729"}
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_FLAGS = {"sendrecv": (True, True), "sendonly": (True, False), "recvonly": (False, True), "inactive": (False, False)}
_NAMES = {(True, True): "sendrecv", (True, False): "sendonly", (False, True): "recvonly", (False, False): "inactive"}


class SdpError(ValueError):
    """An SDP body we refuse; str(e) says why. `status` is the SIP answer: 400 for a body that
    does not parse, 488 (Not Acceptable Here) for one that parses but offers nothing we do."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


class Media:
    """One m= section. fmts: payload types as str (ints for RTP/AVP in `pts`); rtpmap:
    pt -> (name, rate, channels); fmtp: pt -> parameter string; conn, direction: this
    level's (None: the session's); attrs: other attributes as (name, value or None)."""

    def __init__(self, kind="audio", port=0, proto="RTP/AVP", fmts=()):
        self.kind = kind
        self.port = port
        self.proto = proto
        self.fmts = list(fmts)
        self.conn = None
        self.direction = None
        self.ptime = None
        self.rtpmap = {}
        self.fmtp = {}
        self.attrs = []

    def pts(self):
        return [int(f) for f in self.fmts] if self.proto == "RTP/AVP" else []

    def codec(self, pt):
        """Upper-case encoding name of pt (rtpmap, else the static table), or None."""
        m = self.rtpmap.get(pt)
        if m is not None:
            return m[0].upper() if m[1] == 8000 and m[2] == 1 else None
        return _STATIC.get(pt)


class Sdp:
    """A session description: origin (user, sess_id, version, nettype, addrtype, address)
    with version an int, name (s=), conn (session-level c= address or None), direction
    (session-level or None), media (list of Media)."""

    def __init__(self, origin=None, name="-", conn=None):
        self.origin = origin
        self.name = name
        self.conn = conn
        self.direction = None
        self.media = []

    def conn_of(self, m):
        return m.conn if m.conn is not None else self.conn

    def direction_of(self, m):
        return m.direction or self.direction or "sendrecv"

    def to_bytes(self):
        o = self.origin
        out = ["v=0", "o=%s %s %d %s %s %s" % (o[0], o[1], o[2], o[3], o[4], o[5]), "s=" + (self.name or "-")]
        if self.conn is not None:
            out.append("c=" + _c_line(self.conn))
        out.append("t=0 0")
        if self.direction is not None:
            out.append("a=" + self.direction)
        for m in self.media:
            out.append("m=%s %d %s %s" % (m.kind, m.port, m.proto, " ".join(m.fmts)))
            if m.conn is not None:
                out.append("c=" + _c_line(m.conn))
            for f in m.fmts:
                pt = int(f) if f.isdigit() else f
                r = m.rtpmap.get(pt)
                if r is not None:
                    out.append("a=rtpmap:%s %s/%d%s" % (f, r[0], r[1], "" if r[2] == 1 else "/%d" % r[2]))
                if pt in m.fmtp:
                    out.append("a=fmtp:%s %s" % (f, m.fmtp[pt]))
            if m.ptime is not None:
                out.append("a=ptime:%d" % m.ptime)
            for name, value in m.attrs:
                out.append("a=" + name if value is None else "a=%s:%s" % (name, value))
            if m.direction is not None:
                out.append("a=" + m.direction)
        return ("\r\n".join(out) + "\r\n").encode()


def _c_line(addr):
    return ("IN IP6 " if ":" in addr else "IN IP4 ") + addr


def _int(text, lo, hi, what):
    if not text.isdigit() or len(text) > 10:
        raise SdpError("bad %s %r" % (what, text))
    n = int(text)
    if not lo <= n <= hi:
        raise SdpError("%s %d out of range" % (what, n))
    return n


def _ip4(text):
    parts = text.split(".")
    return len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and int(p) < 256 for p in parts)


def _conn(value):
    f = value.split()
    if len(f) != 3 or f[0] != "IN":
        raise SdpError("bad c= line %r" % value)
    addr = f[2]
    if "/" in addr:
        raise SdpError("multicast c= not supported", 488)
    if f[1] == "IP4":
        if not _ip4(addr):
            raise SdpError("c= address %r is not an IPv4 address" % addr, 488)
        if 224 <= int(addr.split(".")[0]) <= 239:
            raise SdpError("multicast c= not supported", 488)
    elif f[1] == "IP6":
        if ":" not in addr:
            raise SdpError("c= address %r is not an IPv6 address" % addr, 488)
    else:
        raise SdpError("unknown address type %r" % f[1], 488)
    return addr


def parse(data):
    """An SDP body (bytes or str) -> Sdp. Raises SdpError and nothing else."""
    if len(data) > max_bytes:
        raise SdpError("sdp over %d bytes" % max_bytes)
    if not isinstance(data, str):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeError:
            raise SdpError("sdp is not utf-8")
    lines = [line.rstrip("\r") for line in data.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) > max_lines:
        raise SdpError("sdp over %d lines" % max_lines)
    if not lines or lines[0].strip() != "v=0":
        raise SdpError("sdp does not start with v=0")
    sdp = Sdp(name=None)
    m = None
    for i, line in enumerate(lines):
        if not line:
            continue
        if len(line) < 2 or line[1] != "=" or not "a" <= line[0] <= "z":
            raise SdpError("line %d: not <type>=<value>: %r" % (i + 1, line[:40]))
        try:
            m = _line(sdp, m, line[0], line[2:])
        except SdpError as e:
            raise SdpError("line %d: %s" % (i + 1, e), e.status)
    if sdp.origin is None:
        raise SdpError("no o= line")
    for m in sdp.media:
        if m.port and sdp.conn_of(m) is None:
            raise SdpError("no c= for m=%s" % m.kind)
    return sdp


def _line(sdp, m, kind, value):
    if kind == "o":
        f = value.split()
        if len(f) != 6 or not f[2].isdigit() or not f[1].isdigit():
            raise SdpError("bad o= line %r" % value)
        sdp.origin = (f[0], f[1], int(f[2]), f[3], f[4], f[5])
    elif kind == "s" and m is None:
        sdp.name = value
    elif kind == "c":
        addr = _conn(value)
        if m is None:
            sdp.conn = addr
        else:
            m.conn = addr
    elif kind == "m":
        if len(sdp.media) >= max_media:
            raise SdpError("more than %d m= lines" % max_media)
        f = value.split()
        if len(f) < 4:
            raise SdpError("bad m= line %r" % value)
        port = f[1]
        if "/" in port:
            port, _, count = port.partition("/")
            if count != "1":
                raise SdpError("port ranges not supported", 488)
        m = Media(f[0], _int(port, 0, 65535, "port"), f[2], f[3:])
        if len(m.fmts) > max_fmts:
            raise SdpError("more than %d formats" % max_fmts)
        if m.proto == "RTP/AVP":
            for fmt in m.fmts:
                _int(fmt, 0, 127, "payload type")
        sdp.media.append(m)
    elif kind == "a":
        _attribute(sdp, m, value)
    return m


def _attribute(sdp, m, value):
    name, colon, rest = value.partition(":")
    if name in _DIRECTIONS and not colon:
        if m is None:
            sdp.direction = name
        else:
            m.direction = name
    elif m is None:
        return  # other session-level attributes: nothing of ours
    elif name == "rtpmap":
        pt, _, enc = rest.partition(" ")
        pt = _int(pt, 0, 127, "rtpmap payload type")
        f = enc.strip().split("/")
        if len(f) not in (2, 3) or not f[0]:
            raise SdpError("bad rtpmap %r" % rest)
        if pt in m.rtpmap:
            raise SdpError("second rtpmap for %d" % pt)
        m.rtpmap[pt] = (f[0], _int(f[1], 1, 1000000, "clock rate"), _int(f[2], 1, 8, "channels") if len(f) > 2 else 1)
    elif name == "fmtp":
        pt, _, params = rest.partition(" ")
        if pt.isdigit():
            m.fmtp[int(pt)] = params.strip()
    elif name == "ptime":
        m.ptime = _int(rest.strip(), 1, 1000, "ptime")
    elif len(m.attrs) < max_lines:
        m.attrs.append((name, rest if colon else None))


def events_of(fmtp):
    """RFC 4733 event list ("0-15,16") -> set of codes; None for a malformed list."""
    codes = set()
    for part in fmtp.replace(" ", "").split(","):
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()) or len(lo) > 3 or len(hi) > 3:
            return None
        a = int(lo)
        b = int(hi) if dash else a
        if a > b or b > 255:
            return None
        for c in range(a, b + 1):
            codes.add(c)
    return codes


def _te_pt(m):
    """The telephone-event payload type of m, or None."""
    for pt in m.pts():
        r = m.rtpmap.get(pt)
        if r is not None and r[0].lower() == "telephone-event" and r[1] == 8000:
            codes = events_of(m.fmtp.get(pt, "0-15"))
            if codes is not None and all(c in codes for c in range(12)):
                return pt
    return None


class Plan:
    """The media of one call leg after an offer/answer. addr: (ip, port) to send to, None
    when we must not (port 0, c=0.0.0.0); pt, codec: what we send; te_pt: telephone-event
    payload type to send (None: not negotiated, use SIP INFO or in-band); recv_pts: the
    payload types to accept; send, recv: may we send / will the peer send; direction: ours,
    as written in the SDP; ptime: the peer's preference (we send 20 ms regardless)."""

    def __init__(self, addr, pt, codec, te_pt, recv_pts, send, recv, ptime=None):
        self.addr = addr
        self.pt = pt
        self.codec = codec
        self.te_pt = te_pt
        self.recv_pts = recv_pts
        self.send = send and addr is not None
        self.recv = recv
        self.direction = _NAMES[(send, recv)]
        self.ptime = ptime

    def on_hold(self):
        """True when the peer sends us nothing (it holds us, or we hold it inactive)."""
        return not self.recv

    def __repr__(self):
        return "<Plan %s %r pt=%r te=%r>" % (self.direction, self.addr, self.pt, self.te_pt)


class Session:
    """Offers and answers of one call leg. address, port: where we receive RTP (a real
    address, never 0.0.0.0); codecs: payload types we do, in our preference order (0, 8);
    te_pt: the telephone-event type of our offers (None: none); random_bytes: see rtp.random32
    (the o= session id)."""

    ptime = 20

    def __init__(self, address, port, codecs=(0, 8), te_pt=101, random_bytes=None, sess_id=None):
        self.address = address
        self.port = port
        self.codecs = tuple(c for c in codecs if c in SUPPORTED)
        self.te_pt = te_pt
        self.sess_id = str(random32(random_bytes) >> 1) if sess_id is None else str(sess_id)
        self.version = 0
        self.last = None
        self._offer = None  # (Media we offered, direction)

    def _sdp(self, media, conn=None):
        self.version += 1
        sdp = Sdp(("zongji", self.sess_id, self.version, "IN", "IP6" if ":" in self.address else "IP4",
                   self.address), "zongji", conn or self.address)  # fmt: skip
        sdp.media = media
        self.last = sdp.to_bytes()
        return self.last

    def _audio(self, pts, te_pt, te_fmtp, direction):
        m = Media("audio", self.port, "RTP/AVP", [str(p) for p in pts])
        for p in pts:
            m.rtpmap[p] = (SUPPORTED[p], 8000, 1)
        if te_pt is not None:
            m.fmts.append(str(te_pt))
            m.rtpmap[te_pt] = ("telephone-event", 8000, 1)
            m.fmtp[te_pt] = te_fmtp
        m.ptime = self.ptime
        m.direction = direction
        return m

    def offer(self, direction="sendrecv"):
        """Our offer (bytes): a new one each call, with the version one higher. direction
        "sendonly" puts the peer on hold, "sendrecv" resumes. Then accept() the answer."""
        if direction not in _FLAGS:
            raise ValueError("bad direction %r" % direction)
        m = self._audio(self.codecs, self.te_pt, "0-15", direction)
        self._offer = (m, direction)
        return self._sdp([m])

    def offer_at(self, addr, plan):
        """An offer of this session (same origin, version one higher) whose media is at
        addr = (ip, port), another endpoint's: third-party call control (RFC 3725) moving the
        peer's media to that endpoint, with the codec and telephone-event of `plan` (what
        this session agreed with the peer)."""
        m = self._audio((), plan.te_pt, "0-15", "sendrecv")
        m.fmts.insert(0, str(plan.pt))
        m.rtpmap[plan.pt] = (plan.codec, 8000, 1)
        m.port = addr[1]
        self._offer = (m, "sendrecv")
        return self._sdp([m], addr[0])

    def answer(self, offer, direction="sendrecv"):
        """A peer's offer (bytes, str or Sdp) -> (our answer bytes, Plan). direction is ours
        ("sendonly" while we hold the peer). SdpError: 400 unreadable, 488 nothing usable."""
        if direction not in _FLAGS:
            raise ValueError("bad direction %r" % direction)
        sdp = offer if isinstance(offer, Sdp) else parse(offer)
        plan = None
        out = []
        for m in sdp.media:
            live = plan is None and m.kind == "audio" and m.port and m.proto == "RTP/AVP"
            pt = self._pick(m) if live else None
            if pt is None:
                out.append(Media(m.kind, 0, m.proto, m.fmts[:1] or ["0"]))
                continue
            te = _te_pt(m)
            plan = _plan(sdp, m, pt, te, direction, (pt,) if te is None else (pt, te))
            a = self._audio((), te, "0-15", plan.direction)
            a.fmts.insert(0, str(pt))
            a.rtpmap[pt] = (m.codec(pt), 8000, 1)
            out.append(a)
        if plan is None:
            raise SdpError("no audio stream with PCMU or PCMA", 488)
        return self._sdp(out), plan

    def _pick(self, m):
        # the first of m's payload types (the peer's order) whose codec we do
        for p in m.pts():
            if m.codec(p) in [SUPPORTED[c] for c in self.codecs]:
                return p
        return None

    def accept(self, answer):
        """The answer (bytes, str or Sdp) to our last offer -> Plan. SdpError 488 when it
        rejects our audio or picks nothing we offered."""
        if self._offer is None:
            raise ValueError("accept() without an offer")
        ours, direction = self._offer
        sdp = answer if isinstance(answer, Sdp) else parse(answer)
        if len(sdp.media) != 1:
            raise SdpError("answer has %d m= lines for our 1" % len(sdp.media), 488)
        m = sdp.media[0]
        if m.kind != "audio" or m.proto != "RTP/AVP" or m.port == 0:
            raise SdpError("answer rejects our audio stream", 488)
        pt = self._pick(m)
        if pt is None:
            raise SdpError("answer has no codec we offered", 488)
        te = _te_pt(m) if self.te_pt is not None else None
        pts = [int(f) for f in ours.fmts]
        for p in (pt, te):
            if p is not None and p not in pts:
                pts.append(p)
        return _plan(sdp, m, pt, te, direction, tuple(pts))


def _plan(sdp, m, pt, te, direction, recv_pts):
    # RFC 3264 6.1 and 8.4: we send if we want to and they receive, and never to c=0.0.0.0;
    # we receive if we want to and they send
    theirs = _FLAGS[sdp.direction_of(m)]
    ours = _FLAGS[direction]
    addr = sdp.conn_of(m)
    held = addr in ("0.0.0.0", "::")
    dest = None if held else (addr, m.port)
    return Plan(dest, pt, m.codec(pt), te, recv_pts, ours[0] and theirs[1] and not held, ours[1] and theirs[0], m.ptime)

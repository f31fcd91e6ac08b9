"""The pump: what every shell does around the switch, whatever its sockets and clock.

    pump = Pump(sw, send, emit, store)      send(data, addr); emit(event); store: shell.store
    pump.send_media = send_rtp              send_rtp(data, addr): the media socket (attendant)
    pump.send_frames = send_all             optional: send_all([(data, addr), ...]) a tick's frames
    pump.restore(now_ms, elapsed_ms)        registrations and call records from the store
    pump.datagram(data, addr, now_ms)       a datagram in
    pump.rtp(data, addr, now_ms)            an RTP datagram in, on the media socket
    pump.timer(now_ms)                      the one timer fired (or any time: it is idempotent)
    pump.transport_error(addr, now_ms)      sending to addr failed (ICMP unreachable)
    deadline = pump.deadline                ms when timer() is next due, or None
    pump.save(now_ms, force=False)          write what is dirty, at most every save_interval_ms
    pump.save_at                            ms when save() has something to write, or None

After every input the pump sends what the switch hands back, passes its events on and works
out the next deadline; the shell only re-arms one timer for `deadline` and calls save() when
`save_at` comes. The deadline is the earlier of the switch's SIP timers and the next RTP frame
due (sw.media_due(): 20 ms pacing while the attendant plays to someone); a media tick does not
run the SIP timers, which have their own deadline. A bug in the core (an exception out of it)
is reported through `bug` and does not stop the switchboard: the next datagram is served.
State is written only when it changed, and at most every save_interval_ms: flash wears out.
"""

REGISTRATIONS = "registrations.json"
CDR = "cdr.jsonl"


class Pump:
    save_interval_ms = 1000

    def __init__(self, sw, send, emit, store=None, bug=None, warn=None):
        self.sw = sw
        self._send = send
        self._emit = emit
        self.store = store
        self.bug = bug or _raise
        self.warn = warn or _ignore
        self.deadline = None
        self.send_media = None
        self.send_frames = None
        self._sip_at = None
        self.save_at = None
        self._saved_ms = None
        self._failing = {}

    def restore(self, now_ms, elapsed_ms=0):
        """(registrations, call records) loaded; a damaged file is warned about and skipped."""
        sw = self.sw
        if self.store is None:
            return 0, 0
        data = self._read(REGISTRATIONS)
        if data is not None:
            try:
                sw.registrar.load(data, now_ms, elapsed_ms)
            except ValueError as e:  # registrations.LoadError
                self.warn("%s: %s; starting with no registrations (phones register again)" % (REGISTRATIONS, e))
        data = self._read(CDR)
        if data is not None:
            sw.cdr.load(data)
            if sw.cdr.skipped:
                self.warn("%s: skipped %d damaged line(s)" % (CDR, sw.cdr.skipped))
        return len(sw.registrar), len(sw.cdr)

    def _read(self, name):
        try:
            return self.store.read(name)
        except OSError as e:
            self.warn("can't read %s: %s; starting without it" % (name, e))
            return None

    def datagram(self, data, addr, now_ms):
        try:
            self.sw.receive_datagram(data, addr, now_ms)
        except Exception as e:  # a bug in the core must not take the switchboard down
            self.bug("a datagram from %s:%s" % (addr[0], addr[1]), e)
        self._after(now_ms)

    def rtp(self, data, addr, now_ms):
        try:
            self.sw.receive_rtp(data, addr, now_ms)
        except Exception as e:
            self.bug("an rtp datagram from %s:%s" % (addr[0], addr[1]), e)
        self._media_after(now_ms)

    def timer(self, now_ms):
        at = self._sip_at
        if at is None or at <= now_ms:
            try:
                self.sw.handle_timer(now_ms)
            except Exception as e:
                self.bug("a timer", e)
            self._after(now_ms)
            return
        # a media tick (50 a second, one for every stream): frames only, unless they led to
        # SIP. The SIP timers' deadline stands (nothing but SIP moves it): not recomputed.
        sw = self.sw
        if self._send_frames(now_ms) is None:
            self.deadline = at
            return
        if sw.sip_pending():
            self._after(now_ms)
            return
        at = self._with_agent(at)
        media = sw.media_due()
        self.deadline = media if media is not None and media < at else at

    def _with_agent(self, at):
        """The SIP deadline, or the attendant's sooner one: a frame step may have started a
        menu's reply timeout (its prompt ended), which no SIP event announces."""
        agent = self.sw.agent_due()
        if agent is not None and (at is None or agent < at):
            self._sip_at = at = agent
        return at

    def _send_frames(self, now_ms):
        """The RTP frames due by now and relayed packets, out on the media socket: all of them
        in one call to send_frames(frames) when the shell has it, else send_media each."""
        send_media = self.send_media
        if send_media is not None:
            try:
                frames = self.sw.media_to_send(now_ms)
            except Exception as e:
                frames = ()
                self.bug("the media", e)
            if frames:
                send_frames = self.send_frames
                if send_frames is not None:
                    send_frames(frames)
                else:
                    for data, addr in frames:
                        send_media(data, addr)
        return send_media

    def _media_after(self, now_ms):
        sw = self.sw
        send_media = self._send_frames(now_ms)
        if sw.sip_pending():
            return self._after(now_ms)
        at = self._with_agent(self._sip_at)
        media = sw.media_due() if send_media is not None else None
        self.deadline = media if media is not None and (at is None or media < at) else at

    def transport_error(self, addr, now_ms):
        try:
            self.sw.transport_error(addr, now_ms)
        except Exception as e:
            self.bug("a transport error", e)
        self._after(now_ms)

    def kick(self, now_ms):
        """Nothing came in, but the shell wants what is queued out (the start, a shutdown)."""
        self._after(now_ms)

    def _after(self, now_ms):
        sw = self.sw
        send_media = self._send_frames(now_ms)
        for data, addr in sw.datagrams_to_send():
            self._send(data, addr)
        for event in sw.take_events():
            self._emit(event)
        self._sip_at = at = sw.next_timer()
        media = sw.media_due() if send_media is not None else None
        if media is not None and (at is None or media < at):
            at = media
        self.deadline = at
        self._plan_save(now_ms)

    def _due(self, now_ms):
        """ms when something is worth writing, or None: at once for a change (dirty), later for
        refreshed registrations (registrar.save_due())."""
        sw = self.sw
        if sw.registrar.dirty or sw.cdr.dirty:
            return now_ms
        return sw.registrar.save_due()

    def _plan_save(self, now_ms):
        if self.store is None:
            return
        at = self._due(now_ms)
        if at is None:
            return
        if self._saved_ms is not None:  # at most every save_interval_ms: flash wears out
            at = max(at, self._saved_ms + self.save_interval_ms)
        if self.save_at is None or at < self.save_at:
            self.save_at = at

    def save(self, now_ms, force=False):
        """Write what is due once save_at has come; with force (shutdown) whatever is pending."""
        if self.store is None or (not force and (self.save_at is None or now_ms < self.save_at)):
            return
        self.save_at = None
        self._saved_ms = now_ms
        sw = self.sw
        reg = sw.registrar
        due = reg.save_due()
        if reg.dirty or (due is not None and (force or due <= now_ms)):
            if self._write(REGISTRATIONS, reg.dump(now_ms)):
                reg.saved(now_ms)
        cdr = sw.cdr
        if cdr.dirty:
            # new calls are appended (a line each); the file is rewritten whole only when the
            # log says so (call/cdr.py "Appending"): rewriting 500 records per call wears flash
            if cdr.must_rewrite() or not self._append(CDR, cdr.tail()):
                if self._write(CDR, cdr.dump()):
                    cdr.saved(whole=True)
            else:
                cdr.saved()
        self._plan_save(now_ms)

    def _append(self, name, data):
        """Append data to name; False (and a rewrite next) when that failed part way."""
        if self.store.append(name, data):
            return True
        self.sw.cdr.rewrite = True  # part of it may be there: the whole file, atomically
        return False

    def _write(self, name, data):
        if self.store.write(name, data):
            if self._failing.pop(name, None):
                self.warn("%s written again" % name)
            return True
        if name not in self._failing:  # warn once, not every second
            self.warn("can't write %s: %s (will retry)" % (name, self.store.error))
        self._failing[name] = 1
        return False


def _raise(what, e):
    raise e


def _ignore(text):
    pass

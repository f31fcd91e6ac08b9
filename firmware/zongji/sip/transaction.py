"""The SIP transaction layer over UDP (RFC 3261 sections 17 and 18.2): matching, limits, the
send queue and the clock around the four state machines of txstates.py (read its theory of
operation). Sans-IO: the shell feeds in datagrams and the time, and sends what comes out.

    layer = TransactionLayer("192.0.2.5:5060", random_bytes=os.urandom)
    events = layer.receive(data, addr, now_ms)        # bytes, or a parsed Request / Response
    tx = layer.send_request(req, addr, now_ms)        # a client transaction; Via branch added
    layer.respond(ev.tx, make_response(ev.request, 486, to_tag=tag), now_ms)
    for data, addr in layer.datagrams_to_send(): sock.sendto(data, addr)
    deadline = layer.next_timer()                     # ms, or None when nothing is running
    events = layer.handle_timer(now_ms)

now_ms is a millisecond count that only grows (the shell extends ticks_ms past its wrap).
Events are the classes of txevents.py, re-exported here.

Matching
--------
A response belongs to the client transaction whose request had the same top Via branch and the
same CSeq method (17.1.3), so a CANCEL, sharing its INVITE's branch, has its own. A response
that matches none is a StrayResponse. A request carrying an RFC 3261 branch (the magic cookie
z9hG4bK and something after it) belongs to the server transaction with the same branch, top Via
sent-by and method, an ACK to the INVITE's (17.2.3). Any other branch -- none, or the bare
cookie of RFC 4475's badbranch -- falls back to RFC 2543 matching: Request-URI, To tag, From
tag, Call-ID, CSeq and the whole top Via must equal the original's; an ACK matches by the To tag
of the response we sent instead. An ACK that matches nothing is the ACK for a 2xx and goes to
the TU (AckReceived with tx None); a CANCEL opens its own transaction and the NewRequest says
which INVITE it cancels (9.2).

On receipt the top Via of a request gets received= when the sent-by host is not the source
address, and received= and rport= when the client asked with ;rport (18.2.1, RFC 3581).
Responses go to the source address, at the source port when rport was asked (or `symmetric` is
set), else at the sent-by port (18.2.2); maddr is not honoured.

Stateless answers: `screen(request, addr, cancels, now_ms)`, when the TU sets it, sees every new
request before a server transaction is made for it. It returns None to go on (a transaction,
then NewRequest), a Response to send at once with no transaction kept (a challenge, an OPTIONS
answer, a rejection: RFC 3261 8.2.6.1 and 16.11 allow it; nothing is retransmitted, so one
request draws one answer), or False to drop the request unanswered. Either way the TU gets
Absorbed with tx None. This is how unauthenticated traffic costs the switch no state. The 400
(or 505) for a request that does not parse is such an answer too: `may_answer(addr, now_ms)`,
when set, says whether it is sent (a flood of garbage must not turn the switch into a reflector).

Limits: at most max_transactions run at once. Over it a new request is answered 503 with
Retry-After, statelessly, and the TU gets Overloaded; send_request raises TransactionError.
Ended transactions leave the tables at once.

Lingering costs no slot. Once a non-INVITE transaction (either side) or an INVITE client has
its final response, all it still does is absorb retransmissions: resend the same bytes (the
final response; the ACK for a 300-699) or drop them, until Timer J, K or D. An INVITE answered
2xx (either side, RFC 6026 accepted state, Timers L and M) leaves the tables the same way; its
record keeps the transaction object, through which further 2xx (client) and ACKs on its branch
(server) still reach the TU, so it frees the slot but not the object's memory. The layer then
takes it out of the transaction tables and keeps a compact record instead, key -> [expiry,
bytes or None, address, key]: ~235 B beside the bytes on the 32-bit port, where the transaction
object alone is ~430 B (bench/mpy/linger_heap.py; Kamailio's tm keeps just the reply buffer
too), and a phone's REGISTER holds no transaction slot for its 32 s of Timer J. A
retransmitted request gets the same final response again, and the TU never sees it twice;
`lingering()` counts the records. At most max_lingering are kept (None: as many as
max_transactions); over that the one closest to its end goes first, never a 503. The
Transaction object the TU may still hold stays in completed state and refuses a second
response. Records have a fixed life per kind, so each kind is a FIFO: O(1) in and out.

Timers: each armed timer is pushed on a binary heap as (deadline, seq, tx); a timer that is
re-armed or stopped leaves its entry behind, and an entry is dropped when it reaches the top
and no longer matches its transaction's timers (lazy deletion, with a rebuild when stale entries
outnumber live ones). next_timer() is O(1) amortised, each timer that fires O(log n), whatever
the number of transactions; due timers fire earliest first, ties in creation order.
"""

try:
    from heapq import heapify, heappop, heappush
except ImportError:  # pragma: no cover  (a MicroPython build without heapq)

    def heappush(heap, item):
        heap.append(item)
        i = len(heap) - 1
        while i:
            up = (i - 1) >> 1
            if not item < heap[up]:
                break
            heap[i] = heap[up]
            i = up
        heap[i] = item

    def heappop(heap):
        last = heap.pop()
        if not heap:
            return last
        top = heap[0]
        n = len(heap)
        i = 0
        while True:
            c = 2 * i + 1
            if c >= n:
                break
            if c + 1 < n and heap[c + 1] < heap[c]:
                c += 1
            if not heap[c] < last:
                break
            heap[i] = heap[c]
            i = c
        heap[i] = last
        return top

    def heapify(heap):
        items = heap[:]
        del heap[:]
        for item in items:
            heappush(heap, item)


from zongji.sip.headers import BRANCH_MAGIC
from zongji.sip.message import Response, make_response
from zongji.sip.parser import parse
from zongji.sip.txevents import (
    Absorbed,
    AckReceived,
    Event,
    Malformed,
    NewRequest,
    Overloaded,
    ResponseReceived,
    StrayResponse,
    Timeout,
    TransportError,
)
from zongji.sip.txstates import (
    ACCEPTED,
    CALLING,
    COMPLETED,
    CONFIRMED,
    INVITE_CLIENT,
    INVITE_SERVER,
    NON_INVITE_CLIENT,
    NON_INVITE_SERVER,
    PROCEEDING,
    TERMINATED,
    TRYING,
    ClientTransaction,
    ServerTransaction,
    Transaction,
    derived_request,
)
from zongji.sip.uri import ParseError
from zongji.text import bare_host

__all__ = [
    "TransactionLayer",
    "TransactionError",
    "BranchGenerator",
    "make_cancel",
    "is_rfc3261_branch",
    "Transaction",
    "ClientTransaction",
    "ServerTransaction",
    "Event",
    "NewRequest",
    "AckReceived",
    "ResponseReceived",
    "StrayResponse",
    "Absorbed",
    "Timeout",
    "TransportError",
    "Overloaded",
    "Malformed",
    "CALLING",
    "TRYING",
    "PROCEEDING",
    "COMPLETED",
    "CONFIRMED",
    "ACCEPTED",
    "TERMINATED",
    "INVITE_CLIENT",
    "NON_INVITE_CLIENT",
    "INVITE_SERVER",
    "NON_INVITE_SERVER",
]


class TransactionError(Exception):
    """The TU misused the layer (h11's LocalProtocolError): sending an ACK as a transaction,
    reusing a branch, starting one over max_transactions. The peer never causes it."""


def is_rfc3261_branch(branch):
    """True for 'z9hG4bK' plus a unique part; the bare cookie does not count (RFC 4475 3.2)."""
    return bool(branch) and len(branch) > len(BRANCH_MAGIC) and branch.startswith(BRANCH_MAGIC)


_M32 = 0xFFFFFFFF


def _fmix32(h):
    # MurmurHash3's finaliser: a bijection on 32-bit values, so distinct counters stay distinct
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    return h ^ (h >> 16)


class BranchGenerator:
    """New branch values, 'z9hG4bK' + 16 hex digits (section 8.1.1.7); token() gives the 16
    digits alone, for To/From tags and Call-IDs.

    random_bytes(n) -> n bytes: the shell passes os.urandom where there is one. Without it the
    digits mix a counter with `seed` (give it something that differs per boot and per device,
    such as ticks and the MAC): unique within a run, not secret."""

    def __init__(self, random_bytes=None, seed=0):
        self.random_bytes = random_bytes
        self._seed = seed & _M32
        self._seed2 = _fmix32(((seed >> 32) ^ 0x9E3779B9) & _M32)
        self._count = 0

    def token(self):
        if self.random_bytes is not None:
            return "".join(["%02x" % b for b in self.random_bytes(8)])
        self._count = (self._count + 1) & _M32
        n = self._count
        return "%08x%08x" % (_fmix32((self._seed + n) & _M32), _fmix32(self._seed2 ^ n))

    def __call__(self):
        return BRANCH_MAGIC + self.token()


def make_cancel(request):
    """The CANCEL for a request we sent (section 9.1): same Request-URI, top Via (so the same
    branch), From, To, Call-ID, CSeq number and Route. Send it with send_request once a
    provisional response came."""
    return derived_request(request, "CANCEL", request.get("to"))


def _server_key(req, via, cseq, method, to_tag):
    # section 17.2.3; `method` is INVITE when looking up for an ACK or a CANCEL
    branch = via.branch
    if is_rfc3261_branch(branch):
        return (branch, via.sent_by.lower(), method)
    frm = req.from_addr()
    return ("", str(req.uri), to_tag, frm.tag if frm else None, req.call_id(), cseq[0], method, req.get("via"))


class TransactionLayer:
    """Every transaction of one UDP socket. The class attributes are the knobs (set them on an
    instance or a subclass): T1, T2, T4 and timer_d in ms (section 17.1.1.1 and table 4);
    trying_delay, the ms an INVITE server waits for the TU before it sends 100 Trying itself
    (17.2.1; 0 at once, None never); max_transactions, client and server together;
    retry_after, the seconds the 503 over that limit asks for; symmetric, answer at the source
    port even without ;rport (phones behind NAT that forget to ask).

    sent_by: 'host:port' for the Via the layer adds to requests that have none; random_bytes,
    seed: see BranchGenerator, which is `branch`."""

    T1 = 500
    T2 = 4000
    T4 = 5000
    timer_d = 32000
    trying_delay = 200
    max_transactions = 64
    retry_after = 10
    symmetric = False
    max_lingering = None  # compact records of completed transactions; None: max_transactions
    screen = None  # the TU's stateless-answer hook (see the module docstring)
    may_answer = None  # may_answer(addr, now_ms): may a malformed request get its 400?

    def __init__(self, sent_by=None, random_bytes=None, seed=0):
        self.sent_by = sent_by
        self.branch = BranchGenerator(random_bytes, seed)
        self._clients = {}  # (branch, method) -> ClientTransaction
        self._servers = {}  # _server_key() -> ServerTransaction
        self._out = []
        self._seq = 0
        self._heap = []  # (deadline, seq, tx) for each armed timer; stale ones left behind
        self._linger = {}  # key -> [expires, bytes or None, addr, key, tx or None]: absorbing
        self._fifos = {}  # lifetime ms -> [records in order of expiry, index of the first live]
        self._sized = False

    def __len__(self):
        """Transactions running (lingering records not counted: see lingering())."""
        return len(self._clients) + len(self._servers)

    def lingering(self):
        """Completed transactions kept as compact records, absorbing retransmissions."""
        return len(self._linger)

    def lingering_cap(self):
        cap = self.max_lingering
        return self.max_transactions if cap is None else cap

    def _presize(self):
        # Before the first entry: grow each table to its cap now, while the heap is whole.
        # MicroPython fills a dict to its last slot and then rehashes into one ~1.33x larger
        # block beside the old one (py/map.c), which a fragmented heap may not have (host caps:
        # 8,192 entries, 174 KB in one block on the 64-bit port). Small ints in, then out last
        # first: the table keeps its size and every slot ends empty. CPython shrinks it back at
        # the next insert: harmless.
        self._sized = True
        for table, n in ((self._clients, self.max_transactions), (self._servers, self.max_transactions),
                         (self._linger, self.lingering_cap())):  # fmt: skip
            if not table:
                for i in range(n):
                    table[i] = None
                for i in range(n - 1, -1, -1):
                    del table[i]

    def transactions(self):
        """Every running transaction, oldest first."""
        txs = list(self._clients.values()) + list(self._servers.values())
        txs.sort(key=_by_seq)
        return txs

    # -- from the network ------------------------------------------------------------------

    def receive(self, msg, addr, now_ms):
        """One datagram (bytes) or parsed message from addr -> a list of events. Bad input
        never raises: an unparsable request is answered 400 (or 505) and reported Malformed."""
        if isinstance(msg, (bytes, bytearray, memoryview)):
            try:
                msg = parse(msg)
            except ParseError as e:
                return [self._malformed(e, addr, now_ms)]
        try:
            if isinstance(msg, Response):
                return [self._on_response(msg, addr, now_ms)]
            return [self._on_request(msg, addr, now_ms)]
        except ParseError as e:  # a hand-built message with a bad header
            return [Malformed(str(e), addr)]

    def _malformed(self, err, addr, now):
        req = err.request
        if req is None or req.method == "ACK" or req.get("via") is None:
            return Malformed(str(err), addr)  # a response, an ACK, or nothing to answer along
        if self.may_answer is not None and not self.may_answer(addr, now):
            return Malformed(str(err), addr)  # over the TU's budget of stateless answers
        resp = make_response(req, err.status, to_tag=self.branch.token())
        self._out.append((resp.to_bytes(), addr))
        return Malformed(str(err), addr, err.status)

    def _on_response(self, resp, addr, now):
        via = resp.via()
        cseq = resp.cseq()
        tx = None
        if via is not None and cseq is not None and via.branch:
            tx = self._clients.get((via.branch, cseq[1]))
        if tx is None:
            done = self._linger.get((via.branch, cseq[1])) if via is not None and cseq is not None else None
            if done is None:
                return StrayResponse(resp, addr)
            if done[4] is not None:  # an INVITE in accepted state: 2xx still go to the TU
                return done[4]._on_response(resp, now)
            if done[1] is not None and resp.status >= 300:  # our ACK was lost: ACK again
                self._out.append((done[1], done[2]))
            return Absorbed(None, resp)
        return tx._on_response(resp, now)

    def _on_request(self, req, addr, now):
        via = req.via()
        cseq = req.cseq()
        if via is None or cseq is None:
            return Malformed("missing %s header" % ("via" if via is None else "cseq"), addr)
        method = req.method
        to = req.to_addr()
        tag = to.tag if to is not None else None
        if method == "ACK":
            tx = self._servers.get(_server_key(req, via, cseq, "INVITE", tag))
            if tx is None and is_rfc3261_branch(via.branch):
                done = self._linger.get(_server_key(req, via, cseq, "INVITE", tag))
                if done is not None:  # an INVITE answered 2xx (its record): the ACK goes up
                    return AckReceived(req, addr, done[4]) if done[4] is not None else Absorbed(None, req)
            if not is_rfc3261_branch(via.branch):
                if tx is None and tag is not None:  # the ACK for an INVITE sent without To tag
                    tx = self._servers.get(_server_key(req, via, cseq, "INVITE", None))
                if tx is not None and tx.to_tag != tag:
                    tx = None
            if tx is None:
                return AckReceived(req, addr)
            return tx._on_request(req, addr, now)
        key = _server_key(req, via, cseq, method, tag)
        tx = self._servers.get(key)
        if tx is not None:
            return tx._on_request(req, addr, now)
        done = self._linger.get(key)
        if done is not None:  # completed: the same final response again (none for a 2xx INVITE)
            if done[1] is not None:
                self._out.append((done[1], done[2]))
            return Absorbed(None, req)
        cancels = None
        if method == "CANCEL":
            cancels = self._servers.get(_server_key(req, via, cseq, "INVITE", tag))
        reply_to = self._stamp(req, via, addr)
        if self.screen is not None:
            answer = self.screen(req, addr, cancels, now)
            if answer is not None:  # answered without a transaction, or dropped (False)
                if answer is not False:
                    self._out.append((answer.to_bytes(), reply_to))
                return Absorbed(None, req)
        if len(self) >= self.max_transactions:
            headers = (("Retry-After", self.retry_after),)
            resp = make_response(req, 503, to_tag=self.branch.token(), headers=headers)
            self._out.append((resp.to_bytes(), reply_to))
            return Overloaded(req, addr)
        table = INVITE_SERVER if method == "INVITE" else NON_INVITE_SERVER
        tx = ServerTransaction(self, table, key, req, reply_to, self._next_seq())
        if not self._sized:
            self._presize()
        self._servers[key] = tx
        tx._start(now)
        return NewRequest(tx, req, addr, cancels)

    def _stamp(self, req, via, addr):
        # section 18.2.1 and RFC 3581: note where the request really came from; -> reply address
        host = addr[0]
        rport = "rport" in via.params
        if rport or bare_host(via.host) != bare_host(host):
            via = via.copy()  # the parsed one is shared (the view memo): change a copy
            via.params["received"] = host
            if rport:
                via.params["rport"] = str(addr[1])
            vias = req.get_all("via")
            views = list(req.vias())
            vias[0] = str(via)
            views[0] = via
            req.set_views("via", vias, views)  # a response's second Via: not parsed again
        if rport or self.symmetric:
            return addr
        return (host, via.port or 5060)

    # -- from the TU -------------------------------------------------------------------------

    def send_request(self, req, addr, now_ms):
        """Start a client transaction sending `req` to addr ((host, port), resolved by the TU)
        and return it. A request without Via gets 'SIP/2.0/UDP <sent_by>;branch=...;rport', a
        top Via without branch gets one. Raises TransactionError for an ACK (not a transaction:
        use send_stateless), a full table, a branch in use or one without the magic cookie."""
        if req.method == "ACK":
            raise TransactionError("ack is not a transaction: send it with send_stateless()")
        if len(self) >= self.max_transactions:
            raise TransactionError("too many transactions: max_transactions is %d" % self.max_transactions)
        via = req.via()
        if via is None:
            if not self.sent_by:
                raise TransactionError("request has no via and the layer has no sent_by")
            req.add("via", "SIP/2.0/UDP %s;branch=%s;rport" % (self.sent_by, self.branch()), first=True)
        elif via.branch is None:
            via = via.copy()
            via.params["branch"] = self.branch()
            vias = req.get_all("via")
            vias[0] = str(via)
            req.set_all("via", vias)
        elif not is_rfc3261_branch(via.branch):
            raise TransactionError("branch %s is not an rfc 3261 branch: let the layer make one" % via.branch)
        cseq = req.cseq()
        if cseq is None:
            raise TransactionError("request has no cseq")
        branch = req.via().branch
        key = (branch, cseq[1])
        if key in self._clients or key in self._linger:
            raise TransactionError("branch %s is already in use for %s" % key)
        table = INVITE_CLIENT if req.method == "INVITE" else NON_INVITE_CLIENT
        tx = ClientTransaction(self, table, key, req, addr, self._next_seq())
        if not self._sized:
            self._presize()
        self._clients[key] = tx
        tx._start(now_ms)
        if req.method == "CANCEL":
            invite = self._clients.get((branch, "INVITE"))
            if invite is not None:
                invite._cancelled(now_ms)
        return tx

    def respond(self, tx, resp, now_ms):
        """Send `resp` in the server transaction tx. True when it went out; False when the
        state does not take it (a second final response, a 1xx after the final, anything after
        the end), which sections 17.2.1 and 17.2.2 say to discard."""
        if not isinstance(tx, ServerTransaction):
            raise TransactionError("respond() takes a server transaction, not %r" % (tx,))
        return tx._respond(resp, now_ms)

    def send_stateless(self, msg, addr):
        """Queue a message outside any transaction: the ACK for a 2xx, a 2xx a proxy forwards."""
        self._out.append((msg.to_bytes(), addr))

    def abandon(self, tx):
        """End tx at once, without a word to the peer (a TU giving up an INVITE it CANCELled)."""
        if tx.state != TERMINATED:
            tx.state = TERMINATED
            tx._retx_at = tx._end_at = None
            self._remove(tx)
            done = self._linger.get(tx.key)
            if done is not None and done[4] is tx:
                del self._linger[tx.key]

    def transport_error(self, addr, now_ms):
        """The shell could not send to addr (ICMP unreachable, no route): every transaction
        sending there ends, and the TU gets TransportError for each (section 17.1.1.2 ff.)."""
        events = []
        for tx in self.transactions():
            if tx.addr == addr:
                ev = tx._fail()
                if ev is not None:
                    events.append(ev)
        return events

    # -- to the shell -----------------------------------------------------------------------

    def datagrams_to_send(self):
        """[(bytes, addr)] queued since the last call, retransmissions included, in order."""
        out = self._out
        self._out = []
        return out

    def next_timer(self):
        """The earliest timer deadline in ms, or None when no transaction runs or lingers."""
        heap = self._heap
        best = None
        while heap:
            d, _, tx = heap[0]
            if d == tx._retx_at or d == tx._end_at:
                best = d
                break
            heappop(heap)  # a timer re-armed or stopped since: lazy deletion
        for fifo in self._fifos.values():
            d = self._fifo_head(fifo)
            if d is not None and (best is None or d < best):
                best = d
        return best

    def handle_timer(self, now_ms):
        """Fire every timer due at now_ms, earliest first -> a list of events."""
        events = []
        heap = self._heap
        while heap:
            d, _, tx = heap[0]
            if d > now_ms:
                break
            heappop(heap)
            if d != tx._retx_at and d != tx._end_at:
                continue  # stale
            ev = tx._fire(now_ms)
            if ev is not None:
                events.append(ev)
        linger = self._linger
        for fifo in self._fifos.values():
            q = fifo[0]
            i = fifo[1]
            while i < len(q) and q[i][0] <= now_ms:
                rec = q[i]
                if linger.get(rec[3]) is rec:
                    del linger[rec[3]]
                i += 1
            self._fifo_trim(fifo, i)
        return events

    def _fifo_head(self, fifo):
        # the expiry of the first record still kept, dropping evicted ones on the way
        q = fifo[0]
        i = fifo[1]
        linger = self._linger
        while i < len(q) and linger.get(q[i][3]) is not q[i]:
            i += 1
        self._fifo_trim(fifo, i)
        return q[fifo[1]][0] if fifo[1] < len(q) else None

    def _fifo_trim(self, fifo, i):
        q = fifo[0]
        if i >= len(q):
            del q[:]
            i = 0
        elif i > 32 and 2 * i > len(q):
            del q[:i]
            i = 0
        fifo[1] = i

    # -- for the transactions ---------------------------------------------------------------

    def _next_seq(self):
        self._seq += 1
        return self._seq

    def _remove(self, tx):
        table = self._clients if isinstance(tx, ClientTransaction) else self._servers
        if table.get(tx.key) is tx:
            del table[tx.key]

    def _schedule(self, tx, deadline):
        heap = self._heap
        heappush(heap, (deadline, tx.seq, tx))
        if len(heap) > 64 and len(heap) > 4 * len(self):  # mostly stale: rebuild
            live = []
            for table in (self._clients, self._servers):
                for t in table.values():
                    for d in (t._retx_at, t._end_at):
                        if d is not None:
                            live.append((d, t.seq, t))
            heapify(live)
            self._heap = live

    def _keep(self, tx, lifetime, wire, now, keep_tx=False):
        """tx is completed: leave the tables, keep a compact record for `lifetime` ms that
        resends `wire` (or drops, for None) on each retransmission. keep_tx: an INVITE in
        accepted state, whose further 2xx (client) or ACK (server) still go to the TU through
        the transaction object itself: the record then holds it, and frees only the slot."""
        self._remove(tx)
        tx._retx_at = tx._end_at = None
        if lifetime <= 0:
            return
        linger = self._linger
        fifos = self._fifos
        if len(linger) >= self.lingering_cap():  # full: the record closest to its end goes
            oldest = None
            for fifo in fifos.values():
                d = self._fifo_head(fifo)
                if d is not None and (oldest is None or d < oldest[0]):
                    oldest = (d, fifo)
            if oldest is None:
                return  # a cap of 0: keep nothing
            fifo = oldest[1]
            del linger[fifo[0][fifo[1]][3]]
            self._fifo_trim(fifo, fifo[1] + 1)
        rec = [now + lifetime, wire, tx.addr, tx.key, tx if keep_tx else None]
        linger[tx.key] = rec
        fifo = fifos.get(lifetime)
        if fifo is None:
            fifo = fifos[lifetime] = [[], 0]
        fifo[0].append(rec)


def _by_seq(tx):
    return tx.seq

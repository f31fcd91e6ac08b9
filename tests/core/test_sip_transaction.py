"""SIP transactions (RFC 3261 section 17): the four machines, their timers, matching and limits.

A client layer and a server layer are wired together in memory on a virtual clock (Pair), so
retransmissions, lost messages and timer expiry are exact, deterministic tests.
"""

from _support import TESTDATA, raises, read_bytes
from zongji.sip.message import make_request, make_response
from zongji.sip.parser import parse
from zongji.sip.transaction import (
    ACCEPTED,
    COMPLETED,
    CONFIRMED,
    PROCEEDING,
    TERMINATED,
    TRYING,
    Absorbed,
    AckReceived,
    BranchGenerator,
    Malformed,
    NewRequest,
    Overloaded,
    ResponseReceived,
    StrayResponse,
    Timeout,
    TransactionError,
    TransactionLayer,
    TransportError,
    is_rfc3261_branch,
    make_cancel,
)

CLIENT = ("192.0.2.1", 5060)
SERVER = ("192.0.2.2", 5060)


def first_line(data):
    return data.split(b"\r\n", 1)[0].decode()


class Pair:
    """A client layer and a server layer joined by an in-memory wire, on a virtual clock.

    drop(direction, data) -> True loses a datagram; direction is "c>s" or "s>c". Every datagram
    is logged in `wire` as (ms, direction, data, delivered). `answer(pair, event)`, when set,
    plays the server's TU: it gets each NewRequest as it arrives."""

    def __init__(self, **knobs):
        self.now = 0
        self.client = TransactionLayer("192.0.2.1:5060", seed=1)
        self.server = TransactionLayer("192.0.2.2:5060", seed=2)
        for name in knobs:
            setattr(self.client, name, knobs[name])
            setattr(self.server, name, knobs[name])
        self.client_events = []
        self.server_events = []
        self.wire = []
        self.drop = None
        self.answer = None
        self.calls = 0

    def request(self, method="OPTIONS", cseq=1):
        self.calls += 1
        req = make_request(
            method,
            "sip:201@192.0.2.2",
            "<sip:200@192.0.2.1>;tag=from%d" % self.calls,
            "<sip:201@192.0.2.2>",
            "call-%d@192.0.2.1" % self.calls,
            cseq,
        )
        self.last_request = req
        tx = self.client.send_request(req, SERVER, self.now)
        self.flush()
        return tx

    def respond(self, event, status, tag="to1"):
        ok = self.server.respond(event.tx, make_response(event.request, status, to_tag=tag), self.now)
        self.flush()
        return ok

    def flush(self):
        moved = True
        while moved:
            moved = False
            for src, dst, direction, src_addr, dst_addr in (
                (self.client, self.server, "c>s", CLIENT, SERVER),
                (self.server, self.client, "s>c", SERVER, CLIENT),
            ):
                for data, addr in src.datagrams_to_send():
                    assert addr == dst_addr, (direction, addr)
                    moved = True
                    lost = self.drop is not None and self.drop(direction, data)
                    self.wire.append((self.now, direction, data, not lost))
                    if not lost:
                        self._got(dst, dst.receive(data, src_addr, self.now))

    def _got(self, layer, events):
        log = self.server_events if layer is self.server else self.client_events
        for ev in events:
            log.append((self.now, ev))
            if layer is self.server and self.answer is not None and isinstance(ev, NewRequest):
                self.answer(self, ev)

    def run(self, until):
        """Advance the clock to `until`, firing both layers' timers as they fall due."""
        self.flush()
        while True:
            due = [t for t in (self.client.next_timer(), self.server.next_timer()) if t is not None]
            if not due or min(due) > until:
                break
            self.now = max(self.now, min(due))
            self._got(self.client, self.client.handle_timer(self.now))
            self._got(self.server, self.server.handle_timer(self.now))
            self.flush()
        self.now = until

    def sent(self, direction, start):
        """When datagrams whose first line starts with `start` went out."""
        return [t for t, d, data, _ in self.wire if d == direction and first_line(data).startswith(start)]

    def events(self, side, kind):
        log = self.server_events if side == "server" else self.client_events
        return [ev for _, ev in log if isinstance(ev, kind)]


def answer_with(status):
    def answer(pair, ev):
        pair.respond(ev, status)

    return answer


def drop_first(start, direction="s>c"):
    """A drop() that loses the first datagram starting with `start`."""
    state = [False]

    def drop(d, data):
        if d == direction and not state[0] and first_line(data).startswith(start):
            state[0] = True
            return True
        return False

    return drop


# -- branches --------------------------------------------------------------------------------


def test_branch_generator_without_randomness_is_unique_and_has_the_cookie():
    gen = BranchGenerator(seed=12345)
    seen = set()
    for _ in range(2000):
        b = gen()
        assert b.startswith("z9hG4bK") and len(b) == 23 and is_rfc3261_branch(b)
        seen.add(b)
    assert len(seen) == 2000
    assert BranchGenerator(seed=1)() != BranchGenerator(seed=2)()  # a per-boot seed matters
    assert BranchGenerator(seed=7)() == BranchGenerator(seed=7)()


def test_branch_generator_uses_random_bytes_when_given():
    gen = BranchGenerator(random_bytes=lambda n: bytes(range(n)))
    assert gen() == "z9hG4bK0001020304050607"
    assert gen.token() == "0001020304050607"


def test_only_cookie_and_more_is_an_rfc3261_branch():
    assert is_rfc3261_branch("z9hG4bK776asdhds")
    assert not is_rfc3261_branch("z9hG4bK")  # RFC 4475 badbranch
    assert not is_rfc3261_branch("776asdhds") and not is_rfc3261_branch(None)


# -- non-INVITE client and server ------------------------------------------------------------


def test_non_invite_round_trip_then_timers_k_and_j_empty_the_tables():
    p = Pair()
    p.answer = answer_with(200)
    tx = p.request("OPTIONS")
    (new,) = p.events("server", NewRequest)
    assert new.request.method == "OPTIONS" and new.addr == CLIENT and new.cancels is None
    assert new.tx.state == COMPLETED
    (got,) = p.events("client", ResponseReceived)
    assert got.tx is tx and got.response.status == 200 and tx.state == COMPLETED
    assert tx.request is None and new.tx.request is None  # lingering transactions travel light
    assert p.client.next_timer() == 5000  # Timer K = T4
    assert p.server.next_timer() == 32000  # Timer J = 64*T1
    # completed, they hold no transaction slot: a compact record each absorbs stragglers
    assert len(p.client) == 0 and len(p.server) == 0
    p.run(4999)
    assert p.client.lingering() == 1
    p.run(5000)
    assert p.client.lingering() == 0 and p.client.next_timer() is None
    p.run(31999)
    assert p.server.lingering() == 1
    p.run(32000)
    assert p.server.lingering() == 0 and p.server.next_timer() is None
    assert tx.state == COMPLETED  # the TU's object stays as it was; the layer forgot it
    assert p.sent("c>s", "OPTIONS") == [0]  # no retransmission was needed


def test_timer_e_doubles_up_to_t2_and_timer_f_times_out():
    p = Pair()
    p.drop = lambda d, data: d == "c>s"
    tx = p.request("OPTIONS")
    p.run(40000)
    times = p.sent("c>s", "OPTIONS")
    assert times == [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    (timeout,) = p.events("client", Timeout)
    assert timeout.tx is tx and timeout.timer == "F" and (32000, timeout) in p.client_events
    assert tx.state == TERMINATED and len(p.client) == 0


def test_timer_e_fires_every_t2_once_a_provisional_came():
    p = Pair()
    p.answer = answer_with(100)
    p.drop = lambda d, data: d == "c>s" and p.now > 0  # the peer heard the first copy only
    tx = p.request("REGISTER")
    assert tx.state == PROCEEDING
    p.run(12000)
    assert p.sent("c>s", "REGISTER") == [0, 500, 4500, 8500]  # E was already armed at T1


def test_timers_follow_t1_and_t2_set_on_the_layer():
    p = Pair(T1=100, T2=400)
    p.drop = lambda d, data: d == "c>s"
    p.request("OPTIONS")
    p.run(7000)
    assert p.sent("c>s", "OPTIONS") == [0, 100, 300] + list(range(700, 6400, 400))
    (timeout,) = p.events("client", Timeout)
    assert timeout.timer == "F" and (6400, timeout) in p.client_events


def test_lost_final_response_is_resent_when_the_request_comes_again():
    p = Pair()
    p.answer = answer_with(200)
    p.drop = drop_first("SIP/2.0 200")
    tx = p.request("OPTIONS")
    assert tx.state == TRYING
    p.run(600)
    assert p.sent("c>s", "OPTIONS") == [0, 500]
    assert p.sent("s>c", "SIP/2.0 200") == [0, 500]
    (absorbed,) = p.events("server", Absorbed)
    assert absorbed.message.method == "OPTIONS"
    assert len(p.events("server", NewRequest)) == 1  # the TU saw the request once
    assert tx.state == COMPLETED and len(p.events("client", ResponseReceived)) == 1


def test_non_invite_server_drops_retransmissions_until_the_tu_answers():
    p = Pair()
    tx = p.request("OPTIONS")
    (new,) = p.events("server", NewRequest)
    p.run(600)  # the retransmission at 500 meets a server in trying: dropped
    assert p.sent("s>c", "") == [] and len(p.events("server", Absorbed)) == 1
    p.respond(new, 183)
    p.run(1600)  # ... and in proceeding gets the provisional again
    assert p.sent("s>c", "SIP/2.0 183") == [600, 1500]
    assert tx.state == PROCEEDING
    p.respond(new, 200)
    assert tx.state == COMPLETED and new.tx.state == COMPLETED


# -- INVITE client and server ----------------------------------------------------------------


def test_timer_a_doubles_without_cap_until_timer_b_times_out():
    p = Pair()
    p.drop = lambda d, data: d == "c>s"
    tx = p.request("INVITE")
    p.run(40000)
    assert p.sent("c>s", "INVITE") == [0, 500, 1500, 3500, 7500, 15500, 31500]
    (timeout,) = p.events("client", Timeout)
    assert timeout.tx is tx and timeout.timer == "B" and (32000, timeout) in p.client_events
    assert len(p.client) == 0


def test_server_sends_100_trying_after_200_ms_and_timer_a_stops():
    p = Pair()
    tx = p.request("INVITE")
    (new,) = p.events("server", NewRequest)
    p.run(10000)
    assert p.sent("s>c", "SIP/2.0 100") == [200]
    assert p.sent("c>s", "INVITE") == [0]  # the 100 came before Timer A at 500
    assert tx.state == PROCEEDING and new.tx.state == PROCEEDING
    assert p.client.next_timer() is None and p.server.next_timer() is None  # they wait for the TU
    (trying,) = p.events("client", ResponseReceived)
    assert trying.response.status == 100


def test_no_100_trying_when_the_tu_answers_first():
    p = Pair()
    p.answer = answer_with(180)
    p.request("INVITE")
    p.run(1000)
    assert p.sent("s>c", "SIP/2.0") == [0] and p.sent("s>c", "SIP/2.0 180") == [0]
    p2 = Pair(trying_delay=0)
    p2.request("INVITE")
    assert p2.sent("s>c", "SIP/2.0 100") == [0]


def test_retransmitted_invite_before_any_provisional_gets_100_trying():
    p = Pair(trying_delay=None)
    p.request("INVITE")
    assert p.sent("s>c", "") == []  # never on its own
    p.run(600)
    assert p.sent("c>s", "INVITE") == [0, 500] and p.sent("s>c", "SIP/2.0 100") == [500]
    trying = parse(p.wire[-1][2])
    assert trying.to_addr().tag is None and trying.cseq() == (1, "INVITE")


def test_retransmitted_invite_gets_the_latest_provisional():
    p = Pair()
    p.answer = answer_with(180)
    p.drop = drop_first("SIP/2.0 180")
    tx = p.request("INVITE")
    p.run(600)
    assert p.sent("c>s", "INVITE") == [0, 500]
    assert p.sent("s>c", "SIP/2.0 180") == [0, 500]
    assert tx.state == PROCEEDING and len(p.events("server", NewRequest)) == 1


def test_invite_rejected_client_transaction_sends_the_ack():
    p = Pair()
    p.answer = answer_with(486)
    tx = p.request("INVITE")
    invite = p.last_request
    (got,) = p.events("client", ResponseReceived)
    assert got.response.status == 486 and tx.state == COMPLETED
    assert tx.request is None  # lingering: only the ACK's bytes are kept
    assert p.sent("c>s", "ACK") == [0]
    ack = parse([data for _, d, data, _ in p.wire if first_line(data).startswith("ACK")][0])
    assert ack.uri == invite.uri and ack.get_all("via") == [invite.get("via")]  # same branch
    assert ack.cseq() == (1, "ACK") and ack.call_id() == invite.call_id()
    assert ack.to_addr().tag == "to1" and ack.get("from") == invite.get("from")
    server_tx = p.events("server", NewRequest)[0].tx
    assert server_tx.state == CONFIRMED
    assert not p.events("server", AckReceived)  # the ACK for a non-2xx stays in the transaction
    assert p.server.next_timer() == 5000  # Timer I = T4
    assert p.client.next_timer() == 32000  # Timer D
    p.run(5000)
    assert len(p.server) == 0
    p.run(32000)
    assert len(p.client) == 0 and p.sent("s>c", "SIP/2.0 486") == [0]


def test_lost_ack_server_resends_final_on_timer_g_until_timer_h():
    p = Pair()
    p.answer = answer_with(486)
    p.drop = lambda d, data: d == "c>s" and first_line(data).startswith("ACK")
    tx = p.request("INVITE")
    server_tx = p.events("server", NewRequest)[0].tx
    assert server_tx.state == COMPLETED
    p.run(40000)
    times = p.sent("s>c", "SIP/2.0 486")
    assert times == [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    assert p.sent("c>s", "ACK") == times  # the client ACKs each copy again
    assert len(p.events("client", ResponseReceived)) == 1  # the TU heard the 486 once
    assert len(p.events("client", Absorbed)) == 10
    (timeout,) = p.events("server", Timeout)
    assert timeout.tx is server_tx and timeout.timer == "H" and (32000, timeout) in p.server_events
    assert len(p.server) == 0 and len(p.client) == 0 and tx.state == COMPLETED  # its record did the ACKs
    assert p.client.lingering() == 0  # Timer D (32 s after the first 486) is over too


def test_2xx_for_invite_goes_to_the_tu_and_its_ack_too():
    p = Pair()
    p.answer = answer_with(200)
    tx = p.request("INVITE")
    invite = p.last_request
    (got,) = p.events("client", ResponseReceived)
    assert got.response.status == 200 and tx.state == ACCEPTED
    assert p.sent("c>s", "ACK") == []  # the TU acknowledges a 2xx, not the transaction
    server_tx = p.events("server", NewRequest)[0].tx
    assert server_tx.state == ACCEPTED
    # the UAC core's ACK for the 2xx: a new branch, outside any transaction (13.2.2.4)
    resp = got.response
    ack = make_request("ACK", invite.uri, invite.get("from"), resp.get("to"), resp.call_id(), 1)
    ack.add("via", "SIP/2.0/UDP 192.0.2.1:5060;branch=" + p.client.branch())
    p.client.send_stateless(ack, SERVER)
    p.flush()
    (acked,) = p.events("server", AckReceived)
    assert acked.tx is None and acked.request.method == "ACK" and acked.addr == CLIENT
    # some phones reuse the INVITE's branch for it: then it matches, and still goes up
    ack.set("via", invite.get("via"))
    (again,) = p.server.receive(ack, CLIENT, p.now)
    assert isinstance(again, AckReceived) and again.tx is server_tx
    # a late copy of the INVITE is absorbed in accepted state, without an answer (RFC 6026)
    invite = [data for _, d, data, _ in p.wire if first_line(data).startswith("INVITE")][0]
    (absorbed,) = p.server.receive(invite, CLIENT, p.now)
    assert isinstance(absorbed, Absorbed) and p.server.datagrams_to_send() == []
    assert p.server.next_timer() == 32000 and p.client.next_timer() == 32000  # Timers L and M
    p.run(32000)
    assert len(p.server) == 0 and len(p.client) == 0


def test_2xx_retransmissions_reach_the_tu_until_timer_m_then_are_stray():
    p = Pair()
    tx = p.request("INVITE")
    (new,) = p.events("server", NewRequest)
    ok = make_response(new.request, 200, to_tag="to1")
    assert p.server.respond(new.tx, ok, 0)
    p.flush()
    p.run(500)
    assert p.server.respond(new.tx, ok, 500)  # the UAS core retransmits its 2xx (13.3.1.4)
    p.flush()
    assert [e.response.status for e in p.events("client", ResponseReceived)] == [200, 200]
    assert tx.state == ACCEPTED
    p.run(32000)
    assert len(p.client) == 0 and len(p.server) == 0
    assert not p.server.respond(new.tx, ok, 32000)  # the transaction is gone
    p.server.send_stateless(ok, CLIENT)
    p.flush()
    (stray,) = p.events("client", StrayResponse)
    assert stray.response.status == 200 and stray.addr == SERVER


def test_response_matching_no_transaction_is_stray():
    layer = TransactionLayer("192.0.2.1:5060", seed=3)
    data = (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKnobody\r\n"
        b"From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n"
    )
    (ev,) = layer.receive(data, SERVER, 0)
    assert isinstance(ev, StrayResponse) and ev.response.status == 200 and ev.addr == SERVER
    # the same branch with another CSeq method belongs to another transaction (17.1.3)
    p = Pair()
    tx = p.request("OPTIONS")
    resp = make_response(tx.request, 200, to_tag="x")
    resp.set("cseq", "1 INFO")
    (ev,) = p.client.receive(resp, SERVER, 0)
    assert isinstance(ev, StrayResponse) and tx.state == TRYING


# -- CANCEL ------------------------------------------------------------------------------------


def test_cancel_is_its_own_transaction_and_names_the_invite():
    p = Pair()
    p.answer = answer_with(180)
    invite_tx = p.request("INVITE")
    p.answer = None
    cancel = make_cancel(invite_tx.request)
    assert cancel.method == "CANCEL" and cancel.get_all("via") == [invite_tx.request.get("via")]
    assert cancel.cseq() == (1, "CANCEL") and cancel.uri == invite_tx.request.uri
    cancel_tx = p.client.send_request(cancel, SERVER, p.now)
    p.flush()
    news = p.events("server", NewRequest)
    assert [e.request.method for e in news] == ["INVITE", "CANCEL"]
    assert news[1].cancels is news[0].tx and news[1].tx is not news[0].tx
    p.respond(news[1], 200)
    p.respond(news[0], 487)
    statuses = [(e.tx.method, e.response.status) for e in p.events("client", ResponseReceived)]
    assert statuses == [("INVITE", 180), ("CANCEL", 200), ("INVITE", 487)]
    assert cancel_tx.state == COMPLETED and invite_tx.state == COMPLETED


def test_cancel_with_no_matching_invite_says_so():
    p = Pair()
    req = make_request("INVITE", "sip:201@192.0.2.2", "<sip:200@192.0.2.1>;tag=a", "<sip:201@x>", "c9", 1)
    req.add("via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKneverseen")
    p.client.send_request(make_cancel(req), SERVER, 0)
    p.flush()
    (new,) = p.events("server", NewRequest)
    assert new.request.method == "CANCEL" and new.cancels is None


def test_invite_gives_up_64_t1_after_its_cancel_brings_no_final_response():
    p = Pair()
    p.answer = answer_with(180)
    invite_tx = p.request("INVITE")
    p.run(1000)

    def answer(pair, ev):  # the CANCEL gets its 200, the INVITE another 1xx but no final
        pair.respond(ev, 200)
        pair.server.respond(ev.cancels, make_response(ev.cancels.request, 183, to_tag="to1"), pair.now)

    p.answer = answer
    p.client.send_request(make_cancel(invite_tx.request), SERVER, p.now)
    p.run(40000)
    assert [e.response.status for e in p.events("client", ResponseReceived)] == [180, 200, 183]
    (timeout,) = p.events("client", Timeout)
    assert timeout.tx is invite_tx and timeout.timer == "cancel" and (33000, timeout) in p.client_events
    assert invite_tx not in p.client.transactions()


# -- RFC 2543 matching -----------------------------------------------------------------------


def test_badbranch_is_matched_the_rfc2543_way():
    data = read_bytes(TESTDATA + "/rfc4475/badbranch.dat")
    layer = TransactionLayer("192.0.2.2:5060", seed=4)
    src = ("192.0.2.1", 5070)
    (new,) = layer.receive(data, src, 0)
    assert isinstance(new, NewRequest) and new.request.via().branch == "z9hG4bK"
    assert layer.respond(new.tx, make_response(new.request, 200, to_tag="t"), 0)
    assert [addr for _, addr in layer.datagrams_to_send()] == [("192.0.2.1", 5060)]  # sent-by port
    (again,) = layer.receive(data, src, 500)
    assert isinstance(again, Absorbed) and again.tx is None  # the compact record answered
    assert len(layer.datagrams_to_send()) == 1 and len(layer) == 0 and layer.lingering() == 1
    other = data.replace(b"CSeq: 8 OPTIONS", b"CSeq: 9 OPTIONS")  # same "branch", new request
    assert isinstance(layer.receive(other, src, 600)[0], NewRequest) and len(layer) == 1


def test_rfc2543_invite_and_its_ack_match_by_the_to_tag_we_sent():
    data = read_bytes(TESTDATA + "/rfc4475/inv2543.dat")
    layer = TransactionLayer("192.0.2.2:5060", seed=5)
    src = ("192.0.2.5", 5060)
    (new,) = layer.receive(data, src, 0)
    assert isinstance(new, NewRequest) and new.request.via().branch is None
    assert new.request.via().received == "192.0.2.5"  # sent-by is a name, not the source
    layer.respond(new.tx, make_response(new.request, 486, to_tag="busy1"), 0)
    assert [addr for _, addr in layer.datagrams_to_send()] == [src]
    assert isinstance(layer.receive(data, src, 100)[0], Absorbed)  # the INVITE again
    assert len(layer.datagrams_to_send()) == 1  # ... gets the 486 again

    def ack(tag):
        text = data.split(b"\r\n\r\n")[0].replace(b"INVITE sip", b"ACK sip").replace(b"56 INVITE", b"56 ACK")
        text = text.replace(b"user=phone\r\nCall-ID", b"user=phone;tag=" + tag + b"\r\nCall-ID")
        return text + b"\r\n\r\n"

    (other,) = layer.receive(ack(b"elsewhere"), src, 200)
    assert isinstance(other, AckReceived) and other.tx is None  # not ours: the TU's business
    (mine,) = layer.receive(ack(b"busy1"), src, 300)
    assert isinstance(mine, Absorbed) and new.tx.state == CONFIRMED


# -- limits, misuse, transport -----------------------------------------------------------------


def test_over_max_transactions_new_requests_get_503_with_retry_after():
    p = Pair(max_transactions=2)
    p.client.max_transactions = 10
    first = p.request("OPTIONS")
    p.request("OPTIONS")
    p.request("OPTIONS")
    (over,) = p.events("server", Overloaded)
    assert over.request.call_id() == "call-3@192.0.2.1" and over.addr == CLIENT
    (busy,) = [e.response for e in p.events("client", ResponseReceived)]
    assert busy.status == 503 and busy.get("retry-after") == "10" and busy.to_addr().tag
    assert len(p.server) == 2
    p.run(500)  # the first two are retransmitted and still absorbed, not refused
    assert len(p.events("server", Absorbed)) == 2 and len(p.events("server", Overloaded)) == 1
    assert first.state == TRYING


def test_send_request_misuse_raises_transaction_error():
    layer = TransactionLayer(seed=6)
    req = make_request("OPTIONS", "sip:b@x", "<sip:a@x>;tag=1", "<sip:b@x>", "c1", 1)
    e = raises(TransactionError, layer.send_request, req, SERVER, 0)
    assert str(e) == "request has no via and the layer has no sent_by"
    ack = make_request("ACK", "sip:b@x", "<sip:a@x>;tag=1", "<sip:b@x>", "c1", 1, via="SIP/2.0/UDP h")
    e = raises(TransactionError, layer.send_request, ack, SERVER, 0)
    assert str(e) == "ack is not a transaction: send it with send_stateless()"
    old = make_request("OPTIONS", "sip:b@x", "<sip:a@x>;tag=1", "<sip:b@x>", "c1", 1, via="SIP/2.0/UDP h;branch=1")
    assert "not an rfc 3261 branch" in str(raises(TransactionError, layer.send_request, old, SERVER, 0))
    req.add("via", "SIP/2.0/UDP h")  # a Via without branch gets one
    tx = layer.send_request(req, SERVER, 0)
    assert is_rfc3261_branch(tx.request.via().branch) and tx.key == (tx.request.via().branch, "OPTIONS")
    e = raises(TransactionError, layer.send_request, req, SERVER, 0)
    assert str(e).startswith("branch z9hG4bK") and "already in use" in str(e)
    layer.max_transactions = 1
    req2 = make_request("OPTIONS", "sip:b@x", "<sip:a@x>;tag=1", "<sip:b@x>", "c2", 1, via="SIP/2.0/UDP h")
    e = raises(TransactionError, layer.send_request, req2, SERVER, 0)
    assert str(e) == "too many transactions: max_transactions is 1"
    assert str(raises(TransactionError, layer.respond, tx, None, 0)).startswith("respond() takes a server")


def test_respond_refuses_what_the_state_does_not_take():
    p = Pair()
    p.request("OPTIONS")
    (new,) = p.events("server", NewRequest)
    assert p.respond(new, 200)
    assert not p.respond(new, 404)  # a second final response is discarded (17.2.2)
    assert not p.respond(new, 180)
    p.run(32000)
    assert not p.respond(new, 200) and new.tx.state == COMPLETED and p.server.lingering() == 0
    assert p.sent("s>c", "SIP/2.0") == [0]


def test_received_and_rport_and_where_responses_go():
    layer = TransactionLayer("192.0.2.2:5060", seed=7)

    def options(via):
        req = make_request("OPTIONS", "sip:b@192.0.2.2", "<sip:a@x>;tag=1", "<sip:b@x>", "c" + via[-2:], 1, via=via)
        return req.to_bytes()

    natted = ("203.0.113.9", 40000)
    cases = (
        (
            "SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKa1;rport",
            "SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKa1;rport=40000;received=203.0.113.9",
            natted,
        ),
        (
            "SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKa2",
            "SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKa2;received=203.0.113.9",
            ("203.0.113.9", 5062),
        ),
        (
            "SIP/2.0/UDP phone.example.com;branch=z9hG4bKa3",
            "SIP/2.0/UDP phone.example.com;branch=z9hG4bKa3;received=203.0.113.9",
            ("203.0.113.9", 5060),
        ),
        ("SIP/2.0/UDP 203.0.113.9:40000;branch=z9hG4bKa4", "SIP/2.0/UDP 203.0.113.9:40000;branch=z9hG4bKa4", natted),
    )
    for via, top, reply_to in cases:
        (new,) = layer.receive(options(via), natted, 0)
        assert new.request.get("via") == top and new.tx.addr == reply_to, via
        layer.respond(new.tx, make_response(new.request, 200, to_tag="t"), 0)
        ((data, addr),) = layer.datagrams_to_send()
        assert addr == reply_to and parse(data).get("via") == top
    layer.symmetric = True
    (new,) = layer.receive(options("SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKa5"), natted, 0)
    assert new.tx.addr == natted


def test_transport_error_ends_transactions_to_that_address():
    p = Pair()
    tx = p.request("OPTIONS")
    other = p.client.send_request(
        make_request("OPTIONS", "sip:c@x", "<sip:a@x>;tag=1", "<sip:c@x>", "c7", 1), ("192.0.2.99", 5060), 0
    )
    (new,) = p.events("server", NewRequest)
    events = p.client.transport_error(SERVER, 10)
    assert len(events) == 1 and isinstance(events[0], TransportError) and events[0].tx is tx
    assert tx.state == TERMINATED and other.state == TRYING and len(p.client) == 1
    assert p.server.transport_error(CLIENT, 10)[0].tx is new.tx and len(p.server) == 0
    assert not p.server.respond(new.tx, make_response(new.request, 200), 10)


def test_malformed_request_is_answered_400_and_a_malformed_response_dropped():
    layer = TransactionLayer("192.0.2.2:5060", seed=8)
    bad = (
        b"OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKm1\r\n"
        b"From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: m1\r\nCSeq: 1 INVITE\r\n\r\n"
    )
    (ev,) = layer.receive(bad, CLIENT, 0)
    assert isinstance(ev, Malformed) and ev.status == 400 and ev.reason.startswith("bad cseq header")
    ((data, addr),) = layer.datagrams_to_send()
    assert first_line(data) == "SIP/2.0 400 Bad Request" and addr == CLIENT
    (ev,) = layer.receive(b"SIP/2.0 999 Nope\r\n\r\n", CLIENT, 0)
    assert isinstance(ev, Malformed) and ev.status is None and layer.datagrams_to_send() == []
    (ev,) = layer.receive(b"\x00garbage", CLIENT, 0)
    assert isinstance(ev, Malformed) and len(layer) == 0


def test_abandon_forgets_a_transaction_at_once():
    p = Pair()
    tx = p.request("INVITE")
    p.run(300)
    p.client.abandon(tx)
    assert tx.state == TERMINATED and len(p.client) == 0 and p.client.next_timer() is None


def test_ten_thousand_transactions_leave_nothing_behind():
    p = Pair()
    n = 10000
    # by i % 4: OPTIONS 200; INVITE 486; OPTIONS 404, its first copy lost; INVITE 200 + ACK
    plan = (200, 486, 404, 200)
    p.answer = lambda pair, ev: pair.respond(ev, plan[(pair.calls - 1) % 4])
    step = 1000  # a new transaction every second: with 64*T1 lingering, ~32 of each kind linger
    peak = peak_records = 0
    for i in range(n):
        p.run(i * step)
        p.drop = drop_first("SIP/2.0 404") if i % 4 == 2 else None
        tx = p.request("INVITE" if i % 2 else "OPTIONS")
        req = p.last_request  # the TU keeps what it sent: a lingering tx drops its copy
        peak = max(peak, len(p.client) + len(p.server))
        peak_records = max(peak_records, p.client.lingering() + p.server.lingering())
        if i % 4 == 3:  # the UAC core's ACK for the 2xx, on a branch of its own
            ack = make_request("ACK", req.uri, req.get("from"), req.get("to") + ";tag=to1", req.call_id(), 1)
            ack.add("via", "SIP/2.0/UDP 192.0.2.1:5060;branch=" + p.client.branch())
            p.client.send_stateless(ack, SERVER)
            p.flush()
        assert tx.state == (TRYING if i % 4 == 2 else ACCEPTED if i % 4 == 3 else COMPLETED)
        if i % 64 == 63:
            kinds = [type(e).__name__ for _, e in p.client_events + p.server_events]
            for kind in ("Timeout", "Overloaded", "StrayResponse", "Malformed"):
                assert kind not in kinds, kind
            del p.wire[:], p.client_events[:], p.server_events[:]
    p.run(n * step + 64 * 500)
    assert len(p.client) == 0 and len(p.server) == 0
    assert p.client.next_timer() is None and p.server.next_timer() is None
    assert not p.client.transactions() and not p.server.transactions()
    assert peak <= 2 and 8 < peak_records < 128  # lingering is a record, not a running transaction


# -- the timer heap and the lingering records --------------------------------------------------


def test_timers_fire_in_deadline_order_ties_in_creation_order():
    layer = TransactionLayer("192.0.2.1:5060", seed=9)
    layer.T1 = 1000
    fired = []
    txs = []
    # five OPTIONS to a silent peer, started at 0, 300, 300, 600, 100: Timer E fires at T1 after
    for i, start in enumerate((0, 300, 300, 600, 100)):
        req = make_request("OPTIONS", "sip:x@y", "<sip:a@x>;tag=%d" % i, "<sip:x@y>", "c%d" % i, 1)
        txs.append(layer.send_request(req, SERVER, start))
    layer.datagrams_to_send()
    expect = [(1000, 0), (1100, 4), (1300, 1), (1300, 2), (1600, 3)]
    while layer.next_timer() is not None and layer.next_timer() <= 1600:
        now = layer.next_timer()
        layer.handle_timer(now)
        for _ in layer.datagrams_to_send():
            fired.append(now)
    assert fired == [t for t, _ in expect]
    # the order within a tie is creation order: tx 1 was sent before tx 2
    layer2 = TransactionLayer("192.0.2.1:5060", seed=9)
    order = []
    for i in range(3):
        req = make_request("OPTIONS", "sip:x@y", "<sip:a@x>;tag=%d" % i, "<sip:x@y>", "d%d" % i, 1)
        layer2.send_request(req, ("192.0.2.%d" % (10 + i), 5060), 0)
    layer2.datagrams_to_send()
    layer2.handle_timer(500)
    order = [addr[0] for _, addr in layer2.datagrams_to_send()]
    assert order == ["192.0.2.10", "192.0.2.11", "192.0.2.12"]


def test_stopped_and_rearmed_timers_leave_stale_entries_that_never_fire():
    p = Pair()
    p.answer = answer_with(180)
    tx = p.request("INVITE")  # 180 stops Timers A and B: their heap entries go stale
    assert tx.state == PROCEEDING
    assert p.client.next_timer() is None and p.client._heap == []  # dropped as they surfaced
    # an INVITE server answered 2xx after its 100 Trying timer was armed: the 100 never comes
    p2 = Pair()
    p2.request("INVITE")
    (new,) = p2.events("server", NewRequest)
    p2.respond(new, 200)
    assert p2.server.next_timer() == 32000  # Timer L; the 200 ms entry was stale
    p2.run(40000)
    assert p2.sent("s>c", "SIP/2.0 100") == [] and len(p2.server) == 0


def test_the_heap_stays_small_when_most_of_its_entries_are_stale():
    p = Pair(max_transactions=1000)
    p.answer = answer_with(180)
    for _ in range(500):  # each leaves two stale entries (A at +500, B at +32 s)
        p.request("INVITE")
    assert len(p.client) == 500
    assert len(p.client._heap) <= 4 * len(p.client) + 64
    p.client.next_timer()
    assert p.client.next_timer() is None


def test_a_due_timer_costs_one_heap_operation_not_a_scan():
    # 4,000 running transactions: each handle_timer pops only what is due (no scan)
    layer = TransactionLayer("192.0.2.1:5060", seed=9)
    layer.max_transactions = 10000
    for i in range(4000):
        req = make_request("OPTIONS", "sip:x@y", "<sip:a@x>;tag=%d" % i, "<sip:x@y>", "e%d" % i, 1)
        layer.send_request(req, SERVER, i)
    layer.datagrams_to_send()
    calls = [0]
    orig = TransactionLayer._schedule

    def counting(self, tx, at):
        calls[0] += 1
        return orig(self, tx, at)

    TransactionLayer._schedule = counting
    try:
        assert layer.next_timer() == 500
        layer.handle_timer(500)  # one transaction due: one retransmission, one re-arm
        assert len(layer.datagrams_to_send()) == 1 and calls[0] == 1
    finally:
        TransactionLayer._schedule = orig


def test_a_retransmission_within_timer_j_gets_the_same_answer_from_the_record():
    p = Pair()
    seen = []

    def answer(pair, ev):
        seen.append(ev.request.method)
        pair.respond(ev, 200, tag="only-once")

    p.answer = answer
    lost = [0]

    def drop(d, data):  # the 200 is lost three times: the client retransmits at 0.5, 1.5, 3.5 s
        if d == "s>c" and lost[0] < 3:
            lost[0] += 1
            return True
        return False

    p.drop = drop
    tx = p.request("REGISTER")
    p.run(4000)
    assert seen == ["REGISTER"]  # the TU saw it once
    copies = [data for t, d, data, _ in p.wire if d == "s>c"]
    assert len(copies) == 4 and len(set(copies)) == 1  # the very same bytes each time
    assert tx.state == COMPLETED and len(p.server) == 0 and p.server.lingering() == 1
    p.run(31999)
    assert p.server.lingering() == 1
    p.run(32000)
    assert p.server.lingering() == 0


def test_lingering_records_have_a_cap_and_the_oldest_goes_first():
    p = Pair(max_lingering=3)
    p.answer = answer_with(200)
    txs = []
    for i in range(5):
        p.now = i * 10
        txs.append(p.request("OPTIONS"))
    assert p.server.lingering() == 3 and len(p.server) == 0  # no 503, no slot held
    assert p.server.next_timer() == 20 + 32000  # the first two are gone
    # a retransmission of the newest is still answered from its record, the oldest's is new
    newest = [data for _, d, data, _ in p.wire if d == "c>s"][-1]
    oldest = [data for _, d, data, _ in p.wire if d == "c>s"][0]
    (ev,) = p.server.receive(newest, CLIENT, 100)
    assert isinstance(ev, Absorbed) and len(p.server.datagrams_to_send()) == 1
    (ev,) = p.server.receive(oldest, CLIENT, 100)
    assert isinstance(ev, NewRequest)


def test_a_busy_server_holds_slots_only_while_it_works():
    # 64 slots, 1,000 requests over 10 s, each answered at once: nothing is refused
    p = Pair(max_transactions=64, max_lingering=2000)
    p.client.max_transactions = 2000
    p.answer = answer_with(200)
    for i in range(1000):
        p.run(i * 10)
        p.request("REGISTER")
    assert not p.events("server", Overloaded) and len(p.events("client", ResponseReceived)) == 1000
    assert len(p.server) == 0 and p.server.lingering() == 1000
    p.run(10000 + 32000)
    assert p.server.lingering() == 0 and p.client.lingering() == 0 and p.server.next_timer() is None

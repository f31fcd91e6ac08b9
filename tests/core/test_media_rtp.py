"""media/rtp.py: the header, the paced sender, the receiver (one peer, one SSRC, sequence and
jitter per RFC 3550)."""

from _support import counter_random, raises
from zongji.media import rtp
from zongji.media.rtp import RtpError, RtpReceiver, RtpSender, build, parse

PEER = ("192.0.2.7", 4000)


def test_header_round_trip():
    data = build(8, 65535, 0xDEADBEEF, 0x01020304, b"\xd5" * 160, marker=True)
    p = parse(data)
    assert (p.marker, p.pt, p.seq, p.ts, p.ssrc) == (True, 8, 65535, 0xDEADBEEF, 0x01020304)
    assert bytes(p.payload) == b"\xd5" * 160
    assert data[:2] == b"\x80\x88"


def test_csrc_extension_and_padding_are_skipped():
    head = bytearray(build(0, 1, 2, 3, b""))
    head[0] = 0x80 | 0x10 | 0x20 | 2  # X, P, CC=2
    csrc = b"\x00\x00\x00\x0a\x00\x00\x00\x0b"
    ext = b"\xbe\xde\x00\x01" + b"\x11\x22\x33\x44"  # one 32-bit word of extension
    data = bytes(head) + csrc + ext + b"abc" + b"\x00\x00\x03"  # 3 bytes of padding
    assert bytes(parse(data).payload) == b"abc"


def test_malformed_packets_are_refused_with_a_reason():
    good = build(0, 1, 2, 3, b"x")
    cases = [
        (b"\x80\x00\x00", "shorter"),
        (b"\x40" + good[1:], "version 1"),
        (b"\x8f" + good[1:], "csrc list"),  # 15 CSRCs announced, none there
        (b"\x90" + good[1:12] + b"\x00\x00", "extension cut short"),
        (b"\x90" + good[1:12] + b"\x00\x00\x00\x09", "longer than the packet"),
        (b"\xa0" + good[1:12] + b"\x05", "padding"),
        (b"\xa0" + good[1:12] + b"\x00", "padding"),
    ]
    for data, why in cases:
        e = raises(RtpError, parse, data)
        assert why in str(e), (data, str(e))


def test_sender_random_start_and_20ms_frames():
    tx = RtpSender(pt=0, random_bytes=counter_random())
    other = RtpSender(pt=0, random_bytes=counter_random())
    assert tx.ssrc == other.ssrc  # same deterministic source, same values; a real one differs
    tx.start(1000)
    assert tx.next_due() == 1000
    seq0, ts0 = tx.seq, tx.ts
    tx.payload[:] = b"\xff" * 160
    p1 = parse(bytes(tx.packet(tx.payload, 1000)))
    assert tx.next_due() == 1020
    p2 = parse(bytes(tx.packet(b"\x7f" * 160, 1020)))
    assert (p1.seq, p1.ts, p1.marker) == (seq0, ts0, True)
    assert (p2.seq, p2.ts, p2.marker) == ((seq0 + 1) & 0xFFFF, (ts0 + 160) & 0xFFFFFFFF, False)
    assert bytes(p1.payload) == b"\xff" * 160 and bytes(p2.payload) == b"\x7f" * 160
    assert p1.ssrc == tx.ssrc and tx.sent == 2 and tx.octets == 320


def test_timestamp_runs_on_through_silence_and_marks_the_talkspurt():
    tx = RtpSender(pt=8, ssrc=5, random_bytes=counter_random())
    tx.seq, tx.ts = 65535, 0xFFFFFF60  # both about to wrap
    tx.start(0)
    a = parse(bytes(tx.packet(b"a" * 160, 0)))
    tx.silence(20)
    tx.silence(40)
    b = parse(bytes(tx.packet(b"b" * 160, 60)))
    assert a.ts == 0xFFFFFF60 and b.ts == (0xFFFFFF60 + 3 * 160) & 0xFFFFFFFF
    assert (a.seq, b.seq) == (65535, 0)  # silence sends nothing: sequence numbers stay dense
    assert b.marker and tx.next_due() == 80


def test_a_stalled_shell_skips_frames_instead_of_bursting():
    tx = RtpSender(pt=0, ssrc=1, random_bytes=counter_random())
    tx.start(0)
    t0 = parse(bytes(tx.packet(b"x" * 160, 0))).ts
    late = parse(bytes(tx.packet(b"x" * 160, 30)))  # 10 ms late: sent now, no skip
    assert late.ts == t0 + 160 and not late.marker and tx.next_due() == 40
    p = parse(bytes(tx.packet(b"x" * 160, 540)))  # 500 ms stall
    assert p.ts == t0 + 160 * 27 and p.marker and tx.next_due() == 560


def _feed(rx, seqs, ssrc=7, addr=PEER, t0=0, pt=0):
    out = []
    for i, s in enumerate(seqs):
        out.append(rx.receive(build(pt, s & 0xFFFF, (s * 160) & 0xFFFFFFFF, ssrc, b"x" * 160), addr, t0 + 20 * i))
    return out


def test_sequence_wraps_at_65535_without_loss():
    rx = RtpReceiver(PEER, pts=(0,))
    got = _feed(rx, range(65530, 65540))
    assert all(p is not None for p in got)
    assert rx.received == 10 and rx.lost() == 0 and rx.expected() == 10 and rx.max_ext == 65539


def test_loss_duplicates_and_reordering_are_counted():
    rx = RtpReceiver(PEER)
    got = _feed(rx, [100, 101, 103, 102, 102, 105, 105, 104])
    dropped = [i for i, p in enumerate(got) if p is None]
    assert dropped == [4, 6]  # the two duplicates
    assert rx.duplicates == 2 and rx.reordered == 2 and rx.lost() == 0 and rx.received == 6
    _feed(rx, [108], t0=500)
    assert rx.lost() == 2  # 106, 107


def test_a_big_jump_is_believed_only_when_the_next_packet_follows():
    rx = RtpReceiver(PEER)
    _feed(rx, [10, 11, 12])
    assert _feed(rx, [30000]) == [None] and rx.last_drop == "sequence jump to 30000"
    assert _feed(rx, [12345]) == [None]  # another stray: still not believed
    assert _feed(rx, [12346])[0] is not None  # 12345, 12346: the source restarted
    assert rx.jumps == 1 and rx.received == 1 and rx.lost() == 0


def test_injection_from_another_address_or_ssrc_is_dropped():
    rx = RtpReceiver(PEER, pts=(0, 101), event_pt=101)
    _feed(rx, [1, 2, 3], ssrc=7)
    assert _feed(rx, [4], addr=("192.0.2.66", 4000)) == [None]
    assert _feed(rx, [4], addr=("192.0.2.7", 4001)) == [None]
    assert rx.wrong_addr == 2 and rx.last_drop == "not from the negotiated peer"
    assert _feed(rx, [4], pt=18) == [None] and rx.wrong_pt == 1
    # a forged SSRC interleaved with the live stream never takes over, however many it sends
    for i in range(20):
        assert _feed(rx, [900 + i], ssrc=0xBAD, t0=100 + i)[0] is None
        if i % 5 == 4:
            assert _feed(rx, [4 + i // 5], ssrc=7, t0=100 + i)[0] is not None
    assert rx.ssrc == 7 and rx.wrong_ssrc == 20 and rx.relocks == 0
    assert RtpReceiver(None).receive(build(0, 1, 1, 1, b""), PEER, 0) is None  # no peer yet


def test_a_new_ssrc_from_the_peer_takes_over_after_silence_and_a_run():
    rx = RtpReceiver(PEER)
    rx.relock_after = 4
    _feed(rx, [1, 2, 3], ssrc=7)  # last packet at 40 ms
    got = _feed(rx, [500, 501, 502, 503, 504], ssrc=8, t0=1000)
    assert got[:3] == [None, None, None] and got[3] is not None and got[4] is not None
    assert rx.ssrc == 8 and rx.relocks == 1 and rx.received == 2 and rx.lost() == 0
    assert _feed(rx, [4], ssrc=7, t0=2000) == [None]  # the old stream is the stranger now
    rx.relock()
    assert _feed(rx, [5], ssrc=7, t0=2020)[0] is not None and rx.ssrc == 7


def test_set_peer_relearns_the_stream():
    rx = RtpReceiver(PEER)
    _feed(rx, [1], ssrc=7)
    rx.set_peer(("192.0.2.8", 5000))
    assert _feed(rx, [2], ssrc=7) == [None]
    assert _feed(rx, [77], ssrc=9, addr=("192.0.2.8", 5000))[0] is not None and rx.ssrc == 9


def test_jitter_worked_example():
    # ts 0,160,320,480,640 (20 ms apart) arriving at 0,20,40,70,80 ms -> transit 0,0,0,80,0
    # units; |D| = 0,0,80,80; J = 0, 0, 5, 5 + (80 - 5)/16 = 9.6875 (RFC 3550 6.4.1)
    rx = RtpReceiver(PEER)
    for i, t in enumerate((0, 20, 40, 70, 80)):
        assert rx.receive(build(0, i, i * 160, 7, b"x"), PEER, t) is not None
    assert rx.jitter() == 9
    assert abs(rx.jitter_ms() - 9.6875 / 8) < 0.01  # A.8's integer form: 155/16 units


def test_jitter_ignores_telephone_events_and_is_zero_when_steady():
    rx = RtpReceiver(PEER, event_pt=101)
    for i in range(50):
        rx.receive(build(0, i, 1000 + i * 160, 7, b"x"), PEER, 5000 + 20 * i)
    for i in range(50, 60):  # one event: the timestamp stays at its start
        rx.receive(build(101, i, 9000, 7, b"\x05\x0a\x00\xa0"), PEER, 5000 + 20 * i)
    assert rx.jitter() == 0 and rx.received == 60


def test_packets_are_parsed_from_memoryviews_too():
    buf = bytearray(200)
    n = rtp.write_header(buf, False, 0, 9, 10, 11)
    buf[n : n + 3] = b"abc"
    p = parse(memoryview(buf)[: n + 3])
    assert (p.seq, p.ts, p.ssrc, bytes(p.payload)) == (9, 10, 11, b"abc")

"""media/events.py: RFC 4733 telephone-events (decode, one report per press, sending) and the
SIP INFO bodies."""

from _support import counter_random, raises
from zongji.media import events
from zongji.media.events import EventError, EventReceiver, EventSender, decode, parse_info
from zongji.media.rtp import RtpSender, parse


def _ev(event, end, duration, volume=10):
    buf = bytearray(4)
    events.encode(buf, event, end, volume, duration)
    return bytes(buf)


def test_payload_round_trip():
    assert decode(_ev(11, True, 1280, 7)) == (11, True, 7, 1280)
    assert decode(b"\x05\x4a\x01\x40") == (5, False, 10, 320)  # R bit (0x40) ignored
    assert raises(EventError, decode, b"\x05\x0a")


def test_digit_codes():
    assert [events.digit_of(i) for i in (0, 9, 10, 11, 12, 15, 16)] == ["0", "9", "*", "#", "A", "D", None]
    assert events.event_of("#") == 11 and events.event_of("d") == 15
    assert raises(ValueError, events.event_of, "E") and raises(ValueError, events.event_of, "12")


def _press(rx, ts, event, durations, ends=3):
    got = [rx.receive(ts, _ev(event, False, d)) for d in durations]
    got += [rx.receive(ts, _ev(event, True, durations[-1] + 160)) for _ in range(ends)]
    return [g for g in got if g is not None]


def test_each_press_is_reported_once_despite_three_end_packets():
    rx = EventReceiver()
    assert _press(rx, 1000, 5, [160, 320, 480]) == ["5"]
    assert rx.last_duration == 640
    assert _press(rx, 3000, 5, [160, 320]) == ["5"]  # same digit, new timestamp: a new press
    assert _press(rx, 5000, 11, [160]) == ["#"]
    assert rx.presses == 3


def test_a_press_whose_start_was_lost_is_reported_at_the_first_packet_that_came():
    rx = EventReceiver()
    assert rx.receive(800, _ev(3, True, 800)) == "3"  # only the end packets arrived
    assert rx.receive(800, _ev(3, True, 800)) is None
    assert rx.receive(800, _ev(3, False, 480)) is None  # a late update: same press


def test_interleaved_late_packets_of_the_previous_press_are_not_new_presses():
    rx = EventReceiver()
    assert rx.receive(100, _ev(1, False, 160)) == "1"
    assert rx.receive(2000, _ev(2, False, 160)) == "2"
    assert rx.receive(100, _ev(1, True, 800)) is None  # end of "1", reordered behind "2"
    assert rx.presses == 2


def test_a_long_event_over_segments_is_one_press():
    rx = EventReceiver()
    assert rx.receive(50000, _ev(0, False, 0xFFFF)) == "0"
    assert rx.receive(50000 + 0xFFFF, _ev(0, False, 800)) is None  # the next segment
    assert rx.receive(50000 + 0xFFFF, _ev(0, True, 1600)) is None
    assert rx.receive(50000 + 0xFFFF + 1600, _ev(0, False, 160)) == "0"  # ended: a new press
    # the timestamp wraps across segments too
    assert rx.receive(0xFFFFFF00, _ev(7, False, 0xFFFF)) == "7"
    assert rx.receive((0xFFFFFF00 + 0xFFFF) & 0xFFFFFFFF, _ev(7, True, 320)) is None


def test_a_duration_that_wraps_under_one_timestamp_is_still_one_press():
    rx = EventReceiver()
    assert rx.receive(4000, _ev(9, False, 65400)) == "9"
    assert rx.receive(4000, _ev(9, False, 100)) is None  # a sender that let the 16 bits wrap
    assert rx.receive(4000, _ev(9, True, 260)) is None and rx.presses == 1


def test_non_digit_and_malformed_events_report_nothing():
    rx = EventReceiver()
    assert rx.receive(10, _ev(16, False, 160)) is None and rx.other == 1  # flash
    assert rx.receive(20, b"\x01\x02\x03") is None and rx.malformed == 1
    assert rx.receive_all(30, _ev(1, True, 400) + _ev(2, False, 160)) == ["1", "2"]  # packed (2.5.1.5)


def test_sender_start_updates_and_three_end_packets():
    tx_rtp = RtpSender(pt=0, random_bytes=counter_random())
    tx = EventSender(tx_rtp, pt=101, duration_ms=80, gap_ms=40)
    tx_rtp.start(0)
    seq0, ts0 = tx_rtp.seq, tx_rtp.ts
    assert tx.frame(0) is None  # nothing queued: audio
    tx_rtp.packet(b"\xff" * 160, 0)
    assert tx.send("5#") == 2 and tx.busy()
    pkts = []
    t = 20
    while tx.busy():
        pkt = tx.frame(t)
        if pkt is None:
            tx_rtp.packet(b"\xff" * 160, t)
        else:
            pkts.append(parse(bytes(pkt)))
        t += 20
    rx = EventReceiver()
    assert [rx.receive(p.ts, p.payload) for p in pkts if p.pt == 101].count(None) == len(pkts) - 2
    first = pkts[:7]
    assert [p.marker for p in first] == [True, False, False, False, False, False, True]
    assert [decode(p.payload)[1] for p in first] == [False, False, False, True, True, True, False]
    assert [decode(p.payload)[3] for p in first[:6]] == [160, 320, 480, 640, 640, 640]
    assert all(p.ts == (ts0 + 160) & 0xFFFFFFFF for p in first[:6])
    assert [p.seq for p in pkts[:6]] == [(seq0 + 1 + i) & 0xFFFF for i in range(6)]
    assert decode(first[6].payload)[0] == 11 and first[6].marker
    # the gap: two frames of audio between the last "5" end packet and the "#" start
    assert first[6].seq == (seq0 + 9) & 0xFFFF and first[6].ts == (ts0 + 9 * 160) & 0xFFFFFFFF
    assert tx_rtp.next_due() == t


def test_sender_refuses_bad_digits_and_overflow():
    tx = EventSender(RtpSender(random_bytes=counter_random()))
    assert raises(ValueError, tx.send, "5x") and not tx.busy()
    assert raises(ValueError, tx.send, "1", 9000)
    tx.send("1" * 32)
    assert raises(ValueError, tx.send, "2")


def test_sip_info_bodies():
    assert parse_info("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n") == ("5", 160)
    assert parse_info("Application/DTMF-Relay; charset=x", "signal = *\nduration= 250") == ("*", 250)
    assert parse_info("application/dtmf-relay", b"Signal=11\r\n") == ("#", None)
    assert parse_info("application/dtmf-relay", b"Signal=d\r\nDuration=100") == ("D", 100)
    assert parse_info("application/dtmf", b"5") == ("5", None)
    assert parse_info("application/dtmf", b" 10\r\n") == ("*", None)
    assert parse_info("application/dtmf", "#") == ("#", None)
    assert [parse_info("application/dtmf", str(n))[0] for n in range(12, 16)] == ["A", "B", "C", "D"]


def test_sip_info_rejects_everything_else():
    bad = [
        ("application/dtmf-relay", b"Signal=16\r\n", "not a dtmf event"),
        ("application/dtmf-relay", b"Signal=E\r\n", "not a dtmf digit"),
        ("application/dtmf-relay", b"Signal=55\r\n", "not a dtmf event"),
        ("application/dtmf-relay", b"Signal=1\r\nSignal=2\r\n", "second Signal"),
        ("application/dtmf-relay", b"Duration=160\r\n", "without Signal"),
        ("application/dtmf-relay", b"Signal=1\r\nDuration=-5\r\n", "bad Duration"),
        ("application/dtmf-relay", b"Signal 1\r\n", "without '='"),
        ("application/dtmf-relay", b"Signal=1\r\n" + b"x=y\r\n" * 100, "over 256 bytes"),
        ("application/dtmf-relay", b"Signal=\xff", "not text"),
        ("application/dtmf", b"", "empty"),
        ("application/dtmf", b"12345", "not a dtmf digit"),
    ]
    for ctype, body, why in bad:
        e = raises(EventError, parse_info, ctype, body)
        assert why in str(e) and e.status == 400, (body, str(e))
    e = raises(EventError, parse_info, "text/plain", b"5")
    assert e.status == 415

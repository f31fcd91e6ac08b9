"""SIPp's own RTP captures (Debian's sip-tester ships them in /usr/share/sip-tester) through the
core's RTP receiver and RFC 4733 event receiver: the digits they carry come out once each.

What the dtmf_2833_<d>.pcap files hold, read packet by packet (Ethernet, IPv4, UDP
192.168.0.3:49176 -> 192.168.0.1:10000, SSRC 0x0e05384e, payload type 101): one press of the
digit in the name (0-9, `star` event 10, `pound` event 11), volume 10, seven packets 20 ms
apart with one timestamp, the first with the marker, durations 0, 320, ... 1920; then three
end packets (E bit, duration 2240 = 280 ms) within a fraction of a millisecond, all three with
the same sequence number, so the RTP receiver drops two as duplicates and the event receiver
would have ignored them anyway. g711a.pcap is 30 ms PCMA (240 samples a packet).

CPython only (struct, pathlib): the pcap, IP and UDP headers are read here by hand.
"""

import os
import struct
from pathlib import Path

import pytest
from zongji.media.events import EventReceiver, decode
from zongji.media.rtp import RtpReceiver

CAPTURES = Path("/usr/share/sip-tester")
IN_CI = os.environ.get("CI", "").lower() == "true"
DIGITS = {str(d): str(d) for d in range(10)} | {"star": "*", "pound": "#"}


def _missing(reason):
    if IN_CI:
        pytest.fail(reason + " (CI=true: install sip-tester)")
    pytest.skip(reason)


def read_pcap(path):
    """[(arrival_ms, (src_ip, src_port), (dst_ip, dst_port), udp_payload)] of a classic pcap."""
    data = path.read_bytes()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise ValueError("%s: not a pcap file" % path)
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(end + "I", data[20:24])[0]
    skip = {1: 14, 113: 16, 0: 4, 101: 0}[linktype]  # Ethernet, Linux cooked, BSD null, raw IP
    out = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(end + "IIII", data[off : off + 16])
        frame = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        ip = frame[skip:]
        if ip[0] >> 4 != 4 or ip[9] != 17:  # IPv4 UDP only
            continue
        ihl = (ip[0] & 15) * 4
        src = ".".join(str(b) for b in ip[12:16])
        dst = ".".join(str(b) for b in ip[16:20])
        sport, dport, ulen = struct.unpack(">HHH", ip[ihl : ihl + 6])
        payload = ip[ihl + 8 : ihl + ulen]
        ms = sec * 1000 + (frac // 1_000_000 if nano else frac // 1000)
        out.append((ms, (src, sport), (dst, dport), payload))
    return out


def _capture(name):
    path = CAPTURES / name
    if not path.is_file():
        _missing("%s not found (Debian/Ubuntu package sip-tester)" % path)
    return read_pcap(path)


def play(packets, event_pt=101, pts=None):
    """Every packet through one RtpReceiver (peer: the first packet's source) and, for
    payload type event_pt, an EventReceiver. -> (rtp receiver, digits, payloads accepted)."""
    rx = RtpReceiver(packets[0][1], pts=pts, event_pt=event_pt)
    events = EventReceiver()
    digits, accepted = [], []
    for ms, src, _dst, payload in packets:
        p = rx.receive(payload, src, ms)
        if p is None:
            continue
        accepted.append((p.pt, p.marker, p.ts, bytes(p.payload)))
        if p.pt == event_pt:
            d = events.receive(p.ts, p.payload)
            if d is not None:
                digits.append(d)
    return rx, digits, accepted


@pytest.mark.parametrize("name", sorted(DIGITS))
def test_sipp_dtmf_capture_gives_its_digit_once(name):
    packets = _capture("dtmf_2833_%s.pcap" % name)
    assert len(packets) == 10
    rx, digits, accepted = play(packets)
    assert digits == [DIGITS[name]]
    assert rx.ssrc == 0x0E05384E and rx.duplicates == 2 and rx.lost() == 0 and rx.received == 8
    assert [m for _pt, m, _ts, _p in accepted] == [True] + [False] * 7
    blocks = [decode(p) for _pt, _m, _ts, p in accepted]
    assert [b[3] for b in blocks] == [0, 320, 640, 960, 1280, 1600, 1920, 2240]
    assert [b[1] for b in blocks] == [False] * 7 + [True] and {b[2] for b in blocks} == {10}
    assert len({ts for _pt, _m, ts, _p in accepted}) == 1


def test_all_captures_in_one_receiver_give_every_digit_in_order():
    # Each file is a separate recording with the same SSRC but its own sequence and timestamp
    # range: played back to back, the receiver must believe each sequence jump (two packets
    # in a row after it) and still report every press, and only once.
    names = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "star", "0", "pound"]
    packets = []
    t = 0
    for name in names:
        cap = _capture("dtmf_2833_%s.pcap" % name)
        first = cap[0][0]
        packets += [(t + ms - first, src, dst, p) for ms, src, dst, p in cap]
        t += 1000
    rx, digits, _ = play(packets)
    # "0" (sequence 12080 after 8404) and "#" (8436 after 12087) jump by more than
    # MAX_DROPOUT: their start packets are dropped as strays until the next one confirms the
    # jump, and those presses are reported from the first update instead
    assert "".join(digits) == "123456789*0#"
    assert rx.jumps == 2


def test_sipp_g711a_capture_plays_without_loss_and_low_jitter():
    packets = _capture("g711a.pcap")
    rx, digits, accepted = play(packets, event_pt=None, pts=(8,))
    assert digits == [] and len(accepted) == len(packets) == rx.received
    assert rx.lost() == 0 and rx.duplicates == 0 and rx.reordered == 0 and rx.wrong_pt == 0
    assert all(len(p) == 240 and pt == 8 for pt, _m, _ts, p in accepted)
    assert accepted[0][1] and not any(m for _pt, m, _ts, _p in accepted[1:])
    assert 0 < rx.jitter_ms() < 5  # a recording from a real sender: measured, not zero


def test_a_capture_replayed_from_another_address_is_dropped():
    packets = _capture("dtmf_2833_5.pcap")
    rx = RtpReceiver(("192.168.0.99", 49176), event_pt=101)
    assert all(rx.receive(p, src, ms) is None for ms, src, _dst, p in packets)
    assert rx.wrong_addr == 10

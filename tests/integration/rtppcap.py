"""RTP captures made for a test, in the classic libpcap format SIPp's play_pcap_audio reads
(Ethernet, IPv4, UDP): SIPp replays the UDP payloads with the capture's timing from its own
media port to the address the far end's SDP gave.

    write(path, packets)               packets: [(seconds, rtp_bytes)] -> a .pcap file
    audio_packets(pcm, pt=0)           8 kHz int16 samples -> 20 ms G.711 packets (PCMU/PCMA)
    event_packets(digits, pt=101)      RFC 4733 presses of each digit, as a keypad sends them

The addresses and ports written into the capture are placeholders (SIPp replaces them); the
RTP headers are what the switch receives: one SSRC, sequence numbers and timestamps that run
on, the marker on the first packet of each event.
"""

import struct

from zongji.media import g711
from zongji.media.events import encode, event_of
from zongji.media.rtp import build

SSRC = 0x5A4E474A  # "ZNGJ"
_SRC = bytes((10, 0, 0, 2))
_DST = bytes((10, 0, 0, 1))


def _ip_checksum(header):
    total = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(payload):
    udp = struct.pack("!HHHH", 40000, 10000, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, _SRC, _DST)
    ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
    eth = b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + b"\x08\x00"
    return eth + ip + udp


def write(path, packets):
    """packets: [(seconds from the start, rtp bytes)] in time order."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # LINKTYPE_ETHERNET
    for t, rtp in packets:
        frame = _frame(bytes(rtp))
        usec = int(round(t * 1e6))
        out.append(struct.pack("<IIII", usec // 1000000, usec % 1000000, len(frame), len(frame)) + frame)
    with open(path, "wb") as f:
        f.write(b"".join(out))
    return path


def audio_packets(pcm, pt=g711.PCMU, start=0.0, seq=1000, ts=160000):
    """20 ms packets of G.711 audio (the last frame padded with silence)."""
    pcm = list(pcm)
    pcm += [0] * (-len(pcm) % 160)
    law = g711.PCMA if pt == g711.PCMA else g711.PCMU
    packets = []
    for i in range(0, len(pcm), 160):
        n = i // 160
        payload = bytes(g711.encode(law, struct.pack("<160h", *pcm[i : i + 160])))
        packets.append((start + 0.02 * n, build(pt, (seq + n) & 0xFFFF, (ts + i) & 0xFFFFFFFF, SSRC, payload)))
    return packets


def event_packets(digits, pt=101, start=0.0, press_ms=120, gap_ms=200, seq=2000, ts=320000):
    """Each digit pressed for press_ms: packets every 20 ms with the press's timestamp and a
    growing duration (the marker on the first), then three end packets (RFC 4733 2.5.1.4),
    then gap_ms of nothing before the next press."""
    packets = []
    t = start
    for digit in digits:
        event = event_of(digit)
        body = bytearray(4)
        steps = max(1, press_ms // 20)
        for k in range(steps):
            encode(body, event, False, 10, 160 * (k + 1))
            packets.append((t, build(pt, seq & 0xFFFF, ts, SSRC, bytes(body), marker=(k == 0))))
            seq += 1
            t += 0.02
        encode(body, event, True, 10, 160 * steps)
        for _ in range(3):
            packets.append((t, build(pt, seq & 0xFFFF, ts, SSRC, bytes(body))))
            seq += 1
            t += 0.005
        t += gap_ms / 1000.0
        ts = (ts + 160 * steps + 8 * gap_ms) & 0xFFFFFFFF
    return packets

"""Media: RTP, G.711 and DTMF for the attendant (the `attendant` issue). Empty until then; the
switch passes SDP through untouched and media flows phone to phone.

`rtp` (RFC 3550 packets, a paced sender, a one-peer receiver), `sdp` (RFC 4566/3264 offer/answer
and hold) and `events` (RFC 4733 telephone-events, SIP INFO dtmf bodies) are core modules.
"""

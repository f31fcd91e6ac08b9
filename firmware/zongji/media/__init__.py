"""Media: RTP, G.711 and DTMF for the attendant (the `attendant` issue). Empty until then; the
switch passes SDP through untouched and media flows phone to phone.
"""

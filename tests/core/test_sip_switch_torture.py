"""Every RFC 4475 torture message through the whole switch: the answer the RFC names, never an
exception, and no transaction or call left behind once the timers have run out."""

from _phones import Net
from _sites import build
from _support import TESTDATA, read_bytes
from test_sip_torture import APPLICATION, INVALID, VALID
from zongji.sip.message import Request

SOURCE = ("10.0.0.99", 5060)

# 3.3: what the application answers (a set where the RFC leaves a choice). INVITEs meet digest
# authentication first (RFC 3261 8.2 authenticates before content processing, and a proxy
# never judges a body), so invut/sdp01 get 407 where a plain UAS would say 415/406.
APP_STATUS = {
    "insuf": {400},
    "unkscm": {416},
    "novelsc": {416},
    "unksm2": {400, 401},  # REGISTER: 10.3 authenticates (step 3) before judging To (step 5)
    "bext01": {420},
    "invut": {407, 415},
    "regaut01": {401},  # an unknown auth scheme is no credentials: challenge
    "multi01": {400},
    "mcl01": {400},
    "bcast": set(),  # a response: dropped, and nothing goes to 255.255.255.255
    "zeromf": {200, 483},  # OPTIONS for us: answered as the endpoint
    "cparam01": {401},
    "cparam02": {401},
    "regescrt": {401},
    "sdp01": {407, 406},
}


def feed(name):
    net = Net(build())
    sink = net.phone("0", SOURCE[1])
    net.phones.pop(sink.addr)
    sink.addr = SOURCE
    net.phones[SOURCE] = sink
    net.deliver(read_bytes(TESTDATA + "/rfc4475/" + name + ".dat"), SOURCE)
    replies = [m.status for m in sink.got if not isinstance(m, Request)]
    lost = list(net.lost)
    net.advance(70000)  # 64*T1 and then some: every transaction must be gone
    assert len(net.sw.tl) == 0, (name, net.sw.tl.transactions())
    assert net.sw.proxy.calls == {}, name
    return replies, lost


def is_request(name):
    return not read_bytes(TESTDATA + "/rfc4475/" + name + ".dat").startswith(b"SIP/2.0")


def test_valid_messages_are_processed():
    for name in VALID:
        replies, lost = feed(name)
        if is_request(name):
            assert replies, name
            assert 400 not in replies and 500 not in replies, (name, replies)
        else:
            assert replies == [], (name, replies)  # a stray response is dropped


def test_invalid_messages_get_the_rfc_answer():
    for name, status, _why in INVALID:
        replies, lost = feed(name)
        assert replies == ([status] if status else []), (name, replies)


def test_application_layer_messages():
    for name in APPLICATION:
        replies, lost = feed(name)
        want = APP_STATUS[name]
        if want:
            assert len(replies) == 1 and replies[0] in want, (name, replies)
        else:
            assert replies == [], (name, replies)
        for data, addr in lost:
            assert addr[0] != "255.255.255.255", name


def test_every_message_truncated_never_breaks_the_switch():
    import os

    names = [n[:-4] for n in os.listdir(TESTDATA + "/rfc4475") if n.endswith(".dat")]
    net = Net(build())
    for name in sorted(names):
        data = read_bytes(TESTDATA + "/rfc4475/" + name + ".dat")
        for cut in range(0, len(data), 37):
            net.sw.receive_datagram(data[:cut], SOURCE, net.now)
            net.sw.datagrams_to_send()
    net.advance(70000)
    assert len(net.sw.tl) == 0

# What a completed REGISTER costs while it absorbs retransmissions (Timer J), on the 32-bit
# MicroPython port: the layer's compact record against a whole server transaction (an INVITE
# server in accepted state, which still is one), 100 of each. Run by bench/mpy_run.mjs; each
# "next call" marker starts a new runPython call so gc.collect() really frees.
import gc
import json

from zongji.sip.message import make_response
from zongji.sip.transaction import TransactionLayer

N = 100


def request(method, i):
    return (
        "%s sip:10.0.0.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.%d:5060;branch=z9hG4bK-%08d-reg;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:%d@10.0.0.1>;tag=f%08d\r\n"
        "To: <sip:%d@10.0.0.1>\r\n"
        "Call-ID: reg-%08d@10.0.0.%d\r\n"
        "CSeq: 2 %s\r\n"
        "Contact: <sip:%d@10.0.0.%d:5060;transport=udp>\r\n"
        "Expires: 3600\r\n"
        "Content-Length: 0\r\n\r\n"
        % (method, 2 + i % 200, i, 3000 + i, i, 3000 + i, i, 2 + i % 200, method, 3000 + i, 2 + i % 200)
    ).encode()


layer = TransactionLayer("10.0.0.1:5060")
layer.max_transactions = layer.max_lingering = 4 * N
reqs = {"REGISTER": [request("REGISTER", i) for i in range(N)], "INVITE": [request("INVITE", N + i) for i in range(N)]}
out = {}
(warm,) = layer.receive(request("OPTIONS", 9999), ("10.0.0.250", 5060), 0)  # the tables grow to their caps here
layer.respond(warm.tx, make_response(warm.request, 200, to_tag="w"), 0)
layer.handle_timer(10**6)
warm = None
layer.datagrams_to_send()
# --- next call ---
gc.collect()
base = gc.mem_alloc()
# --- next call ---
for i, data in enumerate(reqs["REGISTER"]):
    (ev,) = layer.receive(data, ("10.0.0.%d" % (2 + i % 200), 5060), 0)
    ok = make_response(ev.request, 200, to_tag="t%08d" % i)
    ok.add("contact", "<sip:%d@10.0.0.%d:5060;transport=udp>;expires=3600" % (3000 + i, 2 + i % 200))
    layer.respond(ev.tx, ok, 0)
    ev = None
sent = layer.datagrams_to_send()
out["response_bytes"] = sum([len(d) for d, _ in sent]) // len(sent)
sent = None
# --- next call ---
gc.collect()
records = gc.mem_alloc()
out["lingering"] = layer.lingering()
out["running"] = len(layer)
# --- next call ---
for i, data in enumerate(reqs["INVITE"]):
    (ev,) = layer.receive(data, ("10.0.0.%d" % (2 + i % 200), 5060), 0)
    ok = make_response(ev.request, 200, to_tag="t%08d" % i)
    ok.add("contact", "<sip:%d@10.0.0.%d:5060;transport=udp>;expires=3600" % (3000 + i, 2 + i % 200))
    layer.respond(ev.tx, ok, 0)
    ev = None
layer.datagrams_to_send()
# --- next call ---
gc.collect()
txs = gc.mem_alloc()
out["per_record_bytes"] = (records - base) // N
out["per_accepted_invite_transaction_bytes"] = (txs - records) // N
out["transactions_now"] = len(layer)
print(json.dumps(out))

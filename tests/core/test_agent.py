"""The attendant answers: the switch's own user agent (switch/agent.py) and its media
(media/hub.py), driven by scripted phones in memory on a virtual clock. SIP and RTP both go
through the Switch's real interface (receive_datagram, receive_rtp, media_to_send)."""

import io
import math

import _sites
from _phones import SWITCH, Net, ack_for_failure
from zongji.media import g711, rtp
from zongji.media.dtmf import Detector
from zongji.media.events import encode
from zongji.media.hub import MediaHub
from zongji.sip.message import make_request
from zongji.switch.switch import Switch

MEDIA_PORT = 40000
GREETING = b"\x11" * 480  # three frames of "menu.main"
INVALID = b"\x22" * 160


class Prompts:
    """The shell's prompt store, in memory: id -> u-law bytes."""

    def __init__(self, files):
        self.files = files
        self.opened = []

    def has(self, pid):
        return pid in self.files

    def open(self, pid):
        self.opened.append(pid)
        data = self.files.get(pid)
        return None if data is None else io.BytesIO(data)


class MediaNet(Net):
    """Net with a media port: RTP the switch sends lands in `rtp[addr]`, parsed."""

    def __init__(self, site, prompts=None):
        Net.__init__(self, site)
        self.prompts = prompts or Prompts({"menu.main": GREETING, "phrase.invalid.0": INVALID})
        self.hub = MediaHub(SWITCH[0], MEDIA_PORT, random_bytes=_counter(), prompts=self.prompts, detector=Detector)
        self.sw = Switch(
            site, SWITCH[0], SWITCH[1], secret_key=b"test-key-0123456", random_bytes=_counter(),
            max_transactions=256, media=self.hub,
        )  # fmt: skip
        self.rtp = {}

    def run(self):
        Net.run(self)
        self._media()

    def _media(self):
        for data, addr in self.sw.media_to_send(self.now):
            self.rtp.setdefault((addr[0], addr[1]), []).append(rtp.parse(bytes(data)))
        Net.run(self)

    def send_rtp(self, data, addr):
        self.sw.receive_rtp(data, addr, self.now)
        self.run()

    def advance(self, ms):
        """Virtual time in 20 ms steps: SIP timers and media frames both."""
        end = self.now + ms
        while self.now < end:
            step = min(20, end - self.now)
            Net.advance(self, step)
            self._media()


def _counter():
    n = [0]

    def random_bytes(k):
        n[0] += 1
        return bytes([(n[0] * 7 + i * 13) & 0xFF for i in range(k)])

    return random_bytes


def sdp(ip, port, pts=(0, 101)):
    lines = ["v=0", "o=- 1 1 IN IP4 %s" % ip, "s=-", "c=IN IP4 %s" % ip, "t=0 0",
             "m=audio %d RTP/AVP %s" % (port, " ".join(str(p) for p in pts))]  # fmt: skip
    if 101 in pts:
        lines += ["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15"]
    return ("\r\n".join(lines) + "\r\n").encode()


def call(net, phone, number, media_port=4000, pts=(0, 101)):
    """phone dials number with an SDP offer; returns (invite, 200 OK), the 200 ACKed."""
    phone.calls += 1
    req = phone._request(
        "INVITE", number, "call-%s-%d" % (phone.number, phone.calls), body=sdp(phone.addr[0], media_port, pts)
    )
    req.add("content-type", "application/sdp")
    phone.send(req)
    challenge = phone.got[-1]
    assert challenge.status == 407, challenge
    phone.send(ack_for_failure(req, challenge))
    auth = phone.answer(req, challenge, "Proxy-Authenticate", "Proxy-Authorization")
    phone.send(auth)
    ok = phone.last(200)
    assert ok is not None and ok.cseq()[1] == "INVITE", phone.got[-1]
    phone.ack_2xx(auth, ok)
    return auth, ok


class Keypad:
    """RFC 4733 presses from one media address."""

    def __init__(self, net, addr, pt=101):
        self.net = net
        self.addr = addr
        self.pt = pt
        self.seq = 100
        self.ts = 8000

    def press(self, digit):
        event = "0123456789*#".index(digit)
        self.ts += 1600
        for i in range(5):
            end = i >= 2
            buf = bytearray(4)
            encode(buf, event, end, 10, 400 + 160 * min(i, 2))
            self.seq += 1
            self.net.send_rtp(rtp.build(self.pt, self.seq, self.ts, 0x1234, bytes(buf), marker=i == 0), self.addr)
        self.net.advance(20)


def answer_sdp(ok):
    body = ok.body.decode()
    port = int([ln for ln in body.split("\r\n") if ln.startswith("m=audio")][0].split()[1])
    ip = [ln for ln in body.split("\r\n") if ln.startswith("c=")][0].split()[2]
    return ip, port


def setup(*numbers):
    net = MediaNet(_sites.build())
    phones = []
    for i, n in enumerate(numbers):
        p = net.phone(n, 5061 + i)
        assert p.register().status == 200
        phones.append(p)
    return net, phones


def test_the_attendant_answers_a_menu_number_with_its_own_media_address():
    net, phones = setup("202")
    caller = phones[0]
    invite, ok = call(net, caller, "800")
    assert answer_sdp(ok) == (SWITCH[0], MEDIA_PORT)
    assert "PCMU" in ok.body.decode() and "telephone-event" in ok.body.decode()
    net.advance(100)
    got = net.rtp.get((caller.addr[0], 4000), [])
    assert len(got) >= 3 and got[0].marker and got[0].pt == 0
    payloads = [bytes(p.payload) for p in got]
    first = payloads.index(GREETING[:160])  # silence until the ACK, then the greeting
    assert payloads[first : first + 3] == [GREETING[:160], GREETING[160:320], GREETING[320:]]
    seqs = [p.seq for p in got]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # one stream, in order
    assert [p.ts - got[0].ts for p in got[:3]] == [0, 160, 320]
    assert net.prompts.opened[0] == "menu.main"


def test_a_key_puts_the_caller_through_and_media_is_relayed_both_ways():
    net, phones = setup("202", "201", "210")
    caller, sales1, sales2 = phones
    for p in (sales1, sales2):
        p.auto["INVITE"] = 180
    invite, ok = call(net, caller, "800")
    net.advance(200)
    Keypad(net, (caller.addr[0], 4000)).press("1")  # sales: group 600, ring-all
    net.advance(400)
    rung = sales1.last("INVITE")
    assert rung is not None and sales2.last("INVITE") is not None
    assert "202" in rung.get("from")  # the target sees who is calling
    _answer(sales1, rung)  # 201 answers with its own media address
    net.advance(100)
    assert sales2.last("CANCEL") is not None  # the other one stops ringing
    before = len(net.rtp.get((sales1.addr[0], 5000), []))
    net.send_rtp(rtp.build(0, 1, 160, 0xCAFE, b"\x33" * 160), (caller.addr[0], 4000))
    to_target = net.rtp.get((sales1.addr[0], 5000), [])[before:]
    assert [bytes(p.payload) for p in to_target] == [b"\x33" * 160] and to_target[0].ssrc == 0xCAFE
    back_before = len(net.rtp[(caller.addr[0], 4000)])
    net.send_rtp(rtp.build(0, 1, 160, 0xBEEF, b"\x44" * 160), (sales1.addr[0], 5000))
    back = net.rtp[(caller.addr[0], 4000)][back_before:]
    assert [bytes(p.payload) for p in back] == [b"\x44" * 160]
    net.advance(200)  # relayed: the attendant sends nothing of its own any more
    assert len(net.rtp[(caller.addr[0], 4000)]) == back_before + 1


def test_a_wrong_key_plays_the_retry_prompt_and_the_menu_again():
    net, phones = setup("202")
    caller = phones[0]
    call(net, caller, "800")
    net.advance(100)
    Keypad(net, (caller.addr[0], 4000)).press("7")
    net.advance(200)
    assert net.prompts.opened[:3] == ["menu.main", "phrase.invalid.0", "menu.main"]


def test_dtmf_by_sip_info_works_too():
    net, phones = setup("202", "201")
    caller, target = phones
    target.auto["INVITE"] = 180
    invite, ok = call(net, caller, "800")
    net.advance(100)
    caller.cseq += 1
    info = make_request(
        "INFO", ok.contacts()[0].uri, invite.get("from"), ok.get("to"), invite.call_id(), caller.cseq,
        via="SIP/2.0/UDP %s:%d;branch=z9hG4bKinfo1" % caller.addr, body=b"Signal=1\r\nDuration=160\r\n",
        content_type="application/dtmf-relay",
    )  # fmt: skip
    for r in reversed(ok.get_all("record-route")):
        info.add("route", r)
    caller.send(info)
    assert caller.last(200).cseq()[1] == "INFO"
    net.advance(400)
    assert target.last("INVITE") is not None


def test_rtp_from_anyone_but_the_caller_is_ignored():
    net, phones = setup("202", "201")
    caller, target = phones
    target.auto["INVITE"] = 180
    call(net, caller, "800")
    net.advance(100)
    Keypad(net, ("10.0.0.99", 4000)).press("1")  # an injection from elsewhere
    Keypad(net, (caller.addr[0], 4002)).press("1")  # the caller's address, another port
    net.advance(400)
    assert target.last("INVITE") is None
    assert net.hub.counters.get("rtp from no call's peer", 0) >= 10


def test_the_caller_hanging_up_frees_the_attendant():
    net, phones = setup("202")
    caller = phones[0]
    invite, ok = call(net, caller, "800")
    net.advance(100)
    caller.bye(invite, ok)
    assert caller.last(200).cseq()[1] == "BYE"
    assert not net.sw.agent.calls and not net.hub.open and not net.hub.legs
    assert not net.sw.proxy.calls
    sent = len(net.rtp[(caller.addr[0], 4000)])
    net.advance(200)
    assert len(net.rtp[(caller.addr[0], 4000)]) == sent  # no more frames


def test_a_call_without_audio_we_can_do_is_refused_488():
    net, phones = setup("202")
    caller = phones[0]
    req = caller._request("INVITE", "800", "g729", body=sdp(caller.addr[0], 4000, (18,)))
    req.add("content-type", "application/sdp")
    caller.send(req)
    caller.send(ack_for_failure(req, caller.got[-1]))
    caller.send(caller.answer(req, caller.got[-1], "Proxy-Authenticate", "Proxy-Authorization"))
    assert caller.got[-1].status == 488
    assert not net.sw.agent.calls and not net.hub.open


def test_no_ack_means_the_200_is_sent_again_then_the_call_is_hung_up():
    net, phones = setup("202")
    caller = phones[0]
    caller.calls += 1
    req = caller._request("INVITE", "800", "noack", body=sdp(caller.addr[0], 4000))
    req.add("content-type", "application/sdp")
    caller.send(req)
    caller.send(ack_for_failure(req, caller.got[-1]))
    caller.send(caller.answer(req, caller.got[-1], "Proxy-Authenticate", "Proxy-Authorization"))
    assert caller.got[-1].status == 200
    net.advance(2000)
    oks = [m for m in caller.got if not hasattr(m, "method") and m.status == 200 and m.cseq()[1] == "INVITE"]
    assert len(oks) >= 3
    net.advance(33000)
    assert caller.last("BYE") is not None
    assert not net.sw.agent.calls


def _pin_call(net, manager, provider):
    invite, ok = call(net, manager, "000441234567890")
    net.advance(100)
    assert net.prompts.opened[0] == "phrase.pin_prompt.0"
    return invite, ok


def test_the_right_pin_puts_a_managers_international_call_through():
    net, phones = setup("203")
    manager = phones[0]
    provider = net.phone("provider", 5070)
    provider.addr = ("127.0.0.1", 5070)
    net.phones = {k: v for k, v in net.phones.items() if v is not provider}
    net.phones[provider.addr] = provider
    provider.auto["INVITE"] = 180
    _pin_call(net, manager, provider)
    pad = Keypad(net, (manager.addr[0], 4000))
    for k in "4321#":
        pad.press(k)
    net.advance(400)
    out = provider.last("INVITE")
    assert out is not None and out.uri.user == "00441234567890"


def test_a_wrong_pin_never_reaches_the_provider_and_is_counted():
    net, phones = setup("203")
    manager = phones[0]
    _pin_call(net, manager, None)
    pad = Keypad(net, (manager.addr[0], 4000))
    for attempt in ("1111#", "2222#", "3333#"):
        for k in attempt:
            pad.press(k)
        net.advance(200)
    net.advance(3000)
    assert not [d for d, addr in net.lost if d.startswith(b"INVITE")]
    assert manager.last("BYE") is not None  # hung up after the third
    assert len(net.sw.guard) >= 1


def test_staff_without_a_pin_are_refused_at_once():
    net, phones = setup("201")  # class staff: international is not allowed at all
    caller = phones[0]
    req = caller._request("INVITE", "000441234567890", "intl", body=sdp(caller.addr[0], 4000))
    req.add("content-type", "application/sdp")
    caller.send(req)
    caller.send(ack_for_failure(req, caller.got[-1]))
    caller.send(caller.answer(req, caller.got[-1], "Proxy-Authenticate", "Proxy-Authorization"))
    assert caller.got[-1].status == 403


def test_nobody_but_the_agent_can_place_calls_as_the_agent():
    net, phones = setup("202")
    # an INVITE claiming the agent's Via from the network is just an unauthenticated INVITE
    stranger = net.phone("999", 5099, secret="x")
    req = make_request(
        "INVITE", "sip:000441234567890@%s:%d" % SWITCH, "<sip:attendant@attendant.invalid>;tag=x",
        "<sip:000441234567890@%s>" % SWITCH[0], "fake@attendant", 1,
        via="SIP/2.0/UDP attendant.invalid:0;branch=z9hG4bKfake", body=sdp("10.0.0.9", 4000),
        content_type="application/sdp",
    )  # fmt: skip
    stranger.send(req)
    assert stranger.got[-1].status == 407
    assert not [d for d, addr in net.lost if d.startswith(b"INVITE")]


def test_wrong_pins_call_after_call_lock_the_pin_prompt():
    net, phones = setup("203")
    manager = phones[0]
    pad = Keypad(net, (manager.addr[0], 4000))
    for _ in range(4):  # 3 wrong PINs a call: the guard locks at its 10th failure
        invite, ok = call(net, manager, "000441234567890")
        net.advance(100)
        for attempt in ("1111#", "2222#", "3333#"):
            for k in attempt:
                pad.press(k)
            net.advance(100)
        net.advance(3000)
        byes = [m for m in manager.got if getattr(m, "method", None) == "BYE" and m.call_id() == invite.call_id()]
        assert byes  # the attendant hung up
    manager.calls += 1
    req = manager._request("INVITE", "000441234567890", "after-lock", body=sdp(manager.addr[0], 4000))
    req.add("content-type", "application/sdp")
    manager.send(req)
    manager.send(ack_for_failure(req, manager.got[-1]))
    manager.send(manager.answer(req, manager.got[-1], "Proxy-Authenticate", "Proxy-Authorization"))
    assert manager.got[-1].status == 403 and manager.got[-1].reason == "PIN Locked"
    assert not [d for d, addr in net.lost if d.startswith(b"INVITE")]


def _tone_frames(low, high, ms, level=8000):
    """u-law frames of a dual tone (or silence when low is 0), 20 ms each."""
    frames = []
    for f in range(ms // 20):
        pcm = bytearray(320)
        for i in range(160):
            t = (f * 160 + i) / 8000.0
            v = int(level * (math.sin(2 * math.pi * low * t) + math.sin(2 * math.pi * high * t))) if low else 0
            pcm[2 * i] = v & 0xFF
            pcm[2 * i + 1] = (v >> 8) & 0xFF
        frames.append(bytes(g711.encode(g711.PCMU, pcm)))
    return frames


def test_a_caller_without_telephone_events_is_heard_by_its_tones():
    net, phones = setup("202", "201")
    caller, target = phones
    target.auto["INVITE"] = 180
    call(net, caller, "800", pts=(0,))  # PCMU only: the attendant listens to the audio itself
    net.advance(100)
    seq = 1
    for frame in _tone_frames(0, 0, 100) + _tone_frames(697, 1209, 80) + _tone_frames(0, 0, 100):  # "1"
        net.send_rtp(rtp.build(0, seq, seq * 160, 0x5151, frame), (caller.addr[0], 4000))
        seq += 1
        net.advance(20)
    net.advance(400)
    assert target.last("INVITE") is not None  # option 1: group 600 rings


def test_speech_like_audio_presses_no_key():
    net, phones = setup("202", "201")
    caller, target = phones
    target.auto["INVITE"] = 180
    call(net, caller, "800", pts=(0,))
    seq = 1
    for frame in _tone_frames(440, 700, 200) + _tone_frames(697, 0, 200):  # no DTMF pair
        net.send_rtp(rtp.build(0, seq, seq * 160, 0x5151, frame), (caller.addr[0], 4000))
        seq += 1
        net.advance(20)
    net.advance(400)
    assert target.last("INVITE") is None and net.prompts.opened == ["menu.main"]


def test_the_reply_timeout_starts_when_the_greeting_ends():
    long_greeting = b"\x11" * (160 * 400)  # 8 s of greeting; the menu's timeout is 5 s
    net = MediaNet(_sites.build(), Prompts({"menu.main": long_greeting}))
    caller = net.phone("202", 5061)
    assert caller.register().status == 200
    call(net, caller, "800")
    net.advance(7000)
    assert net.prompts.opened == ["menu.main"]  # still greeting: no retry yet
    net.advance(4000)  # ends at 8 s; 5 s later the menu is played again
    assert net.prompts.opened == ["menu.main"]
    net.advance(3000)
    assert net.prompts.opened == ["menu.main", "menu.main"]


# ---- anchored calls: the branch's ringback (early media) and music on hold ([sounds]) -------------

RINGBACK = b"\x55" * 400  # two and a half frames: the loop shows as 0x55 frames going on and on
HOLD = b"\x66" * 320
TRUNK_ADDR = ("127.0.0.1", 5070)
PROVIDER_MEDIA = ("127.0.0.1", 7000)


def _sounds_net(sounds=True):
    files = {"menu.main": GREETING, "phrase.invalid.0": INVALID}
    if sounds:
        files.update({"sound.ringback": RINGBACK, "sound.hold": HOLD})
    from _phones import Phone

    net = MediaNet(_sites.build(), Prompts(files))
    desk = net.phone("201", 5061)
    assert desk.register().status == 200
    prov = Phone(net, "provider", TRUNK_ADDR, "trunkpass")
    net.phones[TRUNK_ADDR] = prov
    prov.auto["REGISTER"] = 200
    net.advance(10)
    return net, desk, prov


def _outside_call(net, prov, did="02155550199", call_id="in-anchor", media=PROVIDER_MEDIA):
    """The provider brings an outside caller's INVITE for did (02155550199 -> 201), with SDP."""
    inv = make_request(
        "INVITE", "sip:%s@%s:%d" % (did, SWITCH[0], SWITCH[1]), "<sip:13912345678@127.0.0.1>;tag=pp",
        "<sip:%s@%s>" % (did, SWITCH[0]), call_id, 1, via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK" + call_id,
        contact="<sip:13912345678@127.0.0.1:5070>", body=sdp(media[0], media[1]), content_type="application/sdp",
    )  # fmt: skip
    prov.send(inv)
    return inv


def _in_early_dialog(prov, inv, method, branch, body=b""):
    """The provider sends `method` in the early dialog of its INVITE `inv` (the switch's 183)."""
    early = prov.last(183)
    req = make_request(
        method, early.contacts()[0].uri, inv.get("from"), early.get("to"), inv.call_id(), 2,
        via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK" + branch, contact="<sip:x@127.0.0.1:5070>",
        body=body, content_type="application/sdp" if body else None,
    )  # fmt: skip
    for r in reversed(early.get_all("record-route")):
        req.add("route", r)
    prov.send(req)
    return req


def _answer(phone, rung, port=5000, tag="t201"):
    """phone answers request `rung` 200 with its SDP at port (tag None: an in-dialog request,
    whose To has its tag already)."""
    from zongji.sip.message import make_response

    resp = make_response(rung, 200, to_tag=tag)
    resp.add("contact", phone.contact)
    for rr in rung.get_all("record-route"):
        resp.add("record-route", rr)
    resp.body = sdp(phone.addr[0], port, (0, 101))
    resp.add("content-type", "application/sdp")
    phone.send(resp)
    return resp


def _reinvite_from_callee(phone, rung, ok, direction, method="INVITE"):
    """The callee's re-INVITE (or UPDATE) in its dialog (hold: a=sendonly; resume: a=sendrecv)."""
    phone.cseq += 1
    body = sdp(phone.addr[0], 5000, (0, 101)) + ("a=%s\r\n" % direction).encode()
    req = make_request(
        method, rung.contacts()[0].uri, ok.get("to"), rung.get("from"), rung.call_id(), phone.cseq,
        via="SIP/2.0/UDP %s:%d;branch=z9hG4bKre%d" % (phone.addr[0], phone.addr[1], phone.cseq),
        contact=phone.contact, body=body, content_type="application/sdp",
    )  # fmt: skip
    for r in rung.get_all("record-route"):
        req.add("route", r)
    phone.send(req)
    return phone.got[-1]


def _frames_to(net, addr, since=0):
    return [bytes(p.payload) for p in net.rtp.get(addr, [])[since:]]


def _anchored_call(net, desk, prov):
    """An outside call to 201, answered by 201 and ACKed by the provider: (invite, rung, ok)."""
    desk.auto["INVITE"] = 180
    inv = _outside_call(net, prov)
    rung = desk.last("INVITE")
    net.advance(100)
    _answer(desk, rung)
    net.advance(40)
    ok = prov.last(200)
    prov.ack_2xx(inv, ok)
    return inv, rung, ok


def test_an_outside_caller_hears_the_branchs_ringback_as_early_media_then_talks():
    net, desk, prov = _sounds_net()
    desk.auto["INVITE"] = 180
    inv = _outside_call(net, prov)
    early = prov.last(183)
    assert early is not None and answer_sdp(early) == (SWITCH[0], MEDIA_PORT)  # 183 with our SDP
    assert prov.last(200) is None  # not answered: the outside caller is not charged for ringing
    rung = desk.last("INVITE")
    assert rung is not None and answer_sdp(rung) == (SWITCH[0], MEDIA_PORT)  # the desk meets our media
    assert "13912345678" in rung.get("from")  # and sees who calls
    net.advance(300)
    heard = _frames_to(net, PROVIDER_MEDIA)
    assert len(heard) >= 10 and heard[0] == RINGBACK[:160]
    assert set(heard) <= {RINGBACK[:160], RINGBACK[:80] + b"\xff" * 80}  # the file, looped
    assert heard.count(RINGBACK[:80] + b"\xff" * 80) >= 3
    _answer(desk, rung)
    net.advance(40)
    ok = prov.last(200)
    assert ok is not None and ok.cseq()[1] == "INVITE"
    assert ok.get("to") == early.get("to")  # one dialog: the 183's tag, then its 200
    assert answer_sdp(ok) == answer_sdp(early)
    prov.ack_2xx(inv, ok)
    before = len(net.rtp.get(PROVIDER_MEDIA, []))
    net.send_rtp(rtp.build(0, 1, 160, 0xBEEF, b"\x44" * 160), (desk.addr[0], 5000))
    assert _frames_to(net, PROVIDER_MEDIA, before) == [b"\x44" * 160]  # the desk's voice, relayed
    net.send_rtp(rtp.build(0, 1, 160, 0xCAFE, b"\x33" * 160), PROVIDER_MEDIA)
    assert _frames_to(net, (desk.addr[0], 5000))[-1] == b"\x33" * 160
    net.advance(200)
    assert len(net.rtp.get(PROVIDER_MEDIA, [])) == before + 1  # relayed: nothing of our own


def test_an_update_offer_is_answered_and_holds_like_a_reinvite():
    # RFC 3311: an UPDATE with an offer gets the answer in its 200 (it was a bare 200 before)
    net, desk, prov = _sounds_net()
    inv, rung, ok = _anchored_call(net, desk, prov)
    net.send_rtp(rtp.build(0, 1, 160, 0xCAFE, b"\x33" * 160), PROVIDER_MEDIA)  # the caller talks
    held = _reinvite_from_callee(desk, rung, _ok_of(desk, rung), "sendonly", method="UPDATE")
    assert held.status == 200 and held.cseq()[1] == "UPDATE" and b"a=recvonly" in held.body, held
    before = len(net.rtp.get(PROVIDER_MEDIA, []))
    net.advance(200)
    assert set(_frames_to(net, PROVIDER_MEDIA, before)) == {HOLD[:160]}  # the caller hears the music
    resumed = _reinvite_from_callee(desk, rung, _ok_of(desk, rung), "sendrecv", method="UPDATE")
    assert resumed.status == 200 and b"a=sendrecv" in resumed.body
    net.send_rtp(rtp.build(0, 2, 320, 0xBEEF, b"\x44" * 160), (desk.addr[0], 5000))
    assert _frames_to(net, PROVIDER_MEDIA)[-1] == b"\x44" * 160  # talking again


def test_an_anchored_call_is_one_call_record_from_the_callers_start():
    # the caller's call to the agent and the agent's to the desk are one call for the branch:
    # one record, whom it rang and who answered, from when the caller called
    net, desk, prov = _sounds_net()
    start = net.now
    inv, rung, ok = _anchored_call(net, desk, prov)
    net.advance(3000)
    prov.bye(inv, ok)
    net.advance(2000)
    records = net.sw.cdr.records()
    assert len(records) == 1, records
    r = records[0]
    assert r["from"] == "13912345678" and r["to"] == "201" and r["outcome"] == "answered"
    assert r["route"] == "did 02155550199 -> ext 201 via the attendant -> 201" and r["duration"] >= 3
    assert r["start"] == (net.sw.epoch_ms + start) // 1000


def test_a_hold_by_update_while_it_rings_holds_once_answered():
    # the caller's UPDATE (a=sendonly) in the early dialog: the INVITE's 200 then carries the
    # session as it is now (version 2, recvonly), not the 183's, and the desk hears the music
    net, desk, prov = _sounds_net()
    desk.auto["INVITE"] = 180
    inv = _outside_call(net, prov)
    rung = desk.last("INVITE")
    _in_early_dialog(prov, inv, "UPDATE", "upd1", sdp(PROVIDER_MEDIA[0], PROVIDER_MEDIA[1]) + b"a=sendonly\r\n")
    up = prov.got[-1]
    assert up.status == 200 and b"a=recvonly" in up.body
    net.advance(100)
    _answer(desk, rung)
    net.advance(40)
    ok = [m for m in prov.got if getattr(m, "status", 0) == 200 and m.cseq()[1] == "INVITE"][-1]
    assert ok.body == up.body  # the session the UPDATE left, its version and direction
    prov.ack_2xx(inv, ok)
    before = len(net.rtp.get((desk.addr[0], 5000), []))
    net.advance(200)
    assert set(_frames_to(net, (desk.addr[0], 5000), before)) == {HOLD[:160]}
    assert net.sw.counters.get("call on hold") == 1


def test_an_outside_caller_put_on_hold_hears_the_hold_music():
    net, desk, prov = _sounds_net()
    inv, rung, ok = _anchored_call(net, desk, prov)
    held = _reinvite_from_callee(desk, rung, _ok_of(desk, rung), "sendonly")
    assert held.status == 200 and b"a=recvonly" in held.body  # we take the hold, not the provider
    assert prov.last("INVITE") is None  # no re-INVITE across the trunk
    before = len(net.rtp.get(PROVIDER_MEDIA, []))
    net.advance(200)
    music = _frames_to(net, PROVIDER_MEDIA, before)
    assert len(music) >= 8 and set(music) == {HOLD[:160]}  # the hold file, over and over
    n = len(net.rtp.get((desk.addr[0], 5000), []))
    net.send_rtp(rtp.build(0, 9, 1600, 0xCAFE, b"\x33" * 160), PROVIDER_MEDIA)
    assert len(net.rtp.get((desk.addr[0], 5000), [])) == n  # the held side is not relayed to
    resumed = _reinvite_from_callee(desk, rung, _ok_of(desk, rung), "sendrecv")
    assert resumed.status == 200 and b"a=sendrecv" in resumed.body
    net.send_rtp(rtp.build(0, 2, 320, 0xBEEF, b"\x44" * 160), (desk.addr[0], 5000))
    assert _frames_to(net, PROVIDER_MEDIA)[-1] == b"\x44" * 160  # talking again
    before = len(net.rtp.get(PROVIDER_MEDIA, []))
    net.advance(200)
    assert len(net.rtp.get(PROVIDER_MEDIA, [])) == before  # no more music


def _ok_of(desk, rung):
    """The 200 the desk sent for rung (what the test's _answer built): its To has the tag."""
    from zongji.sip.message import make_response

    return make_response(rung, 200, to_tag="t201")


def test_nobody_answering_an_anchored_call_gives_the_caller_the_targets_answer():
    net, desk, prov = _sounds_net()
    desk.auto["INVITE"] = 486
    prov.auto["INVITE"] = 486  # 201's follow-me, its mobile over the trunk, is busy too
    _outside_call(net, prov)
    net.advance(100)
    mobile = prov.last("INVITE")
    assert mobile is not None and mobile.uri.user == "13800138001"
    finals = [m for m in prov.got if not hasattr(m, "method") and m.status >= 200 and m.call_id() == "in-anchor"]
    assert [m.status for m in finals] == [486] and prov.last(200) is None
    net.advance(1000)
    assert not net.sw.agent.calls and not net.hub.open and not net.sw.proxy.calls


def test_the_outside_caller_giving_up_cancels_the_desk():
    net, desk, prov = _sounds_net()
    desk.auto["INVITE"] = 180
    inv = _outside_call(net, prov)
    net.advance(200)
    cancel = make_request(
        "CANCEL", inv.uri, inv.get("from"), inv.get("to"), inv.call_id(), 1, via=inv.get("via"),
    )  # fmt: skip
    prov.send(cancel)
    net.advance(100)
    assert prov.last(487) is not None
    assert desk.last("CANCEL") is not None  # the desk stops ringing
    net.advance(1000)
    assert not net.sw.agent.calls and not net.hub.open


def test_without_sounds_outside_calls_are_proxied_phone_to_provider():
    net, desk, prov = _sounds_net(sounds=False)
    desk.auto["INVITE"] = 180
    _outside_call(net, prov)
    rung = desk.last("INVITE")
    assert rung is not None and answer_sdp(rung) == PROVIDER_MEDIA  # SDP untouched: no anchoring
    assert prov.last(183) is None and not net.sw.agent.calls


def test_a_transfer_rings_with_the_branchs_ringback_file():
    net, desk, prov = _sounds_net()
    caller = net.phone("202", 5062)
    assert caller.register().status == 200
    desk.auto["INVITE"] = 180
    call(net, caller, "800")
    net.advance(100)
    Keypad(net, (caller.addr[0], 4000)).press("1")  # sales, group 600: 201 rings
    net.advance(1000)
    assert "sound.ringback" in net.prompts.opened


def test_outside_calls_leave_attendant_lines_for_the_menus():
    """INVITEs from the provider's address (which UDP cannot prove) are anchored only while
    more than ANCHOR_RESERVE attendant lines are free; beyond that they ring as plain proxied
    calls, and a caller can still reach the menus."""
    from zongji.switch.agent import ANCHOR_RESERVE, MAX_CALLS

    net, desk, prov = _sounds_net()
    desk.auto["INVITE"] = 180
    for i in range(MAX_CALLS):
        # each with its own media port, as a provider's calls have (the hub refuses an SDP
        # naming a media address another call already has)
        _outside_call(net, prov, call_id="flood-%d" % i, media=(PROVIDER_MEDIA[0], 7002 + 2 * i))
    assert len(net.sw.agent.calls) == MAX_CALLS - ANCHOR_RESERVE
    caller = net.phone("202", 5062)
    assert caller.register().status == 200
    invite, ok = call(net, caller, "800")  # the main menu still answers
    assert answer_sdp(ok) == (SWITCH[0], MEDIA_PORT)


def test_a_bye_on_a_ringing_anchored_call_ends_it_cleanly():
    net, desk, prov = _sounds_net()
    desk.auto["INVITE"] = 180
    inv = _outside_call(net, prov)
    _in_early_dialog(prov, inv, "BYE", "bye-early")
    net.advance(200)
    assert desk.last("CANCEL") is not None
    assert not net.sw.agent.calls and not net.hub.open


# ---- media phone to phone (RFC 3725) ----------------------------------------------------------------


def _answer_reinvite(phone, port):
    """The phone answers the re-INVITE it got last with its own SDP at port -> the re-INVITE."""
    req = phone.last("INVITE")
    _answer(phone, req, port, tag=None)
    return req


def _put_through(net, caller, target):
    """caller dials 800 and presses 1 (group 600); target answers at media port 5000."""
    target.auto["INVITE"] = 180
    call(net, caller, "800")
    net.advance(200)
    Keypad(net, (caller.addr[0], 4000)).press("1")
    net.advance(400)
    rung = target.last("INVITE")
    _answer(target, rung)
    net.advance(40)
    return rung


def test_two_of_our_phones_put_through_get_their_media_phone_to_phone():
    net, phones = setup("202", "201")
    caller, target = phones
    rung = _put_through(net, caller, target)
    moved = caller.last("INVITE")  # the re-INVITE in the caller's dialog with the attendant
    assert moved is not None and moved.cseq()[0] > 1
    assert answer_sdp(moved) == (target.addr[0], 5000)  # the target's media address, not ours
    assert "PCMU" in moved.body.decode() and "o=zongji" in moved.body.decode()  # our session, version on
    _answer_reinvite(caller, 4000)
    net.advance(40)
    assert caller.last("ACK") is not None
    moved_b = target.last("INVITE")
    assert moved_b is not rung and answer_sdp(moved_b) == (caller.addr[0], 4000)
    _answer_reinvite(target, 5000)
    net.advance(40)
    assert net.sw.counters.get("media direct phone to phone") == 1
    # the hub is out of the media path: what still arrives is dropped, nothing is sent
    before = len(net.rtp.get((target.addr[0], 5000), []))
    net.send_rtp(rtp.build(0, 50, 8000, 0xCAFE, b"\x33" * 160), (caller.addr[0], 4000))
    net.advance(200)
    assert len(net.rtp.get((target.addr[0], 5000), [])) == before
    assert net.hub.counters.get("rtp after media went direct") == 1


def test_a_refused_reinvite_leaves_the_media_relayed():
    from zongji.sip.message import make_response

    net, phones = setup("202", "201")
    caller, target = phones
    _put_through(net, caller, target)
    moved = caller.last("INVITE")
    caller.send(make_response(moved, 488))  # this phone will not move its media
    net.advance(40)
    assert net.sw.counters.get("media stays relayed: the caller refused the re-INVITE") == 1
    before = len(net.rtp.get((target.addr[0], 5000), []))
    net.send_rtp(rtp.build(0, 50, 8000, 0xCAFE, b"\x33" * 160), (caller.addr[0], 4000))
    assert len(net.rtp.get((target.addr[0], 5000), [])) == before + 1  # still relayed


def test_hold_after_going_direct_brings_the_media_back_to_the_switch():
    net, phones = setup("202", "201")
    caller, target = phones
    rung = _put_through(net, caller, target)
    _answer_reinvite(caller, 4000)
    net.advance(40)
    _answer_reinvite(target, 5000)
    net.advance(40)
    ok = _ok_of(target, rung)
    held = _reinvite_from_callee(target, rung, ok, "sendonly")
    assert held.status == 200 and answer_sdp(held) == (SWITCH[0], MEDIA_PORT)  # back to our port
    back = caller.last("INVITE")
    assert answer_sdp(back) == (SWITCH[0], MEDIA_PORT)  # the caller is re-INVITEd back to us too


def test_dial_by_name_says_a_recorded_name_and_reads_the_others_number():
    """Several names match: each choice is read back, with the person's recorded name where
    the site has one (name.201) and the number digit by digit where it has not."""
    files = {"menu.main": GREETING, "name.201": b"\x77" * 160}
    files.update({"digit.%d" % d: bytes([0x80 + d]) * 160 for d in range(10)})
    net = MediaNet(_sites.build(), Prompts(files))
    caller = net.phone("204", 5061)
    assert caller.register().status == 200
    call(net, caller, "800")
    net.advance(100)
    pad = Keypad(net, (caller.addr[0], 4000))
    for k in "9926":  # the directory, then w-a-n
        pad.press(k)
    net.advance(6500)  # a pause: the matches are read out (each prompt opens as it plays)
    opened = net.prompts.opened
    assert "name.201" in opened  # 王小明 has a recording: it is said
    i = opened.index("name.201")
    # "For <王小明's recording>, press 1. For 2 0 2 (Lily has none: her number), press 2."
    assert opened[i - 1 : i + 3] == ["phrase.dbn_choice.0", "name.201", "phrase.dbn_choice.1", "digit.1"]
    assert opened[i + 3 : i + 8] == ["phrase.dbn_choice.0", "digit.2", "digit.0", "digit.2", "phrase.dbn_choice.1"]
    heard = _frames_to(net, (caller.addr[0], 4000))
    assert b"\x77" * 160 in heard  # and it was played into the call


def test_a_staff_call_out_put_on_hold_plays_the_music_to_the_outside_party():
    """While the site has hold music, a staff call out over the trunk is anchored too: the
    provider meets the switch's media, and when the phone holds (re-INVITE sendonly) the
    outside party hears the music: no re-INVITE crosses the trunk, no 488."""
    net, desk, prov = _sounds_net()
    prov.auto["INVITE"] = 180
    desk.calls += 1
    req = desk._request("INVITE", "013800138000", "out-hold", body=sdp(desk.addr[0], 4000))
    req.add("content-type", "application/sdp")
    desk.send(req)
    desk.send(ack_for_failure(req, desk.got[-1]))
    auth = desk.answer(req, desk.got[-1], "Proxy-Authenticate", "Proxy-Authorization")
    desk.send(auth)
    net.advance(100)
    out = prov.last("INVITE")
    assert out is not None and out.uri.user == "13800138000"
    assert answer_sdp(out) == (SWITCH[0], MEDIA_PORT)  # the provider meets our media
    assert desk.last(183) is not None
    _answer(prov, out, port=PROVIDER_MEDIA[1], tag="far")
    net.advance(100)
    ok = desk.last(200)
    assert ok is not None and ok.cseq()[1] == "INVITE"
    desk.ack_2xx(auth, ok)
    # the desk holds: a re-INVITE in its dialog with the switch
    desk.cseq += 1
    hold = make_request(
        "INVITE", ok.contacts()[0].uri, auth.get("from"), ok.get("to"), auth.call_id(), desk.cseq,
        via="SIP/2.0/UDP %s:%d;branch=z9hG4bKhold1" % desk.addr, contact=desk.contact,
        body=sdp(desk.addr[0], 4000) + b"a=sendonly\r\n", content_type="application/sdp",
    )  # fmt: skip
    for r in reversed(ok.get_all("record-route")):
        hold.add("route", r)
    invites_before = len([m for m in prov.got if getattr(m, "method", "") == "INVITE"])
    desk.send(hold)
    assert desk.got[-1].status == 200 and b"a=recvonly" in desk.got[-1].body
    before = len(net.rtp.get(PROVIDER_MEDIA, []))
    net.advance(200)
    assert set(_frames_to(net, PROVIDER_MEDIA, before)) == {HOLD[:160]}
    assert len([m for m in prov.got if getattr(m, "method", "") == "INVITE"]) == invites_before


def test_the_providers_early_media_is_relayed_to_the_staff_caller():
    net, desk, prov = _sounds_net()
    desk.calls += 1
    req = desk._request("INVITE", "013800138000", "out-early", body=sdp(desk.addr[0], 4000))
    req.add("content-type", "application/sdp")
    desk.send(req)
    desk.send(ack_for_failure(req, desk.got[-1]))
    desk.send(desk.answer(req, desk.got[-1], "Proxy-Authenticate", "Proxy-Authorization"))
    net.advance(100)
    out = prov.last("INVITE")
    net.advance(300)
    # staff calling out hear a ringing tone, not the branch's ringback (that is for its callers)
    assert RINGBACK[:160] not in _frames_to(net, (desk.addr[0], 4000))
    from zongji.sip.message import make_response

    early = make_response(out, 183, to_tag="far")
    early.add("contact", prov.contact)
    early.body = sdp(PROVIDER_MEDIA[0], PROVIDER_MEDIA[1])
    early.add("content-type", "application/sdp")
    prov.send(early)
    net.advance(40)
    net.send_rtp(rtp.build(0, 1, 160, 0xA11, b"\x5a" * 160), PROVIDER_MEDIA)  # "the number is busy"
    assert _frames_to(net, (desk.addr[0], 4000))[-1] == b"\x5a" * 160


def test_the_caller_retransmitting_its_2xx_gets_our_ack_again():
    net, phones = setup("202", "201")
    caller, target = phones
    _put_through(net, caller, target)
    moved = _answer_reinvite(caller, 4000)
    net.advance(40)
    acks = [m for m in caller.got if getattr(m, "method", "") == "ACK" and m.cseq()[0] == moved.cseq()[0]]
    assert len(acks) == 1
    _answer(caller, moved, 4000, tag=None)  # the same 200 once more: our ACK was lost on the way
    net.advance(40)
    acks = [m for m in caller.got if getattr(m, "method", "") == "ACK" and m.cseq()[0] == moved.cseq()[0]]
    assert len(acks) == 2

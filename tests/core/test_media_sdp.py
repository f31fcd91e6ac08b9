"""media/sdp.py: parsing and serialising SDP (RFC 4566), offer/answer and hold (RFC 3264), on
offers written the way real phones write them."""

from _support import counter_random, raises
from zongji.media import sdp as sdpmod
from zongji.media.sdp import SdpError, Session, parse

# baresip 3.x with opus, G.722, G.711 and telephone-event (its ssrc/label lines included)
BARESIP = (
    "v=0\r\no=- 1879516286 2463723598 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 10006 RTP/AVP 96 9 0 8 101\r\nb=AS:128\r\na=rtpmap:96 opus/48000/2\r\n"
    "a=fmtp:96 stereo=1;sprop-stereo=1\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
    "a=sendrecv\r\na=label:1\r\na=rtcp-rsize\r\na=ssrc:3391316402 cname:sip:alice@127.0.0.1\r\n"
)

# SIPp's built-in uac_pcap scenario (`sipp -sd uac_pcap`), with the keywords filled in
SIPP_UAC_PCAP = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-11,16\r\n"
)

# a Yealink-style desk phone: several codecs, PCMA first, telephone-event on 101, media-level
# c=, ptime, and a video stream we have to refuse
YEALINK = (
    "v=0\n"
    "o=- 20010 20010 IN IP4 192.168.10.21\n"
    "s=SDP data\n"
    "t=0 0\n"
    "m=audio 11784 RTP/AVP 9 8 0 18 101\n"
    "c=IN IP4 192.168.10.21\n"
    "a=rtpmap:9 G722/8000\n"
    "a=rtpmap:8 PCMA/8000\n"
    "a=rtpmap:0 PCMU/8000\n"
    "a=rtpmap:18 G729/8000\n"
    "a=fmtp:18 annexb=no\n"
    "a=ptime:20\n"
    "a=sendrecv\n"
    "a=rtpmap:101 telephone-event/8000\n"
    "a=fmtp:101 0-15\n"
    "m=video 11786 RTP/AVP 99\n"
    "c=IN IP4 192.168.10.21\n"
    "a=rtpmap:99 H264/90000\n"
)


def _session():
    return Session("192.0.2.5", 40000, random_bytes=counter_random())


def _plain(direction="", c="192.0.2.9", codecs="0 8 101", level="media"):
    sess_dir = "a=%s\r\n" % direction if direction and level == "session" else ""
    media_dir = "a=%s\r\n" % direction if direction and level == "media" else ""
    return (
        "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n%sm=audio 5004 RTP/AVP %s\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n%s" % (c, sess_dir, codecs, media_dir)
    )


def test_parse_baresip_offer_and_round_trip():
    s = parse(BARESIP.encode())
    m = s.media[0]
    assert s.origin == ("-", "1879516286", 2463723598, "IN", "IP4", "127.0.0.1") and s.conn == "127.0.0.1"
    assert m.port == 10006 and m.pts() == [96, 9, 0, 8, 101]
    assert m.rtpmap[96] == ("opus", 48000, 2) and m.fmtp[101] == "0-15" and m.direction == "sendrecv"
    assert m.codec(96) is None and m.codec(9) == "G722" and m.codec(0) == "PCMU"
    again = parse(s.to_bytes())
    assert again.to_bytes() == s.to_bytes()
    assert again.media[0].rtpmap == m.rtpmap and again.media[0].attrs == m.attrs


def test_answer_baresip_picks_pcmu_in_its_order_with_its_event_type():
    body, plan = _session().answer(BARESIP)
    a = parse(body).media[0]
    assert a.pts() == [0, 101] and a.port == 40000 and a.fmtp[101] == "0-15" and a.direction == "sendrecv"
    assert plan.addr == ("127.0.0.1", 10006) and (plan.pt, plan.codec, plan.te_pt) == (0, "PCMU", 101)
    assert plan.send and plan.recv and plan.recv_pts == (0, 101) and not plan.on_hold()


def test_answer_sipp_uac_pcap():
    body, plan = _session().answer(SIPP_UAC_PCAP.encode())
    assert parse(body).media[0].pts() == [8, 101]
    assert (plan.pt, plan.codec, plan.te_pt, plan.addr) == (8, "PCMA", 101, ("127.0.0.1", 6000))


def test_answer_yealink_refuses_video_with_port_zero():
    body, plan = _session().answer(YEALINK)
    audio, video = parse(body).media
    assert audio.pts() == [8, 101] and plan.codec == "PCMA" and plan.ptime == 20
    assert (video.kind, video.port, video.fmts) == ("video", 0, ["99"])
    assert plan.addr == ("192.168.10.21", 11784)


def test_dynamic_payload_type_for_g711_is_answered_under_its_number():
    offer = _plain(codecs="96 101") + "a=rtpmap:96 PCMU/8000\r\n"
    body, plan = _session().answer(offer)
    assert (plan.pt, plan.codec) == (96, "PCMU") and parse(body).media[0].rtpmap[96] == ("PCMU", 8000, 1)


def test_offer_answer_direction_table():
    # (offer's direction, where written, c=, our direction) -> our answer's direction, send, recv
    table = [
        ("", "media", "192.0.2.9", "sendrecv", "sendrecv", True, True),
        ("sendrecv", "media", "192.0.2.9", "sendrecv", "sendrecv", True, True),
        ("sendonly", "media", "192.0.2.9", "sendrecv", "recvonly", False, True),  # we are held
        ("sendonly", "session", "192.0.2.9", "sendrecv", "recvonly", False, True),
        ("recvonly", "media", "192.0.2.9", "sendrecv", "sendonly", True, False),
        ("inactive", "media", "192.0.2.9", "sendrecv", "inactive", False, False),
        ("", "media", "0.0.0.0", "sendrecv", "recvonly", False, True),  # RFC 2543 hold
        ("sendonly", "media", "0.0.0.0", "sendrecv", "recvonly", False, True),
        ("", "media", "192.0.2.9", "sendonly", "sendonly", True, False),  # we hold them
        ("sendonly", "media", "192.0.2.9", "sendonly", "inactive", False, False),
        ("", "media", "192.0.2.9", "inactive", "inactive", False, False),
    ]
    for theirs, level, c, ours, want, send, recv in table:
        body, plan = _session().answer(_plain(theirs, c, level=level), ours)
        got = parse(body).media[0].direction
        assert (got, plan.send, plan.recv) == (want, send, recv), (theirs, level, c, ours, got)
        assert plan.direction == want
    assert _session().answer(_plain("", "0.0.0.0"))[1].addr is None


def test_hold_and_resume_from_our_side_bump_the_version():
    s = _session()
    first = parse(s.offer())
    assert first.origin[2] == 1 and first.media[0].direction == "sendrecv"
    assert first.media[0].pts() == [0, 8, 101] and first.media[0].ptime == 20
    plan = s.accept(_plain(codecs="8 101"))
    assert (plan.pt, plan.te_pt, plan.send, plan.recv) == (8, 101, True, True)
    held = parse(s.offer("sendonly"))
    assert held.origin[1] == first.origin[1] and held.origin[2] == 2 and held.media[0].direction == "sendonly"
    plan = s.accept(_plain("recvonly", codecs="8 101"))
    assert plan.send and not plan.recv and plan.on_hold()
    resumed = parse(s.offer())
    assert resumed.origin[2] == 3 and resumed.media[0].direction == "sendrecv"
    assert s.accept(_plain(codecs="0")).recv
    assert parse(s.answer(_plain())[0]).origin[2] == 4 and s.last is not None


def test_accept_checks_the_answer():
    s = _session()
    assert raises(ValueError, s.accept, _plain())
    s.offer()
    assert raises(SdpError, s.accept, _plain(codecs="18")).status == 488
    rejected = _plain().replace("m=audio 5004", "m=audio 0")
    assert "rejects" in str(raises(SdpError, s.accept, rejected))
    two = _plain() + "m=audio 5006 RTP/AVP 0\r\n"
    assert "2 m= lines" in str(raises(SdpError, s.accept, two))


def test_no_common_codec_is_488_and_disabled_streams_are_skipped():
    e = raises(SdpError, _session().answer, _plain(codecs="18 9"))
    assert e.status == 488 and "PCMU or PCMA" in str(e)
    off = _plain().replace("m=audio 5004", "m=audio 0") + "m=audio 5006 RTP/AVP 8\r\n"
    body, plan = _session().answer(off)
    first, second = parse(body).media
    assert first.port == 0 and second.port == 40000 and plan.addr == ("192.0.2.9", 5006)
    srtp = _plain().replace("RTP/AVP", "RTP/SAVP")
    assert raises(SdpError, _session().answer, srtp).status == 488


def test_telephone_event_needs_the_digits_and_is_optional():
    assert _session().answer(_plain(codecs="0"))[1].te_pt is None
    flash_only = _plain().replace("0-16", "16")
    assert _session().answer(flash_only)[1].te_pt is None
    no_fmtp = _plain().replace("a=fmtp:101 0-16\r\n", "")
    assert _session().answer(no_fmtp)[1].te_pt == 101  # no fmtp: 0-15 (RFC 4733 2.4.1)
    assert sdpmod.events_of("0-11,16") == set(range(12)) | {16}
    assert sdpmod.events_of("0-x") is None and sdpmod.events_of("5-2") is None


def test_bad_sdp_is_refused_with_a_reason():
    good = _plain()
    cases = [
        ("", "v=0", 400),
        ("v=1\r\n", "v=0", 400),
        (good.replace("o=- 1 1 IN IP4 192.0.2.9\r\n", ""), "no o=", 400),
        (good.replace("o=- 1 1", "o=- 1"), "bad o=", 400),
        (good.replace("c=IN IP4 192.0.2.9\r\n", ""), "no c=", 400),
        (good.replace("c=IN IP4 192.0.2.9", "c=IN IP4 300.1.1.1"), "not an IPv4", 488),
        (good.replace("c=IN IP4 192.0.2.9", "c=IN IP4 pbx.example.com"), "not an IPv4", 488),
        (good.replace("c=IN IP4 192.0.2.9", "c=IN IP4 224.2.1.1/127"), "multicast", 488),
        (good.replace("c=IN IP4", "c=IN"), "bad c=", 400),
        (good.replace("5004", "70000"), "port 70000 out of range", 400),
        (good.replace("5004 RTP/AVP 0 8 101", "5004 RTP/AVP 0 x"), "bad payload type", 400),
        (good.replace("5004 RTP/AVP 0 8 101", "5004 RTP/AVP"), "bad m=", 400),
        (good.replace("5004", "5004/2"), "port ranges", 488),
        (good + "a=rtpmap:0 PCMU\r\n", "bad rtpmap", 400),
        (good + "a=rtpmap:101 telephone-event/8000\r\n", "second rtpmap", 400),
        (good + "a=ptime:abc\r\n", "bad ptime", 400),
        (good + "junk\r\n", "line 9: not <type>=<value>", 400),
        (good + "a=x\r\n" * 130, "lines", 400),
        (good + "a=" + "x" * 5000 + "\r\n", "bytes", 400),
        (good + "m=audio 1 RTP/AVP 0\r\n" * 8, "m= lines", 400),
        (good.replace("0 8 101", " ".join(str(i) for i in range(40))), "formats", 400),
        (b"v=0\r\n\xff\r\n", "utf-8", 400),
    ]
    for body, why, status in cases:
        e = raises(SdpError, parse, body if isinstance(body, bytes) else body.encode())
        assert why in str(e) and e.status == status, (why, str(e), e.status)


def test_ipv6_connection_lines():
    offer = _plain().replace("c=IN IP4 192.0.2.9", "c=IN IP6 2001:db8::9")
    s = Session("2001:db8::5", 40000, random_bytes=counter_random())
    body, plan = s.answer(offer)
    assert plan.addr == ("2001:db8::9", 5004) and b"c=IN IP6 2001:db8::5" in body
    assert parse(body).origin[4:] == ("IP6", "2001:db8::5")

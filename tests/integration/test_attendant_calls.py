"""The attendant answers, against host mode and the virtual device (the `switchboard` fixture):
SIPp calls the main menu's short number, is answered by the switch's own user agent, and plays
one of SIPp's own RFC 4733 captures (Debian's sip-tester ships /usr/share/sip-tester/
dtmf_2833_*.pcap). The key puts the caller through: a SIPp UAS registered as the menu option's
target gets the INVITE and answers, and the call record says so.

Also: a baresip caller types the key and talks to the target (each end's recording holds the
other's tone: 440 Hz one way, 1000 Hz the other); SpanDSP's in-band tones in u-law RTP, on a
call without telephone-event, do what the RFC 4733 key does; and a manager's international
call asks for the PIN, where only the right one reaches the provider (Kamailio). The RTP
captures for those are written by rtppcap.py."""

import os
import sys
import time
from pathlib import Path

import pytest
from sipharness import sipp, write_injection

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/spandsp.py

CAPTURES = Path("/usr/share/sip-tester")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _capture(digit):
    path = CAPTURES / ("dtmf_2833_%s.pcap" % digit)
    if not path.exists():
        if IN_CI:
            pytest.fail("%s missing: install sip-tester (CI=true: this test must run)" % path)
        pytest.skip("%s missing: apt install sip-tester" % path)
    return path


def _always_open(site):
    text = site.toml.read_text(encoding="utf-8")
    head, sep, rest = text.partition("\n[hours]\n")
    body, nxt, tail = rest.partition("\n[")
    site.toml.write_text(head + sep + 'open = ["mon-sun 00:00-24:00"]\nclosed = "menu:closed"\n' + nxt + tail)


def _register_uas(hm, number, secret, uas_port, workdir):
    reg = write_injection(workdir / ("reg-%s.csv" % number), [(number, secret)])
    res = sipp("register_auth.xml", hm.addr, workdir, "register_%s" % number, calls=1, inf=reg, local_port=uas_port,
               behaviors="all,-bye")  # fmt: skip
    assert res.returncode == 0 and res.successful == 1, res.explain()
    hm.wait_for(r"(?:^|\s)registered %s\b" % number, 5)


def _main_menu_call(site, switchboard, sipp_server, free_udp_port, workdir, pcap, name, scenario="uac_menu.xml",
                    duration_ms=4000, uas_timeout_s=40, uas_recv_ms=20000, uas_wait_s=20):  # fmt: skip
    """202 calls the main menu (800) and SIPp plays `pcap` into the call once it is answered,
    while 201 (group 600's, option 1) is registered as a SIPp UAS -> (switch, caller's result,
    the UAS's result)."""
    _always_open(site)
    site.check()
    secrets = site.secrets()
    hm = switchboard(site)
    uas_port = free_udp_port()
    _register_uas(hm, "201", secrets["201"], uas_port, workdir)
    uas = sipp_server("uas_answer.xml", "uas", 1, uas_port, timeout_s=uas_timeout_s, recv_timeout_ms=uas_recv_ms)
    inf = write_injection(workdir / "caller.csv", [("202", secrets["202"])])
    res = sipp(scenario, hm.addr, workdir, name, calls=1, inf=inf, service="800", duration_ms=duration_ms,
               timeout_s=30, recv_timeout_ms=15000, extra=("-key", "pcap", str(pcap)))  # fmt: skip
    return hm, res, uas.finish(uas_wait_s)


def test_a_2833_key_on_the_main_menu_reaches_its_target(example_site, switchboard, sipp_server, free_udp_port, workdir):
    pcap = _capture("1")  # option 1 of the example's main menu: ring group 600 (201, 202, 203)
    hm, res, answered = _main_menu_call(example_site, switchboard, sipp_server, free_udp_port, workdir, pcap, "menu")
    assert res.returncode == 0 and res.successful == 1, res.explain()
    assert answered.successful == 1, answered.explain()  # 201 got the INVITE the key asked for
    hm.wait_for(r"call 202 -> 600\b.*answered", 10)
    assert hm.problems() == [], hm.problems()


def test_a_wrong_key_reaches_nobody(example_site, switchboard, sipp_server, free_udp_port, workdir):
    pcap = _capture("7")  # not an option of the main menu: the retry prompt, then the menu again
    hm, res, answered = _main_menu_call(example_site, switchboard, sipp_server, free_udp_port, workdir, pcap,
                                        "menu_wrong", duration_ms=3000, uas_timeout_s=15, uas_recv_ms=8000,
                                        uas_wait_s=5)  # fmt: skip
    assert res.returncode == 0 and res.successful == 1, res.explain()  # the attendant kept the call
    assert answered.successful == 0, answered.explain()  # and put it through to nobody
    assert hm.problems() == [], hm.problems()


def test_a_baresip_caller_presses_a_key_and_talks_to_the_target(example_site, switchboard, baresip):
    """baresip 202 calls the main menu, types 1 (RFC 4733 from its keypad), and is put through
    to group 600, where baresip 201 answers by itself; RTP then flows both ways through the
    switch: each phone receives packets, 201 hears 202's 440 Hz microphone and 202, once put
    through, 201's 1000 Hz. Both are the branch's phones, so the attendant re-INVITEs them to
    send their media to each other (RFC 3725): 201's RTP comes from 202's port, not the switch's."""
    from sipharness import Baresip

    _always_open(example_site)
    example_site.check()
    hm = switchboard(example_site)
    target = baresip("201", "201", example_site.secret("201"), hm.addr, tone=1000, record=True)
    caller = baresip("202", "202", example_site.secret("202"), hm.addr, tone=440, record=True)
    for phone in (target, caller):
        phone.wait_for(Baresip.REGISTERED, 10)
    hm.wait_for(r"(?:^|\s)registered 201\b", 5)
    hm.wait_for(r"(?:^|\s)registered 202\b", 5)
    caller.dial("800")
    caller.wait_for(Baresip.ESTABLISHED, 15)  # the attendant answered
    caller.wait_for(Baresip.RTP_IN, 10)  # and plays to it
    time.sleep(1)
    caller.send("1")  # a key, as a user types it during the call: baresip sends telephone-events
    target.wait_for(Baresip.ESTABLISHED, 15)  # group 600 rang 201, which answered
    target.wait_for(Baresip.RTP_IN, 10)  # the caller's audio reaches it
    target.wait_for(r"got re-INVITE", 10)  # RFC 3725: the attendant moves the media phone to phone
    media = int(hm.wait_for(r"the attendant's audio on udp [\d.]+:(\d+)", 1).group(1))
    time.sleep(3)
    sources = [int(m.group(1)) for m in target.matches(r"receiving from [\d.]+:(\d+)")]
    assert sources and media not in sources, "201 heard RTP from %r, the switch's port is %d" % (sources, media)
    caller.hangup()
    caller.wait_for(Baresip.PACKETS, 10)
    target.wait_for(Baresip.CLOSED_BY_PEER, 15)  # the caller's BYE ended the target's call too
    target.wait_for(Baresip.PACKETS, 10)
    tx_c, rx_c = caller.packets()
    tx_t, rx_t = target.packets()
    assert tx_t > 50 and rx_t > 50, "target tx/rx %d/%d: the relay did not carry 3 s both ways" % (tx_t, rx_t)
    assert rx_c > rx_t, "caller rx %d: the attendant's frames and then the target's" % rx_c
    hm.wait_for(r"call 202 -> 600\b.*answered", 10)
    assert hm.problems() == [], hm.problems()
    # what each one heard (baresip's sndfile recordings): the target the caller's 440 Hz
    # microphone, the caller the target's 1000 Hz at the end of its call
    heard_t, rate_t = _wav(target.recordings()[-1])
    heard_c, rate_c = _wav(caller.recordings()[-1])
    assert _tone(heard_t[-len(heard_t) // 2 :], rate_t, (440, 1000)) == 440
    assert _tone(heard_c[-len(heard_c) // 4 :], rate_c, (440, 1000)) == 1000


def _wav(path):
    """A WAV file -> (samples of its first channel, rate)."""
    import wave
    from array import array

    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2, path
        ch = w.getnchannels()
        pcm = array("h", w.readframes(w.getnframes()))
        rate = w.getframerate()
    return list(pcm[::ch]), rate


def _tone(x, rate, candidates):
    """The candidate frequency that carries most of x's energy (a Goertzel per candidate: a
    pure tone gives a share near 1), or None when none carries half (silence, noise, speech)."""
    import math

    assert len(x) > rate // 10, "under 100 ms of audio recorded"
    energy = sum(v * v for v in x) * len(x) / 2.0
    for f in candidates:
        c = 2 * math.cos(2 * math.pi * f / rate)
        a = b = 0.0
        for v in x:
            a, b = v + c * a - b, a
        if energy and (a * a + b * b - c * a * b) / energy > 0.5:
            return f
    return None


def _scenario_without_telephone_event(workdir):
    """uac_menu.xml offering PCMU only: with no telephone-event agreed, keys can only come as
    tones in the audio, and the switch must listen for them there."""

    def pcmu_only(text):
        text = text.replace("RTP/AVP 0 101", "RTP/AVP 0")
        text = "\n".join(ln for ln in text.split("\n") if ":101 " not in ln)
        assert "telephone-event/" not in text
        return text

    return _sipp_variant(workdir, "uac_menu.xml", "uac_menu_inband.xml", pcmu_only)


def test_spandsp_tones_in_the_audio_reach_the_target(example_site, switchboard, sipp_server, free_udp_port, workdir):
    """An in-band call: SpanDSP's dtmf_tx makes the tone for 1 (-10 dBm0, 80 ms), it goes into
    u-law RTP between stretches of silence, and SIPp plays that into a call that agreed on PCMU
    only. The attendant's own Goertzel detector hears the key and group 600 rings 201."""
    import rtppcap
    import spandsp

    spandsp.require()
    pcm = [0] * 4000 + spandsp.dtmf_generate("1", level=-10, on_ms=80, off_ms=80) + [0] * 4000
    pcap = rtppcap.write(workdir / "inband_1.pcap", rtppcap.audio_packets(pcm))
    hm, res, answered = _main_menu_call(example_site, switchboard, sipp_server, free_udp_port, workdir, pcap,
                                        "menu_inband", scenario=_scenario_without_telephone_event(workdir))  # fmt: skip
    assert res.returncode == 0 and res.successful == 1, res.explain()
    assert answered.successful == 1, answered.explain()
    hm.wait_for(r"call 202 -> 600\b.*answered", 10)
    assert hm.problems() == [], hm.problems()


INTERNATIONAL = "000442079460000"  # outside prefix 0, then 00 44 20 7946 0000


def test_a_managers_international_call_asks_for_the_pin(
    example_site, switchboard, provider, sipp_server, free_udp_port, workdir
):
    """201 (class manager: international needs the PIN) dials London. The attendant answers
    and asks for the PIN; SIPp types it as RFC 4733 events. A wrong PIN: not one INVITE
    reaches the provider (Kamailio). The right one (staff.csv's, from zongji init): the call
    goes out over the trunk, the provider relays it to the far end, which answers."""
    import rtppcap

    trunk = example_site.trunk()
    pin = example_site.row("201")["pin"]
    assert example_site.row("201")["class"] == "manager" and len(pin) >= 4
    far_end = free_udp_port()
    prov = provider(trunk["port"], trunk["username"], trunk["password"], far_end)
    hm = switchboard(example_site)
    hm.wait_for(r"\btrunk registered\b", 15)
    inf = write_injection(workdir / "201.csv", [("201", example_site.secret("201"))])

    wrong = "".join(str((int(d) + 1) % 10) for d in pin)
    pcap = rtppcap.write(workdir / "pin_wrong.pcap", rtppcap.event_packets(wrong + "#"))
    res = sipp("uac_menu.xml", hm.addr, workdir, "pin_wrong", calls=1, inf=inf, service=INTERNATIONAL,
               duration_ms=3000, timeout_s=30, recv_timeout_ms=15000, extra=("-key", "pcap", str(pcap)))  # fmt: skip
    assert res.returncode == 0 and res.successful == 1, res.explain()  # asked again, not put through
    time.sleep(1.0)
    assert prov.received_invites() == [], prov.tail()

    uas = sipp_server("uas_answer.xml", "london", 1, far_end, timeout_s=40, recv_timeout_ms=20000)
    pcap = rtppcap.write(workdir / "pin_right.pcap", rtppcap.event_packets(pin + "#"))
    res = sipp("uac_menu.xml", hm.addr, workdir, "pin_right", calls=1, inf=inf, service=INTERNATIONAL,
               duration_ms=6000, timeout_s=30, recv_timeout_ms=15000, extra=("-key", "pcap", str(pcap)))  # fmt: skip
    answered = uas.finish(20)
    assert res.returncode == 0 and res.successful == 1, res.explain()
    assert answered.successful == 1, answered.explain()
    assert prov.invites() == [(INTERNATIONAL[1:], trunk["username"])], prov.tail()
    assert hm.problems() == [], hm.problems()


def _built_sound(site, key, freq):
    """[sounds] KEY = a 1 s sine of freq Hz (sox), built by the real `zongji prompts build`
    -> the bytes of the prompt file the switch plays."""
    from sipharness import run, zongji_argv

    text = site.toml.read_text(encoding="utf-8")
    site.toml.write_text(text + '\n[sounds]\n%s = "sounds/%s.wav"\n' % (key, key), encoding="utf-8")
    (site.path / "sounds").mkdir()
    made = run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", site.path / "sounds" / ("%s.wav" % key),
                "synth", "1.0", "sine", str(freq)], timeout=30)  # fmt: skip
    assert made.returncode == 0, made.stderr
    built = run(zongji_argv("prompts", "build", site.path), timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    return (site.path / "prompts" / ("sound.%s.ulaw" % key)).read_bytes()


def _sipp_variant(workdir, scenario, name, change):
    """SIPp's scenario file `scenario` with change(text) applied, written to workdir/name."""
    from sipharness import SIPP_DIR

    text = change((SIPP_DIR / scenario).read_text(encoding="iso-8859-1"))
    path = workdir / name
    path.write_text(text, encoding="iso-8859-1")
    return path


def _ringing_uas(workdir, ring_ms):
    """uas_answer.xml that rings ring_ms before it answers."""

    def ring_first(text):
        head, sep, tail = text.partition('  <send retrans="500">')
        assert sep, "uas_answer.xml changed: no 200 to delay"
        return head + '  <pause milliseconds="%d"/>\n\n' % ring_ms + sep + tail

    return _sipp_variant(workdir, "uas_answer.xml", "uas_ringing.xml", ring_first)


class _MediaEar:
    """A UDP socket on loopback standing in for the outside caller's phone: it keeps every RTP
    packet that reaches it (for a bounded time) and sends nothing."""

    def __init__(self):
        import socket
        import threading

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.packets = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        import time as _t

        end = _t.monotonic() + 60
        while not self._stop and _t.monotonic() < end:
            try:
                data, _ = self.sock.recvfrom(2048)
            except OSError:
                continue
            self.packets.append(data)

    def close(self):
        self._stop = True
        self._thread.join(2)
        self.sock.close()


def test_an_outside_caller_hears_the_branchs_ringback(example_site, switchboard, sipp_server, free_udp_port, workdir):
    """[sounds] ringback, built by `zongji prompts build` from a WAV (sox), is what an outside
    caller hears while the target rings: the provider (SIPp on the trunk's port) gets 183 with
    the switch's SDP, and the first RTP to reach its media address is that very file, frame
    for frame; then the target (a SIPp UAS registered as 204, group 601's first) answers and
    the call is answered for the caller too."""
    site = example_site
    _always_open(site)  # closed, the DID would go to the closed menu
    text = site.toml.read_text(encoding="utf-8").replace("register = true", "register = false")
    site.toml.write_text(text, encoding="utf-8")
    ringback = _built_sound(site, "ringback", 600)
    assert len(ringback) > 8 * 160
    site.check()

    hm = switchboard(site)
    uas_port = free_udp_port()
    _register_uas(hm, "204", site.secret("204"), uas_port, workdir)
    uas = sipp_server(_ringing_uas(workdir, 1500), "uas204", 1, uas_port, timeout_s=40, recv_timeout_ms=20000)
    ear = _MediaEar()
    try:
        inf = write_injection(workdir / "media.csv", [(str(ear.port),)])
        res = sipp("uac_inbound.xml", hm.addr, workdir, "inbound", calls=1, inf=inf, service="02155550101",
                   local_port=site.trunk()["port"], duration_ms=1000, timeout_s=30, recv_timeout_ms=15000)  # fmt: skip
        answered = uas.finish(20)
    finally:
        ear.close()
    assert res.returncode == 0 and res.successful == 1, res.explain()  # 183, then 200
    assert answered.successful == 1, answered.explain()
    frames = [ringback[i : i + 160] for i in range(0, 8 * 160, 160)]
    heard = [p[12:] for p in ear.packets if len(p) == 172 and p[1] & 0x7F == 0]
    assert len(heard) >= 20, "%d PCMU packets reached the caller" % len(heard)  # 1.5 s of ringing
    assert heard[:8] == frames, "the caller did not hear the built ringback from its start"
    hm.wait_for(r"call 13912345678 -> .*601.*answered", 10)
    assert hm.problems() == [], hm.problems()


def _reinvite(direction, cseq):
    return """
  <send retrans="500">
    <![CDATA[

      INVITE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      [routes]
      Max-Forwards: 70
      From: <sip:[field0]@[remote_ip]:[remote_port]>;tag=[pid]U[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: %(cseq)d INVITE
      Contact: <sip:[field0]@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=- [pid][call_number] %(cseq)d IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=%(direction)s

    ]]>
  </send>

  <recv response="100" optional="true"/>

  <recv response="200"/>

  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      [routes]
      Max-Forwards: 70
      From: <sip:[field0]@[remote_ip]:[remote_port]>;tag=[pid]U[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: %(cseq)d ACK
      Content-Length: 0

    ]]>
  </send>
""" % {"direction": direction, "cseq": cseq}


def _scenario_hold(workdir):
    """uac_call.xml, but the call is held (re-INVITE a=sendonly) for 2 s, then resumed."""

    def hold(text):
        pause = "  <!-- the call is up: -d milliseconds -->\n  <pause/>\n"
        assert pause in text, "uac_call.xml changed: no pause to hold in"
        held = ('  <pause milliseconds="800"/>\n' + _reinvite("sendonly", 3) + '  <pause milliseconds="2000"/>\n'
                + _reinvite("sendrecv", 4) + "  <pause/>\n")  # fmt: skip
        return text.replace(pause, held).replace("CSeq: 3 BYE", "CSeq: 5 BYE")

    return _sipp_variant(workdir, "uac_call.xml", "uac_hold.xml", hold)


def _far_end_at(workdir, port):
    """uas_answer.xml whose SDP names `port` (a test's _MediaEar) as its media."""

    def at_port(text):
        assert "m=audio [media_port]" in text
        return text.replace("m=audio [media_port]", "m=audio %d" % port)

    return _sipp_variant(workdir, "uas_answer.xml", "uas_far_end.xml", at_port)


def test_a_staff_call_out_on_hold_plays_the_music_across_the_trunk(
    example_site, switchboard, provider, sipp_server, free_udp_port, workdir
):
    """[sounds] hold built: 202 calls a mobile out through the provider (Kamailio) to a far end
    (SIPp UAS) whose media is a socket this test listens on. 202 holds (re-INVITE sendonly):
    the switch answers it, no 488, and the far end hears the built hold music frame for frame;
    202 resumes, the call goes on and ends normally."""
    site = example_site
    music = _built_sound(site, "hold", 700)
    site.check()
    trunk = site.trunk()
    far_end = free_udp_port()
    prov = provider(trunk["port"], trunk["username"], trunk["password"], far_end)
    hm = switchboard(site)
    hm.wait_for(r"\btrunk registered\b", 15)
    ear = _MediaEar()
    try:
        uas = sipp_server(_far_end_at(workdir, ear.port), "far", 1, far_end, timeout_s=40, recv_timeout_ms=20000)
        caller = write_injection(workdir / "202.csv", [("202", site.secret("202"))])
        res = sipp(_scenario_hold(workdir), hm.addr, workdir, "hold202", calls=1, inf=caller, service="013800138000",
                   duration_ms=500, timeout_s=30, recv_timeout_ms=15000)  # fmt: skip
        answered = uas.finish(15)
    finally:
        ear.close()
    assert res.returncode == 0 and res.successful == 1, res.explain()  # the hold and resume were answered
    assert answered.successful == 1, answered.explain()
    frames = [music[i : i + 160] for i in range(0, len(music) - 159, 160)]
    heard = [p[12:] for p in ear.packets if len(p) == 172 and p[1] & 0x7F == 0]
    start = heard.index(frames[0]) if frames[0] in heard else -1
    assert start >= 0, "the far end never heard the hold music (%d packets)" % len(heard)
    assert heard[start : start + 20] == frames[:20]  # the built file, in order
    assert prov.invites() == [("13800138000", trunk["username"])], prov.tail()
    assert prov.matches(r"PROVIDER in-dialog INVITE") == [], prov.tail()  # the hold stayed on our side
    hm.wait_for(r"call 202 -> \S*13800138000.*answered", 10)
    assert hm.problems() == [], hm.problems()

"""`zongji provider`: the test provider, driven over UDP on loopback like the switch's trunk would."""

import os
import re
import socket
import subprocess
import sys

import pytest
import test_hostmode
from _sitedirs import edit, new_site, run
from zongji.sip.auth import pick_challenge, respond
from zongji.sip.message import Request, make_response

procs, phones = test_hostmode.procs, test_hostmode.phones  # fixtures: host mode and its softphones
SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"


def _request(method, uri, call_id, cseq, to_tag="", body=b"", port=5999, extra="", to=None):
    head = (
        "%s %s SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-%s-%d-%s\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:shanghai@127.0.0.1>;tag=sw1\r\n"
        "To: <%s>%s\r\n"
        "Call-ID: %s\r\n"
        "CSeq: %d %s\r\n"
        "Contact: <sip:shanghai@127.0.0.1:%d>\r\n"
        "%s"
        "%s"
        "Content-Length: %d\r\n\r\n"
        % (
            method,
            uri,
            port,
            call_id,
            cseq,
            "invite" if method == "CANCEL" else method.lower(),  # a CANCEL's branch is its INVITE's
            to or uri,
            ";tag=" + to_tag if to_tag else "",
            call_id,
            cseq,
            "INVITE" if method == "ACK" else method,
            port,
            extra,
            "Content-Type: application/sdp\r\n" if body else "",
            len(body),
        )
    )
    return head.encode() + body


class _Provider:
    """`zongji provider --sip 127.0.0.1:0` as a subprocess; its port read from the banner."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zongji_companion", "provider", "--sip", "127.0.0.1:0"] + list(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        banner = self.proc.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", banner)
        assert m, banner + self.proc.stderr.read()
        self.addr = ("127.0.0.1", int(m.group(1)))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)

    def send(self, data):
        self.sock.sendto(data, self.addr)

    def status(self):
        data, _ = self.sock.recvfrom(65535)
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        return int(lines[0].split()[1]), lines, body

    def statuses(self, n):
        return [self.status() for _ in range(n)]

    def stop(self):
        self.sock.close()
        self.proc.terminate()
        try:
            out, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=10)
        return out, err


@pytest.fixture
def provider():
    started = []

    def start(*args):
        p = _Provider(*args)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.proc.poll() is None:
            p.stop()


def test_register_invite_answer_bye(provider):
    p = provider("--ring", "0.2")
    port = p.sock.getsockname()[1]
    p.send(
        _request(
            "REGISTER", "sip:127.0.0.1", "reg-1", 1, port=port, extra="Expires: 600\r\n", to="sip:shanghai@127.0.0.1"
        )
    )
    status, lines, _ = p.status()
    assert status == 200
    assert any(line.startswith("Contact: <sip:shanghai@127.0.0.1:%d>;expires=600" % port) for line in lines)

    p.send(_request("INVITE", "sip:008613800138000@127.0.0.1", "call-1", 1, body=SDP, port=port))
    (s100, _, _), (s180, _, _), (s200, lines, body) = p.statuses(3)
    assert (s100, s180, s200) == (100, 180, 200)
    assert body == SDP  # the caller's own offer, echoed
    to = next(line for line in lines if line.startswith("To:"))
    tag = to.split("tag=")[1]
    assert any(line.startswith("Contact: <sip:008613800138000@127.0.0.1:") for line in lines)
    p.send(_request("ACK", "sip:008613800138000@127.0.0.1", "call-1", 1, to_tag=tag, port=port))
    p.send(_request("BYE", "sip:008613800138000@127.0.0.1", "call-1", 2, to_tag=tag, port=port))
    status, lines, _ = p.status()
    assert status == 200 and any(line == "CSeq: 2 BYE" for line in lines)
    out, err = p.stop()
    assert "account shanghai registered" in out
    assert "call to 008613800138000 from shanghai" in out
    assert "call to 008613800138000 answered" in out
    assert "call to 008613800138000 ended" in out
    assert "Traceback" not in err


def test_cancel_while_ringing_gets_487(provider):
    p = provider("--ring", "60")
    port = p.sock.getsockname()[1]
    p.send(_request("INVITE", "sip:13800138000@127.0.0.1", "call-2", 1, body=SDP, port=port))
    assert [s for s, _, _ in p.statuses(2)] == [100, 180]
    p.send(_request("CANCEL", "sip:13800138000@127.0.0.1", "call-2", 1, port=port))
    got = sorted(s for s, _, _ in p.statuses(2))
    assert got == [200, 487]
    p.send(_request("BYE", "sip:13800138000@127.0.0.1", "nobody", 1, to_tag="x", port=port))
    assert p.status()[0] == 481  # no such call
    p.send(b"garbage\r\n\r\n")
    p.send(_request("OPTIONS", "sip:127.0.0.1", "opt-1", 1, port=port))
    assert p.status()[0] == 200  # garbage was dropped, the provider is still there
    out, _ = p.stop()
    assert "call to 13800138000 cancelled" in out


def test_provider_listens_where_the_sites_trunk_points(tmp_path):
    folder = new_site(tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    edit(folder / "site.toml", "port = 5070", "port = %d" % free)
    proc = subprocess.Popen(
        [sys.executable, "-m", "zongji_companion", "provider", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().startswith("test provider listening on 127.0.0.1:%d (UDP)" % free)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_provider_refuses_to_stand_in_for_a_real_provider(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "site.toml", 'host = "127.0.0.1"', 'host = "192.0.2.10"')
    result = run("provider", folder)
    assert result.exit_code == 1
    assert "is not this computer" in result.output and "--sip" in result.output


def test_provider_help_says_it_is_a_test_tool():
    result = run("provider", "--help")
    assert result.exit_code == 0
    assert "A test tool" in result.output and "no password is checked" in result.output
    assert "provider" in run("--help").output


def test_provider_on_a_taken_port_says_so(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        result = run("provider", "--sip", "127.0.0.1:%d" % s.getsockname()[1])
    assert result.exit_code == 1
    assert "can't listen on 127.0.0.1:" in result.output


def test_readme_shows_the_provider():
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md"), encoding="utf-8") as f:
        assert "zongji provider" in f.read()


def test_an_outside_call_from_a_softphone_through_host_mode_reaches_it(tmp_path, procs, phones):
    """The README's way to try outside calls: `zongji provider SITE` beside `zongji run SITE`."""
    folder = new_site(tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    edit(folder / "site.toml", "port = 5070", "port = %d" % free)
    prov = subprocess.Popen(
        [sys.executable, "-m", "zongji_companion", "provider", str(folder), "--ring", "0.3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "listening on 127.0.0.1:%d" % free in prov.stdout.readline()
        z = procs(folder, "--sip", "127.0.0.1:0", "--state", tmp_path / "state")
        server = z.started()
        z.wait_for("trunk registered at 127.0.0.1:%d" % free)
        ming = phones("202", folder, server)  # class staff: mobiles allowed
        ming.register()
        uri = "sip:013800138000@%s:%d" % server
        call_id = "out-202@127.0.0.1"
        ct = [("Content-Type", "application/sdp")]
        invite = ming.request("INVITE", uri, "013800138000", call_id, ct, body=SDP)
        ming.send(invite)
        challenge, _ = ming.final()
        assert challenge.status == 407
        ack = Request("ACK", invite.uri)
        ack.headers = [h for h in make_response(invite, 407).headers if h[0] in ("via", "from", "call-id")]
        ack.add("to", challenge.get("to"))
        ack.add("cseq", "%d ACK" % invite.cseq()[0])
        ack.add("max-forwards", 70)
        ming.send(ack)
        chal = pick_challenge(challenge.get_all("proxy-authenticate"))
        auth = respond(chal, "INVITE", uri, "202", ming.secret, "ab", 1)
        invite = ming.request("INVITE", uri, "013800138000", call_id, ct + [("Proxy-Authorization", auth)], body=SDP)
        ming.send(invite)
        answered, _ = ming.final()
        assert answered.status == 200, answered
        assert answered.body == SDP  # the provider echoed the phone's offer, through the gateway
    finally:
        prov.terminate()
        out, err = prov.communicate(timeout=10)
    assert "account shanghai registered" in out
    assert "call to 13800138000 from" in out and "call to 13800138000 answered" in out
    assert "Traceback" not in err

"""Helpers for the virtual-device tests: `zongji device run` (or the firmware's micropython
directly) as a process whose output lines are collected, and a plain-UDP softphone with digest.

    dev = VDevice.run(site, port, flash, board="esp32-wrover")   `zongji device run ...`
    dev = VDevice.boot(flash)        micropython main.py in a flash folder already prepared
    dev.wait_for("registered 201")   the first new line containing it (AssertionError if none)
    dev.stop()                       SIGINT, as Ctrl-C; the exit code ("stopped" seen)
    phone = Phone("201", secret, ("127.0.0.1", port)); phone.register()
"""

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

from zongji.sip.auth import pick_challenge, respond
from zongji.sip.message import Request, make_request, make_response
from zongji.sip.parser import parse
from zongji_companion import sitefiles, vdevice

SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
WAIT = 15  # seconds: the longest any single wait may take
LOOPBACK = "127.0.0.1"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def secret_of(site, number):
    for e in sitefiles.load(str(site)).extensions:
        if e["number"] == number:
            return e["secret"]
    raise AssertionError("no extension %s" % number)


class VDevice:
    """A process printing lines; a reader thread queues them."""

    def __init__(self, argv, cwd=None, env=None):
        self.argv = [str(a) for a in argv]
        self.proc = subprocess.Popen(
            self.argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
        self.lines = []
        self._q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    @classmethod
    def run(cls, site, port, flash, board="esp32-wrover", *more):
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
        env.pop("ZONGJI_DEBUG", None)
        argv = [sys.executable, "-m", "zongji_companion", "device", "run", site, "--board", board]
        argv += ["--sip", "%s:%d" % (LOOPBACK, port), "--flash", flash] + list(more)
        dev = cls(argv, env=env)
        dev.port = port
        return dev

    @classmethod
    def boot(cls, flash, heap=8000000):
        argv, env = vdevice.command(str(flash), heap)
        return cls(argv, cwd=str(flash), env=env)

    def _read(self):
        for line in self.proc.stdout:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def wait_for(self, needle, timeout=WAIT):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            try:
                line = self._q.get(timeout=max(0.01, min(left, 0.5)))
            except queue.Empty:
                line = None
            if line is not None:
                self.lines.append(line)
                if needle in line:
                    return line
                continue
            if left <= 0 or (self.proc.poll() is not None and self._q.empty()):
                raise AssertionError("%r not printed; output:\n%s" % (needle, "\n".join(self.lines)))

    def listening(self):
        return self.wait_for("listening on udp")

    def stop(self, sig=signal.SIGINT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=WAIT)
        finally:
            self.kill()
        self.wait_for("stopped")
        return code

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=WAIT)

    def rest(self):
        """Every line, including those not yet read (after the process ended)."""
        while True:
            try:
                line = self._q.get(timeout=2)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
        return self.lines


class Phone:
    """A softphone on 127.0.0.1 speaking plain SIP over its own UDP socket."""

    def __init__(self, number, secret, server):
        self.number = number
        self.secret = secret
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.addr = self.sock.getsockname()
        self.contact = "sip:%s@127.0.0.1:%d" % (number, self.addr[1])
        self.cseq = 0
        self.n = 0
        self.agent = "zongji-test-phone/%s" % number  # its REGISTERs' User-Agent (status shows it)

    def close(self):
        self.sock.close()

    def via(self):
        self.n += 1
        return "SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%s-%d-%d;rport" % (self.addr[1], self.number, self.n, id(self))

    def request(self, method, uri, to, call_id, headers=(), to_tag="", body=b""):
        self.cseq += 1
        return make_request(
            method,
            uri,
            "<sip:%s@127.0.0.1>;tag=from%s" % (self.number, self.number),
            "<sip:%s@127.0.0.1>%s" % (to, ";tag=" + to_tag if to_tag else ""),
            call_id,
            self.cseq,
            via=self.via(),
            contact="<%s>" % self.contact,
            headers=list(headers),
            body=body,
        )

    def send(self, msg, addr=None):
        self.sock.sendto(msg.to_bytes(), addr or self.server)

    def recv(self, want=None, timeout=WAIT):
        """The next message: a Response whose status passes `want`, or a Request whose method is
        `want`, skipping others."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                break
            msg = parse(data)
            if want is None:
                return msg
            if isinstance(msg, Request) and msg.method == want:
                return msg
            if not isinstance(msg, Request) and callable(want) and want(msg.status):
                return msg
        raise AssertionError("phone %s: no %r within %d s" % (self.number, want, timeout))

    def final(self):
        return self.recv(lambda status: status >= 200)

    def register(self, expires=600, secret=None):
        """REGISTER, answer the 401 with digest; the final answer to that."""
        uri = "sip:%s:%d" % self.server
        call_id = "reg-%s-%d@127.0.0.1" % (self.number, self.addr[1])
        ua = ("User-Agent", self.agent)
        self.send(self.request("REGISTER", uri, self.number, call_id, [("Expires", expires), ua]))
        challenge = self.final()
        if challenge.status != 401:
            return challenge
        chal = pick_challenge(challenge.get_all("www-authenticate"))
        auth = respond(chal, "REGISTER", uri, self.number, secret or self.secret, "c0ffee", 1)
        self.send(
            self.request("REGISTER", uri, self.number, call_id, [("Expires", expires), ("Authorization", auth), ua])
        )
        return self.final()

    def invite(self, number, sdp=None):
        """INVITE number, answering the 407 with digest: the INVITE sent with credentials."""
        uri = "sip:%s@%s:%d" % ((number,) + tuple(self.server))
        call_id = "call-%s-%s-%d@127.0.0.1" % (self.number, number, self.addr[1])
        body = sdp or SDP
        ct = [("Content-Type", "application/sdp")]
        first = self.request("INVITE", uri, number, call_id, ct, body=body)
        self.send(first)
        challenge = self.final()
        assert challenge.status == 407, challenge
        self.ack_failure(first, challenge)
        chal = pick_challenge(challenge.get_all("proxy-authenticate"))
        auth = respond(chal, "INVITE", uri, self.number, self.secret, "ab", 1)
        invite = self.request("INVITE", uri, number, call_id, ct + [("Proxy-Authorization", auth)], body=body)
        self.send(invite)
        return invite

    def ack_failure(self, invite, response):
        ack = Request("ACK", invite.uri)
        ack.headers = [h for h in make_response(invite, 407).headers if h[0] in ("via", "from", "call-id")]
        ack.add("to", response.get("to"))
        ack.add("cseq", "%d ACK" % invite.cseq()[0])
        ack.add("max-forwards", 70)
        self.send(ack)

    def answer(self, invite, status=200):
        """Answer a ringing INVITE (a 200 with our Contact and its Record-Routes)."""
        resp = make_response(invite, status, to_tag="tag" + self.number)
        resp.add("contact", "<%s>" % self.contact)
        for rr in invite.get_all("record-route"):
            resp.add("record-route", rr)
        self.send(resp)
        return resp

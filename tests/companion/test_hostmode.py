"""`zongji run` (host mode) as a real process on loopback: softphones register and call over
real UDP sockets, state survives a restart, signals stop it cleanly."""

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from _sitedirs import edit, new_site, run
from zongji.call.cdr import CdrLog
from zongji.sip.auth import pick_challenge, respond
from zongji.sip.message import Request, make_request, make_response
from zongji.sip.parser import parse
from zongji_companion import hostlog, hostmode, sitefiles

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="signals and loopback as on POSIX")

WAIT = 10  # seconds: the longest any single wait may take
LISTENING = re.compile(r"listening on udp (\S+):(\d+) ")
STOPPED = re.compile(r"^stopped$")


class Zongji:
    """A `zongji run ...` process; its output lines arrive in a queue read by a thread."""

    def __init__(self, *args, cwd=None, prelude=None):
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
        env.pop("ZONGJI_DEBUG", None)
        # prelude: Python run before the CLI in the same process (a test's shorter timings)
        cli = ["-m", "zongji_companion"]
        if prelude:
            cli = ["-c", prelude + "\nfrom zongji_companion.cli import main\nmain(prog_name='zongji')"]
        self.proc = subprocess.Popen(
            [sys.executable] + cli + ["run"] + [str(a) for a in args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            cwd=cwd,
            env=env,
        )
        self.lines = []
        self._q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def wait_for(self, needle, timeout=WAIT):
        """The first new output line containing `needle` (a str or compiled regex)."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            try:
                line = self._q.get(timeout=max(0.01, left))
            except queue.Empty:
                line = None
                left = 0
            if line is not None:
                self.lines.append(line)
                if needle.search(line) if hasattr(needle, "search") else needle in line:
                    return line
                continue
            if left <= 0 or self.proc.poll() is not None:
                raise AssertionError("%r not printed; output:\n%s" % (needle, "\n".join(self.lines)))

    def started(self):
        m = LISTENING.search(self.wait_for(LISTENING))
        self.addr = (m.group(1), int(m.group(2)))
        return self.addr

    def stop(self, sig=signal.SIGINT):
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=WAIT)
        finally:
            self.kill()
        self.wait_for(STOPPED)
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)


@pytest.fixture
def procs():
    started = []

    def start(*args, cwd=None, prelude=None):
        p = Zongji(*args, cwd=cwd, prelude=prelude)
        started.append(p)
        return p

    yield start
    bugs = []
    for p in started:
        p.kill()
        seen = list(p.lines)
        while True:  # what the reader thread got after the test stopped looking
            try:
                line = p._q.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
        bugs += [line for line in seen if "internal error" in line]
        p.proc.stdout.close()
    # a bug in the core is logged, not fatal, by design: so every test here looks for it
    assert not bugs, "host mode logged a bug: %s" % bugs


def secret_of(site, number):
    for e in sitefiles.load(site).extensions:
        if e["number"] == number:
            return e["secret"]
    raise AssertionError("no extension %s" % number)


class Phone:
    """A softphone on 127.0.0.1 speaking plain SIP over its own UDP socket."""

    def __init__(self, number, secret, server):
        self.number = number
        self.secret = secret
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(WAIT)
        self.addr = self.sock.getsockname()
        self.contact = "sip:%s@127.0.0.1:%d" % (number, self.addr[1])
        self.cseq = 0
        self.n = 0

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

    def recv(self, want=None):
        """The next message (a Response whose status matches `want`, or a Request with that
        method), skipping others; (message, raw bytes)."""
        end = time.monotonic() + WAIT
        while time.monotonic() < end:
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            data, _ = self.sock.recvfrom(65535)
            msg = parse(data)
            if want is None:
                return msg, data
            if isinstance(msg, Request) and msg.method == want:
                return msg, data
            if not isinstance(msg, Request) and callable(want) and want(msg.status):
                return msg, data
        raise AssertionError("phone %s: no %r within %d s" % (self.number, want, WAIT))

    def final(self):
        return self.recv(lambda status: status >= 200)

    def register(self, expires=600):
        """REGISTER, answer the 401 with digest; the 200 and the 401's raw bytes."""
        uri = "sip:%s:%d" % self.server
        call_id = "reg-%s-%d@127.0.0.1" % (self.number, self.addr[1])
        self.send(self.request("REGISTER", uri, self.number, call_id, [("Expires", expires)]))
        challenge, raw = self.final()
        assert challenge.status == 401, challenge
        chal = pick_challenge(challenge.get_all("www-authenticate"))
        auth = respond(chal, "REGISTER", uri, self.number, self.secret, "c0ffee", 1)
        self.send(self.request("REGISTER", uri, self.number, call_id, [("Expires", expires), ("Authorization", auth)]))
        ok, _ = self.final()
        assert ok.status == 200, ok
        return ok, raw


@pytest.fixture
def phones():
    made = []

    def make(number, site, server):
        p = Phone(number, secret_of(site, number), server)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


# ---------------------------------------------------------------- register, stop, restart


def test_registration_is_printed_saved_at_ctrl_c_and_restored(tmp_path, procs, phones):
    site = new_site(tmp_path)
    state = tmp_path / "state"
    z = procs(site, "--sip", "127.0.0.1:0", "--state", state)
    server = z.started()
    assert server[0] == "127.0.0.1"
    z.wait_for("register a softphone")
    lily = phones("201", site, server)
    lily.register()
    line = z.wait_for("registered 201")
    assert "registered 201 Lily 王丽 from 127.0.0.1:%d (%s)" % (lily.addr[1], lily.contact) in line
    saved = state / "registrations.json"
    end = time.monotonic() + WAIT
    while not saved.exists() and time.monotonic() < end:  # written within a second, not only at exit
        time.sleep(0.05)
    assert saved.exists()

    assert z.stop() == 0
    saved = json.loads(saved.read_text(encoding="utf-8"))
    assert [row[:2] for row in saved["bindings"]] == [["201", lily.contact]]
    assert not (state / "registrations.json.tmp").exists()

    again = procs(site, "--sip", "127.0.0.1:0", "--state", state)
    again.started()
    assert "restored 1 registration and 0 call records" in again.wait_for("restored")
    assert again.stop(signal.SIGTERM) == 0


# min_expires is 60 s; 10 s lifetimes let a test outlive a binding's first written expiry in seconds
FAST_EXPIRY = "from zongji.switch.registrar import Registrar\nRegistrar.min_expires = 1"


def test_a_phone_that_keeps_refreshing_survives_a_power_cut(tmp_path, procs, phones):
    # The issue: refreshes were never written, so the file's expiry ran out while the phone was
    # still refreshing. Here the phone refreshes 10 s bindings every second for 12 s, then the
    # switch dies without a goodbye write (SIGKILL, as a power cut) and comes back.
    site = new_site(tmp_path)
    state = tmp_path / "state"
    z = procs(site, "--sip", "127.0.0.1:0", "--state", state, prelude=FAST_EXPIRY)
    server = z.started()
    lily = phones("201", site, server)
    lily.register(expires=10)
    end = time.monotonic() + 12
    while time.monotonic() < end:
        time.sleep(1)
        ok, _ = lily.register(expires=10)
        assert ok.status == 200
    time.sleep(1.5)  # the lazy write lands within the shell's one-second save interval
    z.kill()

    again = procs(site, "--sip", "127.0.0.1:0", "--state", state, prelude=FAST_EXPIRY)
    server = again.started()
    assert "restored 1 registration" in again.wait_for("restored")
    # reachable without registering again: a call from 202 rings 201's socket
    ming = phones("202", site, server)
    ming.register()
    uri = "sip:201@%s:%d" % server
    invite = ming.request("INVITE", uri, "201", "call-202-201@127.0.0.1")
    ming.send(invite)
    challenge, _ = ming.final()
    assert challenge.status == 407
    auth = respond(pick_challenge(challenge.get_all("proxy-authenticate")), "INVITE", uri, "202", ming.secret, "ab", 1)
    ming.send(ming.request("INVITE", uri, "201", "call-202-201@127.0.0.1", [("Proxy-Authorization", auth)]))
    rung, _ = lily.recv("INVITE")
    assert rung.uri.user == "201" and rung.from_addr().uri.user == "202"
    again.kill()


def test_a_call_between_two_softphones_is_printed_and_recorded(tmp_path, procs, phones):
    site = new_site(tmp_path)
    state = tmp_path / "state"
    z = procs(site, "--sip", "127.0.0.1:0", "--state", state)
    server = z.started()
    lily, ming = phones("201", site, server), phones("202", site, server)
    lily.register()
    ming.register()
    z.wait_for("registered 202")

    # 201 calls 202: the INVITE is challenged (407), answered with credentials, then forked
    sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    uri = "sip:202@%s:%d" % server
    call_id = "call-201-202@127.0.0.1"
    ct = [("Content-Type", "application/sdp")]
    invite = lily.request("INVITE", uri, "202", call_id, ct, body=sdp)
    lily.send(invite)
    challenge, _ = lily.final()
    assert challenge.status == 407
    ack = Request("ACK", invite.uri)
    ack.headers = [h for h in make_response(invite, 407).headers if h[0] in ("via", "from", "call-id")]
    ack.add("to", challenge.get("to"))
    ack.add("cseq", "%d ACK" % invite.cseq()[0])
    ack.add("max-forwards", 70)
    lily.send(ack)
    auth = respond(pick_challenge(challenge.get_all("proxy-authenticate")), "INVITE", uri, "201", lily.secret, "ab", 1)
    invite = lily.request("INVITE", uri, "202", call_id, ct + [("Proxy-Authorization", auth)], body=sdp)
    lily.send(invite)

    rung, _ = ming.recv("INVITE")
    top = rung.vias()[0]
    assert (top.host, top.port) == server  # the switch's own address in its Via
    ok = make_response(rung, 200, to_tag="ming")
    ok.add("contact", "<%s>" % ming.contact)
    for rr in rung.get_all("record-route"):
        ok.add("record-route", rr)
    ok.add("content-type", "application/sdp")
    ok.body = sdp
    ming.send(ok)  # back to the top Via: the switch

    answered, _ = lily.recv(lambda status: status == 200)
    routes = list(reversed(answered.get_all("record-route")))
    target = answered.contacts()[0].uri
    tag = answered.to_addr().tag

    def in_dialog(method):
        req = lily.request(method, target, "202", call_id, [("Route", r) for r in routes], to_tag=tag)
        if method == "ACK":
            req.set("cseq", "%d ACK" % invite.cseq()[0])
        return req

    lily.send(in_dialog("ACK"))
    ming.recv("ACK")
    lily.send(in_dialog("BYE"))
    bye, _ = ming.recv("BYE")
    ming.send(make_response(bye, 200))
    assert lily.final()[0].status == 200

    line = z.wait_for("call 201 -> 202")
    assert "call 201 -> 202: answered" in line and " s" in line
    assert z.stop() == 0
    log = CdrLog()
    log.load((state / "cdr.jsonl").read_bytes())
    (record,) = log.records()
    assert (record["from"], record["to"], record["outcome"], record["status"]) == ("201", "202", "answered", 200)
    assert abs(record["start"] - time.time()) < 120  # wall-clock seconds, not monotonic ms

    table = run("cdr", site, "--state", state)
    assert table.exit_code == 0 and "answered" in table.output and "1 call" in table.output


# ---------------------------------------------------------------- addresses and ports


def test_port_in_use_names_another(tmp_path):
    site = new_site(tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "zongji_companion", "run", str(site), "--sip", "127.0.0.1:%d" % port],
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
        )
    assert out.returncode == 1
    assert "zongji: udp 127.0.0.1:%d is in use: pick another with --sip 127.0.0.1:" % port in out.stderr
    suggested = int(out.stderr.strip().rsplit(":", 1)[1])
    assert suggested != port


def test_wildcard_bind_advertises_a_real_address(tmp_path, procs, phones):
    site = new_site(tmp_path)
    z = procs(site, "--sip", "0.0.0.0:0", "--state", tmp_path / "state")
    host, port = z.started()
    assert host not in ("0.0.0.0", "::")
    assert "phones are told %s" % host in z.wait_for("bound to every interface")
    lily = phones("201", site, ("127.0.0.1", port))
    _, raw = lily.register()  # the 401 comes back through the wildcard socket
    assert b"0.0.0.0" not in raw
    z.wait_for("registered 201")
    assert z.stop() == 0


def test_advertise_overrides_the_guess():
    assert hostmode.advertise_address("0.0.0.0", "pbx.branch.lan") == "pbx.branch.lan"
    assert hostmode.advertise_address("127.0.0.1") == "127.0.0.1"
    assert hostmode.advertise_address("0.0.0.0") not in ("0.0.0.0", "")
    assert hostmode.advertise_address("::") not in ("::", "")


def test_bad_sip_address_is_a_usage_error(tmp_path):
    site = new_site(tmp_path)
    for bad in ("127.0.0.1:http", "127.0.0.1:70000", ":5060"):
        result = run("run", site, "--sip", bad)
        assert result.exit_code == 2 and "--sip" in result.output


# ---------------------------------------------------------------- sites and state


def test_a_site_with_errors_is_refused(tmp_path):
    site = new_site(tmp_path)
    edit(site / "site.toml", 'members = ["201", "202", "203"]', 'members = ["201", "999"]')
    result = run("run", site, "--sip", "127.0.0.1:0")
    assert result.exit_code == 1
    assert "fix them first" in result.output


def test_without_a_site_it_runs_the_embedded_example_once(tmp_path, procs):
    z = procs("--sip", "127.0.0.1:0", cwd=tmp_path)
    assert ".zongji-state/example" in z.wait_for("built-in example branch")
    z.started()
    assert z.stop() == 0
    staff = tmp_path / ".zongji-state" / "example" / "staff.csv"
    first = staff.read_bytes()
    z = procs("--sip", "127.0.0.1:0", cwd=tmp_path)
    z.started()
    assert z.stop() == 0
    assert staff.read_bytes() == first  # written once: the secrets phones use stay


def test_damaged_state_is_a_warning_not_a_crash(tmp_path, procs):
    site = new_site(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    (state / "registrations.json").write_bytes(b'{"format":1,"kind":"zongji-regis')  # torn
    log = CdrLog()
    log.add({"start": 1764060000, "end": 1764060040, "from": "201", "to": "600", "outcome": "busy", "status": 486})
    (state / "cdr.jsonl").write_bytes(log.dump() + b'{"start":17640')
    z = procs(site, "--sip", "127.0.0.1:0", "--state", state)
    assert "registrations.json" in z.wait_for("starting with no registrations")
    assert "skipped 1 damaged line" in z.wait_for("cdr.jsonl")
    z.started()
    assert "restored 0 registrations and 1 call record" in z.wait_for("restored")
    assert z.stop() == 0
    assert CdrLog().load((state / "cdr.jsonl").read_bytes()) == 1  # rewritten clean


def test_json_events_are_one_object_per_line(tmp_path, procs, phones):
    site = new_site(tmp_path)
    z = procs(site, "--sip", "127.0.0.1:0", "--state", tmp_path / "state", "--json-events")
    started = json.loads(z.wait_for('"started"'))
    assert started["host"] == "127.0.0.1" and started["extensions"] == 12
    lily = phones("201", site, ("127.0.0.1", started["port"]))
    lily.register()
    event = json.loads(z.wait_for('"event": "registered"'))  # not the trunk's "state": "registered"
    assert event["number"] == "201" and event["contact"] == lily.contact
    assert event["source"] == ["127.0.0.1", lily.addr[1]]
    z.proc.send_signal(signal.SIGINT)
    assert z.proc.wait(timeout=WAIT) == 0
    assert json.loads(z.wait_for('"stopped"')) == {"event": "stopped"}


# ---------------------------------------------------------------- zongji cdr


def test_cdr_lists_calls_as_a_table_and_as_json(tmp_path):
    site = new_site(tmp_path)
    state = site / ".zongji-state"
    state.mkdir()
    log = CdrLog()
    t0 = 1764060000  # 2025-11-25 08:40 UTC, 16:40 in Shanghai
    log.add({"start": t0, "answer": t0 + 5, "end": t0 + 40, "from": "201", "to": "600", "outcome": "answered",
             "status": 200, "route": "group 600 -> 202"})  # fmt: skip
    log.add({"start": t0 + 60, "end": t0 + 90, "from": "203", "to": "204", "outcome": "no-answer", "status": 480})
    (state / "cdr.jsonl").write_bytes(log.dump())

    table = run("cdr", site)
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert lines[0].startswith("start UTC+08:00")  # labelled: the same clock as the log lines
    assert lines[1].split() == ["2025-11-25", "16:40", "201", "600", "answered", "200", "0:35", "group", "600",
                                "->", "202"]  # fmt: skip
    assert "no-answer" in lines[2] and lines[-1] == "2 calls"

    out = json.loads(run("cdr", site, "--json", "--last", "1").output)
    assert [r["to"] for r in out["records"]] == ["204"] and out["skipped"] == 0


def test_cdr_with_no_calls_yet(tmp_path):
    site = new_site(tmp_path)
    result = run("cdr", site)
    assert result.exit_code == 0 and "no calls recorded" in result.output


# ---------------------------------------------------------------- events in words


def test_events_read_as_sentences():
    from zongji.switch import events

    class Site:
        def extension(self, number):
            return type("E", (), {"name": "Lily 王丽"})() if number == "202" else None

    s = Site()
    banned = events.Banned("127.0.0.2", 301000, "5 users failed")
    assert hostlog.describe(banned, s, 1000) == "banned 127.0.0.2 for 300 s: 5 users failed"
    locked = events.Locked("127.0.0.2", "202", 301000, "wrong password")
    assert hostlog.describe(locked, s, 1000) == "locked 202 Lily 王丽 at 127.0.0.2 for 300 s: wrong password"
    record = {"from": "201", "to": "600", "outcome": "answered", "route": "group 600 -> 202 (trunk 1380)",
              "duration": 35, "status": 200, "reason": "", "by": "202"}  # fmt: skip
    call = events.CallEnded(record)
    assert hostlog.describe(call, s, 0) == "call 201 -> 600: answered by 202 Lily 王丽, 35 s"
    busy = events.CallEnded(dict(record, outcome="busy", status=486, duration=0))
    assert hostlog.describe(busy, s, 0) == "call 201 -> 600: busy (486)"
    down = events.CallEnded(
        dict(record, outcome="failed", status=503, duration=0, reason="the provider is unavailable")
    )
    assert hostlog.describe(down, s, 0) == "call 201 -> 600: failed (503): the provider is unavailable"
    reg = events.Registration("registered", "202", "sip:202@10.0.0.5:5062;x=\x1b[31m", ("10.0.0.5", 5062))
    assert hostlog.describe(reg, s, 0) == "registered 202 Lily 王丽 from 10.0.0.5:5062 (sip:202@10.0.0.5:5062;x=?[31m)"
    assert hostlog.describe(events.Listening("127.0.0.1", 5060), s, 0) is None
    assert hostlog.as_json(banned, 1000)["seconds"] == 300 and hostlog.as_json(call, 0)["outcome"] == "answered"

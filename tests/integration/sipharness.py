"""Helpers for the integration tests: real SIP peers (SIPp, baresip, Kamailio, SIPVicious)
against `zongji run` (host mode) on loopback.

Everything here is bounded: every subprocess has a timeout, every wait has a deadline, every
process started is stopped (SIGINT/SIGTERM, then SIGKILL to the process group it leads) by the
fixture that started it. Traffic stays on 127.0.0.0/8.

    port = free_udp_port()                       a UDP port free on 127.0.0.1 now
    tool("sipp")                                 its path; skips the test, or fails it under CI=true
    site = Site.create(tmp_path / "site")        `zongji init` + the secrets it wrote
    hm = HostMode.start(site, port, state_dir, logdir)    `zongji run SITE --sip 127.0.0.1:PORT`
    hm.wait_for(r"registered 201\\b", 10)
    res = sipp("uac_call.xml", hm.addr, workdir, "name", calls=10, inf=csv, service="202")
    proc = Proc("name", argv, logdir)            any background program, output collected
"""

import csv
import io
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SIPP_DIR = HERE / "sipp"
PROVIDER_CFG = HERE / "kamailio" / "provider.cfg"
LOOPBACK = "127.0.0.1"
IN_CI = os.environ.get("CI", "").lower() == "true"

# Debian installs kamailio in /usr/sbin, not on a normal user's PATH.
_EXTRA_PATH = ("/usr/sbin", "/sbin", "/usr/local/sbin")


# ---------------------------------------------------------------- tools


def tool(name):
    """Path of an external program; missing -> skip, or fail under CI=true (.ci/run installs it)."""
    path = shutil.which(name) or shutil.which(name, path=os.pathsep.join(_EXTRA_PATH))
    if path is None:
        why = "%s not found (Debian: apt-get install %s; .ci/run installs it)" % (name, _PACKAGE.get(name, name))
        if IN_CI:
            pytest.fail(why + " - CI=true: the integration tests require it")
        pytest.skip(why)
    return path


_PACKAGE = {"sipp": "sip-tester", "svwar": "sipvicious", "svcrack": "sipvicious"}


# ---------------------------------------------------------------- ports

_given = set()
_ports_lock = threading.Lock()


def _can_bind(port, host, tcp):
    kinds = (socket.SOCK_DGRAM, socket.SOCK_STREAM) if tcp else (socket.SOCK_DGRAM,)
    for kind in kinds:
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_udp_port(span=1, tcp=False, host=LOOPBACK):
    """A UDP port on `host` free right now, with the `span - 1` ports after it free too (and
    TCP as well when `tcp`: baresip listens on UDP+TCP at PORT and TLS at PORT+1). Never the
    same port twice in one test run, so two peers of one test cannot collide."""
    with _ports_lock:
        for _ in range(200):
            base = random.randrange(20000, 60000 - span)
            block = range(base, base + span)
            if any(p in _given for p in block):
                continue
            if all(_can_bind(p, host, tcp) for p in block):
                _given.update(block)
                return base
    raise RuntimeError("no free block of %d UDP ports on %s" % (span, host))


# ---------------------------------------------------------------- processes


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Proc:
    """A background program whose stdout+stderr are collected line by line (and copied to
    logdir/name.log). Started in its own session, so stop() can end it and anything it forked
    by its process group id."""

    def __init__(self, name, argv, logdir, cwd=None, env=None, stdin=False):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(logdir) / (name + ".log")
        self._lines = []
        self._cond = threading.Condition()
        self._log = open(self.log_path, "w", encoding="utf-8", errors="replace")
        self._log.write("$ %s\n" % " ".join(self.argv))
        self._log.flush()
        try:
            self.p = subprocess.Popen(
                self.argv,
                cwd=str(cwd or logdir),
                env=env,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
            )
        except BaseException:
            self._log.close()
            raise
        self._reader = threading.Thread(target=self._read, name="read-" + name, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.p.stdout:
            line = _ANSI.sub("", line.rstrip("\r\n"))  # baresip colours its errors
            with self._cond:
                self._lines.append(line)
                self._cond.notify_all()
            self._log.write(line + "\n")
            self._log.flush()
        with self._cond:
            self._cond.notify_all()

    @property
    def pid(self):
        return self.p.pid

    def running(self):
        return self.p.poll() is None

    def lines(self):
        """Everything printed so far, one string per line."""
        with self._cond:
            return list(self._lines)

    def text(self):
        return "\n".join(self.lines())

    def tail(self, n=40):
        return "\n".join(self.lines()[-n:])

    def matches(self, pattern):
        rx = re.compile(pattern)
        return [m for m in (rx.search(line) for line in self.lines()) if m]

    def wait_for(self, pattern, timeout, since=0):
        """The first match of `pattern` in a line at index >= since, waiting up to `timeout` s.
        AssertionError (with the output's tail) if it does not come or the program exits."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        i = since
        with self._cond:
            while True:
                while i < len(self._lines):
                    m = rx.search(self._lines[i])
                    if m:
                        return m
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or (not self.running() and not self._reader.is_alive()):
                    break
                self._cond.wait(min(left, 0.2))
        state = "still running" if self.running() else "exited with %s" % self.p.returncode
        raise AssertionError(
            "%s: no line matching %r within %.0f s (%s); last output:\n%s"
            % (self.name, pattern, timeout, state, self.tail())
        )

    def wait_count(self, pattern, n, timeout):
        """Wait up to `timeout` s until at least `n` lines match `pattern`; the matches.
        AssertionError with the output's tail if they do not all come."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.matches(pattern)
            if len(found) >= n or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        if len(found) < n:
            raise AssertionError(
                "%s: %d lines matching %r within %.0f s, expected %d; last output:\n%s"
                % (self.name, len(found), pattern, timeout, n, self.tail())
            )
        return found

    def send(self, text):
        """Write to the program's stdin (started with stdin=True)."""
        self.p.stdin.write(text)
        self.p.stdin.flush()

    def stop(self, sig=signal.SIGINT, grace=5.0):
        """Ask it to stop with `sig`; after `grace` s SIGKILL its process group. Idempotent."""
        if self.running():
            try:
                os.kill(self.p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # the group it leads (start_new_session): children it forked (kamailio) go too
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL did not work
            pass
        self._reader.join(5)
        for f in (self.p.stdin, self.p.stdout):
            try:
                if f:
                    f.close()
            except OSError:
                pass
        if not self._log.closed:
            self._log.close()
        return self.p.returncode


def run(argv, timeout, cwd=None, env=None):
    """Run a program to completion (bounded): CompletedProcess with text stdout/stderr."""
    try:
        return subprocess.run(
            [str(a) for a in argv],
            cwd=str(cwd) if cwd else None,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode("utf-8", "replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        raise AssertionError("%s did not finish within %s s; output:\n%s" % (argv[0], timeout, out[-3000:])) from None


# ---------------------------------------------------------------- the zongji command


def zongji_env():
    """Environment for `python -m zongji_companion`: this checkout's code first, unbuffered."""
    env = dict(os.environ)
    paths = [str(REPO / "firmware"), str(REPO / "companion")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def zongji_argv(*args):
    return [sys.executable, "-m", "zongji_companion"] + [str(a) for a in args]


STAFF_FIELDS = ("number", "name", "department", "secret", "mobile", "class", "follow_me", "pin")


class Site:
    """A site folder written by `zongji init`, with the secrets it drew."""

    def __init__(self, path):
        self.path = Path(path)

    @classmethod
    def create(cls, path, trunk_port=None):
        """`zongji init PATH`. The [trunk] is moved from the template's 127.0.0.1:5070 to
        `trunk_port` (default: a fresh free port nobody listens on), so that a test never
        registers to whatever else runs on 5070 of this machine."""
        res = run(zongji_argv("init", path), timeout=60, env=zongji_env())
        assert res.returncode == 0, "zongji init failed (%d):\n%s%s" % (res.returncode, res.stdout, res.stderr)
        site = cls(path)
        site.set_trunk(port=trunk_port or free_udp_port())
        return site

    @property
    def toml(self):
        return self.path / "site.toml"

    @property
    def staff_csv(self):
        return self.path / "staff.csv"

    def rows(self):
        """The staff CSV as a list of dicts (the BOM `zongji init` writes is skipped)."""
        with open(self.staff_csv, encoding="utf-8-sig", newline="") as f:
            return list(csv.DictReader(f))

    def secrets(self):
        """number -> SIP secret, for every row that has one."""
        return {r["number"]: r["secret"] for r in self.rows() if r.get("secret")}

    def secret(self, number):
        return self.secrets()[number]

    def row(self, number):
        for r in self.rows():
            if r["number"] == number:
                return r
        raise KeyError(number)

    def add_extensions(self, first, count, cls="staff", prefix="load"):
        """Append `count` extensions first..first+count-1 (class `cls`) with known secrets
        ("<prefix>-<number>-<8 hex>"); returns {number: secret}."""
        rows = self.rows()
        header = list(rows[0].keys()) if rows else list(STAFF_FIELDS)
        added = {}
        for n in range(first, first + count):
            number = str(n)
            secret = "%s-%s-%08x" % (prefix, number, random.getrandbits(32))
            added[number] = secret
            rows.append(
                {
                    "number": number,
                    "name": "Load Tester %s" % number,
                    "department": "Load",
                    "secret": secret,
                    "mobile": "",
                    "class": cls,
                    "follow_me": "",
                    "pin": "",
                }
            )
        out = io.StringIO()
        w = csv.DictWriter(out, fieldnames=header, lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        with open(self.staff_csv, "w", encoding="utf-8-sig", newline="") as f:
            f.write(out.getvalue())
        return added

    def set_trunk(self, host=None, port=None, username=None, password=None):
        """Rewrite keys of the [trunk] table in site.toml (the template's layout: one `key =
        value` per line)."""
        text = self.toml.read_text(encoding="utf-8")
        head, sep, rest = text.partition("\n[trunk]\n")
        assert sep, "site.toml has no [trunk] table"
        body, nxt, tail = rest.partition("\n[")
        for key, value in (("host", host), ("port", port), ("username", username), ("password", password)):
            if value is None:
                continue
            literal = str(value) if isinstance(value, int) else '"%s"' % value
            body, n = re.subn(r"(?m)^%s\s*=.*$" % key, "%s = %s" % (key, literal), body)
            assert n == 1, "site.toml [trunk] has no single %s line" % key
        self.toml.write_text(head + sep + body + nxt + tail, encoding="utf-8")

    def set_digest(self, algorithms):
        """Set `[staff] digest` (the digest algorithms offered to phones, preferred first)."""
        text = self.toml.read_text(encoding="utf-8")
        head, sep, rest = text.partition("\n[staff]\n")
        assert sep, "site.toml has no [staff] table"
        body, nxt, tail = rest.partition("\n[")
        line = "digest = [%s]" % ", ".join('"%s"' % a for a in algorithms)
        body, n = re.subn(r"(?m)^digest\s*=.*$", line, body)
        if n == 0:
            body = body.rstrip("\n") + "\n" + line + "\n"
        self.toml.write_text(head + sep + body + nxt + tail, encoding="utf-8")

    def trunk(self):
        """The [trunk] table as read back (host, port, username, password)."""
        import tomllib

        with open(self.toml, "rb") as f:
            return tomllib.load(f)["trunk"]

    def check(self):
        """`zongji check`: assert the site (after our edits) has no errors."""
        res = run(zongji_argv("check", self.path), timeout=60, env=zongji_env())
        assert res.returncode == 0, "zongji check failed:\n%s%s" % (res.stdout, res.stderr)


class HostMode(Proc):
    """`zongji run SITE --sip 127.0.0.1:PORT --state DIR` with what it printed.

    Lines it prints (companion/zongji_companion/hostmode.py): a banner "... listening on udp
    HOST:PORT ...", then one per event, prefixed with the time: "registered 201 NAME from
    IP:PORT (contact)", "banned IP for N s", "call 201 -> 202: answered by 202 NAME, 3 s",
    "trunk registered: ...". stop() sends SIGINT: it flushes its state and prints "stopped".
    """

    LISTENING = r"listening on udp (\S+):(\d+)"

    @classmethod
    def start(cls, site, port, state_dir, logdir, timeout=20.0, limits=None):
        """limits: None (the default, "host") or "device" (`--limits device`: the ESP32's tables)."""
        argv = zongji_argv("run", site.path, "--sip", "%s:%d" % (LOOPBACK, port), "--state", state_dir)
        if limits is not None:
            argv += ["--limits", limits]
        hm = cls("zongji-run-%d" % port, argv, logdir, env=zongji_env())
        hm.port = port
        hm.addr = (LOOPBACK, port)
        try:
            m = hm.wait_for(cls.LISTENING, timeout)
        except AssertionError:
            hm.stop()
            raise
        assert int(m.group(2)) == port, "zongji run listens on %s, not the port asked" % m.group(0)
        return hm

    def registered(self):
        """Extensions with a "registered N ..." line so far, in order (repeats kept)."""
        return [m.group(1) for m in self.matches(r"(?:^|\s)registered (\d+)\b")]

    def calls(self):
        """The call record lines: (from, to, rest) per "call A -> B: ..." line."""
        return [(m.group(1), m.group(2), m.group(3)) for m in self.matches(r"(?:^|\s)call (\S+) -> (\S+): (.*)$")]

    def bans(self):
        """The source addresses of "banned IP for N s" lines."""
        return [m.group(1) for m in self.matches(r"(?:^|\s)banned (\S+) for \d+ s")]

    def problems(self):
        """Lines that point at a bug in the switch or the shell."""
        return [ln for ln in self.lines() if "internal error" in ln or "Traceback" in ln]


class VirtualDevice(HostMode):
    """`zongji device run SITE --board NAME --sip 127.0.0.1:PORT --flash DIR`: the firmware on the
    MicroPython unix port. It prints what host mode prints, in the device's shorter words
    (firmware/zongji/shell/device.py describe): "registered N from IP:PORT (contact)", "call A ->
    B: answered by B, 3 s", "banned IP for N s: ...". stop() sends SIGINT, which `device run`
    passes on once: the device saves its state and prints "stopped"."""

    @classmethod
    def start(cls, site, port, flash_dir, logdir, timeout=60.0, board="esp32-wrover"):
        argv = zongji_argv("device", "run", site.path, "--board", board, "--sip", "%s:%d" % (LOOPBACK, port))
        dev = cls("zongji-device-%d" % port, argv + ["--flash", flash_dir], logdir, env=zongji_env())
        dev.port = port
        dev.addr = (LOOPBACK, port)
        try:
            m = dev.wait_for(cls.LISTENING, timeout)
        except AssertionError:
            dev.stop()
            raise
        assert int(m.group(2)) == port, "zongji device run listens on %s, not the port asked" % m.group(0)
        return dev


# ---------------------------------------------------------------- SIP probing


def sip_options(addr, timeout=1.0, local_ip=LOOPBACK):
    """Send one OPTIONS to addr over UDP; the status code of the answer, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((local_ip, 0))
        s.settimeout(timeout)
        lport = s.getsockname()[1]
        tag = "%08x" % random.getrandbits(32)
        msg = (
            "OPTIONS sip:%s:%d SIP/2.0\r\n"
            "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-probe-%s;rport\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sip:probe@%s>;tag=%s\r\n"
            "To: <sip:%s:%d>\r\n"
            "Call-ID: probe-%s@%s\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        ) % (addr[0], addr[1], local_ip, lport, tag, local_ip, tag, addr[0], addr[1], tag, local_ip)
        s.sendto(msg.encode(), tuple(addr))
        data, _ = s.recvfrom(65535)
        m = re.match(rb"SIP/2\.0 (\d{3}) ", data)
        return int(m.group(1)) if m else None
    except OSError:
        return None
    finally:
        s.close()


def wait_sip_ready(addr, timeout=10.0):
    """Poll with OPTIONS until addr answers (any status); AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sip_options(addr, timeout=0.5) is not None:
            return
        time.sleep(0.1)
    raise AssertionError("nothing answers SIP OPTIONS on %s:%d within %.0f s" % (addr[0], addr[1], timeout))


# ---------------------------------------------------------------- SIPp


class SippResult:
    """What a SIPp run did: exit code (checked with SIPp 3.6.1: 0 every call succeeded, 1 some
    failed, 97 stopped early (e.g. -timeout without -timeout_error), 99 no call processed, 255
    fatal error or -timeout reached with -timeout_error, 254 could not bind a socket), the
    final line of its -trace_stat CSV as a dict (cumulative counters end in "(C)"), its error
    log (-trace_err: the unexpected messages) and stderr."""

    def __init__(self, name, returncode, stats, errors, stderr, argv):
        self.name = name
        self.returncode = returncode
        self.stats = stats
        self.errors = errors
        self.stderr = stderr
        self.argv = argv

    def _n(self, key):
        try:
            return int(self.stats.get(key, "0") or 0)
        except ValueError:
            return 0

    @property
    def successful(self):
        return self._n("SuccessfulCall(C)")

    @property
    def failed(self):
        return self._n("FailedCall(C)")

    @property
    def created(self):
        return self._n("TotalCallCreated")

    @property
    def unexpected(self):
        return self._n("FailedUnexpectedMessage(C)")

    @property
    def timeouts(self):
        return self._n("FailedTimeoutOnRecv(C)") + self._n("FailedMaxUDPRetrans(C)")

    @property
    def retransmissions(self):
        return self._n("Retransmissions(C)")

    def summary(self):
        return "%s: exit %s, %d created, %d successful, %d failed (%d unexpected message, %d timeouts), %d retrans" % (
            self.name,
            self.returncode,
            self.created,
            self.successful,
            self.failed,
            self.unexpected,
            self.timeouts,
            self.retransmissions,
        )

    def explain(self):
        """summary + stderr + the first unexpected messages: for assertion messages."""
        text = "%s\n$ %s\nstderr: %s\nerrors: %s" % (
            self.summary(),
            " ".join(self.argv),
            self.stderr.strip()[-1500:] or "-",
            self.errors.strip()[:3000] or "-",
        )
        if "createAuthHeader" in self.stderr + self.errors:
            text += (
                "\nhint: SIPp 3.6.1 computes Digest MD5 (and AKAv1-MD5) only, from the FIRST "
                "WWW-Authenticate / Proxy-Authenticate header of the 401/407: the switch must "
                "list its MD5 challenge first"
            )
        return text


def write_injection(path, rows, order="SEQUENTIAL"):
    """A SIPp injection CSV: first line the order, then `;`-separated fields per row."""
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write(order + "\n")
        for row in rows:
            f.write(";".join(str(x) for x in row) + "\n")
    return path


def sipp_argv(
    scenario,
    remote,
    workdir,
    name,
    calls,
    rate=10,
    inf=None,
    service=None,
    local_port=None,
    local_ip=LOOPBACK,
    duration_ms=0,
    timeout_s=30,
    recv_timeout_ms=10000,
    behaviors="all",
    limit=None,
    trace_msg=False,
    extra=(),
):
    """The command line for one bounded SIPp run; see sipp() / SippServer."""
    workdir = Path(workdir)
    path = Path(scenario)
    if not path.is_absolute():
        path = SIPP_DIR / path
    argv = [tool("sipp")]
    if remote is not None:
        argv.append("%s:%d" % tuple(remote))
    media = free_udp_port(span=4)  # -mp: audio on PORT, video on PORT+2
    argv += [
        "-sf", path,
        "-i", local_ip,
        "-bind_local",  # send from / listen on local_ip only, not every interface
        "-p", local_port or free_udp_port(),
        "-mp", media,
        "-cp", free_udp_port(),
        "-m", calls,
        "-r", rate,
        "-d", duration_ms,
        "-nostdin",
        "-timeout", "%ds" % timeout_s,
        "-timeout_error",
        "-recv_timeout", recv_timeout_ms,
        "-default_behaviors", behaviors,
        "-trace_err", "-error_file", workdir / (name + "_errors.log"),
        "-trace_stat", "-stf", workdir / (name + "_stats.csv"), "-fd", "1",
        "-trace_screen", "-screen_file", workdir / (name + "_screen.log"),
    ]  # fmt: skip
    if trace_msg:
        argv += ["-trace_msg", "-message_file", workdir / (name + "_messages.log")]
    if limit is not None:
        argv += ["-l", limit]
    if inf is not None:
        argv += ["-inf", inf]
    if service is not None:
        argv += ["-s", service]
        if remote is not None and "-auth_uri" not in extra:
            # SIPp's digest uri is "sip:HOST:PORT" unless told; the switch checks that credentials
            # name the request's own Request-URI (RFC 2617 3.2.2.5), sip:SERVICE@HOST:PORT here,
            # as real phones' do
            argv += ["-auth_uri", "%s@%s:%d" % ((service,) + tuple(remote))]
    argv += list(extra)
    return [str(a) for a in argv]


def _read_result(name, workdir, returncode, stderr, argv):
    workdir = Path(workdir)
    stats = {}
    stat_path = workdir / (name + "_stats.csv")
    if stat_path.exists():
        rows = [ln for ln in stat_path.read_text(errors="replace").splitlines() if ln.strip()]
        if len(rows) >= 2:
            header = rows[0].rstrip(";").split(";")
            values = rows[-1].rstrip(";").split(";")
            stats = dict(zip(header, values))
    err_path = workdir / (name + "_errors.log")
    errors = err_path.read_text(errors="replace") if err_path.exists() else ""
    return SippResult(name, returncode, stats, errors, stderr, argv)


def sipp(scenario, remote, workdir, name, calls, timeout_s=30, **kw):
    """Run a SIPp client scenario to the end (at most timeout_s + 15 s) -> SippResult."""
    argv = sipp_argv(scenario, remote, workdir, name, calls, timeout_s=timeout_s, **kw)
    res = run(argv, timeout=timeout_s + 15, cwd=workdir)
    return _read_result(name, workdir, res.returncode, res.stderr, argv)


class SippServer(Proc):
    """A SIPp UAS scenario in the background (server mode: no remote), on a fixed port."""

    @classmethod
    def start(cls, scenario, workdir, name, calls, local_port, timeout_s=60, **kw):
        argv = sipp_argv(scenario, None, workdir, name, calls, local_port=local_port, timeout_s=timeout_s, **kw)
        srv = cls(name, argv, workdir)
        srv.workdir = Path(workdir)
        srv.timeout_s = timeout_s
        srv.port = local_port
        # SIPp has no "ready" line: wait for its socket to be taken
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _can_bind(local_port, LOOPBACK, False) and srv.running():
            time.sleep(0.05)
        if not srv.running():
            srv.stop()
            raise AssertionError("%s exited at start (%s):\n%s" % (name, srv.p.returncode, srv.text()))
        return srv

    def finish(self, timeout):
        """Wait for it to end (after its -m calls) -> SippResult; stops it if it does not."""
        try:
            code = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop(sig=signal.SIGUSR1, grace=3)  # SIGUSR1: SIPp's soft exit
            code = self.p.returncode
        self.stop()
        return _read_result(self.name, self.workdir, code, self.text()[-2000:], self.argv)


# ---------------------------------------------------------------- Kamailio (the trunk provider)


class Provider(Proc):
    """tests/integration/kamailio/provider.cfg on 127.0.0.1:port: the SIP provider. Lines of
    interest start with "PROVIDER " (see the cfg)."""

    @classmethod
    def start(cls, port, workdir, user, password, far_end_port, timeout=15.0):
        rundir = Path(workdir) / "kamailio"
        rundir.mkdir(parents=True, exist_ok=True)
        argv = [
            tool("kamailio"),
            "-f", PROVIDER_CFG,
            "-DD", "-E",          # no daemon, log to stderr
            "-T",                 # no TCP
            "-n", "1",            # one UDP worker
            "-m", "32", "-M", "8",
            "-l", "udp:%s:%d" % (LOOPBACK, port),
            "-Y", rundir, "-w", rundir, "-P", rundir / "kamailio.pid",
            "-A", 'PROVIDER_USER="%s"' % user,
            "-A", 'PROVIDER_PASSWORD="%s"' % password,
            "-A", 'FAR_END="sip:%s:%d"' % (LOOPBACK, far_end_port),
        ]  # fmt: skip
        prov = cls("kamailio", argv, workdir)
        prov.port = port
        prov.addr = (LOOPBACK, port)
        try:
            wait_sip_ready(prov.addr, timeout)
        except AssertionError as e:
            prov.stop(sig=signal.SIGTERM)
            raise AssertionError("%s\n%s" % (e, prov.tail())) from None
        return prov

    def registrations(self):
        """(user, source) of every authenticated REGISTER."""
        return [(m.group(1), m.group(2)) for m in self.matches(r"PROVIDER REGISTER ok user=(\S+) to=\S* from (\S+)")]

    def invites(self):
        """(dialed user part, auth user) of every authenticated INVITE it relayed."""
        return [(m.group(1), m.group(2)) for m in self.matches(r"PROVIDER INVITE ok to=(\S*) from=\S* user=(\S+)")]

    def received_invites(self):
        """(dialed user part, From user) of every INVITE that arrived, challenged or not."""
        return [(m.group(1), m.group(2)) for m in self.matches(r"PROVIDER INVITE received to=(\S*) from=(\S*)")]


# ---------------------------------------------------------------- baresip


BARESIP_MODULES = ("stdio.so", "g711.so", "ausine.so", "aufile.so")


class Baresip(Proc):
    """A headless baresip 1.0.0: commands on stdin (/dial, /hangup, /quit), no audio device.

    Its source is the `ausine` module (a 440 Hz tone; it only does 48 kHz stereo, baresip
    resamples to PCMU 8 kHz), there is no player. With `rtp_stats yes` it prints, when a call
    ends, a table whose "packets:" row is Transmit / Receive counts: that is how a test sees
    RTP flow both ways. One config folder per instance (config, accounts, contacts).
    UDP+TCP on listen_port and TLS on listen_port+1 are taken: use free_udp_port(2, tcp=True).
    """

    REGISTERED = r"\{\d+/UDP/v4\} 200 OK"
    REGISTER_FAILED = r"Register: .*$"
    ESTABLISHED = r"Call established"
    RTP_IN = r"incoming rtp for 'audio' established"
    # the RTP table is printed when a call object goes away, on either side, however it ended
    PACKETS = r"^packets:\s+(\d+)\s+(\d+)"
    CLOSED_BY_PEER = r"session closed"

    @classmethod
    def start(cls, workdir, name, user, password, server, listen_port, register=True, quit_after_s=90, tone=440,
              record=False):  # fmt: skip
        """tone: the microphone's sine (Hz). record: the sndfile module writes what the phone
        hears and sends, per call, to dump-*-dec.wav / dump-*-enc.wav in its folder (recordings())."""
        conf = Path(workdir) / name
        conf.mkdir(parents=True, exist_ok=True)
        lines = [
            "poll_method epoll",
            "sip_listen %s:%d" % (LOOPBACK, listen_port),
            "net_interface %s" % LOOPBACK,  # SDP and Contact on loopback, not the LAN address
            "call_local_timeout 30",
            "call_max_calls 2",
            "audio_source ausine,%d" % tone,
            "audio_alert aufile,/dev/null",
            "ausrc_srate 48000",
            "ausrc_channels 2",
            "rtp_ports 30000-39999",
            "rtp_stats yes",
            "statmode_default off",
            "module_path /usr/lib/baresip/modules",
        ]
        lines += ["module %s" % m for m in BARESIP_MODULES]
        if record:
            lines += ["module sndfile.so", "snd_path %s" % conf]
        lines += ["module_tmp account.so", "module_app menu.so"]
        (conf / "config").write_text("\n".join(lines) + "\n")
        params = ["answermode=auto", "audio_codecs=pcmu", "ptime=20"]
        if register:
            params += ["auth_pass=%s" % password, "regint=600"]
        else:
            params.append("regint=0")
        (conf / "accounts").write_text("<sip:%s@%s:%d>;%s\n" % (user, server[0], server[1], ";".join(params)))
        (conf / "contacts").write_text("")
        argv = [tool("baresip"), "-4", "-f", conf, "-t", quit_after_s]
        stdbuf = shutil.which("stdbuf")
        if stdbuf:  # baresip writes its log with stdio: line-buffer it so we see it live
            argv = [stdbuf, "-oL", "-eL"] + argv
        bs = cls("baresip-" + name, argv, workdir, stdin=True)
        bs.user = user
        bs.server = tuple(server)
        bs.conf = conf
        try:
            bs.wait_for(r"baresip is ready", 10)
        except AssertionError:
            bs.stop()
            raise
        return bs

    def dial(self, number, server=None):
        """/dial sip:NUMBER@SERVER (default: the account's server, i.e. the switch)."""
        host, port = server or self.server
        self.send("/dial sip:%s@%s:%d\n" % (number, host, port))

    def hangup(self):
        self.send("/hangup\n")

    def quit(self, timeout=10):
        """/quit and wait for the exit (it unregisters first)."""
        if self.running():
            try:
                self.send("/quit\n")
            except (BrokenPipeError, OSError):
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        return self.stop()

    def recordings(self, kind="dec"):
        """The sndfile module's WAV files, oldest first: "dec" what the phone heard, "enc" what it sent."""
        return sorted(self.conf.glob("dump-*-%s.wav" % kind), key=lambda p: p.stat().st_mtime)

    def packets(self):
        """(transmitted, received) RTP packets of the last call that ended, or None."""
        found = self.matches(self.PACKETS)
        return (int(found[-1].group(1)), int(found[-1].group(2))) if found else None

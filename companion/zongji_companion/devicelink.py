"""The CLI's side of the admin protocol: a device opened by URL, and signed calls to it.

    dev = connect("http://127.0.0.1:8080", token)     or a serial port path, "auto", socket://
    dev.status(); dev.bundle(); dev.put_bundle(data, base); dev.cdr(since)
    dev.prompts(); dev.put_prompt(stem, data); dev.delete_prompt(stem); dev.rollback(); dev.reboot()

Device URLs, opened as mpremote opens its devices:
    http://HOST:PORT       the device's HTTP admin port (Wi-Fi/LAN), or `zongji run --admin`
    /dev/ttyUSB0, COM3     a USB serial port (framed protocol on the REPL UART)
    auto                   the first ESP32 USB-serial port found by VID:PID
    socket://HOST:PORT     a serial link over TCP (pyserial's URL handler; ser2net, socat)

Every call is signed (zongji.admin.sign) with the token; the device's answer must carry its
own signature, or the call fails: a device that cannot sign does not hold the token, and the
CLI sends it nothing more (a site holds the trunk's password). A 401 "clock" answer carries the
device's time: the call is signed again with it (a device without NTP counts from its boot).
"""

import json
import os
import time
import zlib

from zongji.admin import sign

TIMEOUT_S = 10.0
BUSY_RETRIES = 3
MAX_BUNDLE = 1024 * 1024  # the most a device takes (zongji.admin.protocol Admin.max_bundle), so the most it gives


class DeviceError(Exception):
    """A call that failed: code is the protocol's error code (or "link"), status the HTTP one."""

    def __init__(self, message, code="link", status=None, data=None):
        super().__init__(message)
        self.code = code
        self.status = status
        self.data = data or {}


def _local_ms():
    return int(time.time() * 1000)


class HttpLink:
    """One request and its answer over HTTP (a connection per call: the device serves few)."""

    def __init__(self, url, timeout=TIMEOUT_S):
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise DeviceError("write the device's address as http://HOST:PORT, not %r" % url)
        self.host = parts.hostname
        self.port = parts.port or 80
        self.timeout = timeout
        self.url = "http://%s:%d" % (self.host, self.port)
        self.sent = 0  # bytes on the wire, both ways (benchmarks, progress)
        self.received = 0

    def exchange(self, method, path, headers, body, progress=None):
        import http.client

        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            hdrs = dict(headers)
            hdrs["Content-Length"] = str(len(body))
            conn.putrequest(method, path, skip_accept_encoding=True)
            for k, v in hdrs.items():
                conn.putheader(k, v)
            conn.endheaders()
            self.sent += len(method) + len(path) + sum(len(k) + len(v) + 4 for k, v in hdrs.items()) + 14
            step = 4096
            for i in range(0, len(body), step):
                conn.send(body[i : i + step])
                self.sent += len(body[i : i + step])
                if progress is not None:
                    progress(min(len(body), i + step), len(body))
            resp = conn.getresponse()
            data = resp.read()
            got = {k.lower(): v for k, v in resp.getheaders()}
            self.received += len(data) + sum(len(k) + len(v) + 4 for k, v in got.items()) + 17
            return resp.status, got, data
        except (OSError, http.client.HTTPException) as e:
            raise DeviceError(
                "can't reach the device at %s: %s; is it on, on this network, and is that its address and port? "
                "(a board serves the admin on port 80 unless `zongji flash --admin-port` set another; host mode "
                "where `zongji run --admin` listens)" % (self.url, e)
            ) from None
        finally:
            conn.close()

    def close(self):
        pass


def open_link(url):
    """A link for a device URL (see the module docstring)."""
    if url.startswith("http://"):
        return HttpLink(url)
    if url.startswith("https://"):
        raise DeviceError("the device speaks plain HTTP (requests are signed): use http://")
    from zongji_companion import seriallink

    return seriallink.open_serial(url)


class Device:
    def __init__(self, link, token):
        if not token:
            raise DeviceError(
                "no admin token: pass --token, set ZONGJI_TOKEN, or --token-file FILE "
                "(`zongji run --admin` and `zongji device run --admin` print where theirs is)",
                code="token",
            )
        self.link = link
        self.token = token.strip()
        self.offset = 0  # device admin time - local time, ms, learned from a "clock" answer

    def close(self):
        self.link.close()

    def call(self, method, path, body=b"", progress=None):
        """(status, headers, body) of a signed call that the device answered with its signature;
        DeviceError for a refusal (its code and message) or a link that failed."""
        busy = 0
        clock = 0
        while True:
            nonce = os.urandom(16).hex()
            t = _local_ms() + self.offset
            headers = sign.sign_request(self.token, method, path, body, t, nonce)
            status, got, data = self.link.exchange(method, path, headers, body, progress)
            signed = got.get(sign.AUTH)
            if signed is None or not sign.same(signed, sign.response_signature(self.token, nonce, status, data)):
                raise self._unsigned(status, data)
            if status < 300:
                return status, got, data
            err = _json(data)
            code = err.get("error", "failed")
            if code == "clock" and clock == 0 and "device_time" in err:
                self.offset = int(err["device_time"]) - _local_ms()
                clock += 1
                continue
            if code == "busy" and busy < BUSY_RETRIES:
                busy += 1
                time.sleep(float(got.get("retry-after") or 1))
                continue
            raise DeviceError(err.get("message") or "refused (%d)" % status, code, status, err)

    def _unsigned(self, status, data):
        err = _json(data)
        code = err.get("error")
        if code == "unauthenticated":
            return DeviceError(
                "the device refused the admin token (%s): check --token / ZONGJI_TOKEN" % err.get("message"),
                code,
                status,
                err,  # fmt: skip
            )
        if code == "too-many-failures":
            return DeviceError("the device is refusing this computer for a while after failed attempts: "
                               "wait a minute, with the right token", code, status, err)  # fmt: skip
        if code:
            return DeviceError("%s (%d)" % (err.get("message") or code, status), code, status, err)
        return DeviceError(
            "the answer (%d) is not signed by the device: is this a zongji device, and the right one?" % status,
            "unsigned",
            status,  # fmt: skip
        )

    def json(self, method, path, body=b"", progress=None):
        return _json(self.call(method, path, body, progress)[2])

    # ---- the operations ----------------------------------------------------------------------

    def status(self):
        return self.json("GET", "/status")

    def bundle(self):
        """The device's bundle as it stores it (sent compressed where the device can), or None."""
        try:
            _, got, data = self.call("GET", "/bundle?deflate=1")
        except DeviceError as e:
            if e.code == "not-found":
                return None
            raise
        if (got.get("content-type") or "").startswith("application/zlib"):
            d = zlib.decompressobj()
            data = d.decompress(data, MAX_BUNDLE + 1)
            if not d.eof or len(data) > MAX_BUNDLE:
                raise DeviceError("the device's bundle does not inflate to at most %d bytes" % MAX_BUNDLE, "invalid")
        return data

    def put_bundle(self, data, base, progress=None):
        packed = zlib.compress(data, 9)
        path = "/bundle?base=%s&deflate=1" % (base or "none")
        return self.json("PUT", path, packed, progress)

    def cdr(self, since=None):
        path = "/cdr" + ("?since=%d" % since if since is not None else "")
        return self.json("GET", path)["records"]

    def prompts(self):
        return self.json("GET", "/prompts")["prompts"]

    def prompt(self, stem, progress=None):
        """One prompt file's bytes, checked against the SHA-256 the device lists for it by the
        caller (pull)."""
        return self.call("GET", "/prompts/" + stem, b"", progress)[2]

    def put_prompt(self, stem, data, progress=None):
        return self.json("PUT", "/prompts/%s?sha256=%s" % (stem, sign.body_hash(data)), data, progress)

    def delete_prompt(self, stem):
        return self.json("DELETE", "/prompts/" + stem)

    def rollback(self):
        return self.json("POST", "/rollback")

    def reboot(self):
        return self.json("POST", "/reboot")


def _json(data):
    try:
        value = json.loads(data or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def connect(url, token):
    return Device(open_link(url), token)


def read_token(token=None, token_file=None):
    """The admin token from --token, --token-file or ZONGJI_TOKEN (in that order), or None."""
    if token:
        return token.strip()
    if token_file:
        try:
            with open(token_file, encoding="utf-8") as f:
                return f.read().strip()
        except OSError as e:
            raise DeviceError("can't read the token file %s: %s" % (token_file, e.strerror or e), "token") from None
    env = os.environ.get("ZONGJI_TOKEN")
    return env.strip() if env else None

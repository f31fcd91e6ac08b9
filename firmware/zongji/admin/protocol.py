"""The admin protocol in one sans-IO object: a request in, a response out (docs/sync.md).

    admin = Admin(token, backend)
    refusal = admin.precheck(method, path, headers, length, source, now_ms)
                                  None, or a Response to send before the body is even read
    resp = admin.handle(method, path, headers, body, source, now_ms)
    resp.status, resp.body (bytes), resp.type ("application/json" or octet-stream), resp.headers

Operations (PATH may carry a query; every one is signed, zongji.admin.sign):

    GET    /status                       the device's status (backend.status())
    GET    /bundle[?deflate=1]           the stored site bundle, as stored (with deflate=1 as a
                                         zlib stream, type application/zlib, where it is smaller)
    PUT    /bundle?base=V[&deflate=1][&delta=1]
                                         a new bundle, zlib-compressed with deflate=1, as the lines
                                         that changed with delta=1 (admin/delta.py); only if the
                                         device still runs V (else 409 naming both versions)
    GET    /cdr?since=S                  call records that started at unix second S or later
    GET    /prompts                      {"prompts": {id: sha256}} of the stored prompt files
    GET    /prompts/ID                   one prompt file, as stored
    PUT    /prompts/ID?sha256=H          a prompt file; its SHA-256 must be H
    DELETE /prompts/ID                   a prompt file gone
    POST   /rollback                     back to the previous bundle (and forward again)
    POST   /reboot                       answered, then the shell resets the board

Errors are JSON {"error": CODE, "message": TEXT} with an HTTP status (ERRORS), and leave the
stored state as it was.

Authentication costs nothing until a request is right. precheck() looks only at the headers:
the source's failure budget (Failures: 5 at once, then one a second per source, 20 overall),
the three signing headers, the clock window and the size limit. handle() then checks the
signature; only a request whose signature is right has its nonce remembered (the replay
table, MAX_NONCES entries of WINDOW_MS each). A request outside the window is answered 401
"clock" with the device's time, from which the CLI corrects its clock and signs again: the
device's clock may be unsynced (no NTP yet), so its admin time is its own.

Body size limits, the documented attributes of Admin (a board may lower them):
    max_bundle_body   256 KiB  a PUT /bundle body, as sent (compressed)
    max_bundle        1 MiB    the bundle once inflated (a deflate bomb stops there)
    max_prompt        256 KiB  one prompt file
    max_small         1 KiB    any other request's body
"""

import json

from zongji.admin.sign import AUTH, NONCE, TIME, is_nonce, request_signature, response_signature, same
from zongji.switch.guard import make_room
from zongji.switch.seconds import Seconds
from zongji.text import is_hex

JSON = "application/json"
OCTETS = "application/octet-stream"
ZLIB = "application/zlib"  # GET /bundle?deflate=1: the bundle as a zlib stream
WINDOW_MS = 60000  # a request's time may be this far from the device's, either way
MAX_NONCES = 64  # nonces of signed requests remembered within the window

ERRORS = {
    "malformed": 400,  # a header, path or body that does not parse
    "unauthenticated": 401,  # no signature, or a wrong one
    "clock": 401,  # signed, but the time is outside the window: sign again with device_time
    "replayed": 401,  # this nonce was seen
    "not-found": 404,
    "method": 405,
    "conflict": 409,  # the device no longer runs the version the admin started from
    "too-large": 413,
    "invalid": 422,  # a bundle or a prompt the device refuses (damaged, fails the site's checks)
    "too-many-failures": 429,
    "busy": 503,  # replay table full, low heap: try again
    "failed": 500,  # the store could not write (flash full, I/O error): nothing changed
}


class AdminError(Exception):
    """A backend's refusal: code is one of ERRORS, extra goes into the JSON answer."""

    def __init__(self, code, message, extra=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


class Response:
    def __init__(self, status, body=b"", type=JSON, headers=None):
        self.status = status
        self.body = body
        self.type = type
        self.headers = headers or {}

    def json(self):
        return json.loads(self.body) if self.type == JSON and self.body else None


def error(code, message, extra=None):
    data = {"error": code, "message": message}
    if extra:
        for k in extra:
            data[k] = extra[k]
    headers = {"retry-after": str(extra["retry_after"])} if extra and "retry_after" in extra else None
    return Response(ERRORS.get(code, 400), json.dumps(data).encode(), JSON, headers)


def ok(data, status=200):
    return Response(status, json.dumps(data).encode(), JSON)


class Failures(Seconds):
    """Failed attempts per source (an ip, or "serial"): token buckets in a table of at most
    max_sources; a source whose bucket is empty is refused (429) before anything is checked."""

    burst = 5
    rate = 1  # more a second
    all_burst = 20
    all_rate = 2
    max_sources = 16

    def __init__(self):
        self._p = {}
        self._all = None

    def _fill(self, b, burst, rate, now):
        if now > b[1]:
            b[0] = min(burst, b[0] + (now - b[1]) * rate)
            b[1] = now

    def allowed(self, source, now_ms):
        """May source be heard now? (A source with no failures always may.)"""
        now = self._sec(now_ms)
        b = self._p.get(source)
        if b is not None:
            self._fill(b, self.burst, self.rate, now)
            if b[0] < 1:
                return False
        every = self._all
        if every is not None:
            self._fill(every, self.all_burst, self.all_rate, now)
            if every[0] < 1:
                return False
        return True

    def failed(self, source, now_ms):
        now = self._sec(now_ms)
        b = self._p.get(source)
        if b is None:
            b = self._p[source] = [make_room(self._p, self.burst, self.rate, self.max_sources, now), now]
        if self._all is None:
            self._all = [self.all_burst, now]
        self._fill(b, self.burst, self.rate, now)
        self._fill(self._all, self.all_burst, self.all_rate, now)
        b[0] = max(0, b[0] - 1)
        self._all[0] = max(0, self._all[0] - 1)

    def __len__(self):
        return len(self._p)


def split_path(path):
    """'/a/b?x=1&y=2' -> (['a', 'b'], {'x': '1', 'y': '2'}); no percent-decoding is needed:
    every name the protocol uses is plain ASCII (prompt ids are checked by _prompt_id)."""
    q = path.find("?")
    query = {}
    if q >= 0:
        for part in path[q + 1 :].split("&"):
            if part:
                k, _, v = part.partition("=")
                query[k] = v
        path = path[:q]
    return [p for p in path.split("/") if p], query


def _prompt_id(text):
    """A prompt id as the core names them (menu.main, name.201, sound.hold): letters, digits,
    '.', '-', '_', no leading dot; nothing a path could be made of."""
    if not text or len(text) > 64 or text[0] == ".":
        return None
    for c in text:
        if not (c.isalpha() or c.isdigit() or c in "._-"):
            return None
    return text


def inflate(body, limit):
    """A zlib stream -> bytes, at most limit of them (AdminError too-large past it)."""
    try:
        import io

        import deflate  # MicroPython

        f = deflate.DeflateIO(io.BytesIO(body), deflate.ZLIB)
        data = f.read(limit + 1)
    except ImportError:  # CPython
        import zlib

        d = zlib.decompressobj()
        try:
            data = d.decompress(body, limit + 1)
        except zlib.error as e:
            raise AdminError("malformed", "the body is not a zlib stream: %s" % e)
        if not d.eof and len(data) <= limit:
            raise AdminError("malformed", "the zlib stream ends early")
    except (OSError, ValueError) as e:  # MicroPython: a damaged stream
        raise AdminError("malformed", "the body is not a zlib stream: %s" % e)
    if len(data) > limit:
        raise AdminError("too-large", "the bundle inflates past %d bytes" % limit)
    return data


def compress(data):
    """bytes -> a zlib stream (a 1 KiB window: little heap on the device), or None where this
    MicroPython was built without deflate compression (the answer then goes as it is)."""
    try:
        import io

        import deflate  # MicroPython
    except ImportError:  # CPython
        import zlib

        return zlib.compress(data, 6)
    try:
        buf = io.BytesIO()
        f = deflate.DeflateIO(buf, deflate.ZLIB, 10)
        f.write(data)
        f.close()  # flushes; the BytesIO stays open
        return buf.getvalue()
    except (OSError, ValueError, AttributeError, TypeError):
        return None


class Admin:
    max_bundle_body = 256 * 1024
    max_bundle = 1024 * 1024
    max_prompt = 256 * 1024
    max_small = 1024

    def __init__(self, token, backend):
        if not token or len(token) < 16:
            raise ValueError("an admin token of at least 16 characters is needed")
        self.token = token
        self.backend = backend
        self.failures = Failures()
        self._nonces = {}  # nonce -> its request's time (ms): refused again within the window
        self.refused = {}  # code -> count, for status
        self.last_failure = None  # (source, code) of the last refused request

    # ---- the two steps ------------------------------------------------------------------------

    def limit(self, method, path):
        """The most body bytes this request may carry."""
        parts, _ = split_path(path)
        if method == "PUT" and parts == ["bundle"]:
            return self.max_bundle_body
        if method == "PUT" and len(parts) == 2 and parts[0] == "prompts":
            return self.max_prompt
        return self.max_small

    def precheck(self, method, path, headers, length, source, now_ms):
        """What can be refused from the headers alone, before a body is read: None to go on."""
        if not self.failures.allowed(source, now_ms):
            return self._refuse(source, "too-many-failures", "too many failed requests: wait", {"retry_after": 5})
        if length > self.limit(method, path):
            return self._fail(source, now_ms, "too-large", "a body of %d bytes: at most %d here" % (
                length, self.limit(method, path)))  # fmt: skip
        t, nonce, sig = headers.get(TIME), headers.get(NONCE), headers.get(AUTH)
        if t is None or nonce is None or sig is None:
            return self._fail(source, now_ms, "unauthenticated", "not signed: this device needs its admin token")
        try:
            int(t)
        except ValueError:
            return self._fail(source, now_ms, "malformed", "x-zongji-time is not a number")
        if not is_nonce(nonce) or len(sig) != 64:
            return self._fail(source, now_ms, "malformed", "a malformed nonce or signature")
        return None

    def handle(self, method, path, headers, body, source, now_ms):
        refusal = self.precheck(method, path, headers, len(body), source, now_ms)
        if refusal is not None:
            return refusal
        t, nonce, sig = int(headers[TIME]), headers[NONCE], headers[AUTH]
        if not same(sig, request_signature(self.token, method, path, t, nonce, body)):
            return self._fail(source, now_ms, "unauthenticated", "wrong signature: check the admin token")
        # signed by the token from here on: mistakes are not failures, and are answered signed
        if t < now_ms - WINDOW_MS or t > now_ms + WINDOW_MS:
            why = "the request's time is %d ms from the device's" % (t - now_ms)
            resp = error("clock", why, {"device_time": now_ms})
        elif self._seen(nonce, t, now_ms):
            resp = error("replayed", "this request was made before")
            self._count("replayed")
        elif len(self._nonces) >= MAX_NONCES:
            resp = error("busy", "too many requests in a minute: try again", {"retry_after": 2})
        else:
            self._nonces[nonce] = t
            try:
                resp = self._route(method, path, body, now_ms)
            except AdminError as e:
                resp = error(e.code, e.message, e.extra)
                self._count(e.code)
        resp.headers["x-zongji-auth"] = response_signature(self.token, nonce, resp.status, resp.body)
        return resp

    # ---- bookkeeping -------------------------------------------------------------------------

    def _count(self, code):
        self.refused[code] = self.refused.get(code, 0) + 1

    def _refuse(self, source, code, message, extra=None):
        self._count(code)
        self.last_failure = (source, code)
        return error(code, message, extra)

    def _fail(self, source, now_ms, code, message):
        self.failures.failed(source, now_ms)
        return self._refuse(source, code, message)

    def _seen(self, nonce, t, now_ms):
        old = now_ms - WINDOW_MS
        for n in [n for n, at in self._nonces.items() if at < old]:
            del self._nonces[n]  # outside the window: the clock check refuses them anyway
        return nonce in self._nonces

    # ---- the operations ----------------------------------------------------------------------

    def _route(self, method, path, body, now_ms):
        parts, query = split_path(path)
        be = self.backend
        what = parts[0] if parts else ""
        if what == "status" and len(parts) == 1:
            _only(method, "GET")
            data = be.status(now_ms)
            data["admin"] = {"refused": self.refused, "max_bundle_body": self.max_bundle_body}
            return ok(data)
        if what == "bundle" and len(parts) == 1:
            if method == "GET":
                data = be.bundle()
                if data is None:
                    raise AdminError("not-found", "no site bundle on this device yet")
                packed = compress(data) if query.get("deflate") == "1" else None
                if packed is not None and len(packed) < len(data):
                    return Response(200, packed, ZLIB)
                return Response(200, data, OCTETS)
            _only(method, "PUT")
            return ok(self._put_bundle(query, body, now_ms))
        if what == "cdr" and len(parts) == 1:
            _only(method, "GET")
            since = query.get("since")
            try:
                since = int(since) if since else None
            except ValueError:
                raise AdminError("malformed", "since= takes unix seconds")
            records = be.cdr(since)
            return ok({"records": records, "count": len(records)})
        if what == "prompts":
            if len(parts) == 1:
                _only(method, "GET")
                return ok({"prompts": be.prompts()})
            pid = _prompt_id(parts[1]) if len(parts) == 2 else None
            if pid is None:
                raise AdminError("malformed", "a prompt id is letters, digits, '.', '-' and '_'")
            if method == "GET":
                data = be.prompt(pid)
                if data is None:
                    raise AdminError("not-found", "no prompt %s on this device" % pid)
                return Response(200, data, OCTETS)
            if method == "PUT":
                want = query.get("sha256", "")
                if not is_hex(want, 64):
                    raise AdminError("malformed", "PUT /prompts/ID needs sha256= (64 hex digits)")
                from zongji.admin.sign import body_hash

                if body_hash(body) != want:
                    raise AdminError("invalid", "the prompt's SHA-256 is not the one named: damaged on the way")
                be.put_prompt(pid, body)
                return ok({"prompt": pid, "sha256": want})
            _only(method, "DELETE")
            if not be.delete_prompt(pid):
                raise AdminError("not-found", "no prompt %s on this device" % pid)
            return ok({"prompt": pid, "deleted": True})
        if what == "rollback" and len(parts) == 1:
            _only(method, "POST")
            return ok(be.rollback(now_ms))
        if what == "reboot" and len(parts) == 1:
            _only(method, "POST")
            be.reboot(now_ms)
            return ok({"rebooting": True})
        raise AdminError("not-found", "no such admin path: %s" % path)

    def _put_bundle(self, query, body, now_ms):
        base = query.get("base", "")
        if base != "none" and not is_hex(base, 64):
            raise AdminError("malformed", "PUT /bundle needs base= (the version synced from, or 'none')")
        running = self.backend.version()
        if (running or "none") != base:
            raise AdminError(
                "conflict",
                "the device runs %s, not %s: someone else synced; pull or sync again"
                % ((running or "none")[:12], base[:12]),  # fmt: skip
                {"device_version": running, "base": base},
            )
        data = inflate(body, self.max_bundle) if query.get("deflate") == "1" else body
        if query.get("delta") == "1":
            from zongji.admin import delta

            old = self.backend.bundle()
            if old is None:
                raise AdminError("conflict", "a delta needs a bundle to apply to: send the whole bundle")
            try:
                data = delta.apply(old, data)
            except ValueError as e:
                raise AdminError("invalid", "the delta does not fit the running bundle: %s" % e)
        if len(data) > self.max_bundle:
            raise AdminError("too-large", "a bundle of %d bytes: at most %d" % (len(data), self.max_bundle))
        return self.backend.put_bundle(data, now_ms)


def _only(method, allowed):
    if method != allowed:
        raise AdminError("method", "%s is not allowed here (only %s)" % (method, allowed))

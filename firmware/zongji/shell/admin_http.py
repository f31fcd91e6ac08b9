"""The admin protocol over HTTP: a microdot app, the same on the device and in host mode.

    app = make_app(admin, now_ms)         admin: zongji.admin.protocol.Admin; now_ms(): its clock
                                          (clock=: a monotonic ms for the connections' deadlines)
    await app.start_server(host, port)    (microdot) until app.shutdown()

Every request, whatever its path and method, goes to Admin: the app knows no operation. The
headers are checked first (Admin.precheck: the failure budget, the signing headers, the size
limit), and only then is the body read, so a stranger's big upload is refused unread. Bodies
above microdot's in-memory size (Request.max_body_length) arrive as a stream and are read here
up to Content-Length. Answers carry the device's signature header (x-zongji-auth).

microdot comes from its PyPI package: host mode imports it as installed; a board (and the
virtual device) has it in /lib, compiled with mpy-cross.

Connections. microdot serves every connection it is given, for as long as the client takes,
so this app (App.handle_request, which microdot's server calls for each one) keeps them in a
bounded table of MAX_CONNECTIONS slots, each with a deadline, and one task (the reaper, alive
only while a slot is taken) cancels the connections past theirs:
    - the head (request line, headers and a body of up to IN_MEMORY bytes, which microdot reads
      with them) must arrive within HEAD_MS of the connection;
    - a streamed body, and then the answer, get ANSWER_MS plus their bytes at MIN_RATE (B/s);
    - a connection over the cap takes the slot of the oldest one still in its head (a stranger
      sending nothing, or a byte a second, is the one waiting longest; a real client sends its
      head at once and is past it within a turn of the loop); when every slot is past its head,
      the newcomer is closed unread.
A stranger's connections so cost at most the slots (a socket, a task and microdot's buffers
each), for at most HEAD_MS; a streamed body that times out counts as a failed attempt of its
source (Admin.failures), as a wrong signature would.
"""

import asyncio

from microdot import Microdot, Request
from microdot import Response as HttpResponse

METHODS = ["GET", "PUT", "POST", "DELETE"]
IN_MEMORY = 16 * 1024  # bodies up to this are read by microdot; larger ones stream
MAX_CONNECTIONS = 4  # admin connections served at once
HEAD_MS = 3000  # the request's head (and an in-memory body) must arrive within this
ANSWER_MS = 5000  # a streamed body, or the answer, may take this plus its bytes at MIN_RATE
MIN_RATE = 2048  # bytes a second: 256 KiB may take 128 s
REAP_MS = 250  # how often the reaper looks at the deadlines

HEAD = 0  # a slot's phases: reading the head (may be taken over), then the body and answer
BODY = 1


class App(Microdot):
    """microdot's app with the connection slots above; conns: [task, phase, deadline, source]."""

    max_connections = MAX_CONNECTIONS

    def __init__(self, clock):
        super().__init__()
        self.clock = clock  # ms, never going back (the device's Clock.now_ms)
        self.conns = []
        self.reaper = None
        self.evicted = 0  # connections ended early (taken over, timed out), for tests and status
        self.turned_away = 0
        self.on_timeout = None  # on_timeout(source): a streamed body or an answer ran out of time

    async def handle_request(self, reader, writer):
        conns = self.conns
        if len(conns) >= self.max_connections:
            oldest = None
            for c in conns:
                if c[1] == HEAD:
                    oldest = c
                    break
            if oldest is None:
                self.turned_away += 1
                _close(writer)
                return
            self._end(oldest)
        task = asyncio.current_task()
        conn = [task, HEAD, self.clock() + HEAD_MS, None]
        conns.append(conn)
        if self.reaper is None:
            self.reaper = asyncio.create_task(self._reap())
        try:
            await super().handle_request(reader, writer)
        except asyncio.CancelledError:
            pass
        finally:
            if conn in conns:
                conns.remove(conn)
            _close(writer)

    def _end(self, conn):
        if conn in self.conns:
            self.conns.remove(conn)
        self.evicted += 1
        conn[0].cancel()

    def extend(self, nbytes, source=None):
        """The running request is past its head: its deadline is now ANSWER_MS plus nbytes at
        MIN_RATE from now, and it may no longer be taken over."""
        task = asyncio.current_task()
        for c in self.conns:
            if c[0] is task:
                c[1] = BODY
                c[2] = self.clock() + ANSWER_MS + nbytes * 1000 // MIN_RATE
                c[3] = source

    async def _reap(self):
        try:
            while self.conns:
                await asyncio.sleep(REAP_MS / 1000)
                now = self.clock()
                for c in [c for c in self.conns if now > c[2]]:
                    self._end(c)
                    if c[1] == BODY and c[3] is not None and self.on_timeout is not None:
                        self.on_timeout(c[3])
        finally:
            self.reaper = None


def _close(writer):
    """Close the connection now: MicroPython's Stream.close() does nothing (its socket closes in
    wait_closed, a coroutine), so its socket is closed directly; CPython's writer closes."""
    try:
        sock = getattr(writer, "s", None)
        if sock is not None:
            sock.close()
        else:
            writer.close()
    except Exception:  # noqa: BLE001 - closing a socket the peer already dropped
        pass


def make_app(admin, now_ms, after=None, clock=None):
    """The app; after(resp) runs once an answer is made (the shell reboots after POST /reboot);
    clock() the ms the connections' deadlines are kept in (default now_ms: a clock that NTP
    moves once only makes the deadlines of that moment early or late)."""
    Request.max_content_length = max(admin.max_bundle_body, admin.max_prompt)
    Request.max_body_length = IN_MEMORY
    app = App(clock or now_ms)
    app.on_timeout = lambda source: admin.failures.failed(source, now_ms())

    async def handle(request, path):
        full = request.path + ("?" + request.query_string if request.query_string else "")
        length = request.content_length or 0
        source = request.client_addr[0] if request.client_addr else "?"
        headers = {}
        for name in request.headers:
            headers[name.lower()] = request.headers[name]
        refusal = admin.precheck(request.method, full, headers, length, source, now_ms())
        if refusal is not None:
            return _answer(refusal)
        body = request.body
        app.extend(length if not body else 0, source)
        if length and not body and request.stream is not None:
            body = await _read(request.stream, length)
        resp = admin.handle(request.method, full, headers, body or b"", source, now_ms())
        app.extend(len(resp.body))
        if after is not None:
            after(request.method, full, resp)
        return _answer(resp)

    app.route("/<path:path>", methods=METHODS)(handle)
    app.route("/", methods=METHODS)(lambda request: handle(request, ""))
    return app


async def _read(stream, length):
    parts = []
    got = 0
    while got < length:
        chunk = await stream.read(min(4096, length - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _answer(resp):
    headers = {"Content-Type": resp.type}
    for k in resp.headers:
        headers[k] = resp.headers[k]
    return HttpResponse(resp.body, resp.status, headers)

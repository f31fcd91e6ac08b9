"""The admin protocol over HTTP: a microdot app, the same on the device and in host mode.

    app = make_app(admin, now_ms)         admin: zongji.admin.protocol.Admin; now_ms(): its clock
    await app.start_server(host, port)    (microdot) until app.shutdown()

Every request, whatever its path and method, goes to Admin: the app knows no operation. The
headers are checked first (Admin.precheck: the failure budget, the signing headers, the size
limit), and only then is the body read, so a stranger's big upload is refused unread. Bodies
above microdot's in-memory size (Request.max_body_length) arrive as a stream and are read here
up to Content-Length. Answers carry the device's signature header (x-zongji-auth).

microdot comes from its PyPI package: host mode imports it as installed; a board (and the
virtual device) has it in /lib, compiled with mpy-cross.
"""

from microdot import Microdot, Request
from microdot import Response as HttpResponse

METHODS = ["GET", "PUT", "POST", "DELETE"]
IN_MEMORY = 16 * 1024  # bodies up to this are read by microdot; larger ones stream


def make_app(admin, now_ms, after=None):
    """The app; after(resp) runs once an answer is made (the shell reboots after POST /reboot)."""
    Request.max_content_length = max(admin.max_bundle_body, admin.max_prompt)
    Request.max_body_length = IN_MEMORY
    app = Microdot()

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
        if length and not body and request.stream is not None:
            body = await _read(request.stream, length)
        resp = admin.handle(request.method, full, headers, body or b"", source, now_ms())
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

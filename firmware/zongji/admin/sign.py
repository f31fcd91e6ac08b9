"""Signed admin requests: the token never crosses the wire (docs/sync.md, "Authentication").

    headers = sign_request(token, "PUT", "/bundle?base=ab12", body, device_ms, nonce)
    why = check_request(token, method, path, headers, body)   None when the signature is right
    sig = response_signature(token, nonce, status, body)      the device signs its answer

A request carries three headers: X-Zongji-Time (the device's admin clock, ms), X-Zongji-Nonce
(16 to 64 hex digits, never used twice) and X-Zongji-Auth, the hex HMAC-SHA256, keyed with the
device's admin token, of

    zongji-admin-1 \\n METHOD \\n PATH-AND-QUERY \\n TIME \\n NONCE \\n hex SHA-256 of the body

so a request cannot be altered, moved to another path or replayed (Admin keeps the nonces of
its time window). The device's answer carries X-Zongji-Auth too: the HMAC of "zongji-admin-1
response", the request's nonce, the status and the body's hash, so the CLI knows it spoke to
the device that holds the token before it trusts what came back (or sends it a site).

HMAC (RFC 2104) is written out here: MicroPython has hashlib.sha256 but no hmac module.
"""

from hashlib import sha256

VERSION = "zongji-admin-1"
TIME = "x-zongji-time"  # header names, lower case: HTTP's are matched case-insensitively
NONCE = "x-zongji-nonce"
AUTH = "x-zongji-auth"
BLOCK = 64  # SHA-256's block size, for HMAC
_IPAD = bytes(0x36 for _ in range(BLOCK))
_OPAD = bytes(0x5C for _ in range(BLOCK))


def hexlify(data):
    return "".join("%02x" % b for b in data)


def _xor(key, pad):
    return bytes(key[i] ^ pad[i] for i in range(BLOCK))


def hmac_sha256(key, data):
    """RFC 2104 HMAC with SHA-256: the 32-byte tag of data under key (bytes)."""
    if len(key) > BLOCK:
        key = sha256(key).digest()
    key = key + b"\0" * (BLOCK - len(key))
    inner = sha256(_xor(key, _IPAD))
    inner.update(data)
    outer = sha256(_xor(key, _OPAD))
    outer.update(inner.digest())
    return outer.digest()


def body_hash(body):
    return hexlify(sha256(body or b"").digest())


def _key(token):
    return token.encode() if isinstance(token, str) else token


def request_text(method, path, time_ms, nonce, body):
    return ("%s\n%s\n%s\n%s\n%s\n%s" % (VERSION, method, path, time_ms, nonce, body_hash(body))).encode()


def request_signature(token, method, path, time_ms, nonce, body):
    return hexlify(hmac_sha256(_key(token), request_text(method, path, time_ms, nonce, body)))


def sign_request(token, method, path, body, time_ms, nonce):
    """The three headers of a signed request (a dict, lower-case names)."""
    sig = request_signature(token, method, path, time_ms, nonce, body)
    return {TIME: str(time_ms), NONCE: nonce, AUTH: sig}


def response_signature(token, nonce, status, body):
    text = ("%s response\n%s\n%d\n%s" % (VERSION, nonce, status, body_hash(body))).encode()
    return hexlify(hmac_sha256(_key(token), text))


def same(a, b):
    """Compare two signatures in time that does not depend on where they differ."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= ord(a[i]) ^ ord(b[i])
    return diff == 0


def is_nonce(text):
    if not 16 <= len(text) <= 64:
        return False
    for c in text:
        if c not in "0123456789abcdef":
            return False
    return True

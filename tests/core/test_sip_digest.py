"""zongji.sip.digest and zongji.sip.auth: RFC 2617 / RFC 7616 vectors, the registrar's verdicts, parsing garbage."""

from _support import IS_MICROPYTHON, SkipTest, counter_random, raises
from zongji.sip import digest
from zongji.sip.auth import (
    HASHES,
    MAX_HEADER,
    MAX_PARAMS,
    ha1,
    parse_auth,
    parse_challenge,
    pick_challenge,
    request_digest,
    respond,
)
from zongji.sip.digest import BAD, FAIL, OK, STALE, Authenticator, hmac_sha256

# RFC 2617 section 3.5 (the password there is "Circle Of Life", capital O)
RFC2617_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
RFC2617_AUTH = (
    'Digest username="Mufasa", realm="testrealm@host.com", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, '
    'nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
    'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)

# RFC 7616 section 3.9.1 (password "Circle of Life"), folded over lines as in the RFC
RFC7616_CHALLENGE = (
    "Digest\r\n"
    '    realm="http-auth@example.org",\r\n'
    '    qop="auth, auth-int",\r\n'
    "    algorithm=SHA-256,\r\n"
    '    nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",\r\n'
    '    opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"

USERS = {"201": "s3cret-201", "202": "другой-пароль"}
T0 = 10000000  # an arbitrary "now" in ms


def _hex(b):
    return "".join("%02x" % x for x in b)


def _server(cls=Authenticator, **kw):
    return cls("zongji.local", b"0123456789abcdef", random_bytes=counter_random(), **kw)


def _answer(auth, now, user, password, nc=1, method="REGISTER", uri="sip:zongji.local", which=0, challenge=None):
    """Authorization params a phone would send after challenge `which` issued at `now`."""
    params = challenge or parse_challenge(auth.challenge(now)[which])
    return parse_auth(respond(params, method, uri, user, password, "c0ffee", nc)), params


# what the switch's directory holds: HA1s, never the passwords
HA1S = {(u, a): ha1(a, u, "zongji.local", USERS[u]) for u in USERS for a in ("MD5", "SHA-256")}


def _lookup(user, algorithm):
    return HA1S.get((user, algorithm))


def _check(auth, params, now, method="REGISTER"):
    return auth.check(method, params, _lookup, now)


# ---- vectors --------------------------------------------------------------------------------


def test_rfc2617_example_response():
    ch = parse_challenge(RFC2617_CHALLENGE)
    value = respond(ch, "GET", "/dir/index.html", "Mufasa", "Circle Of Life", "0a4f113b", 1)
    sent = parse_auth(value)
    assert sent["response"] == "6629fae49393a05397450978507c4ef1"
    want = parse_auth(RFC2617_AUTH)
    want["algorithm"] = "MD5"  # we always name the algorithm; the RFC example leaves it out
    assert sent == want


def test_rfc2617_example_parses():
    p = parse_auth(RFC2617_AUTH)
    assert p["username"] == "Mufasa"
    assert p["qop"] == "auth"
    assert p["nc"] == "00000001"
    assert p["uri"] == "/dir/index.html"
    assert len(p) == 9


def test_rfc7616_sha256_example():
    ch = parse_challenge(RFC7616_CHALLENGE)
    assert ch["algorithm"] == "SHA-256"
    sent = parse_auth(respond(ch, "GET", "/dir/index.html", "Mufasa", "Circle of Life", RFC7616_CNONCE, 1))
    assert sent["response"] == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    assert sent["algorithm"] == "SHA-256"
    assert sent["opaque"] == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


def test_rfc7616_md5_example():
    ch = parse_challenge(RFC7616_CHALLENGE.replace("SHA-256", "MD5"))
    sent = parse_auth(respond(ch, "GET", "/dir/index.html", "Mufasa", "Circle of Life", RFC7616_CNONCE, 1))
    assert sent["response"] == "8ca523f5e9506fed4657c9700eebdbec"


def test_hmac_sha256_rfc4231_vectors():
    assert _hex(hmac_sha256(b"\x0b" * 20, b"Hi There")) == (
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    )
    assert _hex(hmac_sha256(b"Jefe", b"what do ya want for nothing?")) == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
    # a key longer than the block is hashed first
    assert _hex(hmac_sha256(b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First")) == (
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    )


def test_client_md5_sess_by_hand():
    from zongji.sip.md5 import md5_hex

    ch = {"realm": "r", "nonce": "n", "qop": "auth", "algorithm": "MD5-sess"}
    sent = parse_auth(respond(ch, "INVITE", "sip:a@b", "u", "p", "cn", 2))
    ha1 = md5_hex(md5_hex("u:r:p") + ":n:cn")
    want = md5_hex(ha1 + ":n:00000002:cn:auth:" + md5_hex("INVITE:sip:a@b"))
    assert sent["response"] == want
    assert sent["algorithm"] == "MD5-sess"


def test_client_empty_qop_means_rfc2069():
    from zongji.sip.md5 import md5_hex

    ch = {"realm": "r", "nonce": "n", "qop": ""}
    sent = parse_auth(respond(ch, "REGISTER", "sip:r", "u", "p", "", 1))
    assert "qop" not in sent and "nc" not in sent and "cnonce" not in sent
    assert sent["response"] == md5_hex(md5_hex("u:r:p") + ":n:" + md5_hex("REGISTER:sip:r"))


# ---- the server's challenge -----------------------------------------------------------------


def test_challenge_offers_sha256_then_md5_with_one_nonce():
    values = _server().challenge(T0)
    assert len(values) == 2
    first, second = parse_challenge(values[0]), parse_challenge(values[1])
    assert first["algorithm"] == "SHA-256" and second["algorithm"] == "MD5"
    assert first["nonce"] == second["nonce"]
    assert first["realm"] == "zongji.local" and first["qop"] == "auth"
    assert "stale" not in first


def test_stale_challenge_says_so():
    values = _server().challenge(T0, stale=True)
    assert parse_challenge(values[0])["stale"] == "true"


def test_nonces_differ_within_one_millisecond():
    auth = _server()
    assert auth.challenge(T0) != auth.challenge(T0)
    counter_only = Authenticator("r", b"key", random_bytes=None)
    counter_only._random = None  # as on a port without os.urandom
    assert counter_only.challenge(T0) != counter_only.challenge(T0)


def test_algorithms_can_be_limited_for_old_phones():
    auth = _server(algorithms=("MD5",))
    values = auth.challenge(T0)
    assert len(values) == 1 and "algorithm=MD5" in values[0]
    params, _ = _answer(auth, T0, "201", USERS["201"])
    assert _check(auth, params, T0) == OK
    sha = parse_challenge(_server().challenge(T0)[0])
    sha["nonce"] = params["nonce"]
    sent = parse_auth(respond(sha, "REGISTER", "sip:zongji.local", "201", USERS["201"], "c", 1))
    assert _check(auth, sent, T0) == BAD
    assert raises(ValueError, Authenticator, "r", b"k", 1000, None, ("SHA-512",))


# ---- the server's verdicts ------------------------------------------------------------------


def test_round_trip_sha256_and_md5():
    auth = _server()
    for which in (0, 1):
        params, _ = _answer(auth, T0, "201", USERS["201"], which=which)
        assert _check(auth, params, T0 + 500) == OK, auth.reason
        assert auth.reason == ""
    params, _ = _answer(auth, T0, "202", USERS["202"])  # non-ASCII password
    assert _check(auth, params, T0) == OK


def test_wrong_password_fails():
    auth = _server()
    params, _ = _answer(auth, T0, "201", "guess")
    assert _check(auth, params, T0) == FAIL
    assert auth.reason == "wrong credentials"


def test_unknown_user_is_indistinguishable_from_wrong_password():
    wrong, unknown = _server(), _server()
    p1, _ = _answer(wrong, T0, "201", "guess")
    p2, _ = _answer(unknown, T0, "999", "guess")
    assert _check(wrong, p1, T0) == _check(unknown, p2, T0) == FAIL
    assert wrong.reason == unknown.reason
    # the 401 that follows is the same, byte for byte
    assert wrong.challenge(T0 + 1) == unknown.challenge(T0 + 1)


def test_unknown_user_costs_the_same_hashing():
    hashed = []
    real = dict(HASHES)

    def counting(h):
        def count(text):
            hashed.append(len(text))
            return h(text)

        return count

    auth = _server()
    p1, _ = _answer(auth, T0, "201", "guess")
    p2, _ = _answer(auth, T0, "999", "guess")
    for name in real:
        HASHES[name] = (counting(real[name][0]), real[name][1])
    try:
        _check(auth, p1, T0)
        known = list(hashed)
        del hashed[:]
        _check(auth, p2, T0)
    finally:
        HASHES.update(real)
    assert known == hashed and len(known) == 2  # H(A2) and the response: no HA1 to make


def test_unknown_or_empty_password_user_never_authenticates():
    auth = _server()
    # even a response made from the dummy HA1 used for unknown users gets nowhere
    ch = parse_challenge(auth.challenge(T0)[1])
    a1 = "0" * 32
    response = request_digest(HASHES["MD5"][0], a1, "REGISTER", "sip:z", ch["nonce"], "00000001", "c", "auth")
    params = {"username": "999", "realm": "zongji.local", "nonce": ch["nonce"], "uri": "sip:z"}
    params.update(response=response, algorithm="MD5", qop="auth", nc="00000001", cnonce="c")
    assert auth.check("REGISTER", params, lambda u, a: None, T0) == FAIL
    params["username"] = "203"
    assert auth.check("REGISTER", params, lambda u, a: "", T0) == FAIL
    assert auth.check("REGISTER", params, lambda u, a: a1, T0) == OK  # the response is well made


def test_the_lookup_is_asked_for_the_ha1_of_the_algorithm_used():
    asked = []

    def lookup(user, algorithm):
        asked.append((user, algorithm))
        return _lookup(user, algorithm)

    auth = _server()
    for which in (0, 1):
        params, _ = _answer(auth, T0, "201", USERS["201"], which=which)
        assert auth.check("REGISTER", params, lookup, T0) == OK
    assert asked == [("201", "SHA-256"), ("201", "MD5")]
    # the MD5 HA1 handed out for SHA-256 (a mixed-up table) does not pass
    params, _ = _answer(auth, T0, "201", USERS["201"], which=0)
    assert auth.check("REGISTER", params, lambda u, a: _lookup(u, "MD5"), T0) == FAIL


def test_ha1_is_hash_of_user_realm_password():
    from zongji.sip.md5 import md5_hex

    # RFC 2617 section 3.5's user: the MD5 HA1 a Kamailio `ha1` column would hold
    assert ha1("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life") == md5_hex(
        "Mufasa:testrealm@host.com:Circle Of Life"
    )
    assert ha1("md5", "u", "r", "p") == ha1("MD5", "u", "r", "p")
    assert len(ha1("SHA-256", "u", "r", "p")) == 64
    raises(ValueError, ha1, "SHA-512-256", "u", "r", "p")
    lookup = digest.from_passwords(USERS.get, "zongji.local")
    assert lookup("201", "MD5") == _lookup("201", "MD5") and lookup("299", "MD5") is None


def test_expired_nonce_is_stale_only_with_the_right_password():
    auth = _server(nonce_ttl_ms=60000)
    good, ch = _answer(auth, T0, "201", USERS["201"])
    later = T0 + 60001
    assert _check(auth, good, later) == STALE
    assert auth.reason == "nonce expired"
    bad, _ = _answer(auth, T0, "201", "guess", challenge=ch)
    assert _check(auth, bad, later) == FAIL
    # the phone retries with a fresh nonce and gets in
    again, _ = _answer(auth, later, "201", USERS["201"])
    assert _check(auth, again, later) == OK


def test_nonce_from_the_future_is_not_accepted():
    auth = _server()
    params, _ = _answer(auth, T0, "201", USERS["201"])
    assert _check(auth, params, T0 - 1) == STALE


def test_forged_nonces_never_pass():
    auth = _server()
    real = parse_challenge(auth.challenge(T0)[0])
    nonce = real["nonce"]
    flip = "1" if nonce[-1] != "1" else "2"
    forged = [
        nonce[:-1] + flip,  # tag altered
        "%012x" % (T0 + 10**9) + nonce[12:],  # issue time pushed forward
        nonce.upper(),
        nonce[:-1],
        nonce + "0",
        "0" * 52,
        "",
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        parse_challenge(Authenticator("zongji.local", b"other key").challenge(T0)[0])["nonce"],
    ]
    for f in forged:
        ch = dict(real)
        ch["nonce"] = f
        params, _ = _answer(auth, T0, "201", USERS["201"], challenge=ch)
        for now in (T0, T0 + 10**9):
            code = _check(auth, params, now)
            assert code in (FAIL, STALE), f
            assert code != OK


def test_replayed_nonce_count_is_refused():
    auth = _server()
    p1, ch = _answer(auth, T0, "201", USERS["201"], nc=1)
    assert _check(auth, p1, T0) == OK
    assert _check(auth, p1, T0 + 10) == STALE  # the same request again
    assert auth.reason == "nonce count replayed"
    p3, _ = _answer(auth, T0, "201", USERS["201"], nc=3, challenge=ch)
    assert _check(auth, p3, T0 + 20) == OK  # counts may skip, but only go up
    p2, _ = _answer(auth, T0, "201", USERS["201"], nc=2, challenge=ch)
    assert _check(auth, p2, T0 + 30) == STALE


def test_huge_nonce_count_asks_for_a_new_nonce():
    auth = _server()
    params, _ = _answer(auth, T0, "201", USERS["201"], nc=0xFFFFFFFF)
    assert params["nc"] == "ffffffff"
    assert _check(auth, params, T0) == STALE
    assert auth.reason == "nonce count too high"


def test_rfc2069_answer_is_single_use():
    auth = _server()
    ch = parse_challenge(auth.challenge(T0)[1])  # MD5
    del ch["qop"]
    params, _ = _answer(auth, T0, "201", USERS["201"], challenge=ch)
    assert "qop" not in params and "nc" not in params
    assert _check(auth, params, T0) == OK
    assert _check(auth, params, T0 + 1) == STALE


def test_rfc2069_answer_can_be_switched_off_and_never_with_sha256():
    class Strict(Authenticator):
        allow_no_qop = False

    auth = _server(Strict)
    ch = parse_challenge(auth.challenge(T0)[1])
    del ch["qop"]
    params, _ = _answer(auth, T0, "201", USERS["201"], challenge=ch)
    assert _check(auth, params, T0) == BAD
    auth = _server()
    ch = parse_challenge(auth.challenge(T0)[0])  # SHA-256
    del ch["qop"]
    params, _ = _answer(auth, T0, "201", USERS["201"], challenge=ch)
    assert _check(auth, params, T0) == BAD
    assert auth.reason == "qop=auth is required"


def test_wrong_realm_fails():
    auth = _server()
    ch = parse_challenge(auth.challenge(T0)[0])
    ch["realm"] = "elsewhere"
    params, _ = _answer(auth, T0, "201", USERS["201"], challenge=ch)
    assert _check(auth, params, T0) == FAIL
    assert auth.reason == "wrong realm"


def test_malformed_credentials_are_bad_with_a_reason():
    auth = _server()
    good, _ = _answer(auth, T0, "201", USERS["201"])
    cases = [
        ({"uri": None}, "missing uri parameter"),
        ({"response": None}, "missing response parameter"),
        ({"username": None}, "missing username parameter"),
        ({"algorithm": "MD5-sess"}, "algorithm MD5-sess is not supported"),
        ({"algorithm": "SHA-512-256"}, "algorithm SHA-512-256 is not supported"),
        ({"qop": "auth-int"}, "qop auth-int is not supported"),
        ({"nc": "1"}, "nc must be 8 hex digits"),
        ({"nc": "0000000g"}, "nc must be 8 hex digits"),
        ({"nc": "00000000"}, "nc must start at 00000001"),
        ({"cnonce": None}, "missing cnonce parameter"),
        ({"userhash": "true"}, "userhash is not supported"),
        ({"response": "abc"}, "response must be 64 hex digits"),
        ({"response": "z" * 64}, "response must be 64 hex digits"),
    ]
    for change, reason in cases:
        params = dict(good)
        for k, v in change.items():
            if v is None:
                del params[k]
            else:
                params[k] = v
        assert _check(auth, params, T0) == BAD, change
        assert auth.reason == reason, (change, auth.reason)


def test_evicted_nonce_cannot_come_back():
    class Small(Authenticator):
        max_nonces = 2

    auth = _server(Small)
    step = 2000
    unused, unused_ch = _answer(auth, T0, "201", USERS["201"])
    first, first_ch = _answer(auth, T0 + step, "201", USERS["201"])
    assert _check(auth, first, T0 + step) == OK
    for i in (2, 3):  # two more nonces push the first out of the table
        p, _ = _answer(auth, T0 + i * step, "201", USERS["201"])
        assert _check(auth, p, T0 + i * step) == OK
    again, _ = _answer(auth, T0, "201", USERS["201"], nc=2, challenge=first_ch)
    assert _check(auth, again, T0 + 4 * step) == STALE
    assert auth.reason == "nonce no longer tracked"
    # an older nonce never used is refused too (we cannot tell it from an evicted one) ...
    assert _check(auth, unused, T0 + 4 * step) == STALE
    # ... but one issued after the eviction is fine
    fresh, _ = _answer(auth, T0 + 4 * step, "201", USERS["201"])
    assert _check(auth, fresh, T0 + 4 * step) == OK
    assert len(auth._seen) == 2


def test_evicted_nonce_cannot_come_back_within_the_same_millisecond():
    class Small(Authenticator):
        max_nonces = 2

    auth = _server(Small)
    first, ch = _answer(auth, T0, "201", USERS["201"])
    assert _check(auth, first, T0) == OK
    for _ in range(2):  # two more in the same ms push it out; the floor is that ms
        p, _ = _answer(auth, T0, "201", USERS["201"])
        assert _check(auth, p, T0) == OK
    again, _ = _answer(auth, T0, "201", USERS["201"], nc=2, challenge=ch)
    assert _check(auth, again, T0) == STALE and auth.reason == "nonce no longer tracked"
    assert _check(auth, first, T0) == STALE  # nor the first answer itself


def test_the_table_size_is_no_rate_cap():
    # 64 entries, 2,000 authentications in one second, each answered 5 ms after its challenge
    # with 4 others in flight (the old 1,024 ms floor went STALE after ~62 a second)
    auth = _server()
    pending = []
    stale = 0
    for i in range(2000):
        now = T0 + i // 2  # two challenges a ms
        pending.append(_answer(auth, now, "201", USERS["201"])[0])
        if len(pending) > 10:
            if _check(auth, pending.pop(0), now) != OK:
                stale += 1
    assert stale == 0 and len(auth._seen) == Authenticator.max_nonces


def test_issue_times_stay_small_ints_over_weeks_and_still_order():
    auth = _server()
    day = 86400000
    for d in range(0, 30):  # a month of uptime, a refresh a day
        now = T0 + d * day
        p, ch = _answer(auth, now, "201", USERS["201"])
        assert _check(auth, p, now) == OK
        assert _check(auth, p, now + 1) == STALE  # replay
        assert -0x40000000 <= auth._floor if auth._floor is not None else True
        for t in auth._ring_t:
            assert -0x40000000 <= t < 0x40000000, t
    assert auth._base > T0  # the base moved up


def test_replay_table_stays_bounded():
    auth = _server()
    for i in range(200):
        p, _ = _answer(auth, T0 + i * 1024, "201", USERS["201"])
        assert _check(auth, p, T0 + i * 1024) == OK
    assert len(auth._seen) == Authenticator.max_nonces


def test_replay_table_memory_budget():
    if not IS_MICROPYTHON:
        raise SkipTest("gc.mem_alloc is MicroPython only")
    import gc

    ids = [(i * 2654435) & 0x3FFFFFFF for i in range(300)]  # allocated before measuring
    gc.collect()
    before = gc.mem_alloc()
    auth = Authenticator("zongji.local", b"0123456789abcdef", random_bytes=counter_random())
    for i in range(300):
        auth._remember(ids[i], 1000000 + i, 1000 + i)
    used = gc.mem_alloc() - before
    assert len(auth._seen) == 64
    assert used < 3072, used


# ---- parsing --------------------------------------------------------------------------------


def test_parse_quoted_strings_escapes_and_commas():
    p = parse_auth(
        'digest USERNAME="a\\"b\\\\c", Realm = "x, y" ,uri="sip:a@b;x=1,2", nonce="", response=abc,, qop=auth'
    )
    assert p == {
        "username": 'a"b\\c',
        "realm": "x, y",
        "uri": "sip:a@b;x=1,2",
        "nonce": "",
        "response": "abc",
        "qop": "auth",
    }


def test_respond_quotes_what_parse_reads_back():
    ch = {"realm": 'r "quoted" \\ back', "nonce": "n,1", "opaque": "o=p"}
    value = respond(ch, "INVITE", "sip:x@y", 'we"ird', "pw", "cn", 1)
    sent = parse_auth(value)
    assert sent["realm"] == ch["realm"] and sent["nonce"] == "n,1"
    assert sent["username"] == 'we"ird' and sent["opaque"] == "o=p"


def test_garbage_headers_raise_value_error():
    garbage = [
        "",
        "   ",
        "Digest",
        "Digest ",
        "Basic dXNlcjpwYXNz",
        "Digestusername=x",
        'Digest username="unterminated',
        'Digest username="a\\',
        "Digest username",
        "Digest username=",
        "Digest =x",
        "Digest username x",
        'Digest username="a" realm="b"',
        'Digest username="a", username="b"',
        "Digest a=b, Digest c=d",
        'Digest username="a\x00b"',
        "Digest username=a\x01b",
        'Digest username="line\r\nInjected: yes"',
        "Digest " + ", ".join("p%d=1" % i for i in range(MAX_PARAMS + 1)),
        "Digest username=" + "x" * MAX_HEADER,
        'Digest username=a"b',
        "Digest username=a=b",
        "Digest é=1",
        None,
        b"Digest username=x",
    ]
    for value in garbage:
        raises(ValueError, parse_auth, value)
        raises(ValueError, parse_challenge, value)


def _lcg(seed):
    state = [seed]

    def next_int(n):
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return state[0] % n

    return next_int


def test_mutated_headers_give_value_error_or_a_verdict_never_a_crash():
    auth = _server()
    good = respond(
        parse_challenge(auth.challenge(T0)[0]), "REGISTER", "sip:zongji.local", "201", USERS["201"], "c0ffee", 1
    )
    alphabet = '"\\,= \t\r\nDigestauth0aZ:\x00\x7f'
    rand = _lcg(2617)
    parsed = 0
    for _ in range(600):
        s = list(good)
        for _ in range(1 + rand(4)):
            op, pos = rand(3), rand(len(s) + 1)
            if op == 0 and pos < len(s):
                del s[pos]
            elif op == 1:
                s.insert(pos, alphabet[rand(len(alphabet))])
            elif pos < len(s):
                s[pos] = alphabet[rand(len(alphabet))]
        value = "".join(s)
        try:
            params = parse_auth(value)
        except ValueError:
            continue
        parsed += 1
        code = _check(auth, params, T0)
        assert code in (OK, STALE, FAIL, BAD), value
        if code == OK:  # only a mutation that left every hashed value intact may pass
            assert params["response"] == parse_auth(good)["response"]
    assert parsed > 50


# ---- client side ----------------------------------------------------------------------------


def test_pick_challenge_takes_the_first_usable_one():
    values = [
        "Basic realm=x",
        'Digest realm="a", nonce="1", algorithm=SHA-512-256, qop="auth"',
        'Digest realm="a", nonce="2", qop="auth-int"',
        "Digest garbage",
        'Digest realm="a", nonce="3", algorithm=SHA-256, qop="auth"',
        'Digest realm="a", nonce="4", algorithm=MD5, qop="auth"',
    ]
    assert pick_challenge(values)["nonce"] == "3"
    assert pick_challenge(values[:4]) is None
    assert pick_challenge(_server().challenge(T0))["algorithm"] == "SHA-256"


def test_respond_refuses_what_it_cannot_answer():
    raises(ValueError, respond, {"realm": "r"}, "REGISTER", "sip:x", "u", "p", "c", 1)
    raises(
        ValueError,
        respond,
        {"realm": "r", "nonce": "n", "algorithm": "SHA-512-256"},
        "REGISTER",
        "sip:x",
        "u",
        "p",
        "c",
        1,
    )
    raises(ValueError, respond, {"realm": "r", "nonce": "n", "qop": "auth-int"}, "REGISTER", "sip:x", "u", "p", "c", 1)
    ok = {"realm": "r", "nonce": "n", "qop": "auth"}
    raises(ValueError, respond, ok, "REGISTER", "sip:x", "u", "p", "c", 0)
    raises(ValueError, respond, ok, "REGISTER", "sip:x", "u", "p", "", 1)
    raises(ValueError, respond, ok, "REGISTER", "sip:x", "u\r\nX: y", "p", "c", 1)

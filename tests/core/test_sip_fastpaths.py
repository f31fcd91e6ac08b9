"""The C-speed fast paths of the SIP parsers (str.strip / find / slices instead of a Python loop
per character) against the exact scanners they stand in front of: whatever a fast path accepts,
the exact one reads the same way, and everything else still gets the same error."""

from _support import raises
from zongji.sip import auth, message, parser
from zongji.sip.auth import parse_auth
from zongji.sip.headers import parse_address, parse_params, parse_via
from zongji.sip.parser import parse
from zongji.sip.uri import ParseError, parse_hostport, parse_uri, to_uint
from zongji.switch.registrar import _pair
from zongji.text import TOKEN_CHARS, is_digits, is_token

SAMPLES = (
    'Digest username="3000", realm="zongji", nonce="0000000003e8aa44d2f8b7ea", uri="sip:127.0.0.1:5060", '
    'response="6629fae49393a05397450978efacdcd1", algorithm=MD5, cnonce="c1", qop=auth, nc=00000001',
    'Digest username="3000",realm="zongji",nonce="abc",uri="sip:a@b",response="00",algorithm=MD5',
    'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
    'uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
    'digest username="a b", realm="r,s", qop="auth,auth-int", nonce=""',
    '  Digest username="x"  ',
    'Digest username="x",',
    'Digest username="x", ,realm="r"',
    'Digest username="x",  realm="r"',
    'Digest username="x",\trealm="r"',
    'Digest username="x" , realm="r"',
    'Digest  username="x"',
    "Digest\tusername=x",
    'Digest username="x", username="y"',
    'Digest username="x", Username="y"',
    'Digest username="a\\"b"',
    'Digest username="a\\\\b"',
    'Digest username="a\x01b"',
    'Digest username="a\x7fb"',
    'Digest username="a\tb"',
    'Digest username="王小明", realm="r"',
    'Digest username="x", realm=r"s"',
    'Digest username="x", realm=r s',
    'Digest username="x", realm=',
    'Digest username="x", realm',
    'Digest username="x", realm="r',
    'Digest username="x", =r',
    'Digest username="x", re alm="r"',
    'Digest username="x", realm = "r"',
    'Digest username="x", uri=sip:a@b',
    'Digest username="x", nc=0000000%',
    'Digest username="x"realm="r"',
    "Basic Zm9vOmJhcg==",
    "Digest",
    "Digest ",
    "",
    "Digest a=1, b=2, c=3, d=4, e=5, f=6, g=7, h=8, i=9, j=10, k=11, l=12, m=13, n=14, o=15, p=16, "
    "q=17, r=18, s=19, t=20, u=21, v=22, w=23, x=24",
    "Digest a=1, b=2, c=3, d=4, e=5, f=6, g=7, h=8, i=9, j=10, k=11, l=12, m=13, n=14, o=15, p=16, "
    "q=17, r=18, s=19, t=20, u=21, v=22, w=23, x=24, y=25",
)


def _exact(value):
    try:
        return auth._parse(value, "authorization")
    except ValueError:
        return None


def _rng(seed):
    state = [seed]

    def next_int(n):
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return (state[0] >> 8) % n

    return next_int


def _mutations(count):
    pick = _rng(7)
    chars = ' ,="\\\t\r\nxX0;:@\x01\x7f\u00e9'
    for i in range(count):
        s = SAMPLES[pick(len(SAMPLES))]
        for _ in range(1 + pick(3)):
            at = pick(len(s) + 1)
            what = pick(3)
            if what == 0:
                s = s[:at] + chars[pick(len(chars))] + s[at:]
            elif what == 1:
                s = s[:at] + s[at + 1 :]
            else:
                s = s[:at] + chars[pick(len(chars))] + s[at + 1 :]
        yield s


def test_fast_authorization_reads_as_the_exact_scanner_does():
    accepted = 0
    for value in SAMPLES + tuple(_mutations(1500)):
        fast = auth._fast(value)
        if fast is not None:
            accepted += 1
            assert fast == _exact(value), value
        got = None
        try:
            got = parse_auth(value)
        except ValueError:
            pass
        assert got == _exact(value), value
    assert accepted > 50  # the fast path does take the plain ones


def test_parse_auth_hands_out_copies_of_a_repeated_value():
    value = SAMPLES[0]
    first = parse_auth(value)
    first["username"] = "9999"
    again = parse_auth(value)
    assert again["username"] == "3000" and again is not first
    for _ in range(2):  # a malformed value is refused every time, never remembered
        assert raises(ValueError, parse_auth, 'Digest username="x')


def _loop_token(s):
    if not s:
        return False
    for c in s:
        if not (("a" <= c <= "z") or ("A" <= c <= "Z") or ("0" <= c <= "9") or c in TOKEN_CHARS):
            return False
    return True


def test_token_and_digit_runs_match_the_character_loop():
    pick = _rng(3)
    alphabet = "aZ09-.!%*_+`'~ ,;:\"/=()<>@[]?{}\\\t\r\n\x00\x7f\u00e9\u0663\uff11王"
    for i in range(3000):
        s = "".join([alphabet[pick(len(alphabet))] for _ in range(pick(6))])
        assert is_token(s) == _loop_token(s), repr(s)
        digits = "".join([c for c in s if c in "09"]) + s[:1]
        ok = bool(digits) and all("0" <= c <= "9" for c in digits)
        assert is_digits(digits) == ok, repr(digits)
        assert to_uint(digits) == (int(digits) if ok else -1), repr(digits)


def test_uri_parts_keep_their_errors():
    assert parse_uri("sip:%61lice@example.com").user == "alice"  # escapes take the exact loop
    assert parse_uri("sip:王@example.com").user == "王"  # raw UTF-8 in a user too
    for bad, why in (
        ("sip:a b@example.com", "bad character in user"),
        ("sip:alice@exa mple.com", "bad host"),
        ("sip:alice@ex\u00e9.com", "bad host"),
        ("sip:alice@[::g]", "bad ipv6 reference"),
        ("sip:alice@host;a=\u00e9", "bad character in uri parameter"),
        ("s~p:alice@host", "bad scheme"),
        ("sip:alice:p w@host", "bad character in password"),
        ("sip:alice@host:5o60", "bad port"),
    ):
        try:
            parse_uri(bad)
        except ParseError as e:
            assert str(e) == why, (bad, str(e))
        else:
            raise AssertionError(bad)
    assert parse_hostport("[2001:db8::1]:5060") == ("[2001:db8::1]", 5060)


def test_header_values_keep_their_errors():
    assert parse_params(";tag=1;lr;maddr=[::1]")["maddr"] == "[::1]"
    assert raises(ParseError, parse_params, ";tag=a b")
    assert raises(ParseError, parse_params, ";tag=\u00e9")
    assert parse_address("王小明 <sip:201@pbx>").display == "王小明"
    assert raises(ParseError, parse_address, "a@b <sip:201@pbx>")
    assert raises(ParseError, parse_address, "sip:201@pbx?x=y")
    assert parse_via("SIP/2.0/UDP h;received=10.0.0.1;maddr=h.example").received == "10.0.0.1"
    assert raises(ParseError, parse_via, "SIP/2.0/UDP h;received=10.0.0.1/8")


HEAD = (
    "REGISTER sip:127.0.0.1:5060 SIP/2.0",
    "Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-1;rport",
    "v: SIP/2.0/UDP 10.0.0.1, SIP/2.0/UDP 10.0.0.2",
    "Max-Forwards: 70",
    "From: <sip:3000@127.0.0.1>;tag=1",
    "To : <sip:3000@127.0.0.1>",
    "Call-ID: 1@h",
    "CSeq: 1 REGISTER",
    'Contact: "a, b" <sip:3000@10.0.0.1>, <sip:3000@10.0.0.2>',
    "Allow: INVITE, , ACK",
    "X-Odd:",
    "Bad Name: x",
    "NoColon",
    'Route: <sip:p1>, "unterminated <sip:p2>',
    "",
)


def test_plain_headers_match_the_general_reader():
    pick = _rng(11)
    for i in range(300):
        lines = [HEAD[0]] + [HEAD[1 + pick(len(HEAD) - 1)] for _ in range(pick(10))]
        assert parser._plain_headers(lines) == parser._read_headers(lines), lines


def test_lines_the_plain_reader_leaves_to_the_general_one():
    base = "\r\n".join(HEAD[:9]) + "\r\n"
    for extra, err in (
        ("Subject: a\r\n b\r\n", None),  # folded: joined with one space
        ("Subject: a\rb\r\n", "bad line ending in the headers"),
        ("Subject: a\nb\r\n", "bad line ending in the headers"),
    ):
        data = (base + extra + "Content-Length: 0\r\n\r\n").encode()
        if err is None:
            assert parse(data).get("subject") == "a b"
        else:
            try:
                parse(data)
            except ParseError as e:
                assert str(e) == err and e.request is not None
            else:
                raise AssertionError(extra)


def test_header_names_are_remembered_within_a_bound():
    for i in range(200):
        assert message.header_name("x-n%d-y" % i) == "X-N%d-Y" % i
    assert len(message._NAMES) <= message._NAMES_MAX
    assert message.header_name("www-authenticate") == "WWW-Authenticate"


def test_pair_finds_a_number_after_its_port_only():
    flat = []
    for i in range(999):
        flat += [40000 + (i % 3), str(3000 + i)]
    assert _pair(flat, 40000, "3000") == 1
    assert _pair(flat, 40001, "3000") == -1
    assert _pair(flat, 40002, "3998") == 1997
    assert _pair(flat, 40000, "4000") == -1
    flat += [5060, "3000"]
    assert _pair(flat, 5060, "3000") == len(flat) - 1
    assert _pair([5060, "201"], 201, "5060") == -1  # a port is never a number, nor the reverse


def test_changing_one_header_keeps_the_other_parsed_views():
    data = "\r\n".join(HEAD[:9]) + "\r\nContent-Length: 0\r\n\r\n"
    req = parse(data.encode())
    to = req.to_addr()
    contacts = req.contacts()
    vias = req.get_all("via")
    vias[0] = vias[0] + ";received=10.9.9.9"
    req.set_all("via", vias)  # what the transaction layer does on receipt
    assert req.to_addr() is to and req.contacts() is contacts  # not parsed again
    assert req.via().received == "10.9.9.9"  # the changed header is
    req.set("to", "<sip:3001@127.0.0.1>;tag=9")
    assert req.to_addr().tag == "9" and req.to_addr().uri.user == "3001"
    req.add("contact", "<sip:3000@10.0.0.3>")
    assert [str(c.uri) for c in req.contacts()][-1] == "sip:3000@10.0.0.3"
    req.remove("contact")
    assert req.contacts() == []
    req.set("Max-Forwards", "69")
    assert req.max_forwards() == 69 and req.get("MAX-FORWARDS") == "69" and req.get("v") == req.get("via")


def _register(branch, contact="<sip:3000@10.0.0.1:5062>", frm="<sip:3000@127.0.0.1>;tag=1"):
    return (
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK%s;rport\r\n"
        "From: %s\r\nTo: <sip:3000@127.0.0.1>\r\nCall-ID: 1@h\r\nCSeq: 1 REGISTER\r\n"
        "Contact: %s\r\nContent-Length: 0\r\n\r\n" % (branch, frm, contact)
    ).encode()


def test_a_recurring_header_value_is_parsed_once():
    message.view_memo()
    a = parse(_register("a"))
    b = parse(_register("b"))
    assert b.from_addr() is a.from_addr() and b.to_addr() is a.to_addr() and b.contacts()[0] is a.contacts()[0]
    assert b.uri is a.uri
    assert b.via() is not a.via() and b.via().branch == "z9hG4bKb"  # another value, its own view
    c = parse(_register("c", contact="<sip:3000@10.0.0.9:5070>"))
    assert str(c.contacts()[0].uri) == "sip:3000@10.0.0.9:5070"  # a changed Contact is read anew
    for msg in (a, b, c):  # what the memo hands out is what parsing the text gives
        assert msg.from_addr() == parse_address(msg.get("from"))
        assert str(msg.via()) == str(parse_via(msg.get("via")))


def test_the_view_memo_is_bounded_and_the_same_when_off():
    message.view_memo()
    for i in range(300):
        parse(_register("x%d" % i, frm="<sip:3000@127.0.0.1>;tag=%d" % i))
    size = message._memo_size[0]
    for memo in (message._ADDRESSES, message._CONTACTS, message._VIAS, message._URIS):
        assert 0 < len(memo) <= size
    pick = _rng(5)
    samples = []
    for i in range(200):
        lines = [HEAD[0]] + [HEAD[1 + pick(len(HEAD) - 1)] for _ in range(pick(10))] + ["", ""]
        samples.append("\r\n".join(lines).encode())

    def read(data):
        try:
            m = parse(data)
        except ParseError as e:
            return "error: %s" % e
        return [str(v) for v in m.vias() + m.contacts() + m.routes()] + [str(m.from_addr()), str(m.to_addr())]

    on = [read(d) for d in samples]
    old = message.view_memo(0)
    try:
        assert not message._ADDRESSES and [read(d) for d in samples] == on
        assert not message._ADDRESSES and not message._VIAS  # off: nothing kept
    finally:
        message.view_memo(old)


def test_a_value_that_does_not_parse_is_never_kept():
    message.view_memo()
    bad = _register("a", contact="<sip:3000@10.0.0.1:99999>")
    for _ in range(2):
        raises(ParseError, parse, bad)
    assert "<sip:3000@10.0.0.1:99999>" not in message._CONTACTS


def test_a_via_stamped_on_receipt_leaves_the_shared_view_as_sent():
    from zongji.sip.transaction import TransactionLayer

    message.view_memo()
    tl = TransactionLayer("127.0.0.1:5060")
    data = _register("st")
    first = parse(data)
    sent = first.via()
    tl.receive(data, ("192.0.2.7", 40000), 1000)  # rport: received= and rport= added
    assert sent.received is None and sent.rport is None and str(sent) == first.get("via")
    again = parse(data)
    assert again.via().received is None and again.via().wants_rport


def test_spelled_header_names_read_as_the_general_reader_does():
    for name in ("Via", "VIA", "via", "v", "V", "Call-ID", "Call-Id", "call-id", "CALL-ID", "i", "CSeq", "Cseq",
                 "Via ", "Via\t", "Contact", "m", "X-Via", "Vi a", "WWW-Authenticate", "Www-Authenticate"):  # fmt: skip
        lines = [HEAD[0], "%s: x" % name, "%s:" % name]
        assert parser._plain_headers(lines) == parser._read_headers(lines), name


def test_a_via_stamped_on_receipt_is_kept_parsed():
    from zongji.sip.transaction import NewRequest, TransactionLayer

    message.view_memo()
    tl = TransactionLayer("127.0.0.1:5060")
    ev = [e for e in tl.receive(_register("kept"), ("192.0.2.8", 40001), 1000) if isinstance(e, NewRequest)][0]
    via = ev.request.via()
    assert via.received == "192.0.2.8" and via.rport == 40001
    assert str(via) == ev.request.get("via") and parse_via(ev.request.get("via")).rport == 40001

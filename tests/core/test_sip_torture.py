"""The RFC 4475 torture messages, plus truncated and mutated copies of them.

Every valid message parses (and survives parse -> to_bytes -> parse); every invalid one raises
ParseError with the answer RFC 4475 names; the application-layer ones parse or fail with
ParseError and expose what the application needs to answer them. Broken copies of all of
them must only ever parse or raise ParseError.
"""

from _support import IS_MICROPYTHON, TESTDATA, raises, read_bytes
from zongji.sip.message import Request, Response
from zongji.sip.parser import parse
from zongji.sip.uri import ParseError

DIR = TESTDATA + "/rfc4475/"

VALID = (
    "wsinv intmeth esc01 esc02 escnull lwsdisp longreq dblreq semiuri transports mpart01 "
    "unreason noreason badbranch inv2543"
).split()  # 3.1.1, 3.2 and 3.4
# 3.1.2: (file, status to answer, what the error says); status None: a response, dropped
INVALID = (
    ("badinv01", 400, "bad via header: empty parameter"),
    ("clerr", 400, "bad content-length header: 9999 is more than"),
    ("ncl", 400, "bad content-length header"),
    ("scalar02", 400, "bad cseq header: number too large"),
    ("scalarlg", None, "bad cseq header: number too large"),
    ("quotbal", 400, "bad to header: unterminated quoted string"),
    ("ltgtruri", 400, "bad request-uri: it must not be enclosed in <>"),
    ("lwsruri", 400, "bad request line"),
    ("lwsstart", 400, "bad request line"),
    ("trws", 400, "bad request line"),
    ("escruri", 400, "bad request-uri: headers are not allowed"),
    ("baddate", 400, "bad date header"),
    ("regbadct", 400, "bad contact header: a uri with '?' must be enclosed in <>"),
    ("badaspec", 400, "bad to header: no spaces allowed inside <uri>"),
    ("baddn", 400, "bad from header: bad display name"),
    ("badvers", 505, "unsupported sip version SIP/7.0"),
    ("mismatch01", 400, "bad cseq header: method INVITE does not match"),
    ("mismatch02", 400, "bad cseq header: method INVITE does not match"),
    ("bigcode", None, "bad status code"),
)
APPLICATION = (
    "insuf unkscm novelsc unksm2 bext01 invut regaut01 multi01 mcl01 bcast zeromf cparam01 cparam02 regescrt sdp01"
).split()  # 3.3


def load(name):
    return read_bytes(DIR + name + ".dat")


def parsed(name):
    return parse(load(name))


def round_trip(m):
    """parse(to_bytes(m)) has the same start line, headers (Content-Length aside) and body."""
    again = parse(m.to_bytes())
    assert type(again) is type(m)
    if isinstance(m, Request):
        assert again.method == m.method and again.uri == m.uri
    else:
        assert again.status == m.status and again.reason == m.reason
    strip = lambda hs: [h for h in hs if h[0] != "content-length"]  # noqa: E731
    assert strip(again.headers) == strip(m.headers)
    assert again.body == m.body
    assert again.get("content-length") == str(len(m.body))
    return again


def test_every_torture_message_is_classified():
    import os

    names = sorted(n[:-4] for n in os.listdir(DIR) if n.endswith(".dat"))
    listed = sorted(VALID + [n for n, _, _ in INVALID] + APPLICATION)
    assert names == listed


def test_valid_messages_parse_and_round_trip():
    for name in VALID:
        m = parsed(name)
        assert isinstance(m, (Request, Response)), name
        round_trip(m)


def test_invalid_messages_get_the_answer_rfc4475_names():
    for name, status, why in INVALID:
        e = raises(ParseError, parse, load(name))
        assert str(e).startswith(why), (name, str(e))
        if status is None:
            assert e.request is None, name  # a response: dropped, never answered
        else:
            assert e.status == status, name
            assert e.request is not None and e.request.get("call-id"), name


def test_application_layer_messages_parse_or_fail_cleanly():
    for name in APPLICATION:
        try:
            round_trip(parsed(name))
        except ParseError as e:
            assert e.status == 400, name


def test_wsinv_whitespace_everywhere():
    m = parsed("wsinv")
    assert m.uri.params.get("unknownparam") is None and "unknownparam" in m.uri.params
    assert m.to_addr().tag == "1918181833n" and m.to_addr().uri.user == "vivekg"
    assert m.from_addr().display == 'J Rosenberg \\"' and m.from_addr().tag == "98asjd8"
    assert m.max_forwards() == 68 and m.cseq() == (9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in m.vias()] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert m.get("subject") == ""
    assert m.get("newfangledheader") == "newfangled value continued newfangled value"
    assert m.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    route = m.routes()[0]
    assert "lr" in route.uri.params and route.uri.params["unknownwith"] == "value"
    contact = m.contacts()[0]
    assert contact.display == 'Quoted string ""'
    params = [("newparam", "newvalue"), ("secondparam", None), ("q", "0.33")]
    assert contact.params.items() == params
    assert len(m.body) == 150 and m.body.startswith(b"v=0\r\n")


def test_intmeth_strange_but_legal_tokens():
    m = parsed("intmeth")
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.method == method and m.cseq() == (139122385, method)
    assert m.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.uri.host == "example.com"
    assert m.to_addr().display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.to_addr().uri.user == m.uri.user
    f = m.from_addr()
    assert f.display == "token1~` token2'+_ token3*%!.-" and f.tag == "_token~1'+`*%!-."
    assert f.params["fromParam''~+*_!.-%"] == '"работающий"'
    assert m.call_id() == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.via().branch == "z9hG4bK-.!%66*_+`'~"
    assert m.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    assert m.max_forwards() == 255


def test_escapes_are_decoded_where_they_mean_something():
    m = parsed("esc01")
    assert (m.uri.user, m.uri.host) == ("sips:user@example.com", "example.net")
    assert m.to_addr().uri.user == "user" and m.from_addr().uri.user == "I have spaces"
    contact = m.contacts()[0]
    assert contact.uri.user == "caller" and "lr" in contact.uri.params
    assert contact.uri.params["name"] == "value%41"
    m = parsed("esc02")
    assert m.method == "RE%47IST%45R" and m.cseq()[1] == "RE%47IST%45R"  # not REGISTER
    assert m.to_addr().display == "%Z%45"
    assert [c.uri.host for c in m.contacts()] == ["host1.example.com", "host3.example.com"]
    assert m.get("C%6Fntact") == "<sip:alias2@host2.example.com>"  # a different header
    m = parsed("escnull")
    assert m.to_addr().uri.user == "null-\x00-null"
    assert [c.uri.user for c in m.contacts()] == ["\x00", "\x00\x00"]
    assert str(m.contacts()[1].uri) == "sip:%00%00@host5.example.com"


def test_other_hard_valid_messages():
    assert parsed("lwsdisp").from_addr().display == "caller"
    m = parsed("longreq")
    assert len(m.vias()) == 34 and m.vias()[-1].received == "192.0.2.5"
    assert m.to_addr().uri.port == 6000 and m.to_addr().display.endswith("proportion")
    assert len(m.from_addr().tag) > 100 and len(m.body) == 150
    m = parsed("dblreq")  # the INVITE after Content-Length: 0 is not part of this message
    assert m.method == "REGISTER" and m.body == b""
    assert m.call_id().startswith("dblreq.0ha0isndaksdj99")
    m = parsed("semiuri")
    assert (m.uri.user, m.uri.host) == ("user;par=u@example.net", "example.com")
    assert len(m.uri.params) == 0
    assert m.get_all("accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]
    transports = [v.transport for v in parsed("transports").vias()]
    assert transports == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    m = parsed("mpart01")
    assert len(m.body) == 553 and m.content_type() == "multipart/mixed"
    assert m.via().wants_rport and m.body.endswith(b"--7a9cbec02ceef655--\r\n")
    m = parsed("unreason")
    assert m.status == 200 and m.reason.startswith("= 2**3 * 5**2 но сто девяносто девять")
    assert parsed("noreason").reason == ""


def test_transaction_and_compatibility_messages():
    assert parsed("badbranch").via().branch == "z9hG4bK"  # 3.2: treated as an RFC 2543 branch
    m = parsed("inv2543")  # 3.4: no branch, no Max-Forwards, no From tag, no Content-Length
    assert m.via().branch is None and m.max_forwards() is None and m.from_addr().tag is None
    assert m.from_addr().uri.params["user"] == "phone"
    assert m.body.startswith(b"v=0\r\n") and m.body.endswith(b"RTP/AVP 0\r\n")  # to the end


def test_application_layer_building_blocks():
    e = raises(ParseError, parse, load("insuf"))
    assert str(e) == "missing from header" and e.request.get("cseq") == "193942 INVITE"
    assert str(raises(ParseError, parse, load("multi01"))) == "duplicate cseq header"
    assert str(raises(ParseError, parse, load("mcl01"))) == "duplicate content-length header"
    m = parsed("unkscm")  # answer 416
    assert not m.uri.is_sip and m.uri.scheme == "nobodyknowsthisscheme"
    assert m.uri.opaque == "totallyopaquecontent"
    assert parsed("novelsc").uri.scheme == "soap.beep"
    m = parsed("unksm2")  # answer 416 (or 400)
    assert m.to_addr().uri.scheme == "isbn" and m.from_addr().uri.scheme == "http"
    assert m.contacts()[0].uri.scheme == "name" and not m.contacts()[0].uri.is_sip
    m = parsed("bext01")  # answer 420 with Unsupported
    assert m.get_all("require") == ["nothingSupportsThis", "nothingSupportsThisEither"]
    assert m.get_all("proxy-require") == ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]
    assert parsed("invut").content_type() == "application/unknownformat"  # answer 415
    assert parsed("regaut01").get("authorization") == "NoOneKnowsThisScheme opaque-data=here"
    assert parsed("bcast").vias()[1].host == "255.255.255.255"
    assert parsed("zeromf").max_forwards() == 0  # answer 483
    c = parsed("cparam01").contacts()[0]
    assert "unknownparam" in c.params and "unknownparam" not in c.uri.params
    c = parsed("cparam02").contacts()[0]
    assert "unknownparam" in c.uri.params and "unknownparam" not in c.params
    c = parsed("regescrt").contacts()[0]  # a registrar strips the headers
    assert c.uri.headers["Route"] == "<sip:sip.example.com>"
    m = parsed("sdp01")  # answer 406
    assert m.get_all("accept") == ["text/nobodyKnowsThis"] and m.content_type() == "application/sdp"


# -- broken copies ----------------------------------------------------------------------------

ALL = VALID + [n for n, _, _ in INVALID] + APPLICATION


def _survives(data):
    # parse returns a message or raises ParseError, never anything else; what parses also
    # serialises and parses again
    try:
        m = parse(data)
    except ParseError as e:
        assert not str(e).startswith("internal error"), (str(e), data)
        assert e.status in (400, 505)
        return False
    round_trip(m)
    return True


def test_truncated_at_every_offset():
    step = 3 if IS_MICROPYTHON else 1  # the wasm interpreter is slower; every message still
    ok = 0
    for name in ALL:
        data = load(name)
        for cut in range(0, len(data), step):
            ok += _survives(data[:cut])
            # ... and cut but terminated, so the header parser sees every partial line
            ok += _survives(data[:cut] + b"\r\n\r\n")
    assert ok > 100


class _Lcg:
    # a fixed pseudo-random sequence, the same on CPython and MicroPython
    def __init__(self, seed):
        self.x = seed

    def next(self, n):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.x >> 8) % n


SPECIALS = b' \t\r\n:;,<>"\\%@=/?[]0\x00\x7f\xff\xc3'


def test_mutated_bytes():
    rnd = _Lcg(4475)
    rounds = 20 if IS_MICROPYTHON else 200
    for name in ALL:
        original = load(name)
        for _ in range(rounds):
            data = original
            for _ in range(1 + rnd.next(4)):
                at = rnd.next(len(data) + 1)
                kind = rnd.next(4)
                if kind == 0:
                    pick = rnd.next(len(SPECIALS))
                    new = SPECIALS[pick : pick + 1]
                elif kind == 1:
                    new = bytes([rnd.next(256)])
                elif kind == 2:
                    new = b""
                else:
                    new = data[rnd.next(len(data) + 1) :][: 1 + rnd.next(16)]
                # bytes slicing, not bytearray deletion: MicroPython's bytearray lacks it
                data = data[:at] + new + data[at + (kind != 3) + (kind == 2) * rnd.next(8) :]
            _survives(data)


def test_header_lines_shuffled_duplicated_and_dropped():
    rnd = _Lcg(3261)
    rounds = 5 if IS_MICROPYTHON else 20
    for name in ALL:
        data = load(name)
        end = data.find(b"\r\n\r\n")
        if end < 0:
            continue
        lines = data[:end].split(b"\r\n")
        for _ in range(rounds):
            head = lines[1:]
            for _ in range(3):
                i = rnd.next(len(head))
                j = rnd.next(len(head))
                head[i], head[j] = head[j], head[i]
            head.insert(rnd.next(len(head) + 1), head[rnd.next(len(head))])
            del head[rnd.next(len(head))]
            _survives(b"\r\n".join([lines[0]] + head) + data[end:])

"""SIP message layer: parsing, typed header views, serialising, building responses/requests."""

from _support import raises
from zongji.sip.headers import Address, Via, parse_address, parse_cseq, parse_via
from zongji.sip.message import Request, Response, header_name, make_request, make_response, reason_phrase
from zongji.sip.parser import parse
from zongji.sip.uri import URI, Params, ParseError, parse_uri


def msg(*lines, body=b""):
    """A datagram from header lines (CRLF-joined, empty line added)."""
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


INVITE_LINES = (
    "INVITE sip:201@pbx.example.com SIP/2.0",
    "Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK776asdhds;rport",
    "Max-Forwards: 70",
    'From: "王小明" <sip:200@pbx.example.com>;tag=1928301774',
    "To: <sip:201@pbx.example.com>",
    "Call-ID: a84b4c76e66710@192.0.2.10",
    "CSeq: 314159 INVITE",
    "Contact: <sip:200@192.0.2.10:5062>",
    "Content-Type: application/sdp",
)
SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"


def invite(*extra, body=SDP):
    return parse(msg(*(INVITE_LINES + extra), body=body))


def bad(data):
    return raises(ParseError, parse, data)


# -- requests, responses, start lines -----------------------------------------------------


def test_request_line_and_mandatory_headers():
    req = invite()
    assert isinstance(req, Request)
    assert req.method == "INVITE"
    assert req.uri.scheme == "sip" and req.uri.user == "201" and req.uri.host == "pbx.example.com"
    assert req.uri.port is None
    assert req.cseq() == (314159, "INVITE")
    assert req.call_id() == "a84b4c76e66710@192.0.2.10"
    assert req.max_forwards() == 70
    assert req.from_addr().display == "王小明"
    assert req.from_addr().tag == "1928301774"
    assert req.to_addr().tag is None
    assert req.contacts()[0].uri.port == 5062
    assert req.body == SDP
    assert req.content_type() == "application/sdp"


def test_response_status_line():
    resp = parse(msg("SIP/2.0 180 Ringing", *INVITE_LINES[1:7]))
    assert isinstance(resp, Response)
    assert (resp.status, resp.reason) == (180, "Ringing")
    assert resp.body == b""


def test_reason_phrase_may_be_empty_or_utf8_or_missing():
    assert parse(msg("SIP/2.0 100 ", *INVITE_LINES[1:7])).reason == ""
    assert parse(msg("SIP/2.0 100", *INVITE_LINES[1:7])).reason == ""
    assert parse(msg("SIP/2.0 486 忙 Busy", *INVITE_LINES[1:7])).reason == "忙 Busy"


def test_status_code_must_be_three_digits_in_range():
    for code in ("99", "099", "700", "1000", "2OO", "-20", "+20", "", "4294967301"):
        e = bad(msg("SIP/2.0 %s Odd" % code, *INVITE_LINES[1:7]))
        assert str(e) == "bad status code", code
        assert e.request is None


def test_unsupported_version_is_505_and_garbage_version_400():
    e = bad(msg("OPTIONS sip:a@b SIP/3.0", *INVITE_LINES[1:7]))
    assert e.status == 505 and "version" in str(e)
    assert e.request is not None and e.request.get("call-id") == "a84b4c76e66710@192.0.2.10"
    e = bad(msg("OPTIONS sip:a@b HTTP/1.1", *INVITE_LINES[1:7]))
    assert e.status == 400 and str(e) == "bad sip version"
    # the literal is case-insensitive (RFC 3261 section 7.1)
    assert parse(msg("INVITE sip:a@b sip/2.0", *INVITE_LINES[1:7])).method == "INVITE"


def test_request_line_needs_single_spaces():
    for line in (
        "INVITE  sip:a@b SIP/2.0",
        "INVITE sip:a@b SIP/2.0 ",
        "INVITE sip:a@b; lr SIP/2.0",
        "INVITE\tsip:a@b SIP/2.0",
    ):
        e = bad(msg(line, *INVITE_LINES[1:]))
        assert e.status == 400, line
        assert e.request is not None, line  # still answerable from its headers


def test_leading_crlf_is_skipped_but_keepalive_is_not_a_message():
    assert parse(b"\r\n\r\n" + msg(*INVITE_LINES, body=b"")).method == "INVITE"
    assert str(bad(b"\r\n\r\n")) == "empty message"
    assert str(bad(b"")) == "empty message"


def test_missing_empty_line_tolerated_only_at_a_line_end():
    data = ("\r\n".join(INVITE_LINES[:7]) + "\r\n").encode()
    assert parse(data).method == "INVITE"
    assert "truncated" in str(bad(data[:-2]))


def test_non_utf8_headers_rejected_binary_body_kept():
    e = bad(msg(*INVITE_LINES[:7]).replace(b"tag=1928301774", b"tag=19\xff28"))
    assert str(e) == "headers are not utf-8"
    body = bytes(range(256))
    assert invite(body=body).body == body


def test_parse_takes_bytes_like_and_refuses_str():
    data = msg(*INVITE_LINES, body=SDP)
    assert parse(bytearray(data)).body == SDP
    assert parse(memoryview(data)).method == "INVITE"
    raises(TypeError, parse, data.decode())


# -- headers ------------------------------------------------------------------------------


def test_header_names_case_insensitive_and_compact():
    req = parse(
        msg(
            "OPTIONS sip:a@example.com SIP/2.0",
            "v: SIP/2.0/UDP h1.example.com;branch=z9hG4bK1",
            "VIA: SIP/2.0/UDP h2.example.com;branch=z9hG4bK2",
            "f: <sip:b@example.com>;tag=1",
            "T: sip:a@example.com",
            "i: abc",
            "cSeQ: 1 OPTIONS",
            "m: <sip:b@192.0.2.1>",
            "k: 100rel, timer",
            "l: 0",
            "c: text/plain",
            "s: hello",
            "o: dialog",
            "u: presence",
            "x: 1800",
            "e: gzip",
        )
    )
    assert req.get("Via") == "SIP/2.0/UDP h1.example.com;branch=z9hG4bK1"
    assert len(req.get_all("v")) == 2
    assert req.get("FROM") == req.get("f") == "<sip:b@example.com>;tag=1"
    assert req.get("call-id") == "abc"
    assert req.get_all("supported") == ["100rel", "timer"]
    assert req.get("content-type") == "text/plain" and req.get("subject") == "hello"
    assert req.get("event") == "dialog" and req.get("allow-events") == "presence"
    assert req.get("session-expires") == "1800" and req.get("content-encoding") == "gzip"
    assert req.get("nope") is None and req.get("nope", "x") == "x" and req.get_all("nope") == []


def test_folded_lines_join_with_one_space():
    req = parse(
        msg(
            "OPTIONS sip:a@example.com SIP/2.0",
            "Via: SIP/2.0/UDP h1.example.com",
            "  ;branch=z9hG4bK1",
            "From: <sip:b@example.com>",
            "\t;tag=1",
            "To: sip:a@example.com",
            "Call-ID: abc",
            "CSeq: 1",
            "   OPTIONS",
            "Subject: one",
            " two",
            "  three",
        )
    )
    assert req.get("subject") == "one two three"
    assert req.cseq() == (1, "OPTIONS")
    assert req.via().branch == "z9hG4bK1" and req.from_addr().tag == "1"


def test_continuation_without_header_is_an_error():
    e = bad(msg("OPTIONS sip:a@b SIP/2.0", " folded", *INVITE_LINES[1:7]))
    assert "folding" in str(e) and e.request is not None


def test_bad_header_lines_rejected():
    for line in ("No colon here", ": empty name", "Bad Name: x", "Ünicode: x"):
        e = bad(msg(*(INVITE_LINES + (line,))))
        assert str(e) == "bad header line", line


def test_list_headers_split_respecting_quotes_and_angles():
    req = invite(
        'Contact: "Doe, John" <sip:j,d@192.0.2.1;x=a>;q=0.5, <sip:jd@192.0.2.2>',
        "Allow: INVITE,ACK , BYE",
        "Allow: OPTIONS",
        "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
        "Date: Sat, 13 Nov 2010 23:29:00 GMT",
        'Warning: 399 pbx "a, b", 399 pbx "c"',
        "X-Unknown: a, b",
    )
    contacts = req.contacts()
    assert len(contacts) == 3  # the one from INVITE_LINES first
    assert contacts[1].display == "Doe, John" and contacts[1].params["q"] == "0.5"
    assert contacts[1].uri.user == "j,d" and contacts[1].uri.params["x"] == "a"
    assert req.get_all("allow") == ["INVITE", "ACK", "BYE", "OPTIONS"]
    assert [str(r.uri) for r in req.routes()] == ["sip:p1.example.com;lr", "sip:p2.example.com;lr"]
    assert req.get("date") == "Sat, 13 Nov 2010 23:29:00 GMT"  # never split
    assert req.get_all("warning") == ['399 pbx "a, b"', '399 pbx "c"']
    assert req.get_all("x-unknown") == ["a, b"]


def test_repeated_singletons_rejected():
    for line in (
        "CSeq: 2 INVITE",
        "Call-ID: other",
        "To: <sip:x@y>",
        "From: <sip:x@y>;tag=2",
        "Max-Forwards: 5",
        "Content-Type: text/plain",
        "l: 0\r\nContent-Length: 0",
    ):
        e = bad(msg(*(INVITE_LINES + (line,))))
        assert str(e).startswith("duplicate "), line
        assert e.status == 400 and e.request is not None


def test_missing_mandatory_headers_rejected():
    for i, name in ((1, "via"), (3, "from"), (4, "to"), (5, "call-id"), (6, "cseq")):
        lines = INVITE_LINES[:i] + INVITE_LINES[i + 1 :]
        e = bad(msg(*lines))
        assert str(e) == "missing %s header" % name


def test_cseq_checks():
    assert parse_cseq("0009 INVITE") == (9, "INVITE")
    assert parse_cseq("2147483647 BYE") == (2147483647, "BYE")
    assert str(raises(ParseError, parse_cseq, "2147483648 BYE")) == "number too large"
    assert str(raises(ParseError, parse_cseq, "-1 BYE")) == "bad number"
    assert str(raises(ParseError, parse_cseq, "1")) == "expected a number and a method"
    assert str(raises(ParseError, parse_cseq, "１ BYE")) == "bad number"
    e = bad(msg(*(INVITE_LINES[:6] + ("CSeq: 1 ACK",))))
    assert str(e) == "bad cseq header: method ACK does not match the request's"
    e = bad(msg(*(INVITE_LINES[:6] + ("CSeq: 99999999999999999999 INVITE",))))
    assert str(e) == "bad cseq header: number too large"


def test_max_forwards_and_expires():
    assert invite("Expires: 3600").expires() == 3600
    assert invite().expires(3600) == 3600
    assert invite("Expires: soon").expires(3600) == 3600  # malformed -> default
    assert invite("Expires: 99999999999999999").expires() == 0xFFFFFFFF
    lines = INVITE_LINES[:2] + INVITE_LINES[3:]
    assert parse(msg(*lines)).max_forwards() is None
    assert parse(msg(*(lines + ("Max-Forwards: 0",)))).max_forwards() == 0
    for value in ("256", "-1", "x", ""):
        e = bad(msg(*(lines + ("Max-Forwards: " + value,))))
        assert str(e) == "bad max-forwards header: expected 0-255", value


def test_content_length_cuts_the_body_and_may_not_exceed_it():
    req = invite("Content-Length: 4")
    assert req.body == SDP[:4]
    req = invite("Content-Length: %d" % len(SDP))
    assert req.body == SDP
    e = bad(msg(*(INVITE_LINES + ("Content-Length: %d" % (len(SDP) + 1),)), body=SDP))
    assert str(e) == "bad content-length header: %d is more than the %d body bytes received" % (len(SDP) + 1, len(SDP))
    assert e.request is not None
    for value in ("-1", "1e3", "", "0x10"):
        e = bad(msg(*(INVITE_LINES + ("Content-Length: " + value,)), body=SDP))
        assert str(e) == "bad content-length header", value


def test_date_must_be_gmt():
    assert invite("Date: Mon, 1 Jan 2024 08:00:00 GMT").get("date")
    for value in ("Sat, 13 Nov 2010 23:29:00 EST", "13 Nov 2010", "Sat, 13 Nov 2010 25:00:00 GMT"):
        e = bad(msg(*(INVITE_LINES + ("Date: " + value,))))
        assert str(e) == "bad date header: expected an rfc 1123 date in gmt", value


def test_call_id_may_not_be_empty_or_spaced():
    e = bad(msg(*(INVITE_LINES[:5] + ("Call-ID: a b",) + INVITE_LINES[6:])))
    assert str(e) == "bad call-id header"
    e = bad(msg(*(INVITE_LINES[:5] + ("Call-ID:",) + INVITE_LINES[6:])))
    assert str(e) == "bad call-id header"


def test_require_and_content_type_building_blocks():
    req = invite("Require: 100rel, foo", "Proxy-Require: bar")
    assert req.get_all("require") == ["100rel", "foo"]
    assert req.get_all("proxy-require") == ["bar"]
    req = parse(msg(*(INVITE_LINES[:8] + ("Content-Type: Application/SDP; charset=utf-8",)), body=b"v=0\r\n"))
    assert req.content_type() == "application/sdp"
    assert invite().get("content-type") == "application/sdp"
    assert parse(msg(*INVITE_LINES[:8])).content_type() is None


# -- typed values -------------------------------------------------------------------------


def test_via_fields():
    via = parse_via("SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK776;rport;received=192.0.2.99")
    assert via.protocol == "SIP/2.0" and via.transport == "UDP"
    assert via.host == "192.0.2.10" and via.port == 5062 and via.sent_by == "192.0.2.10:5062"
    assert via.branch == "z9hG4bK776" and via.received == "192.0.2.99"
    assert via.wants_rport and via.rport is None
    via = parse_via("SIP / 2.0 / tcp  [2001:db8::1] ; maddr=224.2.0.1 ;ttl=16; rport=5070")
    assert via.transport == "TCP" and via.host == "[2001:db8::1]" and via.port is None
    assert via.maddr == "224.2.0.1" and via.ttl == 16 and via.rport == 5070
    assert not via.wants_rport
    assert parse_via("SIP/2.0/UDP h;received=2001:db8::9").received == "2001:db8::9"


def test_via_errors():
    cases = (
        ("SIP/2.0 192.0.2.1", "bad sent-protocol"),
        ("SIP/2.0/UDP", "missing sent-by"),
        ("HTTP/1.1/TCP h", "bad sent-protocol"),
        ("SIP/2.0/UDP h:99999", "bad port"),
        ("SIP/2.0/UDP h;;", "empty parameter"),
        ("SIP/2.0/UDP h;branch", "bad branch"),
        ("SIP/2.0/UDP h;ttl=300", "bad ttl"),
        ("SIP/2.0/UDP h;rport=x", "bad rport"),
        ("SIP/2.0/UDP h;received=a/b", "bad parameter value"),
        ("SIP/2.0/UDP bad host", "bad host"),
    )
    for text, why in cases:
        assert str(raises(ParseError, parse_via, text)) == why, text


def test_via_round_trips_with_received_added():
    req = invite()
    via = req.via()
    via.params["received"] = "198.51.100.7"
    via.params["rport"] = "40000"
    req.set_all("via", [str(v) for v in [via] + req.vias()[1:]])
    assert req.get("via") == ("SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK776asdhds;rport=40000;received=198.51.100.7")
    assert req.via().received == "198.51.100.7"  # the cache was dropped by set_all


def test_address_forms():
    a = parse_address('"J Rosenberg \\\\\\"" <sip:jdrosen@example.com> ; tag = 98asjd8')
    assert a.display == 'J Rosenberg \\"' and a.tag == "98asjd8"
    a = parse_address("caller<sip:caller@example.com>;tag=323")
    assert a.display == "caller" and a.uri.user == "caller"
    a = parse_address("Bell  Alexander <sip:a@example.com>")
    assert a.display == "Bell Alexander"
    a = parse_address("sip:+1972@gw1.example.net;unknownparam;expires=60")
    assert a.display is None and a.uri.params.get("unknownparam") is None
    assert "unknownparam" in a.params and "unknownparam" not in a.uri.params
    assert a.param_int("expires") == 60
    a = parse_address("<sip:+1972@gw1.example.net;unknownparam>")
    assert "unknownparam" in a.uri.params and "unknownparam" not in a.params
    a = parse_address('<sip:a@b>;x="quoted; value"')
    assert a.params["x"] == '"quoted; value"'
    assert parse_address("*", star=True).is_star
    assert parse_address("王小明 <sip:201@pbx>").display == "王小明"  # unquoted UTF-8: tolerated
    a = parse_address('<sip:u@192.0.2.1;ob>;reg-id=1;+sip.instance="<urn:uuid:0001>";methods="INVITE, ACK"')
    assert a.params["+sip.instance"] == '"<urn:uuid:0001>"' and a.params["reg-id"] == "1"
    assert "ob" in a.uri.params


def test_address_errors():
    cases = (
        ('"unterminated <sip:a@b>', "unterminated quoted string"),
        ("Bell, Alexander <sip:a@b>", "bad display name: it needs quotes"),
        ("< sip:a@b >", "no spaces allowed inside <uri>"),
        ("<sip:a@b", "unterminated <uri>"),
        ("sip:a@b?Route=x", "a uri with '?' must be enclosed in <>"),
        ('"x" sip:a@b', "expected <uri> after the display name"),
        ("<sip:a@b>;;", "empty parameter"),
        ("<sip:a@b>;tag=", "empty parameter value"),
        ("<sip:a@b> junk", "unexpected text before parameters"),
        ("", "empty address"),
        ("*", "no scheme"),
    )
    for text, why in cases:
        assert str(raises(ParseError, parse_address, text)) == why, text


def test_contact_list_with_quoted_angles_and_commas():
    req = invite('Contact: <sip:a@h1>;+sip.instance="<urn:uuid:1>";methods="INVITE, BYE", <sip:a@h2>;expires=0')
    contacts = req.contacts()
    assert [c.uri.host for c in contacts] == ["192.0.2.10", "h1", "h2"]
    assert contacts[1].params["methods"] == '"INVITE, BYE"'


def test_contact_expires_and_star():
    req = parse(
        msg(
            "REGISTER sip:example.com SIP/2.0",
            "Via: SIP/2.0/UDP h;branch=z9hG4bK1",
            "From: <sip:a@example.com>;tag=1",
            "To: <sip:a@example.com>",
            "Call-ID: r1",
            "CSeq: 1 REGISTER",
            "Contact: <sip:a@192.0.2.1>;expires=280297596632815, <sip:a@h2>;q=0.1",
        )
    )
    first, second = req.contacts()
    assert first.param_int("expires", 3600) == 0xFFFFFFFF
    assert second.param_int("expires", 3600) == 3600
    star = parse(msg(*(INVITE_LINES[:7] + ("Contact: *", "Expires: 0"))))
    assert star.contacts()[0].is_star and str(star.contacts()[0]) == "*"
    e = bad(msg(*(INVITE_LINES[:7] + ("Contact: *, <sip:a@b>",))))
    assert str(e) == "bad contact header: '*' must stand alone"


def test_uri_parts_and_escapes():
    uri = parse_uri(
        "sip:%75se%72:pa%73s@Example.COM:5070;transport=tcp;lr;n%61me=v%61lue%2541?subject=hi%20there&priority=urgent"
    )
    assert (uri.user, uri.password, uri.host, uri.port) == ("user", "pass", "Example.COM", 5070)
    assert uri.params["transport"] == "tcp" and uri.params["lr"] is None and "LR" in uri.params
    assert uri.params["name"] == "value%41"
    assert uri.headers["subject"] == "hi there" and uri.headers["priority"] == "urgent"
    assert str(uri) == (
        "sip:user:pass@Example.COM:5070;transport=tcp;lr;name=value%2541?subject=hi%20there&priority=urgent"
    )
    assert parse_uri(str(uri)) == uri
    assert uri.aor() == "sip:user@example.com"
    assert parse_uri("SIPS:[2001:db8::1]:5061").host == "[2001:db8::1]"
    assert parse_uri("sip:null-%00-null@h").user == "null-\x00-null"
    assert str(parse_uri("sip:null-%00-null@h")) == "sip:null-%00-null@h"


def test_other_schemes_are_opaque():
    for text in (
        "tel:+86-10-1234;phone-context=example.com",
        "http://www.example.com/x?y",
        "nobodyKnowsThisScheme:totallyopaquecontent",
        "soap.beep://192.0.2.103:3002",
    ):
        uri = parse_uri(text)
        assert not uri.is_sip and uri.opaque is not None
        assert str(uri).lower() == text.lower()
    assert parse_uri("TEL:+1").scheme == "tel"


def test_uri_errors():
    cases = (
        ("example.com", "no scheme"),
        ("1sip:a@b", "bad scheme"),
        ("si p:a@b", "bad scheme"),
        ("sip:", "empty host"),
        ("sip:a@", "empty host"),
        ("sip:@b", "empty user"),
        ("sip:a b@c", "bad character in user"),
        ("sip:a%4@b", "bad escape in user"),
        ("sip:a@b:x", "bad port"),
        ("sip:a@b:65536", "bad port"),
        ("sip:a@b;", "empty uri parameter"),
        ("sip:a@b;x=<", "bad character in uri parameter"),
        ("sip:a@b?x", "bad uri header"),
        ("sip:a@[::g]", "bad ipv6 reference"),
        ("sip:a@b c", "bad host"),
        ("tel:", "empty tel uri"),
        ("tel:a b", "bad character in uri"),
        ("sip:%FF@b", "escaped bytes are not utf-8"),
    )
    for text, why in cases:
        assert str(raises(ParseError, parse_uri, text)) == why, text


def test_uri_equality_and_params_mapping():
    a = parse_uri("sip:a@EXAMPLE.com;Transport=udp")
    assert a == parse_uri("sip:a@example.com;transport=udp")
    assert parse_uri("sip:a@h") != parse_uri("sip:A@h")
    assert parse_uri("sip:a@h:5060") != parse_uri("sip:a@h")
    p = Params([("a", "1"), ("B", None)])
    assert p["A"] == "1" and p.get("b") is None and "b" in p and len(p) == 2
    p["b"] = "2"
    del p["a"]
    assert p.items() == [("B", "2")] and list(p) == ["B"]
    raises(KeyError, p.__getitem__, "a")
    assert Params({"x": "1"}) == Params([("X", "1")])


# -- serialising --------------------------------------------------------------------------


def test_to_bytes_recomputes_content_length_and_writes_crlf():
    req = invite()
    req.body = b"v=0\r\n"
    data = req.to_bytes()
    assert data.startswith(b"INVITE sip:201@pbx.example.com SIP/2.0\r\nVia: SIP/2.0/UDP ")
    assert b"\r\nContent-Length: 5\r\n\r\nv=0\r\n" in data
    assert data.endswith(b"\r\n\r\nv=0\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_to_bytes_canonical_names_and_joined_lists():
    req = parse(
        msg(
            "OPTIONS sip:a@example.com SIP/2.0",
            "v: SIP/2.0/UDP h1;branch=z9hG4bK1",
            "v: SIP/2.0/UDP h2;branch=z9hG4bK2",
            "f: <sip:b@example.com>;tag=1",
            "t: sip:a@example.com",
            "i: abc",
            "cseq: 1 OPTIONS",
            "allow: INVITE",
            "ALLOW: ACK, BYE",
            'www-authenticate: Digest realm="x", nonce="y"',
            "x-custom-thing: 1",
            "l: 0",
        )
    )
    text = req.to_bytes().decode()
    vias = "\r\nVia: SIP/2.0/UDP h1;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP h2;branch=z9hG4bK2\r\n"
    assert vias in text
    assert "\r\nCall-ID: abc\r\nCSeq: 1 OPTIONS\r\nAllow: INVITE, ACK, BYE\r\n" in text
    assert '\r\nWWW-Authenticate: Digest realm="x", nonce="y"\r\n' in text
    assert "\r\nX-Custom-Thing: 1\r\nContent-Length: 0\r\n\r\n" in text
    assert header_name("rseq") == "RSeq"
    assert header_name("p-asserted-identity") == "P-Asserted-Identity"


def test_round_trip_gives_equal_headers_and_body():
    req = invite("Allow: INVITE, ACK", 'Warning: 399 h "x, y"', "Content-Length: %d" % len(SDP))
    again = parse(req.to_bytes())
    assert again.headers == req.headers and again.body == req.body
    assert again.uri == req.uri and again.method == req.method


def test_header_editing():
    req = invite()
    req.add("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp", first=True)
    assert req.via().host == "proxy.example.com" and len(req.vias()) == 2
    req.add("Record-Route", "<sip:pbx.example.com;lr>", first=True)
    assert req.headers[0][0] == "record-route"  # first of its name: at the top when none yet
    req.set("max-forwards", 69)
    assert req.max_forwards() == 69 and req.get_all("max-forwards") == ["69"]
    req.set("subject", None)
    req.remove("contact")
    assert req.contacts() == []
    req.add("Allow", "INVITE, ACK")
    assert req.get_all("allow") == ["INVITE", "ACK"]
    raises(ValueError, req.add, "Subject", "two\r\nlines")


def test_reason_phrases():
    assert reason_phrase(486) == "Busy Here" and reason_phrase(200) == "OK"
    assert reason_phrase(499) == "Client Error" and reason_phrase(199) == "Provisional"


# -- building messages --------------------------------------------------------------------


def test_make_response_copies_the_request():
    req = invite("Record-Route: <sip:p.example.com;lr>", "Timestamp: 54")
    req.add("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp", first=True)
    resp = make_response(req, 180, to_tag="as8d7f")
    assert (resp.status, resp.reason) == (180, "Ringing")
    assert resp.get_all("via") == req.get_all("via")
    assert resp.get("from") == req.get("from") and resp.get("call-id") == req.get("call-id")
    assert resp.get("cseq") == "314159 INVITE"
    assert resp.get("to") == "<sip:201@pbx.example.com>;tag=as8d7f"
    assert resp.get("record-route") is None and resp.get("timestamp") is None
    again = parse(resp.to_bytes())
    assert again.to_addr().tag == "as8d7f" and again.cseq() == (314159, "INVITE")


def test_make_response_keeps_an_existing_tag_and_none_on_100():
    req = invite("Timestamp: 54")
    req.set("to", "<sip:201@pbx.example.com>;tag=old")
    assert make_response(req, 200, to_tag="new").to_addr().tag == "old"
    trying = make_response(invite("Timestamp: 54"), 100, to_tag="new")
    assert trying.to_addr().tag is None and trying.get("timestamp") == "54"


def test_make_response_extra_headers_and_body():
    extra = [("Contact", "<sip:201@192.0.2.5>"), ("Content-Type", "application/sdp")]
    resp = make_response(invite(), 200, "Fine", to_tag="t", headers=extra, body=SDP)
    assert resp.reason == "Fine" and resp.contacts()[0].uri.host == "192.0.2.5"
    again = parse(resp.to_bytes())
    assert again.body == SDP and again.get("content-length") == str(len(SDP))


def test_parse_error_request_can_be_answered():
    e = bad(msg(*(INVITE_LINES[:6] + ("CSeq: 1 BYE",))))
    resp = make_response(e.request, e.status)
    assert resp.status == 400 and resp.get("cseq") == "1 BYE"
    again = parse(resp.to_bytes())
    assert again.get("call-id") == "a84b4c76e66710@192.0.2.10"
    # a broken request line: the raw uri is kept
    e = bad(msg("INVITE <sip:a@b> SIP/2.0", *INVITE_LINES[1:7]))
    assert e.request.uri == "<sip:a@b>" and e.request.method == "INVITE"
    # a broken To still gets copied as it came (tag appended textually)
    e = bad(msg(*(INVITE_LINES[:4] + ('To: "x <sip:a@b>',) + INVITE_LINES[5:7])))
    assert make_response(e.request, 400, to_tag="z").get("to") == '"x <sip:a@b>;tag=z'


def test_make_request_builds_a_valid_request():
    req = make_request(
        "OPTIONS",
        "sip:201@192.0.2.20:5062",
        Address(parse_uri("sip:pbx@pbx.example.com"), "总机", Params([("tag", "abc")])),
        "<sip:201@pbx.example.com>",
        "cid-1@pbx",
        7,
        via=Via("UDP", "192.0.2.1", 5060, Params([("branch", "z9hG4bKx"), ("rport", None)])),
        contact="<sip:pbx@192.0.2.1>",
        headers=[("Allow", "INVITE, ACK, BYE")],
    )
    again = parse(req.to_bytes())
    assert again.method == "OPTIONS" and again.uri == URI("sip", "201", "192.0.2.20", 5062)
    assert again.via().branch == "z9hG4bKx" and again.via().wants_rport
    assert again.from_addr().display == "总机" and again.from_addr().tag == "abc"
    assert again.cseq() == (7, "OPTIONS") and again.max_forwards() == 70
    assert again.get_all("allow") == ["INVITE", "ACK", "BYE"]
    assert again.body == b"" and again.get("content-length") == "0"
    with_body = make_request(
        "MESSAGE",
        parse_uri("sip:a@b"),
        "<sip:c@d>;tag=1",
        "<sip:a@b>",
        "x",
        1,
        via="SIP/2.0/UDP h;branch=z9hG4bK1",
        body="你好",
        content_type="text/plain;charset=utf-8",
    )
    again = parse(with_body.to_bytes())
    assert again.body == "你好".encode() and again.content_type() == "text/plain"


def test_display_names_with_quotes_and_controls_are_escaped():
    addr = Address(parse_uri("sip:a@b"), 'say "hi" \\ \x07', Params([("tag", "1")]))
    text = str(addr)
    assert text == '"say \\"hi\\" \\\\ \\\x07" <sip:a@b>;tag=1'
    assert parse_address(text) == addr

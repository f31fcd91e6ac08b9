"""zongji.text: the one home of the digit, token and host-bracket helpers (CPython and MicroPython)."""

from zongji import text
from zongji.site import countries, hours, targets
from zongji.text import TOKEN_CHARS, bare_host, bracket_host, is_alnum, is_digits, is_hex, is_token, is_token_char


def test_is_digits():
    assert is_digits("0") and is_digits("0123456789")
    assert not is_digits("")  # the copy in countries.py said True here
    assert not is_digits(None)
    for bad in ("+1", "-1", " 1", "1 ", "1.0", "1_0", "12a", "١٢", "１２"):
        assert not is_digits(bad), bad


def test_no_copies_left():
    # the site modules use the one helper, not copies of their own
    assert getattr(targets, "is_digits", is_digits) is is_digits
    assert not hasattr(countries, "_is_digits") and not hasattr(hours, "_is_digits")


def test_a_lone_plus_is_not_a_number():
    # "+" left "" after the sign, which the old countries copy took for digits
    assert countries.normalize("CN", "+") is None
    assert countries.normalize("CN", "+8613800138000") == "013800138000"


def test_is_alnum_is_ascii_only():
    for c in "azAZ09":
        assert is_alnum(c)
    for c in "-_ é٣":
        assert not is_alnum(c)


def test_is_token():
    assert is_token("INVITE") and is_token("z9hG4bK-1.!%*_+`'~")
    assert not is_token("")
    for bad in ("a b", "a,b", "a;b", "a:b", 'a"b', "a/b", "a=b", "é", "a\tb"):
        assert not is_token(bad), bad
    assert TOKEN_CHARS == "-.!%*_+`'~"
    for c in TOKEN_CHARS + "aZ5":
        assert is_token_char(c)
    for c in ' ,;:"/=()<>@[]?{}\\':
        assert not is_token_char(c)


def test_bracket_host():
    assert bracket_host("::1") == "[::1]"
    assert bracket_host("2001:db8::5") == "[2001:db8::5]"
    assert bracket_host("[::1]") == "[::1]"  # never twice
    assert bracket_host("192.0.2.1") == "192.0.2.1"
    assert bracket_host("pbx.example.com") == "pbx.example.com"


def test_bare_host():
    assert bare_host("[::1]") == "::1"
    assert bare_host("[2001:DB8::5]") == "2001:db8::5"
    assert bare_host("::1") == "::1"
    assert bare_host("PBX.Example.COM") == "pbx.example.com"
    assert bare_host("[::1") == "[::1"  # only a matching pair is taken off
    assert bare_host(bracket_host("2001:db8::5")) == "2001:db8::5"


def test_text_is_a_leaf():
    # text imports nothing from zongji: every layer may use it
    names = [n for n in dir(text) if not n.startswith("__")]
    assert sorted(names) == sorted(
        ["TOKEN_CHARS", "bare_host", "bracket_host", "is_alnum", "is_digits", "is_hex", "is_token", "is_token_char"]
    )


def test_is_hex_takes_exactly_n_lower_case_hex_digits():
    assert is_hex("0123456789abcdef", 16) and is_hex("", 0)
    for bad, n in (("0123456789abcde", 16), ("0123456789ABCDEF", 16), ("0123456789abcdeg", 16), ("ab ", 3)):
        assert not is_hex(bad, n), bad

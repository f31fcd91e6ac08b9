"""Small text tests and host spellings that every layer needs: the one home of each.

This module owns digit strings, RFC 3261 tokens and bracketed IPv6 hosts. It is a leaf: it
imports nothing from zongji, so site, call, sip, switch and shell may all use it.

    is_digits("0123")    True; "" and "+1" are not digits
    is_hex(h, 64)        64 lower-case hex digits (a SHA-256 as zongji writes it)
    is_token("INVITE")   an RFC 3261 token (section 25.1): letters, digits and -.!%*_+`'~
    bracket_host("::1")  "[::1]", as a URI or a Via writes an IPv6 host; others unchanged
    bare_host("[::1]")   "::1", lower case: how two hosts are compared
"""

TOKEN_CHARS = "-.!%*_+`'~"  # RFC 3261 section 25.1: token characters beyond letters and digits
# is_digits and is_token test a whole run with one C-level str.strip (the allowed characters
# as a default argument, the most frequent first: strip looks each up in order), where a
# Python loop over the characters costs a microsecond each on MicroPython. MicroPython strips
# UTF-8 bytes, so any non-ASCII character fails, as it should.


def is_digits(text, _digits="0123456789"):
    """True for a non-empty string of ASCII digits 0-9 (no sign, no spaces)."""
    return bool(text) and not text.strip(_digits)


def is_hex(text, n, _hex="0123456789abcdef"):
    """True for exactly n lower-case hex digits: a SHA-256 or an HA1 as zongji writes them."""
    return len(text) == n and not text.strip(_hex)


def is_alnum(c):
    """One ASCII letter or digit (str.isalnum takes Unicode letters too)."""
    return ("a" <= c <= "z") or ("A" <= c <= "Z") or ("0" <= c <= "9")


def is_token_char(c):
    return is_alnum(c) or c in TOKEN_CHARS


def is_token(s, _chars="eaoitnsrlcdupmhgbfywkvxzjq0123456789EAOITNSRLCDUPMHGBFYWKVXZJQ" + TOKEN_CHARS):
    """True for a non-empty RFC 3261 token."""
    return bool(s) and not s.strip(_chars)


def bracket_host(host):
    """A host as URIs write it: an IPv6 address in brackets, anything else as it is."""
    host = str(host)
    return "[%s]" % host if ":" in host and host[:1] != "[" else host


def bare_host(host):
    """A host without the brackets of an IPv6 reference, lower case (hosts ignore case)."""
    host = str(host).lower()
    return host[1:-1] if host[:1] == "[" and host[-1:] == "]" else host

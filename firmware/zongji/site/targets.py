"""Targets: where a call can be sent, written as strings in site files.

"201" (a short number), "menu:NAME", "operator", "directory", "hangup", "tel:NUMBER",
and inside menu options also "repeat" and "back". `parse` turns the text into a small
tuple the attendant and dial plan act on; None means the text is not a target at all.
"""

from zongji.text import is_digits

NUMBER = "number"
MENU = "menu"
OPERATOR = "operator"
DIRECTORY = "directory"
HANGUP = "hangup"
TEL = "tel"
REPEAT = "repeat"
BACK = "back"

_WORDS = (OPERATOR, DIRECTORY, HANGUP, REPEAT, BACK)
MENU_ONLY = (REPEAT, BACK)


def valid_name(name):
    """Menu names: letters, digits, '_' and '-'."""
    if not name:
        return False
    for ch in name:
        # ASCII only: str.isalpha() differs between CPython and MicroPython
        if not ("a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or ch in "_-"):
            return False
    return True


def parse(text):
    """'menu:sales' -> ('menu', 'sales'); '201' -> ('number', '201'); junk -> None."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    if text in _WORDS:
        return (text, None)
    if text.startswith("menu:"):
        name = text[5:]
        return (MENU, name) if valid_name(name) else None
    if text.startswith("tel:"):
        num = text[4:]
        if num.startswith("+"):
            num = num[1:]
            return (TEL, "+" + num) if is_digits(num) else None
        return (TEL, num) if is_digits(num) else None
    if is_digits(text):
        return (NUMBER, text)
    return None


def describe():
    return '"201", "menu:NAME", "operator", "directory", "hangup" or "tel:NUMBER"'

"""Dial-by-name on the telephone keypad: letters to keys, and the directory search.

Owns the keypad layout (ITU-T E.161: abc=2 def=3 ghi=4 jkl=5 mno=6 pqrs=7 tuv=8 wxyz=9) and
the matching rule: a caller's keys match an extension when they are a prefix of any of its
space-separated key strings. Those strings are computed on the host
(zongji_companion.namekeys: full name, each word, pinyin initials ...), so the device only
compares digit strings: no pinyin tables, no Unicode data on the ESP32.
"""

KEYPAD = {"2": "abc", "3": "def", "4": "ghi", "5": "jkl", "6": "mno", "7": "pqrs", "8": "tuv", "9": "wxyz"}

_KEYS = "22233344455566677778889999"  # key of 'a' .. 'z'


def key_of(ch):
    """The keypad digit for one latin letter (either case), or None."""
    o = ord(ch) | 0x20  # 'A'..'Z' -> 'a'..'z'; nothing else lands in 'a'..'z'
    if 0x61 <= o <= 0x7A:
        return _KEYS[o - 0x61]
    return None


def to_keys(text):
    """'John Smith' -> '56467648': the keys for each latin letter, other characters ignored."""
    out = []
    for ch in text:
        k = key_of(ch)
        if k is not None:
            out.append(k)
    return "".join(out)


def match(keys_field, typed):
    """True if `typed` is a prefix of any space-separated key string in `keys_field`."""
    if not keys_field:
        return False
    return keys_field.startswith(typed) or (" " + typed) in keys_field


def search(entries, typed, limit):
    """Indexes of the entries whose keys match `typed`, in entry order, at most limit + 1 of
    them: one more than `limit` tells the caller there were too many to read out.

    `entries` is any iterable of (index, keys_field); it is walked once and stops early.
    """
    found = []
    spaced = " " + typed
    for index, keys in entries:
        if keys and (keys.startswith(typed) or spaced in keys):
            found.append(index)
            if len(found) > limit:
                break
    return found

from zongji import names
from zongji.names import KEYPAD, match, search, to_keys


def test_keypad_is_itu_e161():
    assert KEYPAD["2"] == "abc" and KEYPAD["7"] == "pqrs" and KEYPAD["9"] == "wxyz"
    letters = "".join(KEYPAD[k] for k in "23456789")
    assert letters == "abcdefghijklmnopqrstuvwxyz"
    for digit in KEYPAD:
        for letter in KEYPAD[digit]:
            assert names.key_of(letter) == digit
            assert names.key_of(letter.upper()) == digit


def test_to_keys_ignores_everything_but_latin_letters():
    assert to_keys("John Smith") == "564676484"  # 5646 + 76484
    assert to_keys("wangxiaoming") == "926494266464"
    assert to_keys("O'Brien-Smith") == "627436" + "76484"
    assert to_keys("Lily 王丽") == "5459"
    assert to_keys("Zoë 123 @[`{") == "96"  # ë is not latin a-z: the host folds accents first
    assert to_keys("") == ""
    assert to_keys("王小明") == ""


def test_match_is_a_prefix_of_any_key_string():
    keys = "926494266464 94266464 996"  # 王小明: wangxiaoming, xiaoming, wxm
    assert match(keys, "926")
    assert match(keys, "926494266464")
    assert match(keys, "9426")  # the given name
    assert match(keys, "996")  # the initials
    assert not match(keys, "9264942664641")  # longer than any key
    assert not match(keys, "424")  # inside a key, not at its start
    assert not match(keys, "6464")
    assert not match("", "9")
    assert match("564676484 5646 76484", "764")


def test_search_stops_after_limit_plus_one():
    entries = [
        ("201", "926494266464 94266464 996"),
        ("202", "5459 926454 54 95"),
        ("203", "94264934 934 99"),
        ("204", "564676484 5646 76484"),
        ("205", "92643264 3264 93"),
        ("210", "9264934 9264 934"),
        ("211", ""),
    ]
    assert search(entries, "5646", 3) == ["204"]
    assert search(entries, "9264", 3) == ["201", "202", "205", "210"]  # 4 = limit + 1: too many
    assert search(entries, "9264", 9) == ["201", "202", "205", "210"]
    assert search(entries, "934", 3) == ["203", "210"]
    assert search(entries, "2222", 3) == []
    assert search(entries, "9", 1) == ["201", "202"]


def test_search_walks_an_iterator_once_and_stops_early():
    seen = []

    def walk():
        for i in range(1000):
            seen.append(i)
            yield (i, "926 %d" % i)

    assert search(walk(), "926", 2) == [0, 1, 2]
    assert len(seen) == 3

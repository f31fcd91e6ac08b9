from zongji.site import names
from zongji.site.names import KEYPAD, match, search, to_keys


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


def test_match_a_prefix_of_the_spelling_from_any_word_start():
    keys = "9264 9426.6464"  # 王小明: wang | xiao.ming
    assert match(keys, "926")
    assert match(keys, "926494266464")  # the full name, separators skipped
    assert match(keys, "9264942")  # across the word and the syllable break
    assert match(keys, "9426")  # the given name from its start
    assert match(keys, "94266464")
    assert not match(keys, "9264942664641")  # longer than the name
    assert not match(keys, "424")  # inside a syllable, not at a word start
    assert not match(keys, "6464")  # a syllable start is not a word start
    assert not match(keys, "92648")  # wang-t: wrong digit after the word break
    assert not match("", "9")
    assert match("5646 76484", "764")  # Smith
    assert match("5646 76484", "5646764")  # johnsmi
    assert match("5459 9264 54", "926454")  # Lily 王丽: wangli
    assert match("5459 9264 54", "54")
    assert not match("5459 9264 54", "546")  # neither lily nor li (the last word: "54" only)


def test_match_the_initials_of_every_syllable():
    assert match("9264 9426.6464", "996")  # w-x-m
    assert match("9264 9426.6464", "99")
    assert not match("9264 9426.6464", "9966")  # one more than there are syllables
    assert not match("9264 9426.6464", "96")  # x-m: initials start at the first word only
    assert match("68.9264 62.62", "6966")  # 欧阳娜娜: o-y-n-n
    assert match("5459 9264 54", "595")  # Lily 王丽: l-w-l
    assert match("5646 76484", "57")  # John Smith: j-s
    assert not match("9426 646", "95")


def test_match_empty_and_odd_input():
    assert match("9264", "")  # nothing typed yet matches every named entry
    assert not match("", "")
    assert not match("9264", " ")  # separators are never typed
    assert not match("9264", ".")
    assert match("5 76484", "576")  # a one-letter word (J. Smith)
    assert match("5 76484", "57")


def test_search_stops_after_limit_plus_one():
    entries = [
        ("201", "9264 9426.6464"),
        ("202", "5459 9264 54"),
        ("203", "94264 934"),
        ("204", "5646 76484"),
        ("205", "9264 3264"),
        ("210", "9264 934"),
        ("211", ""),
    ]
    assert search(entries, "5646", 3) == ["204"]
    assert search(entries, "9264", 3) == ["201", "202", "205", "210"]  # 4 = limit + 1: too many
    assert search(entries, "9264", 9) == ["201", "202", "205", "210"]
    assert search(entries, "934", 3) == ["203", "210"]
    assert search(entries, "99", 3) == ["201", "203", "210"]  # w-x-m, z-w, w-w
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

import pytest
from pypinyin import lazy_pinyin
from zongji.site import names
from zongji_companion.namekeys import COMPOUND_SURNAMES, SURNAME_READINGS, han_syllables, name_keys


def keys(name):
    """The keys field as words of syllables: [["9264"], ["9426", "6464"]]."""
    return [w.split(".") for w in name_keys(name).split(" ")] if name_keys(name) else []


def test_chinese_name_surname_word_and_given_name_word():
    # wang=9264 xiao=9426 ming=6464: the given name is one word of two syllables
    assert name_keys("王小明") == "9264 9426.6464"
    assert name_keys("张伟") == "94264 934"  # zhang | wei
    assert name_keys("欧阳娜娜") == "68.9264 62.62"  # ou.yang | na.na
    assert name_keys("孙丽华") == "786 54.482"  # sun | li.hua


def test_latin_words_are_one_syllable_each():
    assert name_keys("John Smith") == "5646 76484"
    assert name_keys("Mary Ann Lee") == "6279 266 533"
    assert name_keys("O'Brien") == "627436"  # the apostrophe joins
    assert keys("Jean-Luc Picard") == [[names.to_keys(w)] for w in ("jean", "luc", "picard")]


def test_mixed_latin_and_chinese_in_the_order_written():
    assert name_keys("Lily 王丽") == "5459 9264 54"  # lily | wang | li
    assert name_keys("李 Lee") == "54 533"  # one Chinese character: no surname/given split
    assert name_keys("Operator Desk 前台") == "67372867 3375 7426 824"


def test_compound_surnames():
    assert han_syllables("欧阳修") == (["ou", "yang"], ["xiu"])
    assert name_keys("欧阳修") == "68.9264 948"
    assert han_syllables("诸葛亮") == (["zhu", "ge"], ["liang"])
    assert han_syllables("司马相如") == (["si", "ma"], ["xiang", "ru"])
    assert han_syllables("尉迟恭") == (["yu", "chi"], ["gong"])
    assert han_syllables("万俟卨")[0] == ["mo", "qi"]
    assert han_syllables("歐陽修") == (["ou", "yang"], ["xiu"])  # traditional characters
    assert han_syllables("欧阳") == (["ou"], ["yang"])  # just the two characters: no given name


def test_surnames_read_as_surnames():
    assert han_syllables("曾小明") == (["zeng"], ["xiao", "ming"])
    assert han_syllables("单雄信")[0] == ["shan"]
    assert han_syllables("解缙")[0] == ["xie"]
    assert han_syllables("区志明")[0] == ["ou"]
    assert han_syllables("查良镛")[0] == ["zha"]
    assert han_syllables("朴正熙")[0] == ["piao"]
    # the reading applies to the surname only: 曾经 in a given name stays "ceng jing"
    assert han_syllables("王曾经")[1] == ["ceng", "jing"]
    assert name_keys("曾小明") == "9364 9426.6464"


@pytest.mark.parametrize("char", sorted(SURNAME_READINGS))
def test_every_listed_surname_reading_overrides_pypinyin(char):
    # keep the table honest: an entry pypinyin already gets right is dead weight
    assert lazy_pinyin(char + "小明")[0] != SURNAME_READINGS[char]
    assert han_syllables(char + "小明")[0] == [SURNAME_READINGS[char]]


def test_compound_table_is_well_formed():
    for surname, reading in COMPOUND_SURNAMES.items():
        assert len(surname) == 2 and len(reading.split()) == 2, surname


def test_letters_folded_to_the_keypad():
    assert name_keys("José Müller") == names.to_keys("jose") + " " + names.to_keys("muller")
    assert name_keys("Strauß") == names.to_keys("strauss")
    assert name_keys("Ｌｉｌｙ") == "5459"  # full-width letters
    assert name_keys("吕布") == "58 28"  # lv: u and v share key 8 anyway


def test_nothing_to_spell():
    assert name_keys("") == ""
    assert name_keys("123 ---") == ""
    with pytest.raises(ValueError):
        name_keys(None)


def test_every_word_is_kept_in_place():
    # no de-duplication: each word starts a spelling that runs on to the end of the name
    assert name_keys("Wang Wei") == "9264 934"
    assert name_keys("Lily Lily") == "5459 5459"
    assert name_keys("J. Smith") == "5 76484"  # a one-letter word still starts "jsmith"
    assert name_keys("王") == "9264"
    assert name_keys("王娜娜") == "9264 62.62"  # repeated syllables too


def test_format_is_digits_spaces_and_dots():
    for name in ("王小明", "Lily 王丽", "欧阳娜娜", "司马相如", "José Müller", "Kevin 李强"):
        field = name_keys(name)
        assert field == field.strip() and "  " not in field and ".." not in field, name
        assert set(field) <= set("23456789 ."), name
        assert all(s for w in keys(name) for s in w), name  # no empty syllable


def test_spaces_between_chinese_characters_do_not_split_the_name():
    assert name_keys("王 小明") == name_keys("王小明")


def test_callers_find_people_the_way_they_think_of_them():
    staff = ["王小明", "Lily 王丽", "张伟", "John Smith", "王芳", "Wang Wei", "欧阳修"]
    entries = [(i, name_keys(n)) for i, n in enumerate(staff)]

    def find(typed_letters):
        return [staff[i] for i in names.search(entries, names.to_keys(typed_letters), 9)]

    assert find("xiaoming") == ["王小明"]
    assert find("wxm") == ["王小明"]
    assert find("smith") == ["John Smith"]
    assert find("john") == ["John Smith"]
    assert find("lily") == ["Lily 王丽"]
    assert find("ouyang") == ["欧阳修"]
    assert find("zhangw") == ["张伟"]
    assert find("zw") == ["王小明", "张伟", "Wang Wei"]  # z-w = 99: also w-x(-m), w-w
    assert find("lwl") == ["Lily 王丽"]  # the initials of the whole name
    assert find("oyx") == ["欧阳修"]
    assert find("js") == ["John Smith"]
    assert set(find("wang")) == {"王小明", "Lily 王丽", "王芳", "Wang Wei"}

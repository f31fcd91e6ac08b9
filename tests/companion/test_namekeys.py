import pytest
from pypinyin import lazy_pinyin
from zongji import names
from zongji_companion.namekeys import COMPOUND_SURNAMES, SURNAME_READINGS, han_syllables, name_keys


def keys(name):
    return name_keys(name).split()


def test_chinese_name_full_given_and_initials():
    # wang=9264 xiao=9426 ming=6464
    assert name_keys("王小明") == "926494266464 94266464 996"
    assert name_keys("张伟") == "94264934 934 99"  # zhangwei, wei, zw


def test_latin_words_and_their_concatenation():
    assert name_keys("John Smith") == "564676484 5646 76484"  # johnsmith, john, smith
    assert keys("Mary Ann Lee") == ["6279266533", "6279", "266", "533"]
    assert name_keys("O'Brien") == "627436"  # the apostrophe joins
    assert keys("Jean-Luc Picard")[0] == names.to_keys("jeanlucpicard")


def test_mixed_latin_and_chinese():
    ks = keys("Lily 王丽")
    assert ks == [names.to_keys("lilywangli"), "5459", names.to_keys("wangli"), "54", "95"]
    assert keys("李 Lee") == [names.to_keys("lilee"), "54", "533"]


def test_compound_surnames():
    assert han_syllables("欧阳修") == (["ou", "yang"], ["xiu"])
    assert keys("欧阳修") == [names.to_keys(s) for s in ("ouyangxiu", "xiu", "oyx")]
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
    assert name_keys("曾小明").startswith(names.to_keys("zengxiaoming") + " ")


@pytest.mark.parametrize("char", sorted(SURNAME_READINGS))
def test_every_listed_surname_reading_overrides_pypinyin(char):
    # keep the table honest: an entry pypinyin already gets right is dead weight
    assert lazy_pinyin(char + "小明")[0] != SURNAME_READINGS[char]
    assert han_syllables(char + "小明")[0] == [SURNAME_READINGS[char]]


def test_compound_table_is_well_formed():
    for surname, reading in COMPOUND_SURNAMES.items():
        assert len(surname) == 2 and len(reading.split()) == 2, surname


def test_letters_folded_to_the_keypad():
    assert name_keys("José Müller") == " ".join(
        [names.to_keys("josemuller"), names.to_keys("jose"), names.to_keys("muller")]
    )
    assert name_keys("Strauß") == names.to_keys("strauss")
    assert name_keys("Ｌｉｌｙ") == "5459"  # full-width letters
    assert name_keys("吕布") == "5828 28 52"  # lv: u and v share key 8 anyway


def test_nothing_to_spell():
    assert name_keys("") == ""
    assert name_keys("123 ---") == ""
    with pytest.raises(ValueError):
        name_keys(None)


def test_keys_are_deduplicated_and_single_letters_dropped():
    assert name_keys("Wang Wei") == "9264934 9264 934"
    assert name_keys("J. Smith") == names.to_keys("jsmith") + " 76484"
    assert name_keys("王") == "9264"


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
    assert set(find("wang")) == {"王小明", "Lily 王丽", "王芳", "Wang Wei"}
